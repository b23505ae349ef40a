// Hugging Face CLIP-vision and SigLIP checkpoints in the `vit` / `siglip` presets through
// runtime/hf-vision.ts: the name mapping, config.json and preprocessor_config.json as the
// presets' settings (`pretrained: "folder"`), the check-time header validation by Hugging Face
// names, and the encoder's output on the fixtures' images against goldens that PyTorch
// computed with modules written after Hugging Face's own (tools/torch/hf_vision.py), within
// max|a - b| / max|ref| < 1e-4, the images going through vlmc's pixel normalisation first.
// A written setting that disagrees with the folder is E0720; a damaged checkpoint is E0703
// naming the Hugging Face tensor, and loads nothing.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { check } from "../compiler/check.js";
import { compile } from "../compiler/compile.js";
import type { Ir } from "../compiler/ir/types.js";
import { initBackend, type Tf } from "../runtime/backend.js";
import { toFloat } from "../runtime/data/images.js";
import { hfPixelSettings, hfVisionParam, hfVisionSettings, hfVisionSource, loadHfVision } from "../runtime/hf-vision.js";
import { Model } from "../runtime/model.js";
import { encodeSafetensors, readSafetensors, type TensorToWrite } from "../runtime/safetensors.js";
import { loadWeightsFile } from "../runtime/weights.js";
import { repoPath } from "./helpers/paths.js";
import { relError } from "./helpers/numeric.js";

const TOLERANCE = 1e-4;
const FIXTURES = repoPath("test", "fixtures", "hf-vision");
const FAMILIES = ["clip", "siglip"] as const;

const dir = mkdtempSync(join(tmpdir(), "vlmc-hf-vision-"));
after(() => rmSync(dir, { recursive: true, force: true }));

let backend: Promise<Tf> | null = null;
const tfOf = () => (backend ??= initBackend("wasm", { log: () => {} }).then((b) => b.tf));

const json = (path: string) => JSON.parse(readFileSync(path, "utf8")) as unknown;

/** A spec whose encoder reads `folder` (relative to `dir`), with `extra` settings written. */
function specText(preset: "vit" | "siglip", folder: string, extra = ""): string {
  return `vlm 0.1\n\nmodel m {\n  encoder ${preset} {\n    pretrained: "${folder}"\n${extra ? `    ${extra}\n` : ""}  }\n}\n`;
}

function writeSpec(name: string, text: string): string {
  const path = join(dir, `${name}.vlm`);
  writeFileSync(path, text);
  return path;
}

/** The spec's IR; its diagnostics must be exactly `expected`. */
function compileText(name: string, text: string, expected: string[] = []): Ir {
  const { ir, diagnostics } = compile(writeSpec(name, text), { baseDir: dir });
  assert.ok(ir, diagnostics.map((d) => `${d.code} ${d.message}`).join("\n"));
  assert.deepEqual(diagnostics.map((d) => `${d.code} ${d.message}`), expected);
  return ir;
}

/** What a spec with `final_norm: false` is told: the checkpoint's post_layernorm is not loaded. */
const NO_POST = "W0701 `model.safetensors` holds 2 tensors the encoder does not have: `vision_model.post_layernorm.bias`, `vision_model.post_layernorm.weight`";

const codes = (path: string) => check([path]).diagnostics.map((d) => `${d.code} ${d.message}`);

// The fixtures, copied beside the specs so that the specs name them by a relative path.
for (const f of FAMILIES) cpSync(join(FIXTURES, f), join(dir, f), { recursive: true });

/** Every variable's values, to compare before and after a load that must change nothing. */
function snapshot(model: Model): Map<string, Float32Array> {
  return new Map([...model.variables].map(([n, v]) => [n, (v.dataSync() as Float32Array).slice()]));
}

test("the mapping, written once: Hugging Face vision names <-> vlmc's vit parameters", () => {
  assert.deepEqual(hfVisionSource("encoder.patch_embed.weight"), { tensor: "embeddings.patch_embedding.weight", layout: "conv" });
  assert.deepEqual(hfVisionSource("encoder.patch_embed.cls"), { tensor: "embeddings.class_embedding" });
  assert.deepEqual(hfVisionSource("encoder.pos_embed.weight"), { tensor: "embeddings.position_embedding.weight" });
  assert.deepEqual(hfVisionSource("encoder.pre_norm.bias"), { tensor: "pre_layrnorm.bias" });
  assert.deepEqual(hfVisionSource("encoder.blocks.3.attn.o.weight"), { tensor: "encoder.layers.3.self_attn.out_proj.weight", layout: "linear" });
  assert.deepEqual(hfVisionSource("encoder.blocks.0.attn.k.bias"), { tensor: "encoder.layers.0.self_attn.k_proj.bias" });
  assert.deepEqual(hfVisionSource("encoder.blocks.1.norm2.weight"), { tensor: "encoder.layers.1.layer_norm2.weight" });
  assert.deepEqual(hfVisionSource("encoder.blocks.1.mlp.fc2.weight"), { tensor: "encoder.layers.1.mlp.fc2.weight", layout: "linear" });
  assert.deepEqual(hfVisionSource("encoder.norm.weight"), { tensor: "post_layernorm.weight" });
  assert.equal(hfVisionSource("decoder.blocks.0.attn.q.weight"), null);
  assert.equal(hfVisionSource("encoder.blocks.0.attn.rope"), null);
  assert.equal(hfVisionParam("vision_model.encoder.layers.11.self_attn.q_proj.weight"), "encoder.blocks.11.attn.q.weight");
  assert.equal(hfVisionParam("embeddings.patch_embedding.bias"), "encoder.patch_embed.bias");
  assert.equal(hfVisionParam("vision_model.post_layernorm.bias"), "encoder.norm.bias");
  assert.equal(hfVisionParam("vision_model.head.probe"), null);
  assert.equal(hfVisionParam("text_model.final_layer_norm.weight"), null);
});

test("config.json and preprocessor_config.json -> the preset's settings; what vlmc cannot express is refused", () => {
  const clip = hfVisionSettings(json(join(FIXTURES, "clip", "config.json")), json(join(FIXTURES, "clip", "preprocessor_config.json")));
  assert.equal(clip.family, "clip");
  assert.deepEqual(clip.settings, {
    image: [32, 32, 3],
    patch: 8,
    dim: 32,
    heads: 4,
    blocks: 2,
    mlp: 64,
    activation: "quick_gelu",
    norm_eps: 1e-5,
    cls: true,
    pre_norm: true,
    patch_bias: false,
    qkv_bias: true,
    attention_scale: "head",
    position: "learned",
    final_norm: true,
    normalize: { call: "clip", args: {} },
    resize: "crop",
  });
  const siglip = hfVisionSettings(json(join(FIXTURES, "siglip", "config.json")), json(join(FIXTURES, "siglip", "preprocessor_config.json")));
  assert.equal(siglip.family, "siglip");
  assert.deepEqual({ ...siglip.settings, image: undefined }, {
    ...clip.settings,
    image: undefined,
    activation: "gelu_tanh",
    norm_eps: 1e-6,
    cls: false,
    pre_norm: false,
    patch_bias: true,
    normalize: { call: "stats", args: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } },
    resize: "stretch",
  });
  // A whole SiglipConfig may leave its vision_config at the class defaults; no preprocessor: no pixel settings.
  const defaults = hfVisionSettings({ model_type: "siglip", vision_config: { model_type: "siglip_vision_model" } });
  assert.deepEqual(defaults.settings && [defaults.settings.image, defaults.settings.patch, defaults.settings.dim, defaults.settings.blocks, defaults.settings.normalize], [[224, 224, 3], 16, 768, 12, undefined]);
  // What the presets cannot express.
  const bad = hfVisionSettings({ model_type: "clip_vision_model", hidden_act: "swiglu", image_size: 30, patch_size: 8 });
  assert.equal(bad.settings, null);
  assert.deepEqual(bad.problems, ['`hidden_act` "swiglu" has no counterpart in the preset (it has quick_gelu, gelu, gelu_pytorch_tanh, gelu_new, gelu_fast, relu, silu)']);
  assert.deepEqual(hfVisionSettings({ model_type: "clip_vision_model", image_size: 30, patch_size: 8 }).problems, ["`patch_size` 8 does not divide `image_size` 30"]);
  assert.deepEqual(hfVisionSettings({ model_type: "vit" }).problems, ['`model_type` is "vit"; a vision checkpoint here is "clip_vision_model", "siglip_vision_model", "clip", "siglip"']);
  assert.deepEqual(hfPixelSettings({ crop_size: 224, rescale_factor: 1 / 127.5, image_mean: [0.5, 0.5] }, "clip", 32, 3).problems, [
    "`rescale_factor` 0.00784313725490196 is not 1/255 (vlmc reads 8-bit pixels as v / 255)",
    "`image_mean` and `image_std` have 2 and 3 values for 3 channels",
    "`crop_size` is 224 x 224, but the model's `image_size` is 32",
  ]);
  assert.deepEqual(hfPixelSettings({ do_normalize: false, do_center_crop: false, size: { height: 32, width: 32 } }, "clip", 32, 3).settings, { normalize: { call: "unit", args: {} }, resize: "stretch" });
});

test("check: `pretrained:` takes every setting from the folder and validates model.safetensors by Hugging Face names", () => {
  for (const [preset, folder] of [["vit", "clip"], ["siglip", "siglip"], ["siglip", "clip"]] as const) {
    const ir = compileText(`check-${preset}-${folder}`, specText(preset, folder));
    const enc = ir.modules.encoder!;
    assert.equal(enc.weights, `${folder}/model.safetensors`);
    assert.deepEqual(enc.output, folder === "clip" ? ["B", 1, 32] : ["B", 16, 32]);
    assert.deepEqual(enc.pixels, folder === "clip" ? { normalize: "clip", mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711], resize: "crop" } : { normalize: "stats", mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], resize: "stretch" });
  }
  // Settings written as the folder says them pass; `blocks` may be fewer (a warning names the
  // block the spec leaves out); `final_norm` is the spec's to choose.
  assert.deepEqual(codes(writeSpec("agree", specText("vit", "clip", "dim: 32, activation: quick_gelu, output: all, final_norm: false"))), [NO_POST]);
  const fewer = codes(writeSpec("fewer", specText("siglip", "siglip", "blocks: 1")));
  assert.equal(fewer.length, 1, fewer.join("\n"));
  assert.match(fewer[0]!, /^W0701 `model\.safetensors` holds 16 tensors the encoder does not have: `vision_model\.encoder\.layers\.1\.layer_norm1\.bias`, /);
  // The same file as a written `weights:` of settings spelt out by hand; a CLIP spec that
  // forgets CLIP's bias-free patch embedding is told which tensor the file lacks.
  const byHand = "image: 32 x 32 x 3, patch: 8, dim: 32, heads: 4, blocks: 2, mlp: 64, activation: quick_gelu, qkv_bias: true, pre_norm: true";
  const handText = (extra: string) => `vlm 0.1\n\nmodel m {\n  encoder vit {\n    ${byHand}${extra}\n    weights: "clip/model.safetensors"\n  }\n}\n`;
  assert.deepEqual(codes(writeSpec("by-hand", handText(", patch_bias: false"))), []);
  assert.deepEqual(codes(writeSpec("by-hand-bias", handText(""))), ["E0702 `model.safetensors` has no tensor for `encoder.patch_embed.bias` [32]"]);
});

test("a written setting that disagrees with config.json or preprocessor_config.json is E0720, naming the field", () => {
  const ds = check([writeSpec("disagree", specText("vit", "clip", "dim: 64, activation: gelu, blocks: 3, normalize: imagenet, weights: \"x.safetensors\""))]).diagnostics;
  assert.deepEqual(
    ds.map((d) => `${d.code} ${d.message}`).sort(),
    [
      "E0720 `dim` is 64 here, but the pretrained model's is 32",
      "E0720 `blocks` is 3 here, more than the pretrained model's 2",
      "E0720 `activation` is \"gelu\" here, but the pretrained model's is \"quick_gelu\"",
      "E0722 `weights` cannot be written beside `pretrained:`",
      "E0720 `normalize` is imagenet() here, but the pretrained model's is clip()",
    ].sort(),
  );
  const dim = ds.find((d) => d.message.startsWith("`dim`"))!;
  assert.deepEqual(dim.related.map((r) => r.label), ["`hidden_size` in config.json of `clip` says 32"]);
  const norm = ds.find((d) => d.message.startsWith("`normalize`"))!;
  assert.deepEqual(norm.related.map((r) => r.label), ["`image_mean` and `image_std` in preprocessor_config.json of `clip` says clip()"]);
  // A config vlmc cannot express is one E0721 on the `pretrained:` line.
  cpSync(join(dir, "clip"), join(dir, "clip-swiglu"), { recursive: true });
  const config = json(join(dir, "clip", "config.json")) as { vision_config: Record<string, unknown> };
  config.vision_config.hidden_act = "swiglu";
  writeFileSync(join(dir, "clip-swiglu", "config.json"), JSON.stringify(config));
  assert.deepEqual(codes(writeSpec("swiglu", specText("vit", "clip-swiglu"))), [
    'E0721 model folder `clip-swiglu` is not a Hugging Face CLIP or SigLIP vision checkpoint vlmc can use: `hidden_act` "swiglu" has no counterpart in the preset (it has quick_gelu, gelu, gelu_pytorch_tanh, gelu_new, gelu_fast, relu, silu)',
  ]);
});

interface Golden {
  pixels: Int32Array;
  pixelValues: Float32Array;
  hidden: Float32Array;
  post: Float32Array;
  shape: number[];
}

function golden(family: string): Golden {
  const g = readSafetensors(join(FIXTURES, family, "golden.safetensors"));
  assert.ok(g.ok);
  const sha = createHash("sha256").update(readFileSync(join(FIXTURES, family, "model.safetensors"))).digest("hex");
  assert.equal(g.header.metadata.model_sha256, sha, "the checkpoint changed: rerun /usr/bin/python3 tools/torch/hf_vision.py");
  const t = (n: string) => g.tensors.get(n)!;
  return { pixels: t("pixels").data as Int32Array, pixelValues: t("pixel_values").data as Float32Array, hidden: t("hidden").data as Float32Array, post: t("post").data as Float32Array, shape: t("pixels").shape };
}

for (const family of FAMILIES) {
  for (const finalNorm of [true, false]) {
    test(`${family}: the encoder's output on 8-bit images matches PyTorch's (${finalNorm ? "through post_layernorm" : "the last block, final_norm: false"})`, async (t) => {
      const g = golden(family);
      const [B, H, W, C] = g.shape as [number, number, number, number];
      const preset = family === "clip" ? "vit" : "siglip";
      const ir = compileText(`parity-${family}-${finalNorm}`, specText(preset, family, `output: all${finalNorm ? "" : ", final_norm: false"}`), finalNorm ? [] : [NO_POST]);
      const tf = await tfOf();
      const model = Model.create(tf, ir, 0);
      try {
        const warnings: string[] = [];
        const source = loadWeightsFile(model, join(dir, ir.modules.encoder!.weights!), "encoder", (w) => warnings.push(w.message));
        assert.equal(source.convention, "hf-vision");
        const why = "which the spec does not have (fewer blocks, or no final norm, than the checkpoint?); it is not loaded";
        assert.deepEqual(warnings, finalNorm ? [] : [`tensor \`vision_model.post_layernorm.bias\` holds \`encoder.norm.bias\`, ${why}`, `tensor \`vision_model.post_layernorm.weight\` holds \`encoder.norm.weight\`, ${why}`]);
        // The pixels as training and `vlmc eval` prepare them, from the IR's statistics.
        const { mean, std } = ir.modules.encoder!.pixels!;
        const values = new Float32Array(B * H * W * C);
        for (let b = 0; b < B; b++) {
          const data = Uint8Array.from(g.pixels.subarray(b * H * W * C, (b + 1) * H * W * C));
          values.set(toFloat({ width: W, height: H, channels: 3, data }, { mean: mean as [number, number, number], std: std as [number, number, number] }), b * H * W * C);
        }
        const pixelError = relError(values, g.pixelValues);
        const images = tf.tensor(values, [B, H, W, C]);
        const out = model.encode(images);
        const N = family === "clip" ? 17 : 16;
        assert.deepEqual(out.shape, [B, N, 32]);
        const error = relError(out.dataSync(), finalNorm ? g.post : g.hidden);
        t.diagnostic(`relative errors: pixels ${pixelError.toExponential(2)}, output ${error.toExponential(2)}`);
        assert.ok(pixelError < 1e-6, `pixels: relative error ${pixelError}`);
        assert.ok(error < TOLERANCE, `output: relative error ${error}`);
        tf.dispose([images, out]);
      } finally {
        model.dispose();
      }
    });
  }
}

test("the patch embedding's conv weight [D, C, P, P] lands where vlmc's patch extraction reads it", async () => {
  const ir = compileText("conv-layout", specText("vit", "clip"));
  const tf = await tfOf();
  const model = Model.create(tf, ir, 0);
  try {
    const r = loadHfVision(model, join(dir, "clip", "model.safetensors"));
    assert.ok(r.ok);
    const f = readSafetensors(join(FIXTURES, "clip", "model.safetensors"), { only: ["vision_model.embeddings.patch_embedding.weight"] });
    assert.ok(f.ok);
    const conv = f.tensors.get("vision_model.embeddings.patch_embedding.weight")!.data as Float32Array; // [32, 3, 8, 8]
    const w = model.variables.get("encoder.patch_embed.weight")!.dataSync(); // [8*8*3, 32]
    // Output channel d=5 at channel c=2, row py=1, column px=6.
    assert.equal(w[((1 * 8 + 6) * 3 + 2) * 32 + 5], conv[((5 * 3 + 2) * 8 + 1) * 8 + 6]);
    assert.equal(model.variables.has("encoder.patch_embed.bias"), false);
  } finally {
    model.dispose();
  }
});

/** A fixture checkpoint's tensors, to write damaged copies of. */
function tensorsOf(family: string): TensorToWrite[] {
  const r = readSafetensors(join(FIXTURES, family, "model.safetensors"));
  assert.ok(r.ok);
  return [...r.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype as "F32", shape: t.shape, data: t.data as Float32Array }));
}

test("a damaged checkpoint: E0703 at check time naming the Hugging Face tensor; loading it changes nothing", async () => {
  cpSync(join(dir, "siglip"), join(dir, "damaged"), { recursive: true });
  const damaged = tensorsOf("siglip")
    .filter((t) => t.name !== "vision_model.encoder.layers.1.layer_norm2.bias")
    .map((t) => (t.name === "vision_model.encoder.layers.0.mlp.fc1.weight" ? { ...t, shape: [32, 64] } : t.name === "vision_model.embeddings.patch_embedding.weight" ? { ...t, shape: [32, 12, 4, 4] } : t));
  writeFileSync(join(dir, "damaged", "model.safetensors"), encodeSafetensors(damaged));
  assert.deepEqual(codes(writeSpec("damaged", specText("siglip", "damaged"))), [
    "E0702 `model.safetensors` has no tensor for `encoder.blocks.1.norm2.bias` [32]",
    "E0703 `vision_model.embeddings.patch_embedding.weight` (parameter `encoder.patch_embed.weight`) has shape [32, 12, 4, 4] in `model.safetensors`, the spec makes it [32, 3, 8, 8]",
    "E0703 `vision_model.encoder.layers.0.mlp.fc1.weight` (parameter `encoder.blocks.0.mlp.fc1.weight`) has shape [32, 64] in `model.safetensors`, the spec makes it [64, 32]",
  ]);
  const tf = await tfOf();
  const model = Model.create(tf, compileText("damaged-load", specText("siglip", "siglip")), 7);
  try {
    const before = snapshot(model);
    const r = loadHfVision(model, join(dir, "damaged", "model.safetensors"));
    assert.equal(r.ok, false);
    assert.deepEqual(!r.ok && r.problems.map((p) => p.message), [
      "`vision_model.embeddings.patch_embedding.weight` (parameter `encoder.patch_embed.weight`) has shape [32, 12, 4, 4] in the file ([out, channels, patch, patch]), the spec needs [32, 3, 8, 8]",
      "`vision_model.encoder.layers.0.mlp.fc1.weight` (parameter `encoder.blocks.0.mlp.fc1.weight`) has shape [32, 64] in the file ([out, in]), the spec needs [64, 32]",
      "parameter `encoder.blocks.1.norm2.bias` [32] has no tensor in the file: it needs `vision_model.encoder.layers.1.layer_norm2.bias` [32]",
    ]);
    for (const [name, v] of snapshot(model)) assert.deepEqual(v, before.get(name), `${name} changed`);
  } finally {
    model.dispose();
  }
});
