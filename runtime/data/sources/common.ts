// What every data source shares: the shapes of a stage's data (`StageData`, `Example`), the
// error that stops a run (`DataError`), the context a source is loaded with, and the pipeline of
// the image-caption sources (captions, csv, folder): rows read by a reader that never throws,
// captions tokenized, every image decoded once up front (filling the cache), bad rows skipped or
// fatal as the spec's `bad_rows` says, then the split by image.
//
// Decoding before the first step is what keeps a run reproducible: a corrupt image found in the
// middle of an epoch would change that epoch's batches (or stop the run after hours), and a run
// resumed from a checkpoint must see exactly the rows the first attempt saw.
import type { Ir, IrCall, IrPixels } from "../../../compiler/ir/types.js";
import type { Exchange } from "../../chat.js";
import type { Tokenizer } from "../../tokenizer.js";
import { DecodedCache, decodeImage, resizeImage, type ImageResult, type RgbImage, type Size } from "../images.js";
import { splitByImage } from "../split.js";

/** A data problem that stops the run (one line for the user). */
export class DataError extends Error {}

export interface Example {
  /** What identifies the image (a path, a generated id); null for text. */
  image: string | null;
  text: string;
  ids: Int32Array;
  /** Per token of `ids`: 1 where the loss counts it as a target (instruction data: the answers, runtime/chat.ts); absent: every token after the first. */
  lossMask?: Uint8Array;
  /** Question-answer data: the last question (after `history`), its reference answer and its type, which evaluation scores (runtime/eval/qa.ts). */
  qa?: { question: string; answer: string; type: string; history: Exchange[] };
}

export interface StageData {
  /** `shapes(images: 2000, size: 32, seed: 1)`: for messages. */
  describe: string;
  train: Example[];
  validation: Example[];
  /** Rows left out, with why, each `file:line: message`, in file order. */
  problems: string[];
  /** Whether examples have images (false for `text`). */
  images: boolean;
  /** The most text positions of a row: the decoder's context less the visual tokens. */
  maxText: number;
  /** The id that pads rows (masked out of the loss). */
  padId: number;
  /** The size `pixels` gives images at (the encoder's input); null without images. */
  imageSize: { height: number; width: number } | null;
  /** Images of these examples as [B, H, W, 3] floats (row-major), resized and normalised by the encoder's `pixels`. */
  pixels(examples: readonly Example[]): Promise<Float32Array>;
  /** Pixels differ between epochs (augmentation): the trainer caches no encoder outputs. No source augments yet. */
  augment?: boolean;
}

/** What a source is loaded with (data.ts checks the model against the source first). */
export interface SourceContext {
  call: IrCall;
  ir: Ir;
  tokenizer: Tokenizer;
  /** The folder the IR's paths are relative to. */
  baseDir: string;
  split: number;
  seed: number;
  describe: string;
  maxText: number;
  padId: number;
  /** The encoder's input size; null for a text-only source. */
  size: Size | null;
  /** The encoder's `pixels`; null for a text-only source. */
  policy: IrPixels | null;
}

export type SourceLoader = (ctx: SourceContext) => Promise<StageData>;

/** A row that cannot be used: where it is and why. */
export interface RowProblem {
  file: string;
  /** 1-based line; 0 for the whole file. */
  line: number;
  message: string;
}

export const formatProblem = (p: RowProblem): string => `${p.file}:${p.line}: ${p.message}`;

/** The spec's `bad_rows` (a source argument; absent in IR documents from before it existed: skip). */
export function badRowsPolicy(call: IrCall): "skip" | "fail" {
  return call.bad_rows === "fail" ? "fail" : "skip";
}

/** The decoded-image cache's cap in bytes: the source's `cache_mb`, default DEFAULT_CACHE_MB. */
export const DEFAULT_CACHE_MB = 512;
export function cacheBytes(call: IrCall): number {
  const mb = typeof call.cache_mb === "number" ? call.cache_mb : DEFAULT_CACHE_MB;
  return mb * 2 ** 20;
}

/**
 * Leaves bad rows out, or stops at the first one when `bad_rows: "fail"`. Problems are sorted by
 * file and line, so the first reported is the first in the file whatever check found it.
 */
export function applyBadRows(problems: RowProblem[], policy: "skip" | "fail"): string[] {
  const sorted = [...problems].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line));
  const lines = sorted.map(formatProblem);
  if (policy === "fail" && lines.length > 0) {
    const more = lines.length > 1 ? ` (and ${lines.length - 1} more bad row${lines.length === 2 ? "" : "s"})` : "";
    throw new DataError(`${lines[0]}${more}; \`bad_rows: "skip"\` in the data source leaves bad rows out`);
  }
  return lines;
}

/** A caption's token ids, or why the tokenizer cannot encode it (for a RowProblem). */
export function encodeCaption(tokenizer: Tokenizer, text: string): { ok: true; ids: Int32Array } | { ok: false; message: string } {
  const r = tokenizer.encode(text);
  if (r.ok) return r;
  return { ok: false, message: `${r.error.message}; the spec's tokenizer must cover the data (add the character to \`alphabet\`, or add \`unk\` to \`specials\`)` };
}

/** One row of a data file with an image, as a reader gives it. */
export interface ImageSource {
  /** The image's identity: the split groups rows by it, the cache keys on it. */
  key: string;
  /** The image file, or a function giving its bytes (an image held inside the data file). */
  image: string | (() => Uint8Array);
  /** How messages name an image given as bytes (`the image in "b64string_images"`). */
  label?: string;
  file: string;
  line: number;
}

/** One image-caption row of a file. */
export interface ImageRow extends ImageSource {
  caption: string;
}

/** A row's text as an example (its image aside), or why it cannot be one (a RowProblem's message). */
export type RowExample = { ok: true; example: Omit<Example, "image"> } | { ok: false; message: string };

/** Decodes and resizes an image under `size` and `mode`, through the cache. */
async function decodeRow(row: ImageSource, size: Size, policy: IrPixels, cache: DecodedCache): Promise<ImageResult> {
  const key = DecodedCache.key(row.key, size, policy.resize);
  const hit = cache.get(key);
  if (hit) return { ok: true, image: hit };
  const decoded = await decodeImage(typeof row.image === "string" ? row.image : row.image());
  if (!decoded.ok) {
    // decodeImage names bytes "image"; say which.
    if (typeof row.image !== "string" && row.label) return { ok: false, error: { ...decoded.error, message: decoded.error.message.replace(/^image:/, `${row.label}:`) } };
    return decoded;
  }
  const image = await resizeImage(decoded.image, size, policy.resize);
  cache.set(key, image);
  return { ok: true, image };
}

/** How many images are decoded at once up front (sharp decodes on libuv's threads). */
const DECODE_CONCURRENCY = 4;

/** The image-caption pipeline of captions, csv and folder (imageRowsStage with the caption as text). */
export function imageCaptionStage(ctx: SourceContext, rows: readonly ImageRow[], readProblems: readonly RowProblem[], cache?: DecodedCache): Promise<StageData> {
  const toExample = (row: ImageRow): RowExample => {
    const e = encodeCaption(ctx.tokenizer, row.caption);
    return e.ok ? { ok: true, example: { text: row.caption, ids: e.ids } } : e;
  };
  return imageRowsStage(ctx, rows, readProblems, toExample, cache);
}

/**
 * The pipeline of every source that reads rows with images from a file (captions, csv, folder,
 * conversations): `rows` are the rows a reader accepted, `problems` those it did not. Each row's
 * text becomes an example (`toExample`: tokenized, masked) and each distinct image is decoded now;
 * a row failing either becomes a problem, then `bad_rows` decides.
 */
export async function imageRowsStage<R extends ImageSource>(ctx: SourceContext, rows: readonly R[], readProblems: readonly RowProblem[], toExample: (row: R) => RowExample, cache: DecodedCache = new DecodedCache(cacheBytes(ctx.call))): Promise<StageData> {
  const size = ctx.size!;
  const policy = ctx.policy!;
  const problems: RowProblem[] = [...readProblems];
  const encoded: { row: R; example: Omit<Example, "image"> }[] = [];
  for (const row of rows) {
    const e = toExample(row);
    if (e.ok) encoded.push({ row, example: e.example });
    else problems.push({ file: row.file, line: row.line, message: e.message });
  }
  // Decode each distinct image once; rows sharing an image share its verdict.
  const verdict = new Map<string, string | null>();
  const distinct = [...new Map(encoded.map((e) => [e.row.key, e.row])).values()];
  let next = 0;
  const worker = async () => {
    while (next < distinct.length) {
      const row = distinct[next++]!;
      const got = await decodeRow(row, size, policy, cache);
      verdict.set(row.key, got.ok ? null : got.error.message);
    }
  };
  await Promise.all(Array.from({ length: Math.min(DECODE_CONCURRENCY, distinct.length) }, worker));
  const usable: Example[] = [];
  const byKey = new Map<string, ImageSource>();
  for (const { row, example } of encoded) {
    const bad = verdict.get(row.key);
    if (bad) {
      problems.push({ file: row.file, line: row.line, message: bad });
      continue;
    }
    if (!byKey.has(row.key)) byKey.set(row.key, row);
    usable.push({ ...example, image: row.key });
  }
  const lines = applyBadRows(problems, badRowsPolicy(ctx.call));
  if (usable.length === 0) throw new DataError(`${ctx.describe}: no usable rows${lines.length ? ` (${lines.length} bad, the first: ${lines[0]})` : ""}`);
  const split = splitByImage(usable as { image: string }[], ctx.split, ctx.seed);
  return {
    describe: ctx.describe,
    train: split.train.map((i) => usable[i]!),
    validation: split.validation.map((i) => usable[i]!),
    problems: lines,
    images: true,
    maxText: ctx.maxText,
    padId: ctx.padId,
    imageSize: size,
    pixels: async (batch) => {
      const parts: Uint8Array[] = [];
      for (const ex of batch) {
        // An image evicted from the cache is decoded again; it decoded before, so a failure now
        // means the file changed under the run.
        const row = byKey.get(ex.image!)!;
        const got = await decodeRow(row, size, policy, cache);
        if (!got.ok) throw new DataError(`${formatProblem({ file: row.file, line: row.line, message: got.error.message })} (it decoded when the run started: was the file changed?)`);
        parts.push(got.image.data);
      }
      return normalizePixels(parts, policy);
    },
  };
}

/**
 * The stage data of a generated source (shapes, instruct, mnist): its generator's own split, no
 * bad rows, and each image drawn once by `render` (from its example's key), resized to the
 * encoder's size where it differs, and kept as bytes.
 */
export function generatedStage(ctx: SourceContext, train: Example[], validation: Example[], render: (key: string) => RgbImage): StageData {
  const size = ctx.size!;
  const policy = ctx.policy!;
  const kept = new Map<string, Uint8Array>();
  return {
    describe: ctx.describe,
    train,
    validation,
    problems: [],
    images: true,
    maxText: ctx.maxText,
    padId: ctx.padId,
    imageSize: size,
    pixels: async (examples) => {
      const parts: Uint8Array[] = [];
      for (const ex of examples) {
        let px = kept.get(ex.image!);
        if (!px) {
          const img = render(ex.image!);
          px = img.width === size.width && img.height === size.height ? img.data : (await resizeImage(img, size, policy.resize)).data;
          kept.set(ex.image!, px);
        }
        parts.push(px);
      }
      return normalizePixels(parts, policy);
    },
  };
}

/**
 * HWC bytes of RGB images, concatenated, as (v / 255 - mean[c]) / std[c]. v / 255 is rounded to
 * float32 first, so that `unit` (mean 0, std 1) gives exactly the float32 of v / 255.
 */
export function normalizePixels(parts: readonly Uint8Array[], pixels: Pick<IrPixels, "mean" | "std">): Float32Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Float32Array(n);
  const [m0, m1, m2] = pixels.mean as [number, number, number];
  const [s0, s1, s2] = pixels.std as [number, number, number];
  let o = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i += 3, o += 3) {
      out[o] = (Math.fround(p[i]! / 255) - m0) / s0;
      out[o + 1] = (Math.fround(p[i + 1]! / 255) - m1) / s1;
      out[o + 2] = (Math.fround(p[i + 2]! / 255) - m2) / s2;
    }
  }
  return out;
}
