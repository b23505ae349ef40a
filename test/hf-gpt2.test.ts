// A real Hugging Face GPT-2 checkpoint (../shared/data/hf-gpt2-tiny/, written by `transformers`)
// in the `gpt` preset through runtime/hf-gpt2.ts: the spec derived from its config.json, the
// check-time header validation accepting Hugging Face names, loading (c_attn split into q/k/v,
// wpe's first rows, tied or untied head), and the logits against goldens PyTorch computed
// loading the file by its own names (tools/torch/parity.py --hf-gpt2), within
// max|a - b| / max|ref| < 1e-4. Damaged copies are rejected naming the tensor, the model untouched.
// A clone without ../shared skips these.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as tfjs from "@tensorflow/tfjs";
import { check } from "../compiler/check.js";
import { compile } from "../compiler/compile.js";
import type { Ir } from "../compiler/ir/types.js";
import { initBackend, type Tf } from "../runtime/backend.js";
import {
  decoderParams,
  hfGpt2Params,
  hfGpt2Plan,
  hfGpt2Settings,
  hfGpt2Source,
  hfGpt2SpecText,
  loadHfGpt2,
  readHfGpt2Config,
  type HfGpt2Config,
} from "../runtime/hf-gpt2.js";
import { Model } from "../runtime/model.js";
import { encodeSafetensors, readSafetensors, readSafetensorsHeader, type TensorToWrite } from "../runtime/safetensors.js";
import { repoPath } from "./helpers/paths.js";
import { relError } from "./helpers/numeric.js";

const TOLERANCE = 1e-4;
const HF = repoPath("..", "shared", "data", "hf-gpt2-tiny");
const MODEL = join(HF, "model.safetensors");
const FIXTURES = repoPath("test", "fixtures", "hf-gpt2-tiny");
const absent = existsSync(MODEL) ? false : `${HF} is absent (a clone without ../shared): nothing to load`;

const dir = mkdtempSync(join(tmpdir(), "vlmc-hf-gpt2-"));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Case {
  tokens: number[][];
  columns: number[];
}

function compileText(name: string, text: string): Ir {
  const path = join(dir, `${name}.vlm`);
  writeFileSync(path, text);
  const { ir, diagnostics } = compile(path, { baseDir: dir });
  assert.ok(ir, diagnostics.map((d) => `${d.code} ${d.message}`).join("\n"));
  assert.deepEqual(diagnostics, [], diagnostics.map((d) => `${d.code} ${d.message}`).join("\n"));
  return ir;
}

const config = (): HfGpt2Config => readHfGpt2Config(join(HF, "config.json"));

let backend: Promise<Tf> | null = null;
const tfOf = () => (backend ??= initBackend("wasm", { log: () => {} }).then((b) => b.tf));

/** Every variable's values, to compare before and after a load that must change nothing. */
function snapshot(model: Model): Map<string, Float32Array> {
  return new Map([...model.variables].map(([n, v]) => [n, (v.dataSync() as Float32Array).slice()]));
}

test("the mapping, written once: Hugging Face names <-> vlmc's gpt preset", () => {
  assert.deepEqual(hfGpt2Source("decoder.embed.weight"), { tensor: "wte.weight" });
  assert.deepEqual(hfGpt2Source("decoder.pos_embed.weight"), { tensor: "wpe.weight", rows: true });
  assert.deepEqual(hfGpt2Source("decoder.blocks.3.attn.k.weight"), { tensor: "h.3.attn.c_attn.weight", third: 1 });
  assert.deepEqual(hfGpt2Source("decoder.blocks.3.attn.v.bias"), { tensor: "h.3.attn.c_attn.bias", third: 2 });
  assert.deepEqual(hfGpt2Source("decoder.blocks.0.attn.o.weight"), { tensor: "h.0.attn.c_proj.weight" });
  assert.deepEqual(hfGpt2Source("decoder.blocks.0.mlp.fc1.bias"), { tensor: "h.0.mlp.c_fc.bias" });
  assert.deepEqual(hfGpt2Source("decoder.blocks.0.mlp.fc2.weight"), { tensor: "h.0.mlp.c_proj.weight" });
  assert.deepEqual(hfGpt2Source("decoder.ln_f.bias"), { tensor: "ln_f.bias" });
  assert.deepEqual(hfGpt2Source("decoder.lm_head.weight"), { tensor: "lm_head.weight", transpose: true, fallback: "wte.weight" });
  assert.equal(hfGpt2Source("decoder.lm_head.bias"), null);
  assert.equal(hfGpt2Source("encoder.blocks.0.attn.q.weight"), null);
  assert.deepEqual(hfGpt2Params("transformer.h.2.attn.c_attn.weight"), ["decoder.blocks.2.attn.q.weight", "decoder.blocks.2.attn.k.weight", "decoder.blocks.2.attn.v.weight"]);
  assert.deepEqual(hfGpt2Params("h.0.mlp.c_proj.bias"), ["decoder.blocks.0.mlp.fc2.bias"]);
  assert.deepEqual(hfGpt2Params("transformer.wte.weight"), ["decoder.embed.weight"]);
  assert.deepEqual(hfGpt2Params("lm_head.weight"), ["decoder.lm_head.weight"]);
});

test("config.json -> a gpt decoder; what vlmc cannot express is refused", () => {
  const base: HfGpt2Config = { model_type: "gpt2", vocab_size: 50257, n_embd: 768, n_head: 12, n_layer: 12, n_positions: 1024, n_inner: null, layer_norm_epsilon: 1e-5, activation_function: "gelu_new" };
  assert.deepEqual(hfGpt2Settings(base).settings, { vocab: 50257, dim: 768, heads: 12, layers: 12, context: 1024, activation: "gelu_tanh", norm_eps: 1e-5 });
  assert.deepEqual(hfGpt2Settings({ ...base, n_inner: 1000, scale_attn_weights: false, tie_word_embeddings: false, embd_pdrop: 0.1, attn_pdrop: 0.1, resid_pdrop: 0.1 }, { context: 256 }).settings, {
    vocab: 50257,
    dim: 768,
    heads: 12,
    layers: 12,
    context: 256,
    mlp: 1000,
    activation: "gelu_tanh",
    norm_eps: 1e-5,
    attention_scale: 1,
    tie_embeddings: false,
    dropout: 0.1,
  });
  const bad = hfGpt2Settings({ ...base, activation_function: "quick_gelu", scale_attn_by_inverse_layer_idx: true, n_head: 7 }, { context: 2048 });
  assert.equal(bad.settings, null);
  assert.equal(bad.problems.length, 4, bad.problems.join("\n"));
  // The spec text compiles to the preset's layout.
  const ir = compileText("from-config", hfGpt2SpecText({ ...base, n_embd: 8, n_head: 2, n_layer: 2, vocab_size: 11, n_positions: 32 }, { model: "g" }));
  assert.equal(ir.model, "g");
  assert.deepEqual(ir.modules.decoder!.output, ["B", "T", 11]);
});

test("check: the checkpoint as a spec's `weights:` passes by its Hugging Face names, from the header alone", { skip: absent }, () => {
  const text = hfGpt2SpecText(config(), { model: "hf_tiny", weights: MODEL });
  assert.match(text, /activation: gelu_tanh/);
  assert.match(text, /norm_eps: 1e-5/);
  const path = join(dir, "hf-check.vlm");
  writeFileSync(path, text);
  const r = check([path]);
  assert.deepEqual(r.diagnostics.map((d) => `${d.code} ${d.message}`), []);
  // A spec that disagrees with the checkpoint: each tensor named, with both shapes.
  writeFileSync(path, text.replace("layers: 1", "layers: 2").replace("context: 1024", "context: 2048"));
  const ds = check([path]).diagnostics.map((d) => `${d.code} ${d.message}`);
  assert.ok(ds.includes("E0703 `transformer.wpe.weight` (parameter `decoder.pos_embed.weight`) has shape [1024, 2] in `model.safetensors`, the spec makes it [2048, 2]"), ds.join("\n"));
  assert.ok(ds.includes("E0702 `model.safetensors` has no tensor for `decoder.blocks.1.ln_1.weight` [2]"), ds.join("\n"));
});

for (const variant of ["as config.json says", "context 16, untied head"] as const) {
  test(`logits agree with PyTorch reading the file by Hugging Face names: ${variant}`, { skip: absent }, async (t) => {
    const c = JSON.parse(readFileSync(join(FIXTURES, "case.json"), "utf8")) as Case;
    const g = readSafetensors(join(FIXTURES, "golden.safetensors"));
    assert.ok(g.ok);
    const golden = (n: string) => g.tensors.get(n)!.data as Float32Array;
    const sha = createHash("sha256").update(readFileSync(MODEL)).digest("hex");
    assert.equal(g.header.metadata.model_sha256, sha, "the checkpoint changed: rerun /usr/bin/python3 tools/torch/parity.py --hf-gpt2");
    const spec = variant === "as config.json says" ? hfGpt2SpecText(config()) : hfGpt2SpecText(config(), { context: 16 }).replace("    vocab:", "    tie_embeddings: false\n    vocab:");
    const ir = compileText(`hf-${variant === "as config.json says" ? "a" : "b"}`, spec);
    const tf = await tfOf();
    const model = Model.create(tf, ir, 0);
    try {
      const r = loadHfGpt2(model, MODEL);
      assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
      assert.deepEqual(r.warnings, []);
      if (variant !== "as config.json says") {
        // The untied head took wte, transposed; the position table the first 16 rows of wpe.
        const f = readSafetensors(MODEL);
        assert.ok(f.ok);
        const wte = f.tensors.get("transformer.wte.weight")!.data as Float32Array;
        const head = model.variables.get("decoder.lm_head.weight")!;
        assert.deepEqual(head.shape, [2, 50257]);
        const h = head.dataSync();
        assert.equal(h[0 * 50257 + 7], wte[7 * 2 + 0]);
        assert.equal(h[1 * 50257 + 50256], wte[50256 * 2 + 1]);
        assert.deepEqual(model.variables.get("decoder.pos_embed.weight")!.dataSync(), (f.tensors.get("transformer.wpe.weight")!.data as Float32Array).subarray(0, 32));
      }
      // c_attn's thirds: k is columns [2, 4) of [2, 6].
      const cAttn = readSafetensors(MODEL, { only: ["transformer.h.0.attn.c_attn.weight"] });
      assert.ok(cAttn.ok);
      const w = cAttn.tensors.get("transformer.h.0.attn.c_attn.weight")!.data as Float32Array;
      assert.deepEqual(Array.from(model.variables.get("decoder.blocks.0.attn.k.weight")!.dataSync()), [w[2], w[3], w[8], w[9]]);

      const [B, T] = [c.tokens.length, c.tokens[0]!.length];
      const tokens = tf.tensor(c.tokens.flat(), [B, T], "int32");
      const targets = tf.tensor(c.tokens.flatMap((row) => [...row.slice(1), 0]), [B, T], "int32");
      const mask = tf.tensor(c.tokens.flatMap(() => [...new Array<number>(T - 1).fill(1), 0]), [B, T]);
      const logits = model.forward(null, tokens, { training: false, checkShapes: true });
      assert.deepEqual(logits.shape, [B, T, 50257]);
      const V = 50257;
      const all = logits.dataSync() as Float32Array;
      const last = new Float32Array(B * V);
      for (let b = 0; b < B; b++) last.set(all.subarray((b * T + T - 1) * V, (b * T + T) * V), b * V);
      const lse = (tf.logSumExp(logits, -1) as tfjs.Tensor).dataSync();
      const cols = new Float32Array(B * T * c.columns.length);
      for (let i = 0; i < B * T; i++) c.columns.forEach((col, j) => (cols[i * c.columns.length + j] = all[i * V + col]!));
      const loss = model.loss(logits, targets, mask).dataSync();
      const errors = {
        logits_last: relError(last, golden("logits_last")),
        logsumexp: relError(lse, golden("logsumexp")),
        logits_columns: relError(cols, golden("logits_columns")),
        loss: relError(loss, golden("loss")),
      };
      t.diagnostic(`relative errors: ${JSON.stringify(errors)}`);
      for (const [k, e] of Object.entries(errors)) assert.ok(e < TOLERANCE, `${k}: relative error ${e} (${JSON.stringify(errors)})`);
      tf.dispose([tokens, targets, mask, logits]);
    } finally {
      model.dispose();
    }
  });
}

/** The checkpoint's tensors, to write damaged copies of. */
function hfTensors(): TensorToWrite[] {
  const r = readSafetensors(MODEL);
  assert.ok(r.ok);
  return [...r.tensors.values()].map((t) => ({ name: t.name, dtype: "F32" as const, shape: t.shape, data: t.data as Float32Array }));
}

test("a damaged copy is rejected naming each tensor, and leaves every variable as it was", { skip: absent }, async () => {
  const tf = await tfOf();
  const ir = compileText("hf-damaged", hfGpt2SpecText(config()));
  const model = Model.create(tf, ir, 3);
  try {
    const before = snapshot(model);
    // c_attn [2, 5] instead of [2, 6]; ln_f.bias gone; a stray tensor (a warning, not a reason).
    const damaged = hfTensors()
      .filter((t) => t.name !== "transformer.ln_f.bias")
      .map((t) => (t.name === "transformer.h.0.attn.c_attn.weight" ? { ...t, shape: [2, 5], data: t.data.slice(0, 10) as Float32Array } : t));
    damaged.push({ name: "transformer.h.1.ln_1.weight", dtype: "F32", shape: [2], data: new Float32Array(2) });
    const path = join(dir, "damaged.safetensors");
    writeFileSync(path, encodeSafetensors(damaged));
    const r = loadHfGpt2(model, path);
    assert.equal(r.ok, false);
    const messages = !r.ok ? r.problems.map((p) => p.message) : [];
    assert.deepEqual(messages, [
      "`transformer.h.0.attn.c_attn.weight` (parameter `decoder.blocks.0.attn.{q,k,v}.weight`) has shape [2, 5] in the file (q, k and v side by side), the spec needs [2, 6]",
      "parameter `decoder.ln_f.bias` [2] has no tensor in the file: it needs `transformer.ln_f.bias` [2]",
    ]);
    const after = snapshot(model);
    for (const [name, v] of before) assert.deepEqual(after.get(name), v, `${name} changed`);

    // wpe shorter than the spec's context; an integer tensor; a name given with and without `transformer.`.
    const more = hfTensors().map((t) =>
      t.name === "transformer.wpe.weight" ? { ...t, shape: [512, 2], data: t.data.slice(0, 1024) as Float32Array } : t.name === "transformer.ln_f.weight" ? { name: t.name, dtype: "I32" as const, shape: [2], data: new Int32Array(2) } : t,
    );
    more.push({ name: "ln_f.bias", dtype: "F32", shape: [2], data: new Float32Array(2) });
    writeFileSync(path, encodeSafetensors(more));
    const r2 = loadHfGpt2(model, path);
    assert.equal(r2.ok, false);
    const m2 = !r2.ok ? r2.problems.map((p) => p.message) : [];
    assert.equal(m2.length, 3, m2.join("\n"));
    assert.ok(m2.some((m) => m.startsWith("tensors `ln_f.bias` and `transformer.ln_f.bias` are the same") || m.startsWith("tensors `transformer.ln_f.bias` and `ln_f.bias` are the same")), m2.join("\n"));
    assert.ok(m2.includes("`transformer.wpe.weight` (parameter `decoder.pos_embed.weight`) has shape [512, 2] in the file, the spec needs [>= 1024, 2] (its context of 1024 positions, the first rows of the table)"), m2.join("\n"));
    assert.ok(m2.some((m) => m.startsWith("`transformer.ln_f.weight` (parameter `decoder.ln_f.weight`) is I32")), m2.join("\n"));
    for (const [name, v] of before) assert.deepEqual(snapshot(model).get(name), v, `${name} changed`);

    // The stray layer alone is a warning: the rest loads.
    writeFileSync(path, encodeSafetensors([...hfTensors(), { name: "transformer.h.1.ln_1.weight", dtype: "F32", shape: [2], data: new Float32Array(2) }]));
    const r3 = loadHfGpt2(model, path);
    assert.ok(r3.ok);
    assert.deepEqual(
      r3.warnings.map((w) => w.message),
      ["tensor `transformer.h.1.ln_1.weight` holds `decoder.blocks.1.ln_1.weight`, which the spec does not have (more layers in the checkpoint than in the spec?); it is not loaded"],
    );
  } finally {
    model.dispose();
  }
});

test("check: a damaged copy as a spec's `weights:` gives E0702/E0703 naming the tensor", { skip: absent }, () => {
  const damaged = hfTensors()
    .filter((t) => t.name !== "transformer.ln_f.bias")
    .map((t) => (t.name === "transformer.h.0.mlp.c_fc.weight" ? { ...t, shape: [8, 2] } : t));
  writeFileSync(join(dir, "damaged-check.safetensors"), encodeSafetensors(damaged));
  const path = join(dir, "damaged-check.vlm");
  writeFileSync(path, hfGpt2SpecText(config(), { weights: "damaged-check.safetensors" }));
  const ds = check([path]).diagnostics.map((d) => `${d.code} ${d.message}`);
  assert.deepEqual(ds, [
    "E0702 `damaged-check.safetensors` has no tensor for `decoder.ln_f.bias` [2]",
    "E0703 `transformer.h.0.mlp.c_fc.weight` (parameter `decoder.blocks.0.mlp.fc1.weight`) has shape [8, 2] in `damaged-check.safetensors`, the spec makes it [2, 8]",
  ]);
});

test("hfGpt2Plan leaves files with vlmc's own names to the generic check", { skip: absent }, async () => {
  const tf = await tfOf();
  const model = Model.create(tf, compileText("own-names", hfGpt2SpecText(config(), { context: 8 })), 0);
  try {
    const own = encodeSafetensors([...model.variables].map(([name, v]) => ({ name, dtype: "F32" as const, shape: v.shape, data: v.dataSync() as Float32Array })));
    const path = join(dir, "own.safetensors");
    writeFileSync(path, own);
    const h = readSafetensorsHeader(path);
    assert.ok(h.ok);
    assert.equal(hfGpt2Plan(h.header, decoderParams(model)), null);
    const r = loadHfGpt2(model, path);
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.problems[0]!.message : "", /is not a Hugging Face GPT-2 checkpoint/);
  } finally {
    model.dispose();
  }
});
