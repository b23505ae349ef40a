// mlp(hidden, activation): linear -> activation -> linear (the transformer feed-forward).
import { bool, float, int, oneOf } from "../resolve/types.js";
import { initArg, weightInit, XAVIER } from "./init.js";
import { expectSequence, type LayerKind } from "./kind.js";
import { activation, linear } from "./ops.js";

export const mlp: LayerKind = {
  name: "mlp",
  doc: "Feed-forward block: `fc1` [D, hidden] -> activation -> `fc2` [hidden, out] -> dropout.",
  args: [
    { name: "hidden", type: int(), doc: "hidden width (4 x width in GPT-2 and ViT)" },
    { name: "activation", type: oneOf("gelu", "gelu_tanh", "relu", "silu"), default: "gelu", doc: "`gelu` (exact), `gelu_tanh`, `relu` or `silu`" },
    { name: "out", type: int(0), default: 0, doc: "output width (default: the input width)" },
    { name: "bias", type: bool, default: true, doc: "biases on both layers" },
    { name: "dropout", type: float(0, 1, { maxExclusive: true }), default: 0, doc: "dropout after the second layer" },
    initArg(XAVIER, "the `fc1` and `fc2` weights (biases stay zero)"),
  ],
  shape(ctx) {
    const d = expectSequence(ctx, "`mlp`");
    if (d === null) return null;
    const out = (ctx.args.out as number) || d;
    ctx.node.args.out = out;
    const s = ctx.input.shape;
    return { shape: [s[0]!, s[1]!, out], origin: ctx.args.out === d ? ctx.input.origin : ctx.argSpan("out"), ...(ctx.input.tokens ? { tokens: ctx.input.tokens } : {}), ...(ctx.input.cls ? { cls: true } : {}) };
  },
  params(args, input) {
    const d = input[2] as number;
    const h = args.hidden as number;
    const out = args.out as number;
    return [
      { name: "fc1.weight", shape: [d, h], init: weightInit(args.init), decay: true },
      ...(args.bias ? [{ name: "fc1.bias", shape: [h], init: { kind: "zeros" as const }, decay: false }] : []),
      { name: "fc2.weight", shape: [h, out], init: weightInit(args.init), decay: true },
      ...(args.bias ? [{ name: "fc2.bias", shape: [out], init: { kind: "zeros" as const }, decay: false }] : []),
    ];
  },
  flops(args, input) {
    const rows = input[0]! * input[1]!;
    const h = args.hidden as number;
    return 2 * rows * input[2]! * h + 2 * rows * h * (args.out as number) + 8 * rows * h;
  },
  saved(args, input) {
    const rows = input[0]! * input[1]!;
    return rows * (input[2]! + 2 * (args.hidden as number) + (args.out as number));
  },
  lower(ctx, x) {
    const { tf } = ctx;
    const b = (name: string) => (ctx.has(`${name}.bias`) ? ctx.p(`${name}.bias`) : undefined);
    const h = activation(tf, linear(tf, x, ctx.p("fc1.weight"), b("fc1")), ctx.attrs.activation as string); // [B, N, hidden]
    return ctx.dropout(linear(tf, h, ctx.p("fc2.weight"), b("fc2")), ctx.attrs.dropout as number); // [B, N, out]
  },
  emitTs(ctx, x) {
    const lin = ctx.helper("linear");
    const b = (name: string) => (ctx.has(`${name}.bias`) ? `, ${ctx.p(`${name}.bias`)}` : "");
    const act = ctx.attrs.activation as string;
    const fc1 = `${lin}(${x}, ${ctx.p("fc1.weight")}${b("fc1")})`;
    const hidden = [...ctx.input.slice(0, -1), ctx.attrs.hidden as number];
    const h = ctx.let("h", act === "relu" ? `tf.relu(${fc1})` : `${ctx.helper(act === "gelu" ? "gelu" : act === "gelu_tanh" ? "geluTanh" : "silu")}(${fc1})`, hidden);
    return ctx.let(ctx.name, `${lin}(${h}, ${ctx.p("fc2.weight")}${b("fc2")})`, ctx.output);
  },
};
