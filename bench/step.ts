// A training step of the seed model (specs/seemore.vlm, batch 16, 32 text tokens) on the
// default backend: forward, loss, gradients of every parameter, an Adam update. Reports the
// median step time, the peak RSS and the wasm heap, and checks that the tensor count stays
// constant from step to step. Figures for information: the speed issue sets the targets.
//   node dist/bench/step.js [--json] [--backend wasm|cpu] [--steps N]
// A quick check in one process, run by hand: `npm run bench` runs bench/train.ts instead, which
// measures the same step per configuration (stock wasm, wasm + native) against PyTorch.
import { compile } from "../compiler/compile.js";
import { initBackend, parseBackendRequest } from "../runtime/backend.js";
import { Model } from "../runtime/model.js";
import { Adam } from "../runtime/optim.js";
import { repoPath } from "../tools/repo.js";
import { environment, median, printResults, type Result } from "./common.js";

const args = process.argv.slice(2);
const json = args.includes("--json");
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const steps = Number(opt("--steps", "5"));
const { tf, backend } = await initBackend(parseBackendRequest(opt("--backend", "wasm")), { log: () => {} });
const { ir } = compile(repoPath("specs", "seemore.vlm"));
if (!ir) throw new Error("specs/seemore.vlm does not compile");
const model = Model.create(tf, ir, 1);
const B = 16;
const T = 32;
const images = tf.randomUniform([B, 96, 96, 3], 0, 1, "float32", 1);
const tokens = tf.randomUniform([B, T], 0, 66, "int32", 2);
const targets = tf.randomUniform([B, T], 0, 66, "int32", 3);
const mask = tf.ones([B, T]);
const adam = new Adam(tf, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false });
const times: number[] = [];
const counts: number[] = [];
let peakRss = 0;
for (let i = 0; i < steps; i++) {
  const t0 = performance.now();
  const r = tf.variableGrads(() => model.loss(model.forward(images, tokens, { training: true, dropoutSeed: i }), targets, mask));
  adam.apply(model.variables, r.grads);
  r.value.dataSync();
  r.value.dispose();
  tf.dispose(r.grads);
  times.push(performance.now() - t0);
  counts.push(tf.memory().numTensors);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}
const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.length;
const results: Result[] = [
  { name: "step.seed.first", what: `seed model step on ${backend}, first (B=${B}, T=${T})`, value: times[0]!, unit: "ms", runs: 1 },
  { name: "step.seed.median", what: `seed model step on ${backend}, median of steps 2-${steps}`, value: median(times.slice(1)), unit: "ms", runs: steps - 1 },
  { name: "step.seed.peak_rss", what: "peak RSS of the process", value: peakRss / 1048576, unit: "MiB", runs: steps },
  ...(heap ? [{ name: "step.seed.wasm_heap", what: "wasm heap (never shrinks)", value: heap / 1048576, unit: "MiB" as const, runs: steps }] : []),
];
const leak = counts.slice(1).some((c) => c !== counts[1]);
printResults("step", environment(), results, json, [`tensor count after each step: ${counts.join(", ")}${leak ? "  <- GROWS: a leak" : " (constant: no leak)"}`]);
if (leak) process.exitCode = 1;
