// `vlmc train` with the `bpe` and `hf` tokenizers, end to end on a tiny model (one step): the BPE
// is trained on the training side of train.data before the first step, deterministically, and
// saved as a Hugging Face tokenizer.json + tokenizer_config.json that `vlmc eval`'s reader loads
// back with the same ids; a resumed run keeps the tokenizer it started with; an `hf` file is
// copied into the run byte for byte, and the run's IR names the copy.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { train, type TrainEvent } from "../compiler/index.js";
import type { Ir, IrBpeTokenizer } from "../compiler/ir/types.js";
import { readRun } from "../runtime/eval/run.js";
import { loadRunTokenizer, trainBpeTokenizer, trainingTexts } from "../runtime/tokenizers/load.js";
import { TOKENIZER_FIXTURES } from "../tools/gen-tokenizer-fixtures.js";

const tmp = () => mkdtempSync(join(tmpdir(), "vlmc-tok-train-"));

function writeSpec(dir: string, tokenizer: string): string {
  const file = join(dir, "m.vlm");
  writeFileSync(
    file,
    `vlm 0.1

model tiny {
  ${tokenizer}
  encoder vit { image: 16 x 16 x 3, patch: 8, dim: 8, heads: 2, blocks: 1, mlp: 16 }
  projector { linear(decoder.dim) }
  decoder gpt { dim: 8, heads: 2, layers: 1, context: 48 }
}

train {
  data: shapes(images: 24, size: 16, seed: 3)
  batch: 4
  seed: 7
  split: 0.25
  stage all { train: [encoder, projector, decoder], steps: 2 }
}
`,
  );
  return file;
}

async function run(spec: string, out: string, options: Parameters<typeof train>[1] = {}) {
  const events: TrainEvent[] = [];
  const r = await train(spec, { out, backend: "wasm", log: () => {}, onEvent: (e) => events.push(e), maxSteps: 1, ...options });
  const notes = events.flatMap((e) => (e.type === "note" ? [e.message] : []));
  return { r, notes };
}

test("a bpe tokenizer is trained on train.data when the run starts, saved as Hugging Face files, and read back", async () => {
  const dir = tmp();
  const spec = writeSpec(dir, "tokenizer bpe { vocab: 300, specials: [pad, bos, eos] }");
  const out = join(dir, "run");
  const { r, notes } = await run(spec, out);
  assert.equal(r.status, "max-steps", r.status === "error" ? r.message : r.status);
  assert.ok(
    notes.some((n) => /^tokenizer: trained a byte-level BPE of \d+ merges on 18 texts/.test(n)),
    notes.join("\n"),
  );
  const saved = readFileSync(join(out, "tokenizer.json"), "utf8");
  const doc = JSON.parse(saved);
  assert.equal(doc.model.type, "BPE");
  assert.deepEqual(JSON.parse(readFileSync(join(out, "tokenizer_config.json"), "utf8")).eos_token, "<|eos|>");

  // The same as training by hand on the training side of the data: deterministic.
  const ir = JSON.parse(readFileSync(join(out, "ir.json"), "utf8")) as Ir;
  assert.equal(ir.tokenizer!.kind, "bpe");
  const texts = await trainingTexts(ir, out);
  assert.equal(texts.length, 18); // 24 images less the validation quarter
  const byHand = trainBpeTokenizer(ir.tokenizer as IrBpeTokenizer, texts);
  assert.equal(byHand.tokenizer.text, saved);

  // vlmc eval's reader: the same ids, bos and eos.
  const back = readRun(out, "last").tokenizer;
  const caption = texts[0]!;
  assert.deepEqual(back.encode(caption), byHand.tokenizer.encode(caption));
  assert.equal(back.decode((back.encode(caption) as { ids: Int32Array }).ids), caption);
  assert.deepEqual([back.pad, back.bos, back.eos, back.size], [0, 1, 2, 300]);

  // Resuming keeps the run's tokenizer: no second training.
  const resumed = await run(spec, out, { resume: true, maxSteps: 2 });
  assert.equal(resumed.r.status, "finished");
  assert.ok(!resumed.notes.some((n) => n.startsWith("tokenizer: trained")), resumed.notes.join("\n"));
  assert.equal(readFileSync(join(out, "tokenizer.json"), "utf8"), saved);
});

test("an hf tokenizer's file is copied into the run; the run's IR names the copy", async () => {
  const dir = tmp();
  copyFileSync(join(TOKENIZER_FIXTURES, "small.tokenizer.json"), join(dir, "tok.json"));
  const spec = writeSpec(dir, 'tokenizer hf { file: "tok.json", specials: tokens(pad: "<|pad|>", bos: "<|bos|>", eos: "<|eos|>") }');
  const out = join(dir, "run");
  const { r } = await run(spec, out);
  assert.equal(r.status, "max-steps", r.status === "error" ? r.message : r.status);
  assert.equal(readFileSync(join(out, "tokenizer.json"), "utf8"), readFileSync(join(dir, "tok.json"), "utf8"));
  const ir = JSON.parse(readFileSync(join(out, "ir.json"), "utf8")) as Ir;
  assert.ok(ir.tokenizer?.kind === "hf");
  assert.equal(ir.tokenizer.file, "tokenizer.json");
  const tok = loadRunTokenizer(out, ir.tokenizer);
  assert.deepEqual([tok.pad, tok.bos, tok.eos], [0, 1, 2]);
  // A file that lost the spec's eos token stops the next run before anything is trained.
  writeFileSync(join(dir, "tok.json"), readFileSync(join(dir, "tok.json"), "utf8").replaceAll('"<|eos|>"', '"<|end|>"'));
  const again = await run(spec, join(dir, "run2"));
  assert.equal(again.r.status, "invalid");
  assert.deepEqual(again.r.diagnostics.map((d) => d.code), ["E0711"]);
  assert.equal(existsSync(join(dir, "run2", "weights.safetensors")), false);
});
