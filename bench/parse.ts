// The front end's speed: parse time of the seed spec (warm) and of a generated 10,000-line
// spec (cold and warm), in-process through `parseSource`, and the time of a whole
// `vlmc check specs/seemore.vlm` process against a bare `node -e 0`.
//
//   node dist/bench/parse.js           a table with the figures, the targets and PASS/MISS
//   node dist/bench/parse.js --json    one JSON object per line
//
// Figures are medians (after warm-up runs), in milliseconds. This is a benchmark, not a test:
// it never fails on a MISS; it exits non-zero only if something could not be measured.
import { readFileSync } from "node:fs";
import { checkSource } from "../compiler/check.js";
import { parseSource } from "../compiler/syntax/index.js";
import { repoPath, vlmcBin } from "../tools/repo.js";
import { environment, median, printResults, timeCall, timeProcess, type Result } from "./common.js";
import { generateSpec } from "./gen-spec.js";

function warmMedian(f: () => void, warmup: number, runs: number): { wall: number; cpu: number } {
  for (let i = 0; i < warmup; i++) f();
  const times: { wall: number; cpu: number }[] = [];
  for (let i = 0; i < runs; i++) times.push(timeCall(f));
  return { wall: median(times.map((t) => t.wall)), cpu: median(times.map((t) => t.cpu)) };
}

/** The median wall-clock time of a `node ARGS` process run in the repository root. */
function processMedian(args: string[], runs: number): number {
  timeProcess(args); // warm the file system cache
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(timeProcess(args).wall);
  return median(times);
}

/** Everything, in order: the cold parse must be the first parse of the process. */
function run(): Result[] {
  const seedPath = repoPath("specs", "seemore.vlm");
  const seed = readFileSync(seedPath);
  const bigText = generateSpec(10_000, 1);
  const big = new TextEncoder().encode(bigText);
  const bigLines = bigText.split("\n").length - 1;
  const kb = (n: number) => `${Math.round(n / 1024)} KB`;
  const results: Result[] = [];

  let first: ReturnType<typeof parseSource> | undefined;
  const cold = timeCall(() => {
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
  const checked = warmMedian(() => checkSource(seedPath, seed), 20, 100);
  results.push({ name: "check.seemore.warm", what: "check specs/seemore.vlm in-process (all stages), warm median", value: checked.wall, cpu: checked.cpu, unit: "ms", runs: 100 });

  const runs = 10;
  const vlmc = processMedian([vlmcBin, "check", "specs/seemore.vlm"], runs);
  const bare = processMedian(["-e", "0"], runs);
  results.push({ name: "process.vlmc-check-seemore", what: "`vlmc check specs/seemore.vlm` process, median", value: vlmc, unit: "ms", runs });
  results.push({ name: "process.node-e-0", what: "`node -e 0` process, median", value: bare, unit: "ms", runs });
  results.push({ name: "process.ratio", what: "vlmc check / node -e 0", value: vlmc / bare, unit: "x", runs });
  return results;
}

function main(): void {
  const json = process.argv.includes("--json");
  const env = environment();
  printResults("parse", env, run(), json);
}

main();
