// The `conversations(file)` source end to end: a spec with a chat template compiled, its JSON Lines
// read, every bad row reported as `file:line: why` and left out (or fatal with `bad_rows: "fail"`),
// the good ones tokenized with an answer-only loss mask, typed rows carrying their question for
// scoring, and images decoded. Images are made here with sharp.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { compile } from "../compiler/compile.js";
import { renderText } from "../compiler/diagnostics/render-text.js";
import type { Ir } from "../compiler/ir/types.js";
import { readConversations } from "../runtime/data/conversations.js";
import { CharTokenizer } from "../runtime/tokenizer.js";
import { DataError, loadStageData } from "../runtime/train/data.js";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz ?:\n";
const CHAT = { user: "user: ", assistant: "assistant: ", separator: "\n", image: "<image>" };
const human = (value: string) => ({ from: "human", value });
const gpt = (value: string) => ({ from: "gpt", value });

/** The rows of data.jsonl, one a line (strings are written as they are). */
const ROWS: unknown[] = [
  { image: "red.png", conversations: [human("<image>\nwhat colour is it?"), gpt("red")], type: "colour" }, // 1
  { image: "blue.png", conversations: [human("<image>\nwhat colour is it?"), gpt("blue"), human("is it round?"), gpt("no")], type: "shape" }, // 2
  "{oops", // 3
  [1, 2], // 4
  { image: "missing.png", conversations: [human("q"), gpt("a")] }, // 5
  { image: "red.png", conversations: [human("what is it?\n<image>"), gpt("red")] }, // 6
  { image: "red.png", conversations: [human("<image>\nwhat is it?")] }, // 7
  { image: "red.png", conversations: [human("what is it?"), gpt(" ")] }, // 8
  { image: "red.png", conversations: [human("What is it?"), gpt("red")] }, // 9
  { image: "red.png", conversations: [human("x".repeat(90)), gpt("red")] }, // 10
  { image: "corrupt.png", conversations: [human("what is it?"), gpt("red")] }, // 11
  "", // 12: blank, not a row
  { conversations: [human("what is it?"), gpt("red")] }, // 13
  { image: "green.png", conversations: [human("what colour is it?"), gpt("green")] }, // 14: no type, no placeholder
  { image: "red.png", conversations: [{ from: "human" }, gpt("red")] }, // 15
];

function setup(badRows: "skip" | "fail" = "skip"): { dir: string; ir: Ir } {
  const dir = mkdtempSync(join(tmpdir(), "vlmc-conv-"));
  writeFileSync(join(dir, "data.jsonl"), ROWS.map((r) => (typeof r === "string" ? r : JSON.stringify(r))).join("\n") + "\n");
  writeFileSync(join(dir, "corrupt.png"), "not a png at all");
  const spec = `vlm 0.1
model conv {
  tokenizer chars { alphabet: ${JSON.stringify(ALPHABET)}, specials: [pad, bos, eos] }
  chat { user: "user: ", assistant: "assistant: " }
  encoder vit { image: 8 x 8 x 3, patch: 4, dim: 16, heads: 2, blocks: 0, cls: false, output: patches }
  projector { linear(decoder.dim) }
  decoder gpt { dim: 16, heads: 2, layers: 1, context: 96 }
}
train {
  data: conversations("data.jsonl", bad_rows: ${JSON.stringify(badRows)})
  batch: 2
  split: 0.3
  stage tune { train: [encoder, projector, decoder], steps: 2 }
}
`;
  writeFileSync(join(dir, "conv.vlm"), spec);
  const r = compile(join(dir, "conv.vlm"), { baseDir: dir });
  assert.ok(r.ir, renderText(r.diagnostics, r.sources, { color: false }));
  return { dir, ir: r.ir };
}

async function images(dir: string): Promise<void> {
  const colours: Record<string, [number, number, number]> = { red: [220, 40, 40], blue: [40, 80, 220], green: [40, 170, 60] };
  for (const [name, [r, g, b]] of Object.entries(colours)) {
    await sharp({ create: { width: 12, height: 12, channels: 3, background: { r, g, b } } }).png().toFile(join(dir, `${name}.png`));
  }
}

test("reader: good rows as exchanges, every bad row with its line and why", () => {
  const { dir } = setup();
  try {
    writeFileSync(join(dir, "red.png"), "exists; the reader does not decode");
    writeFileSync(join(dir, "blue.png"), "");
    writeFileSync(join(dir, "green.png"), "");
    const file = join(dir, "data.jsonl");
    const r = readConversations(file, CHAT);
    assert.deepEqual(
      r.rows.map((x) => [x.line, x.exchanges, x.type]),
      [
        [1, [{ question: "what colour is it?", answer: "red" }], "colour"],
        [2, [{ question: "what colour is it?", answer: "blue" }, { question: "is it round?", answer: "no" }], "shape"],
        [9, [{ question: "What is it?", answer: "red" }], null],
        [10, [{ question: "x".repeat(90), answer: "red" }], null],
        [11, [{ question: "what is it?", answer: "red" }], null],
        [14, [{ question: "what colour is it?", answer: "green" }], null],
      ],
    );
    assert.deepEqual(
      r.problems.map((p) => `${p.line}: ${p.message}`),
      [
        "3: not valid JSON: Expected property name or '}'",
        '4: a list, not an object {"image": ..., "conversations": [...]}',
        `5: image "missing.png" not found (looked for ${join(dir, "missing.png")})`,
        '6: "<image>" must start the first question (found it in turn 1 at character 13): the image goes in front of the whole conversation',
        '7: no "gpt" turn: there is no answer to learn',
        "8: turn 2 (an answer) is empty",
        '13: no "image" field (each row is a conversation about one image)',
        '15: turn 1: "value" is missing, expected a string',
      ],
    );
    assert.ok(r.problems.every((p) => p.file === file));
    const gone = readConversations(join(dir, "nope.jsonl"), CHAT);
    assert.deepEqual(gone.problems.map((p) => [p.line, p.unreadable, p.message]), [[0, true, `${join(dir, "nope.jsonl")}: no such file`]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("loader: bad rows left out and listed in file order, answer-only masks, typed rows scored, images decoded", async () => {
  const { dir, ir } = setup();
  try {
    await images(dir);
    const tok = CharTokenizer.fromIr(ir.tokenizer!);
    const data = await loadStageData(ir.train!.data, ir, tok, { baseDir: dir, split: ir.train!.split, seed: ir.train!.seed });
    const file = join(dir, "data.jsonl");
    // Line 11's image does not decode (sharp's words, checked apart).
    assert.match(data.problems.find((p) => p.startsWith(`${file}:11: `)) ?? "", /corrupt\.png/);
    assert.deepEqual(
      data.problems.filter((p) => !p.startsWith(`${file}:11: `)).map((p) => p.replace(`${file}:`, "")),
      [
        "3: not valid JSON: Expected property name or '}'",
        '4: a list, not an object {"image": ..., "conversations": [...]}',
        `5: image "missing.png" not found (looked for ${join(dir, "missing.png")})`,
        '6: "<image>" must start the first question (found it in turn 1 at character 13): the image goes in front of the whole conversation',
        '7: no "gpt" turn: there is no answer to learn',
        "8: turn 2 (an answer) is empty",
        '9: question 1: character "W" (U+0057) at index 0 is not in the tokenizer\'s alphabet; the spec\'s tokenizer must cover the data (add the character to `alphabet`, or add `unk` to `specials`)',
        "10: the conversation takes 113 text positions, more than the 92 the decoder's context leaves after the visual tokens",
        '13: no "image" field (each row is a conversation about one image)',
        '15: turn 1: "value" is missing, expected a string',
      ],
    );
    const all = [...data.train, ...data.validation];
    assert.deepEqual(all.map((e) => e.image!.split("/").pop()).sort(), ["blue.png", "green.png", "red.png"]);
    for (const e of all) {
      assert.ok(e.lossMask && e.lossMask.length === e.ids.length);
      // What the mask keeps is the answers, each with its separator, and eos.
      const kept = tok.decode(e.ids.filter((_, j) => e.lossMask![j] === 1), { specials: "show" });
      const want = { "red.png": "red\n<eos>", "blue.png": "blue\nno\n<eos>", "green.png": "green\n<eos>" }[e.image!.split("/").pop()!];
      assert.equal(kept, want);
    }
    const blue = all.find((e) => e.image!.endsWith("blue.png"))!;
    assert.deepEqual(blue.qa, { question: "is it round?", answer: "no", type: "shape", history: [{ question: "what colour is it?", answer: "blue" }] });
    assert.deepEqual(all.find((e) => e.image!.endsWith("green.png"))!.qa, { question: "what colour is it?", answer: "green", type: "untyped", history: [] });
    assert.equal(tok.decode(blue.ids), "user: what colour is it?\nassistant: blue\nuser: is it round?\nassistant: no\n");
    // Pixels at the encoder's size, normalised as its `pixels` say (unit: v / 255).
    const px = await data.pixels([blue]);
    assert.equal(px.length, 8 * 8 * 3);
    assert.ok(Math.abs(px[2]! - 220 / 255) < 0.02, `blue channel ${px[2]}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad_rows: "fail" stops at the first bad row, naming how many more', async () => {
  const { dir, ir } = setup("fail");
  try {
    await images(dir);
    const tok = CharTokenizer.fromIr(ir.tokenizer!);
    await assert.rejects(
      loadStageData(ir.train!.data, ir, tok, { baseDir: dir, split: 0.3, seed: 0 }),
      (err: Error) => err instanceof DataError && err.message.startsWith(`${join(dir, "data.jsonl")}:3: not valid JSON`) && /and 10 more bad rows/.test(err.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an IR without a chat template cannot load conversation data", async () => {
  const { dir, ir } = setup();
  try {
    const { chat: _, ...bare } = ir;
    await assert.rejects(
      loadStageData(ir.train!.data, bare as Ir, CharTokenizer.fromIr(ir.tokenizer!), { baseDir: dir, split: 0.3, seed: 0 }),
      (err: Error) => err instanceof DataError && /needs the model's `chat` section/.test(err.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
