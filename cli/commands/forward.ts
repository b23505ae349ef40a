// `vlmc forward FILE [--weights W] [--save-weights W] [--backend B] [--batch N] [--text N]
// [--seed S] [--input-seed S] [--runs N] [--format text|json]`: one forward pass, for
// debugging. FILE is a .vlm spec (compiled; its diagnostics rendered as `check` renders them)
// or an IR document.
//
// The weights: each parameter initialised from --seed (default: the spec's `train` seed, else
// 0); then each module's `weights:` file of the spec; then --weights, a whole-model file. A
// file is validated against the model before any variable is touched (a bad one is reported
// naming each tensor, exit 1); a Hugging Face GPT-2 checkpoint is recognised by its names and
// mapped into a `gpt` decoder (runtime/hf-gpt2.ts). The input: --batch examples of --text
// tokens, token ids uniform in the vocabulary, images uniform in [0, 1), drawn from
// --input-seed (default: --seed); the loss is against random targets drawn the same way.
// Printed: the backend line, the logits' shape and statistics (min, max, mean, std over the
// finite values; NaN and infinity counts), the loss, the time (of the first pass, and with
// --runs N of N - 1 more). The runtime asserts every layer's output shape against the
// checker's in this command, always (`checkShapes`: a debugging command, and cheap).
// --save-weights writes the weights used, atomically and byte-deterministically (sorted names,
// the spec's hash in the metadata), so a run can be saved, inspected and loaded back.
//
// Exit codes: 0 ran, 1 diagnostics or a weights file that does not fit, 2 bad command line,
// unreadable file or a backend that cannot start.
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import type * as tfjs from "@tensorflow/tfjs";
import { type Command, InvalidArgumentError, Option } from "commander";
import { compile } from "../../compiler/compile.js";
import { decoderContext, visualTokens } from "../../compiler/cost/estimate.js";
import { hasErrors, sortDiagnostics, type Diagnostic } from "../../compiler/diagnostics/diagnostic.js";
import { readSpecBytes } from "../../compiler/files.js";
import { IR_MODULES, type Ir } from "../../compiler/ir/types.js";
import { isIrPath, readIr } from "../../compiler/ir/validate.js";
import type { SourceFile } from "../../compiler/source.js";
import { BackendError, backendRequest, initBackend, type BackendRequest, type Tf } from "../../runtime/backend.js";
import { irParams, Model } from "../../runtime/model.js";
import { streamSeed, uniform01 } from "../../runtime/random.js";
import type { WeightsProblem } from "../../runtime/weights-check.js";
import { loadWeightsFile, saveWeights, WeightsFailure, type WeightsSource } from "../../runtime/weights.js";
import type { Io } from "../main.js";
import { displayPath, EXIT_ERRORS, EXIT_OK, EXIT_USAGE, exitOnFileError, reportDiagnostics, positiveInt } from "../report.js";
import { backendOption } from "./backend.js";

export interface ForwardOptions {
  weights?: string;
  saveWeights?: string;
  backend?: BackendRequest;
  batch: number;
  text?: number;
  seed?: number;
  inputSeed?: number;
  runs: number;
  format: "text" | "json";
}

/** Text tokens per example when --text is not given (at most the decoder's text budget). */
export const DEFAULT_TEXT = 16;

function seedArg(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 0xffffffff) throw new InvalidArgumentError("expected a whole number from 0 to 4294967295");
  return Number(value);
}

export function registerForward(program: Command, io: Io, setCode: (code: number) => void): void {
  program
    .command("forward")
    .description("run one forward pass on random input and print the logits' shape and statistics (debugging)")
    .argument("<file>", "a .vlm spec, or an IR document (.json, .yaml)")
    .option("--weights <file>", "load the whole model's weights from a .safetensors file (vlmc's names, or a Hugging Face GPT-2 checkpoint for a gpt decoder)")
    .option("--save-weights <file>", "write the weights the pass used to a .safetensors file (atomic; the same spec and seed give the same bytes)")
    .addOption(backendOption())
    .addOption(new Option("--batch <n>", "examples").argParser(positiveInt).default(2))
    .addOption(new Option("--text <n>", `text tokens per example (default: ${DEFAULT_TEXT}, at most the decoder's text budget)`).argParser(positiveInt))
    .addOption(new Option("--seed <n>", "seeds the initialisation (default: the spec's train seed, else 0)").argParser(seedArg))
    .addOption(new Option("--input-seed <n>", "seeds the random input and targets (default: --seed)").argParser(seedArg))
    .addOption(new Option("--runs <n>", "forward passes to time (the first warms the backend up; the statistics are the first's)").argParser(positiveInt).default(1))
    .addOption(new Option("--format <format>", "output format").choices(["text", "json"]).default("text"))
    .action(async (file: string, opts: ForwardOptions) => setCode(await runForward(file, opts, io)));
}

interface Loaded {
  ir: Ir | null;
  diagnostics: Diagnostic[];
  sources: Map<string, SourceFile>;
  /** The folder the IR's paths (modules' `weights`) are relative to. */
  baseDir: string;
}

function load(file: string): Loaded {
  if (isIrPath(file)) return readIr(file);
  const got = readSpecBytes(file);
  const baseDir = process.cwd();
  const r = compile(file, got.tooLarge ? { baseDir } : { text: got.bytes, baseDir });
  return { ...r, baseDir };
}

/** Statistics of the logits: over the finite values; NaN and infinities counted apart. */
export interface LogitStats {
  shape: number[];
  min: number | null;
  max: number | null;
  mean: number | null;
  std: number | null;
  nan: number;
  inf: number;
}

export function logitStats(data: ArrayLike<number>, shape: number[]): LogitStats {
  let n = 0;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  let nan = 0;
  let inf = 0;
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    if (Number.isNaN(x)) nan++;
    else if (!Number.isFinite(x)) inf++;
    else {
      n++;
      sum += x;
      if (x < min) min = x;
      if (x > max) max = x;
    }
  }
  if (n === 0) return { shape, min: null, max: null, mean: null, std: null, nan, inf };
  const mean = sum / n;
  // Two passes: no cancellation when the values sit far from zero.
  let sq = 0;
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    if (Number.isFinite(x)) sq += (x - mean) * (x - mean);
  }
  return { shape, min, max, mean, std: Math.sqrt(sq / n), nan, inf };
}


const fmt = (x: number | null) => (x === null ? "n/a" : Number(x.toPrecision(6)).toString());
const shapeText = (s: readonly (number | string)[]) => `[${s.join(", ")}]`;

export async function runForward(file: string, opts: ForwardOptions, io: Io): Promise<number> {
  let loaded: Loaded;
  try {
    loaded = load(file);
  } catch (err) {
    return exitOnFileError(io, err);
  }
  const { ir, sources, baseDir } = loaded;
  const diagnostics = sortDiagnostics([...loaded.diagnostics]);
  reportDiagnostics(io, diagnostics, sources, "text");
  if (!ir || hasErrors(diagnostics)) return EXIT_ERRORS;
  const dec = ir.modules.decoder;
  if (!dec) {
    io.stderr(`vlmc: error: ${displayPath(file)}: the model has no decoder: nothing makes logits\n`);
    return EXIT_ERRORS;
  }

  // The text length: --text, at most the decoder's budget (its context less the visual tokens).
  const context = decoderContext(ir);
  const visual = visualTokens(ir);
  const budget = context === null ? null : context - visual;
  if (budget !== null && budget < 1) {
    io.stderr(`vlmc: error: the decoder's context of ${context} leaves no room for text after ${visual} visual tokens\n`);
    return EXIT_ERRORS;
  }
  if (opts.text !== undefined && budget !== null && opts.text > budget) {
    io.stderr(`vlmc: error: --text ${opts.text} is more than the decoder's text budget of ${budget} tokens (context ${context} - ${visual} visual)\n`);
    return EXIT_USAGE;
  }
  const T = opts.text ?? Math.min(DEFAULT_TEXT, budget ?? DEFAULT_TEXT);
  const B = opts.batch;
  const seed = opts.seed ?? ir.train?.seed ?? 0;
  const inputSeed = opts.inputSeed ?? seed;

  // Every weights file must be there before the backend starts.
  const moduleFiles = IR_MODULES.flatMap((m) => {
    const w = ir.modules[m]?.weights;
    return w ? [{ module: m as string, path: resolve(baseDir, w) }] : [];
  });
  for (const f of [...moduleFiles.map((m) => m.path), ...(opts.weights ? [resolve(opts.weights)] : [])]) {
    if (!existsSync(f) || !statSync(f).isFile()) {
      io.stderr(`vlmc: error: ${displayPath(f)}: no such file\n`);
      return EXIT_USAGE;
    }
  }

  const json = opts.format === "json";
  let backend;
  try {
    // The backend line: on stdout with the rest, or on stderr when stdout is one JSON document.
    backend = await initBackend(backendRequest(opts.backend), { log: (line) => (json ? io.stderr : io.stdout)(`${line}\n`) });
  } catch (err) {
    if (err instanceof BackendError) {
      io.stderr(`vlmc: error: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  const tf: Tf = backend.tf;

  const model = Model.create(tf, ir, seed, { baseDir });
  const disposables: tfjs.Tensor[] = [];
  try {
    const sources: WeightsSource[] = [];
    const warnings: string[] = [];
    const warn = (file: string) => (w: WeightsProblem) => warnings.push(`${file}: ${w.message}`);
    try {
      for (const m of moduleFiles) sources.push(loadWeightsFile(model, m.path, m.module, warn(displayPath(m.path)), displayPath(m.path)));
      if (opts.weights) sources.push(loadWeightsFile(model, resolve(opts.weights), null, warn(displayPath(opts.weights)), displayPath(opts.weights)));
    } catch (err) {
      if (!(err instanceof WeightsFailure)) throw err;
      io.stderr(`vlmc: error: ${err.file} does not fit the model \`${ir.model}\`; nothing was loaded from it:\n`);
      const SHOWN = 20;
      for (const p of err.problems.slice(0, SHOWN)) io.stderr(`  - ${p.message}\n`);
      if (err.problems.length > SHOWN) io.stderr(`  - and ${err.problems.length - SHOWN} more\n`);
      return err.unreadable ? EXIT_USAGE : EXIT_ERRORS;
    }
    for (const w of warnings) io.stderr(`vlmc: warning: ${w}\n`);

    // Random input from the input seed.
    const vocab = dec.output[2] as number;
    const u = uniform01(streamSeed(inputSeed, "vlmc.forward.input"));
    const ids = () => Int32Array.from({ length: B * T }, () => Math.min(vocab - 1, Math.floor(u() * vocab)));
    const tokenIds = ids();
    const targetIds = ids();
    const enc = ir.modules.encoder;
    const imageShape = enc ? [B, ...(enc.input.slice(1) as number[])] : null;
    const images = imageShape ? tf.tensor(Float32Array.from({ length: imageShape.reduce((a, b) => a * b, 1) }, () => u()), imageShape) : null;
    const tokens = tf.tensor(tokenIds, [B, T], "int32");
    const targets = tf.tensor(targetIds, [B, T], "int32");
    const mask = tf.ones([B, T]);
    disposables.push(...[images, tokens, targets, mask].filter((t): t is tfjs.Tensor => t !== null));

    const t0 = performance.now();
    const logits = model.forward(images, tokens, { training: false, checkShapes: true });
    disposables.push(logits);
    const data = (await logits.data()) as Float32Array;
    const forwardMs = performance.now() - t0;
    // More passes, timed: the first pays for the backend's warm-up (kernels, memory).
    const more: number[] = [];
    for (let i = 1; i < (opts.runs ?? 1); i++) {
      const t = performance.now();
      const again = model.forward(images, tokens, { training: false, checkShapes: true });
      await again.data();
      more.push(performance.now() - t);
      again.dispose();
    }
    const moreMean = more.length ? more.reduce((a, b) => a + b, 0) / more.length : null;
    const stats = logitStats(data, logits.shape);
    const lossT = model.loss(logits, targets, mask);
    disposables.push(lossT);
    const loss = (await lossT.data())[0]!;

    let saved: { path: string; bytes: number } | null = null;
    if (opts.saveWeights) {
      const out = resolve(opts.saveWeights);
      try {
        saveWeights(model, out);
      } catch (err) {
        io.stderr(`vlmc: error: cannot write ${displayPath(out)}: ${err instanceof Error ? err.message : String(err)}\n`);
        return EXIT_USAGE;
      }
      saved = { path: displayPath(out), bytes: statSync(out).size };
    }

    const params = irParams(ir);
    const count = params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
    if (json) {
      const doc = {
        backend: { name: backend.backend, reason: backend.reason },
        model: ir.model,
        hash: ir.hash,
        parameters: count,
        tensors: params.length,
        seed,
        input_seed: inputSeed,
        weights: sources,
        inputs: { images: imageShape, tokens: [B, T] },
        logits: stats,
        loss,
        ms: { forward: Math.round(forwardMs * 10) / 10, ...(moreMean !== null ? { later_mean: Math.round(moreMean * 10) / 10, later: more.map((m) => Math.round(m * 10) / 10) } : {}) },
        shape_checks: true,
        saved,
      };
      io.stdout(`${JSON.stringify(doc, null, 2)}\n`);
    } else {
      const w = sources.length ? sources.map((s) => `${s.file}${s.module ? ` (${s.module})` : ""}${s.convention === "hf-gpt2" ? " as Hugging Face GPT-2" : s.convention === "hf-vision" ? " as Hugging Face CLIP/SigLIP" : s.convention === "hf-llama" ? " as Hugging Face Llama" : ""}`).join(", ") : "none loaded";
      const lines = [
        `model: ${ir.model} (hash ${ir.hash.replace(/^sha256:/, "").slice(0, 12)}), ${count.toLocaleString("en-US")} parameters in ${params.length} tensors`,
        `weights: initialised from seed ${seed}; files: ${w}`,
        `input: ${imageShape ? `images ${shapeText(imageShape)} uniform in [0, 1), ` : ""}tokens ${shapeText([B, T])} uniform in [0, ${vocab}), seed ${inputSeed}`,
        `logits: ${shapeText(stats.shape)}`,
        `  min ${fmt(stats.min)}  max ${fmt(stats.max)}  mean ${fmt(stats.mean)}  std ${fmt(stats.std)}  NaN ${stats.nan}  Inf ${stats.inf}`,
        `loss: ${fmt(loss)} against random targets (ln ${vocab} = ${fmt(Math.log(vocab))})`,
        `time: forward ${forwardMs.toFixed(1)} ms (first pass, shape checks on)${moreMean !== null ? `; ${more.length} more: mean ${moreMean.toFixed(1)} ms, min ${Math.min(...more).toFixed(1)} ms` : ""}`,
        ...(saved ? [`saved: ${saved.path} (${params.length} tensors, ${saved.bytes.toLocaleString("en-US")} bytes)`] : []),
      ];
      io.stdout(`${lines.join("\n")}\n`);
    }
    return EXIT_OK;
  } finally {
    tf.dispose(disposables);
    model.dispose();
  }
}
