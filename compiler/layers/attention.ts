// attention(heads, ...): multi-head self-attention, bidirectional (encoder) or causal
// (decoder), with optional grouped key/value heads and rotary positions.
// Shapes: x [B, N, D] -> q [B, heads, N, hd], k, v [B, kv_heads, N, hd] -> [B, N, D].
// Decoding with a KV cache (ctx.kv, runtime/generate.ts) feeds only the new positions: their keys
// and values join the cached ones (L = cached + N keys), and rotary angles start at the offset.
import { bool, float, int, oneOf } from "../resolve/types.js";
import { initArg, weightInit, XAVIER } from "./init.js";
import { divisors, expectSequence, type LayerKind } from "./kind.js";
import { causalMask, linear, rope, ropeTable, scaledSoftmax, type Tensor, type Tf } from "./ops.js";

export const attention: LayerKind = {
  name: "attention",
  doc: "Multi-head self-attention with an output projection. Query/key/value/output weights are `q`, `k`, `v`, `o`.",
  args: [
    { name: "heads", type: int(1, 4096), doc: "number of heads; must divide the width" },
    { name: "kv_heads", type: int(0, 4096), default: 0, doc: "key/value heads for grouped-query attention (default: `heads`)" },
    { name: "causal", type: bool, default: false, doc: "mask future positions (decoders)" },
    {
      name: "scale",
      type: { t: "either", of: [oneOf("head", "dim"), float(0, undefined, { minExclusive: true })], describe: "`head`, `dim` or a number" },
      default: "head",
      doc: "scores are multiplied by width^-0.5: `head` uses the head width (standard), `dim` the model width (the seed's quirk), or give the factor",
    },
    { name: "qkv_bias", type: bool, default: false, doc: "biases on the query/key/value projections" },
    { name: "out_bias", type: bool, default: true, doc: "bias on the output projection" },
    { name: "rope", type: bool, default: false, doc: "rotary position embedding on queries and keys" },
    { name: "rope_base", type: float(1), default: 10000, doc: "RoPE frequency base" },
    { name: "dropout", type: float(0, 1, { maxExclusive: true }), default: 0, doc: "dropout on attention weights and on the output" },
    initArg(XAVIER, "the `q`, `k`, `v` and `o` weights (biases stay zero)"),
  ],
  shape(ctx) {
    const d = expectSequence(ctx, "`attention`");
    if (d === null) return null;
    const heads = ctx.args.heads as number;
    const kv = (ctx.args.kv_heads as number) || heads;
    ctx.node.args.kv_heads = kv;
    // Errors below leave the shape unchanged, so later layers are still checked.
    if (d % heads !== 0) {
      ctx.report("E0302", `width ${d} is not divisible by ${heads} heads`, {
        at: ctx.argSpan("heads"),
        label: `${d} / ${heads} = ${(d / heads).toFixed(2)}`,
        related: [{ span: ctx.input.origin, label: `the width ${d} comes from here` }],
        help: [`head counts that divide ${d}: ${divisors(d, 1, 64).join(", ")}`],
      });
    } else if (heads % kv !== 0) {
      ctx.report("E0302", `${heads} query heads cannot be grouped over ${kv} key/value heads`, {
        at: ctx.argSpan("kv_heads"),
        label: `${heads} / ${kv} is not whole`,
        help: [`key/value head counts that divide ${heads}: ${divisors(heads, 1, heads).join(", ")}`],
      });
    } else if (ctx.args.rope && (d / heads) % 2 !== 0) {
      ctx.report("E0302", `rotary positions need an even head width, found ${d / heads}`, {
        at: ctx.argSpan("heads"),
        help: [`choose heads so that ${d} / heads is even`],
      });
    }
    return { ...ctx.input };
  },
  params(args, input) {
    const d = input[2] as number;
    const hd = d / (args.heads as number);
    const kvw = (args.kv_heads as number) * hd;
    const w = (name: string, out: number) => ({ name: `${name}.weight`, shape: [d, out], init: weightInit(args.init), decay: true });
    const b = (name: string, out: number) => ({ name: `${name}.bias`, shape: [out], init: { kind: "zeros" as const }, decay: false });
    return [
      w("q", d),
      ...(args.qkv_bias ? [b("q", d)] : []),
      w("k", kvw),
      ...(args.qkv_bias ? [b("k", kvw)] : []),
      w("v", kvw),
      ...(args.qkv_bias ? [b("v", kvw)] : []),
      w("o", d),
      ...(args.out_bias ? [b("o", d)] : []),
    ];
  },
  flops(args, input) {
    const [bsz, n, d] = input as [number, number, number];
    const kvw = ((args.kv_heads as number) || (args.heads as number)) * (d / (args.heads as number));
    const proj = 2 * bsz * n * d * (2 * d + 2 * kvw);
    const scores = 2 * bsz * n * n * d * 2; // q k^T and p v
    return proj + scores + 5 * bsz * (args.heads as number) * n * n; // + softmax
  },
  saved(args, input) {
    const [bsz, n, d] = input as [number, number, number];
    // x, q, k, v, the scores and the probabilities per head, the merged heads.
    return bsz * n * d * 5 + 2 * bsz * (args.heads as number) * n * n;
  },
  lower(ctx, x) {
    const { tf } = ctx;
    const [b, n, d] = x.shape as [number, number, number];
    const heads = ctx.attrs.heads as number;
    const kv = (ctx.attrs.kv_heads as number) || heads;
    const hd = d / heads;
    const bias = (name: string) => (ctx.has(`${name}.bias`) ? ctx.p(`${name}.bias`) : undefined);
    // [B, N, h*hd] -> [B, h, N, hd]; for one position (a cached decoding step) that is a reshape.
    const split = (t: Tensor, h: number) => (n === 1 ? t.reshape([b, h, 1, hd]) : tf.transpose(t.reshape([b, n, h, hd]), [0, 2, 1, 3]));
    let q = split(linear(tf, x, ctx.p("q.weight"), bias("q")), heads); // [B, H, N, hd]
    let k = split(linear(tf, x, ctx.p("k.weight"), bias("k")), kv); // [B, KV, N, hd]
    let v = split(linear(tf, x, ctx.p("v.weight"), bias("v")), kv); // [B, KV, N, hd]
    // With a KV cache, x holds positions offset..offset+N-1 of the sequence.
    const offset = ctx.cached?.offset ?? 0;
    if (ctx.attrs.rope) {
      const base = ctx.attrs.rope_base as number;
      // Cached decoding makes the tables once at full length and takes this input's rows.
      const len = ctx.cached ? ctx.cached.capacity : n;
      const table = (fn: "cos" | "sin") => {
        const t = ctx.constant(`rope.${fn}.${len}.${hd}.${base}`, () => ropeTable(tf, len, hd, base, fn)); // [len, hd]
        return len === n ? t : tf.slice(t, [offset, 0], [n, hd]); // [N, hd]
      };
      const tables = { cos: table("cos"), sin: table("sin") };
      q = rope(tf, q, tables);
      k = rope(tf, k, tables);
    }
    if (ctx.kv) {
      // Earlier positions' keys and values, kept before the grouped heads are repeated.
      const past = ctx.kv.past;
      if (past) {
        k = tf.concat([past.k, k], 2); // [B, KV, offset+N, hd]
        v = tf.concat([past.v, v], 2); // [B, KV, offset+N, hd]
      }
      ctx.kv.store(k, v);
    }
    const l = k.shape[2]!; // keys: N, or offset+N with a cache
    if (kv !== heads) {
      // Grouped-query attention: each key/value head serves heads / kv query heads.
      const rep = heads / kv;
      // (rank-4 tiles: tfjs has no gradient for rank-5 tile)
      k = tf.reshape(tf.tile(k.reshape([b, kv, 1, l * hd]), [1, 1, rep, 1]), [b, heads, l, hd]);
      v = tf.reshape(tf.tile(v.reshape([b, kv, 1, l * hd]), [1, 1, rep, 1]), [b, heads, l, hd]);
    }
    const s = ctx.attrs.scale;
    const scale = s === "head" ? hd ** -0.5 : s === "dim" ? d ** -0.5 : (s as number);
    const causal = ctx.attrs.causal === true;
    const scores = tf.matMul(q, k, false, true); // [B, H, N, L]
    let weights: Tensor;
    if (l === n || !causal || n === 1) {
      // softmax(scale q k^T (+ causal mask)): one fused kernel with the native accelerator. A
      // single new position after cached ones sees every key: no mask.
      const mask = () => ctx.constant(`causal.${n}`, () => causalMask(tf, n)); // -1e9 above the diagonal
      weights = scaledSoftmax(tf, scores, scale, causal && l === n, mask); // [B, H, N, L]
    } else {
      // Several new positions after cached ones: new position i sees keys up to offset + i.
      weights = tf.softmax(tf.add(tf.mul(scores, scale), offsetCausalMask(tf, n, l)), -1); // [B, H, N, L]
    }
    ctx.observe?.(weights);
    const probs = ctx.dropout(weights, ctx.attrs.dropout as number); // [B, H, N, L]
    const perHead = tf.matMul(probs, v); // [B, H, N, hd]
    const out = (n === 1 ? perHead : tf.transpose(perHead, [0, 2, 1, 3])).reshape([b, n, d]); // [B, N, D]
    return ctx.dropout(linear(tf, out, ctx.p("o.weight"), bias("o")), ctx.attrs.dropout as number);
  },
  emitTs(ctx, x) {
    const [b, n, d] = ctx.input as [string, number | string, number];
    const heads = ctx.attrs.heads as number;
    const kv = (ctx.attrs.kv_heads as number) || heads;
    const hd = d / heads;
    const lin = ctx.helper("linear");
    const proj = (name: string) => `${lin}(${x}, ${ctx.p(`${name}.weight`)}${ctx.has(`${name}.bias`) ? `, ${ctx.p(`${name}.bias`)}` : ""})`;
    let q = ctx.let("q", `${ctx.helper("splitHeads")}(${proj("q")}, ${heads})`, [b, heads, n, hd]);
    let k = ctx.let("k", `${ctx.helper("splitHeads")}(${proj("k")}, ${kv})`, [b, kv, n, hd]);
    let v = ctx.let("v", `${ctx.helper("splitHeads")}(${proj("v")}, ${kv})`, [b, kv, n, hd]);
    if (ctx.attrs.rope) {
      const base = ctx.attrs.rope_base as number;
      const table = (fn: "cos" | "sin") => ctx.constant(`rope.${fn}.${n}.${hd}.${base}`, `rope${fn === "cos" ? "Cos" : "Sin"}`, `${ctx.helper("ropeTable")}(${ctx.dim(n)}, ${hd}, ${base}, "${fn}")`, [n, hd]);
      const [cos, sin] = [table("cos"), table("sin")];
      q = ctx.let("qRot", `${ctx.helper("rope")}(${q}, ${cos}, ${sin})`, [b, heads, n, hd]);
      k = ctx.let("kRot", `${ctx.helper("rope")}(${k}, ${cos}, ${sin})`, [b, kv, n, hd]);
    }
    if (kv !== heads) {
      k = ctx.let("kAll", `${ctx.helper("repeatKv")}(${k}, ${heads / kv})`, [b, heads, n, hd]);
      v = ctx.let("vAll", `${ctx.helper("repeatKv")}(${v}, ${heads / kv})`, [b, heads, n, hd]);
    }
    const s = ctx.attrs.scale;
    let scores = `tf.mul(tf.matMul(${q}, ${k}, false, true), ${s === "head" ? `${hd} ** -0.5` : s === "dim" ? `${d} ** -0.5` : String(s)})`;
    if (ctx.attrs.causal) scores = `tf.add(${scores}, ${ctx.constant(`causal.${n}`, "mask", `${ctx.helper("causalMask")}(${ctx.dim(n)})`, [n, n])})`;
    const att = ctx.let("att", `tf.softmax(${scores}, -1)`, [b, heads, n, n]);
    return ctx.let(ctx.name, `${lin}(${ctx.helper("mergeHeads")}(tf.matMul(${att}, ${v})), ${ctx.p("o.weight")}${ctx.has("o.bias") ? `, ${ctx.p("o.bias")}` : ""})`, ctx.output);
  },
};

/** Additive mask [N, L] for the last N of L positions: 0 where key j <= L - N + i, else -1e9. */
function offsetCausalMask(tf: Tf, n: number, l: number): Tensor {
  const m = new Float32Array(n * l);
  for (let i = 0; i < n; i++) for (let j = l - n + i + 1; j < l; j++) m[i * l + j] = -1e9;
  return tf.tensor(m, [n, l]);
}
