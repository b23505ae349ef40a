// `vlmc plot DIR [DIR ...] [--out FILE_OR_DIR] [--smooth W] [--no-png]`: draws loss curves from
// run folders' metrics.jsonl (runtime/report/curves.ts). One run: its DIR/curves/ redrawn
// (loss.svg/png, and one chart per other evaluation metric, e.g. perplexity.svg/png), as
// training draws them. Several runs: one chart comparing them, a colour per run, written to
// --out (default: the first run's curves/compare.svg and .png, compare-perplexity.svg, ...).
//
// Exit codes: 0 drawn, 1 a metrics.jsonl that is empty or malformed (the message says file:line),
// 2 bad command line, or a folder that is not a run.
import { basename, dirname, extname, join, resolve } from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import { DEFAULT_SMOOTHING, MetricsError, readRunCurves, writeCharts, type RunCurves } from "../../runtime/report/curves.js";
import type { Io } from "../main.js";
import { displayPath, EXIT_ERRORS, EXIT_OK, EXIT_USAGE } from "../report.js";

export interface PlotCliOptions {
  out?: string;
  smooth: number;
  png: boolean;
}

/** A commander parser for a smoothing weight: a number in [0, 1). */
export function smoothingArg(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError("expected a number from 0 (no smoothing) up to, not including, 1");
  return n;
}

export function registerPlot(program: Command, io: Io, setCode: (code: number) => void): void {
  program
    .command("plot")
    .description("draw loss curves (SVG and PNG) from run folders' metrics.jsonl; several runs are compared in one chart")
    .argument("<dirs...>", "run folders written by `vlmc train`")
    .option("--out <file-or-dir>", "where to write: a .svg/.png file name, or a folder (default: DIR/curves/, or for several runs the first one's curves/compare.svg)")
    .addOption(new Option("--smooth <w>", "smoothing weight of the training loss, 0 (none) to 0.99").argParser(smoothingArg).default(DEFAULT_SMOOTHING))
    .option("--no-png", "write the SVG only")
    .action(async (dirs: string[], opts: PlotCliOptions) => setCode(await runPlot(dirs, opts, io)));
}

/** Names for the runs' legend: their folders' names, or the paths as given when two share a name. */
function labels(dirs: readonly string[]): string[] {
  const names = dirs.map((d) => basename(resolve(d)));
  return new Set(names).size === names.length ? names : dirs.map((d) => displayPath(d));
}

export async function runPlot(dirs: string[], opts: PlotCliOptions, io: Io): Promise<number> {
  const names = labels(dirs);
  const runs: RunCurves[] = [];
  for (const [i, d] of dirs.entries()) {
    try {
      runs.push(readRunCurves(d, names[i]));
    } catch (err) {
      if (!(err instanceof MetricsError)) throw err;
      io.stderr(`vlmc: error: ${err.message}\n`);
      return err.usage ? EXIT_USAGE : EXIT_ERRORS;
    }
  }
  const several = runs.length > 1;
  let dir: string;
  let stem: string | undefined = several ? "compare" : undefined;
  if (opts.out === undefined) dir = join(dirs[0]!, "curves");
  else if ([".svg", ".png"].includes(extname(opts.out).toLowerCase())) {
    dir = dirname(opts.out);
    stem = basename(opts.out, extname(opts.out));
  } else dir = opts.out;

  let drawn;
  try {
    drawn = await writeCharts(runs, dir, { smoothing: opts.smooth, png: opts.png, ...(stem !== undefined ? { stem } : {}) });
  } catch (err) {
    // Writing: a folder that cannot be made, a full disk.
    io.stderr(`vlmc: error: cannot write the curves to ${displayPath(dir)}: ${(err as Error).message}\n`);
    return EXIT_USAGE;
  }
  for (const w of drawn.warnings) io.stderr(`vlmc: warning: ${w}\n`);
  for (const f of drawn.files) io.stdout(`${displayPath(f)}\n`);
  return EXIT_OK;
}
