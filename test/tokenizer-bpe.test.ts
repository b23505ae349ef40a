// The byte-level BPE trainer (runtime/tokenizers/bpe-train.ts): a hand-worked example (counts,
// ties, a stop on `minFrequency`), the merges of an independent naive Python trainer on a
// corpus (tools/tokenizers/bpe_reference.py -> test/fixtures/tokenizers/reference.json), and
// the trained tokenizer.json read back by @huggingface/tokenizers: the ids Python's GPT-2
// algorithm gives with those merges, and exact round trips.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BYTE_ALPHABET, byteLevel } from "../runtime/tokenizers/bytelevel.js";
import { bpeTokenizerJson, trainBpe } from "../runtime/tokenizers/bpe-train.js";
import { HfTokenizer } from "../runtime/tokenizers/hf.js";
import { corpusTexts, readReference, smallTokenizerJson, TOKENIZER_FIXTURES } from "../tools/gen-tokenizer-fixtures.js";

const SPECIALS = { pad: "<|pad|>", bos: "<|bos|>", eos: "<|eos|>" };
const repeat = (word: string, n: number) => Array<string>(n).fill(word);
// Sennrich et al.'s example: low x5, lower x2, newest x6, widest x3 (each text one word).
const SENNRICH = [...repeat("low", 5), ...repeat("lower", 2), ...repeat("newest", 6), ...repeat("widest", 3)];

test("the byte alphabet is GPT-2's: printable bytes stand for themselves, space is Ġ, ids in code-point order", () => {
  assert.equal(BYTE_ALPHABET.length, 256);
  assert.equal(new Set(BYTE_ALPHABET).size, 256);
  assert.equal(BYTE_ALPHABET[0], "!");
  assert.equal(byteLevel(" hello\n"), "ĠhelloĊ");
  assert.equal(byteLevel("é"), "Ã©"); // UTF-8 C3 A9
});

test("hand-worked merges: the most frequent pair first, ties to the smaller ids", () => {
  // Pairs at the start: es 9, st 9, we 8, lo 7, ow 7, ne 6, ew 6, ... `e s` beats `s t` (e < s).
  // After es, est (9); then lo/ow tie at 7: lo (l < o), then low (7); at 6: ew beats n-e and w-est
  // (e is the smallest first id); then n + ew, then new + est: the merged ids are larger than bytes.
  const t = trainBpe(SENNRICH, { vocab: 3 + 256 + 7, specials: Object.values(SPECIALS) });
  assert.deepEqual(t.merges, [
    ["e", "s"],
    ["es", "t"],
    ["l", "o"],
    ["lo", "w"],
    ["e", "w"],
    ["n", "ew"],
    ["new", "est"],
  ]);
  assert.deepEqual(t.tokens.slice(259), ["es", "est", "lo", "low", "ew", "new", "newest"]);
  assert.deepEqual(t.tokens.slice(0, 3), ["<|pad|>", "<|bos|>", "<|eos|>"]);
  assert.equal(t.exhausted, false);
  assert.deepEqual(t.words, { distinct: 4, total: 16 });
});

test("training stops when no pair is frequent enough, and the order of the texts does not matter", () => {
  const t = trainBpe(SENNRICH, { vocab: 1000, specials: [], minFrequency: 4 });
  assert.deepEqual(t.merges.map((m) => m.join("")), ["es", "est", "lo", "low", "ew", "new", "newest"]); // next best: 3 (w-i, ...)
  assert.equal(t.exhausted, true);
  assert.equal(t.tokens.length, 256 + 7);
  const shuffled = [...SENNRICH].reverse();
  assert.deepEqual(trainBpe(shuffled, { vocab: 1000, specials: [], minFrequency: 4 }).merges, t.merges);
  assert.throws(() => trainBpe(SENNRICH, { vocab: 258, specials: ["<|a|>", "<|b|>", "<|c|>"] }), /at least 259/);
});

test("ids: the specials, the 256 bytes, then one new token per merge, each the concatenation of its pair", () => {
  const t = trainBpe(corpusTexts(), { vocab: 3 + 256 + 60, specials: Object.values(SPECIALS) });
  assert.equal(t.tokens.length, 3 + 256 + 60);
  assert.equal(new Set(t.tokens).size, t.tokens.length);
  assert.deepEqual(t.tokens.slice(3, 259), BYTE_ALPHABET);
  t.merges.forEach(([a, b], i) => assert.equal(t.tokens[259 + i], a + b));
});

test("on the fixture corpus, the merges are those of the naive Python reference", () => {
  const ref = readReference();
  const t = trainBpe(corpusTexts(), { vocab: ref.vocab, specials: ref.specials, minFrequency: ref.min_frequency });
  assert.ok(ref.merges.length > 100, "the reference has merges");
  assert.deepEqual(t.merges, ref.merges);
});

test("the committed small.tokenizer.json is what the trainer writes (deterministic, byte for byte)", () => {
  const committed = readFileSync(join(TOKENIZER_FIXTURES, "small.tokenizer.json"), "utf8");
  assert.equal(smallTokenizerJson(), committed, "regenerate with node dist/tools/gen-tokenizer-fixtures.js");
  const doc = JSON.parse(committed);
  assert.equal(doc.model.type, "BPE");
  assert.equal(doc.pre_tokenizer.type, "ByteLevel");
  assert.deepEqual(
    doc.added_tokens.map((a: { id: number; content: string }) => [a.id, a.content]),
    Object.values(SPECIALS).map((s, i) => [i, s]),
  );
});

test("@huggingface/tokenizers loads the trained file and gives the reference encoder's ids", () => {
  const ref = readReference();
  const tok = new HfTokenizer(readFileSync(join(TOKENIZER_FIXTURES, "small.tokenizer.json"), "utf8"), { kind: "bpe", specials: SPECIALS });
  assert.equal(tok.size, 3 + 256 + ref.merges.length);
  assert.deepEqual([tok.pad, tok.bos, tok.eos, tok.unk], [0, 1, 2, null]);
  for (const { text, ids } of ref.encodings) {
    const r = tok.encode(text, { bos: false, eos: false });
    assert.ok(r.ok);
    assert.deepEqual([...r.ids], ids, JSON.stringify(text));
  }
  // The special's text in user text is that special (as in Hugging Face); merges shorten text.
  const special = tok.encode("<|eos|> x", { bos: false, eos: false });
  assert.ok(special.ok && special.ids[0] === 2);
  const caption = tok.encode("a small red circle on the left");
  assert.ok(caption.ok);
  assert.ok(caption.ids.length < "a small red circle on the left".length / 2, `${caption.ids.length} ids`);
});

test("encode/decode round-trips exactly on the corpus and on text the corpus never had", () => {
  const json = bpeTokenizerJson(trainBpe(corpusTexts(), { vocab: 400, specials: Object.values(SPECIALS), minFrequency: 1 }));
  const tok = new HfTokenizer(json, { kind: "bpe", specials: SPECIALS });
  const unseen = ["Ωmega ∑ ∫ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u0000 \u00ad \ufeff \r\n", "👩‍👩‍👧‍👦 family, ZWJ", "  \t  ", "", "tabs\t\tand  double  spaces  "];
  for (const text of [...corpusTexts(), ...unseen]) {
    const r = tok.encode(text);
    assert.ok(r.ok);
    assert.equal(r.ids[0], 1);
    assert.equal(r.ids[r.ids.length - 1], 2);
    assert.equal(tok.decode(r.ids), text);
  }
});
