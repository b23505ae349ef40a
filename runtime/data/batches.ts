// Data order and batches. The order of an epoch is a pure function of (seed, epoch), and a run's
// place in its data is a DataPosition {epoch, offset}: saved with a checkpoint, it lets a resumed
// run draw exactly the batches the uninterrupted run would have drawn. No tfjs here: batches are
// typed arrays; the training loop makes the tensors.
import { streamSeed, uniform01 } from "../random.js";

/** A seeded Fisher-Yates permutation of 0..n-1, a pure function of (n, seed, epoch). */
export function epochOrder(n: number, seed: number, epoch: number): Int32Array {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`epochOrder: n must be a non-negative integer, got ${n}`);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  const u = uniform01(streamSeed(seed, `data/epoch/${epoch}`));
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(u() * (i + 1));
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}

export interface Batch {
  /** [B*T], row-major: tokens[b*T + i] = ids[i] of the b-th example, padId past its end. */
  tokens: Int32Array;
  /** [B*T]: targets[b*T + i] = ids[i+1]; padId past the end. */
  targets: Int32Array;
  /** [B*T]: 1 exactly where the target is a real token (and, with a loss mask, one it marks), 0 on padding. */
  mask: Float32Array;
  B: number;
  T: number;
  /** How many examples were cut to `maxText` positions. */
  truncated: number;
  /** The number of counted targets (the mask's sum). */
  count: number;
}

/**
 * An example's token ids, or its ids with a loss mask: `lossMask[j]` is 1 when token j counts as a
 * target (instruction data counts only the answers, runtime/chat.ts), 0 when it does not.
 */
export type BatchExample = Int32Array | { ids: Int32Array; lossMask?: ArrayLike<number> };

export interface BatchOptions {
  /** The most text positions a row may have (the decoder's context less any image tokens). */
  maxText: number;
  padId: number;
}

/**
 * A padded batch of next-token examples. Each example is its token ids including bos/eos; its
 * inputs are ids[:-1] and its targets ids[1:], so text position i predicts ids[i+1] (with a
 * leading bos, the first position predicts the first character). Rows are padded to the longest
 * in the batch, at most `maxText`; longer examples keep their first `maxText` positions and are
 * counted in `truncated`. An example of fewer than 2 ids has no targets. T is at least 1. An
 * example with a `lossMask` counts only the targets it marks: the mask is padding AND its own.
 */
export function makeBatch(examples: readonly BatchExample[], indices: ArrayLike<number>, options: BatchOptions): Batch {
  const { maxText, padId } = options;
  if (!Number.isInteger(maxText) || maxText < 1) throw new RangeError(`makeBatch: maxText must be a positive integer, got ${maxText}`);
  const B = indices.length;
  const rows: Int32Array[] = [];
  const masks: (ArrayLike<number> | undefined)[] = [];
  let longest = 0;
  let truncated = 0;
  for (let b = 0; b < B; b++) {
    const ex = examples[indices[b]!];
    if (ex === undefined) throw new RangeError(`makeBatch: no example ${indices[b]} (have ${examples.length})`);
    const ids = ex instanceof Int32Array ? ex : ex.ids;
    const lossMask = ex instanceof Int32Array ? undefined : ex.lossMask;
    if (lossMask !== undefined && lossMask.length !== ids.length) throw new RangeError(`makeBatch: example ${indices[b]} has ${ids.length} ids but a loss mask of ${lossMask.length}`);
    masks.push(lossMask);
    const positions = Math.max(0, ids.length - 1);
    if (positions > maxText) truncated++;
    longest = Math.max(longest, Math.min(positions, maxText));
    rows.push(ids);
  }
  const T = Math.max(1, longest);
  const tokens = new Int32Array(B * T).fill(padId);
  const targets = new Int32Array(B * T).fill(padId);
  const mask = new Float32Array(B * T);
  let count = 0;
  rows.forEach((ids, b) => {
    const len = Math.min(Math.max(0, ids.length - 1), T);
    tokens.set(ids.subarray(0, len), b * T);
    targets.set(ids.subarray(1, len + 1), b * T);
    const own = masks[b];
    if (own === undefined) {
      mask.fill(1, b * T, b * T + len);
      count += len;
    } else {
      // Position i predicts token i + 1: it counts when that token does.
      for (let i = 0; i < len; i++) {
        if (own[i + 1]) {
          mask[b * T + i] = 1;
          count++;
        }
      }
    }
  });
  return { tokens, targets, mask, B, T, truncated, count };
}

/** Where a run is in its data: the epoch, and how many examples of that epoch's order it has used. */
export interface DataPosition {
  epoch: number;
  offset: number;
}

export interface TakeOptions {
  /** Skip an epoch's last batch when it would be smaller than `batch` (default false). */
  dropLast?: boolean;
}

function checkSizes(n: number, batch: number, dropLast: boolean): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`data: need at least one example, got ${n}`);
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`data: batch must be a positive integer, got ${batch}`);
  if (dropLast && batch > n) throw new RangeError(`data: batch ${batch} is larger than the ${n} examples and the last partial batch is dropped`);
}

/** The position itself, or the next epoch's start when nothing (or, with dropLast, no full batch) is left. */
function normalize(pos: DataPosition, n: number, batch: number, dropLast: boolean): DataPosition {
  const left = n - pos.offset;
  return left <= 0 || (dropLast && left < batch) ? { epoch: pos.epoch + 1, offset: 0 } : { epoch: pos.epoch, offset: pos.offset };
}

/** The position after one batch of `batch` examples taken at `pos`. */
export function advance(pos: DataPosition, n: number, batch: number, options: TakeOptions = {}): DataPosition {
  const dropLast = options.dropLast ?? false;
  checkSizes(n, batch, dropLast);
  const p = normalize(pos, n, batch, dropLast);
  return normalize({ epoch: p.epoch, offset: Math.min(n, p.offset + batch) }, n, batch, dropLast);
}

/** The example indices of the batch taken at `pos`, and the position after it. */
export function takeBatch(n: number, seed: number, pos: DataPosition, batch: number, options: TakeOptions = {}): { indices: Int32Array; at: DataPosition; next: DataPosition } {
  const dropLast = options.dropLast ?? false;
  checkSizes(n, batch, dropLast);
  const at = normalize(pos, n, batch, dropLast);
  const indices = epochOrder(n, seed, at.epoch).slice(at.offset, Math.min(n, at.offset + batch));
  return { indices, at, next: advance(at, n, batch, options) };
}

/**
 * Batches of example indices, epoch after epoch, from a position (default {0, 0}). Its `position`
 * is what a checkpoint saves; a stream made again with it continues identically. Keeps the
 * current epoch's order so that a batch does not reshuffle.
 */
export class BatchStream {
  private pos: DataPosition;
  private order: { epoch: number; order: Int32Array } | null = null;
  private readonly dropLast: boolean;

  constructor(
    readonly n: number,
    readonly seed: number,
    readonly batch: number,
    options: TakeOptions & { position?: DataPosition } = {},
  ) {
    this.dropLast = options.dropLast ?? false;
    checkSizes(n, batch, this.dropLast);
    const p = options.position ?? { epoch: 0, offset: 0 };
    if (!Number.isInteger(p.epoch) || p.epoch < 0 || !Number.isInteger(p.offset) || p.offset < 0) throw new RangeError(`data: bad position ${JSON.stringify(p)}`);
    this.pos = { epoch: p.epoch, offset: p.offset };
  }

  /** Where the next batch starts (a copy). */
  get position(): DataPosition {
    return { ...this.pos };
  }

  next(): { indices: Int32Array; at: DataPosition } {
    const at = normalize(this.pos, this.n, this.batch, this.dropLast);
    if (this.order?.epoch !== at.epoch) this.order = { epoch: at.epoch, order: epochOrder(this.n, this.seed, at.epoch) };
    const indices = this.order.order.slice(at.offset, Math.min(this.n, at.offset + this.batch));
    this.pos = advance(at, this.n, this.batch, { dropLast: this.dropLast });
    return { indices, at };
  }
}
