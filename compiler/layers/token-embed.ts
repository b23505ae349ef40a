// token_embed(vocab, dim): token ids [B, T] -> vectors [B, T, dim], a table lookup. Its
// gradient is written as a one-hot matmul so that backends without a scatter-add can run it.
import { int } from "../resolve/types.js";
import { initArg, NORMAL_002, weightInit } from "./init.js";
import type { LayerKind } from "./kind.js";
import { embed } from "./ops.js";

export const tokenEmbed: LayerKind = {
  name: "token_embed",
  doc: "Token ids [B, T] -> embeddings [B, T, dim] (a table of `vocab` rows).",
  args: [
    { name: "vocab", type: int(), doc: "rows of the table" },
    { name: "dim", type: int(), doc: "embedding width" },
    initArg(NORMAL_002, "the table"),
  ],
  internal: true,
  shape(ctx) {
    const s = ctx.input.shape;
    return { shape: [s[0]!, s[1]!, ctx.args.dim as number], origin: ctx.argSpan("dim") };
  },
  params: (args) => [{ name: "weight", shape: [args.vocab as number, args.dim as number], init: weightInit(args.init), decay: true }],
  flops: () => 0,
  // ids [B, T] (int32) -> [B, T, D]
  lower: (ctx, ids) => embed(ctx.tf, ids, ctx.p("weight")),
  // A gather gives the same rows as the one-hot product, exactly.
  emitTs: (ctx, ids) => ctx.let(ctx.name, `tf.gather(${ctx.p("weight")}, ${ids})`, ctx.output),
};
