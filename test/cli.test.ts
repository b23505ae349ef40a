// The `vlmc` command as a user runs it: help, version, exit codes, output formats, several
// files at once, colour. (Unreadable and hostile inputs: bad-input.test.ts.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { runVlmc } from "./helpers/cli.js";
import { repoPath } from "./helpers/paths.js";

const pkg = JSON.parse(readFileSync(repoPath("package.json"), "utf8")) as { version: string };

const CLEAN = "specs/seemore.vlm";
const FIXTURES = "test/fixtures/diagnostics";
const MISSING_COLON = `${FIXTURES}/E0101-missing-colon.vlm`; // one error
const MALFORMED = `${FIXTURES}/E0008-malformed-number.vlm`; // two errors
const WARNING_ONLY = `${FIXTURES}/W0101-missing-version.vlm`; // one warning, no error

const ANSI = /\u001b\[/;

interface JsonOutput {
  diagnostics: { file: string; code: string; severity: string; line: number; column: number; message: string }[];
}

test("vlmc --help prints usage and the commands, exit 0", () => {
  const r = runVlmc(["--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Usage: vlmc /m);
  assert.match(r.stdout, /^\s+check\b/m);
  assert.match(r.stdout, /--version/);
  assert.equal(r.stderr, "");
});

test("vlmc --version prints the package version, exit 0", () => {
  for (const flag of ["--version", "-V"]) {
    const r = runVlmc([flag]);
    assert.equal(r.code, 0, flag);
    assert.equal(r.stdout.trim(), pkg.version, flag);
    assert.equal(r.stderr, "", flag);
  }
});

test("vlmc check --help describes the command and --format, exit 0", () => {
  const r = runVlmc(["check", "--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Usage: vlmc check /m);
  assert.match(r.stdout, /--format/);
  assert.match(r.stdout, /json/);
  assert.equal(r.stderr, "");
});

test("vlmc with no arguments prints usage, exit 2", () => {
  const r = runVlmc([]);
  assert.equal(r.code, 2);
  assert.match(r.stdout + r.stderr, /Usage: vlmc /);
});

test("exit 0 for a clean spec, 1 for a spec with errors", () => {
  const clean = runVlmc(["check", CLEAN]);
  assert.equal(clean.code, 0, clean.stderr);
  assert.equal(clean.stdout, "");
  assert.equal(clean.stderr, "");

  const bad = runVlmc(["check", MISSING_COLON]);
  assert.equal(bad.code, 1);
  assert.equal(bad.stdout, "", "text diagnostics go to stderr");
  assert.match(bad.stderr, /^error\[E0101\]: expected `:` after `heads`/m);
  assert.ok(bad.stderr.includes(` --> ${MISSING_COLON}:5:11\n`), bad.stderr);
  assert.match(bad.stderr, /^1 error$/m);

  // A clean file does not hide the errors of another.
  const mixed = runVlmc(["check", CLEAN, MISSING_COLON]);
  assert.equal(mixed.code, 1);
});

test("several files in text mode: every file's diagnostics, one summary", () => {
  const r = runVlmc(["check", MISSING_COLON, CLEAN, MALFORMED]);
  assert.equal(r.code, 1);
  assert.ok(r.stderr.includes(` --> ${MISSING_COLON}:5:11\n`), r.stderr);
  assert.ok(r.stderr.includes(` --> ${MALFORMED}:6:14\n`), r.stderr);
  assert.ok(!r.stderr.includes(CLEAN), "a clean file is not mentioned");
  assert.match(r.stderr, /^3 errors$/m);
});

test("several files with --format json: one document on stdout, every entry with its file", () => {
  const r = runVlmc(["check", "--format", "json", MISSING_COLON, CLEAN, MALFORMED, WARNING_ONLY]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "", "nothing but the document is printed");
  let doc: JsonOutput;
  assert.doesNotThrow(() => {
    doc = JSON.parse(r.stdout) as JsonOutput;
  }, "stdout is exactly one JSON document");
  doc = JSON.parse(r.stdout) as JsonOutput;
  assert.deepEqual(Object.keys(doc), ["diagnostics"]);
  assert.ok(Array.isArray(doc.diagnostics));
  for (const d of doc.diagnostics) {
    assert.equal(typeof d.file, "string", JSON.stringify(d));
    assert.ok([MISSING_COLON, MALFORMED, WARNING_ONLY].includes(d.file), `unexpected file ${d.file}`);
  }
  const summary = doc.diagnostics.map((d) => `${d.file} ${d.severity} ${d.code} @${d.line}:${d.column}`).sort();
  assert.deepEqual(summary, [
    `${MALFORMED} error E0008 @6:14`,
    `${MALFORMED} error E0008 @7:10`,
    `${MISSING_COLON} error E0101 @5:11`,
    `${WARNING_ONLY} warning W0101 @1:1`,
  ]);
  assert.ok(!ANSI.test(r.stdout));
});

test("--format json for a clean spec: an empty list, exit 0", () => {
  const r = runVlmc(["check", "--format", "json", CLEAN]);
  assert.equal(r.code, 0);
  assert.equal(r.stderr, "");
  assert.deepEqual(JSON.parse(r.stdout), { diagnostics: [] });
});

test("text output has no colour when stderr is not a terminal, even with a colour TERM", () => {
  const r = runVlmc(["check", MISSING_COLON, WARNING_ONLY], {
    env: { NO_COLOR: undefined, FORCE_COLOR: undefined, TERM: "xterm-256color" },
  });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error\[E0101\]/);
  assert.match(r.stderr, /warning\[W0101\]/);
  assert.doesNotMatch(r.stdout + r.stderr, ANSI);
});

test("warnings alone: reported, exit 0", () => {
  const r = runVlmc(["check", WARNING_ONLY]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^warning\[W0101\]: /m);
  assert.match(r.stderr, /^1 warning$/m);
  assert.doesNotMatch(r.stderr, /^error/m);
});

test("an unknown --format is a usage error, exit 2", () => {
  const r = runVlmc(["check", "--format", "xml", CLEAN]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /xml/);
  assert.equal(r.stdout, "");
});
