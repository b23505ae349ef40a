// lm_head(vocab, tied): [B, N, D] -> logits [B, N, vocab]; with `tied` it reuses the token
// embedding table (transposed) instead of its own weight.
import { bool, int } from "../resolve/types.js";
import { initArg, NORMAL_002, weightInit } from "./init.js";
import { expectSequence, type LayerKind } from "./kind.js";
import { linear } from "./ops.js";

export const lmHead: LayerKind = {
  name: "lm_head",
  doc: "Logits over the vocabulary; `tied` reuses the token embedding table.",
  args: [
    { name: "vocab", type: int(), doc: "vocabulary size" },
    { name: "tied", type: bool, default: false, doc: "share the token embedding's weight" },
    { name: "bias", type: bool, default: false, doc: "a learned bias per token" },
    initArg(NORMAL_002, "`weight` when not tied (the bias stays zero)"),
  ],
  internal: true,
  shape(ctx) {
    if (expectSequence(ctx, "`lm_head`") === null) return null;
    const s = ctx.input.shape;
    return { shape: [s[0]!, s[1]!, ctx.args.vocab as number], origin: ctx.argSpan("vocab") };
  },
  params(args, input) {
    const v = args.vocab as number;
    return [
      ...(args.tied ? [] : [{ name: "weight", shape: [input[2] as number, v], init: weightInit(args.init), decay: true }]),
      ...(args.bias ? [{ name: "bias", shape: [v], init: { kind: "zeros" as const }, decay: false }] : []),
    ];
  },
  flops: (args, input) => 2 * input[0]! * input[1]! * input[2]! * (args.vocab as number),
  lower(ctx, x) {
    const { tf } = ctx;
    // A tied head multiplies by the embedding table transposed: [D, V].
    const w = ctx.attrs.tied ? tf.transpose(ctx.tokenEmbedding()) : ctx.p("weight");
    return linear(tf, x, w, ctx.has("bias") ? ctx.p("bias") : undefined); // [B, N, V]
  },
  emitTs(ctx, x) {
    const w = ctx.attrs.tied ? `tf.transpose(${ctx.tokenEmbedding()})` : ctx.p("weight");
    return ctx.let(ctx.name, `${ctx.helper("linear")}(${x}, ${w}${ctx.has("bias") ? `, ${ctx.p("bias")}` : ""})`, ctx.output);
  },
};
