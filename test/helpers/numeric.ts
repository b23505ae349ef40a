// Comparing numbers with a reference: the relative error the parity tests bound.
import assert from "node:assert/strict";

/** max|got - want| / max|want| (1 when the reference is all zeros). */
export function relError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  assert.equal(got.length, want.length, "sizes differ");
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < want.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
    maxRef = Math.max(maxRef, Math.abs(want[i]!));
  }
  return maxDiff / (maxRef || 1);
}
