// CIDEr-D (Vedantam et al. 2015, "CIDEr: Consensus-based Image Description Evaluation"), as the
// COCO caption evaluation computes it (pycocoevalcap's cider/cider_scorer.py, which is the D
// variant): each caption is a TF-IDF vector of its n-grams for n = 1..4, where an n-gram's weight
// is its count times log(I / max(1, df)), I the number of images evaluated and df the number of
// them whose references contain it (document frequencies from the references of the evaluated
// set itself, pycocoevalcap's `corpus` mode). For each order, the candidate is compared with each
// reference by a cosine in which the candidate's weights are clipped by the reference's (min(c, r)
// * r, so repeating an n-gram earns nothing), times a Gaussian length penalty exp(-d^2 / (2 * 6^2)).
// An image scores 10 x the mean over orders of the mean over its references; the corpus score is
// the mean over images.
//
// Kept exactly as the reference does, so scores compare with published ones:
// - the length difference d is counted in bigrams (the reference's `length` counts n = 2 terms),
//   which is the word-length difference for any two captions of at least one word;
// - an order whose candidate or reference vector is all zeros scores 0 for that pair;
// - with one image, log(I / df) is 0 for every n-gram of the references: CIDEr-D needs several
//   images to mean anything.
// Inputs are words (words.ts).

export interface CiderItem {
  candidate: readonly string[];
  references: readonly (readonly string[])[];
}

export interface CiderOptions {
  /** N-gram orders 1..n (default 4). */
  n?: number;
  /** The length penalty's standard deviation (default 6). */
  sigma?: number;
}

export interface Cider {
  /** The mean over images. */
  score: number;
  /** Per image, in input order. */
  scores: number[];
}

const SEP = "\u0000";

/** All n-grams of orders 1..n with their counts; keys carry their order as words joined by NUL. */
function ngrams(words: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let k = 1; k <= n; k++) {
    for (let i = 0; i + k <= words.length; i++) {
      const key = words.slice(i, i + k).join(SEP);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

interface Vector {
  /** Per order (index n - 1): n-gram -> TF-IDF weight. */
  weights: Map<string, number>[];
  norms: number[];
  /** The reference implementation's `length`: the number of bigrams. */
  length: number;
}

/** CIDEr-D of each candidate against its references, and their mean. */
export function ciderD(items: readonly CiderItem[], options: CiderOptions = {}): Cider {
  const n = options.n ?? 4;
  const sigma = options.sigma ?? 6;
  if (items.length === 0) return { score: 0, scores: [] };
  const refCounts = items.map((it, i) => {
    if (it.references.length === 0) throw new RangeError(`ciderD: item ${i} has no reference`);
    return it.references.map((r) => ngrams(r, n));
  });
  // Document frequency: in how many images' references (any of them) an n-gram occurs.
  const df = new Map<string, number>();
  for (const refs of refCounts) {
    const seen = new Set<string>();
    for (const counts of refs) for (const g of counts.keys()) seen.add(g);
    for (const g of seen) df.set(g, (df.get(g) ?? 0) + 1);
  }
  const logImages = Math.log(items.length);

  const vector = (counts: Map<string, number>): Vector => {
    const weights = Array.from({ length: n }, () => new Map<string, number>());
    const norms = new Array<number>(n).fill(0);
    let length = 0;
    for (const [g, tf] of counts) {
      const order = g.split(SEP).length;
      const w = tf * (logImages - Math.log(Math.max(1, df.get(g) ?? 0)));
      weights[order - 1]!.set(g, w);
      norms[order - 1]! += w * w;
      if (order === 2) length += tf;
    }
    return { weights, norms: norms.map(Math.sqrt), length };
  };

  const similarity = (cand: Vector, ref: Vector): number[] => {
    const delta = cand.length - ref.length;
    const penalty = Math.exp(-(delta * delta) / (2 * sigma * sigma));
    return cand.weights.map((cw, k) => {
      const rw = ref.weights[k]!;
      let dot = 0;
      for (const [g, c] of cw) {
        const r = rw.get(g) ?? 0;
        dot += Math.min(c, r) * r;
      }
      if (cand.norms[k] !== 0 && ref.norms[k] !== 0) dot /= cand.norms[k]! * ref.norms[k]!;
      return dot * penalty;
    });
  };

  const scores = items.map((it, i) => {
    const cand = vector(ngrams(it.candidate, n));
    const sums = new Array<number>(n).fill(0);
    for (const counts of refCounts[i]!) similarity(cand, vector(counts)).forEach((v, k) => (sums[k]! += v));
    const meanOverOrders = sums.reduce((a, b) => a + b, 0) / n;
    return (10 * meanOverOrders) / it.references.length;
  });
  return { score: scores.reduce((a, b) => a + b, 0) / scores.length, scores };
}
