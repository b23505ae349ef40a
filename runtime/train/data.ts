// A stage's data source (the IR's `data` call) as examples ready for batching: each example's
// token ids (the caption with bos/eos, by the spec's tokenizer) and an image key, split into
// training and validation sides, and the images of a batch as one float32 [B, H, W, 3] array at
// the encoder's input size, prepared as the encoder's `pixels` say (the spec's `resize` and
// `normalize`: each value v becomes (v / 255 - mean[c]) / std[c]), whatever the source.
//
// Each source is one unit under runtime/data/sources/ (like the layer kinds): this file checks the
// model against the source (room for text, an encoder for images) and dispatches on the call's
// kind. Adding a source: a loader there and a line in SOURCES (and its arguments in
// compiler/resolve/train.ts's `dataSources`). Bad rows of a file are skipped and listed in
// `problems`, or stop the run, as the source's `bad_rows` says (sources/common.ts).
import type { Ir, IrCall, IrPixels } from "../../compiler/ir/types.js";
import { decoderContext, visualTokens } from "../../compiler/cost/estimate.js";
import { loadCaptions } from "../data/sources/captions.js";
import { DataError, type SourceLoader, type StageData } from "../data/sources/common.js";
import { loadCsv } from "../data/sources/csv.js";
import { loadFolder } from "../data/sources/folder.js";
import { loadMnist } from "../data/sources/mnist.js";
import { loadShapes } from "../data/sources/shapes.js";
import { loadText } from "../data/sources/text.js";
import { loadConversations } from "../data/sources/conversations.js";
import { loadInstruct } from "../data/sources/instruct.js";
import type { Tokenizer } from "../tokenizer.js";

export { DataError, normalizePixels, type Example, type StageData } from "../data/sources/common.js";
import type { Example } from "../data/sources/common.js";

/** The loader of each data source kind; `images: false` ones feed a text-only stage. */
const SOURCES: Record<string, { load: SourceLoader; images: boolean }> = {
  shapes: { load: loadShapes, images: true },
  captions: { load: loadCaptions, images: true },
  csv: { load: loadCsv, images: true },
  folder: { load: loadFolder, images: true },
  mnist: { load: loadMnist, images: true },
  text: { load: loadText, images: false },
  conversations: { load: loadConversations, images: true },
  instruct: { load: loadInstruct, images: true },
};

/** Image side of the encoder's input: [B, H, W, C]. */
export function imageSize(ir: Ir): { height: number; width: number } | null {
  const inp = ir.modules.encoder?.input;
  if (!inp) return null;
  return { height: inp[1] as number, width: inp[2] as number };
}

export function describeCall(c: IrCall): string {
  const isCall = (v: unknown): v is IrCall => typeof v === "object" && v !== null && !Array.isArray(v) && typeof (v as IrCall).kind === "string";
  const args = Object.entries(c)
    .filter(([k]) => k !== "kind")
    .map(([k, v]) => `${k}: ${isCall(v) ? describeCall(v) : JSON.stringify(v)}`);
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
export async function loadStageData(call: IrCall, ir: Ir, tokenizer: Tokenizer, opts: { baseDir: string; split: number; seed: number }): Promise<StageData> {
  if (call.kind === "text" && call.file && typeof call.file === "object" && !Array.isArray(call.file)) return captionsAsText(call, call.file as IrCall, ir, tokenizer, opts);
  const source = SOURCES[call.kind];
  if (!source) throw new DataError(`unknown data source \`${call.kind}\``);
  const context = decoderContext(ir);
  const textOnly = !source.images;
  const maxText = context === null ? 1 << 20 : context - (textOnly ? 0 : visualTokens(ir));
  if (maxText < 2) throw new DataError(`the decoder's context of ${context} leaves no room for text after ${visualTokens(ir)} visual tokens`);
  const size = imageSize(ir);
  const describe = describeCall(call);
  if (!textOnly && !size) throw new DataError(`${describe} has images, but the model has no encoder`);
  const policy = pixelPolicy(ir);
  if (!textOnly && policy!.mean.length !== 3) throw new DataError(`${describe} gives RGB images (3 channels), but the encoder takes ${policy!.mean.length}`);
  return source.load({
    call,
    ir,
    tokenizer,
    baseDir: opts.baseDir,
    split: opts.split,
    seed: opts.seed,
    describe,
    maxText,
    padId: tokenizer.pad ?? 0,
    size: textOnly ? null : size,
    policy: textOnly ? null : policy,
  });
}


/**
 * `text(shapes(...))`: the captions of an image-caption source as a text-only stage's documents.
 * The inner source keeps its own split, so the captions validation holds out (the shapes set's
 * novel descriptions) never train the decoder. Its images are not read; the captions are
 * encoded again with the whole context as their room (no visual tokens in front).
 */
async function captionsAsText(call: IrCall, inner: IrCall, ir: Ir, tokenizer: Tokenizer, opts: { baseDir: string; split: number; seed: number }): Promise<StageData> {
  const source = SOURCES[inner.kind];
  if (!source?.images) throw new DataError(`text(...) takes a file or an image-caption source, not \`${inner.kind}\``);
  const describe = describeCall(call);
  const context = decoderContext(ir);
  const maxText = context === null ? 1 << 20 : context;
  // The inner source is loaded as if for an image stage (its captions are checked against the room
  // visual tokens would leave), then stripped of its images.
  const size = imageSize(ir) ?? { height: 1, width: 1 };
  const policy = pixelPolicy(ir) ?? { normalize: "unit", mean: [0, 0, 0], std: [1, 1, 1], resize: "stretch" as const };
  const data = await source.load({
    call: inner,
    ir,
    tokenizer,
    baseDir: opts.baseDir,
    split: opts.split,
    seed: opts.seed,
    describe: describeCall(inner),
    maxText,
    padId: tokenizer.pad ?? 0,
    size,
    policy,
  });
  const strip = (e: Example): Example => ({ ...e, image: null });
  return {
    describe,
    train: data.train.map(strip),
    validation: data.validation.map(strip),
    problems: data.problems,
    images: false,
    maxText,
    padId: data.padId,
    imageSize: null,
    pixels: async () => new Float32Array(0),
  };
}
