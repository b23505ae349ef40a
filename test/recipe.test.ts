// examples/recipe/recipe.vlm: the seed's four-stage recipe with the frozen pretrained MobileNetV2
// (the folder `npm ci` extracts from nsfwjs). `vlmc summary --format json` lists its stages with
// what each trains and freezes; and the recipe runs end to end on the default backend, shrunk by
// `--set` (fewer pictures, a few steps a stage): every stage trains what it says, the frozen
// encoder's outputs are computed at most once per picture and reused by the later stages, and the run
// leaves each stage's last checkpoint, which `vlmc eval --checkpoint STAGE` scores on that
// stage's data.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listCheckpoints } from "../runtime/train/checkpoint.js";
import { runVlmc } from "./helpers/cli.js";
import { repoPath } from "./helpers/paths.js";

const RECIPE = repoPath("examples", "recipe", "recipe.vlm");
const dir = mkdtempSync(join(tmpdir(), "vlmc-recipe-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("vlmc summary --format json lists the recipe's four stages: what each trains, what stays frozen", () => {
  const r = runVlmc(["summary", RECIPE, "--format", "json"]);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.deepEqual(
    s.stages.map((x: { name: string; train: string[]; frozen: string[] }) => [x.name, x.train, x.frozen]),
    [
      ["lm", ["decoder"], ["encoder", "projector"]],
      ["align", ["projector"], ["encoder", "decoder"]],
      ["tune", ["projector", "decoder"], ["encoder"]],
      ["instruct", ["projector", "decoder"], ["encoder"]],
    ],
  );
  // The pretrained encoder: 36 tokens of 96 channels (MobileNetV2 cut at block_12_add, 96 pixels), no vlmc parameters.
  const enc = s.modules.find((m: { name: string }) => m.name === "encoder");
  assert.deepEqual(enc.output, ["B", 36, 96]);
  assert.equal(enc.params, 0);
  // Its own weights are counted apart: those of model.json's layers up to the cut (in the
  // topological order Keras lists them), read here from the manifest.
  const folder = JSON.parse(readFileSync(repoPath("models", "nsfwjs-mobilenet_v2", "model.json"), "utf8"));
  const names: string[] = folder.modelTopology.model_config.config.layers.map((l: { name: string }) => l.name);
  const upToCut = new Set(names.slice(0, names.indexOf("block_12_add") + 1));
  const weights = (folder.weightsManifest as { weights: { name: string; shape: number[] }[] }[]).flatMap((g) => g.weights);
  const frozen = weights.filter((w) => upToCut.has(w.name.split("/")[0]!)).reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1), 0);
  assert.ok(frozen > 0);
  assert.equal(s.params.pretrained_frozen, frozen);
});

test("the recipe runs its four stages on the default backend, the frozen encoder's outputs computed once", () => {
  const pics = (n: number, rest = "") => `images: ${n}, size: 96, seed: 1, held_out: triples${rest}`;
  const out = join(dir, "run");
  const r = runVlmc([
    "train",
    RECIPE,
    "--out",
    out,
    "--json",
    "--set",
    `train.data=shapes(${pics(40)})`,
    "--set",
    `train.lm.data=text(shapes(${pics(40)}))`,
    "--set",
    `train.instruct.data=instruct(${pics(20)})`,
    ...["lm", "align", "tune", "instruct"].flatMap((s) => ["--set", `train.${s}.steps=3`, "--set", `train.${s}.batch=8`]),
    "--set",
    "train.lm.schedule=constant",
    "--set",
    "train.tune.schedule=constant",
    "--set",
    "train.instruct.schedule=constant",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const events = r.stdout
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
  const stages = events.filter((e) => e.type === "stage");
  assert.deepEqual(
    stages.map((e) => [e.stage, e.train]),
    [
      ["lm", ["decoder"]],
      ["align", ["projector"]],
      ["tune", ["projector", "decoder"]],
      ["instruct", ["projector", "decoder"]],
    ],
  );
  // The shapes pictures are encoded once (in align) and reused by tune; instruct's pictures are its own.
  const metrics = readFileSync(join(out, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .filter((m) => m.encoder);
  const sum = (stage: string, key: "encoded" | "cached") => metrics.filter((m) => m.stage === stage).reduce((a, m) => a + m.encoder[key], 0);
  // 6 steps of 8 in align and tune over the 36 training pictures: each is encoded once at most
  // (the cache fills as the batches come), and tune starts from what align cached.
  assert.equal(sum("align", "encoded"), 24, "align encodes its 3 batches");
  assert.ok(sum("tune", "cached") > 0, "tune reads align's cached outputs");
  assert.ok(sum("align", "encoded") + sum("tune", "encoded") <= 36, "no picture is encoded twice");
  assert.equal(metrics.filter((m) => m.stage === "lm").length, 0, "the text-only stage runs no encoder");
  assert.deepEqual(
    listCheckpoints(out).map((c) => c.stage),
    ["lm", "align", "tune", "instruct"],
  );
  const tune = runVlmc(["eval", out, "--checkpoint", "tune", "--format", "json", "--no-save"]);
  assert.equal(tune.code, 0, tune.stderr);
  assert.match(JSON.parse(tune.stdout).data, /^shapes\(images: 40/);
});
