// The rows of the training benchmark (bench/train.ts) and their printing: one JSON object per
// line per (model, configuration) with `--json`, else a table with the targets and PASS/MISS.
import type { Environment } from "./common.js";

/** One (model, configuration): the field names are the issue's; the others are extras. */
export interface TrainRow {
  benchmark: "train";
  model: string;
  /** `wasm` (stock, VLMC_NATIVE=0), `wasm+native` or `cpu`. */
  config: string;
  /** What a plain install runs: wasm+native when the accelerator loads, else wasm. */
  default: boolean;
  available: boolean;
  /** Why a configuration is unavailable, or did not run to the end. */
  reason: string | null;
  /** What ran, as the worker saw it (`wasm`, `wasm+native`, `cpu`). */
  backend: string | null;
  batch: number;
  text: number;
  steps: number;
  /** Median of steps 2..N. */
  ms_per_step: number | null;
  first_step_ms: number | null;
  /** FLOPs per step (compiler/cost: 3 x the forward) / ms_per_step. */
  gflops: number | null;
  flops_per_step: number;
  /** The cost model's forward FLOPs, and PyTorch's profiler's count of its matrix products (a cross-check). */
  forward_flops: number;
  torch_forward_matmul_flops: number | null;
  /** MiB (2^20 bytes), the whole process's high-water mark. */
  peak_rss_mb: number | null;
  wasm_heap_mb: number | null;
  losses: number[] | null;
  /** Every step's loss within `loss_rtol` (relative) of PyTorch's; null without PyTorch. */
  losses_match: boolean | null;
  loss_max_rel_diff: number | null;
  loss_rtol: number;
  /** The tensor count is the same after every step from the second on (no leak). */
  tensors_constant: boolean | null;
  torch_ms_per_step: number | null;
  torch_peak_rss_mb: number | null;
  torch_blas: string | null;
  torch_threads: number | null;
  torch_version: string | null;
  torch_losses: number[] | null;
  /** ms_per_step / torch_ms_per_step. */
  ratio: number | null;
  /** peak_rss_mb / torch_peak_rss_mb. */
  rss_ratio: number | null;
  /** The targets (the default configuration is held to them). */
  target_ratio: number;
  target_rss_ratio: number;
  /** pass / miss against the targets (default configuration, with PyTorch), else info. */
  status: "pass" | "miss" | "info";
  backend_line: string | null;
}

const fixed = (x: number | null, digits: number) => (x === null ? null : Number(x.toFixed(digits)));

export function printJson(env: Environment, extra: Record<string, unknown>, rows: readonly TrainRow[]): void {
  process.stdout.write(`${JSON.stringify({ benchmark: "train", name: "environment", ...env, ...extra })}\n`);
  for (const r of rows) {
    const out = { ...r, ms_per_step: fixed(r.ms_per_step, 2), first_step_ms: fixed(r.first_step_ms, 2), gflops: fixed(r.gflops, 2), ratio: fixed(r.ratio, 3), rss_ratio: fixed(r.rss_ratio, 3), torch_ms_per_step: fixed(r.torch_ms_per_step, 2) };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  }
}

function cell(x: number | null, unit = "", digits = 0): string {
  return x === null ? "-" : `${x.toFixed(digits)}${unit}`;
}

export function printTable(env: Environment, rows: readonly TrainRow[], notes: readonly string[]): void {
  const head = ["model", "config", "ms/step", "GFLOP/s", "peak RSS", "torch ms", "torch RSS", "ratio", "RSS ratio", "losses", "target", ""];
  const body = rows.map((r) => {
    if (!r.available) return [r.model, r.config, `unavailable: ${r.reason ?? ""}`];
    const losses = r.losses_match === null ? "-" : r.losses_match ? "match" : "DIFFER";
    const target = r.default ? `<= ${r.target_ratio}x, RSS <= ${r.target_rss_ratio}x` : "";
    const status = r.status === "info" ? "" : r.status.toUpperCase();
    return [
      r.model,
      `${r.config}${r.default ? " *" : ""}`,
      cell(r.ms_per_step, "", r.ms_per_step !== null && r.ms_per_step < 100 ? 1 : 0),
      cell(r.gflops, "", r.gflops !== null && r.gflops < 10 ? 2 : 1),
      cell(r.peak_rss_mb, " MiB"),
      cell(r.torch_ms_per_step, "", r.torch_ms_per_step !== null && r.torch_ms_per_step < 100 ? 1 : 0),
      cell(r.torch_peak_rss_mb, " MiB"),
      cell(r.ratio, "x", 2),
      cell(r.rss_ratio, "x", 2),
      losses,
      target,
      status,
    ];
  });
  // An unavailable configuration is its name and why, across the other columns.
  const widths = head.map((h, k) => Math.max(h.length, ...body.filter((r) => r.length === head.length || k < 2).map((r) => r[k]!.length)));
  const right = new Set([2, 3, 4, 5, 6, 7, 8]);
  const line = (cells: string[]) =>
    cells.length < head.length ? `${cells[0]!.padEnd(widths[0]!)}  ${cells[1]!.padEnd(widths[1]!)}  ${cells[2]}` : cells.map((c, k) => (right.has(k) ? c.padStart(widths[k]!) : c.padEnd(widths[k]!))).join("  ").trimEnd();
  const out = ["benchmark: train", line(head), line(widths.map((w) => "-".repeat(w))), ...body.map(line)];
  out.push("", `node ${env.node}, ${env.cpus} CPU(s) (${env.cpu}), load average ${env.loadavg.join(" ")}`);
  out.push(...notes);
  process.stdout.write(`${out.join("\n")}\n`);
}
