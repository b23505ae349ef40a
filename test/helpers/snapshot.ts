// Snapshot testing for node:test, which has none in Node 20: a string is compared with
// test/snapshots/<name>.txt. The file is written when it does not exist yet, or when the run
// has UPDATE_SNAPSHOTS=1 (`UPDATE_SNAPSHOTS=1 npm test`); review the written files like code.
// Under CI (the CI variable set), a missing snapshot fails instead of being written.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { AssertionError } from "node:assert";
import { repoPath } from "./paths.js";

const NAME = /^[a-z0-9][a-z0-9._-]*$/;

export function snapshotPath(name: string): string {
  if (!NAME.test(name)) throw new Error(`bad snapshot name ${JSON.stringify(name)}: use lower case, digits, '.', '_' and '-'`);
  return repoPath("test", "snapshots", `${name}.txt`);
}

/** A case as one reviewable text: `path:`, the source with 3-wide line numbers, a blank line, then
 * what is rendered for it. */
export function sourceThenRendering(path: string, source: string, rendered: string): string {
  const numbered = source
    .replace(/\n$/, "")
    .split("\n")
    .map((l, i) => `${String(i + 1).padStart(3)} | ${l}`.trimEnd())
    .join("\n");
  return `${path}:\n${numbered}\n\n${rendered}`;
}

/** Asserts that `actual` equals the snapshot `name`, writing it when missing or when updating. */
export function matchSnapshot(name: string, actual: string): void {
  const path = snapshotPath(name);
  const update = process.env.UPDATE_SNAPSHOTS === "1";
  if (update || !existsSync(path)) {
    if (!update && process.env.CI) {
      throw new AssertionError({ message: `snapshot test/snapshots/${name}.txt is missing; run the tests locally to write it, review it and commit it` });
    }
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
    return;
  }
  const expected = readFileSync(path, "utf8");
  if (expected === actual) return;
  throw new AssertionError({
    message:
      `snapshot test/snapshots/${name}.txt does not match (- snapshot, + actual):\n` +
      `${lineDiff(expected, actual)}\n` +
      "If the change is intended, run the tests with UPDATE_SNAPSHOTS=1 and review the diff of the snapshot file.",
  });
}

/**
 * A unified-style line diff: `-` lines only in `expected`, `+` lines only in `actual`, two
 * lines of context around each change, `@@` headers with 1-based line numbers.
 */
export function lineDiff(expected: string, actual: string, context = 2): string {
  const a = expected.split("\n");
  const b = actual.split("\n");
  // Longest common subsequence by dynamic programming: snapshots are small.
  const n = a.length;
  const m = b.length;
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  }
  type Op = { kind: " " | "-" | "+"; text: string; ai: number; bi: number };
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) ops.push({ kind: " ", text: a[i]!, ai: i++, bi: j++ });
    else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) ops.push({ kind: "-", text: a[i]!, ai: i++, bi: j });
    else ops.push({ kind: "+", text: b[j]!, ai: i, bi: j++ });
  }
  // Keep changes and their context; elide the rest.
  const keep = ops.map(() => false);
  ops.forEach((op, k) => {
    if (op.kind === " ") return;
    for (let c = Math.max(0, k - context); c <= Math.min(ops.length - 1, k + context); c++) keep[c] = true;
  });
  const out: string[] = [];
  let k = 0;
  while (k < ops.length) {
    if (!keep[k]) {
      k++;
      continue;
    }
    const start = k;
    while (k < ops.length && keep[k]) k++;
    const hunk = ops.slice(start, k);
    out.push(`@@ -${hunk[0]!.ai + 1} +${hunk[0]!.bi + 1} @@`);
    for (const op of hunk) out.push(`${op.kind} ${visible(op.text)}`);
  }
  if (out.length === 0) return "(no line differs: the difference is in the final newline)";
  return out.join("\n");
}

/** Makes trailing whitespace and carriage returns visible, so whitespace-only changes show. */
function visible(line: string): string {
  return line.replace(/\r/g, "\\r").replace(/[ \t]+$/, (ws) => ws.replace(/ /g, "\u00b7").replace(/\t/g, "\u2192"));
}
