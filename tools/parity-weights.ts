// Writes, for each case of test/fixtures/parity/, the initial weights vlmc makes from the case's
// seed and the inputs, for tools/torch/parity.py to compute golden outputs from. Run by hand:
//   npm run build && node dist/tools/parity-weights.js && /usr/bin/python3 tools/torch/parity.py
import { createHash } from "node:crypto";
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { initBackend } from "../runtime/backend.js";
import { Model } from "../runtime/model.js";
import { makeInputs, readCase } from "../runtime/parity.js";
import { encodeSafetensors } from "../runtime/safetensors.js";
import { encodeWeights } from "../runtime/weights.js";
import { repoPath } from "./repo.js";

const root = repoPath("test", "fixtures", "parity");
const { tf } = await initBackend("cpu");
for (const name of readdirSync(root).sort()) {
  const folder = join(root, name);
  if (!statSync(folder).isDirectory()) continue;
  const { c, ir } = readCase(folder);
  const model = Model.create(tf, ir, c.seed);
  const weights = encodeWeights(model);
  writeFileSync(join(folder, "weights.safetensors"), weights);
  const inp = makeInputs(c, ir);
  const tensors = [
    { name: "tokens", dtype: "I32" as const, shape: [c.batch, c.text], data: inp.tokens },
    { name: "targets", dtype: "I32" as const, shape: [c.batch, c.text], data: inp.targets },
    { name: "mask", dtype: "F32" as const, shape: [c.batch, c.text], data: inp.mask },
    ...(inp.images ? [{ name: "images", dtype: "F32" as const, shape: inp.imageShape!, data: inp.images }] : []),
  ];
  writeFileSync(join(folder, "inputs.safetensors"), encodeSafetensors(tensors));
  const caseFile = join(folder, "case.json");
  const json = JSON.parse((await import("node:fs")).readFileSync(caseFile, "utf8")) as Record<string, unknown>;
  json.weights_sha256 = createHash("sha256").update(weights).digest("hex");
  writeFileSync(caseFile, `${JSON.stringify(json, null, 2)}\n`);
  model.dispose();
  console.log(`${name}: ${(weights.length / 1048576).toFixed(1)} MiB of weights, inputs written`);
}
