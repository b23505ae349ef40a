// Answer accuracy per question type (runtime/eval/qa.ts): normalisation, per-type and overall
// rates worked out by hand, and the majority-answer baseline.
import { test } from "node:test";
import assert from "node:assert/strict";
import { answerAccuracy, majorityAnswers, majorityBaseline, normalizeAnswer } from "../runtime/eval/qa.js";

test("normalisation: trimmed, lowercase, final punctuation stripped, nothing else", () => {
  assert.equal(normalizeAnswer("  Red. "), "red");
  assert.equal(normalizeAnswer("YES!?"), "yes");
  assert.equal(normalizeAnswer("two ."), "two");
  assert.equal(normalizeAnswer("a red circle"), "a red circle");
  assert.equal(normalizeAnswer("re.d"), "re.d");
  assert.equal(normalizeAnswer(""), "");
});

test("accuracy per type and overall", () => {
  const refs = ["red", "two", "yes", "blue", "no", "circle"];
  const got = ["Red.", "one", "yes", "blue ", "yes", "square"];
  const types = ["colour", "count", "relation", "colour", "relation", "shape"];
  const r = answerAccuracy(refs, got, types);
  assert.deepEqual(r.overall, { correct: 3, count: 6, rate: 0.5 });
  assert.deepEqual(Object.keys(r.types), ["colour", "count", "relation", "shape"]);
  assert.deepEqual(r.types.colour, { correct: 2, count: 2, rate: 1 });
  assert.deepEqual(r.types.count, { correct: 0, count: 1, rate: 0 });
  assert.deepEqual(r.types.relation, { correct: 1, count: 2, rate: 0.5 });
  assert.deepEqual(r.types.shape, { correct: 0, count: 1, rate: 0 });
  assert.deepEqual(r.items.map((i) => i.correct), [true, false, true, true, false, false]);
  assert.deepEqual(answerAccuracy([], [], []).overall, { correct: 0, count: 0, rate: 0 });
  assert.throws(() => answerAccuracy(["a"], [], ["t"]), /1 references, 0 predictions and 1 types/);
});

test("majority baseline: the most frequent training answer per type (ties: code point order)", () => {
  const train = [
    { type: "count", answer: "two" },
    { type: "count", answer: "One" },
    { type: "count", answer: "one" },
    { type: "relation", answer: "yes" },
    { type: "relation", answer: "no" },
  ];
  assert.deepEqual(majorityAnswers(train), new Map([["count", "one"], ["relation", "no"]]));
  const b = majorityBaseline(train, ["one", "two", "no", "red"], ["count", "count", "relation", "colour"]);
  assert.deepEqual(b.types.count, { correct: 1, count: 2, rate: 0.5 });
  assert.deepEqual(b.types.relation, { correct: 1, count: 1, rate: 1 });
  assert.deepEqual(b.types.colour, { correct: 0, count: 1, rate: 0 }); // never seen in training
});
