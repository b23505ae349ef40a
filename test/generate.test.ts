// Greedy decoding (runtime/generate.ts). A hand-built model whose argmax path is known: a decoder
// with no trunk and a zero position table, its token embedding the identity and its LM head a map,
// so each next token is a fixed function of the current one (bos -> a -> b -> c -> eos). That
// pins down the order of outputs, stopping at eos per row while other rows go on, stopping at
// maxTokens, and per-row start tokens. A seeded model with an encoder checks the image path: a
// batch decodes exactly as each of its rows decodes alone, and as a plain loop over full
// forward passes picking the argmax in JavaScript.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { compile } from "../compiler/compile.js";
import type { Ir } from "../compiler/ir/types.js";
import { initBackend, type Tf } from "../runtime/backend.js";
import { greedyDecode, textBudget } from "../runtime/generate.js";
import { Model } from "../runtime/model.js";
import { CharTokenizer } from "../runtime/tokenizer.js";
import { assignValues } from "../runtime/weights.js";

let tf: Tf;
before(async () => {
  tf = (await initBackend("wasm", { log: () => {} })).tf;
});

function irOf(text: string): Ir {
  const r = compile("test.vlm", { text: new TextEncoder().encode(text), baseDir: process.cwd() });
  assert.ok(r.ir, r.diagnostics.map((d) => d.message).join("\n"));
  return r.ir;
}

// Ids: pad 0, bos 1, eos 2, a 3, b 4, c 5.
const HAND = `vlm 0.1
model hand {
  tokenizer chars { alphabet: "abc", specials: [pad, bos, eos] }
  decoder { dim: 6, context: 8 }
}
`;

/** The hand-built model: next(id) = successor[id] for every id. */
function handModel(successor: number[]): Model {
  const model = Model.create(tf, irOf(HAND), 0);
  const eye = new Float32Array(36);
  const head = new Float32Array(36); // [dim, vocab]: row = the input one-hot, column = the logit
  for (let i = 0; i < 6; i++) {
    eye[i * 6 + i] = 1;
    head[i * 6 + successor[i]!] = 1;
  }
  assignValues(model, [
    ["decoder.embed.weight", eye],
    ["decoder.lm_head.weight", head],
    ["decoder.pos_embed.weight", new Float32Array(8 * 6)],
  ]);
  return model;
}

const tok = new CharTokenizer({ alphabet: "abc", specials: ["pad", "bos", "eos"] });
const text = (ids: Int32Array) => tok.decode(ids);

test("follows the argmax path from bos and stops at eos (not included)", async () => {
  const model = handModel([0, 3, 2, 4, 5, 2]); // bos->a, a->b, b->c, c->eos
  try {
    const r = await greedyDecode(model, null, { start: tok.bos!, eos: tok.eos, pad: tok.pad! }, 1);
    assert.equal(text(r.ids[0]!), "abc");
    assert.deepEqual(Array.from(r.ids[0]!), [3, 4, 5]);
    assert.deepEqual(r.ended, [true]);
    assert.equal(r.steps, 4); // a, b, c, eos
  } finally {
    model.dispose();
  }
});

test("rows of a batch stop on their own: each at its eos, the batch when all have", async () => {
  const model = handModel([0, 3, 2, 4, 5, 2]);
  try {
    // Starting from bos, from a, from c and from b: 3, 2, 0 and 1 characters before eos.
    const r = await greedyDecode(model, null, { start: [1, 3, 5, 4], eos: 2, pad: 0 }, 4);
    assert.deepEqual(r.ids.map(text), ["abc", "bc", "", "c"]);
    assert.deepEqual(r.ended, [true, true, true, true]);
    assert.equal(r.steps, 4);
  } finally {
    model.dispose();
  }
});

test("a row that never meets eos stops at maxTokens, and by default at the text budget", async () => {
  const model = handModel([0, 3, 2, 4, 5, 3]); // bos->a->b->c->a->... (no eos)
  try {
    const short = await greedyDecode(model, null, { start: 1, eos: 2, maxTokens: 5 }, 2);
    assert.deepEqual(short.ids.map(text), ["abcab", "abcab"]);
    assert.deepEqual(short.ended, [false, false]);
    assert.equal(short.steps, 5);
    // No maxTokens: the whole context (8 positions, no visual tokens); the start token takes
    // one and the last generated token is never fed back, so 8 come out.
    assert.equal(textBudget(model), 8);
    const full = await greedyDecode(model, null, { start: 1, eos: 2 }, 1);
    assert.equal(text(full.ids[0]!), "abcabcab");
    // Without eos at all the rows run to the limit too.
    const noEos = await greedyDecode(model, null, { start: 1, eos: null, maxTokens: 3 }, 1);
    assert.deepEqual(Array.from(noEos.ids[0]!), [3, 4, 5]);
  } finally {
    model.dispose();
  }
});

test("bad requests are RangeErrors naming the problem; no tensor is left behind", async () => {
  const model = handModel([0, 3, 2, 4, 5, 2]);
  try {
    await assert.rejects(greedyDecode(model, null, { start: 1, eos: 2, maxTokens: 9 }, 1), /more than the decoder's text budget of 8/);
    await assert.rejects(greedyDecode(model, null, { start: [1, 1], eos: 2 }, 3), /2 start tokens for 3 rows/);
    await assert.rejects(greedyDecode(model, null, { start: 1, eos: 2 }), /give images, or the number of rows/);
    const before = tf.memory().numTensors;
    await greedyDecode(model, null, { start: [1, 4], eos: 2 }, 2);
    assert.equal(tf.memory().numTensors, before);
  } finally {
    model.dispose();
  }
});

const WITH_IMAGES = `vlm 0.1
model seeing {
  tokenizer chars { alphabet: "abcdefgh", specials: [pad, bos, eos] }
  encoder vit { image: 8 x 8 x 3, patch: 4, dim: 16, heads: 2, blocks: 1, cls: false, output: patches }
  projector { linear(decoder.dim) }
  decoder gpt { dim: 16, heads: 2, layers: 1, context: 12 }
}
`;

/** The reference: one row alone, a full forward pass per token, the argmax taken in JavaScript. */
async function reference(model: Model, image: Float32Array, start: number, eos: number, maxTokens: number): Promise<number[]> {
  const fed = [start];
  const out: number[] = [];
  while (out.length < maxTokens) {
    const img = tf.tensor4d(image, [1, 8, 8, 3]);
    const tokens = tf.tensor2d(Int32Array.from(fed), [1, fed.length], "int32");
    const logits = model.forward(img, tokens, { training: false });
    const [, n, v] = logits.shape as [number, number, number];
    const all = (await logits.data()) as Float32Array;
    tf.dispose([img, tokens, logits]);
    const last = all.subarray((n - 1) * v, n * v);
    let best = 0;
    for (let i = 1; i < v; i++) if (last[i]! > last[best]!) best = i;
    if (best === eos) break;
    out.push(best);
    fed.push(best);
  }
  return out;
}

test("with images: a batch decodes as each row alone and as the plain reference loop", async () => {
  const model = Model.create(tf, irOf(WITH_IMAGES), 3);
  try {
    const B = 4;
    // Visual tokens: 4 patches, so 8 text positions are left.
    assert.equal(textBudget(model), 8);
    const pixels = new Float32Array(B * 8 * 8 * 3);
    let s = 7;
    for (let i = 0; i < pixels.length; i++) pixels[i] = (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const images = tf.tensor4d(pixels, [B, 8, 8, 3]);
    const got = await greedyDecode(model, images, { start: 1, eos: 2, pad: 0 });
    images.dispose();
    for (let b = 0; b < B; b++) {
      const one = pixels.slice(b * 192, (b + 1) * 192);
      const want = await reference(model, one, 1, 2, 8);
      assert.deepEqual(Array.from(got.ids[b]!), want, `row ${b}`);
      assert.equal(got.ended[b], want.length < 8, `row ${b} ended`);
      const alone = tf.tensor4d(one, [1, 8, 8, 3]);
      const single = await greedyDecode(model, alone, { start: 1, eos: 2, pad: 0 });
      alone.dispose();
      assert.deepEqual(Array.from(single.ids[0]!), want, `row ${b} alone`);
    }
  } finally {
    model.dispose();
  }
});
