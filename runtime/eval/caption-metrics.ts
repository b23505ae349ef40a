// The caption metrics of one evaluation, in one place: exact match (exact-match.ts), corpus
// BLEU-4 (bleu.ts) and CIDEr-D (cider.ts) over the images scored, the same per group (the shapes
// data's `novel` and `ordinary` images), and the same for the majority-caption baseline, so every
// figure has its floor beside it. One prediction per image, scored against all of that image's
// reference captions. No tfjs here.
//
// Groups: BLEU is a corpus statistic, so a group's BLEU-4 is computed on its images alone;
// CIDEr-D's document frequencies come from the references of all the images evaluated, and a
// group's CIDEr-D is the mean of its images' scores (so the groups' scores, weighted by their
// sizes, average to the overall one).
import { corpusBleu, type Bleu } from "./bleu.js";
import { ciderD } from "./cider.js";
import { exactMatch, rate, type Baseline, type Prediction, type Rate, type Scored } from "./exact-match.js";
import { captionWords } from "./words.js";

export interface CaptionGroup {
  exactMatch: Rate;
  bleu4: number;
  ciderD: number;
}

export interface CaptionMetrics {
  /** Images scored. */
  images: number;
  /** Reference captions over those images. */
  references: number;
  exactMatch: Rate;
  bleu: Bleu;
  ciderD: number;
  groups: Record<string, CaptionGroup>;
  baseline: Baseline & { bleu4: number; ciderD: number };
  /** The images predicted wrongly (not exactly one of their references), in input order. */
  mistakes: Scored[];
}

/** Scores one prediction per image against its references; the baseline from `trainCaptions`. */
export function scoreCaptions(predictions: readonly Prediction[], trainCaptions: Iterable<string>): CaptionMetrics {
  const em = exactMatch(predictions, trainCaptions);
  const refs = predictions.map((p) => p.references.map(captionWords));
  const hyps = predictions.map((p) => captionWords(p.prediction));
  const cider = ciderD(predictions.map((_, i) => ({ candidate: hyps[i]!, references: refs[i]! })));

  const members = new Map<string, number[]>();
  predictions.forEach((p, i) => {
    if (p.group === null || p.group === undefined) return;
    const m = members.get(p.group) ?? [];
    m.push(i);
    members.set(p.group, m);
  });
  const groups: Record<string, CaptionGroup> = {};
  for (const [g, idx] of members) {
    groups[g] = {
      exactMatch: em.groups[g] ?? rate(0, 0),
      bleu4: corpusBleu(idx.map((i) => refs[i]!), idx.map((i) => hyps[i]!)).score,
      ciderD: idx.reduce((a, i) => a + cider.scores[i]!, 0) / idx.length,
    };
  }

  const baseWords = captionWords(em.baseline.caption);
  const baseCider = predictions.length ? ciderD(predictions.map((_, i) => ({ candidate: baseWords, references: refs[i]! }))).score : 0;
  const baseBleu = corpusBleu(refs, predictions.map(() => baseWords)).score;
  const bleu = corpusBleu(refs, hyps);
  return {
    images: predictions.length,
    references: predictions.reduce((a, p) => a + p.references.length, 0),
    exactMatch: em.overall,
    bleu,
    ciderD: cider.score,
    groups,
    baseline: { ...em.baseline, bleu4: baseBleu, ciderD: baseCider },
    mistakes: em.mistakes,
  };
}
