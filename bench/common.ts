// What the benchmarks share: the figures they report (`Result`), timing and medians, and the
// printing of the figures, as a table or as one JSON object per line (`--json`).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { repoRoot } from "../tools/repo.js";

export interface Result {
  name: string;
  what: string;
  /** Wall-clock time (ms), or a ratio of two. */
  value: number;
  unit: "ms" | "x" | "MiB";
  /** CPU time (ms) or CPU-time ratio, beside the wall-clock `value`; absent where not measured. */
  cpu?: number | undefined;
  /** Upper bound (inclusive with `atMost`); absent for figures reported for information. */
  target?: number;
  atMost?: boolean;
  runs: number;
}

export interface Timing {
  wall: number;
  /** CPU time (user + system), ms; undefined where it cannot be read. */
  cpu: number | undefined;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Wall-clock and CPU time of one call in this process, in ms. CPU time is what the code costs
 * even when other processes compete for the cores; wall-clock time is what a user waits. */
export function timeCall(f: () => void): { wall: number; cpu: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  f();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000 };
}

/**
 * CPU time of this process's waited-for children so far, in ms (Linux: `cutime` + `cstime` of
 * /proc/self/stat, in clock ticks of 10 ms), or undefined elsewhere. A child reaped by
 * spawnSync adds its whole CPU time, start-up included.
 */
function childrenCpu(): number | undefined {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(f[13]) + Number(f[14]);
    return Number.isFinite(ticks) ? ticks * 10 : undefined;
  } catch {
    return undefined;
  }
}

/** Wall and CPU time of one `node ARGS` process run in the repository root, colour off; throws
 * if it exits with another status than 0. */
export function timeProcess(args: string[]): Timing {
  const c0 = childrenCpu();
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { encoding: "utf8", cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
  const wall = performance.now() - t0;
  if (r.status !== 0) throw new Error(`\`node ${args.join(" ")}\` exited ${r.status}: ${(r.stderr || r.stdout).slice(0, 2000)}`);
  const c1 = childrenCpu();
  return { wall, cpu: c0 === undefined || c1 === undefined ? undefined : c1 - c0 };
}

export interface Environment {
  node: string;
  cpus: number;
  cpu: string;
  loadavg: number[];
}

/** The machine the figures come from (read before a benchmark runs: the load it starts under). */
export function environment(): Environment {
  return { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model ?? "unknown", loadavg: loadavg().map((x) => Number(x.toFixed(2))) };
}

/** Whether a result meets its target; undefined when it has none. */
const passes = (r: Result) => (r.target === undefined ? undefined : r.atMost ? r.value <= r.target : r.value < r.target);

function format(v: number, unit: Result["unit"]): string {
  if (unit === "x") return `${v.toFixed(1)}x`;
  return `${v < 10 ? v.toFixed(2) : v.toFixed(0)} ${unit}`;
}

/**
 * Prints the results of `benchmark` on stdout: with `json`, one JSON object per line (the
 * environment first, then each result with its status: pass, miss or info); otherwise a table
 * with the figures, the targets and PASS/MISS, the environment and `notes` below it.
 */
export function printResults(benchmark: string, env: Environment, results: readonly Result[], json: boolean, notes: readonly string[] = []): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ benchmark, name: "environment", ...env })}\n`);
    for (const r of results) {
      const pass = passes(r);
      const cpu = r.cpu === undefined ? {} : { cpu: Number(r.cpu.toFixed(3)) };
      process.stdout.write(`${JSON.stringify({ benchmark, ...r, value: Number(r.value.toFixed(3)), ...cpu, status: pass === undefined ? "info" : pass ? "pass" : "miss" })}\n`);
    }
    return;
  }
  const rows = results.map((r) => {
    const pass = passes(r);
    return [r.what, format(r.value, r.unit), r.cpu === undefined ? "" : format(r.cpu, r.unit), r.target === undefined ? "" : `${r.atMost ? "<=" : "<"} ${r.target}${r.unit === "x" ? "x" : ` ${r.unit}`}`, pass === undefined ? "" : pass ? "PASS" : "MISS"];
  });
  const head = [`benchmark: ${benchmark}`, "wall", "cpu", "target", ""];
  const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k]!.length)));
  const line = (cells: string[]) => cells.map((c, k) => (k === 1 || k === 2 ? c.padStart(widths[k]!) : c.padEnd(widths[k]!))).join("  ").trimEnd();
  const out = [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
  out.push("", `node ${env.node}, ${env.cpus} CPU(s) (${env.cpu}), load average ${env.loadavg.join(" ")}`);
  out.push("PASS/MISS compare wall-clock time; on a busy machine (load above the CPU count) the cpu column is the better guide.");
  out.push(...notes);
  process.stdout.write(`${out.join("\n")}\n`);
}
