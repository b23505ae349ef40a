// `vlmc summary FILE`: parameters, shapes, FLOPs and memory of a model, per layer, module and
// stage (compiler/summary/summary.ts). FILE is a .vlm spec (compiled first; its diagnostics are
// rendered as `check` renders them) or an IR document (.json, .yaml).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { type Command, Option } from "commander";
import { compile } from "../../compiler/compile.js";
import { estimate, memoryWarnings, type Estimate, type StageCost } from "../../compiler/cost/estimate.js";
import { hasErrors, sortDiagnostics, type Diagnostic } from "../../compiler/diagnostics/diagnostic.js";
import { readSpecBytes } from "../../compiler/files.js";
import type { Ir, IrSpan } from "../../compiler/ir/types.js";
import { isIrPath, readIr, type IrLocator } from "../../compiler/ir/validate.js";
import { SourceFile, type Span } from "../../compiler/source.js";
import { DEFAULT_DEPTH, renderSummary, summaryJson } from "../../compiler/summary/summary.js";
import type { Io } from "../main.js";
import { displayPath, EXIT_ERRORS, EXIT_OK, EXIT_USAGE, exitOnFileError, reportDiagnostics, positiveInt } from "../report.js";

interface SummaryOptions {
  format: "text" | "json";
  batch?: number;
  text?: number;
  depth: number;
}

export function registerSummary(program: Command, io: Io, setCode: (code: number) => void): void {
  program
    .command("summary")
    .description("parameters, shapes, FLOPs and memory of a model, per layer, module and training stage")
    .argument("<file>", "a .vlm spec, or an IR document (.json, .yaml)")
    .addOption(new Option("--format <format>", "output format").choices(["text", "json"]).default("text"))
    .addOption(new Option("--batch <n>", "batch size (default: each stage's own)").argParser(positiveInt))
    .addOption(new Option("--text <n>", "text tokens per example (default: the text budget, at most 128)").argParser(positiveInt))
    .addOption(new Option("--depth <n>", "levels of the layer tree shown in the table").argParser(positiveInt).default(DEFAULT_DEPTH))
    .action((file: string, opts: SummaryOptions) => setCode(runSummary(file, opts, io)));
}

interface Loaded {
  ir: Ir | null;
  diagnostics: Diagnostic[];
  sources: Map<string, SourceFile>;
  /** The folder the IR's paths are relative to. */
  baseDir: string;
  /** For an IR document: where its values are written. */
  locator?: IrLocator;
}

function load(file: string): Loaded {
  if (isIrPath(file)) return readIr(file);
  const got = readSpecBytes(file);
  const r = compile(file, got.tooLarge ? {} : { text: got.bytes });
  return { ...r, baseDir: process.cwd() };
}

export function runSummary(file: string, opts: SummaryOptions, io: Io): number {
  let loaded: Loaded;
  try {
    loaded = load(file);
  } catch (err) {
    return exitOnFileError(io, err);
  }
  const { ir, sources } = loaded;
  const diagnostics = [...loaded.diagnostics];
  let est: Estimate | null = null;
  if (ir && !hasErrors(diagnostics)) {
    // W0502 as `check` reports it: the spec as written, whatever --batch and --text ask.
    // For an IR document, at the stage in its spec when the spec is at hand, else in the document.
    const at = (s: StageCost, i: number) => (s.span ? spanOf(s.span, loaded, sources) : null) ?? loaded.locator?.at(["train", "stages", i, "name"]) ?? null;
    diagnostics.push(...memoryWarnings(estimate(ir), at));
    est = estimate(ir, { ...(opts.batch ? { batch: opts.batch } : {}), ...(opts.text ? { text: opts.text } : {}) });
  }
  sortDiagnostics(diagnostics);
  // As text whatever --format asks: --format is the summary's, on stdout.
  reportDiagnostics(io, diagnostics, sources, "text");
  if (!ir || !est) return EXIT_ERRORS;
  if (opts.text && est.textBudget !== null && opts.text > est.textBudget) {
    io.stderr(`vlmc: error: --text ${opts.text} is more than the decoder's text budget of ${est.textBudget} tokens (context ${est.context} - ${est.visualTokens} visual)\n`);
    return EXIT_USAGE;
  }
  if (opts.format === "json") io.stdout(`${JSON.stringify(summaryJson(est), null, 2)}\n`);
  else io.stdout(renderSummary(est, { color: io.color && Boolean(process.stdout.isTTY), depth: opts.depth }));
  return EXIT_OK;
}

/** An IR span (line/column, file relative to the IR's folder) as a span into a loaded source. */
function spanOf(s: IrSpan, loaded: Loaded, sources: Map<string, SourceFile>): Span | null {
  const abs = resolve(loaded.baseDir, s.file);
  let key = [...sources.keys()].find((k) => resolve(k) === abs);
  if (!key) {
    try {
      const src = new SourceFile(displayPath(abs), readFileSync(abs, "utf8"));
      sources.set(src.path, src);
      key = src.path;
    } catch {
      return null;
    }
  }
  const src = sources.get(key)!;
  return src.span(offsetOf(src, s.line, s.column), offsetOf(src, s.endLine, s.endColumn));
}

/** The offset of a 1-based line and column (in code points). */
function offsetOf(src: SourceFile, line: number, column: number): number {
  let at = src.lineStarts[Math.max(0, Math.min(line, src.lineCount) - 1)] ?? 0;
  for (let c = 1; c < column && at < src.text.length; c++) at += src.text.codePointAt(at)! > 0xffff ? 2 : 1;
  return at;
}
