// Choosing the next token from one row of logits: greedy (the argmax) by default, or a draw
// from the distribution softmax(logits / temperature), cut to the `top_k` most likely tokens
// and then to the smallest set of them whose probability reaches `top_p` (nucleus sampling),
// as Hugging Face's `generate` applies them (temperature, then top-k, then top-p). Plain
// JavaScript on a Float32Array: a vocabulary is small next to a forward pass, and a draw must
// not depend on the backend. The uniform numbers come from the caller (seeded streams), so the
// same seed gives the same tokens.
import { streamSeed, uniform01 } from "../random.js";

export interface SamplingOptions {
  /** Softmax temperature; 0 (the default when nothing else is set) is greedy. */
  temperature?: number;
  /** Keep the k most likely tokens (0: all). */
  topK?: number;
  /** Keep the most likely tokens until their probability reaches p (1: all). */
  topP?: number;
  /** Seeds the draws: one seed for every row, or one per row. Default 0. */
  seed?: number | readonly number[];
}

/** Sampling settings, checked: `temperature` 0 means greedy. */
export interface Sampling {
  temperature: number;
  topK: number;
  topP: number;
}

/**
 * Checks and completes the options: greedy when none is set; `topK` or `topP` alone sample at
 * temperature 1. Throws a RangeError naming a bad value.
 */
export function resolveSampling(o: SamplingOptions = {}): Sampling {
  const sampled = o.temperature !== undefined || o.topK !== undefined || o.topP !== undefined;
  const temperature = o.temperature ?? (sampled ? 1 : 0);
  const topK = o.topK ?? 0;
  const topP = o.topP ?? 1;
  if (!Number.isFinite(temperature) || temperature < 0) throw new RangeError(`temperature must be a number >= 0, got ${temperature}`);
  if (!Number.isInteger(topK) || topK < 0) throw new RangeError(`top_k must be a whole number >= 0 (0: off), got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`top_p must be in (0, 1], got ${topP}`);
  return { temperature, topK, topP };
}

/** The first index of the largest value (ties go to the lowest id, as tf.argMax). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/**
 * The distribution a draw is made from: the kept token ids, most likely first (ties by id),
 * and their probabilities (summing to 1). Greedy settings give the argmax with probability 1.
 */
export function distribution(row: ArrayLike<number>, s: Sampling): { ids: number[]; probs: number[] } {
  if (s.temperature === 0) return { ids: [argmax(row)], probs: [1] };
  const order = Array.from({ length: row.length }, (_, i) => i).sort((a, b) => row[b]! - row[a]! || a - b);
  const kept = s.topK > 0 ? order.slice(0, s.topK) : order;
  const top = row[kept[0]!]!;
  // exp((l - max) / T) in float64: the largest weight is 1, so nothing overflows.
  const weights = kept.map((i) => Math.exp((row[i]! - top) / s.temperature));
  const total = weights.reduce((a, w) => a + w, 0);
  let probs = weights.map((w) => w / total);
  let ids = kept;
  if (s.topP < 1) {
    // The smallest prefix reaching top_p (the token that crosses it included; at least one).
    let cum = 0;
    let n = 0;
    while (n < probs.length && cum < s.topP * (1 - 1e-12)) cum += probs[n++]!;
    ids = ids.slice(0, n);
    probs = probs.slice(0, n).map((p) => p / cum);
  }
  return { ids, probs };
}

/** The token a uniform number u in [0, 1) picks from the row's distribution (inverse CDF). */
export function sampleToken(row: ArrayLike<number>, s: Sampling, u: number): number {
  const { ids, probs } = distribution(row, s);
  let cum = 0;
  for (let i = 0; i < ids.length; i++) {
    cum += probs[i]!;
    if (u < cum) return ids[i]!;
  }
  return ids[ids.length - 1]!; // u within rounding of 1
}

/**
 * Row b's uniform numbers: a stream of its own seed, so that a row draws the same tokens
 * whether it is decoded alone or in a batch (given the same seed).
 */
export function rowStreams(seed: number | readonly number[] | undefined, rows: number): (() => number)[] {
  const seeds = typeof seed === "object" ? Array.from(seed) : new Array<number>(rows).fill(seed ?? 0);
  if (seeds.length !== rows) throw new RangeError(`${seeds.length} seeds for ${rows} rows`);
  return seeds.map((s) => {
    if (!Number.isSafeInteger(s)) throw new RangeError(`seed must be a whole number, got ${s}`);
    return uniform01(streamSeed(s >>> 0, "generate"));
  });
}
