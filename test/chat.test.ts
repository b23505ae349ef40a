// The chat template at run time (runtime/chat.ts): rendering, the image placeholder's rules, token
// ids with an answer-only loss mask (exact positions, through makeBatch), and that a prompt is
// exactly the prefix training put before an answer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { answerOf, encodeConversation, encodePrompt, renderConversation, renderPrompt, toExchanges, type ChatTemplate, type Turn } from "../runtime/chat.js";
import { makeBatch } from "../runtime/data/batches.js";
import { CharTokenizer } from "../runtime/tokenizer.js";

const chat: ChatTemplate = { user: "u: ", assistant: "a: ", separator: "\n", image: "<image>" };
const llava: ChatTemplate = { user: "user: ", assistant: "assistant: ", separator: "\n", image: "<image>" };
const ALPHABET = "abcdefghijklmnopqrstuvwxyz :?\n";
const tok = new CharTokenizer({ alphabet: ALPHABET, specials: ["pad", "bos", "eos"] });
// Ids by the tokenizer's definition, not by asking it: pad 0, bos 1, eos 2, then the alphabet from 3.
const id = (c: string) => 3 + ALPHABET.indexOf(c);
const turns = (...vs: string[]): Turn[] => vs.map((value, i) => ({ from: i % 2 === 0 ? "human" : "gpt", value }));

test("rendering: marker, question, separator, assistant marker, answer, separator, per exchange", () => {
  const ex = [
    { question: "what colour is the circle?", answer: "red" },
    { question: "how many shapes are there?", answer: "two" },
  ];
  assert.equal(renderConversation(ex, llava), "user: what colour is the circle?\nassistant: red\nuser: how many shapes are there?\nassistant: two\n");
  assert.equal(renderPrompt("what colour is the circle?", llava), "user: what colour is the circle?\nassistant: ");
  assert.equal(renderPrompt("how many shapes are there?", llava, ex.slice(0, 1)), "user: what colour is the circle?\nassistant: red\nuser: how many shapes are there?\nassistant: ");
  // The prompt is what the conversation's text holds before the answer.
  const text = renderConversation(ex, llava);
  assert.ok(text.startsWith(renderPrompt("how many shapes are there?", llava, ex.slice(0, 1))));
});

test("placeholder: removed with its newline at the start of the first question; anywhere else a bad row", () => {
  const ok = toExchanges(turns("<image>\nwhat is it?", "a circle"), chat, true);
  assert.deepEqual(ok, { ok: true, exchanges: [{ question: "what is it?", answer: "a circle" }], placeholder: true });
  // Without a newline, only the placeholder goes; without a placeholder, the image is still in front.
  assert.deepEqual(toExchanges(turns("<image>what?", "x"), chat, true), { ok: true, exchanges: [{ question: "what?", answer: "x" }], placeholder: true });
  assert.deepEqual(toExchanges(turns("what?", "x"), chat, true), { ok: true, exchanges: [{ question: "what?", answer: "x" }], placeholder: false });
  // Another template's placeholder.
  assert.deepEqual(toExchanges(turns("<img>\nq", "x"), { ...chat, image: "<img>" }, true), { ok: true, exchanges: [{ question: "q", answer: "x" }], placeholder: true });

  const bad = (t: Turn[], hasImage = true) => {
    const r = toExchanges(t, chat, hasImage);
    assert.equal(r.ok, false, JSON.stringify(t));
    return (r as { message: string }).message;
  };
  assert.match(bad(turns("what is it?\n<image>", "x")), /must start the first question \(found it in turn 1 at character 13\)/);
  assert.match(bad(turns("q", "x", "<image>\nq2", "y")), /must start the first question \(found it in turn 3\)/);
  assert.match(bad(turns("<image>\nq <image>", "x")), /appears 2 times/);
  assert.match(bad(turns("<image>\nq", "x"), false), /names no image/);
  assert.match(bad(turns("q")), /no "gpt" turn/);
  assert.match(bad(turns("q", "x", "q2")), /last turn \(3\) is a question with no answer/);
  assert.match(bad(turns("q", "  ")), /turn 2 \(an answer\) is empty/);
  assert.match(bad([{ from: "gpt", value: "x" }, { from: "human", value: "q" }]), /turn 1 is from "gpt", expected "human"/);
  assert.match(bad([{ from: "human", value: "q" }, { from: "human", value: "x" }]), /turn 2 is from "human", expected "gpt"/);
  assert.match(bad([]), /no turns/);
});

test("ids and loss mask: exactly the answer, its separator and eos count", () => {
  const r = encodeConversation([{ question: "hi?", answer: "no" }], chat, tok);
  assert.ok(r.ok);
  // "u: hi?\na: no\n" between bos and eos, character by character.
  const expected = [1, ...Array.from("u: hi?\na: no\n", id), 2];
  assert.deepEqual([...r.ids], expected);
  //                        b  u  :  _  h  i  ?  \n a  :  _  n  o  \n eos
  assert.deepEqual([...r.lossMask], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);

  // Two exchanges: both answers and their separators count, the second question does not.
  const two = encodeConversation(
    [
      { question: "a", answer: "b" },
      { question: "c", answer: "d" },
    ],
    chat,
    tok,
  );
  assert.ok(two.ok);
  // b  u  :  _  a  \n a  :  _  b  \n u  :  _  c  \n a  :  _  d  \n eos
  assert.deepEqual([...two.lossMask], [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
  assert.equal(tok.decode(two.ids.filter((_, j) => two.lossMask[j] === 1)), "b\nd\n");
});

test("makeBatch: the mask is padding AND the loss mask; positions predict the next token", () => {
  const conv = encodeConversation([{ question: "hi?", answer: "no" }], chat, tok);
  assert.ok(conv.ok);
  const plain = tok.encode("abc"); // bos a b c eos: every target counts
  assert.ok(plain.ok);
  const b = makeBatch([{ ids: conv.ids, lossMask: conv.lossMask }, plain.ids], [0, 1], { maxText: 64, padId: 0 });
  assert.equal(b.T, 14);
  const row0 = [...b.mask.subarray(0, 14)];
  // Position i counts when ids[i + 1] does: positions 10..13 predict "n", "o", "\n", eos.
  assert.deepEqual(row0, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
  assert.deepEqual([...b.targets.subarray(10, 14)], [id("n"), id("o"), id("\n"), 2]);
  assert.deepEqual([...b.mask.subarray(14, 28)], [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(b.count, 8);
  // Truncation cuts the mask with the row.
  const cut = makeBatch([{ ids: conv.ids, lossMask: conv.lossMask }], [0], { maxText: 12, padId: 0 });
  assert.deepEqual([...cut.mask], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
  assert.equal(cut.count, 2);
  assert.throws(() => makeBatch([{ ids: conv.ids, lossMask: conv.lossMask.subarray(1) }], [0], { maxText: 64, padId: 0 }), /loss mask of 14/);
});

test("a prompt's ids are the ids training put before the answer, with or without history", () => {
  const history = [{ question: "a?", answer: "yes" }];
  const full = encodeConversation([...history, { question: "is it red?", answer: "no" }], llava, tok);
  const prompt = encodePrompt("is it red?", llava, tok, history);
  assert.ok(full.ok && prompt.ok);
  assert.deepEqual([...full.ids.subarray(0, prompt.ids.length)], [...prompt.ids]);
  // ... and the next token is the answer's first, the first position the loss counts after the history.
  assert.equal(full.ids[prompt.ids.length], id("n"));
  assert.equal(full.lossMask[prompt.ids.length], 1);
  assert.equal(full.lossMask[prompt.ids.length - 1], 0);
  assert.equal(tok.decode(prompt.ids), renderPrompt("is it red?", llava, history));
});

test("unencodable text names the segment; a generated answer is cut at the separator", () => {
  const r = encodeConversation([{ question: "What?", answer: "x" }], chat, tok);
  assert.equal(r.ok, false);
  assert.match((r as { message: string }).message, /^question 1: character "W" \(U\+0057\) at index 0/);
  const m = encodeConversation([{ question: "q", answer: "x" }], { ...chat, assistant: "A: " }, tok);
  assert.match((m as { message: string }).message, /^the chat template's `assistant` marker: character "A"/);
  assert.equal(answerOf("red\nuser: what", chat), "red");
  assert.equal(answerOf("  blue  ", chat), "blue");
  assert.equal(answerOf("two\n", { ...chat, separator: "</s>" }), "two");
});
