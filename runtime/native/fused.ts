// Fused kernels for tfjs's wasm backend, run by the native addon (native/src/fused_*.cc,
// optim.cc) on the wasm heap in place. After the native matmuls, a training step's time goes
// to the many small element-wise ops tfjs composes layer norm, GELU, softmax, dropout and the
// loss from, and its memory to their intermediates, each kept until the step ends. Each fused op
// here is one tfjs kernel with a registered gradient that saves only what its backward needs
// (layer norm: x, gain, mean, rstd; GELU: x; softmax: y; dropout: nothing, it replays its mask
// from the seed).
//
// The lowerings (compiler/layers/ops.ts) do not import this file: they run a fused kernel by
// name when `tf.getKernel(name, tf.getBackend())` finds it, else their composite ops. So what
// `installFusedKernels` registers decides which path runs, and it registers an op only after a
// start-up self-check has compared it with the composite on small inputs.
//
// Two kernels of tfjs-wasm are replaced outright: Identity and same-dtype Cast copy their input
// on wasm, and tfjs runs Identity on every tensor it saves for a gradient (engine.clone) and
// Cast in many gradients; here they share the input's data instead, as tfjs's cpu backend does.
import type { AdamOptions } from "../optim.js";
import type * as tfjs from "@tensorflow/tfjs";
import { crossEntropyComposite, dropoutComposite, geluComposite, layerNormComposite, softmaxComposite } from "../../compiler/layers/ops.js";
import type { Tf, Tensor } from "../../compiler/layers/ops.js";

/** The addon's fused functions (native/src/fused_*.cc, optim.cc): heap, byte offsets, sizes. */
export interface FusedAddon {
  layerNormForward(heap: ArrayBuffer, x: number, gain: number, bias: number, y: number, mean: number, rstd: number, rows: number, cols: number, eps: number): void;
  layerNormBackward(heap: ArrayBuffer, dy: number, x: number, mean: number, rstd: number, gain: number, dx: number, dgain: number, dbias: number, rows: number, cols: number): void;
  geluForward(heap: ArrayBuffer, x: number, y: number, n: number, tanh: boolean): void;
  geluBackward(heap: ArrayBuffer, dy: number, x: number, dx: number, n: number, tanh: boolean): void;
  dropout(heap: ArrayBuffer, x: number, y: number, n: number, rate: number, seed: number): void;
  softmaxForward(heap: ArrayBuffer, x: number, y: number, rows: number, cols: number, scale: number, causal: boolean): void;
  softmaxBackward(heap: ArrayBuffer, dy: number, y: number, dx: number, rows: number, cols: number, scale: number): void;
  crossEntropyForward(heap: ArrayBuffer, logits: number, targets: number, mask: number, lse: number, loss: number, b: number, n: number, t: number, v: number): void;
  crossEntropyBackward(heap: ArrayBuffer, logits: number, targets: number, mask: number, lse: number, dloss: number, dlogits: number, b: number, n: number, t: number, v: number): void;
  sumLeading(heap: ArrayBuffer, x: number, out: number, outer: number, inner: number): void;
  adamUpdate(heap: ArrayBuffer, p: number, g: number, m: number, v: number, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, decoupled: boolean, step: number): void;
}

const FUNCTIONS: readonly (keyof FusedAddon)[] = [
  "layerNormForward",
  "layerNormBackward",
  "geluForward",
  "geluBackward",
  "dropout",
  "softmaxForward",
  "softmaxBackward",
  "crossEntropyForward",
  "crossEntropyBackward",
  "sumLeading",
  "adamUpdate",
];

/** Kernel names the lowerings look up (compiler/layers/ops.ts spells the same strings). */
export const FUSED = {
  layerNorm: "VlmcLayerNorm",
  gelu: "VlmcGelu",
  softmax: "VlmcSoftmax",
  dropout: "VlmcDropout",
  crossEntropy: "VlmcCrossEntropy",
} as const;
const GRAD = {
  layerNorm: "VlmcLayerNormGrad",
  gelu: "VlmcGeluGrad",
  softmax: "VlmcSoftmaxGrad",
  crossEntropy: "VlmcCrossEntropyGrad",
} as const;

type TensorInfo = tfjs.TensorInfo;
interface WasmBackend {
  makeOutput(shape: number[], dtype: tfjs.DataType): TensorInfo;
  dataIdMap: { get(dataId: unknown): { memoryOffset: number; refCount: number } | undefined };
  wasm: { HEAPU8: Uint8Array };
  incRef(dataId: unknown): void;
}
type Attrs = Record<string, unknown>;
type KernelArgs = { inputs: Record<string, TensorInfo>; backend: unknown; attrs?: Attrs };

export interface FusedInstall {
  /** Fused ops registered (each passed its self-check). */
  registered: string[];
  /** Ops left out, with why (a self-check that disagreed, a function the addon lacks). */
  skipped: { op: string; why: string }[];
  /** Whether the native Adam update runs (runtime/optim.ts). */
  adam: boolean;
}

interface State {
  tf: Tf;
  backend: WasmBackend;
  addon: FusedAddon;
  adam: boolean;
}
let installed: State | undefined;
/** tfjs's Identity and Cast, while the sharing ones replace them. */
const originals: tfjs.KernelConfig[] = [];

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Registers the fused kernels and gradients for the wasm backend, checks each against its
 * composite and keeps those that agree. Call once, after the wasm backend is active and the
 * addon is loaded (where the native matmuls are installed). `log` gets one line when an op is
 * left out. `VLMC_FUSED=0` turns them all off (the native matmul alone, for comparisons).
 */
export function installFusedKernels(tf: Tf, backend: unknown, addon: Partial<FusedAddon>, log: (line: string) => void = () => {}): FusedInstall {
  const result: FusedInstall = { registered: [], skipped: [], adam: false };
  if (process.env.VLMC_FUSED === "0") {
    result.skipped.push({ op: "all", why: "disabled by VLMC_FUSED=0" });
    return result;
  }
  const missing = FUNCTIONS.filter((f) => typeof addon[f] !== "function");
  if (missing.length > 0) {
    result.skipped.push({ op: "all", why: `the native addon lacks ${missing.join(", ")} (rebuild it: npm run build:native)` });
    log(`native: fused kernels off: ${result.skipped[0]!.why}`);
    return result;
  }
  if (installed) uninstallFusedKernels(tf); // once per process; a second call starts over
  const be = backend as WasmBackend;
  const native = addon as FusedAddon;
  installed = { tf, backend: be, addon: native, adam: false };
  installSharingKernels(tf);
  const sumWhy = installLeadingSum(tf, be, native);
  if (sumWhy !== null) result.skipped.push({ op: "Sum", why: sumWhy });
  for (const op of Object.keys(FUSED) as (keyof typeof FUSED)[]) {
    register(tf, be, native, op);
    let why: string | null = null;
    tf.tidy(() => void (why = selfCheck(tf, op)));
    if (why === null) {
      result.registered.push(FUSED[op]);
    } else {
      unregister(tf, op);
      result.skipped.push({ op: FUSED[op], why });
    }
  }
  let adamWhy: string | null = null;
  tf.tidy(() => void (adamWhy = checkAdam(tf)));
  installed.adam = adamWhy === null;
  result.adam = installed.adam;
  if (adamWhy !== null) result.skipped.push({ op: "adam", why: adamWhy });
  if (result.skipped.length > 0) log(`native: fused ops left out (composite tfjs ops run instead): ${result.skipped.map((s) => `${s.op}: ${s.why}`).join("; ")}`);
  return result;
}

/**
 * Takes back what installFusedKernels registered: the composite ops, tfjs's own Identity and
 * Cast and the tfjs Adam run again (tests and benchmarks compare both paths in one process).
 */
export function uninstallFusedKernels(tf: Tf): void {
  for (const op of Object.keys(FUSED) as (keyof typeof FUSED)[]) unregister(tf, op);
  for (const k of originals.splice(0)) {
    tf.unregisterKernel(k.kernelName, "wasm");
    tf.registerKernel(k);
  }
  installed = undefined;
}

/** Which fused ops run now (for `vlmc backend` and the benchmarks). */
export function fusedStatus(tf: Tf): { ops: string[]; adam: boolean } {
  const backend = tf.getBackend();
  return { ops: Object.values(FUSED).filter((k) => tf.getKernel(k, backend) !== undefined), adam: nativeAdam(tf) !== null };
}

// ---------------------------------------------------------------------------------------------
// Kernels

function offset(be: WasmBackend, t: TensorInfo): number {
  const d = be.dataIdMap.get(t.dataId);
  if (!d) throw new Error("internal: a tensor of the fused kernel is not on the wasm heap");
  return d.memoryOffset;
}

function heap(be: WasmBackend): ArrayBuffer {
  return be.wasm.HEAPU8.buffer as ArrayBuffer;
}

function register(tf: Tf, be: WasmBackend, addon: FusedAddon, op: keyof typeof FUSED): void {
  const kernel = (kernelName: string, kernelFunc: (args: KernelArgs) => TensorInfo | TensorInfo[]) =>
    tf.registerKernel({ kernelName, backendName: "wasm", kernelFunc: kernelFunc as unknown as tfjs.KernelFunc });
  const gradient = (kernelName: string, inputsToSave: string[], outputsToSave: boolean[], gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: Attrs) => Record<string, () => Tensor>) =>
    tf.registerGradient({ kernelName, inputsToSave, outputsToSave, gradFunc: gradFunc as unknown as tfjs.GradFunc });
  const run = (name: string, inputs: Record<string, Tensor>, attrs: Attrs = {}) => tf.engine().runKernel(name, inputs as tfjs.NamedTensorMap, attrs as tfjs.NamedAttrMap) as Tensor | Tensor[];

  switch (op) {
    case "layerNorm": {
      // x [.., C], gain [C], bias [C]? -> y [.., C], mean [rows], rstd [rows]
      kernel(FUSED.layerNorm, ({ inputs: { x, gain, bias }, attrs }) => {
        const cols = x!.shape[x!.shape.length - 1]!;
        const rows = size(x!.shape) / cols;
        const y = be.makeOutput(x!.shape, "float32");
        const mean = be.makeOutput([rows], "float32");
        const rstd = be.makeOutput([rows], "float32");
        addon.layerNormForward(heap(be), offset(be, x!), offset(be, gain!), bias ? offset(be, bias) : -1, offset(be, y), offset(be, mean), offset(be, rstd), rows, cols, attrs!.eps as number);
        return [y, mean, rstd];
      });
      kernel(GRAD.layerNorm, ({ inputs: { dy, x, mean, rstd, gain } }) => {
        const cols = x!.shape[x!.shape.length - 1]!;
        const rows = size(x!.shape) / cols;
        const dx = be.makeOutput(x!.shape, "float32");
        const dgain = be.makeOutput([cols], "float32");
        const dbias = be.makeOutput([cols], "float32");
        addon.layerNormBackward(heap(be), offset(be, dy!), offset(be, x!), offset(be, mean!), offset(be, rstd!), offset(be, gain!), offset(be, dx), offset(be, dgain), offset(be, dbias), rows, cols);
        return [dx, dgain, dbias];
      });
      gradient(FUSED.layerNorm, ["x", "gain"], [false, true, true], (dys, saved) => {
        const dy = (Array.isArray(dys) ? dys[0] : dys)!;
        const [x, gain, mean, rstd] = saved as [Tensor, Tensor, Tensor, Tensor];
        const [dx, dgain, dbias] = run(GRAD.layerNorm, { dy, x, mean, rstd, gain }) as [Tensor, Tensor, Tensor];
        return { x: () => dx, gain: () => dgain, bias: () => dbias };
      });
      break;
    }
    case "gelu": {
      kernel(FUSED.gelu, ({ inputs: { x }, attrs }) => {
        const y = be.makeOutput(x!.shape, "float32");
        addon.geluForward(heap(be), offset(be, x!), offset(be, y), size(x!.shape), attrs!.approximate === "tanh");
        return y;
      });
      kernel(GRAD.gelu, ({ inputs: { dy, x }, attrs }) => {
        const dx = be.makeOutput(x!.shape, "float32");
        addon.geluBackward(heap(be), offset(be, dy!), offset(be, x!), offset(be, dx), size(x!.shape), attrs!.approximate === "tanh");
        return dx;
      });
      gradient(FUSED.gelu, ["x"], [], (dy, saved, attrs) => ({ x: () => run(GRAD.gelu, { dy: dy as Tensor, x: saved[0]! }, attrs) as Tensor }));
      break;
    }
    case "softmax": {
      // scores [.., N] -> softmax(scale * scores) over the last dim; `causal` needs [.., N, N].
      kernel(FUSED.softmax, ({ inputs: { x }, attrs }) => {
        const cols = x!.shape[x!.shape.length - 1]!;
        const y = be.makeOutput(x!.shape, "float32");
        addon.softmaxForward(heap(be), offset(be, x!), offset(be, y), size(x!.shape) / cols, cols, attrs!.scale as number, attrs!.causal === true);
        return y;
      });
      kernel(GRAD.softmax, ({ inputs: { dy, y }, attrs }) => {
        const cols = y!.shape[y!.shape.length - 1]!;
        const dx = be.makeOutput(y!.shape, "float32");
        addon.softmaxBackward(heap(be), offset(be, dy!), offset(be, y!), offset(be, dx), size(y!.shape) / cols, cols, attrs!.scale as number);
        return dx;
      });
      gradient(FUSED.softmax, [], [true], (dy, saved, attrs) => ({ x: () => run(GRAD.softmax, { dy: dy as Tensor, y: saved[0]! }, { scale: attrs.scale }) as Tensor }));
      break;
    }
    case "dropout": {
      // The backward is the same kernel on dy: the mask is replayed from (rate, seed).
      kernel(FUSED.dropout, ({ inputs: { x }, attrs }) => {
        const y = be.makeOutput(x!.shape, "float32");
        addon.dropout(heap(be), offset(be, x!), offset(be, y), size(x!.shape), attrs!.rate as number, attrs!.seed as number);
        return y;
      });
      gradient(FUSED.dropout, [], [], (dy, _saved, attrs) => ({ x: () => run(FUSED.dropout, { x: dy as Tensor }, attrs) as Tensor }));
      break;
    }
    case "crossEntropy": {
      // logits [B, n, V], targets [B, T] int32, mask [B, T] -> loss [], lse [B * T]
      kernel(FUSED.crossEntropy, ({ inputs: { logits, targets, mask } }) => {
        const [b, n, v] = logits!.shape as [number, number, number];
        const t = targets!.shape[1]!;
        const loss = be.makeOutput([], "float32");
        const lse = be.makeOutput([b * t], "float32");
        addon.crossEntropyForward(heap(be), offset(be, logits!), offset(be, targets!), offset(be, mask!), offset(be, lse), offset(be, loss), b, n, t, v);
        return [loss, lse];
      });
      kernel(GRAD.crossEntropy, ({ inputs: { logits, targets, mask, lse, dy } }) => {
        const [b, n, v] = logits!.shape as [number, number, number];
        const dlogits = be.makeOutput(logits!.shape, "float32");
        addon.crossEntropyBackward(heap(be), offset(be, logits!), offset(be, targets!), offset(be, mask!), offset(be, lse!), offset(be, dy!), offset(be, dlogits), b, n, targets!.shape[1]!, v);
        return dlogits;
      });
      gradient(FUSED.crossEntropy, ["logits", "targets", "mask"], [false, true], (dys, saved) => {
        const dy = (Array.isArray(dys) ? dys[0] : dys)!;
        const [logits, targets, mask, lse] = saved as [Tensor, Tensor, Tensor, Tensor];
        return {
          logits: () => run(GRAD.crossEntropy, { logits, targets, mask, lse, dy }) as Tensor,
          // Data, not parameters: asked for only when a caller differentiates through them.
          targets: () => tf.zerosLike(targets).toFloat(),
          mask: () => tf.zerosLike(mask),
        };
      });
      break;
    }
  }
}

function unregister(tf: Tf, op: keyof typeof FUSED): void {
  for (const name of [FUSED[op], ...(op in GRAD ? [GRAD[op as keyof typeof GRAD]] : [])]) {
    if (tf.getKernel(name, "wasm")) tf.unregisterKernel(name, "wasm");
  }
  if (tf.getGradient(FUSED[op])) tf.unregisterGradient(FUSED[op]);
}

/** Identity and same-dtype Cast share their input's data (refcounted) instead of copying it. */
function installSharingKernels(tf: Tf): void {
  const share = (x: TensorInfo, backend: WasmBackend): TensorInfo => {
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
  const identity = tf.getKernel("Identity", "wasm");
  const cast = tf.getKernel("Cast", "wasm");
  if (!identity || !cast || originals.length > 0) return;
  originals.push(identity, cast);
  const castCopy = cast.kernelFunc;
  tf.unregisterKernel("Identity", "wasm");
  tf.registerKernel({
    kernelName: "Identity",
    backendName: "wasm",
    kernelFunc: (({ inputs: { x }, backend }: KernelArgs) => (x!.dtype === "string" ? identity.kernelFunc({ inputs: { x: x! }, backend } as never) : share(x!, backend as WasmBackend))) as unknown as tfjs.KernelFunc,
  });
  tf.unregisterKernel("Cast", "wasm");
  tf.registerKernel({
    kernelName: "Cast",
    backendName: "wasm",
    kernelFunc: ((args: KernelArgs) => (args.inputs.x!.dtype === args.attrs!.dtype && args.inputs.x!.dtype !== "string" ? share(args.inputs.x!, args.backend as WasmBackend) : castCopy(args as never))) as unknown as tfjs.KernelFunc,
  });
}

/**
 * Sum over leading axes (every bias gradient: dy [B, N, D] summed to [D]) in one native pass;
 * tfjs-wasm's Sum transposes such a tensor whole before reducing its innermost axis. Other sums
 * go to tfjs's kernel. Checked against it here; null when it agrees and stays installed.
 */
function installLeadingSum(tf: Tf, be: WasmBackend, addon: FusedAddon): string | null {
  const sum = tf.getKernel("Sum", "wasm");
  if (!sum) return "tfjs-wasm has no Sum kernel";
  const stock = sum.kernelFunc;
  const leading = (x: TensorInfo, axis: unknown): number => {
    const rank = x.shape.length;
    if (x.dtype !== "float32" || axis === undefined || axis === null) return 0;
    const axes = [...new Set((Array.isArray(axis) ? axis : [axis]).map((a) => (Number(a) + rank) % rank))].sort((a, b) => a - b);
    return axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i) ? axes.length : 0;
  };
  const config: tfjs.KernelConfig = {
    kernelName: "Sum",
    backendName: "wasm",
    kernelFunc: ((args: KernelArgs) => {
      const x = args.inputs.x!;
      const k = leading(x, args.attrs!.axis);
      if (k === 0) return stock(args as never);
      const kept = x.shape.slice(k);
      const inner = size(kept);
      const out = be.makeOutput(args.attrs!.keepDims ? [...x.shape.slice(0, k).map(() => 1), ...kept] : kept, "float32");
      addon.sumLeading(heap(be), offset(be, x), offset(be, out), size(x.shape) / inner, inner);
      return out;
    }) as unknown as tfjs.KernelFunc,
  };
  let why: string | null = null;
  tf.tidy(() => {
    const x = tf.randomUniform([6, 5, 130], -1, 1, "float32", 31);
    const want = [tf.sum(x, [0, 1]), tf.sum(x, 0, true), tf.sum(x, -1)].map((t) => t.dataSync().slice());
    tf.unregisterKernel("Sum", "wasm");
    tf.registerKernel(config);
    const got = [tf.sum(x, [1, 0]), tf.sum(x, 0, true), tf.sum(x, -1)];
    got.forEach((g, i) => {
      const d = relDiff(g.dataSync(), want[i]!);
      if (why === null && !(d <= 1e-5)) why = `differs from tfjs's Sum by ${d.toExponential(1)} (relative)`;
    });
    if (why !== null || tf.sum(x, [0, 1], true).shape.join() !== "1,1,130") {
      why ??= "keepDims gives the wrong shape";
      tf.unregisterKernel("Sum", "wasm");
      tf.registerKernel(sum);
    }
  });
  if (why === null) originals.push(sum);
  return why;
}

// ---------------------------------------------------------------------------------------------
// Self-checks: each fused op against the composite ops (forward and every gradient) on small
// random inputs. A disagreement leaves the op out (the composite runs), with why.

function maxRelDiff(a: Tensor, b: Tensor): number {
  return relDiff(a.dataSync(), b.dataSync());
}

function relDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) return Infinity;
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < x.length; i++) {
    scale = Math.max(scale, Math.abs(y[i]!));
    diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
    if (!Number.isFinite(x[i]!)) return Infinity;
  }
  return diff / Math.max(scale, 1e-6);
}

function compare(tf: Tf, fused: (...xs: Tensor[]) => Tensor, composite: (...xs: Tensor[]) => Tensor, inputs: Tensor[], tol = 1e-4): string | null {
  const seedDy = tf.randomUniform(fused(...inputs).shape, -1, 1, "float32", 11);
  const withGrads = (f: (...xs: Tensor[]) => Tensor) => {
    const g = tf.grads((...xs: Tensor[]) => tf.sum(tf.mul(f(...xs), seedDy)));
    return { y: f(...inputs), dx: g(inputs) };
  };
  const a = withGrads(fused);
  const b = withGrads(composite);
  const dy = maxRelDiff(a.y, b.y);
  if (!(dy <= tol)) return `forward differs from the composite by ${dy.toExponential(1)} (relative)`;
  for (let i = 0; i < inputs.length; i++) {
    const d = maxRelDiff(a.dx[i]!, b.dx[i]!);
    if (!(d <= tol)) return `gradient ${i} differs from the composite by ${d.toExponential(1)} (relative)`;
  }
  return null;
}

function selfCheck(tf: Tf, op: keyof typeof FUSED): string | null {
  try {
    const u = (shape: number[], seed: number, lo = -2, hi = 2) => tf.randomUniform(shape, lo, hi, "float32", seed);
    const run = (name: string, inputs: Record<string, Tensor>, attrs: Attrs) => tf.engine().runKernel(name, inputs as tfjs.NamedTensorMap, attrs as tfjs.NamedAttrMap) as Tensor | Tensor[];
    switch (op) {
      case "layerNorm":
        return compare(
          tf,
          (x, g, b) => (run(FUSED.layerNorm, { x: x!, gain: g!, bias: b! }, { eps: 1e-5 }) as Tensor[])[0]!,
          (x, g, b) => layerNormComposite(tf, x!, g!, b, 1e-5),
          [u([3, 5, 24], 1), u([24], 2), u([24], 3)],
        );
      case "gelu":
        return (
          compare(tf, (x) => run(FUSED.gelu, { x: x! }, { approximate: "erf" }) as Tensor, (x) => geluComposite(tf, x!, "erf"), [u([4, 37], 4, -6, 6)]) ??
          compare(tf, (x) => run(FUSED.gelu, { x: x! }, { approximate: "tanh" }) as Tensor, (x) => geluComposite(tf, x!, "tanh"), [u([4, 37], 5, -6, 6)])
        );
      case "softmax":
        return (
          compare(tf, (x) => run(FUSED.softmax, { x: x! }, { scale: 0.3, causal: true }) as Tensor, (x) => softmaxComposite(tf, x!, 0.3, true), [u([2, 3, 7, 7], 6, -5, 5)]) ??
          compare(tf, (x) => run(FUSED.softmax, { x: x! }, { scale: 1.7, causal: false }) as Tensor, (x) => softmaxComposite(tf, x!, 1.7, false), [u([2, 3, 5, 9], 7, -5, 5)])
        );
      case "dropout": {
        // No composite draws the same mask: check what a dropout must do instead. Every element
        // is 0 or x / (1 - p), about p of them 0, and the gradient applies the same mask.
        const x = u([64, 64], 8, 0.5, 1.5);
        const p = 0.25;
        const y = run(FUSED.dropout, { x }, { rate: p, seed: 12345 }) as Tensor;
        const g = tf.grad((t: Tensor) => tf.sum(run(FUSED.dropout, { x: t }, { rate: p, seed: 12345 }) as Tensor))(x);
        const [xs, ys, gs] = [x.dataSync(), y.dataSync(), g.dataSync()];
        let zeros = 0;
        for (let i = 0; i < xs.length; i++) {
          const kept = ys[i] !== 0;
          if (!kept) zeros++;
          if (kept && Math.abs(ys[i]! - xs[i]! / (1 - p)) > 1e-5 * ys[i]!) return `a kept element is ${ys[i]}, expected ${xs[i]! / (1 - p)}`;
          if (Math.abs(gs[i]! - (kept ? 1 / (1 - p) : 0)) > 1e-5) return "the gradient does not apply the forward's mask";
        }
        const frac = zeros / xs.length;
        if (Math.abs(frac - p) > 0.03) return `it dropped ${(frac * 100).toFixed(1)}% of elements, expected ${p * 100}%`;
        // The composite path must still be callable (the forward of a non-native backend).
        dropoutComposite(tf, x, p, 1).dispose();
        return null;
      }
      case "crossEntropy": {
        const targets = tf.tensor2d([[1, 4, 0], [2, 2, 3]], [2, 3], "int32");
        const mask = tf.tensor2d([[1, 1, 0], [1, 0.5, 1]], [2, 3]);
        return compare(
          tf,
          (l) => (run(FUSED.crossEntropy, { logits: l!, targets, mask }, {}) as Tensor[])[0]!,
          (l) => crossEntropyComposite(tf, l!, targets, mask),
          [u([2, 5, 6], 9, -4, 4)],
        );
      }
    }
  } catch (err) {
    return `it failed to run (${err instanceof Error ? err.message.split("\n")[0] : String(err)})`;
  }
}

// ---------------------------------------------------------------------------------------------
// Adam: runtime/optim.ts calls nativeAdam(tf) once per step.

/** Adam's settings, as runtime/optim.ts holds them. */
export type AdamHyper = AdamOptions;

/**
 * The native Adam update for the current backend, or null (another backend, no addon, or its
 * self-check failed). The update writes p, m and v in place; it returns false, changing
 * nothing, when one of them shares its data with another tensor (a clone the caller holds),
 * and the caller then runs the tfjs ops.
 */
export function nativeAdam(tf: Tf): ((p: Tensor, g: Tensor, m: Tensor, v: Tensor, h: AdamHyper, step: number) => boolean) | null {
  const s = installed;
  if (!s || !s.adam || s.tf !== tf || tf.getBackend() !== "wasm") return null;
  return adamWith(s);
}

function adamWith(s: State) {
  return (p: Tensor, g: Tensor, m: Tensor, v: Tensor, h: AdamHyper, step: number): boolean => {
    const be = s.backend;
    const own = [p, m, v].map((t) => be.dataIdMap.get(t.dataId));
    const gd = be.dataIdMap.get(g.dataId);
    if (own.some((d) => !d || d.refCount !== 1) || !gd || g.dtype !== "float32" || g.size !== p.size) return false;
    s.addon.adamUpdate(heap(be), own[0]!.memoryOffset, gd.memoryOffset, own[1]!.memoryOffset, own[2]!.memoryOffset, p.size, h.lr, h.beta1, h.beta2, h.eps, h.weightDecay, h.decoupled, step);
    return true;
  };
}

/** Two steps of the native update against the tfjs ops of runtime/optim.ts, for both decays. */
function checkAdam(tf: Tf): string | null {
  if (!installed) return "not installed";
  const update = adamWith(installed);
  for (const decoupled of [false, true]) {
    const h: AdamHyper = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, decoupled };
    const n = 300;
    const init = tf.randomUniform([n], -1, 1, "float32", 21);
    const grads = [tf.randomUniform([n], -1, 1, "float32", 22), tf.randomUniform([n], -1, 1, "float32", 23)];
    // Native, on fresh (unshared) tensors.
    const p = tf.add(init, 0);
    const m = tf.zeros([n]);
    const v = tf.zeros([n]);
    let ok = true;
    grads.forEach((g, i) => (ok = ok && update(p, g, m, v, h, i + 1)));
    // The tfjs ops, as runtime/optim.ts writes them.
    let rp: Tensor = init;
    let rm: Tensor = tf.zeros([n]);
    let rv: Tensor = tf.zeros([n]);
    grads.forEach((g0, i) => {
      const c1 = 1 - h.beta1 ** (i + 1);
      const c2 = 1 - h.beta2 ** (i + 1);
      const g = decoupled ? g0 : tf.add(g0, tf.mul(rp, h.weightDecay));
      rm = tf.add(tf.mul(rm, h.beta1), tf.mul(g, 1 - h.beta1));
      rv = tf.add(tf.mul(rv, h.beta2), tf.mul(tf.square(g), 1 - h.beta2));
      let next = tf.sub(rp, tf.mul(tf.div(rm, tf.add(tf.sqrt(tf.div(rv, c2)), h.eps)), h.lr / c1));
      if (decoupled) next = tf.sub(next, tf.mul(rp, h.lr * h.weightDecay));
      rp = next;
    });
    const d = Math.max(maxRelDiff(p, rp), maxRelDiff(m, rm), maxRelDiff(v, rv));
    tf.dispose([init, ...grads, p, m, v, rp, rm, rv]);
    if (!ok) return "the update refused fresh tensors";
    if (!(d <= 1e-5)) return `the update differs from the tfjs ops by ${d.toExponential(1)} (relative)`;
  }
  return null;
}
