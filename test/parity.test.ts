// The runtime against an independent reference: PyTorch models written by hand
// (tools/torch/), loaded with the weights vlmc makes from each case's seed, computed the golden
// logits, loss, gradients and 5 Adam steps in test/fixtures/parity/. Here vlmc recomputes them
// and must agree within max|a - b| / max|ref| < 1e-4, on wasm and (small cases) on cpu.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import type * as tfjs from "@tensorflow/tfjs";
import { initBackend } from "../runtime/backend.js";
import { Model } from "../runtime/model.js";
import { Adam } from "../runtime/optim.js";
import { readCase, type ParityCase } from "../runtime/parity.js";
import { readSafetensors } from "../runtime/safetensors.js";
import { encodeWeights } from "../runtime/weights.js";
import { repoPath } from "./helpers/paths.js";
import { relError } from "./helpers/numeric.js";

const TOLERANCE = 1e-4;
const root = repoPath("test", "fixtures", "parity");
const cases = readdirSync(root).sort();

function load(path: string): Map<string, Float32Array | Int32Array> {
  const r = readSafetensors(path);
  if (!r.ok) throw new Error(r.problems.map((p) => p.message).join("; "));
  return new Map([...r.tensors].map(([k, t]) => [k, t.data as Float32Array | Int32Array]));
}

for (const backend of ["wasm", "cpu"] as const) {
  for (const name of cases) {
    const big = name.startsWith("seemore");
    test(`parity with PyTorch: ${name} on ${backend}`, { skip: backend === "cpu" && big ? "the seed model takes minutes on tfjs's cpu backend" : false }, async () => {
      const { tf } = await initBackend(backend, { log: () => {} });
      const folder = join(root, name);
      const { c, ir } = readCase(folder);
      const golden = load(join(folder, "golden.safetensors"));
      const inputs = load(join(folder, "inputs.safetensors"));
      const model = Model.create(tf, ir, c.seed);
      try {
        // The weights PyTorch used are the ones this seed makes.
        assert.equal(createHash("sha256").update(encodeWeights(model)).digest("hex"), c.weights_sha256, "initialisation changed: rerun tools/parity-weights + tools/torch/parity.py");
        const img = inputs.get("images");
        const images = img ? tf.tensor(img, [c.batch, ...(ir.modules.encoder!.input.slice(1) as number[])]) : null;
        const tokens = tf.tensor(inputs.get("tokens")!, [c.batch, c.text], "int32");
        const targets = tf.tensor(inputs.get("targets")!, [c.batch, c.text], "int32");
        const mask = tf.tensor(inputs.get("mask")!, [c.batch, c.text]);
        const lossOf = () => model.loss(model.forward(images, tokens, { training: false, checkShapes: true }), targets, mask) as tfjs.Scalar;

        const logits = tf.tidy(() => model.forward(images, tokens, { training: false, checkShapes: true }));
        assert.ok(relError(logits.dataSync(), golden.get("logits")!) < TOLERANCE, `logits: ${relError(logits.dataSync(), golden.get("logits")!)}`);
        logits.dispose();

        const { value, grads } = tf.variableGrads(lossOf);
        assert.ok(relError(value.dataSync(), golden.get("loss")!) < TOLERANCE, `loss ${value.dataSync()[0]} vs ${golden.get("loss")![0]}`);
        for (const p of c.grads) {
          const e = relError(grads[p]!.dataSync(), golden.get(`grad:${p}`)!);
          assert.ok(e < TOLERANCE, `gradient of ${p}: relative error ${e}`);
        }
        value.dispose();
        tf.dispose(grads);

        // 5 Adam steps (PyTorch's rule, eps 1e-8) on the same batch; no tensor may leak.
        const adam = new Adam(tf, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false });
        const losses: number[] = [];
        const counts: number[] = [];
        for (let step = 0; step < 5; step++) {
          const r = tf.variableGrads(lossOf);
          losses.push(r.value.dataSync()[0]!);
          adam.apply(model.variables, r.grads);
          r.value.dispose();
          tf.dispose(r.grads);
          counts.push(tf.memory().numTensors);
        }
        assert.ok(relError(losses, golden.get("adam_losses")!) < TOLERANCE, `losses over 5 Adam steps: ${losses} vs ${Array.from(golden.get("adam_losses")!)}`);
        for (const p of c.after) {
          const e = relError(model.variables.get(p)!.dataSync(), golden.get(`after:${p}`)!);
          assert.ok(e < TOLERANCE, `${p} after 5 Adam steps: relative error ${e}`);
        }
        assert.deepEqual(counts.slice(1), counts.slice(1).map(() => counts[1]), `tensor count grows across steps: ${counts}`);
        adam.dispose();
        tf.dispose([images, tokens, targets, mask].filter((t): t is tfjs.Tensor => t !== null));
      } finally {
        model.dispose();
      }
    });
  }
}

export type { ParityCase };
