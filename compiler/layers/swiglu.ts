// swiglu(hidden): down(silu(gate(x)) * up(x)), Llama's feed-forward.
import { bool, int } from "../resolve/types.js";
import { initArg, weightInit, XAVIER } from "./init.js";
import { expectSequence, type LayerKind } from "./kind.js";
import { linear } from "./ops.js";

export const swiglu: LayerKind = {
  name: "swiglu",
  doc: "Gated feed-forward (Llama): `down`(silu(`gate`(x)) * `up`(x)).",
  args: [
    { name: "hidden", type: int(), doc: "hidden width" },
    { name: "bias", type: bool, default: false, doc: "biases on the three projections" },
    initArg(XAVIER, "the `gate`, `up` and `down` weights (biases stay zero)"),
  ],
  shape(ctx) {
    return expectSequence(ctx, "`swiglu`") === null ? null : { ...ctx.input };
  },
  params(args, input) {
    const d = input[2] as number;
    const h = args.hidden as number;
    const w = (name: string, shape: number[]) => ({ name: `${name}.weight`, shape, init: weightInit(args.init), decay: true });
    const b = (name: string, n: number) => (args.bias ? [{ name: `${name}.bias`, shape: [n], init: { kind: "zeros" as const }, decay: false }] : []);
    return [w("gate", [d, h]), ...b("gate", h), w("up", [d, h]), ...b("up", h), w("down", [h, d]), ...b("down", d)];
  },
  flops(args, input) {
    const rows = input[0]! * input[1]!;
    const h = args.hidden as number;
    return 6 * rows * input[2]! * h + 6 * rows * h;
  },
  saved(args, input) {
    const rows = input[0]! * input[1]!;
    return rows * (2 * input[2]! + 4 * (args.hidden as number));
  },
  lower(ctx, x) {
    const { tf } = ctx;
    const b = (name: string) => (ctx.has(`${name}.bias`) ? ctx.p(`${name}.bias`) : undefined);
    const gate = linear(tf, x, ctx.p("gate.weight"), b("gate")); // [B, N, hidden]
    const up = linear(tf, x, ctx.p("up.weight"), b("up")); // [B, N, hidden]
    return linear(tf, tf.mul(tf.mul(gate, tf.sigmoid(gate)), up), ctx.p("down.weight"), b("down")); // [B, N, D]
  },
  emitTs(ctx, x) {
    const lin = ctx.helper("linear");
    const b = (name: string) => (ctx.has(`${name}.bias`) ? `, ${ctx.p(`${name}.bias`)}` : "");
    const hidden = [...ctx.input.slice(0, -1), ctx.attrs.hidden as number];
    const gate = ctx.let("gate", `${lin}(${x}, ${ctx.p("gate.weight")}${b("gate")})`, hidden);
    const up = ctx.let("up", `${lin}(${x}, ${ctx.p("up.weight")}${b("up")})`, hidden);
    return ctx.let(ctx.name, `${lin}(tf.mul(tf.mul(${gate}, tf.sigmoid(${gate})), ${up}), ${ctx.p("down.weight")}${b("down")})`, ctx.output);
  },
};
