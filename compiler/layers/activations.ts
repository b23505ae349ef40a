// Element-wise activations: the shape passes through unchanged.
import { oneOf } from "../resolve/types.js";
import type { LayerKind, ShapeContext } from "./kind.js";
import { gelu as geluOp } from "./ops.js";

const same = (ctx: ShapeContext) => ({ ...ctx.input });
const elementwise = (cost: number) => (_: unknown, input: number[]) => cost * input.reduce((a, b) => a * b, 1);

export const gelu: LayerKind = {
  name: "gelu",
  doc: "Gaussian error linear unit. `approximate: erf` is the exact form (PyTorch's nn.GELU()); `tanh` is GPT-2's gelu_new.",
  args: [{ name: "approximate", type: oneOf("erf", "tanh"), default: "erf", doc: "`erf` (exact) or `tanh` (GPT-2)" }],
  shape: same,
  flops: elementwise(8),
  lower: (ctx, x) => geluOp(ctx.tf, x, ctx.attrs.approximate as "erf" | "tanh"),
  emitTs: (ctx, x) => ctx.let(ctx.name, `${ctx.helper(ctx.attrs.approximate === "tanh" ? "geluTanh" : "gelu")}(${x})`, ctx.output),
};

export const silu: LayerKind = {
  name: "silu",
  doc: "x * sigmoid(x) (also called swish).",
  args: [],
  shape: same,
  flops: elementwise(4),
  lower: (ctx, x) => ctx.tf.mul(x, ctx.tf.sigmoid(x)),
  emitTs: (ctx, x) => ctx.let(ctx.name, `${ctx.helper("silu")}(${x})`, ctx.output),
};

// CLIP's activation (Hugging Face's `quick_gelu`): OpenAI trained CLIP with this sigmoid
// approximation of GELU, so its pretrained weights expect it rather than either exact form.
export const quickGelu: LayerKind = {
  name: "quick_gelu",
  doc: "x * sigmoid(1.702 x): the sigmoid approximation of GELU that OpenAI's CLIP uses (Hugging Face's `quick_gelu`).",
  args: [],
  shape: same,
  flops: elementwise(5),
  lower: (ctx, x) => ctx.tf.mul(x, ctx.tf.sigmoid(ctx.tf.mul(x, 1.702))),
  emitTs: (ctx, x) => ctx.let(ctx.name, `tf.mul(${x}, tf.sigmoid(tf.mul(${x}, 1.702)))`, ctx.output),
};

export const relu: LayerKind = {
  name: "relu",
  doc: "max(x, 0).",
  args: [],
  shape: same,
  flops: elementwise(1),
  lower: (ctx, x) => ctx.tf.relu(x),
  emitTs: (ctx, x) => ctx.let(ctx.name, `tf.relu(${x})`, ctx.output),
};
