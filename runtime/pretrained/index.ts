// Pretrained parts of an IR as the runtime meets them (runtime/model.ts calls this when it makes
// a model): each `tfjs_model` layer's folder is resolved against the IR document's folder and
// every file it recorded is checked against its sha256, so that a run whose encoder folder has
// changed since training (another model.json, re-quantized shards) is refused with one line
// instead of captioning with other features.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Ir, IrLayer } from "../../compiler/ir/types.js";
import { resolveIrPath } from "../../compiler/ir/paths.js";
import { ensureExtracted } from "./folder.js";

export class PretrainedError extends Error {}

function tfjsLayers(ir: Ir): IrLayer[] {
  const out: IrLayer[] = [];
  const walk = (ls: IrLayer[]) => {
    for (const l of ls) {
      if (l.kind === "tfjs_model") out.push(l);
      if (l.children) walk(l.children);
    }
  };
  for (const m of Object.values(ir.modules)) if (m) walk(m.layers);
  return out;
}

/**
 * `ir` itself when it has no pretrained folder; else a copy whose folders are absolute (resolved
 * against `baseDir`, the IR document's folder) after their files were checked. Throws
 * PretrainedError naming the first file that is missing or changed.
 */
export function resolvePretrained(ir: Ir, baseDir: string): Ir {
  if (tfjsLayers(ir).length === 0) return ir;
  const copy = structuredClone(ir);
  for (const l of tfjsLayers(copy)) {
    const folder = resolveIrPath(baseDir, String(l.attrs.weights));
    const extracted = ensureExtracted(folder);
    if (extracted) throw new PretrainedError(`${l.path}: ${folder}: ${extracted.message}`);
    const names = l.attrs.files as string[];
    const sums = l.attrs.sha256 as string[];
    names.forEach((name, i) => {
      const file = join(folder, name);
      if (!existsSync(file)) throw new PretrainedError(`${l.path}: ${file} is missing (the pretrained encoder's folder, resolved against ${baseDir})`);
      const got = `sha256:${createHash("sha256").update(readFileSync(file)).digest("hex")}`;
      if (got !== sums[i]) throw new PretrainedError(`${l.path}: ${file} has changed since the model was compiled (sha256 ${got.slice(7, 19)}..., recorded ${String(sums[i]).slice(7, 19)}...): the weights trained on it do not fit it`);
    });
    l.attrs.weights = folder;
  }
  return copy;
}
