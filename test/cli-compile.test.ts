// `vlmc compile` end to end, and `vlmc check` of IR documents: exit codes, stdout holding only
// the document, atomic -o files, and paths that resolve to the same files wherever the
// document is written.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { compile } from "../compiler/compile.js";
import { encodeSafetensors } from "../runtime/safetensors.js";
import { resolveIrPath } from "../compiler/ir/paths.js";
import type { Ir } from "../compiler/ir/types.js";
import { parseIr, readIr } from "../compiler/ir/validate.js";
import { runVlmc } from "./helpers/cli.js";
import { repoPath, repoRoot } from "./helpers/paths.js";

const SEEMORE = "specs/seemore.vlm";
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "vlmc-compile-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The seed spec with a pretrained projector and a captions file, in a folder of its own. */
function specWithFiles(): string {
  const dir = tempDir();
  mkdirSync(join(dir, "weights"));
  mkdirSync(join(dir, "data"));
  // A valid weights file for the projector: `check` reads its header against the spec (E07xx).
  const params = compile(repoPath(SEEMORE)).ir!.modules.projector!.layers.flatMap((l) => l.params);
  const tensors = params.map((p) => ({ name: p.name, dtype: "F16" as const, shape: p.shape, data: new Uint16Array(p.shape.reduce((a, d) => a * d, 1)) }));
  writeFileSync(join(dir, "weights", "proj.safetensors"), encodeSafetensors(tensors));
  writeFileSync(join(dir, "data", "caps.jsonl"), "");
  const spec = readFileSync(repoPath(SEEMORE), "utf8")
    .replace("    linear(2048) -> gelu", '    weights: "weights/proj.safetensors"\n    linear(2048) -> gelu')
    .replace(/ {2}data: shapes\([^)]*\)/, '  data: captions(file: "data/caps.jsonl")');
  assert.match(spec, /captions/);
  writeFileSync(join(dir, "spec.vlm"), spec);
  return dir;
}

/** Every path in the document, resolved against its folder. */
function absolutePaths(ir: Ir, baseDir: string): string[] {
  return [
    resolveIrPath(baseDir, ir.modules.projector!.weights!),
    resolveIrPath(baseDir, ir.train!.data.file as string),
    resolveIrPath(baseDir, ir.train!.stages[0]!.data.file as string),
    resolveIrPath(baseDir, ir.span!.file),
    resolveIrPath(baseDir, ir.modules.encoder!.layers[0]!.span!.file),
  ];
}

test("compile --emit yaml writes the document, and only it, to stdout", () => {
  const r = runVlmc(["compile", SEEMORE, "--emit", "yaml"]);
  assert.equal(r.stderr, "");
  assert.equal(r.code, 0);
  const back = parseIr(repoPath("stdout.yaml"), r.stdout);
  assert.deepEqual(back.diagnostics, []);
  assert.deepEqual(back.ir, clone(compile(repoPath(SEEMORE), { baseDir: repoRoot }).ir));
  assert.match(r.stdout, /^vlmc_ir: 1\n/);
});

test("compile writes JSON by default", () => {
  const r = runVlmc(["compile", SEEMORE]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  assert.deepEqual(JSON.parse(r.stdout), clone(compile(repoPath(SEEMORE), { baseDir: repoRoot }).ir));
});

test("compile -o writes atomically, and paths resolve to the spec's files wherever the IR is written", () => {
  const dir = specWithFiles();
  const expected = [join(dir, "weights", "proj.safetensors"), join(dir, "data", "caps.jsonl"), join(dir, "data", "caps.jsonl"), join(dir, "spec.vlm"), join(dir, "spec.vlm")];

  const r = runVlmc(["compile", "spec.vlm", "-o", "sub/dir/m.yaml"], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "");
  assert.deepEqual(readdirSync(join(dir, "sub", "dir")), ["m.yaml"], "no temporary file is left behind");
  const yaml = readIr(join(dir, "sub", "dir", "m.yaml"));
  assert.deepEqual(yaml.diagnostics, []);
  assert.equal(yaml.baseDir, resolve(dir, "sub", "dir"));
  assert.deepEqual(absolutePaths(yaml.ir!, yaml.baseDir), expected);
  assert.equal(yaml.ir!.modules.projector!.weights, "../../weights/proj.safetensors");

  // Re-emitted from the YAML, elsewhere: the paths are re-based.
  const again = runVlmc(["compile", "sub/dir/m.yaml", "-o", "other/x.json"], { cwd: dir });
  assert.equal(again.code, 0, again.stderr);
  const json = readIr(join(dir, "other", "x.json"));
  assert.deepEqual(json.diagnostics, []);
  assert.deepEqual(absolutePaths(json.ir!, json.baseDir), expected);
  assert.equal(json.ir!.hash, yaml.ir!.hash);

  // --emit follows the extension of -o unless given; an existing file is replaced.
  const emitted = runVlmc(["compile", "spec.vlm", "-o", "other/x.json", "--emit", "yaml"], { cwd: dir });
  assert.equal(emitted.code, 0, emitted.stderr);
  assert.match(readFileSync(join(dir, "other", "x.json"), "utf8"), /^vlmc_ir: 1\n/);
  assert.deepEqual(readdirSync(join(dir, "other")), ["x.json"]);

  const checked = runVlmc(["check", "sub/dir/m.yaml", "other/x.json"], { cwd: dir });
  assert.equal(checked.code, 0, checked.stderr);
  assert.equal(checked.stderr, "");
});

test("check and compile of a corrupted IR report file:line:col and exit 1", () => {
  const dir = tempDir();
  const text = runVlmc(["compile", repoPath(SEEMORE), "--emit", "yaml"], { cwd: dir }).stdout;
  const lines = text.split("\n");
  const at = lines.findIndex((l) => l.includes("shape: [2048, 128]")) + 1;
  assert.ok(at > 0);
  writeFileSync(join(dir, "bad.yaml"), text.replace("shape: [2048, 128]", "shape: [2048, 129]"));

  const checked = runVlmc(["check", "bad.yaml"], { cwd: dir });
  assert.equal(checked.code, 1);
  assert.equal(checked.stdout, "");
  assert.match(checked.stderr, new RegExp(`error\\[E0601\\]: parameter \`projector\\.2\\.weight\` is recorded as \\[2048, 129\\]`));
  assert.match(checked.stderr, new RegExp(`--> bad\\.yaml:${at}:\\d+`));

  const json = runVlmc(["check", "--format", "json", "bad.yaml"], { cwd: dir });
  assert.equal(json.code, 1);
  const doc = JSON.parse(json.stdout) as { diagnostics: { code: string; file: string; line: number }[] };
  assert.deepEqual(
    doc.diagnostics.map((d) => [d.code, d.file, d.line]),
    [["E0601", "bad.yaml", at]],
  );

  const compiled = runVlmc(["compile", "bad.yaml", "-o", "out.json", "--format", "json"], { cwd: dir });
  assert.equal(compiled.code, 1);
  assert.equal(compiled.stdout, "");
  assert.equal(existsSync(join(dir, "out.json")), false);
  assert.equal((JSON.parse(compiled.stderr) as { diagnostics: unknown[] }).diagnostics.length, 1);

  writeFileSync(join(dir, "old.yaml"), text.replace("vlmc_ir: 1", "vlmc_ir: 2"));
  const old = runVlmc(["check", "old.yaml"], { cwd: dir });
  assert.equal(old.code, 1);
  assert.match(old.stderr, /error\[E0602\]: IR version 2 .*\n --> old\.yaml:1:10/);
});

test("compile exit codes: errors in the spec 1, unreadable input or bad command line 2", () => {
  const dir = tempDir();
  writeFileSync(join(dir, "bad.vlm"), readFileSync(repoPath(SEEMORE), "utf8").replace("heads: 8\n    blocks", "heads: 7\n    blocks"));
  const bad = runVlmc(["compile", "bad.vlm", "--emit", "yaml"], { cwd: dir });
  assert.equal(bad.code, 1);
  assert.equal(bad.stdout, "");
  assert.match(bad.stderr, /error\[E0302\]/);

  const missing = runVlmc(["compile", "nope.vlm"], { cwd: dir });
  assert.equal(missing.code, 2);
  assert.equal(missing.stdout, "");
  assert.match(missing.stderr, /^vlmc: error: nope\.vlm: no such file\n$/);
  assert.equal(runVlmc(["compile", "nope.yaml"], { cwd: dir }).code, 2);
  assert.equal(runVlmc(["compile", repoPath(SEEMORE), "--emit", "xml"], { cwd: dir }).code, 2);
  assert.equal(runVlmc(["compile"], { cwd: dir }).code, 2);

  const model = runVlmc(["compile", repoPath(SEEMORE), "--model", "nosuch"], { cwd: dir });
  assert.equal(model.code, 1);
  assert.match(model.stderr, /error\[E0212\]: no model named `nosuch`/);

  mkdirSync(join(dir, "taken"));
  const unwritable = runVlmc(["compile", repoPath(SEEMORE), "-o", "taken"], { cwd: dir });
  assert.equal(unwritable.code, 2);
  assert.match(unwritable.stderr, /^vlmc: error: cannot write taken: /);
  assert.deepEqual(readdirSync(dir).sort(), ["bad.vlm", "taken"]);
});
