// `vlmc export --format tfjs` (runtime/export/tfjs.ts): a vision model's run (encoder, projector,
// decoder, every parameter random) is exported; the folder has tfjs's ModelArtifacts layout
// (model.json with format, generatedBy, convertedBy, the IR as modelTopology, a weightsManifest of
// float32 weights in group1-shardNofM.bin shards of at most 4 MiB); read back through a tf.io
// handler and tf.io.decodeWeights (`loadTfjsExport`) it gives every parameter exactly and
// bit-equal logits; the standalone module written beside it (model.js, from `vlmc compile --emit
// ts`), loading the folder with tf.io.http itself, gives the runtime's logits within the bound of
// test/emit-ts.test.ts. Also: tensors straddling shards, a damaged folder's one-line errors, a
// tokenizer the module cannot hold (exported without the module, with a note), usage errors.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type * as Tfjs from "@tensorflow/tfjs";
import type { Ir, IrBpeTokenizer } from "../compiler/ir/types.js";
import { initBackend, type Tf } from "../runtime/backend.js";
import { exportTfjs, loadTfjsExport, SHARD_BYTES, shardNames, TfjsExportError } from "../runtime/export/tfjs.js";
import { irParams, Model } from "../runtime/model.js";
import { CharTokenizer } from "../runtime/tokenizer.js";
import { saveRunTokenizer, trainBpeTokenizer } from "../runtime/tokenizers/load.js";
import { assignValues } from "../runtime/weights.js";
import { runVlmc } from "./helpers/cli.js";
import { relError } from "./helpers/numeric.js";
import { makeRandomRun } from "./helpers/random-run.js";
import { repoPath } from "./helpers/paths.js";

const dir = mkdtempSync(join(tmpdir(), "vlmc-export-tfjs-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const ALPHABET = " abcdefghilmnoqrstuwy";
const tok = new CharTokenizer({ alphabet: ALPHABET, specials: ["pad", "bos", "eos"] });

const SPEC = `vlm 0.1
model vision {
  tokenizer chars { alphabet: "${ALPHABET}", specials: [pad, bos, eos] }
  encoder vit { image: 16 x 16 x 3, patch: 8, dim: 16, heads: 2, blocks: 1, cls: false, output: patches, normalize: stats(mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3]) }
  projector { linear(2 * encoder.dim) -> gelu -> linear(decoder.dim) }
  decoder gpt { dim: 16, heads: 2, layers: 2, context: 24, position: rope }
}
train {
  data: shapes(images: 64, size: 16, seed: 3)
  stage all { train: [encoder, projector, decoder], steps: 1 }
}
`;

const makeRun = (name: string, text: string, seed: number) => makeRandomRun(dir, name, text, seed, tok);

let tf: Tf;
let main: { run: string; ir: Ir; values: Map<string, Float32Array>; out: string; stdout: string };
/** The original model's logits on `inputs`. */
let want: Float32Array;
let images: Tfjs.Tensor4D;
let tokens: Tfjs.Tensor2D;

async function logitsOf(model: Model): Promise<Float32Array> {
  const out = model.forward(images, tokens, { training: false, checkShapes: true });
  const data = (out.dataSync() as Float32Array).slice();
  out.dispose();
  return data;
}

before(async () => {
  tf = (await initBackend("wasm", { log: () => {} })).tf;
  // The emitted module imports @tensorflow/tfjs: the folder's node_modules is the repo's, so it
  // shares this process's tfjs and backend.
  symlinkSync(repoPath("node_modules"), join(dir, "node_modules"), "dir");
  writeFileSync(join(dir, "package.json"), '{"type": "module"}\n');
  const { run, ir, values } = makeRun("vision", SPEC, 17);
  const r = runVlmc(["export", "--run", run, "--format", "tfjs"]);
  assert.equal(r.code, 0, r.stderr);
  main = { run, ir, values, out: join(run, "export", "tfjs"), stdout: r.stdout };
  images = tf.randomUniform([2, 16, 16, 3], -2, 2, "float32", 5) as Tfjs.Tensor4D;
  tokens = tf.tensor2d([[1, 4, 5, 6, 7], [1, 9, 3, 3, 8]], [2, 5], "int32");
  const original = Model.create(tf, ir, 0);
  try {
    assignValues(original, values);
    want = await logitsOf(original);
  } finally {
    original.dispose();
  }
});

interface ModelJson {
  format: string;
  generatedBy: string;
  convertedBy: string;
  modelTopology: Ir;
  weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: string }[] }[];
  userDefinedMetadata: Record<string, unknown>;
}

test("the folder has tfjs's ModelArtifacts layout: model.json, float32 shards, tokenizer, the module", () => {
  const { out, ir } = main;
  assert.match(main.stdout, /^exported .*export\/tfjs: TensorFlow\.js artifacts of `vision`, \d+\.\d KB of float32 weights in 1 shard \(model\.json, group1-shard1of1\.bin, tokenizer\.json, model\.ts, model\.js\)\n$/);
  assert.deepEqual(readdirSync(out).sort(), ["group1-shard1of1.bin", "model.js", "model.json", "model.ts", "tokenizer.json"]);
  const json = JSON.parse(readFileSync(join(out, "model.json"), "utf8")) as ModelJson;
  assert.equal(json.format, "vlmc-ir");
  assert.match(json.generatedBy, /^vlmc \d+\.\d+\.\d+$/);
  assert.equal(json.convertedBy, "vlmc export --format tfjs");
  assert.equal(json.modelTopology.hash, ir.hash);
  assert.equal(json.weightsManifest.length, 1);
  const params = irParams(ir);
  assert.deepEqual(json.weightsManifest[0]!.weights, params.map((p) => ({ name: p.name, shape: [...p.shape], dtype: "float32" })));
  const bytes = params.reduce((a, p) => a + 4 * p.shape.reduce((x, y) => x * y, 1), 0);
  assert.equal(statSync(join(out, "group1-shard1of1.bin")).size, bytes);
  const meta = json.userDefinedMetadata as { tokenizer: unknown; pixels: unknown; visualTokens: number; module: string };
  assert.deepEqual(meta.tokenizer, { kind: "chars", size: tok.size, files: ["tokenizer.json"], ids: { pad: 0, bos: 1, eos: 2 } });
  assert.deepEqual(meta.pixels, { height: 16, width: 16, channels: 3, resize: "stretch", normalize: "stats", mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] });
  assert.equal(meta.visualTokens, 4);
  assert.equal(meta.module, "model.js");
  // The module's only import is tfjs, and it reads the folder with tf.io.
  const ts = readFileSync(join(out, "model.ts"), "utf8");
  assert.deepEqual([...ts.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]), ["@tensorflow/tfjs"]);
  assert.match(ts, /export async function loadExport\(url: string = "model\.json", fetchFunc\?: typeof fetch\): Promise<Weights>/);
  assert.match(ts, /tf\.io\.http\(url/);
  // It type-checks alone under --strict (DOM, no Node types), the appended loader included, as
  // test/emit-ts.test.ts checks the modules it emits.
  const tsconfig = {
    compilerOptions: { strict: true, noEmit: true, target: "ES2022", module: "ES2022", moduleResolution: "Bundler", lib: ["ES2022", "DOM"], types: [], skipLibCheck: true },
    files: [join(out, "model.ts")],
  };
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(tsconfig));
  const r = spawnSync(process.execPath, [repoPath("node_modules", "typescript", "bin", "tsc"), "-p", join(dir, "tsconfig.json")], { encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, `tsc reported:\n${r.stdout}${r.stderr}`);
});

test("shards: tfjs's names and 4 MiB cut, tensors straddling two shards read back exactly", async () => {
  assert.deepEqual(shardNames(0), ["group1-shard1of1.bin"]);
  assert.deepEqual(shardNames(SHARD_BYTES), ["group1-shard1of1.bin"]);
  assert.deepEqual(shardNames(2 * SHARD_BYTES + 1), ["group1-shard1of3.bin", "group1-shard2of3.bin", "group1-shard3of3.bin"]);
  const { run, ir, values } = main;
  const out = join(dir, "small-shards");
  const r = exportTfjs({ ir, tokenizer: tok, weights: join(run, "weights.safetensors"), weightsLabel: "weights.safetensors" }, out, { shardBytes: 1000 });
  assert.ok(r.shards.length > 10);
  const sizes = r.shards.map((s) => statSync(join(out, s)).size);
  assert.ok(sizes.slice(0, -1).every((s) => s === 1000) && sizes.at(-1)! <= 1000 && sizes.reduce((a, b) => a + b) === r.bytes);
  const back = await loadTfjsExport(tf, out);
  for (const [name, v] of values) assert.deepEqual(back.values.get(name), v, name);
});

test("read back with tf.io (loadTfjsExport): every parameter exact, bit-equal logits, the tokenizer", async () => {
  const back = await loadTfjsExport(tf, main.out);
  assert.equal(back.ir.hash, main.ir.hash);
  assert.deepEqual([...back.values.keys()].sort(), [...main.values.keys()].sort());
  for (const [name, v] of main.values) assert.deepEqual(back.values.get(name), v, name);
  const e = back.tokenizer!.encode("a red circle", { bos: true, eos: true });
  const t = tok.encode("a red circle", { bos: true, eos: true });
  assert.ok(e.ok && t.ok);
  assert.deepEqual(e.ids, t.ids);
  const model = Model.create(tf, back.ir, 3);
  try {
    assignValues(model, back.values);
    assert.deepEqual(await logitsOf(model), want);
  } finally {
    model.dispose();
  }
});

test("the folder's own module (model.js) loads it with tf.io and gives the runtime's logits", async () => {
  interface Emitted {
    loadExport(url: string, fetchFunc?: typeof fetch): Promise<Record<string, Tfjs.Tensor>>;
    forward(w: unknown, images: Tfjs.Tensor, tokens: Tfjs.Tensor): Tfjs.Tensor;
  }
  const mod = (await import(pathToFileURL(join(main.out, "model.js")).href)) as Emitted;
  // Node's fetch reads no files: this one does, as a web server would serve the folder.
  const fetchFile = (async (url: string | URL | Request) => new Response(readFileSync(String(url)))) as typeof fetch;
  const w = await mod.loadExport(join(main.out, "model.json"), fetchFile);
  try {
    const got = mod.forward(w, images, tokens);
    const err = relError(got.dataSync() as Float32Array, want);
    got.dispose();
    assert.ok(err < 1e-5, `max|module - runtime| / max|runtime| = ${err}`);
  } finally {
    tf.dispose(Object.values(w));
  }
  // A folder of another model is refused by the module.
  const other = join(dir, "other");
  mkdirSync(other);
  const json = JSON.parse(readFileSync(join(main.out, "model.json"), "utf8")) as ModelJson;
  (json.userDefinedMetadata.vlmc as { hash: string }).hash = "sha256:0000";
  writeFileSync(join(other, "model.json"), JSON.stringify(json));
  writeFileSync(join(other, "group1-shard1of1.bin"), readFileSync(join(main.out, "group1-shard1of1.bin")));
  await assert.rejects(mod.loadExport(join(other, "model.json"), fetchFile), /holds the weights of another architecture \(sha256:0000; this module is sha256:/);
});

test("a damaged folder gives one line naming what is wrong", async () => {
  const copy = (name: string) => {
    const d = join(dir, name);
    mkdirSync(d);
    for (const f of readdirSync(main.out)) writeFileSync(join(d, f), readFileSync(join(main.out, f)));
    return d;
  };
  const missing = copy("missing-shard");
  rmSync(join(missing, "group1-shard1of1.bin"));
  await assert.rejects(loadTfjsExport(tf, missing), (e: Error) => e instanceof TfjsExportError && /group1-shard1of1\.bin: missing \(model\.json lists it\)$/.test(e.message));
  const short = copy("short-shard");
  truncateSync(join(short, "group1-shard1of1.bin"), 100);
  await assert.rejects(loadTfjsExport(tf, short), /the shards hold 100 bytes, the manifest's weights take \d+ \(a shard is truncated or from another export\)/);
  const layers = copy("layers-model");
  const json = JSON.parse(readFileSync(join(layers, "model.json"), "utf8")) as ModelJson;
  writeFileSync(join(layers, "model.json"), JSON.stringify({ ...json, format: "layers-model" }));
  await assert.rejects(loadTfjsExport(tf, layers), /its format is "layers-model", not "vlmc-ir"/);
  const escape = copy("escape");
  json.weightsManifest[0]!.paths = ["../vision/weights.safetensors"];
  writeFileSync(join(escape, "model.json"), JSON.stringify(json));
  await assert.rejects(loadTfjsExport(tf, escape), /the shard "\.\.\/vision\/weights\.safetensors" is not a file beside model\.json/);
  await assert.rejects(loadTfjsExport(tf, join(dir, "nope")), (e: Error) => e instanceof TfjsExportError && e.usage && /nope: no such folder/.test(e.message));
});

test("a tokenizer the module cannot hold: the folder without model.ts, and a note saying why", () => {
  const text = SPEC.replace(/tokenizer chars \{[^}]*\}/, "tokenizer bpe { vocab: 300, specials: [pad, bos, eos] }");
  const { run, ir } = makeRun("bpe", text, 3);
  saveRunTokenizer(run, trainBpeTokenizer(ir.tokenizer as IrBpeTokenizer, ["a red circle", "a blue square"]).tokenizer);
  const r = runVlmc(["export", run, "--format", "tfjs", "--out", join(dir, "bpe-out")]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /note: model\.ts was not written: E0802 /);
  assert.deepEqual(readdirSync(join(dir, "bpe-out")).sort(), ["group1-shard1of1.bin", "model.json", "tokenizer.json", "tokenizer_config.json"]);
});

test("usage errors: no run folder, a format that does not exist", () => {
  const a = runVlmc(["export", "--run", join(dir, "nope"), "--format", "tfjs"]);
  assert.equal(a.code, 2);
  assert.match(a.stderr, /nope: no such run folder/);
  assert.equal(runVlmc(["export", "--run", main.run, "--format", "onnx"]).code, 2);
  assert.ok(!existsSync(join(dir, "nope")));
});
