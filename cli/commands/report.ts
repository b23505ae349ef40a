// `vlmc report DIR [--samples N] [--smooth W] [--backend B]`: (re)writes DIR/report.html, the
// self-contained page about a training run that `vlmc train` writes at its end
// (runtime/report/report.ts): final metrics, eval.json's scores, the curves, sample captions of
// validation images, the stages and the model's summary. Captioning the samples needs a
// backend (it loads the run's weights, as `vlmc eval` does); `--samples 0` needs none.
//
// Exit codes: 0 written (parts that could not be made are said in the page and on stderr), 1 the
// run's files are damaged (an invalid ir.json, a malformed metrics.jsonl), 2 bad command line,
// a folder that is not a run, or a backend that cannot start.
import { type Command, InvalidArgumentError, Option } from "commander";
import { BackendError, backendRequest, initBackend, type BackendRequest } from "../../runtime/backend.js";
import { DEFAULT_SMOOTHING } from "../../runtime/report/curves.js";
import { DEFAULT_SAMPLES, readRunIr, ReportError, writeReport } from "../../runtime/report/report.js";
import type { Io } from "../main.js";
import { displayPath, EXIT_ERRORS, EXIT_OK, EXIT_USAGE } from "../report.js";
import { backendOption } from "./backend.js";
import { smoothingArg } from "./plot.js";

export interface ReportCliOptions {
  samples: number;
  smooth: number;
  backend?: BackendRequest;
}

function countArg(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError("expected a whole number");
  return Number(value);
}

export function registerReport(program: Command, io: Io, setCode: (code: number) => void): void {
  program
    .command("report")
    .description("write a run folder's report.html: metrics, curves, sample captions, stages and model summary in one page")
    .argument("<dir>", "a run folder written by `vlmc train`")
    .addOption(new Option("--samples <n>", "validation images captioned in the report (0: none, no backend needed)").argParser(countArg).default(DEFAULT_SAMPLES))
    .addOption(new Option("--smooth <w>", "smoothing weight of the training loss, 0 (none) to 0.99").argParser(smoothingArg).default(DEFAULT_SMOOTHING))
    .addOption(backendOption())
    .action(async (dir: string, opts: ReportCliOptions) => setCode(await runReport(dir, opts, io)));
}

export async function runReport(dir: string, opts: ReportCliOptions, io: Io): Promise<number> {
  const fail = (err: ReportError) => {
    io.stderr(`vlmc: error: ${err.message}\n`);
    return err.usage ? EXIT_USAGE : EXIT_ERRORS;
  };
  try {
    // Before starting a backend: a folder that is no run is said at once.
    readRunIr(dir);
  } catch (err) {
    if (err instanceof ReportError) return fail(err);
    throw err;
  }
  let tf = null;
  if (opts.samples > 0) {
    try {
      tf = (await initBackend(backendRequest(opts.backend), { log: (line) => io.stderr(`${line}\n`) })).tf;
    } catch (err) {
      if (err instanceof BackendError) {
        io.stderr(`vlmc: error: ${err.message} (--samples 0 writes the report without samples, with no backend)\n`);
        return EXIT_USAGE;
      }
      throw err;
    }
  }
  try {
    const r = await writeReport(dir, { samples: opts.samples, smoothing: opts.smooth, tf });
    for (const w of r.warnings) io.stderr(`vlmc: warning: ${w}\n`);
    io.stdout(`${displayPath(r.path)}\n`);
    return EXIT_OK;
  } catch (err) {
    if (err instanceof ReportError) return fail(err);
    throw err;
  }
}
