// Tensor helpers shared by the layer kinds' lowerings. tfjs is passed in (`tf`), never
// imported here, so the compiler's `check` path never loads it. Every helper uses only ops
// whose gradients the wasm backend has (no conv2d filter gradient, no scatter-add), and keeps
// matmuls 2-D and non-transposed, the only fast path of wasm's XNNPACK.
import type * as tfjs from "@tensorflow/tfjs";

export type Tf = typeof tfjs;
export type Tensor = tfjs.Tensor;

/**
 * Whether vlmc's native matmul (runtime/native/matmul.ts) runs this backend's matmuls: it marks
 * the kernels it registers. Then a transposed operand costs nothing, and an explicit transpose
 * is a needless copy.
 */
export function nativeMatmul(tf: Tf): boolean {
  const k = tf.getKernel("BatchMatMul", tf.getBackend()) as { vlmcNative?: boolean } | undefined;
  return k?.vlmcNative === true;
}

/**
 * y = x W (+ b) over the last dim, with W stored [in, out]. The gradient is written out with
 * explicit transposes (dx = dy W^T, dW = x^T dy) so both backward matmuls are plain 2-D ones,
 * the only fast ones of stock wasm; with the native matmul the transposes are its flags instead.
 */
export function linear(tf: Tf, x: Tensor, w: Tensor, b?: Tensor): Tensor {
  const inW = w.shape[0]!;
  const outW = w.shape[1]!;
  const lead = x.shape.slice(0, -1);
  // Outside a gradient tape (evaluation, generation) the custom gradient only costs, and so do the
  // reshapes around tf.matMul/tf.fused.matMul (five per product): a cached decoding step of a
  // 6-layer decoder is ~40 of these on one row, where per-op overhead is the time. One kernel call
  // on [1, rows, in] x [1, in, out] with the bias in its epilogue (batch 1: tfjs-wasm 4.22's
  // _FusedMatMul adds a bias wrongly to batched products) gives the same numbers.
  if (!tf.engine().isTapeOn()) {
    const one = x.rank === 3 && x.shape[0] === 1;
    const a = one ? x : x.reshape([1, -1, inW]);
    const inputs: Record<string, Tensor> = { a, b: w.reshape([1, inW, outW]) };
    if (b) inputs.bias = b;
    const y = tf.engine().runKernel("_FusedMatMul", inputs as tfjs.NamedTensorMap, { transposeA: false, transposeB: false, activation: "linear", leakyreluAlpha: 0.2 } as unknown as tfjs.NamedAttrMap) as Tensor;
    return one ? y : y.reshape([...lead, outW]);
  }
  const x2 = x.reshape([-1, inW]) as tfjs.Tensor2D;
  const f = tf.customGrad(((xx: tfjs.Tensor2D, ww: tfjs.Tensor2D, save: tfjs.GradSaveFunc) => {
    save([xx, ww]);
    return {
      value: tf.matMul(xx, ww),
      gradFunc: (dy: tfjs.Tensor, saved: tfjs.Tensor[]) => {
        const [sx, sw] = saved as [tfjs.Tensor2D, tfjs.Tensor2D];
        if (nativeMatmul(tf)) return [tf.matMul(dy as tfjs.Tensor2D, sw, false, true), tf.matMul(sx, dy as tfjs.Tensor2D, true, false)];
        const dx = tf.matMul(dy as tfjs.Tensor2D, tf.transpose(sw));
        const dw = tf.matMul(tf.transpose(sx), dy as tfjs.Tensor2D);
        return [dx, dw];
      },
    };
  }) as unknown as Parameters<Tf["customGrad"]>[0]);
  let y = f(x2, w) as Tensor;
  if (b) y = tf.add(y, b);
  return y.reshape([...lead, outW]);
}

/**
 * Whether a fused kernel (runtime/native/fused.ts) runs on the current backend. The lowerings
 * ask by kernel name, so the compiler never imports the runtime: when the native accelerator
 * registered the kernel (and its self-check passed) the fused op runs, else the composite.
 */
function hasFused(tf: Tf, kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) !== undefined;
}

function runFused(tf: Tf, kernelName: string, inputs: Record<string, Tensor>, attrs: Record<string, unknown>): Tensor | Tensor[] {
  return tf.engine().runKernel(kernelName, inputs as tfjs.NamedTensorMap, attrs as tfjs.NamedAttrMap) as Tensor | Tensor[];
}

export function gelu(tf: Tf, x: Tensor, approximate: "erf" | "tanh"): Tensor {
  if (hasFused(tf, "VlmcGelu") && x.dtype === "float32") return runFused(tf, "VlmcGelu", { x }, { approximate }) as Tensor;
  return geluComposite(tf, x, approximate);
}

/** GELU in tfjs ops (the path without the native accelerator, and its reference). */
export function geluComposite(tf: Tf, x: Tensor, approximate: "erf" | "tanh"): Tensor {
  if (approximate === "tanh") {
    // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
    return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
  }
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))));
}

export function activation(tf: Tf, x: Tensor, name: string): Tensor {
  switch (name) {
    case "gelu":
      return gelu(tf, x, "erf");
    case "gelu_tanh":
      return gelu(tf, x, "tanh");
    case "relu":
      return tf.relu(x);
    case "silu":
      return tf.mul(x, tf.sigmoid(x));
    default:
      throw new Error(`internal: activation ${name}`);
  }
}

export function layerNorm(tf: Tf, x: Tensor, gain: Tensor, bias: Tensor | undefined, eps: number): Tensor {
  if (hasFused(tf, "VlmcLayerNorm") && x.dtype === "float32") {
    // [y, mean, rstd]: the gradient keeps its own references to mean and rstd.
    const [y, mean, rstd] = runFused(tf, "VlmcLayerNorm", bias ? { x, gain, bias } : { x, gain }, { eps }) as [Tensor, Tensor, Tensor];
    mean.dispose();
    rstd.dispose();
    return y;
  }
  return layerNormComposite(tf, x, gain, bias, eps);
}

/** Layer norm in tfjs ops (the path without the native accelerator, and its reference). */
export function layerNormComposite(tf: Tf, x: Tensor, gain: Tensor, bias: Tensor | undefined, eps: number): Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  const y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
  return bias ? tf.add(tf.mul(y, gain), bias) : tf.mul(y, gain);
}

/**
 * softmax(scale * scores + mask) over the last dim, for attention: `causal` masks the future
 * (scores are [.., N, N]); `mask` gives the composite path its additive causal mask (made once
 * per model by the caller), which the fused kernel does not need.
 */
export function scaledSoftmax(tf: Tf, scores: Tensor, scale: number, causal: boolean, mask?: () => Tensor): Tensor {
  const n = scores.shape[scores.rank - 1]!;
  if (hasFused(tf, "VlmcSoftmax") && scores.dtype === "float32" && (!causal || scores.shape[scores.rank - 2] === n)) {
    return runFused(tf, "VlmcSoftmax", { x: scores }, { scale, causal }) as Tensor;
  }
  let s = tf.mul(scores, scale);
  if (causal) s = tf.add(s, mask ? mask() : causalMask(tf, n)); // -1e9 above the diagonal
  return tf.softmax(s, -1);
}

/** scaledSoftmax's composite path (the reference of the fused kernel). */
export function softmaxComposite(tf: Tf, scores: Tensor, scale: number, causal: boolean): Tensor {
  let s = tf.mul(scores, scale);
  if (causal) s = tf.add(s, causalMask(tf, scores.shape[scores.rank - 1]!));
  return tf.softmax(s, -1);
}

/**
 * Inverted dropout with rate p. The fused kernel draws its mask from a hash of (seed, index)
 * and replays it in the backward, so it saves nothing; the composite is tf.dropout (a
 * different random stream for the same seed).
 */
export function dropout(tf: Tf, x: Tensor, p: number, seed: number): Tensor {
  if (p <= 0) return x;
  if (hasFused(tf, "VlmcDropout") && x.dtype === "float32") return runFused(tf, "VlmcDropout", { x }, { rate: p, seed }) as Tensor;
  return dropoutComposite(tf, x, p, seed);
}

export function dropoutComposite(tf: Tf, x: Tensor, p: number, seed: number): Tensor {
  return tf.dropout(x, p, undefined, seed);
}

/**
 * Mean cross-entropy of the text positions: logits [B, n, V] whose last T positions are text,
 * targets [B, T] (int32), mask [B, T] (0 for padding). The logit at text position i predicts
 * targets[i]; the mean is over sum(mask) (at least 1).
 */
export function crossEntropy(tf: Tf, logits: Tensor, targets: Tensor, mask: Tensor): tfjs.Scalar {
  if (hasFused(tf, "VlmcCrossEntropy") && logits.dtype === "float32" && targets.dtype === "int32") {
    const [loss, lse] = runFused(tf, "VlmcCrossEntropy", { logits, targets, mask: mask.toFloat() }, {}) as [Tensor, Tensor];
    lse.dispose();
    return loss as tfjs.Scalar;
  }
  return crossEntropyComposite(tf, logits, targets, mask);
}

export function crossEntropyComposite(tf: Tf, logits: Tensor, targets: Tensor, mask: Tensor): tfjs.Scalar {
  const [b, n, v] = logits.shape as [number, number, number];
  const t = targets.shape[1]!;
  const text = tf.slice(logits, [0, n - t, 0], [b, t, v]); // [B, T, V]
  const logp = tf.logSoftmax(text, -1);
  const picked = tf.sum(tf.mul(logp, tf.oneHot(targets.reshape([-1]) as tfjs.Tensor1D, v).reshape([b, t, v])), -1); // [B, T]
  const m = mask.toFloat();
  return tf.div(tf.neg(tf.sum(tf.mul(picked, m))), tf.maximum(tf.sum(m), 1)) as tfjs.Scalar;
}

export function rmsNorm(tf: Tf, x: Tensor, gain: Tensor, eps: number): Tensor {
  const ms = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), gain);
}

/**
 * Rotary position embedding on [B, H, N, hd] (the "rotate half" convention of Llama/HF):
 * x * cos + rotate_half(x) * sin, with frequencies base^(-2i/hd).
 */
export function rope(tf: Tf, x: Tensor, tables: { cos: Tensor; sin: Tensor }): Tensor {
  const [x1, x2] = tf.split(x, 2, -1) as [Tensor, Tensor];
  const rotated = tf.concat([tf.neg(x2), x1], -1);
  return tf.add(tf.mul(x, tables.cos), tf.mul(rotated, tables.sin));
}

/** The cos or sin table [n, hd] of rotary positions, frequencies base^(-2i/hd), halves repeated. */
export function ropeTable(tf: Tf, n: number, hd: number, base: number, fn: "cos" | "sin"): Tensor {
  const half = hd / 2;
  const out = new Float32Array(n * hd);
  for (let p = 0; p < n; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * Math.pow(base, (-2 * i) / hd);
      out[p * hd + i] = out[p * hd + i + half] = fn === "cos" ? Math.cos(angle) : Math.sin(angle);
    }
  }
  return tf.tensor(out, [n, hd]);
}

/** Additive causal mask [N, N]: 0 on and below the diagonal, -1e9 above (exp underflows to 0). */
export function causalMask(tf: Tf, n: number): Tensor {
  const m = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) m[i * n + j] = -1e9;
  return tf.tensor(m, [n, n]);
}

/** Fixed sinusoidal positions [n, d] (Vaswani et al.): sin on even dims, cos on odd dims. */
export function sinusoids(tf: Tf, n: number, d: number): Tensor {
  const out = new Float32Array(n * d);
  for (let p = 0; p < n; p++) {
    for (let i = 0; i < d; i += 2) {
      const angle = p / Math.pow(10000, i / d);
      out[p * d + i] = Math.sin(angle);
      if (i + 1 < d) out[p * d + i + 1] = Math.cos(angle);
    }
  }
  return tf.tensor(out, [n, d]);
}

/** Table lookup written as one-hot x table, whose gradient is a plain matmul on every backend. */
export function embed(tf: Tf, ids: Tensor, table: Tensor): Tensor {
  const [vocab, dim] = table.shape as [number, number];
  const lead = ids.shape;
  const oneHot = tf.oneHot(ids.reshape([-1]) as tfjs.Tensor1D, vocab).toFloat();
  return linear(tf, oneHot, table).reshape([...lead, dim]);
}
