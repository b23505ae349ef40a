// The `vlmc` command line. Parses arguments (commander), calls the package API, renders
// diagnostics. Exit codes: 0 clean, 1 errors reported, 2 bad command line or unreadable file.
import { readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { check } from "../compiler/check.js";
import { registerCompile } from "./commands/compile.js";
import { registerSummary } from "./commands/summary.js";
import { registerBackend } from "./commands/backend.js";
import { registerForward } from "./commands/forward.js";
import { registerTrain } from "./commands/train.js";
import { registerEval } from "./commands/eval.js";
import { registerGenerate } from "./commands/generate.js";
import { registerPlot } from "./commands/plot.js";
import { registerReport } from "./commands/report.js";
import { registerExport } from "./commands/export.js";
import { EXIT_ERRORS, EXIT_OK, EXIT_USAGE, reportDiagnostics } from "./report.js";
import { PretrainedError } from "../runtime/pretrained/index.js";

export { EXIT_ERRORS, EXIT_OK, EXIT_USAGE } from "./report.js";

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

export interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Colour in text output. */
  color: boolean;
}

const defaultIo = (): Io => ({
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  // Diagnostics go to stderr, so colour follows stderr.
  color: Boolean(process.stderr.isTTY) && !process.env.NO_COLOR && process.env.TERM !== "dumb",
});

export async function main(argv: string[], io: Io = defaultIo()): Promise<number> {
  let code = EXIT_OK;
  const program = new Command("vlmc")
    .description("Compile, check and train vision-language models described in .vlm files.")
    .version(packageVersion(), "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: io.stdout,
      writeErr: io.stderr,
      outputError: (str, write) => write(str.endsWith("\n") ? str : `${str}\n`),
    });

  program
    .command("check")
    .description("check .vlm files for errors without running anything")
    .argument("<files...>", ".vlm specs, or IR documents (.json, .yaml)")
    .addOption(new Option("--format <format>", "output format").choices(["text", "json"]).default("text"))
    .action((files: string[], opts: { format: "text" | "json" }) => {
      const result = check(files);
      // The JSON document is what `check --format json` is for: stdout.
      reportDiagnostics(io, result.diagnostics, result.sources, opts.format, io.stdout);
      for (const err of result.unreadable) io.stderr(`vlmc: error: ${err.message}\n`);
      code = result.unreadable.length > 0 ? EXIT_USAGE : result.ok ? EXIT_OK : EXIT_ERRORS;
    });

  registerCompile(program, io, (c) => {
    code = c;
  });

  registerSummary(program, io, (c) => {
    code = c;
  });

  registerBackend(program, io, (c) => {
    code = c;
  });

  registerForward(program, io, (c) => {
    code = c;
  });

  registerTrain(program, io, (c) => {
    code = c;
  });

  registerEval(program, io, (c) => {
    code = c;
  });

  registerGenerate(program, io, (c) => {
    code = c;
  });

  registerPlot(program, io, (c) => {
    code = c;
  });

  registerReport(program, io, (c) => {
    code = c;
  });

  registerExport(program, io, (c) => {
    code = c;
  });

  try {
    if (argv.length === 0) {
      program.outputHelp();
      return EXIT_USAGE;
    }
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit through here with code 0.
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    // A pretrained encoder's files missing or changed since the model was compiled, found when a
    // model is made (by any command): the user's files, not a bug.
    if (err instanceof PretrainedError) {
      io.stderr(`vlmc: error: ${err.message}\n`);
      return EXIT_ERRORS;
    }
    throw err;
  }
}
