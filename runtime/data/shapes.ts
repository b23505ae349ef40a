// The `shapes(images, size, seed)` data source: pictures of one or two coloured shapes on a light
// background, with captions such as "a small red circle on the left", generated deterministically
// from the seed. Each example carries its scene (the objects and their attributes), so that other
// tasks (questions about the same pictures) can be generated from it, and renders its pixels
// lazily: an image depends only on (seed, size, its index), never on other examples. Each object's
// colour comes in a shade of its own (darker, paler, tinted; still nearest its name's hue) and each
// image's background in a grey of its own, so that colour is a range rather than a fixed pattern
// of pixel values (see APPEARANCE below); scenes and captions do not depend on these shades.
// Optionally a fraction of the training images is drawn in greyscale with colourless captions (GREY).
//
// Split: three (shape, colour) combinations (HELD_OUT) appear only in validation. The validation
// images are round(images x split) indices picked by a seeded shuffle; of those, the even-ranked
// ones (0, 2, 4, ... in index order) are "novel" and contain at least one held-out combination
// (cycling through the three, so every one appears once there are 3 novel images), and the
// odd-ranked ones are ordinary, drawn exactly as training images are. Training images and ordinary
// validation images never contain a held-out combination.
import { streamSeed, uniform01 } from "../random.js";

export const SHAPES = ["circle", "square", "triangle"] as const;
export const COLOURS = ["red", "green", "blue", "yellow"] as const;
export const SIZES = ["small", "large"] as const;
export const POSITIONS = ["left", "center", "right"] as const;

export type Shape = (typeof SHAPES)[number];
export type Colour = (typeof COLOURS)[number];
export type Size = (typeof SIZES)[number];
export type Position = (typeof POSITIONS)[number];

export interface SceneObject {
  shape: Shape;
  colour: Colour;
  size: Size;
  position: Position;
}

/** The objects of one picture, ordered left to right (no two share a position). */
export interface Scene {
  objects: SceneObject[];
}

export interface Example {
  /** `shapes-<seed>-<index>`. */
  id: string;
  /** The image's index in 0..images-1 (its pixels depend on this, the seed and the size only). */
  index: number;
  split: "train" | "validation";
  /** Validation only: the picture contains a held-out (shape, colour) combination. */
  novel: boolean;
  scene: Scene;
  /** Training only: drawn in greyscale (luminance), and the caption names no colour. */
  grey: boolean;
  caption: string;
  /** Side of the square image in pixels. */
  size: number;
  /** RGB, HWC, size x size x 3 bytes; rendered on each call, byte-identical every time. */
  image(): Uint8Array;
}

export interface ShapesSplit {
  train: Example[];
  validation: Example[];
}

export interface ShapesOptions {
  images: number;
  size: number;
  seed: number;
  /** Fraction of the images in validation (the spec's `train.split`, default 0.1). */
  split?: number;
  /** Fraction of the training images drawn in greyscale with colourless captions (default 0; see GREY). */
  grey?: number;
  /** Which combinations only validation sees (default "pairs"; see HELD_OUT and HELD_OUT_TRIPLES). */
  heldOut?: HeldOutKind;
}

/**
 * What the novel validation images hold that training never shows:
 * - `pairs`: a (shape, colour) pairing (HELD_OUT): green circles, yellow squares, red triangles never
 *   appear in training at any size. For green, circle against square is then a distinction training
 *   never asks for, which makes this a test of systematic generalisation (CLEVR CoGenT's kind).
 * - `triples`: a (size, colour, shape) description (HELD_OUT_TRIPLES), whose every pair is seen:
 *   large green circles never appear in training, but small green circles, large green squares and
 *   large circles of other colours do (novel compositions of seen pairs).
 */
export type HeldOutKind = "pairs" | "triples";
export const HELD_OUT_KINDS: readonly HeldOutKind[] = ["pairs", "triples"];

/** The (shape, colour) combinations seen only in validation: each shape once, three colours. */
export const HELD_OUT: readonly (readonly [Shape, Colour])[] = [
  ["circle", "green"],
  ["square", "yellow"],
  ["triangle", "red"],
];

/** The (size, colour, shape) descriptions seen only in validation under `triples`: one per colour,
 * every shape, both sizes, and no (size, shape) twice but the circles; every pair of their
 * attributes appears in training. */
export const HELD_OUT_TRIPLES: readonly (readonly [Size, Colour, Shape])[] = [
  ["large", "green", "circle"],
  ["small", "yellow", "square"],
  ["large", "red", "triangle"],
  ["small", "blue", "circle"],
];

/** Whether an object is one training never shows (`kind`: default "pairs"). */
export function isHeldOut(o: { shape: Shape; colour: Colour; size?: Size }, kind: HeldOutKind = "pairs"): boolean {
  if (kind === "triples") return HELD_OUT_TRIPLES.some(([z, c, s]) => z === o.size && c === o.colour && s === o.shape);
  return HELD_OUT.some(([s, c]) => s === o.shape && c === o.colour);
}

export const COLOUR_RGB: Record<Colour, readonly [number, number, number]> = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 80, 220],
  yellow: [230, 200, 30],
};
export const BACKGROUND: readonly [number, number, number] = [236, 236, 236];

/**
 * The set's per-channel pixel mean and standard deviation on the [0, 1] scale (measured over the
 * training images of seed 1; the same at 32, 48 and 64 pixels to 3 decimals), for standardising
 * its images as (v / 255 - mean) / std, as CLIP standardises with its data set's statistics. It
 * matters: on [0, 1] pixels the light background is a large constant in every patch, and a small
 * freshly initialised ViT + decoder learns the captions' language prior and ignores the image
 * (examples/shapes/README.md has the measurements).
 */
export const SHAPES_PIXEL_STATS: { mean: readonly [number, number, number]; std: readonly [number, number, number] } = {
  mean: [0.904, 0.902, 0.899],
  std: [0.118, 0.114, 0.129],
};

// Geometry, as fractions of the image side. A slot is a third of the width; an object's
// half-extent (largest at large x (1 + SCALE_JITTER)) plus its offset stays inside its slot, so
// two objects never touch. The jitter is small enough that the slot's centre lies inside every
// object (the triangle's narrowest margin there is 0.447 of its half-extent).
const HALF_EXTENT: Record<Size, number> = { small: 0.085, large: 0.14 };
const SCALE_JITTER = 0.06; // half-extent x [1 - j, 1 + j]
const OFFSET_JITTER = 0.015; // centre offset in [-j, j] in x and y
const NOISE = 6; // per pixel, added to all three channels

// APPEARANCE: how far an object's colour strays from its name's COLOUR_RGB, and the background
// from BACKGROUND. Wide on purpose: with one fixed shade per name, an object's pixels say its
// colour and shape in one entangled pattern, and a model trained without (say) green circles
// reads "green" and names the shape green always came with. Shades (darker, paler, tinted) that
// vary per object make colour a range rather than a point (on the example: 28% of novel images
// right instead of 16%, examples/shapes/README.md). Every shade stays nearest in hue to its own
// name's COLOUR_RGB (the test checks it).
// GREY (`grey` option, default 0): that fraction of the training images (each picked by its own
// seeded draw) is drawn in greyscale, every pixel its luminance, and captioned without colour words
// ("a small circle on the left"). Their shapes come with no colour at all, so shape has to be
// read from the outline rather than guessed from the colour it usually comes with: without them
// a model never trained on green circles reads "green" and names the shape green came with
// (examples/shapes/README.md). Validation images are never grey, and the option changes nothing else.
const COLOUR_JITTER = 20; // per channel, per object, +- this
const BRIGHTNESS: readonly [number, number] = [0.75, 1.1]; // base colour x this
const PALE = 0.3; // then mixed with white by up to this fraction
const BACKGROUND_LEVEL = 12; // grey level of the whole background, +- this
const BACKGROUND_TINT = 5; // per channel, +- this

const slotCentre = (p: Position): number => (POSITIONS.indexOf(p) + 0.5) / 3;

/** The caption of a scene: its objects left to right, joined by "and". */
export function captionOf(scene: Scene, opts: { colour?: boolean } = {}): string {
  const colour = opts.colour ?? true;
  return ordered(scene.objects)
    .map((o) => `a ${o.size} ${colour ? `${o.colour} ` : ""}${o.shape} ${o.position === "center" ? "in the center" : `on the ${o.position}`}`)
    .join(" and ");
}

function ordered(objects: readonly SceneObject[]): SceneObject[] {
  return [...objects].sort((a, b) => POSITIONS.indexOf(a.position) - POSITIONS.indexOf(b.position));
}

interface Placed {
  object: SceneObject;
  cx: number; // fractions of the side
  cy: number;
  r: number;
  rgb: [number, number, number];
}

const ALL_COMBOS = SHAPES.flatMap((shape) => COLOURS.map((colour) => ({ shape, colour })));
const SEEN_COMBOS = ALL_COMBOS.filter((c) => !isHeldOut(c));
const ALL_TRIPLES = ALL_COMBOS.flatMap((c) => SIZES.map((size) => ({ ...c, size })));
const SEEN_TRIPLES = ALL_TRIPLES.filter((t) => !isHeldOut(t, "triples"));

/** The held-out object a novel image is forced to contain, by kind. */
type Forced = { shape: Shape; colour: Colour; size?: Size };
type Role = { kind: "train" } | { kind: "ordinary" } | { kind: "novel"; forced: Forced };

function forcedFor(kind: HeldOutKind, k: number): Forced {
  if (kind === "triples") {
    const [size, colour, shape] = HELD_OUT_TRIPLES[k % HELD_OUT_TRIPLES.length]!;
    return { shape, colour, size };
  }
  const [shape, colour] = HELD_OUT[k % HELD_OUT.length]!;
  return { shape, colour };
}

function pick<T>(u: () => number, xs: readonly T[]): T {
  return xs[Math.min(xs.length - 1, Math.floor(u() * xs.length))]!;
}

/** The scene of image `index` and where its objects go; a function of (seed, index, role) only. */
function layout(seed: number, index: number, role: Role, heldOut: HeldOutKind): Placed[] {
  const u = uniform01(streamSeed(seed, `shapes/scene/${index}`));
  const count = u() < 0.5 ? 1 : 2;
  const free = [...POSITIONS];
  const positions: Position[] = [];
  for (let k = 0; k < count; k++) positions.push(free.splice(Math.floor(u() * free.length) % free.length, 1)[0]!);
  const forcedAt = role.kind === "novel" ? Math.floor(u() * count) % count : -1;
  const placed: Placed[] = positions.map((position, k) => {
    let combo: { shape: Shape; colour: Colour };
    let size: Size;
    if (heldOut === "pairs") {
      // (The draws of the original generator, unchanged: the same seed gives the same set.)
      if (k === forcedAt && role.kind === "novel") combo = { shape: role.forced.shape, colour: role.forced.colour };
      else combo = pick(u, role.kind === "novel" ? ALL_COMBOS : SEEN_COMBOS);
      size = pick(u, SIZES);
    } else {
      const t = k === forcedAt && role.kind === "novel" ? (role.forced as Required<Forced>) : pick(u, role.kind === "novel" ? ALL_TRIPLES : SEEN_TRIPLES);
      combo = { shape: t.shape, colour: t.colour };
      size = t.size;
    }
    const j = (a: number) => (2 * u() - 1) * a;
    const r = HALF_EXTENT[size] * (1 + j(SCALE_JITTER));
    const cx = slotCentre(position) + j(OFFSET_JITTER);
    const cy = 0.5 + j(OFFSET_JITTER);
    // The per-channel jitter draws stay in the scene's stream (so scenes and captions do not
    // depend on the appearance settings); brightness and paleness come from the object's own stream.
    const jitter = [j(1), j(1), j(1)];
    const look = uniform01(streamSeed(seed, `shapes/look/${index}/${k}`));
    const bright = BRIGHTNESS[0] + look() * (BRIGHTNESS[1] - BRIGHTNESS[0]);
    const pale = look() * PALE;
    const rgb = COLOUR_RGB[combo.colour].map((c, ch) =>
      clamp(Math.round((1 - pale) * c * bright + pale * 255 + jitter[ch]! * COLOUR_JITTER)),
    ) as [number, number, number];
    return { object: { shape: combo.shape, colour: combo.colour, size, position }, cx, cy, r, rgb };
  });
  return placed.sort((a, b) => POSITIONS.indexOf(a.object.position) - POSITIONS.indexOf(b.object.position));
}

const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

function inside(shape: Shape, dx: number, dy: number, r: number): boolean {
  switch (shape) {
    case "circle":
      return dx * dx + dy * dy <= r * r;
    case "square":
      return Math.abs(dx) <= 0.9 * r && Math.abs(dy) <= 0.9 * r;
    case "triangle":
      // Apex at (0, -r), base from (-r, r) to (r, r): width at dy is (dy + r) / 2 each side.
      return dy >= -r && dy <= r && Math.abs(dx) <= (dy + r) / 2;
  }
}

/** Renders one image: background with per-pixel noise, then the objects (filled, no outline);
 * `grey`: every pixel replaced by its luminance (Rec. 601 weights) in all three channels. */
function render(seed: number, index: number, size: number, placed: readonly Placed[], grey: boolean): Uint8Array {
  const out = new Uint8Array(size * size * 3);
  const look = uniform01(streamSeed(seed, `shapes/background/${index}`));
  const level = (2 * look() - 1) * BACKGROUND_LEVEL;
  const background = BACKGROUND.map((c) => clamp(Math.round(c + level + (2 * look() - 1) * BACKGROUND_TINT)));
  const noise = uniform01(streamSeed(seed, `shapes/pixels/${index}`));
  for (let y = 0; y < size; y++) {
    const py = (y + 0.5) / size;
    for (let x = 0; x < size; x++) {
      const px = (x + 0.5) / size;
      let rgb: readonly number[] = background;
      for (const p of placed) {
        if (inside(p.object.shape, px - p.cx, py - p.cy, p.r)) rgb = p.rgb;
      }
      const n = Math.round((2 * noise() - 1) * NOISE);
      const o = (y * size + x) * 3;
      out[o] = clamp(rgb[0]! + n);
      out[o + 1] = clamp(rgb[1]! + n);
      out[o + 2] = clamp(rgb[2]! + n);
      if (grey) out[o] = out[o + 1] = out[o + 2] = Math.round(0.299 * out[o]! + 0.587 * out[o + 1]! + 0.114 * out[o + 2]!);
    }
  }
  return out;
}

/** Which indices are validation images: round(images x split) of them, by a seeded shuffle. */
function validationIndices(images: number, split: number, seed: number): number[] {
  const n = Math.min(images, Math.max(0, Math.round(images * split)));
  const order = Array.from({ length: images }, (_, i) => i);
  const u = uniform01(streamSeed(seed, "shapes/split"));
  for (let i = images - 1; i > 0; i--) {
    const k = Math.floor(u() * (i + 1)) % (i + 1);
    [order[i], order[k]] = [order[k]!, order[i]!];
  }
  return order.slice(0, n).sort((a, b) => a - b);
}

/** The data set of `shapes(images, size, seed)`: scenes and captions now, pixels on demand. */
export function generateShapes(opts: ShapesOptions): ShapesSplit {
  const { images, size, seed } = opts;
  const split = opts.split ?? 0.1;
  if (!Number.isInteger(images) || images < 1) throw new RangeError(`shapes: images must be a positive integer, got ${images}`);
  if (!Number.isInteger(size) || size < 8) throw new RangeError(`shapes: size must be an integer >= 8, got ${size}`);
  if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`shapes: seed must be a non-negative integer, got ${seed}`);
  if (!(split >= 0 && split < 1)) throw new RangeError(`shapes: split must be in [0, 1), got ${split}`);
  const greyFraction = opts.grey ?? 0;
  if (!(greyFraction >= 0 && greyFraction <= 1)) throw new RangeError(`shapes: grey must be in [0, 1], got ${greyFraction}`);

  const heldOut = opts.heldOut ?? "pairs";
  if (!HELD_OUT_KINDS.includes(heldOut)) throw new RangeError(`shapes: heldOut must be one of ${HELD_OUT_KINDS.join(", ")}, got ${heldOut}`);
  const rank = new Map(validationIndices(images, split, seed).map((index, k) => [index, k]));
  const train: Example[] = [];
  const validation: Example[] = [];
  for (let index = 0; index < images; index++) {
    const k = rank.get(index);
    const role: Role =
      k === undefined ? { kind: "train" } : k % 2 === 0 ? { kind: "novel", forced: forcedFor(heldOut, k / 2) } : { kind: "ordinary" };
    const placed = layout(seed, index, role, heldOut);
    const scene: Scene = { objects: placed.map((p) => ({ ...p.object })) };
    // Its own stream, drawn for every image, so `grey` changes which images are grey and nothing else.
    const grey = k === undefined && uniform01(streamSeed(seed, `shapes/grey/${index}`))() < greyFraction;
    const example: Example = {
      id: `shapes-${seed}-${index}`,
      index,
      split: k === undefined ? "train" : "validation",
      novel: role.kind === "novel",
      scene,
      grey,
      caption: captionOf(scene, { colour: !grey }),
      size,
      image: () => render(seed, index, size, placed, grey),
    };
    (k === undefined ? train : validation).push(example);
  }
  return { train, validation };
}

/** The majority-caption baseline: the most frequent training caption (ties: the first in code
 * point order) and how often it is exactly the validation caption. */
export function majorityBaseline(data: ShapesSplit): { caption: string; matches: number; total: number; rate: number } {
  const counts = new Map<string, number>();
  // Grey images' colourless captions can never be a validation caption: they do not count.
  for (const e of data.train) if (!e.grey) counts.set(e.caption, (counts.get(e.caption) ?? 0) + 1);
  let caption = "";
  let best = -1;
  for (const [c, n] of counts) if (n > best || (n === best && c < caption)) [caption, best] = [c, n];
  const matches = data.validation.filter((e) => e.caption === caption).length;
  const total = data.validation.length;
  return { caption, matches, total, rate: total === 0 ? 0 : matches / total };
}

/** The characters the captions use, sorted (for a `chars` tokenizer's alphabet). */
export function alphabetOf(examples: readonly Example[]): string {
  const set = new Set<string>();
  for (const e of examples) for (const ch of e.caption) set.add(ch);
  return [...set].sort().join("");
}
