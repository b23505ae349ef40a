// `vlmc train SPEC [--out DIR] [--backend B] [--resume] [--force] [--max-steps N]
// [--checkpoint-every N] [--set path.key=value ...] [--quiet] [--json]`: runs the spec's
// training stages through the package API's `train` (runtime/train/run.ts), showing progress
// (cli/progress.ts). Ctrl-C finishes the step under way, writes a checkpoint and exits 130 saying
// how to resume; a second Ctrl-C exits at once.
//
// Exit codes: 0 trained (or already finished), 1 spec errors, a data problem or a diverged loss,
// 2 bad command line, unreadable spec, a run folder in the way or a backend that cannot start,
// 130 interrupted.
import { relative } from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import { train, type TrainResult } from "../../runtime/train/index.js";
import type { TrainEvent } from "../../runtime/train/events.js";
import type { Io } from "../main.js";
import { Progress } from "../progress.js";
import { displayPath, EXIT_ERRORS, EXIT_OK, EXIT_USAGE, positiveInt, reportDiagnostics } from "../report.js";
import { backendOption } from "./backend.js";

export const EXIT_INTERRUPTED = 130;

function countArg(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError("expected a whole number of MiB, 0 or more");
  return Number(value);
}

export interface TrainCliOptions {
  out?: string;
  backend?: string;
  resume?: boolean;
  force?: boolean;
  maxSteps?: number;
  checkpointEvery?: number;
  encoderCacheMb?: number;
  set: string[];
  quiet?: boolean;
  json?: boolean;
}

export function registerTrain(program: Command, io: Io, setCode: (code: number) => void): void {
  program
    .command("train")
    .description("train a spec's model through its stages, with checkpoints; --resume continues an interrupted run")
    .argument("<spec>", "a .vlm spec (or an IR document)")
    .option("--out <dir>", "the run folder (default: runs/<model name>)")
    .addOption(backendOption())
    .option("--resume", "continue from the newest valid checkpoint in the run folder (from scratch when there is none)")
    .option("--force", "start over in a run folder that holds a run (removes its checkpoints, metrics and weights)")
    .addOption(new Option("--max-steps <n>", "stop after N optimizer steps in total, across stages (schedules are not rescaled); writes the weights").argParser(positiveInt))
    .addOption(new Option("--checkpoint-every <n>", "write a checkpoint every N steps (overrides the spec's checkpoint_every)").argParser(positiveInt))
    .addOption(new Option("--encoder-cache-mb <n>", "memory for a frozen encoder's cached outputs, in MiB (0: off; default $VLMC_ENCODER_CACHE_MB, else 1024)").argParser(countArg))
    .addOption(new Option("--set <path=value>", "override a spec setting, checked as the spec is (repeatable): train.batch=8, train.STAGE.steps=10, decoder.layers=2").argParser((v: string, prev: string[] = []) => [...prev, v]).default([]))
    .option("--quiet", "print only the outcome")
    .option("--json", "print each event as a JSON line on stdout (for tools)")
    .action(async (spec: string, opts: TrainCliOptions) => setCode(await runTrain(spec, opts, io)));
}

export async function runTrain(spec: string, opts: TrainCliOptions, io: Io): Promise<number> {
  const tty = !opts.json && Boolean(process.stdout.isTTY) && process.env.TERM !== "dumb";
  const progress = new Progress(io.stdout, { tty, columns: process.stdout.columns ?? 80 });
  const onEvent = (e: TrainEvent) => {
    if (opts.json) io.stdout(`${JSON.stringify(e)}\n`);
    else if (!opts.quiet || e.type === "note" || (e.type === "start" && e.resumedFrom)) progress.handle(e);
  };
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) {
      io.stderr("\nvlmc: interrupted again: exiting now (the last checkpoint is intact)\n");
      process.exit(EXIT_INTERRUPTED);
    }
    progress.finish();
    io.stderr("\nvlmc: stopping after this step to write a checkpoint (Ctrl-C again to quit at once)\n");
  };
  process.on("SIGINT", onSigint);
  let result: TrainResult;
  try {
    result = await train(spec, {
      ...(opts.out !== undefined ? { out: opts.out } : {}),
      ...(opts.backend !== undefined ? { backend: opts.backend as never } : {}),
      resume: Boolean(opts.resume),
      force: Boolean(opts.force),
      ...(opts.maxSteps !== undefined ? { maxSteps: opts.maxSteps } : {}),
      ...(opts.checkpointEvery !== undefined ? { checkpointEvery: opts.checkpointEvery } : {}),
      ...(opts.encoderCacheMb !== undefined ? { encoderCacheMb: opts.encoderCacheMb } : {}),
      set: opts.set,
      onEvent,
      shouldStop: () => interrupts > 0,
      log: (line) => onEvent({ type: "note", message: line }),
    });
  } finally {
    process.off("SIGINT", onSigint);
    progress.finish();
  }
  reportDiagnostics(io, result.diagnostics, result.sources, "text");
  const again = `vlmc train ${spec}${opts.out ? ` --out ${opts.out}` : ""}${opts.set.map((s) => ` --set ${s}`).join("")} --resume`;
  switch (result.status) {
    case "invalid":
      return EXIT_ERRORS;
    case "error":
      io.stderr(`vlmc: error: ${result.message}\n`);
      return result.usage ? EXIT_USAGE : EXIT_ERRORS;
    case "diverged":
      io.stderr(`vlmc: error: ${result.message}\n`);
      io.stderr(`  = help: lower the learning rate, or clip gradients (\`clip: 1.0\` in the stage)\n`);
      io.stderr(`  = note: ${result.checkpoint ? `the last good checkpoint is ${result.checkpoint}` : "no checkpoint was written before it"}\n`);
      return EXIT_ERRORS;
    case "already-finished":
      io.stdout(`${displayPath(result.runDir)} is a finished run: its weights are ${displayPath(result.weights!)}\n`);
      return EXIT_OK;
    case "interrupted":
      io.stderr(`vlmc: interrupted at step ${result.globalStep}; checkpoint ${result.checkpoint} written. Resume with:\n  ${again}\n`);
      return EXIT_INTERRUPTED;
    case "max-steps":
      io.stdout(`stopped at --max-steps ${result.globalStep}: weights in ${rel(result.weights!)}; continue with: ${again}\n`);
      return EXIT_OK;
    case "finished": {
      const ev = result.lastEval ? `; validation loss ${result.lastEval.loss.toFixed(4)}, perplexity ${result.lastEval.perplexity.toFixed(2)}` : "";
      io.stdout(`done: ${result.globalStep} steps${ev}; weights in ${rel(result.weights!)}\n`);
      return EXIT_OK;
    }
  }
}

function rel(p: string): string {
  const r = relative(process.cwd(), p);
  return r.startsWith("..") ? p : r;
}
