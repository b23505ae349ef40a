// Answer accuracy for instruction data: generated answers against reference answers, overall and
// per question type (the `instruct` source tags each question: colour, count, relation, ...), next
// to the majority-answer baseline per type (the most frequent training answer of that type, given
// to every question of the type: "is the square left of the circle?" is right half the time by
// answering "yes", which a per-type score has to beat to mean anything). Pure functions, no tfjs.
//
// Answers are compared after normalisation: surrounding space trimmed, lowercase, and final
// punctuation stripped ("Red." and "red" are the same answer); nothing else (no synonyms, no
// articles dropped: the answers are single words).
import { rate, type Rate } from "./exact-match.js";

export interface QaItem {
  type: string;
  reference: string;
  prediction: string;
  correct: boolean;
}

export interface QaAccuracy {
  overall: Rate;
  /** Per question type, types in code point order. */
  types: Record<string, Rate>;
  items: QaItem[];
}

/** An answer as it is compared: trimmed, lowercase, without final punctuation. */
export function normalizeAnswer(s: string): string {
  return s
    .trim()
    .toLowerCase()
    .replace(/[\p{P}\s]+$/u, "")
    .trim();
}

/** Accuracy of `predictions` against `references`, overall and per type (the three lists align). */
export function answerAccuracy(references: readonly string[], predictions: readonly string[], types: readonly string[]): QaAccuracy {
  if (references.length !== predictions.length || references.length !== types.length) {
    throw new RangeError(`answerAccuracy: ${references.length} references, ${predictions.length} predictions and ${types.length} types`);
  }
  const items: QaItem[] = references.map((reference, i) => ({ type: types[i]!, reference, prediction: predictions[i]!, correct: normalizeAnswer(predictions[i]!) === normalizeAnswer(reference) }));
  const counts = new Map<string, [number, number]>();
  for (const it of items) {
    const c = counts.get(it.type) ?? [0, 0];
    counts.set(it.type, [c[0] + (it.correct ? 1 : 0), c[1] + 1]);
  }
  const perType: Record<string, Rate> = {};
  for (const t of [...counts.keys()].sort()) perType[t] = rate(...counts.get(t)!);
  return { overall: rate(items.filter((i) => i.correct).length, items.length), types: perType, items };
}

/**
 * The majority-answer baseline: for each type, the most frequent (normalised) training answer
 * (ties: the first in code point order), scored as the prediction for every question of its type.
 * A type never seen in training gets "" (always wrong).
 */
export function majorityAnswers(train: readonly { type: string; answer: string }[]): Map<string, string> {
  const counts = new Map<string, Map<string, number>>();
  for (const t of train) {
    const m = counts.get(t.type) ?? new Map<string, number>();
    const a = normalizeAnswer(t.answer);
    m.set(a, (m.get(a) ?? 0) + 1);
    counts.set(t.type, m);
  }
  const out = new Map<string, string>();
  for (const [type, m] of counts) {
    let best = "";
    let n = -1;
    for (const [a, k] of m) if (k > n || (k === n && a < best)) [best, n] = [a, k];
    out.set(type, best);
  }
  return out;
}

/** The baseline's accuracy on the given references: each type answered with its majority answer. */
export function majorityBaseline(train: readonly { type: string; answer: string }[], references: readonly string[], types: readonly string[]): QaAccuracy {
  const majority = majorityAnswers(train);
  return answerAccuracy(references, types.map((t) => majority.get(t) ?? ""), types);
}
