// A model whose weights write one known caption for every image, for tests of what reads a run
// (vlmc eval, the report): its predictions are known without training. A 16 x 16 ViT with 8-pixel
// patches (4 visual tokens) and a decoder of width 96 with learned positions: the token and image
// inputs are zeroed out, position i is one-hot i, and the head maps text position t to the
// caption's t-th id (eos last).
import assert from "node:assert/strict";
import type { Ir } from "../../compiler/ir/types.js";
import { initValues, irParams } from "../../runtime/model.js";
import { encodeSafetensors, METADATA_HASH } from "../../runtime/safetensors.js";
import { CharTokenizer } from "../../runtime/tokenizer.js";

/** The spec the weights fit, training on `shapes(images: 64, size: 16, seed: 3)` (58 training images, 6 validation). */
export function fixedSpec(steps: number): string {
  return `vlm 0.1
model fixed {
  tokenizer chars { alphabet: " abcdefghilmnoqrstuwy", specials: [pad, bos, eos] }
  encoder vit { image: 16 x 16 x 3, patch: 8, dim: 8, heads: 2, blocks: 0, cls: false, output: patches }
  projector { linear(decoder.dim) }
  decoder { dim: 96, context: 96 }
}
train {
  data: shapes(images: 64, size: 16, seed: 3)
  stage all { train: [projector, decoder], steps: ${steps} }
}
`;
}

export const fixedTokenizer = new CharTokenizer({ alphabet: " abcdefghilmnoqrstuwy", specials: ["pad", "bos", "eos"] });

/** Weights that make the model write `caption` for every image (`hash`: the spec they claim to be for). */
export function fixedWeights(ir: Ir, caption: string, hash = ir.hash): Uint8Array {
  const tok = fixedTokenizer;
  const ids = tok.encode(caption, { bos: false, eos: true });
  assert.ok(ids.ok);
  const nv = 4; // visual tokens: (16 / 8)^2
  const tensors = irParams(ir).map((p) => {
    let data = initValues(p, 1);
    if (p.name === "projector.0.weight" || p.name === "decoder.embed.weight") data = new Float32Array(data.length);
    if (p.name === "decoder.pos_embed.weight") {
      data = new Float32Array(96 * 96);
      for (let i = 0; i < 96; i++) data[i * 96 + i] = 1; // position i -> one-hot i
    }
    if (p.name === "decoder.lm_head.weight") {
      data = new Float32Array(96 * tok.size);
      // Text position t (sequence position nv + t) predicts the caption's id t (eos at the end).
      ids.ids.forEach((id, t) => (data[(nv + t) * tok.size + id] = 1));
    }
    return { name: p.name, dtype: "F32" as const, shape: p.shape, data };
  });
  return encodeSafetensors(tensors, { [METADATA_HASH]: hash });
}
