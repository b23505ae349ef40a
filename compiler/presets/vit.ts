// Vision transformer presets. `vit`: CLIP-style (CLS token, learned positions, pre-LN blocks
// with a GELU MLP, a final LayerNorm), as in the seed model. `siglip`: SigLIP-style (no CLS,
// all patch tokens out, tanh GELU, biases on q/k/v, eps 1e-6).
import { initSetting } from "../layers/init.js";
import type { LayerNode } from "../layers/kind.js";
import { pixelSettings } from "../resolve/pixels.js";
import type { Schema, SectionReader } from "../resolve/section.js";
import { bool, float, int, LIMITS, oneOf, str } from "../resolve/types.js";
import { node, read, type Preset } from "./preset.js";

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
    activation: { type: oneOf("gelu", "gelu_tanh", "relu", "silu"), default: defaults.activation, doc: "MLP activation" },
    attention_scale: {
      type: { t: "either", of: [oneOf("head", "dim"), float(0, undefined, { minExclusive: true })], describe: "`head`, `dim` or a number" },
      default: "head",
      doc: "attention scores scale: `head` = head_width^-0.5 (standard), `dim` = dim^-0.5 (the seed's quirk)",
    },
    qkv_bias: { type: bool, default: defaults.qkvBias, doc: "biases on the query/key/value projections" },
    norm_eps: { type: float(0, 1, { minExclusive: true }), default: defaults.eps, doc: "LayerNorm epsilon" },
    pre_norm: { type: bool, default: false, doc: "a LayerNorm before the first block (CLIP's `pre_layrnorm`)" },
    final_norm: { type: bool, default: true, doc: "a LayerNorm after the last block" },
    tokens: { type: int(0), default: 0, defaultDoc: "derived", doc: "visual tokens out; derived, checked if written" },
    ...pixelSettings,
    weights: { type: str, default: "", defaultDoc: "none", doc: "pretrained weights (.safetensors), relative to the spec" },
    init: initSetting,
  };
}

function mul(x: number | null, k: number): number | null {
  return x === null ? null : x * k;
}

function buildVit(r: SectionReader): LayerNode[] | null {
  const s = read(r, ["patch", "dim", "heads", "blocks", "mlp", "dropout", "cls", "output", "position", "activation", "attention_scale", "qkv_bias", "norm_eps", "pre_norm", "final_norm"] as const);
  if (!s) return null;
  const p = s.dropout as number;
  const eps = { eps: s.norm_eps };
  const layers: LayerNode[] = [
    node(r, "patch_embed", "patch_embed", { patch: s.patch, dim: s.dim, cls: s.cls }, { patch: "patch", dim: "dim", cls: "cls" }),
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
    const ffn = node(r, "residual", "", {}, {}, [
      node(r, "layernorm", "norm2", eps, { eps: "norm_eps" }),
      node(r, "mlp", "mlp", { hidden: s.mlp, activation: s.activation, dropout: p }, { hidden: "mlp", activation: "activation", dropout: "dropout" }),
    ]);
    blocks.push(node(r, "sequence", String(i), {}, { n: "blocks" }, [attn, ffn]));
  }
  layers.push(node(r, "sequence", "blocks", {}, { n: "blocks" }, blocks));
  if (s.final_norm) layers.push(node(r, "layernorm", "norm", eps, { eps: "norm_eps" }));
  layers.push(node(r, "take", "take", { which: s.output }, { which: "output" }));
  return layers;
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
