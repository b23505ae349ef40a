// `vlmc export --format tfjs` of a model whose encoder is a pretrained tfjs folder (the
// MobileNetV2 `npm ci` extracts): the folder's files travel in the export under pretrained/NAME/
// (its weights are not parameters, so not in the shards), the exported IR points there, and the
// export read back from another place, with no run folder beside it, gives the run's logits.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBackend } from "../runtime/backend.js";
import { readRun } from "../runtime/eval/run.js";
import { exportTfjs, loadTfjsExport } from "../runtime/export/tfjs.js";
import { Model } from "../runtime/model.js";
import { CharTokenizer } from "../runtime/tokenizer.js";
import { assignValues } from "../runtime/weights.js";
import { makeRandomRun } from "./helpers/random-run.js";
import { repoPath } from "./helpers/paths.js";

const dir = mkdtempSync(join(tmpdir(), "vlmc-export-tfjs-pretrained-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const ALPHABET = " abcdefghilmnoqrstuwy";
const tok = new CharTokenizer({ alphabet: ALPHABET, specials: ["pad", "bos", "eos"] });
const SPEC = `vlm 0.1
model mob {
  tokenizer chars { alphabet: "${ALPHABET}", specials: [pad, bos, eos] }
  encoder tfjs { model: "nsfwjs-mobilenet_v2", layer: "block_2_add", image: 32 x 32 x 3 }
  projector { linear(decoder.dim) }
  decoder gpt { dim: 16, heads: 2, layers: 1, context: 96 }
}
train {
  data: shapes(images: 64, size: 32, seed: 3)
  stage all { train: [projector, decoder], steps: 1 }
}
`;

test("a pretrained tfjs encoder's folder travels in the export, which runs on its own", async () => {
  const { run, values } = makeRandomRun(dir, "mob", SPEC, 5, tok);
  const out = join(dir, "export");
  const r = exportTfjs(readRun(run), out);
  // The encoder's files, byte for byte, beside the model's shards.
  const src = repoPath("models", "nsfwjs-mobilenet_v2");
  for (const f of ["model.json", "group1-shard1of1.bin"]) {
    assert.ok(r.files.includes(`pretrained/nsfwjs-mobilenet_v2/${f}`), r.files.join(", "));
    assert.deepEqual(readFileSync(join(out, "pretrained", "nsfwjs-mobilenet_v2", f)), readFileSync(join(src, f)));
  }
  const topology = JSON.parse(readFileSync(join(out, "model.json"), "utf8")).modelTopology;
  assert.equal(topology.modules.encoder.layers[0].attrs.weights, "pretrained/nsfwjs-mobilenet_v2");
  assert.ok(r.notes.some((n) => n.includes("E0801")), "no module for a tfjs encoder, and a note says so");

  // Moved elsewhere, away from the run: it loads and gives the run's logits.
  const moved = join(dir, "elsewhere", "export");
  cpSync(out, moved, { recursive: true });
  rmSync(out, { recursive: true });
  const tf = (await initBackend("wasm", { log: () => {} })).tf;
  const back = await loadTfjsExport(tf, moved);
  assert.ok(back.ir.modules.encoder!.layers[0]!.attrs.weights!.toString().startsWith(moved));
  const images = tf.randomUniform([2, 32, 32, 3], 0, 1, "float32", 7);
  const tokens = tf.tensor([[1, 4, 5, 6], [1, 7, 8, 9]], [2, 4], "int32");
  // One model at a time: tfjs names variables globally.
  const logits = (model: Model, vals: Map<string, Float32Array>): Float32Array => {
    try {
      assignValues(model, vals);
      const y = model.forward(images, tokens, { training: false });
      const data = (y.dataSync() as Float32Array).slice();
      y.dispose();
      return data;
    } finally {
      model.dispose();
    }
  };
  const want = logits(Model.create(tf, readRun(run).ir, 0, { baseDir: run }), values);
  const got = logits(Model.create(tf, back.ir, 0), back.values);
  assert.deepEqual(got, want);
  tf.dispose([images, tokens]);

  // A changed bundled file is refused, naming it.
  const shard = join(moved, "pretrained", "nsfwjs-mobilenet_v2", "group1-shard1of1.bin");
  const bytes = readFileSync(shard);
  bytes[100] = bytes[100]! ^ 1;
  writeFileSync(shard, bytes);
  await assert.rejects(loadTfjsExport(tf, moved), /group1-shard1of1\.bin has changed/);
  assert.ok(existsSync(moved));
});
