// `vlmc export --format hf` (runtime/export/hf.ts) against the GPT-2 import it inverts
// (runtime/hf-gpt2.ts): a run folder with random weights (every parameter random, biases and
// LayerNorm included, so a tensor put in the wrong place shows) is exported, the folder is read
// back the way any Hugging Face GPT-2 checkpoint is (its config.json as a `decoder gpt` spec, its
// model.safetensors loaded by Hugging Face names), and the logits must be bit-equal to the
// original model's on the same tokens, same backend. Decoders GPT-2 cannot express are refused
// naming each misfit, with nothing written; a missing run folder is a usage error.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile } from "../compiler/compile.js";
import type { Ir, IrBpeTokenizer } from "../compiler/ir/types.js";
import { irToJson } from "../compiler/ir/yaml.js";
import { initBackend, type Tf } from "../runtime/backend.js";
import { hfGpt2SpecText, loadHfGpt2, readHfGpt2Config } from "../runtime/hf-gpt2.js";
import { initValues, irParams, Model } from "../runtime/model.js";
import { uniform01 } from "../runtime/random.js";
import { encodeSafetensors, METADATA_HASH, readSafetensorsHeader } from "../runtime/safetensors.js";
import { CharTokenizer } from "../runtime/tokenizer.js";
import { saveRunTokenizer, trainBpeTokenizer } from "../runtime/tokenizers/load.js";
import { assignValues } from "../runtime/weights.js";
import { runVlmc } from "./helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "vlmc-export-hf-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const ALPHABET = " abcdefghilmnoqrstuwy";
const tok = new CharTokenizer({ alphabet: ALPHABET, specials: ["pad", "bos", "eos"] });

function spec(decoder: string): string {
  return `vlm 0.1
model tiny {
  tokenizer chars { alphabet: "${ALPHABET}", specials: [pad, bos, eos] }
  decoder ${decoder}
}
train {
  data: shapes(images: 64, size: 16, seed: 3)
  stage all { train: [decoder], steps: 1 }
}
`;
}

function compileText(name: string, text: string): Ir {
  const path = join(dir, `${name}.vlm`);
  writeFileSync(path, text);
  const { ir, diagnostics } = compile(path, { baseDir: dir });
  assert.ok(ir, diagnostics.map((d) => `${d.code} ${d.message}`).join("\n"));
  assert.deepEqual(diagnostics.filter((d) => d.severity === "error"), []);
  return ir;
}

/** A run folder as `vlmc train` leaves it, with random weights; returns them too. */
function makeRun(name: string, decoder: string, seed: number): { run: string; ir: Ir; values: Map<string, Float32Array> } {
  const run = join(dir, name);
  mkdirSync(run, { recursive: true });
  const ir = compileText(name, spec(decoder));
  writeFileSync(join(run, "ir.json"), irToJson(ir));
  writeFileSync(join(run, "tokenizer.json"), JSON.stringify(tok.toJSON()));
  const rand = uniform01(seed);
  const values = new Map(irParams(ir).map((p) => [p.name, Float32Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => (rand() - 0.5) * 0.5)]));
  const tensors = irParams(ir).map((p) => ({ name: p.name, dtype: "F32" as const, shape: p.shape, data: values.get(p.name)! }));
  writeFileSync(join(run, "weights.safetensors"), encodeSafetensors(tensors, { [METADATA_HASH]: ir.hash }));
  return { run, ir, values };
}

let backend: Promise<Tf> | null = null;
const tfOf = () => (backend ??= initBackend("wasm", { log: () => {} }).then((b) => b.tf));

async function logits(model: Model, tokens: number[][]): Promise<Float32Array> {
  const tf = await tfOf();
  const t = tf.tensor(tokens.flat(), [tokens.length, tokens[0]!.length], "int32");
  const out = model.forward(null, t, { training: false, checkShapes: true });
  const data = (out.dataSync() as Float32Array).slice();
  tf.dispose([t, out]);
  return data;
}

const CASES = [
  { name: "tied", decoder: "gpt { dim: 8, heads: 2, layers: 2, context: 24 }", tied: true },
  { name: "untied", decoder: "gpt { dim: 12, heads: 3, layers: 2, context: 20, mlp: 20, activation: gelu, norm_eps: 1e-6, tie_embeddings: false }", tied: false },
  { name: "unscaled", decoder: "gpt { dim: 8, heads: 1, layers: 1, context: 16, attention_scale: 1, tie_embeddings: false }", tied: false },
];

for (const c of CASES) {
  test(`export -> the GPT-2 import path gives bit-equal logits: ${c.name}`, async () => {
    const { run, ir, values } = makeRun(c.name, c.decoder, 7);
    const r = runVlmc(["export", "--run", run, "--format", "hf"]);
    assert.equal(r.code, 0, r.stderr);
    const out = join(run, "export", "hf");
    assert.match(r.stdout, /^exported .*export\/hf: GPT-2/);
    assert.match(r.stdout, /note: the run's tokenizer is a character vocabulary, which has no Hugging Face tokenizer\.json equivalent/);
    assert.ok(!existsSync(join(out, "tokenizer.json")));
    // vocab.json: every id's token, as the run's tokenizer has it.
    const vocab = JSON.parse(readFileSync(join(out, "vocab.json"), "utf8")) as Record<string, number>;
    assert.equal(Object.keys(vocab).length, tok.size);
    for (const [t, id] of Object.entries(vocab)) assert.equal(tok.token(id), t);

    const config = readHfGpt2Config(join(out, "config.json"));
    assert.equal(config.tie_word_embeddings, c.tied);
    const cfg = config as unknown as Record<string, unknown>;
    assert.deepEqual([cfg.bos_token_id, cfg.eos_token_id], [tok.bos, tok.eos]);
    const header = readSafetensorsHeader(join(out, "model.safetensors"));
    assert.ok(header.ok);
    const names = header.header.tensors.map((t) => t.name);
    assert.equal(names.includes("lm_head.weight"), !c.tied);
    assert.ok(names.includes("transformer.h.0.attn.c_attn.weight"));

    // Two models cannot hold variables of the same names at once: the original runs first.
    const tf = await tfOf();
    const ids = [tok.encode("a red circle", { bos: true, eos: true }), tok.encode("the blue squares", { bos: true, eos: false })].map((e) => (e.ok ? Array.from(e.ids.slice(0, 12)) : assert.fail("encode")));
    const original = Model.create(tf, ir, 0);
    let a: Float32Array;
    const params = new Map<string, Float32Array>();
    try {
      assignValues(original, values);
      for (const [name, v] of original.variables) params.set(name, (v.dataSync() as Float32Array).slice());
      a = await logits(original, ids);
    } finally {
      original.dispose();
    }
    const back = Model.create(tf, compileText(`${c.name}-back`, hfGpt2SpecText(config)), 1);
    try {
      const loaded = loadHfGpt2(back, join(out, "model.safetensors"));
      assert.ok(loaded.ok, JSON.stringify(!loaded.ok && loaded.problems));
      assert.deepEqual(loaded.warnings, []);
      // Every parameter came back exactly (the wrong third of c_attn, or a missed transpose, shows here first).
      assert.deepEqual([...back.variables.keys()].sort(), [...params.keys()].sort());
      for (const [name, v] of params) assert.deepEqual(back.variables.get(name)!.dataSync(), v, name);
      const b = await logits(back, ids);
      assert.equal(a.length, 2 * 12 * tok.size);
      assert.deepEqual(b, a);
    } finally {
      back.dispose();
    }
  });
}

test("a bpe run's tokenizer.json and tokenizer_config.json go into the export as they are", () => {
  const name = "bpe";
  const run = join(dir, name);
  mkdirSync(run, { recursive: true });
  const ir = compileText(name, spec("gpt { dim: 8, heads: 2, layers: 1, context: 16 }").replace(/tokenizer chars \{[^}]*\}/, "tokenizer bpe { vocab: 300, specials: [pad, bos, eos] }"));
  writeFileSync(join(run, "ir.json"), irToJson(ir));
  assert.equal(ir.tokenizer?.kind, "bpe");
  saveRunTokenizer(run, trainBpeTokenizer(ir.tokenizer as IrBpeTokenizer, ["a red circle", "a blue square", "a red square"]).tokenizer);
  const tensors = irParams(ir).map((p) => ({ name: p.name, dtype: "F32" as const, shape: p.shape, data: initValues(p, 2) }));
  writeFileSync(join(run, "weights.safetensors"), encodeSafetensors(tensors, { [METADATA_HASH]: ir.hash }));
  const out = join(dir, "out-bpe");
  const r = runVlmc(["export", "--run", run, "--format", "hf", "--out", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /character vocabulary/);
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) assert.equal(readFileSync(join(out, f), "utf8"), readFileSync(join(run, f), "utf8"), f);
  assert.ok(!existsSync(join(out, "vocab.json")));
  assert.equal(readHfGpt2Config(join(out, "config.json")).vocab_size, 300);
});

test("a decoder GPT-2 cannot express is refused naming each misfit, and nothing is written", () => {
  const cases = [
    // (a `llama` decoder is exported as Llama instead: test/export-llama.test.ts)
    { name: "unplaced", decoder: "gpt { dim: 8, heads: 2, layers: 1, context: 16, position: none }", want: ["no learned position table"] },
    { name: "relu", decoder: "gpt { dim: 8, heads: 2, layers: 1, context: 16, activation: relu, head_bias: true }", want: ["`decoder.blocks.0.mlp` uses `relu`", "has a bias"] },
    { name: "rope", decoder: "gpt { dim: 8, heads: 2, layers: 1, context: 16, position: rope, bias: false }", want: ["rotary positions", "no output bias"] },
  ];
  for (const c of cases) {
    const { run } = makeRun(`bad-${c.name}`, c.decoder, 1);
    const out = join(dir, `out-${c.name}`);
    const r = runVlmc(["export", run, "--format", "hf", "--out", out]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^vlmc: error: the decoder of `tiny` cannot be written as a Hugging Face GPT-2 checkpoint:\n/);
    for (const w of c.want) assert.ok(r.stderr.includes(w), `${c.name}: ${w} not in\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    assert.ok(!existsSync(out), `${out} was written`);
  }
});

test("a missing run folder, or no --format, is a usage error", () => {
  const r = runVlmc(["export", "--run", join(dir, "nope"), "--format", "hf"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /nope: no such run folder/);
  assert.equal(runVlmc(["export", "--run", join(dir, "nope")]).code, 2);
  assert.equal(runVlmc(["export", "--run", join(dir, "nope"), "--format", "onnx"]).code, 2);
});
