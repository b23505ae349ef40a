// `vlmc summary`: the cost estimate of a model (compiler/cost/estimate.ts) as a table in the
// manner of Keras's `model.summary()`, with symbolic shapes, the stages that train each layer,
// FLOPs and activation memory, totals per module and per stage; or the same data as JSON.
import pc from "picocolors";
import { BYTES_PER_FLOAT, bytes, WASM_ACTIVATION_OVERHEAD, WASM_HEAP_BYTES, type Estimate, type LayerCost, type ModuleCost, type ModuleName, type Role, type StageCost } from "../cost/estimate.js";
import type { IrShape } from "../ir/types.js";

// ---- JSON ----

export interface SummaryLayer {
  path: string;
  name: string;
  kind: string;
  output: IrShape;
  params: number;
  /** Forward FLOPs at `batch` (with its children). */
  flops: number;
  /** Activations kept for backward at `batch`, in bytes (with its children). */
  activation_bytes: number;
  /** Stages that train it (empty for a layer without parameters). */
  trained_in: string[];
  children?: SummaryLayer[];
}

export interface SummaryModule {
  name: ModuleName;
  input: IrShape;
  output: IrShape;
  params: number;
  flops: number;
  activation_bytes: number;
  trained_in: string[];
  layers: SummaryLayer[];
}

export interface SummaryStage {
  name: string;
  train: string[];
  frozen: string[];
  batch: number;
  accumulate: number;
  micro_batch: number;
  params_trained: number;
  flops_per_step: number;
  flops_forward: number;
  flops_backward: number;
  modules: Record<string, { role: Role; flops_forward: number; flops_backward: number; activation_bytes: number }>;
  memory: { params: number; gradients: number; optimizer: number; accumulation: number; activations: number; transient: number };
  /** The step's own peak memory at the micro-batch (a lower bound for any backend). */
  peak_bytes: number;
  /** The expected wasm heap (activations x WASM_ACTIVATION_OVERHEAD): what `fits_wasm` compares. */
  wasm_peak_bytes: number;
  fits_wasm: boolean;
  suggested_accumulate?: number | null;
}

export interface SummaryJson {
  model: string;
  batch: number;
  text: number;
  visual_tokens: number;
  context: number | null;
  text_budget: number | null;
  params: { total: number; trainable_by_stage: Record<string, number>; by_module: Record<string, number>; pretrained_frozen: number };
  modules: SummaryModule[];
  stages: SummaryStage[];
  flops_per_token: number | null;
  kv_cache_length: number;
  wasm_heap_bytes: number;
  unknown_kinds: string[];
}

export function summaryJson(est: Estimate): SummaryJson {
  const layer = (l: LayerCost, m: ModuleCost): SummaryLayer => ({
    path: l.path,
    name: l.name,
    kind: l.kind,
    output: l.output,
    params: l.params,
    flops: l.flops,
    activation_bytes: l.saved * BYTES_PER_FLOAT,
    trained_in: l.params > 0 ? m.trainedIn : [],
    ...(l.children ? { children: l.children.map((c) => layer(c, m)) } : {}),
  });
  return {
    model: est.model,
    batch: est.batch,
    text: est.text,
    visual_tokens: est.visualTokens,
    context: est.context,
    text_budget: est.textBudget,
    params: {
      total: est.paramsTotal,
      trainable_by_stage: Object.fromEntries(est.stages.map((s) => [s.name, s.paramsTrained])),
      by_module: Object.fromEntries(est.modules.map((m) => [m.name, m.params])),
      pretrained_frozen: est.paramsPretrainedFrozen,
    },
    modules: est.modules.map((m) => ({
      name: m.name,
      input: m.input,
      output: m.output,
      params: m.params,
      flops: m.flops,
      activation_bytes: m.saved * BYTES_PER_FLOAT,
      trained_in: m.trainedIn,
      layers: m.layers.map((l) => layer(l, m)),
    })),
    stages: est.stages.map(stageJson),
    flops_per_token: est.flopsPerToken,
    kv_cache_length: est.cacheLength,
    wasm_heap_bytes: WASM_HEAP_BYTES,
    unknown_kinds: est.unknownKinds,
  };
}

function stageJson(s: StageCost): SummaryStage {
  return {
    name: s.name,
    train: s.train,
    frozen: s.frozen,
    batch: s.batch,
    accumulate: s.accumulate,
    micro_batch: s.microBatch,
    params_trained: s.paramsTrained,
    flops_per_step: s.flopsPerStep,
    flops_forward: s.forwardFlops,
    flops_backward: s.backwardFlops,
    modules: Object.fromEntries(
      s.modules.map((m) => [m.name, { role: m.role, flops_forward: m.forwardFlops, flops_backward: m.backwardFlops, activation_bytes: m.activationBytes }]),
    ),
    memory: { ...s.memory },
    peak_bytes: s.peakBytes,
    wasm_peak_bytes: s.wasmPeakBytes,
    fits_wasm: s.fitsWasm,
    ...(s.suggestedAccumulate !== undefined ? { suggested_accumulate: s.suggestedAccumulate } : {}),
  };
}

// ---- units ----

/** 12.9M, 394K, 512. */
export function count(n: number): string {
  if (n < 1000) return String(n);
  const units = ["K", "M", "B", "T"];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)}${units[u]}`;
}

/** 3.1 GFLOP, 453 MFLOP. */
export function flops(n: number): string {
  if (n < 1000) return `${n} FLOP`;
  const units = ["k", "M", "G", "T", "P", "E"];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}FLOP`;
}

export { bytes };

const grouped = (n: number) => n.toLocaleString("en-US");

// ---- text ----

export interface TextSummaryOptions {
  color: boolean;
  /** Levels of the layer tree shown under each module (1: its top-level layers). */
  depth: number;
}

export const DEFAULT_DEPTH = 2;

interface Row {
  module: string;
  layer: string;
  kind: string;
  output: string;
  params: string;
  trained: string;
  flops: string;
  act: string;
  total?: boolean;
}

export function renderSummary(est: Estimate, options: TextSummaryOptions): string {
  const c = pc.createColors(options.color);
  const out: string[] = [];
  const trainable = new Set(est.stages.flatMap((s) => s.train));
  const trainableParams = est.modules.filter((m) => trainable.has(m.name)).reduce((a, m) => a + m.params, 0);
  const pretrained = est.paramsPretrainedFrozen > 0 ? `; and ${count(est.paramsPretrainedFrozen)} frozen weights of a pretrained model (not parameters: never trained or saved)` : "";
  out.push(`${c.bold(`model ${est.model}`)}: ${grouped(est.paramsTotal)} parameters (${count(est.paramsTotal)}), ${count(trainableParams)} trained in some stage${pretrained}`);
  const seq =
    est.visualTokens > 0
      ? `${est.visualTokens} visual token${est.visualTokens === 1 ? "" : "s"} + ${est.text} text tokens in the decoder`
      : `${est.text} text tokens in the decoder`;
  const budget = est.textBudget !== null ? `; text budget ${est.textBudget} = context ${est.context} - ${est.visualTokens} visual` : "";
  out.push(`batch ${est.batch}, ${seq}${budget}`);
  out.push("");

  const rows: Row[] = [];
  for (const m of est.modules) {
    const first = rows.length;
    rows.push(...layerRows(m, m.layers, 1, options.depth));
    if (rows.length > first) rows[first]!.module = m.name;
    rows.push({
      module: rows.length === first ? m.name : "",
      layer: "total",
      kind: "",
      output: shape(m.output),
      params: count(m.params),
      trained: m.trainedIn.join(", "),
      flops: flops(m.flops),
      act: bytes(m.saved * BYTES_PER_FLOAT),
      total: true,
    });
  }
  const header: Row = { module: "module", layer: "layer", kind: "kind", output: "output", params: "params", trained: "trained in", flops: "FLOPs (fwd)", act: "activations" };
  const cols: (keyof Row)[] = ["module", "layer", "kind", "output", "params", "trained", "flops", "act"];
  const right = new Set<keyof Row>(["params", "flops", "act"]);
  const width = new Map(cols.map((k) => [k, Math.max(...[header, ...rows].map((r) => String(r[k] ?? "").length))]));
  const fmt = (r: Row) =>
    cols
      .map((k) => {
        const v = String(r[k] ?? "");
        return right.has(k) ? v.padStart(width.get(k)!) : v.padEnd(width.get(k)!);
      })
      .join("  ")
      .trimEnd();
  const rule = "-".repeat(fmt(header).length);
  out.push(c.bold(fmt(header)), rule);
  rows.forEach((r, i) => {
    if (r.module && i > 0) out.push(rule);
    out.push(r.total ? c.bold(fmt(r)) : fmt(r));
  });
  out.push(rule);
  out.push(
    c.bold(
      fmt({
        module: "model",
        layer: "total",
        kind: "",
        output: "",
        params: count(est.paramsTotal),
        trained: "",
        flops: flops(est.modules.reduce((a, m) => a + m.flops, 0)),
        act: bytes(est.modules.reduce((a, m) => a + m.saved, 0) * BYTES_PER_FLOAT),
      }),
    ),
  );
  out.push("");
  out.push(c.dim(`FLOPs: forward, batch ${est.batch}; activations: kept for the backward pass, batch ${est.batch}; (xN) rows: totals over N identical layers.`));

  if (est.stages.length > 0) {
    out.push("");
    out.push(c.bold("stages"));
    const sh = { stage: "stage", trains: "trains", batch: "batch", params: "trained params", step: "FLOPs/step", peak: "peak memory", wasm: "wasm heap (est.)", fits: "4 GiB" };
    const srows = est.stages.map((s) => ({
      stage: s.name,
      trains: s.train.join(", "),
      batch: s.accumulate > 1 ? `${s.batch} = ${s.accumulate} x ${s.microBatch}` : String(s.batch),
      params: count(s.paramsTrained),
      step: flops(s.flopsPerStep),
      peak: bytes(s.peakBytes),
      wasm: bytes(s.wasmPeakBytes),
      fits: s.fitsWasm ? "fits" : s.suggestedAccumulate != null ? `too big: accumulate: ${s.suggestedAccumulate}` : "too big even at micro-batch 1",
    }));
    const stable = table(["stage", "trains", "batch", "params", "step", "peak", "wasm", "fits"], ["batch", "params", "step", "peak", "wasm"], sh, srows);
    out.push(c.bold(stable[0]!));
    stable.slice(1).forEach((line, i) => out.push(est.stages[i]!.fitsWasm ? line : line.replace(srows[i]!.fits, c.yellow(srows[i]!.fits))));
    for (const s of est.stages) {
      out.push("");
      out.push(`${c.bold(`stage ${s.name}`)}: batch ${s.batch}${s.accumulate > 1 ? ` in ${s.accumulate} micro-batches of ${s.microBatch}` : ""}`);
      const mh = { module: "module", role: "role", fwd: "forward", bwd: "backward", act: "activations" };
      const mrows: Record<keyof typeof mh, string>[] = s.modules.map((m) => ({
        module: m.name,
        role: roleText(m.role),
        fwd: m.role === "skipped" ? "-" : flops(m.forwardFlops),
        bwd: m.role === "skipped" ? "-" : flops(m.backwardFlops),
        act: bytes(m.activationBytes),
      }));
      mrows.push({ module: "total", role: "", fwd: flops(s.forwardFlops), bwd: flops(s.backwardFlops), act: bytes(s.memory.activations) });
      const mt = table(["module", "role", "fwd", "bwd", "act"], ["fwd", "bwd", "act"], mh, mrows);
      out.push(...mt.map((l, i) => `  ${i === 0 ? c.dim(l) : l}`));
      const mem = s.memory;
      const parts = [
        `parameters ${bytes(mem.params)}`,
        `gradients ${bytes(mem.gradients)}`,
        `optimizer state ${bytes(mem.optimizer)}`,
        ...(mem.accumulation ? [`accumulated gradients ${bytes(mem.accumulation)}`] : []),
        `activations ${bytes(mem.activations)}`,
        `largest transient ${bytes(mem.transient)}`,
      ];
      out.push(`  peak memory at micro-batch ${s.microBatch}: ${parts.join(" + ")} = ${bytes(s.peakBytes)}`);
      out.push(`  wasm heap (est.): activations and transient x ${WASM_ACTIVATION_OVERHEAD} (tfjs's gradient tape) = ${bytes(s.wasmPeakBytes)}`);
    }
    out.push("");
    out.push(c.dim("FLOPs/step: forward + backward over the whole batch; backward is 2x forward for a trained module, 1x for a frozen one that gradients pass through."));
  }
  if (est.flopsPerToken !== null) {
    out.push("");
    out.push(`generation: ${flops(est.flopsPerToken)} per token (decoder, batch 1, key/value cache of ${est.cacheLength} positions)`);
  }
  if (est.unknownKinds.length) out.push(c.yellow(`layer kinds this compiler does not know (costed as 0): ${est.unknownKinds.join(", ")}`));
  return `${out.join("\n")}\n`;
}

function roleText(r: Role): string {
  switch (r) {
    case "trained":
      return "trained";
    case "backprop":
      return "frozen, gradients pass through";
    case "forward":
      return "frozen, forward only";
    case "skipped":
      return "not run (text-only stage)";
  }
}

/** Lines of a plain table: a header, then the rows; `right` columns are right-aligned. */
function table<K extends string>(keys: readonly K[], right: readonly K[], header: Record<K, string>, rows: readonly Record<K, string>[]): string[] {
  const w = new Map(keys.map((k) => [k, Math.max(header[k].length, ...rows.map((r) => r[k].length))]));
  const fmt = (r: Record<K, string>) =>
    keys
      .map((k) => (right.includes(k) ? r[k].padStart(w.get(k)!) : r[k].padEnd(w.get(k)!)))
      .join("  ")
      .trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}

function shape(s: IrShape): string {
  return `[${s.join(", ")}]`;
}

/** A layer's label: its path under the module; an unnamed group is named by its children. */
function label(l: LayerCost, moduleName: string): string {
  const rel = l.path.startsWith(`${moduleName}.`) ? l.path.slice(moduleName.length + 1) : l.path === moduleName ? "" : l.path;
  if (l.name !== "") return rel;
  const inner = (l.children ?? []).map((c) => c.name || c.kind).join(" -> ");
  return `${l.kind}(${inner})`;
}

/** Identical layers (same kind, shapes, attributes and parameter shapes, recursively). */
function signature(l: LayerCost): string {
  return JSON.stringify([l.kind, l.input, l.output, l.params, l.flops, l.saved, (l.children ?? []).map(signature)]);
}

function layerRows(m: ModuleCost, layers: LayerCost[], level: number, maxDepth: number): Row[] {
  const rows: Row[] = [];
  const indent = "  ".repeat(level - 1);
  let i = 0;
  while (i < layers.length) {
    const l = layers[i]!;
    // Collapse a run of identical, consecutively numbered siblings whose insides are hidden.
    let j = i + 1;
    const hidden = level >= maxDepth && (l.children?.length ?? 0) > 0;
    if (hidden && /^\d+$/.test(l.name)) {
      const sig = signature(l);
      while (j < layers.length && layers[j]!.name === String(Number(l.name) + (j - i)) && signature(layers[j]!) === sig) j++;
    }
    const run = layers.slice(i, j);
    const n = run.length;
    let name = label(l, m.name);
    if (n > 1) {
      const last = layers[j - 1]!;
      name = `${name}-${last.name} (x${n})`;
    }
    const params = run.reduce((a, x) => a + x.params, 0);
    rows.push({
      module: "",
      layer: indent + name,
      kind: l.kind,
      output: shape(l.output),
      params: params ? count(params) : "-",
      trained: params ? m.trainedIn.join(", ") : "",
      flops: flops(run.reduce((a, x) => a + x.flops, 0)),
      act: bytes(run.reduce((a, x) => a + x.saved, 0) * BYTES_PER_FLOAT),
    });
    if (level < maxDepth && l.children) rows.push(...layerRows(m, l.children, level + 1, maxDepth));
    i = j;
  }
  return rows;
}
