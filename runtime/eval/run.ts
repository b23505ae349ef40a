// Evaluating a trained run: reads a run folder as `vlmc train` leaves it (ir.json, tokenizer.json,
// weights.safetensors or a checkpoint's weights), takes the data to evaluate (a split of the data
// of its last stage, rebuilt exactly as the trainer does: runtime/train/data.ts, same source, same
// split, same pixels; or a captions file, data.ts here), computes the teacher-forced loss of its
// captions (loss.ts), greedy-decodes one caption per image (runtime/generate.ts) and scores them
// against all of that image's captions: exact match, BLEU-4, CIDEr-D (caption-metrics.ts). For the
// generated `shapes` source, validation images are also scored by group: `novel` (holding a
// (shape, colour) pairing never seen in training) and `ordinary`.
//
// Problems with the folder are RunError values with one-line messages; `usage` says whether the
// folder could not be read at all (exit 2) or holds something that does not fit (exit 1).
import { existsSync, statSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import type { Diagnostic } from "../../compiler/diagnostics/diagnostic.js";
import { hasErrors } from "../../compiler/diagnostics/diagnostic.js";
import { FileError } from "../../compiler/files.js";
import type { Ir, IrCall } from "../../compiler/ir/types.js";
import { readIr } from "../../compiler/ir/validate.js";
import type { SourceFile } from "../../compiler/source.js";
import type { Tf } from "../backend.js";
import { generateShapes, type HeldOutKind } from "../data/shapes.js";
import { greedyDecode, textBudget } from "../generate.js";
import { Model } from "../model.js";
import { TokenizerFormatError, type Tokenizer } from "../tokenizer.js";
import { loadRunTokenizer } from "../tokenizers/load.js";
import { listCheckpoints, verifyCheckpoint } from "../train/checkpoint.js";
import { DataError, describeCall, loadStageData, type Example, type StageData } from "../train/data.js";
import { loadWeightsFile, WeightsFailure } from "../weights.js";
import { scoreCaptions, type CaptionMetrics } from "./caption-metrics.js";
import { EvalDataError, loadEvalFile } from "./data.js";
import { teacherForcedLoss, type LossData, type LossResult } from "./loss.js";

export class RunError extends Error {
  constructor(
    message: string,
    /** The folder or a file could not be read at all (exit 2), rather than not fitting (exit 1). */
    readonly usage: boolean,
    readonly diagnostics: Diagnostic[] = [],
    readonly sources: Map<string, SourceFile> = new Map(),
  ) {
    super(message);
    this.name = "RunError";
  }
}

export interface RunFiles {
  dir: string;
  ir: Ir;
  tokenizer: Tokenizer;
  /** The weights file to load, and what to call it in messages. */
  weights: string;
  weightsLabel: string;
  /** The stage whose checkpoint the weights are (a checkpoint of the run's own); absent: the final weights or another file. */
  stage?: string;
}

/**
 * The run folder's files. `checkpoint`: a checkpoint's name under DIR/checkpoints, a stage's
 * name (its newest whole checkpoint), `last` (the newest whole one), a checkpoint folder, or a
 * .safetensors file; default: DIR/weights.safetensors.
 */
export function readRun(dir: string, checkpoint?: string): RunFiles {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw new RunError(`${dir}: no such run folder`, true);
  const irFile = join(abs, "ir.json");
  if (!existsSync(irFile)) throw new RunError(`${dir}: not a run folder (no ir.json; \`vlmc train SPEC --out ${dir}\` makes one)`, true);
  let input;
  try {
    input = readIr(irFile);
  } catch (err) {
    if (err instanceof FileError) throw new RunError(err.message, true);
    throw err;
  }
  if (!input.ir || hasErrors(input.diagnostics)) throw new RunError(`${join(dir, "ir.json")} is not a valid IR`, false, input.diagnostics, input.sources);
  const ir = input.ir;
  if (!ir.modules.decoder) throw new RunError(`the model \`${ir.model}\` has no decoder: it makes no captions`, false);
  if (!ir.train) throw new RunError(`the model \`${ir.model}\` has no \`train\` section: there is no data to evaluate on`, false);

  let tokenizer: Tokenizer;
  try {
    tokenizer = loadRunTokenizer(abs, ir.tokenizer);
  } catch (err) {
    if (err instanceof TokenizerFormatError) throw new RunError(`${join(dir, "tokenizer.json")}: ${err.message}`, false);
    throw new RunError(`${join(dir, "tokenizer.json")}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : (err as Error).message}`, true);
  }
  if (tokenizer.bos === null) throw new RunError("the tokenizer has no `bos` token: greedy decoding needs the token every caption starts from (add `bos` to the tokenizer's `specials`)", false);
  if (tokenizer.eos === null) throw new RunError("the tokenizer has no `eos` token: a caption would never end (add `eos` to the tokenizer's `specials`)", false);

  const { weights, label, stage } = weightsOf(abs, dir, checkpoint);
  return { dir: abs, ir, tokenizer, weights, weightsLabel: label, ...(stage !== undefined && ir.train.stages.some((s) => s.name === stage) ? { stage } : {}) };
}

function weightsOf(abs: string, dir: string, checkpoint: string | undefined): { weights: string; label: string; stage?: string } {
  const names = () => {
    const all = listCheckpoints(abs).map((c) => c.name);
    return all.length ? `its checkpoints: ${all.join(", ")}` : "it has no checkpoints";
  };
  if (checkpoint === undefined) {
    const w = join(abs, "weights.safetensors");
    if (!existsSync(w)) throw new RunError(`${dir} has no weights.safetensors (the run has not finished): give --checkpoint NAME or --checkpoint last (${names()})`, true);
    return { weights: w, label: join(dir, "weights.safetensors") };
  }
  let folder: string;
  if (checkpoint === "last") {
    const whole = listCheckpoints(abs).reverse().find((c) => verifyCheckpoint(c.path) === null);
    if (!whole) throw new RunError(`${dir} has no whole checkpoint`, true);
    folder = whole.path;
  } else if (checkpoint.endsWith(".safetensors")) {
    const f = isAbsolute(checkpoint) ? checkpoint : resolve(checkpoint);
    if (!existsSync(f)) throw new RunError(`${checkpoint}: no such file`, true);
    return { weights: f, label: checkpoint };
  } else {
    const named = join(abs, "checkpoints", checkpoint);
    // A stage's name: that stage's newest whole checkpoint (the weights the stage ended with).
    const ofStage = listCheckpoints(abs)
      .reverse()
      .find((c) => c.stage === checkpoint && verifyCheckpoint(c.path) === null);
    folder = existsSync(named) ? named : ofStage ? ofStage.path : resolve(checkpoint);
    if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new RunError(`no checkpoint \`${checkpoint}\` in ${dir} (${names()})`, true);
  }
  const problem = verifyCheckpoint(folder);
  if (problem) throw new RunError(`checkpoint ${folder}: ${problem}`, false);
  const own = listCheckpoints(abs).find((c) => resolve(c.path) === resolve(folder));
  return { weights: join(folder, "weights.safetensors"), label: join(folder, "weights.safetensors"), ...(own ? { stage: own.stage } : {}) };
}

export type SplitName = "validation" | "novel" | "ordinary" | "train";
export const SPLITS: readonly SplitName[] = ["validation", "novel", "ordinary", "train"];

export interface EvalOptions {
  /** A split of the run's own data (default `validation`)... */
  split?: SplitName;
  /** ... or a captions JSON Lines file (runtime/eval/data.ts). */
  data?: string;
  /** Score only the first N images. */
  limit?: number;
  /** Images decoded at once. */
  batch?: number;
  /** After each batch: how many images are done, of how many. */
  onProgress?: (done: number, total: number) => void;
}

export interface EvalResult {
  model: string;
  /** The data evaluated: the run's source (`shapes(...)`) or the --data file as given. */
  data: string;
  /** The split of the run's data, or null for a --data file. */
  split: SplitName | null;
  /** Teacher-forced loss over every caption of the images scored; null when it counts no token. */
  loss: LossResult | null;
  /** The same per group (shapes: `novel`, `ordinary`). */
  groupLoss: Record<string, LossResult>;
  /**
   * Metrics of generated captions. Evaluations of other kinds of data (answers to questions,
   * runtime/eval/qa.ts) add their own block beside this one.
   */
  captions: CaptionMetrics;
  /** Whether `captions.baseline` means anything: false for --data when the run's training data is not generated (shapes), or cannot be read. */
  hasBaseline: boolean;
  /** Rows of a --data file left out, `FILE:LINE: why`. */
  skipped: string[];
  /** Forward passes of greedy decoding, over all batches. */
  forwardPasses: number;
  seconds: number;
}

/** The group of each shapes image by its id (`novel` or `ordinary`; training images: null). */
function shapesGroups(call: IrCall, split: number): Map<string, string | null> {
  // The arguments the shapes source generates with (runtime/data/sources/shapes.ts).
  const d = generateShapes({ images: call.images as number, size: call.size as number, seed: call.seed as number, split, heldOut: (call.held_out as HeldOutKind | undefined) ?? "pairs" });
  return new Map([...d.train, ...d.validation].map((e) => [e.id, e.split === "validation" ? (e.novel ? "novel" : "ordinary") : null]));
}

/** The examples to evaluate, what the loss needs of them, and the run's training captions. */
interface Chosen {
  describe: string;
  examples: Example[];
  data: LossData;
  groupOf: (e: Example) => string | null;
  /** The run's training captions (the baseline, the decoding budget); null when unreadable (--data). */
  trainCaptions: Example[] | null;
  skipped: string[];
}

async function chooseExamples(run: RunFiles, options: EvalOptions): Promise<Chosen> {
  const { ir, tokenizer } = run;
  const train = ir.train!;
  // The data the model finished on: the last stage's (each stage's data defaults to train.data).
  const call = train.stages.at(-1)?.data ?? train.data;
  const loadRunData = () => loadStageData(call, ir, tokenizer, { baseDir: run.dir, split: train.split, seed: train.seed });
  if (options.data !== undefined) {
    let file;
    try {
      file = await loadEvalFile(options.data, ir, tokenizer);
    } catch (err) {
      if (err instanceof EvalDataError) throw new RunError(err.message, err.usage);
      throw err;
    }
    // The run's own data only gives the baseline its caption. Generated data costs nothing to
    // rebuild; a file source would decode every training image for one caption: no baseline then.
    const own = call.kind === "shapes" ? await loadRunData().catch(() => null) : null;
    return { describe: file.describe, examples: file.examples, data: file, groupOf: () => null, trainCaptions: own?.images ? own.train : null, skipped: file.problems };
  }
  const split = options.split ?? "validation";
  if ((split === "novel" || split === "ordinary") && call.kind !== "shapes") throw new RunError(`--split ${split} is for the shapes data source; this run's data is ${describeCall(call)}`, true);
  let data: StageData;
  try {
    data = await loadRunData();
  } catch (err) {
    if (err instanceof DataError) throw new RunError(err.message, false);
    throw err;
  }
  if (!data.images) throw new RunError(`${data.describe} has no images: there is nothing to caption (a text-only stage's validation loss is in the run's metrics: \`vlmc plot\`)`, false);
  const groups = call.kind === "shapes" ? shapesGroups(call, train.split) : null;
  const groupOf = (e: Example) => groups?.get(e.image!) ?? null;
  const examples = split === "train" ? data.train : split === "validation" ? data.validation : data.validation.filter((e) => groupOf(e) === split);
  return { describe: data.describe, examples, data, groupOf, trainCaptions: data.train, skipped: [] };
}

/** Examples grouped by image, in order of first appearance: one prediction each, all its captions as references. */
function byImage(examples: readonly Example[]): { image: string; rows: Example[] }[] {
  const at = new Map<string, { image: string; rows: Example[] }>();
  for (const e of examples) {
    let g = at.get(e.image!);
    if (!g) at.set(e.image!, (g = { image: e.image!, rows: [] }));
    g.rows.push(e);
  }
  return [...at.values()];
}

/**
 * Loads the weights into a model, computes the teacher-forced loss of the chosen captions,
 * greedy-decodes one caption per image and scores them. Disposes what it makes.
 */
export async function evaluateRun(tf: Tf, run: RunFiles, options: EvalOptions = {}): Promise<EvalResult> {
  const { ir, tokenizer } = run;
  const chosen = await chooseExamples(run, options);
  let images = byImage(chosen.examples);
  if (options.limit !== undefined) images = images.slice(0, options.limit);
  const what = options.data !== undefined ? options.data : `the ${options.split ?? "validation"} split of ${chosen.describe}`;
  if (images.length === 0) throw new RunError(`${what} is empty`, false);
  const rows = images.flatMap((g) => g.rows);

  const model = Model.create(tf, ir, 0, { baseDir: run.dir });
  const t0 = performance.now();
  try {
    const hashWarnings: string[] = [];
    try {
      loadWeightsFile(model, run.weights, null, (w) => w.kind === "hash" && hashWarnings.push(w.message), run.weightsLabel);
    } catch (err) {
      if (err instanceof WeightsFailure) throw new RunError(`${err.file} does not fit the model \`${ir.model}\`: ${err.problems.slice(0, 3).map((p) => p.message).join("; ")}`, err.unreadable);
      throw err;
    }
    // Same tensor names and shapes but another architecture (an activation, a norm, positions):
    // the numbers would be meaningless.
    if (hashWarnings.length) throw new RunError(`${run.weightsLabel} belongs to another model than ${join(displayDir(run), "ir.json")}: ${hashWarnings[0]}`, false);

    // The loss in the chunks training evaluated in (its last stage's micro-batch), so that on the
    // validation split it is the number training last reported.
    const last = ir.train!.stages.at(-1);
    const chunk = last ? Math.max(1, Math.ceil(last.batch / last.accumulate)) : 8;
    const loss = await teacherForcedLoss(tf, model, chosen.data, rows, chunk);
    const groupLoss: Record<string, LossResult> = {};
    const groupNames = [...new Set(rows.map(chosen.groupOf).filter((g): g is string => g !== null))];
    for (const g of groupNames) {
      const r = await teacherForcedLoss(tf, model, chosen.data, rows.filter((e) => chosen.groupOf(e) === g), chunk);
      if (r) groupLoss[g] = r;
    }

    const size = chosen.data.imageSize!;
    const batch = options.batch ?? 64;
    // A decoder with rotary or no positions has no context limit in the IR: let a caption run to
    // twice the longest training caption (its characters and eos) before it is cut.
    const longest = (chosen.trainCaptions ?? chosen.examples).reduce((m, e) => Math.max(m, e.ids.length - 1), 1);
    const maxTokens = textBudget(model) ?? 2 * longest;
    const predictions: string[] = [];
    let forwardPasses = 0;
    for (let i = 0; i < images.length; i += batch) {
      const part = images.slice(i, i + batch).map((g) => g.rows[0]!);
      const pixels = await chosen.data.pixels(part);
      const input = tf.tensor4d(pixels, [part.length, size.height, size.width, 3]);
      try {
        const g = await greedyDecode(model, input, { start: tokenizer.bos!, eos: tokenizer.eos, pad: tokenizer.pad ?? 0, maxTokens });
        forwardPasses += g.steps;
        for (const ids of g.ids) predictions.push(tokenizer.decode(ids));
      } finally {
        input.dispose();
      }
      options.onProgress?.(Math.min(i + batch, images.length), images.length);
    }
    const captions = scoreCaptions(
      images.map((g, k) => ({ id: displayImage(g.image), references: g.rows.map((e) => e.text), prediction: predictions[k]!, group: chosen.groupOf(g.rows[0]!) })),
      (chosen.trainCaptions ?? []).map((e) => e.text),
    );
    return {
      model: ir.model,
      data: chosen.describe,
      split: options.data !== undefined ? null : (options.split ?? "validation"),
      loss,
      groupLoss,
      captions,
      hasBaseline: chosen.trainCaptions !== null,
      skipped: chosen.skipped,
      forwardPasses,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    model.dispose();
  }
}

/** The run folder as the user would write it: relative to the working directory when inside it. */
function displayDir(run: RunFiles): string {
  const rel = relative(process.cwd(), run.dir);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : run.dir;
}

/** An image's id in results: generated ids as they are, files relative to the working directory when inside it. */
function displayImage(image: string): string {
  if (!isAbsolute(image)) return image;
  const rel = relative(process.cwd(), image);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : image;
}
