// The tensor helpers a module written by `vlmc compile --emit ts` may include, as ts-morph
// function structures (compiler/emit/ts.ts adds those the layers ask for, once each). Each
// computes what the matching composite of compiler/layers/ops.ts computes, op for op, so that
// the module's logits match the runtime's on the same backend; they are written for inference
// only (no custom gradients, no fused kernels), which keeps them short enough to read.
import type { OptionalKind, ParameterDeclarationStructure } from "ts-morph";
import type { TsHelperName } from "./ts-context.js";

export interface TsHelper {
  docs: string;
  parameters: OptionalKind<ParameterDeclarationStructure>[];
  returnType: string;
  /** The body, one statement per line (indented with two spaces per level). */
  body: string[];
}

const param = (name: string, type: string, optional = false): OptionalKind<ParameterDeclarationStructure> => ({ name, type, ...(optional ? { hasQuestionToken: true } : {}) });

export const TS_HELPERS: Record<TsHelperName, TsHelper> = {
  linear: {
    docs: "y = x W + b over the last dim; W is stored [in, out] (vlmc's layout, not PyTorch's [out, in]).",
    parameters: [param("x", "tf.Tensor"), param("w", "tf.Tensor"), param("b", "tf.Tensor", true)],
    returnType: "tf.Tensor",
    body: [
      "const [inW, outW] = w.shape as [number, number];",
      "const y = tf.matMul(tf.reshape(x, [-1, inW]) as tf.Tensor2D, w as tf.Tensor2D);",
      "return tf.reshape(b ? tf.add(y, b) : y, [...x.shape.slice(0, -1), outW]);",
    ],
  },
  layerNorm: {
    docs: "Layer normalisation over the last dim, then the gain and bias.",
    parameters: [param("x", "tf.Tensor"), param("gain", "tf.Tensor"), param("bias", "tf.Tensor"), param("eps", "number")],
    returnType: "tf.Tensor",
    body: ["const { mean, variance } = tf.moments(x, -1, true);", "return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gain), bias);"],
  },
  rmsNorm: {
    docs: "x / rms(x) * gain over the last dim (Llama).",
    parameters: [param("x", "tf.Tensor"), param("gain", "tf.Tensor"), param("eps", "number")],
    returnType: "tf.Tensor",
    body: ["return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), gain);"],
  },
  gelu: {
    docs: "The exact GELU: 0.5 x (1 + erf(x / sqrt 2)) (PyTorch's nn.GELU()).",
    parameters: [param("x", "tf.Tensor")],
    returnType: "tf.Tensor",
    body: ["return tf.mul(tf.mul(0.5, x), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))));"],
  },
  geluTanh: {
    docs: "GPT-2's GELU: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).",
    parameters: [param("x", "tf.Tensor")],
    returnType: "tf.Tensor",
    body: ["const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));", "return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));"],
  },
  silu: {
    docs: "x * sigmoid(x).",
    parameters: [param("x", "tf.Tensor")],
    returnType: "tf.Tensor",
    body: ["return tf.mul(x, tf.sigmoid(x));"],
  },
  splitHeads: {
    docs: "[B, N, heads * hd] -> [B, heads, N, hd].",
    parameters: [param("x", "tf.Tensor"), param("heads", "number")],
    returnType: "tf.Tensor",
    body: ["const [b, n, d] = x.shape as [number, number, number];", "return tf.transpose(tf.reshape(x, [b, n, heads, d / heads]), [0, 2, 1, 3]);"],
  },
  mergeHeads: {
    docs: "[B, heads, N, hd] -> [B, N, heads * hd].",
    parameters: [param("x", "tf.Tensor")],
    returnType: "tf.Tensor",
    body: ["const [b, h, n, hd] = x.shape as [number, number, number, number];", "return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, n, h * hd]);"],
  },
  repeatKv: {
    docs: "Grouped-query attention: each of the KV key/value heads serves `rep` query heads. [B, KV, N, hd] -> [B, KV * rep, N, hd].",
    parameters: [param("x", "tf.Tensor"), param("rep", "number")],
    returnType: "tf.Tensor",
    body: ["const [b, kv, n, hd] = x.shape as [number, number, number, number];", "return tf.reshape(tf.tile(tf.reshape(x, [b, kv, 1, n * hd]), [1, 1, rep, 1]), [b, kv * rep, n, hd]);"],
  },
  causalMask: {
    docs: "The additive causal mask [n, n]: 0 on and below the diagonal, -1e9 above (exp underflows to 0).",
    parameters: [param("n", "number")],
    returnType: "tf.Tensor",
    body: ["const m = new Float32Array(n * n);", "for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) m[i * n + j] = -1e9;", "return tf.tensor2d(m, [n, n]);"],
  },
  ropeTable: {
    docs: "The cos or sin table [n, hd] of rotary positions: frequencies base^(-2i/hd), the halves repeated.",
    parameters: [param("n", "number"), param("hd", "number"), param("base", "number"), param("fn", '"cos" | "sin"')],
    returnType: "tf.Tensor",
    body: [
      "const half = hd / 2;",
      "const out = new Float32Array(n * hd);",
      "for (let p = 0; p < n; p++) {",
      "  for (let i = 0; i < half; i++) {",
      "    const angle = p * Math.pow(base, (-2 * i) / hd);",
      '    out[p * hd + i] = out[p * hd + i + half] = fn === "cos" ? Math.cos(angle) : Math.sin(angle);',
      "  }",
      "}",
      "return tf.tensor2d(out, [n, hd]);",
    ],
  },
  rope: {
    docs: 'Rotary positions on [B, H, N, hd] ("rotate half", as Llama): x cos + rotate_half(x) sin.',
    parameters: [param("x", "tf.Tensor"), param("cos", "tf.Tensor"), param("sin", "tf.Tensor")],
    returnType: "tf.Tensor",
    body: ["const [x1, x2] = tf.split(x, 2, -1) as [tf.Tensor, tf.Tensor];", "return tf.add(tf.mul(x, cos), tf.mul(tf.concat([tf.neg(x2), x1], -1), sin));"],
  },
  sinusoids: {
    docs: "Fixed sinusoidal positions [n, d] (Vaswani et al.): sin on even dims, cos on odd dims.",
    parameters: [param("n", "number"), param("d", "number")],
    returnType: "tf.Tensor",
    body: [
      "const out = new Float32Array(n * d);",
      "for (let p = 0; p < n; p++) {",
      "  for (let i = 0; i < d; i += 2) {",
      "    const angle = p / Math.pow(10000, i / d);",
      "    out[p * d + i] = Math.sin(angle);",
      "    if (i + 1 < d) out[p * d + i + 1] = Math.cos(angle);",
      "  }",
      "}",
      "return tf.tensor2d(out, [n, d]);",
    ],
  },
};
