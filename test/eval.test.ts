// Exact-match evaluation (runtime/eval/) and `vlmc eval` end to end. The run folder is built by
// hand: a model whose weights make it write one fixed caption whatever the image (the decoder's
// position table selects, at text position t, the caption's t-th character through the LM head;
// the visual tokens are zeroed by the projector), so its exact match is known in advance: the
// share of the split whose caption is that one. The bundled example passes `vlmc check`.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile } from "../compiler/compile.js";
import type { Ir } from "../compiler/ir/types.js";
import { irToJson } from "../compiler/ir/yaml.js";
import { generateShapes, majorityBaseline } from "../runtime/data/shapes.js";
import { corpusBleu } from "../runtime/eval/bleu.js";
import { ciderD } from "../runtime/eval/cider.js";
import { exactMatch, majorityCaption } from "../runtime/eval/exact-match.js";
import type { EvalDocument } from "../runtime/eval/results.js";
import { captionWords } from "../runtime/eval/words.js";
import { encodeSafetensors } from "../runtime/safetensors.js";
import { CharTokenizer } from "../runtime/tokenizer.js";
import { writeCheckpoint } from "../runtime/train/checkpoint.js";
import { runVlmc } from "./helpers/cli.js";
import { fixedSpec, fixedTokenizer, fixedWeights } from "./helpers/fixed-caption.js";
import { repoPath } from "./helpers/paths.js";

const dir = mkdtempSync(join(tmpdir(), "vlmc-eval-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("exactMatch: character-exact against any reference, overall and per group, the majority baseline on the same examples", () => {
  const r = exactMatch(
    [
      { id: "1", references: ["a red circle"], prediction: "a red circle", group: "novel" },
      { id: "2", references: ["a red circle"], prediction: "a red circle ", group: "novel" },
      { id: "3", references: ["a blue square"], prediction: "a blue square", group: "ordinary" },
      { id: "4", references: ["a blue square"], prediction: "A blue square" },
      // Several captions of one image: any of them is a match.
      { id: "5", references: ["a green square", "a square"], prediction: "a square" },
    ],
    ["a blue square", "a red circle", "a blue square", "a green square"],
  );
  assert.deepEqual(r.overall, { correct: 3, count: 5, rate: 0.6 });
  assert.deepEqual(r.groups, { novel: { correct: 1, count: 2, rate: 0.5 }, ordinary: { correct: 1, count: 1, rate: 1 } });
  assert.deepEqual(r.baseline, { caption: "a blue square", correct: 2, count: 5, rate: 0.4 });
  assert.deepEqual(r.mistakes.map((m) => m.id), ["2", "4"]);
  assert.equal(r.mistakes[0]!.reference, "a red circle");
  assert.deepEqual(exactMatch([], []).overall, { correct: 0, count: 0, rate: 0 });
  // Ties go to the first caption in code point order.
  assert.equal(majorityCaption(["b", "a", "c", "b", "a"]), "a");
});

test("the majority baseline agrees with the shapes generator's own", () => {
  const data = generateShapes({ images: 2000, size: 16, seed: 0 });
  const r = exactMatch(
    data.validation.map((e) => ({ id: e.id, references: [e.caption], prediction: "" })),
    data.train.map((e) => e.caption),
  );
  const want = majorityBaseline(data);
  assert.equal(r.baseline.caption, want.caption);
  assert.equal(r.baseline.correct, want.matches);
  assert.equal(r.baseline.count, want.total);
});

// 64 images of 16 x 16: 58 training, 6 validation (3 novel, 3 ordinary).
const SPEC = fixedSpec(1);
const data = generateShapes({ images: 64, size: 16, seed: 3 });
const fixedCaption = data.validation[0]!.caption;
const tok = fixedTokenizer;

function makeRun(name: string): { run: string; ir: Ir } {
  const run = join(dir, name);
  mkdirSync(run, { recursive: true });
  const r = compile(join(run, "spec.vlm"), { text: new TextEncoder().encode(SPEC), baseDir: run });
  assert.ok(r.ir, r.diagnostics.map((d) => d.message).join("\n"));
  writeFileSync(join(run, "ir.json"), irToJson(r.ir));
  writeFileSync(join(run, "tokenizer.json"), JSON.stringify(tok.toJSON()));
  return { run, ir: r.ir };
}

const { run, ir } = makeRun("fixed");
writeFileSync(join(run, "weights.safetensors"), fixedWeights(ir, fixedCaption));

type EvalJson = EvalDocument;

function evalJson(args: string[]): EvalJson {
  const r = runVlmc(["eval", ...args, "--json", "--backend", "wasm"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as EvalJson;
}

test("vlmc eval: a model that always writes one caption scores exactly the images with that caption", () => {
  const j = evalJson([run]);
  const hits = data.validation.filter((e) => e.caption === fixedCaption).length;
  assert.equal(j.model, "fixed");
  assert.match(j.data, /^shapes\(images: 64, size: 16, seed: 3\b/);
  assert.equal(j.examples, data.validation.length);
  assert.deepEqual(j.exact_match, { correct: hits, count: 6, rate: hits / 6 });
  // The groups follow the generator's novel flags.
  const novel = data.validation.filter((e) => e.novel);
  assert.equal(j.groups.novel!.examples, novel.length);
  assert.equal(j.groups.novel!.exact_match.count, novel.length);
  assert.equal(j.groups.novel!.exact_match.correct, novel.filter((e) => e.caption === fixedCaption).length);
  assert.equal(j.groups.ordinary!.exact_match.count, 6 - novel.length);
  // BLEU-4 and CIDEr-D of the one caption against the split's own (runtime/eval's metrics, tested
  // against their references in metrics.test.ts): the command scores what it decoded.
  const refs = data.validation.map((e) => [captionWords(e.caption)]);
  const bleu = corpusBleu(refs, refs.map(() => captionWords(fixedCaption)));
  assert.ok(Math.abs(j.bleu4 - bleu.score) < 1e-12, `${j.bleu4} vs ${bleu.score}`);
  assert.deepEqual(j.bleu.precisions, bleu.precisions);
  const cider = ciderD(refs.map((r) => ({ candidate: captionWords(fixedCaption), references: r })));
  assert.ok(Math.abs(j.cider_d - cider.score) < 1e-12, `${j.cider_d} vs ${cider.score}`);
  const novelIdx = data.validation.flatMap((e, i) => (e.novel ? [i] : []));
  assert.ok(Math.abs(j.groups.novel!.cider_d - novelIdx.reduce((a, i) => a + cider.scores[i]!, 0) / novelIdx.length) < 1e-12);
  // The loss of every validation caption, teacher-forced; per group too.
  assert.ok(j.loss !== null && j.loss > 0 && Math.abs(j.perplexity! - Math.exp(j.loss)) < 1e-9 * j.perplexity!, `loss ${j.loss}`);
  assert.equal(j.tokens, data.validation.reduce((a, e) => a + e.caption.length + 1, 0)); // characters and eos
  assert.ok(j.groups.novel!.loss! > 0 && j.groups.ordinary!.loss! > 0);
  // Every mistake shows the fixed caption against its reference.
  assert.equal(j.mistakes.length, 6 - hits);
  for (const m of j.mistakes) assert.equal(m.prediction, fixedCaption);
  assert.equal(j.baseline!.caption, majorityBaseline(data).caption);

  const train = evalJson([run, "--split", "train", "--limit", "5", "--batch", "2"]);
  assert.equal(train.examples, 5);
  assert.equal(train.exact_match.correct, data.train.slice(0, 5).filter((e) => e.caption === fixedCaption).length);
  const only = evalJson([run, "--split", "novel"]);
  assert.equal(only.examples, novel.length);
  assert.deepEqual(Object.keys(only.groups), ["novel"]);
});

test("vlmc eval text output: the accuracy lines, the baseline, the mistakes", () => {
  const r = runVlmc(["eval", run, "--backend", "wasm", "--mistakes", "1"]);
  assert.equal(r.code, 0, r.stderr);
  const hits = data.validation.filter((e) => e.caption === fixedCaption).length;
  assert.match(r.stdout, /^backend: wasm \(requested\)/m);
  assert.match(r.stdout, new RegExp(`^exact match: ${hits}/6 = ${((100 * hits) / 6).toFixed(1)}%$`, "m"));
  assert.match(r.stdout, /^loss: \d+\.\d{4} per token, perplexity \d+\.\d{4} \(\d+ tokens, teacher-forced\)$/m);
  assert.match(r.stdout, /^BLEU-4: \d\.\d{4} {2}CIDEr-D: \d+\.\d{4}$/m);
  assert.match(r.stdout, /^ {2}novel \(held-out combinations\): \d\/\d = [\d.]+%; BLEU-4 \d\.\d{4}, CIDEr-D \d+\.\d{4}, loss \d+\.\d{4}$/m);
  assert.match(r.stdout, /^majority-caption baseline: \d\/6 = [\d.]+% \(".+"\); BLEU-4 \d\.\d{4}, CIDEr-D \d+\.\d{4}$/m);
  assert.match(r.stdout, /^recorded in .*eval\.json \("validation"\)$/m);
  assert.match(r.stdout, new RegExp(`^mistakes \\(1 of ${6 - hits}\\):$`, "m"));
  assert.ok(r.stdout.includes(`    got:  ${JSON.stringify(fixedCaption)}`), r.stdout);
});

test("vlmc eval: --checkpoint picks a checkpoint's weights; problems are one line with exit 2 or 1", () => {
  const { run: other } = makeRun("checkpointed");
  // No final weights yet: the message lists the checkpoints.
  let r = runVlmc(["eval", other, "--backend", "wasm"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /has no weights\.safetensors \(the run has not finished\): give --checkpoint NAME or --checkpoint last \(it has no checkpoints\)/);
  const second = data.validation[1]!.caption;
  writeCheckpoint(other, "all-00000001", new Map([["weights.safetensors", fixedWeights(ir, second)]]));
  const j = evalJson([other, "--checkpoint", "last", "--limit", "2"]);
  assert.equal(j.exact_match.correct, data.validation.slice(0, 2).filter((e) => e.caption === second).length);
  assert.ok(j.exact_match.correct >= 1);
  assert.equal(evalJson([other, "--checkpoint", "all-00000001", "--limit", "2"]).exact_match.correct, j.exact_match.correct);

  r = runVlmc(["eval", other, "--checkpoint", "all-2"]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, `vlmc: error: no checkpoint \`all-2\` in ${other} (its checkpoints: all-00000001)\n`);
  r = runVlmc(["eval", join(dir, "absent")]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /absent: no such run folder\n$/);
  r = runVlmc(["eval", run, "--split", "nope"]);
  assert.equal(r.code, 2);

  // Weights of another model: exit 1, no stack trace.
  const { run: wrong } = makeRun("wrong");
  writeFileSync(join(wrong, "weights.safetensors"), encodeSafetensors([{ name: "x", dtype: "F32", shape: [1], data: new Float32Array(1) }], {}));
  r = runVlmc(["eval", wrong, "--backend", "wasm"]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^vlmc: error: .*weights\.safetensors does not fit the model `fixed`: /);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  // Every tensor right, but written for another spec (another architecture with the same
  // parameters, e.g. another activation): exit 1, naming both.
  writeFileSync(join(wrong, "weights.safetensors"), fixedWeights(ir, fixedCaption, "0123456789abcdef"));
  r = runVlmc(["eval", wrong, "--backend", "wasm"]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^vlmc: error: .*weights\.safetensors belongs to another model than .*ir\.json: the file was written for the spec 0123456789abcdef, not this one \(sha256:[0-9a-f]+\)\n$/);
  // A tokenizer without bos cannot start a caption.
  writeFileSync(join(wrong, "tokenizer.json"), JSON.stringify(new CharTokenizer({ alphabet: "ab", specials: ["pad", "eos"] }).toJSON()));
  r = runVlmc(["eval", wrong]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /the tokenizer has no `bos` token/);
});

test("the bundled shapes example passes vlmc check", () => {
  const r = runVlmc(["check", repoPath("examples", "shapes", "shapes.vlm")]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
});
