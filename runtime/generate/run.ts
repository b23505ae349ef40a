// `vlmc generate`'s work: a trained run folder (read as `vlmc eval` reads it:
// runtime/eval/run.ts readRun) writes a caption, or an answer to a prompt, for each image file.
// Images are decoded and prepared exactly as training prepared its images (the encoder's
// `pixels`: the resize policy, then the normalisation; runtime/train/data.ts), batched, and
// decoded with the KV cache (runtime/generate.ts). A prompt is formatted by the run's chat
// template when the model has one (runtime/chat.ts: the prefix training put before an answer),
// else it is plain text after `bos`, which the caption continues. `--explain` writes a heat map
// per image (explain.ts).
//
// Everything that can be wrong with the input is a RunError with a one-line message before any
// model is built: the run folder, weights written for another spec, unreadable images, a prompt
// the tokenizer cannot write or the context cannot hold.
import { existsSync, mkdirSync, statSync } from "node:fs";
import { basename, extname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { writeFileAtomic } from "../../compiler/files.js";
import type { Tf } from "../backend.js";
import { encodePrompt, answerOf, type ChatTemplate } from "../chat.js";
import { decodeImage, resizeImage, type RgbImage } from "../data/images.js";
import { RunError, type RunFiles } from "../eval/run.js";
import { decoderContext, visualTokens } from "../../compiler/cost/estimate.js";
import { generate } from "../generate.js";
import { Model } from "../model.js";
import { METADATA_HASH, readSafetensorsHeader } from "../safetensors.js";
import { imageSize, normalizePixels, pixelPolicy } from "../train/data.js";
import { loadWeightsFile, WeightsFailure } from "../weights.js";
import { gridWeights, renderHeatMap, visualGrid, type VisualGrid } from "./explain.js";
import { resolveSampling, type Sampling, type SamplingOptions } from "./sample.js";

/** Text positions a caption may take when the IR records no context (rotary or no positions). */
export const UNBOUNDED_MAX_TOKENS = 128;

export interface CaptionOptions {
  prompt?: string;
  maxTokens?: number;
  sampling?: SamplingOptions;
  /** Images decoded at once (default 16). */
  batch?: number;
  /** Write a heat map per image into this folder. */
  explainDir?: string;
  onProgress?: (done: number, total: number) => void;
}

export interface Caption {
  /** The image path as given. */
  image: string;
  text: string;
  tokens: number;
  /** `eos`: the model ended it; `length`: it reached the token limit. */
  stop: "eos" | "length";
  /** The heat map written for it (`--explain`). */
  attentionMap?: string;
}

export interface CaptionResult {
  model: string;
  weights: string;
  /** The prompt's text as the decoder got it (chat template applied), or null. */
  prompt: string | null;
  chat: boolean;
  sampling: { temperature: number; top_k: number; top_p: number; seed: number | null };
  captions: Caption[];
  /** Why no heat maps were drawn (`--explain` on a model without patch tokens). */
  explainNote: string | null;
  seconds: number;
}

/** The weights were written for the run's spec: their recorded hash is the IR's. */
export function checkWeightsHash(run: RunFiles): void {
  const head = readSafetensorsHeader(run.weights);
  if (!head.ok) return; // loading reports an unreadable file with its own message
  const hash = head.header.metadata[METADATA_HASH];
  if (hash !== undefined && hash !== run.ir.hash) {
    throw new RunError(`${run.weightsLabel} was written for another spec (${hash.slice(0, 19)}...) than ${join(run.dir, "ir.json")} (${run.ir.hash.slice(0, 19)}...): the run folder's files do not belong together`, false);
  }
}

/** The prompt's ids: the chat template's prefix for the question, or bos then the text. */
export function promptIds(run: RunFiles, prompt: string | undefined): { ids: number[]; text: string | null; chat: ChatTemplate | null } {
  const { tokenizer, ir } = run;
  const chat = prompt !== undefined && ir.chat ? ir.chat : null;
  if (prompt === undefined) return { ids: [tokenizer.bos!], text: null, chat: null };
  if (chat) {
    const r = encodePrompt(prompt, chat, tokenizer);
    if (!r.ok) throw new RunError(`--prompt: ${r.message}`, true);
    return { ids: Array.from(r.ids), text: tokenizer.decode(r.ids), chat };
  }
  const r = tokenizer.encode(prompt, { bos: false, eos: false });
  if (!r.ok) throw new RunError(`--prompt: ${r.error.message}`, true);
  return { ids: [tokenizer.bos!, ...r.ids], text: prompt, chat: null };
}

export interface Prepared {
  path: string;
  original: RgbImage;
  pixels: Float32Array;
}

/** Every image decoded and prepared by the run's pixel policy; all bad ones reported at once. */
async function prepareImages(run: RunFiles, paths: readonly string[]): Promise<Prepared[]> {
  const size = imageSize(run.ir);
  const policy = pixelPolicy(run.ir);
  if (!size || !policy) throw new RunError(`the model \`${run.ir.model}\` has no image encoder: there is nothing to look at`, false);
  if (policy.mean.length !== 3) throw new RunError(`the encoder takes ${policy.mean.length} channels; images are read as RGB (3)`, false);
  const out: Prepared[] = [];
  const bad: string[] = [];
  let missing = false;
  for (const path of paths) {
    const d = await decodeImage(path);
    if (!d.ok) {
      bad.push(d.error.message);
      missing ||= d.error.kind === "missing" || d.error.kind === "unreadable";
      continue;
    }
    const resized = await resizeImage(d.image, size, policy.resize);
    out.push({ path, original: d.image, pixels: normalizePixels([resized.data], policy) });
  }
  if (bad.length) throw new RunError(bad.length === 1 ? bad[0]! : `${bad.length} images cannot be read: ${bad.join("; ")}`, missing);
  return out;
}

/** A file name for each image's heat map, unique within the call. */
function mapNames(paths: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return paths.map((p) => {
    const stem = basename(p, extname(p)) || "image";
    const n = seen.get(stem) ?? 0;
    seen.set(stem, n + 1);
    return `${stem}${n ? `-${n + 1}` : ""}.attention.png`;
  });
}

/** A request checked and its images prepared: everything but the model, no tfjs needed. */
export interface GenerateRequest {
  run: RunFiles;
  paths: readonly string[];
  images: Prepared[];
  prompt: { ids: number[]; text: string | null; chat: ChatTemplate | null };
  sampling: Sampling;
  options: CaptionOptions;
  maxTokens: number;
  grid: VisualGrid | null;
}

/**
 * Checks everything a request can get wrong before a model is built (weights of another spec,
 * sampling values, a prompt the tokenizer cannot write or the context cannot hold, unreadable
 * images) and prepares the images: RunError otherwise.
 */
export async function prepareRequest(run: RunFiles, paths: readonly string[], options: CaptionOptions = {}): Promise<GenerateRequest> {
  const { ir } = run;
  checkWeightsHash(run);
  let sampling: Sampling;
  try {
    sampling = resolveSampling(options.sampling);
  } catch (err) {
    throw new RunError((err as Error).message, true);
  }
  const prompt = promptIds(run, options.prompt);
  const context = decoderContext(ir);
  const budget = context === null ? null : context - visualTokens(ir);
  if (budget !== null && prompt.ids.length > budget) {
    throw new RunError(`--prompt: the prompt takes ${prompt.ids.length} tokens${prompt.chat ? " with the chat template" : ""}, more than the ${budget} the decoder's context of ${context} leaves after the image's ${visualTokens(ir)} visual tokens`, true);
  }
  const room = budget === null ? UNBOUNDED_MAX_TOKENS : budget - prompt.ids.length + 1;
  const images = await prepareImages(run, paths);
  return { run, paths, images, prompt, sampling, options, maxTokens: Math.min(options.maxTokens ?? room, room), grid: options.explainDir !== undefined ? visualGrid(ir) : null };
}

/** Captions for `paths` from a run (readRun), as `vlmc generate` prints them. */
export async function captionImages(tf: Tf, run: RunFiles, paths: readonly string[], options: CaptionOptions = {}): Promise<CaptionResult> {
  return runRequest(tf, await prepareRequest(run, paths, options));
}

/** Builds the model, loads the weights and generates for a prepared request. */
export async function runRequest(tf: Tf, req: GenerateRequest): Promise<CaptionResult> {
  const { run, images, prompt, sampling, options, maxTokens, grid, paths } = req;
  const { ir, tokenizer } = run;
  const t0 = performance.now();
  const model = Model.create(tf, ir, 0, { baseDir: run.dir });
  try {
    try {
      loadWeightsFile(model, run.weights, null, () => {}, run.weightsLabel);
    } catch (err) {
      if (err instanceof WeightsFailure) throw new RunError(`${err.file} does not fit the model \`${ir.model}\`: ${err.problems.slice(0, 3).map((p) => p.message).join("; ")}`, err.unreadable);
      throw err;
    }
    if (options.explainDir !== undefined) mkdirSync(options.explainDir, { recursive: true });
    const names = mapNames(paths);
    const batch = options.batch ?? 16;
    const size = imageSize(ir)!;
    const captions: Caption[] = [];
    for (let i = 0; i < images.length; i += batch) {
      const part = images.slice(i, i + batch);
      const flat = new Float32Array(part.length * part[0]!.pixels.length);
      part.forEach((p, k) => flat.set(p.pixels, k * p.pixels.length));
      const x = tf.tensor4d(flat, [part.length, size.height, size.width, 3]);
      let g;
      try {
        g = await generate(model, x, { prompt: prompt.ids, eos: tokenizer.eos, pad: tokenizer.pad ?? 0, maxTokens, sampling: { ...options.sampling }, attention: grid?.ok === true });
      } finally {
        x.dispose();
      }
      for (let k = 0; k < part.length; k++) {
        const generated = tokenizer.decode(g.ids[k]!);
        const c: Caption = { image: part[k]!.path, text: prompt.chat ? answerOf(generated, prompt.chat) : generated, tokens: g.ids[k]!.length, stop: g.ended[k] ? "eos" : "length" };
        if (grid?.ok) {
          const n = grid.rows * grid.cols + (grid.cls ? 1 : 0); // the encoder's sequence
          const encoder = (g.encoderAttention ?? []).map((a) => a.subarray(k * n * n, (k + 1) * n * n));
          const png = await renderHeatMap({ image: part[k]!.original, grid, weights: gridWeights(grid, g.attention?.[k], encoder), resize: pixelPolicy(ir)!.resize });
          const file = join(options.explainDir!, names[i + k]!);
          writeFileAtomic(file, png);
          c.attentionMap = file;
        }
        captions.push(c);
      }
      options.onProgress?.(Math.min(i + batch, images.length), images.length);
    }
    return {
      model: ir.model,
      weights: run.weightsLabel,
      prompt: prompt.text,
      chat: prompt.chat !== null,
      sampling: { temperature: sampling.temperature, top_k: sampling.topK, top_p: sampling.topP, seed: sampling.temperature > 0 ? Number(options.sampling?.seed ?? 0) : null },
      captions,
      explainNote: grid && !grid.ok ? `--explain: no heat maps: ${grid.reason}` : null,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    model.dispose();
  }
}

/** Whether `dir` can take the heat maps (an existing folder, or a path that can become one). */
export function explainDirProblem(dir: string): string | null {
  const abs = resolve(dir);
  if (existsSync(abs) && !statSync(abs).isDirectory()) return `--out-dir ${dir}: not a folder`;
  return null;
}
