// linear(out, bias): y = x W + b over the last dim. W is stored [in, out], so the forward
// pass is a plain 2-D matmul (the fast path of tfjs's wasm backend).
import { bool, int } from "../resolve/types.js";
import { initArg, weightInit, XAVIER } from "./init.js";
import { expectSequence, type LayerKind } from "./kind.js";
import { linear as linearOp } from "./ops.js";

export const linear: LayerKind = {
  name: "linear",
  doc: "A fully connected layer over the last dim: [B, N, in] -> [B, N, out].",
  args: [
    { name: "out", type: int(), doc: "output width" },
    { name: "bias", type: bool, default: true, doc: "add a learned bias" },
    { name: "in", type: int(0), default: 0, doc: "input width: derived from the input; checked if written" },
    initArg(XAVIER, "`weight` (the bias stays zero)"),
  ],
  shape(ctx) {
    const d = expectSequence(ctx, "`linear`");
    if (d === null) return null;
    const written = ctx.args.in as number;
    if (written && written !== d) {
      return ctx.report(ctx.first ? "E0304" : "E0308", `\`linear(in: ${written})\` receives width ${d}`, {
        at: ctx.argSpan("in"),
        label: `expects ${written}`,
        related: [{ span: ctx.input.origin, label: `${ctx.first ? "the encoder outputs" : "the input has"} width ${d}` }],
        help: [ctx.first ? "leave `in` out (it is derived), or write `in: encoder.dim`" : "leave `in` out: it is derived from the input"],
      });
    }
    ctx.node.args.in = d;
    const s = ctx.input.shape;
    return { shape: [s[0]!, s[1]!, ctx.args.out as number], origin: ctx.argSpan("out"), ...(ctx.input.tokens ? { tokens: ctx.input.tokens } : {}), ...(ctx.input.cls ? { cls: true } : {}) };
  },
  params(args, input) {
    const inW = input[input.length - 1] as number;
    const out = args.out as number;
    return [
      { name: "weight", shape: [inW, out], init: weightInit(args.init), decay: true },
      ...(args.bias ? [{ name: "bias", shape: [out], init: { kind: "zeros" as const }, decay: false }] : []),
    ];
  },
  flops: (args, input) => 2 * (input[0]! * input[1]!) * input[2]! * (args.out as number),
  // x [B, N, in] -> [B, N, out]
  lower: (ctx, x) => linearOp(ctx.tf, x, ctx.p("weight"), ctx.has("bias") ? ctx.p("bias") : undefined),
  emitTs: (ctx, x) => ctx.let(ctx.name, `${ctx.helper("linear")}(${x}, ${ctx.p("weight")}${ctx.has("bias") ? `, ${ctx.p("bias")}` : ""})`, ctx.output),
};
