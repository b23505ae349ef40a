// `check`: every stage that can find a mistake without running anything, over one or more
// files: the front end, then names, values and shapes (analyze.ts).
import { analyze } from "./analyze.js";
import { hasErrors, sortDiagnostics, type Diagnostic } from "./diagnostics/diagnostic.js";
import { FileError, readSpecBytes, type SpecBytes } from "./files.js";
import type { ReadFile } from "./resolve/program.js";
import type { SourceFile } from "./source.js";

export interface CheckResult {
  /** Diagnostics of every file, sorted by file and position. */
  diagnostics: Diagnostic[];
  /** Every source file read (including files reached by `use`): what renderers need. */
  sources: Map<string, SourceFile>;
  /** Files named by the caller that could not be read at all. */
  unreadable: FileError[];
  /** No errors (warnings allowed) and every file was read. */
  ok: boolean;
}

/** Checks source text given in memory; files it `use`s are read from disk relative to `path`. */
export function checkSource(path: string, text: string | Uint8Array): CheckResult {
  const result: CheckResult = { diagnostics: [], sources: new Map(), unreadable: [], ok: true };
  add(result, path, text);
  return finish(result);
}

/** Reads and checks spec files. */
export function check(paths: readonly string[]): CheckResult {
  const result: CheckResult = { diagnostics: [], sources: new Map(), unreadable: [], ok: true };
  for (const path of paths) {
    let got: SpecBytes;
    try {
      got = readSpecBytes(path);
    } catch (err) {
      if (err instanceof FileError) {
        result.unreadable.push(err);
        continue;
      }
      throw err;
    }
    add(result, path, undefined, (p) => (p === path ? got : readSpecBytes(p)));
  }
  return finish(result);
}

function add(result: CheckResult, path: string, text?: string | Uint8Array, read?: ReadFile): void {
  const a = analyze(path, text, read);
  for (const [p, parsed] of a.program.files) result.sources.set(p, parsed.source);
  const seen = new Set(result.diagnostics.map(key));
  for (const d of a.diagnostics) if (!seen.has(key(d))) result.diagnostics.push(d);
}

function key(d: Diagnostic): string {
  return `${d.code}\0${d.span.file}\0${d.span.start}\0${d.message}`;
}

function finish(result: CheckResult): CheckResult {
  sortDiagnostics(result.diagnostics);
  result.ok = !hasErrors(result.diagnostics) && result.unreadable.length === 0;
  return result;
}
