// Evaluating a trained run: reads a run folder as `vlmc train` leaves it (ir.json, tokenizer.json,
// weights.safetensors or a checkpoint's weights), rebuilds the data of its last stage exactly as
// the trainer does (runtime/train/data.ts: same source, same split, same pixels), greedy-decodes a
// caption for each image of the chosen split (runtime/generate.ts) and scores exact match
// (exact-match.ts). For the generated `shapes` source, validation images are also scored by group:
// `novel` (holding a (shape, colour) pairing never seen in training) and `ordinary`.
//
// Problems with the folder are RunError values with one-line messages; `usage` says whether the
// folder could not be read at all (exit 2) or holds something that does not fit (exit 1).
import { existsSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import type { Diagnostic } from "../../compiler/diagnostics/diagnostic.js";
import { hasErrors } from "../../compiler/diagnostics/diagnostic.js";
import { FileError } from "../../compiler/files.js";
import type { Ir, IrCall } from "../../compiler/ir/types.js";
import { readIr } from "../../compiler/ir/validate.js";
import type { SourceFile } from "../../compiler/source.js";
import type { Tf } from "../backend.js";
import { generateShapes } from "../data/shapes.js";
import { greedyDecode, textBudget } from "../generate.js";
import { Model } from "../model.js";
import { CharTokenizer, TokenizerFormatError } from "../tokenizer.js";
import { listCheckpoints, verifyCheckpoint } from "../train/checkpoint.js";
import { DataError, describeCall, loadStageData, type Example } from "../train/data.js";
import { loadWeightsFile, WeightsFailure } from "../weights.js";
import { exactMatch, type ExactMatch } from "./exact-match.js";

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
  tokenizer: CharTokenizer;
  /** The weights file to load, and what to call it in messages. */
  weights: string;
  weightsLabel: string;
}

/**
 * The run folder's files. `checkpoint`: a checkpoint's name under DIR/checkpoints, `last` (the
 * newest whole one), a checkpoint folder, or a .safetensors file; default: DIR/weights.safetensors.
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

  let tokenizer: CharTokenizer;
  const tokFile = join(abs, "tokenizer.json");
  try {
    tokenizer = CharTokenizer.fromJSON(readFileSync(tokFile, "utf8"));
  } catch (err) {
    if (err instanceof TokenizerFormatError) throw new RunError(`${join(dir, "tokenizer.json")}: ${err.message}`, false);
    throw new RunError(`${join(dir, "tokenizer.json")}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : (err as Error).message}`, true);
  }
  if (tokenizer.bos === null) throw new RunError("the tokenizer has no `bos` token: greedy decoding needs the token every caption starts from (add `bos` to the tokenizer's `specials`)", false);
  if (tokenizer.eos === null) throw new RunError("the tokenizer has no `eos` token: a caption would never end (add `eos` to the tokenizer's `specials`)", false);

  const { weights, label } = weightsOf(abs, dir, checkpoint);
  return { dir: abs, ir, tokenizer, weights, weightsLabel: label };
}

function weightsOf(abs: string, dir: string, checkpoint: string | undefined): { weights: string; label: string } {
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
    folder = existsSync(named) ? named : resolve(checkpoint);
    if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new RunError(`no checkpoint \`${checkpoint}\` in ${dir} (${names()})`, true);
  }
  const problem = verifyCheckpoint(folder);
  if (problem) throw new RunError(`checkpoint ${folder}: ${problem}`, false);
  return { weights: join(folder, "weights.safetensors"), label: join(folder, "weights.safetensors") };
}

export type SplitName = "validation" | "novel" | "ordinary" | "train";
export const SPLITS: readonly SplitName[] = ["validation", "novel", "ordinary", "train"];

export interface EvalOptions {
  split?: SplitName;
  /** Score only the first N examples of the split. */
  limit?: number;
  /** Images decoded at once. */
  batch?: number;
  /** After each batch: how many examples are done, of how many. */
  onProgress?: (done: number, total: number) => void;
}

export interface EvalResult extends ExactMatch {
  model: string;
  data: string;
  split: SplitName;
  examples: number;
  /** Forward passes run, over all batches. */
  forwardPasses: number;
  seconds: number;
}

/** The group of each shapes image by its id (`novel` or `ordinary`; training images: null). */
function shapesGroups(call: IrCall, split: number): Map<string, string | null> {
  const d = generateShapes({ images: call.images as number, size: call.size as number, seed: call.seed as number, split });
  return new Map([...d.train, ...d.validation].map((e) => [e.id, e.split === "validation" ? (e.novel ? "novel" : "ordinary") : null]));
}

/** Loads the weights into a model, greedy-decodes the split and scores it. Disposes what it makes. */
export async function evaluateRun(tf: Tf, run: RunFiles, options: EvalOptions = {}): Promise<EvalResult> {
  const { ir, tokenizer } = run;
  const train = ir.train!;
  const split = options.split ?? "validation";
  // The data the model finished on: the last stage's (each stage's data defaults to train.data).
  const call = train.stages.at(-1)?.data ?? train.data;
  if ((split === "novel" || split === "ordinary") && call.kind !== "shapes") throw new RunError(`--split ${split} is for the shapes data source; this run's data is ${describeCall(call)}`, true);
  let data;
  try {
    data = await loadStageData(call, ir, tokenizer, { baseDir: run.dir, split: train.split, seed: train.seed });
  } catch (err) {
    if (err instanceof DataError) throw new RunError(err.message, false);
    throw err;
  }
  if (!data.images) throw new RunError(`${data.describe} has no images: there is nothing to caption`, false);
  const groups = call.kind === "shapes" ? shapesGroups(call, train.split) : null;
  const groupOf = (e: Example) => groups?.get(e.image!) ?? null;
  let chosen: Example[] = split === "train" ? data.train : split === "validation" ? data.validation : data.validation.filter((e) => groupOf(e) === split);
  if (options.limit !== undefined) chosen = chosen.slice(0, options.limit);
  if (chosen.length === 0) throw new RunError(`the ${split} split of ${data.describe} is empty`, false);

  const model = Model.create(tf, ir, 0);
  const t0 = performance.now();
  try {
    try {
      loadWeightsFile(model, run.weights, null, () => {}, run.weightsLabel);
    } catch (err) {
      if (err instanceof WeightsFailure) throw new RunError(`${err.file} does not fit the model \`${ir.model}\`: ${err.problems.slice(0, 3).map((p) => p.message).join("; ")}`, err.unreadable);
      throw err;
    }
    const size = data.imageSize!;
    const batch = options.batch ?? 64;
    // A decoder with rotary or no positions has no context limit in the IR: let a caption run to
    // twice the longest training caption (its characters and eos) before it is cut.
    const longest = data.train.reduce((m, e) => Math.max(m, e.ids.length - 1), 1);
    const maxTokens = textBudget(model) ?? 2 * longest;
    const predictions: string[] = [];
    let forwardPasses = 0;
    for (let i = 0; i < chosen.length; i += batch) {
      const part = chosen.slice(i, i + batch);
      const pixels = await data.pixels(part);
      const images = tf.tensor4d(pixels, [part.length, size.height, size.width, 3]);
      try {
        const g = await greedyDecode(model, images, { start: tokenizer.bos!, eos: tokenizer.eos, pad: tokenizer.pad ?? 0, maxTokens });
        forwardPasses += g.steps;
        for (const ids of g.ids) predictions.push(tokenizer.decode(ids));
      } finally {
        images.dispose();
      }
      options.onProgress?.(Math.min(i + batch, chosen.length), chosen.length);
    }
    const scored = exactMatch(
      chosen.map((e, k) => ({ id: e.image!, reference: e.text, prediction: predictions[k]!, group: groupOf(e) })),
      data.train.map((e) => e.text),
    );
    return { ...scored, model: ir.model, data: data.describe, split, examples: chosen.length, forwardPasses, seconds: (performance.now() - t0) / 1000 };
  } finally {
    model.dispose();
  }
}
