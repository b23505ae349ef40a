// The machinery every Hugging Face checkpoint mapping shares (runtime/hf-gpt2.ts, hf-llama.ts,
// hf-vision.ts): a family is described once, as a table (vlmc parameter -> Hugging Face tensor,
// per block and outside the blocks), an optional prefix its files may or may not use
// (`transformer.`, `model.`, `vision_model.`), the transforms between the two layouts, and the
// words its messages use; this file turns that description into the load plan of a file's header
// (every problem collected: missing tensors, wrong shapes and dtypes, a tensor given with and
// without the prefix, tensors the spec has no parameter for) and into all-or-nothing loading.
// The families keep their tables, their own transforms and their config.json handling; what is
// here is what would otherwise be written three times and drift apart.
//
// Plain TypeScript with no tfjs import: the compiler's check-time header validation
// (runtime/weights-check.ts) reaches it through the families' plans.
import type { Model } from "./model.js";
import {
  FLOAT_DTYPES,
  formatShape,
  readSafetensors,
  readSafetensorsHeader,
  type HeaderLimits,
  type SafetensorsHeader,
  type SafetensorsProblem,
  type TensorInfo,
} from "./safetensors.js";
import type { ExpectedParam, LoadStep, WeightsPlan, WeightsProblem } from "./weights-check.js";
import { assignValues } from "./weights.js";

/** Where a vlmc parameter is in a Hugging Face file: the tensor (without the prefix) and what a family adds. */
export interface HfSourceBase {
  tensor: string;
  /** Read when `tensor` is absent (an untied head from a file that ties it: the embedding). */
  fallback?: string;
}

/**
 * How a parameter's values are stored in the file's tensor, and how the two shapes relate. The
 * families build one per source (`plainRead`, `transposedRead` here; thirds of c_attn, the first
 * rows of wpe, a conv weight's permutation in theirs).
 */
export interface HfTransform {
  /** Parameters that read one tensor with equal keys are checked together (q, k and v: the thirds of c_attn). */
  key: string;
  /** The shape the file's tensor must have for a parameter of `shape`; null when it cannot be said. */
  fileShape(shape: readonly number[], file: TensorInfo | undefined): number[] | null;
  /** Whether the file's shape will do; default: equal to `want`. */
  fits?(file: readonly number[], want: readonly number[]): boolean;
  /** The needed shape in messages (`inShape`: the shape message, else the missing one); default `[a, b]`. */
  describe?(want: number[] | null, shape: readonly number[], inShape: boolean): string;
  /** The stored layout, after the file's shape in a shape message (` ([out, in])`). */
  layout?: string;
  /** After the needed shape in a missing message: the part of the tensor the parameter is. */
  part?: string;
  /** Stored with its axes reversed (the `transposed` of a problem and `transpose` of a step). */
  transposed?: boolean;
  /** The parameter's values, float32 in vlmc's layout, from the file's tensor. */
  read(data: ArrayLike<number>, fileShape: readonly number[], shape: readonly number[]): Float32Array;
}

/** A row-major [r, c] matrix as [c, r]. */
export function transpose2d(data: ArrayLike<number>, r: number, c: number): Float32Array {
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = data[i * c + j]!;
  return out;
}

/** Stored as vlmc stores it: the first values, as many as the parameter has (all, or wpe's first rows). */
export function plainRead(data: ArrayLike<number>, _fileShape: readonly number[], shape: readonly number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = data[i]!;
  return out;
}

export const AS_STORED: HfTransform = { key: "", fileShape: (shape) => [...shape], read: plainRead };

/** nn.Linear's [out, in], vlmc's [in, out] transposed. */
export const TRANSPOSED: HfTransform = {
  key: "T",
  fileShape: (shape) => [...shape].reverse(),
  layout: " ([out, in])",
  transposed: true,
  read: (data, fileShape) => transpose2d(data, fileShape[0]!, fileShape[1]!),
};

/** A layer's weight and bias: `${name}.weight` from `${hf}.weight` (stored as `weight` says) and `${name}.bias` from `${hf}.bias`. */
export function affine<S extends HfSourceBase = HfSourceBase>(name: string, hf: string, weight?: Omit<S, "tensor">): Record<string, S> {
  return { [`${name}.weight`]: { ...weight, tensor: `${hf}.weight` } as S, [`${name}.bias`]: { tensor: `${hf}.bias` } as S };
}

/** One family's names, layouts and words. */
export interface HfMapping<S extends HfSourceBase, O = object> {
  /** The checkpoint in messages: `a Hugging Face ${checkpoint} checkpoint`, `part of a ${checkpoint} model`. */
  checkpoint: string;
  /** The tensors in the duplicate message: `the same Hugging Face ${family} tensor`. */
  family: string;
  /** The prefix a file's tensors may carry (`transformer.`). */
  prefix: string;
  /** The vlmc module the table fills (`decoder.`). */
  module: string;
  /** The module's parameters outside its blocks: vlmc name under `module` -> source. */
  top: Readonly<Record<string, S>>;
  /** One block's: vlmc name under `blocks.{i}.` -> source under `${layers}.{i}.`. */
  block: Readonly<Record<string, S>>;
  layers: string;
  /** A name only the family's checkpoints have (prefix optional), and how messages name it. */
  marker: RegExp;
  markerText: string;
  /** A file's name for a table name (default: with the prefix). */
  fileName?(bare: string): string;
  /** Tensors that hold no parameter (buffers, a tied head, a pooling head): not loaded, no warning. */
  ignore(bare: string): boolean;
  /** A file may hold a bigger model around this one (a whole CLIPModel): unprefixed tensors that mean nothing here are ignored. */
  within?: true;
  /** The unexpected-tensor warning's guess at the reason (`(more layers in the checkpoint than in the spec?)`). */
  moreLayers: string;
  /** How `source` is stored. */
  transform(source: S, options: O): HfTransform;
}

/** A load step with its source (the tensor actually read: a fallback, say) and the transform. */
export interface HfStep<S extends HfSourceBase> extends LoadStep {
  source: S;
  transform: HfTransform;
}

export interface HfMappedPlan<S extends HfSourceBase> extends WeightsPlan {
  steps: HfStep<S>[];
}

export type HfMappedLoadResult =
  | { ok: true; values: Map<string, Float32Array>; warnings: WeightsProblem[]; header: SafetensorsHeader }
  | { ok: false; problems: (WeightsProblem | SafetensorsProblem)[] };

const tick = (s: string) => `\`${s}\``;

/** A file's tensor name without the family's prefix. */
function bareName(m: HfMapping<HfSourceBase, never>, name: string): string {
  return name.startsWith(m.prefix) ? name.slice(m.prefix.length) : name;
}

/** Where the vlmc parameter `param` is in a family's file (table names), or null when the family has no place for it. */
function sourceOf<S extends HfSourceBase>(m: HfMapping<S, never>, param: string): S | null {
  if (!param.startsWith(m.module)) return null;
  const rel = param.slice(m.module.length);
  const top = m.top[rel];
  if (top) return top;
  const b = /^blocks\.(\d+)\.(.+)$/.exec(rel);
  const s = b ? m.block[b[2]!] : undefined;
  return s ? { ...s, tensor: `${m.layers}.${b![1]}.${s.tensor}` } : null;
}

/** The vlmc parameters a file's tensor holds (several for c_attn), prefix or not. */
function paramsOf(m: HfMapping<HfSourceBase, never>, tensor: string): string[] {
  const name = bareName(m, tensor);
  const out: string[] = [];
  for (const [rel, s] of Object.entries(m.top)) if (s.tensor === name) out.push(m.module + rel);
  const b = name.startsWith(`${m.layers}.`) ? /^(\d+)\.(.+)$/.exec(name.slice(m.layers.length + 1)) : null;
  if (b) for (const [rel, s] of Object.entries(m.block)) if (s.tensor === b[2]) out.push(`${m.module}blocks.${b[1]}.${rel}`);
  return out;
}

/** Whether a header is a family's checkpoint's: it names the family's marker. */
function isFamilyHeader(m: HfMapping<HfSourceBase, never>, header: SafetensorsHeader): boolean {
  return header.tensors.some((t) => m.marker.test(bareName(m, t.name)));
}

/** `decoder.blocks.0.attn.{q,k,v}.weight` for the three thirds of c_attn; other lists joined. */
function paramsLabel(params: readonly string[]): string {
  if (params.length !== 3) return params.join(", ");
  const m = params.map((p) => /^(.*)\.([qkv])\.(weight|bias)$/.exec(p));
  return m.every((x) => x && x[1] === m[0]![1] && x[3] === m[0]![3]) ? `${m[0]![1]}.{q,k,v}.${m[0]![3]}` : params.join(", ");
}

/**
 * The load plan of a family's file for a module's parameters (`expected`, named as in the IR),
 * from the header alone; null when the header is not the family's (then the file is read by
 * vlmc's own names). `param` in a problem is the vlmc parameter (`...{q,k,v}.weight` for
 * parameters checked together), `tensor` the file's name; messages name both.
 */
export function hfPlan<S extends HfSourceBase, O>(m: HfMapping<S, O>, header: SafetensorsHeader, expected: readonly ExpectedParam[], options: O): HfMappedPlan<S> | null {
  if (!isFamilyHeader(m, header)) return null;
  const problems: WeightsProblem[] = [];
  const ignored: string[] = [];
  const files = new Map<string, TensorInfo>();
  for (const t of header.tensors) {
    if (m.within && !t.name.startsWith(m.prefix) && !paramsOf(m, t.name).length && !m.ignore(t.name)) {
      ignored.push(t.name);
      continue;
    }
    const bare = bareName(m, t.name);
    const first = files.get(bare);
    if (first) {
      const holds = paramsOf(m, bare);
      const message = `tensors ${tick(first.name)} and ${tick(t.name)} are the same Hugging Face ${m.family} tensor, with and without \`${m.prefix}\``;
      problems.push({ kind: "duplicate", severity: "error", param: holds.length ? paramsLabel(holds) : bare, tensor: t.name, other: first.name, message });
      continue;
    }
    files.set(bare, t);
  }
  // What the parameters need from the file, one need per tensor and way of reading it (q, k and
  // v share c_attn; an untied head reads the embedding transposed, apart from its plain read).
  const needs = new Map<string, { tensor: string; params: { p: ExpectedParam; source: S; transform: HfTransform }[] }>();
  for (const p of expected) {
    let source = sourceOf(m, p.name);
    if (!source) {
      problems.push({ kind: "missing", severity: "error", param: p.name, shape: p.shape, message: `parameter ${tick(p.name)} ${formatShape(p.shape)} has no counterpart in a Hugging Face ${m.checkpoint} checkpoint` });
      continue;
    }
    if (source.fallback && !files.has(source.tensor) && files.has(source.fallback)) source = { ...source, tensor: source.fallback };
    const transform = m.transform(source, options);
    const key = `${source.tensor}/${transform.key}`;
    const need = needs.get(key) ?? { tensor: source.tensor, params: [] };
    need.params.push({ p, source, transform });
    needs.set(key, need);
  }
  const steps: HfStep<S>[] = [];
  const used = new Set<string>();
  for (const need of needs.values()) {
    const { p: first, transform } = need.params[0]!;
    const t = files.get(need.tensor);
    const want = transform.fileShape(first.shape, t);
    const describe = (inShape: boolean) => transform.describe?.(want, first.shape, inShape) ?? formatShape(want!);
    if (!t) {
      const fileName = m.fileName ? m.fileName(need.tensor) : m.prefix + need.tensor;
      for (const { p, transform: own } of need.params) {
        problems.push({ kind: "missing", severity: "error", param: p.name, shape: p.shape, message: `parameter ${tick(p.name)} ${formatShape(p.shape)} has no tensor in the file: it needs ${tick(fileName)} ${describe(false)}${own.part ?? ""}` });
      }
      continue;
    }
    used.add(t.name);
    const label = paramsLabel(need.params.map(({ p }) => p.name));
    const transposed = transform.transposed === true;
    let ok = true;
    const fits = want !== null && (transform.fits ? transform.fits(t.shape, want) : t.shape.length === want.length && t.shape.every((d, i) => d === want[i]));
    if (!fits) {
      ok = false;
      const message = `${tick(t.name)} (parameter ${tick(label)}) has shape ${formatShape(t.shape)} in the file${transform.layout ?? ""}, the spec needs ${describe(true)}`;
      problems.push({ kind: "shape", severity: "error", param: label, tensor: t.name, fileShape: t.shape, shape: want ?? first.shape, transposed, message });
    }
    if (!FLOAT_DTYPES.includes(t.dtype)) {
      ok = false;
      problems.push({ kind: "dtype", severity: "error", param: label, tensor: t.name, dtype: t.dtype, message: `${tick(t.name)} (parameter ${tick(label)}) is ${t.dtype} in the file; a parameter loads from ${FLOAT_DTYPES.join(", ")}` });
    }
    if (ok) for (const { p, source, transform: own } of need.params) steps.push({ param: p.name, tensor: t, transpose: transposed, source, transform: own });
  }
  // The rest of the file: what holds no parameter is ignored; anything else is not loaded.
  for (const [bare, t] of files) {
    if (used.has(t.name)) continue;
    if (m.ignore(bare)) {
      ignored.push(t.name);
      continue;
    }
    const holds = paramsOf(m, bare);
    problems.push({
      kind: "unexpected",
      severity: "warning",
      tensor: t.name,
      param: holds[0] ?? t.name,
      message: holds.length
        ? `tensor ${tick(t.name)} holds ${tick(paramsLabel(holds))}, which the spec does not have ${m.moreLayers}; it is not loaded`
        : `tensor ${tick(t.name)} is not part of a ${m.checkpoint} model; it is not loaded`,
    });
  }
  const order = new Map(expected.map((p, i) => [p.name, i]));
  steps.sort((a, b) => order.get(a.param)! - order.get(b.param)!);
  return { ok: !problems.some((p) => p.severity === "error"), problems, steps, ignored };
}

/**
 * Reads a module's parameters `expected` from a family's file, all or nothing: the header is
 * validated against them first (`plan`), then only the tensors needed are read and put in
 * vlmc's layouts. A file that is not the family's checkpoint is an error too.
 */
export function loadHfMapped<S extends HfSourceBase>(m: HfMapping<S, never>, path: string, expected: readonly ExpectedParam[], limits: HeaderLimits, plan: (header: SafetensorsHeader) => HfMappedPlan<S> | null): HfMappedLoadResult {
  const head = readSafetensorsHeader(path, limits);
  if (!head.ok) return { ok: false, problems: head.problems };
  const first = plan(head.header);
  if (!first) {
    const some = head.header.tensors.slice(0, 3).map((t) => tick(t.name));
    const holds = `${some.join(", ") || "no tensors"}${head.header.tensors.length > 3 ? ", ..." : ""}`;
    return { ok: false, problems: [{ kind: "unreadable", message: `${path} is not a Hugging Face ${m.checkpoint} checkpoint: it has no ${m.markerText} (it holds ${holds})` }] };
  }
  if (!first.ok) return { ok: false, problems: first.problems.filter((p) => p.severity === "error") };
  const read = readSafetensors(path, { ...limits, only: [...new Set(first.steps.map((s) => s.tensor.name))] });
  if (!read.ok) return { ok: false, problems: read.problems };
  // The file may have changed between the two reads: the header read with the data must agree.
  const again = plan(read.header);
  if (!again?.ok) return { ok: false, problems: again ? again.problems.filter((p) => p.severity === "error") : [{ kind: "unreadable", message: `${path} changed while it was read` }] };
  const shapes = new Map(expected.map((p) => [p.name, p.shape]));
  const values = new Map<string, Float32Array>();
  for (const step of first.steps) {
    const t = read.tensors.get(step.tensor.name)!;
    values.set(step.param, step.transform.read(t.data as ArrayLike<number>, t.shape, shapes.get(step.param)!));
  }
  return { ok: true, values, warnings: first.problems.filter((p) => p.severity !== "error"), header: read.header };
}

/** A module's parameters of a model (names and shapes), in the model's order. */
function moduleParams(model: Model, module: string): ExpectedParam[] {
  return [...model.variables].filter(([name]) => name.startsWith(module)).map(([name, v]) => ({ name, shape: v.shape }));
}

/** A family's functions over its mapping, which the family's file exports under its own names. */
export function hfFamily<S extends HfSourceBase, O extends object>(m: HfMapping<S, O>) {
  const plan = (header: SafetensorsHeader, expected: readonly ExpectedParam[], options: O = {} as O): HfMappedPlan<S> | null => hfPlan(m, header, expected, options);
  const loadValues = (path: string, expected: readonly ExpectedParam[], options: HeaderLimits & O = {} as HeaderLimits & O): HfMappedLoadResult =>
    loadHfMapped(m, path, expected, options, (header) => plan(header, expected, options));
  const params = (model: Model): ExpectedParam[] => moduleParams(model, m.module);
  return {
    source: (param: string): S | null => sourceOf(m, param),
    params: (tensor: string): string[] => paramsOf(m, tensor),
    isHeader: (header: SafetensorsHeader): boolean => isFamilyHeader(m, header),
    plan,
    loadValues,
    moduleParams: params,
    /** Loads the file into the model's module: every problem is collected before any variable is touched, so on `ok: false` the model is exactly as it was. */
    load(model: Model, path: string, options?: HeaderLimits & O): HfMappedLoadResult {
      const r = loadValues(path, params(model), options);
      if (r.ok) assignValues(model, r.values);
      return r;
    },
  };
}
