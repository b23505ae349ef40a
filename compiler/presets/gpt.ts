// Decoder presets. `gpt`: GPT-2 style (learned positions, pre-LN blocks, tanh GELU MLP, final
// LayerNorm, LM head tied to the token embedding). `llama`: Llama style (RMSNorm, rotary
// positions, SwiGLU, no biases, untied head, optional grouped key/value heads).
// `gpt { pretrained: "folder" }` reads a Hugging Face GPT-2 folder (gptFolder below).
import { hfGpt2Settings, type HfGpt2Config } from "../../runtime/hf-gpt2.js";
import { hfLlamaSettings, type HfLlamaConfig } from "../../runtime/hf-llama.js";
import { diagnostic } from "../diagnostics/diagnostic.js";
import { initSetting } from "../layers/init.js";
import type { LayerNode } from "../layers/kind.js";
import { pretrainedSetting, type PretrainedFolder, type PretrainedKind } from "../resolve/pretrained.js";
import type { Schema } from "../resolve/section.js";
import { bool, float, int, LIMITS, oneOf, str } from "../resolve/types.js";
import { node, read, type Preset } from "./preset.js";

/** Settings every decoder has, preset or not: the plumbing around its trunk. */
export function decoderCommon(defaults: { position: string; tie: boolean }): Schema {
  return {
    vocab: {
      type: int(),
      default: (r) => r.external.tokenizerSize?.() ?? null,
      defaultDoc: "tokenizer.size",
      doc: "vocabulary size; must equal the tokenizer's",
    },
    dim: { type: int(), doc: "model width" },
    context: { type: int(), doc: "the longest sequence (visual tokens + text) the decoder takes; rows of a learned position table" },
    position: {
      type: oneOf("learned", "sinusoidal", "rope", "none"),
      default: defaults.position,
      doc: "position information: a learned table, fixed sinusoids, rotary (inside attention), or none",
    },
    dropout: { type: float(0, 1, { maxExclusive: true }), default: 0, doc: "dropout on the embeddings and the attention weights and outputs (and the MLP output in `gpt`)" },
    tie_embeddings: { type: bool, default: defaults.tie, doc: "the LM head reuses the token embedding table" },
    head_bias: { type: bool, default: false, doc: "a learned bias on the LM head" },
    weights: { type: str, default: "", defaultDoc: "none", doc: "pretrained weights (.safetensors), relative to the spec" },
    init: initSetting,
  };
}

/**
 * A decoder folder's config.json, when it is a JSON object of `modelType` whose `architectures`
 * (if any) are all among `archs`; else the problem, for E0721.
 */
function decoderConfig<C>(folder: PretrainedFolder, modelType: string, preset: string, archs: readonly string[]): C | { problem: string } {
  const config = folder.json("config.json");
  if (!config || typeof config !== "object" || Array.isArray(config)) return { problem: "`config.json` is not a JSON object" };
  const c = config as { model_type?: unknown; architectures?: unknown };
  if (c.model_type !== modelType) return { problem: `config.json's \`model_type\` is ${JSON.stringify(c.model_type ?? null)}, not "${modelType}"` };
  const other = (Array.isArray(c.architectures) ? c.architectures : []).find((a) => !archs.includes(a));
  if (other !== undefined) return { problem: `config.json's \`architectures\` names ${JSON.stringify(other)}; a ${preset} decoder reads ${archs.join(" or ")}` };
  return config as C;
}

/** Where each setting of a pretrained gpt comes from in config.json, for messages. */
const GPT2_ORIGIN: Record<string, string> = {
  vocab: "`vocab_size`",
  dim: "`n_embd`",
  heads: "`n_head`",
  layers: "`n_layer`",
  context: "`n_positions`",
  mlp: "`n_inner` (null: 4 x `n_embd`)",
  activation: "`activation_function`",
  norm_eps: "`layer_norm_epsilon`",
  attention_scale: "`scale_attn_weights`",
  tie_embeddings: "`tie_word_embeddings`",
  dropout: "`embd_pdrop`/`attn_pdrop`/`resid_pdrop`",
};

/**
 * A Hugging Face GPT-2 folder as a `gpt` decoder: config.json through `hfGpt2Settings`
 * (runtime/hf-gpt2.ts), plus what every GPT-2 is (learned positions, biases everywhere, no
 * head bias), so that a spec writing otherwise is told; model.safetensors is the weights
 * (read by Hugging Face names, runtime/hf-gpt2.ts). `context` may be written smaller than
 * n_positions (wpe's first rows are loaded); `dropout` and `tie_embeddings` are the folder's
 * by default but the spec's to choose (an untied head starts from wte).
 */
export const gptFolder: PretrainedKind = {
  what: "a Hugging Face GPT-2 checkpoint",
  requires: ["config.json", "model.safetensors"],
  exclusive: ["weights"],
  atMost: ["context"],
  soft: ["dropout", "tie_embeddings"],
  origin: (key) => (GPT2_ORIGIN[key] ? `${GPT2_ORIGIN[key]} in config.json` : undefined),
  read(folder) {
    const c = decoderConfig<HfGpt2Config>(folder, "gpt2", "gpt", ["GPT2LMHeadModel", "GPT2Model"]);
    if ("problem" in c) return { settings: null, problems: [c.problem] };
    const { settings, problems } = hfGpt2Settings(c);
    if (!settings) return { settings: null, problems: problems.map((p) => `config.json: ${p}`) };
    return {
      settings: {
        ...settings,
        mlp: settings.mlp ?? 4 * (settings.dim as number),
        attention_scale: settings.attention_scale ?? "head",
        tie_embeddings: settings.tie_embeddings ?? true,
        dropout: settings.dropout ?? 0,
        position: "learned",
        bias: true,
        qkv_bias: true,
        head_bias: false,
        weights: folder.file("model.safetensors"),
      },
      problems: [],
    };
  },
  verify: checkFolderVocab,
};

/** A written `vocab` is checked against the folder (E0720); the folder's against the tokenizer (E0307, as any decoder's). */
function checkFolderVocab(...[r, settings, span]: Parameters<NonNullable<PretrainedKind["verify"]>>): void {
  if (r.has("vocab")) return;
  const size = r.external.tokenizerSize?.() ?? null;
  if (size === null || size === settings.vocab) return;
  r.diags.push(
    diagnostic("E0307", span, `the pretrained decoder's vocabulary of ${String(settings.vocab)} (\`vocab_size\` in config.json) does not match the tokenizer's ${size} tokens`, {
      label: `vocab_size ${String(settings.vocab)}, tokenizer ${size}`,
      help: ["remove the `tokenizer` section to use the folder's tokenizer.json, or give a tokenizer of the checkpoint's vocabulary"],
    }),
  );
}

/** Where each setting of a pretrained llama comes from in config.json, for messages. */
const LLAMA_ORIGIN: Record<string, string> = {
  vocab: "`vocab_size`",
  dim: "`hidden_size`",
  heads: "`num_attention_heads`",
  kv_heads: "`num_key_value_heads`",
  layers: "`num_hidden_layers`",
  hidden: "`intermediate_size`",
  context: "`max_position_embeddings`",
  rope_base: "`rope_theta`",
  norm_eps: "`rms_norm_eps`",
  tie_embeddings: "`tie_word_embeddings`",
};

/**
 * A Hugging Face Llama folder (LlamaForCausalLM, as `vlmc export --format hf` writes one) as a
 * `llama` decoder: config.json through `hfLlamaSettings` (runtime/hf-llama.ts), plus what the
 * preset fixes (rotary positions, no head bias); model.safetensors is the weights, read by
 * Hugging Face's names. `context` (max_position_embeddings) may be written smaller: rotary
 * positions have no table to cut.
 */
export const llamaFolder: PretrainedKind = {
  what: "a Hugging Face Llama checkpoint",
  requires: ["config.json", "model.safetensors"],
  exclusive: ["weights"],
  atMost: ["context"],
  soft: ["dropout"],
  origin: (key) => (LLAMA_ORIGIN[key] ? `${LLAMA_ORIGIN[key]} in config.json` : undefined),
  read(folder) {
    const c = decoderConfig<HfLlamaConfig>(folder, "llama", "llama", ["LlamaForCausalLM", "LlamaModel"]);
    if ("problem" in c) return { settings: null, problems: [c.problem] };
    const { settings, problems } = hfLlamaSettings(c);
    if (!settings) return { settings: null, problems: problems.map((p) => `config.json: ${p}`) };
    return {
      settings: {
        ...settings,
        kv_heads: settings.kv_heads ?? settings.heads!,
        tie_embeddings: settings.tie_embeddings ?? false,
        dropout: c.attention_dropout ?? 0,
        position: "rope",
        head_bias: false,
        weights: folder.file("model.safetensors"),
      },
      problems: [],
    };
  },
  verify: checkFolderVocab,
};

const scale = {
  type: { t: "either" as const, of: [oneOf("head", "dim"), float(0, undefined, { minExclusive: true })], describe: "`head`, `dim` or a number" },
  default: "head",
  doc: "attention scores scale: `head` = head_width^-0.5 (standard), `dim` = dim^-0.5 (the seed's quirk)",
};

export const gpt: Preset = {
  section: "decoder",
  name: "gpt",
  doc: "A GPT-2-style decoder: token embedding + learned positions, pre-LN blocks (causal attention, tanh-GELU MLP), final LayerNorm, LM head tied to the embedding.",
  settings: {
    ...decoderCommon({ position: "learned", tie: true }),
    pretrained: pretrainedSetting(gptFolder),
    heads: { type: int(1, 4096), doc: "attention heads; must divide `dim`" },
    layers: { type: int(0, LIMITS.repeat), doc: "transformer blocks" },
    mlp: { type: int(), default: (r) => (r.num("dim") === null ? null : r.num("dim")! * 4), defaultDoc: "4 x dim", doc: "hidden width of each block's MLP" },
    activation: { type: oneOf("gelu", "gelu_tanh", "relu", "silu"), default: "gelu_tanh", doc: "MLP activation (GPT-2: `gelu_tanh`)" },
    attention_scale: scale,
    bias: { type: bool, default: true, doc: "biases on the attention output and MLP projections" },
    qkv_bias: { type: bool, default: (r) => r.get("bias"), defaultDoc: "bias", doc: "biases on the query/key/value projections" },
    norm_eps: { type: float(0, 1, { minExclusive: true }), default: 1e-5, doc: "LayerNorm epsilon" },
  },
  build(r) {
    const s = read(r, ["heads", "layers", "mlp", "activation", "attention_scale", "bias", "qkv_bias", "norm_eps", "dropout", "position"] as const);
    if (!s) return null;
    const p = s.dropout as number;
    const eps = { eps: s.norm_eps };
    const blocks: LayerNode[] = [];
    for (let i = 0; i < (s.layers as number); i++) {
      blocks.push(
        node(r, "sequence", String(i), {}, { n: "layers" }, [
          node(r, "residual", "", {}, {}, [
            node(r, "layernorm", "ln_1", eps, { eps: "norm_eps" }),
            node(
              r,
              "attention",
              "attn",
              { heads: s.heads, causal: true, scale: s.attention_scale, qkv_bias: s.qkv_bias, out_bias: s.bias, dropout: p, rope: s.position === "rope" },
              { heads: "heads", scale: "attention_scale", dropout: "dropout" },
            ),
          ]),
          node(r, "residual", "", {}, {}, [
            node(r, "layernorm", "ln_2", eps, { eps: "norm_eps" }),
            node(r, "mlp", "mlp", { hidden: s.mlp, activation: s.activation, bias: s.bias, dropout: p }, { hidden: "mlp", activation: "activation" }),
          ]),
        ]),
      );
    }
    return [node(r, "sequence", "blocks", {}, { n: "layers" }, blocks), node(r, "layernorm", "ln_f", eps, { eps: "norm_eps" })];
  },
};

/** Llama's feed-forward width: 8/3 x dim, rounded up to a multiple of 64. */
export function llamaHidden(dim: number): number {
  return Math.ceil((8 * dim) / 3 / 64) * 64;
}

export const llama: Preset = {
  section: "decoder",
  name: "llama",
  doc: "A Llama-style decoder: RMSNorm, rotary positions, SwiGLU feed-forward, no biases, untied LM head, optional grouped key/value heads.",
  settings: {
    ...decoderCommon({ position: "rope", tie: false }),
    pretrained: pretrainedSetting(llamaFolder),
    heads: { type: int(1, 4096), doc: "query heads; must divide `dim`" },
    kv_heads: { type: int(1, 4096), default: (r) => r.get("heads"), defaultDoc: "heads", doc: "key/value heads (grouped-query attention); must divide `heads`" },
    layers: { type: int(0, LIMITS.repeat), doc: "transformer blocks" },
    hidden: {
      type: int(),
      default: (r) => (r.num("dim") === null ? null : llamaHidden(r.num("dim")!)),
      defaultDoc: "8/3 x dim rounded up to a multiple of 64",
      doc: "SwiGLU hidden width",
    },
    rope_base: { type: float(1), default: 10000, doc: "RoPE frequency base" },
    norm_eps: { type: float(0, 1, { minExclusive: true }), default: 1e-6, doc: "RMSNorm epsilon" },
  },
  build(r) {
    const s = read(r, ["heads", "kv_heads", "layers", "hidden", "rope_base", "norm_eps", "dropout", "position"] as const);
    if (!s) return null;
    const eps = { eps: s.norm_eps };
    const blocks: LayerNode[] = [];
    for (let i = 0; i < (s.layers as number); i++) {
      blocks.push(
        node(r, "sequence", String(i), {}, { n: "layers" }, [
          node(r, "residual", "", {}, {}, [
            node(r, "rmsnorm", "attn_norm", eps, { eps: "norm_eps" }),
            node(
              r,
              "attention",
              "attn",
              { heads: s.heads, kv_heads: s.kv_heads, causal: true, qkv_bias: false, out_bias: false, rope: s.position === "rope", rope_base: s.rope_base, dropout: s.dropout },
              { heads: "heads", kv_heads: "kv_heads", rope_base: "rope_base" },
            ),
          ]),
          node(r, "residual", "", {}, {}, [node(r, "rmsnorm", "mlp_norm", eps, { eps: "norm_eps" }), node(r, "swiglu", "mlp", { hidden: s.hidden }, { hidden: "hidden" })]),
        ]),
      );
    }
    return [node(r, "sequence", "blocks", {}, { n: "layers" }, blocks), node(r, "rmsnorm", "norm", eps, { eps: "norm_eps" })];
  },
};
