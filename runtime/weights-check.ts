// Weights files against a model's parameters: the load plan (which tensor of a file becomes which
// parameter, and everything that would stop that), all-or-nothing loading, and the check-time
// diagnostics of a module's `weights: "file.safetensors"` setting (E07xx), from the file's
// header alone. Plain TypeScript: `vlmc check` imports this without any runtime.
//
// Names. A parameter is named as in the IR (`decoder.blocks.0.attn.q.weight`). By default a
// file's tensor names are the parameters' names (`checkWeightsAgainst`); a `nameMap` translates
// other conventions (Hugging Face's GPT-2 names, say) and returns null for a tensor to ignore.
// The weights file of one module (`modulePrefixNameMap`) may name its tensors with the module's
// prefix or without it (`decoder.blocks.0.attn.q.weight` or `blocks.0.attn.q.weight`, even
// mixed); a tensor named for another module (`encoder.`, `projector.`, `decoder.`) is ignored,
// so one file holding the whole model (a vlmc checkpoint) can serve as every module's weights.
import { existsSync, statSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { diagnostic, type Diagnostic, type Related } from "../compiler/diagnostics/diagnostic.js";
import { IR_MODULES } from "../compiler/ir/types.js";
import type { LayerNode } from "../compiler/layers/kind.js";
import { closest } from "../compiler/resolve/suggest.js";
import type { Span } from "../compiler/source.js";
import { hfGpt2Plan } from "./hf-gpt2.js";
import { hfVisionPlan, patchOf } from "./hf-vision.js";
import { hfLlamaPlan } from "./hf-llama.js";
import {
  FLOAT_DTYPES,
  formatShape,
  METADATA_HASH,
  readSafetensors,
  readSafetensorsHeader,
  type Dtype,
  type HeaderLimits,
  type SafetensorsHeader,
  type SafetensorsProblem,
  type TensorInfo,
} from "./safetensors.js";

export interface ExpectedParam {
  /** The parameter's name, as in the IR. */
  name: string;
  /** Its shape; a dimension of -1 matches any size. */
  shape: readonly number[];
}

export interface WeightsCheckOptions {
  /** A file's tensor name -> the parameter it holds, or null to ignore the tensor. Default: the same name. */
  nameMap?: (tensorName: string) => string | null;
  /** True for a parameter whose tensor is stored transposed (axes reversed, e.g. [out, in] for [in, out]); it is transposed on load. */
  transpose?: (paramName: string) => boolean;
  /** The dtypes a parameter may be loaded from (converted to float32). Default: the float dtypes. */
  dtypes?: readonly Dtype[];
}

export type WeightsProblem =
  | { kind: "missing"; severity: "error"; param: string; shape: readonly number[]; message: string }
  | { kind: "unexpected"; severity: "warning"; tensor: string; param: string; message: string }
  | { kind: "shape"; severity: "error"; param: string; tensor: string; fileShape: number[]; shape: readonly number[]; transposed: boolean; message: string }
  | { kind: "dtype"; severity: "error"; param: string; tensor: string; dtype: Dtype; message: string }
  | { kind: "duplicate"; severity: "error"; param: string; tensor: string; other: string; message: string }
  | { kind: "hash"; severity: "warning"; found: string; expected: string; message: string };

export interface LoadStep {
  param: string;
  tensor: TensorInfo;
  transpose: boolean;
}

export interface WeightsPlan {
  /** No error-level problem: the steps load every expected parameter. */
  ok: boolean;
  problems: WeightsProblem[];
  /** One per expected parameter found, in the order of `expected`. */
  steps: LoadStep[];
  /** Tensors the name map told to ignore. */
  ignored: string[];
}

const tick = (s: string) => `\`${s}\``;
const named = (param: string, tensor: string) => (param === tensor ? tick(param) : `${tick(tensor)} (parameter ${tick(param)})`);

function shapesMatch(file: readonly number[], want: readonly number[]): boolean {
  return file.length === want.length && file.every((d, i) => want[i] === -1 || want[i] === d);
}

/**
 * The load plan of `header` for the parameters `expected`: every problem, collected before
 * anything is read. Missing parameters, wrong shapes and dtypes, and two tensors for one
 * parameter are errors; tensors that name no expected parameter are warnings (and not loaded).
 */
export function checkWeightsAgainst(header: SafetensorsHeader, expected: readonly ExpectedParam[], options: WeightsCheckOptions = {}): WeightsPlan {
  const map = options.nameMap ?? ((n: string) => n);
  const dtypes = options.dtypes ?? FLOAT_DTYPES;
  const want = new Map(expected.map((p) => [p.name, p]));
  const problems: WeightsProblem[] = [];
  const ignored: string[] = [];
  const found = new Map<string, TensorInfo>();
  const unexpected: WeightsProblem[] = [];
  for (const t of header.tensors) {
    const param = map(t.name);
    if (param === null) {
      ignored.push(t.name);
      continue;
    }
    if (!want.has(param)) {
      unexpected.push({ kind: "unexpected", severity: "warning", tensor: t.name, param, message: `tensor ${named(param, t.name)} names no parameter of the model; it is not loaded` });
      continue;
    }
    const first = found.get(param);
    if (first) {
      problems.push({ kind: "duplicate", severity: "error", param, tensor: t.name, other: first.name, message: `tensors ${tick(first.name)} and ${tick(t.name)} both hold parameter ${tick(param)}` });
      continue;
    }
    found.set(param, t);
  }
  const steps: LoadStep[] = [];
  for (const p of expected) {
    const t = found.get(p.name);
    if (!t) {
      problems.push({ kind: "missing", severity: "error", param: p.name, shape: p.shape, message: `parameter ${tick(p.name)} ${formatShape(p.shape)} has no tensor in the file` });
      continue;
    }
    const transpose = options.transpose?.(p.name) ?? false;
    const fileWants = transpose ? [...p.shape].reverse() : p.shape;
    let ok = true;
    if (!shapesMatch(t.shape, fileWants)) {
      ok = false;
      problems.push({
        kind: "shape",
        severity: "error",
        param: p.name,
        tensor: t.name,
        fileShape: t.shape,
        shape: p.shape,
        transposed: transpose,
        message: `${named(p.name, t.name)} has shape ${formatShape(t.shape)} in the file, the spec makes it ${formatShape(p.shape)}${transpose ? ` (stored transposed: ${formatShape(fileWants)})` : ""}`,
      });
    }
    if (!dtypes.includes(t.dtype)) {
      ok = false;
      problems.push({ kind: "dtype", severity: "error", param: p.name, tensor: t.name, dtype: t.dtype, message: `${named(p.name, t.name)} is ${t.dtype} in the file; a parameter loads from ${dtypes.join(", ")}` });
    }
    if (ok) steps.push({ param: p.name, tensor: t, transpose });
  }
  problems.push(...unexpected);
  return { ok: !problems.some((p) => p.severity === "error"), problems, steps, ignored };
}

/** Reads a module's weights file: its tensors with or without the module's prefix; other modules' tensors ignored. */
export function modulePrefixNameMap(module: string, modules: readonly string[] = IR_MODULES): (tensorName: string) => string | null {
  const own = `${module}.`;
  const others = modules.filter((m) => m !== module).map((m) => `${m}.`);
  return (name) => {
    if (name.startsWith(own)) return name;
    if (others.some((o) => name.startsWith(o))) return null;
    return own + name;
  };
}

export interface LoadOptions extends WeightsCheckOptions, HeaderLimits {
  /** The spec's hash (`Ir.hash`): a file whose metadata names another gives a `hash` warning. */
  expectHash?: string;
}

export type LoadResult =
  | { ok: true; values: Map<string, Float32Array>; warnings: WeightsProblem[]; header: SafetensorsHeader }
  | { ok: false; problems: (WeightsProblem | SafetensorsProblem)[] };

/**
 * Loads the parameters `expected` from a file, all or nothing: the header is validated, the plan
 * checked, and only then are the tensors read, converted to float32 and transposed where asked.
 * Any problem gives problems and no values, so a caller that assigns the values only on `ok`
 * never half-loads a model.
 */
export function loadWeights(path: string, expected: readonly ExpectedParam[], options: LoadOptions = {}): LoadResult {
  const head = readSafetensorsHeader(path, options);
  if (!head.ok) return { ok: false, problems: head.problems };
  const plan = checkWeightsAgainst(head.header, expected, options);
  if (!plan.ok) return { ok: false, problems: plan.problems.filter((p) => p.severity === "error") };
  const warnings = [...plan.problems];
  const hash = head.header.metadata[METADATA_HASH];
  if (options.expectHash !== undefined && hash !== undefined && hash !== options.expectHash) {
    warnings.push({ kind: "hash", severity: "warning", found: hash, expected: options.expectHash, message: `the file was written for the spec ${hash}, not this one (${options.expectHash})` });
  }
  const read = readSafetensors(path, { ...options, only: plan.steps.map((s) => s.tensor.name) });
  if (!read.ok) return { ok: false, problems: read.problems };
  // The file may have changed between the two reads: the header read with the data must agree.
  const again = checkWeightsAgainst(read.header, expected, options);
  if (!again.ok) return { ok: false, problems: again.problems.filter((p) => p.severity === "error") };
  const values = new Map<string, Float32Array>();
  for (const step of plan.steps) {
    const t = read.tensors.get(step.tensor.name)!;
    const data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>);
    values.set(step.param, step.transpose ? transposed(data, t.shape) : data);
  }
  return { ok: true, values, warnings, header: read.header };
}

/** Reverses the axes of a row-major tensor. */
export function transposed(data: Float32Array, shape: readonly number[]): Float32Array {
  if (shape.length < 2) return data;
  if (shape.length === 2) {
    const [r, c] = shape as [number, number];
    const out = new Float32Array(data.length);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = data[i * c + j]!;
    return out;
  }
  const n = shape.length;
  const strides = new Array<number>(n);
  strides[n - 1] = 1;
  for (let k = n - 2; k >= 0; k--) strides[k] = strides[k + 1]! * shape[k + 1]!;
  const rev = [...shape].reverse();
  const out = new Float32Array(data.length);
  const idx = new Array<number>(n).fill(0);
  for (let o = 0; o < out.length; o++) {
    // idx: the position in the output (reversed axes); the source position reverses it back.
    let src = 0;
    for (let k = 0; k < n; k++) src += idx[k]! * strides[n - 1 - k]!;
    out[o] = data[src]!;
    for (let k = n - 1; k >= 0; k--) {
      if (++idx[k]! < rev[k]!) break;
      idx[k] = 0;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Check time: a module's `weights:` file against the parameters shape inference found.

/** Problems of one code reported one by one; the rest are summed up in one more diagnostic. */
const LISTED = 3;
/** Names listed in the notes of a summing-up diagnostic. */
const NOTED = 10;

export interface ModuleWeights {
  /** `encoder`, `projector` or `decoder`. */
  name: string;
  /** The module's layers after shape inference (with their `params`). */
  layers: readonly LayerNode[];
}

interface ParamSite extends ExpectedParam {
  layer: string;
  kind: string;
  span: Span;
}

/** The module's parameters with the layer each belongs to, named as in the IR. */
export function moduleParams(module: ModuleWeights): ParamSite[] {
  const out: ParamSite[] = [];
  const join = (...parts: string[]) => parts.filter((p) => p !== "").join(".");
  const walk = (nodes: readonly LayerNode[], prefix: string) => {
    for (const node of nodes) {
      const path = join(prefix, node.name);
      if (node.children) walk(node.children, path);
      for (const p of node.params ?? []) out.push({ name: join(path, p.name), shape: p.shape, layer: path, kind: node.kind, span: node.span });
    }
  };
  walk(module.layers, module.name);
  return out;
}

const sameSpan = (a: Span, b: Span) => a.file === b.file && a.start === b.start && a.end === b.end;

/**
 * The diagnostics of a module's weights file, read from its header only (never the data):
 * E0701 for a file that is not valid safetensors, E0702 for a missing parameter, E0703 for a
 * wrong shape, E0704 for a dtype that cannot be loaded, E0705 for a parameter given twice,
 * W0701 for tensors that name no parameter. `weights` is the path as written, relative to
 * `specFile`'s folder; `span` is where it is written. A file that does not exist gives nothing
 * here (E0504 reports it).
 */
export function moduleWeightsDiagnostics(module: ModuleWeights, weights: string, specFile: string, span: Span): Diagnostic[] {
  const path = resolve(dirname(specFile), weights);
  try {
    if (!existsSync(path) || !statSync(path).isFile()) return [];
  } catch {
    return [];
  }
  const file = tick(basename(weights));
  const head = readSafetensorsHeader(path);
  if (!head.ok) {
    const [first, ...rest] = head.problems;
    return [
      diagnostic("E0701", span, `${file} is not a valid safetensors file: ${first!.message}`, {
        label: "invalid weights file",
        notes: rest.slice(0, NOTED).map((p) => p.message),
        help: ["re-export the weights (Python: `safetensors.torch.save_file(state_dict, path)`), or check that the path names the right file"],
      }),
    ];
  }
  const params = moduleParams(module);
  const sites = new Map(params.map((p) => [p.name, p]));
  // A decoder's file may be a Hugging Face GPT-2 checkpoint: its names and layouts are mapped in
  // runtime/hf-gpt2.ts (c_attn split into q, k, v; wpe's first rows; ...); or a Hugging Face
  // Llama checkpoint, mapped in runtime/hf-llama.ts (nn.Linear's [out, in] transposed).
  // An encoder's may be a Hugging Face CLIP-vision or SigLIP checkpoint (runtime/hf-vision.ts).
  const visionPlan = module.name === "encoder" ? hfVisionPlan(head.header, params, { patch: patchOf(module.layers) }) : null;
  const plan = (module.name === "decoder" ? (hfGpt2Plan(head.header, params) ?? hfLlamaPlan(head.header, params)) : visionPlan) ?? checkWeightsAgainst(head.header, params, { nameMap: modulePrefixNameMap(module.name) });
  const out: Diagnostic[] = [];
  const of = <K extends WeightsProblem["kind"]>(kind: K) => plan.problems.filter((p): p is Extract<WeightsProblem, { kind: K }> => p.kind === kind);
  const unexpected = of("unexpected");

  const related = (param: string, label: string): Related[] => {
    const site = sites.get(param);
    return site && !sameSpan(site.span, span) ? [{ span: site.span, label }] : [];
  };
  const summed = <P extends WeightsProblem>(problems: P[], each: (p: P) => Diagnostic, rest: (ps: P[]) => Diagnostic) => {
    problems.slice(0, LISTED).forEach((p) => out.push(each(p)));
    if (problems.length > LISTED) out.push(rest(problems.slice(LISTED)));
  };
  const list = (names: string[]) => [...names.slice(0, NOTED).map(tick), ...(names.length > NOTED ? [`and ${names.length - NOTED} more`] : [])].join(", ");

  // E0702: missing parameters; a near-miss among the file's stray tensors is suggested.
  const strays = unexpected.map((u) => u.param);
  const missing = of("missing");
  summed(
    missing,
    (p) => {
      const near = closest(p.param, strays);
      const site = sites.get(p.param);
      return diagnostic("E0702", span, `${file} has no tensor for ${tick(p.param)} ${formatShape(p.shape)}`, {
        label: "tensor missing from this file",
        related: related(p.param, `\`${site?.layer ?? p.param}\` (${site?.kind ?? "layer"}) has it`),
        help: near ? [`the file has ${tick(unexpected.find((u) => u.param === near)!.tensor)}: did the layer's name change?`] : [],
      });
    },
    (ps) =>
      diagnostic("E0702", span, `${file} has no tensor for ${ps.length} more parameters of the ${module.name}, ${tick(ps[0]!.param)} first`, {
        label: "tensors missing from this file",
        notes: [`missing: ${list(ps.map((p) => p.param))}`],
      }),
  );
  if (missing.length === params.length && params.length > 0) {
    const d = out.find((x) => x.code === "E0702")!;
    d.notes.push(
      head.header.tensors.length === 0
        ? "the file holds no tensors"
        : plan.ignored.length === head.header.tensors.length
          ? `the file's tensors all belong to other modules (${list(plan.ignored.slice(0, 3))}, ...)`
          : `none of the file's tensors names a parameter of the ${module.name}; it holds ${list(head.header.tensors.slice(0, 3).map((t) => t.name))}${head.header.tensors.length > 3 ? ", ..." : ""}: is it another model's?`,
    );
  }

  // E0703: shapes.
  summed(
    of("shape"),
    (p) => {
      const site = sites.get(p.param);
      return diagnostic("E0703", span, `${named(p.param, p.tensor)} has shape ${formatShape(p.fileShape)} in ${file}, the spec makes it ${formatShape(p.shape)}`, {
        label: `found ${formatShape(p.fileShape)}, expected ${formatShape(p.shape)}`,
        related: related(p.param, `\`${site?.layer ?? p.param}\` (${site?.kind ?? "layer"}) makes it ${formatShape(p.shape)}`),
      });
    },
    (ps) =>
      diagnostic("E0703", span, `${ps.length} more tensors of ${file} have shapes the spec does not give them, ${tick(ps[0]!.tensor)} first`, {
        label: "wrong shapes",
        notes: ps.slice(0, NOTED).map((p) => `${tick(p.tensor)}: ${formatShape(p.fileShape)} in the file, ${formatShape(p.shape)} in the spec`),
      }),
  );

  // E0704: dtypes.
  summed(
    of("dtype"),
    (p) =>
      diagnostic("E0704", span, `${named(p.param, p.tensor)} is ${p.dtype} in ${file}; parameters load from floating-point tensors`, {
        label: `${p.dtype} tensor`,
        help: [`save it as floating point (${FLOAT_DTYPES.join(", ")})`],
      }),
    (ps) => diagnostic("E0704", span, `${ps.length} more tensors of ${file} are not floating point, ${tick(ps[0]!.tensor)} first`, { notes: [`not floating point: ${list(ps.map((p) => p.tensor))}`] }),
  );

  // E0705: two tensors for one parameter.
  summed(
    of("duplicate"),
    (p) =>
      diagnostic("E0705", span, `${file} holds ${tick(p.param)} twice: as ${tick(p.other)} and as ${tick(p.tensor)}`, {
        label: "parameter given twice",
        notes: [`a module's weights file may name its tensors with the module's prefix (\`${module.name}.\`) or without it, but each parameter once`],
        help: ["remove one of the two tensors"],
      }),
    (ps) => diagnostic("E0705", span, `${file} holds ${ps.length} more parameters twice, ${tick(ps[0]!.param)} first`, { notes: [`given twice: ${list(ps.map((p) => p.param))}`] }),
  );

  // W0701: one warning for every tensor that names no parameter (unless nothing matched at all:
  // the E0702 note then says what the file holds).
  if (unexpected.length > 0 && missing.length < params.length) {
    const names = unexpected.map((u) => u.tensor);
    out.push(
      diagnostic("W0701", span, `${file} holds ${unexpected.length === 1 ? `a tensor the ${module.name} does not have: ${tick(names[0]!)}` : `${unexpected.length} tensors the ${module.name} does not have: ${list(names)}`}`, {
        label: "not loaded",
        notes: ["tensors are matched to parameters by name (`vlmc compile` lists the parameters); these match none and are ignored"],
      }),
    );
  }
  return out;
}
