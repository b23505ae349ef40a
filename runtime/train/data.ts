// A stage's data source (the IR's `data` call) as examples ready for batching: each example's
// token ids (the caption with bos/eos, by the spec's tokenizer) and an image key, split into
// training and validation sides, and the images of a batch as one float32 [B, H, W, 3] array at
// the encoder's input size, prepared as the encoder's `pixels` say (the spec's `resize` and
// `normalize`: each value v becomes (v / 255 - mean[c]) / std[c]), whatever the source.
//
// Sources: `shapes(...)` is generated (runtime/data/shapes.ts) and keeps the generator's own
// split, whose validation side holds (shape, colour) combinations never seen in training;
// `captions(file)` is JSON Lines (runtime/data/captions.ts) split by image (runtime/data/split.ts);
// `text(file)` is one document a line, for a text-only stage (no images). A bad row of a captions
// file is skipped and counted in `problems`; a caption with a character outside the tokenizer's
// alphabet stops the run before any step (a spec/data mismatch, not noise).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Ir, IrCall, IrPixels } from "../../compiler/ir/types.js";
import { decoderContext, visualTokens } from "../../compiler/cost/estimate.js";
import { DecodedCache, loadImage, resizeImage, type RgbImage } from "../data/images.js";
import { readCaptions } from "../data/captions.js";
import { generateShapes } from "../data/shapes.js";
import { splitByImage } from "../data/split.js";
import type { CharTokenizer } from "../tokenizer.js";

/** A data problem that stops the run (one line for the user). */
export class DataError extends Error {}

export interface Example {
  /** What identifies the image (a path, a generated id); null for text. */
  image: string | null;
  text: string;
  ids: Int32Array;
}

export interface StageData {
  /** `shapes(images: 2000, size: 32, seed: 1)`: for messages. */
  describe: string;
  train: Example[];
  validation: Example[];
  /** Rows left out, with why (captions files). */
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
}

/** Image side of the encoder's input: [B, H, W, C]. */
export function imageSize(ir: Ir): { height: number; width: number } | null {
  const inp = ir.modules.encoder?.input;
  if (!inp) return null;
  return { height: inp[1] as number, width: inp[2] as number };
}

export function describeCall(c: IrCall): string {
  const args = Object.entries(c)
    .filter(([k]) => k !== "kind")
    .map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
  return `${c.kind}(${args.join(", ")})`;
}

/**
 * How images become the encoder's input: its `pixels`, or for an IR document from before they
 * existed, [0, 1] values of images stretched to size. Null without an encoder.
 */
export function pixelPolicy(ir: Ir): IrPixels | null {
  const enc = ir.modules.encoder;
  if (!enc) return null;
  if (enc.pixels) return enc.pixels;
  const channels = enc.input[3] as number;
  return { normalize: "unit", mean: new Array<number>(channels).fill(0), std: new Array<number>(channels).fill(1), resize: "stretch" };
}

/** Reads the data source of a stage. `baseDir` is the folder the IR's paths are relative to. */
export async function loadStageData(call: IrCall, ir: Ir, tokenizer: CharTokenizer, opts: { baseDir: string; split: number; seed: number }): Promise<StageData> {
  const context = decoderContext(ir);
  const textOnly = call.kind === "text";
  const maxText = context === null ? 1 << 20 : context - (textOnly ? 0 : visualTokens(ir));
  if (maxText < 2) throw new DataError(`the decoder's context of ${context} leaves no room for text after ${visualTokens(ir)} visual tokens`);
  const size = imageSize(ir);
  const padId = tokenizer.pad ?? 0;
  const encode = (text: string, where: string): Int32Array => {
    const r = tokenizer.encode(text);
    if (!r.ok) throw new DataError(`${where}: ${r.error.message}; the spec's tokenizer must cover the data (add the character to \`alphabet\`, or add \`unk\` to \`specials\`)`);
    return r.ids;
  };
  const describe = describeCall(call);
  if (!textOnly && !size) throw new DataError(`${describe} has images, but the model has no encoder`);
  const policy = pixelPolicy(ir);
  if (!textOnly && policy!.mean.length !== 3) throw new DataError(`${describe} gives RGB images (3 channels), but the encoder takes ${policy!.mean.length}`);

  if (call.kind === "shapes") {
    const data = generateShapes({ images: call.images as number, size: call.size as number, seed: call.seed as number, split: opts.split });
    const rendered = new Map<string, Uint8Array>();
    const byId = new Map([...data.train, ...data.validation].map((e) => [e.id, e]));
    const toExample = (e: (typeof data.train)[number]): Example => ({ image: e.id, text: e.caption, ids: encode(e.caption, `shapes image ${e.index}`) });
    return {
      describe,
      train: data.train.map(toExample),
      validation: data.validation.map(toExample),
      problems: [],
      images: true,
      maxText,
      padId,
      imageSize: size,
      pixels: async (examples) => {
        const parts: Uint8Array[] = [];
        for (const ex of examples) {
          let px = rendered.get(ex.image!);
          if (!px) {
            const e = byId.get(ex.image!)!;
            const img: RgbImage = { width: e.size, height: e.size, channels: 3, data: e.image() };
            px = e.size === size!.width && e.size === size!.height ? img.data : (await resizeImage(img, size!, policy!.resize)).data;
            rendered.set(ex.image!, px);
          }
          parts.push(px);
        }
        return normalizePixels(parts, policy!);
      },
    };
  }

  if (call.kind === "captions") {
    const file = resolve(opts.baseDir, call.file as string);
    const read = readCaptions(file, { imageField: call.image as string, textField: call.text as string });
    const unreadable = read.problems.find((p) => p.kind === "unreadable-file");
    if (unreadable) throw new DataError(unreadable.message);
    const problems = read.problems.map((p) => `${p.file}:${p.line}: ${p.message}`);
    if (read.rows.length === 0) throw new DataError(`${file}: no usable rows${problems.length ? ` (${problems.length} bad, the first: ${problems[0]})` : ""}`);
    const examples = read.rows.map((r) => ({ image: r.image, text: r.caption, ids: encode(r.caption, `${file}:${r.line}`) }));
    const split = splitByImage(examples as { image: string }[], opts.split, opts.seed);
    const cache = new DecodedCache(512 * 2 ** 20);
    return {
      describe,
      train: split.train.map((i) => examples[i]!),
      validation: split.validation.map((i) => examples[i]!),
      problems,
      images: true,
      maxText,
      padId,
      imageSize: size,
      pixels: async (batch) => {
        const parts: Uint8Array[] = [];
        for (const ex of batch) {
          const got = await loadImage(ex.image!, size!, policy!.resize, { cache });
          if (!got.ok) throw new DataError(got.error.message);
          parts.push(got.image.data);
        }
        return normalizePixels(parts, policy!);
      },
    };
  }

  if (call.kind === "text") {
    const file = resolve(opts.baseDir, call.file as string);
    let body: string;
    try {
      body = readFileSync(file, "utf8");
    } catch (err) {
      throw new DataError(`${file}: ${(err as Error).message}`);
    }
    const lines = body.split(/\r?\n/).map((t, i) => ({ t, i })).filter((l) => l.t.trim() !== "");
    if (lines.length === 0) throw new DataError(`${file}: no text`);
    const examples = lines.map((l) => ({ image: `line:${l.i + 1}`, text: l.t, ids: encode(l.t, `${file}:${l.i + 1}`) }));
    const split = splitByImage(examples as { image: string }[], opts.split, opts.seed);
    return {
      describe,
      train: split.train.map((i) => ({ ...examples[i]!, image: null })),
      validation: split.validation.map((i) => ({ ...examples[i]!, image: null })),
      problems: [],
      images: false,
      maxText,
      padId,
      imageSize: null,
      pixels: async () => new Float32Array(0),
    };
  }
  throw new DataError(`unknown data source \`${call.kind}\``);
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
