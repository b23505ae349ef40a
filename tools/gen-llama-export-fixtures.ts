// Writes the fixtures of the Llama export's independent check (test/export-llama.test.ts): for
// each case, a tiny `llama` run with seeded random weights (every parameter random, RMSNorm
// gains included, so a tensor in the wrong place or layout shows) is exported by
// `exportHfLlama` into test/fixtures/export/<case>/ (config.json, model.safetensors, vocab.json),
// with case.json naming the token rows to run. tools/torch/hf_llama.py then reads that folder as
// Hugging Face's LlamaForCausalLM would and writes golden.safetensors (the logits). Run by hand
// after changing either, and commit what they write (a few tens of KB):
//
//   npx tsc -p . && node dist/tools/gen-llama-export-fixtures.js && /usr/bin/python3 tools/torch/hf_llama.py
//
// Byte-deterministic: re-running changes nothing.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile } from "../compiler/compile.js";
import { irToJson } from "../compiler/ir/yaml.js";
import { exportHfLlama } from "../runtime/export/llama.js";
import { irParams } from "../runtime/model.js";
import { uniform01 } from "../runtime/random.js";
import { encodeSafetensors, METADATA_HASH } from "../runtime/safetensors.js";
import { CharTokenizer } from "../runtime/tokenizer.js";
import { repoPath } from "./repo.js";

const LLAMA_EXPORT_ALPHABET = " abcdefghilmnoqrstuwy";
const SPECIALS = ["pad", "bos", "eos"];

/** The cases: the decoder section, the seed of its weights, the context written as max_position_embeddings. */
const LLAMA_EXPORT_CASES: Record<string, { decoder: string; seed: number; context: number }> = {
  // Grouped key/value heads, an untied head, a non-default rotary base and epsilon.
  "llama-gqa": { decoder: "llama { dim: 16, heads: 4, kv_heads: 2, layers: 2, hidden: 40, context: 24, rope_base: 500, norm_eps: 1e-5 }", seed: 41, context: 24 },
  // As many key/value heads as query heads, the head tied to the embedding.
  "llama-tied": { decoder: "llama { dim: 12, heads: 2, layers: 1, hidden: 20, context: 16, tie_embeddings: true }", seed: 43, context: 16 },
};

/** The token rows every case runs (bos first), as case.json records them. */
function llamaExportTokens(tok: CharTokenizer): number[][] {
  return ["a red circle on the left", "two blue squares"].map((s) => {
    const e = tok.encode(s, { bos: true, eos: false });
    if (!e.ok) throw new Error(`cannot encode ${s}`);
    return Array.from(e.ids.slice(0, 12));
  });
}

function llamaExportSpec(decoder: string): string {
  return `vlm 0.1
model tiny_llama {
  tokenizer chars { alphabet: "${LLAMA_EXPORT_ALPHABET}", specials: [${SPECIALS.join(", ")}] }
  decoder ${decoder}
}
train {
  data: shapes(images: 64, size: 16, seed: 3)
  stage all { train: [decoder], steps: 1 }
}
`;
}

function main(): void {
  const tmp = mkdtempSync(join(tmpdir(), "vlmc-llama-fixture-"));
  try {
    const tok = new CharTokenizer({ alphabet: LLAMA_EXPORT_ALPHABET, specials: SPECIALS as never });
    for (const [name, c] of Object.entries(LLAMA_EXPORT_CASES)) {
      const specFile = join(tmp, `${name}.vlm`);
      writeFileSync(specFile, llamaExportSpec(c.decoder));
      const { ir, diagnostics } = compile(specFile, { baseDir: tmp });
      if (!ir) throw new Error(`${name}: ${diagnostics.map((d) => d.message).join("; ")}`);
      const run = join(tmp, name);
      mkdirSync(run);
      writeFileSync(join(run, "ir.json"), irToJson(ir));
      writeFileSync(join(run, "tokenizer.json"), JSON.stringify(tok.toJSON()));
      const rand = uniform01(c.seed);
      const tensors = irParams(ir).map((p) => ({ name: p.name, dtype: "F32" as const, shape: p.shape, data: Float32Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => (rand() - 0.5) * 0.6) }));
      const weights = join(run, "weights.safetensors");
      writeFileSync(weights, encodeSafetensors(tensors, { [METADATA_HASH]: ir.hash }));
      const out = repoPath("test", "fixtures", "export", name);
      exportHfLlama({ ir, tokenizer: tok, weights, weightsLabel: weights }, out, { context: c.context });
      const tokens = llamaExportTokens(tok);
      writeFileSync(join(out, "case.json"), `${JSON.stringify({ spec: c.decoder, seed: c.seed, tokens }, null, 2)}\n`);
      process.stdout.write(`wrote ${out}\n`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main();
