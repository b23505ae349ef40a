// The train/validation split, by image: every item (image, caption) of one image lands on the same
// side, so no image is in both. Each image decides on its own: a hash of (seed, image key) mapped
// to [0, 1) goes to validation when below `fraction`. Adding or removing an image therefore never
// moves another one, and the expected validation share is `fraction` (not exact for few images).
//
// One adjustment, for small data: when 0 < fraction and there are at least 2 images, each side
// gets at least one image. If the hash sent none to validation, the image with the lowest score
// goes there; if it sent all of them, the one with the highest score stays in training. (This is
// the only case where one image's presence can move another.) With fraction 0 nothing is held out.

export interface Split {
  /** Indices into the items, ascending. */
  train: number[];
  validation: number[];
  /** How many distinct images each side has. */
  trainImages: number;
  validationImages: number;
}

/** FNV-1a over the key's UTF-16 units, seeded, then murmur3's finalizer: a uniform score in [0, 1). */
export function imageScore(seed: number, key: string): number {
  let h = (0x811c9dc5 ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

/**
 * Splits items by their `image` key. `fraction` (in [0, 1)) is the share of images held out for
 * validation. Throws RangeError for a fraction outside [0, 1) (a configuration error, checked
 * by the compiler before a run).
 */
export function splitByImage(items: readonly { image: string }[], fraction: number, seed: number): Split {
  if (!(fraction >= 0 && fraction < 1)) throw new RangeError(`validation fraction must be in [0, 1), got ${fraction}`);
  const groups = new Map<string, { score: number; validation: boolean }>();
  for (const it of items) {
    if (!groups.has(it.image)) {
      const score = imageScore(seed, it.image);
      groups.set(it.image, { score, validation: score < fraction });
    }
  }
  const all = [...groups.entries()];
  if (fraction > 0 && all.length >= 2) {
    const held = all.filter(([, g]) => g.validation).length;
    // Ties on score are broken by key, so the choice never depends on item order.
    const order = (a: [string, { score: number }], b: [string, { score: number }]) => a[1].score - b[1].score || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
    if (held === 0) all.reduce((m, e) => (order(e, m) < 0 ? e : m))[1].validation = true;
    else if (held === all.length) all.reduce((m, e) => (order(e, m) > 0 ? e : m))[1].validation = false;
  }
  const train: number[] = [];
  const validation: number[] = [];
  items.forEach((it, i) => (groups.get(it.image)!.validation ? validation : train).push(i));
  const validationImages = all.filter(([, g]) => g.validation).length;
  return { train, validation, trainImages: all.length - validationImages, validationImages };
}
