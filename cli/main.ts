// The `vlmc` command line. Parses arguments (commander), calls the package API, renders
// diagnostics. Exit codes: 0 clean, 1 errors reported, 2 bad command line or unreadable file.
import { readFileSync } from "node:fs";
import { relative, isAbsolute } from "node:path";
import { Command, CommanderError, Option } from "commander";
import { check } from "../compiler/check.js";
import { renderJson } from "../compiler/diagnostics/render-json.js";
import { renderText } from "../compiler/diagnostics/render-text.js";
import { registerCompile } from "./commands/compile.js";
import { registerSummary } from "./commands/summary.js";

export const EXIT_OK = 0;
export const EXIT_ERRORS = 1;
export const EXIT_USAGE = 2;

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

/** Paths in messages: as the user typed them, or relative to the working directory. */
function displayPath(file: string): string {
  if (!isAbsolute(file)) return file;
  const rel = relative(process.cwd(), file);
  return rel.startsWith("..") ? file : rel;
}

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
      if (opts.format === "json") io.stdout(renderJson(result.diagnostics, result.sources, displayPath));
      else if (result.diagnostics.length > 0) {
        io.stderr(renderText(result.diagnostics, result.sources, { color: io.color, displayPath }));
        io.stderr(summaryLine(result.diagnostics));
      }
      for (const err of result.unreadable) io.stderr(`vlmc: error: ${err.message}\n`);
      code = result.unreadable.length > 0 ? EXIT_USAGE : result.ok ? EXIT_OK : EXIT_ERRORS;
    });

  registerCompile(program, io, (c) => {
    code = c;
  });

  registerSummary(program, io, (c) => {
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
    throw err;
  }
}

function summaryLine(diags: readonly { severity: string }[]): string {
  const errors = diags.filter((d) => d.severity === "error").length;
  const warnings = diags.length - errors;
  const parts: string[] = [];
  if (errors) parts.push(`${errors} error${errors === 1 ? "" : "s"}`);
  if (warnings) parts.push(`${warnings} warning${warnings === 1 ? "" : "s"}`);
  return parts.length ? `${parts.join(", ")}\n` : "";
}
