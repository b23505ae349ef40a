// Cost estimates of a model, read from its IR (so they work for IR files as for .vlm specs):
// parameters, forward FLOPs and saved activations per layer and per module, and per training
// stage the FLOPs of one optimizer step and the peak memory of one (micro-)step, against the
// 4 GiB heap of the wasm backend. See docs/cost.md for the formulas and the seed model's figures.
//
// What is counted, and how (all floats are 4 bytes):
//
// - Parameters: the product of each IR parameter's shape. A tied LM head owns none.
// - Forward FLOPs: each layer kind's `flops(attrs, input, output)` (compiler/layers), with the
//   IR's symbolic dims bound: `B` the batch, `T` the text tokens, `N+T` N visual tokens + T.
//   A multiply-add counts 2. Container layers (residual, sequence) add their own cost (the
//   residual add) to their children's.
// - Backward FLOPs, per module, by the module's role in the stage:
//     trained   2 x forward: gradients for the activations (1x) and for the weights (1x);
//     backprop  1 x forward: a frozen module with a trained module before it: the activation
//               gradients still flow through it to the trained module, but it needs no weight
//               gradients (stage 1 of the seed recipe: the decoder is frozen, the projector
//               before it trains, so the decoder is differentiated for its input);
//     forward   0: a frozen module with no trained module before it (the encoder in stage 1)
//               runs forward only and keeps nothing for a backward pass;
//     skipped   a text-only stage (`data: text(...)`) runs no encoder and no projector, and the
//               decoder sees no visual tokens.
//   The 1x for `backprop` is a slight undercount for attention (its q k^T and p v products need
//   two matmuls each backward whatever is trained) and the 2x a slight overcount for a model's
//   very first layer (no gradient for the image); both are small next to the weight matmuls.
//   The loss (softmax cross-entropy) and the optimizer update are not counted (O(logits) and
//   O(params), well under 1% for these models).
// - FLOPs per generated token: the decoder alone (the image and the prompt are encoded once,
//   before generation), at batch 1, in evaluation (dropout off), for the last token of a full
//   context with a key/value cache of `context` positions: a layer costs P + S x L, where L is
//   the cache length and P (per token) and S (per query-key pair) are read off the kind's own
//   formula, f(n) = P n + S n^2 at batch 1 (f(1) and f(2) determine both). For attention that
//   is the q/k/v/o projections of one token plus q k^T and p v against L cached keys and values.
// - Peak memory of a training (micro-)step, at the micro-batch batch / accumulate:
//     parameters      every parameter of the model (frozen ones are loaded too);
//     gradients       one float per trained parameter;
//     optimizer       Adam/AdamW: two moments per trained parameter; SGD: one with momentum;
//     accumulation    with `accumulate` > 1, a running sum of the gradients per trained parameter;
//     activations     the floats each layer keeps for backward (the kind's `saved`, else its
//                     output), in every module whose role is `trained` or `backprop` (a frozen
//                     module that passes gradients keeps the same: conservative), plus the input
//                     of the first such module;
//     transient       the largest working set of one layer on top of that: its input and output
//                     (or their gradients) alive together, plus for attention the scores and
//                     probabilities (B x heads x N x N, twice), plus for the LM head the softmax
//                     of the logits for the loss.
//   Not counted: the backend's own overhead (kernel scratch, transposed copies, fragmentation:
//   the wasm heap never shrinks). That figure is `peakBytes`, a lower bound.
// - The wasm heap of the step (`wasmPeakBytes`, what W0502 and `fitsWasm` use): tfjs's gradient
//   tape keeps every intermediate tensor of the forward pass and the wasm heap keeps its high
//   water mark, so the activation part (activations + transient) is multiplied by
//   WASM_ACTIVATION_OVERHEAD, fitted to two measured runs of the seed-sized model on tfjs-wasm
//   (/work/shared/reference/wasm-probe; see docs/cost.md): the fixed part (parameters,
//   gradients, optimizer state) is exact, the activation part was 11.3x and 11.8x the estimate.
import type { Diagnostic } from "../diagnostics/diagnostic.js";
import { diagnostic } from "../diagnostics/diagnostic.js";
import { layerKinds } from "../layers/index.js";
import type { Typed } from "../resolve/types.js";
import type { Span } from "../source.js";
import { IR_MODULES, type Ir, type IrDim, type IrLayer, type IrModule, type IrShape, type IrStage } from "../ir/types.js";

export const BYTES_PER_FLOAT = 4;
/** What the wasm32 backend can address. */
export const WASM_HEAP_BYTES = 4 * 2 ** 30;
/** The default text length when the decoder's text budget is larger: a long character-level caption. */
export const DEFAULT_TEXT_CAP = 64;
/**
 * Measured wasm heap / estimated activation memory of a training step (tfjs 4.22, wasm backend,
 * the seed model at batch 16 x 33 tokens: 11.8; a 22.6M-parameter variant at micro-batch 8 x
 * 129 tokens: 11.3), rounded up. 1 turns the wasm estimate into the plain estimate.
 */
export const WASM_ACTIVATION_OVERHEAD = 12;

export type ModuleName = (typeof IR_MODULES)[number];
export type Role = "trained" | "backprop" | "forward" | "skipped";

export interface EstimateOptions {
  /** The batch of the per-layer figures and of every stage (default: each stage's own batch; the layer table uses `train.batch`, else 1). */
  batch?: number;
  /** Text tokens per example (default: the text budget, at most DEFAULT_TEXT_CAP). */
  text?: number;
}

/** Values for the symbols of IR shapes. */
export interface Sizes {
  B: number;
  T: number;
  /** A text-only stage: the decoder sees no visual tokens (`N+T` is read as `T`). */
  textOnly?: boolean;
}

export interface LayerCost {
  path: string;
  name: string;
  kind: string;
  input: IrShape;
  output: IrShape;
  /** Parameters of the layer and its children. */
  params: number;
  /** Forward FLOPs of the layer and its children, for the batch. */
  flops: number;
  /** Floats kept for the backward pass by the layer and its children. */
  saved: number;
  /** The largest transient working set (floats) of one layer of the subtree. */
  transient: number;
  children?: LayerCost[];
}

export interface ModuleCost {
  name: ModuleName;
  input: IrShape;
  output: IrShape;
  params: number;
  flops: number;
  saved: number;
  transient: number;
  /** Floats of the module's input (saved when the module starts the backward pass). */
  inputFloats: number;
  /** Stages that train this module. */
  trainedIn: string[];
  layers: LayerCost[];
}

export interface StageModuleCost {
  name: ModuleName;
  role: Role;
  forwardFlops: number;
  backwardFlops: number;
  /** Bytes of saved activations at the micro-batch. */
  activationBytes: number;
}

export interface MemoryBreakdown {
  params: number;
  gradients: number;
  optimizer: number;
  accumulation: number;
  activations: number;
  transient: number;
}

export interface StageCost {
  name: string;
  train: string[];
  frozen: string[];
  batch: number;
  accumulate: number;
  microBatch: number;
  paramsTrained: number;
  /** Forward + backward FLOPs of one optimizer step (all micro-batches). */
  flopsPerStep: number;
  forwardFlops: number;
  backwardFlops: number;
  modules: StageModuleCost[];
  /** Bytes, at the micro-batch. */
  memory: MemoryBreakdown;
  /** The step's own peak (the sum of `memory`): a lower bound for any backend. */
  peakBytes: number;
  /** The expected wasm heap: the activation part of `memory` times WASM_ACTIVATION_OVERHEAD. */
  wasmPeakBytes: number;
  /** `wasmPeakBytes` fits the wasm heap (4 GiB). */
  fitsWasm: boolean;
  /** When it does not fit: the `accumulate` whose micro-batch fits (null: not even 1 does). */
  suggestedAccumulate?: number | null;
  /** The stage's span in the IR, for diagnostics. */
  span?: IrStage["span"];
}

export interface Estimate {
  model: string;
  /** The batch of the per-layer and per-module figures. */
  batch: number;
  /** Text tokens per example. */
  text: number;
  visualTokens: number;
  /** The decoder's context, when the IR says it (a position table's length). */
  context: number | null;
  /** context - visual tokens, or null when the context is unknown. */
  textBudget: number | null;
  paramsTotal: number;
  paramsByModule: Partial<Record<ModuleName, number>>;
  /** Weights of pretrained models run as layers (a `tfjs` encoder's), always frozen and not vlmc parameters. */
  paramsPretrainedFrozen: number;
  modules: ModuleCost[];
  stages: StageCost[];
  /** Decoder FLOPs for one generated token (null without a decoder). */
  flopsPerToken: number | null;
  /** The key/value cache length used for `flopsPerToken`. */
  cacheLength: number;
  /** Layer kinds of the IR that this compiler does not know (costed as 0). */
  unknownKinds: string[];
}

// ---- dims ----

/**
 * The value of an IR dim: a number, or a sum of products of numbers and symbols (`B`, `T`,
 * `1+T`, `36+T`). Throws on a symbol `sizes` does not bind.
 */
export function evalDim(d: IrDim, sizes: Readonly<Record<string, number>>): number {
  if (typeof d === "number") return d;
  let total = 0;
  for (const term of d.split("+")) {
    let product = 1;
    for (const factor of term.split("*")) {
      const f = factor.trim();
      if (/^\d+$/.test(f)) product *= Number(f);
      else if (Object.hasOwn(sizes, f)) product *= sizes[f]!;
      else throw new Error(`unknown symbol \`${f}\` in the dimension \`${d}\``);
    }
    total += product;
  }
  return total;
}

function dims(shape: IrShape, s: Sizes): number[] {
  return shape.map((d) => evalDim(s.textOnly && typeof d === "string" && /^\d+\+T$/.test(d) ? "T" : d, { B: s.B, T: s.T }));
}

const numel = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

// ---- the model's figures ----

/** The decoder's context: its position table's length (null when the IR does not say). */
export function decoderContext(ir: Ir): number | null {
  const dec = ir.modules.decoder as (IrModule & { context?: unknown }) | undefined;
  if (!dec) return null;
  if (typeof dec.context === "number") return dec.context;
  for (const l of dec.layers) if (l.kind === "positions" && typeof l.attrs.length === "number") return l.attrs.length;
  return null;
}

/** Visual tokens in front of the text: the projector's output length, else the encoder's. */
export function visualTokens(ir: Ir): number {
  const m = ir.modules.projector ?? ir.modules.encoder;
  if (!m || !ir.modules.decoder) return 0;
  const n = m.output[1];
  return typeof n === "number" ? n : 0;
}

export function estimate(ir: Ir, options: EstimateOptions = {}): Estimate {
  const context = decoderContext(ir);
  const visual = visualTokens(ir);
  const textBudget = context === null ? null : context - visual;
  const text = options.text ?? Math.max(1, Math.min(textBudget ?? DEFAULT_TEXT_CAP, DEFAULT_TEXT_CAP));
  const batch = options.batch ?? ir.train?.batch ?? 1;
  const unknown = new Set<string>();
  const stages = ir.train?.stages ?? [];

  const modules = costModules(ir, { B: batch, T: text }, unknown);
  for (const m of modules) m.trainedIn = stages.filter((s) => s.train.includes(m.name)).map((s) => s.name);
  const paramsByModule: Partial<Record<ModuleName, number>> = {};
  for (const m of modules) paramsByModule[m.name] = m.params;
  const paramsTotal = modules.reduce((a, m) => a + m.params, 0);
  let paramsPretrainedFrozen = 0;
  const frozenIn = (ls: readonly IrLayer[]): void => {
    for (const l of ls) {
      if (l.kind === "tfjs_model" && typeof l.attrs.frozen_params === "number") paramsPretrainedFrozen += l.attrs.frozen_params;
      if (l.children) frozenIn(l.children);
    }
  };
  for (const m of Object.values(ir.modules)) if (m) frozenIn(m.layers);

  const cacheLength = context ?? visual + text;
  const est: Estimate = {
    model: ir.model,
    batch,
    text,
    visualTokens: visual,
    context,
    textBudget,
    paramsTotal,
    paramsByModule,
    paramsPretrainedFrozen,
    modules,
    stages: [],
    flopsPerToken: ir.modules.decoder ? tokenFlops(ir.modules.decoder, cacheLength, unknown) : null,
    cacheLength,
    unknownKinds: [],
  };
  est.stages = stages.map((s) => costStage(ir, s, { batch: options.batch ?? s.batch, text, paramsTotal }, unknown));
  est.unknownKinds = [...unknown].sort();
  return est;
}

function costModules(ir: Ir, sizes: Sizes, unknown: Set<string>): ModuleCost[] {
  const out: ModuleCost[] = [];
  for (const name of IR_MODULES) {
    const m = ir.modules[name];
    if (!m) continue;
    const layers = m.layers.map((l) => costLayer(l, sizes, unknown));
    out.push({
      name,
      input: m.input,
      output: m.output,
      params: sum(layers, (l) => l.params),
      flops: sum(layers, (l) => l.flops),
      saved: sum(layers, (l) => l.saved),
      transient: Math.max(0, ...layers.map((l) => l.transient)),
      inputFloats: numel(dims(m.input, sizes)),
      trainedIn: [],
      layers,
    });
  }
  return out;
}

function costLayer(l: IrLayer, sizes: Sizes, unknown: Set<string>): LayerCost {
  const kind = layerKinds.get(l.kind);
  if (!kind) unknown.add(l.kind);
  const input = dims(l.input, sizes);
  const output = dims(l.output, sizes);
  const args = l.attrs as Record<string, Typed>;
  const children = l.children?.map((c) => costLayer(c, sizes, unknown));
  const own = {
    params: sum(l.params, (p) => numel(p.shape)),
    flops: kind?.flops ? kind.flops(args, input, output) : 0,
    saved: kind ? (kind.saved ? kind.saved(args, input, output) : numel(output)) : 0,
  };
  let transient = 0;
  if (!children || children.length === 0) {
    transient = numel(input) + numel(output);
    if (l.kind === "attention") transient += 2 * input[0]! * Number(l.attrs.heads) * input[1]! * input[1]!;
    if (l.kind === "lm_head") transient += numel(output);
  }
  return {
    path: l.path,
    name: l.name,
    kind: l.kind,
    input: l.input,
    output: l.output,
    params: own.params + sum(children ?? [], (c) => c.params),
    flops: own.flops + sum(children ?? [], (c) => c.flops),
    saved: own.saved + sum(children ?? [], (c) => c.saved),
    transient: Math.max(transient, ...(children ?? []).map((c) => c.transient)),
    ...(children ? { children } : {}),
  };
}

/** Decoder FLOPs of one new token against a key/value cache of `cache` positions. */
function tokenFlops(dec: IrModule, cache: number, unknown: Set<string>): number {
  const at = (l: IrLayer, n: number): number => {
    const kind = layerKinds.get(l.kind);
    if (!kind) {
      unknown.add(l.kind);
      return 0;
    }
    const shape = (s: IrShape) => s.map((d) => (typeof d === "number" ? d : d === "B" ? 1 : n));
    return kind.flops ? kind.flops(l.attrs as Record<string, Typed>, shape(l.input), shape(l.output)) : 0;
  };
  const walk = (l: IrLayer): number => {
    if (l.kind === "dropout") return 0; // off in evaluation
    const own = at(l, 1);
    const pairs = (at(l, 2) - 2 * own) / 2; // f(n) = P n + S n^2: S = (f(2) - 2 f(1)) / 2
    return own - pairs + pairs * cache + sum(l.children ?? [], walk);
  };
  return sum(dec.layers, walk);
}

interface StageInputs {
  batch: number;
  text: number;
  paramsTotal: number;
}

/** Moments an optimizer keeps per trained parameter. */
function optimizerMoments(s: IrStage): number {
  const kind = s.optimizer.kind;
  if (kind === "sgd") return Number(s.optimizer.momentum ?? 0) > 0 ? 1 : 0;
  return 2; // adam, adamw (and, conservatively, anything unknown)
}

function costStage(ir: Ir, s: IrStage, inp: StageInputs, unknown: Set<string>): StageCost {
  const accumulate = s.accumulate > 0 && inp.batch % s.accumulate === 0 ? s.accumulate : 1;
  const micro = inp.batch / accumulate;
  const textOnly = s.data.kind === "text";
  const roles = stageRoles(ir, s);
  const full = costModules(ir, { B: inp.batch, T: inp.text, textOnly }, unknown);
  const trainedParams = sum(
    full.filter((m) => roles.get(m.name) === "trained"),
    (m) => m.params,
  );
  const memoryAt = (mb: number): { memory: MemoryBreakdown; modules: Map<ModuleName, number> } => {
    const ms = costModules(ir, { B: mb, T: inp.text, textOnly }, unknown);
    const activations = new Map<ModuleName, number>();
    let transient = 0;
    let started = false;
    for (const m of ms) {
      const role = roles.get(m.name)!;
      if (role === "skipped") continue;
      transient = Math.max(transient, m.transient);
      if (role === "forward") continue;
      activations.set(m.name, (m.saved + (started ? 0 : m.inputFloats)) * BYTES_PER_FLOAT);
      started = true;
    }
    const p = trainedParams * BYTES_PER_FLOAT;
    return {
      memory: {
        params: inp.paramsTotal * BYTES_PER_FLOAT,
        gradients: p,
        optimizer: p * optimizerMoments(s),
        accumulation: accumulate > 1 ? p : 0,
        activations: sum([...activations.values()], (x) => x),
        transient: transient * BYTES_PER_FLOAT,
      },
      modules: activations,
    };
  };
  const total = (m: MemoryBreakdown) => m.params + m.gradients + m.optimizer + m.accumulation + m.activations + m.transient;
  const { memory, modules: actByModule } = memoryAt(micro);
  const peakBytes = total(memory);
  const wasmPeakBytes = wasmPeak(memory);
  const modules: StageModuleCost[] = full.map((m) => {
    const role = roles.get(m.name)!;
    const fwd = role === "skipped" ? 0 : m.flops;
    const bwd = role === "trained" ? 2 * fwd : role === "backprop" ? fwd : 0;
    return { name: m.name, role, forwardFlops: fwd, backwardFlops: bwd, activationBytes: actByModule.get(m.name) ?? 0 };
  });
  const forwardFlops = sum(modules, (m) => m.forwardFlops);
  const backwardFlops = sum(modules, (m) => m.backwardFlops);
  const out: StageCost = {
    name: s.name,
    train: s.train,
    frozen: s.frozen,
    batch: inp.batch,
    accumulate,
    microBatch: micro,
    paramsTrained: trainedParams,
    flopsPerStep: forwardFlops + backwardFlops,
    forwardFlops,
    backwardFlops,
    modules,
    memory,
    peakBytes,
    wasmPeakBytes,
    fitsWasm: wasmPeakBytes <= WASM_HEAP_BYTES,
    ...(s.span ? { span: s.span } : {}),
  };
  if (!out.fitsWasm) {
    // The largest micro-batch (a divisor of the batch) whose step fits.
    let suggestion: number | null = null;
    for (let mb = micro - 1; mb >= 1; mb--) {
      if (inp.batch % mb !== 0) continue;
      if (wasmPeak(memoryAt(mb).memory) <= WASM_HEAP_BYTES) {
        suggestion = inp.batch / mb;
        break;
      }
    }
    out.suggestedAccumulate = suggestion;
  }
  return out;
}

/** The expected wasm heap of a step with this breakdown (see the header). */
export function wasmPeak(m: MemoryBreakdown): number {
  return m.params + m.gradients + m.optimizer + m.accumulation + WASM_ACTIVATION_OVERHEAD * (m.activations + m.transient);
}

/** Each module's role in a stage (see the header). */
export function stageRoles(ir: Ir, s: IrStage): Map<ModuleName, Role> {
  const roles = new Map<ModuleName, Role>();
  const textOnly = s.data.kind === "text";
  let upstreamTrained = false;
  for (const name of IR_MODULES) {
    if (!ir.modules[name]) continue;
    if (textOnly && name !== "decoder") {
      roles.set(name, "skipped");
      continue;
    }
    const trained = s.train.includes(name);
    roles.set(name, trained ? "trained" : upstreamTrained ? "backprop" : "forward");
    upstreamTrained ||= trained;
  }
  return roles;
}

function sum<T>(xs: readonly T[], f: (x: T) => number): number {
  let t = 0;
  for (const x of xs) t += f(x);
  return t;
}

// ---- W0502 ----

/**
 * W0502 for every stage whose estimated step exceeds the wasm heap. `spanOf` gives the stage's
 * span (null: the stage cannot be pointed at, and no diagnostic is made for it).
 */
export function memoryWarnings(est: Estimate, spanOf: (stage: StageCost, index: number) => Span | null): Diagnostic[] {
  const out: Diagnostic[] = [];
  est.stages.forEach((s, i) => {
    if (s.fitsWasm) return;
    const span = spanOf(s, i);
    if (!span) return;
    const m = s.memory;
    const biggest = [...s.modules].sort((a, b) => b.activationBytes - a.activationBytes)[0];
    const tokens = `${est.visualTokens ? `${est.visualTokens} visual + ` : ""}${est.text} text tokens`;
    const notes = [
      `the step itself needs ~${bytes(s.peakBytes)} at micro-batch ${s.microBatch} x ${tokens}: ` +
        `parameters ${bytes(m.params)}, gradients and optimizer state ${bytes(m.gradients + m.optimizer + m.accumulation)}, ` +
        `saved activations ${bytes(m.activations)}${biggest && biggest.activationBytes > 0 ? ` (${biggest.name} ${bytes(biggest.activationBytes)})` : ""}, largest transient ${bytes(m.transient)}`,
      `tfjs keeps every intermediate of the forward pass for its gradients: activations count ${WASM_ACTIVATION_OVERHEAD}x on the wasm heap (measured; see docs/cost.md)`,
    ];
    const help =
      s.suggestedAccumulate != null
        ? [`accumulate gradients over micro-batches of ${s.batch / s.suggestedAccumulate}: \`accumulate: ${s.suggestedAccumulate}\``, "or use a smaller `batch`"]
        : ["even a micro-batch of 1 does not fit: use shorter texts, a smaller model, or train fewer modules in this stage"];
    out.push(
      diagnostic("W0502", span, `a step of stage \`${s.name}\` needs about ${bytes(s.wasmPeakBytes)}, more than the wasm backend's 4 GiB heap`, {
        label: `~${bytes(s.wasmPeakBytes)} at micro-batch ${s.microBatch}`,
        notes,
        help,
      }),
    );
  });
  return out;
}

/** Bytes in binary units: 512 B, 3.0 KiB, 210 MiB, 4.5 GiB. */
export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}
