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
// `hfGpt2Settings` (activation `gelu_new` -> `gelu_tanh`, ...): at check time for
// `decoder gpt { pretrained: "folder" }` (compiler/presets/gpt.ts), or as spec text
// (`hfGpt2SpecText`).
//
// The load plan and the all-or-nothing loading are runtime/hf-mapping.ts's, shared with the
// Llama and vision mappings; this file describes GPT-2 to it (`GPT2`: the tables, the c_attn
// thirds and wpe's first rows, the words of its messages).
//
// Plain TypeScript with no tfjs import: the compiler's check-time header validation
// (runtime/weights-check.ts) imports `hfGpt2Plan` from here.
import { readFileSync } from "node:fs";
import { affine, AS_STORED, hfFamily, plainRead, TRANSPOSED, type HfMappedLoadResult, type HfMappedPlan, type HfMapping, type HfStep, type HfTransform } from "./hf-mapping.js";
import { formatShape } from "./safetensors.js";

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
  ...affine("ln_1", "ln_1"),
  "attn.q.weight": { tensor: "attn.c_attn.weight", third: 0 },
  "attn.k.weight": { tensor: "attn.c_attn.weight", third: 1 },
  "attn.v.weight": { tensor: "attn.c_attn.weight", third: 2 },
  "attn.q.bias": { tensor: "attn.c_attn.bias", third: 0 },
  "attn.k.bias": { tensor: "attn.c_attn.bias", third: 1 },
  "attn.v.bias": { tensor: "attn.c_attn.bias", third: 2 },
  ...affine("attn.o", "attn.c_proj"),
  ...affine("ln_2", "ln_2"),
  ...affine("mlp.fc1", "mlp.c_fc"),
  ...affine("mlp.fc2", "mlp.c_proj"),
};

/** The decoder's other parameters: vlmc name under `decoder.` -> Hugging Face. */
export const HF_GPT2_TOP: Readonly<Record<string, HfSource>> = {
  "embed.weight": { tensor: "wte.weight" },
  "pos_embed.weight": { tensor: "wpe.weight", rows: true },
  ...affine("ln_f", "ln_f"),
  "lm_head.weight": { tensor: "lm_head.weight", transpose: true, fallback: "wte.weight" },
};

/** A third of c_attn: [..., 3w] in the file, [..., w] in vlmc, the third'th block of each row. */
function third(k: 0 | 1 | 2): HfTransform {
  return {
    key: "3",
    fileShape: (shape) => [...shape.slice(0, -1), 3 * shape[shape.length - 1]!],
    layout: " (q, k and v side by side)",
    part: `, the ${["first", "second", "third"][k]} third of its last axis`,
    read(data, _fileShape, shape) {
      const w = shape[shape.length - 1]!;
      const rows = shape.reduce((a, b) => a * b, 1) / w;
      const out = new Float32Array(rows * w);
      for (let r = 0; r < rows; r++) for (let j = 0; j < w; j++) out[r * w + j] = data[r * 3 * w + k * w + j]!;
      return out;
    },
  };
}

/** wpe: at least the spec's context of rows, of which the first are read. */
const FIRST_ROWS: HfTransform = {
  key: "rows",
  fileShape: (shape) => [...shape],
  fits: (file, want) => file.length === want.length && file[0]! >= want[0]! && file.slice(1).every((d, i) => d === want[i + 1]),
  describe: (want, _shape, inShape) =>
    inShape ? `[>= ${want![0]}, ${want!.slice(1).join(", ")}] (its context of ${want![0]} positions, the first rows of the table)` : formatShape(want!),
  read: plainRead,
};

/** GPT-2's names, layouts and words for the shared plan and loader (runtime/hf-mapping.ts). */
const GPT2: HfMapping<HfSource> = {
  checkpoint: "GPT-2",
  family: "GPT-2",
  prefix: "transformer.",
  module: "decoder.",
  top: HF_GPT2_TOP,
  block: HF_GPT2_BLOCK,
  layers: "h",
  marker: /^(wte\.weight|wpe\.weight|h\.\d+\.attn\.c_attn\.weight)$/,
  markerText: "`transformer.wte.weight`, `wpe` or `h.N.attn.c_attn.weight`",
  // The causal-mask buffers of older checkpoints, and a head the spec ties to its embedding.
  ignore: (bare) => /^h\.\d+\.attn\.(bias|masked_bias)$/.test(bare) || bare === "lm_head.weight",
  moreLayers: "(more layers in the checkpoint than in the spec?)",
  transform: (s) => (s.third !== undefined ? third(s.third) : s.rows ? FIRST_ROWS : s.transpose ? TRANSPOSED : AS_STORED),
};

const gpt2 = hfFamily(GPT2);

/** Where the vlmc parameter `param` (`decoder.blocks.0.attn.q.weight`) comes from, or null when a GPT-2 file has no counterpart. */
export const hfGpt2Source = gpt2.source;

/** The vlmc parameters a Hugging Face tensor holds (`h.0.attn.c_attn.weight` -> q, k and v), `transformer.` prefix or not. */
export const hfGpt2Params = gpt2.params;

/** Whether a header is a Hugging Face GPT-2 checkpoint's: it names `wte`, `wpe` or a block's `c_attn`. */
export const isHfGpt2Header = gpt2.isHeader;

// ---------------------------------------------------------------------------------------------
// The plan and loading, by the shared machinery

/** A load step with the part of the tensor the parameter takes. */
export type HfLoadStep = HfStep<HfSource>;
export type HfPlan = HfMappedPlan<HfSource>;
export type HfLoadResult = HfMappedLoadResult;

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
export const hfGpt2Plan = gpt2.plan;

/**
 * Reads the decoder's parameters `expected` from a Hugging Face GPT-2 file, all or nothing: the
 * header is validated against them first (`hfGpt2Plan`), then the tensors needed are read and
 * split, sliced or transposed into vlmc's layouts. A file that is not a GPT-2 checkpoint is an
 * error too (its names are not Hugging Face's).
 */
export const loadHfGpt2Values = gpt2.loadValues;

/** The decoder's parameters of a model (names and shapes), in the model's order. */
export const decoderParams = gpt2.moduleParams;

/**
 * Loads a Hugging Face GPT-2 file into a model's decoder: every problem is collected before any
 * variable is touched, so on `ok: false` the model is exactly as it was.
 */
export const loadHfGpt2 = gpt2.load;

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
