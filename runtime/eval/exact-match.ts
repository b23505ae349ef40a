// Exact-match caption accuracy: a prediction counts only when it is one of the image's reference
// captions character for character (no normalisation: the shapes captions are lowercase words and
// single spaces, and the model must produce them exactly). Counted overall and per group (for shapes:
// `novel`, the validation images holding a (shape, colour) pairing never seen in training, and
// `ordinary`), next to the majority-caption baseline: the most frequent training caption given
// as the answer for every image. No tfjs here.

export interface Scored {
  id: string;
  /** The first reference (the one shown in messages). */
  reference: string;
  /** Every reference caption of the image. */
  references: string[];
  prediction: string;
  /** A subset the example belongs to (e.g. `novel`), or null. */
  group: string | null;
  correct: boolean;
}

export interface Rate {
  correct: number;
  count: number;
  /** correct / count; 0 when count is 0. */
  rate: number;
}

export interface Baseline extends Rate {
  /** The most frequent training caption (ties: the first in code point order). */
  caption: string;
}

export interface ExactMatch {
  overall: Rate;
  /** Per group, in order of first appearance. */
  groups: Record<string, Rate>;
  baseline: Baseline;
  /** The examples predicted wrongly, in input order. */
  mistakes: Scored[];
}

export const rate = (correct: number, count: number): Rate => ({ correct, count, rate: count === 0 ? 0 : correct / count });

/** The most frequent caption (ties: the first in code point order); "" when there are none. */
export function majorityCaption(captions: Iterable<string>): string {
  const counts = new Map<string, number>();
  for (const c of captions) counts.set(c, (counts.get(c) ?? 0) + 1);
  let best = "";
  let n = -1;
  for (const [c, k] of counts) if (k > n || (k === n && c < best)) [best, n] = [c, k];
  return best;
}

export interface Prediction {
  id: string;
  /** The image's reference captions (at least one). */
  references: readonly string[];
  prediction: string;
  group?: string | null;
}

/**
 * Scores predictions against their references, and the majority caption of `trainCaptions`
 * against the same references.
 */
export function exactMatch(examples: readonly Prediction[], trainCaptions: Iterable<string>): ExactMatch {
  const scored: Scored[] = examples.map((e) => ({
    id: e.id,
    reference: e.references[0] ?? "",
    references: [...e.references],
    prediction: e.prediction,
    group: e.group ?? null,
    correct: e.references.includes(e.prediction),
  }));
  const groups: Record<string, Rate> = {};
  for (const s of scored) {
    if (s.group === null) continue;
    const g = (groups[s.group] ??= rate(0, 0));
    groups[s.group] = rate(g.correct + (s.correct ? 1 : 0), g.count + 1);
  }
  const caption = majorityCaption(trainCaptions);
  const hits = scored.filter((s) => s.references.includes(caption)).length;
  return {
    overall: rate(scored.filter((s) => s.correct).length, scored.length),
    groups,
    baseline: { caption, ...rate(hits, scored.length) },
    mistakes: scored.filter((s) => !s.correct),
  };
}
