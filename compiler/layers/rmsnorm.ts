// rmsnorm(eps): x / rms(x) * gain (Llama).
import { float } from "../resolve/types.js";
import { expectSequence, type LayerKind } from "./kind.js";
import { rmsNorm } from "./ops.js";

export const rmsnorm: LayerKind = {
  name: "rmsnorm",
  doc: "Root-mean-square normalisation over the last dim with a learned gain (Llama).",
  args: [{ name: "eps", type: float(0, 1, { minExclusive: true }), default: 1e-6, doc: "added to the mean square" }],
  shape(ctx) {
    return expectSequence(ctx, "`rmsnorm`") === null ? null : { ...ctx.input };
  },
  params(_, input) {
    return [{ name: "weight", shape: [input[input.length - 1] as number], init: { kind: "ones" }, decay: false }];
  },
  flops: (_, input) => 5 * input.reduce((a, b) => a * b, 1),
  lower: (ctx, x) => rmsNorm(ctx.tf, x, ctx.p("weight"), ctx.attrs.eps as number),
  emitTs: (ctx, x) => ctx.let(ctx.name, `${ctx.helper("rmsNorm")}(${x}, ${ctx.p("weight")}, ${String(ctx.attrs.eps)})`, ctx.output),
};
