// A run folder as `vlmc train` leaves it (ir.json, tokenizer.json, weights.safetensors), but with
// every parameter seeded-random (norm gains too), for the tests of what reads a run (export):
// nothing is trained, so they stay fast, and random gains catch a mapping that confuses them.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { compile } from "../../compiler/compile.js";
import { rebaseIr } from "../../compiler/ir/paths.js";
import type { Ir } from "../../compiler/ir/types.js";
import { irToJson } from "../../compiler/ir/yaml.js";
import { irParams } from "../../runtime/model.js";
import { uniform01 } from "../../runtime/random.js";
import { encodeSafetensors, METADATA_HASH } from "../../runtime/safetensors.js";
import type { CharTokenizer } from "../../runtime/tokenizer.js";

/** Compiles `text` as DIR/NAME.vlm, which must be clean (no diagnostic at all). */
export function compileText(dir: string, name: string, text: string): Ir {
  const path = join(dir, `${name}.vlm`);
  writeFileSync(path, text);
  const { ir, diagnostics } = compile(path, { baseDir: dir });
  assert.ok(ir, diagnostics.map((d) => `${d.code} ${d.message}`).join("\n"));
  assert.deepEqual(diagnostics.map((d) => `${d.code} ${d.message}`), []);
  return ir;
}

/** DIR/NAME/ as a run folder of the spec `text`, its parameters uniform in [-0.3, 0.3) from `seed`; `tok` is written for a `chars` tokenizer. */
export function makeRandomRun(dir: string, name: string, text: string, seed: number, tok: CharTokenizer): { run: string; ir: Ir; values: Map<string, Float32Array> } {
  const run = join(dir, name);
  mkdirSync(run, { recursive: true });
  const ir = compileText(dir, name, text);
  // The run's ir.json has its paths relative to the run folder, as `vlmc train` writes it.
  writeFileSync(join(run, "ir.json"), irToJson(rebaseIr(structuredClone(ir), dir, run)));
  if (ir.tokenizer?.kind === "chars") writeFileSync(join(run, "tokenizer.json"), JSON.stringify(tok.toJSON()));
  const rand = uniform01(seed);
  const values = new Map(irParams(ir).map((p) => [p.name, Float32Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => (rand() - 0.5) * 0.6)]));
  const tensors = irParams(ir).map((p) => ({ name: p.name, dtype: "F32" as const, shape: p.shape, data: values.get(p.name)! }));
  writeFileSync(join(run, "weights.safetensors"), encodeSafetensors(tensors, { [METADATA_HASH]: ir.hash }));
  return { run, ir, values };
}
