// `decoder llama { pretrained: "folder" }`: a Hugging Face Llama checkpoint folder (the ones
// `vlmc export --format hf` wrote as test/fixtures/export/llama-*, whose PyTorch goldens come from
// tools/torch/hf_llama.py) as the decoder, its settings from config.json: the same model as the
// settings written out by hand, the same logits as PyTorch's LlamaForCausalLM, a written setting
// that disagrees is E0720, and a folder of another kind of model is E0721.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { compile } from "../compiler/compile.js";
import { initBackend } from "../runtime/backend.js";
import { hfLlamaSpecText, readHfLlamaConfig } from "../runtime/hf-llama.js";
import { Model } from "../runtime/model.js";
import { readSafetensors } from "../runtime/safetensors.js";
import { loadWeightsFile } from "../runtime/weights.js";
import { relError } from "./helpers/numeric.js";
import { repoPath } from "./helpers/paths.js";

const dir = mkdtempSync(join(tmpdir(), "vlmc-pretrained-llama-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// 21 characters and 3 specials: the fixtures' 24-token vocabulary.
const TOKENIZER = 'tokenizer chars { alphabet: " abcdefghilmnoqrstuwy", specials: [pad, bos, eos] }';
const folderOf = (name: string) => relative(dir, repoPath("test", "fixtures", "export", name)).split("\\").join("/");

function compileSpec(name: string, decoder: string) {
  const path = join(dir, `${name}.vlm`);
  writeFileSync(path, `vlm 0.1\nmodel ${name} {\n  ${TOKENIZER}\n  decoder ${decoder}\n}\n`);
  return compile(path, { baseDir: dir });
}

for (const name of ["llama-gqa", "llama-tied"]) {
  test(`a Llama folder as \`pretrained:\`: the settings written out, PyTorch's logits (${name})`, async () => {
    const r = compileSpec(name.replace("-", "_"), `llama { pretrained: ${JSON.stringify(folderOf(name))} }`);
    assert.ok(r.ir, r.diagnostics.map((d) => `${d.code} ${d.message}`).join("\n"));
    assert.deepEqual(r.diagnostics, []);
    const folder = repoPath("test", "fixtures", "export", name);
    const config = readHfLlamaConfig(join(folder, "config.json"));
    // The same architecture as the config's settings written by hand.
    const explicit = compileSpec(`${name.replace("-", "_")}_explicit`, hfLlamaSpecText(config, { model: "x" }).match(/decoder (llama \{[\s\S]*?\n {2}\})/)![1]!);
    assert.ok(explicit.ir, explicit.diagnostics.map((d) => `${d.code} ${d.message}`).join("\n"));
    assert.equal(r.ir.hash, explicit.ir.hash);
    assert.equal(resolve(dir, r.ir.modules.decoder!.weights!), join(folder, "model.safetensors"));

    const tf = (await initBackend("wasm", { log: () => {} })).tf;
    const model = Model.create(tf, r.ir, 0);
    try {
      const src = loadWeightsFile(model, resolve(dir, r.ir.modules.decoder!.weights!), "decoder", (w) => assert.fail(w.message));
      assert.equal(src.convention, "hf-llama");
      const tokens = (JSON.parse(readFileSync(join(folder, "case.json"), "utf8")) as { tokens: number[][] }).tokens;
      const golden = readSafetensors(join(folder, "golden.safetensors"));
      assert.ok(golden.ok);
      const t = tf.tensor(tokens.flat(), [tokens.length, tokens[0]!.length], "int32");
      const out = model.forward(null, t, { training: false, checkShapes: true });
      const err = relError(out.dataSync() as Float32Array, golden.tensors.get("logits")!.data as Float32Array);
      tf.dispose([t, out]);
      assert.ok(err < 1e-4, `max|vlmc - torch| / max|torch| = ${err}`);
    } finally {
      model.dispose();
    }
  });
}

test("a written setting that disagrees with the Llama folder is E0720; a smaller context is allowed", () => {
  const folder = JSON.stringify(folderOf("llama-gqa"));
  const bad = compileSpec("bad_heads", `llama { pretrained: ${folder}, heads: 8 }`);
  const e = bad.diagnostics.find((d) => d.code === "E0720");
  assert.ok(e, bad.diagnostics.map((d) => `${d.code} ${d.message}`).join("\n"));
  assert.equal(e.message, "`heads` is 8 here, but the pretrained model's is 4");
  assert.match(e.related.map((x) => x.label).join("\n"), /`num_attention_heads` in config\.json of .* says 4/);
  const shorter = compileSpec("shorter", `llama { pretrained: ${folder}, context: 16 }`);
  assert.deepEqual(shorter.diagnostics.map((d) => d.code), []);
});

test("a folder of another model kind is E0721, naming its model_type", () => {
  const r = compileSpec("not_llama", `llama { pretrained: ${JSON.stringify(relative(dir, repoPath("test", "fixtures", "pretrained", "gpt2-mini")).split("\\").join("/"))} }`);
  const e = r.diagnostics.find((d) => d.code === "E0721");
  assert.ok(e, r.diagnostics.map((d) => `${d.code} ${d.message}`).join("\n"));
  assert.match(e.message + e.notes.join(" "), /"gpt2", not "llama"/);
});
