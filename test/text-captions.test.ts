// `text(<image-caption source>)`: a text-only stage on the captions of an image-caption set (the
// recipe's stage 0 pretrains the decoder on the shapes captions). The inner source keeps its own
// split, so the descriptions only validation shows never reach the decoder; the images are never
// read; the IR records the nested call with its file path re-based like any data path; a missing
// inner file is W0504 at check time; a source without captions is refused.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { check } from "../compiler/check.js";
import { compile } from "../compiler/compile.js";
import { rebaseIr } from "../compiler/ir/paths.js";
import type { IrCall } from "../compiler/ir/types.js";
import { generateShapes } from "../runtime/data/shapes.js";
import { CharTokenizer } from "../runtime/tokenizer.js";
import { loadStageData } from "../runtime/train/data.js";

const dir = mkdtempSync(join(tmpdir(), "vlmc-text-captions-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function spec(data: string): string {
  return `vlm 0.1
model m {
  tokenizer chars { alphabet: " abcdefghilmnoqrstuwy", specials: [pad, bos, eos] }
  encoder vit { image: 24 x 24 x 3, patch: 8, dim: 8, heads: 2, blocks: 0, cls: false, output: patches }
  projector { linear(decoder.dim) }
  decoder gpt { dim: 8, heads: 2, layers: 1, context: 96 }
}
train {
  data: shapes(images: 200, size: 24, seed: 1, held_out: triples)
  batch: 4
  stage lm { train: [decoder], data: ${data}, steps: 1 }
  stage all { train: [encoder, projector, decoder], steps: 1 }
}
`;
}

function compileSpec(name: string, text: string) {
  const path = join(dir, name);
  writeFileSync(path, text);
  return { path, ...compile(path, { baseDir: dir }) };
}

test("text(shapes(...)): the training captions train, the held-out descriptions stay in validation", async () => {
  const { ir, diagnostics } = compileSpec("shapes.vlm", spec("text(shapes(images: 200, size: 24, seed: 1, held_out: triples))"));
  assert.ok(ir, diagnostics.map((d) => d.message).join("\n"));
  const call = ir.train!.stages[0]!.data;
  assert.equal(call.kind, "text");
  assert.deepEqual(call.file, { kind: "shapes", images: 200, size: 24, seed: 1, held_out: "triples" });
  const tok = CharTokenizer.fromIr(ir.tokenizer!);
  const data = await loadStageData(call, ir, tok, { baseDir: dir, split: 0.1, seed: 0 });
  assert.equal(data.images, false);
  assert.ok(data.train.every((e) => e.image === null) && data.validation.every((e) => e.image === null));
  // The same captions as the generator's, on the same sides.
  const gen = generateShapes({ images: 200, size: 24, seed: 1, split: 0.1, heldOut: "triples" });
  assert.deepEqual(data.train.map((e) => e.text), gen.train.map((e) => e.caption));
  assert.deepEqual(data.validation.map((e) => e.text), gen.validation.map((e) => e.caption));
  const novel = ["large green circle", "small yellow square", "large red triangle", "small blue circle"];
  assert.ok(data.validation.some((e) => novel.some((n) => e.text.includes(n))), "validation holds the novel descriptions");
  assert.ok(!data.train.some((e) => novel.some((n) => e.text.includes(n))), "no training caption holds one");
  // The room for text is the whole context: no visual tokens precede it.
  assert.equal(data.maxText, 96);
  assert.deepEqual(await data.pixels(data.train.slice(0, 2)), new Float32Array(0));
});

test("text(captions(file)): the inner file is checked (W0504) and its path re-based in the IR", () => {
  const { ir, diagnostics } = compileSpec("captions.vlm", spec('text(captions("data/pairs.jsonl"))'));
  assert.ok(ir);
  assert.deepEqual(
    diagnostics.map((d) => d.code),
    ["W0504"],
  );
  assert.ok(diagnostics[0]!.message.includes("data/pairs.jsonl"));
  const inner = ir.train!.stages[0]!.data.file as IrCall;
  assert.equal(inner.kind, "captions");
  assert.equal(inner.file, "data/pairs.jsonl");
  // A run folder one level down sees the file one level up.
  const moved = rebaseIr(structuredClone(ir), dir, join(dir, "runs"));
  assert.equal((moved.train!.stages[0]!.data.file as IrCall).file, "../data/pairs.jsonl");
});

test("text(...) refuses a source without captions, naming the ones it takes", () => {
  const path = join(dir, "bad.vlm");
  writeFileSync(path, spec("text(instruct(images: 10))"));
  const r = check([path]);
  const e = r.diagnostics.find((d) => d.severity === "error");
  assert.ok(e, "an error");
  assert.equal(e.code, "E0401");
  assert.match(e.message, /a file name or an image-caption source/);
});
