// A model's variables to and from safetensors. Saving is byte-deterministic (sorted names, no
// timestamps) and records the architecture hash; loading validates the whole file against the
// model before touching any variable, so a bad file never leaves a half-loaded model
// (weights-check.ts holds the validation; hf-gpt2.ts the Hugging Face GPT-2 mapping).
import { isHfGpt2Header, loadHfGpt2 } from "./hf-gpt2.js";
import { isHfLlamaHeader, loadHfLlama } from "./hf-llama.js";
import { isHfVisionHeader, loadHfVision } from "./hf-vision.js";
import { irParams, type Model } from "./model.js";
import { encodeSafetensors, readSafetensorsHeader, writeSafetensorsFile, METADATA_HASH, type SafetensorsProblem, type TensorToWrite } from "./safetensors.js";
import { loadWeights, modulePrefixNameMap, type WeightsProblem } from "./weights-check.js";

export function weightTensors(model: Model): TensorToWrite[] {
  return irParams(model.ir).map((p) => ({ name: p.name, dtype: "F32" as const, shape: p.shape, data: model.variables.get(p.name)!.dataSync() as Float32Array }));
}

export function encodeWeights(model: Model): Uint8Array {
  return encodeSafetensors(weightTensors(model), { [METADATA_HASH]: model.ir.hash, "vlmc.model": model.ir.model });
}

export function saveWeights(model: Model, path: string): void {
  writeSafetensorsFile(path, weightTensors(model), { [METADATA_HASH]: model.ir.hash, "vlmc.model": model.ir.model });
}

/** Sets variables from loaded values (already validated against the model). */
export function assignValues(model: Model, values: Iterable<[string, Float32Array]>): void {
  const { tf } = model;
  for (const [name, data] of values) {
    const v = model.variables.get(name)!;
    const t = tf.tensor(data, v.shape);
    v.assign(t);
    t.dispose();
  }
}

/** What a weights file contributed: which file, for which module (or the whole model), read how. */
export interface WeightsSource {
  file: string;
  module: string | null;
  convention: "vlmc" | "hf-gpt2" | "hf-llama" | "hf-vision";
}

export class WeightsFailure extends Error {
  constructor(
    readonly file: string,
    readonly problems: (WeightsProblem | SafetensorsProblem)[],
    readonly unreadable: boolean,
  ) {
    super(`${file}: ${problems.map((p) => p.message).join("; ")}`);
  }
}

/**
 * Loads a weights file into `model`, all or nothing: into one module (its tensors with or
 * without the module's prefix; a Hugging Face GPT-2 file for the decoder) or, `module` null,
 * the whole model (vlmc's names; a Hugging Face GPT-2 file fills the decoder). Throws
 * WeightsFailure, having changed nothing, when the file does not fit.
 */
export function loadWeightsFile(model: Model, path: string, module: string | null, warn: (w: WeightsProblem) => void, file = path): WeightsSource {
  const head = readSafetensorsHeader(path);
  if (!head.ok) throw new WeightsFailure(file, head.problems, head.problems.some((p) => p.kind === "unreadable" && p.tensor === undefined));
  const hasDecoder = model.ir.modules.decoder !== undefined;
  const expected = irParams(model.ir)
    .filter((p) => module === null || p.name.startsWith(`${module}.`))
    .map((p) => ({ name: p.name, shape: p.shape }));
  if ((module === "decoder" || (module === null && hasDecoder)) && isHfGpt2Header(head.header)) {
    // A Hugging Face GPT-2 checkpoint: the decoder's parameters, through the mapping. As the
    // whole model's weights, only a model that is a decoder alone can take it.
    const others = module === null ? expected.filter((p) => !p.name.startsWith("decoder.")) : [];
    if (others.length > 0) {
      throw new WeightsFailure(file, [{ kind: "unreadable", message: `a Hugging Face GPT-2 checkpoint holds a decoder only; the model's ${[...new Set(others.map((p) => p.name.split(".")[0]))].join(" and ")} would have no weights (give it as the decoder's \`weights:\` in the spec instead)` }], false);
    }
    const r = loadHfGpt2(model, path);
    if (!r.ok) throw new WeightsFailure(file, r.problems, false);
    r.warnings.forEach(warn);
    return { file, module, convention: "hf-gpt2" };
  }
  if ((module === "decoder" || (module === null && hasDecoder)) && isHfLlamaHeader(head.header)) {
    // A Hugging Face Llama checkpoint (runtime/hf-llama.ts), likewise a decoder alone.
    const others = module === null ? expected.filter((p) => !p.name.startsWith("decoder.")) : [];
    if (others.length > 0) {
      throw new WeightsFailure(file, [{ kind: "unreadable", message: `a Hugging Face Llama checkpoint holds a decoder only; the model's ${[...new Set(others.map((p) => p.name.split(".")[0]))].join(" and ")} would have no weights (give it as the decoder's \`weights:\` in the spec instead)` }], false);
    }
    const r = loadHfLlama(model, path);
    if (!r.ok) throw new WeightsFailure(file, r.problems, false);
    r.warnings.forEach(warn);
    return { file, module, convention: "hf-llama" };
  }
  if (module === "encoder" && isHfVisionHeader(head.header)) {
    // A Hugging Face CLIP-vision or SigLIP checkpoint: the encoder's parameters, through runtime/hf-vision.ts.
    const r = loadHfVision(model, path);
    if (!r.ok) throw new WeightsFailure(file, r.problems, false);
    r.warnings.forEach(warn);
    return { file, module, convention: "hf-vision" };
  }
  const r = loadWeights(path, expected, {
    ...(module ? { nameMap: modulePrefixNameMap(module) } : {}),
    ...(module === null ? { expectHash: model.ir.hash } : {}),
  });
  if (!r.ok) throw new WeightsFailure(file, r.problems, false);
  r.warnings.forEach(warn);
  assignValues(model, r.values);
  return { file, module, convention: "vlmc" };
}
