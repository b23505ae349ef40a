// Teacher-forced loss and perplexity of a model on evaluation data: the validation loss training
// reports (runtime/train/trainer.ts calls this) and the loss `vlmc eval` reports. Rows are made by
// runtime/data/batches.ts (bos/eos, padding masked out); the model's own `loss` (mean
// cross-entropy over the counted positions, dropout off) per chunk, chunks weighted by their
// counted tokens, so the figure is the mean loss per token over all of them and perplexity is its
// exp. With the chunk size training used (its last stage's micro-batch) on its validation split,
// the number is the one training last wrote to metrics.jsonl.
import type * as tfjs from "@tensorflow/tfjs";
import type { Tf } from "../backend.js";
import { makeBatch } from "../data/batches.js";
import type { Model } from "../model.js";
import type { Example, StageData } from "../train/data.js";

export interface LossResult {
  /** Mean cross-entropy per counted token (nats). */
  loss: number;
  perplexity: number;
  /** Counted (unpadded) target tokens. */
  tokens: number;
  /** Caption rows. */
  examples: number;
}

/** What the loss needs of the data: how rows are cut and padded, and the images' pixels. */
export type LossData = Pick<StageData, "maxText" | "padId" | "imageSize" | "pixels">;

/**
 * The encoder's output for a chunk's images, made by the caller (the trainer's frozen encoder,
 * runtime/train/encoder-cache.ts: cached, no pixels read), or null to run the encoder here.
 */
export type EncodeChunk = (examples: readonly Example[]) => Promise<tfjs.Tensor | null>;

/** Sum of the per-token losses and the tokens counted, over `examples` in chunks of `chunk`. */
async function lossSum(tf: Tf, model: Model, data: LossData, examples: readonly Example[], chunk: number, encode?: EncodeChunk): Promise<{ sum: number; count: number }> {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < examples.length; i += chunk) {
    const part = examples.slice(i, i + chunk);
    const batch = makeBatch(
      part, // their ids, and the loss masks of instruction data (as the trainer does)
      Array.from(part, (_, k) => k),
      { maxText: data.maxText, padId: data.padId },
    );
    const made: tfjs.Tensor[] = [];
    try {
      const encoded = data.imageSize && encode ? await encode(part) : null;
      if (encoded) made.push(encoded);
      const images = data.imageSize && !encoded ? tf.tensor(await data.pixels(part), [part.length, data.imageSize.height, data.imageSize.width, 3]) : null;
      if (images) made.push(images);
      const tokens = tf.tensor(batch.tokens, [batch.B, batch.T], "int32");
      const targets = tf.tensor(batch.targets, [batch.B, batch.T], "int32");
      const mask = tf.tensor(batch.mask, [batch.B, batch.T]);
      made.push(tokens, targets, mask);
      const l = tf.tidy(() => model.loss(model.forward(images, tokens, { training: false, ...(encoded ? { encoded } : {}) }), targets, mask));
      made.push(l);
      // The mean over this chunk's counted tokens, back to a sum (as the trainer weights chunks).
      sum += l.dataSync()[0]! * batch.count;
      count += batch.count;
    } finally {
      tf.dispose(made);
    }
  }
  return { sum, count };
}

/** The loss over `examples`; null when they count no token. */
export async function teacherForcedLoss(tf: Tf, model: Model, data: LossData, examples: readonly Example[], chunk: number, encode?: EncodeChunk): Promise<LossResult | null> {
  const { sum, count } = await lossSum(tf, model, data, examples, chunk, encode);
  return count === 0 ? null : { loss: sum / count, perplexity: Math.exp(sum / count), tokens: count, examples: examples.length };
}
