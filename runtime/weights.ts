// A model's variables to and from safetensors. Saving is byte-deterministic (sorted names, no
// timestamps) and records the architecture hash; loading validates the whole file against the
// model before touching any variable, so a bad file never leaves a half-loaded model.
import type { Model } from "./model.js";
import { irParams } from "./model.js";
import { encodeSafetensors, formatShape, readSafetensors, writeSafetensorsFile, METADATA_HASH, type TensorToWrite } from "./safetensors.js";

export function weightTensors(model: Model): TensorToWrite[] {
  return irParams(model.ir).map((p) => ({ name: p.name, dtype: "F32" as const, shape: p.shape, data: model.variables.get(p.name)!.dataSync() as Float32Array }));
}

export function encodeWeights(model: Model): Uint8Array {
  return encodeSafetensors(weightTensors(model), { [METADATA_HASH]: model.ir.hash, "vlmc.model": model.ir.model });
}

export function saveWeights(model: Model, path: string): void {
  writeSafetensorsFile(path, weightTensors(model), { [METADATA_HASH]: model.ir.hash, "vlmc.model": model.ir.model });
}

export class WeightsError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("; "));
  }
}

/** Loads every variable from `path`, or throws WeightsError (listing each problem) having changed nothing. */
export function loadWeights(model: Model, path: string): void {
  const read = readSafetensors(path);
  if (!read.ok) throw new WeightsError(read.problems.map((p) => p.message));
  const problems: string[] = [];
  const params = irParams(model.ir);
  for (const p of params) {
    const t = read.tensors.get(p.name);
    if (!t) problems.push(`\`${p.name}\` is missing from ${path}`);
    else if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      problems.push(`\`${p.name}\` has shape ${formatShape(t.shape)} in ${path}, the model needs ${formatShape(p.shape)}`);
    } else if (!(t.data instanceof Float32Array)) problems.push(`\`${p.name}\` is ${t.dtype} in ${path}, the model needs a float type`);
  }
  if (problems.length) throw new WeightsError(problems);
  const tf = model.tf;
  for (const p of params) model.variables.get(p.name)!.assign(tf.tensor(read.tensors.get(p.name)!.data as Float32Array, p.shape));
}
