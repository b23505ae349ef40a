// The checker's promise, tested at runtime: random VALID specs (test/helpers/spec-gen.ts, at its
// `small` sizes) are compiled, built (Model.create) and run forward and backward on random
// input on the wasm backend, with every layer's runtime shape asserted against the shape the
// checker inferred (`checkShapes`, which throws ShapeMismatch). For each spec:
//   - nothing throws, and the logits are [B, visual tokens + T, vocab] exactly, as the
//     generator meant them (not as the IR says), and finite;
//   - every variable has its parameter's shape, and `tf.variableGrads` over all of them gives
//     finite gradients of their variables' shapes: for every decoder variable always, for every
//     projector variable and some encoder variable when the decoder has attention (without
//     attention, the text never sees the visual tokens);
//   - once everything is disposed, the tensor count is back where it started.
//
// Reproduce a failure: each message names the seed; the spec is printed with line numbers.
//   VLMC_RUNTIME_PROP_SEED=<n>   another run of random specs (default: fixed)
//   VLMC_RUNTIME_PROP_CASES=<n>  how many specs (default 60)
//   VLMC_RUNTIME_PROP_ONLY=<n>   only the spec of this seed
import { test } from "node:test";
import assert from "node:assert/strict";
import type * as tfjs from "@tensorflow/tfjs";
import { compile } from "../compiler/compile.js";
import type { Ir, IrLayer } from "../compiler/ir/types.js";
import { initBackend, type Tf } from "../runtime/backend.js";
import { irParams, Model } from "../runtime/model.js";
import { envInt } from "../tools/random.js";
import { generateValidSpec, numbered, Rng, type GeneratedSpec } from "./helpers/spec-gen.js";

const SEED = envInt("VLMC_RUNTIME_PROP_SEED", 0x5eed);
const CASES = envInt("VLMC_RUNTIME_PROP_CASES", 60);
const ONLY = process.env.VLMC_RUNTIME_PROP_ONLY === undefined || process.env.VLMC_RUNTIME_PROP_ONLY === "" ? undefined : Number(process.env.VLMC_RUNTIME_PROP_ONLY);
/** Failures shown in full; the rest are counted. */
const SHOW = 3;

const specSeed = (i: number): number => ONLY ?? (Math.imul(SEED ^ 0x2545f491, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b)) >>> 0;

function walk(layers: readonly IrLayer[], f: (l: IrLayer) => void): void {
  for (const l of layers) {
    f(l);
    if (l.children) walk(l.children, f);
  }
}

function allFinite(t: tfjs.Tensor): boolean {
  const d = t.dataSync();
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) return false;
  return true;
}

interface Outcome {
  /** Gradients checked. */
  grads: number;
  variables: number;
  ms: number;
}

/** Builds and runs one generated spec; throws (an assertion) on any broken promise. */
function runCase(tf: Tf, g: GeneratedSpec): Outcome {
  const t0 = performance.now();
  const r = compile("runtime-property/generated.vlm", { text: g.text });
  assert.ok(r.ir, `the spec does not compile: ${r.diagnostics.map((d) => `${d.code} ${d.message}`).join("; ")}`);
  assert.deepEqual(
    r.diagnostics.map((d) => `${d.code} ${d.message}`),
    [],
    "a valid spec reports nothing",
  );
  const ir: Ir = r.ir;
  const { encoder, tokenizer, decoder } = g.intent;
  const rng = new Rng(g.seed ^ 0x51ab1e);
  const B = rng.int(1, 3);
  const visual = encoder.tokens;
  const T = rng.int(1, Math.min(6, decoder.context - visual));
  const vocab = tokenizer.size;
  const training = rng.chance(0.5);
  const [H, W, C] = encoder.image;

  const baseline = tf.memory().numTensors;
  const ids = () => Int32Array.from({ length: B * T }, () => rng.int(0, vocab - 1));
  const images = tf.tensor(Float32Array.from({ length: B * H * W * C }, () => rng.next()), [B, H, W, C]);
  const tokens = tf.tensor(ids(), [B, T], "int32");
  const targets = tf.tensor(ids(), [B, T], "int32");
  // Some padding: the last position of the first example does not count.
  const mask = tf.tensor(Float32Array.from({ length: B * T }, (_, i) => (T > 1 && i === T - 1 ? 0 : 1)), [B, T]);
  let model: Model | undefined;
  let checked = 0;
  try {
    model = Model.create(tf, ir, g.seed);
    const m = model;
    const params = irParams(ir);
    assert.equal(m.variables.size, params.length, "one variable per parameter");
    for (const p of params) assert.deepEqual(m.variables.get(p.name)?.shape, p.shape, `variable ${p.name}`);

    const opts = { training, dropoutSeed: g.seed & 0xffff, checkShapes: true };
    const logits = tf.tidy(() => m.forward(images, tokens, opts));
    try {
      assert.deepEqual(logits.shape, [B, visual + T, vocab], "logits [B, visual + T, vocab]");
      assert.ok(allFinite(logits), "the logits are finite");
    } finally {
      logits.dispose();
    }

    const { value, grads } = tf.variableGrads(() => m.loss(m.forward(images, tokens, opts), targets, mask) as tfjs.Scalar);
    try {
      assert.ok(Number.isFinite(value.dataSync()[0]), `the loss is ${value.dataSync()[0]}`);
      for (const [name, v] of m.variables) {
        const grad = grads[name];
        if (!grad) continue;
        assert.deepEqual(grad.shape, v.shape, `the gradient of ${name} has its variable's shape`);
        assert.ok(allFinite(grad), `the gradient of ${name} is finite`);
        checked++;
      }
      const missing = (module: string) => [...m.variables.keys()].filter((n) => n.startsWith(`${module}.`) && !grads[n]);
      assert.deepEqual(missing("decoder"), [], "every decoder variable has a gradient");
      let attention = false;
      walk(ir.modules.decoder!.layers, (l) => (attention ||= l.kind === "attention"));
      if (attention) {
        if (ir.modules.projector) assert.deepEqual(missing("projector"), [], "every projector variable has a gradient (the text attends to the visual tokens)");
        const enc = [...m.variables.keys()].filter((n) => n.startsWith("encoder."));
        assert.ok(enc.some((n) => grads[n]), "some encoder variable has a gradient (the text attends to the visual tokens)");
      }
    } finally {
      value.dispose();
      tf.dispose(grads);
    }
  } finally {
    model?.dispose();
    tf.dispose([images, tokens, targets, mask]);
  }
  assert.equal(tf.memory().numTensors, baseline, "tensors leaked");
  return { grads: checked, variables: irParams(ir).length, ms: performance.now() - t0 };
}

test("random valid specs build and run forward and backward, every layer's shape as the checker inferred", async (t) => {
  const { tf } = await initBackend("wasm", { log: () => {} });
  const failures: string[] = [];
  const outcomes: Outcome[] = [];
  const total = ONLY === undefined ? CASES : 1;
  for (let i = 0; i < total; i++) {
    const seed = specSeed(i);
    const g = generateValidSpec(seed, { size: "small" });
    try {
      outcomes.push(runCase(tf, g));
    } catch (e) {
      failures.push(`spec seed ${seed} (rerun with VLMC_RUNTIME_PROP_ONLY=${seed}): ${(e as Error).stack ?? String(e)}\n--- spec ---\n${numbered(g.text)}`);
    }
  }
  const slowest = Math.max(0, ...outcomes.map((o) => o.ms));
  t.diagnostic(
    `${outcomes.length} of ${total} specs ran: ${outcomes.reduce((s, o) => s + o.variables, 0)} variables, ${outcomes.reduce((s, o) => s + o.grads, 0)} gradients checked; slowest ${slowest.toFixed(0)} ms`,
  );
  if (failures.length) assert.fail(`${failures.length} of ${total} specs failed; the first ${Math.min(SHOW, failures.length)}:\n\n${failures.slice(0, SHOW).join("\n\n")}`);
  // The generator must reach what the runtime has to get right.
  if (ONLY === undefined) assert.ok(outcomes.reduce((s, o) => s + o.grads, 0) > total * 5, "too few gradients checked");
});
