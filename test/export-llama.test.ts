// `vlmc export --format hf` of a `llama` decoder (runtime/export/llama.ts) and the Llama import it
// inverts (runtime/hf-llama.ts), checked two ways:
//  - against Hugging Face's meaning: the checkpoints under test/fixtures/export/llama-*/ were
//    exported from tiny seeded runs (tools/gen-llama-export-fixtures.ts), and
//    tools/torch/hf_llama.py, a hand-written PyTorch forward after transformers' modeling_llama
//    (rotate_half, RMSNorm in float32, repeat_kv), wrote their logits; vlmc loads each folder as
//    `decoder llama { weights: ... }` (config.json turned into the spec) and must agree within
//    1e-4 relative. A wrong transpose, a q/k row permutation, or another rotary pairing shows.
//  - against itself: a run with random weights is exported by the CLI and loaded back, with
//    bit-equal logits on the same backend.
// Also: check-time validation of a Llama file against a spec (E0702/E0703, W0701), decoders the
// Llama layout cannot express (refused naming each misfit, nothing written), `--context`.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { check } from "../compiler/check.js";
import type { Ir } from "../compiler/ir/types.js";
import { initBackend, type Tf } from "../runtime/backend.js";
import { hfLlamaSpecText, loadHfLlama, readHfLlamaConfig } from "../runtime/hf-llama.js";
import { Model } from "../runtime/model.js";
import { readSafetensors, readSafetensorsHeader } from "../runtime/safetensors.js";
import { CharTokenizer } from "../runtime/tokenizer.js";
import { assignValues } from "../runtime/weights.js";
import { runVlmc } from "./helpers/cli.js";
import { relError } from "./helpers/numeric.js";
import { compileText as compileTextIn, makeRandomRun } from "./helpers/random-run.js";
import { repoPath } from "./helpers/paths.js";

const dir = mkdtempSync(join(tmpdir(), "vlmc-export-llama-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const ALPHABET = " abcdefghilmnoqrstuwy";
const tok = new CharTokenizer({ alphabet: ALPHABET, specials: ["pad", "bos", "eos"] });

function spec(decoder: string, extra = ""): string {
  return `vlm 0.1
model tiny {
  tokenizer chars { alphabet: "${ALPHABET}", specials: [pad, bos, eos] }
${extra}  decoder ${decoder}
}
train {
  data: shapes(images: 64, size: 16, seed: 3)
  stage all { train: [${extra ? "encoder, projector, " : ""}decoder], steps: 1 }
}
`;
}

const compileText = (name: string, text: string): Ir => compileTextIn(dir, name, text);
const makeRun = (name: string, text: string, seed: number) => makeRandomRun(dir, name, text, seed, tok);

let backend: Promise<Tf> | null = null;
const tfOf = () => (backend ??= initBackend("wasm", { log: () => {} }).then((b) => b.tf));

async function logits(model: Model, tokens: number[][], images: number[] | null = null): Promise<Float32Array> {
  const tf = await tfOf();
  const t = tf.tensor(tokens.flat(), [tokens.length, tokens[0]!.length], "int32");
  const enc = model.ir.modules.encoder;
  const img = images && enc ? tf.tensor(images, [tokens.length, ...(enc.input.slice(1) as number[])]) : null;
  const out = model.forward(img, t, { training: false, checkShapes: true });
  const data = (out.dataSync() as Float32Array).slice();
  tf.dispose([t, out, ...(img ? [img] : [])]);
  return data;
}

const FIXTURES = readdirSync(repoPath("test", "fixtures", "export")).filter((f) => f.startsWith("llama-")).sort();

test("the fixtures cover grouped key/value heads, an untied and a tied head", () => {
  assert.deepEqual(FIXTURES, ["llama-gqa", "llama-tied"]);
  const configs = FIXTURES.map((f) => readHfLlamaConfig(repoPath("test", "fixtures", "export", f, "config.json")));
  assert.ok(configs.some((c) => c.num_key_value_heads! < c.num_attention_heads && c.tie_word_embeddings === false));
  assert.ok(configs.some((c) => c.tie_word_embeddings === true));
});

for (const name of FIXTURES) {
  test(`an exported Llama checkpoint gives PyTorch's LlamaForCausalLM logits (hf_llama.py): ${name}`, async () => {
    const folder = repoPath("test", "fixtures", "export", name);
    const config = readHfLlamaConfig(join(folder, "config.json"));
    const tokens = (JSON.parse(readFileSync(join(folder, "case.json"), "utf8")) as { tokens: number[][] }).tokens;
    const golden = readSafetensors(join(folder, "golden.safetensors"));
    assert.ok(golden.ok);
    const want = golden.tensors.get("logits")!;
    assert.deepEqual(want.shape, [tokens.length, tokens[0]!.length, config.vocab_size]);
    // The checkpoint as any Llama checkpoint is used: its config.json as the spec, its file as `weights:`.
    const weights = join(folder, "model.safetensors");
    const ir = compileText(`golden-${name}`, hfLlamaSpecText(config, { model: "golden", weights }));
    const tf = await tfOf();
    const model = Model.create(tf, ir, 0);
    try {
      const r = loadHfLlama(model, weights);
      assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
      assert.deepEqual(r.warnings, []);
      const got = await logits(model, tokens);
      const err = relError(got, want.data as Float32Array);
      assert.ok(err < 1e-4, `max|vlmc - torch| / max|torch| = ${err}`);
      // The control: the same weights with each head's query/key features in Meta's interleaved
      // rotary order (the permutation convert_llama_weights_to_hf.py undoes) must not agree.
      const hd = config.hidden_size / config.num_attention_heads;
      const interleave = (name: string) => {
        const v = model.variables.get(name)!;
        const [rows, cols] = v.shape as [number, number];
        const src = v.dataSync() as Float32Array;
        const out = new Float32Array(src.length);
        // Column h*hd + j (rotate_half order: j < hd/2 first halves) -> h*hd + 2j or 2(j - hd/2) + 1.
        for (let c = 0; c < cols; c++) {
          const h = Math.floor(c / hd);
          const j = c % hd;
          const to = h * hd + (j < hd / 2 ? 2 * j : 2 * (j - hd / 2) + 1);
          for (let r = 0; r < rows; r++) out[r * cols + to] = src[r * cols + c]!;
        }
        return [name, out] as [string, Float32Array];
      };
      assignValues(model, [...model.variables.keys()].filter((n) => /attn\.[qk]\.weight$/.test(n)).map(interleave));
      const wrong = relError(await logits(model, tokens), want.data as Float32Array);
      assert.ok(wrong > 100 * Math.max(err, 1e-7), `interleaved rotary pairs agree too (${wrong} vs ${err})`);
    } finally {
      model.dispose();
    }
  });
}

const CASES = [
  { name: "gqa", decoder: "llama { dim: 16, heads: 4, kv_heads: 2, layers: 2, context: 24, hidden: 24, rope_base: 1000 }", tied: false },
  { name: "tied", decoder: "llama { dim: 8, heads: 2, layers: 1, context: 16, hidden: 16, tie_embeddings: true, norm_eps: 1e-5 }", tied: true },
];

for (const c of CASES) {
  test(`export -> the Llama import gives bit-equal logits: ${c.name}`, async () => {
    const { run, ir, values } = makeRun(c.name, spec(c.decoder), 9);
    const r = runVlmc(["export", "--run", run, "--format", "hf", "--context", "64"]);
    assert.equal(r.code, 0, r.stderr);
    const out = join(run, "export", "hf");
    assert.match(r.stdout, /^exported .*export\/hf: Llama with /);
    assert.match(r.stdout, /note: the run's tokenizer is a character vocabulary/);
    const config = readHfLlamaConfig(join(out, "config.json"));
    const cfg = config as unknown as Record<string, unknown>;
    assert.equal(config.tie_word_embeddings, c.tied);
    assert.equal(config.max_position_embeddings, 64);
    assert.deepEqual([cfg.architectures, cfg.hidden_act, cfg.bos_token_id, cfg.eos_token_id], [["LlamaForCausalLM"], "silu", tok.bos, tok.eos]);
    const header = readSafetensorsHeader(join(out, "model.safetensors"));
    assert.ok(header.ok);
    const names = new Map(header.header.tensors.map((t) => [t.name, t.shape]));
    assert.equal(names.has("lm_head.weight"), !c.tied);
    // nn.Linear layouts: k_proj is [kv_heads * head_dim, hidden].
    const kvw = (config.num_key_value_heads! * config.hidden_size) / config.num_attention_heads;
    assert.deepEqual(names.get("model.layers.0.self_attn.k_proj.weight"), [kvw, config.hidden_size]);
    assert.deepEqual(names.get("model.layers.0.mlp.down_proj.weight"), [config.hidden_size, config.intermediate_size]);

    const tf = await tfOf();
    const ids = ["a red circle", "the blue squares"].map((s) => {
      const e = tok.encode(s, { bos: true, eos: false });
      return e.ok ? Array.from(e.ids.slice(0, 12)) : assert.fail("encode");
    });
    const original = Model.create(tf, ir, 0);
    let a: Float32Array;
    try {
      assignValues(original, values);
      a = await logits(original, ids);
    } finally {
      original.dispose();
    }
    // Loaded back as a Llama checkpoint is: config.json as the spec, the file as `weights:`, which
    // `vlmc check` validates from its header alone.
    const weights = join(out, "model.safetensors");
    const backIr = compileText(`${c.name}-back`, hfLlamaSpecText(config, { weights }));
    const back = Model.create(tf, backIr, 1);
    try {
      const loaded = loadHfLlama(back, weights);
      assert.ok(loaded.ok, JSON.stringify(!loaded.ok && loaded.problems));
      for (const [name, v] of values) assert.deepEqual(back.variables.get(name)!.dataSync(), v, name);
      assert.deepEqual(await logits(back, ids), a);
    } finally {
      back.dispose();
    }
  });
}

test("a vision model's llama decoder is exported alone, with a note", () => {
  const encoder = "  encoder vit { image: 16 x 16 x 3, patch: 8, dim: 8, heads: 2, blocks: 1 }\n  projector { linear(decoder.dim) }\n";
  const { run } = makeRun("vision", spec("llama { dim: 8, heads: 2, layers: 1, context: 16, hidden: 16 }", encoder), 5);
  const r = runVlmc(["export", run, "--format", "hf"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /note: only the decoder is exported: a Llama checkpoint has no place for the image encoder and projector/);
  assert.match(r.stdout, /note: max_position_embeddings is 2048/);
  const header = readSafetensorsHeader(join(run, "export", "hf", "model.safetensors"));
  assert.ok(header.ok);
  assert.ok(header.header.tensors.every((t) => t.name === "lm_head.weight" || t.name.startsWith("model.")));
});

test("vlmc check validates a Llama file against the spec from its header: shapes named in the file's layout, extra layers", () => {
  const weights = repoPath("test", "fixtures", "export", "llama-gqa", "model.safetensors");
  const config = readHfLlamaConfig(repoPath("test", "fixtures", "export", "llama-gqa", "config.json"));
  // One layer fewer than the file: the second layer's tensors are warned about, not loaded.
  const fewer = join(dir, "fewer.vlm");
  writeFileSync(fewer, hfLlamaSpecText({ ...config, num_hidden_layers: 1 }, { weights }));
  const a = check([fewer]);
  assert.deepEqual(a.diagnostics.map((d) => d.code), ["W0701"]);
  assert.match(a.diagnostics[0]!.message, /model\.layers\.1\./);
  // A wider SwiGLU than the file's: gate/up/down are wrong, named by the file's tensors.
  const wider = join(dir, "wider.vlm");
  writeFileSync(wider, hfLlamaSpecText({ ...config, intermediate_size: 48 }, { weights }));
  const b = check([wider]);
  const shapes = b.diagnostics.filter((d) => d.code === "E0703");
  assert.ok(shapes.length >= 3, b.diagnostics.map((d) => d.message).join("\n"));
  assert.match(shapes[0]!.message, /`model\.layers\.0\.mlp\.gate_proj\.weight` \(parameter `decoder\.blocks\.0\.mlp\.gate\.weight`\) has shape \[40, 16\] in `model\.safetensors`, the spec makes it \[48, 16\]/);
  // The file's names, read by vlmc's own convention, would be all missing: the mapping is what makes it load.
  const clean = join(dir, "clean.vlm");
  writeFileSync(clean, hfLlamaSpecText(config, { weights }));
  assert.deepEqual(check([clean]).diagnostics, []);
});

test("a decoder Llama cannot express is refused naming each misfit, and nothing is written", () => {
  const cases = [
    { name: "learned", decoder: "llama { dim: 8, heads: 2, layers: 1, context: 16, hidden: 16, position: learned }", want: ["`decoder.pos_embed` is a `positions` layer", "has no rotary positions"] },
    { name: "biased", decoder: "llama { dim: 8, heads: 2, layers: 1, context: 16, hidden: 16, head_bias: true }", want: ["has a bias (`head_bias: true`)"] },
  ];
  for (const c of cases) {
    const { run } = makeRun(`bad-${c.name}`, spec(c.decoder), 1);
    const out = join(dir, `out-${c.name}`);
    const r = runVlmc(["export", run, "--format", "hf", "--out", out]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^vlmc: error: the decoder of `tiny` cannot be written as a Hugging Face Llama checkpoint:\n/);
    for (const w of c.want) assert.ok(r.stderr.includes(w), `${c.name}: ${w} not in\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    assert.ok(!existsSync(out), `${out} was written`);
  }
});

test("--context is a usage error for a gpt decoder or a bad number", () => {
  const { run } = makeRun("gpt-context", spec("gpt { dim: 8, heads: 2, layers: 1, context: 16 }"), 1);
  const a = runVlmc(["export", run, "--format", "hf", "--context", "32"]);
  assert.equal(a.code, 2);
  assert.match(a.stderr, /--context is for `--format hf` of a `llama` decoder/);
  const b = runVlmc(["export", run, "--format", "hf", "--context", "0"]);
  assert.equal(b.code, 2);
  assert.match(b.stderr, /a whole number of at least 1/);
});
