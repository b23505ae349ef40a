// `vlmc eval` on a run that was really trained (test/fixtures/train/tiny.vlm, 8 steps): the JSON
// document's fields, the teacher-forced loss against the one training last wrote to
// metrics.jsonl (the same computation on the same validation images), DIR/eval.json, the
// positional and --run forms, `--data FILE` (the validation images written as PNG files give the
// split's numbers again: the file's images are prepared by the run's own pixel policy; bad rows
// are reported by line and skipped; several captions per image), and bad command lines.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { train } from "../compiler/index.js";
import type { Ir } from "../compiler/ir/types.js";
import { generateShapes, type HeldOutKind } from "../runtime/data/shapes.js";
import { corpusBleu } from "../runtime/eval/bleu.js";
import { ciderD } from "../runtime/eval/cider.js";
import type { EvalDocument, EvalFileDocument } from "../runtime/eval/results.js";
import { captionWords } from "../runtime/eval/words.js";
import { runVlmc } from "./helpers/cli.js";
import { repoPath } from "./helpers/paths.js";

const tmp = mkdtempSync(join(tmpdir(), "vlmc-eval-run-"));
const runDir = join(tmp, "run");
after(() => rmSync(tmp, { recursive: true, force: true }));

before(async () => {
  const r = await train(repoPath("test/fixtures/train/tiny.vlm"), { out: runDir, backend: "wasm", log: () => {} });
  assert.equal(r.status, "finished", JSON.stringify(r));
});

function evalJson(args: string[]): { doc: EvalDocument; stderr: string } {
  const r = runVlmc(["eval", ...args, "--format", "json", "--backend", "wasm"]);
  assert.equal(r.code, 0, r.stderr);
  return { doc: JSON.parse(r.stdout) as EvalDocument, stderr: r.stderr };
}

/** The validation images as the shapes source makes them, with their captions. */
function validationImages(): { id: string; caption: string; size: number; rgb: Uint8Array }[] {
  const ir = JSON.parse(readFileSync(join(runDir, "ir.json"), "utf8")) as Ir;
  const call = ir.train!.data;
  const d = generateShapes({ images: call.images as number, size: call.size as number, seed: call.seed as number, split: ir.train!.split, heldOut: (call.held_out as HeldOutKind | undefined) ?? "pairs" });
  return d.validation.map((e) => ({ id: e.id, caption: e.caption, size: e.size, rgb: e.image() }));
}

const close = (got: number, want: number, tol: number) => assert.ok(Math.abs(got - want) <= tol * Math.abs(want), `${got} vs ${want}`);

let validation: EvalDocument | null = null;

test("vlmc eval --run DIR --format json: loss as training measured it, caption metrics, groups, recorded in eval.json", () => {
  const { doc } = evalJson(["--run", runDir]);
  validation = doc;
  const images = validationImages();
  assert.equal(doc.model, "tiny");
  assert.equal(doc.split, "validation");
  assert.equal(doc.examples, images.length);
  assert.equal(doc.references, images.length);
  for (const key of ["loss", "perplexity", "exact_match", "bleu4", "cider_d", "groups", "baseline", "mistakes"]) assert.ok(key in doc, key);
  // Training's last evaluation (end of the last stage, final weights, validation split).
  const evals = readFileSync(join(runDir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { eval?: { loss: number; examples: number } })
    .filter((l) => l.eval);
  const last = evals.at(-1)!.eval!;
  assert.equal(last.examples, images.length);
  close(doc.loss!, last.loss, 1e-5);
  close(doc.perplexity!, Math.exp(last.loss), 1e-5);
  assert.equal(doc.tokens, images.reduce((a, e) => a + e.caption.length + 1, 0));
  // Scores in range; the groups split the images.
  assert.ok(doc.bleu4 >= 0 && doc.bleu4 <= 1 && doc.cider_d >= 0 && doc.cider_d <= 10, `${doc.bleu4} ${doc.cider_d}`);
  assert.deepEqual(Object.keys(doc.groups).sort(), ["novel", "ordinary"]);
  assert.equal(doc.groups.novel!.examples + doc.groups.ordinary!.examples, images.length);
  assert.ok(doc.groups.novel!.loss! > 0 && doc.groups.ordinary!.loss! > 0);
  assert.equal(doc.exact_match.count, images.length);
  assert.equal(doc.mistakes.length, images.length - doc.exact_match.correct);
  // BLEU-4 and CIDEr-D of what it decoded: every prediction is in the document (mistakes) or is its reference.
  const predictions = images.map((e) => doc.mistakes.find((m) => m.id === e.id)?.prediction ?? e.caption);
  const refs = images.map((e) => [captionWords(e.caption)]);
  close(doc.bleu4 + 1, corpusBleu(refs, predictions.map(captionWords)).score + 1, 1e-12);
  close(doc.cider_d + 1, ciderD(refs.map((r, i) => ({ candidate: captionWords(predictions[i]!), references: r }))).score + 1, 1e-12);

  const file = JSON.parse(readFileSync(join(runDir, "eval.json"), "utf8")) as EvalFileDocument;
  assert.equal(file.version, 1);
  const { key, evaluated_at, ...entry } = file.evaluations.validation!;
  assert.equal(key, "validation");
  assert.ok(!Number.isNaN(Date.parse(evaluated_at)));
  assert.deepEqual(entry, doc);
});

test("vlmc eval DIR (positional, --json): the same evaluation; --limit and --split are recorded under their own keys", () => {
  const { doc } = evalJson([runDir, "--json", "--split", "novel", "--limit", "2"]);
  assert.equal(doc.split, "novel");
  assert.equal(doc.examples, 2);
  assert.deepEqual(Object.keys(doc.groups), ["novel"]);
  const r = runVlmc(["eval", runDir, "--backend", "wasm", "--no-save"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^exact match: \d+\/\d+ = [\d.]+%$/m);
  assert.doesNotMatch(r.stdout, /recorded in/);
  const file = JSON.parse(readFileSync(join(runDir, "eval.json"), "utf8")) as EvalFileDocument;
  assert.deepEqual(Object.keys(file.evaluations).sort(), ["novel[:2]", "validation"]);
});

test("vlmc eval --data FILE: the validation images as PNG files score as the split; bad rows reported by line and skipped", async () => {
  assert.ok(validation, "the first test ran");
  const images = validationImages();
  const lines: string[] = [];
  for (const [i, e] of images.entries()) {
    await sharp(Buffer.from(e.rgb), { raw: { width: e.size, height: e.size, channels: 3 } })
      .png()
      .toFile(join(tmp, `v${i}.png`));
    lines.push(JSON.stringify({ image: `v${i}.png`, caption: e.caption }));
  }
  writeFileSync(join(tmp, "broken.png"), "not a picture");
  lines.splice(1, 0, "{not json");
  lines.splice(3, 0, JSON.stringify({ image: "absent.png", caption: "a red circle" }));
  lines.splice(5, 0, JSON.stringify({ image: "broken.png", caption: "a red circle" }));
  lines.splice(7, 0, JSON.stringify({ image: "v0.png", caption: "A Red Circle" })); // capitals: not in the tokenizer's alphabet
  const data = join(tmp, "val.jsonl");
  writeFileSync(data, `${lines.join("\n")}\n`);

  const { doc, stderr } = evalJson(["--run", runDir, "--data", data]);
  assert.equal(doc.split, null);
  assert.equal(doc.data, data);
  assert.equal(doc.skipped.length, 4);
  assert.deepEqual(doc.skipped.map((s) => Number(/^.*val\.jsonl:(\d+): /.exec(s)?.[1])), [2, 4, 6, 8]);
  assert.match(doc.skipped[0]!, /is not valid JSON/);
  assert.match(doc.skipped[1]!, /absent\.png/);
  assert.match(doc.skipped[3]!, /"A"/);
  for (const s of doc.skipped) assert.ok(stderr.includes(`vlmc: warning: skipped ${s}`), stderr);
  // Same pixels, same captions, same order: the split's numbers.
  assert.equal(doc.examples, validation!.examples);
  close(doc.loss!, validation!.loss!, 1e-6);
  assert.equal(doc.tokens, validation!.tokens);
  assert.deepEqual(doc.exact_match, validation!.exact_match);
  close(doc.bleu4 + 1, validation!.bleu4 + 1, 1e-12);
  close(doc.cider_d + 1, validation!.cider_d + 1, 1e-12);
  assert.deepEqual(doc.groups, {});
  // The baseline is the run's majority training caption, as for the split.
  assert.deepEqual(doc.baseline, validation!.baseline);
  const file = JSON.parse(readFileSync(join(runDir, "eval.json"), "utf8")) as EvalFileDocument;
  assert.ok(file.evaluations["data:../val.jsonl"], Object.keys(file.evaluations).join(", "));
});

test("vlmc eval --data: several captions of one image are its references; a prediction matching any of them is exact", () => {
  assert.ok(validation, "the first test ran");
  const images = validationImages();
  const predicted = (i: number) => validation!.mistakes.find((m) => m.id === images[i]!.id)?.prediction ?? images[i]!.caption;
  // Image 0 gets a second caption: what the model wrote for it (when that is a caption at all).
  const extra = predicted(0).trim() !== "" && /^[a-z ]+$/.test(predicted(0)) ? predicted(0) : "a small red circle";
  const rows = [
    { image: "v0.png", caption: images[0]!.caption },
    { image: "v1.png", caption: images[1]!.caption },
    { image: "v0.png", caption: extra },
  ];
  const data = join(tmp, "multi.jsonl");
  writeFileSync(data, rows.map((r) => JSON.stringify(r)).join("\n"));
  const { doc } = evalJson(["--run", runDir, "--data", data, "--no-save"]);
  assert.equal(doc.examples, 2);
  assert.equal(doc.references, 3);
  const refs = [[images[0]!.caption, extra], [images[1]!.caption]];
  const preds = [predicted(0), predicted(1)];
  const correct = preds.filter((p, i) => refs[i]!.includes(p)).length;
  assert.equal(doc.exact_match.correct, correct);
  if (extra === predicted(0)) assert.ok(!doc.mistakes.some((m) => m.id.endsWith("v0.png")));
  close(doc.bleu4 + 1, corpusBleu(refs.map((r) => r.map(captionWords)), preds.map(captionWords)).score + 1, 1e-12);
  const m0 = doc.mistakes.find((m) => m.id.endsWith("v0.png"));
  if (m0) assert.deepEqual(m0.references, refs[0]);
});

test("vlmc eval: bad command lines and bad data are one line and a non-zero exit", () => {
  const one = (args: string[], code: number, message: RegExp) => {
    const r = runVlmc(["eval", ...args, "--backend", "wasm"]);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assert.equal(r.stdout.includes("{"), false);
  };
  one([], 2, /^vlmc: error: no run folder: give --run DIR/);
  one([runDir, "--run", tmp], 2, /two run folders given/);
  one(["--run", runDir, "--data", join(tmp, "val.jsonl"), "--split", "train"], 2, /cannot be combined with --data/);
  one(["--run", join(tmp, "nowhere")], 2, /nowhere: no such run folder\n$/);
  one(["--run", tmp], 2, /not a run folder \(no ir\.json/);
  one(["--run", runDir, "--data", join(tmp, "absent.jsonl")], 2, /absent\.jsonl: no such file\n$/);
  writeFileSync(join(tmp, "bad.jsonl"), '{"image": "absent.png", "caption": "x"}\nnope\n');
  one(["--run", runDir, "--data", join(tmp, "bad.jsonl")], 1, /bad\.jsonl: no usable rows \(2 bad, the first: .*bad\.jsonl:1: .*absent\.png/);
});
