// The generated `shapes(images, size, seed)` data set (runtime/data/shapes.ts): determinism,
// counts, the held-out split, captions that say exactly what the scene holds, and pixels that
// show it.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  alphabetOf,
  BACKGROUND,
  captionOf,
  COLOUR_RGB,
  COLOURS,
  generateShapes,
  HELD_OUT,
  HELD_OUT_TRIPLES,
  isHeldOut,
  majorityBaseline,
  POSITIONS,
  SHAPES,
  SIZES,
  type Example,
  type Scene,
} from "../runtime/data/shapes.js";

const data = generateShapes({ images: 2000, size: 64, seed: 0 });
const all = [...data.train, ...data.validation];

/** The caption, written independently of captionOf. */
function expectedCaption(scene: Scene): string {
  const where = { left: "on the left", center: "in the center", right: "on the right" } as const;
  const order = { left: 0, center: 1, right: 2 } as const;
  const objs = [...scene.objects].sort((a, b) => order[a.position] - order[b.position]);
  return objs.map((o) => ["a", o.size, o.colour, o.shape, where[o.position]].join(" ")).join(" and ");
}

test("the same seed gives the same captions and image bytes; another seed differs", () => {
  const again = generateShapes({ images: 2000, size: 64, seed: 0 });
  assert.deepEqual(again.train.map((e) => e.caption), data.train.map((e) => e.caption));
  assert.deepEqual(again.validation.map((e) => e.id), data.validation.map((e) => e.id));
  for (const i of [0, 1, 17, 500, 1799]) assert.deepEqual(again.train[i]!.image(), data.train[i]!.image());
  for (const i of [0, 5, 199]) assert.deepEqual(again.validation[i]!.image(), data.validation[i]!.image());
  // Rendering twice gives the same bytes, and order of rendering does not matter.
  const e = data.train[3]!;
  const first = e.image();
  data.train[4]!.image();
  assert.deepEqual(e.image(), first);

  const other = generateShapes({ images: 2000, size: 64, seed: 1 });
  const otherCaps = [...other.train, ...other.validation].sort((a, b) => a.index - b.index).map((x) => x.caption);
  const caps = [...all].sort((a, b) => a.index - b.index).map((x) => x.caption);
  assert.notDeepEqual(otherCaps, caps);
  assert.notDeepEqual(other.train[0]!.image(), data.train[0]!.image());
});

test("an image does not depend on the number of images or on the others", () => {
  // A training image of both sets: its scene and pixels come from (seed, index, size) alone.
  const small = generateShapes({ images: 50, size: 64, seed: 0, split: 0 });
  const e = data.train.find((x) => x.index < 50)!;
  assert.deepEqual(small.train[e.index]!.image(), e.image());
  assert.equal(small.train[e.index]!.caption, e.caption);
});

test("counts: round(images x split) validation images, half of them novel; ids unique", () => {
  assert.equal(data.train.length + data.validation.length, 2000);
  assert.equal(data.validation.length, 200);
  assert.equal(data.validation.filter((e) => e.novel).length, 100);
  assert.equal(new Set(all.map((e) => e.id)).size, 2000);
  assert.deepEqual([...all.map((e) => e.index)].sort((a, b) => a - b), Array.from({ length: 2000 }, (_, i) => i));
  assert.ok(data.train.every((e) => e.split === "train" && !e.novel));
  assert.ok(data.validation.every((e) => e.split === "validation"));
  const s = generateShapes({ images: 10, size: 32, seed: 3, split: 0.5 });
  assert.equal(s.validation.length, 5);
  assert.equal(generateShapes({ images: 10, size: 32, seed: 3, split: 0 }).validation.length, 0);
  assert.throws(() => generateShapes({ images: 0, size: 64, seed: 0 }), RangeError);
});

test("held_out: triples: no held-out description in training, every pair of one is; novel images hold one", () => {
  const t = generateShapes({ images: 2000, size: 32, seed: 0, heldOut: "triples" });
  const objs = (es: readonly Example[]) => es.flatMap((e) => e.scene.objects);
  const heldOut = (o: { size: string; colour: string; shape: string }) => HELD_OUT_TRIPLES.some(([z, c, s]) => o.size === z && o.colour === c && o.shape === s);
  assert.ok(!objs(t.train).some(heldOut));
  for (const [size, colour, shape] of HELD_OUT_TRIPLES) {
    const name = `${size} ${colour} ${shape}`;
    assert.ok(objs(t.train).some((o) => o.colour === colour && o.shape === shape && o.size !== size), `${name}: its colour and shape at the other size`);
    assert.ok(objs(t.train).some((o) => o.size === size && o.shape === shape && o.colour !== colour), `${name}: its size and shape in another colour`);
    assert.ok(objs(t.train).some((o) => o.size === size && o.colour === colour && o.shape !== shape), `${name}: its size and colour as another shape`);
    assert.ok(objs(t.validation.filter((e) => e.novel)).some((o) => o.size === size && o.colour === colour && o.shape === shape), `${name} in validation`);
  }
  for (const e of t.validation) assert.equal(e.scene.objects.some((o) => isHeldOut(o, "triples")), e.novel, `${e.id}: ${e.caption}`);
  // Unlike `pairs`, every (shape, colour) pairing is in training.
  for (const [shape, colour] of HELD_OUT) assert.ok(objs(t.train).some((o) => o.shape === shape && o.colour === colour), `${colour} ${shape}`);
  assert.throws(() => generateShapes({ images: 10, size: 32, seed: 0, heldOut: "quads" as never }), /heldOut must be one of pairs, triples/);
});

test("held-out combinations: never in train, each in validation; novel images hold one, ordinary none", () => {
  for (const e of data.train) assert.ok(!e.scene.objects.some((o) => isHeldOut(o)), `${e.id}: ${e.caption}`);
  for (const [shape, colour] of HELD_OUT) {
    assert.ok(data.validation.some((e) => e.scene.objects.some((o) => o.shape === shape && o.colour === colour)), `${colour} ${shape}`);
  }
  for (const e of data.validation) assert.equal(e.scene.objects.some((o) => isHeldOut(o)), e.novel, `${e.id}: ${e.caption}`);
  // With just three validation images and two novel, the cycle still starts at the first combination.
  const tiny = generateShapes({ images: 12, size: 32, seed: 5, split: 0.5 });
  assert.equal(tiny.validation.filter((e) => e.novel).length, 3);
  for (const [shape, colour] of HELD_OUT) assert.ok(tiny.validation.some((e) => e.scene.objects.some((o) => o.shape === shape && o.colour === colour)));
  // Training still sees every shape, colour, size and position.
  for (const [key, values] of [["shape", SHAPES], ["colour", COLOURS], ["size", SIZES], ["position", POSITIONS]] as const) {
    for (const v of values) assert.ok(data.train.some((e) => e.scene.objects.some((o) => o[key] === v)), `${key} ${v}`);
  }
});

test("scenes: one or two objects on distinct positions, left to right; captions say exactly that", () => {
  let ones = 0;
  for (const e of all) {
    const objs = e.scene.objects;
    assert.ok(objs.length === 1 || objs.length === 2, e.id);
    if (objs.length === 1) ones++;
    assert.equal(new Set(objs.map((o) => o.position)).size, objs.length, e.id);
    const idx = objs.map((o) => POSITIONS.indexOf(o.position));
    assert.deepEqual(idx, [...idx].sort((a, b) => a - b), e.id);
    assert.equal(e.caption, expectedCaption(e.scene));
    assert.equal(e.caption, captionOf(e.scene));
    assert.match(e.caption, /^[a-z ]+$/);
  }
  assert.ok(ones > 800 && ones < 1200, `${ones} single-object images`);
  assert.equal(data.train.find((e) => e.scene.objects.length === 1)!.caption.split(" and ").length, 1);
  assert.equal(
    expectedCaption({ objects: [{ shape: "square", colour: "blue", size: "large", position: "right" }, { shape: "circle", colour: "red", size: "small", position: "left" }] }),
    "a small red circle on the left and a large blue square on the right",
  );
  assert.equal(
    captionOf({ objects: [{ shape: "square", colour: "blue", size: "large", position: "right" }, { shape: "circle", colour: "red", size: "small", position: "left" }] }),
    "a small red circle on the left and a large blue square on the right",
  );
});

function pixel(img: Uint8Array, size: number, x: number, y: number): [number, number, number] {
  const o = (Math.floor(y) * size + Math.floor(x)) * 3;
  return [img[o]!, img[o + 1]!, img[o + 2]!];
}

function near(got: readonly number[], want: readonly number[], tol: number): boolean {
  return got.every((v, i) => Math.abs(v - want[i]!) <= tol);
}

/** Hue in degrees [0, 360) of an RGB colour. */
function hue([r, g, b]: readonly number[]): number {
  const max = Math.max(r!, g!, b!);
  const d = max - Math.min(r!, g!, b!);
  if (d === 0) return 0;
  const h = max === r ? ((g! - b!) / d) % 6 : max === g ? (b! - r!) / d + 2 : (r! - g!) / d + 4;
  return (h * 60 + 360) % 360;
}

const hueGap = (a: number, b: number) => Math.min(Math.abs(a - b), 360 - Math.abs(a - b));

/** The colour name whose COLOUR_RGB hue is nearest (shades vary in brightness and paleness, not in hue). */
function nearestName(rgb: readonly number[]): string {
  return [...COLOURS].sort((a, b) => hueGap(hue(rgb), hue(COLOUR_RGB[a])) - hueGap(hue(rgb), hue(COLOUR_RGB[b])))[0]!;
}

function checkPixels(e: Example, tol = 24): void {
  const size = e.size;
  const img = e.image();
  assert.equal(img.length, size * size * 3);
  // The background's shade varies per image (within tol of BACKGROUND); a corner shows it.
  const background = pixel(img, size, 1, 1);
  assert.ok(near(background, BACKGROUND, tol), `${e.id}: background ${background}`);
  const same = 13; // two background pixels differ by per-pixel noise alone (+-6 each)
  const taken = new Set(e.scene.objects.map((o) => o.position));
  for (const [k, position] of POSITIONS.entries()) {
    const got = pixel(img, size, ((k + 0.5) * size) / 3, size / 2);
    const obj = e.scene.objects.find((o) => o.position === position);
    if (obj) {
      // An object's shade is its own, but it is still its colour: nearest in hue, far from the background.
      assert.equal(nearestName(got), obj.colour, `${e.id} (${e.caption}) at the ${position} slot: ${got}`);
      assert.ok(!near(got, background, 40), `${e.id} (${e.caption}) at the ${position} slot: ${got} looks like the background`);
    }
    if (!taken.has(position)) assert.ok(near(got, background, same), `${e.id} at the ${position} slot: ${got} vs ${background}`);
  }
  // Top and bottom bands and the corners are background.
  for (const [x, y] of [[1, 1], [size - 2, 1], [1, size - 2], [size - 2, size - 2], [size / 2, 2], [size / 6, size - 3], [(5 * size) / 6, 2]] as const) {
    assert.ok(near(pixel(img, size, x, y), background, same), `${e.id} at (${x}, ${y})`);
  }
}

test("pixels: each slot's centre has its object's colour or the image's background; the edges are background", () => {
  for (const e of all) checkPixels(e);
  for (const seed of [1, 2]) for (const size of [32, 96]) for (const e of [...generateShapes({ images: 100, size, seed }).train]) checkPixels(e);
});

test("appearance varies: every colour comes in darker and paler shades, the background in several greys", () => {
  const shades: Record<string, number[]> = {};
  const greys: number[] = [];
  for (const e of data.train.slice(0, 600)) {
    const img = e.image();
    greys.push(pixel(img, e.size, 1, 1).reduce((a, b) => a + b, 0) / 3);
    for (const o of e.scene.objects) {
      const k = POSITIONS.indexOf(o.position);
      (shades[o.colour] ??= []).push(pixel(img, e.size, ((k + 0.5) * e.size) / 3, e.size / 2).reduce((a, b) => a + b, 0) / 3);
    }
  }
  const spread = (xs: number[]) => Math.max(...xs) - Math.min(...xs);
  // Brightness x [0.75, 1.1] and up to 30% white: the mean channel of one colour spans tens of levels.
  for (const colour of COLOURS) assert.ok(spread(shades[colour]!) > 40, `${colour}: ${spread(shades[colour]!)}`);
  assert.ok(spread(greys) > 12, `background greys span ${spread(greys)}`);
});

test("objects are drawn: a large object covers more pixels than a small one of its shape", () => {
  const counts: Record<string, number[]> = {};
  for (const e of data.train.slice(0, 400)) {
    if (e.scene.objects.length !== 1) continue;
    const o = e.scene.objects[0]!;
    const img = e.image();
    let n = 0;
    for (let i = 0; i < img.length; i += 3) if (!near([img[i]!, img[i + 1]!, img[i + 2]!], BACKGROUND, 24)) n++;
    (counts[`${o.shape} ${o.size}`] ??= []).push(n);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  for (const shape of SHAPES) {
    const s = mean(counts[`${shape} small`]!);
    const l = mean(counts[`${shape} large`]!);
    assert.ok(s > 30 && l > 1.8 * s, `${shape}: small ${s}, large ${l}`);
  }
});

test("majority-caption baseline is small; the alphabet is lowercase letters and space", () => {
  const b = majorityBaseline(data);
  assert.equal(b.total, 200);
  assert.ok(b.rate < 0.1, `${b.rate}`);
  assert.ok(data.train.some((e) => e.caption === b.caption));
  const alphabet = alphabetOf(all);
  assert.match(alphabet, /^ [a-z]+$/);
  assert.equal(alphabet, [...new Set(alphabet)].sort().join(""));
  for (const ch of "acdeghilnoqrstuwy ") assert.ok(alphabet.includes(ch), ch);
});

test("grey: that fraction of training images in greyscale, captions without colour; validation unchanged", () => {
  const grey = generateShapes({ images: 2000, size: 64, seed: 0, grey: 0.3 });
  // The default draws no grey images and is exactly the set without the option.
  assert.ok(data.train.every((e) => !e.grey));
  assert.deepEqual(generateShapes({ images: 2000, size: 64, seed: 0, grey: 0 }).train.map((e) => e.caption), data.train.map((e) => e.caption));
  const n = grey.train.filter((e) => e.grey).length;
  assert.ok(n > 0.25 * 1800 && n < 0.35 * 1800, `${n} grey of 1800`);
  assert.ok(grey.validation.every((e) => !e.grey));
  assert.deepEqual(grey.validation.map((e) => e.caption), data.validation.map((e) => e.caption));
  for (const i of [0, 7, 150]) assert.deepEqual(grey.validation[i]!.image(), data.validation[i]!.image());
  let checked = 0;
  for (let i = 0; i < grey.train.length && checked < 20; i++) {
    const g = grey.train[i]!;
    const c = data.train[i]!;
    assert.deepEqual(g.scene, c.scene); // the same scene, only drawn and told differently
    if (!g.grey) {
      assert.equal(g.caption, c.caption);
      continue;
    }
    checked++;
    assert.equal(g.caption, expectedCaption(g.scene).split(" ").filter((w) => !(COLOURS as readonly string[]).includes(w)).join(" "));
    for (const colour of COLOURS) assert.ok(!g.caption.includes(colour), g.caption);
    const gp = g.image();
    const cp = c.image();
    for (let p = 0; p < gp.length; p += 3) {
      const y = Math.round(0.299 * cp[p]! + 0.587 * cp[p + 1]! + 0.114 * cp[p + 2]!);
      assert.ok(gp[p] === y && gp[p + 1] === y && gp[p + 2] === y, `${g.id} pixel ${p / 3}`);
    }
  }
  assert.equal(checked, 20);
  assert.throws(() => generateShapes({ images: 10, size: 64, seed: 0, grey: 1.5 }), /grey must be in \[0, 1\]/);
});
