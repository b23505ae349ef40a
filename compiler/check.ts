// `check`: every stage that can find a mistake without running anything, over one or more
// files. Today: the front end. The semantic stages join here as they are written.
import { sortDiagnostics, type Diagnostic, hasErrors } from "./diagnostics/diagnostic.js";
import { FileError, readSpecBytes, type SpecBytes } from "./files.js";
import type { SourceFile } from "./source.js";
import { parseSource, type Parsed } from "./syntax/index.js";

export interface CheckResult {
  /** Diagnostics of every file, sorted by file and position. */
  diagnostics: Diagnostic[];
  /** Every source file read, by path: what renderers need to show code frames. */
  sources: Map<string, SourceFile>;
  /** Files named by the caller that could not be read at all. */
  unreadable: FileError[];
  /** No errors (warnings allowed) and every file was read. */
  ok: boolean;
}

/** Checks source text given in memory (no file system access). */
export function checkSource(path: string, text: string | Uint8Array): CheckResult {
  return collect([parseSource(path, text)], []);
}

/** Reads and checks spec files. */
export function check(paths: readonly string[]): CheckResult {
  const parsed: Parsed[] = [];
  const unreadable: FileError[] = [];
  for (const path of paths) {
    let file: SpecBytes;
    try {
      file = readSpecBytes(path);
    } catch (err) {
      if (err instanceof FileError) {
        unreadable.push(err);
        continue;
      }
      throw err;
    }
    parsed.push(parseSource(path, file.bytes, file.tooLarge));
  }
  return collect(parsed, unreadable);
}

function collect(parsed: Parsed[], unreadable: FileError[]): CheckResult {
  const sources = new Map<string, SourceFile>();
  const diagnostics: Diagnostic[] = [];
  for (const p of parsed) {
    sources.set(p.source.path, p.source);
    diagnostics.push(...p.diagnostics);
  }
  sortDiagnostics(diagnostics);
  return { diagnostics, sources, unreadable, ok: !hasErrors(diagnostics) && unreadable.length === 0 };
}
