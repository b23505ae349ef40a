// What both sides of the training benchmark start from (bench/train.ts): the model's IR, its
// initial weights and one batch, written once per model into a folder that the vlmc workers
// (bench/train-worker.ts) and PyTorch (tools/torch/bench_step.py) read, so that every
// configuration and PyTorch train the same model from the same weights on the same batch.
//
//   ir.json               the IR (`vlmc compile --emit ir`), which PyTorch builds its model from
//   weights.safetensors   the initial weights: vlmc's seeded initialisation (runtime/model.ts
//                         `initValues`, the values `Model.create(tf, ir, seed)` makes), vlmc's names
//   inputs.safetensors    tokens [B, T] and targets [B, T] (I32), mask [B, T] (F32, all ones),
//                         images [B, H, W, C] (F32 in [0, 1)) for a model with an encoder
//
// No tfjs here: the weights come from the same pure function the runtime uses.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Ir, IrCall } from "../compiler/ir/types.js";
import { initValues, irParams } from "../runtime/model.js";
import { uniform01 } from "../runtime/random.js";
import { encodeSafetensors, type TensorToWrite } from "../runtime/safetensors.js";

export const INPUT_FILES = { ir: "ir.json", weights: "weights.safetensors", inputs: "inputs.safetensors" } as const;

/** The optimizer of the benchmark: the spec's first stage's, else Adam at 1e-3 (PyTorch's defaults otherwise). */
export interface BenchOptimizer {
  kind: "adam" | "adamw";
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weight_decay: number;
}

export function benchOptimizer(ir: Ir): BenchOptimizer {
  const o: IrCall | undefined = ir.train?.stages[0]?.optimizer;
  const num = (v: unknown, fallback: number) => (typeof v === "number" ? v : fallback);
  if (!o) return { kind: "adam", lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0 };
  if (o.kind !== "adam" && o.kind !== "adamw") throw new Error(`the training benchmark runs Adam or AdamW; the spec's first stage uses ${o.kind}`);
  return { kind: o.kind, lr: num(o.lr, 1e-3), beta1: num(o.beta1, 0.9), beta2: num(o.beta2, 0.999), eps: num(o.eps, 1e-8), weight_decay: num(o.weight_decay, o.kind === "adamw" ? 0.01 : 0) };
}

/** The image shape [H, W, C] a model's encoder takes, or null without an encoder. */
export function imageShape(ir: Ir): [number, number, number] | null {
  const enc = ir.modules.encoder;
  if (!enc) return null;
  const [, h, w, c] = enc.input;
  if (typeof h !== "number" || typeof w !== "number" || typeof c !== "number") throw new Error("the encoder's input shape is not [B, H, W, C]");
  return [h, w, c];
}

export interface BatchShape {
  batch: number;
  text: number;
}

/** One batch, from `seed`: random ids below the vocabulary, every position counted. */
export function makeBatch(ir: Ir, { batch, text }: BatchShape, seed: number): TensorToWrite[] {
  const vocab = ir.tokenizer?.size;
  if (!vocab) throw new Error("the model has no tokenizer: the benchmark needs its vocabulary");
  const u = uniform01(seed);
  const ids = () => Int32Array.from({ length: batch * text }, () => Math.min(vocab - 1, Math.floor(u() * vocab)));
  const out: TensorToWrite[] = [
    { name: "tokens", dtype: "I32", shape: [batch, text], data: ids() },
    { name: "targets", dtype: "I32", shape: [batch, text], data: ids() },
    { name: "mask", dtype: "F32", shape: [batch, text], data: new Float32Array(batch * text).fill(1) },
  ];
  const img = imageShape(ir);
  if (img) {
    const n = batch * img[0] * img[1] * img[2];
    out.push({ name: "images", dtype: "F32", shape: [batch, ...img], data: Float32Array.from({ length: n }, () => u()) });
  }
  return out;
}

/** Writes ir.json, weights.safetensors and inputs.safetensors into `dir`. */
export function writeInputs(dir: string, ir: Ir, shape: BatchShape, seed: number): void {
  writeFileSync(join(dir, INPUT_FILES.ir), JSON.stringify(ir));
  const weights = irParams(ir).map((p) => ({ name: p.name, dtype: "F32" as const, shape: p.shape, data: initValues(p, seed) }));
  writeFileSync(join(dir, INPUT_FILES.weights), encodeSafetensors(weights));
  writeFileSync(join(dir, INPUT_FILES.inputs), encodeSafetensors(makeBatch(ir, shape, seed + 1)));
}
