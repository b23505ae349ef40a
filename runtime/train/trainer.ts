// The training loop: the IR's stages in order, each a sequence of optimizer steps over its data
// (micro-batches with gradient accumulation, clipping by global norm, the schedule's learning
// rate), evaluations on the validation split, early stopping, checkpoints. The run folder,
// resuming and the API around it are run.ts's; this file only steps.
//
// Numerics, decided here:
// - The loss of a step is the mean cross-entropy over the counted (unmasked) text positions of
//   the whole batch: each micro-batch's mean loss is weighted by its share of the batch's counted
//   positions before the gradients are summed, so accumulation changes only rounding.
// - Clipping follows torch.nn.utils.clip_grad_norm_: scale by clip / (norm + 1e-6) when norm > clip.
// - A non-finite loss or gradient norm stops the run before the update: the weights and the last
//   checkpoint stay as they were.
// - An epoch drops its last partial batch when the training split has at least a batch (each step
//   then sees `batch` examples); an `epochs` stage runs floor(n / batch) steps an epoch.
// - Frozen modules run in inference mode (no dropout). A frozen encoder runs outside the gradient
//   tape, and its outputs are cached across epochs and stages (encoder-cache.ts says when).
import type * as tfjs from "@tensorflow/tfjs";
import type { Tf } from "../../compiler/layers/ops.js";
import type { Ir, IrStage } from "../../compiler/ir/types.js";
import { BatchStream, makeBatch } from "../data/batches.js";
import { irParams, type Model } from "../model.js";
import { teacherForcedLoss } from "../eval/loss.js";
import { decodeSafetensors } from "../safetensors.js";
import { encodeWeights } from "../weights.js";
import { checkpointName, pruneCheckpoints, writeCheckpoint } from "./checkpoint.js";
import type { Example, StageData } from "./data.js";
import { StageOptimizer } from "./groups.js";
import type { Metrics } from "./metrics.js";
import { lrFactor, warmupSteps } from "./schedule.js";
import { dataSeed, DROPOUT_RULE, dropoutSeed, encodeState, STATE_VERSION, type RunState } from "./state.js";
import type { TrainEvent } from "./events.js";
import { cacheRefusal, DEFAULT_ENCODER_CACHE_MB, EncoderCache, FrozenEncoder } from "./encoder-cache.js";
import { bytes } from "../../compiler/cost/estimate.js";

export class Diverged extends Error {
  constructor(
    message: string,
    readonly stage: string,
    readonly globalStep: number,
  ) {
    super(message);
  }
}

export interface LoopOptions {
  tf: Tf;
  ir: Ir;
  model: Model;
  runDir: string;
  metrics: Metrics;
  data: (stage: IrStage) => Promise<StageData>;
  /** Steps across the run after which to stop (null: none). */
  maxSteps: number | null;
  /** Overrides every stage's `checkpoint_every` (null: the spec's). */
  checkpointEvery: number | null;
  /** Asked between steps: true to stop with a checkpoint (Ctrl-C). */
  stopRequested: () => boolean;
  emit: (e: TrainEvent) => void;
  /** Where to start: a checkpoint's state and optimizer bytes, or null for the beginning. */
  resume: { state: RunState; optimizer: Uint8Array } | null;
  /** The frozen encoder's output cache's budget in bytes (0: no cache); default DEFAULT_ENCODER_CACHE_MB MiB. */
  encoderCacheBytes?: number;
}

export type LoopEnd = { status: "finished" | "max-steps" | "interrupted"; globalStep: number; checkpoint: string | null; lastEval: { stage: string; loss: number; perplexity: number } | null };

/** Steps of a stage: `steps`, or `epochs` x the steps of an epoch. */
export function stageSteps(stage: IrStage, trainExamples: number): number {
  if (stage.steps > 0) return stage.steps;
  const perEpoch = trainExamples >= stage.batch ? Math.floor(trainExamples / stage.batch) : 1;
  return stage.epochs * perEpoch;
}

export async function runStages(o: LoopOptions): Promise<LoopEnd> {
  const { tf, ir, model } = o;
  const seed = ir.train!.seed;
  const params = irParams(ir);
  let globalStep = o.resume?.state.globalStep ?? 0;
  let lastCheckpoint: string | null = null;
  let lastEval: LoopEnd["lastEval"] = null;
  const stages = ir.train!.stages;
  const startIndex = o.resume ? o.resume.state.stageIndex + (o.resume.state.stageDone ? 1 : 0) : 0;
  const cacheBudget = o.encoderCacheBytes ?? DEFAULT_ENCODER_CACHE_MB * 2 ** 20;
  const encoderCache = new EncoderCache(cacheBudget);

  for (let si = startIndex; si < stages.length; si++) {
    const stage = stages[si]!;
    const data = await o.data(stage);
    const n = data.train.length;
    const total = stageSteps(stage, n);
    const dropLast = n >= stage.batch;
    const micro = Math.ceil(stage.batch / stage.accumulate);
    const opt = new StageOptimizer(tf, params, stage);
    const resuming = o.resume && !o.resume.state.stageDone && o.resume.state.stageIndex === si ? o.resume.state : null;
    let stageStep = resuming?.stageStep ?? 0;
    let best = resuming?.best ?? null;
    let evalsSinceBest = resuming?.evalsSinceBest ?? 0;
    if (resuming) {
      const r = decodeSafetensors(o.resume!.optimizer);
      if (!r.ok) throw new Error(`optimizer.safetensors: ${r.problems.map((p) => p.message).join("; ")}`);
      const tensors = new Map([...r.tensors].map(([k, t]) => [k, { data: t.data as Float32Array, shape: t.shape }]));
      opt.load(Number(r.header.metadata?.["vlmc.step"] ?? 0), tensors);
    }
    const dSeed = dataSeed(seed, stage.name);
    const stream = new BatchStream(n, dSeed, stage.batch, { dropLast, position: resuming?.data ?? { epoch: 0, offset: 0 } });
    const trainSet = new Set(opt.trainable);
    const vars = [...model.variables].filter(([k]) => trainSet.has(k)).map(([, v]) => v);
    const textView = data.images ? model : decoderOnly(model);
    const ckEvery = o.checkpointEvery ?? stage.checkpoint_every;
    o.emit({ type: "stage", stage: stage.name, index: si, stages: stages.length, steps: total, startStep: stageStep, batch: stage.batch, accumulate: stage.accumulate, microBatch: micro, train: stage.train, frozen: stage.frozen, examples: { train: n, validation: data.validation.length }, data: data.describe });
    // The encoder's weights change in this stage: what was cached of it is stale.
    if (stage.train.includes("encoder")) encoderCache.clear();
    const frozenEncoder = frozenEncoderOf(o, stage, data, encoderCache);

    const state = (done: boolean, factor: number): RunState => ({
      version: STATE_VERSION,
      model: ir.model,
      hash: ir.hash,
      stage: stage.name,
      stageIndex: si,
      stageStep,
      globalStep,
      stageDone: done,
      data: stream.position,
      rng: { seed, dataSeed: dSeed, dropout: DROPOUT_RULE },
      schedule: { kind: stage.schedule.kind, stageSteps: total, warmup: warmupSteps(stage.schedule, total), factor, lr: opt.baseLr(factor) },
      best,
      evalsSinceBest,
      optimizer: { kind: opt.kind, step: opt.step },
    });
    const checkpoint = (done: boolean, isBest = false): string => {
      const name = checkpointName(stage.name, globalStep);
      if (isBest && best) best.checkpoint = name;
      const files = new Map<string, Uint8Array>([
        ["weights.safetensors", encodeWeights(model)],
        ["optimizer.safetensors", opt.encode()],
        ["state.json", encodeState(state(done, lrFactor(stage.schedule, Math.min(stageStep, Math.max(0, total - 1)), total)))],
      ]);
      const path = writeCheckpoint(o.runDir, name, files);
      pruneCheckpoints(o.runDir, stage.keep, best?.checkpoint ?? null);
      lastCheckpoint = name;
      o.emit({ type: "checkpoint", stage: stage.name, name, path, globalStep });
      return name;
    };
    const evaluate = async (): Promise<boolean> => {
      const r = await evaluateLoss(tf, textView, data, data.validation, micro, frozenEncoder);
      frozenEncoder?.take(); // step lines count the training batches' images only
      if (r === null) return false;
      const improved = best === null || r.loss < best.loss;
      if (improved) {
        best = { loss: r.loss, globalStep, checkpoint: null };
        evalsSinceBest = 0;
      } else evalsSinceBest++;
      lastEval = { stage: stage.name, loss: r.loss, perplexity: r.perplexity };
      o.metrics.append({ stage: stage.name, step: globalStep, eval: { loss: r.loss, perplexity: r.perplexity, examples: r.examples } });
      o.emit({ type: "eval", stage: stage.name, stageStep, globalStep, loss: r.loss, perplexity: r.perplexity, examples: r.examples, best: improved });
      return improved;
    };

    let earlyStop = false;
    try {
      while (stageStep < total) {
        if (o.maxSteps !== null && globalStep >= o.maxSteps) {
          const name = checkpoint(false);
          return { status: "max-steps", globalStep, checkpoint: name, lastEval };
        }
        // A step never waits on I/O, so the loop would never let the event loop run: a Ctrl-C
        // (a SIGINT listener is an event-loop callback) would not be seen until the run ended.
        await new Promise<void>((r) => setImmediate(r));
        if (o.stopRequested()) {
          const name = checkpoint(false);
          return { status: "interrupted", globalStep, checkpoint: name, lastEval };
        }
        const t0 = performance.now();
        const { indices } = stream.next();
        const examples = Array.from(indices, (i) => data.train[i]!);
        const factor = lrFactor(stage.schedule, stageStep, total);
        const r = await trainStep(tf, textView, data, examples, micro, vars, (m) => dropoutSeed(seed, stage.name, stageStep, m), { frozen: stage.frozen, encoder: frozenEncoder });
        // Test hook (docs/training.md): VLMC_TEST_NAN_AT=N makes the loss of run step N NaN.
        if (process.env.VLMC_TEST_NAN_AT && Number(process.env.VLMC_TEST_NAN_AT) === globalStep + 1) r.loss = NaN;
        if (!Number.isFinite(r.loss) || !Number.isFinite(r.norm)) {
          tf.dispose(Object.values(r.grads));
          throw new Diverged(
            `the loss became ${Number.isFinite(r.loss) ? `finite (${r.loss}) but the gradient norm ${r.norm}` : String(r.loss)} at step ${stageStep + 1} of stage \`${stage.name}\` (step ${globalStep + 1} of the run); the weights were not updated`,
            stage.name,
            globalStep + 1,
          );
        }
        if (stage.clip > 0 && r.norm > stage.clip) {
          const scale = stage.clip / (r.norm + 1e-6);
          for (const k of Object.keys(r.grads)) {
            const g = r.grads[k]!;
            r.grads[k] = tf.mul(g, scale);
            g.dispose();
          }
        }
        opt.apply(model.variables, r.grads, factor);
        tf.dispose(Object.values(r.grads));
        stageStep++;
        globalStep++;
        const seconds = (performance.now() - t0) / 1000;
        const lr = opt.baseLr(factor);
        const enc = frozenEncoder && { ...frozenEncoder.take(), cache_mb: Number((encoderCache.bytes / 2 ** 20).toFixed(3)) };
        o.metrics.append({ stage: stage.name, step: globalStep, stage_step: stageStep, loss: r.loss, lr, grad_norm: r.norm, tokens: r.tokens, tokens_per_s: Math.round(r.tokens / seconds), ...(enc ? { encoder: enc } : {}) });
        o.emit({ type: "step", stage: stage.name, stageStep, steps: total, globalStep, loss: r.loss, lr, gradNorm: r.norm, tokens: r.tokens, seconds });

        const last = stageStep === total;
        let isBest = false;
        if (!last && stage.eval_every > 0 && stageStep % stage.eval_every === 0) {
          isBest = await evaluate();
          if (stage.patience && stage.patience > 0 && evalsSinceBest >= stage.patience) {
            earlyStop = true;
            o.emit({ type: "early-stop", stage: stage.name, stageStep, globalStep, patience: stage.patience, bestLoss: best!.loss, bestStep: best!.globalStep });
          }
        }
        if (earlyStop) break;
        // A new best is kept as a checkpoint (`keep` spares it), and so is every N-th step.
        if (!last && ((ckEvery > 0 && stageStep % ckEvery === 0) || (isBest && data.validation.length > 0 && stage.eval_every > 0))) checkpoint(false, isBest);
      }
      // The end of the stage: a last evaluation (unless early stopping just evaluated), a checkpoint.
      const isBest = earlyStop ? false : await evaluate();
      checkpoint(true, isBest);
      o.emit({ type: "stage-end", stage: stage.name, globalStep, reason: earlyStop ? "early-stop" : "done" });
    } finally {
      opt.dispose();
    }
  }
  return { status: "finished", globalStep, checkpoint: lastCheckpoint, lastEval };
}

/**
 * The stage's frozen encoder (run outside the tape, cached when it can be), or null when the
 * stage trains the encoder or has no images. Says what it does: a note at the start, an
 * `encoder-cache` event (and a note) when the stage's images are all cached or the budget is met.
 */
function frozenEncoderOf(o: LoopOptions, stage: IrStage, data: StageData, cache: EncoderCache): FrozenEncoder | null {
  if (!o.ir.modules.encoder || !data.images || !stage.frozen.includes("encoder")) return null;
  const refusal = cacheRefusal(data, cache.budgetBytes);
  const report = (complete: boolean) => {
    o.emit({ type: "encoder-cache", stage: stage.name, complete, images: cache.size, stageImages: f.images, bytes: cache.bytes, budgetBytes: cache.budgetBytes });
    o.emit({
      type: "note",
      message: complete
        ? `stage \`${stage.name}\`: encoder outputs cached (${cache.size} images, ${bytes(cache.bytes)})`
        : `stage \`${stage.name}\`: the encoder cache is full (${cache.size} images, ${bytes(cache.bytes)} of a ${bytes(cache.budgetBytes)} budget): the other images are encoded every epoch (\`--encoder-cache-mb N\` raises the budget)`,
    });
  };
  const f = new FrozenEncoder(o.tf, o.model, data, refusal ? null : cache, report);
  if (refusal) o.emit({ type: "note", message: `stage \`${stage.name}\`: the frozen encoder's outputs are not cached: ${refusal}` });
  else if (f.complete) o.emit({ type: "note", message: `stage \`${stage.name}\`: the encoder outputs of its ${f.images} images are cached already (${bytes(cache.bytes)})` });
  return f;
}

/** The model seen through its decoder alone, for a text-only stage (`text(file)`). */
function decoderOnly(model: Model): Model {
  const view = Object.create(model) as Model;
  Object.defineProperty(view, "ir", { value: { ...model.ir, modules: { decoder: model.ir.modules.decoder } } });
  return view;
}

interface Prepared {
  images: tfjs.Tensor | null;
  /** The frozen encoder's output (then `images` is null). */
  encoded: tfjs.Tensor | null;
  tokens: tfjs.Tensor;
  targets: tfjs.Tensor;
  mask: tfjs.Tensor;
  count: number;
}

async function prepare(tf: Tf, data: StageData, examples: readonly Example[], encoder: FrozenEncoder | null): Promise<Prepared> {
  const batch = makeBatch(
    examples, // their ids, and the loss masks of instruction data
    Array.from(examples, (_, i) => i),
    { maxText: data.maxText, padId: data.padId },
  );
  const encoded = data.imageSize && encoder ? await encoder.encode(examples) : null;
  const images = data.imageSize && !encoded ? tf.tensor(await data.pixels(examples), [examples.length, data.imageSize.height, data.imageSize.width, 3]) : null;
  return {
    images,
    encoded,
    tokens: tf.tensor(batch.tokens, [batch.B, batch.T], "int32"),
    targets: tf.tensor(batch.targets, [batch.B, batch.T], "int32"),
    mask: tf.tensor(batch.mask, [batch.B, batch.T]),
    count: batch.count,
  };
}

const release = (tf: Tf, p: Prepared) => tf.dispose([p.images, p.encoded, p.tokens, p.targets, p.mask].filter((t): t is tfjs.Tensor => t !== null));

function chunks<T>(xs: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/** How a step runs the modules: those frozen (inference mode), and the frozen encoder's runner. */
export interface StepModules {
  frozen: readonly string[];
  /** Null: the encoder runs inside the tape with the rest (a stage that trains it). */
  encoder: FrozenEncoder | null;
}

/** One step's gradients (summed over micro-batches), loss and global gradient norm (exported for bench/frozen.ts and the tests). */
export async function trainStep(tf: Tf, model: Model, data: StageData, examples: readonly Example[], micro: number, vars: tfjs.Variable[], seedOf: (micro: number) => number, modules: StepModules): Promise<{ loss: number; norm: number; tokens: number; grads: Record<string, tfjs.Tensor> }> {
  const parts: Prepared[] = [];
  for (const c of chunks(examples, micro)) parts.push(await prepare(tf, data, c, modules.encoder));
  const total = Math.max(1, parts.reduce((a, p) => a + p.count, 0));
  let grads: Record<string, tfjs.Tensor> = {};
  let loss = 0;
  try {
    parts.forEach((p, m) => {
      const weight = p.count / total;
      const { value, grads: g } = tf.variableGrads(() => {
        // The encoder's output (when frozen) comes in from outside: the tape records none of it.
        const logits = model.forward(p.images, p.tokens, { training: true, dropoutSeed: seedOf(m), frozen: modules.frozen, ...(p.encoded ? { encoded: p.encoded } : {}) });
        return tf.mul(model.loss(logits, p.targets, p.mask), weight) as tfjs.Scalar;
      }, vars);
      loss += value.dataSync()[0]!;
      value.dispose();
      if (m === 0) grads = g;
      else
        for (const k of Object.keys(g)) {
          const sum = tf.add(grads[k]!, g[k]!);
          grads[k]!.dispose();
          g[k]!.dispose();
          grads[k] = sum;
        }
    });
  } finally {
    for (const p of parts) release(tf, p);
  }
  const squares = tf.tidy(() => tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))));
  const norm = Math.sqrt(squares.dataSync()[0]!);
  squares.dispose();
  // Variables are named after their parameters: key the gradients by name.
  const named: Record<string, tfjs.Tensor> = {};
  for (const v of vars) if (grads[v.name]) named[v.name] = grads[v.name]!;
  return { loss, norm, tokens: parts.reduce((a, p) => a + p.count, 0), grads: named };
}

/** Mean loss over the counted positions of `examples` (training off); null when there are none. */
async function evaluateLoss(tf: Tf, model: Model, data: StageData, examples: readonly Example[], micro: number, encoder: FrozenEncoder | null): Promise<{ loss: number; perplexity: number; examples: number } | null> {
  const r = await teacherForcedLoss(tf, model, data, examples, micro, encoder ? (part) => encoder.encode(part) : undefined);
  return r && { loss: r.loss, perplexity: r.perplexity, examples: r.examples };
}
