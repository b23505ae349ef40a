// dropout(p): zeroes a fraction p of activations while training (scaled by 1/(1-p)); identity in eval.
import { float } from "../resolve/types.js";
import type { LayerKind } from "./kind.js";

export const dropout: LayerKind = {
  name: "dropout",
  doc: "Randomly zeroes a fraction `p` of activations while training; does nothing in evaluation.",
  args: [{ name: "p", type: float(0, 1, { maxExclusive: true }), doc: "drop probability, in [0, 1)" }],
  shape: (ctx) => ({ ...ctx.input }),
  flops: (_, input) => input.reduce((a, b) => a * b, 1),
  lower: (ctx, x) => ctx.dropout(x, ctx.attrs.p as number),
  emitTs(ctx, x) {
    ctx.note("nothing to do at inference");
    return x;
  },
};
