// An encoder's `normalize` and `resize` settings, from the spec to the numbers the model sees:
// what they lower to in the IR (and that the IR reader checks them and still takes documents
// from before they existed), and the data pipeline's pixels under each of them, computed here
// independently from the source bytes. Wrong values are diagnostic fixtures
// (test/fixtures/diagnostics/E0406-*, E0402-normalize-std-not-positive, E0405-wrong-pixel-setting-name).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { compile } from "../compiler/compile.js";
import { renderText } from "../compiler/diagnostics/render-text.js";
import type { Ir } from "../compiler/ir/types.js";
import { parseIr, validateIr } from "../compiler/ir/validate.js";
import { irToJson, irToYaml } from "../compiler/ir/yaml.js";
import { generateShapes, SHAPES_PIXEL_STATS } from "../runtime/data/shapes.js";
import { CharTokenizer } from "../runtime/tokenizer.js";
import { loadStageData, pixelPolicy } from "../runtime/train/data.js";
import { repoPath } from "./helpers/paths.js";

const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const CLIP = { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] };

/** A small captioning spec whose encoder has the extra settings `pixels` (e.g. "normalize: clip"). */
function spec(pixels: string, opts: { preset?: string; data?: string } = {}): string {
  const encoder =
    opts.preset === "none"
      ? `encoder { image: 16 x 16 x 3, ${pixels} patch_embed(patch: 8, dim: 16) }`
      : `encoder ${opts.preset ?? "vit"} { image: 16 x 16 x 3, patch: 8, dim: 16, heads: 2, blocks: 1${pixels ? `, ${pixels}` : ""} }`;
  return `vlm 0.1
model m {
  tokenizer chars { alphabet: "abcdefghijklmnopqrstuvwxyz ", specials: [pad, bos, eos] }
  ${encoder}
  projector { linear(decoder.dim) }
  decoder gpt { dim: 16, heads: 2, layers: 1, context: 96 }
}
train {
  data: ${opts.data ?? "shapes(images: 40, size: 16, seed: 3)"}
  batch: 8
  stage all { train: [encoder, projector, decoder], optimizer: adam(lr: 1e-3), steps: 2 }
}
`;
}

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "vlmc-pixels-"));
  dirs.push(d);
  return d;
}

function irOf(text: string, dir = tempDir()): Ir {
  const path = join(dir, "m.vlm");
  writeFileSync(path, text);
  const r = compile(path, { baseDir: dir });
  assert.ok(r.ir, renderText(r.diagnostics, r.sources, { color: false }));
  return r.ir;
}

const close = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

test("normalize and resize lower to the encoder's pixels, with the numbers written out", () => {
  const plain = irOf(spec(""));
  assert.deepEqual(plain.modules.encoder!.pixels, { normalize: "unit", mean: [0, 0, 0], std: [1, 1, 1], resize: "stretch" });
  assert.equal(plain.modules.projector!.pixels, undefined);
  const cases: [string, Record<string, unknown>][] = [
    ["normalize: imagenet", { normalize: "imagenet", ...IMAGENET, resize: "stretch" }],
    ["normalize: clip, resize: crop", { normalize: "clip", ...CLIP, resize: "crop" }],
    ["normalize: stats(mean: [0.5, 0.25, 0.125], std: [0.5, 2, 1e-3]), resize: pad", { normalize: "stats", mean: [0.5, 0.25, 0.125], std: [0.5, 2, 1e-3], resize: "pad" }],
    // Positional arguments, and the default written out.
    ["normalize: stats([0.1, 0.2, 0.3], [1, 1, 1])", { normalize: "stats", mean: [0.1, 0.2, 0.3], std: [1, 1, 1], resize: "stretch" }],
    ["normalize: unit, resize: stretch", { normalize: "unit", mean: [0, 0, 0], std: [1, 1, 1], resize: "stretch" }],
  ];
  for (const preset of ["vit", "siglip", "none"]) {
    for (const [written, want] of cases) {
      const ir = irOf(spec(written, { preset }));
      assert.deepEqual(ir.modules.encoder!.pixels, want, `${preset}: ${written}`);
      // Pixels prepare the input and shape no weight: the architecture's hash ignores them.
      assert.equal(ir.hash, irOf(spec("", { preset })).hash, `${preset}: ${written}`);
    }
  }
});

test("a hand-written encoder of one channel takes `unit` and one-value `stats`", () => {
  const gray = (pixels: string) => `vlm 0.1
model g {
  tokenizer chars { alphabet: "0123456789", specials: [pad] }
  encoder { image: 28 x 28 x 1, ${pixels} patch_embed(patch: 7, dim: 32) }
  projector { linear(decoder.dim) }
  decoder gpt { dim: 32, heads: 2, layers: 1, context: 32 }
}
`;
  assert.deepEqual(irOf(gray("")).modules.encoder!.pixels, { normalize: "unit", mean: [0], std: [1], resize: "stretch" });
  assert.deepEqual(irOf(gray("normalize: stats(mean: [0.13], std: [0.31]), resize: pad")).modules.encoder!.pixels, { normalize: "stats", mean: [0.13], std: [0.31], resize: "pad" });
});

test("the IR keeps the pixels through JSON and YAML, and checks them when read back", () => {
  const ir = irOf(spec("normalize: stats(mean: [0.901, 0.899, 0.898], std: [0.133, 0.125, 0.141]), resize: crop"));
  for (const [name, text] of [["m.json", irToJson(ir)], ["m.yaml", irToYaml(ir)]] as const) {
    const back = parseIr(name, text);
    assert.deepEqual(back.diagnostics, [], name);
    assert.deepEqual(back.ir!.modules.encoder!.pixels, ir.modules.encoder!.pixels, name);
  }
  const codes = (doc: Ir) => validateIr(JSON.parse(JSON.stringify(doc))).map((d) => `${d.code}: ${d.message}`);
  const edit = (f: (d: Ir) => void): Ir => {
    const d = JSON.parse(JSON.stringify(ir)) as Ir;
    f(d);
    return d;
  };
  // A document from before `pixels` existed is valid, and means [0, 1] values, stretched.
  const old = edit((d) => delete d.modules.encoder!.pixels);
  assert.deepEqual(codes(old), []);
  assert.deepEqual(pixelPolicy(old), { normalize: "unit", mean: [0, 0, 0], std: [1, 1, 1], resize: "stretch" });
  const rejected: [string, (d: Ir) => void, RegExp][] = [
    ["two means for three channels", (d) => d.modules.encoder!.pixels!.mean.pop(), /`pixels.mean` has 2 values for an image of 3 channels/],
    ["a zero std", (d) => (d.modules.encoder!.pixels!.std[1] = 0), /E0601/],
    ["an unknown policy", (d) => ((d.modules.encoder!.pixels as { resize: string }).resize = "squash"), /E0601/],
    ["imagenet with other numbers", (d) => (d.modules.encoder!.pixels!.normalize = "imagenet"), /says `imagenet`, but its mean and std are not imagenet's/],
    ["pixels on the projector", (d) => (d.modules.projector!.pixels = { ...d.modules.encoder!.pixels! }), /the projector has `pixels`: only the encoder takes images/],
  ];
  for (const [what, f, want] of rejected) {
    const got = codes(edit(f));
    assert.ok(got.length > 0 && got.every((c) => c.startsWith("E0601")), `${what}: ${got.join("; ")}`);
    assert.ok(got.some((c) => want.test(c)), `${what}: ${got.join("; ")}`);
  }
});

test("the shapes example standardises by the set's own statistics", () => {
  const r = compile(repoPath("examples", "shapes", "shapes.vlm"));
  assert.ok(r.ir, renderText(r.diagnostics, r.sources, { color: false }));
  const p = r.ir.modules.encoder!.pixels!;
  assert.equal(p.normalize, "stats");
  assert.deepEqual(p.mean, [...SHAPES_PIXEL_STATS.mean]);
  assert.deepEqual(p.std, [...SHAPES_PIXEL_STATS.std]);
});

test("shapes pixels: [0, 1] by default, (v / 255 - mean) / std under stats, clip or imagenet", async () => {
  const bytes = generateShapes({ images: 40, size: 16, seed: 3, split: 0.25 }).train.slice(0, 2).map((e) => e.image());
  for (const [written, stats] of [
    ["", { mean: [0, 0, 0], std: [1, 1, 1] }],
    ["normalize: stats(mean: [0.901, 0.899, 0.898], std: [0.133, 0.125, 0.141])", { mean: [0.901, 0.899, 0.898], std: [0.133, 0.125, 0.141] }],
    ["normalize: clip", CLIP],
    ["normalize: imagenet", IMAGENET],
  ] as const) {
    const ir = irOf(spec(written));
    const d = await loadStageData(ir.train!.data, ir, CharTokenizer.fromIr(ir.tokenizer!), { baseDir: ".", split: 0.25, seed: 1 });
    const px = await d.pixels(d.train.slice(0, 2));
    assert.equal(px.length, 2 * 16 * 16 * 3);
    const want = bytes.flatMap((b) => Array.from(b, (v, i) => (v / 255 - stats.mean[i % 3]!) / stats.std[i % 3]!));
    for (let i = 0; i < px.length; i++) assert.ok(Math.abs(px[i]! - want[i]!) <= 1e-6 * Math.max(1, Math.abs(want[i]!)), `${written || "unit"}: value ${i}: ${px[i]} vs ${want[i]}`);
    // `unit` is exactly the float32 of v / 255.
    if (written === "") assert.ok(close([...px], bytes.flatMap((b) => Array.from(b, (v) => Math.fround(v / 255)))));
  }
});

test("captions pixels follow `resize`: stretch, crop (centre) and pad (black letterbox), then normalise", async () => {
  // A 32 x 16 picture in three vertical bands: green (x < 8), red (8..23), blue (x >= 24).
  const dir = tempDir();
  const [W, H] = [32, 16];
  const raw = Buffer.alloc(W * H * 3);
  const band = (x: number) => (x < 8 ? [0, 255, 0] : x < 24 ? [255, 0, 0] : [0, 0, 255]);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) raw.set(band(x), (y * W + x) * 3);
  await sharp(raw, { raw: { width: W, height: H, channels: 3 } }).png().toFile(join(dir, "bands.png"));
  writeFileSync(join(dir, "pairs.jsonl"), `${JSON.stringify({ image: "bands.png", caption: "three bands" })}\n` + `${JSON.stringify({ image: "bands.png", caption: "the same bands" })}\n`);
  const data = 'captions("pairs.jsonl")';
  const at = (px: Float32Array, x: number, y: number) => [0, 1, 2].map((c) => px[(y * 16 + x) * 3 + c]!);
  const norm = (rgb: number[], s: { mean: number[]; std: number[] }) => rgb.map((v, c) => (v / 255 - s.mean[c]!) / s.std[c]!);
  const near = (a: number[], b: number[], tol: number) => a.every((x, i) => Math.abs(x - b[i]!) <= tol);
  const pixelsOf = async (written: string) => {
    const ir = irOf(spec(written, { data }), dir);
    const d = await loadStageData(ir.train!.data, ir, CharTokenizer.fromIr(ir.tokenizer!), { baseDir: dir, split: 0.5, seed: 1 });
    return d.pixels([...d.train, ...d.validation].slice(0, 1));
  };
  // stretch: the 32 columns squeeze into 16, so the left edge is green.
  const stretch = await pixelsOf("resize: stretch, normalize: imagenet");
  assert.ok(near(at(stretch, 0, 8), norm([0, 255, 0], IMAGENET), 0.05), `stretch left: ${at(stretch, 0, 8)}`);
  assert.ok(near(at(stretch, 15, 8), norm([0, 0, 255], IMAGENET), 0.05), `stretch right: ${at(stretch, 15, 8)}`);
  // crop: already 16 high, so the middle 16 columns are kept as they are: all red.
  const crop = await pixelsOf("resize: crop, normalize: imagenet");
  for (const x of [0, 7, 15]) assert.ok(near(at(crop, x, 8), norm([255, 0, 0], IMAGENET), 1e-5), `crop x ${x}: ${at(crop, x, 8)}`);
  // pad: fitted to 16 x 8 and centred, rows 0-3 and 12-15 black, which `unit` keeps at 0.
  const pad = await pixelsOf("resize: pad");
  assert.deepEqual(at(pad, 8, 0), [0, 0, 0]);
  assert.deepEqual(at(pad, 8, 15), [0, 0, 0]);
  assert.ok(near(at(pad, 8, 8), [1, 0, 0], 0.05), `pad centre: ${at(pad, 8, 8)}`);
  const padClip = await pixelsOf("resize: pad, normalize: clip");
  assert.ok(near(at(padClip, 8, 0), norm([0, 0, 0], CLIP), 1e-5), `pad + clip border: ${at(padClip, 8, 0)}`);
});
