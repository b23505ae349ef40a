// The native matmul for tfjs-wasm: overrides the wasm backend's `BatchMatMul` and
// `_FusedMatMul` kernels with the addon's GEMM (native/src/gemm.cc), which reads the inputs
// and writes the output on the wasm heap in place. Stock wasm is fast only for 2-D
// non-transposed products; this is fast for every transpose and batch layout, and multithreaded.
//
// Anything the addon does not do (non-float32, a batch broadcast other than "one side is 1",
// a fused activation other than linear/relu/relu6/leakyrelu, a bias that is not [n]) goes to the
// original kernel, kept from `tf.getKernel`. Before the override stays, a self-check compares it
// with the original kernels on small random inputs; any disagreement restores the originals.
//
// It relies on tfjs-backend-wasm 4.22's internals (backend.dataIdMap entries' memoryOffset,
// backend.makeOutput, backend.wasm.HEAPU8); test/native.test.ts fails loudly if an upgrade
// changes them.
import type * as Tfjs from "@tensorflow/tfjs";
import type { NativeAddon } from "./load.js";

type Tf = typeof Tfjs;
type TensorInfo = Tfjs.TensorInfo;
type KernelConfig = Tfjs.KernelConfig;

/** The parts of tfjs-backend-wasm's BackendWasm the override uses. */
export interface WasmBackendInternals {
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: "float32"): TensorInfo;
  readSync(dataId: object): ArrayLike<number>;
  disposeData(dataId: object, force?: boolean): boolean;
  wasm: { HEAPU8: Uint8Array };
}

/** Set on the kernel configs registered here: `nativeMatmulActive` and compiler/layers/ops.ts read it. */
export const NATIVE_MARK = "vlmcNative";

const KERNELS = ["BatchMatMul", "_FusedMatMul"] as const;
const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, relu6: 2, leakyrelu: 3 };

export interface InstallResult {
  installed: boolean;
  /** Why not (one line), when not. */
  reason?: string;
}

/** Whether the wasm backend's matmul kernels are the native ones now. */
export function nativeMatmulActive(tf: Tf): boolean {
  const k = tf.getKernel("BatchMatMul", "wasm") as (KernelConfig & { [NATIVE_MARK]?: boolean }) | undefined;
  return k?.[NATIVE_MARK] === true;
}

/** The addon's view of one product: sizes, batches, and the output shape tfjs expects. */
interface Plan {
  batch: number;
  batchA: number;
  batchB: number;
  m: number;
  n: number;
  k: number;
  outShape: number[];
}

const size = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

function plan(tf: Tf, a: readonly number[], b: readonly number[], transA: boolean, transB: boolean): Plan | undefined {
  const ra = a.length;
  const rb = b.length;
  if (ra < 2 || rb < 2) return undefined;
  const m = transA ? a[ra - 1]! : a[ra - 2]!;
  const k = transA ? a[ra - 2]! : a[ra - 1]!;
  const kb = transB ? b[rb - 1]! : b[rb - 2]!;
  const n = transB ? b[rb - 2]! : b[rb - 1]!;
  if (k !== kb) return undefined;
  let outer: number[];
  try {
    outer = tf.backend_util.assertAndGetBroadcastShape(a.slice(0, -2), b.slice(0, -2));
  } catch {
    return undefined;
  }
  const batch = size(outer);
  const batchA = size(a.slice(0, -2));
  const batchB = size(b.slice(0, -2));
  // One side's batch equal to the output's means its batch dims are the output's (broadcasting
  // only stretches 1s), so matrix i of the output pairs with matrix i, or with the only one.
  if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) return undefined;
  return { batch, batchA, batchB, m, n, k, outShape: [...outer, m, n] };
}

function offset(backend: WasmBackendInternals, t: TensorInfo): number {
  const data = backend.dataIdMap.get(t.dataId);
  if (!data || typeof data.memoryOffset !== "number") throw new Error("internal: a tensor without a wasm heap offset");
  return data.memoryOffset;
}

function run(addon: NativeAddon, backend: WasmBackendInternals, a: TensorInfo, b: TensorInfo, p: Plan, transA: boolean, transB: boolean, bias: TensorInfo | undefined, act: number, alpha: number): TensorInfo {
  const out = backend.makeOutput(p.outShape, "float32");
  if (p.batch * p.m * p.n === 0) return out;
  const aOff = offset(backend, a);
  const bOff = offset(backend, b);
  const outOff = offset(backend, out);
  const biasOff = bias ? offset(backend, bias) : -1;
  // The heap's buffer only now: makeOutput may have grown the heap, which replaces it.
  const heap = backend.wasm.HEAPU8.buffer as ArrayBuffer;
  addon.matmul(heap, aOff, bOff, outOff, p.batch, p.batchA, p.batchB, p.m, p.n, p.k, transA, transB, biasOff, act, alpha);
  return out;
}

type KernelArgs = { inputs: Record<string, TensorInfo | undefined>; backend: unknown; attrs?: Record<string, unknown> };
type KernelFn = (args: KernelArgs) => TensorInfo | TensorInfo[];

function nativeKernels(tf: Tf, addon: NativeAddon, originals: Record<(typeof KERNELS)[number], KernelConfig>): Record<(typeof KERNELS)[number], KernelFn> {
  const fallback = (name: (typeof KERNELS)[number], args: KernelArgs) => (originals[name].kernelFunc as unknown as KernelFn)(args);
  return {
    BatchMatMul: (args) => {
      const { a, b } = args.inputs;
      const transA = Boolean(args.attrs?.transposeA);
      const transB = Boolean(args.attrs?.transposeB);
      if (!a || !b || a.dtype !== "float32" || b.dtype !== "float32") return fallback("BatchMatMul", args);
      const p = plan(tf, a.shape, b.shape, transA, transB);
      if (!p) return fallback("BatchMatMul", args);
      return run(addon, args.backend as WasmBackendInternals, a, b, p, transA, transB, undefined, 0, 0);
    },
    _FusedMatMul: (args) => {
      const { a, b, bias, preluActivationWeights } = args.inputs;
      const transA = Boolean(args.attrs?.transposeA);
      const transB = Boolean(args.attrs?.transposeB);
      const act = ACTIVATIONS[String(args.attrs?.activation ?? "linear")];
      if (!a || !b || a.dtype !== "float32" || b.dtype !== "float32" || act === undefined || preluActivationWeights) return fallback("_FusedMatMul", args);
      const p = plan(tf, a.shape, b.shape, transA, transB);
      if (!p) return fallback("_FusedMatMul", args);
      if (bias && (bias.dtype !== "float32" || bias.shape.length !== 1 || bias.shape[0] !== p.n)) return fallback("_FusedMatMul", args);
      const alpha = Number(args.attrs?.leakyreluAlpha ?? 0.2);
      return run(addon, args.backend as WasmBackendInternals, a, b, p, transA, transB, bias, act, alpha);
    },
  };
}

/**
 * Registers the native kernels for the wasm backend (the active backend must be wasm), checks
 * them against the originals, and keeps them only if they agree. Idempotent.
 */
export function installNativeMatmul(tf: Tf, addon: NativeAddon): InstallResult {
  if (tf.getBackend() !== "wasm") return { installed: false, reason: `the active backend is ${tf.getBackend()}, not wasm` };
  if (nativeMatmulActive(tf)) return { installed: true };
  const backend = tf.backend() as unknown as WasmBackendInternals;
  const missing = missingInternals(backend);
  if (missing) return { installed: false, reason: `tfjs-backend-wasm lacks ${missing} (a different tfjs version?)` };
  const originals = {} as Record<(typeof KERNELS)[number], KernelConfig>;
  for (const name of KERNELS) {
    const k = tf.getKernel(name, "wasm");
    if (!k) return { installed: false, reason: `tfjs-backend-wasm has no ${name} kernel` };
    originals[name] = k;
  }
  const kernels = nativeKernels(tf, addon, originals);
  let problem: string | undefined;
  try {
    problem = selfCheck(tf, backend, kernels, originals);
  } catch (err) {
    problem = `it threw: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`;
  }
  if (problem) return { installed: false, reason: `self-check failed, stock kernels kept: ${problem}` };
  for (const name of KERNELS) {
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel({ kernelName: name, backendName: "wasm", kernelFunc: kernels[name] as unknown as Tfjs.KernelFunc, [NATIVE_MARK]: true } as KernelConfig);
  }
  restoreOnDemand.set(tf, originals);
  return { installed: true };
}

const restoreOnDemand = new WeakMap<Tf, Record<string, KernelConfig>>();

/** Puts the stock kernels back (for tests that compare the two in one process). */
export function uninstallNativeMatmul(tf: Tf): void {
  const originals = restoreOnDemand.get(tf);
  if (!originals || !nativeMatmulActive(tf)) return;
  for (const name of KERNELS) {
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel(originals[name]!);
  }
}

/** The first internal the override needs that this backend object lacks, if any. */
export function missingInternals(backend: unknown): string | undefined {
  const b = backend as Partial<WasmBackendInternals> | undefined;
  if (!b || typeof b.dataIdMap?.get !== "function") return "backend.dataIdMap";
  if (typeof b.makeOutput !== "function") return "backend.makeOutput";
  if (typeof b.readSync !== "function" || typeof b.disposeData !== "function") return "backend.readSync/disposeData";
  if (!(b.wasm?.HEAPU8 instanceof Uint8Array)) return "backend.wasm.HEAPU8";
  return undefined;
}

/** What _FusedMatMul adds to a product: bias over the last dim, then the activation. */
function epilogue(y: Float32Array, bias: ArrayLike<number> | undefined, activation: string, alpha: number): void {
  const n = bias?.length ?? 1;
  for (let i = 0; i < y.length; i++) {
    const v = y[i]! + (bias ? bias[i % n]! : 0);
    y[i] = activation === "relu" ? Math.max(v, 0) : activation === "relu6" ? Math.min(Math.max(v, 0), 6) : activation === "leakyrelu" ? (v > 0 ? v : alpha * v) : v;
  }
}

/** Small deterministic inputs covering every path of the override; the first disagreement, if any. */
function selfCheck(tf: Tf, backend: WasmBackendInternals, kernels: Record<string, KernelFn>, originals: Record<string, KernelConfig>): string | undefined {
  let seed = 12345;
  const rand = (shape: number[]) => {
    const v = new Float32Array(size(shape));
    for (let i = 0; i < v.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      v[i] = seed / 2 ** 31 - 1;
    }
    return tf.tensor(v, shape);
  };
  type Case = { kernel: "BatchMatMul" | "_FusedMatMul"; a: number[]; b: number[]; ta: boolean; tb: boolean; bias?: number; activation?: string };
  const cases: Case[] = [];
  for (const ta of [false, true]) {
    for (const tb of [false, true]) {
      const [m, n, k] = [7, 19, 33];
      const a2 = ta ? [k, m] : [m, k];
      const b2 = tb ? [n, k] : [k, n];
      cases.push({ kernel: "BatchMatMul", a: a2, b: b2, ta, tb });
      cases.push({ kernel: "BatchMatMul", a: [3, ...a2], b: [3, ...b2], ta, tb });
      cases.push({ kernel: "BatchMatMul", a: [1, ...a2], b: [3, ...b2], ta, tb });
      cases.push({ kernel: "BatchMatMul", a: [2, 3, ...a2], b: b2, ta, tb });
      cases.push({ kernel: "_FusedMatMul", a: [2, ...a2], b: [2, ...b2], ta, tb, bias: n, activation: "relu" });
      cases.push({ kernel: "_FusedMatMul", a: [2, ...a2], b: [1, ...b2], ta, tb, activation: "relu6" });
    }
  }
  // Large enough to be split across the addon's threads.
  cases.push({ kernel: "BatchMatMul", a: [160, 150], b: [150, 200], ta: false, tb: false });
  cases.push({ kernel: "_FusedMatMul", a: [1, 5, 40], b: [1, 40, 24], ta: false, tb: false, bias: 24, activation: "linear" });
  cases.push({ kernel: "_FusedMatMul", a: [1, 5, 40], b: [1, 24, 40], ta: false, tb: true, bias: 24, activation: "leakyrelu" });

  for (const c of cases) {
    const made = [rand(c.a), rand(c.b), ...(c.bias ? [rand([c.bias])] : [])];
    const inputs: Record<string, TensorInfo> = { a: made[0]!, b: made[1]! };
    if (made[2]) inputs.bias = made[2];
    const attrs = { transposeA: c.ta, transposeB: c.tb, activation: c.activation ?? "linear", leakyreluAlpha: 0.1 };
    const ours = kernels[c.kernel]!({ inputs, backend, attrs }) as TensorInfo;
    // The reference is the stock BatchMatMul, with bias and activation added here: stock
    // wasm's _FusedMatMul adds the bias wrongly to transposed or batched products (tfjs 4.22).
    const theirs = (originals.BatchMatMul!.kernelFunc as unknown as KernelFn)({ inputs: { a: inputs.a, b: inputs.b }, backend, attrs }) as TensorInfo;
    try {
      const x = backend.readSync(ours.dataId);
      const y = Float32Array.from(backend.readSync(theirs.dataId));
      if (c.kernel === "_FusedMatMul") epilogue(y, inputs.bias ? backend.readSync(inputs.bias.dataId) : undefined, attrs.activation, attrs.leakyreluAlpha);
      const label = `${c.kernel} a=[${c.a}] b=[${c.b}] transposeA=${c.ta} transposeB=${c.tb}${c.activation ? ` ${c.activation}` : ""}`;
      if (ours.shape.join() !== theirs.shape.join()) return `${label}: shape [${ours.shape}] vs [${theirs.shape}]`;
      let scale = 0;
      for (let i = 0; i < y.length; i++) scale = Math.max(scale, Math.abs(y[i]!));
      for (let i = 0; i < y.length; i++) {
        const d = Math.abs(x[i]! - y[i]!);
        if (!(d <= 1e-4 * (1 + scale))) return `${label}: element ${i} is ${x[i]} vs ${y[i]}`;
      }
    } finally {
      backend.disposeData(ours.dataId, true);
      backend.disposeData(theirs.dataId, true);
      for (const t of made) t.dispose();
    }
  }
  return undefined;
}
