// Every fixture under test/fixtures/diagnostics/ must report exactly the diagnostics annotated
// in it (`# error E0101 @5:11`), no more and no fewer; every code of the catalogue must have a
// fixture. The format is described in tools/gen-errors-doc.ts, which also turns the fixtures
// into docs/errors.md.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { check } from "../compiler/check.js";
import { catalogue } from "../compiler/diagnostics/codes.js";
import {
  actualExpectation,
  FIXTURE_DIR,
  fixtureCode,
  formatExpectation,
  listFixtures,
  parseExpectations,
  readFixtureLatin1,
  type Expectation,
} from "../tools/gen-errors-doc.js";

const fixtures = listFixtures();

function byPosition(a: Expectation, b: Expectation): number {
  return (a.file ?? "").localeCompare(b.file ?? "") || a.line - b.line || a.column - b.column || a.code.localeCompare(b.code) || a.severity.localeCompare(b.severity);
}

/** Multiset difference: the items of `xs` not matched one-to-one by an item of `ys`. */
function minus<T extends Expectation>(xs: T[], ys: Expectation[], key: (x: Expectation) => string): T[] {
  const counts = new Map<string, number>();
  for (const y of ys) counts.set(key(y), (counts.get(key(y)) ?? 0) + 1);
  return xs.filter((x) => {
    const n = counts.get(key(x)) ?? 0;
    if (n === 0) return true;
    counts.set(key(x), n - 1);
    return false;
  });
}

test("the fixture folder has fixtures", () => {
  assert.ok(fixtures.length > 0, `no .vlm or .yaml files in ${FIXTURE_DIR}`);
});

test("every fixture is named <CODE>-<slug>.vlm (or .yaml, for an IR) after a code of the catalogue", () => {
  const badNames = fixtures.filter((f) => fixtureCode(f) === null);
  if (badNames.length) assert.fail(`fixture names must look like E0101-missing-colon.vlm or E0601-bad-layer.yaml (a code, then a lower-case slug): ${badNames.join(", ")}`);
  const unknown = fixtures.filter((f) => !Object.hasOwn(catalogue, fixtureCode(f)!));
  if (unknown.length) assert.fail(`fixtures named after codes that are not in compiler/diagnostics/codes.ts: ${unknown.join(", ")}`);
});

test("every code of the catalogue has a fixture", () => {
  const covered = new Set(fixtures.map(fixtureCode));
  // Code-generation codes (E08xx) come from `vlmc compile --emit ts`, not from checking a spec:
  // test/emit-ts.test.ts reports each of them.
  const missing = Object.keys(catalogue).filter((code) => !covered.has(code) && !/^[EW]08/.test(code));
  if (missing.length > 0) {
    assert.fail(
      `${missing.length} code(s) of compiler/diagnostics/codes.ts have no fixture: ${missing.join(", ")}\n` +
        "add test/fixtures/diagnostics/<CODE>-<slug>.vlm (an IR code: .yaml) for each, annotated with what it reports, then run `npm run docs`",
    );
  }
});

for (const fixture of fixtures) {
  test(`fixture ${fixture}`, () => {
    const latin1 = readFixtureLatin1(fixture);
    const expected = parseExpectations(latin1).sort(byPosition);
    const code = fixtureCode(fixture);
    assert.ok(
      code === null || expected.some((e) => e.code === code),
      `${fixture} is named after ${code} but annotates no ${code} (write e.g. \`# error ${code} @LINE:COLUMN\`)`,
    );

    const result = check([join(FIXTURE_DIR, fixture)]);
    assert.deepEqual(result.unreadable.map((e) => e.message), [], "the fixture could not be read");
    const actual: (Expectation & { message: string })[] = result.diagnostics.map((d) => ({ ...actualExpectation(d, result.sources, FIXTURE_DIR, fixture), message: d.message }));
    actual.sort(byPosition);

    const missing = minus(expected, actual, formatExpectation);
    const unexpected = minus(actual, expected, formatExpectation);
    if (missing.length === 0 && unexpected.length === 0) return;
    const lines = [`${fixture}: the diagnostics reported differ from those annotated`];
    if (missing.length) lines.push("  annotated but not reported:", ...missing.map((e) => `    - ${formatExpectation(e)}`));
    if (unexpected.length) lines.push("  reported but not annotated:", ...unexpected.map((e) => `    + ${formatExpectation(e)}  ${e.message}`));
    lines.push("  expected (annotated):", ...(expected.length ? expected.map((e) => `      ${formatExpectation(e)}`) : ["      (none)"]));
    lines.push("  actual (reported):", ...(actual.length ? actual.map((e) => `      ${formatExpectation(e)}  ${e.message}`) : ["      (none)"]));
    assert.fail(lines.join("\n"));
  });
}
