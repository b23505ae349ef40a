// `vlmc export --format hf`: a trained run's decoder as a Hugging Face GPT-2 checkpoint folder
// (config.json for GPT2LMHeadModel, model.safetensors by Hugging Face's names and layouts, and the
// tokenizer files), so that `transformers` (or vlmc's own GPT-2 import, runtime/hf-gpt2.ts) can
// load it. The tensor mapping is not written a second time: each Hugging Face tensor is rebuilt
// from `hfGpt2Source`, the table the import reads by, so export and import cannot drift apart.
//
// Only a decoder the GPT-2 layout can express is exported: learned positions, LayerNorm, causal
// multi-head attention with q/k/v and output biases (no rotary, no grouped key/value heads), a
// biased GELU MLP, no LM head bias. Everything that does not fit is collected and reported at
// once, naming the layer, before anything is written. The encoder and projector have no place in
// a GPT-2 checkpoint and are left out (the caller says so).
//
// The folder is written whole or not at all: into a temporary sibling, flushed, then renamed over
// the destination (an older export there is replaced).
import type { Ir, IrLayer } from "../../compiler/ir/types.js";
import { hfGpt2Source, type HfGpt2Config } from "../hf-gpt2.js";
import { irParams } from "../model.js";
import { encodeSafetensors, formatShape, type TensorToWrite } from "../safetensors.js";
import type { Tokenizer } from "../tokenizer.js";
import { loadWeights } from "../weights-check.js";
import { writeFolderAtomic } from "./folder.js";

/** A run that cannot be exported: one line per problem; `usage` for files that cannot be read (exit 2). */
export class ExportError extends Error {
  constructor(
    message: string,
    readonly problems: string[] = [],
    readonly usage = false,
  ) {
    super(message);
    this.name = "ExportError";
  }
}

/** What `config.json` says, plus what the export had to decide. */
export interface HfGpt2Export {
  config: HfGpt2Config & Record<string, unknown>;
  /** Files written, in the order written. */
  files: string[];
  /** Notes for the user (a character vocabulary has no tokenizer.json equivalent, ...). */
  notes: string[];
}

const tick = (s: string) => `\`${s}\``;

/** Hugging Face's name for the `gpt` preset's activations that GPT-2 has. */
const ACTIVATION: Readonly<Record<string, string>> = { gelu_tanh: "gelu_new", gelu: "gelu" };

/** The decoder's layers, depth-first. */
export function flat(layers: readonly IrLayer[]): IrLayer[] {
  return layers.flatMap((l) => [l, ...flat(l.children ?? [])]);
}

/**
 * The GPT-2 config of an IR's decoder, or an ExportError listing everything that does not fit
 * the GPT-2 layout (each naming its layer).
 */
export function hfGpt2ConfigOf(ir: Ir, tokenizer: Pick<Tokenizer, "bos" | "eos" | "pad">): HfGpt2Config & Record<string, unknown> {
  const dec = ir.modules.decoder;
  if (!dec) throw new ExportError(`the model ${tick(ir.model)} has no decoder: there is nothing to export as GPT-2`);
  const problems: string[] = [];
  const layers = flat(dec.layers);
  const at = (l: IrLayer) => tick(l.path);
  const one = (kind: string): IrLayer | undefined => {
    const found = layers.filter((l) => l.kind === kind);
    if (found.length !== 1) problems.push(found.length === 0 ? `it has no ${kind} layer (GPT-2 has one)` : `it has ${found.length} ${kind} layers (GPT-2 has one)`);
    return found[0];
  };
  if (dec.preset !== "gpt") problems.push(`it is ${dec.preset ? `the ${tick(dec.preset)} preset` : "not a preset"}, not ${tick("gpt")}`);
  const embed = one("token_embed");
  const head = one("lm_head");
  const pos = layers.find((l) => l.kind === "positions");
  if (!pos) problems.push("it has no learned position table (GPT-2's `wpe`)");
  else if (pos.attrs.kind !== "learned") problems.push(`${at(pos)} is ${tick(String(pos.attrs.kind))} positions; GPT-2 has a learned table`);
  const attns = layers.filter((l) => l.kind === "attention");
  const mlps = layers.filter((l) => l.kind === "mlp");
  const norms = layers.filter((l) => l.kind === "layernorm");
  // Layers GPT-2 has no place for: RMSNorm, SwiGLU, anything not in the gpt preset.
  const known = new Set(["token_embed", "join", "positions", "sequence", "residual", "layernorm", "attention", "mlp", "lm_head"]);
  for (const l of layers) if (!known.has(l.kind)) problems.push(`${at(l)} is a ${tick(l.kind)} layer, which GPT-2 does not have${l.kind === "rmsnorm" ? " (it uses LayerNorm)" : l.kind === "swiglu" ? " (its MLP is c_fc, GELU, c_proj)" : ""}`);
  for (const a of attns) {
    if (a.attrs.rope) problems.push(`${at(a)} uses rotary positions (rope); GPT-2 has none`);
    if (a.attrs.kv_heads !== undefined && a.attrs.kv_heads !== a.attrs.heads) problems.push(`${at(a)} has ${a.attrs.kv_heads} key/value heads for ${a.attrs.heads} query heads; GPT-2 has as many of each`);
    if (a.attrs.causal !== true) problems.push(`${at(a)} is not causal`);
    if (a.attrs.qkv_bias !== true) problems.push(`${at(a)} has no query/key/value biases (GPT-2's c_attn has them)`);
    if (a.attrs.out_bias !== true) problems.push(`${at(a)} has no output bias (GPT-2's c_proj has one)`);
    // GPT-2 scales by head_width^-0.5, or by 1 without `scale_attn_weights`.
    if (a.attrs.scale !== "head" && a.attrs.scale !== 1) problems.push(`${at(a)} scales attention scores by ${tick(String(a.attrs.scale))}; GPT-2 scales by head_width^-0.5 or not at all`);
  }
  for (const m of mlps) {
    const act = String(m.attrs.activation);
    if (!ACTIVATION[act]) problems.push(`${at(m)} uses ${tick(act)}; GPT-2's MLP uses gelu or gelu_tanh`);
    if (m.attrs.bias !== true) problems.push(`${at(m)} has no biases (GPT-2's c_fc and c_proj have them)`);
  }
  if (head?.attrs.bias) problems.push(`${at(head)} has a bias (\`head_bias: true\`); GPT-2's LM head has none`);
  const same = (what: string, values: unknown[]) => {
    if (new Set(values.map((v) => JSON.stringify(v))).size > 1) problems.push(`its layers differ in ${what} (${[...new Set(values.map(String))].join(", ")}); GPT-2 has one`);
  };
  same("LayerNorm epsilon", norms.map((n) => n.attrs.eps));
  same("attention heads", attns.map((a) => a.attrs.heads));
  same("attention scale", attns.map((a) => a.attrs.scale));
  same("MLP width", mlps.map((m) => m.attrs.hidden));
  same("MLP activation", mlps.map((m) => m.attrs.activation));
  same("dropout", [...attns, ...mlps].map((l) => l.attrs.dropout));
  if (attns.length !== mlps.length) problems.push(`it has ${attns.length} attention and ${mlps.length} MLP layers; each GPT-2 block has one of each`);
  // Every parameter must have a GPT-2 tensor (this catches layers in unexpected places; after a
  // misfit above, its parameters would only repeat it).
  if (!problems.length) for (const p of irParams(ir)) if (p.name.startsWith("decoder.") && !hfGpt2Source(p.name)) problems.push(`parameter ${tick(p.name)} ${formatShape(p.shape)} has no counterpart in a GPT-2 checkpoint`);
  if (problems.length) throw new ExportError(`the decoder of ${tick(ir.model)} cannot be written as a Hugging Face GPT-2 checkpoint`, problems);

  const dim = Number(embed!.attrs.dim);
  const heads = Number(attns[0]?.attrs.heads ?? 1);
  const hidden = mlps[0] ? Number(mlps[0].attrs.hidden) : 4 * dim;
  const dropout = Number(attns[0]?.attrs.dropout ?? 0);
  const config: HfGpt2Config & Record<string, unknown> = {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: Number(embed!.attrs.vocab),
    n_embd: dim,
    n_layer: attns.length,
    n_head: heads,
    n_positions: Number(pos!.attrs.length),
    n_inner: hidden === 4 * dim ? null : hidden,
    activation_function: ACTIVATION[String(mlps[0]?.attrs.activation ?? "gelu_tanh")]!,
    layer_norm_epsilon: Number(norms[0]?.attrs.eps ?? 1e-5),
    scale_attn_weights: attns[0]?.attrs.scale !== 1,
    tie_word_embeddings: head!.attrs.tied === true,
    embd_pdrop: dropout,
    attn_pdrop: dropout,
    resid_pdrop: dropout,
  };
  if (tokenizer.bos !== null) config.bos_token_id = tokenizer.bos;
  if (tokenizer.eos !== null) config.eos_token_id = tokenizer.eos;
  if (tokenizer.pad !== null) config.pad_token_id = tokenizer.pad;
  return config;
}

/**
 * The Hugging Face tensors of a decoder's parameter values (vlmc names): the inverse of the
 * import's reading, from the same table. c_attn is q, k and v side by side along the last axis;
 * an untied head is stored [V, D] (nn.Linear); a tied head is not stored (Hugging Face ties it).
 */
export function hfGpt2Tensors(values: ReadonlyMap<string, Float32Array>, shapes: ReadonlyMap<string, readonly number[]>, tied: boolean): TensorToWrite[] {
  interface Parts {
    shape: number[];
    parts: (Float32Array | undefined)[];
    third: boolean;
  }
  const out = new Map<string, Parts>();
  for (const [param, data] of values) {
    const s = hfGpt2Source(param);
    if (!s) throw new Error(`internal: ${param} has no GPT-2 tensor`);
    if (param === "decoder.lm_head.weight" && tied) continue;
    const shape = [...shapes.get(param)!];
    if (s.third !== undefined) {
      const e = out.get(s.tensor) ?? { shape: [...shape.slice(0, -1), 3 * shape[shape.length - 1]!], parts: [undefined, undefined, undefined], third: true };
      e.parts[s.third] = data;
      out.set(s.tensor, e);
    } else if (s.transpose) {
      const [r, c] = shape as [number, number];
      const t = new Float32Array(data.length);
      for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = data[i * c + j]!;
      out.set(s.tensor, { shape: [c, r], parts: [t], third: false });
    } else out.set(s.tensor, { shape, parts: [data], third: false });
  }
  const tensors: TensorToWrite[] = [];
  for (const [name, e] of out) {
    let data = e.parts[0]!;
    if (e.third) {
      if (e.parts.some((p) => !p)) throw new Error(`internal: ${name} lacks one of q, k, v`);
      const w = e.shape[e.shape.length - 1]! / 3;
      const rows = e.parts[0]!.length / w;
      data = new Float32Array(rows * 3 * w);
      for (let r = 0; r < rows; r++) for (let k = 0; k < 3; k++) data.set(e.parts[k]!.subarray(r * w, (r + 1) * w), r * 3 * w + k * w);
    }
    // `transformer.` as `GPT2LMHeadModel.save_pretrained` writes it; lm_head sits outside it.
    tensors.push({ name: name === "lm_head.weight" ? name : `transformer.${name}`, dtype: "F32", shape: e.shape, data });
  }
  return tensors;
}

/** The files of a character vocabulary: there is no tokenizer.json equivalent, so vocab.json (token -> id) and a note. */
export function charsTokenizerFiles(tok: Tokenizer): Record<string, string> {
  const vocab: Record<string, number> = {};
  for (let id = 0; id < tok.size; id++) {
    const t = tok.token(id);
    if (t !== null) vocab[t] = id;
  }
  return { "vocab.json": `${JSON.stringify(vocab, null, 2)}\n` };
}

export const CHARS_NOTE =
  "the run's tokenizer is a character vocabulary, which has no Hugging Face tokenizer.json equivalent: vocab.json maps each character (and special token) to its id; encode text one character at a time with it";

/** The run a decoder is exported from: its IR, tokenizer and weights file (`weightsLabel` names it in messages). */
export interface HfExportRun {
  ir: Ir;
  tokenizer: Tokenizer;
  weights: string;
  weightsLabel: string;
}

/**
 * Writes a run's decoder to `out` as a Hugging Face checkpoint folder: the decoder's weights, read
 * all or nothing (ExportError, nothing written, when they do not fit the IR), as the family's
 * tensors (`tensorsOf`), with config.json and the tokenizer's files, whole or not at all. `notes`
 * come after the weights file's own and before those on the tokenizer and on `decoderOnly`, the
 * note for a run that has an encoder or projector the checkpoint has no place for.
 */
export function writeHfDecoderFolder(
  run: HfExportRun,
  out: string,
  config: { tie_word_embeddings?: boolean } & Record<string, unknown>,
  tensorsOf: (values: ReadonlyMap<string, Float32Array>, shapes: ReadonlyMap<string, readonly number[]>, tied: boolean) => TensorToWrite[],
  notes: { before: string[]; decoderOnly: string },
): { files: string[]; notes: string[] } {
  const params = irParams(run.ir).filter((p) => p.name.startsWith("decoder."));
  // Only the decoder's tensors are read; the encoder's and projector's are not exported.
  const loaded = loadWeights(run.weights, params, { nameMap: (n) => (n.startsWith("decoder.") ? n : null), expectHash: run.ir.hash });
  if (!loaded.ok) throw new ExportError(`${run.weightsLabel} does not fit the run's ir.json`, loaded.problems.map((p) => p.message));
  const said = [...loaded.warnings.filter((w) => w.kind === "hash").map((w) => `${run.weightsLabel}: ${w.message}`), ...notes.before];
  const shapes = new Map(params.map((p) => [p.name, p.shape]));
  const tensors = tensorsOf(loaded.values, shapes, config.tie_word_embeddings === true);
  const files = new Map<string, Uint8Array | string>();
  files.set("config.json", `${JSON.stringify(config, null, 2)}\n`);
  files.set("model.safetensors", encodeSafetensors(tensors, { format: "pt" }));
  const tokFiles = run.tokenizer.kind === "chars" ? charsTokenizerFiles(run.tokenizer) : run.tokenizer.files();
  if (run.tokenizer.kind === "chars") said.push(CHARS_NOTE);
  for (const [name, text] of Object.entries(tokFiles)) files.set(name, text);
  if (run.ir.modules.encoder || run.ir.modules.projector) said.push(notes.decoderOnly);
  writeFolderAtomic(out, files);
  return { files: [...files.keys()], notes: said };
}

/**
 * Exports a run's decoder (its IR, tokenizer and weights file) to `out` as a Hugging Face GPT-2
 * checkpoint folder. Throws ExportError (nothing written) when the decoder does not fit GPT-2 or
 * the weights do not fit the IR.
 */
export function exportHfGpt2(run: HfExportRun, out: string): HfGpt2Export {
  const config = hfGpt2ConfigOf(run.ir, run.tokenizer);
  return { config, ...writeHfDecoderFolder(run, out, config, hfGpt2Tensors, { before: [], decoderOnly: "only the decoder is exported: GPT-2 has no place for the image encoder and projector" }) };
}
