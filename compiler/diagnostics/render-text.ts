// Renders diagnostics for a terminal, in the style of rustc and Elm: a header with the code,
// the location, the source line with carets under the span, labelled related spans, notes and
// help. Colour only when asked (the CLI asks when stdout is a TTY).
import pc from "picocolors";
import type { SourceFile, Span } from "../source.js";
import type { Diagnostic } from "./diagnostic.js";

export interface TextOptions {
  color: boolean;
  /** Paths as shown to the user; defaults to the span's file. */
  displayPath?: (file: string) => string;
}

interface Mark {
  span: Span;
  label: string;
  primary: boolean;
}

const MAX_SHOWN = 100; // characters of one source line shown around a span

export function renderText(diagnostics: readonly Diagnostic[], sources: ReadonlyMap<string, SourceFile>, options: TextOptions): string {
  return diagnostics.map((d) => renderOne(d, sources, options)).join("\n");
}

export function renderOne(d: Diagnostic, sources: ReadonlyMap<string, SourceFile>, options: TextOptions): string {
  const c = pc.createColors(options.color);
  const show = options.displayPath ?? ((f: string) => f);
  const sevColor = d.severity === "error" ? c.red : c.yellow;
  const out: string[] = [];
  out.push(`${c.bold(sevColor(`${d.severity}[${d.code}]`))}${c.bold(`: ${d.message}`)}`);

  const marks: Mark[] = [
    { span: d.span, label: d.label ?? "", primary: true },
    ...d.related.map((r) => ({ span: shownEnd(r.span, sources.get(r.span.file)), label: r.label, primary: false })),
  ];
  const lineNumbers = marks.map((m) => sources.get(m.span.file)?.position(m.span.start).line ?? 0);
  const gutter = String(Math.max(...lineNumbers, 1)).length;
  const pad = " ".repeat(gutter);
  const bar = c.blue("|");

  // Group marks by file, the primary's file first; within a file, by line.
  const files: string[] = [];
  for (const m of marks) if (!files.includes(m.span.file)) files.push(m.span.file);
  files.forEach((file, fi) => {
    const src = sources.get(file);
    const fileMarks = marks.filter((m) => m.span.file === file);
    const first = fileMarks.find((m) => m.primary) ?? fileMarks[0]!;
    const pos = src ? src.position(first.span.start) : { line: 0, column: 0 };
    out.push(`${pad}${c.blue(fi === 0 ? "-->" : ":::")} ${show(file)}:${pos.line}:${pos.column}`);
    if (!src) return;
    out.push(`${pad} ${bar}`);
    const byLine = new Map<number, Mark[]>();
    for (const m of fileMarks) {
      const line = src.position(m.span.start).line;
      byLine.set(line, [...(byLine.get(line) ?? []), m]);
    }
    const lines = [...byLine.keys()].sort((a, b) => a - b);
    lines.forEach((line, li) => {
      // A gap of one line is shown (it costs no more room than `...`); longer gaps are elided.
      if (li > 0 && line === lines[li - 1]! + 2) out.push(`${c.blue(String(line - 1).padStart(gutter))} ${bar} ${lineWindow(src, line - 1, null).text}`.trimEnd());
      else if (li > 0 && line > lines[li - 1]! + 2) out.push(c.blue(`${pad}...`));
      const lineMarks = byLine.get(line)!.sort((a, b) => a.span.start - b.span.start);
      const window = lineWindow(src, line, lineMarks[0]!.span);
      out.push(`${c.blue(String(line).padStart(gutter))} ${bar} ${window.text}`.trimEnd());
      // One underline row per mark, right-most first so labels do not overlap.
      for (const m of [...lineMarks].reverse()) {
        const startCol = src.position(m.span.start).column;
        const endPos = src.position(m.span.end);
        const endCol = endPos.line === line ? endPos.column : window.lineLength + 1;
        const from = Math.max(0, startCol - 1 - window.offset);
        const width = Math.max(1, Math.min(endCol, window.offset + window.shownLength + 1) - startCol);
        const markChar = m.primary ? "^" : "-";
        const color = m.primary ? sevColor : c.blue;
        const underline = " ".repeat(window.prefix + displayWidth(window.raw, from)) + color(markChar.repeat(width) + (m.label ? ` ${m.label}` : ""));
        out.push(`${pad} ${bar} ${underline}`);
      }
    });
  });
  for (const n of d.notes) out.push(`${pad} ${c.blue("=")} ${c.bold("note")}: ${n}`);
  for (const h of d.help) out.push(`${pad} ${c.blue("=")} ${c.bold(c.cyan("help"))}: ${h}`);
  return `${out.join("\n")}\n`;
}

/**
 * A related span that only marks the end of the file ("the file ends here") is shown right
 * after the file's last character rather than on the empty line after its final newline, so
 * the reader sees the code that ends there. Primary spans are shown where they are, so the
 * `-->` location always agrees with the JSON output.
 */
function shownEnd(span: Span, src: SourceFile | undefined): Span {
  if (!src || span.start !== span.end || span.start !== src.text.length) return span;
  let end = src.text.length;
  while (end > 0 && /\s/.test(src.text[end - 1]!)) end--;
  return end === 0 || end === src.text.length ? span : { ...span, start: end, end };
}

interface Window {
  text: string; // what is printed (sanitised, maybe elided)
  raw: string[]; // the shown code points, sanitised
  offset: number; // code points of the line skipped before the window
  prefix: number; // width of the leading "..." if any
  shownLength: number;
  lineLength: number;
}

/** The part of a (possibly huge) line shown around `span`, with control characters made visible. */
function lineWindow(src: SourceFile, line: number, span: Span | null): Window {
  const all = Array.from(src.lineText(line));
  const col = span ? src.position(span.start).column - 1 : 0;
  let offset = 0;
  if (all.length > MAX_SHOWN) offset = Math.max(0, Math.min(col - 20, all.length - MAX_SHOWN));
  const raw = all.slice(offset, offset + MAX_SHOWN).map(sanitize);
  const prefix = offset > 0 ? "..." : "";
  const suffix = offset + MAX_SHOWN < all.length ? "..." : "";
  return { text: prefix + raw.map(expandTab).join("") + suffix, raw, offset, prefix: prefix.length, shownLength: raw.length, lineLength: all.length };
}

function expandTab(ch: string): string {
  return ch === "\t" ? "    " : ch;
}

function displayWidth(chars: string[], upTo: number): number {
  let w = 0;
  for (let i = 0; i < upTo && i < chars.length; i++) w += chars[i] === "\t" ? 4 : 1;
  return w;
}

/** Control, bidi and other invisible characters would corrupt the terminal or mislead the reader. */
function sanitize(ch: string): string {
  const cp = ch.codePointAt(0)!;
  if (ch === "\t") return ch;
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || isBidiControl(cp) || cp === 0xfeff || (cp >= 0xd800 && cp <= 0xdfff)) return "\uFFFD";
  return ch;
}

export function isBidiControl(cp: number): boolean {
  return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp === 0x200e || cp === 0x200f || cp === 0x061c;
}
