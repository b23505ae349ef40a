// patch_embed(patch, dim, cls): cut an image into patch x patch squares, project each to `dim`
// (a conv with kernel = stride = patch, written as reshape + matmul so that every backend can
// differentiate it), and optionally put a learned CLS token in front.
import { bool, int, LIMITS } from "../resolve/types.js";
import { initArg, weightInit, XAVIER } from "./init.js";
import { divisors, formatShape, type LayerKind } from "./kind.js";
import { linear } from "./ops.js";

export const patchEmbed: LayerKind = {
  name: "patch_embed",
  doc: "Image [B, H, W, C] -> tokens [B, (H/patch)*(W/patch) (+1 with cls), dim].",
  args: [
    { name: "patch", type: int(1, LIMITS.image), doc: "patch side in pixels; must divide the image height and width" },
    { name: "dim", type: int(), doc: "token width" },
    { name: "cls", type: bool, default: false, doc: "prepend a learned CLS token" },
    { name: "bias", type: bool, default: true, doc: "add a learned bias to each patch projection" },
    initArg(XAVIER, "the projection `weight` (the bias and the CLS token stay zero)"),
  ],
  shape(ctx) {
    const s = ctx.input.shape;
    if (s.length !== 4) {
      return ctx.report("E0308", `\`patch_embed\` needs an image [B, H, W, C], found ${formatShape(s)}`, {
        label: `receives ${formatShape(s)}`,
        help: ["`patch_embed` must be the encoder's first layer"],
      });
    }
    const [b, h, w] = s as [string, number, number, number];
    const p = ctx.args.patch as number;
    if (h % p !== 0 || w % p !== 0) {
      const both = [...new Set([...divisors(h, 2, Math.min(h, w)).filter((d) => w % d === 0)])];
      ctx.report("E0301", `image ${h} x ${w} does not split into ${p} x ${p} patches`, {
        at: ctx.argSpan("patch"),
        label: `${h % p !== 0 ? `${h} = ${Math.floor(h / p)} x ${p} + ${h % p}` : `${w} = ${Math.floor(w / p)} x ${p} + ${w % p}`}`,
        related: [{ span: ctx.input.origin, label: `the image is ${h} x ${w}` }],
        help: [
          `patch sizes that divide ${h} x ${w}: ${both.slice(0, 10).join(", ")}`,
          `or resize the image to ${Math.round(h / p) * p || p} x ${Math.round(w / p) * p || p}`,
        ],
      });
      // Go on as if the edges were cropped, so that later layers are still checked.
    }
    const tokens = Math.max(1, Math.floor(h / p) * Math.floor(w / p)) + (ctx.args.cls ? 1 : 0);
    return { shape: [b, tokens, ctx.args.dim as number], origin: ctx.argSpan("dim"), tokens: ctx.argSpan("patch"), ...(ctx.args.cls ? { cls: true } : {}) };
  },
  params(args, input) {
    const p = args.patch as number;
    const c = input[3] as number;
    const d = args.dim as number;
    return [
      // Xavier-uniform as PyTorch computes it for the equivalent Conv2d (the seed's init):
      // fan_in = C p p, fan_out = D p p.
      { name: "weight", shape: [p * p * c, d], init: weightInit(args.init, { in: c * p * p, out: d * p * p }), decay: true },
      ...(args.bias ? [{ name: "bias", shape: [d], init: { kind: "zeros" as const }, decay: false }] : []),
      ...(args.cls ? [{ name: "cls", shape: [d], init: { kind: "zeros" as const }, decay: false }] : []),
    ];
  },
  flops(args, input, output) {
    const p = args.patch as number;
    return 2 * input[0]! * (output[1]! - (args.cls ? 1 : 0)) * p * p * input[3]! * (args.dim as number);
  },
  lower(ctx, x) {
    const { tf } = ctx;
    const p = ctx.attrs.patch as number;
    const [b, h, w, c] = x.shape as [number, number, number, number];
    // [B, H, W, C] -> [B, H/p, p, W/p, p, C] -> [B, H/p, W/p, p, p, C] -> [B, N, p*p*C]
    const patches = tf.transpose(x.reshape([b, h / p, p, w / p, p, c]), [0, 1, 3, 2, 4, 5]).reshape([b, (h / p) * (w / p), p * p * c]);
    let y = linear(tf, patches, ctx.p("weight"), ctx.has("bias") ? ctx.p("bias") : undefined); // [B, N, D]
    if (ctx.attrs.cls) {
      const d = y.shape[2]!;
      const cls = tf.tile(ctx.p("cls").reshape([1, 1, d]), [b, 1, 1]); // [B, 1, D]
      y = tf.concat([cls, y], 1); // [B, 1+N, D]
    }
    return y;
  },
  emitTs(ctx, x) {
    const p = ctx.attrs.patch as number;
    const [h, w, c] = ctx.input.slice(1) as [number, number, number];
    const b = ctx.dim(ctx.input[0]!);
    const n = (h / p) * (w / p);
    const d = ctx.attrs.dim as number;
    // [B, H, W, C] -> [B, H/p, p, W/p, p, C] -> [B, H/p, W/p, p, p, C] -> [B, N, p*p*C]
    const grid = ctx.let("grid", `tf.transpose(tf.reshape(${x}, [${b}, ${h / p}, ${p}, ${w / p}, ${p}, ${c}]), [0, 1, 3, 2, 4, 5])`, [b, h / p, w / p, p, p, c]);
    const patches = ctx.let("patches", `tf.reshape(${grid}, [${b}, ${n}, ${p * p * c}])`, [b, n, p * p * c]);
    const bias = ctx.has("bias") ? `, ${ctx.p("bias")}` : "";
    if (!ctx.attrs.cls) return ctx.let(ctx.name, `${ctx.helper("linear")}(${patches}, ${ctx.p("weight")}${bias})`, ctx.output);
    const y = ctx.let("patch_tokens", `${ctx.helper("linear")}(${patches}, ${ctx.p("weight")}${bias})`, [b, n, d]);
    const cls = ctx.let("cls", `tf.tile(tf.reshape(${ctx.p("cls")}, [1, 1, ${d}]), [${b}, 1, 1])`, [b, 1, d]);
    return ctx.let(ctx.name, `tf.concat([${cls}, ${y}], 1)`, ctx.output);
  },
};
