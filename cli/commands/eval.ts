// `vlmc eval DIR [--split validation|novel|ordinary|train] [--limit N] [--checkpoint NAME]
// [--batch N] [--backend B] [--json]`: greedy-decodes a caption for each image of a trained run's
// data split and prints exact-match accuracy, overall and (for `shapes`) on the novel and ordinary
// validation images, next to the majority-caption baseline, with a few of the mistakes
// (runtime/eval/run.ts does the work).
//
// Exit codes: 0 evaluated, 1 the run's files do not fit together (an invalid ir.json, weights of
// another model), 2 bad command line, a missing or unreadable run folder or file, or a backend
// that cannot start.
import { type Command, InvalidArgumentError, Option } from "commander";
import { BackendError, backendRequest, initBackend, type BackendRequest } from "../../runtime/backend.js";
import type { Rate } from "../../runtime/eval/exact-match.js";
import { evaluateRun, readRun, RunError, SPLITS, type EvalResult, type SplitName } from "../../runtime/eval/run.js";
import type { Io } from "../main.js";
import { displayPath, EXIT_ERRORS, EXIT_OK, EXIT_USAGE, positiveInt, reportDiagnostics } from "../report.js";
import { backendOption } from "./backend.js";

export interface EvalCliOptions {
  split: SplitName;
  limit?: number;
  checkpoint?: string;
  batch: number;
  backend?: BackendRequest;
  json?: boolean;
  /** Mistakes shown in text output. */
  mistakes: number;
}

function countArg(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError("expected a whole number");
  return Number(value);
}

export function registerEval(program: Command, io: Io, setCode: (code: number) => void): void {
  program
    .command("eval")
    .description("caption a trained run's held-out images by greedy decoding and print exact-match accuracy")
    .argument("<dir>", "a run folder written by `vlmc train`")
    .addOption(new Option("--split <split>", "which images: the validation split, its novel or ordinary half (shapes), or the training split").choices(SPLITS).default("validation"))
    .addOption(new Option("--limit <n>", "only the first N images of the split").argParser(positiveInt))
    .option("--checkpoint <name>", "a checkpoint's weights instead of the final ones: its name under DIR/checkpoints, `last`, a checkpoint folder or a .safetensors file")
    .addOption(new Option("--batch <n>", "images decoded at once").argParser(positiveInt).default(64))
    .addOption(new Option("--mistakes <n>", "mistakes to show").argParser(countArg).default(5))
    .addOption(backendOption())
    .option("--json", "print one JSON document on stdout (every prediction that was wrong included)")
    .action(async (dir: string, opts: EvalCliOptions) => setCode(await runEval(dir, opts, io)));
}

const pct = (r: Rate) => `${r.correct}/${r.count} = ${(100 * r.rate).toFixed(1)}%`;

export async function runEval(dir: string, opts: EvalCliOptions, io: Io): Promise<number> {
  const fail = (err: RunError): number => {
    if (err.diagnostics.length) reportDiagnostics(io, err.diagnostics, err.sources, "text");
    io.stderr(`vlmc: error: ${err.message}\n`);
    return err.usage ? EXIT_USAGE : EXIT_ERRORS;
  };
  let run;
  try {
    run = readRun(dir, opts.checkpoint);
  } catch (err) {
    if (err instanceof RunError) return fail(err);
    throw err;
  }
  let backend;
  try {
    // The backend line: on stdout with the report, or on stderr when stdout is one JSON document.
    backend = await initBackend(backendRequest(opts.backend), { log: (line) => (opts.json ? io.stderr : io.stdout)(`${line}\n`) });
  } catch (err) {
    if (err instanceof BackendError) {
      io.stderr(`vlmc: error: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  let result: EvalResult;
  try {
    result = await evaluateRun(backend.tf, run, {
      split: opts.split,
      batch: opts.batch,
      ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
      // Decoding takes a while (a full forward pass per character): say how far it got, on stderr.
      onProgress: (done, total) => {
        if (done < total) io.stderr(`decoded ${done}/${total} images\n`);
      },
    });
  } catch (err) {
    if (err instanceof RunError) return fail(err);
    throw err;
  }

  if (opts.json) {
    const doc = {
      model: result.model,
      weights: displayPath(run.weights),
      data: result.data,
      split: result.split,
      examples: result.examples,
      exact_match: result.overall,
      groups: result.groups,
      baseline: result.baseline,
      mistakes: result.mistakes.map((m) => ({ id: m.id, group: m.group, reference: m.reference, prediction: m.prediction })),
      forward_passes: result.forwardPasses,
      seconds: Math.round(result.seconds * 10) / 10,
    };
    io.stdout(`${JSON.stringify(doc, null, 2)}\n`);
    return EXIT_OK;
  }
  const lines = [
    `run: ${displayPath(run.dir)} (model ${result.model}, weights ${displayPath(run.weights)})`,
    `data: ${result.data}, ${result.split} split: ${result.examples} images`,
    `exact match: ${pct(result.overall)}`,
    ...Object.entries(result.groups).map(([g, r]) => `  ${g === "novel" ? "novel (held-out combinations)" : g}: ${pct(r)}`),
    `majority-caption baseline: ${pct(result.baseline)} (${JSON.stringify(result.baseline.caption)})`,
  ];
  const shown = result.mistakes.slice(0, opts.mistakes);
  if (shown.length > 0) {
    lines.push(`mistakes (${shown.length} of ${result.mistakes.length}):`);
    for (const m of shown) {
      lines.push(`  ${m.id}${m.group ? ` (${m.group})` : ""}`, `    want: ${JSON.stringify(m.reference)}`, `    got:  ${JSON.stringify(m.prediction)}`);
    }
  }
  lines.push(`time: ${result.seconds.toFixed(1)} s (${result.forwardPasses} forward passes of greedy decoding)`);
  io.stdout(`${lines.join("\n")}\n`);
  return EXIT_OK;
}
