// residual { ... }: x + body(x). The body must give back the shape it was given.
import { formatShape, type LayerKind } from "./kind.js";

export const residual: LayerKind = {
  name: "residual",
  doc: "Adds the input to the output of its body: `residual { layernorm -> attention(heads: 8) }`.",
  args: [],
  body: true,
  shape(ctx) {
    const out = ctx.body;
    if (!out) return null;
    const same = out.shape.length === ctx.input.shape.length && out.shape.every((d, i) => d === ctx.input.shape[i]);
    if (!same) {
      ctx.report("E0303", `the body of \`residual\` turns ${formatShape(ctx.input.shape)} into ${formatShape(out.shape)}`, {
        label: "its output is added to its input",
        related: [{ span: out.origin, label: `the body's output width ${String(out.shape[out.shape.length - 1])} comes from here` }],
        help: [`end the body with a layer that gives back width ${String(ctx.input.shape[ctx.input.shape.length - 1])}`],
      });
    }
    return { ...ctx.input };
  },
  flops: (_, input) => input.reduce((a, b) => a * b, 1),
  saved: () => 0,
  lower: (ctx, x) => ctx.tf.add(x, ctx.body(x)),
  emitTs: (ctx, x) => ctx.let(ctx.name, `tf.add(${x}, ${ctx.body(x)})`, ctx.output),
};

/** A plain group of layers (a block's body, a preset's transformer block). */
export const sequence: LayerKind = {
  name: "sequence",
  doc: "A group of layers applied in order.",
  args: [],
  body: true,
  internal: true,
  shape: (ctx) => ctx.body ?? null,
  saved: () => 0,
  lower: (ctx, x) => ctx.body(x),
  emitTs: (ctx, x) => ctx.body(x),
};
