// The native accelerator as the wasm backend sees it: load the addon (load.ts) and override the
// matmul kernels (matmul.ts), and say in a few words what runs, for the one line `initBackend`
// logs. Only for the wasm backend: tfjs-node has its own native kernels, and the cpu backend's
// tensors do not live on a wasm heap.
import type * as Tfjs from "@tensorflow/tfjs";
import { loadNative, type NativeStatus } from "./load.js";
import { installNativeMatmul } from "./matmul.js";
import { installFusedKernels, type FusedAddon, type FusedInstall } from "./fused.js";

export { loadNative, nativeAddonPath, type NativeAddon, type NativeStatus } from "./load.js";
export { installNativeMatmul, nativeMatmulActive, uninstallNativeMatmul } from "./matmul.js";

export interface NativeReport {
  /** Whether the native matmul kernels run. */
  matmul: boolean;
  isa?: string;
  threads?: number;
  /** Why not, when not (one line). */
  reason?: string;
  /** The fused kernels (fused.ts): which run, which were left out and why. */
  fused?: FusedInstall;
  /** For the backend line: "native matmul (avx512, 2 threads)" or "native accelerator not built: ...". */
  summary: string;
}

/** Loads the addon and installs its kernels into the (active) wasm backend. */
export function installNative(tf: typeof Tfjs, status: NativeStatus = loadNative()): NativeReport {
  if (!status.loaded || !status.addon) {
    const reason = status.reason ?? "not loaded";
    return { matmul: false, reason, summary: `native accelerator ${reason}` };
  }
  // The fused element-wise kernels, layer norm, softmax, loss and Adam (fused.ts); each only
  // after its self-check, so a disagreement leaves that op on the composite path.
  const fused = installFusedKernels(tf, tf.backend(), status.addon as Partial<FusedAddon>);
  const fusedNote = fused.skipped.length > 0 ? `; fused ops left out: ${fused.skipped.map((f) => `${f.op} (${f.why})`).join(", ")}` : "";
  const got = installNativeMatmul(tf, status.addon);
  if (!got.installed) {
    const reason = got.reason ?? "not installed";
    return { matmul: false, isa: status.isa, threads: status.threads, reason, fused, summary: `native matmul off: ${reason}${fusedNote}` };
  }
  const threads = `${status.threads} thread${status.threads === 1 ? "" : "s"}`;
  return { matmul: true, isa: status.isa, threads: status.threads, fused, summary: `native matmul (${status.isa}, ${threads})${fusedNote}` };
}
