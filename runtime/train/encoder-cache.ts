// A frozen encoder at training time: run outside the gradient tape, in inference mode, and its
// output per image kept across epochs and stages, so that a stage that trains only the projector
// (the usual recipe's stage 1) runs the encoder once per image instead of once per image per epoch.
//
// Why it is right to skip it: nothing upstream of a frozen encoder learns, so its output is a
// function of the image alone while its weights stay as they are. Run inside `tf.variableGrads`,
// tfjs would record its kernels and keep every activation until the step's gradients are done,
// though no gradient flows into it; run before, in its own tidy, its activations go at once.
//
// Why inference mode (no dropout): LLaVA's vision tower is frozen and run under no_grad with no
// dropout, and so is every model whose encoder outputs are precomputed; noise in a frozen module
// is noise no weight adapts to, and a cached output has to be the same every epoch. The trainer
// runs every frozen module in inference mode (Model.forward's `frozen`), the decoder of stage 1
// included: gradients still flow through it to the projector.
//
// When the cache is used: the encoder is frozen in the stage, the stage has images, and its
// source does not change an image's pixels between epochs (a source with augmentation marks its
// data `augment: true`). Entries are keyed by the source (its `describe`) and the image's key,
// and live until a stage trains the encoder (its weights then change: the cache is emptied), so
// stages that share a source share them. They are Float32Arrays in JS memory, not tensors: the
// wasm heap is capped at 4 GiB and never shrinks. A budget (default DEFAULT_ENCODER_CACHE_MB)
// bounds them; past it, the images cached stay cached and the others are encoded every time.
import type * as tfjs from "@tensorflow/tfjs";
import type { Tf } from "../../compiler/layers/ops.js";
import type { Model } from "../model.js";
import type { Example, StageData } from "./data.js";

/** The encoder cache's default budget, in MiB (`VLMC_ENCODER_CACHE_MB`, TrainOptions.encoderCacheMb). */
export const DEFAULT_ENCODER_CACHE_MB = 1024;

/** Encoder outputs by image, across the stages of a run. */
export class EncoderCache {
  private readonly entries = new Map<string, Float32Array>();
  /** Bytes held. */
  bytes = 0;

  constructor(readonly budgetBytes: number) {}

  get size(): number {
    return this.entries.size;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  get(key: string): Float32Array | undefined {
    return this.entries.get(key);
  }

  /** Keeps `row` under `key` if it fits the budget; false when it does not. */
  set(key: string, row: Float32Array): boolean {
    if (this.entries.has(key)) return true;
    if (this.bytes + row.byteLength > this.budgetBytes) return false;
    this.entries.set(key, row);
    this.bytes += row.byteLength;
    return true;
  }

  /** Drops every entry (the encoder's weights are about to change). */
  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}

/** Why a stage's frozen encoder outputs are not cached, or null when they are. */
export function cacheRefusal(data: StageData, budgetBytes: number): string | null {
  if (data.augment === true) return `${data.describe} augments its images (new pixels every epoch)`;
  if (budgetBytes <= 0) return "the encoder cache's budget is 0 (VLMC_ENCODER_CACHE_MB=0)";
  if ([...data.train, ...data.validation].some((e) => e.image === null)) return `${data.describe} has examples without an image key`;
  return null;
}

/** Images the encoder ran on and examples served from the cache, since the last `take()`. */
export interface EncoderCounts {
  encoded: number;
  cached: number;
}

/**
 * A stage's frozen encoder: `encode(examples)` gives their encoder outputs as one tensor
 * [B, ...], from the cache where it can, running the encoder (outside any tape) on the rest.
 */
export class FrozenEncoder {
  private counts: EncoderCounts = { encoded: 0, cached: 0 };
  /** The stage's distinct images not yet in the cache (when caching). */
  private readonly pending: Set<string>;
  /** The stage's distinct images. */
  readonly images: number;
  /** Whether onFilled was called (it is called once a stage at most). */
  private signalled: boolean;

  constructor(
    private readonly tf: Tf,
    private readonly model: Model,
    private readonly data: StageData,
    /** Null: encode every batch (outside the tape still). */
    readonly cache: EncoderCache | null,
    /** Called once when every image of the stage is cached, or once when the budget stops it. */
    private readonly onFilled: (complete: boolean) => void = () => {},
  ) {
    const keys = new Set([...data.train, ...data.validation].map((e) => this.key(e)));
    this.images = keys.size;
    this.pending = new Set(cache ? [...keys].filter((k) => !cache.has(k)) : []);
    this.signalled = cache !== null && this.pending.size === 0;
  }

  /** Whether the cache holds every image of the stage (an earlier stage may have filled it). */
  get complete(): boolean {
    return this.cache !== null && this.pending.size === 0;
  }

  /** The cache key: the source and the image, so two sources' "img-3" are not confused. */
  private key(e: Example): string {
    return `${this.data.describe}\u0000${e.image ?? ""}`;
  }

  /** Counts since the last call. */
  take(): EncoderCounts {
    const c = this.counts;
    this.counts = { encoded: 0, cached: 0 };
    return c;
  }

  /** Runs the encoder on the examples' images, in inference mode, in a tidy of its own. */
  private async run(examples: readonly Example[]): Promise<tfjs.Tensor> {
    const { tf, data } = this;
    const size = data.imageSize!;
    const pixels = await data.pixels(examples);
    return tf.tidy(() => this.model.encode(tf.tensor(pixels, [examples.length, size.height, size.width, 3])));
  }

  /** The encoder outputs of `examples` as [B, ...the encoder's output per image]; the caller disposes it. */
  async encode(examples: readonly Example[]): Promise<tfjs.Tensor> {
    const { tf, cache } = this;
    if (!cache) {
      this.counts.encoded += examples.length;
      return this.run(examples);
    }
    const keys = examples.map((e) => this.key(e));
    // Each missing image once, even when several of the batch's captions share it.
    const missing = new Map<string, Example>();
    keys.forEach((k, i) => {
      if (!cache.has(k) && !missing.has(k)) missing.set(k, examples[i]!);
    });
    const fresh = new Map<string, Float32Array>();
    let shape: number[] | null = null;
    if (missing.size > 0) {
      const todo = [...missing.values()];
      const out = await this.run(todo);
      shape = out.shape.slice(1);
      const all = out.dataSync() as Float32Array;
      out.dispose();
      const per = all.length / todo.length;
      let refused = false;
      [...missing.keys()].forEach((k, j) => {
        // A copy (slice): a view would keep the whole batch's buffer alive.
        const row = all.slice(j * per, (j + 1) * per);
        fresh.set(k, row);
        if (cache.set(k, row)) this.pending.delete(k);
        else refused = true;
      });
      this.counts.encoded += todo.length;
      if (!this.signalled && (refused || this.pending.size === 0)) {
        this.signalled = true;
        this.onFilled(!refused);
      }
    }
    this.counts.cached += keys.filter((k) => !missing.has(k)).length;
    const rows = keys.map((k) => fresh.get(k) ?? cache.get(k)!);
    const per = rows[0]!.length;
    const batch = new Float32Array(per * rows.length);
    rows.forEach((r, i) => batch.set(r, i * per));
    return tf.tensor(batch, [rows.length, ...(shape ?? this.rowShape(per))]);
  }

  /** The shape of one image's output, from the IR (the cache holds flat rows). */
  private rowShape(per: number): number[] {
    const out = this.model.ir.modules.encoder!.output.slice(1);
    if (out.every((d) => typeof d === "number") && out.reduce((a: number, d) => a * (d as number), 1) === per) return out as number[];
    throw new Error(`internal: the encoder's output ${JSON.stringify(out)} does not hold ${per} values an image`);
  }
}
