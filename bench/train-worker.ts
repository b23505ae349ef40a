// One configuration of the training benchmark, in a process of its own so that its peak RSS is
// its own (bench/train.ts starts it). Reads the folder bench/train-inputs.ts wrote, builds the
// model with the same seeded weights, and runs N training steps on the one batch: forward
// (dropout off: `training: false`, so that the losses can be compared with PyTorch's), loss,
// the gradients of every parameter, an Adam update with PyTorch's rule (runtime/optim.ts).
// Prints one JSON line on stdout: the time and loss of each step, the tensor count after each
// step (constant, or something leaks), the peak RSS and the wasm heap.
//
//   node dist/bench/train-worker.js --dir DIR --steps N --seed S --backend wasm|cpu [--require-native]
//
// The backend is tfjs's `wasm` (with the native accelerator unless VLMC_NATIVE=0, as
// runtime/backend.ts decides) or `cpu`. With --require-native, a process whose accelerator did
// not load prints {"unavailable": REASON} at once instead of measuring stock wasm twice.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type * as tfjs from "@tensorflow/tfjs";
import type { Ir } from "../compiler/ir/types.js";
import { initBackend, parseBackendRequest, type InitializedBackend } from "../runtime/backend.js";
import { irParams, Model } from "../runtime/model.js";
import { Adam } from "../runtime/optim.js";
import { readSafetensors } from "../runtime/safetensors.js";
import { benchOptimizer, INPUT_FILES } from "./train-inputs.js";

/** What a worker prints. */
export interface WorkerResult {
  /** `wasm`, `wasm+native` or `cpu`: what ran. */
  backend: string;
  /** The line initBackend logged (which backend and why). */
  backend_line: string;
  times_ms: number[];
  losses: number[];
  tensors: number[];
  peak_rss_mb: number;
  wasm_heap_mb: number | null;
}

/** Whether the native accelerator runs in this process, and why not when it does not. */
export function nativeStatus(init: InitializedBackend): { loaded: boolean; reason: string } {
  if (init.backend !== "wasm") return { loaded: false, reason: `the ${init.backend} backend runs` };
  const n = init.native;
  if (!n) return { loaded: false, reason: "initBackend reports no native accelerator" };
  return n.matmul ? { loaded: true, reason: "" } : { loaded: false, reason: n.reason ?? n.summary };
}

function option(args: string[], name: string): string {
  const i = args.indexOf(name);
  const v = i >= 0 ? args[i + 1] : undefined;
  if (v === undefined) throw new Error(`train-worker: ${name} is required`);
  return v;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const dir = option(args, "--dir");
  const steps = Number(option(args, "--steps"));
  const seed = Number(option(args, "--seed"));
  let backendLine = "";
  const init = await initBackend(parseBackendRequest(option(args, "--backend")), { log: (l) => (backendLine = l) });
  const native = nativeStatus(init);
  if (args.includes("--require-native") && !native.loaded) {
    process.stdout.write(`${JSON.stringify({ unavailable: native.reason, backend_line: backendLine })}\n`);
    return;
  }
  const { tf } = init;
  const ir = JSON.parse(readFileSync(join(dir, INPUT_FILES.ir), "utf8")) as Ir;
  const read = readSafetensors(join(dir, INPUT_FILES.inputs));
  if (!read.ok) throw new Error(`${INPUT_FILES.inputs}: ${read.problems.map((p) => p.message).join("; ")}`);
  const input = (name: string) => {
    const t = read.tensors.get(name)!;
    return tf.tensor(t.data as Float32Array | Int32Array, t.shape, t.dtype === "I32" ? "int32" : "float32");
  };
  const tokens = input("tokens");
  const targets = input("targets");
  const mask = input("mask");
  const images = read.tensors.has("images") ? input("images") : null;

  const model = Model.create(tf, ir, seed);
  const o = benchOptimizer(ir);
  // Weight decay skips the parameters the IR marks (biases, norm gains): two optimizers then.
  const decays = new Set(irParams(ir).filter((p) => p.decay).map((p) => p.name));
  const make = (wd: number) => new Adam(tf, { lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: wd, decoupled: o.kind === "adamw" });
  const withDecay = o.weight_decay > 0 ? make(o.weight_decay) : null;
  const plain = make(0);
  const pick = (grads: Record<string, tfjs.Tensor>, decay: boolean) => Object.fromEntries(Object.entries(grads).filter(([n]) => decays.has(n) === decay));

  const times: number[] = [];
  const losses: number[] = [];
  const tensors: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    const r = tf.variableGrads(() => model.loss(model.forward(images, tokens, { training: false }), targets, mask));
    if (withDecay) {
      withDecay.apply(model.variables, pick(r.grads, true));
      plain.apply(model.variables, pick(r.grads, false));
    } else plain.apply(model.variables, r.grads);
    const loss = r.value.dataSync()[0]!;
    r.value.dispose();
    tf.dispose(r.grads);
    times.push(performance.now() - t0);
    losses.push(loss);
    tensors.push(tf.memory().numTensors);
  }
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.length;
  const result: WorkerResult = {
    backend: init.backend === "wasm" && native.loaded ? "wasm+native" : init.backend,
    backend_line: backendLine,
    times_ms: times.map((t) => Number(t.toFixed(2))),
    losses,
    tensors,
    // maxRSS is in KiB (Linux: the process's high-water mark, VmHWM).
    peak_rss_mb: Number((process.resourceUsage().maxRSS / 1024).toFixed(1)),
    wasm_heap_mb: heap ? heap / 1048576 : null,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`train-worker: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
