// Initialisation set in the spec (compiler/layers/init.ts): a layer's `init` argument and a
// module section's `init` setting reach the IR (each layer's attrs, each parameter's init),
// the verifier derives the second from the first, and the runtime really draws from them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { compile } from "../compiler/compile.js";
import type { Ir, IrLayer, IrParam, IrValue } from "../compiler/ir/types.js";
import { parseIr } from "../compiler/ir/validate.js";
import { irToYaml } from "../compiler/ir/yaml.js";
import { initBackend } from "../runtime/backend.js";
import { irParams, Model } from "../runtime/model.js";
import { repoPath } from "./helpers/paths.js";

const TOKENIZER = 'tokenizer chars { alphabet: "abcdefghijklmnopqrstuvwxyz .", specials: [pad] }';

function model(sections: { encoder?: string; projector?: string; decoder?: string }, extra = ""): string {
  return [
    "vlm 0.1",
    "model m {",
    `  ${TOKENIZER}`,
    `  ${sections.encoder ?? "encoder vit { image: 32 x 32 x 3, patch: 8, dim: 64, heads: 4, blocks: 1 }"}`,
    `  ${sections.projector ?? "projector { linear(256) -> gelu -> linear(decoder.dim) }"}`,
    `  ${sections.decoder ?? "decoder gpt { dim: 64, heads: 4, layers: 1, context: 32 }"}`,
    "}",
    extra,
  ].join("\n");
}

function irOf(text: string): Ir {
  const r = compile("init/m.vlm", { text });
  assert.deepEqual(
    r.diagnostics.map((d) => `${d.code} ${d.message}`),
    [],
  );
  assert.ok(r.ir);
  return r.ir;
}

const param = (ir: Ir, name: string): IrParam => {
  const p = irParams(ir).find((x) => x.name === name);
  assert.ok(p, `no parameter ${name}`);
  return p;
};

function layer(ir: Ir, path: string): IrLayer {
  let found: IrLayer | undefined;
  const walk = (ls: readonly IrLayer[]) => {
    for (const l of ls) {
      if (l.path === path) found = l;
      if (l.children) walk(l.children);
    }
  };
  for (const m of Object.values(ir.modules)) walk(m.layers);
  assert.ok(found, `no layer ${path}`);
  return found;
}

/** Mean, standard deviation and largest magnitude of the created variable. */
function stats(values: Float32Array | Int32Array | Uint8Array): { mean: number; std: number; max: number } {
  let s = 0;
  let max = 0;
  for (const v of values) {
    s += v;
    max = Math.max(max, Math.abs(v));
  }
  const mean = s / values.length;
  let q = 0;
  for (const v of values) q += (v - mean) ** 2;
  return { mean, std: Math.sqrt(q / values.length), max };
}

test("the kinds' defaults are unchanged: Xavier-uniform projections (conv fans for the patch projection), normal(0.02) tables, zero biases", () => {
  const r = compile(repoPath("specs", "seemore.vlm"));
  assert.ok(r.ir);
  const ir = r.ir;
  assert.deepEqual(param(ir, "encoder.patch_embed.weight").init, { kind: "uniform", bound: Math.sqrt(6 / ((3 + 512) * 16 * 16)) });
  assert.deepEqual(param(ir, "encoder.patch_embed.bias").init, { kind: "zeros" });
  assert.deepEqual(param(ir, "encoder.blocks.0.attn.q.weight").init, { kind: "xavier_uniform" });
  assert.deepEqual(param(ir, "projector.0.weight").init, { kind: "xavier_uniform" });
  assert.deepEqual(param(ir, "projector.0.bias").init, { kind: "zeros" });
  assert.deepEqual(param(ir, "decoder.embed.weight").init, { kind: "normal", std: 0.02 });
  assert.deepEqual(param(ir, "decoder.pos_embed.weight").init, { kind: "normal", std: 0.02 });
  assert.deepEqual(param(ir, "decoder.lm_head.weight").init, { kind: "normal", std: 0.02 });
  assert.deepEqual(param(ir, "decoder.ln_f.weight").init, { kind: "ones" });
  // Each layer records its (default) initialiser among its attrs.
  assert.deepEqual(layer(ir, "encoder.patch_embed").attrs.init, { kind: "xavier_uniform" });
  assert.deepEqual(layer(ir, "decoder.embed").attrs.init, { kind: "normal", std: 0.02 });
});

test("writing the defaults out changes nothing, not even the hash", () => {
  const plain = irOf(model({}));
  const spelt = irOf(
    model({
      encoder: "encoder vit { image: 32 x 32 x 3, patch: 8, dim: 64, heads: 4, blocks: 1, init: default }",
      projector: "projector { linear(256, init: xavier_uniform) -> gelu -> linear(decoder.dim, init: xavier_uniform) }",
      decoder: "decoder gpt { dim: 64, heads: 4, layers: 1, context: 32, init: default }",
    }),
  );
  assert.equal(spelt.hash, plain.hash);
  assert.deepEqual(irParams(spelt), irParams(plain));
});

test("a layer's init sets its weight matrices; a section's init every other weight matrix of the module; biases and gains keep theirs", () => {
  const ir = irOf(
    model({
      projector: "projector { linear(256, init: uniform(bound: 0.1)) -> gelu -> linear(decoder.dim) }",
      decoder: "decoder gpt { dim: 64, heads: 4, layers: 1, context: 32, tie_embeddings: false, init: normal(std: 0.5) }",
    }),
  );
  assert.deepEqual(layer(ir, "projector.0").attrs.init, { kind: "uniform", bound: 0.1 });
  assert.deepEqual(param(ir, "projector.0.weight").init, { kind: "uniform", bound: 0.1 });
  assert.deepEqual(param(ir, "projector.0.bias").init, { kind: "zeros" });
  assert.deepEqual(param(ir, "projector.2.weight").init, { kind: "xavier_uniform" }, "the other projector layer keeps its default");
  for (const name of ["embed.weight", "pos_embed.weight", "blocks.0.attn.q.weight", "blocks.0.attn.o.weight", "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc2.weight", "lm_head.weight"]) {
    assert.deepEqual(param(ir, `decoder.${name}`).init, { kind: "normal", std: 0.5 }, name);
  }
  for (const name of ["blocks.0.attn.o.bias", "blocks.0.mlp.fc1.bias", "blocks.0.ln_1.bias"]) assert.deepEqual(param(ir, `decoder.${name}`).init, { kind: "zeros" }, name);
  assert.deepEqual(param(ir, "decoder.blocks.0.ln_1.weight").init, { kind: "ones" });
  assert.deepEqual(param(ir, "encoder.blocks.0.attn.q.weight").init, { kind: "xavier_uniform" }, "other modules keep their defaults");

  // In a section without a preset, a layer that sets its own wins over the section.
  const custom = irOf(
    model({
      decoder: "decoder { dim: 64, context: 32, init: zeros, residual { layernorm -> attention(heads: 4, causal: true, init: normal(std: 0.1)) } -> linear(64) }",
    }),
  );
  assert.deepEqual(param(custom, "decoder.0.1.q.weight").init, { kind: "normal", std: 0.1 });
  assert.deepEqual(param(custom, "decoder.1.weight").init, { kind: "zeros" });
  assert.deepEqual(param(custom, "decoder.embed.weight").init, { kind: "zeros" });

  // A derived model can give the layers their own defaults back.
  const derived = irOf(model({ decoder: "decoder gpt { dim: 64, heads: 4, layers: 1, context: 32, init: normal(std: 0.5) }" }, "model n extends m { decoder.init: default }"));
  assert.deepEqual(param(derived, "decoder.blocks.0.attn.q.weight").init, { kind: "xavier_uniform" });
});

test("the IR carries the initialisers: it verifies, and a layer's init that its parameters do not follow is E0601", () => {
  const ir = irOf(model({ decoder: "decoder gpt { dim: 64, heads: 4, layers: 1, context: 32, init: normal(std: 0.5) }" }));
  const text = irToYaml(ir);
  const back = parseIr("init.yaml", text);
  assert.deepEqual(
    back.diagnostics.map((d) => d.message),
    [],
  );
  assert.deepEqual(back.ir, ir);

  const corrupt = JSON.parse(JSON.stringify(ir)) as Ir;
  layer(corrupt, "decoder.embed").attrs.init = { kind: "normal", std: 0.25 };
  const r = parseIr("init.yaml", irToYaml(corrupt));
  assert.equal(r.ir, null);
  assert.ok(
    r.diagnostics.some((d) => d.code === "E0601" && /`decoder\.embed\.weight` is initialised with \{"kind":"normal","std":0\.5\}, but a `token_embed` initialises it with \{"kind":"normal","std":0\.25\}/.test(d.message)),
    r.diagnostics.map((d) => d.message).join("\n"),
  );
  const bads: IrValue[] = [{ kind: "normal", std: -1 }, { kind: "normal" }, { kind: "orthogonal" }, "xavier_uniform"];
  for (const bad of bads) {
    const c = JSON.parse(JSON.stringify(ir)) as Ir;
    layer(c, "decoder.embed").attrs.init = bad;
    const rr = parseIr("init.yaml", irToYaml(c));
    assert.ok(rr.ir === null && rr.diagnostics.some((d) => d.code === "E0601" && /`init` of `token_embed`/.test(d.message)), `${JSON.stringify(bad)}: ${rr.diagnostics.map((d) => d.message).join("; ")}`);
  }
});

test("`init: normal(std: 0.5)` really makes variables of std 0.5; `uniform(bound)` and `zeros` too", async () => {
  const { tf } = await initBackend("wasm", { log: () => {} });
  const ir = irOf(
    model({
      projector: "projector { linear(256, init: normal(std: 0.5)) -> gelu -> linear(decoder.dim, init: uniform(bound: 0.1)) }",
      decoder: "decoder gpt { dim: 64, heads: 4, layers: 1, context: 32, init: zeros }",
    }),
  );
  const before = tf.memory().numTensors;
  const m = Model.create(tf, ir, 1234);
  try {
    const of = (name: string) => stats(m.variables.get(name)!.dataSync());
    // 64 x 256 = 16,384 draws: the sample std is within ~0.003 of 0.5.
    const n = of("projector.0.weight");
    assert.ok(Math.abs(n.std - 0.5) < 0.02, `std ${n.std}`);
    assert.ok(Math.abs(n.mean) < 0.02, `mean ${n.mean}`);
    const u = of("projector.2.weight");
    assert.ok(u.max <= 0.1 && u.max > 0.09, `max ${u.max}`);
    assert.ok(Math.abs(u.std - 0.1 / Math.sqrt(3)) < 0.005, `std ${u.std}`);
    assert.equal(of("projector.0.bias").max, 0, "biases stay zero");
    for (const name of ["decoder.embed.weight", "decoder.blocks.0.attn.q.weight", "decoder.blocks.0.mlp.fc2.weight"]) assert.equal(of(name).max, 0, name);
    assert.deepEqual([of("decoder.ln_f.weight").mean, of("decoder.ln_f.weight").std], [1, 0], "norm gains stay one");
    // The default next to it: Xavier-uniform, std = sqrt(2 / (in + out)).
    const x = of("encoder.blocks.0.attn.q.weight");
    assert.ok(Math.abs(x.std - Math.sqrt(2 / 128)) < 0.01, `xavier std ${x.std}`);
  } finally {
    m.dispose();
  }
  assert.equal(tf.memory().numTensors, before, "Model.create and dispose leave no tensor behind");
});
