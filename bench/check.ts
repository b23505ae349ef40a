// Benchmarks of `vlmc check` as a user meets it: a whole process, start-up included.
//
//   seemore   `vlmc check specs/seemore.vlm` against `node -e 0` (Node's own start-up): the
//             ratio of the medians is the price of vlmc's start-up and checking. Target <= 4.
//   deep      a generated, valid spec of 1,000 layers (a hand-written decoder of 100
//             transformer blocks, every layer explicit: no `repeat`, no `block`), checked as
//             a process (target < 1 s) and in this process (`check()`: the first call, which
//             builds the parser, and the median of the calls after it).
//
// Process runs are interleaved (node, seemore, deep, node, ...) so that a machine whose load
// changes during the run slows all of them alike. Medians of --runs (default 15) after one
// warm-up run each.
//
//   node dist/bench/check.js            a table with the figures, the targets and PASS/MISS
//   node dist/bench/check.js --json     one JSON object per line, as bench/parse.ts prints
//   node dist/bench/check.js --runs N   medians of N runs (default 15)
//
// This is a benchmark, not a test: it never fails on a MISS; it exits non-zero only if
// something could not be measured (a spec that does not check clean, a process that fails).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { check } from "../compiler/check.js";
import { compile } from "../compiler/compile.js";
import type { IrLayer } from "../compiler/ir/types.js";
import { vlmcBin } from "../tools/repo.js";
import { environment, median, printResults, timeCall, timeProcess, type Result, type Timing } from "./common.js";

/**
 * A valid spec whose decoder is written out layer by layer: `blocks` pre-LN transformer
 * blocks of 10 layers each (2 residuals; layernorm, attention, dropout; layernorm, linear,
 * gelu, linear, dropout), one per two lines, as a hand-unrolled GPT would be.
 */
function deepSpec(blocks = 100): string {
  const out = [
    `# A ${blocks}-block decoder written out layer by layer (bench/check.ts).`,
    "vlm 0.1",
    "",
    "model deep {",
    '  tokenizer chars { alphabet: "abcdefghijklmnopqrstuvwxyz .,", specials: [pad, eos] }',
    "  encoder vit { image: 64 x 64 x 3, patch: 16, dim: 256, heads: 8, blocks: 4, output: patches }",
    "  projector { linear(4 * encoder.dim) -> gelu -> linear(decoder.dim) -> dropout(0.1) }",
    "  decoder {",
    "    dim: 128",
    "    context: 256",
    "    position: learned",
    "    dropout: 0.1",
  ];
  for (let i = 0; i < blocks; i++) {
    const first = i === 0 ? "    " : "    -> ";
    out.push(`${first}residual { layernorm -> attention(heads: 4, causal: true, dropout: 0.1) -> dropout(0.1) }`);
    out.push(`    -> residual { layernorm -> linear(4 * dim) -> gelu -> linear(dim) -> dropout(0.1) }`);
  }
  out.push("    -> layernorm", "  }", "}", "");
  out.push("train {", "  data: shapes(images: 2000, size: 64, seed: 1)", "  batch: 8");
  out.push("  stage all { train: [encoder, projector, decoder], optimizer: adamw(lr: 3e-4), accumulate: 4, steps: 1000 }", "}", "");
  return out.join("\n");
}

function medians(ts: readonly Timing[]): Timing {
  const cpus = ts.map((t) => t.cpu);
  return { wall: median(ts.map((t) => t.wall)), cpu: cpus.every((c): c is number => c !== undefined) ? median(cpus) : undefined };
}

function countLayers(layers: readonly IrLayer[]): number {
  let n = 0;
  for (const l of layers) n += 1 + (l.children ? countLayers(l.children) : 0);
  return n;
}

/** Everything, in order: the first in-process check must be the first of the process. */
function run(runs: number): Result[] {
  const dir = mkdtempSync(join(tmpdir(), "vlmc-bench-check-"));
  try {
    const deepPath = join(dir, "deep.vlm");
    const text = deepSpec(100);
    writeFileSync(deepPath, text);

    // In-process: the first call of the process builds the parser; then the steady state.
    let first: ReturnType<typeof check> | undefined;
    const cold = timeCall(() => {
      first = check([deepPath]);
    });
    // The spec must be clean, or we would time an error report.
    if (first!.diagnostics.length > 0) throw new Error(`the generated spec is not clean: ${first!.diagnostics.map((d) => `${d.code} ${d.message}`).join("; ")}`);
    const warm = medians(Array.from({ length: runs }, () => timeCall(() => check([deepPath]))));
    const c = compile(deepPath, { text });
    if (!c.ir) throw new Error("the generated spec does not compile");
    const decoderLayers = countLayers(c.ir.modules.decoder?.layers ?? []);
    const allLayers = Object.values(c.ir.modules).reduce((n, m) => n + countLayers(m.layers), 0);
    const lines = text.split("\n").length - 1;

    // Whole processes, interleaved, after one warm-up each (file system cache).
    const nodeArgs = ["-e", "0"];
    const seemoreArgs = [vlmcBin, "check", "specs/seemore.vlm"];
    const deepArgs = [vlmcBin, "check", deepPath];
    const node: Timing[] = [];
    const seemore: Timing[] = [];
    const deep: Timing[] = [];
    for (const a of [nodeArgs, seemoreArgs, deepArgs]) timeProcess(a);
    for (let i = 0; i < runs; i++) {
      node.push(timeProcess(nodeArgs));
      seemore.push(timeProcess(seemoreArgs));
      deep.push(timeProcess(deepArgs));
    }
    const bare = medians(node);
    const vlmc = medians(seemore);
    const size = `${lines}-line spec, ${decoderLayers.toLocaleString("en")} decoder layers (${allLayers.toLocaleString("en")} in all)`;
    return [
      { name: "process.vlmc-check-seemore", what: "`vlmc check specs/seemore.vlm` process, median", value: vlmc.wall, cpu: vlmc.cpu, unit: "ms", runs },
      { name: "process.node-e-0", what: "`node -e 0` process, median", value: bare.wall, cpu: bare.cpu, unit: "ms", runs },
      {
        name: "process.ratio",
        what: "vlmc check seemore / node -e 0",
        value: vlmc.wall / bare.wall,
        cpu: vlmc.cpu !== undefined && bare.cpu ? vlmc.cpu / bare.cpu : undefined,
        unit: "x",
        target: 4,
        atMost: true,
        runs,
      },
      { name: "process.vlmc-check-deep", what: `\`vlmc check\` ${size}, process, median`, ...split(medians(deep)), unit: "ms", target: 1000, runs },
      { name: "check.deep.first", what: "check the same in-process, first call (builds the parser)", ...split(cold), unit: "ms", runs: 1 },
      { name: "check.deep.warm", what: "check the same in-process, warm median", ...split(warm), unit: "ms", runs },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function split(t: Timing): { value: number; cpu: number | undefined } {
  return { value: t.wall, cpu: t.cpu };
}

function main(): number {
  const argv = process.argv.slice(2);
  const json = argv.includes("--json");
  const i = argv.indexOf("--runs");
  const runs = i >= 0 ? Number(argv[i + 1]) : 15;
  if (!Number.isInteger(runs) || runs < 1) {
    process.stderr.write("bench/check: --runs takes a positive integer\n");
    return 2;
  }
  const env = environment();
  const results = run(runs);
  printResults("check", env, results, json, ["Process cpu: user + system time of the child, start-up included, in 10 ms ticks (Linux only)."]);
  return 0;
}

process.exitCode = main();
