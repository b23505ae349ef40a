// The spec of a run: the file compiled to its IR, with `--set path.key=value` overrides applied
// through the language's own override mechanism (a derived model, `model m__set extends m {
// path.key: value }`), so that an override is checked exactly as the same line in a spec would
// be. The derived model lives in a source that is never written to disk; its diagnostics are
// mapped back onto a display source named `--set` whose lines are the overrides as typed, so a
// bad value is underlined in the user's own `--set` text. No tfjs here.
import { basename, dirname, join, resolve } from "node:path";
import { analyze } from "../../compiler/analyze.js";
import { compile } from "../../compiler/compile.js";
import { lower } from "../../compiler/ir/lower.js";
import { hasErrors, type Diagnostic } from "../../compiler/diagnostics/diagnostic.js";
import { readSpecBytes } from "../../compiler/files.js";
import type { Ir } from "../../compiler/ir/types.js";
import { isIrPath, readIr } from "../../compiler/ir/validate.js";
import { SourceFile, type Span } from "../../compiler/source.js";

/** The display name of the `--set` overrides in diagnostics. */
export const SET_SOURCE = "--set";

export interface RunSpec {
  ir: Ir | null;
  diagnostics: Diagnostic[];
  sources: Map<string, SourceFile>;
  /** A `--set` that is not `path.key=value` (a usage error, not a diagnostic). */
  usage?: string;
  /** Which stages left `accumulate` unwritten (the trainer may choose it from the memory estimate). */
  accumulateWritten: Map<string, boolean>;
}

const KEY = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$/;

/** Splits `path.key=value`; null with a message when it is not of that form. */
export function parseSet(text: string): { key: string; value: string } | { error: string } {
  const eq = text.indexOf("=");
  if (eq < 0) return { error: `--set ${text}: expected path.key=value (e.g. train.batch=8)` };
  const key = text.slice(0, eq);
  if (!KEY.test(key)) return { error: `--set ${text}: \`${key}\` is not a setting path; write section.key (decoder.layers=2), train.key (train.batch=8) or train.STAGE.key (train.align.steps=10)` };
  if (text.slice(eq + 1).trim() === "") return { error: `--set ${text}: no value after \`=\`` };
  return { key, value: text.slice(eq + 1) };
}

/** Compiles `specPath` (a .vlm spec or an IR document) with `sets` applied. */
export function compileRunSpec(specPath: string, sets: readonly string[] = []): RunSpec {
  const accumulateWritten = new Map<string, boolean>();
  if (isIrPath(specPath)) {
    if (sets.length) return { ir: null, diagnostics: [], sources: new Map(), usage: "--set applies to a .vlm spec, not to an IR document", accumulateWritten };
    const r = readIr(specPath);
    // An IR says every setting: its `accumulate` is as written.
    for (const s of r.ir?.train?.stages ?? []) accumulateWritten.set(s.name, true);
    return { ir: r.ir, diagnostics: r.diagnostics, sources: r.sources, accumulateWritten };
  }
  const parsed = sets.map(parseSet);
  const bad = parsed.find((p): p is { error: string } => "error" in p);
  if (bad) return { ir: null, diagnostics: [], sources: new Map(), usage: bad.error, accumulateWritten };

  const got = readSpecBytes(specPath); // throws FileError: the caller reports it
  const base = compileWith(specPath, got.tooLarge ? undefined : got.bytes);
  if (!base.ir || hasErrors(base.diagnostics) || sets.length === 0) return { ir: base.ir, diagnostics: base.diagnostics, sources: base.sources, accumulateWritten: base.written };

  // The derived model: the overrides one per line, `=` turned into `:` (same columns).
  const name = base.ir.model;
  const header = `vlm 0.1\nuse ${JSON.stringify(basename(specPath))}\nmodel ${name}__set extends ${name} {\n`;
  const lines = (parsed as { key: string; value: string }[]).map((p) => `${p.key}:${p.value}`);
  const text = `${header}${lines.join("\n")}\n}\n`;
  const virtualPath = join(dirname(resolve(specPath)), `.${basename(specPath)}.set.vlm`);
  const derived = compileWith(virtualPath, text);
  const virtual = new SourceFile(virtualPath, text);
  const display = new SourceFile(SET_SOURCE, sets.join("\n"));
  const firstLine = virtual.lineIndex(header.length);
  const mapSpan = (s: Span): Span => {
    if (s.file !== virtualPath) return s;
    const li = virtual.lineIndex(s.start) - firstLine;
    if (li < 0 || li >= sets.length) return display.span(0, 0);
    const from = (o: number) => display.lineStarts[li]! + Math.min(o - virtual.lineStarts[li + firstLine]!, sets[li]!.length);
    return display.span(from(s.start), from(Math.max(s.start, s.end)));
  };
  const diagnostics = derived.diagnostics.map((d) => ({ ...d, span: mapSpan(d.span), related: d.related.map((r) => ({ ...r, span: mapSpan(r.span) })) }));
  const sources = new Map(derived.sources);
  sources.delete(virtualPath);
  sources.set(SET_SOURCE, display);
  const ir = derived.ir;
  if (ir) {
    ir.model = name;
    delete ir.span; // it pointed into the derived model's source, which exists nowhere
  }
  return { ir, diagnostics, sources, accumulateWritten: derived.written };
}

/** `compile` (compiler/compile.ts) for the entry model, also saying which stages write `accumulate`. */
function compileWith(path: string, text: string | Uint8Array | undefined): { ir: Ir | null; diagnostics: Diagnostic[]; sources: Map<string, SourceFile>; written: Map<string, boolean> } {
  const a = analyze(path, text);
  const sources = new Map<string, SourceFile>();
  for (const [p, parsed] of a.program.files) sources.set(p, parsed.source);
  const written = new Map<string, boolean>();
  const model = a.models[a.models.length - 1];
  if (hasErrors(a.diagnostics) || !model) {
    const r = compile(path, text === undefined ? {} : { text }); // its diagnostics, including "no model"
    return { ir: null, diagnostics: r.diagnostics, sources: r.sources, written };
  }
  // Overrides (`train.STAGE.accumulate: 4`, --set) land in the stage's settings too.
  const stages = model.analysis.syntax.sections.get("train")?.children;
  for (const [name, st] of stages ?? []) written.set(name, st.settings.has("accumulate"));
  const ir = lower(model, { baseDir: process.cwd(), sources });
  return { ir, diagnostics: [...a.diagnostics], sources, written };
}
