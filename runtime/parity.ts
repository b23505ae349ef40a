// The parity cases of test/fixtures/parity/: each names a spec, a seed and a batch; vlmc
// makes the weights from the seed and the inputs from the seed too, PyTorch computed the
// goldens from the same weights (tools/torch/parity.py), and the test compares.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type * as tfjs from "@tensorflow/tfjs";
import { compile } from "../compiler/compile.js";
import type { Ir } from "../compiler/ir/types.js";
import type { Tf } from "../compiler/layers/ops.js";
import { uniform01 } from "./random.js";

export interface ParityCase {
  spec: string;
  model: string;
  seed: number;
  batch: number;
  text: number;
  grads: string[];
  after: string[];
  /** sha256 of the weights file vlmc wrote for PyTorch (so the test knows it recreates them). */
  weights_sha256?: string;
}

export function readCase(folder: string): { c: ParityCase; ir: Ir } {
  const c = JSON.parse(readFileSync(resolve(folder, "case.json"), "utf8")) as ParityCase;
  const { ir, diagnostics } = compile(resolve(folder, c.spec), { baseDir: folder });
  if (!ir) throw new Error(`${folder}: the spec does not compile: ${diagnostics.map((d) => d.message).join("; ")}`);
  return { c, ir };
}

export interface ParityInputs {
  images?: Float32Array;
  imageShape?: number[];
  tokens: Int32Array;
  targets: Int32Array;
  /** 1 for text positions that count, 0 for padding: the last 3 positions of the last example are padding. */
  mask: Float32Array;
}

export function makeInputs(c: ParityCase, ir: Ir): ParityInputs {
  const u = uniform01(c.seed * 1000 + 7);
  const vocab = ir.modules.decoder!.output[2] as number;
  const n = c.batch * c.text;
  const ids = () => Int32Array.from({ length: n }, () => Math.floor(u() * vocab));
  const tokens = ids();
  const targets = ids();
  const mask = new Float32Array(n).fill(1);
  for (let i = n - 3; i < n; i++) mask[i] = 0;
  const out: ParityInputs = { tokens, targets, mask };
  const enc = ir.modules.encoder;
  if (enc) {
    const shape = [c.batch, ...(enc.input.slice(1) as number[])];
    out.images = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => u());
    out.imageShape = shape;
  }
  return out;
}

export function inputTensors(tf: Tf, c: ParityCase, inp: ParityInputs): { images: tfjs.Tensor | null; tokens: tfjs.Tensor; targets: tfjs.Tensor; mask: tfjs.Tensor } {
  return {
    images: inp.images ? tf.tensor(inp.images, inp.imageShape) : null,
    tokens: tf.tensor(inp.tokens, [c.batch, c.text], "int32"),
    targets: tf.tensor(inp.targets, [c.batch, c.text], "int32"),
    mask: tf.tensor(inp.mask, [c.batch, c.text]),
  };
}
