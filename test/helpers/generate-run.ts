// A run folder made by hand for the `vlmc generate` tests (test/generate-cli.test.ts,
// test/bad-input.test.ts): the files `vlmc train` leaves (ir.json, tokenizer.json,
// weights.safetensors with the spec's hash), with seeded random weights large enough that the
// captions are varied, and a few test pictures of different sizes and formats written by sharp.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { compile } from "../../compiler/compile.js";
import type { Ir } from "../../compiler/ir/types.js";
import { irToJson } from "../../compiler/ir/yaml.js";
import { irParams } from "../../runtime/model.js";
import { normal } from "../../runtime/random.js";
import { encodeSafetensors, METADATA_HASH } from "../../runtime/safetensors.js";
import { CharTokenizer } from "../../runtime/tokenizer.js";

export const ALPHABET = "abcdefghij ";
export const tokenizer = new CharTokenizer({ alphabet: ALPHABET, specials: ["pad", "bos", "eos"] });

/** A 16 x 16 image in 4 patches of 8 (4 visual tokens), a learned-position decoder of context 24. */
export function generateSpec(options: { resize?: "stretch" | "crop" | "pad"; output?: "patches" | "cls"; context?: number } = {}): string {
  const resize = options.resize ?? "stretch";
  const output = options.output ?? "patches";
  return `vlm 0.1
model gen {
  tokenizer chars { alphabet: "${ALPHABET}", specials: [pad, bos, eos] }
  encoder vit { image: 16 x 16 x 3, patch: 8, dim: 16, heads: 2, blocks: 1, cls: ${output === "cls"}, output: ${output}, resize: ${resize}, normalize: stats(mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3]) }
  projector { linear(decoder.dim) }
  decoder gpt { dim: 16, heads: 2, layers: 2, context: ${options.context ?? 24} }
}
train {
  data: shapes(images: 16, size: 16, seed: 1)
  stage all { train: [encoder, projector, decoder], steps: 1 }
}
`;
}

export function compileSpec(dir: string, text: string): Ir {
  const r = compile(join(dir, "spec.vlm"), { text: new TextEncoder().encode(text), baseDir: dir });
  assert.ok(r.ir, r.diagnostics.map((d) => `${d.code} ${d.message}`).join("\n"));
  return r.ir;
}

/** Seeded weights (norm gains about 1, the rest N(0, std)) with the IR's hash, as safetensors bytes. */
export function randomWeights(ir: Ir, seed: number, std = 0.5): Uint8Array {
  const g = normal(seed);
  const tensors = irParams(ir).map((p) => {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = p.init.kind === "ones" ? 1 + 0.1 * g() : g() * std;
    return { name: p.name, dtype: "F32" as const, shape: p.shape, data };
  });
  return encodeSafetensors(tensors, { [METADATA_HASH]: ir.hash, "vlmc.model": ir.model });
}

/** Writes a run folder for `spec` with seeded weights; returns its IR. */
export function makeGenerateRun(dir: string, spec: string = generateSpec(), seed = 3): Ir {
  mkdirSync(dir, { recursive: true });
  const ir = compileSpec(dir, spec);
  writeFileSync(join(dir, "ir.json"), irToJson(ir));
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizer.toJSON()));
  writeFileSync(join(dir, "weights.safetensors"), randomWeights(ir, seed));
  return ir;
}

/** A picture of width x height with smooth seeded colours (PNG or JPEG by the name's ending). */
export async function writePicture(path: string, width: number, height: number, seed: number): Promise<void> {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      data[o] = (x * 255 * (seed + 1)) / width % 256;
      data[o + 1] = (y * 255 * (seed + 2)) / height % 256;
      data[o + 2] = ((x + y) * 37 * (seed + 3)) % 256;
    }
  }
  const img = sharp(data, { raw: { width, height, channels: 3 } });
  await (path.endsWith(".jpg") ? img.jpeg({ quality: 95 }) : img.png()).toFile(path);
}
