// Training images and captions (runtime/data/): decoding every kind of PNG and JPEG to RGB, the bad
// files that must come back as error values (missing, unreadable, corrupt, truncated, unsupported),
// the three resize policies, float conversion, the byte-capped cache, and the captions .jsonl reader
// with a line number for every bad row. Test images are made here with sharp; the real photos of
// ../shared/data/photos/ are decoded when that folder exists.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { readCaptions, type CaptionProblemKind } from "../runtime/data/captions.js";
import {
  ALPHA_BACKGROUND,
  decodeImage,
  DecodedCache,
  loadImage,
  resizeImage,
  toFloat,
  type ImageErrorKind,
  type ImageResult,
  type RgbImage,
} from "../runtime/data/images.js";
import { repoRoot } from "./helpers/paths.js";

const dir = mkdtempSync(join(tmpdir(), "vlmc-data-images-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const PHOTOS = join(repoRoot, "..", "shared", "data", "photos");

type Px = number[];

/** Raw pixels from a function of (x, y), `channels` values each. */
function raw(width: number, height: number, channels: 1 | 2 | 3 | 4, px: (x: number, y: number) => Px): Buffer {
  const buf = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = px(x, y);
      for (let c = 0; c < channels; c++) buf[(y * width + x) * channels + c] = v[c]!;
    }
  }
  return buf;
}

function encoder(width: number, height: number, channels: 1 | 2 | 3 | 4, px: (x: number, y: number) => Px) {
  return sharp(raw(width, height, channels, px), { raw: { width, height, channels } });
}

function rgbImage(width: number, height: number, px: (x: number, y: number) => Px): RgbImage {
  return { width, height, channels: 3, data: new Uint8Array(raw(width, height, 3, px)) };
}

function at(img: RgbImage, x: number, y: number): Px {
  const i = (y * img.width + x) * 3;
  return [img.data[i]!, img.data[i + 1]!, img.data[i + 2]!];
}

function ok(r: ImageResult): RgbImage {
  if (!r.ok) assert.fail(`expected an image, got ${r.error.kind}: ${r.error.message}`);
  return r.image;
}

function failed(r: ImageResult, kind: ImageErrorKind): string {
  if (r.ok) assert.fail(`expected a ${kind} error, got a ${r.image.width}x${r.image.height} image`);
  assert.equal(r.error.kind, kind, r.error.message);
  return r.error.message;
}

function close(actual: Px, expected: Px, tol: number, what: string): void {
  for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(actual[c]! - expected[c]!) <= tol, `${what}: got [${actual}], expected [${expected}] within ${tol}`);
  }
}

// An odd-sized test pattern: a different colour at every pixel.
const W = 37;
const H = 23;
const pattern = (x: number, y: number): Px => [(x * 7) % 256, (y * 11) % 256, (x * y) % 256];

// ---- decoding ----

test("RGB PNG of odd size decodes exactly, from bytes and from a path", async () => {
  const png = await encoder(W, H, 3, pattern).png().toBuffer();
  const file = join(dir, "rgb.png");
  writeFileSync(file, png);
  for (const input of [new Uint8Array(png), file]) {
    const img = ok(await decodeImage(input));
    assert.deepEqual([img.width, img.height, img.channels, img.data.length], [W, H, 3, W * H * 3]);
    assert.ok(img.data instanceof Uint8Array);
    assert.deepEqual(img.data, new Uint8Array(raw(W, H, 3, pattern)));
  }
});

test("RGBA PNG: alpha is composited on white", async () => {
  // left third transparent black, middle third half-transparent red, right third opaque blue
  const png = await encoder(30, 4, 4, (x) => (x < 10 ? [0, 0, 0, 0] : x < 20 ? [255, 0, 0, 128] : [0, 0, 255, 255])).png().toBuffer();
  const img = ok(await decodeImage(png));
  assert.deepEqual([img.width, img.height, img.channels], [30, 4, 3]);
  assert.deepEqual(at(img, 2, 1), [...ALPHA_BACKGROUND]);
  close(at(img, 15, 1), [255, 127, 127], 2, "half-transparent red on white");
  assert.deepEqual(at(img, 25, 1), [0, 0, 255]);
});

test("grayscale PNG (8-bit, with alpha, 16-bit) is expanded to R = G = B", async () => {
  const gray = (x: number, y: number): Px => [(x * 5 + y * 3) % 256];
  const g8 = ok(await decodeImage(await encoder(W, H, 1, gray).png().toBuffer()));
  assert.deepEqual([g8.width, g8.height, g8.channels], [W, H, 3]);
  for (const [x, y] of [[0, 0], [36, 22], [17, 9]] as const) {
    const v = gray(x, y)[0]!;
    assert.deepEqual(at(g8, x, y), [v, v, v]);
  }
  const ga = ok(await decodeImage(await encoder(4, 2, 2, (x) => (x < 2 ? [40, 255] : [40, 0])).png().toBuffer()));
  assert.deepEqual(at(ga, 0, 0), [40, 40, 40]);
  assert.deepEqual(at(ga, 3, 1), [255, 255, 255]);
  const g16 = await encoder(3, 2, 3, () => [100, 100, 100]).toColourspace("grey16").png().toBuffer();
  assert.equal((await sharp(g16).metadata()).depth, "ushort");
  const d16 = ok(await decodeImage(g16));
  close(at(d16, 2, 1), [100, 100, 100], 1, "16-bit gray");
});

test("palette PNG decodes to its colours", async () => {
  const png = await encoder(W, H, 3, (x) => (x < 18 ? [255, 0, 0] : [0, 0, 255])).png({ palette: true, colours: 2, dither: 0 }).toBuffer();
  assert.equal((await sharp(png).metadata()).isPalette, true);
  const img = ok(await decodeImage(png));
  assert.deepEqual([img.width, img.height], [W, H]);
  close(at(img, 3, 3), [255, 0, 0], 2, "palette red");
  close(at(img, 30, 20), [0, 0, 255], 2, "palette blue");
});

test("JPEG of odd size decodes to RGB close to its source; EXIF orientation is applied", async () => {
  const jpg = await encoder(W, H, 3, (x) => (x < 18 ? [200, 30, 30] : [30, 30, 200])).jpeg({ quality: 95 }).toBuffer();
  const img = ok(await decodeImage(jpg));
  assert.deepEqual([img.width, img.height, img.channels, img.data.length], [W, H, 3, W * H * 3]);
  close(at(img, 4, 10), [200, 30, 30], 12, "JPEG red");
  close(at(img, 32, 10), [30, 30, 200], 12, "JPEG blue");

  // Stored 40x20 with its top row red; orientation 6 means "rotate 90 degrees clockwise to display".
  const rotated = await encoder(40, 20, 3, (_x, y) => (y < 10 ? [220, 20, 20] : [20, 220, 20])).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
  assert.equal((await sharp(rotated).metadata()).orientation, 6);
  const shown = ok(await decodeImage(rotated));
  assert.deepEqual([shown.width, shown.height], [20, 40]);
  close(at(shown, 17, 20), [220, 20, 20], 15, "the stored top is on the right after orientation 6");
  close(at(shown, 2, 20), [20, 220, 20], 15, "the stored bottom is on the left");
});

test("bad files are error values: missing, unreadable, corrupt, truncated, unsupported", async () => {
  const png = await encoder(W, H, 3, pattern).png().toBuffer();
  const jpg = await encoder(64, 48, 3, pattern).jpeg().toBuffer();
  const put = (name: string, bytes: Uint8Array | string) => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };
  failed(await decodeImage(join(dir, "nope.png")), "missing");
  failed(await decodeImage(join(dir, "no-dir", "nope.png")), "missing");
  mkdirSync(join(dir, "folder.png"));
  failed(await decodeImage(join(dir, "folder.png")), "unreadable");

  failed(await decodeImage(put("empty.png", new Uint8Array(0))), "corrupt");
  const garbage = new Uint8Array(500).map((_, i) => (i * 97 + 13) % 251);
  assert.match(failed(await decodeImage(put("garbage.png", garbage)), "corrupt"), /garbage\.png/);
  failed(await decodeImage(put("garbage.jpg", "this is not a photo\n")), "corrupt");
  // A PNG signature and header, then damage.
  const damaged = Uint8Array.from(png);
  damaged.fill(0x5a, 60);
  failed(await decodeImage(put("damaged.png", damaged)), "corrupt");
  for (const frac of [0.02, 0.5, 0.95]) {
    failed(await decodeImage(put(`cut-${frac}.png`, png.subarray(0, Math.floor(png.length * frac)))), "corrupt");
    failed(await decodeImage(put(`cut-${frac}.jpg`, jpg.subarray(0, Math.floor(jpg.length * frac)))), "corrupt");
    failed(await decodeImage(new Uint8Array(jpg.subarray(0, Math.floor(jpg.length * frac)))), "corrupt");
  }

  failed(await decodeImage(put("notes.txt", "just some text\n")), "unsupported");
  failed(await decodeImage(new Uint8Array(garbage)), "unsupported");
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4" fill="red"/></svg>';
  assert.match(failed(await decodeImage(put("vector.svg", svg)), "unsupported"), /svg/);
  failed(await decodeImage(png, { maxPixels: 100 }), "unsupported");
});

// ---- resizing ----

test("every resize mode gives exactly the size asked, from odd sizes", async () => {
  const img = rgbImage(W, H, pattern);
  const before = img.data.slice();
  for (const mode of ["stretch", "crop", "pad"] as const) {
    for (const size of [{ height: 96, width: 96 }, { height: 8, width: 13 }, { height: 23, width: 37 }, { height: 1, width: 1 }]) {
      const out = await resizeImage(img, size, mode);
      assert.deepEqual([out.width, out.height, out.channels, out.data.length], [size.width, size.height, 3, size.width * size.height * 3], `${mode} ${size.width}x${size.height}`);
    }
  }
  assert.deepEqual(img.data, before, "the input is not modified");
  await assert.rejects(resizeImage(img, { height: 0, width: 4 }, "stretch"), RangeError);
});

test("stretch keeps a red left half red", async () => {
  const img = rgbImage(40, 20, (x) => (x < 20 ? [255, 0, 0] : [0, 0, 255]));
  const out = await resizeImage(img, { height: 10, width: 10 }, "stretch");
  for (let y = 0; y < 10; y++) {
    close(at(out, 1, y), [255, 0, 0], 4, `left (1, ${y})`);
    close(at(out, 3, y), [255, 0, 0], 4, `left (3, ${y})`);
    close(at(out, 6, y), [0, 0, 255], 4, `right (6, ${y})`);
    close(at(out, 8, y), [0, 0, 255], 4, `right (8, ${y})`);
  }
});

test("crop of a wide image keeps its center", async () => {
  // red | green | blue thirds: a square crop is the green third
  const img = rgbImage(90, 30, (x) => (x < 30 ? [255, 0, 0] : x < 60 ? [0, 255, 0] : [0, 0, 255]));
  const out = await resizeImage(img, { height: 10, width: 10 }, "crop");
  for (let y = 0; y < 10; y++) {
    for (let x = 1; x < 9; x++) close(at(out, x, y), [0, 255, 0], 4, `(${x}, ${y})`);
    for (const x of [0, 9]) {
      const [r, g, b] = at(out, x, y);
      assert.ok(g! > 200 && r! < 60 && b! < 60, `edge (${x}, ${y}) mostly green: [${[r, g, b]}]`);
    }
  }
  // and a tall one keeps its middle band: the magenta top and bottom are cut away
  const tall = rgbImage(10, 40, (_x, y) => (y >= 15 && y < 25 ? [0, 255, 0] : [255, 0, 255]));
  const sq = await resizeImage(tall, { height: 10, width: 10 }, "crop");
  for (const y of [0, 5, 9]) close(at(sq, 5, y), [0, 255, 0], 4, `tall (5, ${y})`);
});

test("pad letterboxes with the fill colour (default black)", async () => {
  const white = rgbImage(40, 20, () => [255, 255, 255]);
  const out = await resizeImage(white, { height: 20, width: 20 }, "pad", { fill: [10, 20, 30] });
  for (let x = 0; x < 20; x++) {
    for (const y of [0, 1, 2, 3, 16, 17, 18, 19]) assert.deepEqual(at(out, x, y), [10, 20, 30], `border (${x}, ${y})`);
    for (let y = 6; y < 14; y++) close(at(out, x, y), [255, 255, 255], 2, `image (${x}, ${y})`);
  }
  const black = await resizeImage(rgbImage(20, 40, () => [255, 255, 255]), { height: 20, width: 20 }, "pad");
  assert.deepEqual(at(black, 0, 10), [0, 0, 0]);
  assert.deepEqual(at(black, 19, 10), [0, 0, 0]);
  close(at(black, 10, 10), [255, 255, 255], 2, "center");
});

test("toFloat: unit range and per-channel standardisation, HWC", () => {
  const img = rgbImage(2, 1, (x) => (x === 0 ? [0, 255, 51] : [255, 0, 102]));
  const unit = toFloat(img, "unit");
  assert.ok(unit instanceof Float32Array);
  assert.deepEqual(Array.from(unit, (v) => Math.round(v * 1000) / 1000), [0, 1, 0.2, 1, 0, 0.4]);
  const norm = toFloat(img, { mean: [0.5, 0.5, 0.2], std: [0.5, 0.25, 0.1] });
  const expected = [-1, 2, 0, 1, -2, 2];
  norm.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-5, `${i}: ${v} vs ${expected[i]}`));
  assert.throws(() => toFloat(img, { mean: [0, 0, 0], std: [1, 0, 1] }), RangeError);
});

// ---- cache ----

test("DecodedCache keeps at most its cap, evicting the least recently used", () => {
  const img = (v: number) => rgbImage(10, 10, () => [v, v, v]); // 300 bytes
  const cache = new DecodedCache(700);
  const a = img(1);
  assert.equal(cache.set("a", a), true);
  cache.set("b", img(2));
  assert.equal(cache.get("a"), a, "a hit returns the stored image itself");
  cache.set("c", img(3)); // over 700: evicts b, the least recently used
  assert.equal(cache.has("b"), false);
  assert.equal(cache.has("a") && cache.has("c"), true);
  assert.equal(cache.get("b"), undefined);
  assert.equal(cache.set("huge", rgbImage(20, 20, () => [0, 0, 0])), false, "an image over the cap is not kept");
  assert.deepEqual(cache.stats(), { hits: 1, misses: 1, evictions: 1, entries: 2, bytes: 600, capBytes: 700 });
  cache.set("a", img(9)); // replacing does not double-count
  assert.equal(cache.stats().bytes, 600);
  assert.equal(DecodedCache.key("x.png", { height: 96, width: 64 }, "crop"), "x.png|64x96|crop");
  assert.notEqual(DecodedCache.key("x.png", { height: 8, width: 8 }, "pad", [0, 0, 0]), DecodedCache.key("x.png", { height: 8, width: 8 }, "pad", [255, 255, 255]));
});

test("loadImage through the cache: a hit gives the same bytes without reading the file again", async () => {
  const file = join(dir, "cached.png");
  writeFileSync(file, await encoder(W, H, 3, pattern).png().toBuffer());
  const cache = new DecodedCache(1 << 20);
  const first = ok(await loadImage(file, { height: 16, width: 16 }, "crop", { cache }));
  rmSync(file);
  const second = ok(await loadImage(file, { height: 16, width: 16 }, "crop", { cache }));
  assert.equal(second.data, first.data);
  assert.deepEqual(cache.stats(), { hits: 1, misses: 1, evictions: 0, entries: 1, bytes: 16 * 16 * 3, capBytes: 1 << 20 });
  failed(await loadImage(file, { height: 16, width: 16 }, "stretch", { cache }), "missing");
  assert.equal(cache.stats().entries, 1, "errors are not cached");
});

// ---- captions ----

test("readCaptions: good rows, and every bad row with its line", () => {
  const folder = join(dir, "captions");
  mkdirSync(join(folder, "img"), { recursive: true });
  writeFileSync(join(folder, "img", "a.png"), "x");
  writeFileSync(join(folder, "b.jpg"), "x");
  mkdirSync(join(folder, "dir.png"));
  const lines = [
    /* 1 */ '{"image": "img/a.png", "caption": "a red square"}',
    /* 2 */ "",
    /* 3 */ '{"image": "b.jpg", "caption": "a blue circle", "extra": 1}\r',
    /* 4 */ '{"image": "img/a.png", "caption": }',
    /* 5 */ '["img/a.png", "a list"]',
    /* 6 */ '{"caption": "no image"}',
    /* 7 */ '{"image": "img/a.png"}',
    /* 8 */ '{"image": 3, "caption": "a number"}',
    /* 9 */ '{"image": "img/a.png", "caption": ["x"]}',
    /* 10 */ '{"image": "img/a.png", "caption": "   "}',
    /* 11 */ '{"image": "", "caption": "no path"}',
    /* 12 */ '{"image": "img/missing.png", "caption": "gone"}',
    /* 13 */ '{"image": "dir.png", "caption": "a folder"}',
    /* 14 */ "   \t",
    /* 15 */ `{"image": ${JSON.stringify(join(folder, "b.jpg"))}, "caption": "absolute path, unicode: caf\u00e9 \u{1f600}"}`,
    /* 16 */ '{"image": "img/a.png", "caption": null}',
  ];
  const file = join(folder, "captions.jsonl");
  const bad = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]); // line 17: not UTF-8
  writeFileSync(file, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(lines.join("\n") + "\n"), bad, Buffer.from("\n")]));
  const { rows, problems } = readCaptions(file, {});
  assert.deepEqual(rows, [
    { image: join(folder, "img", "a.png"), caption: "a red square", line: 1 },
    { image: join(folder, "b.jpg"), caption: "a blue circle", line: 3 },
    { image: join(folder, "b.jpg"), caption: "absolute path, unicode: caf\u00e9 \u{1f600}", line: 15 },
  ]);
  const got = problems.map((p) => [p.line, p.kind]);
  const expected: [number, CaptionProblemKind][] = [
    [4, "invalid-json"],
    [5, "not-an-object"],
    [6, "missing-field"],
    [7, "missing-field"],
    [8, "wrong-type"],
    [9, "wrong-type"],
    [10, "empty-caption"],
    [11, "empty-image"],
    [12, "missing-image"],
    [13, "missing-image"],
    [16, "missing-field"],
    [17, "invalid-utf8"],
  ];
  assert.deepEqual(got, expected);
  for (const p of problems) {
    assert.equal(p.file, file);
    assert.match(p.message, new RegExp(`line ${p.line}\\b`));
  }
  const json = problems.find((p) => p.kind === "invalid-json")!;
  if (json.column !== undefined) assert.equal(json.column, 35);
  assert.match(problems.find((p) => p.line === 6)!.message, /"image"/);
  assert.match(problems.find((p) => p.line === 12)!.message, /img\/missing\.png/);
});

test("readCaptions: other field names, and an unreadable file is one problem, not an exception", () => {
  const folder = join(dir, "captions2");
  mkdirSync(folder);
  writeFileSync(join(folder, "p.png"), "x");
  const file = join(folder, "d.jsonl");
  writeFileSync(file, '{"path": "p.png", "text": "hello"}\n{"image": "p.png", "caption": "wrong names"}');
  const r = readCaptions(file, { imageField: "path", textField: "text" });
  assert.deepEqual(r.rows, [{ image: join(folder, "p.png"), caption: "hello", line: 1 }]);
  assert.deepEqual(r.problems.map((p) => [p.line, p.kind]), [[2, "missing-field"], [2, "missing-field"]]);
  for (const path of [join(folder, "absent.jsonl"), folder]) {
    const bad = readCaptions(path);
    assert.deepEqual(bad.rows, []);
    assert.deepEqual(bad.problems.map((p) => [p.file, p.line, p.kind]), [[path, 0, "unreadable-file"]]);
  }
  assert.deepEqual(readCaptions(join(folder, "p.png")).problems.map((p) => p.kind), ["invalid-json"]);
  writeFileSync(join(folder, "empty.jsonl"), "");
  assert.deepEqual(readCaptions(join(folder, "empty.jsonl")), { rows: [], problems: [] });
});

// ---- the real photos ----

test("the photos of ../shared/data/photos all decode and resize to 96x96", { skip: !existsSync(join(PHOTOS, "captions.jsonl")) && "no ../shared/data/photos here" }, async (t) => {
  const { rows, problems } = readCaptions(join(PHOTOS, "captions.jsonl"));
  assert.deepEqual(problems, []);
  assert.equal(rows.length, 8);
  const timings: string[] = [];
  for (const row of rows) {
    const bytes = readFileSync(row.image);
    const t0 = performance.now();
    const img = ok(await decodeImage(new Uint8Array(bytes)));
    const ms = performance.now() - t0;
    const meta = await sharp(bytes).metadata();
    assert.deepEqual([img.width, img.height, img.channels], [meta.width, meta.height, 3], row.image);
    let sum = 0;
    for (const v of img.data) sum += v;
    const mean = sum / img.data.length;
    assert.ok(mean > 5 && mean < 250, `${row.image}: mean ${mean} is not blank`);
    const t1 = performance.now();
    for (const mode of ["stretch", "crop", "pad"] as const) {
      const out = await resizeImage(img, { height: 96, width: 96 }, mode);
      assert.deepEqual([out.width, out.height, out.data.length], [96, 96, 96 * 96 * 3]);
      const f = toFloat(out, "unit");
      assert.ok(f.every((v) => v >= 0 && v <= 1));
    }
    const resizeMs = (performance.now() - t1) / 3;
    timings.push(`${row.image.slice(PHOTOS.length + 1)} ${meta.format} ${meta.width}x${meta.height} ${meta.channels}ch: decode ${ms.toFixed(1)} ms, resize ${resizeMs.toFixed(1)} ms`);
  }
  // The RGBA horse is a dark silhouette on a transparent background: composited on white.
  const horse = ok(await decodeImage(join(PHOTOS, "horse.png")));
  assert.deepEqual(at(horse, 0, 0), [255, 255, 255]);
  // Grayscale camera: R = G = B everywhere.
  const camera = ok(await decodeImage(join(PHOTOS, "camera.png")));
  for (let i = 0; i < camera.data.length; i += 3 * 997) assert.ok(camera.data[i] === camera.data[i + 1] && camera.data[i] === camera.data[i + 2]);
  // An epoch through the cache decodes each photo once.
  const cache = new DecodedCache(64 << 20);
  for (let epoch = 0; epoch < 2; epoch++) {
    for (const row of rows) ok(await loadImage(row.image, { height: 96, width: 96 }, "crop", { cache }));
  }
  assert.deepEqual([cache.stats().misses, cache.stats().hits, cache.stats().entries], [8, 8, 8]);
  for (const line of timings) t.diagnostic(line);
});
