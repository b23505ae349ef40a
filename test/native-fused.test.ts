// The native fused kernels (native/src/fused_*.cc, optim.cc through runtime/native/fused.ts)
// against the composite tfjs ops they replace: forward and every gradient of layer norm, GELU
// (both forms), the attention softmax (scaled, causal or not) and the masked cross-entropy, at
// sizes that split over threads and at edge values; dropout by what a dropout must do (its rate,
// its scale, the same mask in the backward, a seed that replays); the leading-axes Sum of bias
// gradients against sums in double; Adam against the tfjs Adam of
// runtime/optim.ts and the first step's known value (lr * sign(g)); the sharing Identity/Cast
// and the in-place update refusing shared data; and a few training steps of a small
// model giving the same losses with and without the fused kernels. Skipped when the addon is
// not built (no C++ compiler at install, VLMC_NATIVE=0).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as tfjs from "@tensorflow/tfjs";
import { compile } from "../compiler/compile.js";
import { crossEntropy, crossEntropyComposite, dropout, gelu, geluComposite, layerNorm, layerNormComposite, scaledSoftmax, softmaxComposite, type Tf, type Tensor } from "../compiler/layers/ops.js";
import { initBackend } from "../runtime/backend.js";
import { Model } from "../runtime/model.js";
import { loadNative } from "../runtime/native/load.js";
import { installFusedKernels, nativeAdam, uninstallFusedKernels, type FusedAddon } from "../runtime/native/fused.js";
import { Adam } from "../runtime/optim.js";
import { relError } from "./helpers/numeric.js";

const native = loadNative();
const skip = native.loaded ? false : `the native addon is not loaded: ${native.reason}`;

let tf: Tf;
let addon: FusedAddon;
before(async () => {
  if (skip) return;
  tf = (await initBackend("wasm", { log: () => {} })).tf;
  addon = native.addon as unknown as FusedAddon;
  const r = installFusedKernels(tf, tf.backend(), addon);
  assert.deepEqual(r.skipped, [], "every fused op passes its start-up self-check");
});

/** Forward and the gradients of sum(f(xs) * w) for a fixed random w, as arrays. */
function run(f: (...xs: Tensor[]) => Tensor, xs: Tensor[]): { y: Float32Array; dx: Float32Array[] } {
  return tf.tidy(() => {
    const y = f(...xs);
    const w = tf.randomUniform(y.shape, -1, 1, "float32", 99);
    const dx = tf.grads((...ins: Tensor[]) => tf.sum(tf.mul(f(...ins), w)))(xs);
    return { y: y.dataSync() as Float32Array, dx: dx.map((d) => d.dataSync() as Float32Array) };
  }) as unknown as { y: Float32Array; dx: Float32Array[] };
}

function agree(fused: (...xs: Tensor[]) => Tensor, composite: (...xs: Tensor[]) => Tensor, xs: Tensor[], tol: number, what: string): void {
  const a = run(fused, xs);
  const b = run(composite, xs);
  assert.ok(relError(a.y, b.y) < tol, `${what}: forward relative error ${relError(a.y, b.y)}`);
  a.dx.forEach((d, i) => assert.ok(relError(d, b.dx[i]!) < tol, `${what}: gradient ${i} relative error ${relError(d, b.dx[i]!)}`));
}

const uniform = (shape: number[], seed: number, lo = -3, hi = 3) => tf.randomUniform(shape, lo, hi, "float32", seed);

test("the fused ops are the ones that run", { skip }, () => {
  for (const k of ["VlmcLayerNorm", "VlmcGelu", "VlmcSoftmax", "VlmcDropout", "VlmcCrossEntropy"]) assert.ok(tf.getKernel(k, "wasm"), k);
  assert.ok(nativeAdam(tf));
});

test("layer norm: forward, dx, dgain, dbias as the composite, with and without bias, threaded rows", { skip }, () => {
  for (const [shape, seed] of [[[4, 37, 512], 1], [[3, 7], 2], [[5, 1, 128], 3]] as [number[], number][]) {
    const c = shape[shape.length - 1]!;
    // An offset mean and a wide spread: the single-pass variance would lose digits here.
    const x = tf.tidy(() => tf.add(uniform(shape, seed), 50));
    const g = uniform([c], seed + 10);
    const b = uniform([c], seed + 20);
    agree((xx, gg, bb) => layerNorm(tf, xx!, gg!, bb, 1e-5), (xx, gg, bb) => layerNormComposite(tf, xx!, gg!, bb, 1e-5), [x, g, b], 2e-4, `layernorm ${shape}`);
    agree((xx, gg) => layerNorm(tf, xx!, gg!, undefined, 1e-5), (xx, gg) => layerNormComposite(tf, xx!, gg!, undefined, 1e-5), [x, g], 2e-4, `layernorm ${shape} no bias`);
    tf.dispose([x, g, b]);
  }
});

test("GELU, erf and tanh forms: forward and gradient as the composite, large inputs and tails", { skip }, () => {
  const x = uniform([64, 2048], 4, -10, 10); // 8 chunks of the threaded split
  const edges = tf.tensor1d([0, -0, 1e-7, -1e-7, 0.5, -0.5, 3, -3, 8, -8, 20, -20, 80, -80]);
  for (const form of ["erf", "tanh"] as const) {
    agree((t) => gelu(tf, t!, form), (t) => geluComposite(tf, t!, form), [x], 1e-5, `gelu ${form}`);
    agree((t) => gelu(tf, t!, form), (t) => geluComposite(tf, t!, form), [edges], 1e-5, `gelu ${form} edges`);
  }
  tf.dispose([x, edges]);
});

test("attention softmax: scaled, causal or not, forward and gradient as the composite", { skip }, () => {
  for (const [shape, causal] of [[[16, 8, 33, 33], true], [[16, 8, 37, 37], false], [[2, 3, 5, 9], false], [[1, 1, 1, 1], true]] as [number[], boolean][]) {
    const s = uniform(shape, shape.length + shape[2]!, -20, 20);
    agree((t) => scaledSoftmax(tf, t!, 0.125, causal), (t) => softmaxComposite(tf, t!, 0.125, causal), [s], 1e-5, `softmax ${shape} causal=${causal}`);
    tf.dispose(s);
  }
  // Causal rows see only the past: the weights above the diagonal are exactly 0.
  const y = tf.tidy(() => scaledSoftmax(tf, uniform([1, 1, 4, 4], 5), 1, true).dataSync());
  assert.deepEqual([y[1], y[2], y[3], y[6], y[7], y[11]], [0, 0, 0, 0, 0, 0]);
  assert.equal(y[0], 1);
});

test("cross-entropy: the loss and dlogits as the composite, with padding, fractional masks, visual positions and a target out of range", { skip }, () => {
  const [b, n, t, v] = [16, 38, 32, 66];
  const logits = uniform([b, n, v], 6, -8, 8);
  const ids = Int32Array.from({ length: b * t }, (_, i) => (i * 7919) % v);
  ids[5] = -1; // counts 0, as the composite's one-hot of -1
  const targets = tf.tensor2d(ids, [b, t], "int32");
  const maskData = Float32Array.from({ length: b * t }, (_, i) => (i % 9 === 0 ? 0 : i % 13 === 0 ? 0.5 : 1));
  const mask = tf.tensor2d(maskData, [b, t]);
  agree((l) => crossEntropy(tf, l!, targets, mask), (l) => crossEntropyComposite(tf, l!, targets, mask), [logits], 1e-5, "cross-entropy");
  // All padding: the mean over max(sum(mask), 1) is 0, and so is the gradient.
  const zeros = tf.zeros([b, t]);
  agree((l) => crossEntropy(tf, l!, targets, zeros), (l) => crossEntropyComposite(tf, l!, targets, zeros), [logits], 1e-6, "cross-entropy, all padding");
  tf.dispose([logits, targets, mask, zeros]);
});

test("dropout: rate, scale, the forward's mask in the backward, replayed by the seed, fresh for another", { skip }, () => {
  const p = 0.1;
  const x = tf.ones([512, 1024]);
  const stats = tf.tidy(() => {
    const y = dropout(tf, x, p, 42).dataSync();
    const again = dropout(tf, x, p, 42).dataSync();
    const other = dropout(tf, x, p, 43).dataSync();
    const g = tf.grad((t: Tensor) => tf.sum(dropout(tf, t, p, 42)))(x).dataSync();
    let dropped = 0;
    let same = 0;
    let sameOther = 0;
    let maskInGrad = true;
    for (let i = 0; i < y.length; i++) {
      if (y[i] === 0) dropped++;
      else assert.ok(Math.abs(y[i]! - 1 / (1 - p)) < 1e-6, `kept element ${i} is ${y[i]}`);
      if (y[i] === again[i]) same++;
      if (y[i] === other[i]) sameOther++;
      if (g[i] !== y[i]) maskInGrad = false;
    }
    return { frac: dropped / y.length, same: same / y.length, sameOther: sameOther / y.length, maskInGrad };
  }) as unknown as { frac: number; same: number; sameOther: number; maskInGrad: boolean };
  // 524,288 draws: the dropped fraction is within 5 standard deviations (0.0021) of p.
  assert.ok(Math.abs(stats.frac - p) < 0.0021, `dropped ${stats.frac}`);
  assert.equal(stats.same, 1, "the same seed drops the same elements");
  assert.ok(stats.sameOther < 1 - p * (1 - p), `another seed draws another mask (${stats.sameOther} agree)`);
  assert.ok(stats.maskInGrad, "the gradient is the forward's mask times the scale");
  // Consecutive elements are independent: no run of drops longer than chance allows.
  const y = tf.tidy(() => dropout(tf, tf.ones([1 << 20]), 0.5, 7).dataSync());
  let run = 0;
  let longest = 0;
  for (const e of y) longest = Math.max(longest, (run = e === 0 ? run + 1 : 0));
  assert.ok(longest < 40, `a run of ${longest} drops`);
  x.dispose();
});

test("Sum over leading axes (bias gradients) in one native pass: as a sum in double, keepDims, other axes untouched", { skip }, () => {
  const [a, b, c] = [7, 33, 200];
  const x = uniform([a, b, c], 60);
  const xs = x.dataSync();
  const want = new Float64Array(c);
  for (let i = 0; i < a * b; i++) for (let j = 0; j < c; j++) want[j]! += xs[i * c + j]!;
  const got = tf.tidy(() => [tf.sum(x, [0, 1]), tf.sum(x, [1, 0], true), tf.sum(x.reshape([a * b, c]), 0)].map((t) => ({ shape: t.shape, data: t.dataSync().slice() })));
  assert.deepEqual(got.map((g) => g.shape), [[c], [1, 1, c], [c]]);
  for (const g of got) assert.ok(relError(g.data, want) < 1e-5, `relative error ${relError(g.data, want)}`);
  // The innermost axis and a middle one stay with tfjs's kernel, and agree with the same sums.
  const inner = tf.tidy(() => tf.sum(x, -1).dataSync().slice());
  assert.ok(Math.abs(inner[0]! - Array.from(xs.slice(0, c)).reduce((s, v) => s + v, 0)) < 1e-4);
  assert.deepEqual(tf.tidy(() => tf.sum(x, 1).shape), [a, c]);
  x.dispose();
});

test("Adam: the native update as runtime/optim.ts's tfjs ops over steps, L2 and decoupled decay; the first step is lr * sign(g)", { skip }, () => {
  for (const decoupled of [false, true]) {
    const opts = { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.05, decoupled };
    const runAdam = (native: boolean) => {
      if (!native) uninstallFusedKernels(tf);
      const p = tf.variable(uniform([1000, 300], 30), true, `w${native}${decoupled}`);
      const adam = new Adam(tf, opts);
      for (let s = 0; s < 4; s++) {
        const g = uniform([1000, 300], 40 + s, -1, 1);
        adam.apply(new Map([[p.name, p]]), { [p.name]: g });
        g.dispose();
      }
      const out = p.dataSync().slice();
      p.dispose();
      adam.dispose();
      if (!native) installFusedKernels(tf, tf.backend(), addon);
      return out;
    };
    const a = runAdam(true);
    const b = runAdam(false);
    assert.ok(relError(a, b) < 1e-6, `decoupled=${decoupled}: relative error ${relError(a, b)}`);
  }
  // Step 1: m_hat = g, v_hat = g^2, so p moves by lr * g / (|g| + eps) = lr * sign(g).
  const p = tf.variable(tf.zeros([8]), true, "first-step");
  const g = tf.tensor1d([1, -2, 0.5, -0.25, 3, -3, 0.01, -0.01]); // eps shifts the last by 1e-6
  const adam = new Adam(tf, { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false });
  adam.apply(new Map([[p.name, p]]), { [p.name]: g });
  assert.ok(relError(p.dataSync(), [-0.1, 0.1, -0.1, 0.1, -0.1, 0.1, -0.1, 0.1]) < 1e-5);
  tf.dispose([p, g]);
  adam.dispose();
});

test("shared data: Identity and Cast share, the in-place update leaves a held clone alone", { skip }, () => {
  const p = tf.variable(tf.tensor1d([1, 2, 3]), true, "shared");
  const clone = p.clone(); // shares p's data with the sharing Identity
  const asFloat = tf.cast(p, "float32");
  const adam = new Adam(tf, { lr: 0.5, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false });
  const g = tf.tensor1d([1, 1, 1]);
  adam.apply(new Map([[p.name, p]]), { [p.name]: g });
  assert.deepEqual([...clone.dataSync()], [1, 2, 3], "the clone keeps the old values");
  assert.deepEqual([...asFloat.dataSync()], [1, 2, 3]);
  assert.ok(relError(p.dataSync(), [0.5, 1.5, 2.5]) < 1e-6, "the parameter moved (by the tfjs ops)");
  clone.dispose();
  asFloat.dispose();
  assert.deepEqual([...p.dataSync()].map((v) => Math.round(v * 10) / 10), [0.5, 1.5, 2.5], "disposing a sharer keeps the data");
  tf.dispose([p, g]);
  adam.dispose();
});

test("training: a small model's losses over steps with and without the fused kernels agree", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "vlmc-fused-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const spec = join(dir, "small.vlm");
  writeFileSync(
    spec,
    `vlm 0.1

model small {
  tokenizer chars {
    alphabet: "abcdefghij "
    specials: [pad]
  }

  encoder vit {
    image: 16 x 16 x 3
    patch: 8
    dim: 32
    heads: 4
    blocks: 2
    mlp: 64
    cls: true
    output: cls
  }

  projector {
    linear(64) -> gelu -> linear(24)
  }

  decoder gpt {
    dim: 24
    heads: 3
    layers: 2
    context: 16
    position: learned
    activation: gelu_tanh
  }
}
`,
  );
  const { ir } = compile(spec);
  assert.ok(ir, "the spec compiles");
  const losses = (fused: boolean) => {
    if (!fused) uninstallFusedKernels(tf);
    const model = Model.create(tf, ir!, 3);
    const adam = new Adam(tf, { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, decoupled: true });
    const images = uniform([4, 16, 16, 3], 50, 0, 1);
    const tokens = tf.randomUniform([4, 10], 0, 12, "int32", 51);
    const targets = tf.randomUniform([4, 10], 0, 12, "int32", 52);
    const mask = tf.tensor2d(Float32Array.from({ length: 40 }, (_, i) => (i % 10 < 8 ? 1 : 0)), [4, 10]);
    const out: number[] = [];
    for (let s = 0; s < 6; s++) {
      const r = tf.variableGrads(() => model.loss(model.forward(images, tokens, { training: true, dropoutSeed: s, checkShapes: true }), targets, mask) as tfjs.Scalar);
      adam.apply(model.variables, r.grads);
      out.push(r.value.dataSync()[0]!);
      tf.dispose([r.value, ...Object.values(r.grads)]);
    }
    tf.dispose([images, tokens, targets, mask]);
    model.dispose();
    adam.dispose();
    if (!fused) installFusedKernels(tf, tf.backend(), addon);
    return out;
  };
  const before = tf.memory().numTensors;
  const a = losses(true);
  assert.equal(tf.memory().numTensors, before, "the fused path leaks no tensor");
  const b = losses(false);
  assert.ok(a[5]! < a[0]!, `the loss falls: ${a.join(", ")}`);
  assert.ok(relError(a, b) < 1e-4, `fused ${a.join(", ")} vs composite ${b.join(", ")}`);
});
