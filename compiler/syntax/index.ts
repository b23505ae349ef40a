// The front end as one call: bytes -> decoded text -> tokens -> CST -> AST, with every
// diagnostic of the way, deduplicated and capped. See lexer.ts, parser.ts, build-ast.ts.
import type { IRecognitionException, IToken } from "chevrotain";
import { decode } from "../decode.js";
import { MAX_SPEC_BYTES } from "../files.js";
import { diagnostic, sortDiagnostics, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { SourceFile } from "../source.js";
import type * as A from "./ast.js";
import { checkBrackets } from "./brackets.js";
import { buildAst } from "./build-ast.js";
import { Colon, Cross, Equals, False, Identifier, LBracket, NumberLike, StringLit, tokenize, True, UnterminatedString } from "./lexer.js";
import { describeToken } from "./messages.js";
import { parseTokens } from "./parser.js";

/** The language version this compiler implements. */
export const LANGUAGE_VERSION = "0.1";
/** Tokens in one file: ~25,000 dense lines; keeps the worst case parse near a second. */
export const MAX_TOKENS = 300_000;
/** Errors reported per file before the rest are summarised in one E0105. */
export const MAX_ERRORS_PER_FILE = 100;

export interface Parsed {
  source: SourceFile;
  /** Null when the file could not be parsed at all (binary, or nested too deep). */
  ast: A.File | null;
  diagnostics: Diagnostic[];
  /** True when any syntax-level error was found: later stages do not run on this tree. */
  failed: boolean;
}

/**
 * Parses one file. `totalSize` is set when `input` is only the head of a file too large to
 * parse (see files.ts); the input is then reported, not parsed. In-memory text over the limit
 * is treated the same way.
 */
export function parseSource(path: string, input: Uint8Array | string, totalSize?: number): Parsed {
  const size = totalSize ?? (typeof input === "string" ? input.length : input.length);
  if (size > MAX_SPEC_BYTES) {
    const head = typeof input === "string" ? input.slice(0, 4096) : input.subarray(0, 4096);
    const decodedHead = decode(path, head);
    const source = decodedHead.source;
    if (decodedHead.binary) return finish(source, null, decodedHead.diagnostics);
    const d = diagnostic("E0009", source.span(0, 0), `file is too large to be a spec (${mebibytes(size)} MiB)`, {
      notes: [`the limit is ${MAX_SPEC_BYTES / 1048576} MiB; a spec of 10,000 lines is about 0.4 MiB`],
      help: ["check that you passed the right file"],
    });
    return finish(source, null, [d]);
  }
  const decoded = decode(path, input);
  const { source } = decoded;
  const diags: Diagnostic[] = decoded.diagnostics.slice();
  if (decoded.binary) return finish(source, null, diags);

  // Lexing
  const lexed = tokenize(decoded.lexText);
  if (lexed.tokens.length > MAX_TOKENS) {
    // Under the size limit but dense (1 MiB of `;`): parsing would take seconds.
    const at = lexed.tokens[MAX_TOKENS]!.startOffset;
    diags.push(
      diagnostic("E0009", source.span(at, at), `file has more than ${MAX_TOKENS.toLocaleString("en-US")} tokens, too many to be a spec`, {
        label: "the limit is reached here",
        notes: [`a spec of 10,000 lines has about 90,000 tokens`],
        help: ["check that you passed the right file"],
      }),
    );
    return finish(source, null, diags);
  }
  const badLines = new Set<number>();
  for (const run of mergeRuns(lexed.unknown).slice(0, MAX_ERRORS_PER_FILE + 1)) {
    const ch = Array.from(source.text.slice(run.offset, run.offset + run.length))[0] ?? "";
    const cp = ch.codePointAt(0) ?? 0;
    diags.push(
      diagnostic("E0005", source.span(run.offset, run.offset + run.length), `unknown character \`${printable(ch)}\` (U+${cp.toString(16).toUpperCase().padStart(4, "0")})${run.length > ch.length ? " and more" : ""}`, {
        label: "not part of the language",
        help: [unknownHelp(ch)],
      }),
    );
    badLines.add(source.position(run.offset).line);
  }
  for (const t of lexed.tokens) {
    if (t.tokenType === UnterminatedString) {
      t.tokenType = StringLit;
      t.tokenTypeIdx = StringLit.tokenTypeIdx!;
      if (diags.length > MAX_ERRORS_PER_FILE) continue;
      diags.push(
        diagnostic("E0006", source.span(t.startOffset, t.startOffset + t.image.length), "unterminated string", {
          label: "this string has no closing `\"` on its line",
          help: ['add the closing `"`; strings cannot span lines (write `\\n` for a newline)'],
        }),
      );
      badLines.add(source.position(t.startOffset).line);
    }
  }

  // Brackets, before a deep parse could overflow the stack.
  const brackets = checkBrackets(lexed.tokens, source);
  for (const d of brackets.diagnostics) diags.push(d);
  if (brackets.tooDeep) return finish(source, null, diags);

  // Parsing
  const { cst, errors } = parseTokens(lexed.tokens);
  const seenLines = new Set<number>(badLines);
  for (const e of errors.slice().sort((a, b) => offsetOf(a, source) - offsetOf(b, source))) {
    if (diags.length > 2 * MAX_ERRORS_PER_FILE) break;
    const at = offsetOf(e, source);
    if (at >= brackets.firstErrorOffset) continue; // follow-on errors of a bracket problem
    const line = source.lineIndex(at) + 1; // not position(): its column costs O(line length)
    if (seenLines.has(line)) continue; // one syntax error per line: the rest are usually echoes
    seenLines.add(line);
    diags.push(parserDiagnostic(e, lexed.tokens, source));
  }

  if (!cst) {
    // The parser gave up (parser.ts, MAX_PARSE_ERRORS): say so, unless E0105 will anyway.
    if (diags.filter((d) => d.severity === "error").length < MAX_ERRORS_PER_FILE) {
      const at = errors.length ? offsetOf(errors[errors.length - 1]!, source) : source.text.length;
      diags.push(
        diagnostic("E0105", source.span(at, at), `too many syntax errors; stopped parsing after ${errors.length}`, {
          help: ["fix the errors above (the first ones often cause the rest) and check again"],
        }),
      );
    }
    return finish(source, null, diags);
  }
  const built = buildAst(cst, source);
  for (const d of built.diagnostics) diags.push(d);
  const ast = built.file;
  checkVersion(ast, source, diags);
  return finish(source, ast, diags);
}

/** Rounded up, so that a file just over the limit never reads as "1.0 MiB". */
function mebibytes(size: number): string {
  return (Math.ceil((size / 1048576) * 10) / 10).toFixed(1);
}

function checkVersion(ast: A.File, source: SourceFile, diags: Diagnostic[]): void {
  if (!ast.version) {
    if (ast.items.length === 0 && source.text.trim() === "") return; // an empty file says nothing
    diags.push(
      diagnostic("W0101", source.span(0, 0), "no language version declared", {
        help: [`add \`vlm ${LANGUAGE_VERSION}\` as the first line`],
      }),
    );
  } else if (ast.version.text !== LANGUAGE_VERSION && ast.version.text !== "") {
    diags.push(
      diagnostic("E0106", ast.version.span, `language version ${ast.version.text} is not supported`, {
        label: "unsupported version",
        notes: [`this vlmc implements version ${LANGUAGE_VERSION}`],
        help: [`write \`vlm ${LANGUAGE_VERSION}\``],
      }),
    );
  }
}

function finish(source: SourceFile, ast: A.File | null, diags: Diagnostic[]): Parsed {
  sortDiagnostics(diags);
  let errors = 0;
  const kept: Diagnostic[] = [];
  for (const d of diags) {
    if (d.severity === "error" && ++errors > MAX_ERRORS_PER_FILE) {
      const more = diags.filter((x) => x.severity === "error").length - MAX_ERRORS_PER_FILE;
      kept.push(
        diagnostic("E0105", d.span, `too many errors; ${more} more not shown`, {
          label: `error ${MAX_ERRORS_PER_FILE + 1}: reporting stops here`,
          help: ["fix the errors above (the first ones often cause the rest) and check again"],
        }),
      );
      break;
    }
    kept.push(d);
  }
  const failed = kept.some((d) => d.severity === "error") || ast === null;
  return { source, ast, diagnostics: kept, failed };
}

function offsetOf(e: IRecognitionException, source: SourceFile): number {
  const t: IToken = e.token;
  return Number.isNaN(t.startOffset) || t.startOffset === undefined ? source.text.length : t.startOffset;
}

function parserDiagnostic(e: IRecognitionException, tokens: IToken[], source: SourceFile): Diagnostic {
  const t = e.token;
  const atEof = Number.isNaN(t.startOffset) || t.tokenType?.name === "EOF";
  const start = atEof ? source.text.length : t.startOffset;
  const end = atEof ? start : start + t.image.length;
  const prev = tokenBefore(tokens, start);
  const found = atEof ? "end of file" : describeToken(t);
  const help: string[] = [];
  let message = `${e.message}${prev ? ` after ${describeToken(prev)}` : ""}, found ${found}`;
  if (prev && isNameToken(prev) && !atEof && startsValue(t) && !/expected `:`/.test(e.message)) {
    // `heads 8`: the most common slip in a settings block.
    message = `expected \`:\` after \`${prev.image}\`, found ${found}`;
    help.push(`settings are written \`name: value\`: \`${prev.image}: ${t.image}\``);
  } else if (prev && isNameToken(prev) && t.tokenType === Equals && !/expected `:`/.test(e.message)) {
    // `scale = 1.0` or `adam(lr = 1e-3)`: a `let`'s `=` where a setting's `:` belongs.
    message = `expected \`:\` after \`${prev.image}\`, found \`=\``;
    help.push("settings and named arguments are written `name: value`; `=` is for `let name = value`");
  }
  if (t.tokenType === Cross || (prev?.tokenType === Cross && !atEof && t.tokenType === Colon)) help.push("`x` is reserved for dims such as `96 x 96 x 3`; choose another name");
  return diagnostic("E0101", source.span(start, end), message, { label: atEof ? "the file ends here" : "unexpected here", help });
}

function tokenBefore(tokens: IToken[], offset: number): IToken | undefined {
  let lo = 0;
  let hi = tokens.length - 1;
  let best: IToken | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const tok = tokens[mid]!;
    if (tok.startOffset < offset) {
      best = tok;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best;
}

function isNameToken(t: IToken): boolean {
  return t.tokenType === Identifier || t.tokenType.CATEGORIES?.includes(Identifier) === true;
}

function startsValue(t: IToken): boolean {
  return t.tokenType === NumberLike || t.tokenType === StringLit || t.tokenType === True || t.tokenType === False || t.tokenType === LBracket;
}

function mergeRuns(runs: { offset: number; length: number }[]): { offset: number; length: number }[] {
  const out: { offset: number; length: number }[] = [];
  for (const r of runs) {
    const last = out[out.length - 1];
    if (last && last.offset + last.length === r.offset) last.length += r.length;
    else out.push({ ...r });
  }
  return out;
}

function printable(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  return cp < 0x20 || cp === 0x7f || (cp >= 0x80 && cp < 0xa0) ? "\uFFFD" : ch;
}

function unknownHelp(ch: string): string {
  switch (ch) {
    case "'":
      return 'strings are written in double quotes: "text"';
    case "@":
    case "$":
      return "comments start with `#`";
    case "\u00a0":
      return "this is a non-breaking space; replace it with a plain space";
    case "\u201c":
    case "\u201d":
      return 'typographic quotes: use straight double quotes "..."';
    default:
      return "delete it; see docs/language.md for the characters the language uses";
  }
}
