// The TensorFlow.js backend: which one `--backend` picks (the optional @tensorflow/tfjs-node(-gpu)
// simulated as present and absent), real starts of wasm and cpu in child processes (the test
// process never loads tfjs), and the compiler never loading tfjs at all.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  BackendError,
  backendRequest,
  defaultProbe,
  initBackend,
  parseBackendRequest,
  selectBackend,
  TFJS_NODE,
  TFJS_NODE_GPU,
  TFJS_VERSION,
  type Probe,
} from "../runtime/backend.js";
import { runVlmc } from "./helpers/cli.js";
import { repoPath, repoRoot } from "./helpers/paths.js";

const GPU = TFJS_NODE_GPU;
const NODE = TFJS_NODE;
const installed = (...pkgs: string[]): Probe => (pkg) => pkgs.includes(pkg);
const NEITHER = installed();
// The children here run with VLMC_NATIVE=0: this file tests the backend's choice; the native
// accelerator, which adds to the wasm line, has test/native.test.ts.
const NATIVE_OFF = "; native accelerator disabled by VLMC_NATIVE=0";
const AUTO_WASM_LINE = `backend: wasm (auto: @tensorflow/tfjs-node-gpu and @tensorflow/tfjs-node are not installed)${NATIVE_OFF}`;
/** Whether this machine has the optional packages (it cannot: they download libtensorflow). */
const tensorflowHere = defaultProbe(GPU) || defaultProbe(NODE);

// --- selection ----------------------------------------------------------------------------

test("auto picks tfjs-node-gpu, then tfjs-node, else wasm, and says why", () => {
  assert.deepEqual(selectBackend("auto", NEITHER), { name: "wasm", reason: "auto: @tensorflow/tfjs-node-gpu and @tensorflow/tfjs-node are not installed" });
  assert.deepEqual(selectBackend("auto", installed(GPU)), { name: "tensorflow-gpu", reason: "auto: @tensorflow/tfjs-node-gpu is installed", package: GPU });
  assert.deepEqual(selectBackend("auto", installed(NODE)), {
    name: "tensorflow",
    reason: "auto: @tensorflow/tfjs-node is installed, @tensorflow/tfjs-node-gpu is not",
    package: NODE,
  });
  const both = selectBackend("auto", installed(GPU, NODE));
  assert.equal(both.name, "tensorflow-gpu");
  assert.equal(both.package, GPU);
  assert.match(both.reason, /preferred over @tensorflow\/tfjs-node/);
});

test("auto passes over an installed package that failed to load, and says so", () => {
  const failed = new Map([[GPU, "tfjs_binding.node can not be found"]]);
  const toNode = selectBackend("auto", installed(GPU, NODE), failed);
  assert.equal(toNode.name, "tensorflow");
  assert.match(toNode.reason, /@tensorflow\/tfjs-node-gpu failed to load \(tfjs_binding\.node can not be found\)/);
  const toWasm = selectBackend("auto", installed(GPU), failed);
  assert.equal(toWasm.name, "wasm");
  assert.equal(toWasm.reason, "auto: @tensorflow/tfjs-node-gpu is installed but failed to load (tfjs_binding.node can not be found); @tensorflow/tfjs-node is not installed");
});

test("explicit wasm and cpu are taken as asked, whatever is installed", () => {
  for (const probe of [NEITHER, installed(GPU), installed(NODE), installed(GPU, NODE)]) {
    assert.equal(selectBackend("wasm", probe).name, "wasm");
    assert.equal(selectBackend("cpu", probe).name, "cpu");
    assert.equal(selectBackend("wasm", probe).package, undefined);
  }
  assert.equal(selectBackend("wasm", installed(GPU)).reason, "requested");
});

test("explicit tensorflow takes the GPU build first, then the CPU one", () => {
  assert.deepEqual(selectBackend("tensorflow", installed(GPU, NODE)), { name: "tensorflow-gpu", reason: "requested: @tensorflow/tfjs-node-gpu is installed", package: GPU });
  assert.deepEqual(selectBackend("tensorflow", installed(NODE)), {
    name: "tensorflow",
    reason: "requested: @tensorflow/tfjs-node is installed, @tensorflow/tfjs-node-gpu is not",
    package: NODE,
  });
});

test("explicit tensorflow with neither package installed: one line saying how to install it", () => {
  assert.throws(
    () => selectBackend("tensorflow", NEITHER),
    (err: unknown) => {
      assert.ok(err instanceof BackendError);
      assert.doesNotMatch(err.message, /\n/);
      assert.match(err.message, /^--backend tensorflow needs @tensorflow\/tfjs-node-gpu or @tensorflow\/tfjs-node, and neither is installed/);
      assert.ok(err.message.includes(`npm install @tensorflow/tfjs-node-gpu@${TFJS_VERSION}`));
      assert.match(err.message, /internet/);
      assert.match(err.message, /CUDA/);
      assert.match(err.message, /--backend wasm/);
      return true;
    },
  );
});

test("backend names from the command line or VLMC_BACKEND", () => {
  assert.equal(backendRequest(undefined, {}), "auto");
  assert.equal(backendRequest(undefined, { VLMC_BACKEND: "" }), "auto");
  assert.equal(backendRequest(undefined, { VLMC_BACKEND: "cpu" }), "cpu");
  assert.equal(backendRequest("wasm", { VLMC_BACKEND: "cpu" }), "wasm");
  assert.throws(() => backendRequest(undefined, { VLMC_BACKEND: "gpu" }), /VLMC_BACKEND: unknown backend `gpu`/);
  assert.equal(parseBackendRequest("wasm"), "wasm");
  assert.equal(parseBackendRequest(" TensorFlow "), "tensorflow");
  assert.throws(() => parseBackendRequest("gpu", "VLMC_BACKEND"), /^BackendError: VLMC_BACKEND: unknown backend `gpu`; expected one of auto, wasm, cpu, tensorflow$/);
});

test("the default probe resolves packages without loading them", () => {
  assert.equal(defaultProbe("@tensorflow/tfjs-backend-wasm"), true);
  assert.equal(defaultProbe("@tensorflow/no-such-package"), false);
});

// --- initBackend with the tensorflow packages simulated (no tfjs is loaded here) -------------

/** A stand-in for what @tensorflow/tfjs-node exports: the tfjs namespace with `tensorflow` registered. */
function fakeTfjsNode(node: string) {
  const calls: string[] = [];
  const tf = {
    version: { "tfjs-core": TFJS_VERSION, tfjs: TFJS_VERSION, "tfjs-node": node },
    setBackend: async (name: string) => (calls.push(`setBackend ${name}`), name === "tensorflow"),
    ready: async () => void calls.push("ready"),
  };
  return { tf, calls };
}

test("initBackend loads an installed tfjs-node-gpu and activates its `tensorflow` backend", async () => {
  const { tf, calls } = fakeTfjsNode(TFJS_VERSION);
  const imported: string[] = [];
  const lines: string[] = [];
  const got = await initBackend("auto", {
    probe: installed(GPU, NODE),
    // CommonJS seen from ESM: the exports object is the default export.
    importModule: async (s) => (imported.push(s), { default: tf }),
    log: (l) => lines.push(l),
  });
  assert.deepEqual(imported, [GPU]);
  assert.equal(got.backend, "tensorflow-gpu");
  assert.equal(got.tf as unknown, tf);
  assert.deepEqual(calls, ["setBackend tensorflow", "ready"]);
  assert.equal(got.versions["tfjs-node"], TFJS_VERSION);
  assert.deepEqual(lines, ["backend: tensorflow-gpu (auto: @tensorflow/tfjs-node-gpu is installed (preferred over @tensorflow/tfjs-node, also installed))"]);
});

test("initBackend: an installed tfjs-node that fails to load is an error when asked for by name", async () => {
  await assert.rejects(
    initBackend("tensorflow", {
      probe: installed(NODE),
      importModule: async () => {
        throw new Error("The Node.js native addon module (tfjs_binding.node) can not be found at path: x\nPlease run ...");
      },
      log: () => assert.fail("nothing is logged on failure"),
    }),
    (err: unknown) => {
      assert.ok(err instanceof BackendError);
      assert.equal(
        err.message,
        "@tensorflow/tfjs-node is installed but failed to load (The Node.js native addon module (tfjs_binding.node) can not be found at path: x); " +
          `reinstall it on a machine with internet access (\`npm install @tensorflow/tfjs-node@${TFJS_VERSION}\`), or use --backend wasm`,
      );
      return true;
    },
  );
});

test("initBackend --backend tensorflow with nothing installed rejects before loading anything", async () => {
  await assert.rejects(
    initBackend("tensorflow", { probe: NEITHER, importModule: async (s) => assert.fail(`loaded ${s}`), log: () => assert.fail("logged") }),
    BackendError,
  );
});

// --- real starts, each in a fresh child process ------------------------------------------------

const backendUrl = pathToFileURL(repoPath("dist", "runtime", "backend.js")).href;

interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The JSON the script printed on its last stdout line. */
  json: Record<string, unknown>;
}

/** Runs an ES module script in a fresh node; it prints one JSON line at the end. */
function runScript(script: string, nodeArgs: string[] = []): ChildResult {
  const r = spawnSync(process.execPath, [...nodeArgs, "--input-type=module", "-e", script], {
    cwd: repoRoot,
    env: { ...process.env, VLMC_DEBUG: "", VLMC_BACKEND: "", VLMC_NATIVE: "0" },
    encoding: "utf8",
    timeout: 60_000,
  });
  const last = r.stdout.trim().split("\n").at(-1) ?? "";
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(last) as Record<string, unknown>;
  } catch {
    assert.fail(`the child printed no JSON (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json };
}

/** Starts a backend in a child and multiplies [[1,2,3],[4,5,6]] by [[7,8],[9,10],[11,12]]. */
function startAndMultiply(requested: string, extra = "{}"): ChildResult {
  return runScript(`
    import { initBackend, BackendError } from ${JSON.stringify(backendUrl)};
    const lines = [];
    try {
      const got = await initBackend(${JSON.stringify(requested)}, { log: (l) => lines.push(l), ...${extra} });
      const { tf } = got;
      const a = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
      const b = tf.tensor2d([[7, 8], [9, 10], [11, 12]]);
      const product = tf.matMul(a, b).arraySync();
      console.log(JSON.stringify({
        backend: got.backend, active: tf.getBackend(), reason: got.reason, lines, product, wasm: got.wasm ?? null,
        versions: got.versions,
        listeners: process.listenerCount("uncaughtException") + process.listenerCount("unhandledRejection"),
      }));
    } catch (err) {
      console.log(JSON.stringify({ error: err.name, message: err.message, backendError: err instanceof BackendError, lines }));
    }
  `);
}

// By hand: [1*7+2*9+3*11, 1*8+2*10+3*12; 4*7+5*9+6*11, 4*8+5*10+6*12].
const PRODUCT = [
  [58, 64],
  [139, 154],
];

test("wasm starts here offline from the package's own binaries (SIMD), and multiplies right", () => {
  const r = startAndMultiply("wasm");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "", "tfjs and emscripten print nothing");
  assert.equal(r.json.backend, "wasm");
  assert.equal(r.json.active, "wasm");
  assert.deepEqual(r.json.product, PRODUCT);
  assert.deepEqual(r.json.lines, [`backend: wasm (requested)${NATIVE_OFF}`]);
  const wasm = r.json.wasm as { simd: boolean; threads: boolean; binary: string; dir: string };
  assert.equal(wasm.simd, true, "Node 20's V8 has WebAssembly SIMD");
  assert.equal(wasm.threads, false, "tfjs 4.22 runs wasm without threads in Node.js");
  assert.equal(wasm.binary, "tfjs-backend-wasm-simd.wasm");
  assert.ok(existsSync(join(wasm.dir, wasm.binary)), `${wasm.dir}${wasm.binary}`);
  assert.equal((r.json.versions as Record<string, string>)["tfjs-core"], TFJS_VERSION);
  assert.equal(r.json.listeners, 0, "emscripten's process-wide error handlers are taken off again");
});

test("cpu starts here and gives the same numbers, without tfjs's install-tfjs-node banner", () => {
  const r = startAndMultiply("cpu");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  assert.equal(r.json.backend, "cpu");
  assert.equal(r.json.active, "cpu");
  assert.deepEqual(r.json.product, PRODUCT);
  assert.deepEqual(r.json.lines, ["backend: cpu (requested; tfjs's pure-JavaScript backend)"]);
  assert.equal(r.json.wasm, null);
});

test("auto starts wasm here and prints one line saying why", { skip: tensorflowHere && "tfjs-node is installed here" }, () => {
  const r = startAndMultiply("auto");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  assert.deepEqual(r.json.lines, [AUTO_WASM_LINE]);
  assert.deepEqual(r.json.product, PRODUCT);
});

test("auto: an installed tfjs-node whose native addon is missing falls back to wasm, and says so", () => {
  const r = startAndMultiply(
    "auto",
    `{ probe: (p) => p === "@tensorflow/tfjs-node", importModule: (s) => s === "@tensorflow/tfjs-node" ? Promise.reject(new Error("The Node.js native addon module (tfjs_binding.node) can not be found")) : import(s) }`,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.backend, "wasm");
  assert.deepEqual(r.json.lines, [
    `backend: wasm (auto: @tensorflow/tfjs-node-gpu is not installed; @tensorflow/tfjs-node is installed but failed to load (The Node.js native addon module (tfjs_binding.node) can not be found))${NATIVE_OFF}`,
  ]);
});

test("wasm asked for but its binary will not start: one line suggesting --backend cpu", () => {
  const r = startAndMultiply("wasm", `{ wasmDir: "/nonexistent-vlmc-wasm/" }`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "", "emscripten's abort messages are held back");
  assert.equal(r.json.backendError, true);
  assert.match(String(r.json.message), /^the wasm backend failed to initialize \(ENOENT: no such file or directory, open '\/nonexistent-vlmc-wasm\/tfjs-backend-wasm-simd\.wasm'\); use --backend cpu/);
  assert.deepEqual(r.json.lines, []);
});

test("auto with a wasm that will not start goes on with cpu, and says why", () => {
  const r = startAndMultiply("auto", `{ probe: () => false, wasmDir: "/nonexistent-vlmc-wasm/" }`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  assert.equal(r.json.backend, "cpu");
  assert.deepEqual(r.json.product, PRODUCT);
  assert.equal((r.json.lines as string[]).length, 1);
  assert.match((r.json.lines as string[])[0]!, /^backend: cpu \(auto: .*are not installed; the wasm backend failed to initialize \(ENOENT: .*\)\)$/);
});

// --- the command ---------------------------------------------------------------------------

test("vlmc backend prints the backend, why, the tfjs version and the wasm features", { skip: tensorflowHere && "tfjs-node is installed here" }, () => {
  const r = runVlmc(["backend"], { env: { VLMC_BACKEND: "", VLMC_NATIVE: "0" } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  const lines = r.stdout.trimEnd().split("\n");
  assert.equal(lines[0], AUTO_WASM_LINE);
  assert.equal(lines[1], `tfjs: ${TFJS_VERSION} (tfjs-core ${TFJS_VERSION})`);
  assert.match(lines[2]!, /^wasm: SIMD on, threads off /);
  assert.match(lines[3]!, /^wasm binary: .*tfjs-backend-wasm-simd\.wasm$/);
  assert.equal(lines[4], "native accelerator: off (disabled by VLMC_NATIVE=0)");
});

test("vlmc backend --backend cpu, and VLMC_BACKEND as the default", () => {
  const cpu = runVlmc(["backend", "--backend", "cpu"]);
  assert.equal(cpu.code, 0, cpu.stderr);
  assert.match(cpu.stdout, /^backend: cpu \(requested/);
  assert.doesNotMatch(cpu.stdout, /^wasm/m);
  const env = runVlmc(["backend"], { env: { VLMC_BACKEND: "cpu" } });
  assert.match(env.stdout, /^backend: cpu \(requested/);
  const bad = runVlmc(["backend"], { env: { VLMC_BACKEND: "gpu" } });
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, "vlmc: error: VLMC_BACKEND: unknown backend `gpu`; expected one of auto, wasm, cpu, tensorflow\n");
});

test("vlmc backend --backend tensorflow without tfjs-node: exit 2, one line, no stack", { skip: tensorflowHere && "tfjs-node is installed here" }, () => {
  const r = runVlmc(["backend", "--backend", "tensorflow"]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr.split("\n").filter(Boolean).length, 1, r.stderr);
  assert.match(r.stderr, /^vlmc: error: --backend tensorflow needs @tensorflow\/tfjs-node-gpu or @tensorflow\/tfjs-node, and neither is installed: .*npm install @tensorflow\/tfjs-node-gpu@/);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
});

// --- the compiler never loads tfjs -----------------------------------------------------------

/**
 * Imports `target` in a fresh node with a resolve hook (module.register) recording every
 * specifier resolved, then runs `after`; returns the specifiers and the CommonJS modules loaded
 * (tfjs is CommonJS: loaded from ESM, it lands in the require cache too).
 */
function importTraced(target: string, after = ""): { specifiers: string[]; cjs: string[] } {
  const dir = mkdtempSync(join(tmpdir(), "vlmc-trace-"));
  try {
    const log = join(dir, "resolved.txt");
    writeFileSync(log, "");
    writeFileSync(
      join(dir, "hooks.mjs"),
      `import { appendFileSync } from "node:fs";
let out;
export function initialize(data) { out = data.out; }
export async function resolve(specifier, context, next) {
  appendFileSync(out, specifier + "\\n");
  return next(specifier, context);
}
`,
    );
    writeFileSync(
      join(dir, "register.mjs"),
      `import { register } from "node:module";
register(${JSON.stringify(pathToFileURL(join(dir, "hooks.mjs")).href)}, { data: { out: ${JSON.stringify(log)} } });
`,
    );
    const r = runScript(
      `
      import { createRequire } from "node:module";
      await import(${JSON.stringify(pathToFileURL(repoPath(target)).href)});
      ${after}
      console.log(JSON.stringify({ cjs: Object.keys(createRequire(import.meta.url).cache) }));
    `,
      ["--import", pathToFileURL(join(dir, "register.mjs")).href],
    );
    assert.equal(r.code, 0, r.stderr);
    return { specifiers: readFileSync(log, "utf8").split("\n").filter(Boolean), cjs: r.json.cjs as string[] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const isTfjs = (s: string) => /@tensorflow[\\/]/.test(s);

test("importing the compiler's check (and the CLI) never loads tfjs", () => {
  for (const target of ["dist/compiler/check.js", "dist/cli/main.js", "dist/compiler/index.js"]) {
    const { specifiers, cjs } = importTraced(target);
    assert.ok(specifiers.length > 3, `the hook saw ${target}'s imports: ${specifiers.join(", ")}`);
    assert.deepEqual(specifiers.filter(isTfjs), [], target);
    assert.deepEqual(cjs.filter(isTfjs), [], target);
  }
});

test("the trace does see tfjs once a backend is started (the check above can fail)", () => {
  const { specifiers, cjs } = importTraced(
    "dist/runtime/backend.js",
    `const { initBackend } = await import(${JSON.stringify(backendUrl)}); await initBackend("cpu", { log: () => {} });`,
  );
  assert.ok(specifiers.includes("@tensorflow/tfjs"), specifiers.join(", "));
  assert.ok(cjs.some(isTfjs));
});
