// The `mnist(train, validation, seed)` data source (runtime/data/mnist.ts, its loader in
// runtime/data/sources/mnist.ts) and the mnist example: the split is deterministic and never puts
// a sample on both sides, labels and pixels are the package's (checked through the package's own
// `set`/`toNumber` API, not the `raw` arrays the module reads), images are 28 x 28 RGB bytes as
// the encoder's `pixels` turn them into numbers at its size, the per-digit breakdown counts right,
// every bundled example spec passes `vlmc check`, and a tiny run trains and evaluates end to end.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile, renderText, type Ir, type IrCall } from "../compiler/index.js";
import { DIGIT_WORDS, MNIST_PIXEL_STATS, MNIST_SIDE, digitOfId, mnistDigits, mnistSplit, perDigit, perDigitTable } from "../runtime/data/mnist.js";
import { DataError } from "../runtime/data/sources/common.js";
import { loadMnist } from "../runtime/data/sources/mnist.js";
import { CharTokenizer } from "../runtime/tokenizer.js";
import { runVlmc } from "./helpers/cli.js";
import { repoPath } from "./helpers/paths.js";

interface PackageDigit {
  length: number;
  set(start: number, end: number): { input: number[]; output: number[] }[];
}
const pkg = createRequire(import.meta.url)("mnist") as PackageDigit[] & { toNumber(output: number[]): number };
const TOTAL = pkg.slice(0, 10).reduce((a, d) => a + d.length, 0);
const data = mnistSplit({ train: 8000, validation: 2000, seed: 1 });

test("the split is deterministic, another seed gives another one", () => {
  const again = mnistSplit({ train: 8000, validation: 2000, seed: 1 });
  assert.deepEqual(again.train.map((e) => e.id), data.train.map((e) => e.id));
  assert.deepEqual(again.validation.map((e) => e.id), data.validation.map((e) => e.id));
  for (const i of [0, 1, 999, 7999]) assert.deepEqual(again.train[i]!.image(), data.train[i]!.image());
  const other = mnistSplit({ train: 8000, validation: 2000, seed: 2 });
  assert.notDeepEqual(other.validation.map((e) => e.id), data.validation.map((e) => e.id));
  // Shuffled, not in the package's order: the first N of a side are a sample of every digit.
  assert.equal(new Set(data.validation.slice(0, 100).map((e) => e.digit)).size, 10);
});

test("no sample is on both sides; the sizes are as asked; validation does not depend on `train`", () => {
  assert.equal(TOTAL, 10_000);
  assert.equal(data.train.length, 8000);
  assert.equal(data.validation.length, 2000);
  const trainIds = new Set(data.train.map((e) => e.id));
  assert.equal(trainIds.size, 8000);
  assert.equal(new Set(data.validation.map((e) => e.id)).size, 2000);
  assert.ok(data.validation.every((e) => !trainIds.has(e.id)));
  assert.ok(data.train.every((e) => e.split === "train") && data.validation.every((e) => e.split === "validation"));
  // 8000 + 2000 is the whole package: every sample of every digit, once.
  const all = [...data.train, ...data.validation];
  for (let d = 0; d < 10; d++) {
    const idx = all.filter((e) => e.digit === d).map((e) => e.index).sort((a, b) => a - b);
    assert.deepEqual(idx, Array.from({ length: pkg[d]!.length }, (_, i) => i), `digit ${d}`);
  }
  const fewer = mnistSplit({ train: 500, validation: 2000, seed: 1 });
  assert.deepEqual(fewer.validation.map((e) => e.id), data.validation.map((e) => e.id));
  assert.deepEqual(fewer.train.map((e) => e.id), data.train.slice(0, 500).map((e) => e.id));
  assert.throws(() => mnistSplit({ train: 8001, validation: 2000, seed: 1 }), (err: Error) => err instanceof RangeError && /8001 training \+ 2000 validation digits is more than the 10000/.test(err.message));
});

test("labels and pixels are the package's, as 28 x 28 RGB bytes with R = G = B", () => {
  const picks = [...data.train.slice(0, 40), ...data.validation.slice(0, 40)];
  for (const e of picks) {
    const [sample] = pkg[e.digit]!.set(e.index, e.index);
    assert.equal(pkg.toNumber(sample!.output), e.digit, e.id);
    assert.equal(e.caption, DIGIT_WORDS[e.digit]);
    assert.equal(digitOfId(e.id), e.digit);
    const px = e.image();
    assert.ok(px instanceof Uint8Array);
    assert.equal(px.length, MNIST_SIDE * MNIST_SIDE * 3);
    for (let i = 0; i < MNIST_SIDE * MNIST_SIDE; i++) {
      assert.ok(px[3 * i] === px[3 * i + 1] && px[3 * i] === px[3 * i + 2], `${e.id} pixel ${i} is not grey`);
      // The package's values are bytes / 255 to 3 decimals.
      assert.ok(Math.abs(px[3 * i]! / 255 - sample!.input[i]!) <= 0.0006, `${e.id} pixel ${i}: ${px[3 * i]} vs ${sample!.input[i]}`);
    }
  }
  // White strokes on black: the corners are background, and every image reaches (near) full white.
  for (const e of picks) {
    const px = e.image();
    assert.equal(px[0], 0);
    assert.ok(Math.max(...px) >= 250, e.id);
  }
  assert.deepEqual(DIGIT_WORDS.map((w, d) => [d, w]), [[0, "zero"], [1, "one"], [2, "two"], [3, "three"], [4, "four"], [5, "five"], [6, "six"], [7, "seven"], [8, "eight"], [9, "nine"]]);
  assert.equal(mnistDigits().counts.length, 10);
});

test("MNIST_PIXEL_STATS are the training digits' statistics", () => {
  let sum = 0;
  let sq = 0;
  let n = 0;
  for (const e of data.train) {
    const px = e.image();
    for (let i = 0; i < px.length; i += 3) {
      const v = px[i]! / 255;
      sum += v;
      sq += v * v;
      n++;
    }
  }
  const mean = sum / n;
  const std = Math.sqrt(sq / n - mean * mean);
  for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(MNIST_PIXEL_STATS.mean[c] - mean) < 5e-4, `mean ${mean}`);
    assert.ok(Math.abs(MNIST_PIXEL_STATS.std[c] - std) < 5e-4, `std ${std}`);
  }
});

const EXAMPLE = repoPath("examples", "mnist", "mnist.vlm");

/** The example spec with its encoder's image side replaced (and the patch to match). */
function exampleIr(side = 28, normalize?: string): Ir {
  let text = readFileSync(EXAMPLE, "utf8").replace(/image: 28 x 28 x 3/, `image: ${side} x ${side} x 3`);
  if (side !== 28) text = text.replace(/patch: \d+/, `patch: ${side / 4}`);
  if (normalize) text = text.replace(/normalize: stats\([^)]*\)/, `normalize: ${normalize}`);
  const r = compile(EXAMPLE, { text });
  assert.ok(r.ir, renderText(r.diagnostics, r.sources, { color: false }));
  return r.ir;
}

async function load(ir: Ir, call: Partial<IrCall> = {}, tokenizer = CharTokenizer.fromIr(ir.tokenizer!)) {
  const enc = ir.modules.encoder!;
  return loadMnist({
    call: { kind: "mnist", train: 30, validation: 10, seed: 1, ...call } as IrCall,
    ir,
    tokenizer,
    baseDir: ".",
    split: 0.1,
    seed: 0,
    describe: "mnist(...)",
    maxText: 8,
    padId: 0,
    size: { height: enc.input[1] as number, width: enc.input[2] as number },
    policy: enc.pixels!,
  });
}

test("the loader: captions as token ids, pixels standardised at the encoder's size", async () => {
  const ir = exampleIr();
  const tok = CharTokenizer.fromIr(ir.tokenizer!);
  const d = await load(ir);
  const ref = mnistSplit({ train: 30, validation: 10, seed: 1 });
  assert.deepEqual(d.train.map((e) => e.image), ref.train.map((e) => e.id));
  assert.deepEqual(d.validation.map((e) => e.image), ref.validation.map((e) => e.id));
  for (const e of d.train) assert.equal(tok.decode(Array.from(e.ids)), e.text);
  assert.deepEqual(d.imageSize, { height: 28, width: 28 });
  const px = await d.pixels(d.train.slice(0, 2));
  assert.equal(px.length, 2 * 28 * 28 * 3);
  const raw = ref.train[1]!.image();
  const [m, s] = [MNIST_PIXEL_STATS.mean[0], MNIST_PIXEL_STATS.std[0]];
  for (const i of [0, 100, 400, 2351]) assert.ok(Math.abs(px[28 * 28 * 3 + i]! - (raw[i]! / 255 - m) / s) < 1e-5);
  assert.ok(Math.abs(px[0]! - -m / s) < 1e-6, "background is (0 - mean) / std");

  // At 56 pixels (the encoder's `resize`, here stretch): twice the side, the same digit.
  const big = await load(exampleIr(56, "unit"));
  const bpx = await big.pixels(big.train.slice(1, 2));
  assert.equal(bpx.length, 56 * 56 * 3);
  // Each 2 x 2 block's mean is near the original pixel (a Lanczos resize, so not exactly).
  let err = 0;
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const at = (yy: number, xx: number) => bpx[(yy * 56 + xx) * 3]!;
      const block = (at(2 * y, 2 * x) + at(2 * y + 1, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x + 1)) / 4;
      err += Math.abs(block - raw[(y * 28 + x) * 3]! / 255);
    }
  }
  assert.ok(err / (28 * 28) < 0.05, `mean |resized - original| ${err / (28 * 28)}`);

  // Too many digits, or a tokenizer without the digit words' letters: one-line data errors.
  await assert.rejects(load(ir, { train: 9000, validation: 2000 }), (e: Error) => e instanceof DataError && /more than the 10000/.test(e.message));
  await assert.rejects(load(ir, {}, new CharTokenizer({ alphabet: "efghinorstuvwx", specials: ["pad", "bos", "eos"] })), (e: Error) => e instanceof DataError && /"zero"/.test(e.message) && !e.message.includes("\n"));
});

test("perDigit counts per digit from the scored ids and the mistakes", () => {
  const ids = ["mnist-7-1", "mnist-7-2", "mnist-7-3", "mnist-1-0", "mnist-0-5"];
  const rows = perDigit(ids, [
    { id: "mnist-7-2", prediction: "one" },
    { id: "mnist-7-3", prediction: "one" },
    { id: "mnist-0-5", prediction: "six" },
  ]);
  assert.equal(rows.length, 10);
  assert.deepEqual({ ...rows[7]!, confusions: rows[7]!.confusions }, { digit: 7, word: "seven", correct: 1, count: 3, rate: 1 / 3, confusions: [{ prediction: "one", count: 2 }] });
  assert.deepEqual([rows[1]!.correct, rows[1]!.count, rows[0]!.correct, rows[0]!.count, rows[5]!.count], [1, 1, 0, 1, 0]);
  const table = perDigitTable(rows);
  assert.match(table, /^\| 7 \(seven\) \| 1\/3 = 33\.3% \| "one" x2 \|$/m);
  assert.match(table, /^\| all \| 2\/5 = 40\.0% \| \|$/m);
  assert.throws(() => perDigit(["shapes-1-2"], []), /not an mnist example id/);
});

test("every bundled example spec passes vlmc check", () => {
  const specs = readdirSync(repoPath("examples"), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .flatMap((d) => readdirSync(repoPath("examples", d.name)).filter((f) => f.endsWith(".vlm")).map((f) => repoPath("examples", d.name, f)));
  assert.ok(specs.includes(EXAMPLE), specs.join(", "));
  const r = runVlmc(["check", ...specs]);
  assert.equal(r.code, 0, r.stderr);
  // Warnings may be (a spec whose data lives outside a user's clone); errors may not.
  assert.doesNotMatch(r.stderr, /^error/m);
  assert.equal(runVlmc(["check", EXAMPLE]).stderr, "", "the mnist example needs nothing outside the repository");
});

test("a tiny mnist run trains and evaluates end to end", (ctx) => {
  const out = mkdtempSync(join(tmpdir(), "vlmc-mnist-"));
  ctx.after(() => rmSync(out, { recursive: true, force: true }));
  const set = ["train.data=mnist(train: 16, validation: 8, seed: 3)", "train.batch=8", "train.align.steps=1", "train.tune.epochs=0", "train.tune.steps=1", "train.tune.schedule=constant"];
  const t = runVlmc(["train", EXAMPLE, "--out", out, "--backend", "wasm", "--quiet", ...set.flatMap((s) => ["--set", s])]);
  assert.equal(t.code, 0, t.stderr);
  const r = runVlmc(["eval", out, "--backend", "wasm", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { data: string; examples: number; mistakes: { id: string; reference: string }[] };
  assert.equal(doc.data, "mnist(train: 16, validation: 8, seed: 3)");
  assert.equal(doc.examples, 8);
  const validation = new Map(mnistSplit({ train: 16, validation: 8, seed: 3 }).validation.map((e) => [e.id, e.caption]));
  // After one step nearly every caption is wrong: each mistake names a validation digit and its word.
  assert.ok(doc.mistakes.length > 0);
  for (const m of doc.mistakes) assert.equal(m.reference, validation.get(m.id));
});
