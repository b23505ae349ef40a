// What a layer kind's `emitTs` (beside its tfjs `lower` in compiler/layers/) gets to write its
// part of the forward pass of `vlmc compile --emit ts` (compiler/emit/ts.ts). A kind returns code
// as TypeScript expressions over the names this context hands out; the emitter turns each `let`
// into one statement with its shape comment, so the module reads layer by layer, nanoGPT style:
//
//   const ln_1 = layerNorm(x, w["decoder.blocks.0.ln_1.weight"], w["decoder.blocks.0.ln_1.bias"], 0.00001); // [B, 9+T, 64]
//
// Nothing here imports ts-morph or tfjs: the layer units stay cheap to load for `vlmc check`.
import type { IrDim, IrShape } from "../ir/types.js";

/** Tensor helpers the generated module can include (compiler/emit/ts-helpers.ts), each at most once. */
export type TsHelperName =
  | "linear"
  | "layerNorm"
  | "rmsNorm"
  | "gelu"
  | "geluTanh"
  | "silu"
  | "splitHeads"
  | "mergeHeads"
  | "repeatKv"
  | "causalMask"
  | "ropeTable"
  | "rope"
  | "sinusoids";

export interface TsEmitContext {
  /** The layer's attributes as recorded in the IR (every default filled in). */
  attrs: Record<string, unknown>;
  /** The layer's input and output shapes from the IR (symbols `B`, `T`, `9+T`). */
  input: IrShape;
  output: IrShape;
  /** The name hint for the layer's output (its IR name when that is an identifier). */
  name: string;
  /** An expression for the layer's parameter `name` (relative: `weight`, `q.weight`). */
  p(name: string): string;
  has(name: string): boolean;
  /** A dim as code: `64` -> `64`, `9+T` -> `9 + T`. */
  dim(d: IrDim): string;
  /** A shape as a code array: `[B, 9 + T, 64]`. */
  shape(s: IrShape): string;
  /** Writes `const NAME = expr; // [shape]` with a fresh NAME made from `hint`, and returns NAME. */
  let(hint: string, expr: string, shape: IrShape): string;
  /** A comment line in the forward pass (what a layer does not do at inference, say). */
  note(text: string): void;
  /** Includes a helper function in the module (once) and returns its name. */
  helper(name: TsHelperName): string;
  /** A value made once per forward pass and shared (masks, tables): declared at its first use. */
  constant(key: string, hint: string, expr: string, shape: IrShape): string;
  /** Writes the layer's body (residual, sequence) on `x`; returns the name of its output. */
  body(x: string): string;
  /** The name of the visual tokens joined in front of the text (decoder `join`), if any. */
  visual?: string;
  /** The token embedding table [vocab, dim] (a tied LM head reuses it). */
  tokenEmbedding(): string;
  /** The input sequence starts with a CLS token. */
  inputCls: boolean;
  /**
   * This layer's configuration has no TypeScript form: reports E0801 at the layer and returns
   * `x`, so that the rest of the model is still looked at.
   */
  unsupported(why: string, x: string): string;
}
