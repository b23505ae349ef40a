// The one catalogue of diagnostic codes. A code never changes meaning; docs/errors.md is
// generated from this table and the fixture of each code under test/fixtures/diagnostics/.
//
//   E00xx  the file itself and its characters      E03xx  shapes
//   E01xx  syntax                                   E04xx  values and settings
//   E02xx  names and references                     E05xx  training stages and data
//   W....  warnings, numbered like errors           E06xx  the IR
import type { Severity } from "./diagnostic.js";

export interface CodeInfo {
  severity: Severity;
  /** A short name for the docs' table of contents. */
  title: string;
  /** What it means, in a sentence or two. */
  explanation: string;
  /** How to fix it. */
  fix: string;
}

function e(title: string, explanation: string, fix: string): CodeInfo {
  return { severity: "error", title, explanation, fix };
}
function w(title: string, explanation: string, fix: string): CodeInfo {
  return { severity: "warning", title, explanation, fix };
}

export const catalogue = {
  // ---- the file and its characters ----
  E0001: e(
    "invalid UTF-8",
    "A .vlm file must be UTF-8 text. The byte at the reported position does not start or continue a valid UTF-8 sequence; the file is probably binary or in another encoding.",
    "Re-save the file as UTF-8, or check that you passed the right file.",
  ),
  E0002: e(
    "NUL byte",
    "The file contains a NUL (0x00) byte, which never appears in text: it is probably binary.",
    "Check that you passed the right file; remove the NUL bytes.",
  ),
  E0003: e(
    "byte-order mark",
    "The file starts with a UTF-8 byte-order mark (U+FEFF). vlmc reads UTF-8 without a BOM so that files hash and diff the same on every platform.",
    "Save the file as UTF-8 without BOM (most editors call it plain 'UTF-8').",
  ),
  E0004: e(
    "bidirectional control character",
    "The file contains a Unicode bidirectional control character (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C). These can make the text look different from what the compiler reads ('Trojan Source').",
    "Delete the character; if you need right-to-left text inside a string, write it without control characters.",
  ),
  E0005: e(
    "unknown character",
    "A character that no token of the language starts with.",
    "Delete it; comments start with `#`, strings are written in double quotes.",
  ),
  E0006: e(
    "unterminated string",
    "A string literal has no closing `\"` on its line. Strings cannot span lines; write `\\n` for a newline.",
    "Add the closing quote.",
  ),
  E0007: e(
    "invalid escape",
    "A string contains a backslash escape the language does not define. Valid escapes: `\\n`, `\\t`, `\\r`, `\\\\`, `\\\"`, `\\u{...}`.",
    "Write a valid escape, or `\\\\` for a literal backslash.",
  ),
  E0008: e(
    "malformed number",
    "Something that starts with a digit but is not a number: numbers are `128`, `0.1`, `1e-3`, `1_000`; dims are written `96 x 96 x 3` (or `96x96x3`).",
    "Fix the number; names cannot start with a digit.",
  ),
  E0009: e(
    "file too large",
    "The file is larger than any spec needs to be (the limit is 1 MiB, about 25,000 lines). vlmc refuses to parse it rather than spend memory and time on what is almost certainly the wrong file.",
    "Check that you passed the right file; split a generated spec into several files joined with `use`.",
  ),
  // ---- syntax ----
  E0101: e(
    "unexpected token",
    "The parser found a token where the grammar does not allow it. The message names what it found and what it expected there.",
    "Write one of the expected tokens; see docs/language.md for the grammar.",
  ),
  E0102: e(
    "unclosed delimiter",
    "A `{`, `(` or `[` is never closed before the end of the file.",
    "Add the matching closing delimiter.",
  ),
  E0103: e(
    "unexpected closing delimiter",
    "A `}`, `)` or `]` that closes nothing, or closes a different kind of bracket than the one open.",
    "Delete it, or fix the bracket it should match.",
  ),
  E0104: e(
    "nesting too deep",
    "Brackets are nested more deeply than the compiler allows (64 levels). No real spec comes close; the file is probably generated or corrupt.",
    "Flatten the expression, e.g. with `let` constants.",
  ),
  E0105: e(
    "too many errors",
    "The file has more errors than are worth reading; the compiler stopped reporting after the first 100.",
    "Fix the errors reported so far (the first ones usually cause the rest) and check again.",
  ),
  E0106: e(
    "unsupported language version",
    "The `vlm` declaration names a language version this compiler does not implement.",
    "Write `vlm 0.1`, the version this compiler implements, or upgrade vlmc.",
  ),
  W0101: w(
    "missing language version",
    "The file does not start with a language version declaration. vlmc assumes the current version, but a future vlmc may read the file differently.",
    "Add `vlm 0.1` as the file's first line.",
  ),
} as const satisfies Record<string, CodeInfo>;

export type Code = keyof typeof catalogue;

export function isCode(s: string): s is Code {
  return Object.prototype.hasOwnProperty.call(catalogue, s);
}
