// Decoding with a key/value cache (runtime/generate.ts, KvCache in runtime/model.ts, the cached
// path of compiler/layers/attention.ts) against decoding without one, which re-runs the whole
// forward pass every token: small models with random weights (scaled up so that logits are far
// apart and an argmax is not a coin toss of rounding), for learned, rotary and sinusoidal
// positions and grouped key/value heads, batch 3. The same tokens, and every logit the tokens
// were chosen from equal within float32 rounding. Also: several new positions fed at once after
// cached ones (the offset causal mask), prompts of different lengths in one batch, sampling
// with a seed, and the attention to the visual tokens that `--explain` draws.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { compile } from "../compiler/compile.js";
import type { Ir } from "../compiler/ir/types.js";
import { initBackend, type Tf } from "../runtime/backend.js";
import { generate, type GenerateOptions } from "../runtime/generate.js";
import { irParams, KvCache, Model } from "../runtime/model.js";
import { normal } from "../runtime/random.js";
import { assignValues } from "../runtime/weights.js";
import { relError } from "./helpers/numeric.js";

let tf: Tf;
before(async () => {
  tf = (await initBackend("wasm", { log: () => {} })).tf;
});

function irOf(text: string): Ir {
  const r = compile("test.vlm", { text: new TextEncoder().encode(text), baseDir: process.cwd() });
  assert.ok(r.ir, r.diagnostics.map((d) => `${d.code} ${d.message}`).join("\n"));
  return r.ir;
}

/** A model with an 8 x 8 image in 4 patches (4 visual tokens) and the given decoder. */
function spec(decoder: string): string {
  return `vlm 0.1
model cached {
  tokenizer chars { alphabet: "abcdefghijklm", specials: [pad, bos, eos] }
  encoder vit { image: 8 x 8 x 3, patch: 4, dim: 16, heads: 2, blocks: 1, cls: false, output: patches }
  projector { linear(decoder.dim) }
  decoder ${decoder}
}
`;
}

const DECODERS: Record<string, string> = {
  learned: "gpt { dim: 16, heads: 2, layers: 2, context: 24 }",
  // Rotary positions leave no context limit in the IR: generation is given maxTokens.
  rope: "llama { dim: 16, heads: 4, kv_heads: 2, layers: 2, context: 24 }",
  sinusoidal: "gpt { dim: 16, heads: 2, layers: 2, context: 24, position: sinusoidal }",
};

/** Seeded weights with standard deviation `std` (norm gains 1 +- 0.1): decisive, varied logits. */
function randomModel(ir: Ir, seed: number, std = 0.5): Model {
  const model = Model.create(tf, ir, seed);
  const g = normal(seed + 1000);
  assignValues(
    model,
    irParams(ir).map((p) => {
      const n = p.shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = p.init.kind === "ones" ? 1 + 0.1 * g() : g() * std;
      return [p.name, data] as [string, Float32Array];
    }),
  );
  return model;
}

function pixels(rows: number, seed: number): Float32Array {
  const g = normal(seed);
  return Float32Array.from({ length: rows * 8 * 8 * 3 }, () => g());
}

async function both(model: Model, px: Float32Array, rows: number, options: Omit<GenerateOptions, "cache" | "keepLogits">) {
  const images = tf.tensor4d(px, [rows, 8, 8, 3]);
  try {
    const cached = await generate(model, images, { ...options, keepLogits: true });
    const full = await generate(model, images, { ...options, cache: false, keepLogits: true });
    return { cached, full };
  } finally {
    images.dispose();
  }
}

for (const [name, decoder] of Object.entries(DECODERS)) {
  test(`${name} positions: cached and uncached decoding give the same tokens and logits (batch 3)`, async () => {
    const model = randomModel(irOf(spec(decoder)), 12);
    try {
      // No eos: every row runs the whole context (20 text positions), so every cached position is used.
      const { cached, full } = await both(model, pixels(3, 5), 3, { prompt: [1], eos: null, maxTokens: 20 });
      assert.equal(cached.steps, 20);
      assert.equal(full.steps, 20);
      for (let b = 0; b < 3; b++) {
        assert.deepEqual(Array.from(cached.ids[b]!), Array.from(full.ids[b]!), `row ${b}`);
        assert.equal(cached.ids[b]!.length, 20);
        const c = cached.logits![b]!;
        const f = full.logits![b]!;
        assert.equal(c.length, 20);
        for (let t = 0; t < c.length; t++) assert.ok(relError(c[t]!, f[t]!) < 1e-5, `row ${b} token ${t}: ${relError(c[t]!, f[t]!)}`);
      }
      // A random model is not stuck on one token: the comparison covers varied inputs.
      assert.ok(new Set(cached.ids.flatMap((r) => Array.from(r))).size >= 3);
    } finally {
      model.dispose();
    }
  });
}

test("several new positions after cached ones: the offset causal mask gives the full pass's logits", async () => {
  for (const decoder of [DECODERS.learned!, DECODERS.rope!]) {
    const model = randomModel(irOf(spec(decoder)), 3);
    try {
      const ids = [1, 4, 7, 3, 9, 12, 5];
      const images = tf.tensor4d(pixels(2, 9), [2, 8, 8, 3]);
      const tokens = (from: number, to: number) => tf.tensor2d(Int32Array.from([...ids.slice(from, to), ...ids.slice(from, to).reverse()]), [2, to - from], "int32");
      // Row 1 holds the reversed slice: rows stay apart.
      const whole = tf.tidy(() => {
        const all = tf.tensor2d(Int32Array.from([...ids, ...ids.slice(0, 3).reverse(), ...ids.slice(3, 7).reverse()]), [2, 7], "int32");
        return model.forward(images, all, { training: false });
      });
      const cache = new KvCache(tf, 4 + 7);
      const first = tf.tidy(() => model.forward(images, tokens(0, 3), { training: false, cache }));
      assert.equal(cache.length, 4 + 3);
      const rest = tf.tidy(() => model.forward(null, tokens(3, 7), { training: false, cache }));
      assert.equal(cache.length, 4 + 7);
      assert.deepEqual(rest.shape, [2, 4, 13 + 3]);
      const want = tf.tidy(() => tf.slice(whole, [0, 7, 0], [2, 4, 16]));
      const err = relError((await rest.data()) as Float32Array, (await want.data()) as Float32Array);
      assert.ok(err < 1e-5, `relative error ${err}`);
      assert.throws(() => tf.tidy(() => model.forward(null, tokens(0, 1), { training: false, cache })), /more than the cache's capacity of 11/);
      tf.dispose([images, whole, first, rest, want]);
      cache.dispose();
    } finally {
      model.dispose();
    }
  }
});

test("prompts of different lengths in one batch: each row as alone, cached and not", async () => {
  const model = randomModel(irOf(spec(DECODERS.rope!)), 4);
  try {
    const prompts = [[1, 5, 6, 7], [1], [1, 9]];
    const px = pixels(3, 6);
    const { cached, full } = await both(model, px, 3, { prompt: prompts, eos: 2, maxTokens: 10 });
    for (let b = 0; b < 3; b++) {
      assert.deepEqual(Array.from(cached.ids[b]!), Array.from(full.ids[b]!), `row ${b}: cached against full`);
      const alone = await both(model, px.slice(b * 192, (b + 1) * 192), 1, { prompt: prompts[b]!, eos: 2, maxTokens: 10 });
      assert.deepEqual(Array.from(alone.cached.ids[0]!), Array.from(cached.ids[b]!), `row ${b}: alone against in the batch`);
      assert.equal(alone.cached.ended[0], cached.ended[b]);
    }
  } finally {
    model.dispose();
  }
  const learned = randomModel(irOf(spec(DECODERS.learned!)), 4);
  try {
    // A row's limit is what the context leaves after its own prompt: 20 text positions.
    const long = await both(learned, pixels(1, 3), 1, { prompt: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], eos: null });
    assert.equal(long.cached.ids[0]!.length, 20 - 16 + 1);
    assert.deepEqual(Array.from(long.cached.ids[0]!), Array.from(long.full.ids[0]!));
    await assert.rejects(generate(learned, null, { prompt: new Array<number>(21).fill(1), eos: 2 }, 1), /takes 21 positions, more than the decoder's text budget of 20/);
  } finally {
    learned.dispose();
  }
});

test("sampling: a seed reproduces the tokens, batched or alone, cached or not; seeds differ", async () => {
  const model = randomModel(irOf(spec(DECODERS.learned!)), 8, 0.3);
  try {
    const px = pixels(3, 2);
    const sampling = { temperature: 1.5, topK: 8, topP: 0.95, seed: 42 };
    const { cached, full } = await both(model, px, 3, { prompt: [1], eos: 2, maxTokens: 12, sampling });
    const again = await both(model, px, 3, { prompt: [1], eos: 2, maxTokens: 12, sampling });
    for (let b = 0; b < 3; b++) {
      assert.deepEqual(Array.from(cached.ids[b]!), Array.from(full.ids[b]!), `row ${b}: cached against full`);
      assert.deepEqual(Array.from(again.cached.ids[b]!), Array.from(cached.ids[b]!), `row ${b}: same seed`);
      const alone = await both(model, px.slice(b * 192, (b + 1) * 192), 1, { prompt: [1], eos: 2, maxTokens: 12, sampling });
      assert.deepEqual(Array.from(alone.cached.ids[0]!), Array.from(cached.ids[b]!), `row ${b}: alone`);
    }
    // Greedy would give one caption per image; sampled captions vary with the seed.
    const bySeed = new Set<string>();
    for (let seed = 0; seed < 6; seed++) {
      const r = await both(model, px.slice(0, 192), 1, { prompt: [1], eos: 2, maxTokens: 12, sampling: { ...sampling, seed } });
      bySeed.add(Array.from(r.cached.ids[0]!).join(","));
    }
    assert.ok(bySeed.size >= 3, `only ${bySeed.size} distinct captions over 6 seeds`);
    // top_k 1 is greedy whatever the temperature and seed.
    const greedy = await both(model, px, 3, { prompt: [1], eos: 2, maxTokens: 12 });
    const k1 = await both(model, px, 3, { prompt: [1], eos: 2, maxTokens: 12, sampling: { temperature: 3, topK: 1, seed: 5 } });
    assert.deepEqual(k1.cached.ids.map((r) => Array.from(r)), greedy.cached.ids.map((r) => Array.from(r)));
  } finally {
    model.dispose();
  }
});

test("attention to the visual tokens: the mean over heads, layers and generated tokens of a full pass's weights", async () => {
  const model = randomModel(irOf(spec(DECODERS.learned!)), 21, 0.3);
  try {
    const px = pixels(2, 13);
    const images = tf.tensor4d(px, [2, 8, 8, 3]);
    const r = await generate(model, images, { prompt: [1], eos: 2, maxTokens: 6, attention: true });
    assert.equal(r.attention!.length, 2);
    // The encoder's one attention layer, averaged over its heads: [B, 4, 4], rows summing to 1.
    assert.equal(r.encoderAttention!.length, 1);
    assert.equal(r.encoderAttention![0]!.length, 2 * 4 * 4);
    for (let row = 0; row < 8; row++) assert.ok(Math.abs(r.encoderAttention![0]!.slice(row * 4, row * 4 + 4).reduce((a, x) => a + x, 0) - 1) < 1e-5);
    for (let b = 0; b < 2; b++) {
      // The reference: one full pass over bos + the caption; the queries at text positions
      // 0..n-1 chose the n tokens.
      const ids = [1, ...Array.from(r.ids[b]!)];
      const n = Math.max(1, r.ids[b]!.length);
      const weights: Float32Array[] = [];
      const one = tf.tensor4d(px.slice(b * 192, (b + 1) * 192), [1, 8, 8, 3]);
      tf.tidy(() => {
        const tokens = tf.tensor2d(Int32Array.from(ids), [1, ids.length], "int32");
        model.forward(one, tokens, { training: false, onAttention: (path, w) => path.startsWith("decoder.") && weights.push(w.dataSync() as Float32Array) });
      });
      one.dispose();
      const L = 4 + ids.length;
      const H = 2;
      const want = new Float32Array(4);
      for (const w of weights) for (let h = 0; h < H; h++) for (let t = 0; t < n; t++) for (let j = 0; j < 4; j++) want[j]! += w[(h * L + 4 + t) * L + j]! / (weights.length * H * n);
      assert.equal(weights.length, 2);
      assert.ok(relError(r.attention![b]!, want) < 1e-5, `row ${b}: ${Array.from(r.attention![b]!)} against ${Array.from(want)}`);
      const total = want.reduce((a, x) => a + x, 0);
      assert.ok(total > 0 && total <= 1);
    }
    images.dispose();
  } finally {
    model.dispose();
  }
});

test("no tensor is left behind by cached or uncached generation (after the first call makes the tables)", async () => {
  const model = randomModel(irOf(spec(DECODERS.rope!)), 1);
  try {
    const images = tf.tensor4d(pixels(2, 1), [2, 8, 8, 3]);
    const run = (cache: boolean) => generate(model, images, { prompt: [1, 3], eos: 2, maxTokens: 5, cache, attention: true, sampling: { temperature: 1, seed: 1 } });
    await run(true);
    await run(false);
    const before = tf.memory().numTensors;
    await run(true);
    await run(false);
    assert.equal(tf.memory().numTensors, before);
    images.dispose();
  } finally {
    model.dispose();
  }
});
