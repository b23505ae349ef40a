// The trainer's parts on their own: schedules at known steps, the optimizers against PyTorch
// (test/fixtures/train/optim-torch.json, from tools/torch/optim_groups.py), the data split, the
// plain (non-terminal) progress output, and the checkpoint files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IrParam, IrStage } from "../compiler/ir/types.js";
import { initBackend } from "../runtime/backend.js";
import { generateShapes, SHAPES_PIXEL_STATS } from "../runtime/data/shapes.js";
import { CharTokenizer } from "../runtime/tokenizer.js";
import { listCheckpoints, pruneCheckpoints, verifyCheckpoint, writeCheckpoint } from "../runtime/train/checkpoint.js";
import { compileRunSpec } from "../runtime/train/compile-spec.js";
import { loadStageData } from "../runtime/train/data.js";
import { StageOptimizer } from "../runtime/train/groups.js";
import { lrFactor } from "../runtime/train/schedule.js";
import { Progress } from "../cli/progress.js";
import { repoPath } from "./helpers/paths.js";

const close = (a: number, b: number, tol = 1e-12) => Math.abs(a - b) <= tol;

test("schedules: warm-up from 0, then constant, linear or cosine decay to `final`", () => {
  const c = { kind: "constant", warmup: 4 };
  assert.deepEqual([0, 1, 2, 3, 4, 9].map((s) => lrFactor(c, s, 10)), [0, 0.25, 0.5, 0.75, 1, 1]);
  const lin = { kind: "linear", warmup: 0, final: 0.1 };
  assert.ok(close(lrFactor(lin, 0, 10), 1));
  assert.ok(close(lrFactor(lin, 5, 10), 1 - 0.9 * 0.5));
  assert.ok(close(lrFactor(lin, 10, 10), 0.1));
  const cos = { kind: "cosine", warmup: 0.2, final: 0 }; // 2 warm-up steps of 10
  assert.ok(close(lrFactor(cos, 1, 10), 0.5));
  assert.ok(close(lrFactor(cos, 2, 10), 1));
  assert.ok(close(lrFactor(cos, 6, 10), 0.5)); // half-way through the decay
  assert.ok(close(lrFactor(cos, 10, 10), 0));
});

test("SGD (momentum, Nesterov, weight decay) and AdamW match PyTorch step by step", async () => {
  const { tf } = await initBackend("wasm", { log: () => {} });
  const ref = JSON.parse(readFileSync(repoPath("test/fixtures/train/optim-torch.json"), "utf8")) as {
    p0: number[];
    grads: number[][];
    lrs: number[];
    cases: Record<string, { args: Record<string, number | string | boolean>; steps: number[][] }>;
  };
  const param: IrParam = { name: "decoder.w", shape: [4], init: { kind: "zeros" }, decay: true };
  for (const [name, c] of Object.entries(ref.cases)) {
    const stage = { name: "s", train: ["decoder"], frozen: [], optimizer: c.args, module_lr: {} } as unknown as IrStage;
    const opt = new StageOptimizer(tf, [param], stage);
    const v = tf.variable(tf.tensor(ref.p0), true, `decoder.w.${name}`);
    const vars = new Map([["decoder.w", v]]);
    ref.grads.forEach((g, i) => {
      const grad = tf.tensor(g);
      opt.apply(vars, { "decoder.w": grad }, ref.lrs[i]! / (c.args.lr as number));
      grad.dispose();
      const got = v.dataSync();
      c.steps[i]!.forEach((want, j) => assert.ok(Math.abs(got[j]! - want) <= 1e-6 * Math.max(1, Math.abs(want)), `${name} step ${i + 1} [${j}]: ${got[j]} vs PyTorch ${want}`));
    });
    opt.dispose();
    v.dispose();
  }
});

test("parameters the IR marks decay: false get no weight decay; module_lr sets a module's rate", async () => {
  const { tf } = await initBackend("wasm", { log: () => {} });
  const params: IrParam[] = [
    { name: "decoder.w", shape: [1], init: { kind: "zeros" }, decay: true },
    { name: "decoder.b", shape: [1], init: { kind: "zeros" }, decay: false },
    { name: "projector.w", shape: [1], init: { kind: "zeros" }, decay: true },
    { name: "encoder.w", shape: [1], init: { kind: "zeros" }, decay: true },
  ];
  const stage = { name: "s", train: ["decoder", "projector"], frozen: ["encoder"], optimizer: { kind: "sgd", lr: 0.1, momentum: 0, nesterov: false, weight_decay: 0.5 }, module_lr: { projector: 1 } } as unknown as IrStage;
  const opt = new StageOptimizer(tf, params, stage);
  assert.deepEqual(opt.trainable, ["decoder.w", "decoder.b", "projector.w"]);
  const vars = new Map(params.map((p) => [p.name, tf.variable(tf.tensor([1]), true, `dec-test-${p.name}`)]));
  const zero = () => tf.tensor([0]);
  opt.apply(vars, { "decoder.w": zero(), "decoder.b": zero(), "projector.w": zero() }, 1);
  // With a zero gradient only weight decay moves a weight: p - lr * wd * p.
  assert.ok(close(vars.get("decoder.w")!.dataSync()[0]!, 1 - 0.1 * 0.5, 1e-7));
  assert.equal(vars.get("decoder.b")!.dataSync()[0], 1);
  assert.ok(close(vars.get("projector.w")!.dataSync()[0]!, 1 - 1 * 0.5, 1e-7));
  assert.equal(vars.get("encoder.w")!.dataSync()[0], 1);
});

test("the shapes split keeps every image on one side, and validation holds unseen combinations", async () => {
  const ir = compileRunSpec(repoPath("test/fixtures/train/tiny.vlm")).ir!;
  const d = await loadStageData({ kind: "shapes", images: 200, size: 16, seed: 5 }, ir, CharTokenizer.fromIr(ir.tokenizer!), { baseDir: ".", split: 0.2, seed: 1 });
  const train = new Set(d.train.map((e) => e.image));
  assert.equal(train.size, d.train.length);
  assert.ok(d.validation.length >= 30);
  for (const e of d.validation) assert.ok(!train.has(e.image), `${e.image} on both sides`);
  const combos = (xs: typeof d.train) => new Set(xs.flatMap((e) => [...e.text.matchAll(/(red|green|blue|yellow) (circle|square|triangle)/g)].map((m) => m[0])));
  const unseen = [...combos(d.validation)].filter((c) => !combos(d.train).has(c));
  assert.ok(unseen.length > 0);
  // Captions are tokenized with bos and eos; pixels come at the encoder's size, normalised as its
  // `pixels` say: tiny.vlm leaves the default, v / 255 (test/pixels.test.ts has the others).
  assert.equal(d.train[0]!.ids[0], 1);
  const px = await d.pixels(d.train.slice(0, 2));
  assert.equal(px.length, 2 * 16 * 16 * 3);
  const bytes = generateShapes({ images: 200, size: 16, seed: 5, split: 0.2 }).train[0]!.image();
  for (let i = 0; i < bytes.length; i++) assert.equal(px[i], Math.fround(bytes[i]! / 255), `value ${i}`);
  // Under the shapes example's `normalize: stats(...)`: (v / 255 - mean) / std.
  const { mean, std } = SHAPES_PIXEL_STATS;
  const stats = { ...ir, modules: { ...ir.modules, encoder: { ...ir.modules.encoder!, pixels: { normalize: "stats", mean: [...mean], std: [...std], resize: "stretch" as const } } } };
  const s = await loadStageData({ kind: "shapes", images: 200, size: 16, seed: 5 }, stats, CharTokenizer.fromIr(ir.tokenizer!), { baseDir: ".", split: 0.2, seed: 1 });
  const spx = await s.pixels(s.train.slice(0, 1));
  for (let i = 0; i < bytes.length; i++) assert.ok(Math.abs(spx[i]! - (bytes[i]! / 255 - mean[i % 3]!) / std[i % 3]!) < 1e-5, `value ${i}`);
});

test("plain progress (not a terminal): stage, sampled step, evaluation and checkpoint lines, no control characters", () => {
  let out = "";
  const p = new Progress((s) => (out += s), { tty: false });
  p.handle({ type: "stage", stage: "align", index: 0, stages: 2, steps: 40, startStep: 0, batch: 8, accumulate: 2, microBatch: 4, train: ["projector"], frozen: ["encoder", "decoder"], examples: { train: 90, validation: 10 }, data: "shapes(...)" });
  for (let s = 1; s <= 40; s++) p.handle({ type: "step", stage: "align", stageStep: s, steps: 40, globalStep: s, loss: 2 - s / 100, lr: 1e-3, gradNorm: 1, tokens: 500, seconds: 0.25 });
  p.handle({ type: "eval", stage: "align", stageStep: 40, globalStep: 40, loss: 1.5, perplexity: Math.exp(1.5), examples: 10, best: true });
  p.handle({ type: "checkpoint", stage: "align", name: "align-00000040", path: "x", globalStep: 40 });
  assert.doesNotMatch(out, /[\r\x1b]/);
  const lines = out.trimEnd().split("\n");
  assert.match(lines[0]!, /^stage 1\/2 `align`: 40 steps, batch 8 as 2 micro-batches of 4; trains projector, frozen encoder, decoder/);
  const steps = lines.filter((l) => /^align step \d+\/\d+ /.test(l));
  assert.equal(steps.length, 21); // the first, then every 2nd step
  assert.match(steps[steps.length - 1]!, /^align step 40\/40  loss 1\.6000  lr 1\.00e-3  2\.0k tok\/s  ETA 0:00$/);
  assert.match(out, /align step 40: validation loss 1\.5000, perplexity 4\.48 \(10 examples\), best so far\ncheckpoint align-00000040\n$/);
});

test("checkpoints: complete ones are listed, verified by checksum, pruned to the last k and the best", () => {
  const dir = mkdtempSync(join(tmpdir(), "vlmc-ckpt-"));
  for (const step of [1, 2, 3, 4]) writeCheckpoint(dir, `s-${String(step).padStart(8, "0")}`, new Map([["a.bin", new Uint8Array([step])]]));
  assert.deepEqual(listCheckpoints(dir).map((c) => c.globalStep), [1, 2, 3, 4]);
  assert.equal(verifyCheckpoint(listCheckpoints(dir)[0]!.path), null);
  pruneCheckpoints(dir, 2, "s-00000001");
  assert.deepEqual(listCheckpoints(dir).map((c) => c.name), ["s-00000001", "s-00000003", "s-00000004"]);
});

test("checkpoints: the last one of each finished stage outlives pruning; the current stage's are pruned to k", () => {
  const dir = mkdtempSync(join(tmpdir(), "vlmc-ckpt-"));
  const names = ["lm-00000005", "lm-00000010", "align-00000015", "align-00000020", "tune-00000025", "tune-00000030", "tune-00000035"];
  for (const n of names) writeCheckpoint(dir, n, new Map([["a.bin", new Uint8Array([1])]]));
  pruneCheckpoints(dir, 2, null);
  assert.deepEqual(
    listCheckpoints(dir).map((c) => c.name),
    ["lm-00000010", "align-00000020", "tune-00000030", "tune-00000035"],
  );
});

