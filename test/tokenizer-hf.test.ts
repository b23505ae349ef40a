// `tokenizer hf { file: ... }`: the checker reads the vocabulary size and the specials' ids from
// the file (decoder shapes follow), with diagnostics for a missing or unusable file and an
// unknown special; the IR records it (schema, YAML, a hash of the contents, not the path); at
// run time @huggingface/tokenizers gives GPT-2's ids (test/fixtures/tokenizers/gpt2-ids.json,
// from tools/tokenizers/bpe_reference.py over GPT-2's vocab.json + merges.txt), round-trips text
// exactly, and the run folder's files load back. The GPT-2 tests skip without /work/shared; the
// committed small.tokenizer.json covers the rest.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { check } from "../compiler/check.js";
import { compile } from "../compiler/compile.js";
import type { Ir, IrLayer } from "../compiler/ir/types.js";
import { parseIr } from "../compiler/ir/validate.js";
import { irToJson, irToYaml } from "../compiler/ir/yaml.js";
import { CharTokenizer, TokenizerFormatError, type Tokenizer } from "../runtime/tokenizer.js";
import { HfTokenizer } from "../runtime/tokenizers/hf.js";
import { loadRunTokenizer, saveRunTokenizer, tokenizerFromIr } from "../runtime/tokenizers/load.js";
import { TOKENIZER_FIXTURES } from "../tools/gen-tokenizer-fixtures.js";

const SMALL = join(TOKENIZER_FIXTURES, "small.tokenizer.json");
const GPT2_DIR = "/work/shared/data/hf-gpt2-tiny";
const GPT2 = join(GPT2_DIR, "tokenizer.json");
const SEEMORE = "/work/shared/data/seemore/input.txt";
const noShared = existsSync(GPT2) ? false : "needs /work/shared/data/hf-gpt2-tiny (not in a user's clone)";
const tmp = () => mkdtempSync(join(tmpdir(), "vlmc-tok-hf-"));

function spec(tokenizer: string, decoder = "decoder gpt { dim: 8, heads: 2, layers: 1, context: 16 }"): string {
  return ["vlm 0.1", "", "model tiny {", `  tokenizer hf {\n${tokenizer}\n  }`, "  encoder vit { image: 16 x 16 x 3, patch: 8, dim: 8, heads: 2, blocks: 1 }", "  projector { linear(decoder.dim) }", `  ${decoder}`, "}", ""].join("\n");
}

function compileText(dir: string, text: string) {
  const file = join(dir, "m.vlm");
  writeFileSync(file, text);
  return { file, ...compile(file, { baseDir: dir }) };
}

function decoderLayer(ir: Ir, kind: string): IrLayer {
  const l = ir.modules.decoder!.layers.find((x) => x.kind === kind);
  assert.ok(l, kind);
  return l;
}

const GPT2_SPECIALS = '    specials: tokens(bos: "<|endoftext|>", eos: "<|endoftext|>", pad: "<|endoftext|>")';

test("the size of a tokenizer.json flows into the decoder's shapes (committed fixture)", () => {
  const dir = tmp();
  copyFileSync(SMALL, join(dir, "tok.json"));
  const r = compileText(dir, spec('    file: "tok.json"\n    specials: tokens(pad: "<|pad|>", bos: "<|bos|>", eos: "<|eos|>")'));
  assert.deepEqual(r.diagnostics, []);
  const t = r.ir!.tokenizer!;
  assert.equal(t.kind, "hf");
  const size = 3 + 256 + JSON.parse(readFileSync(SMALL, "utf8")).model.merges.length;
  assert.equal(t.size, size);
  assert.ok(t.kind === "hf");
  assert.equal(t.file, "tok.json");
  assert.deepEqual(t.specials, ["pad", "bos", "eos"]);
  assert.deepEqual(t.special_tokens, { pad: { token: "<|pad|>", id: 0 }, bos: { token: "<|bos|>", id: 1 }, eos: { token: "<|eos|>", id: 2 } });
  assert.deepEqual(decoderLayer(r.ir!, "token_embed").params[0]!.shape, [size, 8]);
  assert.equal(decoderLayer(r.ir!, "lm_head").output.at(-1), size);
});

test("GPT-2's tokenizer.json: 50257 tokens in the decoder, <|endoftext|> is 50256", { skip: noShared }, () => {
  const r = compileText(tmp(), spec(`    file: ${JSON.stringify(GPT2)}\n${GPT2_SPECIALS}`));
  assert.deepEqual(r.diagnostics, []);
  const t = r.ir!.tokenizer!;
  assert.ok(t.kind === "hf");
  assert.equal(t.size, 50257);
  assert.equal(t.special_tokens.eos!.id, 50256);
  assert.deepEqual(decoderLayer(r.ir!, "token_embed").params[0]!.shape, [50257, 8]);
  assert.deepEqual(decoderLayer(r.ir!, "lm_head").output, ["B", "1+T", 50257]);
  // A written vocab that disagrees is E0307, its label saying where the size comes from.
  const wrong = compileText(tmp(), spec(`    file: ${JSON.stringify(GPT2)}`, "decoder gpt { dim: 8, heads: 2, layers: 1, context: 16, vocab: 50000 }"));
  const e = wrong.diagnostics.find((d) => d.code === "E0307");
  assert.ok(e);
  assert.match(e.related[0]!.label, /50257 tokens in `.*tokenizer\.json`/);
});

// Building GPT-2's tokenizer takes a while (50,000 merges): once for the tests that need it.
let gpt2Tokenizer: Tokenizer | null = null;
function gpt2(): Tokenizer {
  const r = compileText(tmp(), spec(`    file: ${JSON.stringify(GPT2)}\n${GPT2_SPECIALS}`));
  return (gpt2Tokenizer ??= tokenizerFromIr(r.ir!.tokenizer!, tmp()));
}

test("GPT-2's ids are Python's: known words and the reference encoder's fixture", { skip: noShared }, () => {
  const tok = gpt2();
  const bare = (s: string) => {
    const e = tok.encode(s, { bos: false, eos: false });
    assert.ok(e.ok);
    return [...e.ids];
  };
  assert.deepEqual(bare("Hello"), [15496]);
  assert.deepEqual(bare(" world"), [995]);
  const fixture = JSON.parse(readFileSync(join(TOKENIZER_FIXTURES, "gpt2-ids.json"), "utf8")) as { text: string; ids: number[] }[];
  assert.ok(fixture.length >= 5);
  for (const { text, ids } of fixture) assert.deepEqual(bare(text), ids, JSON.stringify(text));
  const withSpecials = tok.encode("Hello");
  assert.ok(withSpecials.ok);
  assert.deepEqual([...withSpecials.ids], [50256, 15496, 50256]);
});

test("GPT-2: encode/decode round-trips the seemore corpus and unicode text exactly", { skip: noShared || (existsSync(SEEMORE) ? false : "needs /work/shared/data/seemore") }, () => {
  const tok = gpt2();
  const corpus = readFileSync(SEEMORE, "utf8").slice(0, 20_000); // the library encodes about 150 kB/s
  const unicode = "naïve café — “quotes” ½ 😀👍🏽 日本語 Ελληνικά \u0000\u00ad\ufeff\r\n\t  end  ";
  for (const text of [corpus, unicode, " .  , ?", ""]) {
    const r = tok.encode(text);
    assert.ok(r.ok);
    assert.equal(tok.decode(r.ids), text);
  }
});

test("an unknown special, a missing file and unusable files are diagnostics with codes and spans", () => {
  const dir = tmp();
  copyFileSync(SMALL, join(dir, "tok.json"));
  const doc = JSON.parse(readFileSync(SMALL, "utf8"));
  const write = (name: string, v: unknown) => writeFileSync(join(dir, name), typeof v === "string" ? v : JSON.stringify(v));
  write("broken.json", '{\n  "model": {\n    "type": "BPE",,\n');
  write("wordpiece.json", { ...doc, model: { ...doc.model, type: "WordPiece" } });
  write("metaspace.json", { ...doc, pre_tokenizer: { type: "Metaspace" } });
  const { Ā: _dropped, ...vocab } = doc.model.vocab; // Ā stands for the byte 0x00
  write("nobyte.json", { ...doc, model: { ...doc.model, vocab } });
  write("badmerge.json", { ...doc, model: { ...doc.model, merges: ["a zzz"] } });
  const cases: [string, string, RegExp][] = [
    ['file: "tok.json"\n    specials: tokens(bos: "<|bso|>")', "E0711", /has no token "<\|bso\|>" for `bos`/],
    ['file: "absent.json"', "E0504", /tokenizer file `absent.json` not found/],
    ['file: "broken.json"', "E0710", /not JSON: .* at line 3, column 19/],
    ['file: "wordpiece.json"', "E0710", /its model is "WordPiece"; vlmc reads BPE tokenizers only/],
    ['file: "metaspace.json"', "E0710", /not a byte-level BPE/],
    ['file: "nobyte.json"', "E0710", /lacks the byte 0x00/],
    ['file: "badmerge.json"', "E0710", /merge 1 .* uses "zzz", which is not in the vocabulary/],
  ];
  for (const [settings, code, message] of cases) {
    const file = join(dir, "m.vlm");
    writeFileSync(file, spec(`    ${settings}`));
    const r = check([file]);
    assert.deepEqual(r.diagnostics.map((d) => d.code), [code], settings);
    const d = r.diagnostics[0]!;
    assert.match(d.message, message);
    // The span is the value written: the file name, or the special's token.
    const text = readFileSync(file, "utf8").slice(d.span.start, d.span.end);
    assert.match(text, code === "E0711" ? /^"<\|bso\|>"$/ : /^"\w+\.json"$/);
  }
  const unknownSpecial = compileText(dir, spec('    file: "tok.json"\n    specials: tokens(bos: "<|bso|>")'));
  assert.deepEqual(unknownSpecial.diagnostics[0]!.help, ["did you mean `<|bos|>`?"]);
});

test("the IR records the file's hash, not its place; JSON and YAML round-trip through the schema", () => {
  const a = tmp();
  const b = tmp();
  copyFileSync(SMALL, join(a, "tok.json"));
  copyFileSync(SMALL, join(b, "other-name.json"));
  const settings = '    specials: tokens(pad: "<|pad|>", eos: "<|eos|>")';
  const ra = compileText(a, spec(`    file: "tok.json"\n${settings}`));
  const rb = compileText(b, spec(`    file: "other-name.json"\n${settings}`));
  assert.equal(ra.ir!.hash, rb.ir!.hash);
  const t = ra.ir!.tokenizer!;
  assert.ok(t.kind === "hf");
  assert.match(t.sha256, /^sha256:[0-9a-f]{64}$/);
  // Another file (one merge fewer): another hash.
  const doc = JSON.parse(readFileSync(SMALL, "utf8"));
  doc.model.merges.pop();
  writeFileSync(join(b, "other-name.json"), JSON.stringify(doc));
  assert.notEqual(compileText(b, spec(`    file: "other-name.json"\n${settings}`)).ir!.hash, ra.ir!.hash);
  for (const [name, text] of [["ir.json", irToJson(ra.ir!)], ["ir.yaml", irToYaml(ra.ir!)]] as const) {
    const back = parseIr(join(a, name), text);
    assert.deepEqual(back.diagnostics, [], name);
    assert.deepEqual(back.ir!.tokenizer, ra.ir!.tokenizer);
  }
  // The schema rejects what no compiler writes.
  const bad = (f: (ir: Record<string, unknown>) => void) => {
    const ir = JSON.parse(irToJson(ra.ir!));
    f(ir.tokenizer);
    return parseIr(join(a, "ir.json"), JSON.stringify(ir)).diagnostics.map((d) => d.message);
  };
  assert.match(bad((t) => (t.kind = "sentencepiece")).join("\n"), /kind/);
  assert.match(bad((t) => delete t.sha256).join("\n"), /sha256/);
  assert.match(bad((t) => (t.alphabet = "abc")).join("\n"), /alphabet/);
  assert.match(bad((t) => ((t.special_tokens as Record<string, { id: number }>).eos!.id = 99999)).join("\n"), /id 99999 is not below the tokenizer's size/);
});

test("HfTokenizer: bos/eos as asked, structured errors, decode drops or shows specials", () => {
  const tok = new HfTokenizer(readFileSync(SMALL, "utf8"), { kind: "hf", specials: { pad: "<|pad|>", eos: "<|eos|>" } });
  assert.deepEqual([tok.pad, tok.bos, tok.eos, tok.unk], [0, null, 2, null]);
  const noBos = tok.encode("red", { bos: true });
  assert.ok(!noBos.ok && noBos.error.code === "missing-special" && noBos.error.special === "bos");
  const r = tok.encode("a red star");
  assert.ok(r.ok);
  assert.equal(r.ids[r.ids.length - 1], 2);
  const lone = tok.encode("ok 😀 \ud800 x");
  assert.ok(!lone.ok && lone.error.code === "unknown-char");
  assert.equal(lone.error.index, 5);
  assert.equal(lone.error.offset, 6);
  assert.match(lone.error.message, /lone surrogate U\+D800 at index 5/);
  const ids = [...r.ids, 0, 0];
  assert.equal(tok.decode(ids), "a red star");
  assert.equal(tok.decode(ids, { specials: "show" }), "a red star<|eos|><|pad|><|pad|>");
  assert.equal(tok.decode([...r.ids.slice(0, 1), 99999, -1, 1.5]), "a");
  assert.equal(tok.decode([...r.ids.slice(0, 1), 99999], { specials: "show" }), "a<?99999>");
  assert.equal(tok.token(0), "<|pad|>");
  assert.equal(tok.token(tok.size), null);
  // A vocabulary larger than the file (unused ids) is allowed; a smaller one is not.
  assert.equal(new HfTokenizer(readFileSync(SMALL, "utf8"), { kind: "bpe", specials: {}, size: 1000 }).size, 1000);
  assert.throws(() => new HfTokenizer(readFileSync(SMALL, "utf8"), { kind: "bpe", specials: {}, size: 10 }), TokenizerFormatError);
  assert.throws(() => new HfTokenizer(readFileSync(SMALL, "utf8"), { kind: "hf", specials: { bos: "<|nope|>" } }), /not in tokenizer\.json/);
  assert.throws(() => new HfTokenizer("{", { kind: "hf", specials: {} }), /does not parse/);
});

test("a run folder holds tokenizer.json (the file, byte for byte) and tokenizer_config.json; both load back", () => {
  const dir = tmp();
  copyFileSync(SMALL, join(dir, "tok.json"));
  const { ir } = compileText(dir, spec('    file: "tok.json"\n    specials: tokens(pad: "<|pad|>", bos: "<|bos|>", eos: "<|eos|>")'));
  const tok = tokenizerFromIr(ir!.tokenizer!, dir);
  const runDir = mkdtempSync(join(dir, "run-"));
  writeFileSync(join(runDir, "tokenizer_config.json"), "stale");
  saveRunTokenizer(runDir, tok);
  assert.equal(readFileSync(join(runDir, "tokenizer.json"), "utf8"), readFileSync(SMALL, "utf8"));
  assert.deepEqual(JSON.parse(readFileSync(join(runDir, "tokenizer_config.json"), "utf8")), {
    tokenizer_class: "PreTrainedTokenizerFast",
    clean_up_tokenization_spaces: false,
    pad_token: "<|pad|>",
    bos_token: "<|bos|>",
    eos_token: "<|eos|>",
  });
  const back = loadRunTokenizer(runDir, ir!.tokenizer!);
  const text = "a big purple star at the top";
  assert.deepEqual(back.encode(text), tok.encode(text));
  assert.deepEqual([back.pad, back.bos, back.eos, back.size], [tok.pad, tok.bos, tok.eos, tok.size]);
  // Another file under the same name is refused (the IR holds its hash).
  const doc = JSON.parse(readFileSync(SMALL, "utf8"));
  doc.model.merges.pop();
  writeFileSync(join(runDir, "tokenizer.json"), JSON.stringify(doc));
  assert.throws(() => loadRunTokenizer(runDir, ir!.tokenizer!), /sha256 differs/);
  // A chars tokenizer's file is as it always was, and the stale HF config goes.
  const chars = new CharTokenizer({ alphabet: "ab", specials: ["pad", "bos", "eos"] });
  saveRunTokenizer(runDir, chars);
  assert.equal(readFileSync(join(runDir, "tokenizer.json"), "utf8"), `${JSON.stringify(chars.toJSON(), null, 2)}\n`);
  assert.equal(existsSync(join(runDir, "tokenizer_config.json")), false);
  assert.deepEqual(loadRunTokenizer(runDir, { kind: "chars", alphabet: "ab", specials: ["pad", "bos", "eos"], size: 5 }).encode("ba"), chars.encode("ba"));
});
