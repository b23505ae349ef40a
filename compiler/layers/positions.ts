// positions(kind, length): add a position embedding to a sequence. `learned` is a table of
// `length` rows (the most positions the model can see); `sinusoidal` is fixed (no parameters).
import { int, oneOf } from "../resolve/types.js";
import { initArg, NORMAL_002, weightInit } from "./init.js";
import { expectSequence, type LayerKind } from "./kind.js";
import { sinusoids } from "./ops.js";

/** The concrete part of a sequence dim: 36 -> 36, "1+T" -> 1, "T" -> 0. */
export function knownLength(d: number | string): number {
  if (typeof d === "number") return d;
  const m = /^(\d+)\+/.exec(d);
  return m ? Number(m[1]) : 0;
}

export const positions: LayerKind = {
  name: "positions",
  doc: "Adds a position embedding: `learned` (a table of `length` rows) or `sinusoidal` (fixed).",
  args: [
    { name: "kind", type: oneOf("learned", "sinusoidal"), default: "learned", doc: "`learned` or `sinusoidal`" },
    { name: "length", type: int(0), default: 0, doc: "rows of the table: the longest sequence (default: the input's length)" },
    initArg(NORMAL_002, "the learned table"),
  ],
  shape(ctx) {
    if (expectSequence(ctx, "`positions`") === null) return null;
    const n = ctx.input.shape[1]!;
    const length = (ctx.args.length as number) || (typeof n === "number" ? n : 0);
    if (length === 0) return ctx.report("E0210", "`positions` needs `length` for a sequence of unknown length", { help: ["write `positions(learned, length: 256)`"] });
    const known = knownLength(n);
    const needed = typeof n === "number" ? n : known + 1;
    if (needed > length) {
      return ctx.report("E0306", `a sequence of ${typeof n === "number" ? n : `${known} + T`} tokens does not fit ${length} positions`, {
        at: ctx.argSpan("length"),
        label: `${length} positions`,
        help: [`set length to at least ${needed}`],
      });
    }
    ctx.node.args.length = length;
    return { ...ctx.input };
  },
  params(args, input) {
    if (args.kind !== "learned") return [];
    return [{ name: "weight", shape: [args.length as number, input[2] as number], init: weightInit(args.init), decay: false }];
  },
  flops: (_, input) => input.reduce((a, b) => a * b, 1),
  lower(ctx, x) {
    const { tf } = ctx;
    const [, n, d] = x.shape as [number, number, number];
    // With a KV cache (runtime/generate.ts) x holds positions offset..offset+N-1: rows from there.
    const offset = ctx.cached?.offset ?? 0;
    if (ctx.attrs.kind === "learned") return tf.add(x, tf.slice(ctx.p("weight"), [offset, 0], [n, d])); // [B, N, D] + [N, D]
    const len = ctx.cached ? ctx.cached.capacity : n;
    const table = ctx.constant(`sinusoids.${len}.${d}`, () => sinusoids(tf, len, d)); // [len, D]
    return tf.add(x, len === n ? table : tf.slice(table, [offset, 0], [n, d])); // [B, N, D] + [N, D]
  },
  emitTs(ctx, x) {
    const [n, d] = [ctx.input[1]!, ctx.input[2] as number];
    if (ctx.attrs.kind === "learned") return ctx.let(ctx.name, `tf.add(${x}, tf.slice(${ctx.p("weight")}, [0, 0], [${ctx.dim(n)}, ${d}]))`, ctx.output);
    const table = ctx.constant(`sinusoids.${n}.${d}`, "sinusoidTable", `${ctx.helper("sinusoids")}(${ctx.dim(n)}, ${d})`, [n, d]);
    return ctx.let(ctx.name, `tf.add(${x}, ${table})`, ctx.output);
  },
};
