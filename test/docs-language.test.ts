// The language reference stays true: every ```vlm example in docs/language.md and README.md is
// a complete file the compiler accepts without a diagnostic, every error example (a ```text
// block starting with `vlm 0.1`) is followed by exactly what `vlmc check` prints for it, the
// walk-through is specs/seemore.vlm, the links into docs/layers.md and docs/errors.md lead to
// headings that exist, the Grammar section names every rule of the parser, and
// docs/syntax-diagrams.html is the diagram page of the parser as it is now.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { analyze } from "../compiler/analyze.js";
import { checkSource } from "../compiler/check.js";
import { renderText } from "../compiler/diagnostics/render-text.js";
import { SourceFile } from "../compiler/source.js";
import { tokenize } from "../compiler/syntax/lexer.js";
import { parser } from "../compiler/syntax/parser.js";
import { SYNTAX_DIAGRAMS_PATH, syntaxDiagramsHtml } from "../tools/gen-syntax-diagrams.js";
import { repoPath } from "./helpers/paths.js";

interface Fence {
  /** The info string's first word: `vlm`, `text`, `sh`, or "" */
  lang: string;
  /** 1-based line, in the Markdown file, of the block's first content line. */
  line: number;
  text: string;
}

/** The fenced code blocks of a Markdown text (``` or ~~~, closed by a fence at least as long). */
function fences(markdown: string): Fence[] {
  const lines = markdown.split(/\r?\n/);
  const out: Fence[] = [];
  let open: { marker: string; lang: string; line: number; body: string[] } | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!open) {
      const m = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/.exec(line);
      if (m) open = { marker: m[1]!, lang: m[2]!.toLowerCase(), line: i + 2, body: [] };
      continue;
    }
    const close = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(line);
    if (close && close[1]![0] === open.marker[0] && close[1]!.length >= open.marker.length) {
      out.push({ lang: open.lang, line: open.line, text: open.body.join("\n") + "\n" });
      open = null;
    } else open.body.push(line);
  }
  assert.equal(open, null, `a code block opened at line ${open ? open.line - 1 : 0} is never closed`);
  return out;
}

function read(relative: string): string {
  return readFileSync(repoPath(relative), "utf8");
}

/** `## Title` to the next `## ` heading. */
function chapter(markdown: string, title: RegExp): string {
  const lines = markdown.split(/\r?\n/);
  const start = lines.findIndex((l) => /^## /.test(l) && title.test(l));
  assert.ok(start >= 0, `no chapter matching ${title}`);
  let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
  if (end < 0) end = lines.length;
  return lines.slice(start, end).join("\n");
}

const DOCS = ["docs/language.md", "README.md"];

for (const doc of DOCS) {
  test(`every vlm example in ${doc} checks without a diagnostic`, () => {
    const blocks = fences(read(doc)).filter((f) => f.lang === "vlm");
    if (doc === "docs/language.md") assert.ok(blocks.length >= 8, `expected the reference to hold examples, found ${blocks.length}`);
    const failures: string[] = [];
    for (const b of blocks) {
      // Checked as if it were a file in specs/, so that `use "seemore.vlm"` names a real file.
      const path = repoPath("specs", `${doc.replace(/[/.]/g, "_")}_line_${b.line}.vlm`);
      const result = checkSource(path, b.text);
      if (result.diagnostics.length === 0) continue;
      const src = new SourceFile(path, b.text);
      const lines = result.diagnostics.map((d) => {
        const p = src.position(d.span.start);
        return `  ${doc}:${b.line + p.line - 1}:${p.column}: ${d.severity}[${d.code}] ${d.message}`;
      });
      failures.push(`the example at ${doc}:${b.line} has diagnostics:\n${lines.join("\n")}`);
    }
    assert.ok(failures.length === 0, failures.join("\n"));
  });
}

test("vlm examples are complete files: each declares the version", () => {
  for (const doc of DOCS) {
    for (const b of fences(read(doc)).filter((f) => f.lang === "vlm")) {
      const tokens = tokenize(b.text).tokens;
      assert.ok(tokens[0]?.image === "vlm", `${doc}:${b.line}: a vlm example must start with \`vlm 0.1\` (fragments go in \`text\` blocks)`);
    }
  }
});

/** A text block whose first token is `vlm`: a spec shown because it is wrong. */
function isErrorExample(f: Fence): boolean {
  return f.lang === "text" && tokenize(f.text).tokens[0]?.image === "vlm";
}

test("every error example in docs/language.md is followed by what vlmc check prints for it", () => {
  const all = fences(read("docs/language.md"));
  const examples = all.map((f, i) => ({ f, i })).filter(({ f }) => isErrorExample(f));
  assert.ok(examples.length >= 3, `expected error examples in the reference, found ${examples.length}`);
  const failures: string[] = [];
  for (const { f, i } of examples) {
    const path = repoPath("specs", "example.vlm");
    const result = checkSource(path, f.text);
    const rendered = renderText(result.diagnostics, result.sources, { color: false, displayPath: (p) => relative(repoPath("specs"), p) });
    const next = all[i + 1];
    if (result.diagnostics.length === 0) failures.push(`docs/language.md:${f.line}: the error example checks without a diagnostic: show it in a vlm block, or make it wrong`);
    else if (!next || next.lang !== "text") failures.push(`docs/language.md:${f.line}: the error example must be followed by a text block with what vlmc prints:\n${rendered}`);
    else if (next.text.trimEnd() !== rendered.trimEnd()) {
      failures.push(`docs/language.md:${next.line}: the output shown for the error example at line ${f.line} is not what vlmc prints; it prints:\n${rendered}`);
    }
  }
  assert.ok(failures.length === 0, failures.join("\n\n"));
});

test("links from docs/language.md into layers.md and errors.md lead to headings that exist", () => {
  const anchors = (doc: string) =>
    new Set(
      [...read(doc).matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
        m[1]!
          .trim()
          .toLowerCase()
          .replace(/[^\p{L}\p{N}_\- ]/gu, "")
          .replace(/ /g, "-"),
      ),
    );
  const language = read("docs/language.md");
  const missing: string[] = [];
  for (const target of ["layers.md", "errors.md", ""]) {
    const known = anchors(target ? `docs/${target}` : "docs/language.md");
    const re = new RegExp(`\\]\\(${target.replace(".", "\\.")}#([^)\\s]+)\\)`, "g");
    for (const m of language.matchAll(re)) if (!known.has(m[1]!)) missing.push(`${target || "docs/language.md"}#${m[1]}`);
  }
  assert.deepEqual(missing, [], `docs/language.md links to headings that do not exist: ${missing.join(", ")}`);
  for (const code of new Set(language.match(/\b[EW]\d{4}\b/g) ?? [])) {
    assert.match(read("docs/errors.md"), new RegExp(`^### ${code}:`, "m"), `docs/language.md mentions ${code}, which docs/errors.md does not explain`);
  }
});

test("the walk-through of docs/language.md is specs/seemore.vlm, token for token", () => {
  const walk = chapter(read("docs/language.md"), /walk-through/i);
  const block = fences(walk).find((f) => f.lang === "vlm");
  assert.ok(block, "the walk-through has no vlm block");
  const images = (text: string) => tokenize(text).tokens.map((t) => t.image);
  assert.deepEqual(
    images(block.text),
    images(read("specs/seemore.vlm")),
    "specs/seemore.vlm and its walk-through in docs/language.md differ (comments aside): update the docs",
  );
});

test("the parameter counts of the walk-through are those of specs/seemore.vlm", () => {
  const walk = chapter(read("docs/language.md"), /walk-through/i);
  const model = analyze(repoPath("specs", "seemore.vlm")).models.at(-1);
  assert.ok(model, "specs/seemore.vlm declares no model");
  const count = (module?: string) => model.params.filter((p) => !module || p.module === module).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  const said = (re: RegExp) => Number(re.exec(walk)?.[1]?.replace(/,/g, "") ?? NaN);
  assert.equal(said(/the model has ([\d,]+) parameters/), count(), "the walk-through's total parameter count is wrong");
  assert.equal(said(/in the ViT \(([\d,]+)\)/), count("encoder"), "the walk-through's encoder parameter count is wrong");
  assert.equal(said(/the decoder \(([\d,]+)\)/), count("decoder"), "the walk-through's decoder parameter count is wrong");
  assert.equal(said(/the projector \(([\d,]+)\)/), count("projector"), "the walk-through's projector parameter count is wrong");
});

test("the Grammar section defines every rule of the parser, and only those", () => {
  const grammar = chapter(read("docs/language.md"), /^## \d+\.\s*Grammar\b/);
  assert.match(grammar, /\(syntax-diagrams\.html\)/, "the Grammar section links to syntax-diagrams.html");
  const code = fences(grammar)
    .map((f) => f.text)
    .join("\n");
  const defined = new Set([...code.matchAll(/^([a-z][A-Za-z]*)\s*::=/gm)].map((m) => m[1]!));
  const rules = Object.keys(parser.getGAstProductions());
  assert.ok(rules.length > 10, "the parser's rules were not found");
  const missing = rules.filter((r) => !defined.has(r));
  assert.deepEqual(missing, [], `grammar rules of parser.ts not defined in the Grammar section of docs/language.md: ${missing.join(", ")}`);
  const extra = [...defined].filter((r) => !rules.includes(r));
  assert.deepEqual(extra, [], `rules in docs/language.md that parser.ts does not have: ${extra.join(", ")}`);
});

test("docs/syntax-diagrams.html is up to date with the grammar", () => {
  const written = read(SYNTAX_DIAGRAMS_PATH).replace(/\r\n/g, "\n");
  assert.ok(written === syntaxDiagramsHtml(), "docs/syntax-diagrams.html is out of date: run `npm run docs`");
});
