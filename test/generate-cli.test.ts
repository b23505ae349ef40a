// `vlmc generate` end to end, on run folders made by hand (test/helpers/generate-run.ts): the
// captions of several images in one call equal each image's caption alone (greedy and sampled
// with a seed), and equal the uncached reference decoding of the pixels the training pipeline
// makes of the same files (so the run's resize and normalisation policy is the one applied); a
// prompt continues after bos; `--explain` writes one heat map per image; the heat map's
// geometry under each resize policy; attention rollout against a hand computation.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { initBackend, type Tf } from "../runtime/backend.js";
import { generate } from "../runtime/generate.js";
import { rollout, renderHeatMap, visualGrid, colour } from "../runtime/generate/explain.js";
import { argmax, distribution, resolveSampling, sampleToken } from "../runtime/generate/sample.js";
import { Model } from "../runtime/model.js";
import { readRun } from "../runtime/eval/run.js";
import { captionImages } from "../runtime/generate/run.js";
import { loadStageData } from "../runtime/train/data.js";
import { loadWeightsFile } from "../runtime/weights.js";
import { runVlmc } from "./helpers/cli.js";
import { generateSpec, makeGenerateRun, tokenizer, writePicture, compileSpec } from "./helpers/generate-run.js";

const dir = mkdtempSync(join(tmpdir(), "vlmc-generate-"));
after(() => rmSync(dir, { recursive: true, force: true }));

let tf: Tf;
const run = join(dir, "run");
const ir = makeGenerateRun(run, generateSpec({ resize: "crop" }));
const pictures = [join(dir, "wide.png"), join(dir, "tall.jpg"), join(dir, "square.png")];
before(async () => {
  tf = (await initBackend("wasm", { log: () => {} })).tf;
  await writePicture(pictures[0]!, 40, 20, 1);
  await writePicture(pictures[1]!, 18, 30, 2);
  await writePicture(pictures[2]!, 16, 16, 3);
});

interface GenerateJson {
  model: string;
  prompt: string | null;
  sampling: { temperature: number; top_k: number; top_p: number; seed: number | null };
  captions: { image: string; text: string; tokens: number; stop: string; attention_map?: string }[];
}

function generateJson(args: string[]): GenerateJson {
  const r = runVlmc(["generate", "--run", run, "--backend", "wasm", "--format", "json", ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as GenerateJson;
}

test("sampling: the distribution a draw is made from, computed by hand", () => {
  const row = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
  const close = (got: number[], want: number[]) => got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) < 1e-6, `${got} against ${want}`));
  let d = distribution(row, resolveSampling({ temperature: 1 }));
  assert.deepEqual(d.ids, [0, 1, 2, 3]);
  close(d.probs, [0.5, 0.3, 0.15, 0.05]);
  // top_p 0.8: 0.5 + 0.3 reaches it; renormalised to 0.625 / 0.375.
  d = distribution(row, resolveSampling({ topP: 0.8 }));
  assert.deepEqual(d.ids, [0, 1]);
  close(d.probs, [0.625, 0.375]);
  // top_k 3 then temperature 2: p ~ sqrt(p) over the three kept.
  d = distribution(row, resolveSampling({ topK: 3, temperature: 2 }));
  const s = Math.sqrt(0.5) + Math.sqrt(0.3) + Math.sqrt(0.15);
  close(d.probs, [Math.sqrt(0.5) / s, Math.sqrt(0.3) / s, Math.sqrt(0.15) / s]);
  // The inverse CDF: u below 0.625 picks 0, above it 1.
  const p = resolveSampling({ topP: 0.8 });
  assert.equal(sampleToken(row, p, 0.6249), 0);
  assert.equal(sampleToken(row, p, 0.6251), 1);
  assert.equal(sampleToken(row, p, 0.9999999), 1);
  // Greedy unless asked; ties go to the lowest id.
  assert.deepEqual(resolveSampling({}), { temperature: 0, topK: 0, topP: 1 });
  assert.equal(argmax([1, 3, 3, 2]), 1);
  assert.throws(() => resolveSampling({ topP: 0 }), /top_p must be in \(0, 1\]/);
  assert.throws(() => resolveSampling({ temperature: -1 }), /temperature must be a number >= 0/);
});

test("several images in one call: each caption is the image's caption alone, greedy and sampled", async () => {
  // In this process (a vlmc process costs seconds to start): captionImages is what the command runs.
  const files = readRun(run);
  for (const sampling of [{}, { temperature: 1.2, topK: 6, seed: 9 }]) {
    const all = await captionImages(tf, files, pictures, { batch: 3, sampling });
    assert.equal(all.captions.length, 3);
    const texts = all.captions.map((c) => c.text);
    for (let i = 0; i < 3; i++) {
      const alone = await captionImages(tf, files, [pictures[i]!], { sampling });
      assert.equal(alone.captions[0]!.text, texts[i], `${pictures[i]} ${JSON.stringify(sampling)}`);
      assert.equal(all.captions[i]!.image, pictures[i]);
    }
    // Batches of 2 (the last one partial) give the same again.
    assert.deepEqual((await captionImages(tf, files, pictures, { batch: 2, sampling })).captions.map((c) => c.text), texts);
  }
});

test("the captions are the uncached decoding of the pixels training makes of the same files", async () => {
  // The training pipeline's pixels: a captions file naming the pictures (runtime/train/data.ts).
  const captions = join(dir, "captions.jsonl");
  writeFileSync(captions, pictures.map((p) => JSON.stringify({ image: p, caption: "abc" })).join("\n") + "\n");
  const data = await loadStageData({ kind: "captions", file: captions, image: "image", text: "caption" }, ir, tokenizer, { baseDir: dir, split: 0, seed: 0 });
  const examples = [...data.train, ...data.validation].sort((a, b) => pictures.indexOf(a.image!) - pictures.indexOf(b.image!));
  assert.equal(examples.length, 3);
  const pixels = await data.pixels(examples);
  // The reference model is disposed before captionImages builds its own (tfjs variable names are global).
  const model = Model.create(tf, ir, 0);
  let want;
  let ref;
  try {
    loadWeightsFile(model, join(run, "weights.safetensors"), null, () => {});
    const images = tf.tensor4d(pixels, [3, 16, 16, 3]);
    want = await generate(model, images, { prompt: [tokenizer.bos!], eos: tokenizer.eos, pad: 0, cache: false });
    images.dispose();
    const one = tf.tensor4d(pixels.slice(0, 768), [1, 16, 16, 3]);
    const enc = tokenizer.encode("ab c", { bos: false, eos: false });
    assert.ok(enc.ok);
    ref = await generate(model, one, { prompt: [tokenizer.bos!, ...enc.ids], eos: tokenizer.eos, maxTokens: 5, cache: false });
    one.dispose();
  } finally {
    model.dispose();
  }
  const got = await captionImages(tf, readRun(run), pictures);
  assert.deepEqual(got.captions.map((c) => c.text), want.ids.map((ids) => tokenizer.decode(ids)));
  assert.deepEqual(got.captions.map((c) => c.stop), want.ended.map((e) => (e ? "eos" : "length")));
  assert.ok(new Set(got.captions.map((c) => c.text)).size > 1, "the pictures get different captions");
  // A prompt is text after bos; the caption continues it.
  const prompted = await captionImages(tf, readRun(run), [pictures[0]!], { prompt: "ab c", maxTokens: 5 });
  assert.equal(prompted.prompt, "ab c");
  assert.equal(prompted.captions[0]!.text, tokenizer.decode(ref.ids[0]!));
  assert.ok(prompted.captions[0]!.tokens <= 5);
});

test("text output: one caption per line, after the path and a tab when there are several", async () => {
  const one = runVlmc(["generate", "--run", run, "--image", pictures[0]!, "--backend", "wasm"]);
  assert.equal(one.code, 0, one.stderr);
  const text = (await captionImages(tf, readRun(run), [pictures[0]!])).captions[0]!.text;
  assert.equal(one.stdout, `${text}\n`);
  assert.match(one.stderr, /^backend: wasm/m);
  const many = runVlmc(["generate", "--run", run, "--image", pictures[0]!, pictures[2]!, "--backend", "wasm"]);
  assert.equal(many.code, 0, many.stderr);
  const lines = many.stdout.split("\n");
  assert.equal(lines.length, 3);
  assert.equal(lines[0], `${pictures[0]}\t${text}`);
  assert.ok(lines[1]!.startsWith(`${pictures[2]}\t`));
});

test("--explain writes one heat map per image, the picture's shape, into --out-dir", async () => {
  const out = join(dir, "maps");
  const j = generateJson(["--image", ...pictures, "--explain", "--out-dir", out, "--temperature", "0.8", "--seed", "4"]);
  assert.equal(j.model, "gen");
  assert.deepEqual(j.sampling, { temperature: 0.8, top_k: 0, top_p: 1, seed: 4 });
  const plain = await captionImages(tf, readRun(run), pictures, { sampling: { temperature: 0.8, seed: 4 } });
  assert.deepEqual(j.captions.map((c) => c.text), plain.captions.map((c) => c.text));
  assert.deepEqual(j.captions.map((c) => c.stop), plain.captions.map((c) => c.stop));
  const sizes = [[256, 128], [154, 256], [256, 256]]; // the long side enlarged to 256
  for (let i = 0; i < 3; i++) {
    const file = j.captions[i]!.attention_map!;
    assert.ok(file.endsWith(["wide", "tall", "square"][i] + ".attention.png"), file);
    const meta = await sharp(file).metadata();
    assert.equal(meta.format, "png");
    assert.deepEqual([meta.width, meta.height], sizes[i]);
  }
  // Without --explain, --out-dir is a mistake.
  const r = runVlmc(["generate", "--run", run, "--image", pictures[0]!, "--out-dir", out]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--out-dir is where --explain writes/);
  assert.ok(existsSync(out));
});

/** The colour of a PNG's pixel. */
async function pixel(png: Uint8Array, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const o = (y * info.width + x) * info.channels;
  return [data[o]!, data[o + 1]!, data[o + 2]!];
}

test("heat map geometry: the hot patch lands on the part of the picture the model saw there", async () => {
  // A 2 x 2 grid over a 16 x 16 frame; the top-left patch is hot, the rest cold. A white picture
  // of 64 x 32 (wide): the overlay colour shows through (alpha 0.75 hot, 0.35 cold).
  const grid = visualGrid(compileSpec(dir, generateSpec()));
  assert.ok(grid.ok && grid.how === "patches" && grid.rows === 2 && grid.cols === 2);
  const white = { width: 64, height: 32, channels: 3 as const, data: new Uint8Array(64 * 32 * 3).fill(255) };
  const hot = colour(1).map((c) => Math.round(c * 0.75 + 255 * 0.25));
  const cold = colour(0).map((c) => Math.round(c * 0.35 + 255 * 0.65));
  const near = (got: number[], want: number[], what: string) => assert.ok(got.every((g, i) => Math.abs(g - want[i]!) <= 3), `${what}: ${got} against ${want}`);
  // Output 256 x 128. stretch: the top-left quarter of the picture is hot.
  let png = await renderHeatMap({ image: white, grid, weights: [1, 0, 0, 0], resize: "stretch" });
  near(await pixel(png, 10, 10), hot, "stretch, top left");
  near(await pixel(png, 120, 60), hot, "stretch, just inside");
  near(await pixel(png, 136, 60), cold, "stretch, right of the hot patch");
  near(await pixel(png, 120, 70), cold, "stretch, below it");
  // crop: the model saw the centre 32 x 32 (output x 64..192, all rows); its top-left quarter is
  // x 64..128, y 0..64; outside the seen part the picture is untouched (white).
  png = await renderHeatMap({ image: white, grid, weights: [1, 0, 0, 0], resize: "crop" });
  near(await pixel(png, 30, 30), [255, 255, 255], "crop, unseen left part");
  near(await pixel(png, 70, 30), hot, "crop, top left of the seen part");
  near(await pixel(png, 134, 30), cold, "crop, right of it");
  near(await pixel(png, 70, 70), cold, "crop, below it");
  // pad: the picture fills the frame's middle rows 4..12; the top patch row (frame rows 0..8)
  // covers its top half: output rows 0..64, and the left half of the columns.
  png = await renderHeatMap({ image: white, grid, weights: [1, 0, 0, 0], resize: "pad" });
  near(await pixel(png, 10, 10), hot, "pad, top left");
  near(await pixel(png, 120, 60), hot, "pad, still the top half");
  near(await pixel(png, 120, 70), cold, "pad, bottom half");
  near(await pixel(png, 136, 10), cold, "pad, right half");
});

test("attention rollout: (A + I) / 2 multiplied through the layers, by hand", () => {
  // Two tokens, two layers. A1 = [[0.5, 0.5], [0, 1]] -> A1' = [[0.75, 0.25], [0, 1]];
  // A2 = [[0, 1], [1, 0]] -> A2' = [[0.5, 0.5], [0.5, 0.5]]; R = A2' A1' = [[0.375, 0.625], [0.375, 0.625]].
  const r = rollout([Float32Array.from([0.5, 0.5, 0, 1]), Float32Array.from([0, 1, 1, 0])], 2);
  assert.deepEqual(Array.from(r), [0.375, 0.625, 0.375, 0.625]);
  assert.deepEqual(Array.from(rollout([], 2)), [1, 0, 0, 1]);
  // A CLS encoder: the map comes from rollout; without an attention layer there is none.
  const cls = visualGrid(compileSpec(dir, generateSpec({ output: "cls" })));
  assert.ok(cls.ok && cls.how === "rollout-cls" && cls.cls);
});

test("--explain on a CLS encoder: rollout maps, captions unchanged", async () => {
  const clsRun = join(dir, "cls-run");
  makeGenerateRun(clsRun, generateSpec({ output: "cls" }), 5);
  const out = join(dir, "cls-maps");
  const files = readRun(clsRun);
  const r = await captionImages(tf, files, [pictures[0]!, pictures[1]!], { explainDir: out });
  assert.equal(r.explainNote, null);
  assert.deepEqual(r.captions.map((c) => c.attentionMap), [join(out, "wide.attention.png"), join(out, "tall.attention.png")]);
  assert.ok(existsSync(join(out, "tall.attention.png")));
  const plain = await captionImages(tf, files, [pictures[0]!, pictures[1]!]);
  assert.deepEqual(plain.captions.map((c) => c.text), r.captions.map((c) => c.text));
});
