// `vlmc export --run DIR --format hf|tfjs [--out OUT] [--checkpoint NAME] [--context N]`, also
// `vlmc export DIR ...`: writes a trained run in another format, by default into DIR/export/FORMAT.
//   hf    the decoder as a Hugging Face checkpoint folder (config.json, model.safetensors, the
//         tokenizer's files): a `gpt` decoder as GPT-2 (runtime/export/hf.ts), a `llama` decoder
//         as Llama (runtime/export/llama.ts; --context sets max_position_embeddings, which the IR
//         of a rotary decoder does not record). A decoder the format cannot express is refused
//         with every reason listed, and nothing is written.
//   tfjs  the whole model as TensorFlow.js artifacts (model.json, weight shards, tokenizer files,
//         a standalone inference module: runtime/export/tfjs.ts).
//
// Exit codes: 0 exported, 1 the run cannot be exported (or its files do not fit together),
// 2 bad command line or a missing or unreadable run folder.
import { join } from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import { ExportError, exportHfGpt2 } from "../../runtime/export/hf.js";
import { exportHfLlama } from "../../runtime/export/llama.js";
import { exportTfjs } from "../../runtime/export/tfjs.js";
import { readRun, RunError } from "../../runtime/eval/run.js";
import type { Io } from "../main.js";
import { displayPath, EXIT_ERRORS, EXIT_OK, EXIT_USAGE, reportDiagnostics, runFolderArg } from "../report.js";

export interface ExportCliOptions {
  run?: string;
  format: "hf" | "tfjs";
  out?: string;
  checkpoint?: string;
  context?: number;
}

/** Exports smaller than this print no progress: they take well under a second. */
const PROGRESS_BYTES = 16 * 1024 * 1024;

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError("a whole number of at least 1");
  return n;
}

export function registerExport(program: Command, io: Io, setCode: (code: number) => void): void {
  program
    .command("export")
    .description(
      "write a trained run in another format: `hf`, its decoder as a Hugging Face checkpoint folder (GPT-2 for a `gpt` decoder, Llama for `llama`); `tfjs`, the whole model as TensorFlow.js artifacts with a standalone inference module",
    )
    .argument("[dir]", "a run folder written by `vlmc train` (or give --run DIR)")
    .option("--run <dir>", "the run folder")
    .addOption(new Option("--format <format>", "what to write").choices(["hf", "tfjs"]).makeOptionMandatory())
    .option("--out <dir>", "the folder to write (replaced whole if it exists; default: DIR/export/FORMAT)")
    .option("--checkpoint <name>", "a checkpoint's weights instead of the final ones: its name under DIR/checkpoints, `last`, a checkpoint folder or a .safetensors file")
    .option("--context <n>", "Llama only: max_position_embeddings in config.json (default 2048; the IR records no context for rotary positions)", positiveInt)
    .action((dir: string | undefined, opts: ExportCliOptions) => setCode(runExport(dir, opts, io)));
}

export function runExport(dirArg: string | undefined, opts: ExportCliOptions, io: Io): number {
  const usage = (message: string): number => {
    io.stderr(`vlmc: error: ${message}\n`);
    return EXIT_USAGE;
  };
  const folder = runFolderArg(dirArg, opts.run);
  if ("error" in folder) return usage(folder.error);
  const { dir } = folder;
  let run;
  try {
    run = readRun(dir, opts.checkpoint);
  } catch (err) {
    if (!(err instanceof RunError)) throw err;
    if (err.diagnostics.length) reportDiagnostics(io, err.diagnostics, err.sources, "text");
    io.stderr(`vlmc: error: ${err.message}\n`);
    return err.usage ? EXIT_USAGE : EXIT_ERRORS;
  }
  const llama = run.ir.modules.decoder?.preset === "llama";
  if (opts.context !== undefined && !(opts.format === "hf" && llama)) return usage("--context is for `--format hf` of a `llama` decoder (its max_position_embeddings)");
  const out = opts.out ?? join(dir, "export", opts.format);
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
  try {
    let notes: string[];
    if (opts.format === "tfjs") {
      const mb = (n: number) => (n / (1024 * 1024)).toFixed(1);
      let shown = 0;
      const r = exportTfjs(run, out, {
        onProgress: (written, total) => {
          // A line per tenth of a large export (stderr: stdout is the summary).
          if (total < PROGRESS_BYTES || written < total * ((shown + 1) / 10)) return;
          shown = Math.floor((10 * written) / total);
          if (written < total) io.stderr(`writing ${displayPath(out)}: ${mb(written)}/${mb(total)} MB\n`);
        },
      });
      // Many shards are named by the first and the last.
      const listed = r.shards.length > 2 ? r.files.filter((f) => !r.shards.includes(f) || f === r.shards[0] || f === r.shards.at(-1)).map((f) => (f === r.shards[0] ? `${f} .. ${r.shards.at(-1)}` : f)).filter((f) => f !== r.shards.at(-1)) : r.files;
      const size = r.bytes < 1024 * 1024 ? `${(r.bytes / 1024).toFixed(1)} KB` : `${mb(r.bytes)} MB`;
      io.stdout(`exported ${displayPath(out)}: TensorFlow.js artifacts of \`${run.ir.model}\`, ${size} of float32 weights in ${plural(r.shards.length, "shard")} (${listed.join(", ")})\n`);
      notes = r.notes;
    } else if (llama) {
      const r = exportHfLlama(run, out, opts.context !== undefined ? { context: opts.context } : {});
      const c = r.config;
      const kv = c.num_key_value_heads !== c.num_attention_heads ? ` (${c.num_key_value_heads} key/value)` : "";
      io.stdout(
        `exported ${displayPath(out)}: Llama with ${plural(c.num_hidden_layers, "layer")}, ${c.num_attention_heads} heads${kv}, width ${c.hidden_size}, SwiGLU ${c.intermediate_size}, vocabulary ${c.vocab_size}${c.tie_word_embeddings ? ", tied head" : ", untied head"} (${r.files.join(", ")})\n`,
      );
      notes = r.notes;
    } else {
      const r = exportHfGpt2(run, out);
      const c = r.config;
      io.stdout(`exported ${displayPath(out)}: GPT-2 with ${plural(c.n_layer, "layer")}, ${c.n_head} heads, width ${c.n_embd}, ${c.n_positions} positions, vocabulary ${c.vocab_size}${c.tie_word_embeddings ? ", tied head" : ", untied head"} (${r.files.join(", ")})\n`);
      notes = r.notes;
    }
    for (const n of notes) io.stdout(`note: ${n}\n`);
    return EXIT_OK;
  } catch (err) {
    // The destination cannot be written (permissions, a full disk): the older export is untouched.
    if ((err as NodeJS.ErrnoException).code !== undefined && (err as NodeJS.ErrnoException).syscall !== undefined) return usage(`cannot write ${displayPath(out)}: ${(err as Error).message}`);
    if (!(err instanceof ExportError)) throw err;
    io.stderr(`vlmc: error: ${err.message}${err.problems.length ? ":" : ""}\n`);
    for (const p of err.problems) io.stderr(`  - ${p}\n`);
    return err.usage ? EXIT_USAGE : EXIT_ERRORS;
  }
}
