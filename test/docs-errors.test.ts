// docs/errors.md is generated from the catalogue and the diagnostic fixtures by
// tools/gen-errors-doc.ts; this test fails when it is stale, so the examples and outputs it
// shows are always what this compiler does with them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { catalogue } from "../compiler/diagnostics/codes.js";
import { ERRORS_DOC, generateErrorsDoc } from "../tools/gen-errors-doc.js";
import { lineDiff } from "./helpers/snapshot.js";

const generated = generateErrorsDoc();

test("docs/errors.md is up to date", () => {
  assert.ok(existsSync(ERRORS_DOC), "docs/errors.md is missing: run `npm run docs`");
  const committed = readFileSync(ERRORS_DOC, "utf8");
  if (committed !== generated) {
    assert.fail(`docs/errors.md is out of date: run \`npm run docs\` and commit the result.\n(- committed, + generated)\n${lineDiff(committed, generated)}`);
  }
});

test("docs/errors.md has a section and a contents entry for every code", () => {
  for (const [code, info] of Object.entries(catalogue)) {
    const heading = `### ${code}: ${info.title}`;
    assert.ok(generated.includes(`\n${heading}\n`), `no section ${heading}`);
    assert.ok(generated.includes(`[${code}: ${info.title}](#`), `no contents entry for ${code}`);
  }
});

test("docs/errors.md examples are colourless text", () => {
  assert.doesNotMatch(generated, /\u001b\[/);
});
