// Element-wise activations: the shape passes through unchanged.
import { oneOf } from "../resolve/types.js";
import type { LayerKind, ShapeContext } from "./kind.js";

const same = (ctx: ShapeContext) => ({ ...ctx.input });
const elementwise = (cost: number) => (_: unknown, input: number[]) => cost * input.reduce((a, b) => a * b, 1);

export const gelu: LayerKind = {
  name: "gelu",
  doc: "Gaussian error linear unit. `approximate: erf` is the exact form (PyTorch's nn.GELU()); `tanh` is GPT-2's gelu_new.",
  args: [{ name: "approximate", type: oneOf("erf", "tanh"), default: "erf", doc: "`erf` (exact) or `tanh` (GPT-2)" }],
  shape: same,
  flops: elementwise(8),
};

export const silu: LayerKind = {
  name: "silu",
  doc: "x * sigmoid(x) (also called swish).",
  args: [],
  shape: same,
  flops: elementwise(4),
};

export const relu: LayerKind = {
  name: "relu",
  doc: "max(x, 0).",
  args: [],
  shape: same,
  flops: elementwise(1),
};
