// Data for training: the split by image, the seeded epoch order, padded batches with loss masks,
// and resuming from a DataPosition.
import { test } from "node:test";
import assert from "node:assert/strict";
import { advance, BatchStream, epochOrder, makeBatch, takeBatch, type DataPosition } from "../runtime/data/batches.js";
import { splitByImage } from "../runtime/data/split.js";
import { Rng } from "../tools/random.js";

// --- split ---------------------------------------------------------------------------------

/** Items with 1-3 captions per image. */
function items(images: number, seed = 1): { image: string; caption: string }[] {
  const rng = new Rng(seed);
  const out: { image: string; caption: string }[] = [];
  for (let i = 0; i < images; i++) for (let c = rng.int(1, 3); c > 0; c--) out.push({ image: `img/${i}.png`, caption: `caption ${c}` });
  return rng.shuffle(out);
}

const imagesOf = (xs: { image: string }[], idx: number[]) => new Set(idx.map((i) => xs[i]!.image));

test("split: every item on exactly one side, no image in both", () => {
  const xs = items(300);
  const s = splitByImage(xs, 0.2, 7);
  assert.deepEqual([...s.train, ...s.validation].sort((a, b) => a - b), xs.map((_, i) => i));
  const tr = imagesOf(xs, s.train);
  const va = imagesOf(xs, s.validation);
  assert.ok([...va].every((im) => !tr.has(im)));
  assert.equal(tr.size, s.trainImages);
  assert.equal(va.size, s.validationImages);
  assert.equal(tr.size + va.size, 300);
});

test("split: deterministic, independent of item order, and seed-dependent", () => {
  const xs = items(200);
  const a = splitByImage(xs, 0.25, 3);
  assert.deepEqual(splitByImage(xs, 0.25, 3), a);
  const reversed = xs.slice().reverse();
  const b = splitByImage(reversed, 0.25, 3);
  assert.deepEqual(imagesOf(reversed, b.validation), imagesOf(xs, a.validation));
  const c = splitByImage(xs, 0.25, 4);
  assert.notDeepEqual(imagesOf(xs, c.validation), imagesOf(xs, a.validation));
});

test("split: adding images does not move the others", () => {
  const xs = items(500);
  const more = [...xs, ...items(600, 2).filter((it) => Number(it.image.match(/\d+/)![0]) >= 500)];
  const a = splitByImage(xs, 0.1, 11);
  const b = splitByImage(more, 0.1, 11);
  const va = imagesOf(xs, a.validation);
  const vb = imagesOf(more, b.validation);
  for (const it of xs) assert.equal(vb.has(it.image), va.has(it.image), it.image);
  assert.ok(b.validationImages > a.validationImages);
});

test("split: the fraction holds within tolerance on 1,000 images", () => {
  const xs = Array.from({ length: 1000 }, (_, i) => ({ image: `photos/${i.toString(36)}.jpg` }));
  for (const [fraction, seed] of [[0.1, 0], [0.2, 1], [0.5, 2], [0.05, 3]] as const) {
    const s = splitByImage(xs, fraction, seed);
    // Binomial(1000, f): within 4 standard deviations.
    const sd = Math.sqrt(1000 * fraction * (1 - fraction));
    assert.ok(Math.abs(s.validationImages - 1000 * fraction) < 4 * sd, `fraction ${fraction}: ${s.validationImages}`);
  }
});

test("split: with >= 2 images each side gets one; fraction 0 holds none out; bad fractions throw", () => {
  const two = [{ image: "a" }, { image: "a" }, { image: "b" }];
  for (let seed = 0; seed < 20; seed++) {
    for (const f of [0.001, 0.5, 0.999]) {
      const s = splitByImage(two, f, seed);
      assert.equal(s.trainImages, 1);
      assert.equal(s.validationImages, 1);
    }
  }
  const none = splitByImage(items(50), 0, 1);
  assert.equal(none.validation.length, 0);
  assert.deepEqual(splitByImage([{ image: "x" }], 0.5, 0).train.length + splitByImage([{ image: "x" }], 0.5, 0).validation.length, 1);
  assert.deepEqual(splitByImage([], 0.5, 0), { train: [], validation: [], trainImages: 0, validationImages: 0 });
  for (const f of [-0.1, 1, 1.5, NaN]) assert.throws(() => splitByImage(two, f, 0), RangeError);
});

// --- epoch order -----------------------------------------------------------------------------

test("epochOrder: a permutation, a pure function of (n, seed, epoch)", () => {
  for (const n of [0, 1, 2, 7, 1000]) {
    const p = epochOrder(n, 5, 0);
    assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
  }
  assert.deepEqual(epochOrder(1000, 5, 3), epochOrder(1000, 5, 3));
  assert.notDeepEqual(epochOrder(1000, 5, 3), epochOrder(1000, 5, 4));
  assert.notDeepEqual(epochOrder(1000, 5, 3), epochOrder(1000, 6, 3));
  assert.notDeepEqual(epochOrder(1000, 5, 0), Int32Array.from({ length: 1000 }, (_, i) => i));
});

// --- batches ---------------------------------------------------------------------------------

const PAD = 0;
const BOS = 1;
const EOS = 2;
/** bos, `len` characters (ids 3..), eos. */
const example = (len: number, start = 3) => Int32Array.from([BOS, ...Array.from({ length: len }, (_, i) => start + (i % 20)), EOS]);

test("makeBatch: inputs ids[:-1], targets ids[1:], padded; the mask covers exactly the real targets", () => {
  const ex = [example(3), example(0), example(5)];
  const b = makeBatch(ex, [0, 1, 2], { maxText: 100, padId: PAD });
  assert.equal(b.B, 3);
  assert.equal(b.T, 6);
  assert.equal(b.truncated, 0);
  const row = (a: ArrayLike<number>, r: number) => Array.from(a).slice(r * b.T, (r + 1) * b.T);
  assert.deepEqual(row(b.tokens, 0), [BOS, 3, 4, 5, PAD, PAD]);
  assert.deepEqual(row(b.targets, 0), [3, 4, 5, EOS, PAD, PAD]);
  assert.deepEqual(row(b.mask, 0), [1, 1, 1, 1, 0, 0]);
  assert.deepEqual(row(b.tokens, 1), [BOS, PAD, PAD, PAD, PAD, PAD]);
  assert.deepEqual(row(b.targets, 1), [EOS, PAD, PAD, PAD, PAD, PAD]);
  assert.deepEqual(row(b.mask, 1), [1, 0, 0, 0, 0, 0]);
  assert.deepEqual(row(b.mask, 2), [1, 1, 1, 1, 1, 1]);
  assert.equal(b.count, 4 + 1 + 6);
});

test("makeBatch: random batches: mask count = sum of (len-1) after truncation, padding never counted", () => {
  const rng = new Rng(42);
  const ex = Array.from({ length: 60 }, () => (rng.chance(0.1) ? Int32Array.from(rng.chance(0.5) ? [] : [BOS]) : example(rng.int(0, 40))));
  for (let trial = 0; trial < 50; trial++) {
    const maxText = rng.int(1, 45);
    const idx = Array.from({ length: rng.int(1, 16) }, () => rng.int(0, ex.length - 1));
    const b = makeBatch(ex, idx, { maxText, padId: PAD });
    const lens = idx.map((i) => Math.max(0, ex[i]!.length - 1));
    const want = lens.reduce((s, l) => s + Math.min(l, maxText), 0);
    assert.equal(b.mask.reduce((s, m) => s + m, 0), want);
    assert.equal(b.count, want);
    assert.equal(b.truncated, lens.filter((l) => l > maxText).length);
    assert.equal(b.T, Math.max(1, Math.min(maxText, Math.max(...lens))));
    assert.equal(b.tokens.length, idx.length * b.T);
    idx.forEach((i, r) => {
      const ids = ex[i]!;
      const real = Math.min(Math.max(0, ids.length - 1), maxText);
      for (let t = 0; t < b.T; t++) {
        const k = r * b.T + t;
        if (t < real) {
          assert.equal(b.mask[k], 1);
          assert.equal(b.tokens[k], ids[t]);
          assert.equal(b.targets[k], ids[t + 1]);
        } else {
          assert.equal(b.mask[k], 0);
          assert.equal(b.targets[k], PAD);
          assert.equal(b.tokens[k], PAD);
        }
      }
    });
  }
});

test("makeBatch: truncation keeps the first maxText positions", () => {
  const b = makeBatch([example(10), example(2)], [0, 1], { maxText: 4, padId: PAD });
  assert.equal(b.T, 4);
  assert.equal(b.truncated, 1);
  assert.deepEqual([...b.tokens.subarray(0, 4)], [BOS, 3, 4, 5]);
  assert.deepEqual([...b.targets.subarray(0, 4)], [3, 4, 5, 6]);
  assert.deepEqual([...b.mask], [1, 1, 1, 1, 1, 1, 1, 0]);
  assert.throws(() => makeBatch([example(1)], [1], { maxText: 4, padId: PAD }), RangeError);
  assert.throws(() => makeBatch([example(1)], [0], { maxText: 0, padId: PAD }), RangeError);
});

// --- positions and resuming -------------------------------------------------------------------

test("advance and takeBatch walk epochs; the last partial batch is kept or dropped", () => {
  assert.deepEqual(advance({ epoch: 0, offset: 0 }, 10, 4), { epoch: 0, offset: 4 });
  assert.deepEqual(advance({ epoch: 0, offset: 8 }, 10, 4), { epoch: 1, offset: 0 });
  assert.deepEqual(advance({ epoch: 0, offset: 4 }, 10, 4, { dropLast: true }), { epoch: 1, offset: 0 });
  const sizes: number[] = [];
  let pos: DataPosition = { epoch: 0, offset: 0 };
  const seen: number[] = [];
  while (pos.epoch === 0) {
    const t = takeBatch(10, 9, pos, 4);
    sizes.push(t.indices.length);
    seen.push(...t.indices);
    pos = t.next;
  }
  assert.deepEqual(sizes, [4, 4, 2]);
  assert.deepEqual(seen, [...epochOrder(10, 9, 0)]);
  assert.deepEqual(takeBatch(10, 9, { epoch: 0, offset: 8 }, 4, { dropLast: true }).at, { epoch: 1, offset: 0 });
  assert.throws(() => takeBatch(3, 0, { epoch: 0, offset: 0 }, 4, { dropLast: true }), RangeError);
  assert.throws(() => takeBatch(0, 0, { epoch: 0, offset: 0 }, 4), RangeError);
});

test("a stream resumed from any saved DataPosition yields exactly the remaining batches", () => {
  const ex = Array.from({ length: 23 }, (_, i) => example(i % 7));
  for (const dropLast of [false, true]) {
    const full = new BatchStream(ex.length, 1234, 5, { dropLast });
    const want: { indices: number[]; position: DataPosition; batch: ReturnType<typeof makeBatch> }[] = [];
    for (let i = 0; i < 20; i++) {
      const position = full.position;
      const { indices } = full.next();
      want.push({ indices: [...indices], position, batch: makeBatch(ex, indices, { maxText: 8, padId: PAD }) });
    }
    assert.ok(want.some((w) => w.position.epoch >= 3));
    for (let stop = 0; stop < want.length; stop++) {
      // Save the position as a checkpoint would (JSON), resume from it.
      const saved = JSON.parse(JSON.stringify(want[stop]!.position)) as DataPosition;
      const resumed = new BatchStream(ex.length, 1234, 5, { dropLast, position: saved });
      for (let i = stop; i < want.length; i++) {
        const { indices } = resumed.next();
        assert.deepEqual([...indices], want[i]!.indices);
        assert.deepEqual(makeBatch(ex, indices, { maxText: 8, padId: PAD }), want[i]!.batch);
      }
    }
    // Each epoch covers every example once (dropLast: all but the remainder).
    const epoch1 = want.filter((w) => w.position.epoch === 1).flatMap((w) => w.indices);
    assert.equal(new Set(epoch1).size, epoch1.length);
    assert.equal(epoch1.length, dropLast ? 20 : 23);
  }
});
