// The `tfjs` encoder preset: the nsfwjs MobileNetV2 extracted into a tfjs model folder, shaped
// at check time from model.json, run by vlmc on wasm and compared with an independent reading
// of the same files in PyTorch (tools/torch/mobilenet_ref.py wrote the goldens of
// test/fixtures/tfjs-encoder/) and with tfjs-layers' own LayersModel; the folder recorded in
// the IR by its files' sha256, so a changed model is refused. The extracted folder exists after
// `npm ci` (tools/extract-nsfwjs.mjs); these tests skip only when nsfwjs itself is missing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as tfjs from "@tensorflow/tfjs";
import { compile } from "../compiler/compile.js";
import { emitTs } from "../compiler/emit/ts.js";
import { rebaseIr } from "../compiler/ir/paths.js";
import { admitIr } from "../compiler/ir/validate.js";
import type { Ir, IrLayer } from "../compiler/ir/types.js";
import { tfjsModel } from "../compiler/layers/tfjs-model.js";
import type { LowerContext } from "../compiler/layers/kind.js";
import { initBackend } from "../runtime/backend.js";
import { Model } from "../runtime/model.js";
import { ensureExtracted, NSFWJS_FOLDER } from "../runtime/pretrained/folder.js";
import { resolvePretrained } from "../runtime/pretrained/index.js";
import { fileHandler } from "../runtime/pretrained/io.js";
import { readSafetensors } from "../runtime/safetensors.js";
import { relError } from "./helpers/numeric.js";
import { repoPath } from "./helpers/paths.js";

const haveNsfwjs = existsSync(repoPath("node_modules", "nsfwjs"));
const skip = haveNsfwjs ? false : "the nsfwjs package is not installed (npm ci installs it)";
if (haveNsfwjs) assert.equal(ensureExtracted(NSFWJS_FOLDER), null, "the nsfwjs MobileNetV2 could not be extracted");

/** The golden images' pixels: the integer formula of tools/torch/mobilenet_ref.py's `pixels`. */
function pixels(images: number, size: number): Float32Array {
  const out = new Float32Array(images * size * size * 3);
  let i = 0;
  for (let b = 0; b < images; b++)
    for (let h = 0; h < size; h++) for (let w = 0; w < size; w++) for (let c = 0; c < 3; c++) out[i++] = ((h * (2 + b) + w * (3 - b) + c * 85 + ((h * w + 7 * b) % 23) * 4) % 256) / 255;
  return out;
}

function spec(opts: { folder?: string; image?: string; layer?: string; output?: string } = {}): string {
  const image = opts.image ? `, image: ${opts.image}` : "";
  const output = opts.output ? `, output: ${opts.output}` : "";
  return `vlm 0.1
model enc {
  tokenizer chars { alphabet: "abcdefghijklmnopqrstuvwxyz .", specials: [pad] }
  encoder tfjs { model: ${JSON.stringify(opts.folder ?? NSFWJS_FOLDER)}, layer: "${opts.layer ?? "out_relu"}"${image}${output} }
  projector { linear(64) -> gelu -> linear(decoder.dim) }
  decoder gpt { dim: 32, heads: 2, layers: 1, context: 64 }
}
train {
  data: shapes(images: 20, size: 96, seed: 1)
  batch: 2
  stage align { train: [projector, decoder], optimizer: adam(lr: 1e-3), steps: 2 }
}
`;
}

/** The IR of a spec that must check without a diagnostic (the frozen encoder is no W0501). */
function compileSpec(text: string): Ir {
  const dir = mkdtempSync(join(tmpdir(), "vlmc-tfjs-"));
  const r = compile(join(dir, "enc.vlm"), { text });
  rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(r.diagnostics.map((d) => `${d.code} ${d.message}`), []);
  return r.ir!;
}

function backbone(ir: Ir): IrLayer {
  const l = ir.modules.encoder!.layers.find((x) => x.kind === "tfjs_model");
  assert.ok(l, "the encoder has a tfjs_model layer");
  return l;
}

/** The encoder's lowering, as Model.forward calls it, with a constant cache like the model's. */
function runBackbone(tf: typeof tfjs, ir: Ir, x: tfjs.Tensor): { out: Float32Array; shape: number[]; constants: Map<string, tfjs.Tensor> } {
  const layer = backbone(resolvePretrained(ir, process.cwd()));
  const constants = new Map<string, tfjs.Tensor>();
  const ctx = {
    tf,
    attrs: layer.attrs,
    constant: (key: string, make: () => tfjs.Tensor) => {
      if (!constants.has(key)) constants.set(key, tf.keep(make()));
      return constants.get(key)!;
    },
  } as unknown as LowerContext;
  const y = tf.tidy(() => tfjsModel.lower!(ctx, x));
  const out = { out: y.dataSync() as Float32Array, shape: y.shape, constants };
  y.dispose();
  return out;
}

test("tools/extract-nsfwjs.mjs writes a tfjs model folder atomically, and leaves a complete one alone", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "vlmc-extract-"));
  try {
    const out = join(dir, "m");
    execFileSync(process.execPath, [repoPath("tools", "extract-nsfwjs.mjs"), "--out", out, "--quiet", "--strict"]);
    assert.deepEqual(readdirSync(out).sort(), ["group1-shard1of1.bin", "model.json", "preprocessor_config.json"]);
    assert.deepEqual(readdirSync(dir), ["m"], "no temporary folder is left behind");
    const doc = JSON.parse(readFileSync(join(out, "model.json"), "utf8"));
    assert.equal(doc.format, "layers-model");
    assert.deepEqual(doc.weightsManifest[0].paths, ["group1-shard1of1.bin"]);
    const need = (doc.weightsManifest[0].weights as { shape: number[] }[]).reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1), 0);
    assert.equal(readFileSync(join(out, "group1-shard1of1.bin")).length, need, "one uint8 per weight value");
    const pre = JSON.parse(readFileSync(join(out, "preprocessor_config.json"), "utf8"));
    assert.deepEqual([pre.image_mean, pre.image_std, pre.rescale_factor, pre.size], [[0, 0, 0], [1, 1, 1], 1 / 255, { height: 224, width: 224 }]);
    // Same bytes as the folder `npm ci` extracted.
    assert.ok(readFileSync(join(out, "model.json")).equals(readFileSync(join(NSFWJS_FOLDER, "model.json"))));
    // On first use: a spec naming the builtin folder when it is missing has it extracted.
    const first = join(dir, "first-use");
    assert.equal(ensureExtracted(first, first), null);
    assert.ok(readFileSync(join(first, "model.json")).equals(readFileSync(join(out, "model.json"))));
    writeFileSync(join(out, "marker"), "");
    execFileSync(process.execPath, [repoPath("tools", "extract-nsfwjs.mjs"), "--out", out, "--quiet"]);
    assert.ok(existsSync(join(out, "marker")), "an existing folder is not rewritten without --force");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("check time: the shapes come from model.json, the files' sha256 go into the IR, the folder path is rebased and not hashed", { skip }, () => {
  const ir = compileSpec(spec({ image: "96 x 96 x 3" }));
  const enc = ir.modules.encoder!;
  assert.deepEqual(enc.output, ["B", 9, 1280], "3 x 3 x 1280 at 96: 9 tokens of width 1280");
  assert.deepEqual(ir.modules.projector!.layers[0]!.attrs.in, 1280, "the projector takes the feature map's channels");
  const l = backbone(ir);
  assert.deepEqual(l.attrs.files, ["model.json", "group1-shard1of1.bin"]);
  assert.match(String((l.attrs.sha256 as string[])[0]), /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(l.params, [], "its weights are not vlmc parameters");
  assert.deepEqual(enc.pixels, { normalize: "unit", mean: [0, 0, 0], std: [1, 1, 1], resize: "stretch" }, "from preprocessor_config.json");
  // The native size by default: 7 x 7 = 49 tokens.
  assert.deepEqual(compileSpec(spec()).modules.encoder!.output, ["B", 49, 1280]);
  assert.deepEqual(compileSpec(spec({ output: "pool" })).modules.encoder!.output, ["B", 1, 1280]);
  // Rebased into another folder (a run folder), the document stays valid: same hash, a relative path.
  const moved = rebaseIr(ir, process.cwd(), tmpdir());
  assert.ok(!String(backbone(moved).attrs.weights).startsWith("/"), "a relative path");
  const admitted = admitIr(moved);
  assert.deepEqual(admitted.diagnostics.map((d) => d.message), []);
  assert.equal(moved.hash, ir.hash);
  // `--emit ts` cannot write it: a clean E0801 naming the layer, no module.
  const emitted = emitTs(ir, { where: () => ({ file: "enc.vlm", start: 0, end: 0 }), source: "enc.vlm" });
  assert.equal(emitted.text, null);
  assert.deepEqual(emitted.diagnostics.map((d) => d.code), ["E0801"]);
  assert.match(emitted.diagnostics[0]!.message, /tfjs_model/);
});

test("vlmc's MobileNetV2 at out_relu matches PyTorch's reading of the same files (max|a-b|/max|ref| < 1e-4) and tfjs-layers' LayersModel", { skip }, async () => {
  const { tf } = await initBackend("wasm", { log: () => {} });
  const golden = readSafetensors(repoPath("test", "fixtures", "tfjs-encoder", "golden.safetensors"));
  assert.ok(golden.ok);
  const want = golden.tensors.get("features")!;
  assert.deepEqual(want.shape, [2, 3, 3, 1280]);
  const ir = compileSpec(spec({ image: "96 x 96 x 3" }));
  const x = tf.tensor4d(pixels(2, 96), [2, 96, 96, 3]);
  const before = tf.memory().numTensors;
  const got = runBackbone(tf, ir, x);
  assert.deepEqual(got.shape, [2, 9, 1280]);
  const err = relError(got.out, want.data as Float32Array);
  assert.ok(err < 1e-4, `relative error ${err} against PyTorch`);
  // Only the weights up to the cut are kept (the Dense head's are freed), nothing else leaks.
  assert.equal(tf.memory().numTensors - before, got.constants.size);
  assert.ok(![...got.constants.keys()].some((k) => k.includes("dense_")), "the classification head is not loaded");
  tf.dispose([...got.constants.values()]);

  tf.dispose(x);

  // tfjs-layers running the same folder through the file IOHandler (at its own size, 224: the
  // whole model is built, and its head takes only that), against vlmc's encoder at 224.
  const x224 = tf.tensor4d(pixels(1, 224), [1, 224, 224, 3]);
  const m = await tf.loadLayersModel(fileHandler(NSFWJS_FOLDER));
  const cut = tf.model({ inputs: m.inputs, outputs: m.getLayer("out_relu").output as tfjs.SymbolicTensor });
  const ref = cut.predict(x224) as tfjs.Tensor;
  assert.deepEqual(ref.shape, [1, 7, 7, 1280]);
  const at224 = runBackbone(tf, compileSpec(spec()), x224);
  assert.deepEqual(at224.shape, [1, 49, 1280]);
  const againstLayers = relError(at224.out, ref.dataSync());
  assert.ok(againstLayers < 1e-5, `relative error ${againstLayers} against tfjs-layers`);
  tf.dispose([ref, x224, ...at224.constants.values()]);
  m.dispose();
});

test("a model with the tfjs encoder runs forward, and refuses a folder whose files changed since compiling", { skip }, async () => {
  const { tf } = await initBackend("wasm", { log: () => {} });
  const dir = mkdtempSync(join(tmpdir(), "vlmc-tfjs-copy-"));
  try {
    const folder = join(dir, "mobilenet");
    cpSync(NSFWJS_FOLDER, folder, { recursive: true });
    const ir = compileSpec(spec({ folder, image: "96 x 96 x 3" }));
    const model = Model.create(tf, ir, 0);
    try {
      const logits = tf.tidy(() => {
        const y = model.forward(tf.tensor4d(pixels(2, 96), [2, 96, 96, 3]), tf.zeros([2, 5], "int32"), { training: false, checkShapes: true });
        return y;
      });
      assert.deepEqual(logits.shape, [2, 9 + 5, 29]);
      assert.ok(Array.from(logits.dataSync()).every(Number.isFinite));
      logits.dispose();
      assert.ok(!model.variables.has("encoder.backbone.weights"), "no variable for the pretrained encoder");
    } finally {
      model.dispose();
    }
    const shard = join(folder, "group1-shard1of1.bin");
    const bytes = readFileSync(shard);
    bytes[100] = (bytes[100]! + 1) % 256;
    writeFileSync(shard, bytes);
    assert.throws(() => Model.create(tf, ir, 0), /group1-shard1of1\.bin has changed since the model was compiled/);
    // A truncated shard is caught when the spec is checked, before anything runs.
    writeFileSync(shard, bytes.subarray(0, 1000));
    const checked = compile(join(dir, "enc.vlm"), { text: spec({ folder, image: "96 x 96 x 3" }) });
    assert.deepEqual(checked.diagnostics.map((d) => d.code), ["E0730"]);
    assert.match(checked.diagnostics[0]!.message, /holds 1000 bytes, the manifest's weights need 2619461/);
    rmSync(join(folder, "model.json"));
    assert.throws(() => Model.create(tf, ir, 0), /model\.json is missing/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
