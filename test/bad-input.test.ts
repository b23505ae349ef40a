// Hostile and unreadable inputs through the real `vlmc`, one test each. The contract: whatever
// a readable file contains ends in diagnostics and exit 1 (0 when nothing is wrong), never a
// crash, a hang or a stack overflow; exit 2, with one line and no stack trace, only for a file
// that cannot be read or a wrong command line. `--format json` always prints exactly one JSON
// document on stdout. Timing is not asserted: runVlmc's child-process timeout is a hang guard.
import { spawnSync } from "node:child_process";
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mulberry32 } from "../tools/random.js";
import { runVlmc, type CliRun } from "./helpers/cli.js";
import { repoPath, repoRoot, vlmcBin } from "./helpers/paths.js";

const dir = mkdtempSync(join(tmpdir(), "vlmc-bad-input-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const SEED_SPEC = readFileSync(repoPath("specs", "seemore.vlm"), "utf8");
const MiB = 1024 * 1024;

/** A stack frame as node prints it: `    at fn (file.js:1:2)`. */
const STACK_FRAME = /^\s+at .*:\d+:\d+\)?$/m;

interface JsonDoc {
  diagnostics: { code: string; severity: string; file: string; line: number; column: number; endLine: number; endColumn: number }[];
}

function write(name: string, content: string | Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

/** The seed spec cut just after the first occurrence of `marker` (which must exist). */
function cutAfter(marker: string): string {
  const at = SEED_SPEC.indexOf(marker);
  assert.ok(at >= 0, `the seed spec no longer contains ${JSON.stringify(marker)}`);
  return SEED_SPEC.slice(0, at + marker.length);
}

/** The seed spec with `insert` placed right after the first `marker`. */
function insertAfter(marker: string, insert: string): string {
  const at = SEED_SPEC.indexOf(marker);
  assert.ok(at >= 0, `the seed spec no longer contains ${JSON.stringify(marker)}`);
  return SEED_SPEC.slice(0, at + marker.length) + insert + SEED_SPEC.slice(at + marker.length);
}

/** Deterministic pseudo-random bytes (mulberry32). */
function randomBytes(n: number, seed: number): Uint8Array {
  const next = mulberry32(seed);
  const out = new Uint8Array(n);
  // The low byte of each 32-bit draw (next() is that draw / 2^32, exactly).
  for (let i = 0; i < n; i++) out[i] = (next() * 4294967296) & 0xff;
  return out;
}

function finished(r: CliRun, what: string): void {
  assert.notEqual(r.code, null, `${what}: vlmc did not finish (killed by the hang guard); stderr: ${r.stderr.slice(-500)}`);
  assert.doesNotMatch(r.stderr, /internal error/, `${what}: internal error`);
  assert.doesNotMatch(r.stderr, STACK_FRAME, `${what}: a stack trace on stderr`);
}

function parseJson(r: CliRun, what: string): JsonDoc {
  let doc: unknown;
  try {
    doc = JSON.parse(r.stdout);
  } catch (err) {
    assert.fail(`${what}: stdout is not one JSON document (${(err as Error).message}): ${r.stdout.slice(0, 300)}`);
  }
  assert.ok(typeof doc === "object" && doc !== null && Array.isArray((doc as JsonDoc).diagnostics), `${what}: no diagnostics array`);
  return doc as JsonDoc;
}

interface Expected {
  /** 1 when an error is expected, 0 when the file is clean or only warned about. */
  exit: 0 | 1;
  /** Codes that must be reported, each at least once. */
  codes: string[];
  /** At least one of these must be reported. */
  anyOf?: string[];
}

/**
 * Checks readable files, all in one `vlmc check` in text mode and one in JSON mode (a process
 * start costs more than most of these checks), then each file's findings.
 */
function checkContents(cases: { name: string; content: string | Uint8Array; expect: Expected }[]): JsonDoc {
  const files = cases.map((c) => write(c.name, c.content));
  const names = cases.map((c) => c.name).join(", ");
  const exit = Math.max(...cases.map((c) => c.expect.exit));

  const text = runVlmc(["check", ...files]);
  finished(text, `${names} (text)`);
  assert.equal(text.code, exit, `${names}: exit code; stderr: ${text.stderr.slice(0, 1500)}`);
  assert.equal(text.stdout, "", `${names}: text diagnostics go to stderr`);
  cases.forEach((c, i) => {
    for (const code of c.expect.codes) assert.match(text.stderr, new RegExp(`^(error|warning)\\[${code}\\]`, "m"), `${c.name}: ${code} expected in\n${text.stderr.slice(0, 1500)}`);
    if (c.expect.exit === 1) assert.ok(text.stderr.includes(` --> ${files[i]}:`), `${c.name}: no diagnostic points into it`);
  });

  const json = runVlmc(["check", "--format", "json", ...files]);
  finished(json, `${names} (json)`);
  assert.equal(json.code, exit, `${names} --format json: exit code`);
  assert.equal(json.stderr, "", `${names} --format json: nothing on stderr (no JSON there, no messages)`);
  const doc = parseJson(json, `${names} --format json`);
  assert.ok(doc.diagnostics.every((d) => files.includes(d.file)), `${names}: every diagnostic names a file that was checked`);
  cases.forEach((c, i) => {
    const mine = doc.diagnostics.filter((d) => d.file === files[i]);
    const codes = mine.map((d) => d.code);
    for (const code of c.expect.codes) assert.ok(codes.includes(code), `${c.name}: ${code} expected in JSON, got ${codes.join(" ")}`);
    if (c.expect.anyOf) assert.ok(c.expect.anyOf.some((x) => codes.includes(x)), `${c.name}: one of ${c.expect.anyOf.join(" ")} expected, got ${codes.join(" ")}`);
    const errors = mine.filter((d) => d.severity === "error").length;
    assert.equal(errors > 0, c.expect.exit === 1, `${c.name}: exit ${c.expect.exit} must mean ${c.expect.exit ? "some" : "no"} error; got ${codes.join(" ")}`);
    assert.ok(errors <= 101, `${c.name}: at most 101 errors, got ${errors}`);
  });
  return doc;
}

function checkContent(name: string, content: string | Uint8Array, expect: Expected): JsonDoc {
  return checkContents([{ name, content, expect }]);
}

/** An unreadable file or a wrong command line: exit 2, a short message, no stack trace. */
function usageError(r: CliRun, what: string, opts: { maxLines: number; mentions?: string }): void {
  finished(r, what);
  assert.equal(r.code, 2, `${what}: exit code; stderr: ${r.stderr}`);
  const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
  assert.ok(lines.length >= 1 && lines.length <= opts.maxLines, `${what}: expected ${opts.maxLines === 1 ? "exactly one line" : `1 to ${opts.maxLines} lines`} on stderr, got:\n${r.stderr}`);
  assert.ok(r.stderr.endsWith("\n"), `${what}: the message ends with a newline`);
  if (opts.mentions) assert.ok(r.stderr.includes(opts.mentions), `${what}: the message names ${opts.mentions}: ${r.stderr}`);
}

// ---- readable files: whatever they hold is diagnostics ----

test("an empty file is clean: no diagnostics, exit 0", () => {
  const doc = checkContent("empty.vlm", "", { exit: 0, codes: [] });
  assert.deepEqual(doc.diagnostics, []);
});

test("a file of only whitespace or comments: at most W0101, exit 0", () => {
  const doc = checkContents([
    { name: "blank.vlm", content: "\n\n   \t\n", expect: { exit: 0, codes: [] } },
    { name: "comment-only.vlm", content: "# nothing here yet\n", expect: { exit: 0, codes: [] } },
  ]);
  assert.ok(doc.diagnostics.every((d) => d.code === "W0101"), JSON.stringify(doc.diagnostics));
});

test("the seed spec cut inside a string: E0006 and E0102", () => {
  checkContent("cut-in-string.vlm", cutAfter('alphabet: "\\n !$&'), { exit: 1, codes: ["E0006", "E0102"] });
});

test("the seed spec cut inside a number: E0008 and E0102", () => {
  checkContents([
    { name: "cut-in-number.vlm", content: cutAfter("optimizer: adam(lr: 1e"), expect: { exit: 1, codes: ["E0008", "E0102"] } },
    { name: "cut-in-decimal.vlm", content: cutAfter("dropout: 0."), expect: { exit: 1, codes: ["E0008", "E0102"] } },
  ]);
});

test("the seed spec cut inside `->`: E0102, exit 1", () => {
  checkContent("cut-in-arrow.vlm", cutAfter("linear(2048) -"), { exit: 1, codes: ["E0102"] });
});

test("the seed spec cut at every 37th byte: never a crash; an error once the model has begun", () => {
  // One process for all cuts: the JSON document covers every file.
  const modelStart = SEED_SPEC.indexOf("model seemore {") + "model seemore {".length;
  const cuts: { file: string; at: number }[] = [];
  for (let at = 1; at < SEED_SPEC.length - 2; at += 37) cuts.push({ file: write(`cut-${at}.vlm`, SEED_SPEC.slice(0, at)), at });
  const r = runVlmc(["check", "--format", "json", ...cuts.map((c) => c.file)]);
  finished(r, "cuts");
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "");
  const doc = parseJson(r, "cuts");
  for (const { file, at } of cuts) {
    const errors = doc.diagnostics.filter((d) => d.file === file && d.severity === "error");
    // Before the model's `{` a cut may be clean (only comments and `vlm 0.1`); after it, never.
    if (at >= modelStart) assert.ok(errors.length > 0, `${file}: a spec cut inside its model has an error`);
  }
});

test("a binary file (random bytes): E0001/E0002, exit 1", () => {
  checkContent("random.bin.vlm", randomBytes(64 * 1024, 1), { exit: 1, codes: [], anyOf: ["E0001", "E0002"] });
});

test("a 10 MB text file: E0009 without parsing it, exit 1", () => {
  const line = "let width = 512   # a line of a spec that goes on and on\n";
  checkContent("huge.vlm", `vlm 0.1\n${line.repeat(Math.ceil((10 * MiB) / line.length))}`, { exit: 1, codes: ["E0009"] });
});

test("a 10 MB binary file: reported as binary, exit 1", () => {
  checkContent("huge.bin.vlm", randomBytes(10 * MiB, 2), { exit: 1, codes: [], anyOf: ["E0001", "E0002", "E0009"] });
});

test("a file just over 1 MiB of valid text: E0009", () => {
  const line = "let a = 1\n";
  checkContent("just-over.vlm", `vlm 0.1\n${line.repeat(Math.ceil(MiB / line.length) + 1)}`, { exit: 1, codes: ["E0009"] });
});

test("brackets nested 10,000 deep: E0104, no stack overflow", () => {
  const n = 10_000;
  const e0104: Expected = { exit: 1, codes: ["E0104"] };
  checkContents([
    { name: "deep-parens.vlm", content: `vlm 0.1\nlet a = ${"(".repeat(n)}1${")".repeat(n)}\n`, expect: e0104 },
    { name: "deep-braces.vlm", content: `vlm 0.1\nmodel m ${"{".repeat(n)}\n`, expect: e0104 },
    { name: "deep-brackets.vlm", content: `vlm 0.1\nmodel m { a: ${"[".repeat(n)}1${"]".repeat(n)} }\n`, expect: e0104 },
    { name: "deep-mixed.vlm", content: "([{".repeat(n), expect: e0104 },
  ]);
});

test("100,000 unary minuses: no stack overflow", () => {
  // Syntactically valid; an unused constant is clean.
  checkContent("minuses-unused.vlm", `vlm 0.1\nlet a = ${"-".repeat(100_000)}1\n`, { exit: 0, codes: [] });
  // Evaluated where a setting needs its value: an error (too deep to evaluate), not a crash.
  const spec = SEED_SPEC.replace("heads: 8\n    blocks", `heads: ${"-".repeat(100_000)}8\n    blocks`);
  assert.notEqual(spec, SEED_SPEC);
  checkContent("minuses-used.vlm", spec, { exit: 1, codes: [] });
});

test("1 MiB of tokens that are each an error: bounded, E0105 ends the list", () => {
  // Every token is a syntax error; the parser stops after a fixed number of them.
  checkContents([
    { name: "stray-arrows.vlm", content: `vlm 0.1\nmodel m { a ${"-> ".repeat(200_000)}}\n`, expect: { exit: 1, codes: ["E0101", "E0105"] } },
    { name: "stray-dots.vlm", content: `vlm 0.1\nmodel m { a ${".".repeat(250_000)}}\n`, expect: { exit: 1, codes: ["E0101", "E0105"] } },
    { name: "stray-closers.vlm", content: "}\n".repeat(200_000), expect: { exit: 1, codes: ["E0103", "E0105"] } },
  ]);
});

test("1 MiB of valid separators: more tokens than a spec can have, E0009", () => {
  // Under the byte limit, but a million tokens would take seconds to parse.
  checkContent("semicolons.vlm", ";".repeat(MiB - 100), { exit: 1, codes: ["E0009"] });
});

test("a file full of unknown characters (200 KB): E0005, exit 1", () => {
  const unit = "@é😀$'“";
  checkContents([
    { name: "unknown-chars.vlm", content: unit.repeat(Math.ceil((200 * 1024) / Buffer.byteLength(unit))), expect: { exit: 1, codes: ["E0005"] } },
    { name: "unknown-chars-lines.vlm", content: "@ é\n".repeat(50_000), expect: { exit: 1, codes: ["E0005", "E0105"] } },
  ]);
});

test("a byte-order mark: E0003", () => {
  checkContent("bom.vlm", `\uFEFF${SEED_SPEC}`, { exit: 1, codes: ["E0003"] });
});

test("a bidi control inside a comment: E0004", () => {
  checkContent("bidi-comment.vlm", insertAfter("# the seed scales by", " \u202E C**-0.5 \u2066reversed\u2069"), { exit: 1, codes: ["E0004"] });
});

test("a bidi control inside a string: E0004", () => {
  checkContent("bidi-string.vlm", insertAfter('alphabet: "', "\u2066"), { exit: 1, codes: ["E0004"] });
});

test("a NUL byte: E0002", () => {
  checkContent("nul.vlm", insertAfter("patch: 16", "\0"), { exit: 1, codes: ["E0002"] });
});

test("invalid UTF-8 in a comment: E0001", () => {
  const [head, tail] = [SEED_SPEC.slice(0, SEED_SPEC.indexOf("\n") + 1), SEED_SPEC.slice(SEED_SPEC.indexOf("\n") + 1)];
  const enc = new TextEncoder();
  // `# caf\xE9`: Latin-1 "é" in a comment, then an overlong and a truncated sequence.
  const bytes = new Uint8Array([...enc.encode(head), ...enc.encode("# caf"), 0xe9, 0x20, 0xc0, 0x80, 0x20, 0xe2, 0x82, 0x0a, ...enc.encode(tail)]);
  checkContent("latin1-comment.vlm", bytes, { exit: 1, codes: ["E0001"] });
});

test("CR-only line ends and a form feed: still parsed", () => {
  checkContents([
    { name: "cr-only.vlm", content: SEED_SPEC.replace(/\n/g, "\r"), expect: { exit: 0, codes: [] } },
    { name: "form-feed.vlm", content: SEED_SPEC.replace("\n\ntrain", "\n\f\ntrain"), expect: { exit: 0, codes: [] } },
  ]);
});

test("a device that never ends (/dev/zero): read up to the limit, reported, exit 1", (t) => {
  if (!existsSync("/dev/zero")) {
    t.skip("no /dev/zero here");
    return;
  }
  const r = runVlmc(["check", "--format", "json", "/dev/zero"]);
  finished(r, "/dev/zero");
  assert.equal(r.code, 1, r.stderr);
  const codes = parseJson(r, "/dev/zero").diagnostics.map((d) => d.code);
  assert.ok(codes.includes("E0002") || codes.includes("E0009"), codes.join(" "));
});

test("a pipe (/dev/stdin): read to its end and checked", (t) => {
  if (process.platform !== "linux" || !existsSync("/bin/sh")) {
    t.skip("/dev/stdin as a path is checked on Linux only");
    return;
  }
  // Through a shell pipe: node's own stdin `input` is a socket, which /dev/stdin cannot open.
  const file = write("piped.vlm", "vlm 0.1\nmodel m {\n");
  const sh = spawnSync("/bin/sh", ["-c", 'cat "$0" | "$1" "$2" check --format json /dev/stdin', file, process.execPath, vlmcBin], {
    cwd: repoRoot,
    encoding: "utf8",
    timeout: 60_000,
  });
  const r: CliRun = { code: sh.status, stdout: sh.stdout, stderr: sh.stderr };
  finished(r, "/dev/stdin");
  assert.equal(r.code, 1, r.stderr);
  assert.deepEqual(parseJson(r, "/dev/stdin").diagnostics.map((d) => d.code), ["E0102"]);
});

// ---- unreadable files: exit 2, one line ----

test("a missing file: exit 2, one line, no stack trace", () => {
  const r = runVlmc(["check", join(dir, "does-not-exist.vlm")]);
  usageError(r, "missing file", { maxLines: 1, mentions: "does-not-exist.vlm" });
  assert.equal(r.stdout, "");
});

test("a directory: exit 2, one line", () => {
  const sub = join(dir, "a-directory.vlm");
  mkdirSync(sub, { recursive: true });
  usageError(runVlmc(["check", sub]), "directory", { maxLines: 1, mentions: "a-directory.vlm" });
  usageError(runVlmc(["check", "specs"]), "the specs directory", { maxLines: 1, mentions: "specs" });
});

test("a nonexistent nested path: exit 2, one line", () => {
  usageError(runVlmc(["check", join(dir, "no", "such", "dir", "x.vlm")]), "nested missing path", { maxLines: 1, mentions: "x.vlm" });
  // A path through a file, as if it were a directory.
  usageError(runVlmc(["check", "specs/seemore.vlm/x.vlm"]), "path through a file", { maxLines: 1, mentions: "specs/seemore.vlm/x.vlm" });
});

test("permission denied: exit 2, one line", (t) => {
  if (process.getuid?.() === 0) {
    t.skip("running as root: every file is readable");
    return;
  }
  if (process.platform === "win32") {
    t.skip("no POSIX permissions");
    return;
  }
  const p = write("secret.vlm", SEED_SPEC);
  chmodSync(p, 0o000);
  try {
    usageError(runVlmc(["check", p]), "permission denied", { maxLines: 1, mentions: "secret.vlm" });
  } finally {
    chmodSync(p, 0o600);
  }
});

test("a missing file next to a valid one: exit 2; the valid one is still checked", () => {
  const missing = join(dir, "missing.vlm");
  const text = runVlmc(["check", missing, "specs/seemore.vlm"]);
  usageError(text, "missing + valid (text)", { maxLines: 1, mentions: "missing.vlm" });
  assert.equal(text.stdout, "");

  const json = runVlmc(["check", "--format", "json", "specs/seemore.vlm", missing]);
  usageError(json, "missing + valid (json)", { maxLines: 1, mentions: "missing.vlm" });
  assert.ok(!json.stderr.includes("{"), "no JSON on stderr");
  assert.deepEqual(parseJson(json, "missing + valid (json)").diagnostics, []);

  // With a file that has errors, the unreadable file still decides the exit code.
  const bad = write("bad.vlm", cutAfter("model seemore {"));
  const mixed = runVlmc(["check", "--format", "json", bad, missing]);
  finished(mixed, "missing + broken");
  assert.equal(mixed.code, 2);
  assert.ok(parseJson(mixed, "missing + broken").diagnostics.some((d) => d.code === "E0102"));
});

// ---- a wrong command line: exit 2, a short message ----

test("an unknown option: exit 2, a short message", () => {
  usageError(runVlmc(["check", "--bogus", "specs/seemore.vlm"]), "unknown option", { maxLines: 3, mentions: "--bogus" });
  usageError(runVlmc(["check", "--formt", "json", "specs/seemore.vlm"]), "misspelt option", { maxLines: 3, mentions: "--formt" });
  usageError(runVlmc(["check", "--format", "xml", "specs/seemore.vlm"]), "bad --format value", { maxLines: 3, mentions: "xml" });
});

test("an unknown command: exit 2, a short message", () => {
  usageError(runVlmc(["frobnicate", "specs/seemore.vlm"]), "unknown command", { maxLines: 3, mentions: "frobnicate" });
});

test("check without files: exit 2, a short message", () => {
  usageError(runVlmc(["check"]), "check without files", { maxLines: 3 });
  usageError(runVlmc(["check", "--format", "json"]), "check --format json without files", { maxLines: 3 });
});

// ---- bad data rows at train time: exit 1, one line naming file:line ----

test("vlmc train: a corrupt image under bad_rows: \"fail\", and a missing data file: exit 1, file:line, no stack trace", () => {
  const sub = join(dir, "bad-rows");
  mkdirSync(sub, { recursive: true });
  writeFileSync(join(sub, "fake.png"), "not a png\n");
  writeFileSync(join(sub, "pairs.jsonl"), `${JSON.stringify({ image: "fake.png", caption: "a fake" })}\n`);
  const spec = (data: string) => `vlm 0.1
model m {
  tokenizer chars { alphabet: "abcdefghijklmnopqrstuvwxyz ", specials: [pad, bos, eos] }
  encoder vit { image: 8 x 8 x 3, patch: 4, dim: 8, heads: 2, blocks: 1 }
  projector { linear(decoder.dim) }
  decoder gpt { dim: 8, heads: 2, layers: 1, context: 32 }
}
train {
  data: ${data}
  batch: 2
  stage all { train: [encoder, projector, decoder], steps: 1 }
}
`;
  writeFileSync(join(sub, "fail.vlm"), spec('captions("pairs.jsonl", bad_rows: "fail")'));
  const r = runVlmc(["train", join(sub, "fail.vlm"), "--out", join(sub, "run1"), "--quiet"]);
  assert.equal(r.code, 1, r.stderr);
  assert.doesNotMatch(r.stderr, STACK_FRAME);
  const err = r.stderr.split("\n").filter((l) => l.startsWith("vlmc: error:"));
  assert.equal(err.length, 1, r.stderr);
  assert.match(err[0]!, /pairs\.jsonl:1: .*fake\.png: not a valid PNG file/);

  writeFileSync(join(sub, "gone.vlm"), spec('csv("gone.csv")'));
  const g = runVlmc(["train", join(sub, "gone.vlm"), "--out", join(sub, "run2"), "--quiet"]);
  assert.equal(g.code, 1, g.stderr);
  assert.doesNotMatch(g.stderr, STACK_FRAME);
  assert.match(g.stderr, /warning\[W0504\]: data file `gone\.csv` not found/);
  assert.match(g.stderr, /vlmc: error: .*gone\.csv: no such file: the data file is needed to train/);
});

// ---- vlmc generate: a bad run folder, image or prompt is one line before any model runs ----

test("vlmc generate: a missing run, weights of another spec, bad images, a bad prompt: one line, exit 2 or 1", async () => {
  const { generateSpec, makeGenerateRun, randomWeights, compileSpec, writePicture } = await import("./helpers/generate-run.js");
  const sub = join(dir, "generate");
  const run = join(sub, "run");
  makeGenerateRun(run);
  const picture = join(sub, "ok.png");
  await writePicture(picture, 20, 12, 1);
  const oneLine = (r: CliRun, what: string, code: number, pattern: RegExp) => {
    finished(r, what);
    assert.equal(r.code, code, `${what}: exit code; stderr: ${r.stderr}`);
    assert.equal(r.stdout, "", `${what}: nothing on stdout`);
    const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
    assert.equal(lines.length, 1, `${what}: one line on stderr, got:\n${r.stderr}`);
    assert.match(lines[0]!, pattern, what);
  };
  const gen = (...args: string[]) => runVlmc(["generate", "--run", run, ...args]);
  oneLine(runVlmc(["generate", "--run", join(sub, "absent"), "--image", picture]), "missing run", 2, /^vlmc: error: .*absent: no such run folder$/);
  oneLine(gen("--image", join(sub, "gone.png")), "missing image", 2, /^vlmc: error: .*gone\.png: no such file$/);
  writeFileSync(join(sub, "broken.png"), "not a png\n");
  oneLine(gen("--image", picture, join(sub, "broken.png")), "corrupt image", 1, /^vlmc: error: .*broken\.png: not a valid PNG file/);
  // The context is 24 positions, 4 of them visual: bos and 20 characters is one too many.
  oneLine(gen("--image", picture, "--prompt", "abcdefghijabcdefghij"), "prompt too long", 2, /--prompt: the prompt takes 21 tokens, more than the 20 .*context of 24 .* 4 visual tokens/);
  oneLine(gen("--image", picture, "--prompt", "xyz"), "prompt outside the alphabet", 2, /^vlmc: error: --prompt: .*"x"/);
  oneLine(gen("--image", picture, "--top-p", "0"), "bad --top-p", 2, /--top-p/);
  // Weights written for another spec (a wider context: other position table, other hash), but
  // of the same tensors' names: the hash in the file's metadata gives it away.
  const other = compileSpec(sub, generateSpec({ context: 30 }));
  writeFileSync(join(run, "weights.safetensors"), randomWeights(other, 1));
  oneLine(gen("--image", picture), "weights of another spec", 1, /weights\.safetensors was written for another spec \(sha256:.*\) than .*ir\.json .*: the run folder's files do not belong together$/);
});
