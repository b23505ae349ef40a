// The IR: a plain JSON document of one fully resolved model. Versioned, no timestamps, source
// positions only under keys named `span`, file paths relative to the document's own folder.
// schemas/ir.schema.json is its JSON Schema; keep the two in step.

export const IR_VERSION = 1;

export type IrDim = number | string;
export type IrShape = IrDim[];

export interface IrSpan {
  file: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
}

export type IrInit =
  | { kind: "zeros" }
  | { kind: "ones" }
  | { kind: "normal"; std: number }
  | { kind: "xavier_uniform" }
  | { kind: "uniform"; bound: number };

export interface IrParam {
  /** Full, stable name: `encoder.blocks.0.attn.q.weight`. */
  name: string;
  shape: number[];
  init: IrInit;
  /** Weight decay applies to it. */
  decay: boolean;
}

export type IrValue = number | string | boolean | IrValue[] | { [k: string]: IrValue };

export interface IrLayer {
  kind: string;
  /** Path segment under the parent (may be empty for transparent groups). */
  name: string;
  /** Full dotted path, e.g. `encoder.blocks.0.attn`. */
  path: string;
  /** Every argument, defaults filled in. */
  attrs: Record<string, IrValue>;
  input: IrShape;
  output: IrShape;
  params: IrParam[];
  children?: IrLayer[];
  span?: IrSpan;
}

/**
 * How the encoder's images become its input: each image is brought to the input's size under
 * `resize`, then every value v (0..255) of channel c becomes (v / 255 - mean[c]) / std[c].
 * `normalize` names where mean and std come from (`unit`, `imagenet`, `clip` or `stats`).
 */
export interface IrPixels {
  normalize: string;
  mean: number[];
  std: number[];
  resize: "stretch" | "crop" | "pad";
}

export interface IrModule {
  preset: string | null;
  /** Pretrained weights, relative to the IR document, or null. */
  weights: string | null;
  input: IrShape;
  output: IrShape;
  layers: IrLayer[];
  /** The encoder only; absent (documents from before it existed): `unit`, `stretch`. Not part of the hash. */
  pixels?: IrPixels;
  span?: IrSpan;
}

/** The tokenizer (compiler/resolve/tokenizer.ts). `specials`: the roles it has, of `pad`, `bos`, `eos`, `unk`. */
export type IrTokenizer = IrCharsTokenizer | IrHfTokenizer | IrBpeTokenizer;

export interface IrCharsTokenizer {
  kind: "chars";
  alphabet: string;
  specials: string[];
  size: number;
  span?: IrSpan;
}

/** A Hugging Face tokenizer.json (byte-level BPE). Its `file` is not hashed; its `sha256` is. */
export interface IrHfTokenizer {
  kind: "hf";
  /** Relative to the IR document. */
  file: string;
  /** sha256 of the file's bytes: `sha256:` and 64 hex digits. */
  sha256: string;
  specials: string[];
  /** Each role's token in the file, and its id. */
  special_tokens: Record<string, { token: string; id: number }>;
  /** The file's highest id + 1. */
  size: number;
  /** Only `chars` has one (declared so that reading `tokenizer.alphabet` of any tokenizer type-checks). */
  alphabet?: never;
  span?: IrSpan;
}

/** A byte-level BPE trained on `train.data` when a run starts; ids: specials, 256 bytes, merges. */
export interface IrBpeTokenizer {
  kind: "bpe";
  specials: string[];
  /** A pair is merged only when it occurs this often. */
  min_frequency: number;
  /** What it is trained on: the spec's `train.data` (its training side). */
  trained_on: "train.data";
  /** The declared `vocab`. */
  size: number;
  alphabet?: never;
  span?: IrSpan;
}

/**
 * The chat template (the model's `chat` section): how instruction data is written out for the
 * decoder, `user` question `separator` `assistant` answer `separator` ... (runtime/chat.ts). Not
 * part of the hash: it shapes no weight.
 */
export interface IrChat {
  user: string;
  assistant: string;
  separator: string;
  /** The image placeholder in the data, removed from the text. */
  image: string;
  span?: IrSpan;
}

export interface IrCall {
  kind: string;
  [arg: string]: IrValue;
}

export interface IrStage {
  name: string;
  train: string[];
  frozen: string[];
  optimizer: IrCall;
  schedule: IrCall;
  steps: number;
  epochs: number;
  batch: number;
  accumulate: number;
  clip: number;
  eval_every: number;
  checkpoint_every: number;
  keep: number;
  /** Learning rates of single modules, replacing the optimizer's `lr` for them (absent or {}: none). */
  module_lr?: Record<string, number>;
  /** Early stopping: evaluations in a row without a new best validation loss (0 or absent: off). */
  patience?: number;
  data: IrCall;
  span?: IrSpan;
}

export interface IrTrain {
  data: IrCall;
  batch: number;
  seed: number;
  split: number;
  stages: IrStage[];
  span?: IrSpan;
}

export interface Ir {
  vlmc_ir: typeof IR_VERSION;
  model: string;
  /** sha256 of the architecture (tokenizer + modules without spans): names weights files. */
  hash: string;
  tokenizer: IrTokenizer | null;
  /** The chat template; absent: the model has none (documents from before it existed too). */
  chat?: IrChat;
  modules: {
    encoder?: IrModule;
    projector?: IrModule;
    decoder?: IrModule;
  };
  train: IrTrain | null;
  span?: IrSpan;
}

export const IR_MODULES = ["encoder", "projector", "decoder"] as const;
