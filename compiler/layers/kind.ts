// What a layer kind is: its arguments, its shape rule, its parameters and its cost, side by
// side in one small unit per kind (see the other files of this folder). The runtime adds the
// tfjs lowering to the same units; nothing here imports tfjs, so `vlmc check` stays fast.
import { diagnostic, type DiagnosticExtras } from "../diagnostics/diagnostic.js";
import type { Code } from "../diagnostics/codes.js";
import type { Diagnostic } from "../diagnostics/diagnostic.js";
import type { Span } from "../source.js";
import type { ArgSpec, Typed } from "../resolve/types.js";
import type { Tensor, Tf } from "./ops.js";
import type { TsEmitContext } from "../emit/ts-context.js";

/** A dimension: a number, or a symbol such as `B` (batch) or `1+T` (1 visual token + text). */
export type Dim = number | string;
export type Shape = Dim[];

/** A tensor flowing between layers, as far as the checker knows it. */
export interface TensorType {
  shape: Shape;
  /** The sequence starts with a CLS token (set by patch_embed with `cls: true`). */
  cls?: boolean;
  /** Where this tensor's last dim was decided (for "found here" labels). */
  origin: Span;
  /** Where its token count (dim 1) was decided: the patch size, the encoder's `output`. */
  tokens?: Span;
}

export type Init =
  | { kind: "zeros" }
  | { kind: "ones" }
  | { kind: "normal"; std: number }
  | { kind: "xavier_uniform" }
  | { kind: "uniform"; bound: number };

export interface ParamSpec {
  /** Relative to the layer, e.g. `weight`, `q.weight`. */
  name: string;
  shape: number[];
  init: Init;
  /** Weight decay applies (not to biases and norm gains by default). */
  decay: boolean;
}

/** A layer of a resolved module: kinds with bodies (`residual`, `sequence`) have children. */
export interface LayerNode {
  kind: string;
  /** Path segment under its parent, e.g. `attn`, `0`. */
  name: string;
  args: Record<string, Typed>;
  /** Where each argument was written (or the setting it came from, for presets). */
  argSpans: Record<string, Span>;
  span: Span;
  children?: LayerNode[];
  // Filled by shape inference:
  input?: TensorType;
  output?: TensorType;
  params?: ParamSpec[];
}

export interface ShapeContext {
  node: LayerNode;
  args: Record<string, Typed>;
  input: TensorType;
  /** The output of the body, for kinds that have one (`residual`). */
  body?: TensorType;
  /** Extra facts a few kinds need: the visual tokens joined in front of the text. */
  visual?: TensorType;
  /** This is the first layer of the projector (its input comes from the encoder). */
  first?: boolean;
  report(code: Code, message: string, extras?: DiagnosticExtras & { at?: Span }): null;
  /** The span of an argument (falls back to the layer's span). */
  argSpan(name: string): Span;
}

/** What a lowering gets besides its input: tfjs, its attributes, its parameters. */
export interface LowerContext {
  tf: Tf;
  /** The layer's attributes as recorded in the IR (every default filled in). */
  attrs: Record<string, unknown>;
  /** The layer's parameter by its name relative to the layer (`weight`, `q.weight`). */
  p(name: string): Tensor;
  has(name: string): boolean;
  training: boolean;
  /** Dropout that is seeded per step and call (identity when not training or p = 0). */
  dropout(x: Tensor, p: number): Tensor;
  /** Runs the layer's body (residual, sequence). */
  body(x: Tensor): Tensor;
  /** The visual tokens joined in front of the text (decoder `join`). */
  visual?: Tensor;
  /** The token embedding table [vocab, dim] (a tied LM head reuses it). */
  tokenEmbedding(): Tensor;
  /** The input sequence starts with a CLS token. */
  inputCls: boolean;
  /**
   * A constant tensor (causal mask, RoPE tables, sinusoids), made once per model and key and
   * reused by every layer and step; the model owns it.
   */
  constant(key: string, make: () => Tensor): Tensor;
  /**
   * Decoding with a key/value cache (runtime/generate.ts): the input's first position (the
   * positions before it are cached) and the most positions the sequence will reach, so that
   * position tables are made once at full length. Absent: the input is the whole sequence.
   */
  cached?: { offset: number; capacity: number };
  /** The attention layer's cached keys and values, in the decoder of a cached forward pass. */
  kv?: KvSlot;
  /** Receives the attention weights [B, H, N, L] (`vlmc generate --explain`). */
  observe?(weights: Tensor): void;
}

/** One attention layer's keys and values of the positions already decoded. */
export interface KvSlot {
  /** [B, kv_heads, offset, head width] each; null before the first call. */
  past: { k: Tensor; v: Tensor } | null;
  /** Keeps the keys and values of every position so far, past and new, for the next call. */
  store(k: Tensor, v: Tensor): void;
}

/** Concrete sizes for cost estimates: every symbol bound to a number. */
export type Sizes = (d: Dim) => number;

export interface LayerKind {
  name: string;
  doc: string;
  args: ArgSpec[];
  /** Takes a `{ ... }` body of layers (residual). */
  body?: boolean;
  /** Only used inside presets and module plumbing; not written by users. */
  internal?: boolean;
  shape(ctx: ShapeContext): TensorType | null;
  params?(args: Record<string, Typed>, input: Shape, output: Shape): ParamSpec[];
  /** Forward FLOPs (multiply-add = 2) for the whole batch. */
  flops?(args: Record<string, Typed>, input: number[], output: number[]): number;
  /** Floats kept from the forward pass for the backward pass (default: the output). */
  saved?(args: Record<string, Typed>, input: number[], output: number[]): number;
  /** The tfjs computation (shape comments on each line). */
  lower?(ctx: LowerContext, x: Tensor): Tensor;
  /** The same computation as TypeScript source for `vlmc compile --emit ts`; returns the output's name. */
  emitTs?(ctx: TsEmitContext, x: string): string;
}

// ---- helpers shared by the kinds ----

export const numel = (s: number[]): number => s.reduce((a, b) => a * b, 1);

export function formatShape(s: Shape): string {
  return `[${s.join(", ")}]`;
}

export function lastDim(t: TensorType): Dim {
  return t.shape[t.shape.length - 1]!;
}

/** A sequence [B, N, D] with a concrete width D, or a report. */
export function expectSequence(ctx: ShapeContext, what: string): number | null {
  const s = ctx.input.shape;
  if (s.length === 4) {
    return ctx.report("E0308", `${what} cannot take an image ${formatShape(s)}`, {
      label: `receives an image ${formatShape(s)}`,
      help: ["turn the image into a sequence of tokens first, e.g. with `patch_embed(patch: 16, dim: 512)`"],
    });
  }
  if (s.length !== 3) {
    return ctx.report("E0308", `${what} needs a sequence [B, N, D], found ${formatShape(s)}`, { label: `receives ${formatShape(s)}` });
  }
  const d = s[2]!;
  if (typeof d !== "number") return ctx.report("E0308", `${what} needs a known width, found ${formatShape(s)}`, {});
  return d;
}

export function makeReporter(diags: Diagnostic[], node: LayerNode) {
  return (code: Code, message: string, extras: DiagnosticExtras & { at?: Span } = {}): null => {
    const { at, ...rest } = extras;
    diags.push(diagnostic(code, at ?? node.span, message, rest));
    return null;
  };
}

/** Divisors of n in [lo, hi], for "heads that divide 512: 1, 2, 4, 8, ..." hints. */
export function divisors(n: number, lo = 1, hi = 64): number[] {
  const out: number[] = [];
  for (let d = lo; d <= Math.min(n, hi); d++) if (n % d === 0) out.push(d);
  return out;
}
