// `decoder gpt { pretrained: "folder" }`: a Hugging Face GPT-2 folder gives the decoder's
// settings (config.json), its weights (model.safetensors) and the model's tokenizer
// (tokenizer.json and the special roles of tokenizer_config.json), none restated. Checked: the
// IR equals the one of the same model written out by hand (`weights:`, `tokenizer hf`), the
// logits equal PyTorch's goldens and, bit for bit, the `weights:` path's; every disagreement
// and broken folder is a diagnostic at the right place; `vlmc train` runs a text stage and an
// image-caption stage from the folder. The folder is test/fixtures/pretrained/gpt2-mini
// (tools/torch/gpt2_folder.py writes it and its goldens); the real checkpoint in
// ../shared/data/hf-gpt2-tiny is compared with its own goldens when present.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type * as tfjs from "@tensorflow/tfjs";
import { compile } from "../compiler/compile.js";
import type { Diagnostic } from "../compiler/diagnostics/diagnostic.js";
import type { Ir } from "../compiler/ir/types.js";
import { folderSpecials } from "../compiler/resolve/tokenizer.js";
import type { PretrainedFolder } from "../compiler/resolve/pretrained.js";
import { initBackend, type Tf } from "../runtime/backend.js";
import { hfGpt2SpecText, loadHfGpt2, loadHfGpt2Values, readHfGpt2Config } from "../runtime/hf-gpt2.js";
import { Model } from "../runtime/model.js";
import { readSafetensors } from "../runtime/safetensors.js";
import { loadWeightsFile } from "../runtime/weights.js";
import { runVlmc } from "./helpers/cli.js";
import { relError } from "./helpers/numeric.js";
import { repoPath } from "./helpers/paths.js";

const TOLERANCE = 1e-4;
const MINI = repoPath("test", "fixtures", "pretrained", "gpt2-mini");
const MINI_GOLDENS = repoPath("test", "fixtures", "pretrained");
const SHARED = repoPath("..", "shared", "data", "hf-gpt2-tiny");
const SHARED_GOLDENS = repoPath("test", "fixtures", "hf-gpt2-tiny");
const noShared = existsSync(join(SHARED, "model.safetensors")) ? false : `${SHARED} is absent (a clone without ../shared)`;

const dir = mkdtempSync(join(tmpdir(), "vlmc-pretrained-"));
after(() => rmSync(dir, { recursive: true, force: true }));

let backend: Promise<Tf> | null = null;
const tfOf = () => (backend ??= initBackend("wasm", { log: () => {} }).then((b) => b.tf));

/** A copy of the mini folder under `dir/name`, changed by `edit` (file -> new text, or null to delete). */
function folderCopy(name: string, edit: Record<string, string | null> = {}): string {
  const to = join(dir, name);
  cpSync(MINI, to, { recursive: true });
  for (const [file, text] of Object.entries(edit)) {
    if (text === null) rmSync(join(to, file));
    else writeFileSync(join(to, file), text);
  }
  return name;
}

const miniConfig = () => JSON.parse(readFileSync(join(MINI, "config.json"), "utf8")) as Record<string, unknown>;

function compileSpec(name: string, text: string): { ir: Ir | null; diagnostics: Diagnostic[]; text: string } {
  const path = join(dir, `${name}.vlm`);
  writeFileSync(path, text);
  const r = compile(path, { baseDir: dir });
  return { ir: r.ir, diagnostics: r.diagnostics, text };
}

function compileOk(name: string, text: string): Ir {
  const r = compileSpec(name, text);
  assert.deepEqual(r.diagnostics.map((d) => `${d.code} ${d.message}`), []);
  return r.ir!;
}

/** `code message @ the text the span covers` for each diagnostic. */
function reported(name: string, text: string): string[] {
  const r = compileSpec(name, text);
  return r.diagnostics.map((d) => `${d.code} ${d.message} @ ${text.slice(d.span.start, d.span.end)}`);
}

const spec = (decoder: string, more = "") => `vlm 0.1\n\nmodel m {\n${more}  decoder gpt { ${decoder} }\n}\n`;
const MINI_AT = JSON.stringify(MINI);

test("the folder gives the settings, the weights and the tokenizer: the IR is the hand-written spec's", () => {
  const ir = compileOk("mini", spec(`pretrained: ${MINI_AT}`));
  // The same model with everything restated, as one wrote it before `pretrained:`.
  const byHand = hfGpt2SpecText(readHfGpt2Config(join(MINI, "config.json")), { model: "m", weights: join(MINI, "model.safetensors") }).replace(
    "model m {\n",
    `model m {\n  tokenizer hf { file: ${JSON.stringify(join(MINI, "tokenizer.json"))}, specials: tokens(bos: "<|endoftext|>", eos: "<|endoftext|>", unk: "<|endoftext|>") }\n`,
  );
  const hand = compileOk("by-hand", byHand);
  assert.equal(ir.hash, hand.hash);
  assert.deepEqual({ ...ir.tokenizer, span: undefined }, { ...hand.tokenizer, span: undefined });
  assert.equal(ir.modules.decoder!.weights, hand.modules.decoder!.weights);
  assert.equal(resolve(dir, ir.modules.decoder!.weights!), join(MINI, "model.safetensors"));
  // What that is: config.json's 408 x 16, 2 blocks, 64 positions; GPT-2's roles for `<|endoftext|>`, no pad.
  assert.deepEqual(ir.modules.decoder!.output, ["B", "T", 408]);
  const t = ir.tokenizer!;
  assert.ok(t.kind === "hf");
  assert.equal(t.size, 408);
  assert.equal(t.sha256, `sha256:${createHash("sha256").update(readFileSync(join(MINI, "tokenizer.json"))).digest("hex")}`);
  assert.deepEqual(t.specials, ["bos", "eos", "unk"]);
  assert.deepEqual(t.special_tokens.eos, { token: "<|endoftext|>", id: 2 });
  const pos = ir.modules.decoder!.layers.find((l) => l.name === "pos_embed")!;
  assert.deepEqual(pos.params[0]!.shape, [64, 16]);
  assert.equal(ir.modules.decoder!.layers.find((l) => l.name === "blocks")!.children!.length, 2);
});

test("settings written beside the folder: agreeing ones pass, a shorter context is taken, soft ones win", () => {
  const ir = compileOk("agree", spec(`pretrained: ${MINI_AT}, vocab: 408, dim: 16, heads: 2, layers: 2, activation: gelu_tanh, norm_eps: 1e-5, context: 24, dropout: 0`));
  assert.deepEqual(ir.modules.decoder!.layers.find((l) => l.name === "pos_embed")!.params[0]!.shape, [24, 16]);
  // config.json's dropouts (0.1) are only a default: `dropout: 0` leaves no dropout layer.
  assert.equal(ir.modules.decoder!.layers.some((l) => l.kind === "dropout"), false);
  assert.equal(compileOk("pdrop", spec(`pretrained: ${MINI_AT}`)).modules.decoder!.layers.some((l) => l.kind === "dropout"), true);
});

test("E0720: a written setting that disagrees with config.json, both values shown, at the written value", () => {
  const text = spec(`pretrained: ${MINI_AT}, dim: 32, context: 65, position: rope`);
  const r = compileSpec("disagree", text);
  const got = r.diagnostics.map((d) => `${d.code} ${d.message} @ ${text.slice(d.span.start, d.span.end)}`);
  assert.deepEqual(got, [
    "E0720 `dim` is 32 here, but the pretrained model's is 16 @ 32",
    "E0720 `context` is 65 here, more than the pretrained model's 64 @ 65",
    'E0720 `position` is "rope" here, but the pretrained model\'s is "learned" @ rope',
  ]);
  const dim = r.diagnostics[0]!;
  assert.equal(text.slice(dim.related[0]!.span.start, dim.related[0]!.span.end), MINI_AT);
  assert.match(dim.related[0]!.label, /`n_embd` in config\.json of .* says 16/);
});

test("E0722: `weights:` beside `pretrained:`", () => {
  assert.deepEqual(reported("both", spec(`pretrained: ${MINI_AT}, weights: "w.safetensors"`)), ['E0722 `weights` cannot be written beside `pretrained:` @ "w.safetensors"']);
});

test("E0721: a folder that is missing, a file, incomplete, invalid or another model", () => {
  const at = (p: string) => spec(`pretrained: ${JSON.stringify(p)}`);
  assert.deepEqual(reported("none", at("nowhere")), ['E0721 model folder `nowhere` not found @ "nowhere"']);
  writeFileSync(join(dir, "a-file"), "x");
  assert.deepEqual(reported("file", at("a-file")), ['E0721 `a-file` is a file, not a model folder @ "a-file"']);
  folderCopy("no-weights", { "model.safetensors": null });
  assert.deepEqual(reported("no-weights", at("no-weights")), ['E0721 model folder `no-weights` has no `model.safetensors` @ "no-weights"']);
  folderCopy("bad-json", { "config.json": "{ n_embd: 16 " });
  const bad = reported("bad-json", at("bad-json"));
  assert.equal(bad.length, 1);
  assert.match(bad[0]!, /^E0721 model folder `bad-json` cannot be read: `config\.json` is not valid JSON: .* @ "bad-json"$/);
  const cases: [string, Record<string, unknown>, string][] = [
    ["llama", { model_type: "llama" }, 'config.json\'s `model_type` is "llama", not "gpt2"'],
    ["classifier", { architectures: ["GPT2ForSequenceClassification"] }, 'config.json\'s `architectures` names "GPT2ForSequenceClassification"; a gpt decoder reads GPT2LMHeadModel or GPT2Model'],
    ["quick-gelu", { activation_function: "quick_gelu" }, "config.json: `activation_function` \"quick_gelu\" has no counterpart in the gpt preset"],
  ];
  for (const [name, change, why] of cases) {
    folderCopy(name, { "config.json": JSON.stringify({ ...miniConfig(), ...change }) });
    const got = reported(name, at(name));
    assert.equal(got.length, 1, got.join("\n"));
    assert.ok(got[0]!.startsWith(`E0721 model folder \`${name}\` is not a Hugging Face GPT-2 checkpoint vlmc can use: ${why}`), got[0]);
  }
});

test("a folder's weights that do not fit its config: E0702/E0703 from the header, at `pretrained:`", () => {
  folderCopy("three-layers", { "config.json": JSON.stringify({ ...miniConfig(), n_layer: 3, n_positions: 80 }) });
  const got = reported("three-layers", spec(`pretrained: "three-layers"`));
  assert.ok(got.includes('E0702 `model.safetensors` has no tensor for `decoder.blocks.2.ln_1.weight` [16] @ "three-layers"'), got.join("\n"));
  assert.ok(got.some((g) => g.startsWith("E0703 `transformer.wpe.weight`") && g.endsWith('@ "three-layers"')), got.join("\n"));
});

test("the tokenizer: the folder's unless one is written; its size against vocab_size", () => {
  // No tokenizer.json and no tokenizer section: the implicit tokenizer says what is missing.
  folderCopy("no-tokenizer", { "tokenizer.json": null });
  assert.deepEqual(reported("no-tok", spec(`pretrained: "no-tokenizer"`)), ['E0721 model folder `no-tokenizer` has no `tokenizer.json` @ "no-tokenizer"']);
  // A written tokenizer of the same vocabulary is used instead.
  const tok = `  tokenizer hf { file: ${JSON.stringify(join(MINI, "tokenizer.json"))}, specials: tokens(pad: "<|pad|>", eos: "<|endoftext|>") }\n`;
  const ir = compileOk("written-tok", spec(`pretrained: "no-tokenizer"`, tok));
  assert.deepEqual(ir.tokenizer!.specials, ["pad", "eos"]);
  // One of another size: E0307 at the folder, which set the vocabulary.
  assert.deepEqual(reported("chars-tok", spec(`pretrained: ${MINI_AT}`, `  tokenizer chars { alphabet: "abc" }\n`)), [
    `E0307 the pretrained decoder's vocabulary of 408 (\`vocab_size\` in config.json) does not match the tokenizer's 6 tokens @ ${MINI_AT}`,
  ]);
  // `specials` written in a folder's tokenizer win over its files.
  const own = compileOk("own-specials", spec(`pretrained: ${MINI_AT}`, `  tokenizer hf { pretrained: ${MINI_AT}, specials: tokens(pad: "<|pad|>", bos: "<|bos|>") }\n`));
  assert.deepEqual(own.tokenizer!.specials, ["pad", "bos"]);
});

test("special roles from tokenizer_config.json ({ content } or a string), else special_tokens_map.json", () => {
  const files: Record<string, unknown> = {
    "tokenizer_config.json": { bos_token: { content: "<s>", lstrip: false }, eos_token: "</s>" },
    "special_tokens_map.json": { eos_token: "<ignored>", pad_token: "<pad>", unk_token: { content: "<unk>" } },
  };
  const folder: PretrainedFolder = { written: "f", path: "/f", file: (n) => `f/${n}`, has: (n) => n in files, json: (n) => files[n] };
  assert.deepEqual(folderSpecials(folder), { call: "tokens", args: { pad: "<pad>", bos: "<s>", eos: "</s>", unk: "<unk>" } });
});

test("a model that extends one and overrides `decoder.pretrained` takes the new folder's tokenizer", () => {
  folderCopy("with-pad", { "tokenizer_config.json": JSON.stringify({ eos_token: "<|endoftext|>", pad_token: "<|pad|>" }) });
  const ir = compileOk("extends", `vlm 0.1\n\nmodel a {\n  decoder gpt { pretrained: ${MINI_AT} }\n}\nmodel b extends a {\n  decoder.pretrained: "with-pad"\n}\n`);
  assert.equal(ir.model, "b");
  // pad and eos from tokenizer_config.json, bos and unk from special_tokens_map.json.
  assert.deepEqual(ir.tokenizer!.specials, ["pad", "bos", "eos", "unk"]);
  assert.deepEqual(ir.tokenizer!.kind === "hf" && ir.tokenizer!.special_tokens.pad, { token: "<|pad|>", id: 0 });
  assert.equal(resolve(dir, ir.modules.decoder!.weights!), join(dir, "with-pad", "model.safetensors"));
});

interface Case {
  tokens: number[][];
  columns: number[];
}

/**
 * The logits of the `pretrained:` model, loaded as `vlmc train` loads a module's weights, against
 * PyTorch's goldens, and bit for bit against the same checkpoint given as `weights:`.
 */
async function logitsAgree(t: { diagnostic(m: string): void }, folder: string, goldens: string, name: string): Promise<void> {
  const c = JSON.parse(readFileSync(join(goldens, "case.json"), "utf8")) as Case;
  const g = readSafetensors(join(goldens, "golden.safetensors"));
  assert.ok(g.ok);
  const golden = (n: string) => g.tensors.get(n)!.data as Float32Array;
  const ir = compileOk(`${name}-pretrained`, spec(`pretrained: ${JSON.stringify(folder)}`));
  const written = compileOk(`${name}-weights`, hfGpt2SpecText(readHfGpt2Config(join(folder, "config.json")), { model: "m", weights: join(folder, "model.safetensors") }).replace("model m {\n", `model m {\n  tokenizer hf { file: ${JSON.stringify(join(folder, "tokenizer.json"))} }\n`));
  const tf = await tfOf();
  const [B, T] = [c.tokens.length, c.tokens[0]!.length];
  const run = (model: Model) => {
    const tokens = tf.tensor(c.tokens.flat(), [B, T], "int32");
    const targets = tf.tensor(c.tokens.flatMap((row) => [...row.slice(1), 0]), [B, T], "int32");
    const mask = tf.tensor(c.tokens.flatMap(() => [...new Array<number>(T - 1).fill(1), 0]), [B, T]);
    const logits = model.forward(null, tokens, { training: false, checkShapes: true });
    const lse = (tf.logSumExp(logits, -1) as tfjs.Tensor).dataSync() as Float32Array;
    const loss = model.loss(logits, targets, mask).dataSync() as Float32Array;
    const all = (logits.dataSync() as Float32Array).slice();
    tf.dispose([tokens, targets, mask, logits]);
    return { all, lse, loss };
  };
  // One model at a time: tfjs names variables globally.
  const model = Model.create(tf, ir, 0);
  let got: ReturnType<typeof run>;
  try {
    const warnings: string[] = [];
    loadWeightsFile(model, resolve(dir, ir.modules.decoder!.weights!), "decoder", (w) => warnings.push(w.message));
    assert.deepEqual(warnings, []);
    got = run(model);
  } finally {
    model.dispose();
  }
  const V = ir.modules.decoder!.output[2] as number;
  const last = new Float32Array(B * V);
  for (let b = 0; b < B; b++) last.set(got.all.subarray((b * T + T - 1) * V, (b * T + T) * V), b * V);
  const cols = new Float32Array(B * T * c.columns.length);
  for (let i = 0; i < B * T; i++) c.columns.forEach((col, j) => (cols[i * c.columns.length + j] = got.all[i * V + col]!));
  const errors = {
    logits_last: relError(last, golden("logits_last")),
    logsumexp: relError(got.lse, golden("logsumexp")),
    logits_columns: relError(cols, golden("logits_columns")),
    loss: relError(got.loss, golden("loss")),
  };
  t.diagnostic(`relative errors against PyTorch: ${JSON.stringify(errors)}`);
  for (const [k, e] of Object.entries(errors)) assert.ok(e < TOLERANCE, `${k}: relative error ${e} (${JSON.stringify(errors)})`);
  // The same checkpoint through `weights:`: the same numbers exactly.
  const other = Model.create(tf, written, 1);
  try {
    const r = loadHfGpt2(other, join(folder, "model.safetensors"));
    assert.ok(r.ok);
    const theirs = run(other);
    assert.ok(got.all.every((v, i) => v === theirs.all[i]), "the pretrained: and weights: paths give different logits");
  } finally {
    other.dispose();
  }
}

test("logits of the pretrained: decoder equal PyTorch's goldens and the weights: path's (gpt2-mini)", async (t) => {
  const g = readSafetensors(join(MINI_GOLDENS, "golden.safetensors"));
  assert.ok(g.ok);
  assert.equal(g.header.metadata.model_sha256, createHash("sha256").update(readFileSync(join(MINI, "model.safetensors"))).digest("hex"), "the folder changed: rerun /usr/bin/python3 tools/torch/gpt2_folder.py");
  await logitsAgree(t, MINI, MINI_GOLDENS, "mini");
});

test("logits of the pretrained: decoder equal PyTorch's goldens and the weights: path's (the real hf-gpt2-tiny)", { skip: noShared }, async (t) => {
  await logitsAgree(t, SHARED, SHARED_GOLDENS, "shared");
});

test("vlmc train: an image-caption stage with the pretrained decoder frozen, then a text stage; vlmc eval", () => {
  const data = join(dir, "train");
  mkdirSync(data, { recursive: true });
  cpSync(MINI, join(data, "gpt2"), { recursive: true });
  cpSync(repoPath("test", "fixtures", "tokenizers", "corpus.txt"), join(data, "corpus.txt"));
  writeFileSync(
    join(data, "cap.vlm"),
    `vlm 0.1

model cap {
  encoder vit { image: 16 x 16 x 3, patch: 8, dim: 8, heads: 2, blocks: 1, cls: false, output: patches }
  projector { linear(decoder.dim) }
  decoder gpt { pretrained: "gpt2", context: 32 }
}
train {
  data: shapes(images: 24, size: 16, seed: 3)
  batch: 4
  stage align { train: [encoder, projector], steps: 2 }
  stage lm { train: [decoder], data: text("corpus.txt"), steps: 2 }
}
`,
  );
  const run = join(data, "run");
  const r = runVlmc(["train", join(data, "cap.vlm"), "--out", run, "--quiet", "--backend", "wasm"]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal(readFileSync(join(run, "tokenizer.json"), "utf8"), readFileSync(join(MINI, "tokenizer.json"), "utf8"));
  // The decoder the first stage froze is the folder's, value for value (wpe: its first 32 rows).
  const decoderOf = (file: string) => {
    const f = readSafetensors(file);
    assert.ok(f.ok);
    return new Map([...f.tensors].filter(([n]) => n.startsWith("decoder.")).map(([n, t]) => [n, { shape: t.shape, data: t.data as Float32Array }]));
  };
  const aligned = decoderOf(join(run, "checkpoints", "align-00000002", "weights.safetensors"));
  const folder = loadHfGpt2Values(join(MINI, "model.safetensors"), [...aligned].map(([name, t]) => ({ name, shape: t.shape })));
  assert.ok(folder.ok);
  assert.equal(folder.values.size, aligned.size);
  for (const [name, values] of folder.values) assert.deepEqual(aligned.get(name)!.data, values, name);
  // The text stage then trained it.
  const final = decoderOf(join(run, "weights.safetensors"));
  assert.notDeepEqual(final.get("decoder.ln_f.weight")!.data, aligned.get("decoder.ln_f.weight")!.data);
  // Scored from the run folder alone, on the image stage's data.
  const ev = runVlmc(["eval", run, "--stage", "align", "--backend", "wasm"]);
  assert.equal(ev.code, 0, ev.stderr + ev.stdout);
  assert.match(ev.stdout, /perplexity/);
});
