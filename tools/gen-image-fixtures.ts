// Writes the image fixtures of the data tests (test/fixtures/images/): one small file of each kind
// a data set holds (grayscale, RGBA with transparency, palette, JPEG, an odd size) and the bad files
// a loader must report rather than crash on (a truncated PNG, a truncated JPEG, text named .png).
// Run by hand after changing it, and commit what it writes:
//
//   npx tsc -p . && node dist/tools/gen-image-fixtures.js
//
// Each image is made of flat regions whose colours are exported below (FIXTURE_COLOURS), so a test
// knows what a decoded, resized pixel away from a region's edge must be without decoding the file
// by another route. The files are written by sharp (libvips), the library that reads them back:
// the colours, not a second decoder, are the independent reference.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import sharp from "sharp";
import { repoPath } from "./repo.js";

/** The colours of the fixtures' regions. */
export const FIXTURE_COLOURS = {
  /** gray.png: left half, right half (8-bit gray values). */
  gray: [40, 210] as const,
  /** rgba.png: the left half is this opaque colour, the right half fully transparent (composited on white). */
  rgbaOpaque: [200, 30, 30] as const,
  /** palette.png: the quadrants top-left, top-right, bottom-left, bottom-right. */
  palette: [
    [255, 0, 0],
    [0, 128, 0],
    [0, 0, 255],
    [255, 255, 0],
  ] as const,
  /** photo.jpg: one flat colour (JPEG keeps a flat block within a unit or two). */
  jpeg: [60, 120, 180] as const,
  /** odd-7x5.png: one flat colour, 7 wide and 5 high. */
  odd: [20, 160, 90] as const,
};

/** The size of each good fixture, [width, height]. */
export const FIXTURE_SIZES: Record<string, readonly [number, number]> = {
  "gray.png": [16, 16],
  "rgba.png": [16, 16],
  "palette.png": [16, 16],
  "photo.jpg": [24, 16],
  "odd-7x5.png": [7, 5],
};

/** The bad fixtures, with the problem a loader reports. */
export const BAD_FIXTURES = ["truncated.png", "truncated.jpg", "not-an-image.png"] as const;

function fill(width: number, height: number, channels: number, px: (x: number, y: number) => readonly number[]): Buffer {
  const buf = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) px(x, y).forEach((v, c) => (buf[(y * width + x) * channels + c] = v));
  return buf;
}

export async function fixtureFiles(): Promise<Record<string, Buffer>> {
  const C = FIXTURE_COLOURS;
  const raw = (w: number, h: number, channels: 1 | 2 | 3 | 4, px: (x: number, y: number) => readonly number[]) => sharp(fill(w, h, channels, px), { raw: { width: w, height: h, channels } });
  const files: Record<string, Buffer> = {};
  // Deterministic bytes: no timestamps or metadata, fixed compression.
  files["gray.png"] = await raw(16, 16, 1, (x) => [x < 8 ? C.gray[0] : C.gray[1]]).toColourspace("b-w").png({ compressionLevel: 9 }).toBuffer();
  files["rgba.png"] = await raw(16, 16, 4, (x) => (x < 8 ? [...C.rgbaOpaque, 255] : [0, 0, 0, 0])).png({ compressionLevel: 9 }).toBuffer();
  files["palette.png"] = await raw(16, 16, 3, (x, y) => C.palette[(y < 8 ? 0 : 2) + (x < 8 ? 0 : 1)]!).png({ palette: true, colours: 4, dither: 0, compressionLevel: 9 }).toBuffer();
  files["photo.jpg"] = await raw(24, 16, 3, () => C.jpeg).jpeg({ quality: 95 }).toBuffer();
  files["odd-7x5.png"] = await raw(7, 5, 3, () => C.odd).png({ compressionLevel: 9 }).toBuffer();
  // A PNG cut in its image data, and a JPEG cut before its end marker.
  files["truncated.png"] = files["palette.png"].subarray(0, Math.floor(files["palette.png"].length * 0.6));
  const bigJpeg = await raw(64, 64, 3, (x, y) => [(x * 4) & 255, (y * 4) & 255, ((x + y) * 2) & 255]).jpeg({ quality: 90 }).toBuffer();
  files["truncated.jpg"] = bigJpeg.subarray(0, Math.floor(bigJpeg.length / 2));
  files["not-an-image.png"] = Buffer.from("this is a text file, not a PNG\n", "utf8");
  return files;
}

async function main(): Promise<void> {
  const dir = repoPath("test", "fixtures", "images");
  mkdirSync(dir, { recursive: true });
  const files = await fixtureFiles();
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
  process.stdout.write(`wrote ${Object.keys(files).length} files to ${dir}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await main();
