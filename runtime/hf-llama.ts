// Hugging Face Llama checkpoints (`LlamaForCausalLM` / `LlamaModel` safetensors) as the weights of
// a `llama` preset decoder, and the other way round: this file is the one place where Hugging
// Face's Llama names and layouts meet vlmc's. The import (check-time diagnostics through
// runtime/weights-check.ts, loading) and the export (runtime/export/llama.ts) both read the table
// below, so the two directions cannot drift apart.
//
//   Hugging Face (optional `model.` prefix)                vlmc (`decoder.` prefix)
//   embed_tokens.weight                 [V, D]            embed.weight              [V, D]
//   layers.{i}.input_layernorm.weight   [D]               blocks.{i}.attn_norm.weight
//   layers.{i}.self_attn.q_proj.weight  [D, D]            blocks.{i}.attn.q.weight  [D, D], transposed
//   layers.{i}.self_attn.k_proj.weight  [KV*hd, D]        blocks.{i}.attn.k.weight  [D, KV*hd], transposed
//   layers.{i}.self_attn.v_proj.weight  [KV*hd, D]        blocks.{i}.attn.v.weight  [D, KV*hd], transposed
//   layers.{i}.self_attn.o_proj.weight  [D, D]            blocks.{i}.attn.o.weight  [D, D], transposed
//   layers.{i}.post_attention_layernorm.weight            blocks.{i}.mlp_norm.weight
//   layers.{i}.mlp.gate_proj.weight     [H, D]            blocks.{i}.mlp.gate.weight [D, H], transposed
//   layers.{i}.mlp.up_proj.weight       [H, D]            blocks.{i}.mlp.up.weight   [D, H], transposed
//   layers.{i}.mlp.down_proj.weight     [D, H]            blocks.{i}.mlp.down.weight [H, D], transposed
//   norm.weight                         [D]               norm.weight
//   lm_head.weight (no prefix)          [V, D]            lm_head.weight [D, V], transposed, for an untied head
//                                                         (a file without it: embed_tokens, transposed: tied)
//   layers.{i}.self_attn.rotary_emb.inv_freq              (a buffer older checkpoints saved: ignored)
//
// Every projection is an nn.Linear, [out, in]; vlmc stores [in, out], hence the transposes.
//
// Rotary positions need no permutation. Meta's original checkpoints rotate interleaved pairs
// (2i, 2i+1), which is why transformers' convert_llama_weights_to_hf.py permutes the q/k rows;
// Hugging Face's modeling_llama rotates halves (i with i + hd/2), and so does vlmc
// (compiler/layers/ops.ts `rope`: split in two halves, frequencies base^(-2i/hd), halves
// repeated). tools/torch/hf_llama.py, a hand-written forward following modeling_llama, checks this
// on an exported checkpoint (test/export-llama.test.ts).
//
// The load plan and the all-or-nothing loading are runtime/hf-mapping.ts's, shared with the
// GPT-2 and vision mappings; this file describes Llama to it (`LLAMA`).
//
// Plain TypeScript with no tfjs import: the compiler's check-time header validation
// (runtime/weights-check.ts) imports `hfLlamaPlan` from here.
import { readFileSync } from "node:fs";
import { AS_STORED, hfFamily, TRANSPOSED, type HfMappedLoadResult, type HfMappedPlan, type HfMapping } from "./hf-mapping.js";

export { transpose2d } from "./hf-mapping.js";

// ---------------------------------------------------------------------------------------------
// The mapping

/** Where a vlmc parameter is in a Hugging Face Llama file (names without `model.`). */
export interface HfLlamaSource {
  tensor: string;
  /** Stored [out, in] (nn.Linear): transposed either way. */
  transpose?: true;
  /** Read when `tensor` is absent (an untied head from a file that ties it: embed_tokens). */
  fallback?: string;
}

/** One block's parameters: vlmc name under `blocks.{i}.` -> Hugging Face name under `layers.{i}.`. */
export const HF_LLAMA_BLOCK: Readonly<Record<string, HfLlamaSource>> = {
  "attn_norm.weight": { tensor: "input_layernorm.weight" },
  "attn.q.weight": { tensor: "self_attn.q_proj.weight", transpose: true },
  "attn.k.weight": { tensor: "self_attn.k_proj.weight", transpose: true },
  "attn.v.weight": { tensor: "self_attn.v_proj.weight", transpose: true },
  "attn.o.weight": { tensor: "self_attn.o_proj.weight", transpose: true },
  "mlp_norm.weight": { tensor: "post_attention_layernorm.weight" },
  "mlp.gate.weight": { tensor: "mlp.gate_proj.weight", transpose: true },
  "mlp.up.weight": { tensor: "mlp.up_proj.weight", transpose: true },
  "mlp.down.weight": { tensor: "mlp.down_proj.weight", transpose: true },
};

/** The decoder's other parameters: vlmc name under `decoder.` -> Hugging Face. */
export const HF_LLAMA_TOP: Readonly<Record<string, HfLlamaSource>> = {
  "embed.weight": { tensor: "embed_tokens.weight" },
  "norm.weight": { tensor: "norm.weight" },
  "lm_head.weight": { tensor: "lm_head.weight", transpose: true, fallback: "embed_tokens.weight" },
};

/** `LlamaForCausalLM` keeps the trunk under `model.`; its head sits outside it. */
export const HF_LLAMA_PREFIX = "model.";
const HEAD = "lm_head.weight";

/** Llama's names, layouts and words for the shared plan and loader (runtime/hf-mapping.ts). */
const LLAMA: HfMapping<HfLlamaSource> = {
  checkpoint: "Llama",
  family: "Llama",
  prefix: HF_LLAMA_PREFIX,
  module: "decoder.",
  top: HF_LLAMA_TOP,
  block: HF_LLAMA_BLOCK,
  layers: "layers",
  marker: /^(embed_tokens\.weight|layers\.\d+\.self_attn\.q_proj\.weight)$/,
  markerText: "`model.embed_tokens.weight` or `model.layers.N.self_attn.q_proj.weight`",
  fileName: (bare) => hfLlamaFileName(bare),
  // Rotary buffers older checkpoints saved, and a head the spec ties to its embedding.
  ignore: (bare) => /^layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/.test(bare) || bare === HEAD,
  moreLayers: "(more layers in the checkpoint than in the spec?)",
  transform: (s) => (s.transpose ? TRANSPOSED : AS_STORED),
};

/** The name `LlamaForCausalLM.save_pretrained` gives a table name: `model.` but for the head. */
export function hfLlamaFileName(bare: string): string {
  return bare === HEAD ? bare : HF_LLAMA_PREFIX + bare;
}

const llama = hfFamily(LLAMA);

/** Where the vlmc parameter `param` (`decoder.blocks.0.attn.q.weight`) is in a Llama file, or null when a Llama file has no place for it. */
export const hfLlamaSource = llama.source;

/** Whether a header is a Hugging Face Llama checkpoint's: it names `embed_tokens` or a layer's `q_proj`. */
export const isHfLlamaHeader = llama.isHeader;

// ---------------------------------------------------------------------------------------------
// The plan and loading, by the shared machinery

export type HfLlamaPlan = HfMappedPlan<HfLlamaSource>;
export type HfLlamaLoadResult = HfMappedLoadResult;

/**
 * The load plan of a Hugging Face Llama file for a decoder's parameters (`expected`, named as in
 * the IR), from the header alone; null when the header is not a Llama checkpoint's. Every problem
 * is collected, as for GPT-2 (runtime/hf-gpt2.ts): missing tensors, wrong shapes (named in the
 * file's [out, in] layout), non-float dtypes, a tensor given with and without `model.`,
 * parameters a Llama file cannot hold (errors), tensors that hold nothing the spec has (warnings).
 */
export const hfLlamaPlan = llama.plan;

/**
 * Reads the decoder's parameters `expected` from a Hugging Face Llama file, all or nothing (the
 * header is validated first, `hfLlamaPlan`), transposed into vlmc's [in, out]; `loadHfLlama`
 * puts them in a model's decoder, and on `ok: false` leaves the model exactly as it was.
 */
export const loadHfLlamaValues = llama.loadValues;
export const loadHfLlama = llama.load;

// ---------------------------------------------------------------------------------------------
// config.json <-> the `llama` preset's settings

/** The fields of a Hugging Face Llama config.json that matter here. */
export interface HfLlamaConfig {
  model_type?: string;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_attention_heads: number;
  num_key_value_heads?: number;
  num_hidden_layers: number;
  max_position_embeddings: number;
  rms_norm_eps?: number;
  rope_theta?: number;
  rope_scaling?: unknown;
  hidden_act?: string;
  head_dim?: number;
  attention_bias?: boolean;
  mlp_bias?: boolean;
  tie_word_embeddings?: boolean;
  attention_dropout?: number;
}

export type LlamaSettings = Record<string, number | string | boolean>;

/**
 * The `llama` preset's settings for a checkpoint's config: vocab, dim, heads, kv_heads, layers,
 * hidden, context (max_position_embeddings, or `options.context`), rope_base, norm_eps,
 * tie_embeddings. `problems` lists what the preset cannot express (another activation, biases,
 * rope scaling, a head width other than hidden_size / heads); settings are null then.
 */
export function hfLlamaSettings(config: HfLlamaConfig, options: { context?: number } = {}): { settings: LlamaSettings | null; problems: string[] } {
  const problems: string[] = [];
  const need = (k: keyof HfLlamaConfig) => {
    const v = config[k];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) problems.push(`\`${k}\` must be a whole number of at least 1 (found ${JSON.stringify(v)})`);
  };
  (["vocab_size", "hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers", "max_position_embeddings"] as const).forEach(need);
  if (config.num_key_value_heads !== undefined) need("num_key_value_heads");
  if (config.model_type !== undefined && config.model_type !== "llama") problems.push(`\`model_type\` is ${JSON.stringify(config.model_type)}, not "llama"`);
  const act = config.hidden_act ?? "silu";
  if (act !== "silu") problems.push(`\`hidden_act\` ${JSON.stringify(act)}: the llama preset's SwiGLU uses silu`);
  if (config.attention_bias) problems.push("`attention_bias` (biases on q/k/v/o) is not in the llama preset");
  if (config.mlp_bias) problems.push("`mlp_bias` (biases on the MLP) is not in the llama preset");
  if (config.rope_scaling !== undefined && config.rope_scaling !== null) problems.push("`rope_scaling` is not supported (vlmc's rotary positions are unscaled)");
  const heads = config.num_attention_heads;
  const kv = config.num_key_value_heads ?? heads;
  if (typeof config.hidden_size === "number" && typeof heads === "number" && heads > 0 && config.hidden_size % heads !== 0) problems.push(`\`num_attention_heads\` ${heads} does not divide \`hidden_size\` ${config.hidden_size}`);
  if (typeof heads === "number" && typeof kv === "number" && kv > 0 && heads % kv !== 0) problems.push(`\`num_key_value_heads\` ${kv} does not divide \`num_attention_heads\` ${heads}`);
  if (config.head_dim !== undefined && config.head_dim !== null && config.head_dim !== config.hidden_size / heads) problems.push(`\`head_dim\` ${config.head_dim} is not hidden_size / num_attention_heads (${config.hidden_size / heads}): vlmc's heads split the width`);
  const context = options.context ?? config.max_position_embeddings;
  if (!Number.isSafeInteger(context) || context < 1) problems.push(`a context of ${context} is not a whole number of positions`);
  if (problems.length) return { settings: null, problems };
  const s: LlamaSettings = { vocab: config.vocab_size, dim: config.hidden_size, heads, layers: config.num_hidden_layers, context };
  if (kv !== heads) s.kv_heads = kv;
  s.hidden = config.intermediate_size;
  s.rope_base = config.rope_theta ?? 10000;
  s.norm_eps = config.rms_norm_eps ?? 1e-6;
  if (config.tie_word_embeddings === true) s.tie_embeddings = true;
  return { settings: s, problems };
}

/** Reads a config.json (throws on unreadable or invalid JSON). */
export function readHfLlamaConfig(path: string): HfLlamaConfig {
  return JSON.parse(readFileSync(path, "utf8")) as HfLlamaConfig;
}

/** A number for the spec: small ones in exponent form (`1e-6`), others plain. */
function vlmNumber(n: number): string {
  return n !== 0 && Math.abs(n) < 1e-3 ? n.toExponential().replace("e+", "e") : String(n);
}

/**
 * A whole spec for a checkpoint's config: `model NAME { decoder llama { ... } }`, with
 * `weights: "..."` when given (relative to the spec) and a tokenizer section when given. Throws
 * when the config cannot be expressed.
 */
export function hfLlamaSpecText(config: HfLlamaConfig, options: { model?: string; weights?: string; context?: number; tokenizer?: string } = {}): string {
  const { settings, problems } = hfLlamaSettings(config, options.context !== undefined ? { context: options.context } : {});
  if (!settings) throw new Error(`the config cannot be expressed as a llama decoder: ${problems.join("; ")}`);
  const lines = Object.entries(settings).map(([k, v]) => `    ${k}: ${typeof v === "number" ? vlmNumber(v) : String(v)}`);
  if (options.weights) lines.push(`    weights: ${JSON.stringify(options.weights)}`);
  const tok = options.tokenizer ? `  ${options.tokenizer}\n` : "";
  return `vlm 0.1\n\nmodel ${options.model ?? "llama"} {\n${tok}  decoder llama {\n${lines.join("\n")}\n  }\n}\n`;
}
