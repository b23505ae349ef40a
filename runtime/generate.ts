// Text generation for a batch of images: greedy or sampled (generate/sample.ts), with a key/value
// cache (runtime/model.ts KvCache, compiler/layers/attention.ts): a prefill runs the encoder
// once and the decoder over [visual tokens + prompt], then every step feeds one new token per
// row, whose attention reads the cached keys and values. `cache: false` re-runs the whole
// forward pass every token instead (the reference the cache is tested and benchmarked against).
//
// Rows: every row starts at position 0 (visual tokens, then its prompt) and moves one position
// per step, so a row's positions are the same in a batch as alone and batching changes no row's
// result. Prompts of different lengths are not padded on the left: the prefill covers the
// shortest prompt, and a row with more prompt left is fed its next prompt token (not a sampled
// one) until its prompt is used up. A row stops at `eos` or at its limit (maxTokens, or the
// decoder's context); a finished row is fed `pad` until the batch stops, and its outputs are
// ignored (causal attention: nothing it is fed reaches its earlier positions).
//
// greedyDecode (the evaluation's entry point) is generate() with greedy choices from one start token.
import type * as tfjs from "@tensorflow/tfjs";
import { decoderContext, visualTokens } from "../compiler/cost/estimate.js";
import type { IrLayer } from "../compiler/ir/types.js";
import type { Tensor } from "../compiler/layers/ops.js";
import { KvCache, type Model } from "./model.js";
import { argmax, resolveSampling, rowStreams, sampleToken, type SamplingOptions } from "./generate/sample.js";

export type { SamplingOptions } from "./generate/sample.js";

export interface GenerateOptions {
  /**
   * Each row's prompt ids (at least one: the start token, e.g. `bos`), or one prompt for every
   * row. Generation continues after its last token.
   */
  prompt: ArrayLike<number> | readonly ArrayLike<number>[];
  /** The token that ends a row (not included in the output); null: rows run to their limit. */
  eos: number | null;
  /** The id fed to rows that have finished (their outputs are ignored). Default: 0. */
  pad?: number;
  /**
   * The most tokens generated per row, `eos` included. Default and upper bound: what the
   * decoder's context leaves after the visual tokens and the prompt (the prompt's last token
   * takes a position; the last generated token is never fed back).
   */
  maxTokens?: number;
  /** Greedy when absent. */
  sampling?: SamplingOptions;
  /** Decode with a key/value cache (default true); false re-runs the whole sequence every token. */
  cache?: boolean;
  /** Record each row's attention to the visual tokens (see GenerateResult.attention). */
  attention?: boolean;
  /** Keep the logits each generated token was chosen from (GenerateResult.logits). */
  keepLogits?: boolean;
}

export interface GenerateResult {
  /** Per row: the generated ids, without the prompt and without `eos`. */
  ids: Int32Array[];
  /** Per row: whether it ended with `eos` (false: it hit its limit). */
  ended: boolean[];
  /** Forward passes run (the prefill and each step after it). */
  steps: number;
  /**
   * With `attention`: per row, the attention weight on each visual token [Nv], averaged over
   * heads, decoder layers and the row's generated tokens (the positions whose logits chose them;
   * `eos` counts only when it is the row's only token). Each weight is a share of its query's
   * attention, so a row's weights sum to the share that went to the image (<= 1).
   */
  attention?: Float32Array[];
  /**
   * With `attention` and an encoder: each encoder attention layer's weights averaged over heads,
   * [B, N, N] (rows: queries), in layer order; attention rollout reads them (generate/explain.ts).
   */
  encoderAttention?: Float32Array[];
  /** With `keepLogits`: per row, per generated token (eos included), the logits [V] it came from. */
  logits?: Float32Array[][];
}

/** The longest text a row of this model may have (context less visual tokens), or null if unbounded. */
export function textBudget(model: Model): number | null {
  const context = decoderContext(model.ir);
  return context === null ? null : context - visualTokens(model.ir);
}

/** Whether every decoder attention is causal: the condition for a KV cache to be exact. */
export function cacheable(model: Model): boolean {
  const causal = (ls: readonly IrLayer[]): boolean => ls.every((l) => (l.kind !== "attention" || l.attrs.causal === true) && causal(l.children ?? []));
  return causal(model.ir.modules.decoder?.layers ?? []);
}

/**
 * Generates for `images` ([B, H, W, C] float32, or null for a text-only model with `rows` rows).
 * The caller keeps ownership of `images`; every tensor made here is disposed. Bad requests
 * (a prompt longer than the context, maxTokens over the budget) are RangeErrors.
 */
export async function generate(model: Model, images: Tensor | null, options: GenerateOptions, rows?: number): Promise<GenerateResult> {
  const { tf } = model;
  const B = images ? images.shape[0]! : rows;
  if (B === undefined || !Number.isInteger(B) || B < 1) throw new RangeError("generate: give images, or the number of rows for a text-only model");
  if (images && rows !== undefined && rows !== B) throw new RangeError(`generate: ${rows} rows asked for ${B} images`);
  const budget = textBudget(model);
  if (budget !== null && budget < 1) throw new RangeError(`generate: the decoder's context leaves no room for text`);
  const maxTokens = options.maxTokens ?? budget;
  if (maxTokens === null) throw new RangeError("generate: the decoder has no context limit; give maxTokens");
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RangeError(`generate: maxTokens must be a positive integer, got ${maxTokens}`);
  if (budget !== null && maxTokens > budget) throw new RangeError(`generate: maxTokens ${maxTokens} is more than the decoder's text budget of ${budget}`);
  const prompts = promptRows(options.prompt, B);
  const limits = prompts.map((p, b) => {
    if (budget !== null && p.length > budget) {
      throw new RangeError(`generate: the prompt${B > 1 ? ` of row ${b}` : ""} takes ${p.length} positions, more than the decoder's text budget of ${budget}`);
    }
    return budget === null ? maxTokens : Math.min(maxTokens, budget - p.length + 1);
  });
  const sampling = resolveSampling(options.sampling);
  const streams = sampling.temperature > 0 ? rowStreams(options.sampling?.seed, B) : [];
  const pad = options.pad ?? 0;
  const nv = images ? visualTokens(model.ir) : 0;
  const useCache = options.cache !== false && cacheable(model);

  // fed[b]: row b's inputs so far (its prompt, then what it generated; pad once finished).
  const fed: number[][] = prompts.map((p) => p.slice(0, Math.min(...prompts.map((q) => q.length))));
  const out: number[][] = prompts.map(() => []);
  const ended = new Array<boolean>(B).fill(false);
  const logits: Float32Array[][] = prompts.map(() => []);
  const maps: Float32Array[][] = prompts.map(() => []); // per row, per chosen token: [Nv]
  let encoderAttention: Float32Array[] | undefined;
  const finished = (b: number) => ended[b] || out[b]!.length >= limits[b]!;
  const inPrompt = (b: number) => fed[b]!.length < prompts[b]!.length;
  const decoderAttention = options.attention === true && nv > 0;
  const encoderLayers = options.attention === true && images !== null && model.ir.modules.encoder !== undefined;

  const cache = useCache ? new KvCache(tf, nv + Math.max(...prompts.map((p, b) => p.length + limits[b]! - 1))) : null;
  let steps = 0;
  try {
    while (prompts.some((_, b) => !finished(b))) {
      const T = fed[0]!.length;
      const first = steps === 0;
      // The cached step feeds what is new: the whole prefix at first, then one token.
      const from = cache && !first ? T - 1 : 0;
      const flat = new Int32Array(B * (T - from));
      fed.forEach((row, b) => flat.set(row.slice(from), b * (T - from)));
      const encoderMaps: Tensor[] = [];
      const result = tf.tidy(() => {
        const tokens = tf.tensor2d(flat, [B, T - from], "int32");
        const visualMaps: Tensor[] = [];
        const onAttention = (path: string, w: Tensor) => {
          const [bb, h, n] = w.shape as [number, number, number, number];
          if (decoderAttention && path.startsWith("decoder.")) {
            // The last query (it chooses the next token) on the visual keys, mean over heads: [B, Nv].
            visualMaps.push(tf.mean(tf.slice(w, [0, 0, n - 1, 0], [bb, h, 1, nv]), [1, 2]));
          } else if (encoderLayers && first && path.startsWith("encoder.")) {
            encoderMaps.push(tf.keep(tf.mean(w, 1))); // [B, N, N]
          }
        };
        const all = model.forward(cache && !first ? null : images, tokens, { training: false, ...(cache ? { cache } : {}), ...(options.attention ? { onAttention } : {}) }); // [B, n, V]
        const [, n, v] = all.shape as [number, number, number];
        const last = tf.slice(all, [0, n - 1, 0], [B, 1, v]).reshape([B, v]) as tfjs.Tensor2D; // [B, V]
        const visual = visualMaps.length ? tf.div(tf.addN(visualMaps), visualMaps.length) : null; // [B, Nv]
        return visual ? [last, visual] : [last];
      });
      const [lastT, visualT] = result;
      const rowsOfLogits = (await lastT!.data()) as Float32Array;
      const visual = visualT ? ((await visualT.data()) as Float32Array) : null;
      tf.dispose(result);
      if (encoderMaps.length) {
        encoderAttention = await Promise.all(encoderMaps.map(async (t) => (await t.data()) as Float32Array));
        tf.dispose(encoderMaps);
      }
      steps++;
      const V = rowsOfLogits.length / B;
      for (let b = 0; b < B; b++) {
        if (inPrompt(b)) {
          fed[b]!.push(prompts[b]![fed[b]!.length]!);
          continue;
        }
        if (finished(b)) {
          fed[b]!.push(pad);
          continue;
        }
        const row = rowsOfLogits.subarray(b * V, (b + 1) * V);
        const id = sampling.temperature > 0 ? sampleToken(row, sampling, streams[b]!()) : argmax(row);
        if (options.keepLogits) logits[b]!.push(row.slice());
        if (visual) maps[b]!.push(visual.slice(b * nv, (b + 1) * nv));
        if (options.eos !== null && id === options.eos) {
          ended[b] = true;
          if (out[b]!.length > 0) maps[b]!.pop(); // eos's own query counts only when alone
        } else out[b]!.push(id);
        fed[b]!.push(finished(b) ? pad : id);
      }
    }
  } finally {
    cache?.dispose();
  }
  const result: GenerateResult = { ids: out.map((o) => Int32Array.from(o)), ended, steps };
  if (decoderAttention) result.attention = maps.map((m) => meanOf(m, nv));
  if (encoderAttention) result.encoderAttention = encoderAttention;
  if (options.keepLogits) result.logits = logits;
  return result;
}

function promptRows(prompt: GenerateOptions["prompt"], B: number): number[][] {
  const many = Array.isArray(prompt) && prompt.length > 0 && typeof prompt[0] !== "number";
  const rows = many ? (prompt as readonly ArrayLike<number>[]).map((p) => Array.from(p)) : new Array<number[]>(B).fill(Array.from(prompt as ArrayLike<number>));
  if (rows.length !== B) throw new RangeError(`generate: ${rows.length} prompts for ${B} rows`);
  rows.forEach((p, b) => {
    if (p.length < 1) throw new RangeError(`generate: the prompt${B > 1 ? ` of row ${b}` : ""} is empty: give at least the start token`);
  });
  return rows.map((p) => p.slice());
}

function meanOf(maps: readonly Float32Array[], n: number): Float32Array {
  const out = new Float32Array(n);
  for (const m of maps) for (let i = 0; i < n; i++) out[i]! += m[i]! / maps.length;
  return out;
}

// ---- greedy decoding from one start token (the evaluation's entry point) ----

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
  /** Decode with a key/value cache (default true). */
  cache?: boolean;
}

export interface GreedyResult {
  /** Per row: the generated ids, without the start token and without `eos`. */
  ids: Int32Array[];
  /** Per row: whether it ended with `eos` (false: it hit `maxTokens`). */
  ended: boolean[];
  /** Forward passes run (the longest row's length, eos included). */
  steps: number;
}

/**
 * Greedy captions for `images` ([B, H, W, C] float32, or null for a text-only model with `rows`
 * rows). The caller keeps ownership of `images`; every tensor made here is disposed.
 */
export async function greedyDecode(model: Model, images: Tensor | null, options: GreedyOptions, rows?: number): Promise<GreedyResult> {
  const B = images ? images.shape[0]! : rows;
  if (B === undefined || !Number.isInteger(B) || B < 1) throw new RangeError("greedyDecode: give images, or the number of rows for a text-only model");
  const starts = typeof options.start === "number" ? new Array<number>(B).fill(options.start) : Array.from(options.start);
  if (starts.length !== B) throw new RangeError(`greedyDecode: ${starts.length} start tokens for ${B} rows`);
  try {
    const r = await generate(
      model,
      images,
      {
        prompt: starts.map((s) => [s]),
        eos: options.eos,
        ...(options.pad !== undefined ? { pad: options.pad } : {}),
        ...(options.maxTokens !== undefined ? { maxTokens: options.maxTokens } : {}),
        ...(options.cache !== undefined ? { cache: options.cache } : {}),
      },
      rows,
    );
    return { ids: r.ids, ended: r.ended, steps: r.steps };
  } catch (err) {
    if (err instanceof RangeError) throw new RangeError(err.message.replace(/^generate:/, "greedyDecode:"));
    throw err;
  }
}
