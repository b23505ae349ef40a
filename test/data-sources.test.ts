// The file data sources end to end through loadStageData: `csv` (base64 images, the seed's
// format), `folder` (ImageFolder's metadata.jsonl / metadata.csv) and `captions`; every bad row
// (missing image, truncated or fake image, empty caption, a character the tokenizer lacks) with
// its file:line, skipped or fatal as `bad_rows` says; every image kind of test/fixtures/images at
// the encoder's size under each resize policy; the decoded-image cache's cap; and a missing data
// file, a warning at check time (W0504) and an error when training starts.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { check } from "../compiler/check.js";
import { compile } from "../compiler/compile.js";
import type { Ir, IrCall } from "../compiler/ir/types.js";
import { renderText } from "../compiler/diagnostics/render-text.js";
import { recordStarts } from "../runtime/data/csv.js";
import { DecodedCache } from "../runtime/data/images.js";
import { imageCaptionStage } from "../runtime/data/sources/common.js";
import { CharTokenizer } from "../runtime/tokenizer.js";
import { DataError, describeCall, loadStageData, pixelPolicy, type StageData } from "../runtime/train/data.js";
import { train } from "../runtime/train/index.js";
import { BAD_FIXTURES, FIXTURE_COLOURS, FIXTURE_SIZES } from "../tools/gen-image-fixtures.js";
import { repoPath } from "./helpers/paths.js";

const FIX = repoPath("test", "fixtures", "images");
const PHOTOS = repoPath("..", "shared", "data", "photos");
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "vlmc-data-sources-"));
  dirs.push(d);
  return d;
}

/** A tiny model with an 8 x 8 encoder; `data` is the train section's data source. */
function spec(data: string, encoderExtra = ""): string {
  return `vlm 0.1
model m {
  tokenizer chars { alphabet: "abcdefghijklmnopqrstuvwxyz ,-A", specials: [pad, bos, eos] }
  encoder vit { image: 8 x 8 x 3, patch: 4, dim: 8, heads: 2, blocks: 1${encoderExtra ? `, ${encoderExtra}` : ""} }
  projector { linear(decoder.dim) }
  decoder gpt { dim: 8, heads: 2, layers: 1, context: 64 }
}
train {
  data: ${data}
  batch: 2
  split: 0
  stage all { train: [encoder, projector, decoder], steps: 2 }
}
`;
}

function irOf(dir: string, data: string, encoderExtra = ""): Ir {
  const path = join(dir, "m.vlm");
  writeFileSync(path, spec(data, encoderExtra));
  const r = compile(path, { baseDir: dir });
  assert.ok(r.ir, renderText(r.diagnostics, r.sources, { color: false }));
  return r.ir;
}

async function load(dir: string, data: string, encoderExtra = ""): Promise<StageData> {
  const ir = irOf(dir, data, encoderExtra);
  return loadStageData(ir.train!.data, ir, CharTokenizer.fromIr(ir.tokenizer!), { baseDir: dir, split: 0, seed: 1 });
}

async function loadError(dir: string, data: string): Promise<string> {
  try {
    await load(dir, data);
  } catch (err) {
    assert.ok(err instanceof DataError, `not a DataError: ${String(err)}`);
    return err.message;
  }
  return assert.fail("expected a DataError");
}

const b64 = (name: string) => readFileSync(join(FIX, name)).toString("base64");
const GOOD = Object.keys(FIXTURE_SIZES);

/** Pixel (x, y) of the first image of a batch, as 0..255 (unit normalisation). */
const at = (px: Float32Array, x: number, y: number) => [0, 1, 2].map((c) => Math.round(px[(y * 8 + x) * 3 + c]! * 255));
const near = (a: number[], b: readonly number[], tol: number) => a.every((v, i) => Math.abs(v - b[i]!) <= tol);

test("recordStarts: the first line of each record, across quoted line breaks, CRLF and empty lines", () => {
  assert.deepEqual(recordStarts('a,b\r\n"x\r\ny",1\r\n\r\nz,2\n'), [1, 2, 5]);
  assert.deepEqual(recordStarts('\ufeffh\n"q ""quoted""\nstill",1\nlast'), [1, 2, 4]);
});

test("csv: base64 images and captions, quoted fields with commas and line breaks, CRLF and a BOM", async () => {
  const dir = tempDir();
  const rows = [
    ["caption", "b64string_images"],
    ['"a gray square, in two halves"', b64("gray.png")],
    ['"a palette\r\nof four"', b64("palette.png")],
    ["a flat jpeg", `"data:image/jpeg;base64,${b64("photo.jpg")}"`],
  ];
  writeFileSync(join(dir, "seed.csv"), `\ufeff${rows.map((r) => r.join(",")).join("\r\n")}\r\n`);
  const d = await load(dir, 'csv("seed.csv")');
  // The line break is part of the caption, and outside this tokenizer's alphabet: the row is
  // reported at the line it starts on, and the next record's line is counted past it.
  assert.equal(d.problems.length, 1, d.problems.join("\n"));
  assert.match(d.problems[0]!, /seed\.csv:3: character "\\r" \(U\+000D\) at index 9 is not in the tokenizer's alphabet/);
  assert.deepEqual(d.train.map((e) => e.text).sort(), ["a flat jpeg", "a gray square, in two halves"]);
  assert.equal(d.validation.length, 0, "split: 0 holds nothing out");
  const gray = d.train.find((e) => e.text.startsWith("a gray"))!;
  const px = await d.pixels([gray]);
  assert.equal(px.length, 8 * 8 * 3);
  assert.ok(near(at(px, 0, 4), [FIXTURE_COLOURS.gray[0], FIXTURE_COLOURS.gray[0], FIXTURE_COLOURS.gray[0]], 2), `${at(px, 0, 4)}`);
  assert.ok(near(at(px, 7, 4), [FIXTURE_COLOURS.gray[1], FIXTURE_COLOURS.gray[1], FIXTURE_COLOURS.gray[1]], 2), `${at(px, 7, 4)}`);
});

test("csv: other column names; a missing column stops with the header's line", async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "d.csv"), `img,words\n${b64("odd-7x5.png")},a green patch\n`);
  const d = await load(dir, 'csv("d.csv", image: "img", text: "words")');
  assert.deepEqual(d.train.map((e) => e.text), ["a green patch"]);
  const msg = await loadError(dir, 'csv("d.csv")');
  assert.match(msg, /d\.csv:1: no "b64string_images" or "caption" column \(the header has "img", "words"\)/);
});

test("csv: every kind of bad row is reported with its line; skip leaves them out, fail stops at the first", async () => {
  const dir = tempDir();
  const lines = [
    "caption,b64string_images", // 1
    `good one,${b64("gray.png")}`, // 2
    `truncated png,${b64("truncated.png")}`, // 3
    `a text file,${b64("not-an-image.png")}`, // 4
    `,${b64("palette.png")}`, // 5: empty caption
    `capital Letters,${b64("palette.png")}`, // 6: L is not in the alphabet
    "no image,", // 7
    "not base64,@@@!!", // 8
    "short row", // 9
    `"good two, with a comma",${b64("rgba.png")}`, // 10
  ];
  writeFileSync(join(dir, "bad.csv"), `${lines.join("\n")}\n`);
  const d = await load(dir, 'csv("bad.csv")');
  assert.deepEqual(d.train.map((e) => e.text).sort(), ["good one", "good two, with a comma"]);
  assert.deepEqual(
    d.problems.map((p) => p.replace(/^.*bad\.csv:/, "").split(":")[0]),
    ["3", "4", "5", "6", "7", "8", "9"],
  );
  assert.ok(d.problems.every((p) => p.startsWith(`${join(dir, "bad.csv")}:`)), d.problems.join("\n"));
  const by = (line: number) => d.problems.find((p) => p.includes(`bad.csv:${line}:`))!;
  assert.match(by(3), /the image in "b64string_images": /);
  assert.match(by(4), /the image in "b64string_images": not a recognised image format/);
  assert.match(by(5), /"caption" is empty/);
  assert.match(by(6), /tokenizer must cover the data/);
  assert.match(by(7), /"b64string_images" is empty/);
  assert.match(by(8), /not base64/);
  assert.match(by(9), /fewer fields than the header/);
  const msg = await loadError(dir, 'csv("bad.csv", bad_rows: "fail")');
  assert.match(msg, /bad\.csv:3: .*\(and 6 more bad rows\); `bad_rows: "skip"`/);
});

test("folder: metadata.jsonl (the default) and metadata.csv, paths relative to the folder", async () => {
  const dir = tempDir();
  mkdirSync(join(dir, "imgs", "sub"), { recursive: true });
  copyFileSync(join(FIX, "gray.png"), join(dir, "imgs", "gray.png"));
  copyFileSync(join(FIX, "photo.jpg"), join(dir, "imgs", "sub", "photo.jpg"));
  writeFileSync(join(dir, "imgs", "metadata.jsonl"), `${JSON.stringify({ file_name: "gray.png", text: "gray halves" })}\n${JSON.stringify({ file_name: "sub/photo.jpg", text: "a flat photo" })}\n`);
  const d = await load(dir, 'folder("imgs")');
  assert.deepEqual(d.train.map((e) => e.text).sort(), ["a flat photo", "gray halves"]);
  assert.deepEqual(d.problems, []);
  const px = await d.pixels(d.train.filter((e) => e.text === "a flat photo"));
  assert.ok(near(at(px, 4, 4), FIXTURE_COLOURS.jpeg, 4), `${at(px, 4, 4)}`);

  // No metadata.jsonl: metadata.csv is read, with another caption column.
  rmSync(join(dir, "imgs", "metadata.jsonl"));
  writeFileSync(join(dir, "imgs", "metadata.csv"), 'file_name,caption\ngray.png,"gray, halves"\nsub/photo.jpg,a flat photo\n');
  const c = await load(dir, 'folder("imgs", text: "caption")');
  assert.deepEqual(c.train.map((e) => e.text).sort(), ["a flat photo", "gray, halves"]);
  // A named captions file that is not there, and a folder that is not there.
  assert.match(await loadError(dir, 'folder("imgs", captions: "train.jsonl")'), /imgs: no train\.jsonl \(the captions file, with a "file_name" column\)/);
  assert.match(await loadError(dir, 'folder("nowhere")'), /nowhere: no such folder: the data is needed to train/);
});

test("folder: bad rows of metadata.csv and metadata.jsonl, skip and fail", async () => {
  const dir = tempDir();
  mkdirSync(join(dir, "f"));
  for (const n of ["gray.png", "truncated.jpg", "not-an-image.png"]) copyFileSync(join(FIX, n), join(dir, "f", n));
  writeFileSync(join(dir, "f", "metadata.csv"), "file_name,text\ngray.png,fine\nmissing.png,gone\ntruncated.jpg,cut short\nnot-an-image.png,text\ngray.png,\n");
  const d = await load(dir, 'folder("f")');
  assert.deepEqual(d.train.map((e) => e.text), ["fine"]);
  assert.deepEqual(d.problems.map((p) => /metadata\.csv:(\d+): /.exec(p)?.[1]), ["3", "4", "5", "6"]);
  assert.match(d.problems[0]!, /image "missing\.png" not found/);
  assert.match(d.problems[1]!, /truncated\.jpg: JPEG could not be decoded/);
  assert.match(d.problems[2]!, /not-an-image\.png: not a valid PNG file/);
  assert.match(d.problems[3]!, /"text" is empty/);
  assert.match(await loadError(dir, 'folder("f", bad_rows: "fail")'), /metadata\.csv:3: image "missing\.png" not found.*\(and 3 more bad rows\)/);
  rmSync(join(dir, "f", "metadata.csv"));
  writeFileSync(join(dir, "f", "metadata.jsonl"), `{"file_name": "gray.png", "text": "fine"}\n{"file_name": "truncated.jpg", "text": "cut"}\n`);
  const j = await load(dir, 'folder("f")');
  assert.deepEqual(j.problems.map((p) => /metadata\.jsonl:(\d+): /.exec(p)?.[1]), ["2"]);
});

test("captions: bad rows (missing, truncated, not an image, empty caption, unknown character) follow bad_rows", async () => {
  const dir = tempDir();
  for (const n of [...GOOD, ...BAD_FIXTURES]) copyFileSync(join(FIX, n), join(dir, n));
  const rows = [
    { image: "gray.png", caption: "good" },
    { image: "absent.png", caption: "missing" },
    { image: "truncated.png", caption: "truncated" },
    { image: "not-an-image.png", caption: "text" },
    { image: "rgba.png", caption: "  " },
    { image: "palette.png", caption: "Capital" },
    { image: "photo.jpg", caption: "good too" },
  ];
  writeFileSync(join(dir, "pairs.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const d = await load(dir, 'captions("pairs.jsonl")');
  assert.deepEqual(d.train.map((e) => e.text), ["good", "good too"]);
  assert.deepEqual(d.problems.map((p) => /pairs\.jsonl:(\d+): /.exec(p)?.[1]), ["2", "3", "4", "5", "6"]);
  assert.match(d.problems[4]!, /`C`|"C"|C/);
  // Fatal: the first bad row, and how many more.
  const msg = await loadError(dir, 'captions("pairs.jsonl", bad_rows: "fail")');
  assert.match(msg, /pairs\.jsonl:2: .*absent\.png.*\(and 4 more bad rows\)/);
  // Only the unencodable caption: fatal under fail, left out under skip (it used to be always fatal).
  writeFileSync(join(dir, "one.jsonl"), `${JSON.stringify({ image: "gray.png", caption: "ok" })}\n${JSON.stringify({ image: "gray.png", caption: "Nope" })}\n`);
  assert.equal((await load(dir, 'captions("one.jsonl")')).train.length, 1);
  assert.match(await loadError(dir, 'captions("one.jsonl", bad_rows: "fail")'), /one\.jsonl:2: .*tokenizer must cover the data/);
});

test("every fixture kind loads as RGB at the encoder's size under stretch, crop and pad", async () => {
  const dir = tempDir();
  for (const n of GOOD) copyFileSync(join(FIX, n), join(dir, n));
  writeFileSync(join(dir, "all.jsonl"), GOOD.map((n) => JSON.stringify({ image: n, caption: n.replace(/[^a-z]/g, " ") })).join("\n") + "\n");
  const C = FIXTURE_COLOURS;
  for (const mode of ["stretch", "crop", "pad"] as const) {
    const d = await load(dir, 'captions("all.jsonl")', `resize: ${mode}`);
    assert.deepEqual(d.problems, [], mode);
    assert.equal(d.train.length, GOOD.length);
    const px = async (name: string) => d.pixels(d.train.filter((e) => e.image!.endsWith(name)));
    for (const name of GOOD) assert.equal((await px(name)).length, 8 * 8 * 3, `${mode} ${name}`);
    // Square fixtures fill the 8 x 8 input under every policy.
    const gray = await px("gray.png");
    assert.ok(near(at(gray, 0, 4), [C.gray[0], C.gray[0], C.gray[0]], 2) && near(at(gray, 7, 4), [C.gray[1], C.gray[1], C.gray[1]], 2), `${mode} gray ${at(gray, 0, 4)} ${at(gray, 7, 4)}`);
    const rgba = await px("rgba.png");
    assert.ok(near(at(rgba, 0, 4), C.rgbaOpaque, 3), `${mode} rgba opaque ${at(rgba, 0, 4)}`);
    assert.ok(near(at(rgba, 7, 4), [255, 255, 255], 3), `${mode} rgba transparent is white: ${at(rgba, 7, 4)}`);
    const pal = await px("palette.png");
    [at(pal, 0, 0), at(pal, 7, 0), at(pal, 0, 7), at(pal, 7, 7)].forEach((p, q) => assert.ok(near(p, C.palette[q]!, 3), `${mode} palette quadrant ${q}: ${p}`));
    // 7 x 5 and 24 x 16 are not square: pad letterboxes (black rows top and bottom), the others fill.
    const odd = await px("odd-7x5.png");
    const jpg = await px("photo.jpg");
    assert.ok(near(at(odd, 4, 4), C.odd, 3) && near(at(jpg, 4, 4), C.jpeg, 5), `${mode} centre ${at(odd, 4, 4)} ${at(jpg, 4, 4)}`);
    if (mode === "pad") {
      assert.deepEqual(at(odd, 4, 0), [0, 0, 0], "pad: the 7x5 image is letterboxed");
      assert.deepEqual(at(jpg, 4, 0), [0, 0, 0], "pad: the 24x16 image is letterboxed");
    } else {
      assert.ok(near(at(odd, 4, 0), C.odd, 3) && near(at(jpg, 4, 0), C.jpeg, 5), `${mode} fills: ${at(odd, 4, 0)} ${at(jpg, 4, 0)}`);
    }
  }
});

test("the real photos (RGB, grayscale, RGBA, JPEG, odd sizes) load through captions(...) under every resize policy", { skip: !existsSync(join(PHOTOS, "captions.jsonl")) && "no ../shared/data/photos in this checkout" }, async () => {
  const dir = tempDir();
  const data = `captions(${JSON.stringify(join(PHOTOS, "captions.jsonl"))}, bad_rows: "fail")`;
  for (const mode of ["stretch", "crop", "pad"] as const) {
    const d = await load(dir, data, `resize: ${mode}`);
    assert.equal(d.train.length, 8, mode);
    for (const ex of d.train) {
      const px = await d.pixels([ex]);
      assert.equal(px.length, 8 * 8 * 3, `${mode} ${ex.image}`);
      assert.ok(px.every((v) => v >= 0 && v <= 1), `${mode} ${ex.image}: unit range`);
      // The grayscale photos come out with R = G = B.
      if (/(camera|page)\.png$/.test(ex.image!)) for (let i = 0; i < px.length; i += 3) assert.ok(px[i] === px[i + 1] && px[i] === px[i + 2], `${mode} ${ex.image}`);
    }
  }
});

test("the cache: every image decoded once up front, an epoch decodes nothing more, and the cap holds with LRU eviction", async () => {
  const dir = tempDir();
  const ir = irOf(dir, 'shapes(images: 8, size: 8, seed: 1)');
  const tokenizer = CharTokenizer.fromIr(ir.tokenizer!);
  const names = GOOD;
  const rows = names.map((n, i) => ({ key: join(FIX, n), image: join(FIX, n), caption: "an image", file: "x.jsonl", line: i + 1 }));
  const call: IrCall = { kind: "captions", file: "x.jsonl" };
  const ctx = { call, ir, tokenizer, baseDir: dir, split: 0, seed: 1, describe: describeCall(call), maxText: 32, padId: 0, size: { height: 8, width: 8 }, policy: pixelPolicy(ir) };
  const perImage = 8 * 8 * 3;

  const roomy = new DecodedCache(1 << 20);
  const a = await imageCaptionStage(ctx, rows, [], roomy);
  assert.equal(roomy.stats().misses, names.length, "each image decoded once before training");
  const wanted = await a.pixels(a.train);
  await a.pixels(a.train);
  assert.equal(roomy.stats().misses, names.length, "two epochs later, still no second decode");

  // Room for two images: every entry past the cap is evicted, least recently used first.
  const small = new DecodedCache(2 * perImage + perImage / 2);
  const b = await imageCaptionStage(ctx, rows, [], small);
  for (let epoch = 0; epoch < 2; epoch++) {
    const got = await b.pixels(b.train);
    assert.deepEqual(got, wanted, "an evicted image decodes again to the same pixels");
    const s = small.stats();
    assert.ok(s.bytes <= s.capBytes && s.entries <= 2, JSON.stringify(s));
  }
  assert.ok(small.stats().evictions >= names.length, JSON.stringify(small.stats()));
  // The most recently used are the ones kept.
  const last = b.train.slice(-2).map((e) => DecodedCache.key(e.image!, { height: 8, width: 8 }, "stretch"));
  assert.ok(last.every((k) => small.has(k)), "the two last used are cached");
});

test("cache_mb and bad_rows are checked as source arguments", () => {
  const dir = tempDir();
  writeFileSync(join(dir, "m.vlm"), spec('captions("pairs.jsonl", bad_rows: "ignore", cache_mb: -1)'));
  writeFileSync(join(dir, "pairs.jsonl"), "");
  const r = check([join(dir, "m.vlm")]);
  const codes = r.diagnostics.map((d) => d.code);
  assert.ok(codes.length === 2 && codes.every((c) => c.startsWith("E04")), JSON.stringify(r.diagnostics.map((d) => [d.code, d.message])));
});

test("a missing data file is W0504 at check time (the spec still checks), and an error when training starts", async () => {
  const dir = tempDir();
  for (const [data, what] of [
    ['captions("absent.jsonl")', "data file `absent.jsonl`"],
    ['csv("absent.csv")', "data file `absent.csv`"],
    ['folder("absent")', "data folder `absent`"],
  ] as const) {
    writeFileSync(join(dir, "m.vlm"), spec(data));
    const r = check([join(dir, "m.vlm")]);
    assert.ok(r.ok, `${data}: ${JSON.stringify(r.diagnostics.map((d) => d.code))}`);
    const w = r.diagnostics.filter((d) => d.code === "W0504");
    assert.equal(w.length, 1, data);
    assert.equal(w[0]!.severity, "warning");
    assert.equal(w[0]!.message, `${what} not found; \`vlmc train\` will need it`);
  }
  writeFileSync(join(dir, "m.vlm"), spec('captions("absent.jsonl")'));
  const events: string[] = [];
  const res = await train(join(dir, "m.vlm"), { out: join(dir, "run"), onEvent: (e) => events.push(e.type), log: () => {} });
  assert.equal(res.status, "error");
  assert.match((res as { message: string }).message, /absent\.jsonl: no such file: the data file is needed to train/);
  assert.ok(!events.includes("step"), "no step ran");
  assert.ok(res.diagnostics.some((d) => d.code === "W0504"), "the warning is reported with the error");
});
