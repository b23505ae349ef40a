// Frozen modules at training time (runtime/train/encoder-cache.ts): a frozen encoder run outside
// the gradient tape gives the same loss and gradients as inside it; frozen modules run without
// dropout; the encoder's outputs are cached so that it runs once per image across epochs and
// frozen stages; the cache is dropped when a stage trains the encoder, not used when a source
// augments its images, and kept within its budget (the losses are the same whatever part of the
// outputs came from the cache); a bad budget is a one-line error. Tiny model, wasm backend.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as tfjs from "@tensorflow/tfjs";
import type { Ir } from "../compiler/ir/types.js";
import { train, type TrainEvent } from "../compiler/index.js";
import { initBackend } from "../runtime/backend.js";
import { teacherForcedLoss } from "../runtime/eval/loss.js";
import { Model } from "../runtime/model.js";
import { CharTokenizer } from "../runtime/tokenizer.js";
import { compileRunSpec } from "../runtime/train/compile-spec.js";
import { loadStageData, type StageData } from "../runtime/train/data.js";
import { cacheRefusal, EncoderCache, FrozenEncoder } from "../runtime/train/encoder-cache.js";
import { Metrics, type MetricsLine } from "../runtime/train/metrics.js";
import { runStages, trainStep } from "../runtime/train/trainer.js";

const tmp = () => mkdtempSync(join(tmpdir(), "vlmc-frozen-"));

/** No dropout anywhere unless `dropout` (then in the encoder and the decoder, not the projector). */
function spec(stages: string, dropout = 0): string {
  return `vlm 0.1
model frozen {
  tokenizer chars { alphabet: "abcdefghijklmnopqrstuvwxyz ", specials: [pad, bos, eos] }
  encoder vit { image: 16 x 16 x 3, patch: 8, dim: 16, heads: 2, blocks: 1, mlp: 32, cls: false, output: patches, dropout: ${dropout} }
  projector { linear(32) -> gelu -> linear(decoder.dim) }
  decoder gpt { dim: 16, heads: 2, layers: 1, context: 96, dropout: ${dropout} }
}
train {
  data: shapes(images: 80, size: 16, seed: 3)
  batch: 8
  seed: 7
${stages}
}
`;
}

function compiled(stages: string, dropout = 0): { path: string; ir: Ir } {
  const path = join(tmp(), "frozen.vlm");
  writeFileSync(path, spec(stages, dropout));
  const r = compileRunSpec(path);
  assert.ok(r.ir, JSON.stringify(r.diagnostics.map((d) => d.message)));
  return { path, ir: r.ir };
}

const stageData = (ir: Ir) => loadStageData(ir.train!.stages[0]!.data, ir, CharTokenizer.fromIr(ir.tokenizer!), { baseDir: ".", split: ir.train!.split, seed: ir.train!.seed });

/** The distinct images of a stage's data (training and validation). */
const distinctImages = (d: StageData) => new Set([...d.train, ...d.validation].map((e) => e.image)).size;

/** Counts the images Model.encode runs on (the frozen encoder's only way to the encoder). */
function countEncodes(): { images: () => number; restore: () => void } {
  const original = Model.prototype.encode;
  let images = 0;
  Model.prototype.encode = function (this: Model, x: tfjs.Tensor) {
    images += x.shape[0]!;
    return original.call(this, x);
  };
  return { images: () => images, restore: () => (Model.prototype.encode = original) };
}

test("a frozen encoder outside the tape (and from the cache) gives the same loss and gradients, bit for bit", async () => {
  const { tf } = await initBackend("wasm", { log: () => {} });
  const { ir } = compiled("stage align { train: [projector], steps: 1 }");
  const data = await stageData(ir);
  const model = Model.create(tf, ir, 1);
  const vars = [...model.variables].filter(([k]) => k.startsWith("projector.")).map(([, v]) => v);
  const examples = data.train.slice(0, 8);
  const seedOf = () => 11;
  const grads = async (encoder: FrozenEncoder | null, frozen: string[]) => {
    // Two micro-batches of 4: the encoder's output goes in per micro-batch.
    const r = await trainStep(tf, model, data, examples, 4, vars, seedOf, { frozen, encoder });
    const out = { loss: r.loss, norm: r.norm, grads: Object.fromEntries(Object.entries(r.grads).map(([k, g]) => [k, Array.from(g.dataSync())])) };
    tf.dispose(Object.values(r.grads));
    return out;
  };
  try {
    const taped = await grads(null, []); // as before: the encoder inside variableGrads' closure
    const outside = await grads(new FrozenEncoder(tf, model, data, null), ["encoder", "decoder"]);
    const cache = new EncoderCache(2 ** 30);
    const filling = await grads(new FrozenEncoder(tf, model, data, cache), ["encoder", "decoder"]);
    assert.equal(cache.size, 8);
    // The model's constants (masks, made on first use) are there now: any growth is a leak.
    const before = tf.memory().numTensors;
    const counter = countEncodes();
    let hit;
    try {
      hit = await grads(new FrozenEncoder(tf, model, data, cache), ["encoder", "decoder"]);
    } finally {
      counter.restore();
    }
    assert.equal(counter.images(), 0, "the second pass takes every output from the cache");
    assert.deepEqual(await grads(null, []), taped);
    assert.deepEqual(await grads(new FrozenEncoder(tf, model, data, null), ["encoder", "decoder"]), taped);
    assert.equal(tf.memory().numTensors, before, "no tensor leaks from any path");
    assert.deepEqual(Object.keys(taped.grads).sort(), vars.map((v) => v.name).sort());
    assert.ok(Number.isFinite(taped.loss) && taped.norm > 0);
    for (const other of [outside, filling, hit]) assert.deepEqual(other, taped);
  } finally {
    model.dispose();
  }
});

test("frozen modules run without dropout: a stage-1 step's loss is the inference-mode loss", async () => {
  const { tf } = await initBackend("wasm", { log: () => {} });
  const { ir } = compiled("stage align { train: [projector], steps: 1 }", 0.3);
  const data = await stageData(ir);
  const model = Model.create(tf, ir, 1);
  try {
    const examples = data.train.slice(0, 8);
    const vars = [...model.variables].filter(([k]) => k.startsWith("projector.")).map(([, v]) => v);
    const stepLoss = async (modules: Parameters<typeof trainStep>[7]) => {
      const r = await trainStep(tf, model, data, examples, 8, vars, () => 5, modules);
      tf.dispose(Object.values(r.grads));
      return r.loss;
    };
    const evalLoss = (await teacherForcedLoss(tf, model, data, examples, 8))!.loss;
    const frozenLoss = await stepLoss({ frozen: ["encoder", "decoder"], encoder: new FrozenEncoder(tf, model, data, null) });
    assert.ok(Math.abs(frozenLoss - evalLoss) <= 1e-6 * evalLoss, `${frozenLoss} vs ${evalLoss}`);
    // Training mode in every module (as before) draws dropout masks: another loss.
    const trainingLoss = await stepLoss({ frozen: [], encoder: null });
    assert.ok(Math.abs(trainingLoss - evalLoss) > 1e-3, `${trainingLoss} vs ${evalLoss}`);
  } finally {
    model.dispose();
  }
});

test("the encoder runs once per image across two epochs and two frozen stages; a stage that trains it drops the cache", async () => {
  const { path, ir } = compiled(`
  stage align { train: [projector], epochs: 2 }
  stage tune { train: [projector, decoder], steps: 2 }
  stage joint { train: [encoder, projector, decoder], steps: 1 }
  stage again { train: [projector], epochs: 1 }`);
  const data = await stageData(ir);
  const images = distinctImages(data);
  assert.ok(data.train.length % 8 === 0, "every training image is in an epoch (no partial batch dropped)");
  const perStage = new Map<string, number>();
  const events: TrainEvent[] = [];
  const counter = countEncodes();
  let stage = "";
  const out = tmp();
  try {
    const r = await train(path, {
      out,
      backend: "wasm",
      report: false,
      log: () => {},
      onEvent: (e) => {
        events.push(e);
        if (e.type === "stage") stage = e.stage;
        if (e.type === "stage-end") perStage.set(e.stage, counter.images() - [...perStage.values()].reduce((a, b) => a + b, 0));
      },
    });
    assert.equal(r.status, "finished", JSON.stringify(r));
  } finally {
    counter.restore();
  }
  assert.equal(stage, "again");
  assert.deepEqual(Object.fromEntries(perStage), { align: images, tune: 0, joint: 0, again: images });
  const filled = events.filter((e) => e.type === "encoder-cache");
  assert.deepEqual(
    filled.map((e) => e.type === "encoder-cache" && [e.stage, e.complete, e.images]),
    [
      ["align", true, images],
      ["again", true, images],
    ],
  );
  const first = filled[0]!;
  // 4 patches of 16 values a picture (16 x 16, patch 8, width 16), float32.
  assert.ok(first.type === "encoder-cache" && first.bytes === images * 4 * 16 * 4);
  const notes = events.flatMap((e) => (e.type === "note" ? [e.message] : []));
  assert.ok(notes.some((m) => m.includes(`stage \`align\`: encoder outputs cached (${images} images`)), notes.join("\n"));
  assert.ok(notes.some((m) => m.includes("stage `tune`: the encoder outputs of its") && m.includes("cached already")), notes.join("\n"));
  // Step lines: align's second epoch and tune take everything from the cache; joint has no frozen encoder.
  const steps = Metrics.read(join(out, "metrics.jsonl")).filter((l): l is Extract<MetricsLine, { loss: number }> => "loss" in l);
  const sum = (s: string, k: "encoded" | "cached") => steps.filter((l) => l.stage === s).reduce((a, l) => a + (l.encoder?.[k] ?? 0), 0);
  assert.equal(sum("align", "encoded") + sum("align", "cached"), 2 * data.train.length);
  assert.equal(sum("align", "encoded"), data.train.length);
  assert.equal(sum("tune", "encoded"), 0);
  assert.equal(sum("tune", "cached"), 16);
  assert.ok(steps.filter((l) => l.stage === "joint").every((l) => l.encoder === undefined));
});

/** runStages on `ir`'s stages with the data changed by `patch`, counting encoder images. */
async function stagesRun(ir: Ir, opts: { budget?: number; patch?: (d: StageData) => StageData }) {
  const { tf } = await initBackend("wasm", { log: () => {} });
  const base = await stageData(ir);
  const data = opts.patch ? opts.patch(base) : base;
  const model = Model.create(tf, ir, ir.train!.seed);
  const dir = tmp();
  const events: TrainEvent[] = [];
  const counter = countEncodes();
  try {
    await runStages({
      tf,
      ir,
      model,
      runDir: dir,
      metrics: new Metrics(join(dir, "metrics.jsonl")),
      data: async () => data,
      maxSteps: null,
      checkpointEvery: null,
      stopRequested: () => false,
      emit: (e) => events.push(e),
      resume: null,
      ...(opts.budget !== undefined ? { encoderCacheBytes: opts.budget } : {}),
    });
  } finally {
    counter.restore();
    model.dispose();
  }
  const losses = Metrics.read(join(dir, "metrics.jsonl")).map((l) => ("loss" in l ? l.loss : l.eval.loss));
  return { encoded: counter.images(), events, losses, data, notes: events.flatMap((e) => (e.type === "note" ? [e.message] : [])) };
}

test("a source that augments its images gets no cache: the encoder runs on every batch", async () => {
  const { ir } = compiled("stage align { train: [projector], epochs: 2 }");
  const r = await stagesRun(ir, { patch: (d) => Object.assign({}, d, { augment: true }) });
  assert.equal(cacheRefusal(r.data, 2 ** 30), `${r.data.describe} augments its images (new pixels every epoch)`);
  // Every training example of both epochs, and the validation split at the end.
  assert.equal(r.encoded, 2 * r.data.train.length + r.data.validation.length, "72 training pictures make 9 whole batches");
  assert.ok(r.notes.some((m) => m.includes("not cached") && m.includes("augments")), r.notes.join("\n"));
  assert.ok(!r.events.some((e) => e.type === "encoder-cache"));
});

test("the cache stays within its budget, and the losses do not depend on how much of it was used", async () => {
  const { ir } = compiled("stage align { train: [projector], epochs: 2, eval_every: 3 }");
  const row = 4 * 16 * 4; // bytes of one picture's output
  const full = await stagesRun(ir, {});
  const images = distinctImages(full.data);
  const part = await stagesRun(ir, { budget: 5 * row + row / 2 });
  const none = await stagesRun(ir, { budget: 0 });
  assert.equal(full.encoded, images);
  // The five that fit are encoded once; every other image each time it comes.
  const steps = (2 * full.data.train.length) / 8;
  const evaluations = Math.floor((steps - 1) / 3) + 1; // every 3 steps, and at the end
  const uses = 2 * full.data.train.length + evaluations * full.data.validation.length;
  assert.equal(none.encoded, uses);
  assert.ok(part.encoded > images && part.encoded < uses, `${part.encoded}`);
  const cacheEvent = part.events.find((e) => e.type === "encoder-cache");
  assert.ok(cacheEvent && cacheEvent.type === "encoder-cache" && !cacheEvent.complete && cacheEvent.images === 5 && cacheEvent.bytes === 5 * row, JSON.stringify(cacheEvent));
  assert.equal(part.notes.filter((m) => m.includes("the encoder cache is full")).length, 1);
  assert.ok(none.notes.some((m) => m.includes("budget is 0")));
  assert.ok(full.losses.length > 8);
  assert.deepEqual(part.losses, full.losses);
  assert.deepEqual(none.losses, full.losses);
});

test("a bad cache budget is one clear line, before anything runs", async () => {
  const { path } = compiled("stage align { train: [projector], steps: 1 }");
  const r = await train(path, { out: tmp(), backend: "wasm", report: false, log: () => {}, encoderCacheMb: -1 });
  assert.equal(r.status, "error");
  assert.ok(r.status === "error" && r.message === "the encoder cache's budget must be a number of MiB, 0 or more (0 turns the cache off); got -1", r.status === "error" ? r.message : "");
  process.env.VLMC_ENCODER_CACHE_MB = "lots";
  try {
    const e = await train(path, { out: tmp(), backend: "wasm", report: false, log: () => {} });
    assert.ok(e.status === "error" && e.message.endsWith('got "lots" from VLMC_ENCODER_CACHE_MB'), JSON.stringify(e));
  } finally {
    delete process.env.VLMC_ENCODER_CACHE_MB;
  }
});
