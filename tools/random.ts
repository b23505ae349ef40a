// Seeded randomness for the generators and the randomized tests (bench/gen-spec.ts,
// test/helpers/spec-gen.ts, the fuzz, property, IR and bad-input tests): the same seed always
// gives the same sequence, so that a failure reproduces and generated text never changes.

import { uniform01 } from "../runtime/random.js";

/** mulberry32: a small, fast, seedable PRNG; returns floats in [0, 1) (the runtime's own). */
export const mulberry32 = uniform01;

/** A mulberry32 stream with the draws the generators use. */
export class Rng {
  readonly next: () => number;
  constructor(readonly seed: number) {
    this.next = mulberry32(seed);
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error("pick from an empty list");
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  shuffle<T>(xs: readonly T[]): T[] {
    const out = xs.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }
}

/** The integer in environment variable `name`, or `fallback` when it is unset or empty. */
export function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got ${v}`);
  return n;
}
