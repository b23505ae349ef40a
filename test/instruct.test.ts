// The instruct generator (runtime/data/instruct.ts): deterministic, every answer right for its
// picture's scene (checked by reading the question against the scene here, not by the generator's
// own code), questions asked only when unambiguous, and the shapes split by image kept.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateInstruct, INSTRUCT_ALPHABET, QUESTION_TYPES, type InstructExample } from "../runtime/data/instruct.js";
import { generateShapes, isHeldOut, type SceneObject } from "../runtime/data/shapes.js";

const data = generateInstruct({ images: 400, size: 32, seed: 3, split: 0.2 });
const all = [...data.train, ...data.validation];

/** The answer to a question about a scene, worked out from the question's words alone. */
function oracle(q: string, objs: readonly SceneObject[]): string | null {
  const one = (xs: SceneObject[]) => (xs.length === 1 ? xs[0]! : null);
  let m: RegExpExecArray | null;
  if ((m = /^what colour is the (\w+)\?$/.exec(q))) return one(objs.filter((o) => o.shape === m![1]))?.colour ?? null;
  if (q === "how many shapes are there?") return ["one", "two"][objs.length - 1] ?? null;
  if ((m = /^is the (\w+) left of the (\w+)\?$/.exec(q))) {
    const a = one(objs.filter((o) => o.shape === m![1]));
    const b = one(objs.filter((o) => o.shape === m![2]));
    if (!a || !b || a === b) return null;
    const x = { left: 0, center: 1, right: 2 };
    return x[a.position] < x[b.position] ? "yes" : "no";
  }
  if ((m = /^what shape is (?:on the|in the) (left|center|right)\?$/.exec(q))) return one(objs.filter((o) => o.position === m![1]))?.shape ?? null;
  if ((m = /^what size is the (\w+) shape\?$/.exec(q))) return one(objs.filter((o) => o.colour === m![1]))?.size ?? null;
  if ((m = /^is there a (\w+) (\w+)\?$/.exec(q))) return objs.some((o) => o.colour === m![1] && o.shape === m![2]) ? "yes" : "no";
  return null;
}

test("every answer is the scene's, and every question has exactly one answer", () => {
  assert.ok(all.length > 400 * 4, `${all.length} questions`);
  for (const e of all) {
    const want = oracle(e.question, e.picture.scene.objects);
    assert.notEqual(want, null, `${e.id}: ${JSON.stringify(e.question)} is ambiguous or unknown for ${e.picture.caption}`);
    assert.equal(e.answer, want, `${e.id}: ${e.question} (${e.picture.caption})`);
  }
});

test("deterministic; the seed changes the data", () => {
  const key = (xs: InstructExample[]) => xs.map((e) => `${e.id}|${e.type}|${e.question}|${e.answer}`);
  const again = generateInstruct({ images: 400, size: 32, seed: 3, split: 0.2 });
  assert.deepEqual(key(again.train), key(data.train));
  assert.deepEqual(key(again.validation), key(data.validation));
  assert.deepEqual(again.validation[0]!.picture.image(), data.validation[0]!.picture.image());
  assert.notDeepEqual(key(generateInstruct({ images: 400, size: 32, seed: 4, split: 0.2 }).train), key(data.train));
});

test("the shapes split, by image: no picture on both sides, novel pictures only in validation", () => {
  const shapes = generateShapes({ images: 400, size: 32, seed: 3, split: 0.2 });
  const trainIds = new Set(data.train.map((e) => e.picture.id));
  const valIds = new Set(data.validation.map((e) => e.picture.id));
  assert.deepEqual([...trainIds].sort(), shapes.train.map((e) => e.id).sort());
  assert.deepEqual([...valIds].sort(), shapes.validation.map((e) => e.id).sort());
  assert.ok([...valIds].every((i) => !trainIds.has(i)));
  assert.ok(data.train.every((e) => e.picture.split === "train" && !e.picture.scene.objects.some((o) => isHeldOut(o))));
  assert.ok(data.validation.some((e) => e.picture.novel));
  // A held-out pairing is asked about in validation: the test of the split.
  assert.ok(data.validation.some((e) => e.picture.novel && e.type === "colour" && e.picture.scene.objects.some((o) => isHeldOut(o) && e.question.includes(o.shape))));
});

test("types: all present, conversations in LLaVA's shape, yes and no balanced, no held-out pairing denied", () => {
  for (const t of QUESTION_TYPES) assert.ok(all.some((e) => e.type === t), t);
  for (const e of all) assert.deepEqual(e.turns, [{ from: "human", value: e.question }, { from: "gpt", value: e.answer }]);
  for (const t of ["relation", "exists"]) {
    const xs = all.filter((e) => e.type === t);
    const yes = xs.filter((e) => e.answer === "yes").length / xs.length;
    assert.ok(yes > 0.4 && yes < 0.6, `${t}: ${(100 * yes).toFixed(0)}% yes`);
  }
  for (const e of all.filter((x) => x.type === "exists" && x.answer === "no")) {
    const [, colour, shape] = /^is there a (\w+) (\w+)\?$/.exec(e.question)!;
    assert.ok(!isHeldOut({ shape: shape as SceneObject["shape"], colour: colour as SceneObject["colour"] }), e.question);
  }
  // Ids name the picture and the question's place.
  assert.equal(new Set(all.map((e) => e.id)).size, all.length);
  assert.ok(all.every((e) => e.id.startsWith(`${e.picture.id}/q`)));
});

test("INSTRUCT_ALPHABET covers every question and answer, and nothing more", () => {
  const used = new Set(all.flatMap((e) => Array.from(e.question + e.answer)));
  assert.deepEqual([...used].sort().join(""), INSTRUCT_ALPHABET);
});
