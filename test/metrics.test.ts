// BLEU (runtime/eval/bleu.ts) and CIDEr-D (runtime/eval/cider.ts) against their references:
// - the values nltk documents in the docstrings of nltk/translate/bleu_score.py (nltk 3.6,
//   github.com/nltk/nltk; the BLEU paper's own example sentences). A value written there as
//   `0.5045...` is a doctest ELLIPSIS: the printed number starts with those digits;
// - cases worked out by hand below, step by step;
// - test/fixtures/metrics/coco-reference.json: BLEU-1..4 and CIDEr-D computed by pycocoevalcap,
//   the COCO caption evaluation itself, on seeded corpora (tools/metrics_reference.py writes it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { brevityPenalty, closestReferenceLength, corpusBleu, modifiedPrecision, sentenceBleu } from "../runtime/eval/bleu.js";
import { scoreCaptions } from "../runtime/eval/caption-metrics.js";
import { ciderD } from "../runtime/eval/cider.js";
import { captionWords } from "../runtime/eval/words.js";
import { repoPath } from "./helpers/paths.js";

/** A doctest `0.5045...`: the shortest representation (Python's repr, JS's toString) starts so. */
function startsWith(value: number, digits: string): void {
  assert.ok(String(value).startsWith(digits), `${value} does not start with ${digits}`);
}
const close = (got: number, want: number, tol = 1e-12) => assert.ok(Math.abs(got - want) <= tol * Math.max(1, Math.abs(want)), `${got} vs ${want}`);

// nltk's sentences (the BLEU paper's example 1).
const hypothesis1 = ["It", "is", "a", "guide", "to", "action", "which", "ensures", "that", "the", "military", "always", "obeys", "the", "commands", "of", "the", "party"];
const hypothesis2 = ["It", "is", "to", "insure", "the", "troops", "forever", "hearing", "the", "activity", "guidebook", "that", "party", "direct"];
const reference1 = ["It", "is", "a", "guide", "to", "action", "that", "ensures", "that", "the", "military", "will", "forever", "heed", "Party", "commands"];
const reference2 = ["It", "is", "the", "guiding", "principle", "which", "guarantees", "the", "military", "forces", "always", "being", "under", "the", "command", "of", "the", "Party"];
const reference3 = ["It", "is", "the", "practical", "guide", "for", "the", "army", "always", "to", "heed", "the", "directions", "of", "the", "party"];
const refs = [reference1, reference2, reference3];
const a = (n: number) => new Array<string>(n).fill("a");

test("BLEU: nltk's documented modified precisions", () => {
  const p = (r: string[][], h: string[], n: number) => {
    const m = modifiedPrecision(r, h, n);
    return m.matches / m.total;
  };
  // "the the the ..." against "the cat is on the mat" / "there is a cat on the mat": 2/7.
  startsWith(p(["the cat is on the mat".split(" "), "there is a cat on the mat".split(" ")], "the the the the the the the".split(" "), 1), "0.2857");
  assert.equal(p(refs, ["of", "the"], 1), 1.0);
  assert.equal(p(refs, ["of", "the"], 2), 1.0);
  startsWith(p(refs, hypothesis1, 1), "0.9444");
  startsWith(p(refs, hypothesis2, 1), "0.5714");
  assert.equal(p(refs, hypothesis1, 2), 0.5882352941176471);
  startsWith(p(refs, hypothesis2, 2), "0.07692");
});

test("BLEU: nltk's documented brevity penalties (closest reference length, ties to the shorter)", () => {
  const bp = (r: number[], h: number) => brevityPenalty(closestReferenceLength(r.map(a), h), h);
  assert.equal(bp([12, 15, 17], 12), 1.0);
  close(bp([28, 28], 12), 0.2635971381157267, 1e-15);
  startsWith(bp([13, 2], 12), "0.9200");
  assert.equal(bp([13, 11], 12), 1);
  assert.equal(bp([11, 13], 12), 1);
  // From mteval-v13a.pl, as nltk quotes it.
  startsWith(bp([11, 8], 7), "0.8668");
  assert.equal(bp([11, 8, 6, 7], 7), 1.0);
  assert.equal(brevityPenalty(5, 0), 0);
});

test("BLEU: nltk's documented sentence and corpus scores", () => {
  startsWith(sentenceBleu(refs, hypothesis1).score, "0.5045");
  startsWith(sentenceBleu([reference1], hypothesis1).score, "0.4118");
  // Every order has a match: exp smoothing (nltk's method3) changes nothing, as nltk documents.
  assert.equal(sentenceBleu([reference1], hypothesis1, { smoothing: "exp" }).score, sentenceBleu([reference1], hypothesis1, { smoothing: "none" }).score);
  // Five orders, weights 1/5 each (nltk 3.6's BLEU-5 example).
  startsWith(sentenceBleu(refs, hypothesis1, { weights: [0.2, 0.2, 0.2, 0.2, 0.2] }).score, "0.3920");
  // hypothesis2 has no 3-gram match: the paper's BLEU is 0.
  assert.equal(sentenceBleu(refs, hypothesis2, { smoothing: "none" }).score, 0);

  const hyp2 = ["he", "read", "the", "book", "because", "he", "was", "interested", "in", "world", "history"];
  const ref2a = ["he", "was", "interested", "in", "world", "history", "because", "he", "read", "the", "book"];
  const corpus = corpusBleu([refs, [ref2a]], [hypothesis1, hyp2]);
  startsWith(corpus.score, "0.5920");
  // ... which is not the mean of the sentence scores.
  startsWith((sentenceBleu(refs, hypothesis1).score + sentenceBleu([ref2a], hyp2).score) / 2, "0.6223");
  assert.deepEqual(corpus.totals, [29, 27, 25, 23]);
  assert.equal(corpus.hypothesisLength, 29);
});

test("BLEU: exp smoothing worked by hand; no word in common scores 0", () => {
  // hypothesis2 against the three references: precisions 8/14, 1/13, 0/12, 0/11 (nltk's
  // documented 0.5714 and 0.07692 above). exp smoothing gives the empty orders 1/(2^1 * 12) and
  // 1/(2^2 * 11); c = 14, the closest reference has 16 words, so BP = exp(1 - 16/14).
  const want = Math.exp(1 - 16 / 14) * Math.pow((8 / 14) * (1 / 13) * (1 / 24) * (1 / 44), 1 / 4);
  close(sentenceBleu(refs, hypothesis2).score, want); // 0.0696300330571...
  const b = sentenceBleu(refs, hypothesis2);
  assert.deepEqual(b.matches, [8, 1, 0, 0]);
  assert.deepEqual(b.totals, [14, 13, 12, 11]);
  assert.equal(sentenceBleu([["a", "b"]], ["c", "d"]).score, 0);
  // A hypothesis shorter than 4 words has no 4-gram: precision 0 for that order, smoothed.
  const short = sentenceBleu([["a", "red", "circle"]], ["a", "red", "circle"]);
  assert.deepEqual(short.totals, [3, 2, 1, 0]);
  close(short.score, Math.pow(1 * 1 * 1 * (1 / 2), 1 / 4)); // the 4-gram order: 1 / (2^1 * max(1, 0))
  assert.throws(() => corpusBleu([[]], [["a"]]), /has no reference/);
});

test("CIDEr-D worked by hand: two images, one reference each", () => {
  // I = 2 images, so an n-gram's weight is tf * (ln 2 - ln max(1, df)); let L = ln 2.
  //   image A: reference "a red circle",  candidate "a red circle"
  //   image B: reference "a blue square", candidate "a red square"
  // df("a") = 2 (both images' references), so "a" weighs 0; every other n-gram weighs L (df 1,
  // or df 0 for n-grams in no reference: ln max(1, 0) = 0).
  // A: each order n = 1..3 is the same vector on both sides (order 1: {a: 0, red: L, circle: L}),
  //    cosine 1; order 4 has no n-gram (3 words): 0. Bigram lengths equal: no penalty.
  //    score = 10 * (1 + 1 + 1 + 0) / 4 = 7.5
  // B: order 1: candidate {a: 0, red: L, square: L}, reference {a: 0, blue: L, square: L}:
  //    clipped dot min(L, L) * L = L^2 (square), norms sqrt(2) L each: 1/2. Orders 2, 3 share
  //    nothing ("a red", "red square" vs "a blue", "blue square"): 0. Order 4: 0.
  //    score = 10 * (1/2) / 4 = 1.25
  // Corpus: (7.5 + 1.25) / 2 = 4.375.
  const r = ciderD([
    { candidate: captionWords("a red circle"), references: [captionWords("a red circle")] },
    { candidate: captionWords("a red square"), references: [captionWords("a blue square")] },
  ]);
  close(r.scores[0]!, 7.5);
  close(r.scores[1]!, 1.25);
  close(r.score, 4.375);
});

test("CIDEr-D worked by hand: clipping, two references, the length penalty", () => {
  // I = 2; every n-gram below is in at most one image's references, so each weighs tf * L.
  //   image A: references "red red circle" and "red", candidate "red red red"
  //   image B: reference "blue square",                candidate "blue square"
  // A's candidate: order 1 {red: 3L}, order 2 {red red: 2L}, order 3 {red red red: L}; bigram
  // length 2.
  // vs "red red circle" (bigram length 2, no penalty):
  //   order 1: {red: 2L, circle: L}, norm sqrt(5) L; clipped dot min(3L, 2L) * 2L = 4 L^2,
  //            over 3L * sqrt(5) L: 4 / (3 sqrt 5)     (without clipping it would be 6 / (3 sqrt 5))
  //   order 2: {red red: L, red circle: L}, norm sqrt(2) L; dot min(2L, L) * L = L^2, over
  //            2L * sqrt(2) L: 1 / (2 sqrt 2)
  //   order 3: "red red red" is not "red red circle": 0. Order 4: 0.
  // vs "red" (bigram length 0: d = 2, penalty exp(-4 / 72)):
  //   order 1: {red: L}; dot min(3L, L) * L = L^2 over 3L * L: 1/3, times the penalty;
  //   orders 2-4: the reference has none: 0.
  // A = 10 * [(4/(3 sqrt 5) + 1/(2 sqrt 2) + exp(-1/18)/3) / 4] / 2 references = 1.58144750...
  // B: orders 1 and 2 identical (cosine 1), 3 and 4 empty: 10 * 2/4 = 5.
  const A = (10 * ((4 / (3 * Math.sqrt(5)) + 1 / (2 * Math.sqrt(2)) + Math.exp(-1 / 18) / 3) / 4)) / 2;
  const r = ciderD([
    { candidate: ["red", "red", "red"], references: [["red", "red", "circle"], ["red"]] },
    { candidate: ["blue", "square"], references: [["blue", "square"]] },
  ]);
  close(r.scores[0]!, A);
  close(r.scores[1]!, 5);
  close(r.score, (A + 5) / 2); // 3.29072375...
  // One image alone: every reference n-gram has df = I, weight 0: CIDEr-D is 0, as in pycocoevalcap.
  assert.equal(ciderD([{ candidate: ["a", "b"], references: [["a", "b"]] }]).score, 0);
  assert.deepEqual(ciderD([]), { score: 0, scores: [] });
});

interface ReferenceCase {
  name: string;
  items: { candidate: string; references: string[] }[];
  bleu: number[];
  cider_d: number;
  cider_d_per_image: number[];
}

test("BLEU-1..4 and CIDEr-D agree with pycocoevalcap on seeded corpora", () => {
  const fixture = JSON.parse(readFileSync(repoPath("test/fixtures/metrics/coco-reference.json"), "utf8")) as { cases: ReferenceCase[] };
  assert.equal(fixture.cases.length, 4);
  const words = (s: string) => (s === "" ? [] : s.split(" "));
  for (const c of fixture.cases) {
    const refs = c.items.map((it) => it.references.map(words));
    const hyps = c.items.map((it) => words(it.candidate));
    // pycocoevalcap's BLEU-n is the n-order BLEU with uniform weights, unsmoothed; it adds 1e-15
    // and 1e-9 to counts to avoid dividing by zero, hence the tolerance.
    for (let n = 1; n <= 4; n++) close(corpusBleu(refs, hyps, { maxOrder: n, smoothing: "none" }).score, c.bleu[n - 1]!, 1e-8);
    const cider = ciderD(c.items.map((_, i) => ({ candidate: hyps[i]!, references: refs[i]! })));
    c.cider_d_per_image.forEach((want, i) => close(cider.scores[i]!, want, 1e-9));
    close(cider.score, c.cider_d, 1e-9);
  }
});

test("caption words: lowercase, punctuation dropped", () => {
  assert.deepEqual(captionWords("A red Circle, on the LEFT."), ["a", "red", "circle", "on", "the", "left"]);
  assert.deepEqual(captionWords("  "), []);
  assert.deepEqual(captionWords("l'été  2 chats"), ["l", "été", "2", "chats"]);
});

test("scoreCaptions: one prediction per image against all its captions, groups, the baseline", () => {
  const m = scoreCaptions(
    [
      { id: "1", references: ["a red circle on the left", "a small red circle"], prediction: "A red circle on the left.", group: "novel" },
      { id: "2", references: ["a blue square in the center"], prediction: "a blue square in the center", group: "ordinary" },
      { id: "3", references: ["a green triangle on the right"], prediction: "a green square on the right", group: "novel" },
    ],
    ["a blue square in the center", "a red circle on the left", "a blue square in the center"],
  );
  assert.equal(m.images, 3);
  assert.equal(m.references, 4);
  // Exact match is character-exact: image 1's prediction differs in case and punctuation.
  assert.deepEqual(m.exactMatch, { correct: 1, count: 3, rate: 1 / 3 });
  // BLEU and CIDEr-D see words: image 1 matches its first reference exactly.
  const refs = [[captionWords("a red circle on the left"), captionWords("a small red circle")], [captionWords("a blue square in the center")], [captionWords("a green triangle on the right")]];
  const hyps = [captionWords("a red circle on the left"), captionWords("a blue square in the center"), captionWords("a green square on the right")];
  close(m.bleu.score, corpusBleu(refs, hyps).score);
  const cider = ciderD(refs.map((r, i) => ({ candidate: hyps[i]!, references: r })));
  close(m.ciderD, cider.score);
  close(m.groups.novel!.ciderD, (cider.scores[0]! + cider.scores[2]!) / 2);
  close(m.groups.novel!.bleu4, corpusBleu([refs[0]!, refs[2]!], [hyps[0]!, hyps[2]!]).score);
  assert.deepEqual(m.groups.ordinary!.exactMatch, { correct: 1, count: 1, rate: 1 });
  assert.equal(m.baseline.caption, "a blue square in the center");
  assert.equal(m.baseline.correct, 1);
  close(m.baseline.bleu4, corpusBleu(refs, refs.map(() => captionWords("a blue square in the center"))).score);
  assert.deepEqual(m.mistakes.map((x) => x.id), ["1", "3"]);
});
