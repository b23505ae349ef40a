// `vlmc generate --explain`: where in the picture the model looked while it wrote, as a heat map
// over the image. Which attention is shown depends on what the encoder hands the decoder:
//
// - patch tokens (`output: patches`, or `all`): the decoder's attention from each generated
//   token's query to each visual token, averaged over heads, decoder layers and the generated
//   tokens (runtime/generate.ts GenerateResult.attention); patch i of the grid gets visual token
//   i's weight (a CLS token among them is left out).
// - one token (`output: cls` or `pool`): the decoder can only look at that token, so the map is
//   the encoder's attention rollout (Abnar & Zuidema 2020): per encoder layer the head-averaged
//   attention plus the identity for the residual, rows renormalised, multiplied through the
//   layers; the CLS token's row over the patches (`cls`), or the mean of the patch rows (`pool`).
//
// The grid is the patch grid of the encoder's input (the image after the run's resize policy);
// it is drawn back onto the original picture through the same policy (stretch: the whole image;
// crop: the centre region the model saw; pad: the image inside the letterbox), coloured with
// viridis from the least attended patch (dark blue) to the most attended (yellow).
import sharp from "sharp";
import type { Ir, IrLayer } from "../../compiler/ir/types.js";
import type { RgbImage } from "../data/images.js";

/** How visual tokens map to the patch grid, or why they do not. */
export type VisualGrid =
  | {
      ok: true;
      rows: number;
      cols: number;
      patch: number;
      height: number;
      width: number;
      how: "patches" | "rollout-cls" | "rollout-pool";
      /** The encoder's sequence starts with a CLS token. */
      cls: boolean;
      /** The first visual token that is a patch (1 after a CLS token). */
      first: number;
    }
  | { ok: false; reason: string };

function findLayer(layers: readonly IrLayer[], kind: string): IrLayer | undefined {
  for (const l of layers) {
    if (l.kind === kind) return l;
    const inner = l.children ? findLayer(l.children, kind) : undefined;
    if (inner) return inner;
  }
  return undefined;
}

/** What `--explain` can draw for this model: the grid, and which attention shows it. */
export function visualGrid(ir: Ir): VisualGrid {
  const enc = ir.modules.encoder;
  if (!enc) return { ok: false, reason: "the model has no image encoder" };
  const embed = findLayer(enc.layers, "patch_embed");
  if (!embed) return { ok: false, reason: "the encoder has no `patch_embed` layer: its tokens are not image patches" };
  const [, height, width] = enc.input as [string, number, number, number];
  const patch = embed.attrs.patch as number;
  const rows = Math.floor(height / patch);
  const cols = Math.floor(width / patch);
  const cls = embed.attrs.cls === true;
  const which = (findLayer(enc.layers, "take")?.attrs.which as string | undefined) ?? "all";
  const nv = ir.modules.projector?.output[1] ?? enc.output[1];
  if (nv !== enc.output[1]) return { ok: false, reason: `the projector turns the encoder's ${String(enc.output[1])} tokens into ${String(nv)}: they are not patches any more` };
  const base = { ok: true as const, rows, cols, patch, height, width, cls };
  if (which === "cls" || which === "pool") {
    if (!findLayer(enc.layers, "attention")) return { ok: false, reason: `the encoder hands on one token (\`output: ${which}\`) and has no attention layer to trace it back to the patches` };
    return { ...base, how: which === "cls" ? "rollout-cls" : "rollout-pool", first: 0 };
  }
  const first = which === "all" && cls ? 1 : 0;
  if (nv !== rows * cols + first) return { ok: false, reason: `the encoder hands on ${String(nv)} tokens for a ${rows} x ${cols} grid` };
  return { ...base, how: "patches", first };
}

/**
 * Attention rollout over the encoder's layers: `layers[l]` is one row's head-averaged weights
 * [N, N] (row: query). Returns R = A'_L ... A'_1 with A' = (A + I) / 2, rows renormalised.
 */
export function rollout(layers: readonly Float32Array[], n: number): Float64Array {
  let r = new Float64Array(n * n);
  for (let i = 0; i < n; i++) r[i * n + i] = 1;
  for (const a of layers) {
    const step = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (let j = 0; j < n; j++) sum += a[i * n + j]! / 2 + (i === j ? 0.5 : 0);
      for (let j = 0; j < n; j++) step[i * n + j] = (a[i * n + j]! / 2 + (i === j ? 0.5 : 0)) / sum;
    }
    const next = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) {
      const s = step[i * n + k]!;
      if (s !== 0) for (let j = 0; j < n; j++) next[i * n + j]! += s * r[k * n + j]!;
    }
    r = next;
  }
  return r;
}

/**
 * One image's weights over the grid (rows x cols, row-major), from generate()'s attention:
 * `visual` is its row of GenerateResult.attention, `encoder` its [N, N] slices of
 * GenerateResult.encoderAttention (only read for rollout).
 */
export function gridWeights(grid: Extract<VisualGrid, { ok: true }>, visual: Float32Array | undefined, encoder: readonly Float32Array[]): Float64Array {
  const cells = grid.rows * grid.cols;
  if (grid.how === "patches") return Float64Array.from(visual!.subarray(grid.first, grid.first + cells));
  const c = grid.cls ? 1 : 0; // the patches' first index in the encoder's sequence
  const n = cells + c;
  const r = rollout(encoder, n);
  const out = new Float64Array(cells);
  // The CLS row over the patches, or the mean of the patch rows (the pooled token's sources).
  if (grid.how === "rollout-cls") for (let j = 0; j < cells; j++) out[j] = r[j + c]!;
  else for (let i = c; i < n; i++) for (let j = 0; j < cells; j++) out[j]! += r[i * n + j + c]! / cells;
  return out;
}

/** viridis at 5 stops, linearly interpolated: t in [0, 1] -> RGB. */
const VIRIDIS = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
] as const;

export function colour(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = VIRIDIS[i]!;
  const b = VIRIDIS[i + 1]!;
  return [0, 1, 2].map((c) => Math.round(a[c]! + (b[c]! - a[c]!) * f)) as [number, number, number];
}

/** The heat map's opacity: enough to tint the whole picture, more where the weight is high. */
const ALPHA_LOW = 0.35;
const ALPHA_HIGH = 0.75;
/** The long side of the PNG: small inputs are enlarged to be seen, large ones reduced. */
const MIN_SIDE = 256;
const MAX_SIDE = 1024;

export interface HeatMapInput {
  /** The picture as decoded (before the resize policy). */
  image: RgbImage;
  grid: Extract<VisualGrid, { ok: true }>;
  /** rows x cols weights (any scale: drawn from the smallest to the largest). */
  weights: ArrayLike<number>;
  resize: "stretch" | "crop" | "pad";
}

/** The heat map over the picture, as PNG bytes. */
export async function renderHeatMap(input: HeatMapInput): Promise<Uint8Array> {
  const { image, grid, weights, resize } = input;
  const { height: H, width: W, patch, rows, cols } = grid;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < rows * cols; i++) {
    min = Math.min(min, weights[i]!);
    max = Math.max(max, weights[i]!);
  }
  // The map over the model's input frame, one block per patch.
  const frame = Buffer.alloc(W * H * 4);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const r = Math.min(rows - 1, Math.floor(y / patch));
      const c = Math.min(cols - 1, Math.floor(x / patch));
      const t = max > min ? (weights[r * cols + c]! - min) / (max - min) : 0;
      const [cr, cg, cb] = colour(t);
      const o = (y * W + x) * 4;
      frame[o] = cr;
      frame[o + 1] = cg;
      frame[o + 2] = cb;
      frame[o + 3] = Math.round(255 * (ALPHA_LOW + (ALPHA_HIGH - ALPHA_LOW) * t));
    }
  }
  const w0 = image.width;
  const h0 = image.height;
  const long = Math.max(w0, h0);
  const scale = Math.min(MAX_SIDE, Math.max(MIN_SIDE, long)) / long;
  const outW = Math.max(1, Math.round(w0 * scale));
  const outH = Math.max(1, Math.round(h0 * scale));
  const raw4 = (w: number, h: number) => ({ raw: { width: w, height: h, channels: 4 as const } });
  // Where the frame lies over the output picture, and which part of the frame is the picture.
  let overlay: Buffer;
  let left = 0;
  let top = 0;
  if (resize === "stretch") {
    overlay = await sharp(frame, raw4(W, H)).resize(outW, outH, { fit: "fill", kernel: "nearest" }).raw().toBuffer();
  } else if (resize === "crop") {
    // The model saw the centre of the picture, scaled by s to cover the frame.
    const s = Math.max(W / w0, H / h0);
    const rw = Math.min(outW, Math.round((W / s) * scale));
    const rh = Math.min(outH, Math.round((H / s) * scale));
    left = Math.floor((outW - rw) / 2);
    top = Math.floor((outH - rh) / 2);
    overlay = await sharp(frame, raw4(W, H)).resize(rw, rh, { fit: "fill", kernel: "nearest" }).raw().toBuffer();
    const placed = await sharp({ create: { width: outW, height: outH, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
      .composite([{ input: overlay, ...raw4(rw, rh), left, top }])
      .raw()
      .toBuffer();
    overlay = placed;
    left = 0;
    top = 0;
  } else {
    // The picture, scaled by s to fit, sits centred in the frame: cut that part of the map out.
    const s = Math.min(W / w0, H / h0);
    const iw = Math.max(1, Math.min(W, Math.round(w0 * s)));
    const ih = Math.max(1, Math.min(H, Math.round(h0 * s)));
    const region = { left: Math.floor((W - iw) / 2), top: Math.floor((H - ih) / 2), width: iw, height: ih };
    overlay = await sharp(frame, raw4(W, H)).extract(region).resize(outW, outH, { fit: "fill", kernel: "nearest" }).raw().toBuffer();
  }
  const png = await sharp(image.data, { raw: { width: w0, height: h0, channels: 3 } })
    .resize(outW, outH, { fit: "fill", kernel: outW > w0 ? "nearest" : "lanczos3" })
    .composite([{ input: overlay, raw: { width: outW, height: outH, channels: 4 }, left, top }])
    .png()
    .toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}
