// Writes test/fixtures/tokenizers/small.tokenizer.json: the byte-level BPE that vlmc's trainer
// (runtime/tokenizers/bpe-train.ts) makes on test/fixtures/tokenizers/corpus.txt, with the
// settings of reference.json (which tools/tokenizers/bpe_reference.py writes from the same
// corpus). It is the committed Hugging Face tokenizer.json that tests the `hf` path without
// /work/shared; test/tokenizer-bpe.test.ts checks that the trainer still writes it byte for byte.
//
//   npx tsc -p . && node dist/tools/gen-tokenizer-fixtures.js
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { bpeTokenizerJson, trainBpe } from "../runtime/tokenizers/bpe-train.js";
import { repoRoot } from "./repo.js";

export const TOKENIZER_FIXTURES = join(repoRoot, "test", "fixtures", "tokenizers");

export interface BpeReference {
  vocab: number;
  specials: string[];
  min_frequency: number;
  merges: [string, string][];
  encodings: { text: string; ids: number[] }[];
}

export const readReference = (): BpeReference => JSON.parse(readFileSync(join(TOKENIZER_FIXTURES, "reference.json"), "utf8")) as BpeReference;

/** corpus.txt as the trainer takes it: a text per line. */
export const corpusTexts = (): string[] => readFileSync(join(TOKENIZER_FIXTURES, "corpus.txt"), "utf8").split("\n");

/** The fixture's tokenizer.json, as the trainer writes it now. */
export function smallTokenizerJson(): string {
  const ref = readReference();
  return bpeTokenizerJson(trainBpe(corpusTexts(), { vocab: ref.vocab, specials: ref.specials, minFrequency: ref.min_frequency }));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const out = join(TOKENIZER_FIXTURES, "small.tokenizer.json");
  writeFileSync(out, smallTokenizerJson());
  console.log(`wrote ${out}`);
}
