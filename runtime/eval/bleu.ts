// Corpus BLEU (Papineni et al. 2002, "BLEU: a method for automatic evaluation of machine
// translation"), as nltk's `corpus_bleu` and sacrebleu compute it: for each order n = 1..4, the
// hypotheses' n-grams matched against their references, each n-gram's count clipped by the most
// times it occurs in any one reference, summed over the whole corpus before dividing (micro
// average, not a mean of sentence scores); the geometric mean of the four precisions; and a
// brevity penalty exp(1 - r / c) when the hypotheses' total length c is below r, the sum over
// hypotheses of the reference length closest to each (ties: the shorter reference).
//
// Smoothing: with `exp` (the default), an order with no match at all gets the precision
// 1 / (2^k * total) instead of 0, k counting such orders from 1: the NIST geometric smoothing,
// nltk's `method3` and sacrebleu's default `exp`. It changes nothing when every order has a
// match (any corpus of real captions of 4+ words) and keeps a small or very wrong corpus from
// scoring a flat 0 that says nothing. `none` is the paper's BLEU: 0 as soon as an order has no
// match. Either way the score is 0 when no word matches.
//
// Two details where nltk differs are Papineni's here: an order's denominator is the true count
// of the hypotheses' n-grams (nltk counts at least 1 per hypothesis, even one shorter than n),
// and an order with no n-gram at all (every hypothesis shorter than n) has precision 0. Neither
// matters once hypotheses have 4 words. Inputs are words (words.ts makes them from captions).

export type BleuSmoothing = "exp" | "none";

export interface BleuOptions {
  /** The highest n-gram order (4: BLEU-4). Orders are weighted uniformly. */
  maxOrder?: number;
  /** Weights of orders 1..N (default uniform 1/N); their count sets N. */
  weights?: readonly number[];
  smoothing?: BleuSmoothing;
}

export interface Bleu {
  /** The score in [0, 1]. */
  score: number;
  /** Per order 1..N: clipped matches and the hypotheses' n-grams. */
  matches: number[];
  totals: number[];
  /** matches / totals per order, before smoothing (0 when totals is 0). */
  precisions: number[];
  brevityPenalty: number;
  /** Total hypothesis words (c) and closest-reference words (r). */
  hypothesisLength: number;
  referenceLength: number;
}

const SEP = "\u0000";

/** Counts of the n-grams of `words` (keys: the words joined by NUL). */
export function ngramCounts(words: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= words.length; i++) {
    const key = words.slice(i, i + n).join(SEP);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** BLEU's modified n-gram precision of one hypothesis: clipped matches and its n-gram count. */
export function modifiedPrecision(references: readonly (readonly string[])[], hypothesis: readonly string[], n: number): { matches: number; total: number } {
  const counts = ngramCounts(hypothesis, n);
  const maxRef = new Map<string, number>();
  for (const ref of references) {
    for (const [g, c] of ngramCounts(ref, n)) if (counts.has(g) && c > (maxRef.get(g) ?? 0)) maxRef.set(g, c);
  }
  let matches = 0;
  let total = 0;
  for (const [g, c] of counts) {
    matches += Math.min(c, maxRef.get(g) ?? 0);
    total += c;
  }
  return { matches, total };
}

/** The reference length closest to `hypothesisLength` (ties: the shorter). */
export function closestReferenceLength(references: readonly (readonly string[])[], hypothesisLength: number): number {
  let best = Infinity;
  for (const ref of references) {
    const len = ref.length;
    const d = Math.abs(len - hypothesisLength);
    const bd = Math.abs(best - hypothesisLength);
    if (d < bd || (d === bd && len < best)) best = len;
  }
  return best === Infinity ? 0 : best;
}

/** exp(1 - r / c) when c <= r, else 1; 0 for an empty hypothesis side. */
export function brevityPenalty(referenceLength: number, hypothesisLength: number): number {
  if (hypothesisLength > referenceLength) return 1;
  if (hypothesisLength === 0) return 0;
  return Math.exp(1 - referenceLength / hypothesisLength);
}

/**
 * Corpus BLEU of `hypotheses[i]` against `references[i]` (one or more reference word lists each).
 * Throws a RangeError when the lists differ in length or an item has no reference.
 */
export function corpusBleu(references: readonly (readonly (readonly string[])[])[], hypotheses: readonly (readonly string[])[], options: BleuOptions = {}): Bleu {
  if (references.length !== hypotheses.length) throw new RangeError(`corpusBleu: ${hypotheses.length} hypotheses for ${references.length} reference sets`);
  const weights = options.weights ?? new Array<number>(options.maxOrder ?? 4).fill(1 / (options.maxOrder ?? 4));
  const N = weights.length;
  const matches = new Array<number>(N).fill(0);
  const totals = new Array<number>(N).fill(0);
  let c = 0;
  let r = 0;
  hypotheses.forEach((hyp, i) => {
    const refs = references[i]!;
    if (refs.length === 0) throw new RangeError(`corpusBleu: item ${i} has no reference`);
    for (let n = 1; n <= N; n++) {
      const p = modifiedPrecision(refs, hyp, n);
      matches[n - 1]! += p.matches;
      totals[n - 1]! += p.total;
    }
    c += hyp.length;
    r += closestReferenceLength(refs, hyp.length);
  });
  const bp = brevityPenalty(r, c);
  const precisions = matches.map((m, i) => (totals[i]! > 0 ? m / totals[i]! : 0));
  const result = { matches, totals, precisions, brevityPenalty: bp, hypothesisLength: c, referenceLength: r };
  if (matches[0] === 0) return { score: 0, ...result };
  let k = 1;
  let logSum = 0;
  for (let i = 0; i < N; i++) {
    let p = precisions[i]!;
    if (matches[i] === 0) {
      if ((options.smoothing ?? "exp") === "none") return { score: 0, ...result };
      p = 1 / (2 ** k++ * Math.max(1, totals[i]!));
    }
    logSum += weights[i]! * Math.log(p);
  }
  return { score: bp * Math.exp(logSum), ...result };
}

/** BLEU of one hypothesis: the corpus BLEU of a corpus of one. */
export function sentenceBleu(references: readonly (readonly string[])[], hypothesis: readonly string[], options: BleuOptions = {}): Bleu {
  return corpusBleu([references], [hypothesis], options);
}
