// PyTorch's side of the training benchmark: runs tools/torch/bench_step.py with the Python that
// VLMC_TORCH_PYTHON names, in PyTorch's strongest setting on a small CPU:
//
//   torch.set_num_threads(1)           one intra-op thread (bench_step.py): the matmuls are
//                                      OpenBLAS's, whose threads then have the cores to themselves
//   OPENBLAS_NUM_THREADS = cores       unless the caller set it
//   OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE  removed, for this process only: set, they force a core
//                                      type and a cache size instead of OpenBLAS's own detection
//
// On the 2-core machine of issue 5 (seed step, batch 16): 188 ms without the two overrides and
// 263 ms with them; with them, 1 torch + 2 BLAS threads 267 ms, 2 + 1 392 ms, 2 + 2 784 ms
// (oversubscribed). What was used is reported back with the figures (the BLAS, its core, threads).
import { spawnSync } from "node:child_process";
import { cpus } from "node:os";
import { repoPath } from "../tools/repo.js";

export interface TorchResult {
  torch: string;
  threads: number;
  blas: string;
  env: Record<string, string | null>;
  params: number;
  times_ms: number[];
  ms_per_step: number;
  losses: number[];
  peak_rss_mb: number;
  forward_matmul_flops: number | null;
}

/** The Python with torch to compare with, or null when VLMC_TORCH_PYTHON is unset or empty. */
export function torchPython(env: NodeJS.ProcessEnv = process.env): string | null {
  const p = env.VLMC_TORCH_PYTHON?.trim();
  return p ? p : null;
}

/** The environment bench_step.py runs in (see the header). */
export function torchEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, OPENBLAS_NUM_THREADS: env.OPENBLAS_NUM_THREADS || String(cpus().length) };
  delete out.OPENBLAS_CORETYPE;
  delete out.OPENBLAS_L2_SIZE;
  return out;
}

/** Runs `steps` steps in PyTorch on the folder bench/train-inputs.ts wrote. Throws with PyTorch's own last line on failure. */
export function runTorch(python: string, dir: string, steps: number, timeoutMs: number): TorchResult {
  const script = repoPath("tools", "torch", "bench_step.py");
  const r = spawnSync(python, [script, dir, "--steps", String(steps)], { encoding: "utf8", env: torchEnv(), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
  if (r.error) throw new Error(`VLMC_TORCH_PYTHON=${python}: ${r.error.message}`);
  if (r.status !== 0) {
    const last = (r.stderr || r.stdout).trim().split("\n").pop() ?? "";
    throw new Error(`VLMC_TORCH_PYTHON=${python}: tools/torch/bench_step.py exited ${r.status ?? r.signal}: ${last}`);
  }
  const line = r.stdout.trim().split("\n").pop() ?? "";
  return JSON.parse(line) as TorchResult;
}
