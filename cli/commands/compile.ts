// `vlmc compile FILE --emit ir|yaml|ts [-o OUT]`: a .vlm spec -> its IR document, as JSON (`ir`)
// or YAML, or (`ts`) a standalone TypeScript module of the model (compiler/emit/ts.ts,
// docs/emit-ts.md). FILE may also be an IR document (.json, .yaml, .yml): it is validated and
// verified, then written again with its paths re-based to the new location. The output goes to
// stdout (and nothing else does) unless `-o` names a file, which is written atomically.
// Diagnostics go to stderr, rendered as `check` renders them. Exit codes as `check`: 0 written,
// 1 errors reported (nothing written), 2 unreadable input, unwritable output or a bad command line.
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Option, type Command } from "commander";
import { compile } from "../../compiler/compile.js";
import { diagnostic, hasErrors, type Diagnostic } from "../../compiler/diagnostics/diagnostic.js";
import { reason, readSpecBytes, writeFileAtomic } from "../../compiler/files.js";
import { rebaseIr } from "../../compiler/ir/paths.js";
import type { Ir } from "../../compiler/ir/types.js";
import type { IrPath } from "../../compiler/ir/locate.js";
import { emitTs } from "../../compiler/emit/ts.js";
import { specLocator } from "../../compiler/emit/locate.js";
import type { Span } from "../../compiler/source.js";
import { isIrPath, readIr } from "../../compiler/ir/validate.js";
import { irToJson, irToYaml } from "../../compiler/ir/yaml.js";
import type { SourceFile } from "../../compiler/source.js";
import type { Io } from "../main.js";
import { displayPath, EXIT_ERRORS, EXIT_OK, EXIT_USAGE, exitOnFileError, reportDiagnostics } from "../report.js";

export interface CompileCommandOptions {
  emit?: "ir" | "yaml" | "ts";
  output?: string;
  model?: string;
  format: "text" | "json";
}

export function registerCompile(program: Command, io: Io, setCode: (code: number) => void): void {
  program
    .command("compile")
    .description("compile a .vlm spec (or re-emit an IR document) to the IR, as JSON or YAML, or to a standalone TypeScript module")
    .argument("<file>", "a .vlm spec, or an IR document (.json, .yaml, .yml)")
    .addOption(
      new Option("--emit <kind>", "the IR as JSON (`ir`) or as YAML (`yaml`), or the model as a TypeScript module (`ts`); default: from the -o file's extension, else ir").choices(["ir", "yaml", "ts"]),
    )
    .option("-o, --output <file>", "write the document to FILE (atomically) instead of stdout")
    .option("--model <name>", "which model of the spec (default: the last one declared)")
    .addOption(new Option("--format <format>", "format of the diagnostics on stderr").choices(["text", "json"]).default("text"))
    .action((file: string, opts: CompileCommandOptions) => setCode(runCompile(file, opts, io)));
}

export function runCompile(file: string, opts: CompileCommandOptions, io: Io): number {
  const toStdout = !opts.output || opts.output === "-";
  const out = toStdout ? null : resolve(opts.output!);
  // Paths in the document are relative to where it is written.
  const baseDir = out ? dirname(out) : process.cwd();
  const emit = opts.emit ?? (out && /\.ya?ml$/i.test(out) ? "yaml" : out && /\.[cm]?ts$/i.test(out) ? "ts" : "ir");

  let ir: Ir | null = null;
  let diagnostics: Diagnostic[];
  let sources: Map<string, SourceFile>;
  // Where a value of the IR is written, for the diagnostics of `--emit ts`.
  let where: (path: IrPath) => Span = () => ({ file, start: 0, end: 0 });
  try {
    if (isIrPath(file)) {
      const input = readIr(file);
      diagnostics = input.diagnostics;
      sources = input.sources;
      if (input.ir && opts.model !== undefined && opts.model !== input.ir.model) {
        diagnostics.push(
          diagnostic("E0212", input.locator.at(["model"]), `this IR document holds model \`${input.ir.model}\`, not \`${opts.model}\``, {
            help: [`leave out \`--model\`, or write \`--model ${input.ir.model}\``],
          }),
        );
      } else if (input.ir) ir = rebaseIr(input.ir, input.baseDir, baseDir);
      where = (path) => input.locator.at(path);
    } else {
      const got = readSpecBytes(file);
      const r = compile(file, { baseDir, ...(opts.model !== undefined ? { model: opts.model } : {}), ...(got.tooLarge ? {} : { text: got.bytes }) });
      ({ diagnostics, sources } = r);
      ir = r.ir;
      if (ir) where = specLocator(ir, sources, baseDir, file);
    }
  } catch (err) {
    return exitOnFileError(io, err);
  }

  let text: string | null = null;
  if (ir && !hasErrors(diagnostics)) {
    if (emit === "ts") {
      const r = emitTs(ir, { where, source: displayPath(file) });
      diagnostics.push(...r.diagnostics);
      text = r.text;
    } else text = emit === "yaml" ? irToYaml(ir) : irToJson(ir);
  }
  reportDiagnostics(io, diagnostics, sources, opts.format);
  if (text === null || hasErrors(diagnostics)) return EXIT_ERRORS;

  if (!out) {
    io.stdout(text);
    return EXIT_OK;
  }
  try {
    writeAtomically(out, text);
  } catch (err) {
    io.stderr(`vlmc: error: cannot write ${opts.output}: ${reason(err)}\n`);
    return EXIT_USAGE;
  }
  return EXIT_OK;
}

/** Writes a temporary file beside `path`, then renames it over `path`: never a half-written file. */
/** `-o sub/dir/m.yaml` creates the folders it names, then writes atomically. */
export function writeAtomically(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, text);
}
