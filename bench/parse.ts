// The front end's speed: parse time of the seed spec (warm) and of a generated 10,000-line
// spec (cold and warm), in-process through `parseSource`, and the time of a whole
// `vlmc check specs/seemore.vlm` process against a bare `node -e 0`.
//
//   node dist/bench/parse.js           a table with the figures, the targets and PASS/MISS
//   node dist/bench/parse.js --json    one JSON object per line
//
// Figures are medians (after warm-up runs), in milliseconds. This is a benchmark, not a test:
// it never fails on a MISS; it exits non-zero only if something could not be measured.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkSource } from "../compiler/check.js";
import { parseSource } from "../compiler/syntax/index.js";
import { generateSpec } from "./gen-spec.js";

interface Result {
  name: string;
  what: string;
  /** Wall-clock time (or a ratio of two). */
  value: number;
  /** CPU time of this process over the same runs (median), when measured in-process. */
  cpu?: number;
  unit: "ms" | "x";
  /** Upper bound; absent for figures reported for information. */
  target?: number;
  runs: number;
}

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("repository root not found");
    dir = up;
  }
  return dir;
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

interface Timing {
  wall: number;
  cpu: number;
}

/** Wall-clock and CPU time of one call, in ms. CPU time is what the code costs even when other
 * processes compete for the cores; wall-clock time is what a user waits. */
function time(f: () => void): Timing {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  f();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000 };
}

function warmMedian(f: () => void, warmup: number, runs: number): Timing {
  for (let i = 0; i < warmup; i++) f();
  const times: Timing[] = [];
  for (let i = 0; i < runs; i++) times.push(time(f));
  return { wall: median(times.map((t) => t.wall)), cpu: median(times.map((t) => t.cpu)) };
}

function processMedian(args: string[], cwd: string, runs: number): number {
  const once = () => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { cwd, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`\`node ${args.join(" ")}\` exited ${r.status}: ${String(r.stderr).slice(0, 500)}`);
    return ms;
  };
  once(); // warm the file system cache
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(once());
  return median(times);
}

/** Everything, in order: the cold parse must be the first parse of the process. */
function run(): Result[] {
  const root = repoRoot();
  const seed = readFileSync(join(root, "specs", "seemore.vlm"));
  const bigText = generateSpec(10_000, 1);
  const big = new TextEncoder().encode(bigText);
  const bigLines = bigText.split("\n").length - 1;
  const kb = (n: number) => `${Math.round(n / 1024)} KB`;
  const results: Result[] = [];

  let first: ReturnType<typeof parseSource> | undefined;
  const cold = time(() => {
    first = parseSource("generated-10k.vlm", big);
  });
  if (first!.diagnostics.length > 0) {
    const d = first!.diagnostics[0]!;
    throw new Error(`the generated spec is not clean: ${d.code} ${d.message} at offset ${d.span.start}`);
  }
  const lines = bigLines.toLocaleString("en");
  results.push({ name: "parse.generated10k.cold", what: `parse ${lines}-line spec (${kb(big.length)}), cold`, value: cold.wall, cpu: cold.cpu, unit: "ms", target: 1000, runs: 1 });
  const warm = warmMedian(() => parseSource("generated-10k.vlm", big), 3, 15);
  results.push({ name: "parse.generated10k.warm", what: `parse ${lines}-line spec, warm median`, value: warm.wall, cpu: warm.cpu, unit: "ms", target: 1000, runs: 15 });

  const seedParse = parseSource("specs/seemore.vlm", seed);
  if (seedParse.diagnostics.length > 0) throw new Error(`specs/seemore.vlm is not clean: ${seedParse.diagnostics[0]!.code}`);
  const seemore = warmMedian(() => parseSource("specs/seemore.vlm", seed), 50, 300);
  results.push({ name: "parse.seemore.warm", what: `parse specs/seemore.vlm (${seed.length} B), warm median`, value: seemore.wall, cpu: seemore.cpu, unit: "ms", target: 20, runs: 300 });
  const checked = warmMedian(() => checkSource(join(root, "specs", "seemore.vlm"), seed), 20, 100);
  results.push({ name: "check.seemore.warm", what: "check specs/seemore.vlm in-process (all stages), warm median", value: checked.wall, cpu: checked.cpu, unit: "ms", runs: 100 });

  const runs = 10;
  const vlmc = processMedian([join(root, "bin", "vlmc.js"), "check", "specs/seemore.vlm"], root, runs);
  const bare = processMedian(["-e", "0"], root, runs);
  results.push({ name: "process.vlmc-check-seemore", what: "`vlmc check specs/seemore.vlm` process, median", value: vlmc, unit: "ms", runs });
  results.push({ name: "process.node-e-0", what: "`node -e 0` process, median", value: bare, unit: "ms", runs });
  results.push({ name: "process.ratio", what: "vlmc check / node -e 0", value: vlmc / bare, unit: "x", runs });
  return results;
}

function ms(v: number): string {
  return `${v < 10 ? v.toFixed(2) : v.toFixed(0)} ms`;
}

function format(r: Result): string {
  return r.unit === "x" ? `${r.value.toFixed(1)}x` : ms(r.value);
}

function main(): void {
  const json = process.argv.includes("--json");
  const env = { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model ?? "unknown", loadavg: loadavg().map((x) => Number(x.toFixed(2))) };
  const results = run();
  if (json) {
    process.stdout.write(`${JSON.stringify({ benchmark: "parse", name: "environment", ...env })}\n`);
    for (const r of results) {
      const status = r.target === undefined ? "info" : r.value < r.target ? "pass" : "miss";
      const cpu = r.cpu === undefined ? {} : { cpu: Number(r.cpu.toFixed(3)) };
      process.stdout.write(`${JSON.stringify({ benchmark: "parse", ...r, value: Number(r.value.toFixed(3)), ...cpu, status })}\n`);
    }
    return;
  }
  const rows = results.map((r) => [r.what, format(r), r.cpu === undefined ? "" : ms(r.cpu), r.target === undefined ? "" : `< ${r.target} ${r.unit}`, r.target === undefined ? "" : r.value < r.target ? "PASS" : "MISS"]);
  const head = ["benchmark: parse", "wall", "cpu", "target", ""];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 1 || i === 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd();
  const out = [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
  out.push("", `node ${env.node}, ${env.cpus} CPU(s) (${env.cpu}), load average ${env.loadavg.join(" ")}`);
  out.push("PASS/MISS compare wall-clock time; on a busy machine (load above the CPU count) the cpu column is the better guide.");
  process.stdout.write(`${out.join("\n")}\n`);
}

main();
