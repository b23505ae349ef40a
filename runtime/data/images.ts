// Images for training: decoding (PNG, JPEG, and the other formats listed in IMAGE_FORMATS) to
// 8-bit RGB, resizing under a declared policy, conversion to float, and a byte-capped LRU cache of
// decoded images. Decoding and resizing are done by `sharp` (libvips), which ships prebuilt
// binaries as npm packages.
//
// Conventions, decided once here:
// - Every decoded image is RGB, 3 channels, 8 bits, row-major HWC (`data[(y * width + x) * 3 + c]`).
// - Alpha is composited on white (ALPHA_BACKGROUND), not dropped: a transparent pixel's colour is
//   arbitrary (often black), so dropping alpha would turn transparent backgrounds into noise.
// - Grayscale (with or without alpha) is expanded to R = G = B; 16-bit images are reduced to 8 bits;
//   CMYK and other colour spaces are converted to sRGB.
// - EXIF orientation is applied, so `width` and `height` are those of the image as displayed.
// - Animated images (GIF, WebP) give their first frame.
// - A bad file (missing, unreadable, corrupt or truncated, not a supported image) is an
//   `ImageError` value, never an exception. Exceptions are left for programming errors (a resize to
//   0 pixels, a wrong-sized buffer).
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import sharp from "sharp";

/** An 8-bit RGB image, row-major HWC. */
export interface RgbImage {
  width: number;
  height: number;
  channels: 3;
  data: Uint8Array;
}

export type ImageErrorKind = "missing" | "unreadable" | "corrupt" | "unsupported";

export interface ImageError {
  kind: ImageErrorKind;
  message: string;
}

export type ImageResult = { ok: true; image: RgbImage } | { ok: false; error: ImageError };

/** What `decodeImage` accepts (sharp's names); other formats sharp knows (SVG, PDF, HEIF, ...) are `unsupported`. */
export const IMAGE_FORMATS: readonly string[] = ["png", "jpeg", "webp", "gif", "tiff"];

/** File name endings that claim to be an image: garbage under such a name is `corrupt`, not `unsupported`. */
const IMAGE_EXTENSIONS = new Set([".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".gif", ".tif", ".tiff"]);

/** The colour alpha is composited on. */
export const ALPHA_BACKGROUND: readonly [number, number, number] = [255, 255, 255];

/** The largest image decoded, in pixels (8192 x 8192): larger ones are `unsupported` (a decompression bomb guard). */
export const MAX_PIXELS = 8192 * 8192;

export interface DecodeOptions {
  /** Override MAX_PIXELS. */
  maxPixels?: number;
}

/**
 * Decodes an image file (a path) or its bytes to 8-bit RGB. Never throws for bad content: a
 * missing or unreadable path, a corrupt or truncated file, or an unsupported format is an error value.
 */
export async function decodeImage(input: string | Uint8Array, options: DecodeOptions = {}): Promise<ImageResult> {
  const name = typeof input === "string" ? input : undefined;
  let bytes: Uint8Array;
  if (typeof input === "string") {
    const read = await readBytes(input);
    if (!read.ok) return read;
    bytes = read.bytes;
  } else {
    bytes = input;
  }
  const where = name === undefined ? "image" : name;
  if (bytes.length === 0) return fail("corrupt", `${where}: empty file`);
  const maxPixels = options.maxPixels ?? MAX_PIXELS;

  let format: string | undefined;
  let width = 0;
  let height = 0;
  try {
    const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
    format = meta.format;
    width = meta.width ?? 0;
    height = meta.height ?? 0;
  } catch (err) {
    const msg = messageOf(err);
    if (/unsupported image format/i.test(msg)) {
      // Nothing recognised the bytes. Under a name that claims an image, the file is broken;
      // otherwise it is simply not an image we read.
      const claimed = name !== undefined && IMAGE_EXTENSIONS.has(extname(name).toLowerCase());
      return claimed
        ? fail("corrupt", `${where}: not a valid ${extname(name).slice(1).toUpperCase()} file (unrecognised contents)`)
        : fail("unsupported", `${where}: not a recognised image format (supported: ${IMAGE_FORMATS.join(", ")})`);
    }
    return fail("corrupt", `${where}: ${msg}`);
  }
  if (format === undefined || !IMAGE_FORMATS.includes(format)) {
    return fail("unsupported", `${where}: ${format ?? "unknown"} images are not supported (supported: ${IMAGE_FORMATS.join(", ")})`);
  }
  if (width * height > maxPixels) {
    return fail("unsupported", `${where}: ${width}x${height} is more than the ${maxPixels}-pixel limit`);
  }
  if (width <= 0 || height <= 0) return fail("corrupt", `${where}: image has no pixels`);

  try {
    const [r, g, b] = ALPHA_BACKGROUND;
    const { data, info } = await sharp(bytes, { failOn: "error", limitInputPixels: maxPixels })
      .autoOrient()
      .flatten({ background: { r, g, b } })
      .toColourspace("srgb")
      .removeAlpha()
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
    const image = toRgb(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), info.width, info.height, info.channels);
    return { ok: true, image };
  } catch (err) {
    return fail("corrupt", `${where}: ${format.toUpperCase()} could not be decoded: ${messageOf(err)}`);
  }
}

export type ResizeMode = "stretch" | "crop" | "pad";
export const RESIZE_MODES: readonly ResizeMode[] = ["stretch", "crop", "pad"];

export interface Size {
  height: number;
  width: number;
}

export interface ResizeOptions {
  /** The letterbox colour of `pad`, 0..255 per channel; default PAD_FILL (black, zero padding). */
  fill?: readonly [number, number, number];
  /** sharp's resampling kernel; default "lanczos3" (antialiased when shrinking). */
  kernel?: "nearest" | "linear" | "cubic" | "mitchell" | "lanczos2" | "lanczos3";
}

/** The default letterbox colour of `pad`: black, i.e. zero padding in pixel space. */
export const PAD_FILL: readonly [number, number, number] = [0, 0, 0];

/**
 * Resizes to exactly `size`:
 * - `stretch`: scale each axis independently (the aspect ratio changes);
 * - `crop`: scale to cover `size` keeping the aspect ratio, then cut the excess equally from both
 *   sides (a center crop);
 * - `pad`: scale to fit inside `size` keeping the aspect ratio, then letterbox: the border is
 *   `fill` (default PAD_FILL), the image centered.
 * Returns a new image; the input is not modified. An image already of `size` is copied as is.
 */
export async function resizeImage(img: RgbImage, size: Size, mode: ResizeMode, options: ResizeOptions = {}): Promise<RgbImage> {
  checkImage(img);
  const { height, width } = size;
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw new RangeError(`resizeImage: size must be positive integers, got ${width}x${height}`);
  }
  if (!RESIZE_MODES.includes(mode)) throw new RangeError(`resizeImage: unknown mode ${String(mode)}`);
  if (img.width === width && img.height === height) return { width, height, channels: 3, data: img.data.slice() };
  const [r, g, b] = options.fill ?? PAD_FILL;
  const fit = mode === "stretch" ? "fill" : mode === "crop" ? "cover" : "contain";
  const { data, info } = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize({ width, height, fit, position: "centre", background: { r, g, b, alpha: 1 }, kernel: options.kernel ?? "lanczos3" })
    .raw({ depth: "uchar" })
    .toBuffer({ resolveWithObject: true });
  return toRgb(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), info.width, info.height, info.channels);
}

export interface Normalize {
  /** Per-channel mean, on the [0, 1] scale (e.g. CLIP's [0.4815, 0.4578, 0.4082]). */
  mean: readonly [number, number, number];
  /** Per-channel standard deviation, on the [0, 1] scale. */
  std: readonly [number, number, number];
}

/**
 * The image as float32, HWC, same layout as `data`: `"unit"` gives v / 255 in [0, 1]; `{mean, std}`
 * gives (v / 255 - mean[c]) / std[c].
 */
export function toFloat(img: RgbImage, normalize: Normalize | "unit"): Float32Array {
  checkImage(img);
  const n = img.width * img.height;
  const out = new Float32Array(n * 3);
  const src = img.data;
  if (normalize === "unit") {
    for (let i = 0; i < out.length; i++) out[i] = src[i]! / 255;
    return out;
  }
  const { mean, std } = normalize;
  for (let c = 0; c < 3; c++) {
    if (!(std[c]! > 0) || !Number.isFinite(mean[c]!)) throw new RangeError(`toFloat: std must be > 0 and mean finite (channel ${c})`);
  }
  const scale = [1 / (255 * std[0]), 1 / (255 * std[1]), 1 / (255 * std[2])];
  const shift = [mean[0] / std[0], mean[1] / std[1], mean[2] / std[2]];
  for (let p = 0, i = 0; p < n; p++) {
    for (let c = 0; c < 3; c++, i++) out[i] = src[i]! * scale[c]! - shift[c]!;
  }
  return out;
}

/** Counters of a DecodedCache. */
export interface CacheStats {
  hits: number;
  misses: number;
  evictions: number;
  entries: number;
  bytes: number;
  capBytes: number;
}

/**
 * Decoded (and resized) images kept as uint8, least recently used evicted first once their bytes
 * would pass `capBytes`. An image larger than the cap is not kept. `get` returns the stored image
 * itself: callers must not modify its data.
 */
export class DecodedCache {
  private readonly map = new Map<string, RgbImage>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  constructor(readonly capBytes: number) {
    if (!(capBytes >= 0) || !Number.isFinite(capBytes)) throw new RangeError(`DecodedCache: capBytes must be a finite number >= 0, got ${capBytes}`);
  }

  /** The key of an image file at a size under a resize policy (and pad colour). */
  static key(path: string, size: Size, mode: ResizeMode, fill: readonly [number, number, number] = PAD_FILL): string {
    const tail = mode === "pad" ? `|${fill.join(",")}` : "";
    return `${path}|${size.width}x${size.height}|${mode}${tail}`;
  }

  get(key: string): RgbImage | undefined {
    const img = this.map.get(key);
    if (img === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.map.delete(key); // most recently used last
    this.map.set(key, img);
    return img;
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  /** Stores `img` under `key`, evicting the least recently used; returns whether it was kept. */
  set(key: string, img: RgbImage): boolean {
    const size = img.data.byteLength;
    const old = this.map.get(key);
    if (old !== undefined) {
      this.map.delete(key);
      this.bytes -= old.data.byteLength;
    }
    if (size > this.capBytes) return false;
    while (this.bytes + size > this.capBytes) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      const victim = this.map.get(oldest.value)!;
      this.map.delete(oldest.value);
      this.bytes -= victim.data.byteLength;
      this.evictions++;
    }
    this.map.set(key, img);
    this.bytes += size;
    return true;
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }

  stats(): CacheStats {
    return { hits: this.hits, misses: this.misses, evictions: this.evictions, entries: this.map.size, bytes: this.bytes, capBytes: this.capBytes };
  }
}

export interface LoadOptions extends ResizeOptions, DecodeOptions {
  cache?: DecodedCache;
}

/**
 * An image file decoded and resized to `size` under `mode`, through `cache` when given (a hit
 * neither reads nor decodes the file). Errors are values, as for decodeImage; they are not cached.
 */
export async function loadImage(path: string, size: Size, mode: ResizeMode, options: LoadOptions = {}): Promise<ImageResult> {
  const { cache } = options;
  const key = cache ? DecodedCache.key(path, size, mode, options.fill) : "";
  const hit = cache?.get(key);
  if (hit !== undefined) return { ok: true, image: hit };
  const decoded = await decodeImage(path, options);
  if (!decoded.ok) return decoded;
  const image = await resizeImage(decoded.image, size, mode, options);
  cache?.set(key, image);
  return { ok: true, image };
}

// ---- helpers ----

async function readBytes(path: string): Promise<{ ok: true; bytes: Uint8Array } | { ok: false; error: ImageError }> {
  try {
    const buf = await readFile(path);
    return { ok: true, bytes: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return fail("missing", `${path}: no such file`);
    if (code === "EISDIR") return fail("unreadable", `${path}: is a directory, not a file`);
    if (code === "EACCES" || code === "EPERM") return fail("unreadable", `${path}: permission denied`);
    return fail("unreadable", `${path}: ${messageOf(err)}`);
  }
}

/** Packs sharp's raw output (1 to 4 bands, though decode asks for 3) into an RgbImage. */
function toRgb(raw: Uint8Array, width: number, height: number, channels: number): RgbImage {
  const n = width * height;
  if (raw.length !== n * channels) throw new Error(`internal: raw buffer of ${raw.length} bytes for ${width}x${height}x${channels}`);
  if (channels === 3) return { width, height, channels: 3, data: raw };
  const data = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    const s = p * channels;
    const g = raw[s]!;
    data[p * 3] = g;
    data[p * 3 + 1] = channels >= 3 ? raw[s + 1]! : g;
    data[p * 3 + 2] = channels >= 3 ? raw[s + 2]! : g;
  }
  return { width, height, channels: 3, data };
}

function checkImage(img: RgbImage): void {
  if (img.channels !== 3 || img.data.length !== img.width * img.height * 3) {
    throw new RangeError(`not an RGB image: ${img.width}x${img.height}x${img.channels} with ${img.data.length} bytes`);
  }
}

function fail(kind: ImageErrorKind, message: string): { ok: false; error: ImageError } {
  return { ok: false, error: { kind, message } };
}

function messageOf(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.trim().replace(/[\s:]+$/, "").replace(/\s*\n\s*/g, "; ");
}
