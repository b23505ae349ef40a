// The run-time `chars` tokenizer: ids in the compiler's order (specials first), round trips over
// the seed alphabet, unknown characters as structured errors, code points, saving and loading.
import { test } from "node:test";
import assert from "node:assert/strict";
import { compile } from "../compiler/compile.js";
import { alphabetOf, CharTokenizer, TokenizerFormatError } from "../runtime/tokenizer.js";
import { repoPath } from "./helpers/paths.js";

const SEED_ALPHABET = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function seedTokenizer(): CharTokenizer {
  const { ir } = compile(repoPath("specs", "seemore.vlm"));
  assert.ok(ir?.tokenizer);
  return CharTokenizer.fromIr(ir.tokenizer);
}

test("the seed spec's tokenizer: pad is id 0, then the alphabet in order, no bos/eos", () => {
  const tok = seedTokenizer();
  assert.equal(tok.alphabet, SEED_ALPHABET);
  assert.equal(tok.size, SEED_ALPHABET.length + 1);
  assert.equal(tok.pad, 0);
  assert.equal(tok.bos, null);
  assert.equal(tok.eos, null);
  const r = tok.encode("\nA z");
  assert.ok(r.ok);
  assert.deepEqual([...r.ids], [1, 1 + SEED_ALPHABET.indexOf("A"), 2, 1 + SEED_ALPHABET.indexOf("z")]);
  assert.equal(r.ids[1], 14);
});

test("encode/decode round-trips every character of the seed alphabet", () => {
  const tok = seedTokenizer();
  const text = SEED_ALPHABET + [...SEED_ALPHABET].reverse().join("") + "To be, or not to be: that is the question.\n";
  const r = tok.encode(text);
  assert.ok(r.ok);
  assert.equal(r.ids.length, Array.from(text).length);
  assert.ok(r.ids.every((id) => id >= 1 && id < tok.size));
  assert.equal(tok.decode(r.ids), text);
});

test("specials come first in the order listed", () => {
  const tok = new CharTokenizer({ alphabet: "ab", specials: ["eos", "pad", "unk", "bos"] });
  assert.deepEqual([tok.eos, tok.pad, tok.unk, tok.bos], [0, 1, 2, 3]);
  assert.equal(tok.size, 6);
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => tok.token(i)), ["<eos>", "<pad>", "<unk>", "<bos>", "a", "b"]);
  const r = tok.encode("ba");
  assert.ok(r.ok);
  assert.deepEqual([...r.ids], [3, 5, 4, 0]); // bos and eos by default when present
  const bare = tok.encode("ba", { bos: false, eos: false });
  assert.ok(bare.ok);
  assert.deepEqual([...bare.ids], [5, 4]);
  assert.equal(tok.decode([3, 5, 4, 0, 1, 1]), "ba");
  assert.equal(tok.decode([3, 5, 4, 0, 1, 1], { specials: "show" }), "<bos>ba<eos><pad><pad>");
  assert.equal(tok.decode([4, 99, -1], { specials: "show" }), "a<?99><?-1>");
  assert.equal(tok.decode([4, 99, -1]), "a");
});

test("an unknown character is a structured error with its code-point index", () => {
  const tok = seedTokenizer();
  const r = tok.encode("Hi 😀 there # x");
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.error.code === "unknown-char");
  assert.equal(r.error.char, "😀");
  assert.equal(r.error.index, 3);
  assert.equal(r.error.offset, 3);
  assert.match(r.error.message, /U\+1F600.*index 3/);
  // After an astral character, code-point index and UTF-16 offset differ.
  const r2 = tok.encode("a😀");
  assert.ok(!r2.ok && r2.error.code === "unknown-char" && r2.error.index === 1);
  const r3 = new CharTokenizer({ alphabet: "a😀b", specials: [] }).encode("😀b#");
  assert.ok(!r3.ok && r3.error.code === "unknown-char");
  assert.equal(r3.error.char, "#");
  assert.equal(r3.error.index, 2);
  assert.equal(r3.error.offset, 3);
});

test("code points, not UTF-16 units: an astral alphabet character is one id", () => {
  const tok = new CharTokenizer({ alphabet: "a😀é", specials: ["pad"] });
  assert.equal(tok.size, 4);
  const r = tok.encode("😀a😀é");
  assert.ok(r.ok);
  assert.deepEqual([...r.ids], [2, 1, 2, 3]);
  assert.equal(tok.decode(r.ids), "😀a😀é");
});

test("with unk, unknown characters map to it; bos/eos asked for but absent is an error", () => {
  const tok = new CharTokenizer({ alphabet: "ab", specials: ["pad", "unk"] });
  const r = tok.encode("a#b");
  assert.ok(r.ok);
  assert.deepEqual([...r.ids], [2, 1, 3]);
  const e = tok.encode("a", { bos: true });
  assert.ok(!e.ok && e.error.code === "missing-special" && e.error.special === "bos");
  assert.ok(!tok.encode("a", { eos: true }).ok);
});

test("toJSON is byte-stable and fromJSON restores the same tokenizer", () => {
  const tok = seedTokenizer();
  const json = JSON.stringify(tok);
  assert.equal(json, JSON.stringify(seedTokenizer()));
  assert.equal(json, JSON.stringify({ kind: "chars", alphabet: SEED_ALPHABET, specials: ["pad"], size: SEED_ALPHABET.length + 1 }));
  const back = CharTokenizer.fromJSON(json);
  assert.equal(JSON.stringify(back), json);
  assert.deepEqual(CharTokenizer.fromJSON(JSON.parse(json)).toJSON(), tok.toJSON());
  for (const bad of ["{", "[]", '{"kind":"bpe"}', '{"kind":"chars","alphabet":"ab","specials":["pad"],"size":4}', '{"kind":"chars","alphabet":"aa","specials":[],"size":2}', '{"kind":"chars","alphabet":"a","specials":["mask"],"size":2}']) {
    assert.throws(() => CharTokenizer.fromJSON(bad), TokenizerFormatError, bad);
  }
});

test("alphabetOf: distinct characters sorted by code point", () => {
  assert.equal(alphabetOf(["ba\n", "c😀a", "é"]), "\nabcé😀");
});

test("the run folder's tokenizer.json of a chars tokenizer keeps its format; fromIr takes only chars", () => {
  const tok = seedTokenizer();
  // What runs have always held (runtime/train/run.ts wrote exactly this before tokenizers/load.ts).
  const expected = `{\n  "kind": "chars",\n  "alphabet": ${JSON.stringify(SEED_ALPHABET)},\n  "specials": [\n    "pad"\n  ],\n  "size": 66\n}\n`;
  assert.deepEqual(tok.files(), { "tokenizer.json": expected });
  assert.equal(tok.kind, "chars");
  assert.throws(() => CharTokenizer.fromIr({ kind: "bpe", specials: ["pad"], min_frequency: 2, trained_on: "train.data", size: 300 }), /not a `chars` one/);
});
