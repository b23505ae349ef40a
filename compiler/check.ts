// `check`: every stage that can find a mistake without running anything, over one or more
// files: the front end, then names, values and shapes (analyze.ts).
import { analyze } from "./analyze.js";
import { memoryDiagnostics } from "./cost/check-memory.js";
import { diagnostic, hasErrors, sortDiagnostics, type Diagnostic } from "./diagnostics/diagnostic.js";
import { FileError, readSpecBytes, type SpecBytes } from "./files.js";
import { isIrPath, parseIr, readIr, type IrInput } from "./ir/validate.js";
import type { ReadFile } from "./resolve/program.js";
import type { SourceFile } from "./source.js";
import { MAX_ERRORS_PER_FILE } from "./syntax/index.js";

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
  if (isIrPath(path)) addIr(result, path, text);
  else add(result, path, text);
  return finish(result);
}

/** Reads and checks spec files. */
export function check(paths: readonly string[]): CheckResult {
  const result: CheckResult = { diagnostics: [], sources: new Map(), unreadable: [], ok: true };
  for (const path of paths) {
    if (isIrPath(path)) {
      addIr(result, path);
      continue;
    }
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
  // W0502: a stage whose step would not fit the wasm heap (compiler/cost/).
  for (const d of [...a.diagnostics, ...memoryDiagnostics(a)]) if (!seen.has(key(d))) result.diagnostics.push(d);
}

/** An IR document (.json/.yaml/.yml): parsed, validated against the schema and verified. */
function addIr(result: CheckResult, path: string, text?: string | Uint8Array): void {
  let input: IrInput;
  try {
    input = text === undefined ? readIr(path) : parseIr(path, typeof text === "string" ? text : new TextDecoder().decode(text));
  } catch (err) {
    if (err instanceof FileError) {
      result.unreadable.push(err);
      return;
    }
    throw err;
  }
  for (const [p, src] of input.sources) result.sources.set(p, src);
  result.diagnostics.push(...input.diagnostics);
}

function key(d: Diagnostic): string {
  return `${d.code}\0${d.span.file}\0${d.span.start}\0${d.message}`;
}

function finish(result: CheckResult): CheckResult {
  result.diagnostics = capPerFile(sortDiagnostics(result.diagnostics));
  result.ok = !hasErrors(result.diagnostics) && result.unreadable.length === 0;
  return result;
}

/**
 * At most MAX_ERRORS_PER_FILE errors per file, then one E0105, whichever stage found them: the
 * front end caps its own (syntax/index.ts), the later stages are capped here.
 */
function capPerFile(sorted: Diagnostic[]): Diagnostic[] {
  const total = new Map<string, number>();
  for (const d of sorted) if (d.severity === "error") total.set(d.span.file, (total.get(d.span.file) ?? 0) + 1);
  if (![...total.values()].some((n) => n > MAX_ERRORS_PER_FILE)) return sorted;
  const shown = new Map<string, number>();
  const stopped = new Set<string>();
  const out: Diagnostic[] = [];
  for (let d of sorted) {
    const file = d.span.file;
    if (stopped.has(file)) continue;
    if (d.severity === "error") {
      const n = (shown.get(file) ?? 0) + 1;
      shown.set(file, n);
      if (n > MAX_ERRORS_PER_FILE) {
        stopped.add(file);
        if (d.code !== "E0105") {
          d = diagnostic("E0105", d.span, `too many errors; ${total.get(file)! - MAX_ERRORS_PER_FILE} more not shown`, {
            label: `error ${MAX_ERRORS_PER_FILE + 1}: reporting stops here`,
            help: ["fix the errors above (the first ones often cause the rest) and check again"],
          });
        }
      }
    }
    out.push(d);
  }
  return out;
}
