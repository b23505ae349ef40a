// Hugging Face CLIP-vision and SigLIP checkpoints (`CLIPVisionModel`, a whole `CLIPModel`,
// `SiglipVisionModel`, safetensors) as the weights of a `vit` / `siglip` preset encoder. This
// file is the one place where Hugging Face's vision names and layouts meet vlmc's; the
// check-time diagnostics (runtime/weights-check.ts), loading (runtime/weights.ts) and the
// presets' `pretrained:` folders (compiler/presets/vit.ts) all go through it.
//
//   Hugging Face (optional `vision_model.` prefix)           vlmc (`encoder.` prefix)
//   embeddings.patch_embedding.weight [D, C, P, P] (Conv2d)  patch_embed.weight [P*P*C, D]: permuted (below)
//   embeddings.patch_embedding.bias   [D]  (SigLIP)          patch_embed.bias   [D]
//   embeddings.class_embedding        [D]  (CLIP)            patch_embed.cls    [D]
//   embeddings.position_embedding.weight [N(+1), D]          pos_embed.weight   [N(+1), D]
//   pre_layrnorm.{weight,bias}             (CLIP)            pre_norm.{weight,bias}
//   encoder.layers.{i}.layer_norm1.*                         blocks.{i}.norm1.*
//   encoder.layers.{i}.self_attn.{q,k,v,out}_proj.weight [out, in] (nn.Linear)
//                                                            blocks.{i}.attn.{q,k,v,o}.weight [in, out]: transposed
//   encoder.layers.{i}.self_attn.{q,k,v,out}_proj.bias       blocks.{i}.attn.{q,k,v,o}.bias
//   encoder.layers.{i}.layer_norm2.*                         blocks.{i}.norm2.*
//   encoder.layers.{i}.mlp.fc{1,2}.weight [out, in]          blocks.{i}.mlp.fc{1,2}.weight [in, out]: transposed
//   encoder.layers.{i}.mlp.fc{1,2}.bias                      blocks.{i}.mlp.fc{1,2}.bias
//   post_layernorm.{weight,bias}                             norm.{weight,bias}
//   embeddings.position_ids, head.* (SigLIP's attention pooling), and outside `vision_model.`
//   text_model.*, visual_projection, text_projection, logit_scale  (ignored)
//
// The patch embedding. vlmc cuts an image [H, W, C] into patches whose values run (row py,
// column px, channel c), py slowest (compiler/layers/patch-embed.ts: reshape [H/P, P, W/P, P, C],
// transpose to [H/P, W/P, P, P, C]), and multiplies each by a [P*P*C, D] matrix; the Conv2d
// computes out[d] = sum over (c, py, px) of weight[d, c, py, px] * x[c, py, px]. So
//   vlmc[(py*P + px)*C + c, d] = hf[d, c, py, px]   (hf.permute(2, 3, 1, 0).reshape(P*P*C, D)),
// and both number the patches row by row (the conv's flatten(2) over [H/P, W/P]).
//
// Both families share one mapping: which of these tensors a checkpoint has (a CLS token, a
// pre-norm, a patch bias) is a matter of the preset's settings, which `hfVisionSettings` reads
// from the checkpoint's config.json (and preprocessor_config.json for the pixels).
//
// The load plan and the all-or-nothing loading are runtime/hf-mapping.ts's, shared with the
// GPT-2 and Llama mappings; this file describes the vision checkpoints to it (`VISION`: the
// tables, the conv permutation, the words of its messages).
//
// Plain TypeScript with no tfjs import: the compiler's check-time header validation and the
// presets import it.
import type { Typed } from "../compiler/resolve/types.js";
import { affine, AS_STORED, hfFamily, TRANSPOSED, type HfMappedLoadResult, type HfMappedPlan, type HfMapping, type HfStep, type HfTransform } from "./hf-mapping.js";
import type { Model } from "./model.js";
import { formatShape } from "./safetensors.js";

// ---------------------------------------------------------------------------------------------
// The mapping

/** Where a vlmc parameter comes from in a Hugging Face vision file (names without `vision_model.`). */
export interface HfVisionSource {
  /** The Hugging Face tensor. */
  tensor: string;
  /** The layout it is stored in: `linear` [out, in] (transposed on load), `conv` [D, C, P, P] (permuted); absent: as is. */
  layout?: "linear" | "conv";
}

/** The encoder's parameters outside its blocks: vlmc name under `encoder.` -> Hugging Face name under `vision_model.`. */
export const HF_VISION_TOP: Readonly<Record<string, HfVisionSource>> = {
  ...affine<HfVisionSource>("patch_embed", "embeddings.patch_embedding", { layout: "conv" }),
  "patch_embed.cls": { tensor: "embeddings.class_embedding" },
  "pos_embed.weight": { tensor: "embeddings.position_embedding.weight" },
  ...affine("pre_norm", "pre_layrnorm"),
  ...affine("norm", "post_layernorm"),
};

/** An nn.Linear's weight, [out, in], and bias. */
const linear = (name: string, hf: string) => affine<HfVisionSource>(name, hf, { layout: "linear" });

/** One block's parameters: vlmc name under `blocks.{i}.` -> Hugging Face name under `encoder.layers.{i}.`. */
export const HF_VISION_BLOCK: Readonly<Record<string, HfVisionSource>> = {
  ...affine("norm1", "layer_norm1"),
  ...linear("attn.q", "self_attn.q_proj"),
  ...linear("attn.k", "self_attn.k_proj"),
  ...linear("attn.v", "self_attn.v_proj"),
  ...linear("attn.o", "self_attn.out_proj"),
  ...affine("norm2", "layer_norm2"),
  ...linear("mlp.fc1", "mlp.fc1"),
  ...linear("mlp.fc2", "mlp.fc2"),
};

/**
 * The patch embedding's Conv2d [D, C, P, P] as vlmc's [P*P*C, D] (the permutation above). With
 * the spec's patch side the file's must be exactly [D, C, patch, patch]; without it the file's
 * own side is taken, and a shape that no side fits cannot be written out.
 */
function conv(patchSide: number | undefined): HfTransform {
  return {
    key: "conv",
    fileShape(shape, file) {
      const [rows, d] = shape as [number, number];
      const patch = patchSide ?? (file && file.shape.length === 4 ? file.shape[3] : undefined);
      const channels = patch && rows % (patch * patch) === 0 ? rows / (patch * patch) : undefined;
      return patch && channels ? [d, channels, patch, patch] : null;
    },
    describe: (want, shape) => (want ? formatShape(want) : `[${shape[1]}, C, P, P] with C x P x P = ${shape[0]}`),
    layout: " ([out, channels, patch, patch])",
    read(data, fileShape) {
      // vlmc[(py*P + px)*C + c, d] = hf[d, c, py, px]
      const [d, ch, p] = fileShape as [number, number, number, number];
      const out = new Float32Array(data.length);
      for (let o = 0; o < d; o++)
        for (let c = 0; c < ch; c++)
          for (let y = 0; y < p; y++) for (let x = 0; x < p; x++) out[((y * p + x) * ch + c) * d + o] = data[((o * ch + c) * p + y) * p + x]!;
      return out;
    },
  };
}

/** CLIP's and SigLIP's names, layouts and words for the shared plan and loader (runtime/hf-mapping.ts). */
const VISION: HfMapping<HfVisionSource, { patch?: number }> = {
  checkpoint: "CLIP or SigLIP vision",
  family: "vision",
  prefix: "vision_model.",
  module: "encoder.",
  top: HF_VISION_TOP,
  block: HF_VISION_BLOCK,
  layers: "encoder.layers",
  marker: /^embeddings\.patch_embedding\.weight$/,
  markerText: "`vision_model.embeddings.patch_embedding.weight`",
  // The position-id buffer and SigLIP's pooling head hold no parameter of the encoder.
  ignore: (bare) => /^(embeddings\.position_ids|head\..+)$/.test(bare),
  // text_model.*, visual_projection, logit_scale, ...: the rest of a CLIPModel.
  within: true,
  moreLayers: "(fewer blocks, or no final norm, than the checkpoint?)",
  transform: (s, options) => (s.layout === "linear" ? TRANSPOSED : s.layout === "conv" ? conv(options.patch) : AS_STORED),
};

const vision = hfFamily(VISION);

/** Where the vlmc parameter `param` (`encoder.blocks.0.attn.q.weight`) comes from, or null when a vision checkpoint has no counterpart. */
export const hfVisionSource = vision.source;

/** The vlmc parameter a Hugging Face tensor holds (`vision_model.encoder.layers.0.mlp.fc1.weight` -> `encoder.blocks.0.mlp.fc1.weight`), prefix or not. */
export function hfVisionParam(tensor: string): string | null {
  return vision.params(tensor)[0] ?? null;
}

/** Whether a header is a Hugging Face CLIP-vision or SigLIP checkpoint's: it names the patch embedding's conv. */
export const isHfVisionHeader = vision.isHeader;

/** The patch side of an encoder's `patch_embed` layer (IR layers or check-time layer nodes alike), when it has one. */
export function patchOf(layers: readonly { kind: string; attrs?: Record<string, unknown>; args?: Record<string, unknown> }[]): number | undefined {
  const l = layers.find((x) => x.kind === "patch_embed");
  const p = (l?.attrs ?? l?.args)?.patch;
  return typeof p === "number" ? p : undefined;
}

// ---------------------------------------------------------------------------------------------
// The plan and loading, by the shared machinery

export type HfVisionLoadStep = HfStep<HfVisionSource>;
export type HfVisionPlan = HfMappedPlan<HfVisionSource>;
export type HfVisionLoadResult = HfMappedLoadResult;

/**
 * The load plan of a Hugging Face vision file for an encoder's parameters (`expected`, named as
 * in the IR, `encoder.` prefix), from the header alone; null when the header is not a vision
 * checkpoint's (then the file is read by vlmc's own names). `patch` is the spec's patch side:
 * with it the conv weight must be exactly [D, C, patch, patch]. Every problem is collected:
 * missing tensors, wrong shapes, non-float dtypes, a tensor given with and without
 * `vision_model.`, parameters a vision checkpoint cannot hold (errors), and vision tensors the
 * spec has no parameter for (warnings, not loaded: more layers in the checkpoint, a
 * `final_norm: false` spec). A whole CLIPModel's text side is ignored. `param` in a problem is
 * the vlmc parameter, `tensor` the file's name; messages name both.
 */
export const hfVisionPlan = vision.plan;

/**
 * Reads the encoder's parameters `expected` from a Hugging Face vision file, all or nothing: the
 * header is validated first (`hfVisionPlan`), then only the tensors needed are read and put in
 * vlmc's layouts. A file that is not a vision checkpoint is an error too.
 */
export const loadHfVisionValues = vision.loadValues;

/**
 * Loads a Hugging Face vision file into a model's encoder, checking the conv weight against the
 * spec's patch side: every problem is collected before any variable is touched, so on
 * `ok: false` the model is exactly as it was.
 */
export function loadHfVision(model: Model, path: string): HfVisionLoadResult {
  const patch = patchOf(model.ir.modules.encoder?.layers ?? []);
  return vision.load(model, path, patch ? { patch } : {});
}

// ---------------------------------------------------------------------------------------------
// config.json and preprocessor_config.json -> the preset's settings

export type HfVisionFamily = "clip" | "siglip";

/** The fields of a CLIPVisionConfig / SiglipVisionConfig that matter here. */
export interface HfVisionConfig {
  model_type?: string;
  hidden_size?: number;
  intermediate_size?: number;
  num_hidden_layers?: number;
  num_attention_heads?: number;
  num_channels?: number;
  image_size?: number;
  patch_size?: number;
  hidden_act?: string;
  layer_norm_eps?: number;
}

/** The fields of a CLIPImageProcessor / SiglipImageProcessor config that matter here. */
export interface HfImageProcessorConfig {
  image_processor_type?: string;
  do_resize?: boolean;
  size?: number | { shortest_edge?: number; height?: number; width?: number };
  do_center_crop?: boolean;
  crop_size?: number | { height?: number; width?: number };
  do_rescale?: boolean;
  rescale_factor?: number;
  do_normalize?: boolean;
  image_mean?: number[] | number;
  image_std?: number[] | number;
}

/**
 * Hugging Face's class defaults (CLIPVisionConfig, SiglipVisionConfig): a config.json leaves
 * out what equals them (a SigLIP CLIPConfig's `vision_config` may be `{}` but its model_type).
 */
export const HF_VISION_DEFAULTS: Readonly<Record<HfVisionFamily, Required<Omit<HfVisionConfig, "model_type">>>> = {
  clip: { hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12, num_channels: 3, image_size: 224, patch_size: 32, hidden_act: "quick_gelu", layer_norm_eps: 1e-5 },
  siglip: { hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12, num_channels: 3, image_size: 224, patch_size: 16, hidden_act: "gelu_pytorch_tanh", layer_norm_eps: 1e-6 },
};

/** Hugging Face's activation names -> the presets' `activation`. */
export const HF_VISION_ACTIVATIONS: Readonly<Record<string, string>> = {
  quick_gelu: "quick_gelu",
  gelu: "gelu",
  gelu_pytorch_tanh: "gelu_tanh",
  gelu_new: "gelu_tanh",
  gelu_fast: "gelu_tanh",
  relu: "relu",
  silu: "silu",
};

/** What each preset setting is read from, for messages (`hidden_size` in config.json). */
export const HF_VISION_ORIGINS: Readonly<Record<string, string>> = {
  image: "`image_size` and `num_channels` in config.json",
  patch: "`patch_size` in config.json",
  dim: "`hidden_size` in config.json",
  heads: "`num_attention_heads` in config.json",
  blocks: "`num_hidden_layers` in config.json",
  mlp: "`intermediate_size` in config.json",
  activation: "`hidden_act` in config.json",
  norm_eps: "`layer_norm_eps` in config.json",
  cls: "the model type in config.json (CLIP has a CLS token, SigLIP none)",
  pre_norm: "the model type in config.json (CLIP's `pre_layrnorm`)",
  patch_bias: "the model type in config.json (SigLIP's patch embedding has a bias, CLIP's none)",
  qkv_bias: "the model type in config.json",
  attention_scale: "the model type in config.json (head_dim^-0.5)",
  position: "the model type in config.json",
  final_norm: "the model type in config.json (`post_layernorm`)",
  normalize: "`image_mean` and `image_std` in preprocessor_config.json",
  resize: "`do_center_crop` in preprocessor_config.json",
};

const VISION_TYPES: Readonly<Record<string, HfVisionFamily>> = { clip_vision_model: "clip", siglip_vision_model: "siglip" };
const WHOLE_TYPES: Readonly<Record<string, HfVisionFamily>> = { clip: "clip", siglip: "siglip" };

/**
 * The vision config of a config.json: a CLIPVisionConfig / SiglipVisionConfig, or a whole
 * CLIPConfig / SiglipConfig's `vision_config`, with the family; a problem when it is neither.
 */
export function hfVisionConfigOf(json: unknown): { family: HfVisionFamily; config: HfVisionConfig } | { problem: string } {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return { problem: "config.json is not a JSON object" };
  const top = json as Record<string, unknown>;
  const type = typeof top.model_type === "string" ? top.model_type : undefined;
  if (type && VISION_TYPES[type]) return { family: VISION_TYPES[type]!, config: top as HfVisionConfig };
  if (type && WHOLE_TYPES[type]) {
    const v = top.vision_config ?? {};
    if (typeof v !== "object" || v === null || Array.isArray(v)) return { problem: "`vision_config` is not a JSON object" };
    return { family: WHOLE_TYPES[type]!, config: v as HfVisionConfig };
  }
  return { problem: `\`model_type\` is ${JSON.stringify(type ?? null)}; a vision checkpoint here is ${[...Object.keys(VISION_TYPES), ...Object.keys(WHOLE_TYPES)].map((t) => `"${t}"`).join(", ")}` };
}

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];
const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];
/** The processors' own defaults for the statistics (OPENAI_CLIP_MEAN / IMAGENET_STANDARD_MEAN in transformers). */
const PROCESSOR_STATS: Readonly<Record<HfVisionFamily, { mean: number[]; std: number[] }>> = {
  clip: { mean: CLIP_MEAN, std: CLIP_STD },
  siglip: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
};

const sameList = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]!) <= 1e-9);

/** `normalize` and `resize` from a preprocessor config, or problems. */
export function hfPixelSettings(pre: HfImageProcessorConfig, family: HfVisionFamily, image: number, channels: number): { settings: Record<string, Typed>; problems: string[] } {
  const problems: string[] = [];
  const settings: Record<string, Typed> = {};
  if (pre.do_rescale !== false && pre.rescale_factor !== undefined && Math.abs(pre.rescale_factor - 1 / 255) > 1e-12) problems.push(`\`rescale_factor\` ${pre.rescale_factor} is not 1/255 (vlmc reads 8-bit pixels as v / 255)`);
  if (pre.do_rescale === false) problems.push("`do_rescale: false` (pixels not divided by 255) is not supported");
  if (pre.do_normalize === false) settings.normalize = { call: "unit", args: {} };
  else {
    const list = (v: number[] | number | undefined, d: number[]) => (v === undefined ? d : typeof v === "number" ? Array<number>(channels).fill(v) : v);
    const mean = list(pre.image_mean, PROCESSOR_STATS[family].mean);
    const std = list(pre.image_std, PROCESSOR_STATS[family].std);
    if (!Array.isArray(mean) || !Array.isArray(std) || ![...mean, ...std].every((x) => typeof x === "number" && Number.isFinite(x))) problems.push("`image_mean` and `image_std` must be lists of numbers");
    else if (mean.length !== channels || std.length !== channels) problems.push(`\`image_mean\` and \`image_std\` have ${mean.length} and ${std.length} values for ${channels} channels`);
    else if (std.some((s) => s <= 0)) problems.push("every `image_std` must be greater than 0");
    else if (sameList(mean, CLIP_MEAN) && sameList(std, CLIP_STD)) settings.normalize = { call: "clip", args: {} };
    else if (sameList(mean, IMAGENET_MEAN) && sameList(std, IMAGENET_STD)) settings.normalize = { call: "imagenet", args: {} };
    else settings.normalize = { call: "stats", args: { mean: [...mean], std: [...std] } };
  }
  // CLIP's processor scales the shortest edge then cuts the centre: vlmc's `crop`. SigLIP's
  // resizes straight to the size: `stretch`. The final size must be the model's.
  const crop = pre.do_center_crop ?? family === "clip";
  const side = (s: HfImageProcessorConfig["size"] | HfImageProcessorConfig["crop_size"], what: string) => {
    if (s === undefined) return;
    const hw = typeof s === "number" ? [s, s] : "shortest_edge" in s && s.shortest_edge !== undefined ? null : [s.height, s.width];
    if (hw && (hw[0] !== image || hw[1] !== image)) problems.push(`\`${what}\` is ${hw[0]} x ${hw[1]}, but the model's \`image_size\` is ${image}`);
  };
  if (crop) side(pre.crop_size, "crop_size");
  else side(pre.size, "size");
  if (pre.do_resize !== false) settings.resize = crop ? "crop" : "stretch";
  return { settings, problems };
}

/**
 * The `vit` / `siglip` preset's settings for a checkpoint's config.json (parsed) and, when the
 * folder has one, its preprocessor_config.json: image, patch, dim, heads, blocks, mlp,
 * activation, norm_eps from the config (Hugging Face's class defaults for what it leaves out),
 * cls, pre_norm, patch_bias, qkv_bias, attention_scale, position, final_norm from the family,
 * normalize and resize from the preprocessor. `problems` lists what vlmc cannot express;
 * settings are null then.
 */
export function hfVisionSettings(configJson: unknown, preprocessor?: unknown): { family: HfVisionFamily | null; settings: Record<string, Typed> | null; problems: string[] } {
  const of = hfVisionConfigOf(configJson);
  if ("problem" in of) return { family: null, settings: null, problems: [of.problem] };
  const { family } = of;
  const c = { ...HF_VISION_DEFAULTS[family], ...of.config };
  const problems: string[] = [];
  for (const k of ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_channels", "image_size", "patch_size"] as const) {
    const v = c[k];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) problems.push(`\`${k}\` must be a whole number of at least 1 (found ${JSON.stringify(v)})`);
  }
  if (typeof c.layer_norm_eps !== "number" || !(c.layer_norm_eps > 0 && c.layer_norm_eps < 1)) problems.push(`\`layer_norm_eps\` must be a number in (0, 1) (found ${JSON.stringify(c.layer_norm_eps)})`);
  const activation = HF_VISION_ACTIVATIONS[c.hidden_act];
  if (!activation) problems.push(`\`hidden_act\` ${JSON.stringify(c.hidden_act)} has no counterpart in the preset (it has ${Object.keys(HF_VISION_ACTIVATIONS).join(", ")})`);
  if (!problems.length && c.image_size % c.patch_size !== 0) problems.push(`\`patch_size\` ${c.patch_size} does not divide \`image_size\` ${c.image_size}`);
  if (!problems.length && c.hidden_size % c.num_attention_heads !== 0) problems.push(`\`num_attention_heads\` ${c.num_attention_heads} does not divide \`hidden_size\` ${c.hidden_size}`);
  let pixels: Record<string, Typed> = {};
  if (preprocessor !== undefined) {
    if (typeof preprocessor !== "object" || preprocessor === null || Array.isArray(preprocessor)) problems.push("preprocessor_config.json is not a JSON object");
    else if (!problems.length) {
      const p = hfPixelSettings(preprocessor as HfImageProcessorConfig, family, c.image_size, c.num_channels);
      problems.push(...p.problems.map((m) => `preprocessor_config.json: ${m}`));
      pixels = p.settings;
    }
  }
  if (problems.length) return { family, settings: null, problems };
  const clip = family === "clip";
  return {
    family,
    problems,
    settings: {
      image: [c.image_size, c.image_size, c.num_channels],
      patch: c.patch_size,
      dim: c.hidden_size,
      heads: c.num_attention_heads,
      blocks: c.num_hidden_layers,
      mlp: c.intermediate_size,
      activation: activation!,
      norm_eps: c.layer_norm_eps,
      cls: clip,
      pre_norm: clip,
      patch_bias: !clip,
      qkv_bias: true,
      attention_scale: "head",
      position: "learned",
      final_norm: true,
      ...pixels,
    },
  };
}
