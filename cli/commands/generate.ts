// `vlmc generate --run DIR --image PATH... [--prompt TEXT] [--max-tokens N] [--temperature T]
// [--top-k K] [--top-p P] [--seed S] [--format text|json] [--explain [--out-dir DIR]]
// [--batch N] [--checkpoint NAME] [--backend B]`: a trained run writes a caption (or an answer
// to the prompt) for each image, greedily unless sampling is asked for, with a KV cache
// (runtime/generate/run.ts does the work). Text output is one caption per line (after the
// image's path and a tab when there are several images), so that it pipes; JSON is one document.
//
// Exit codes: 0 generated; 1 the run's files do not fit together (weights of another spec, an
// invalid ir.json) or an image is not a readable picture; 2 a bad command line (a prompt the
// tokenizer cannot write or the context cannot hold), a missing run folder or image, or a
// backend that cannot start.
import { type Command, InvalidArgumentError, Option } from "commander";
import { BackendError, backendRequest, initBackend, type BackendRequest } from "../../runtime/backend.js";
import { readRun, RunError } from "../../runtime/eval/run.js";
import { explainDirProblem, prepareRequest, runRequest, type CaptionResult, type GenerateRequest } from "../../runtime/generate/run.js";
import type { Io } from "../main.js";
import { displayPath, EXIT_ERRORS, EXIT_OK, EXIT_USAGE, positiveInt, reportDiagnostics } from "../report.js";
import { backendOption } from "./backend.js";

export interface GenerateCliOptions {
  run: string;
  image: string[];
  prompt?: string;
  maxTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  format: "text" | "json";
  explain?: boolean;
  outDir?: string;
  batch: number;
  checkpoint?: string;
  backend?: BackendRequest;
}

function nonNegative(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError("expected a number >= 0");
  return n;
}

function wholeNumber(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError("expected a whole number");
  return Number(value);
}

function probability(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !(n > 0 && n <= 1)) throw new InvalidArgumentError("expected a number in (0, 1]");
  return n;
}

function seedArg(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 0xffffffff) throw new InvalidArgumentError("expected a whole number from 0 to 4294967295");
  return Number(value);
}

export function registerGenerate(program: Command, io: Io, setCode: (code: number) => void): void {
  program
    .command("generate")
    .description("caption images (or answer a prompt about them) with a trained run, with a KV cache")
    .requiredOption("--run <dir>", "a run folder written by `vlmc train`")
    .requiredOption("--image <paths...>", "image files (PNG, JPEG, WebP, GIF, TIFF), decoded together in batches")
    .option("--prompt <text>", "text the answer follows (formatted by the run's chat template when the model has one)")
    .addOption(new Option("--max-tokens <n>", "the most tokens generated per image (default: what the context leaves)").argParser(positiveInt))
    .addOption(new Option("--temperature <t>", "sample at this temperature (0: greedy, the default)").argParser(nonNegative))
    .addOption(new Option("--top-k <k>", "sample from the k most likely tokens (0: all)").argParser(wholeNumber))
    .addOption(new Option("--top-p <p>", "sample from the most likely tokens up to probability p (nucleus)").argParser(probability))
    .addOption(new Option("--seed <s>", "seeds sampling: the same seed gives the same text for an image, alone or batched").argParser(seedArg))
    .addOption(new Option("--format <format>", "output format").choices(["text", "json"]).default("text"))
    .option("--explain", "write a heat map of the image regions the generated text attended to, per image (PNG)")
    .option("--out-dir <dir>", "where --explain writes its PNGs (default: the current folder)")
    .addOption(new Option("--batch <n>", "images decoded at once").argParser(positiveInt).default(16))
    .option("--checkpoint <name>", "a checkpoint's weights instead of the final ones: its name under DIR/checkpoints, `last`, a checkpoint folder or a .safetensors file")
    .addOption(backendOption())
    .action(async (opts: GenerateCliOptions) => setCode(await runGenerate(opts, io)));
}

export async function runGenerate(opts: GenerateCliOptions, io: Io): Promise<number> {
  const fail = (err: RunError): number => {
    if (err.diagnostics.length) reportDiagnostics(io, err.diagnostics, err.sources, "text");
    io.stderr(`vlmc: error: ${err.message}\n`);
    return err.usage ? EXIT_USAGE : EXIT_ERRORS;
  };
  if (opts.outDir !== undefined && !opts.explain) {
    io.stderr("vlmc: error: --out-dir is where --explain writes its heat maps: give --explain too\n");
    return EXIT_USAGE;
  }
  const explainDir = opts.explain ? (opts.outDir ?? ".") : undefined;
  const dirProblem = explainDir !== undefined ? explainDirProblem(explainDir) : null;
  if (dirProblem) {
    io.stderr(`vlmc: error: ${dirProblem}\n`);
    return EXIT_USAGE;
  }
  const sampling = {
    ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
    ...(opts.topK !== undefined ? { topK: opts.topK } : {}),
    ...(opts.topP !== undefined ? { topP: opts.topP } : {}),
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
  };
  // Every check that needs no model first: a mistake is reported before tfjs starts.
  let request: GenerateRequest;
  try {
    const run = readRun(opts.run, opts.checkpoint);
    request = await prepareRequest(run, opts.image, {
      ...(opts.prompt !== undefined ? { prompt: opts.prompt } : {}),
      ...(opts.maxTokens !== undefined ? { maxTokens: opts.maxTokens } : {}),
      sampling,
      batch: opts.batch,
      ...(explainDir !== undefined ? { explainDir } : {}),
      onProgress: (done, total) => {
        if (done < total) io.stderr(`generated ${done}/${total} images\n`);
      },
    });
  } catch (err) {
    if (err instanceof RunError) return fail(err);
    throw err;
  }
  let backend;
  try {
    // stdout is the captions: the backend line goes to stderr.
    backend = await initBackend(backendRequest(opts.backend), { log: (line) => io.stderr(`${line}\n`) });
  } catch (err) {
    if (err instanceof BackendError) {
      io.stderr(`vlmc: error: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  let result: CaptionResult;
  try {
    result = await runRequest(backend.tf, request);
  } catch (err) {
    if (err instanceof RunError) return fail(err);
    throw err;
  }
  if (result.explainNote) io.stderr(`vlmc: note: ${result.explainNote}\n`);
  if (opts.format === "json") {
    const doc = {
      model: result.model,
      weights: displayPath(result.weights),
      prompt: result.prompt,
      chat_template: result.chat,
      sampling: result.sampling,
      captions: result.captions.map((c) => ({ image: c.image, text: c.text, tokens: c.tokens, stop: c.stop, ...(c.attentionMap ? { attention_map: displayPath(c.attentionMap) } : {}) })),
      seconds: Math.round(result.seconds * 100) / 100,
    };
    io.stdout(`${JSON.stringify(doc, null, 2)}\n`);
    return EXIT_OK;
  }
  const many = result.captions.length > 1;
  for (const c of result.captions) {
    io.stdout(many ? `${c.image}\t${c.text}\n` : `${c.text}\n`);
    if (c.attentionMap) io.stderr(`attention map: ${displayPath(c.attentionMap)}\n`);
  }
  return EXIT_OK;
}
