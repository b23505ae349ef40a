// Finding and loading the native accelerator (native/build/vlmc_native.node, built from
// native/src by native/build.mjs during `npm ci`). It is optional: when it is absent, disabled
// or fails to load, vlmc runs on stock tfjs-wasm, and the status says why in one line.
//
// The addon is looked up from the package root (the nearest package.json above this file), so
// the same code finds it from the TypeScript sources and from dist/.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The functions the addon exports (native/src: gemm.cc, addon.cc, and the fused kernels). */
export interface NativeAddon {
  info(): { isa: string; threads: number; compiler: string; functions: string[] };
  /** out[batch,m,n] = op(a) op(b) (+ bias[n]) then act; byte offsets into heap; biasOff -1 for none. */
  matmul(
    heap: ArrayBuffer,
    aOff: number,
    bOff: number,
    outOff: number,
    batch: number,
    batchA: number,
    batchB: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    biasOff: number,
    act: number,
    alpha: number,
  ): void;
  /** Picks the GEMM microkernel (avx512, avx2, generic); returns the one in use. For tests and benchmarks. */
  setIsa(name: string): string;
  [name: string]: unknown;
}

export interface NativeStatus {
  loaded: boolean;
  /** Why it is not loaded (one line), when it is not. */
  reason?: string;
  /** The GEMM microkernel this CPU runs: avx512, avx2 or generic. */
  isa?: string;
  /** The addon's thread pool size (VLMC_THREADS, else the CPUs this process may use). */
  threads?: number;
  compiler?: string;
  /** The file loaded, or looked for. */
  path: string;
  addon?: NativeAddon;
}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) return dirname(fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

/** Where the build puts the addon. */
export function nativeAddonPath(): string {
  return join(packageRoot(), "native", "build", "vlmc_native.node");
}

let cached: NativeStatus | undefined;

/**
 * Loads the addon once per process (later calls return the same status). `VLMC_NATIVE=0`
 * disables it; the reason says so.
 */
export function loadNative(env: NodeJS.ProcessEnv = process.env): NativeStatus {
  const path = nativeAddonPath();
  if (env.VLMC_NATIVE === "0") return { loaded: false, reason: "disabled by VLMC_NATIVE=0", path };
  if (cached) return cached;
  if (!existsSync(path)) return (cached = { loaded: false, reason: notBuiltReason(path), path });
  try {
    const addon = createRequire(import.meta.url)(path) as NativeAddon;
    const info = addon.info();
    return (cached = { loaded: true, isa: info.isa, threads: info.threads, compiler: info.compiler, path, addon });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    return (cached = { loaded: false, reason: `failed to load (${msg.split("\n")[0]}); rebuild it with \`npm run build:native\``, path });
  }
}

/** What build-info.json says about a failed build, else how to build it. */
function notBuiltReason(path: string): string {
  try {
    const info = JSON.parse(readFileSync(join(dirname(path), "build-info.json"), "utf8")) as { built?: boolean; reason?: string };
    if (info.built === false && info.reason) return `not built: ${info.reason}`;
  } catch {
    // no record: never built here
  }
  return "not built (run `npm run build:native`; it needs a C++ compiler)";
}
