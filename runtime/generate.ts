// Greedy decoding: the simplest correct one, used to score a trained model (runtime/eval/). For a
// batch of images, every row starts from its start token (the tokenizer's `bos`: the token the
// trainer puts in front of every caption, so the position holding it is the one trained to
// predict the first character), and each step re-runs the whole forward pass on the tokens so
// far and appends the argmax of the last position's logits. A row stops at `eos` or when the
// decoder's text budget is used up; the batch stops when every row has. Rows are independent
// (causal attention), so a finished row is fed `pad` and its output ignored.
//
// No KV cache: each step costs a full forward pass (encoder included), O(T^2) passes' worth of
// work per caption. Correct first; the generation issue makes it fast.
import type * as tfjs from "@tensorflow/tfjs";
import { decoderContext, visualTokens } from "../compiler/cost/estimate.js";
import type { Tensor } from "../compiler/layers/ops.js";
import type { Model } from "./model.js";

export interface GreedyOptions {
  /** The first input token of each row: one id for all rows, or one per row. */
  start: number | ArrayLike<number>;
  /** The token that ends a row (not included in the output); null: rows run to `maxTokens`. */
  eos: number | null;
  /** The id fed to rows that have finished (their outputs are ignored). Default: 0. */
  pad?: number;
  /**
   * The most tokens generated per row, `eos` included. Default and upper bound: the decoder's
   * text budget (its context less the visual tokens), since the start token takes a position
   * and the last generated token is never fed back.
   */
  maxTokens?: number;
}

export interface GreedyResult {
  /** Per row: the generated ids, without the start token and without `eos`. */
  ids: Int32Array[];
  /** Per row: whether it ended with `eos` (false: it hit `maxTokens`). */
  ended: boolean[];
  /** Forward passes run (the longest row's length, eos included). */
  steps: number;
}

/** The longest text a row of this model may have (context less visual tokens), or null if unbounded. */
export function textBudget(model: Model): number | null {
  const context = decoderContext(model.ir);
  return context === null ? null : context - visualTokens(model.ir);
}

/**
 * Greedy captions for `images` ([B, H, W, C] float32, or null for a text-only model with `rows`
 * rows). The caller keeps ownership of `images`; every tensor made here is disposed.
 */
export async function greedyDecode(model: Model, images: Tensor | null, options: GreedyOptions, rows?: number): Promise<GreedyResult> {
  const { tf } = model;
  const B = images ? images.shape[0]! : rows;
  if (B === undefined || !Number.isInteger(B) || B < 1) throw new RangeError("greedyDecode: give images, or the number of rows for a text-only model");
  if (images && rows !== undefined && rows !== B) throw new RangeError(`greedyDecode: ${rows} rows asked for ${B} images`);
  const budget = textBudget(model);
  if (budget !== null && budget < 1) throw new RangeError(`greedyDecode: the decoder's context leaves no room for text`);
  const maxTokens = options.maxTokens ?? budget;
  if (maxTokens === null) throw new RangeError("greedyDecode: the decoder has no context limit; give maxTokens");
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RangeError(`greedyDecode: maxTokens must be a positive integer, got ${maxTokens}`);
  if (budget !== null && maxTokens > budget) throw new RangeError(`greedyDecode: maxTokens ${maxTokens} is more than the decoder's text budget of ${budget}`);
  const starts = typeof options.start === "number" ? new Array<number>(B).fill(options.start) : Array.from(options.start);
  if (starts.length !== B) throw new RangeError(`greedyDecode: ${starts.length} start tokens for ${B} rows`);
  const pad = options.pad ?? 0;

  // fed[b] holds row b's inputs so far: its start token, then what it generated (pad once ended).
  const fed: number[][] = starts.map((s) => [s]);
  const out: number[][] = starts.map(() => []);
  const ended = new Array<boolean>(B).fill(false);
  const done = () => out.every((o, b) => ended[b] || o.length >= maxTokens);
  let steps = 0;
  while (!done()) {
    const T = fed[0]!.length;
    const flat = new Int32Array(B * T);
    fed.forEach((row, b) => flat.set(row, b * T));
    const next = tf.tidy(() => {
      const tokens = tf.tensor2d(flat, [B, T], "int32");
      const logits = model.forward(images, tokens, { training: false }); // [B, Nv + T, V]
      const [, n, v] = logits.shape as [number, number, number];
      const last = tf.slice(logits, [0, n - 1, 0], [B, 1, v]).reshape([B, v]); // [B, V]
      return tf.argMax(last, -1) as tfjs.Tensor1D; // [B]
    });
    const ids = (await next.data()) as Int32Array;
    next.dispose();
    steps++;
    for (let b = 0; b < B; b++) {
      const finished = ended[b] || out[b]!.length >= maxTokens;
      const id = ids[b]!;
      if (!finished) {
        if (options.eos !== null && id === options.eos) ended[b] = true;
        else out[b]!.push(id);
      }
      fed[b]!.push(finished || ended[b] ? pad : id);
    }
  }
  return { ids: out.map((o) => Int32Array.from(o)), ended, steps };
}
