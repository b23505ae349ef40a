// Vision transformer presets. `vit`: CLIP-style (CLS token, learned positions, pre-LN blocks
// with a GELU MLP, a final LayerNorm), as in the seed model. `siglip`: SigLIP-style (no CLS,
// all patch tokens out, tanh GELU, biases on q/k/v, eps 1e-6).
// `pretrained: "folder"` reads a Hugging Face CLIP-vision or SigLIP checkpoint into either
// (hfVisionFolder below; the name and layout mapping is runtime/hf-vision.ts).
import { HF_VISION_ORIGINS, hfVisionSettings } from "../../runtime/hf-vision.js";
import { initSetting } from "../layers/init.js";
import type { LayerNode } from "../layers/kind.js";
import { pixelSettings } from "../resolve/pixels.js";
import { pretrainedSetting, type PretrainedKind } from "../resolve/pretrained.js";
import type { Schema, SectionReader } from "../resolve/section.js";
import { bool, float, int, LIMITS, oneOf, str } from "../resolve/types.js";
import { node, read, type Preset } from "./preset.js";

/**
 * `pretrained:` for the vision presets: a Hugging Face folder with config.json (a
 * CLIPVisionConfig / SiglipVisionConfig, or a whole CLIPConfig / SiglipConfig's
 * `vision_config`), model.safetensors (read by Hugging Face names) and, when present,
 * preprocessor_config.json (the pixels). Either preset takes either family: the folder says
 * whether there is a CLS token, a pre-norm, a patch bias. `blocks` may be written smaller than
 * the checkpoint's (the first blocks load, as vision-language models that read an earlier
 * layer's features do), and `final_norm: false` leaves `post_layernorm` out.
 */
export const hfVisionFolder: PretrainedKind = {
  what: "a Hugging Face CLIP or SigLIP vision checkpoint",
  requires: ["config.json", "model.safetensors"],
  exclusive: ["weights"],
  atMost: ["blocks"],
  soft: ["final_norm"],
  origin: (key) => HF_VISION_ORIGINS[key],
  read(folder) {
    const r = hfVisionSettings(folder.json("config.json"), folder.json("preprocessor_config.json"));
    if (!r.settings) return { settings: null, problems: r.problems };
    return { settings: { ...r.settings, weights: folder.file("model.safetensors") }, problems: [] };
  },
};

function vitSchema(defaults: { cls: boolean; activation: string; qkvBias: boolean; eps: number }): Schema {
  return {
    image: { type: { t: "dims", rank: 3, max: LIMITS.image }, doc: "input image, height x width x channels" },
    patch: { type: int(1, LIMITS.image), doc: "patch side in pixels; must divide the image height and width" },
    dim: { type: int(), doc: "width of the tokens" },
    heads: { type: int(1, 4096), doc: "attention heads; must divide `dim`" },
    blocks: { type: int(0, LIMITS.repeat), doc: "transformer blocks" },
    mlp: { type: int(), default: (r) => mul(r.num("dim"), 4), defaultDoc: "4 x dim", doc: "hidden width of each block's MLP" },
    dropout: { type: float(0, 1, { maxExclusive: true }), default: 0, doc: "dropout on embeddings, attention and MLP outputs" },
    cls: { type: bool, default: defaults.cls, doc: "prepend a learned CLS token" },
    output: {
      type: oneOf("cls", "patches", "pool", "all"),
      default: (r) => (r.get("cls") === true ? "cls" : "patches"),
      defaultDoc: "`cls` with a CLS token, else `patches`",
      doc: "what the encoder hands to the projector: the CLS token (1 token), the patch tokens, their mean (`pool`), or all",
    },
    position: { type: oneOf("learned", "sinusoidal"), default: "learned", doc: "position embedding" },
    activation: { type: oneOf("gelu", "gelu_tanh", "quick_gelu", "relu", "silu"), default: defaults.activation, doc: "MLP activation (`quick_gelu`: CLIP's x * sigmoid(1.702 x))" },
    attention_scale: {
      type: { t: "either", of: [oneOf("head", "dim"), float(0, undefined, { minExclusive: true })], describe: "`head`, `dim` or a number" },
      default: "head",
      doc: "attention scores scale: `head` = head_width^-0.5 (standard), `dim` = dim^-0.5 (the seed's quirk)",
    },
    qkv_bias: { type: bool, default: defaults.qkvBias, doc: "biases on the query/key/value projections" },
    norm_eps: { type: float(0, 1, { minExclusive: true }), default: defaults.eps, doc: "LayerNorm epsilon" },
    patch_bias: { type: bool, default: true, doc: "a bias on the patch projection (CLIP's has none, SigLIP's has one)" },
    pre_norm: { type: bool, default: false, doc: "a LayerNorm before the first block (CLIP's `pre_layrnorm`)" },
    final_norm: { type: bool, default: true, doc: "a LayerNorm after the last block" },
    tokens: { type: int(0), default: 0, defaultDoc: "derived", doc: "visual tokens out; derived, checked if written" },
    ...pixelSettings,
    weights: { type: str, default: "", defaultDoc: "none", doc: "pretrained weights (.safetensors), relative to the spec" },
    pretrained: pretrainedSetting(hfVisionFolder),
    init: initSetting,
  };
}

function mul(x: number | null, k: number): number | null {
  return x === null ? null : x * k;
}

function buildVit(r: SectionReader): LayerNode[] | null {
  const s = read(r, ["patch", "dim", "heads", "blocks", "mlp", "dropout", "cls", "output", "position", "activation", "attention_scale", "qkv_bias", "norm_eps", "patch_bias", "pre_norm", "final_norm"] as const);
  if (!s) return null;
  const p = s.dropout as number;
  const eps = { eps: s.norm_eps };
  const layers: LayerNode[] = [
    node(r, "patch_embed", "patch_embed", { patch: s.patch, dim: s.dim, cls: s.cls, bias: s.patch_bias }, { patch: "patch", dim: "dim", cls: "cls", bias: "patch_bias" }),
    node(r, "positions", "pos_embed", { kind: s.position }, { kind: "position" }),
  ];
  if (p > 0) layers.push(node(r, "dropout", "pos_drop", { p }, { p: "dropout" }));
  if (s.pre_norm) layers.push(node(r, "layernorm", "pre_norm", eps, { eps: "norm_eps" }));
  const blocks: LayerNode[] = [];
  for (let i = 0; i < (s.blocks as number); i++) {
    const attn = node(r, "residual", "", {}, {}, [
      node(r, "layernorm", "norm1", eps, { eps: "norm_eps" }),
      node(r, "attention", "attn", { heads: s.heads, scale: s.attention_scale, qkv_bias: s.qkv_bias, dropout: p }, { heads: "heads", scale: "attention_scale", dropout: "dropout" }),
    ]);
    const ffn = node(r, "residual", "", {}, {}, [node(r, "layernorm", "norm2", eps, { eps: "norm_eps" }), mlpNode(r, s.mlp as number, s.dim as number, s.activation as string, p)]);
    blocks.push(node(r, "sequence", String(i), {}, { n: "blocks" }, [attn, ffn]));
  }
  layers.push(node(r, "sequence", "blocks", {}, { n: "blocks" }, blocks));
  if (s.final_norm) layers.push(node(r, "layernorm", "norm", eps, { eps: "norm_eps" }));
  layers.push(node(r, "take", "take", { which: s.output }, { which: "output" }));
  return layers;
}

/**
 * The block's MLP. The `mlp` layer has the usual activations; CLIP's `quick_gelu` is its own
 * layer kind, so its MLP is spelt out as the same two linears around it, under the same
 * parameter names (`mlp.fc1.weight`, ...), which is what a CLIP checkpoint maps onto.
 */
function mlpNode(r: SectionReader, hidden: number, dim: number, activation: string, p: number): LayerNode {
  if (activation !== "quick_gelu") return node(r, "mlp", "mlp", { hidden, activation, dropout: p }, { hidden: "mlp", activation: "activation", dropout: "dropout" });
  return node(r, "sequence", "mlp", {}, {}, [
    node(r, "linear", "fc1", { out: hidden }, { out: "mlp" }),
    node(r, "quick_gelu", "act", {}, { name: "activation" }),
    node(r, "linear", "fc2", { out: dim }, { out: "dim" }),
    ...(p > 0 ? [node(r, "dropout", "drop", { p }, { p: "dropout" })] : []),
  ]);
}

export const vit: Preset = {
  section: "encoder",
  name: "vit",
  doc: "A CLIP-style vision transformer: patch embedding with a CLS token, learned positions, pre-LN blocks (attention, GELU MLP), a final LayerNorm; outputs the CLS token by default.",
  settings: vitSchema({ cls: true, activation: "gelu", qkvBias: false, eps: 1e-5 }),
  build: buildVit,
};

export const siglip: Preset = {
  section: "encoder",
  name: "siglip",
  doc: "A SigLIP-style vision transformer: no CLS token, all patch tokens out, tanh-approximated GELU, q/k/v biases, LayerNorm eps 1e-6.",
  settings: vitSchema({ cls: false, activation: "gelu_tanh", qkvBias: true, eps: 1e-6 }),
  build: buildVit,
};
