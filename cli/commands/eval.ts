// `vlmc eval --run DIR [--data FILE] [--split validation|novel|ordinary|train] [--limit N]
// [--checkpoint NAME] [--stage NAME] [--batch N] [--backend B] [--format text|json] [--no-save]`, also written
// `vlmc eval DIR ...` (the run folder as an argument) and with `--json` for `--format json`:
// evaluates a trained run on its validation split (or another split, or a captions JSON Lines
// file): the teacher-forced loss and perplexity of the captions, and the captions it writes by
// greedy decoding scored by exact match, BLEU-4 and CIDEr-D, overall and (for `shapes`) on the
// novel and ordinary validation images, next to the majority-caption baseline, with a few of the
// mistakes (runtime/eval/run.ts does the work). The result is also recorded in DIR/eval.json
// (runtime/eval/results.ts) unless --no-save.
//
// Exit codes: 0 evaluated, 1 the run's files do not fit together (an invalid ir.json, weights of
// another model) or the data has nothing usable, 2 bad command line, a missing or unreadable run
// folder or file, or a backend that cannot start.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import { BackendError, backendRequest, initBackend, type BackendRequest } from "../../runtime/backend.js";
import { checkEvalFile, EvalDataError } from "../../runtime/eval/data.js";
import type { Rate } from "../../runtime/eval/exact-match.js";
import { evalDocument, evalKey, recordEvaluation, type EvalDocument } from "../../runtime/eval/results.js";
import { writeReport } from "../../runtime/report/report.js";
import { evaluateRun, readRun, RunError, SPLITS, type EvalResult, type SplitName } from "../../runtime/eval/run.js";
import { answerJson, answerReport, evaluateAnswers, isChatData } from "../../runtime/eval/answers.js";
import type { Io } from "../main.js";
import { displayPath, EXIT_ERRORS, EXIT_OK, EXIT_USAGE, positiveInt, reportDiagnostics, runFolderArg } from "../report.js";
import { backendOption } from "./backend.js";

export interface EvalCliOptions {
  run?: string;
  data?: string;
  split?: SplitName;
  limit?: number;
  checkpoint?: string;
  stage?: string;
  batch: number;
  backend?: BackendRequest;
  format: "text" | "json";
  /** `--json`: the same as `--format json`. */
  json?: boolean;
  /** Record the result in DIR/eval.json (`--no-save`: false). */
  save: boolean;
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
    .description("evaluate a trained run: loss and perplexity of its captions, and the captions it writes (greedy decoding) scored by exact match, BLEU-4 and CIDEr-D")
    .argument("[dir]", "a run folder written by `vlmc train` (or give --run DIR)")
    .option("--run <dir>", "the run folder")
    .option("--data <file>", "evaluate on a captions JSON Lines file ({\"image\": path, \"caption\": text} a line) instead of the run's validation split")
    .addOption(new Option("--split <split>", "which images of the run's data: the validation split (default), its novel or ordinary half (shapes), or the training split").choices(SPLITS))
    .addOption(new Option("--limit <n>", "only the first N images").argParser(positiveInt))
    .option("--checkpoint <name>", "a checkpoint's weights instead of the final ones: its name under DIR/checkpoints, a stage's name (its last checkpoint), `last`, a checkpoint folder or a .safetensors file")
    .option("--stage <name>", "evaluate on that stage's data, as it would be judged after that stage (default: the checkpoint's stage, else the last stage)")
    .addOption(new Option("--batch <n>", "images decoded at once").argParser(positiveInt).default(64))
    .addOption(new Option("--mistakes <n>", "mistakes to show").argParser(countArg).default(5))
    .addOption(backendOption())
    .addOption(new Option("--format <format>", "output format: text, or one JSON document on stdout (every mistake included)").choices(["text", "json"]).default("text"))
    .option("--json", "the same as --format json")
    .option("--no-save", "do not record the result in DIR/eval.json")
    .action(async (dir: string | undefined, opts: EvalCliOptions) => setCode(await runEval(dir, opts, io)));
}

const pct = (r: Rate) => `${r.correct}/${r.count} = ${(100 * r.rate).toFixed(1)}%`;
const num = (x: number | null) => (x === null ? "n/a" : x.toFixed(4));

export async function runEval(dirArg: string | undefined, opts: EvalCliOptions, io: Io): Promise<number> {
  const json = opts.json === true || opts.format === "json";
  const usage = (message: string): number => {
    io.stderr(`vlmc: error: ${message}\n`);
    return EXIT_USAGE;
  };
  const folder = runFolderArg(dirArg, opts.run);
  if ("error" in folder) return usage(folder.error);
  const { dir } = folder;
  if (opts.data !== undefined && opts.split !== undefined) return usage("--split picks images of the run's own data; it cannot be combined with --data FILE");

  if (opts.data !== undefined) {
    // A missing file is found before the run is loaded and the backend started.
    try {
      checkEvalFile(opts.data);
    } catch (err) {
      if (err instanceof EvalDataError) return usage(err.message);
      throw err;
    }
  }

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
  // A checkpoint of one of the run's stages is judged on that stage's data unless --stage says otherwise.
  const stage = opts.stage ?? run.stage;
  if (stage !== undefined) {
    // Everything below judges a run by its last stage (its data, its micro-batch): a run cut
    // short after the named stage is judged the same way.
    const stages = run.ir.train?.stages ?? [];
    const at = stages.findIndex((s) => s.name === stage);
    if (at < 0) return usage(`the run has no stage \`${stage}\`; its stages: ${stages.map((s) => `\`${s.name}\``).join(", ") || "none"}`);
    run = { ...run, ir: { ...run.ir, train: { ...run.ir.train!, stages: stages.slice(0, at + 1) } } };
  }
  let backend;
  try {
    // The backend line: on stdout with the report, or on stderr when stdout is one JSON document.
    backend = await initBackend(backendRequest(opts.backend), { log: (line) => (json ? io.stderr : io.stdout)(`${line}\n`) });
  } catch (err) {
    if (err instanceof BackendError) {
      io.stderr(`vlmc: error: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  /**
   * Records a result in DIR/eval.json, and redraws DIR/report.html (when the run has one) so the
   * report shows it. The evaluation itself succeeded: a read-only run folder or a report that
   * cannot be drawn costs a warning, not the result.
   */
  const runDir = run.dir;
  const record = async (doc: object): Promise<string | null> => {
    const key = evalKey(runDir, { split: opts.split ?? "validation", ...(stage !== undefined ? { stage } : {}), ...(opts.data !== undefined ? { data: opts.data } : {}), ...(opts.checkpoint !== undefined ? { checkpoint: opts.checkpoint, weights: run!.weights } : {}), ...(opts.limit !== undefined ? { limit: opts.limit } : {}) });
    try {
      const note = recordEvaluation(runDir, key, doc);
      if (note) io.stderr(`vlmc: warning: ${note}\n`);
    } catch (err) {
      io.stderr(`vlmc: warning: could not write ${displayPath(`${runDir}/eval.json`)}: ${(err as Error).message}\n`);
      return null;
    }
    if (existsSync(join(runDir, "report.html"))) {
      try {
        const r = await writeReport(runDir, { tf: backend.tf });
        for (const w of r.warnings) io.stderr(`vlmc: warning: report: ${w}\n`);
      } catch (err) {
        io.stderr(`vlmc: warning: could not redraw ${displayPath(`${runDir}/report.html`)}: ${(err as Error).message}\n`);
      }
    }
    return `${displayPath(`${runDir}/eval.json`)} ("${key}")`;
  };
  // Questions and answers (instruct, conversations): each answer generated after its prompt and
  // scored per question type (runtime/eval/answers.ts).
  if (isChatData(run) && opts.data === undefined) {
    let answers;
    try {
      answers = await evaluateAnswers(backend.tf, run, {
        split: opts.split ?? "validation",
        batch: opts.batch,
        ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
        onProgress: (done, total) => done < total && io.stderr(`answered ${done}/${total} questions\n`),
      });
    } catch (err) {
      if (err instanceof RunError) return fail(err);
      throw err;
    }
    const answerDoc = answerJson(answers, displayPath(run.weights));
    const savedAs = opts.save ? await record(answerDoc) : null;
    const out = json ? JSON.stringify(answerDoc, null, 2) : [...answerReport(answers, { dir: displayPath(run.dir), weights: displayPath(run.weights) }, opts.mistakes), ...(savedAs ? [`recorded in ${savedAs}`] : [])].join("\n");
    io.stdout(`${out}\n`);
    return EXIT_OK;
  }
  let result: EvalResult;
  try {
    result = await evaluateRun(backend.tf, run, {
      ...(opts.data !== undefined ? { data: opts.data } : { split: opts.split ?? "validation" }),
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
  // Skipped rows: where they are, on stderr (a few; the JSON document lists them all).
  for (const s of result.skipped.slice(0, 5)) io.stderr(`vlmc: warning: skipped ${s}\n`);
  if (result.skipped.length > 5) io.stderr(`vlmc: warning: ${result.skipped.length - 5} more rows skipped\n`);

  const doc = evalDocument(result, displayPath(run.weights));
  const saved = opts.save ? await record(doc) : null;
  if (json) {
    io.stdout(`${JSON.stringify(doc, null, 2)}\n`);
    return EXIT_OK;
  }
  io.stdout(`${textReport(doc, run.dir, result, opts.mistakes, saved).join("\n")}\n`);
  return EXIT_OK;
}

function textReport(doc: EvalDocument, runDir: string, result: EvalResult, mistakes: number, saved: string | null): string[] {
  const scores = (m: { bleu4: number; cider_d: number; loss: number | null }) => `BLEU-4 ${num(m.bleu4)}, CIDEr-D ${num(m.cider_d)}, loss ${num(m.loss)}`;
  const lines = [
    `run: ${displayPath(runDir)} (model ${doc.model}, weights ${doc.weights})`,
    doc.split === null ? `data: ${doc.data}: ${doc.examples} images, ${doc.references} captions` : `data: ${doc.data}, ${doc.split} split: ${doc.examples} images${doc.references !== doc.examples ? `, ${doc.references} captions` : ""}`,
  ];
  if (doc.skipped.length) lines.push(`skipped: ${doc.skipped.length} rows (see above)`);
  lines.push(
    doc.loss === null ? "loss: n/a (no caption tokens)" : `loss: ${doc.loss.toFixed(4)} per token, perplexity ${doc.perplexity!.toFixed(4)} (${doc.tokens} tokens, teacher-forced)`,
    `exact match: ${pct(doc.exact_match)}`,
    `BLEU-4: ${num(doc.bleu4)}  CIDEr-D: ${num(doc.cider_d)}`,
    ...Object.entries(doc.groups).map(([g, m]) => `  ${g === "novel" ? "novel (held-out combinations)" : g}: ${pct(m.exact_match)}; ${scores(m)}`),
  );
  if (doc.baseline) lines.push(`majority-caption baseline: ${pct(doc.baseline)} (${JSON.stringify(doc.baseline.caption)}); BLEU-4 ${num(doc.baseline.bleu4)}, CIDEr-D ${num(doc.baseline.cider_d)}`);
  const shown = result.captions.mistakes.slice(0, mistakes);
  if (shown.length > 0) {
    lines.push(`mistakes (${shown.length} of ${result.captions.mistakes.length}):`);
    for (const m of shown) {
      lines.push(`  ${m.id}${m.group ? ` (${m.group})` : ""}`, `    want: ${JSON.stringify(m.reference)}${m.references.length > 1 ? ` (or ${m.references.length - 1} more)` : ""}`, `    got:  ${JSON.stringify(m.prediction)}`);
    }
  }
  lines.push(`time: ${result.seconds.toFixed(1)} s (${result.forwardPasses} forward passes of greedy decoding)`);
  if (saved) lines.push(`recorded in ${saved}`);
  return lines;
}
