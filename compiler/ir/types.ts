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

export interface IrTokenizer {
  kind: "chars";
  alphabet: string;
  specials: string[];
  size: number;
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
  modules: {
    encoder?: IrModule;
    projector?: IrModule;
    decoder?: IrModule;
  };
  train: IrTrain | null;
  span?: IrSpan;
}

export const IR_MODULES = ["encoder", "projector", "decoder"] as const;
