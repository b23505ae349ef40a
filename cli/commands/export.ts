// `vlmc export --run DIR --format hf [--out OUT] [--checkpoint NAME]`, also `vlmc export DIR ...`:
// writes a trained run's decoder as a Hugging Face GPT-2 checkpoint folder (config.json,
// model.safetensors, the tokenizer's files; runtime/export/hf.ts does the work), by default
// DIR/export/hf. Only `hf` is a format here; a decoder GPT-2 cannot express is refused with every
// reason listed, and nothing is written.
//
// Exit codes: 0 exported, 1 the run does not fit GPT-2 (or its files do not fit together),
// 2 bad command line or a missing or unreadable run folder.
import { join } from "node:path";
import { type Command, Option } from "commander";
import { ExportError, exportHfGpt2 } from "../../runtime/export/hf.js";
import { readRun, RunError } from "../../runtime/eval/run.js";
import type { Io } from "../main.js";
import { displayPath, EXIT_ERRORS, EXIT_OK, EXIT_USAGE, reportDiagnostics } from "../report.js";

export interface ExportCliOptions {
  run?: string;
  format: "hf";
  out?: string;
  checkpoint?: string;
}

export function registerExport(program: Command, io: Io, setCode: (code: number) => void): void {
  program
    .command("export")
    .description("write a trained run's decoder in another format: `hf`, a Hugging Face GPT-2 checkpoint folder (config.json, model.safetensors, tokenizer files)")
    .argument("[dir]", "a run folder written by `vlmc train` (or give --run DIR)")
    .option("--run <dir>", "the run folder")
    .addOption(new Option("--format <format>", "what to write").choices(["hf"]).makeOptionMandatory())
    .option("--out <dir>", "the folder to write (replaced whole if it exists; default: DIR/export/hf)")
    .option("--checkpoint <name>", "a checkpoint's weights instead of the final ones: its name under DIR/checkpoints, `last`, a checkpoint folder or a .safetensors file")
    .action((dir: string | undefined, opts: ExportCliOptions) => setCode(runExport(dir, opts, io)));
}

export function runExport(dirArg: string | undefined, opts: ExportCliOptions, io: Io): number {
  const usage = (message: string): number => {
    io.stderr(`vlmc: error: ${message}\n`);
    return EXIT_USAGE;
  };
  if (dirArg !== undefined && opts.run !== undefined && dirArg !== opts.run) return usage(`two run folders given (${dirArg} and --run ${opts.run}): give one`);
  const dir = opts.run ?? dirArg;
  if (dir === undefined) return usage("no run folder: give --run DIR (a folder written by `vlmc train`)");
  let run;
  try {
    run = readRun(dir, opts.checkpoint);
  } catch (err) {
    if (!(err instanceof RunError)) throw err;
    if (err.diagnostics.length) reportDiagnostics(io, err.diagnostics, err.sources, "text");
    io.stderr(`vlmc: error: ${err.message}\n`);
    return err.usage ? EXIT_USAGE : EXIT_ERRORS;
  }
  const out = opts.out ?? join(dir, "export", "hf");
  try {
    const r = exportHfGpt2(run, out);
    const c = r.config;
    io.stdout(`exported ${displayPath(out)}: GPT-2 with ${c.n_layer} layer${c.n_layer === 1 ? "" : "s"}, ${c.n_head} heads, width ${c.n_embd}, ${c.n_positions} positions, vocabulary ${c.vocab_size}${c.tie_word_embeddings ? ", tied head" : ", untied head"} (${r.files.join(", ")})\n`);
    for (const n of r.notes) io.stdout(`note: ${n}\n`);
    return EXIT_OK;
  } catch (err) {
    if (!(err instanceof ExportError)) throw err;
    io.stderr(`vlmc: error: ${err.message}${err.problems.length ? ":" : ""}\n`);
    for (const p of err.problems) io.stderr(`  - ${p}\n`);
    return err.usage ? EXIT_USAGE : EXIT_ERRORS;
  }
}
