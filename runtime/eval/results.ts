// An evaluation as data: the JSON document `vlmc eval --format json` prints, and DIR/eval.json,
// where every evaluation of a run is kept for whoever reads the run folder later (the HTML report,
// runtime/report/). One file per run, keyed by what was evaluated, so several evaluations coexist:
//
//   {"version": 1, "evaluations": {"validation": DOC, "novel": DOC, "data:../photos.jsonl": DOC, ...}}
//
// A key is the split's name, or `data:` and the --data file's path relative to the run folder
// (`/` separators, so the key does not depend on where vlmc was started); `@NAME` follows when a
// checkpoint's weights were evaluated (NAME: the checkpoint folder, or the .safetensors file's
// name), and `[:N]` when --limit kept only the first N images. Evaluating the same thing again
// replaces its entry. Each DOC is exactly the --format json document, plus `key` and
// `evaluated_at` (ISO 8601). The file is rewritten atomically (compiler/files.ts), so a reader
// never sees half of it; two evaluations of one run finishing at the same moment may lose one of
// the two entries (the last rename wins), never corrupt the file.
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { writeFileAtomic } from "../../compiler/files.js";
import type { Rate } from "./exact-match.js";
import type { EvalResult } from "./run.js";

export const EVAL_FILE = "eval.json";
export const EVAL_FILE_VERSION = 1;

export interface MetricsJson {
  /** Images scored. */
  examples: number;
  loss: number | null;
  perplexity: number | null;
  exact_match: Rate;
  bleu4: number;
  cider_d: number;
}

export interface EvalDocument extends MetricsJson {
  model: string;
  /** The weights file evaluated, as given or found. */
  weights: string;
  /** The data: the run's source (`shapes(...)`) or the --data file. */
  data: string;
  /** The split of the run's data; null for a --data file. */
  split: string | null;
  /** Reference captions over the images scored (several per image in captions data). */
  references: number;
  /** Target tokens the loss counted. */
  tokens: number;
  /** BLEU-4's parts: per-order precisions (1..4), brevity penalty, total lengths in words. */
  bleu: { precisions: number[]; brevity_penalty: number; hypothesis_length: number; reference_length: number };
  /** Per group of images (the shapes data: `novel`, `ordinary`). */
  groups: Record<string, MetricsJson>;
  /** The most frequent training caption given for every image; null for --data unless the run's data is generated (shapes). */
  baseline: (Rate & { caption: string; bleu4: number; cider_d: number }) | null;
  mistakes: { id: string; group: string | null; reference: string; references: string[]; prediction: string }[];
  /** Rows of a --data file left out: `FILE:LINE: why`. */
  skipped: string[];
  forward_passes: number;
  seconds: number;
}

export interface EvalFileDocument {
  version: number;
  /** Caption evaluations are EvalDocuments; other kinds (answers to questions) record their own document. */
  evaluations: Record<string, Record<string, unknown> & { key: string; evaluated_at: string }>;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

export function evalDocument(result: EvalResult, weights: string): EvalDocument {
  const c = result.captions;
  const groups: Record<string, MetricsJson> = {};
  for (const [g, m] of Object.entries(c.groups)) {
    const l = result.groupLoss[g];
    groups[g] = { examples: m.exactMatch.count, loss: l?.loss ?? null, perplexity: l?.perplexity ?? null, exact_match: m.exactMatch, bleu4: m.bleu4, cider_d: m.ciderD };
  }
  return {
    model: result.model,
    weights,
    data: result.data,
    split: result.split,
    examples: c.images,
    references: c.references,
    loss: result.loss?.loss ?? null,
    perplexity: result.loss?.perplexity ?? null,
    tokens: result.loss?.tokens ?? 0,
    exact_match: c.exactMatch,
    bleu4: c.bleu.score,
    cider_d: c.ciderD,
    bleu: { precisions: c.bleu.precisions, brevity_penalty: c.bleu.brevityPenalty, hypothesis_length: c.bleu.hypothesisLength, reference_length: c.bleu.referenceLength },
    groups,
    baseline: !result.hasBaseline ? null : { caption: c.baseline.caption, correct: c.baseline.correct, count: c.baseline.count, rate: c.baseline.rate, bleu4: c.baseline.bleu4, cider_d: c.baseline.ciderD },
    mistakes: c.mistakes.map((m) => ({ id: m.id, group: m.group, reference: m.reference, references: m.references, prediction: m.prediction })),
    skipped: result.skipped,
    forward_passes: result.forwardPasses,
    seconds: round(result.seconds, 1),
  };
}

/** The key of an evaluation in DIR/eval.json (see the top of this file). */
export function evalKey(runDir: string, what: { split?: string; stage?: string; data?: string; checkpoint?: string; weights?: string; limit?: number }): string {
  let key = what.data !== undefined ? `data:${relative(resolve(runDir), resolve(what.data)).split(sep).join("/")}` : (what.split ?? "validation");
  if (what.stage !== undefined && what.data === undefined) key = `${what.stage}:${key}`;
  if (what.checkpoint !== undefined && what.weights !== undefined) {
    // A checkpoint folder's weights are FOLDER/weights.safetensors: name the folder.
    key += `@${what.checkpoint.endsWith(".safetensors") ? basename(what.weights) : basename(dirname(what.weights))}`;
  }
  if (what.limit !== undefined) key += `[:${what.limit}]`;
  return key;
}

/**
 * Adds (or replaces) one evaluation in DIR/eval.json: `doc` is the command's JSON document (an
 * EvalDocument for captions). Returns a note when the existing file could not be read as one (it
 * is then replaced); throws on an I/O error.
 */
export function recordEvaluation(runDir: string, key: string, doc: object, now = new Date()): string | null {
  const file = join(runDir, EVAL_FILE);
  let current: EvalFileDocument = { version: EVAL_FILE_VERSION, evaluations: {} };
  let note: string | null = null;
  if (existsSync(file)) {
    try {
      const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<EvalFileDocument>;
      if (typeof parsed !== "object" || parsed === null || typeof parsed.evaluations !== "object" || parsed.evaluations === null) throw new Error("no `evaluations` object");
      current = { version: EVAL_FILE_VERSION, evaluations: parsed.evaluations };
    } catch (err) {
      note = `${file} was not an evaluations file (${(err as Error).message}): replaced`;
    }
  }
  current.evaluations[key] = { key, evaluated_at: now.toISOString(), ...doc };
  writeFileAtomic(file, `${JSON.stringify(current, null, 2)}\n`);
  return note;
}

/** DIR/eval.json's evaluations, or null when there is none (or it cannot be read). */
export function readEvaluations(runDir: string): EvalFileDocument | null {
  try {
    const parsed = JSON.parse(readFileSync(join(runDir, EVAL_FILE), "utf8")) as EvalFileDocument;
    return typeof parsed?.evaluations === "object" && parsed.evaluations !== null ? parsed : null;
  } catch {
    return null;
  }
}
