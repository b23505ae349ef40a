// `vlmc forward` end to end, as a user runs it (the real bin in a child process) on a small
// spec (test/fixtures/forward/tiny.vlm): the statistics it prints, --save-weights writing the
// same bytes twice and loading back to the same logits, weights overriding the seed's, IR
// input, damaged weights files rejected naming the tensor (exit 1, no stack trace), and the
// Hugging Face GPT-2 checkpoint of ../shared (skipped without it).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hfGpt2SpecText, readHfGpt2Config } from "../runtime/hf-gpt2.js";
import { encodeSafetensors, readSafetensors, type TensorToWrite } from "../runtime/safetensors.js";
import { logitStats } from "../cli/commands/forward.js";
import { runVlmc } from "./helpers/cli.js";
import { repoPath } from "./helpers/paths.js";

const SPEC = repoPath("test", "fixtures", "forward", "tiny.vlm");
/** The backend line, with or without the native accelerator (test/native.test.ts covers that part). */
const WASM_LINE = /^backend: wasm \(requested\)( \+ native matmul \(\w+, \d+ threads?\)|; native accelerator .*)?$/m;
const HF = repoPath("..", "shared", "data", "hf-gpt2-tiny");
const hfAbsent = existsSync(join(HF, "model.safetensors")) ? false : `${HF} is absent (a clone without ../shared)`;
const dir = mkdtempSync(join(tmpdir(), "vlmc-forward-"));
after(() => rmSync(dir, { recursive: true, force: true }));

interface ForwardJson {
  backend: { name: string; reason: string };
  model: string;
  hash: string;
  parameters: number;
  tensors: number;
  seed: number;
  input_seed: number;
  weights: { file: string; module: string | null; convention: string }[];
  inputs: { images: number[] | null; tokens: number[] };
  logits: { shape: number[]; min: number; max: number; mean: number; std: number; nan: number; inf: number };
  loss: number;
  ms: { forward: number };
  shape_checks: boolean;
  saved: { path: string; bytes: number } | null;
}

/** Runs `vlmc forward ... --format json --backend wasm` in `dir`; asserts exit 0. */
function forward(args: string[]): ForwardJson {
  const r = runVlmc(["forward", ...args, "--format", "json", "--backend", "wasm"], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, WASM_LINE);
  return JSON.parse(r.stdout) as ForwardJson;
}

/** What must agree between two runs for "the same logits". */
const numbers = (j: ForwardJson) => ({ logits: j.logits, loss: j.loss });

test("logitStats: finite values only; NaN and infinities counted", () => {
  const s = logitStats(Float32Array.from([1, 2, 3, NaN, Infinity, -Infinity]), [6]);
  assert.deepEqual(s, { shape: [6], min: 1, max: 3, mean: 2, std: Math.sqrt(2 / 3), nan: 1, inf: 2 });
  assert.deepEqual(logitStats(Float32Array.from([NaN]), [1]), { shape: [1], min: null, max: null, mean: null, std: null, nan: 1, inf: 0 });
});

test("text output: the backend line, the logits' shape and statistics, the loss, the time", () => {
  const r = runVlmc(["forward", SPEC, "--backend", "wasm", "--batch", "3", "--text", "5", "--seed", "4", "--runs", "2"], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  const lines = r.stdout.split("\n");
  assert.match(lines[0]!, WASM_LINE);
  assert.match(r.stdout, /^model: tiny \(hash [0-9a-f]{12}\), [\d,]+ parameters in \d+ tensors$/m);
  assert.match(r.stdout, /^weights: initialised from seed 4; files: none loaded$/m);
  assert.match(r.stdout, /^input: images \[3, 16, 16, 3\] uniform in \[0, 1\), tokens \[3, 5\] uniform in \[0, 12\), seed 4$/m);
  assert.match(r.stdout, /^logits: \[3, 6, 12\]$/m); // 1 visual token (the CLS) + 5 text
  assert.match(r.stdout, /^ {2}min -?[\d.e-]+ {2}max -?[\d.e-]+ {2}mean -?[\d.e-]+ {2}std [\d.e-]+ {2}NaN 0 {2}Inf 0$/m);
  assert.match(r.stdout, /^loss: [\d.]+ against random targets \(ln 12 = 2\.48491\)$/m);
  assert.match(r.stdout, /^time: forward [\d.]+ ms \(first pass, shape checks on\); 1 more: mean [\d.]+ ms, min [\d.]+ ms$/m);
});

test("--save-weights: the same bytes twice; loading them back gives the same logits; loaded weights override the seed's", () => {
  const a = forward([SPEC, "--seed", "6", "--input-seed", "5", "--save-weights", "w6.safetensors"]);
  const b = forward([SPEC, "--seed", "6", "--input-seed", "5", "--save-weights", "w6-again.safetensors"]);
  assert.deepEqual(a.saved, { path: "w6.safetensors", bytes: a.saved!.bytes });
  assert.ok(readFileSync(join(dir, "w6.safetensors")).equals(readFileSync(join(dir, "w6-again.safetensors"))), "two saves of the same spec and seed differ");
  assert.deepEqual(numbers(a), numbers(b));
  assert.equal(a.logits.nan + a.logits.inf, 0);
  assert.deepEqual(a.logits.shape, [2, 17, 12]);
  assert.equal(a.shape_checks, true);
  // The file holds every parameter, named as in the IR, with the spec's hash.
  const f = readSafetensors(join(dir, "w6.safetensors"));
  assert.ok(f.ok);
  assert.equal(f.tensors.size, a.tensors);
  assert.equal(f.header.metadata["vlmc.hash"], a.hash);
  assert.ok(f.tensors.has("decoder.blocks.0.attn.q.weight") && f.tensors.has("encoder.patch_embed.weight"));

  // Seed 5's own weights on the same input differ; seed 6's, loaded, give seed 6's logits exactly.
  const own = forward([SPEC, "--seed", "5"]);
  assert.notDeepEqual(numbers(own), numbers(a));
  const loaded = forward([SPEC, "--seed", "5", "--weights", "w6.safetensors", "--save-weights", "w6-resaved.safetensors"]);
  assert.deepEqual(numbers(loaded), numbers(a));
  assert.deepEqual(loaded.weights, [{ file: "w6.safetensors", module: null, convention: "vlmc" }]);
  assert.ok(readFileSync(join(dir, "w6.safetensors")).equals(readFileSync(join(dir, "w6-resaved.safetensors"))), "loaded then saved: not the same bytes");
});

test("an IR document runs as its spec does", () => {
  const c = runVlmc(["compile", SPEC, "-o", "tiny.ir.json"], { cwd: dir });
  assert.equal(c.code, 0, c.stderr);
  assert.deepEqual(numbers(forward(["tiny.ir.json", "--seed", "2"])), numbers(forward([SPEC, "--seed", "2"])));
});

/** The saved weights of seed 1, damaged by `edit`. */
function damaged(name: string, edit: (ts: TensorToWrite[]) => TensorToWrite[]): string {
  forward([SPEC, "--seed", "1", "--save-weights", "w1.safetensors"]);
  const f = readSafetensors(join(dir, "w1.safetensors"));
  assert.ok(f.ok);
  const ts = [...f.tensors.values()].map((t) => ({ name: t.name, dtype: "F32" as const, shape: t.shape, data: t.data as Float32Array }));
  writeFileSync(join(dir, name), encodeSafetensors(edit(ts)));
  return name;
}

test("a weights file that does not fit: exit 1, every tensor named, no stack trace, nothing printed as if it ran", () => {
  const bad = damaged("bad.safetensors", (ts) =>
    ts.filter((t) => t.name !== "decoder.ln_f.bias").map((t) => (t.name === "projector.0.weight" ? { ...t, shape: [32, 16], data: t.data.slice(0, 512) as Float32Array } : t)),
  );
  const r = runVlmc(["forward", SPEC, "--backend", "wasm", "--weights", bad], { cwd: dir });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^vlmc: error: bad\.safetensors does not fit the model `tiny`; nothing was loaded from it:$/m);
  assert.match(r.stderr, /^ {2}- parameter `decoder\.ln_f\.bias` \[16\] has no tensor in the file$/m);
  assert.match(r.stderr, /^ {2}- `projector\.0\.weight` has shape \[32, 16\] in the file, the spec makes it \[16, 32\]$/m);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
  assert.doesNotMatch(r.stdout, /logits/);

  // Not safetensors at all: the same, naming what is wrong.
  writeFileSync(join(dir, "junk.safetensors"), "not a safetensors file");
  const j = runVlmc(["forward", SPEC, "--backend", "wasm", "--weights", "junk.safetensors"], { cwd: dir });
  assert.equal(j.code, 1, j.stderr);
  assert.match(j.stderr, /junk\.safetensors does not fit/);
  assert.doesNotMatch(j.stderr, /^\s+at /m);

  // A file that is not there is a bad command line: exit 2, before any backend starts.
  const gone = runVlmc(["forward", SPEC, "--weights", "gone.safetensors"], { cwd: dir });
  assert.equal(gone.code, 2);
  assert.equal(gone.stderr, "vlmc: error: gone.safetensors: no such file\n");
});

test("diagnostics as `check` renders them (exit 1); --text past the budget and bad numbers are usage errors (exit 2)", () => {
  writeFileSync(join(dir, "broken.vlm"), readFileSync(SPEC, "utf8").replace("heads: 2\n    layers: 1", "heads: 3\n    layers: 1"));
  const r = runVlmc(["forward", "broken.vlm"], { cwd: dir });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error\[E\d{4}\]: /m);
  assert.match(r.stderr, /--> broken\.vlm:\d+:\d+/);
  assert.equal(r.stdout, "");
  const t = runVlmc(["forward", SPEC, "--text", "24"], { cwd: dir });
  assert.equal(t.code, 2);
  assert.equal(t.stderr, "vlmc: error: --text 24 is more than the decoder's text budget of 23 tokens (context 24 - 1 visual)\n");
  assert.equal(runVlmc(["forward", SPEC, "--batch", "0"], { cwd: dir }).code, 2);
  assert.equal(runVlmc(["forward", SPEC, "--seed", "-1"], { cwd: dir }).code, 2);
});

test("the Hugging Face GPT-2 checkpoint: as --weights, as the spec's `weights:`, and damaged", { skip: hfAbsent }, () => {
  const config = readHfGpt2Config(join(HF, "config.json"));
  const model = join(HF, "model.safetensors");
  writeFileSync(join(dir, "hf.vlm"), hfGpt2SpecText(config, { model: "hf_tiny", context: 64 }));
  writeFileSync(join(dir, "hf-weights.vlm"), hfGpt2SpecText(config, { model: "hf_tiny", context: 64, weights: model }));
  const a = forward(["hf.vlm", "--weights", model, "--text", "12", "--save-weights", "hf-saved.safetensors"]);
  assert.deepEqual(a.weights.map((w) => w.convention), ["hf-gpt2"]);
  assert.deepEqual(a.logits.shape, [2, 12, 50257]);
  const b = forward(["hf-weights.vlm", "--text", "12"]);
  assert.deepEqual(b.weights.map((w) => [w.module, w.convention]), [["decoder", "hf-gpt2"]]);
  assert.deepEqual(numbers(b), numbers(a));
  // Saved with vlmc's names, loaded back: the same logits.
  assert.deepEqual(numbers(forward(["hf.vlm", "--weights", "hf-saved.safetensors", "--text", "12", "--seed", "9", "--input-seed", "0"])), numbers(a));

  const f = readSafetensors(model);
  assert.ok(f.ok);
  const ts = [...f.tensors.values()].map((t) => ({ name: t.name, dtype: "F32" as const, shape: t.shape, data: t.data as Float32Array }));
  writeFileSync(join(dir, "hf-bad.safetensors"), encodeSafetensors(ts.map((t) => (t.name === "transformer.h.0.attn.c_attn.weight" ? { ...t, shape: [3, 4] } : t))));
  const r = runVlmc(["forward", "hf.vlm", "--backend", "wasm", "--weights", "hf-bad.safetensors"], { cwd: dir });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /`transformer\.h\.0\.attn\.c_attn\.weight` \(parameter `decoder\.blocks\.0\.attn\.\{q,k,v\}\.weight`\) has shape \[3, 4\] in the file \(q, k and v side by side\), the spec needs \[2, 6\]/);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
});
