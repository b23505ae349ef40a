// Which TensorFlow.js backend runs a model, and loading it.
//
// `auto` picks @tensorflow/tfjs-node-gpu, then @tensorflow/tfjs-node when either is installed
// (both are optional: they download libtensorflow when installed, so the project neither depends
// on them nor needs them), else the WebAssembly backend (@tensorflow/tfjs-backend-wasm, SIMD),
// which ships its .wasm binaries inside the npm package and so works offline. `cpu` is tfjs's
// pure-JavaScript backend: always there, much slower.
//
// `selectBackend` is the choice alone, pure over a probe of which packages resolve; `initBackend`
// loads tfjs with dynamic imports (nothing here imports tfjs statically, so the compiler's
// `check` never loads it), registers the backend and says once which one runs and why.
import { createRequire } from "node:module";
import { dirname, sep } from "node:path";
import type * as Tfjs from "@tensorflow/tfjs";
import type * as TfjsWasm from "@tensorflow/tfjs-backend-wasm";
import { installNative, type NativeReport } from "./native/index.js";

export type Tf = typeof Tfjs;

/** What the user asks for (`--backend`, `VLMC_BACKEND`). */
export type BackendRequest = "auto" | "wasm" | "cpu" | "tensorflow";
export const BACKEND_REQUESTS: readonly BackendRequest[] = ["auto", "wasm", "cpu", "tensorflow"];

/** What runs. `tensorflow-gpu` and `tensorflow` are both tfjs's `tensorflow` backend (libtensorflow). */
export type BackendName = "tensorflow-gpu" | "tensorflow" | "wasm" | "cpu";

/** The tfjs release vlmc is built and tested against (package.json pins it exactly). */
export const TFJS_VERSION = "4.22.0";
export const TFJS_NODE_GPU = "@tensorflow/tfjs-node-gpu";
export const TFJS_NODE = "@tensorflow/tfjs-node";
const TFJS = "@tensorflow/tfjs";
const TFJS_WASM = "@tensorflow/tfjs-backend-wasm";

export interface Selection {
  name: BackendName;
  reason: string;
  /** The package that provides a `tensorflow*` backend. */
  package?: typeof TFJS_NODE_GPU | typeof TFJS_NODE;
}

/** Whether a package is installed (resolvable from here). */
export type Probe = (pkg: string) => boolean;

/** A backend that cannot run as asked. The message is one line, meant for the user as is. */
export class BackendError extends Error {
  override name = "BackendError";
}

const require = createRequire(import.meta.url);

/** Resolves the package without loading it. */
export const defaultProbe: Probe = (pkg) => {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
};

const INSTALL_HINT =
  `on a machine with internet access (and CUDA for the GPU build) run \`npm install ${TFJS_NODE_GPU}@${TFJS_VERSION}\` ` +
  `(or \`${TFJS_NODE}@${TFJS_VERSION}\` for CPU), which downloads libtensorflow at install; or use --backend wasm`;

/** A backend request from `--backend` or `VLMC_BACKEND`; `from` names where it came from in the error. */
export function parseBackendRequest(value: string, from = "--backend"): BackendRequest {
  const v = value.trim().toLowerCase();
  if ((BACKEND_REQUESTS as readonly string[]).includes(v)) return v as BackendRequest;
  throw new BackendError(`${from}: unknown backend \`${value}\`; expected one of ${BACKEND_REQUESTS.join(", ")}`);
}

/**
 * The request: `--backend` when given, else `VLMC_BACKEND` when set and not empty, else `auto`.
 * Throws BackendError for an unknown name.
 */
export function backendRequest(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): BackendRequest {
  if (flag !== undefined) return parseBackendRequest(flag);
  const fromEnv = env.VLMC_BACKEND?.trim();
  return fromEnv ? parseBackendRequest(fromEnv, "VLMC_BACKEND") : "auto";
}

/**
 * The backend for a request, given which optional packages are installed. `failed` holds the
 * packages that are installed but failed to load, with why (`initBackend` passes it when it
 * falls back); `auto` skips them. Throws BackendError when `tensorflow` cannot be had.
 */
export function selectBackend(requested: BackendRequest, probe: Probe = defaultProbe, failed: ReadonlyMap<string, string> = new Map()): Selection {
  switch (requested) {
    case "cpu":
      return { name: "cpu", reason: "requested; tfjs's pure-JavaScript backend" };
    case "wasm":
      return { name: "wasm", reason: "requested" };
    case "tensorflow": {
      const gpu = probe(TFJS_NODE_GPU);
      const node = probe(TFJS_NODE);
      if (gpu) return { name: "tensorflow-gpu", reason: `requested: ${TFJS_NODE_GPU} is installed`, package: TFJS_NODE_GPU };
      if (node) return { name: "tensorflow", reason: `requested: ${TFJS_NODE} is installed, ${TFJS_NODE_GPU} is not`, package: TFJS_NODE };
      throw new BackendError(`--backend tensorflow needs ${TFJS_NODE_GPU} or ${TFJS_NODE}, and neither is installed: ${INSTALL_HINT}`);
    }
    case "auto": {
      const state = (pkg: string): "installed" | "absent" | "failed" => (failed.has(pkg) ? "failed" : probe(pkg) ? "installed" : "absent");
      const gpu = state(TFJS_NODE_GPU);
      const node = state(TFJS_NODE);
      if (gpu === "installed") {
        const also = node === "installed" ? ` (preferred over ${TFJS_NODE}, also installed)` : "";
        return { name: "tensorflow-gpu", reason: `auto: ${TFJS_NODE_GPU} is installed${also}`, package: TFJS_NODE_GPU };
      }
      if (node === "installed") {
        const gpuWhy = gpu === "failed" ? `${TFJS_NODE_GPU} failed to load (${failed.get(TFJS_NODE_GPU)})` : `${TFJS_NODE_GPU} is not`;
        return { name: "tensorflow", reason: `auto: ${TFJS_NODE} is installed, ${gpuWhy}`, package: TFJS_NODE };
      }
      if (gpu === "absent" && node === "absent") return { name: "wasm", reason: `auto: ${TFJS_NODE_GPU} and ${TFJS_NODE} are not installed` };
      const why = (pkg: string, s: string) => (s === "failed" ? `${pkg} is installed but failed to load (${failed.get(pkg)})` : `${pkg} is not installed`);
      return { name: "wasm", reason: `auto: ${why(TFJS_NODE_GPU, gpu)}; ${why(TFJS_NODE, node)}` };
    }
    default: {
      const never: never = requested;
      throw new BackendError(`unknown backend \`${String(never)}\`; expected one of ${BACKEND_REQUESTS.join(", ")}`);
    }
  }
}

export interface WasmInfo {
  simd: boolean;
  /** Always false in Node.js: tfjs 4.22 turns wasm threads off there (tensorflow/tfjs#3830). */
  threads: boolean;
  /** The .wasm file that was loaded, a name in `dir`. */
  binary: string;
  /** The folder the binaries are read from (a file path, ending in a separator). */
  dir: string;
  /** XNNPACK's thread count (1 without wasm threads). */
  threadsCount: number;
}

export interface InitializedBackend {
  tf: Tf;
  backend: BackendName;
  reason: string;
  /** `tf.version` of the loaded tfjs (`tfjs-core`, ..., and `tfjs-node` on the tensorflow path). */
  versions: Record<string, string>;
  wasm?: WasmInfo;
  /** On wasm: whether the native accelerator's matmul runs (runtime/native/), and if not why. */
  native?: NativeReport;
}

export interface InitOptions {
  /** Where the one line `backend: NAME (REASON)` goes (default: stderr). */
  log?: (line: string) => void;
  /** For tests: which optional packages count as installed. */
  probe?: Probe;
  /** For tests: how a package is loaded (default: `import()`). */
  importModule?: (specifier: string) => Promise<unknown>;
  /** The folder holding the .wasm binaries (default: the installed package's dist/). */
  wasmDir?: string;
}

/** The folder of @tensorflow/tfjs-backend-wasm's .wasm binaries: its main file's folder, dist/. */
export function wasmBinaryDir(): string {
  return dirname(require.resolve(TFJS_WASM)) + sep;
}

/**
 * Loads tfjs, registers and activates the backend for the request, and logs one line saying
 * which and why. Call it once per process. Throws BackendError (one line, for the user) when the
 * backend asked for cannot run.
 */
export async function initBackend(requested: BackendRequest, options: InitOptions = {}): Promise<InitializedBackend> {
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const probe = options.probe ?? defaultProbe;
  const load = options.importModule ?? ((specifier: string) => import(specifier));
  const failed = new Map<string, string>();
  let sel = selectBackend(requested, probe);

  // The tensorflow path: @tensorflow/tfjs-node(-gpu) re-exports tfjs and registers `tensorflow`.
  while (sel.package) {
    const pkg = sel.package;
    try {
      const mod = (await load(pkg)) as { default?: unknown };
      // A CommonJS package: its exports object is the default export.
      const tf = (isTf(mod.default) ? mod.default : mod) as Tf;
      if (!isTf(tf)) throw new Error(`${pkg} does not export tfjs`);
      if (!(await quietly(() => tf.setBackend("tensorflow"))).value) throw new Error("tfjs could not initialize its `tensorflow` backend");
      await tf.ready();
      const versions = versionsOf(tf);
      const core = versions["tfjs-core"];
      const reason = core && core !== TFJS_VERSION ? `${sel.reason}; warning: it brings tfjs-core ${core}, vlmc is tested with ${TFJS_VERSION}` : sel.reason;
      log(`backend: ${sel.name} (${reason})`);
      return { tf, backend: sel.name, reason, versions };
    } catch (err) {
      const why = firstLine(err);
      if (requested === "tensorflow") throw new BackendError(`${pkg} is installed but failed to load (${why}); reinstall it on a machine with internet access (\`npm install ${pkg}@${TFJS_VERSION}\`), or use --backend wasm`);
      failed.set(pkg, why);
      sel = selectBackend(requested, probe, failed);
    }
  }

  const tf = await loadTfjs(load);
  if (sel.name === "wasm") {
    const dir = options.wasmDir ?? wasmBinaryDir();
    const got = await initWasm(tf, load, dir);
    if (got.ok) {
      // The native accelerator overrides wasm's matmul kernels when it is built (native/).
      const native = installNative(tf);
      log(`backend: wasm (${sel.reason})${native.matmul ? " + " : "; "}${native.summary}`);
      return { tf, backend: "wasm", reason: sel.reason, versions: versionsOf(tf), wasm: got.info, native };
    }
    if (requested === "wasm") throw new BackendError(`the wasm backend failed to initialize (${got.why}); use --backend cpu (tfjs's pure-JavaScript backend, much slower) to go on without it`);
    sel = { name: "cpu", reason: `${sel.reason}; the wasm backend failed to initialize (${got.why})` };
  }
  if (!(await quietly(() => tf.setBackend("cpu"))).value) throw new BackendError("tfjs could not initialize its cpu backend");
  await tf.ready();
  // The cpu backend greets its first tensor in Node.js with advice to install tfjs-node; the
  // line above has said what runs and why already.
  const cpu = tf.backend() as unknown as { firstUse?: boolean };
  if (cpu.firstUse === true) cpu.firstUse = false;
  log(`backend: cpu (${sel.reason})`);
  return { tf, backend: "cpu", reason: sel.reason, versions: versionsOf(tf) };
}

async function loadTfjs(load: (specifier: string) => Promise<unknown>): Promise<Tf> {
  const mod = (await load(TFJS)) as { default?: unknown };
  return (isTf(mod) ? mod : mod.default) as Tf;
}

type WasmResult = { ok: true; info: WasmInfo } | { ok: false; why: string };

async function initWasm(tf: Tf, load: (specifier: string) => Promise<unknown>, dir: string): Promise<WasmResult> {
  let wasm: typeof TfjsWasm;
  try {
    wasm = (await load(TFJS_WASM)) as typeof TfjsWasm;
    // In Node.js the binary is read with fs (no fetch): the prefix is a file path (a file:// URL
    // works too) and must end in a separator, as the file name is appended to it. tfjs picks the
    // binary itself: -simd when WebAssembly SIMD validates, -threaded-simd never in Node.js.
    // Harmless once the backend runs; it throws after a failed start.
    wasm.setWasmPaths(dir);
  } catch (err) {
    return { ok: false, why: firstLine(err) };
  }
  const r = await quietly(() => tf.setBackend("wasm"));
  if (!r.value) return { ok: false, why: wasmFailure(r.printed, r.error) };
  await tf.ready();
  const simd = Boolean(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT"));
  const threads = Boolean(await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT"));
  const binary = simd && threads ? "tfjs-backend-wasm-threaded-simd.wasm" : simd ? "tfjs-backend-wasm-simd.wasm" : "tfjs-backend-wasm.wasm";
  let threadsCount = 1;
  try {
    threadsCount = wasm.getThreadsCount();
  } catch {
    // not initialized through this module instance: keep 1
  }
  return { ok: true, info: { simd, threads, binary, dir, threadsCount } };
}

/** The most telling line of what a failed wasm start printed: `ENOENT: ... open '.../x.wasm'`. */
function wasmFailure(printed: string[], error: unknown): string {
  const lines = printed.flatMap((p) => p.split("\n")).map((l) => l.trim()).filter(Boolean);
  const first = lines.find((l) => !/^Initialization of backend/.test(l)) ?? (error === undefined ? "" : firstLine(error));
  // Emscripten wraps the cause: `Aborted(Error: ENOENT: ...)`, `RuntimeError: Aborted(...)`.
  let s = first;
  for (let m; (m = /^(?:\w*Error: )?Aborted\((.*)\)(?:\. Build with .*)?$/.exec(s)); ) s = m[1]!;
  s = s.replace(/^\w*Error: /, "");
  return s || "no reason given";
}

interface Quiet<T> {
  value: T | undefined;
  error?: unknown;
  /** What tfjs and emscripten printed meanwhile. */
  printed: string[];
}

/**
 * Runs a backend start with tfjs's and emscripten's console chatter held back (shown with
 * VLMC_DEBUG) and without the process-wide handlers emscripten installs in Node.js: it adds
 * `uncaughtException` and `unhandledRejection` listeners that rethrow, which would change how
 * the whole process ends on an error.
 */
async function quietly<T>(fn: () => Promise<T>): Promise<Quiet<T>> {
  const printed: string[] = [];
  const methods = ["log", "info", "warn", "error"] as const;
  const saved = methods.map((m) => console[m]);
  let holding = true;
  methods.forEach((m, i) => {
    const original = saved[i]!;
    // Emscripten binds console.warn when its module starts: this stays the bound one, and once
    // the start is over it passes everything through.
    console[m] = (...args: unknown[]) => {
      if (holding) printed.push(args.map((a) => (a instanceof Error ? (a.stack ?? a.message) : String(a))).join(" "));
      else original.apply(console, args);
    };
  });
  const before = {
    uncaughtException: new Set(process.listeners("uncaughtException")),
    unhandledRejection: new Set(process.listeners("unhandledRejection")),
  };
  try {
    return { value: await fn(), printed };
  } catch (error) {
    return { value: undefined, error, printed };
  } finally {
    holding = false;
    methods.forEach((m, i) => {
      console[m] = saved[i]!;
    });
    for (const l of process.listeners("uncaughtException")) {
      if (!before.uncaughtException.has(l) && isEmscriptenHandler(l)) process.removeListener("uncaughtException", l);
    }
    for (const l of process.listeners("unhandledRejection")) {
      if (!before.unhandledRejection.has(l) && isEmscriptenHandler(l)) process.removeListener("unhandledRejection", l);
    }
    if (process.env.VLMC_DEBUG && printed.length > 0) process.stderr.write(`${printed.join("\n")}\n`);
  }
}

function isEmscriptenHandler(l: (...args: never[]) => unknown): boolean {
  const src = String(l);
  return /ExitStatus/.test(src) || /^function\s*\(reason\)\s*\{\s*throw reason;?\s*\}$/.test(src);
}

function isTf(x: unknown): x is Tf {
  return typeof x === "object" && x !== null && typeof (x as { setBackend?: unknown }).setBackend === "function";
}

function versionsOf(tf: Tf): Record<string, string> {
  const v = (tf as { version?: unknown }).version;
  return typeof v === "object" && v !== null ? { ...(v as Record<string, string>) } : {};
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : typeof err === "object" && err !== null && "message" in err ? String((err as { message: unknown }).message) : String(err);
  return msg.split("\n").map((l) => l.trim()).find(Boolean) ?? "unknown error";
}
