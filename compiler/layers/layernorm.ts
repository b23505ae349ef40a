// layernorm(eps): normalise over the last dim, then a learned gain and bias.
import { float } from "../resolve/types.js";
import { expectSequence, type LayerKind } from "./kind.js";
import { layerNorm } from "./ops.js";

export const layernorm: LayerKind = {
  name: "layernorm",
  doc: "Layer normalisation over the last dim with a learned gain (ones) and bias (zeros).",
  args: [{ name: "eps", type: float(0, 1, { minExclusive: true }), default: 1e-5, doc: "added to the variance" }],
  shape(ctx) {
    return expectSequence(ctx, "`layernorm`") === null ? null : { ...ctx.input };
  },
  params(_, input) {
    const d = input[input.length - 1] as number;
    return [
      { name: "weight", shape: [d], init: { kind: "ones" }, decay: false },
      { name: "bias", shape: [d], init: { kind: "zeros" }, decay: false },
    ];
  },
  flops: (_, input) => 8 * input.reduce((a, b) => a * b, 1),
  lower: (ctx, x) => layerNorm(ctx.tf, x, ctx.p("weight"), ctx.p("bias"), ctx.attrs.eps as number),
  emitTs: (ctx, x) => ctx.let(ctx.name, `${ctx.helper("layerNorm")}(${x}, ${ctx.p("weight")}, ${ctx.p("bias")}, ${String(ctx.attrs.eps)})`, ctx.output),
};
