// `vlmc export --format hf` for a `llama` decoder: a Hugging Face `LlamaForCausalLM` checkpoint
// folder (config.json, model.safetensors by Hugging Face's names and [out, in] layouts, and the
// tokenizer files) that `transformers` loads, and that vlmc loads back as a `decoder llama` with
// `weights:` (runtime/hf-llama.ts, whose table this reads, so export and import cannot drift).
//
// Only a decoder the Llama layout can express is exported: RMSNorm, causal attention with rotary
// positions, no biases, the standard head-width scale, optional grouped key/value heads, a
// bias-free SwiGLU, an LM head without a bias (tied or not). Everything that does not fit is
// collected and reported at once, naming the layer, before anything is written. The encoder and
// projector have no place in a Llama checkpoint and are left out (a note says so).
//
// The IR records no context for a rotary decoder (nothing in it depends on one), so
// max_position_embeddings is what the caller gives (`--context`), by default 2048; rotary
// positions work at any length, so it bounds nothing vlmc computes.
import type { Ir, IrLayer } from "../../compiler/ir/types.js";
import { hfLlamaFileName, hfLlamaSource, transpose2d, type HfLlamaConfig } from "../hf-llama.js";
import { irParams } from "../model.js";
import { formatShape, type TensorToWrite } from "../safetensors.js";
import type { Tokenizer } from "../tokenizer.js";
import { ExportError, flat, writeHfDecoderFolder, type HfExportRun } from "./hf.js";

/** max_position_embeddings when the caller gives none (Llama 1's). */
export const DEFAULT_LLAMA_CONTEXT = 2048;

export interface HfLlamaExport {
  config: HfLlamaConfig & Record<string, unknown>;
  files: string[];
  notes: string[];
}

const tick = (s: string) => `\`${s}\``;

/**
 * The Llama config of an IR's decoder, or an ExportError listing everything that does not fit
 * the Llama layout (each naming its layer).
 */
export function hfLlamaConfigOf(ir: Ir, tokenizer: Pick<Tokenizer, "bos" | "eos" | "pad">, options: { context?: number } = {}): HfLlamaConfig & Record<string, unknown> {
  const dec = ir.modules.decoder;
  if (!dec) throw new ExportError(`the model ${tick(ir.model)} has no decoder: there is nothing to export as Llama`);
  const problems: string[] = [];
  const layers = flat(dec.layers);
  const at = (l: IrLayer) => tick(l.path);
  const one = (kind: string): IrLayer | undefined => {
    const found = layers.filter((l) => l.kind === kind);
    if (found.length !== 1) problems.push(found.length === 0 ? `it has no ${kind} layer (Llama has one)` : `it has ${found.length} ${kind} layers (Llama has one)`);
    return found[0];
  };
  if (dec.preset !== "llama") problems.push(`it is ${dec.preset ? `the ${tick(dec.preset)} preset` : "not a preset"}, not ${tick("llama")}`);
  const embed = one("token_embed");
  const head = one("lm_head");
  const attns = layers.filter((l) => l.kind === "attention");
  const mlps = layers.filter((l) => l.kind === "swiglu");
  const norms = layers.filter((l) => l.kind === "rmsnorm");
  const known = new Set(["token_embed", "join", "sequence", "residual", "rmsnorm", "attention", "swiglu", "lm_head"]);
  for (const l of layers) {
    if (known.has(l.kind)) continue;
    const why = l.kind === "positions" ? ` (Llama has rotary positions only: \`position: rope\`)` : l.kind === "layernorm" ? " (it uses RMSNorm)" : l.kind === "mlp" ? " (its MLP is SwiGLU: gate, up, down)" : "";
    problems.push(`${at(l)} is a ${tick(l.kind)} layer, which Llama does not have${why}`);
  }
  for (const a of attns) {
    if (a.attrs.rope !== true) problems.push(`${at(a)} has no rotary positions; Llama's attention applies them to queries and keys`);
    if (a.attrs.causal !== true) problems.push(`${at(a)} is not causal`);
    if (a.attrs.qkv_bias === true) problems.push(`${at(a)} has query/key/value biases; Llama's projections have none`);
    if (a.attrs.out_bias === true) problems.push(`${at(a)} has an output bias; Llama's o_proj has none`);
    if (a.attrs.scale !== "head") problems.push(`${at(a)} scales attention scores by ${tick(String(a.attrs.scale))}; Llama scales by head_width^-0.5`);
  }
  for (const m of mlps) if (m.attrs.bias === true) problems.push(`${at(m)} has biases; Llama's gate, up and down projections have none`);
  if (head?.attrs.bias) problems.push(`${at(head)} has a bias (\`head_bias: true\`); Llama's LM head has none`);
  const same = (what: string, values: unknown[]) => {
    if (new Set(values.map((v) => JSON.stringify(v))).size > 1) problems.push(`its layers differ in ${what} (${[...new Set(values.map(String))].join(", ")}); Llama has one`);
  };
  same("RMSNorm epsilon", norms.map((n) => n.attrs.eps));
  same("attention heads", attns.map((a) => a.attrs.heads));
  same("key/value heads", attns.map((a) => a.attrs.kv_heads || a.attrs.heads));
  same("rotary base", attns.map((a) => a.attrs.rope_base));
  same("SwiGLU width", mlps.map((m) => m.attrs.hidden));
  same("dropout", attns.map((a) => a.attrs.dropout));
  if (attns.length !== mlps.length) problems.push(`it has ${attns.length} attention and ${mlps.length} SwiGLU layers; each Llama block has one of each`);
  if (!problems.length) for (const p of irParams(ir)) if (p.name.startsWith("decoder.") && !hfLlamaSource(p.name)) problems.push(`parameter ${tick(p.name)} ${formatShape(p.shape)} has no counterpart in a Llama checkpoint`);
  const context = options.context ?? DEFAULT_LLAMA_CONTEXT;
  if (!Number.isSafeInteger(context) || context < 1) problems.push(`a context of ${context} positions is not a whole number of at least 1`);
  if (problems.length) throw new ExportError(`the decoder of ${tick(ir.model)} cannot be written as a Hugging Face Llama checkpoint`, problems);

  const dim = Number(embed!.attrs.dim);
  const heads = Number(attns[0]?.attrs.heads ?? 1);
  const kv = Number(attns[0]?.attrs.kv_heads || heads);
  const config: HfLlamaConfig & Record<string, unknown> = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: Number(embed!.attrs.vocab),
    hidden_size: dim,
    intermediate_size: Number(mlps[0]?.attrs.hidden ?? 4 * dim),
    num_hidden_layers: attns.length,
    num_attention_heads: heads,
    num_key_value_heads: kv,
    head_dim: dim / heads,
    hidden_act: "silu",
    max_position_embeddings: context,
    rms_norm_eps: Number(norms[0]?.attrs.eps ?? 1e-6),
    rope_theta: Number(attns[0]?.attrs.rope_base ?? 10000),
    rope_scaling: null,
    attention_bias: false,
    mlp_bias: false,
    attention_dropout: Number(attns[0]?.attrs.dropout ?? 0),
    tie_word_embeddings: head!.attrs.tied === true,
    torch_dtype: "float32",
  };
  if (tokenizer.bos !== null) config.bos_token_id = tokenizer.bos;
  if (tokenizer.eos !== null) config.eos_token_id = tokenizer.eos;
  if (tokenizer.pad !== null) config.pad_token_id = tokenizer.pad;
  return config;
}

/**
 * The Hugging Face tensors of a decoder's parameter values (vlmc names), named as
 * `LlamaForCausalLM.save_pretrained` names them: the projections transposed to [out, in]; a
 * tied head not stored (Hugging Face ties it to embed_tokens).
 */
export function hfLlamaTensors(values: ReadonlyMap<string, Float32Array>, shapes: ReadonlyMap<string, readonly number[]>, tied: boolean): TensorToWrite[] {
  const out: TensorToWrite[] = [];
  for (const [param, data] of values) {
    const s = hfLlamaSource(param);
    if (!s) throw new Error(`internal: ${param} has no Llama tensor`);
    if (param === "decoder.lm_head.weight" && tied) continue;
    const shape = shapes.get(param)!;
    if (s.transpose) {
      const [r, c] = shape as [number, number];
      out.push({ name: hfLlamaFileName(s.tensor), dtype: "F32", shape: [c, r], data: transpose2d(data, r, c) });
    } else out.push({ name: hfLlamaFileName(s.tensor), dtype: "F32", shape: [...shape], data });
  }
  return out;
}

/**
 * Exports a run's `llama` decoder to `out` as a Hugging Face Llama checkpoint folder. Throws
 * ExportError (nothing written) when the decoder does not fit Llama or the weights do not fit the IR.
 */
export function exportHfLlama(run: HfExportRun, out: string, options: { context?: number } = {}): HfLlamaExport {
  const config = hfLlamaConfigOf(run.ir, run.tokenizer, options);
  const before = options.context === undefined ? [`max_position_embeddings is ${DEFAULT_LLAMA_CONTEXT}: the run's IR records no context for rotary positions (give --context N to write another)`] : [];
  const decoderOnly = "only the decoder is exported: a Llama checkpoint has no place for the image encoder and projector (`--format tfjs` exports the whole model)";
  return { config, ...writeHfDecoderFolder(run, out, config, hfLlamaTensors, { before, decoderOnly }) };
}
