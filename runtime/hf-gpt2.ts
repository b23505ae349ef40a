// Hugging Face GPT-2 checkpoints (`GPT2LMHeadModel` / `GPT2Model` safetensors) as the weights
// of a `gpt` preset decoder. This file is the one place where Hugging Face's names and layouts
// meet vlmc's; everything else (check-time diagnostics, loading, `vlmc forward`) goes through it.
//
//   Hugging Face (optional `transformer.` prefix)      vlmc (`decoder.` prefix)
//   wte.weight                 [V, D]                  embed.weight          [V, D]
//   wpe.weight                 [P, D]                  pos_embed.weight      [context, D]: the first `context` rows (context <= P)
//   h.{i}.ln_1.{weight,bias}   [D]                     blocks.{i}.ln_1.{weight,bias}
//   h.{i}.attn.c_attn.weight   [D, 3D] (Conv1D)        blocks.{i}.attn.{q,k,v}.weight [D, D]: columns [0, D), [D, 2D), [2D, 3D)
//   h.{i}.attn.c_attn.bias     [3D]                    blocks.{i}.attn.{q,k,v}.bias   [D]:    the same thirds
//   h.{i}.attn.c_proj.{weight,bias}                    blocks.{i}.attn.o.{weight,bias}
//   h.{i}.ln_2.{weight,bias}                           blocks.{i}.ln_2.{weight,bias}
//   h.{i}.mlp.c_fc.{weight,bias}                       blocks.{i}.mlp.fc1.{weight,bias}
//   h.{i}.mlp.c_proj.{weight,bias}                     blocks.{i}.mlp.fc2.{weight,bias}
//   ln_f.{weight,bias}                                 ln_f.{weight,bias}
//   lm_head.weight             [V, D] (nn.Linear)      lm_head.weight [D, V], transposed, only for an untied head
//                                                      (a file without it: wte, transposed, as Hugging Face ties them)
//   h.{i}.attn.bias, h.{i}.attn.masked_bias            (causal-mask buffers of older checkpoints: ignored)
//
// Conv1D stores its weight [in, out], which is vlmc's linear layout, so nothing is transposed
// but an untied head. A checkpoint's config.json becomes a `decoder gpt { ... }` section with
// `hfGpt2Settings` (activation `gelu_new` -> `gelu_tanh`, ...).
//
// Plain TypeScript with no tfjs import: the compiler's check-time header validation
// (runtime/weights-check.ts) imports `hfGpt2Plan` from here.
import { readFileSync } from "node:fs";
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

// ---------------------------------------------------------------------------------------------
// The mapping

/** Where a vlmc parameter comes from in a Hugging Face GPT-2 file (names without `transformer.`). */
export interface HfSource {
  /** The Hugging Face tensor. */
  tensor: string;
  /** Which third of the last axis (c_attn holds q, k and v side by side). */
  third?: 0 | 1 | 2;
  /** The first rows only, as many as the parameter has (wpe: n_positions >= context). */
  rows?: true;
  /** Stored transposed (nn.Linear's [out, in]). */
  transpose?: true;
  /** Used when `tensor` is absent (an untied head from a file that ties it: wte). */
  fallback?: string;
}

/** One block's parameters: vlmc name under `blocks.{i}.` -> Hugging Face name under `h.{i}.`. */
export const HF_GPT2_BLOCK: Readonly<Record<string, HfSource>> = {
  "ln_1.weight": { tensor: "ln_1.weight" },
  "ln_1.bias": { tensor: "ln_1.bias" },
  "attn.q.weight": { tensor: "attn.c_attn.weight", third: 0 },
  "attn.k.weight": { tensor: "attn.c_attn.weight", third: 1 },
  "attn.v.weight": { tensor: "attn.c_attn.weight", third: 2 },
  "attn.q.bias": { tensor: "attn.c_attn.bias", third: 0 },
  "attn.k.bias": { tensor: "attn.c_attn.bias", third: 1 },
  "attn.v.bias": { tensor: "attn.c_attn.bias", third: 2 },
  "attn.o.weight": { tensor: "attn.c_proj.weight" },
  "attn.o.bias": { tensor: "attn.c_proj.bias" },
  "ln_2.weight": { tensor: "ln_2.weight" },
  "ln_2.bias": { tensor: "ln_2.bias" },
  "mlp.fc1.weight": { tensor: "mlp.c_fc.weight" },
  "mlp.fc1.bias": { tensor: "mlp.c_fc.bias" },
  "mlp.fc2.weight": { tensor: "mlp.c_proj.weight" },
  "mlp.fc2.bias": { tensor: "mlp.c_proj.bias" },
};

/** The decoder's other parameters: vlmc name under `decoder.` -> Hugging Face. */
export const HF_GPT2_TOP: Readonly<Record<string, HfSource>> = {
  "embed.weight": { tensor: "wte.weight" },
  "pos_embed.weight": { tensor: "wpe.weight", rows: true },
  "ln_f.weight": { tensor: "ln_f.weight" },
  "ln_f.bias": { tensor: "ln_f.bias" },
  "lm_head.weight": { tensor: "lm_head.weight", transpose: true, fallback: "wte.weight" },
};

/** Tensors of a Hugging Face file that hold no parameter: the causal-mask buffers. */
const HF_BUFFER = /^h\.\d+\.attn\.(bias|masked_bias)$/;
const HF_PREFIX = "transformer.";
const MODULE = "decoder.";

/** Where the vlmc parameter `param` (`decoder.blocks.0.attn.q.weight`) comes from, or null when a GPT-2 file has no counterpart. */
export function hfGpt2Source(param: string): HfSource | null {
  if (!param.startsWith(MODULE)) return null;
  const rel = param.slice(MODULE.length);
  const top = HF_GPT2_TOP[rel];
  if (top) return top;
  const m = /^blocks\.(\d+)\.(.+)$/.exec(rel);
  const b = m ? HF_GPT2_BLOCK[m[2]!] : undefined;
  return b ? { ...b, tensor: `h.${m![1]}.${b.tensor}` } : null;
}

/** The vlmc parameters a Hugging Face tensor holds (`h.0.attn.c_attn.weight` -> q, k and v), `transformer.` prefix or not. */
export function hfGpt2Params(tensor: string): string[] {
  const name = tensor.startsWith(HF_PREFIX) ? tensor.slice(HF_PREFIX.length) : tensor;
  const out: string[] = [];
  for (const [rel, s] of Object.entries(HF_GPT2_TOP)) if (s.tensor === name) out.push(MODULE + rel);
  const m = /^h\.(\d+)\.(.+)$/.exec(name);
  if (m) for (const [rel, s] of Object.entries(HF_GPT2_BLOCK)) if (s.tensor === m[2]) out.push(`${MODULE}blocks.${m[1]}.${rel}`);
  return out;
}

/** Whether a header is a Hugging Face GPT-2 checkpoint's: it names `wte`, `wpe` or a block's `c_attn`. */
export function isHfGpt2Header(header: SafetensorsHeader): boolean {
  return header.tensors.some((t) => /^(transformer\.)?(wte\.weight|wpe\.weight|h\.\d+\.attn\.c_attn\.weight)$/.test(t.name));
}

// ---------------------------------------------------------------------------------------------
// The plan: a file's header against the decoder's parameters

/** A load step with the part of the tensor the parameter takes. */
export interface HfLoadStep extends LoadStep {
  source: HfSource;
}

export interface HfPlan extends WeightsPlan {
  steps: HfLoadStep[];
}

const tick = (s: string) => `\`${s}\``;

/** `decoder.blocks.0.attn.{q,k,v}.weight` for the three thirds of c_attn. */
function paramsLabel(params: readonly string[]): string {
  if (params.length !== 3) return params.join(", ");
  const m = params.map((p) => /^(.*)\.([qkv])\.(weight|bias)$/.exec(p));
  return m.every((x) => x && x[1] === m[0]![1] && x[3] === m[0]![3]) ? `${m[0]![1]}.{q,k,v}.${m[0]![3]}` : params.join(", ");
}

/**
 * The load plan of a Hugging Face GPT-2 file for a decoder's parameters (`expected`, named as in
 * the IR, `decoder.` prefix), from the header alone; null when the header is not a GPT-2
 * checkpoint's (then the file is read by vlmc's own names). Every problem is collected: missing
 * tensors, wrong shapes (wpe: fewer rows than the spec's context), non-float dtypes, a tensor
 * given twice (with and without `transformer.`), parameters a GPT-2 file cannot hold (errors),
 * and tensors that hold no parameter of the spec (warnings, not loaded). `param` in a problem
 * is the vlmc parameter (or `decoder.blocks.0.attn.{q,k,v}.weight` for c_attn), `tensor` the
 * file's name; messages name both.
 */
export function hfGpt2Plan(header: SafetensorsHeader, expected: readonly ExpectedParam[]): HfPlan | null {
  if (!isHfGpt2Header(header)) return null;
  const problems: WeightsProblem[] = [];
  const ignored: string[] = [];
  // The file's tensors by their name without `transformer.`.
  const files = new Map<string, TensorInfo>();
  for (const t of header.tensors) {
    const name = t.name.startsWith(HF_PREFIX) ? t.name.slice(HF_PREFIX.length) : t.name;
    const first = files.get(name);
    if (first) {
      const holds = hfGpt2Params(name);
      problems.push({
        kind: "duplicate",
        severity: "error",
        param: holds.length ? paramsLabel(holds) : name,
        tensor: t.name,
        other: first.name,
        message: `tensors ${tick(first.name)} and ${tick(t.name)} are the same Hugging Face GPT-2 tensor, with and without \`${HF_PREFIX}\``,
      });
      continue;
    }
    files.set(name, t);
  }
  // What the parameters need from the file, grouped by tensor (c_attn serves three).
  interface Need {
    source: HfSource;
    tensor: string;
    params: ExpectedParam[];
  }
  const needs = new Map<string, Need>();
  const unmapped: ExpectedParam[] = [];
  for (const p of expected) {
    let s = hfGpt2Source(p.name);
    if (!s) {
      unmapped.push(p);
      continue;
    }
    if (s.fallback && !files.has(s.tensor) && files.has(s.fallback)) s = { ...s, tensor: s.fallback };
    // One need per tensor and way of reading it: q, k and v share c_attn; an untied head reads
    // wte transposed, apart from the embedding's plain read.
    const key = `${s.tensor}${s.third !== undefined ? "/3" : ""}${s.transpose ? "/T" : ""}`;
    const need = needs.get(key);
    if (need) need.params.push(p);
    else needs.set(key, { source: s, tensor: s.tensor, params: [p] });
  }
  for (const p of unmapped) {
    problems.push({
      kind: "missing",
      severity: "error",
      param: p.name,
      shape: p.shape,
      message: `parameter ${tick(p.name)} ${formatShape(p.shape)} has no counterpart in a Hugging Face GPT-2 checkpoint`,
    });
  }
  const steps: HfLoadStep[] = [];
  const used = new Set<string>();
  for (const need of needs.values()) {
    const { source } = need;
    const first = need.params[0]!;
    const t = files.get(need.tensor);
    const fileName = t?.name ?? HF_PREFIX + need.tensor;
    // The shape the file's tensor must have.
    let want: number[] = [...first.shape];
    if (source.third !== undefined) want = [...first.shape.slice(0, -1), 3 * first.shape[first.shape.length - 1]!];
    if (source.transpose) want = [...first.shape].reverse();
    const label = paramsLabel(need.params.map((p) => p.name));
    if (!t) {
      for (const p of need.params) {
        const part = source.third !== undefined ? `, the ${["first", "second", "third"][hfGpt2Source(p.name)!.third!]} third of its last axis` : "";
        problems.push({ kind: "missing", severity: "error", param: p.name, shape: p.shape, message: `parameter ${tick(p.name)} ${formatShape(p.shape)} has no tensor in the file: it needs ${tick(fileName)} ${formatShape(want)}${part}` });
      }
      continue;
    }
    used.add(t.name);
    let ok = true;
    const shapeOk = source.rows
      ? t.shape.length === want.length && t.shape[0]! >= want[0]! && t.shape.slice(1).every((d, i) => d === want[i + 1])
      : t.shape.length === want.length && t.shape.every((d, i) => d === want[i]);
    if (!shapeOk) {
      ok = false;
      const why = source.rows
        ? `, the spec needs [>= ${want[0]}, ${want.slice(1).join(", ")}] (its context of ${want[0]} positions, the first rows of the table)`
        : source.third !== undefined
          ? ` (q, k and v side by side), the spec needs ${formatShape(want)}`
          : source.transpose
            ? ` ([out, in]), the spec needs ${formatShape(want)}`
            : `, the spec needs ${formatShape(want)}`;
      problems.push({
        kind: "shape",
        severity: "error",
        param: label,
        tensor: t.name,
        fileShape: t.shape,
        shape: want,
        transposed: source.transpose === true,
        message: `${tick(t.name)} (parameter ${tick(label)}) has shape ${formatShape(t.shape)} in the file${why}`,
      });
    }
    if (!FLOAT_DTYPES.includes(t.dtype)) {
      ok = false;
      problems.push({ kind: "dtype", severity: "error", param: label, tensor: t.name, dtype: t.dtype, message: `${tick(t.name)} (parameter ${tick(label)}) is ${t.dtype} in the file; a parameter loads from ${FLOAT_DTYPES.join(", ")}` });
    }
    if (ok) for (const p of need.params) steps.push({ param: p.name, tensor: t, transpose: source.transpose === true, source: { ...hfGpt2Source(p.name)!, tensor: need.tensor } });
  }
  // The rest of the file: buffers and a tied head are ignored; anything else is not loaded.
  const unexpected: WeightsProblem[] = [];
  for (const [name, t] of files) {
    if (used.has(t.name)) continue;
    if (HF_BUFFER.test(name) || name === "lm_head.weight") {
      ignored.push(t.name);
      continue;
    }
    const holds = hfGpt2Params(name);
    unexpected.push({
      kind: "unexpected",
      severity: "warning",
      tensor: t.name,
      param: holds[0] ?? t.name,
      message: holds.length
        ? `tensor ${tick(t.name)} holds ${tick(paramsLabel(holds))}, which the spec does not have (more layers in the checkpoint than in the spec?); it is not loaded`
        : `tensor ${tick(t.name)} is not part of a GPT-2 model; it is not loaded`,
    });
  }
  // Steps in the order of `expected`.
  const order = new Map(expected.map((p, i) => [p.name, i]));
  steps.sort((a, b) => order.get(a.param)! - order.get(b.param)!);
  problems.push(...unexpected);
  return { ok: !problems.some((p) => p.severity === "error"), problems, steps, ignored };
}

// ---------------------------------------------------------------------------------------------
// Loading

export type HfLoadResult =
  | { ok: true; values: Map<string, Float32Array>; warnings: WeightsProblem[]; header: SafetensorsHeader }
  | { ok: false; problems: (WeightsProblem | SafetensorsProblem)[] };

/** The part of a tensor's values a step takes, as float32 in the parameter's layout. */
function pick(step: HfLoadStep, data: ArrayLike<number>, fileShape: readonly number[], shape: readonly number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const s = step.source;
  if (s.third !== undefined) {
    // [..., 3w] -> [..., w], the third'th block of each row.
    const w = shape[shape.length - 1]!;
    const rows = n / w;
    const out = new Float32Array(n);
    for (let r = 0; r < rows; r++) for (let j = 0; j < w; j++) out[r * w + j] = data[r * 3 * w + s.third * w + j]!;
    return out;
  }
  if (s.transpose) {
    const [r, c] = fileShape as [number, number];
    const out = new Float32Array(n);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = data[i * c + j]!;
    return out;
  }
  // Whole, or the first rows (wpe): the first n values either way.
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = data[i]!;
  return out;
}

/**
 * Reads the decoder's parameters `expected` from a Hugging Face GPT-2 file, all or nothing: the
 * header is validated against them first (`hfGpt2Plan`), then the tensors needed are read and
 * split, sliced or transposed into vlmc's layouts. A file that is not a GPT-2 checkpoint is an
 * error too (its names are not Hugging Face's).
 */
export function loadHfGpt2Values(path: string, expected: readonly ExpectedParam[], limits: HeaderLimits = {}): HfLoadResult {
  const head = readSafetensorsHeader(path, limits);
  if (!head.ok) return { ok: false, problems: head.problems };
  const plan = hfGpt2Plan(head.header, expected);
  if (!plan) {
    const some = head.header.tensors.slice(0, 3).map((t) => tick(t.name));
    return {
      ok: false,
      problems: [{ kind: "unreadable", message: `${path} is not a Hugging Face GPT-2 checkpoint: it has no \`transformer.wte.weight\`, \`wpe\` or \`h.N.attn.c_attn.weight\` (it holds ${some.join(", ") || "no tensors"}${head.header.tensors.length > 3 ? ", ..." : ""})` }],
    };
  }
  if (!plan.ok) return { ok: false, problems: plan.problems.filter((p) => p.severity === "error") };
  const read = readSafetensors(path, { ...limits, only: [...new Set(plan.steps.map((s) => s.tensor.name))] });
  if (!read.ok) return { ok: false, problems: read.problems };
  // The file may have changed between the two reads: the header read with the data must agree.
  const again = hfGpt2Plan(read.header, expected);
  if (!again?.ok) return { ok: false, problems: again ? again.problems.filter((p) => p.severity === "error") : [{ kind: "unreadable", message: `${path} changed while it was read` }] };
  const shapes = new Map(expected.map((p) => [p.name, p.shape]));
  const values = new Map<string, Float32Array>();
  for (const step of plan.steps) {
    const t = read.tensors.get(step.tensor.name)!;
    values.set(step.param, pick(step, t.data as ArrayLike<number>, t.shape, shapes.get(step.param)!));
  }
  return { ok: true, values, warnings: plan.problems.filter((p) => p.severity !== "error"), header: read.header };
}

/** The decoder's parameters of a model (names and shapes), in the model's order. */
export function decoderParams(model: Model): ExpectedParam[] {
  return [...model.variables].filter(([name]) => name.startsWith(MODULE)).map(([name, v]) => ({ name, shape: v.shape }));
}

/**
 * Loads a Hugging Face GPT-2 file into a model's decoder: every problem is collected before any
 * variable is touched, so on `ok: false` the model is exactly as it was.
 */
export function loadHfGpt2(model: Model, path: string): HfLoadResult {
  const r = loadHfGpt2Values(path, decoderParams(model));
  if (r.ok) assignValues(model, r.values);
  return r;
}

// ---------------------------------------------------------------------------------------------
// config.json -> a `decoder gpt` section

/** The fields of a Hugging Face GPT-2 config.json that matter here. */
export interface HfGpt2Config {
  model_type?: string;
  vocab_size: number;
  n_embd: number;
  n_head: number;
  n_layer: number;
  n_positions: number;
  n_inner?: number | null;
  layer_norm_epsilon?: number;
  activation_function?: string;
  scale_attn_weights?: boolean;
  scale_attn_by_inverse_layer_idx?: boolean;
  tie_word_embeddings?: boolean;
  add_cross_attention?: boolean;
  embd_pdrop?: number;
  attn_pdrop?: number;
  resid_pdrop?: number;
}

/** Hugging Face's activation names -> the `gpt` preset's `activation`. */
export const HF_ACTIVATIONS: Readonly<Record<string, string>> = {
  gelu_new: "gelu_tanh",
  gelu_pytorch_tanh: "gelu_tanh",
  gelu_fast: "gelu_tanh",
  gelu: "gelu",
  relu: "relu",
  silu: "silu",
  swish: "silu",
};

export type GptSettings = Record<string, number | string | boolean>;

/**
 * The `gpt` preset's settings for a checkpoint's config: vocab, dim, heads, layers, context
 * (n_positions, or `options.context` when given: at most n_positions), mlp (n_inner when set),
 * activation, norm_eps, attention_scale (1 without scale_attn_weights), tie_embeddings (false
 * for an untied head) and dropout (when embd/attn/resid_pdrop agree). `problems` lists what
 * vlmc cannot express (e.g. scale_attn_by_inverse_layer_idx); settings are null then.
 */
export function hfGpt2Settings(config: HfGpt2Config, options: { context?: number } = {}): { settings: GptSettings | null; problems: string[] } {
  const problems: string[] = [];
  const need = (k: keyof HfGpt2Config) => {
    const v = config[k];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) problems.push(`\`${k}\` must be a whole number of at least 1 (found ${JSON.stringify(v)})`);
  };
  (["vocab_size", "n_embd", "n_head", "n_layer", "n_positions"] as const).forEach(need);
  if (config.model_type !== undefined && config.model_type !== "gpt2") problems.push(`\`model_type\` is ${JSON.stringify(config.model_type)}, not "gpt2"`);
  const act = config.activation_function ?? "gelu_new";
  const activation = HF_ACTIVATIONS[act];
  if (!activation) problems.push(`\`activation_function\` ${JSON.stringify(act)} has no counterpart in the gpt preset (it has ${Object.keys(HF_ACTIVATIONS).join(", ")})`);
  if (config.scale_attn_by_inverse_layer_idx) problems.push("`scale_attn_by_inverse_layer_idx` (a per-layer attention scale) is not supported");
  if (config.add_cross_attention) problems.push("`add_cross_attention` is not supported");
  if (typeof config.n_embd === "number" && typeof config.n_head === "number" && config.n_embd % config.n_head !== 0) problems.push(`\`n_head\` ${config.n_head} does not divide \`n_embd\` ${config.n_embd}`);
  const context = options.context ?? config.n_positions;
  if (options.context !== undefined && (!Number.isSafeInteger(context) || context < 1 || context > config.n_positions)) problems.push(`a context of ${context} does not fit the checkpoint's ${config.n_positions} positions`);
  if (problems.length) return { settings: null, problems };
  const s: GptSettings = { vocab: config.vocab_size, dim: config.n_embd, heads: config.n_head, layers: config.n_layer, context };
  if (typeof config.n_inner === "number") s.mlp = config.n_inner;
  s.activation = activation!;
  s.norm_eps = config.layer_norm_epsilon ?? 1e-5;
  if (config.scale_attn_weights === false) s.attention_scale = 1;
  if (config.tie_word_embeddings === false) s.tie_embeddings = false;
  const drops = [config.embd_pdrop, config.attn_pdrop, config.resid_pdrop];
  if (drops.every((d) => typeof d === "number" && d === drops[0]) && (drops[0] as number) > 0) s.dropout = drops[0] as number;
  return { settings: s, problems };
}

/** Reads a config.json (throws on unreadable or invalid JSON). */
export function readHfGpt2Config(path: string): HfGpt2Config {
  return JSON.parse(readFileSync(path, "utf8")) as HfGpt2Config;
}

/** A number for the spec: small ones in exponent form (`1e-5`, not `0.00001`), others plain. */
function vlmNumber(n: number): string {
  return n !== 0 && Math.abs(n) < 1e-3 ? n.toExponential().replace("e+", "e") : String(n);
}

/**
 * A whole spec for a checkpoint's config: `model NAME { decoder gpt { ... } }`, with
 * `weights: "..."` when given (relative to the spec). Throws when the config cannot be expressed.
 */
export function hfGpt2SpecText(config: HfGpt2Config, options: { model?: string; weights?: string; context?: number } = {}): string {
  const { settings, problems } = hfGpt2Settings(config, options.context !== undefined ? { context: options.context } : {});
  if (!settings) throw new Error(`the config cannot be expressed as a gpt decoder: ${problems.join("; ")}`);
  const lines = Object.entries(settings).map(([k, v]) => `    ${k}: ${typeof v === "number" ? vlmNumber(v) : String(v)}`);
  if (options.weights) lines.push(`    weights: ${JSON.stringify(options.weights)}`);
  return `vlm 0.1\n\nmodel ${options.model ?? "gpt2"} {\n  decoder gpt {\n${lines.join("\n")}\n  }\n}\n`;
}
