// Cost estimates (compiler/cost/estimate.ts) against figures worked out by hand, independently
// of the layer kinds' own `params` and `flops`; the summary built on them (compiler/summary/).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { checkSource } from "../compiler/check.js";
import { compile } from "../compiler/compile.js";
import { estimate, evalDim, memoryWarnings, WASM_HEAP_BYTES, DEFAULT_TEXT_CAP, type Estimate, type StageCost } from "../compiler/cost/estimate.js";
import type { Ir, IrLayer, IrStage } from "../compiler/ir/types.js";
import { renderSummary, summaryJson } from "../compiler/summary/summary.js";
import { repoPath } from "./helpers/paths.js";
import { matchSnapshot } from "./helpers/snapshot.js";

const SEED = repoPath("specs", "seemore.vlm");
const seedText = readFileSync(SEED, "utf8");

function irOf(path: string, text?: string): Ir {
  const r = compile(path, text === undefined ? {} : { text });
  const errors = r.diagnostics.filter((d) => d.severity === "error");
  assert.deepEqual(errors.map((d) => `${d.code} ${d.message}`), []);
  assert.ok(r.ir);
  return r.ir;
}

/** The seed spec with its `train` section replaced. */
function seedWithTrain(train: string): string {
  const at = seedText.indexOf("\ntrain {");
  assert.ok(at > 0);
  return `${seedText.slice(0, at)}\n${train}\n`;
}

const stage = (est: Estimate, name: string): StageCost => {
  const s = est.stages.find((x) => x.name === name);
  assert.ok(s, `no stage ${name}`);
  return s;
};

// ---- dims ----

test("evalDim reads numbers, B, T and N+T", () => {
  const sizes = { B: 16, T: 64 };
  assert.equal(evalDim(37, sizes), 37);
  assert.equal(evalDim("B", sizes), 16);
  assert.equal(evalDim("T", sizes), 64);
  assert.equal(evalDim("1+T", sizes), 65);
  assert.equal(evalDim("36+T", sizes), 100);
  assert.equal(evalDim("2*B", sizes), 32);
  assert.throws(() => evalDim("N", sizes), /unknown symbol `N`/);
});

// ---- parameters ----

/**
 * The seed model's parameters by hand, from reference-model.md and the article's PyTorch code
 * (tools/torch/seemore.py prints 9,866,752 / 1,312,896 / 1,728,322 / 12,907,970).
 */
function seedParamsByHand() {
  const vitBlock = (d: number, hidden: number) =>
    2 * 2 * d + // two LayerNorms (gain + bias)
    3 * d * d + // q, k, v without bias
    (d * d + d) + // output projection with bias
    (d * hidden + hidden + hidden * d + d); // MLP with biases
  const encoder =
    16 * 16 * 3 * 512 + 512 + // patch projection (a conv 16x16x3 -> 512, with bias)
    512 + // CLS token
    37 * 512 + // learned positions: 36 patches + CLS
    3 * vitBlock(512, 2048) +
    2 * 512; // final LayerNorm
  const projector = 512 * 2048 + 2048 + 2048 * 128 + 128;
  const decoder =
    66 * 128 + // token embedding: 65 characters + <pad>
    1000 * 128 + // learned positions
    8 * vitBlock(128, 512) + // the same block shape at 128 (causal, but no more weights)
    2 * 128 + // ln_f
    (128 * 66 + 66); // lm_head, untied, with a bias
  return { encoder, projector, decoder, total: encoder + projector + decoder };
}

test("the seed model's parameter count equals the hand count (and PyTorch's)", () => {
  const hand = seedParamsByHand();
  assert.deepEqual(hand, { encoder: 9_866_752, projector: 1_312_896, decoder: 1_728_322, total: 12_907_970 });
  const est = estimate(irOf(SEED));
  assert.equal(est.paramsTotal, hand.total);
  assert.deepEqual(est.paramsByModule, { encoder: hand.encoder, projector: hand.projector, decoder: hand.decoder });
  assert.equal(summaryJson(est).params.total, hand.total);
});

// ---- FLOPs ----

/** A hand-made IR: an encoder of given layers at [B, N, D] (no train section). */
function irWithLayers(layers: IrLayer[], input: (string | number)[]): Ir {
  return {
    vlmc_ir: 1,
    model: "handmade",
    hash: "",
    tokenizer: null,
    modules: { encoder: { preset: null, weights: null, input, output: layers[layers.length - 1]!.output, layers } },
    train: null,
  };
}

test("forward FLOPs of a linear and an attention layer equal the hand formulas", () => {
  const [B, N, D, H, OUT] = [3, 5, 8, 2, 6];
  const attention: IrLayer = {
    kind: "attention",
    name: "attn",
    path: "encoder.attn",
    attrs: { heads: H, kv_heads: H, causal: false, scale: "head", qkv_bias: false, out_bias: true, rope: false, rope_base: 10000, dropout: 0 },
    input: ["B", N, D],
    output: ["B", N, D],
    params: [],
  };
  const linear: IrLayer = {
    kind: "linear",
    name: "proj",
    path: "encoder.proj",
    attrs: { out: OUT, bias: true, in: D },
    input: ["B", N, D],
    output: ["B", N, OUT],
    params: [
      { name: "encoder.proj.weight", shape: [D, OUT], init: { kind: "xavier_uniform" }, decay: true },
      { name: "encoder.proj.bias", shape: [OUT], init: { kind: "zeros" }, decay: false },
    ],
  };
  const est = estimate(irWithLayers([attention, linear], ["B", N, D]), { batch: B });
  const [a, l] = est.modules[0]!.layers;
  // A linear layer: one multiply-add (2 FLOPs) per input feature, output feature and row.
  assert.equal(l!.flops, 2 * B * N * D * OUT); // 1,440
  // Attention: q, k, v, o projections (4 matmuls [B N, D] x [D, D]); per head q k^T and p v
  // ([N, hd] x [hd, N] and [N, N] x [N, hd], summed over heads: 2 x 2 B N^2 D); the softmax at
  // 5 FLOPs per score (max, subtract, exp, sum, divide).
  const hand = 4 * (2 * B * N * D * D) + 2 * (2 * B * N * N * D) + 5 * B * H * N * N;
  assert.equal(hand, 7_680 + 2_400 + 750);
  assert.equal(a!.flops, hand);
  assert.equal(l!.params, D * OUT + OUT);
});

/** The seed model's matrix products (2 FLOPs per multiply-add), by hand, at batch B and T text tokens. */
function seedMatmulFlopsByHand(B: number, T: number): number {
  const enc = (() => {
    const rows = B * 37; // 36 patches + CLS
    const patch = 2 * B * 36 * (16 * 16 * 3) * 512; // the CLS token is not projected
    const attn = 4 * 2 * rows * 512 * 512 + 2 * 2 * B * 37 * 37 * 512;
    const mlp = 2 * 2 * rows * 512 * 2048;
    return patch + 3 * (attn + mlp);
  })();
  const proj = 2 * B * 512 * 2048 + 2 * B * 2048 * 128; // one visual token
  const dec = (() => {
    const n = 1 + T;
    const rows = B * n;
    const attn = 4 * 2 * rows * 128 * 128 + 2 * 2 * B * n * n * 128;
    const mlp = 2 * 2 * rows * 128 * 512;
    return 8 * (attn + mlp) + 2 * rows * 128 * 66; // + the LM head
  })();
  return enc + proj + dec;
}

test("the seed model's forward FLOPs agree with a hand count of its matrix products", () => {
  const est = estimate(irOf(SEED), { batch: 16, text: 128 });
  const forward = est.modules.reduce((a, m) => a + m.flops, 0);
  const matmuls = seedMatmulFlopsByHand(16, 128);
  // The same figure PyTorch's profiler gives (torch.profiler, with_flops=True, on
  // tools/torch/seemore.py at B=16, T=128: conv2d + mm + bmm + addmm).
  assert.equal(matmuls, 19_421_372_416);
  // The estimate adds the element-wise work (norms, GELU, softmax, residual adds, dropout): ~1%.
  assert.ok(forward >= matmuls && forward < matmuls * 1.02, `forward ${forward} vs matrix products ${matmuls}`);
  // The encoder exactly, element-wise work included (LayerNorm 8, GELU 8, softmax 5, add 1,
  // dropout 1 FLOPs per element), at B=16: rows = 16 x 37 = 592.
  const rows = 592;
  const ln = 8 * rows * 512;
  const block = 2 * ln + (4 * 2 * rows * 512 * 512 + 2 * 2 * 16 * 37 * 37 * 512 + 5 * 16 * 8 * 37 * 37) + (2 * 2 * rows * 512 * 2048 + 8 * rows * 2048) + 2 * rows * 512;
  const encoder = 2 * 16 * 36 * 768 * 512 + rows * 512 /* positions */ + rows * 512 /* dropout */ + 3 * block + ln + rows * 512; /* take */
  assert.equal(encoder, 11_812_617_088);
  assert.equal(est.modules.find((m) => m.name === "encoder")!.flops, encoder);
  // A training step of the joint stage: forward + 2 x forward.
  assert.equal(stage(est, "joint").flopsPerStep, 3 * forward);
});

test("FLOPs per generated token: the decoder for one token against a full key/value cache", () => {
  const est = estimate(irOf(SEED));
  assert.equal(est.cacheLength, 1000);
  // Per block: 2 LayerNorms (8 FLOPs x 128), q/k/v/o for one token (4 x 2 x 128 x 128), q k^T
  // and p v against 1000 cached positions (2 x 2 x 1000 x 128) with a softmax (5 x 8 heads x
  // 1000), the MLP (2 x 2 x 128 x 512 + GELU 8 x 512), two residual adds (2 x 128).
  const block = 2 * 8 * 128 + 4 * 2 * 128 * 128 + 2 * 2 * 1000 * 128 + 5 * 8 * 1000 + (2 * 2 * 128 * 512 + 8 * 512) + 2 * 128;
  const hand = 128 /* position add */ + 8 * block + 8 * 128 /* ln_f */ + 2 * 128 * 66; /* lm_head */
  assert.equal(hand, 7_630_976);
  assert.equal(est.flopsPerToken, hand);
});

// ---- stages ----

const twoStages = seedWithTrain(`train {
  data: shapes(images: 2000, size: 96, seed: 1)
  batch: 16

  stage align {
    train: [projector]
    steps: 100
  }
  stage tune {
    train: [projector, decoder]
    steps: 100
  }
  stage text_only {
    train: [decoder]
    data: text(file: "../README.md")
    steps: 100
  }
}`);

test("a stage that trains only the projector runs the encoder forward only", () => {
  const est = estimate(irOf(SEED, twoStages));
  const align = stage(est, "align");
  const [enc, proj, dec] = align.modules;
  assert.deepEqual(
    align.modules.map((m) => [m.name, m.role]),
    [
      ["encoder", "forward"],
      ["projector", "trained"],
      ["decoder", "backprop"],
    ],
  );
  assert.ok(enc!.forwardFlops > 0);
  assert.equal(enc!.backwardFlops, 0);
  assert.equal(enc!.activationBytes, 0);
  assert.equal(proj!.backwardFlops, 2 * proj!.forwardFlops);
  // The frozen decoder still passes gradients back to the projector: activation gradients only.
  assert.equal(dec!.backwardFlops, dec!.forwardFlops);
  assert.ok(dec!.activationBytes > 0);
  assert.equal(align.paramsTrained, 1_312_896);
  // Only the projector's gradients and Adam moments: 3 x 4 bytes per parameter.
  assert.equal(align.memory.gradients + align.memory.optimizer, 12 * 1_312_896);

  const tune = stage(est, "tune");
  assert.equal(tune.modules[0]!.backwardFlops, 0);
  assert.equal(tune.modules[2]!.backwardFlops, 2 * tune.modules[2]!.forwardFlops);
  assert.ok(tune.peakBytes > align.peakBytes);

  // A text-only stage runs no encoder and no projector, and the decoder sees T tokens, not 1+T.
  const text = stage(est, "text_only");
  assert.deepEqual(
    text.modules.map((m) => [m.role, m.forwardFlops === 0]),
    [
      ["skipped", true],
      ["skipped", true],
      ["trained", false],
    ],
  );
  assert.ok(text.modules[2]!.forwardFlops < dec!.forwardFlops);
  assert.deepEqual(summaryJson(est).params.trainable_by_stage, { align: 1_312_896, tune: 1_312_896 + 1_728_322, text_only: 1_728_322 });
});

test("the text length defaults to the text budget, capped", () => {
  const est = estimate(irOf(SEED));
  assert.equal(est.visualTokens, 1);
  assert.equal(est.context, 1000);
  assert.equal(est.textBudget, 999);
  assert.equal(est.text, Math.min(999, DEFAULT_TEXT_CAP));
  assert.equal(est.batch, 16);
  assert.equal(estimate(irOf(SEED), { text: 10, batch: 2 }).text, 10);
});

// ---- W0502 ----

const bigModel = `vlm 0.1

model big {
  tokenizer chars { alphabet: "abcdefghijklmnopqrstuvwxyz .", specials: [pad] }
  encoder vit {
    image: 224 x 224 x 3
    patch: 16
    dim: 384
    heads: 6
    blocks: 6
    output: cls
  }
  projector { linear(1536) -> gelu -> linear(decoder.dim) }
  decoder gpt {
    dim: 384
    heads: 6
    layers: 6
    context: 256
  }
}

train {
  data: shapes(images: 500, size: 224, seed: 1)
  batch: 96

  stage all {
    train: [encoder, projector, decoder]
    steps: 100
  }
}
`;

test("W0502: a big model with a big batch does not fit, and the suggested micro-batch does", () => {
  const path = repoPath("specs", "big.vlm");
  const ir = irOf(path, bigModel);
  const est = estimate(ir);
  const all = stage(est, "all");
  assert.equal(all.fitsWasm, false);
  assert.ok(all.wasmPeakBytes > WASM_HEAP_BYTES);
  const acc = all.suggestedAccumulate;
  assert.ok(typeof acc === "number" && acc > 1 && 96 % acc === 0, `suggested ${acc}`);

  // With that accumulation the step fits; with the next smaller one it does not.
  const withAccumulate = (n: number): StageCost => {
    const stages: IrStage[] = ir.train!.stages.map((s) => ({ ...s, accumulate: n }));
    return stage(estimate({ ...ir, train: { ...ir.train!, stages } }), "all");
  };
  const fitted = withAccumulate(acc);
  assert.equal(fitted.fitsWasm, true);
  assert.equal(fitted.microBatch, 96 / acc);
  assert.equal(fitted.suggestedAccumulate, undefined);
  const smaller = [...Array(acc).keys()].filter((n) => n >= 1 && 96 % n === 0);
  assert.equal(withAccumulate(smaller[smaller.length - 1]!).fitsWasm, false);
  // FLOPs per step do not depend on how the batch is split.
  assert.equal(fitted.flopsPerStep, all.flopsPerStep);

  // `check` reports it at the stage's name, with the suggestion.
  const r = checkSource(path, bigModel);
  const w = r.diagnostics.filter((d) => d.code === "W0502");
  assert.equal(w.length, 1);
  assert.equal(w[0]!.severity, "warning");
  assert.equal(bigModel.slice(w[0]!.span.start, w[0]!.span.end), "all");
  assert.ok(w[0]!.help.some((h) => h.includes(`\`accumulate: ${acc}\``)), w[0]!.help.join("\n"));
  assert.equal(r.ok, true);
  // And the stage with the suggestion applied is clean.
  const fixed = bigModel.replace("steps: 100\n  }\n}", `steps: 100\n    accumulate: ${acc}\n  }\n}`);
  assert.notEqual(fixed, bigModel);
  assert.deepEqual(
    checkSource(path, fixed).diagnostics.map((d) => d.code),
    [],
  );
});

test("W0502 says when not even a micro-batch of 1 fits", () => {
  const huge = bigModel.replace("dim: 384\n    heads: 6\n    layers: 6\n    context: 256", "dim: 2048\n    heads: 16\n    layers: 48\n    context: 256");
  const est = estimate(irOf(repoPath("specs", "huge.vlm"), huge), { text: 250 });
  const all = stage(est, "all");
  assert.equal(all.fitsWasm, false);
  assert.equal(all.suggestedAccumulate, null);
  const ds = memoryWarnings(est, () => ({ file: "huge.vlm", start: 0, end: 1 }));
  assert.equal(ds.length, 1);
  assert.match(ds[0]!.help.join("\n"), /even a micro-batch of 1/);
});

test("the seed spec is clean: its step fits the wasm heap", () => {
  const est = estimate(irOf(SEED));
  assert.equal(stage(est, "joint").fitsWasm, true);
  assert.deepEqual(
    checkSource(SEED, seedText).diagnostics.map((d) => d.code),
    [],
  );
});

// ---- summary ----

test("summary JSON has the documented fields", () => {
  const est = estimate(irOf(SEED, twoStages), { batch: 16, text: 64 });
  const j = JSON.parse(JSON.stringify(summaryJson(est))) as Record<string, unknown> & ReturnType<typeof summaryJson>;
  for (const k of ["model", "batch", "text", "params", "modules", "stages", "flops_per_token", "visual_tokens", "text_budget"]) assert.ok(k in j, `no ${k}`);
  assert.equal(j.model, "seemore");
  assert.equal(j.batch, 16);
  assert.equal(j.text, 64);
  assert.equal(j.visual_tokens, 1);
  assert.equal(j.text_budget, 999);
  assert.equal(j.params.total, 12_907_970);
  assert.deepEqual(Object.keys(j.params.by_module), ["encoder", "projector", "decoder"]);
  assert.deepEqual(
    j.modules.map((m) => m.name),
    ["encoder", "projector", "decoder"],
  );
  const attn = j.modules[0]!.layers.find((l) => l.path === "encoder.blocks")!.children![0]!.children![0]!.children!.find((l) => l.kind === "attention")!;
  assert.equal(attn.path, "encoder.blocks.0.attn");
  assert.deepEqual(attn.output, ["B", 37, 512]);
  assert.deepEqual(attn.trained_in, []); // the encoder is trained in no stage of this train section
  for (const k of ["path", "kind", "output", "params", "flops", "activation_bytes", "trained_in"]) assert.ok(k in attn, `layer has no ${k}`);
  const dec = j.modules[2]!;
  assert.deepEqual(dec.output, ["B", "1+T", 66]);
  assert.deepEqual(dec.trained_in, ["tune", "text_only"]);
  assert.deepEqual(
    j.stages.map((s) => s.name),
    ["align", "tune", "text_only"],
  );
  for (const s of j.stages) {
    for (const k of ["name", "train", "frozen", "params_trained", "flops_per_step", "peak_bytes", "wasm_peak_bytes", "fits_wasm"]) assert.ok(k in s, `stage has no ${k}`);
    assert.equal(s.fits_wasm, true);
    assert.ok(!("suggested_accumulate" in s));
  }
  assert.deepEqual(j.stages[0]!.frozen, ["encoder", "decoder"]);
  assert.equal(typeof j.flops_per_token, "number");
});

test("summary text: a table with symbolic shapes, collapsed blocks and human units", () => {
  const est = estimate(irOf(SEED), { batch: 16, text: 64 });
  const text = renderSummary(est, { color: false, depth: 2 });
  assert.doesNotMatch(text, /\u001b\[/);
  assert.match(text, /12,907,970 parameters \(12\.9M\)/);
  assert.match(text, /blocks\.0-2 \(x3\)/);
  assert.match(text, /blocks\.0-7 \(x8\)/);
  assert.match(text, /\[B, 1\+T, 128\]/);
  assert.match(text, /text budget 999 = context 1000 - 1 visual/);
  assert.match(text, /GFLOP/);
  assert.match(text, /MiB/);
  matchSnapshot("summary-seemore", text);
  const deep = renderSummary(est, { color: false, depth: 4 });
  assert.match(deep, /blocks\.1\.attn +attention/);
  assert.doesNotMatch(deep, /\(x3\)/);
  const shallow = renderSummary(est, { color: false, depth: 1 });
  assert.doesNotMatch(shallow, /blocks\.0/);
});
