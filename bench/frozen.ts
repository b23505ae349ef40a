// Stage-1 steps (the projector learns; encoder and decoder frozen) three ways (issue 9):
// `tape`, the encoder inside tf.variableGrads' closure with the rest and every module in training
// mode, as the trainer ran before; `no-tape`, the frozen encoder run first in a tidy of its own,
// in inference mode (runtime/train/encoder-cache.ts, the cache off); `cached`, its outputs taken
// from the cache filled by the warm-up (every epoch after the first). A step is the trainer's own
// (runtime/train/trainer.ts trainStep: forward, loss, the projector's gradients, their norm), on
// one batch of random pixels and 48-token rows, random weights; the optimizer update, the same
// in all three, is left out.
//
// Models: `seemore`, the seed's (specs/seemore.vlm: ViT 96 x 96, patch 16, width 512, 3 blocks,
// an MLP projector, GPT of width 128 and 8 layers; batch 16): an encoder far heavier than the
// projector; `shapes`, examples/shapes (a patch-embedding encoder with no blocks; batch 32),
// where the encoder is cheap and the cache gains little; `mobilenet`, the pretrained MobileNetV2
// the `tfjs` preset reads (models/nsfwjs-mobilenet_v2, cut at block_12_add as examples/recipe does, 96 x 96; batch 32), run
// when the folder is there.
//
//   node dist/bench/frozen.js              a table: ms per step, ratios, the step's peak memory
//   node dist/bench/frozen.js --json       one JSON object per line (bench/common.ts)
//   node dist/bench/frozen.js --runs N     medians of N timed steps per way (default 5)
//   node dist/bench/frozen.js --worker M   one model in this process, as one JSON line
//
// Each model runs in a process of its own on the default backend (wasm with the native
// accelerator when it was built). For information: no targets. Exits 1 when tensors leak or the
// ways' losses differ: `no-tape` and `cached` must agree exactly, and `tape` too where the frozen
// modules have no dropout (the seed's have: its `tape` way applies it, as training did before).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type * as tfjs from "@tensorflow/tfjs";
import { compile } from "../compiler/compile.js";
import type { Ir } from "../compiler/ir/types.js";
import { initBackend } from "../runtime/backend.js";
import { Model } from "../runtime/model.js";
import { normal } from "../runtime/random.js";
import type { Example, StageData } from "../runtime/train/data.js";
import { EncoderCache, FrozenEncoder } from "../runtime/train/encoder-cache.js";
import { trainStep, type StepModules } from "../runtime/train/trainer.js";
import { repoRoot } from "../tools/repo.js";
import { environment, median, printResults, type Result } from "./common.js";

const TEXT = 48;
const MOBILENET = join(repoRoot, "models", "nsfwjs-mobilenet_v2");

const DECODER_SHAPES = "decoder gpt { dim: 64, heads: 4, layers: 2, context: 96, position: rope, activation: relu }";
const MODELS: Record<string, { what: string; batch: number; spec: () => string | null; dropout: boolean }> = {
  seemore: {
    what: "seed (ViT 96x96/16, width 512, 3 blocks; GPT 128 x 8 layers), batch 16",
    batch: 16,
    dropout: true,
    spec: () => `vlm 0.1
model bench_frozen {
  tokenizer chars { alphabet: "\\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", specials: [pad] }
  encoder vit { image: 96 x 96 x 3, patch: 16, dim: 512, heads: 8, blocks: 3, mlp: 2048, dropout: 0.1, cls: true, output: cls, attention_scale: dim }
  projector { linear(2048) -> gelu -> linear(128) -> dropout(0.1) }
  decoder gpt { dim: 128, heads: 8, layers: 8, context: 1000, position: learned, dropout: 0.1, activation: gelu, qkv_bias: false, tie_embeddings: false, head_bias: true, attention_scale: dim }
}
`,
  },
  shapes: {
    what: "examples/shapes (ViT 96x96/32, width 64, no blocks; GPT 64 x 2), batch 32",
    batch: 32,
    dropout: false,
    spec: () => `vlm 0.1
model bench_frozen {
  tokenizer chars { alphabet: " abcdefghilmnoqrstuwy", specials: [pad, bos, eos] }
  encoder vit { image: 96 x 96 x 3, patch: 32, dim: 64, heads: 4, blocks: 0, cls: false, output: patches }
  projector { linear(2 * encoder.dim) -> gelu -> linear(decoder.dim) }
  ${DECODER_SHAPES}
}
`,
  },
  mobilenet: {
    what: "examples/recipe's stage 1: pretrained MobileNetV2 (tfjs, block_12_add, 96x96: 36 tokens of 96); GPT 64 x 2, batch 32",
    batch: 32,
    dropout: false,
    spec: () =>
      existsSync(join(MOBILENET, "model.json"))
        ? `vlm 0.1
model bench_frozen {
  tokenizer chars { alphabet: " abcdefghilmnoqrstuwy", specials: [pad, bos, eos] }
  encoder tfjs { model: ${JSON.stringify(MOBILENET)}, layer: "block_12_add", image: 96 x 96 x 3 }
  projector { linear(256) -> gelu -> linear(decoder.dim) }
  decoder gpt { dim: 64, heads: 4, layers: 2, context: 128, position: rope, activation: relu }
}
`
        : null,
  },
};

const WAYS = ["tape", "no-tape", "cached"] as const;
type Way = (typeof WAYS)[number];

/**
 * One batch of `n` examples: random pixels per image, made once (pixels() copies them, as a
 * source copies and normalises its decoded images: random numbers per call would bill the
 * uncached ways for work no source does), random 48-token rows.
 */
function syntheticData(ir: Ir, n: number): StageData {
  const enc = ir.modules.encoder!;
  const [h, w] = [enc.input[1] as number, enc.input[2] as number];
  const per = h * w * 3;
  const vocab = ir.tokenizer!.size;
  const ids = normal(3);
  const pictures = Array.from({ length: n }, (_, i) => {
    const g = normal(i + 1);
    return Float32Array.from({ length: per }, () => g());
  });
  const examples: Example[] = Array.from({ length: n }, (_, i) => ({
    image: String(i),
    text: "",
    ids: Int32Array.from({ length: TEXT }, () => 1 + (Math.floor(Math.abs(ids()) * 1000) % (vocab - 1))),
  }));
  return {
    describe: "bench",
    train: examples,
    validation: [],
    problems: [],
    images: true,
    maxText: TEXT,
    padId: 0,
    imageSize: { height: h, width: w },
    pixels: async (xs) => {
      const out = new Float32Array(xs.length * per);
      xs.forEach((e, k) => out.set(pictures[Number(e.image)]!, k * per));
      return out;
    },
  };
}

interface WayResult {
  wall: number;
  cpu: number;
  loss: number;
  peakMiB: number;
}

interface WorkerResult {
  backend: string;
  ways: Record<Way, WayResult>;
  leaked: boolean;
}

async function measure(name: string, runs: number): Promise<WorkerResult> {
  let backendLine = "";
  const { tf } = await initBackend("wasm", { log: (line) => (backendLine = line) });
  const config = MODELS[name]!;
  const text = config.spec();
  if (text === null) throw new Error(`${MOBILENET} is missing (tools/extract-nsfwjs.mjs writes it)`);
  const r = compile(join(repoRoot, "bench-frozen.vlm"), { text: new TextEncoder().encode(text), baseDir: repoRoot });
  if (!r.ir) throw new Error(`the ${name} spec does not compile: ${r.diagnostics.map((d) => `${d.code} ${d.message}`).join("; ")}`);
  const ir = r.ir;
  const model = Model.create(tf, ir, 1);
  const data = syntheticData(ir, config.batch);
  const vars = [...model.variables].filter(([k]) => k.startsWith("projector.")).map(([, v]) => v);
  const cache = new EncoderCache(2 ** 30);
  const frozen = Object.keys(ir.modules).filter((m) => m !== "projector");
  const modules = (way: Way): StepModules =>
    way === "tape" ? { frozen: [], encoder: null } : { frozen, encoder: new FrozenEncoder(tf, model, data, way === "cached" ? cache : null) };
  const once = async (way: Way) => {
    const s = await trainStep(tf, model, data, data.train, config.batch, vars, () => 1, modules(way));
    tf.dispose(Object.values(s.grads));
    return s.loss;
  };
  try {
    // Warm-up: kernels, the model's constants, and (for `cached`) the cache.
    for (const way of WAYS) await once(way);
    const tensors = tf.memory().numTensors;
    const times: Record<Way, { wall: number; cpu: number }[]> = { tape: [], "no-tape": [], cached: [] };
    const losses = {} as Record<Way, number>;
    // Interleaved, so that a busy moment of the machine falls on all three alike.
    for (let k = 0; k < runs; k++)
      for (const way of WAYS) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        losses[way] = await once(way);
        const wall = performance.now() - t0;
        const c = process.cpuUsage(c0);
        times[way].push({ wall, cpu: (c.user + c.system) / 1000 });
      }
    const leaked = tf.memory().numTensors !== tensors;
    const ways = {} as Record<Way, WayResult>;
    for (const way of WAYS) {
      // The most bytes tensors held at once during a step (tfjs's own count; the wasm heap's high-water mark never falls).
      const info = await tf.profile(async () => {
        await once(way);
        return [] as tfjs.Tensor[];
      });
      ways[way] = { wall: median(times[way].map((t) => t.wall)), cpu: median(times[way].map((t) => t.cpu)), loss: losses[way], peakMiB: info.peakBytes / 2 ** 20 };
    }
    return { backend: backendLine, ways, leaked };
  } finally {
    model.dispose();
  }
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const json = argv.includes("--json");
  const i = argv.indexOf("--runs");
  const runs = i >= 0 ? Number(argv[i + 1]) : 5;
  if (!Number.isInteger(runs) || runs < 1) {
    process.stderr.write("bench/frozen: --runs takes a positive integer\n");
    return 2;
  }
  const w = argv.indexOf("--worker");
  if (w >= 0) {
    const name = argv[w + 1]!;
    if (!MODELS[name]) {
      process.stderr.write(`bench/frozen: --worker takes one of ${Object.keys(MODELS).join(", ")}\n`);
      return 2;
    }
    process.stdout.write(`${JSON.stringify(await measure(name, runs))}\n`);
    return 0;
  }
  const env = environment();
  const results: Result[] = [];
  const notes: string[] = [];
  let failed = false;
  for (const [name, config] of Object.entries(MODELS)) {
    if (config.spec() === null) {
      notes.push(`${name}: skipped: ${MOBILENET} is missing (node tools/extract-nsfwjs.mjs writes it)`);
      continue;
    }
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--worker", name, "--runs", String(runs)], { encoding: "utf8", maxBuffer: 1 << 24 });
    if (r.status !== 0) {
      process.stderr.write(`bench/frozen: ${name}: ${(r.stderr || r.stdout).trim().split("\n").pop() ?? `exited ${r.status}`}\n`);
      return 1;
    }
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as WorkerResult;
    const { tape, cached } = out.ways;
    const noTape = out.ways["no-tape"];
    results.push(
      { name: `frozen.${name}.tape`, what: `${name}: encoder in the tape (before), ms/step`, value: tape.wall, cpu: tape.cpu, unit: "ms", runs },
      { name: `frozen.${name}.no-tape`, what: `${name}: encoder outside the tape, ms/step`, value: noTape.wall, cpu: noTape.cpu, unit: "ms", runs },
      { name: `frozen.${name}.cached`, what: `${name}: encoder outputs cached, ms/step`, value: cached.wall, cpu: cached.cpu, unit: "ms", runs },
      { name: `frozen.${name}.no-tape-ratio`, what: `${name}: tape / no-tape`, value: tape.wall / noTape.wall, cpu: tape.cpu / noTape.cpu, unit: "x", runs },
      { name: `frozen.${name}.cached-ratio`, what: `${name}: tape / cached (the stage-1 speed-up)`, value: tape.wall / cached.wall, cpu: tape.cpu / cached.cpu, unit: "x", runs },
      { name: `frozen.${name}.peak.tape`, what: `${name}: tensors' peak in a step, tape`, value: tape.peakMiB, unit: "MiB", runs: 1 },
      { name: `frozen.${name}.peak.no-tape`, what: `${name}: tensors' peak in a step, no-tape`, value: noTape.peakMiB, unit: "MiB", runs: 1 },
      { name: `frozen.${name}.peak.cached`, what: `${name}: tensors' peak in a step, cached`, value: cached.peakMiB, unit: "MiB", runs: 1 },
    );
    // Without dropout the three ways compute the same loss; the seed's `tape` way applies its dropout.
    const same = noTape.loss === cached.loss && (config.dropout || tape.loss === noTape.loss);
    notes.push(`${name}: ${config.what}; ${out.backend}; losses ${config.dropout ? `no-tape = cached ${same ? "(equal)" : "DIFFER"}, tape with dropout` : same ? "equal in the three ways" : "DIFFER"}; tensors ${out.leaked ? "GROW: a leak" : "constant"}`);
    if (!same) process.stderr.write(`bench/frozen: ${name}: the ways give different losses: ${JSON.stringify(out.ways)}\n`);
    if (out.leaked) process.stderr.write(`bench/frozen: ${name}: the tensor count grew over the steps (a leak)\n`);
    failed ||= !same || out.leaked;
  }
  printResults("frozen", env, results, json, [
    ...notes,
    `a step: forward, loss, the projector's gradients and their norm on one batch (${TEXT}-token rows, random pixels and weights), no optimizer update; medians of ${runs} steps per way, interleaved`,
  ]);
  return failed ? 1 : 0;
}

process.exitCode = await main();
