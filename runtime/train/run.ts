// `train(spec, options)`: a run from a spec to its final weights, in a run folder:
//   RUN/ir.json              the resolved IR (paths relative to RUN), as trained
//   RUN/tokenizer.json       the tokenizer (tokenizers/load.ts; hf/bpe: and tokenizer_config.json)
//   RUN/metrics.jsonl        a line per step and per evaluation (metrics.ts)
//   RUN/checkpoints/NAME/    weights, optimizer state, state.json, manifest (checkpoint.ts)
//   RUN/weights.safetensors  the final weights (after the last stage, or at --max-steps)
//   RUN/done.json            written when every stage has run
// Resuming continues from the newest checkpoint whose files match their checksums, and ends
// with the weights an uninterrupted run ends with, bit for bit (same backend): every random
// choice is seeded by (seed, stage, step) and the optimizer state is saved exactly.
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { estimate, bytes } from "../../compiler/cost/estimate.js";
import { hasErrors, type Diagnostic } from "../../compiler/diagnostics/diagnostic.js";
import { FileError, writeFileAtomic } from "../../compiler/files.js";
import { rebaseIr } from "../../compiler/ir/paths.js";
import type { Ir, IrStage } from "../../compiler/ir/types.js";
import { irToJson } from "../../compiler/ir/yaml.js";
import type { SourceFile } from "../../compiler/source.js";
import { BackendError, backendRequest, initBackend, type BackendRequest } from "../backend.js";
import { irParams, Model } from "../model.js";
import { decodeSafetensors } from "../safetensors.js";
import { TokenizerFormatError, type Tokenizer } from "../tokenizer.js";
import { prepareRunTokenizer, TOKENIZER_FILES } from "../tokenizers/load.js";
import { assignValues, loadWeightsFile, saveWeights, WeightsFailure } from "../weights.js";
import { listCheckpoints, readCheckpointFile, verifyCheckpoint } from "./checkpoint.js";
import { compileRunSpec } from "./compile-spec.js";
import { DataError, loadStageData, type StageData } from "./data.js";
import type { TrainEvent } from "./events.js";
import { Metrics } from "./metrics.js";
import { decodeState, type RunState } from "./state.js";
import { Diverged, runStages } from "./trainer.js";
import { DEFAULT_ENCODER_CACHE_MB } from "./encoder-cache.js";
import { reportAtEnd } from "../report/report.js";
import { CurvesWatcher } from "../report/watch.js";

export interface TrainOptions {
  /** The run folder (default: runs/<model name>, relative to the working directory). */
  out?: string;
  backend?: BackendRequest;
  /** Continue from the newest valid checkpoint in the run folder. */
  resume?: boolean;
  /** Start over in a folder that holds a run (its checkpoints, metrics and weights are removed). */
  force?: boolean;
  /** Stop after this many optimizer steps in total (schedules are not rescaled). */
  maxSteps?: number;
  /** Overrides every stage's `checkpoint_every`. */
  checkpointEvery?: number;
  /** `path.key=value` overrides of the spec, checked as the spec is. */
  set?: string[];
  onEvent?: (e: TrainEvent) => void;
  /** Asked between steps: true stops the run after writing a checkpoint (Ctrl-C). */
  shouldStop?: () => boolean;
  /** Where the backend's one line goes (default: an event of type `note`). */
  log?: (line: string) => void;
  /** RUN/curves/ redrawn at every evaluation, RUN/report.html written at the end (default true). */
  report?: boolean;
  /**
   * The budget of the frozen encoder's output cache, in MiB (0: no cache); default the
   * environment's VLMC_ENCODER_CACHE_MB, else DEFAULT_ENCODER_CACHE_MB (docs/training.md).
   */
  encoderCacheMb?: number;
}

interface Common {
  /** Warnings (and, for `invalid`, errors) of the spec, with the sources to render them. */
  diagnostics: Diagnostic[];
  sources: Map<string, SourceFile>;
}

export type TrainResult = Common &
  (
    | { status: "invalid" }
    | { status: "error"; message: string; usage: boolean }
    | { status: "diverged"; message: string; runDir: string; checkpoint: string | null }
    | {
        status: "finished" | "max-steps" | "interrupted" | "already-finished";
        runDir: string;
        globalStep: number;
        /** The final weights (finished, max-steps). */
        weights: string | null;
        checkpoint: string | null;
        lastEval: { stage: string; loss: number; perplexity: number } | null;
      }
  );

/** The files vlmc writes in a run folder (what --force removes). */
const RUN_FILES = ["checkpoints", "metrics.jsonl", "weights.safetensors", "done.json", "ir.json", "curves", "report.html", ...TOKENIZER_FILES];

export async function train(specPath: string, options: TrainOptions = {}): Promise<TrainResult> {
  // RUN/curves/ follows the evaluations (runtime/report/watch.ts) once the run folder exists.
  let curves: CurvesWatcher | null = null;
  const emit = (e: TrainEvent) => {
    options.onEvent?.(e);
    curves?.handle(e);
  };
  const note = (message: string) => emit({ type: "note", message });
  let spec;
  try {
    spec = compileRunSpec(specPath, options.set ?? []);
  } catch (err) {
    if (err instanceof FileError) return { status: "error", message: err.message, usage: true, diagnostics: [], sources: new Map() };
    throw err;
  }
  const { diagnostics, sources } = spec;
  const fail = (message: string, usage = false): TrainResult => ({ status: "error", message, usage, diagnostics, sources });
  if (spec.usage) return fail(spec.usage, true);
  if (!spec.ir || hasErrors(diagnostics)) return { status: "invalid", diagnostics, sources };
  const ir: Ir = spec.ir;
  if (!ir.train) return fail(`${specPath}: the model \`${ir.model}\` has no \`train\` section: nothing to train`);
  const cacheMb = options.encoderCacheMb ?? (process.env.VLMC_ENCODER_CACHE_MB !== undefined && process.env.VLMC_ENCODER_CACHE_MB !== "" ? Number(process.env.VLMC_ENCODER_CACHE_MB) : DEFAULT_ENCODER_CACHE_MB);
  if (!Number.isFinite(cacheMb) || cacheMb < 0) return fail(`the encoder cache's budget must be a number of MiB, 0 or more (0 turns the cache off); got ${options.encoderCacheMb ?? JSON.stringify(process.env.VLMC_ENCODER_CACHE_MB)}${options.encoderCacheMb === undefined ? " from VLMC_ENCODER_CACHE_MB" : ""}`, true);
  if (!ir.tokenizer) return fail(`${specPath}: the model \`${ir.model}\` has no tokenizer: its data cannot be tokenized`);
  if (!ir.modules.decoder) return fail(`${specPath}: the model \`${ir.model}\` has no decoder: nothing makes logits`);

  const runDir = resolve(options.out ?? join("runs", ir.model));
  const irFile = join(runDir, "ir.json");
  const existing = existsSync(irFile);
  if (existing && !options.resume && !options.force) {
    return fail(`${runDir} already holds a run of \`${ir.model}\`: add --resume to continue it, --force to start it over, or --out DIR for another folder`, true);
  }
  if (options.resume && existsSync(join(runDir, "done.json"))) {
    return { status: "already-finished", runDir, globalStep: 0, weights: join(runDir, "weights.safetensors"), checkpoint: null, lastEval: null, diagnostics, sources };
  }
  if (options.force && !options.resume) for (const f of RUN_FILES) rmSync(join(runDir, f), { recursive: true, force: true });

  let backend;
  try {
    backend = await initBackend(backendRequest(options.backend), { log: options.log ?? note });
  } catch (err) {
    if (err instanceof BackendError) return fail(err.message, true);
    throw err;
  }
  const { tf } = backend;

  // A stage that leaves `accumulate` out gets the smallest one whose micro-batch fits the wasm heap.
  if (backend.backend === "wasm") {
    const est = estimate(ir);
    ir.train.stages.forEach((s, i) => {
      const cost = est.stages[i];
      if (spec.accumulateWritten.get(s.name) || !cost || cost.fitsWasm) return;
      const acc = cost.suggestedAccumulate ?? s.batch;
      s.accumulate = acc;
      note(`stage \`${s.name}\`: accumulate ${acc} (micro-batches of ${s.batch / acc}): a step of ${s.batch} needs about ${bytes(cost.wasmPeakBytes)}, more than the wasm heap's 4 GiB`);
    });
  }

  const runIr = rebaseIr(ir, process.cwd(), runDir);
  // An `hf` tokenizer's file is copied into the run (same bytes, same sha256): the run's IR names the copy.
  if (runIr.tokenizer?.kind === "hf") runIr.tokenizer.file = "tokenizer.json";
  if (existing && options.resume) {
    let stored: Ir | null = null;
    try {
      stored = JSON.parse((await import("node:fs")).readFileSync(irFile, "utf8")) as Ir;
    } catch {
      stored = null;
    }
    const diff = stored ? irDifference(stored, runIr) : "its ir.json cannot be read";
    if (diff) return fail(`cannot resume ${runDir}: the spec (with --set) is not the one the run was started with (${diff}); give the same spec and --set, or train into a new --out folder`, true);
  }
  mkdirSync(runDir, { recursive: true });
  if (options.report !== false) curves = new CurvesWatcher(runDir, note);
  writeFileAtomic(irFile, irToJson(runIr));
  // The tokenizer (a `bpe` one trained here, on the training side of train.data), saved in the run.
  let tokenizer: Tokenizer;
  try {
    tokenizer = await prepareRunTokenizer(ir, { baseDir: process.cwd(), runDir, resume: existing && !!options.resume, note });
  } catch (err) {
    if (err instanceof TokenizerFormatError || err instanceof DataError) return fail(err.message);
    throw err;
  }

  const model = Model.create(tf, ir, ir.train.seed);
  try {
    // Where to start: the newest checkpoint that is whole, else the beginning.
    let resume: { state: RunState; optimizer: Uint8Array } | null = null;
    let from: { checkpoint: string; globalStep: number; stage: string; stageStep: number } | null = null;
    if (options.resume) {
      for (const c of listCheckpoints(runDir).reverse()) {
        const problem = verifyCheckpoint(c.path);
        if (problem) {
          note(`checkpoint ${c.name} is damaged (${problem}): skipped`);
          continue;
        }
        try {
          const state = decodeState(readCheckpointFile(c.path, "state.json"));
          if (state.hash !== ir.hash) throw new Error("it is of another architecture");
          const w = decodeSafetensors(readCheckpointFile(c.path, "weights.safetensors"));
          if (!w.ok) throw new Error(w.problems[0]?.message ?? "unreadable weights");
          const values = irParams(ir).map((p): [string, Float32Array] => {
            const t = w.tensors.get(p.name);
            if (!t || t.data.length !== p.shape.reduce((a, b) => a * b, 1)) throw new Error(`its weights lack ${p.name}`);
            return [p.name, t.data as Float32Array];
          });
          assignValues(model, values);
          resume = { state, optimizer: readCheckpointFile(c.path, "optimizer.safetensors") };
          from = { checkpoint: c.name, globalStep: state.globalStep, stage: state.stage, stageStep: state.stageStep };
          break;
        } catch (err) {
          note(`checkpoint ${c.name} cannot be used (${(err as Error).message}): skipped`);
        }
      }
      if (!resume) note(`no usable checkpoint in ${runDir}: starting from scratch`);
    }
    if (!resume) {
      // Pretrained module weights (`weights:` in the spec), as `vlmc forward` loads them.
      for (const m of ["encoder", "projector", "decoder"] as const) {
        const w = ir.modules[m]?.weights;
        if (!w) continue;
        try {
          loadWeightsFile(model, resolve(w), m, (p) => note(`${w}: ${p.message}`), w);
        } catch (err) {
          if (err instanceof WeightsFailure) return fail(`${err.file} does not fit the ${m}: ${err.problems.map((p) => p.message).slice(0, 3).join("; ")}`);
          throw err;
        }
      }
    }
    const metrics = new Metrics(join(runDir, "metrics.jsonl"));
    metrics.truncateAfter(resume?.state.globalStep ?? 0);
    const params = irParams(ir).reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
    emit({ type: "start", model: ir.model, runDir, backend: backend.backend, params, stages: ir.train.stages.map((s) => s.name), resumedFrom: from });

    const loaded = new Map<string, Promise<StageData>>();
    const data = (stage: IrStage) => {
      const key = JSON.stringify(stage.data);
      let d = loaded.get(key);
      if (!d) {
        d = loadStageData(stage.data, ir, tokenizer, { baseDir: process.cwd(), split: ir.train!.split, seed: ir.train!.seed }).then((sd) => {
          if (sd.problems.length) note(`${sd.describe}: ${sd.problems.length} row${sd.problems.length === 1 ? "" : "s"} left out: ${sd.problems.slice(0, 5).join("; ")}${sd.problems.length > 5 ? "; ..." : ""}`);
          return sd;
        });
        loaded.set(key, d);
      }
      return d;
    };

    let end;
    try {
      // Every stage's data is read (and its images decoded) before the first step: a missing file
      // or a corrupt image of a later stage stops the run now, not an hour in.
      for (const s of ir.train.stages) await data(s);
      end = await runStages({
        tf,
        ir,
        model,
        runDir,
        metrics,
        data,
        maxSteps: options.maxSteps ?? null,
        encoderCacheBytes: Math.floor(cacheMb * 2 ** 20),
        checkpointEvery: options.checkpointEvery ?? null,
        stopRequested: options.shouldStop ?? (() => false),
        emit,
        resume,
      });
    } catch (err) {
      if (err instanceof Diverged) {
        const last = listCheckpoints(runDir).pop()?.name ?? null;
        return { status: "diverged", message: err.message, runDir, checkpoint: last, diagnostics, sources };
      }
      if (err instanceof DataError) return fail(err.message);
      throw err;
    }
    let weights: string | null = null;
    if (end.status === "finished" || end.status === "max-steps") {
      weights = join(runDir, "weights.safetensors");
      saveWeights(model, weights);
    }
    if (end.status === "finished") {
      const done = { model: ir.model, hash: ir.hash, steps: end.globalStep, stages: ir.train.stages.map((s) => s.name), weights: "weights.safetensors", last_eval: end.lastEval };
      writeFileAtomic(join(runDir, "done.json"), `${JSON.stringify(done, null, 2)}\n`);
    }
    if (options.report !== false && weights) await reportAtEnd(runDir, tf, model, note);
    return { status: end.status, runDir, globalStep: end.globalStep, weights, checkpoint: end.checkpoint, lastEval: end.lastEval, diagnostics, sources };
  } finally {
    await curves?.finish();
    model.dispose();
  }
}

/** The first difference between two IRs, spans left out; null when they are the same. */
function irDifference(a: Ir, b: Ir): string | null {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).filter(([k]) => k !== "span").sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, x]) => [k, strip(x)]));
    return v;
  };
  const walk = (x: unknown, y: unknown, path: string): string | null => {
    if (JSON.stringify(x) === JSON.stringify(y)) return null;
    if (x && y && typeof x === "object" && typeof y === "object" && !Array.isArray(x) === !Array.isArray(y)) {
      const keys = [...new Set([...Object.keys(x), ...Object.keys(y)])];
      for (const k of keys) {
        const d = walk((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
        if (d) return d;
      }
    }
    return `${path || "the model"}: ${short(x)} then, ${short(y)} now`;
  };
  const short = (v: unknown) => {
    const s = JSON.stringify(v) ?? "nothing";
    return s.length > 60 ? `${s.slice(0, 57)}...` : s;
  };
  return walk(strip(a), strip(b), "");
}
