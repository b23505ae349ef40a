// The native accelerator (native/, runtime/native/): its GEMM against a plain JavaScript
// reference, the tfjs-wasm matmul override against stock wasm (values and gradients), the seed
// model with and without it, the tfjs-wasm internals it relies on, and the install-time build
// never failing. Tests that need the built addon skip, saying so, when it is not built.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import test from "node:test";
import { initBackend, type Tf } from "../runtime/backend.js";
import { installNativeMatmul, loadNative, nativeMatmulActive, uninstallNativeMatmul, type NativeAddon } from "../runtime/native/index.js";
import { missingInternals, type WasmBackendInternals } from "../runtime/native/matmul.js";
import { relError } from "./helpers/numeric.js";
import { repoPath, repoRoot } from "./helpers/paths.js";

const status = loadNative();
const notBuilt = status.loaded ? false : `the native accelerator is not loaded here: ${status.reason}`;

let tfPromise: Promise<Tf> | undefined;
/** The wasm backend, started once for this file (with the native matmul when it is built). */
const wasmTf = () => (tfPromise ??= initBackend("wasm", { log: () => {} }).then((b) => b.tf));

/** A deterministic generator in [-1, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

// --- (a) the addon's GEMM against a plain reference --------------------------------------------

/** out[b] = op(A[b]) op(B[b]) (+ bias), in float64, batches of 1 broadcast. */
function referenceGemm(batch: number, bA: number, bB: number, m: number, n: number, k: number, ta: boolean, tb: boolean, a: Float32Array, b: Float32Array, bias?: Float32Array, act = 0): Float64Array {
  const c = new Float64Array(batch * m * n);
  for (let e = 0; e < batch; e++) {
    const ao = (bA === 1 ? 0 : e) * m * k;
    const bo = (bB === 1 ? 0 : e) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[ao + (ta ? p * m + i : i * k + p)]! * b[bo + (tb ? j * k + p : p * n + j)]!;
        if (bias) s += bias[j]!;
        if (act === 1) s = Math.max(s, 0);
        if (act === 2) s = Math.min(Math.max(s, 0), 6);
        if (act === 3) s = s > 0 ? s : 0.1 * s;
        c[e * m * n + i * n + j] = s;
      }
    }
  }
  return c;
}

/** Operands laid out in one ArrayBuffer, as on the wasm heap (with a gap, so offsets are not 0). */
function heapOf(parts: number[]) {
  const offsets: number[] = [];
  let at = 64;
  for (const p of parts) {
    offsets.push(at);
    at += 4 * p + 16;
  }
  const heap = new ArrayBuffer(at);
  return { heap, offsets, view: (i: number) => new Float32Array(heap, offsets[i]!, parts[i]!) };
}

function checkGemm(addon: NativeAddon, c: { batch: number; bA: number; bB: number; m: number; n: number; k: number; ta: boolean; tb: boolean; bias: boolean; act: number }, r: () => number): number {
  const h = heapOf([c.bA * c.m * c.k, c.bB * c.k * c.n, c.batch * c.m * c.n, c.n]);
  const [a, b, out, bias] = [h.view(0), h.view(1), h.view(2), h.view(3)];
  a.forEach((_, i) => (a[i] = r()));
  b.forEach((_, i) => (b[i] = r()));
  bias.forEach((_, i) => (bias[i] = r()));
  out.fill(Number.NaN);
  addon.matmul(h.heap, h.offsets[0]!, h.offsets[1]!, h.offsets[2]!, c.batch, c.bA, c.bB, c.m, c.n, c.k, c.ta, c.tb, c.bias ? h.offsets[3]! : -1, c.act, 0.1);
  const want = referenceGemm(c.batch, c.bA, c.bB, c.m, c.n, c.k, c.ta, c.tb, a, b, c.bias ? bias : undefined, c.act);
  let err = 0;
  for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(out[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
  return err;
}

test("the addon's GEMM matches a float64 reference: every ISA, transpose, batch broadcast and odd size", { skip: notBuilt }, () => {
  const addon = status.addon!;
  const best = addon.info().isa;
  const isas = ["avx512", "avx2", "generic"].filter((isa) => {
    try {
      addon.setIsa(isa);
      return true;
    } catch {
      return false;
    }
  });
  assert.ok(isas.includes("generic"), "the portable kernel is always there");
  assert.ok(isas.includes(best), `the kernel chosen at load (${best}) is available`);
  const r = rng(7);
  // Up to 4 rows take the unpacked path (split over threads from a few columns' worth of work up).
  const sizes: [number, number, number][] = [[1, 1, 1], [3, 17, 5], [17, 65, 129], [65, 3, 300], [129, 33, 17], [4, 5, 0], [150, 131, 260], [1, 700, 300], [2, 1100, 260], [4, 257, 129], [5, 300, 40]];
  try {
    for (const isa of isas) {
      addon.setIsa(isa);
      for (const [batch, bA, bB] of [[1, 1, 1], [3, 3, 3], [3, 1, 3], [3, 3, 1]] as const) {
        for (const [m, n, k] of sizes) {
          for (const ta of [false, true]) {
            for (const tb of [false, true]) {
              const c = { batch, bA, bB, m, n, k, ta, tb, bias: (m + n) % 2 === 0, act: (m + k) % 4 };
              const err = checkGemm(addon, c, r);
              assert.ok(err < 1e-4, `${isa} ${JSON.stringify(c)}: error ${err}`);
            }
          }
        }
      }
    }
  } finally {
    addon.setIsa(best);
  }
});

test("the addon refuses operands outside the heap and bad sizes with an exception, not a crash", { skip: notBuilt }, () => {
  const addon = status.addon!;
  const heap = new ArrayBuffer(4 * 100);
  assert.throws(() => addon.matmul(heap, 0, 0, 0, 1, 1, 1, 11, 11, 11, false, false, -1, 0, 0), /outside the heap/);
  assert.throws(() => addon.matmul(heap, 0, 0, 0, 1, 1, 1, 1, 1, 1, false, false, 400, 0, 0), /the bias lies outside the heap/);
  assert.throws(() => addon.matmul(heap, 0, 0, 0, 2, 3, 1, 1, 1, 1, false, false, -1, 0, 0), /batchA and batchB/);
  assert.throws(() => addon.matmul(heap, 2, 0, 0, 1, 1, 1, 1, 1, 1, false, false, -1, 0, 0), /outside the heap/, "a misaligned offset");
  assert.throws(() => addon.matmul(heap, 0, 0, 0, 1, 1, 1, 1, 1, 1, false, false, -1, 9, 0), /unknown activation/);
  assert.throws(() => addon.setIsa("sse9"), /not available/);
});

// --- (b) tf.matMul and its gradients: override vs stock wasm ----------------------------------

/** Every matmul form the models use, with gradients of a weighted sum, as plain arrays. */
function matmulSuite(tf: Tf): Float32Array[] {
  const r = rng(11);
  const t = (shape: number[]) => tf.tensor(Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, r), shape);
  const out: Float32Array[] = [];
  // [a, b, transposeA, transposeB, with gradients (tfjs has none for broadcast batches)]
  const cases: [number[], number[], boolean, boolean, boolean][] = [
    [[37, 64], [64, 50], false, false, true],
    [[37, 64], [50, 64], false, true, true],
    [[64, 37], [64, 50], true, false, true],
    [[64, 37], [50, 64], true, true, true],
    [[2, 4, 9, 16], [2, 4, 9, 16], false, true, true], // attention scores
    [[2, 4, 9, 9], [2, 4, 9, 16], false, false, true], // attention output
    [[3, 9, 16], [16, 5], false, false, false], // a batch against one matrix
    [[9, 16], [3, 16, 5], false, false, false],
    [[1, 9, 16], [3, 5, 16], false, true, false],
    [[200, 130], [130, 170], false, false, true], // large enough to run on several threads
  ];
  for (const [sa, sb, ta, tb, withGrads] of cases) {
    const a = t(sa);
    const b = t(sb);
    const y = tf.matMul(a, b, ta, tb);
    out.push(y.dataSync() as Float32Array);
    if (!withGrads) continue;
    const w = t(y.shape);
    const [ga, gb] = tf.grads((x: typeof a, z: typeof b) => tf.sum(tf.mul(tf.matMul(x, z, ta, tb), w)))([a, b]);
    out.push(ga!.dataSync() as Float32Array, gb!.dataSync() as Float32Array);
  }
  // tf.fused.matMul: bias and relu, then leakyrelu, on one matrix.
  const a = t([1, 20, 30]);
  const b = t([1, 30, 12]);
  const bias = t([12]);
  out.push(tf.fused.matMul({ a, b, bias, activation: "relu" }).dataSync() as Float32Array);
  out.push(tf.fused.matMul({ a, b, bias, activation: "leakyrelu", leakyreluAlpha: 0.3 }).dataSync() as Float32Array);
  return out;
}

test("tf.matMul and its gradients: the native override agrees with stock wasm", { skip: notBuilt }, async () => {
  const tf = await wasmTf();
  assert.ok(nativeMatmulActive(tf), "initBackend installed the native matmul");
  const native = matmulSuite(tf);
  uninstallNativeMatmul(tf);
  assert.equal(nativeMatmulActive(tf), false);
  let stock: Float32Array[];
  try {
    stock = matmulSuite(tf);
  } finally {
    assert.deepEqual(installNativeMatmul(tf, status.addon!), { installed: true });
  }
  assert.equal(native.length, stock.length);
  native.forEach((got, i) => assert.ok(relError(got, stock[i]!) < 1e-5, `result ${i}: relative error ${relError(got, stock[i]!)}`));
});

test("the override falls back to the stock kernels for what it does not do", { skip: notBuilt }, async () => {
  const tf = await wasmTf();
  assert.ok(nativeMatmulActive(tf));
  const a = tf.tensor([1, 2, 3, 4, 5, 6], [1, 2, 3]);
  const b = tf.tensor([1, 0, 0, 1, 1, 1], [1, 3, 2]);
  // sigmoid is not in the addon's epilogue: stock wasm runs it.
  const y = tf.fused.matMul({ a, b, activation: "sigmoid" });
  const want = [4, 5, 10, 11].map((v) => 1 / (1 + Math.exp(-v)));
  assert.ok(relError(y.dataSync(), want) < 1e-6, `${Array.from(y.dataSync())}`);
  // Incompatible batches are still the stock kernel's error.
  assert.throws(() => tf.matMul(tf.zeros([2, 3, 4]), tf.zeros([3, 4, 5])));
});

// --- (c) the seed model with and without the accelerator -------------------------------------

/** Forward (no dropout), loss and every gradient of the seed model at batch 2, in a child. */
function seedModelRun(env: NodeJS.ProcessEnv) {
  const url = (p: string) => JSON.stringify(pathToFileURL(repoPath("dist", p)).href);
  const script = `
    const { initBackend } = await import(${url("runtime/backend.js")});
    const { compile } = await import(${url("compiler/compile.js")});
    const { Model } = await import(${url("runtime/model.js")});
    const lines = [];
    const { tf, native } = await initBackend("wasm", { log: (l) => lines.push(l) });
    const { ir } = compile(${JSON.stringify(repoPath("specs", "seemore.vlm"))});
    const model = Model.create(tf, ir, 3);
    const B = 2, T = 8;
    const images = tf.randomUniform([B, 96, 96, 3], 0, 1, "float32", 1);
    const tokens = tf.randomUniform([B, T], 0, 66, "int32", 2);
    const targets = tf.randomUniform([B, T], 0, 66, "int32", 3);
    const mask = tf.ones([B, T]);
    let logits;
    const r = tf.variableGrads(() => { logits = tf.keep(model.forward(images, tokens, { training: false })); return model.loss(logits, targets, mask); });
    const names = Object.keys(r.grads).sort();
    console.log(JSON.stringify({
      line: lines[0], native: native?.matmul ?? false, loss: r.value.dataSync()[0],
      logits: Array.from(logits.dataSync()).filter((_, i) => i % 97 === 0),
      grads: Object.fromEntries(names.map((n) => [n, Array.from(r.grads[n].dataSync()).filter((_, i) => i % 13 === 0)])),
    }));
  `;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: repoRoot, env: { ...process.env, ...env }, encoding: "utf8", timeout: 300_000, maxBuffer: 256 * 1024 * 1024 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { line: string; native: boolean; loss: number; logits: number[]; grads: Record<string, number[]> };
}

test("the seed model's forward, loss and gradients with the accelerator match stock wasm", { skip: notBuilt }, () => {
  const on = seedModelRun({});
  const off = seedModelRun({ VLMC_NATIVE: "0" });
  assert.equal(on.native, true, on.line);
  assert.match(on.line, /^backend: wasm \(requested\) \+ native matmul \((avx512|avx2|generic), \d+ threads?\)$/);
  assert.equal(off.native, false);
  assert.equal(off.line, "backend: wasm (requested); native accelerator disabled by VLMC_NATIVE=0");
  assert.ok(Math.abs(on.loss - off.loss) < 1e-4 * Math.abs(off.loss), `loss ${on.loss} vs ${off.loss}`);
  assert.ok(relError(on.logits, off.logits) < 1e-4, `logits: ${relError(on.logits, off.logits)}`);
  assert.deepEqual(Object.keys(on.grads), Object.keys(off.grads));
  assert.ok(Object.keys(off.grads).length > 50, "every parameter has a gradient");
  for (const name of Object.keys(off.grads)) {
    const e = relError(on.grads[name]!, off.grads[name]!);
    assert.ok(e < 2e-3, `gradient of ${name}: relative error ${e}`);
  }
});

// --- (d) the tfjs-wasm internals the override relies on --------------------------------------

test("tfjs-backend-wasm still has the internals the override uses (dataIdMap, memoryOffset, makeOutput, wasm.HEAPU8)", async () => {
  const tf = await wasmTf();
  const backend = tf.backend() as unknown as WasmBackendInternals;
  assert.equal(missingInternals(backend), undefined);
  const x = tf.tensor([1.5, -2, 3.25], [3]);
  const data = backend.dataIdMap.get(x.dataId);
  assert.equal(typeof data?.memoryOffset, "number");
  // The tensor's values sit on the heap at memoryOffset: the addon reads them there.
  const onHeap = new Float32Array(backend.wasm.HEAPU8.buffer, data!.memoryOffset, 3);
  assert.deepEqual(Array.from(onHeap), [1.5, -2, 3.25]);
  // makeOutput allocates on the heap; what is written there is the tensor's value.
  const out = backend.makeOutput([2], "float32");
  const outData = backend.dataIdMap.get(out.dataId)!;
  new Float32Array(backend.wasm.HEAPU8.buffer, outData.memoryOffset, 2).set([7, 8]);
  const t = tf.engine().makeTensorFromTensorInfo(out);
  assert.deepEqual(Array.from(t.dataSync()), [7, 8]);
  t.dispose();
  x.dispose();
});

// --- (e) the loader and the install-time build -----------------------------------------------

test("VLMC_NATIVE=0 disables the accelerator, and the loader says so", () => {
  const s = loadNative({ VLMC_NATIVE: "0" });
  assert.equal(s.loaded, false);
  assert.equal(s.reason, "disabled by VLMC_NATIVE=0");
  assert.ok(s.path.endsWith(join("native", "build", "vlmc_native.node")), s.path);
});

test("vlmc backend names the accelerator", { skip: notBuilt }, () => {
  const r = spawnSync(process.execPath, [repoPath("bin", "vlmc.js"), "backend", "--backend", "wasm"], { cwd: repoRoot, encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^backend: wasm \(requested\) \+ native matmul \(\w+, \d+ threads?\)$/m);
  assert.match(r.stdout, /^native accelerator: matmul on \(\w+, \d+ threads?\)$/m);
});

/** Runs native/build.mjs into a scratch folder; the real build is never touched. */
function build(env: NodeJS.ProcessEnv, extra: string[] = []) {
  const out = mkdtempSync(join(tmpdir(), "vlmc-native-build-"));
  const r = spawnSync(process.execPath, [repoPath("native", "build.mjs"), "--out", out, ...extra], { cwd: repoRoot, env: { ...process.env, ...env }, encoding: "utf8", timeout: 120_000 });
  const infoFile = join(out, "build-info.json");
  return { ...r, out, info: existsSync(infoFile) ? (JSON.parse(readFileSync(infoFile, "utf8")) as { built: boolean; reason?: string }) : undefined };
}

test("the install-time build never fails the install: no compiler is one line and exit 0", () => {
  const bin = mkdtempSync(join(tmpdir(), "vlmc-nocc-"));
  symlinkSync(process.execPath, join(bin, "node"));
  const r = build({ PATH: bin, CXX: "" });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, "");
  assert.match(r.stdout, /^vlmc native: accelerator not built: no C\+\+ compiler found \(tried c\+\+, g\+\+, clang\+\+ .*\); vlmc runs on stock tfjs-wasm\n$/);
  assert.equal(r.info?.built, false);
  assert.match(r.info?.reason ?? "", /^no C\+\+ compiler found/);
  assert.equal(existsSync(join(r.out, "vlmc_native.node")), false);
});

test("the install-time build: a compile error is one line and exit 0; VLMC_NATIVE=0 skips it", () => {
  const dir = mkdtempSync(join(tmpdir(), "vlmc-badcc-"));
  const cxx = join(dir, "c++");
  // A compiler that reports a version and fails every compile.
  writeFileSync(cxx, `#!/bin/sh\nif [ "$1" = "--version" ]; then echo "fake c++ 1.0"; exit 0; fi\necho "x.cc:1:1: error: this compiler is broken" >&2\nexit 1\n`);
  chmodSync(cxx, 0o755);
  const r = build({ CXX: cxx });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^vlmc native: compiling \d+ files with fake c\+\+ 1\.0 \.\.\.\n/);
  assert.match(r.stdout, /\nvlmc native: accelerator not built: \w+\.cc failed to compile: x\.cc:1:1: error: this compiler is broken \(full log: .*build\.log\); vlmc runs on stock tfjs-wasm\n$/);
  assert.equal(r.info?.built, false);

  const skipped = build({ VLMC_NATIVE: "0" });
  assert.equal(skipped.status, 0);
  assert.equal(skipped.stdout, "vlmc native: skipped (VLMC_NATIVE=0); vlmc runs on stock tfjs-wasm\n");
  assert.equal(skipped.info, undefined, "nothing is written");
});
