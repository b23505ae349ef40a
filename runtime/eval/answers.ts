// Evaluating a run trained on instruction data (`instruct(...)`, `conversations(...)`): each
// question of the chosen split is put to the model as training formatted it (runtime/chat.ts's
// prompt: the question up to the assistant marker, after any earlier exchanges of its row, the
// image's tokens in front), the answer is decoded greedily (runtime/generate.ts, KV cache) and cut
// at the template's separator, and answers are scored per question type against the majority-
// answer baseline (qa.ts). For `instruct`, whose pictures are the shapes set's, the validation
// split's novel and ordinary pictures are also scored apart, as `vlmc eval` does for captions.
//
// `vlmc eval` takes this path when the run's data is a chat source (isChatData); problems are the
// RunErrors of run.ts.
import { performance } from "node:perf_hooks";
import type { IrCall } from "../../compiler/ir/types.js";
import type { Tf } from "../backend.js";
import { answerOf, encodePrompt, type ChatTemplate } from "../chat.js";
import { generateShapes, type HeldOutKind } from "../data/shapes.js";
import { generate, textBudget } from "../generate.js";
import { Model } from "../model.js";
import { DataError, describeCall, loadStageData, type Example, type StageData } from "../train/data.js";
import { loadWeightsFile, WeightsFailure } from "../weights.js";
import { rate, type Rate } from "./exact-match.js";
import { answerAccuracy, majorityBaseline, type QaAccuracy } from "./qa.js";
import { RunError, type RunFiles, type SplitName } from "./run.js";

export interface AnswerMistake {
  id: string;
  type: string;
  question: string;
  reference: string;
  prediction: string;
  group: string | null;
}

export interface AnswerEval {
  model: string;
  data: string;
  split: SplitName;
  /** Questions scored. */
  questions: number;
  accuracy: QaAccuracy;
  /** Each type answered with its most frequent training answer. */
  baseline: QaAccuracy;
  /** Accuracy per group of pictures (instruct: `novel`, `ordinary`). */
  groups: Record<string, Rate>;
  mistakes: AnswerMistake[];
  forwardPasses: number;
  seconds: number;
}

export interface AnswerOptions {
  split?: SplitName;
  /** Only the first N questions of the split. */
  limit?: number;
  /** Questions decoded at once. */
  batch?: number;
  onProgress?: (done: number, total: number) => void;
}

/** The data a run finished on: its last stage's (each stage's data defaults to `train.data`). */
export function lastData(run: RunFiles): IrCall {
  return run.ir.train!.stages.at(-1)?.data ?? run.ir.train!.data;
}

/** Whether the run's data is questions and answers written with a chat template. */
export function isChatData(run: RunFiles): boolean {
  const kind = lastData(run).kind;
  return kind === "instruct" || kind === "conversations";
}

/** `novel` / `ordinary` for the validation pictures of `instruct` (its pictures are the shapes set's). */
function pictureGroups(call: IrCall, split: number): Map<string, string | null> | null {
  if (call.kind !== "instruct") return null;
  const d = generateShapes({ images: call.images as number, size: call.size as number, seed: call.seed as number, split, heldOut: (call.held_out as HeldOutKind | undefined) ?? "pairs" });
  return new Map([...d.train, ...d.validation].map((e) => [e.id, e.split === "validation" ? (e.novel ? "novel" : "ordinary") : null]));
}

/**
 * Greedy answers to the questions of `examples` (each with `qa`), cut at the separator. Rows of a
 * batch may have prompts of different lengths: generate() feeds each its own prompt.
 */
export async function answerQuestions(model: Model, run: RunFiles, chat: ChatTemplate, data: StageData, examples: readonly Example[], opts: { batch: number; maxTokens: number; onProgress?: (done: number, total: number) => void }): Promise<{ answers: string[]; forwardPasses: number }> {
  const { tf } = model;
  const { tokenizer } = run;
  const size = data.imageSize!;
  const answers: string[] = [];
  let forwardPasses = 0;
  for (let i = 0; i < examples.length; i += opts.batch) {
    const part = examples.slice(i, i + opts.batch);
    const prompts = part.map((e) => {
      const r = encodePrompt(e.qa!.question, chat, tokenizer, e.qa!.history);
      // The prompt is the prefix of a conversation that encoded for training: it encodes too.
      if (!r.ok) throw new RunError(`${e.image}: ${r.message}`, false);
      return r.ids;
    });
    const images = tf.tensor4d(await data.pixels(part), [part.length, size.height, size.width, 3]);
    try {
      const g = await generate(model, images, { prompt: prompts, eos: tokenizer.eos, pad: tokenizer.pad ?? 0, maxTokens: opts.maxTokens });
      forwardPasses += g.steps;
      for (const ids of g.ids) answers.push(answerOf(tokenizer.decode(ids), chat));
    } finally {
      images.dispose();
    }
    opts.onProgress?.(Math.min(i + opts.batch, examples.length), examples.length);
  }
  return { answers, forwardPasses };
}

/** Loads the run's weights, answers the split's questions and scores them. Disposes what it makes. */
export async function evaluateAnswers(tf: Tf, run: RunFiles, options: AnswerOptions = {}): Promise<AnswerEval> {
  const { ir } = run;
  const chat = ir.chat;
  const call = lastData(run);
  if (!chat) throw new RunError(`${describeCall(call)} is written with a chat template, but ${run.dir}/ir.json has none`, false);
  const split = options.split ?? "validation";
  if ((split === "novel" || split === "ordinary") && call.kind !== "instruct") throw new RunError(`--split ${split} is for generated pictures (shapes, instruct); this run's data is ${describeCall(call)}`, true);
  let data: StageData;
  try {
    data = await loadStageData(call, ir, run.tokenizer, { baseDir: run.dir, split: ir.train!.split, seed: ir.train!.seed });
  } catch (err) {
    if (err instanceof DataError) throw new RunError(err.message, false);
    throw err;
  }
  const groups = pictureGroups(call, ir.train!.split);
  const groupOf = (e: Example) => groups?.get(e.image!) ?? null;
  const pool = split === "train" ? data.train : split === "validation" ? data.validation : data.validation.filter((e) => groupOf(e) === split);
  let chosen = pool.filter((e) => e.qa);
  if (options.limit !== undefined) chosen = chosen.slice(0, options.limit);
  if (chosen.length === 0) throw new RunError(`the ${split} split of ${data.describe} has no questions`, false);

  const model = Model.create(tf, ir, 0, { baseDir: run.dir });
  const t0 = performance.now();
  try {
    try {
      loadWeightsFile(model, run.weights, null, () => {}, run.weightsLabel);
    } catch (err) {
      if (err instanceof WeightsFailure) throw new RunError(`${err.file} does not fit the model \`${ir.model}\`: ${err.problems.slice(0, 3).map((p) => p.message).join("; ")}`, err.unreadable);
      throw err;
    }
    // Room for the longest answer training taught (its tokens, separator and eos: what the loss
    // counted), and a little more; answers are cut at the separator anyway.
    const longest = data.train.reduce((m, e) => Math.max(m, e.lossMask ? e.lossMask.reduce((a, x) => a + x, 0) : 0), 1);
    const budget = textBudget(model);
    const maxTokens = budget === null ? longest + 2 : Math.max(1, Math.min(budget, longest + 2));
    const { answers, forwardPasses } = await answerQuestions(model, run, chat, data, chosen, { batch: options.batch ?? 64, maxTokens, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
    const refs = chosen.map((e) => e.qa!.answer);
    const types = chosen.map((e) => e.qa!.type);
    const accuracy = answerAccuracy(refs, answers, types);
    const trainQa = data.train.filter((e) => e.qa).map((e) => ({ type: e.qa!.type, answer: e.qa!.answer }));
    const byGroup: Record<string, Rate> = {};
    chosen.forEach((e, k) => {
      const g = groupOf(e);
      if (g === null) return;
      const r = byGroup[g] ?? rate(0, 0);
      byGroup[g] = rate(r.correct + (accuracy.items[k]!.correct ? 1 : 0), r.count + 1);
    });
    const mistakes = chosen.flatMap((e, k) => (accuracy.items[k]!.correct ? [] : [{ id: e.image!, type: e.qa!.type, question: e.qa!.question, reference: e.qa!.answer, prediction: answers[k]!, group: groupOf(e) }]));
    return {
      model: ir.model,
      data: data.describe,
      split,
      questions: chosen.length,
      accuracy,
      baseline: majorityBaseline(trainQa, refs, types),
      groups: byGroup,
      mistakes,
      forwardPasses,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    model.dispose();
  }
}

const pct = (r: Rate) => `${r.correct}/${r.count} = ${(100 * r.rate).toFixed(1)}%`;

/** The evaluation as text lines, for `vlmc eval`. */
export function answerReport(r: AnswerEval, run: { dir: string; weights: string }, mistakes: number): string[] {
  const lines = [
    `run: ${run.dir} (model ${r.model}, weights ${run.weights})`,
    `data: ${r.data}, ${r.split} split: ${r.questions} questions`,
    `answer accuracy: ${pct(r.accuracy.overall)} (majority-answer baseline ${pct(r.baseline.overall)})`,
    ...Object.entries(r.accuracy.types).map(([t, a]) => `  ${t}: ${pct(a)} (baseline ${pct(r.baseline.types[t]!)})`),
    ...Object.entries(r.groups).map(([g, a]) => `  ${g === "novel" ? "novel pictures (held-out combinations)" : `${g} pictures`}: ${pct(a)}`),
  ];
  const shown = r.mistakes.slice(0, mistakes);
  if (shown.length > 0) {
    lines.push(`mistakes (${shown.length} of ${r.mistakes.length}):`);
    for (const m of shown) lines.push(`  ${m.id} (${m.type}${m.group ? `, ${m.group}` : ""}): ${JSON.stringify(m.question)} want ${JSON.stringify(m.reference)}, got ${JSON.stringify(m.prediction)}`);
  }
  lines.push(`time: ${r.seconds.toFixed(1)} s (${r.forwardPasses} forward passes of greedy decoding)`);
  return lines;
}

/** The evaluation as one JSON document, for `vlmc eval --json`. */
export function answerJson(r: AnswerEval, weights: string): object {
  return {
    model: r.model,
    weights,
    data: r.data,
    split: r.split,
    questions: r.questions,
    answer_accuracy: { overall: r.accuracy.overall, types: r.accuracy.types },
    baseline: { overall: r.baseline.overall, types: r.baseline.types },
    groups: r.groups,
    mistakes: r.mistakes,
    forward_passes: r.forwardPasses,
    seconds: Math.round(r.seconds * 10) / 10,
  };
}
