// take(which): what an encoder hands on: the CLS token, the patch tokens, their mean, or all.
import { oneOf } from "../resolve/types.js";
import { expectSequence, type LayerKind } from "./kind.js";

export const take: LayerKind = {
  name: "take",
  doc: "Selects the encoder's output tokens: `cls` [B, 1, D], `patches` (all but CLS), `pool` (mean of the patch tokens, [B, 1, D]) or `all`.",
  args: [{ name: "which", type: oneOf("cls", "patches", "pool", "all"), doc: "`cls`, `patches`, `pool` or `all`" }],
  shape(ctx) {
    const d = expectSequence(ctx, "`take`");
    if (d === null) return null;
    const [b, n] = ctx.input.shape as [string, number, number];
    const which = ctx.args.which as string;
    const cls = ctx.input.cls === true;
    if (which === "cls" && !cls) {
      return ctx.report("E0310", "there is no CLS token to take", {
        at: ctx.argSpan("which"),
        label: "`cls` needs a CLS token",
        help: ["add a CLS token (`cls: true`), or output `patches` or `pool`"],
      });
    }
    const tokens = which === "cls" || which === "pool" ? 1 : which === "patches" ? n - (cls ? 1 : 0) : n;
    if (tokens < 1) return ctx.report("E0310", "the encoder outputs no tokens", { at: ctx.argSpan("which") });
    const tokensFrom = which === "cls" || which === "pool" ? ctx.argSpan("which") : ctx.input.tokens;
    return { shape: [b, tokens, d], origin: ctx.input.origin, ...(tokensFrom ? { tokens: tokensFrom } : {}), ...(which === "all" && cls ? { cls: true } : {}) };
  },
  flops: (_, input) => input.reduce((a, b) => a * b, 1),
  saved: () => 0,
  lower(ctx, x) {
    const { tf } = ctx;
    const [b, n, d] = x.shape as [number, number, number];
    const first = ctx.inputCls ? 1 : 0;
    switch (ctx.attrs.which) {
      case "cls":
        return tf.slice(x, [0, 0, 0], [b, 1, d]); // [B, 1, D]
      case "patches":
        return tf.slice(x, [0, first, 0], [b, n - first, d]); // [B, N-1, D]
      case "pool":
        return tf.mean(tf.slice(x, [0, first, 0], [b, n - first, d]), 1, true); // [B, 1, D]
      default:
        return x;
    }
  },
  emitTs(ctx, x) {
    const [b, n, d] = ctx.input.map((s) => ctx.dim(s)) as [string, string, string];
    const first = ctx.inputCls ? 1 : 0;
    const rest = `tf.slice(${x}, [0, ${first}, 0], [${b}, ${first ? `${n} - 1` : n}, ${d}])`; // [B, N-1, D]
    switch (ctx.attrs.which) {
      case "cls":
        return ctx.let(ctx.name, `tf.slice(${x}, [0, 0, 0], [${b}, 1, ${d}])`, ctx.output);
      case "patches":
        if (first) return ctx.let(ctx.name, rest, ctx.output);
        ctx.note("every token is a patch token: nothing to drop");
        return x;
      case "pool":
        return ctx.let(ctx.name, `tf.mean(${rest}, 1, true)`, ctx.output);
      default:
        ctx.note("every token, as it is");
        return x;
    }
  },
};
