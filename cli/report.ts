// What every command prints about its input, the same way: the diagnostics (as text with a
// closing "N errors, M warnings" line, or as one JSON document), with paths as the user knows
// them, and the exit codes.
import { isAbsolute, relative } from "node:path";
import { InvalidArgumentError } from "commander";
import type { Diagnostic } from "../compiler/diagnostics/diagnostic.js";
import { FileError } from "../compiler/files.js";
import { renderJson } from "../compiler/diagnostics/render-json.js";
import { renderText } from "../compiler/diagnostics/render-text.js";
import type { SourceFile } from "../compiler/source.js";
import type { Io } from "./main.js";

/** Exit codes: 0 clean, 1 errors reported, 2 bad command line or unreadable file. */
export const EXIT_OK = 0;
export const EXIT_ERRORS = 1;
export const EXIT_USAGE = 2;

/** Paths in messages: as the user typed them, or relative to the working directory. */
export function displayPath(file: string): string {
  if (!isAbsolute(file)) return file;
  const rel = relative(process.cwd(), file);
  return rel.startsWith("..") ? file : rel;
}

/**
 * Writes `diagnostics` in `format`: text on stderr, each diagnostic then the summary line
 * (nothing at all when there are none), or one JSON document (`{"diagnostics": [...]}`, even
 * when empty) through `jsonTo`, stderr unless given.
 */
export function reportDiagnostics(
  io: Io,
  diagnostics: readonly Diagnostic[],
  sources: ReadonlyMap<string, SourceFile>,
  format: "text" | "json",
  jsonTo: (s: string) => void = io.stderr,
): void {
  if (format === "json") jsonTo(renderJson(diagnostics, sources, displayPath));
  else if (diagnostics.length > 0) {
    io.stderr(renderText(diagnostics, sources, { color: io.color, displayPath }));
    io.stderr(summaryLine(diagnostics));
  }
}

/** For a command's `catch`: a file that could not be read is reported on stderr and gives exit 2;
 * anything else is rethrown. */
export function exitOnFileError(io: Io, err: unknown): number {
  if (err instanceof FileError) {
    io.stderr(`vlmc: error: ${err.message}\n`);
    return EXIT_USAGE;
  }
  throw err;
}

/** "2 errors, 1 warning" and a newline; empty when there are none. */
export function summaryLine(diags: readonly { severity: string }[]): string {
  const errors = diags.filter((d) => d.severity === "error").length;
  const warnings = diags.length - errors;
  const parts: string[] = [];
  if (errors) parts.push(`${errors} error${errors === 1 ? "" : "s"}`);
  if (warnings) parts.push(`${warnings} warning${warnings === 1 ? "" : "s"}`);
  return parts.length ? `${parts.join(", ")}\n` : "";
}

/**
 * The run folder of a command that takes it as an argument or as `--run DIR`: the folder, or the
 * usage error's message when both name different folders or neither names one.
 */
export function runFolderArg(dirArg: string | undefined, run: string | undefined): { dir: string } | { error: string } {
  if (dirArg !== undefined && run !== undefined && dirArg !== run) return { error: `two run folders given (${dirArg} and --run ${run}): give one` };
  const dir = run ?? dirArg;
  return dir === undefined ? { error: "no run folder: give --run DIR (a folder written by `vlmc train`)" } : { dir };
}

/** A commander argument parser for `--batch N` and the like: a whole number of at least 1. */
export function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError("expected a whole number of at least 1");
  return Number(value);
}
