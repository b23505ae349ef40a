// A multi-stage run judged stage by stage: each finished stage's last checkpoint outlives
// pruning, `vlmc eval --checkpoint STAGE` loads it and scores it on that stage's own data (not the
// last stage's), `--stage` picks the data explicitly, a text-only stage has nothing to caption,
// and an unknown stage is a usage error naming the run's stages.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listCheckpoints } from "../runtime/train/checkpoint.js";
import { runVlmc } from "./helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "vlmc-eval-stages-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const SPEC = `vlm 0.1
model staged {
  tokenizer chars { alphabet: " abcdefghilmnoqrstuwy", specials: [pad, bos, eos] }
  encoder vit { image: 16 x 16 x 3, patch: 8, dim: 8, heads: 2, blocks: 0, cls: false, output: patches }
  projector { linear(decoder.dim) }
  decoder gpt { dim: 16, heads: 2, layers: 1, context: 96 }
}
train {
  data: shapes(images: 40, size: 16, seed: 3)
  batch: 4
  stage lm { train: [decoder], data: text(shapes(images: 40, size: 16, seed: 3)), steps: 2, keep: 1 }
  stage align { train: [projector], steps: 2, keep: 1 }
  stage tune { train: [projector, decoder], data: shapes(images: 30, size: 16, seed: 4), steps: 2, keep: 1 }
}
`;

const run = join(dir, "run");

test("training keeps the last checkpoint of every finished stage", () => {
  const spec = join(dir, "staged.vlm");
  writeFileSync(spec, SPEC);
  const r = runVlmc(["train", spec, "--out", run, "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    listCheckpoints(run).map((c) => c.stage),
    ["lm", "align", "tune"],
  );
});

test("vlmc eval --checkpoint STAGE scores that stage's weights on that stage's data", () => {
  assert.ok(existsSync(run), "the run of the previous test");
  const align = runVlmc(["eval", run, "--checkpoint", "align", "--format", "json", "--no-save"]);
  assert.equal(align.code, 0, align.stderr);
  const a = JSON.parse(align.stdout);
  assert.match(a.data, /^shapes\(images: 40, size: 16, seed: 3/);
  assert.match(a.weights, /checkpoints\/align-\d{8}\/weights\.safetensors$/);
  const final = JSON.parse(runVlmc(["eval", run, "--format", "json", "--no-save"]).stdout);
  assert.match(final.data, /^shapes\(images: 30, size: 16, seed: 4/);
  // --stage overrides the checkpoint's stage.
  const other = JSON.parse(runVlmc(["eval", run, "--checkpoint", "align", "--stage", "tune", "--format", "json", "--no-save"]).stdout);
  assert.match(other.data, /seed: 4/);
});

test("a text-only stage has nothing to caption; an unknown stage is a usage error", () => {
  const lm = runVlmc(["eval", run, "--stage", "lm", "--no-save"]);
  assert.equal(lm.code, 1);
  assert.match(lm.stderr, /text\(file: shapes\(images: 40, size: 16, seed: 3.*has no images: there is nothing to caption/);
  const nope = runVlmc(["eval", run, "--stage", "nope", "--no-save"]);
  assert.equal(nope.code, 2);
  assert.match(nope.stderr, /the run has no stage `nope`; its stages: `lm`, `align`, `tune`/);
});
