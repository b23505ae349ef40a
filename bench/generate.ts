// Generation speed with and without the KV cache (issue 8): a GPT-style decoder of width 256,
// 6 layers, 8 heads, context 256 (learned positions), behind a small ViT (one 32 x 32 image, 4
// visual tokens), random weights, batch 1, writing 128 tokens greedily from `bos` (no eos, so
// every run writes all 128). `cached` prefills [visual tokens + bos] once and then runs one
// position a step (runtime/generate.ts); `uncached` re-runs the whole forward pass, encoder
// included, for every token, as decoding did before the cache. Both must write the same tokens.
//
//   node dist/bench/generate.js            a table with the figures, the target and PASS/MISS
//   node dist/bench/generate.js --json     one JSON object per line (bench/common.ts)
//   node dist/bench/generate.js --runs N   medians of N timed runs each (default 3)
//   node dist/bench/generate.js --worker   one configuration in this process, as one JSON line
//
// Target: cached at least 3x the tokens/s of uncached. printResults compares "at most", so the
// ratio is given as cached time per token / uncached time per token, target <= 0.33.
// This is a benchmark, not a test: it never fails on a MISS; it exits 1 when the two ways write
// different tokens or the tensor count grows, 2 on bad arguments.
//
// Two configurations, each in a process of its own: `wasm+native` (what a plain install runs when
// the native accelerator was built; the target applies to it) and `wasm` (stock tfjs-wasm,
// VLMC_NATIVE=0). They differ in where the time goes: the native matmul makes the uncached
// passes (matrices of up to 130 rows) several times faster, but not the cached steps' one-row
// products, so the cache gains less there.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { compile } from "../compiler/compile.js";
import { initBackend, type Tf } from "../runtime/backend.js";
import { generate } from "../runtime/generate.js";
import { Model } from "../runtime/model.js";
import { normal } from "../runtime/random.js";
import { environment, median, printResults, type Result } from "./common.js";

const SPEC = `vlm 0.1
model bench_generate {
  tokenizer chars { alphabet: " abcdefghijklmnopqrstuvwxyz.,;:!?'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123", specials: [pad, bos, eos] }
  encoder vit { image: 32 x 32 x 3, patch: 16, dim: 128, heads: 4, blocks: 2, cls: false, output: patches }
  projector { linear(decoder.dim) }
  decoder gpt { dim: 256, heads: 8, layers: 6, context: 256 }
}
`;
const TOKENS = 128;
const TARGET = 0.33;

interface Timed {
  wall: number;
  cpu: number;
  ids: number[];
}

async function timeGenerate(model: Model, tf: Tf, cache: boolean, maxTokens: number): Promise<Timed> {
  const g = normal(7);
  const image = tf.tensor4d(Float32Array.from({ length: 32 * 32 * 3 }, () => g()), [1, 32, 32, 3]);
  try {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await generate(model, image, { prompt: [1], eos: null, maxTokens, cache });
    const wall = performance.now() - t0;
    const c = process.cpuUsage(c0);
    return { wall, cpu: (c.user + c.system) / 1000, ids: Array.from(r.ids[0]!) };
  } finally {
    image.dispose();
  }
}

interface WorkerResult {
  backend: string;
  cached: { wall: number; cpu: number };
  uncached: { wall: number; cpu: number };
  same: boolean;
  leaked: boolean;
}

/** One configuration, measured in this process: per-token medians. */
async function measure(runs: number): Promise<WorkerResult> {
  let backendLine = "";
  const { tf } = await initBackend("wasm", { log: (line) => (backendLine = line) });
  const r = compile("bench-generate.vlm", { text: new TextEncoder().encode(SPEC), baseDir: process.cwd() });
  if (!r.ir) throw new Error(`the benchmark's spec does not compile: ${r.diagnostics.map((d) => `${d.code} ${d.message}`).join("; ")}`);
  const model = Model.create(tf, r.ir, 1);
  try {
    // Warm-up at full length: kernels, the wasm heap, and the constants the model keeps per
    // sequence length (the uncached passes' causal masks without the native softmax).
    await timeGenerate(model, tf, true, TOKENS);
    await timeGenerate(model, tf, false, TOKENS);
    const tensors = tf.memory().numTensors;
    const cached: Timed[] = [];
    const full: Timed[] = [];
    for (let k = 0; k < runs; k++) {
      cached.push(await timeGenerate(model, tf, true, TOKENS));
      full.push(await timeGenerate(model, tf, false, TOKENS));
    }
    const leaked = tf.memory().numTensors !== tensors;
    const same = [...cached, ...full].every((t) => t.ids.length === TOKENS && t.ids.join() === cached[0]!.ids.join());
    const per = (ts: Timed[], key: "wall" | "cpu") => median(ts.map((t) => t[key])) / TOKENS;
    return { backend: backendLine, cached: { wall: per(cached, "wall"), cpu: per(cached, "cpu") }, uncached: { wall: per(full, "wall"), cpu: per(full, "cpu") }, same, leaked };
  } finally {
    model.dispose();
  }
}

const CONFIGS = [
  { name: "wasm+native", env: {}, judged: true },
  { name: "wasm", env: { VLMC_NATIVE: "0" }, judged: false },
] as const;

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const json = argv.includes("--json");
  const i = argv.indexOf("--runs");
  const runs = i >= 0 ? Number(argv[i + 1]) : 3;
  if (!Number.isInteger(runs) || runs < 1) {
    process.stderr.write("bench/generate: --runs takes a positive integer\n");
    return 2;
  }
  if (argv.includes("--worker")) {
    process.stdout.write(`${JSON.stringify(await measure(runs))}\n`);
    return 0;
  }
  const env = environment();
  const results: Result[] = [];
  const notes: string[] = [];
  let failed = false;
  for (const config of CONFIGS) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--worker", "--runs", String(runs)], { encoding: "utf8", env: { ...process.env, ...config.env }, maxBuffer: 1 << 24 });
    if (r.status !== 0) {
      process.stderr.write(`bench/generate: ${config.name}: ${(r.stderr || r.stdout).trim().split("\n").pop() ?? `exited ${r.status}`}\n`);
      return 1;
    }
    const w = JSON.parse(r.stdout.trim().split("\n").pop()!) as WorkerResult;
    const { cached: c, uncached: u } = w;
    const tag = config.name;
    results.push(
      { name: `generate.${tag}.cached`, what: `${tag}: cached, ms per token (${TOKENS} tokens, batch 1)`, value: c.wall, cpu: c.cpu, unit: "ms", runs },
      { name: `generate.${tag}.uncached`, what: `${tag}: uncached, ms per token (a full pass each)`, value: u.wall, cpu: u.cpu, unit: "ms", runs },
      { name: `generate.${tag}.ratio`, what: `${tag}: cached / uncached time per token`, value: c.wall / u.wall, cpu: c.cpu / u.cpu, unit: "x", ...(config.judged ? { target: TARGET, atMost: true } : {}), runs },
    );
    notes.push(
      `${tag}: cached ${(1000 / c.wall).toFixed(0)} tokens/s, uncached ${(1000 / u.wall).toFixed(0)} tokens/s: the cache is ${(u.wall / c.wall).toFixed(1)}x faster (${(u.cpu / c.cpu).toFixed(1)}x in CPU time)${config.judged ? `; target >= 3x, i.e. ratio <= ${TARGET}` : ""}`,
      `${tag}: ${w.backend}; tokens: ${w.same ? "cached and uncached wrote the same 128 tokens in every run" : "DIFFER between cached and uncached"}; tensors after the runs: ${w.leaked ? "GROW: a leak" : "constant"}`,
    );
    if (!w.same) process.stderr.write(`bench/generate: ${tag}: cached and uncached decoding wrote different tokens\n`);
    if (w.leaked) process.stderr.write(`bench/generate: ${tag}: the tensor count grew over the runs (a leak)\n`);
    failed ||= !w.same || w.leaked;
  }
  printResults("generate", env, results, json, [
    ...notes,
    "model: GPT-style decoder, width 256, 6 layers, 8 heads, context 256, learned positions; ViT 32 x 32, patch 16 (4 visual tokens); random weights; greedy from bos, no eos; medians of the runs",
  ]);
  return failed ? 1 : 0;
}

process.exitCode = await main();
