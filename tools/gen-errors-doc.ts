// Generates docs/errors.md from the catalogue (compiler/diagnostics/codes.ts) and the
// diagnostic fixtures (test/fixtures/diagnostics/): one section per code with its explanation,
// an example (the first fixture named after the code, expectation comments stripped), what
// vlmc reports for that example, and the fix.
//
//   npm run docs          (or: npx tsc -p . && node dist/tools/gen-errors-doc.js)
//
// It also owns the fixture format, shared with test/diagnostic-fixtures.test.ts: a fixture is
// `<CODE>-<slug>.vlm`, or `<CODE>-<slug>.yaml` for an IR document (E06xx codes); comments such
// as `# error E0101 @5:11` or `# warning W0101 @1:1` (several per comment allowed, separated by
// commas) list every diagnostic the compiler must report for the file, at 1-based line and
// column (columns in code points). Files a fixture `use`s (or, for an IR, the spec it was
// compiled from) live in a folder named like it (`E0208-use-cycle/other.vlm`); a diagnostic
// reported in such a file is annotated with its path: `# error E0208 @E0208-use-cycle/other.vlm:1:5`.
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join, relative, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { check } from "../compiler/check.js";
import { catalogue, type CodeInfo } from "../compiler/diagnostics/codes.js";
import type { Diagnostic } from "../compiler/diagnostics/diagnostic.js";
import { renderText } from "../compiler/diagnostics/render-text.js";
import { repoRoot } from "./repo.js";

export const FIXTURE_DIR = join(repoRoot, "test", "fixtures", "diagnostics");
/** Relative to the repository root, with forward slashes (for the docs). */
const FIXTURE_DIR_REL = "test/fixtures/diagnostics";
export const ERRORS_DOC = join(repoRoot, "docs", "errors.md");

// ---------------------------------------------------------------------------------------------
// The fixture format

export interface Expectation {
  severity: string;
  code: string;
  /** Relative to the fixture folder, with `/`; absent for the fixture itself. */
  file?: string;
  line: number;
  column: number;
}

const ANNOTATION = /\b(error|warning)\s+([EW]\d{4})\s+@(?:([^\s@,]+\.(?:vlm|yaml)):)?(\d+):(\d+)/g;
/** A trailing comment made only of annotations, e.g. `   # error E0005 @6:15, error E0005 @6:23`. */
const ANNOTATION_COMMENT = /[ \t]*#[ \t]*(?:(?:error|warning)[ \t]+[EW]\d{4}[ \t]+@(?:[^\s@,]+\.(?:vlm|yaml):)?\d+:\d+[ \t]*,?[ \t]*)+$/;
const FIXTURE_NAME = /^([EW]\d{4})-[a-z0-9][a-z0-9-]*\.(?:vlm|yaml)$/;
/** The extensions of fixtures: specs, and IR documents (YAML comments are `#` too). */
const FIXTURE_EXTENSIONS = [".vlm", ".yaml"];

/** Every `.vlm` and `.yaml` file in the fixture directory, sorted by name. */
export function listFixtures(): string[] {
  return readdirSync(FIXTURE_DIR)
    .filter((f) => FIXTURE_EXTENSIONS.some((ext) => f.endsWith(ext)))
    .sort();
}

/** The code a fixture's name starts with (`E0101-missing-colon.vlm` -> `E0101`), or null. */
export function fixtureCode(name: string): string | null {
  return FIXTURE_NAME.exec(name)?.[1] ?? null;
}

/** A fixture's raw bytes as a latin1 string: one character per byte, whatever the bytes are. */
export function readFixtureLatin1(name: string): string {
  return readFileSync(join(FIXTURE_DIR, name), "latin1");
}

/** The expectations annotated in a fixture (given as latin1 text), in file order. */
export function parseExpectations(latin1: string): Expectation[] {
  const out: Expectation[] = [];
  for (const line of latin1.split(/\r\n|\r|\n/)) {
    const hash = line.indexOf("#");
    if (hash < 0) continue;
    for (const m of line.slice(hash).matchAll(ANNOTATION)) {
      out.push({ severity: m[1]!, code: m[2]!, ...(m[3] ? { file: m[3] } : {}), line: Number(m[4]), column: Number(m[5]) });
    }
  }
  return out;
}

/**
 * The fixture without its annotations: trailing annotation comments are cut, and a line that
 * held nothing else is dropped. Works on latin1 text, so bytes pass through unchanged.
 */
export function stripExpectations(latin1: string): string {
  const out: string[] = [];
  for (const line of latin1.split("\n")) {
    const m = ANNOTATION_COMMENT.exec(line.endsWith("\r") ? line.slice(0, -1) : line);
    if (!m) out.push(line);
    else if (line.slice(0, m.index).trim() !== "") out.push(line.slice(0, m.index) + (line.endsWith("\r") ? "\r" : ""));
  }
  return out.join("\n");
}

export function formatExpectation(e: Expectation): string {
  return `${e.severity} ${e.code} @${e.file ? `${e.file}:` : ""}${e.line}:${e.column}`;
}

/** A fixture's companion folder (files it `use`s), if it has one. */
export function companionDir(fixture: string): string | null {
  const dir = join(FIXTURE_DIR, fixture.replace(/\.(vlm|yaml)$/, ""));
  return existsSync(dir) ? dir : null;
}

/** A diagnostic's primary position in the terms of an annotation; `base` is the folder paths are relative to. */
export function actualExpectation(d: Diagnostic, sources: ReadonlyMap<string, { position(offset: number): { line: number; column: number } }>, base: string, self: string): Expectation {
  const pos = sources.get(d.span.file)?.position(d.span.start) ?? { line: 0, column: 0 };
  const file = relative(base, d.span.file).split(sep).join("/");
  return { severity: d.severity, code: d.code, ...(file !== self ? { file } : {}), line: pos.line, column: pos.column };
}

// ---------------------------------------------------------------------------------------------
// The document

/** The example's name: `example.vlm`, or `example.yaml` for an IR fixture. */
const examplePath = (fixture: string) => `example${extname(fixture)}`;
/** Longer examples are shown in part: their head, the lines around the section's code, the tail. */
const MAX_EXAMPLE_LINES = 40;
const HEAD_LINES = 12;
const CONTEXT_LINES = 2;
const TAIL_LINES = 3;
/** More diagnostics than this are shown in part: the first few, then those of the section's code. */
const MAX_SHOWN_DIAGNOSTICS = 5;
const FIRST_DIAGNOSTICS = 2;

/** Group titles by the first two digits of a code (see the comment at the top of codes.ts). */
const GROUPS: Record<string, string> = {
  "00": "The file and its characters",
  "01": "Syntax",
  "02": "Names and references",
  "03": "Shapes",
  "04": "Values and settings",
  "05": "Training stages and data",
  "06": "The IR",
  "07": "Weights files",
  "08": "Code generation",
};

/** Code points that would be invisible, or garble the page, if printed as they are. */
const SPECIAL_NAMES: Record<number, string> = {
  0x00: "NUL",
  0x00a0: "NO-BREAK SPACE",
  0x061c: "ARABIC LETTER MARK",
  0x200b: "ZERO WIDTH SPACE",
  0x200c: "ZERO WIDTH NON-JOINER",
  0x200d: "ZERO WIDTH JOINER",
  0x200e: "LEFT-TO-RIGHT MARK",
  0x200f: "RIGHT-TO-LEFT MARK",
  0x2028: "LINE SEPARATOR",
  0x2029: "PARAGRAPH SEPARATOR",
  0x202a: "LEFT-TO-RIGHT EMBEDDING",
  0x202b: "RIGHT-TO-LEFT EMBEDDING",
  0x202c: "POP DIRECTIONAL FORMATTING",
  0x202d: "LEFT-TO-RIGHT OVERRIDE",
  0x202e: "RIGHT-TO-LEFT OVERRIDE",
  0x2066: "LEFT-TO-RIGHT ISOLATE",
  0x2067: "RIGHT-TO-LEFT ISOLATE",
  0x2068: "FIRST STRONG ISOLATE",
  0x2069: "POP DIRECTIONAL ISOLATE",
  0xfeff: "BYTE ORDER MARK",
};

function isSpecial(cp: number): boolean {
  if (cp === 0x09 || cp === 0x0a || cp === 0x0d) return false;
  return cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || SPECIAL_NAMES[cp] !== undefined;
}

function hex(n: number, width: number): string {
  return n.toString(16).toUpperCase().padStart(width, "0");
}

/**
 * The bytes as text for the page: valid UTF-8 as it is, except that invalid bytes become
 * `<0xE8>`, control characters `<0x00>` and invisible characters `<U+202E>`; `legend` says
 * what each marker stands for.
 */
export function showBytes(bytes: Uint8Array): { text: string; legend: string[] } {
  let text = "";
  const legend = new Map<string, string>();
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    let cp = -1;
    if (len === 1) cp = b;
    else if (len > 1 && i + len <= bytes.length) {
      let v = b & (0xff >> (len + 1));
      let ok = true;
      for (let k = 1; k < len; k++) {
        const c = bytes[i + k]!;
        if ((c & 0xc0) !== 0x80) ok = false;
        v = (v << 6) | (c & 0x3f);
      }
      const min = [0, 0, 0x80, 0x800, 0x10000][len]!;
      if (ok && v >= min && v <= 0x10ffff && !(v >= 0xd800 && v <= 0xdfff)) cp = v;
    }
    if (cp < 0) {
      const m = `<0x${hex(b, 2)}>`;
      legend.set(m, `\`${m}\` is the byte 0x${hex(b, 2)} (not valid UTF-8 here)`);
      text += m;
      i += 1;
      continue;
    }
    if (isSpecial(cp)) {
      const m = cp < 0x80 ? `<0x${hex(cp, 2)}>` : `<U+${hex(cp, 4)}>`;
      const name = SPECIAL_NAMES[cp] ?? "a control character";
      legend.set(m, cp < 0x80 ? `\`${m}\` is the byte 0x${hex(cp, 2)} (${name})` : `\`${m}\` is the invisible character U+${hex(cp, 4)} (${name})`);
      text += m;
    } else text += String.fromCodePoint(cp);
    i += cp < 0x80 ? 1 : len;
  }
  return { text, legend: [...legend.values()] };
}

/** A GitHub-style heading anchor. */
function slug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^a-z0-9 _-]/g, "")
    .replace(/ /g, "-");
}

function heading(code: string, info: CodeInfo): string {
  return `${code}: ${info.title}`;
}

/** By group (E01xx and W01xx together), errors before warnings, then by number. */
function codeOrder(a: string, b: string): number {
  return a.slice(1, 3).localeCompare(b.slice(1, 3)) || a.localeCompare(b);
}

/** A fenced block that no backtick run inside `body` can close. */
function fence(lang: string, body: string): string {
  const longest = Math.max(2, ...[...body.matchAll(/`+/g)].map((m) => m[0].length));
  const ticks = "`".repeat(longest + 1);
  return `${ticks}${lang}\n${body}\n${ticks}`;
}

interface Example {
  fixture: string;
  source: string;
  legend: string[];
  rendered: string;
}

/**
 * Checks the example as a user would (`vlmc check example.vlm`, from disk: the size limit
 * and `use` work as they do for the fixture), in a scratch folder holding the example and a
 * copy of the fixture's companion folder.
 */
function checkExample(fixture: string, bytes: Uint8Array): { result: ReturnType<typeof check>; dir: string; path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "vlmc-errors-doc-"));
  const path = join(dir, examplePath(fixture));
  writeFileSync(path, bytes);
  const companion = companionDir(fixture);
  if (companion) cpSync(companion, join(dir, relative(FIXTURE_DIR, companion)), { recursive: true });
  const result = check([path]);
  return { result, dir, path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function example(code: string, fixture: string): Example {
  const latin1 = readFixtureLatin1(fixture);
  const bytes = new Uint8Array(Buffer.from(stripExpectations(latin1), "latin1"));
  const checked = checkExample(fixture, bytes);
  try {
    return describe(code, fixture, latin1, bytes, checked);
  } finally {
    checked.cleanup();
  }
}

function describe(code: string, fixture: string, latin1: string, bytes: Uint8Array, checked: ReturnType<typeof checkExample>): Example {
  const { result } = checked;
  const diags = result.diagnostics;
  if (result.unreadable.length > 0) throw new Error(`${fixture}: ${result.unreadable.map((e) => e.message).join("; ")}`);
  const displayPath = (f: string) => relative(checked.dir, f).split(sep).join("/");

  // The stripped example must report what the fixture promises (positions may move with the
  // comments stripped; the codes may not).
  const want = parseExpectations(latin1)
    .map((e) => e.code)
    .sort();
  const got: string[] = diags.map((d) => d.code).sort();
  if (want.join() !== got.join()) {
    throw new Error(`${fixture}: without its expectation comments it reports [${got.join(", ")}], not [${want.join(", ")}]`);
  }
  if (!got.includes(code)) throw new Error(`${fixture}: reports no ${code}`);

  // The source, abbreviated when long.
  const shown = showBytes(bytes);
  let lines = shown.text.replace(/\n+$/, "").split("\n");
  if (lines.length > MAX_EXAMPLE_LINES) {
    const keep = new Set<number>();
    for (let i = 0; i < Math.min(HEAD_LINES, lines.length); i++) keep.add(i);
    for (let i = Math.max(0, lines.length - TAIL_LINES); i < lines.length; i++) keep.add(i);
    for (const d of diags.filter((x) => x.code === code && x.span.file === checked.path)) {
      const l = (result.sources.get(d.span.file)?.position(d.span.start).line ?? 1) - 1;
      for (let i = l - CONTEXT_LINES; i <= l + CONTEXT_LINES; i++) if (i >= 0 && i < lines.length) keep.add(i);
    }
    const out: string[] = [];
    let skipped = 0;
    const flush = () => {
      if (skipped > 0) out.push(`# ... (${String(skipped).replace(/\B(?=(\d{3})+$)/g, ",")} lines omitted) ...`);
      skipped = 0;
    };
    lines.forEach((l, i) => {
      // A single line is shown rather than replaced by a marker as long as itself.
      if (keep.has(i) || (skipped === 0 && keep.has(i - 1) && keep.has(i + 1))) {
        flush();
        out.push(l);
      } else skipped++;
    });
    flush();
    lines = out;
  }

  // What vlmc reports, abbreviated when long.
  let shownDiags: (Diagnostic | number)[] = diags;
  if (diags.length > MAX_SHOWN_DIAGNOSTICS) {
    const first = diags.slice(0, FIRST_DIAGNOSTICS);
    const ofCode = diags.slice(FIRST_DIAGNOSTICS).filter((d) => d.code === code);
    shownDiags = [...first, diags.length - first.length - ofCode.length, ...ofCode];
  }
  const rendered = shownDiags
    .map((d) => (typeof d === "number" ? `... (${d} more) ...\n` : renderText([d], result.sources, { color: false, displayPath })))
    .join("\n")
    .replace(/\n+$/, "");

  return { fixture, source: lines.join("\n"), legend: shown.legend, rendered };
}

/** The whole of docs/errors.md. */
export function generateErrorsDoc(): string {
  const fixtures = listFixtures();
  const codes = Object.keys(catalogue).sort(codeOrder);
  const info = (code: string) => (catalogue as Record<string, CodeInfo>)[code]!;
  const groupOf = (code: string) => code.slice(1, 3);
  const groupTitle = (g: string) => GROUPS[g] ?? `Codes ${g}xx`;
  const groups = [...new Set(codes.map(groupOf))];

  const out: string[] = [];
  out.push("# Diagnostic codes");
  out.push("");
  out.push(
    "<!-- Generated by tools/gen-errors-doc.ts from compiler/diagnostics/codes.ts and " +
      `${FIXTURE_DIR_REL}/. Do not edit: change those and run \`npm run docs\`. -->`,
  );
  out.push("");
  out.push(
    "Every diagnostic `vlmc check` reports has a code: `E` for errors (the spec cannot be used until they are fixed), " +
      "`W` for warnings (worth fixing; `vlmc check` still exits 0). A code never changes meaning. " +
      "Each section below explains one code, shows a spec that triggers it and what vlmc prints for it " +
      "(the spec is the code's test fixture, so the output is exactly what this version reports), and says how to fix it.",
  );
  out.push("");
  out.push("## Contents");
  out.push("");
  for (const g of groups) {
    out.push(`- [${groupTitle(g)}](#${slug(groupTitle(g))})`);
    for (const code of codes.filter((c) => groupOf(c) === g)) out.push(`  - [${heading(code, info(code))}](#${slug(heading(code, info(code)))})`);
  }

  for (const g of groups) {
    out.push("");
    out.push(`## ${groupTitle(g)}`);
    for (const code of codes.filter((c) => groupOf(c) === g)) {
      const ci = info(code);
      out.push("");
      out.push(`### ${heading(code, ci)}`);
      out.push("");
      out.push(`${ci.severity === "error" ? "Error" : "Warning"}. ${ci.explanation}`);
      out.push("");
      const fixture = fixtures.find((f) => fixtureCode(f) === code);
      if (!fixture) {
        out.push(`_No example yet: add a fixture \`${FIXTURE_DIR_REL}/${code}-<slug>.vlm\`._`);
      } else {
        const ex = example(code, fixture);
        out.push(`Example ([${FIXTURE_DIR_REL}/${fixture}](../${FIXTURE_DIR_REL}/${fixture})):`);
        out.push("");
        if (ex.legend.length > 0) {
          out.push(`The file holds bytes that cannot be shown as they are, marked here: ${ex.legend.join("; ")}.`);
          out.push("");
        }
        out.push(fence(fixture.endsWith(".yaml") ? "yaml" : "vlm", ex.source));
        out.push("");
        out.push("`vlmc check` reports:");
        out.push("");
        out.push(fence("text", ex.rendered));
      }
      out.push("");
      out.push(`**Fix:** ${ci.fix}`);
    }
  }
  return `${out.join("\n")}\n`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const doc = generateErrorsDoc();
  writeFileSync(ERRORS_DOC, doc);
  process.stdout.write(`wrote docs/errors.md (${Object.keys(catalogue).length} codes)\n`);
}
