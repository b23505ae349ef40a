// join: the projected visual tokens [B, Nv, D] in front of the text embeddings [B, T, D].
import type { LayerKind } from "./kind.js";

export const join: LayerKind = {
  name: "join",
  doc: "Puts the visual tokens [B, Nv, D] in front of the text embeddings [B, T, D]: [B, Nv+T, D].",
  args: [],
  internal: true,
  shape(ctx) {
    const v = ctx.visual;
    if (!v) return { ...ctx.input };
    const [b, t, d] = ctx.input.shape as [string, string, number];
    const nv = v.shape[1]!;
    return { shape: [b, `${nv}+${t}`, d], origin: ctx.input.origin };
  },
  flops: () => 0,
  saved: () => 0,
  // [B, Nv, D] ++ [B, T, D] -> [B, Nv+T, D]
  lower: (ctx, x) => (ctx.visual ? ctx.tf.concat([ctx.visual, x], 1) : x),
  emitTs: (ctx, x) => (ctx.visual ? ctx.let(ctx.name, `tf.concat([${ctx.visual}, ${x}], 1)`, ctx.output) : x),
};
