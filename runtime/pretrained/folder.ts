// A tfjs LayersModel folder on disk, as the `tfjs` encoder preset names it: model.json (the Keras
// topology and the weights manifest), its weight shards, and optionally a Hugging Face
// preprocessor_config.json saying how pixels become numbers. Read synchronously, without tfjs,
// so that `vlmc check` can shape the model (keras.ts) and record the sha256 of every file; the
// runtime reads the same files (execute.ts) and refuses them when they changed since.
//
// The MobileNetV2 that the nsfwjs package ships is extracted into models/nsfwjs-mobilenet_v2/
// by tools/extract-nsfwjs.mjs during `npm ci`; a spec that names that folder when it is missing
// (a clone where the install script did not run) has it extracted here, on first use.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isProblem, readKerasGraph, type KerasGraph } from "./keras.js";

/** The package's root: the nearest folder above this file with a package.json (from dist/ or the sources alike). */
export const PACKAGE_ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
})();
/** Where tools/extract-nsfwjs.mjs puts the nsfwjs MobileNetV2. */
export const NSFWJS_FOLDER = join(PACKAGE_ROOT, "models", "nsfwjs-mobilenet_v2");
const EXTRACT_SCRIPT = join(PACKAGE_ROOT, "tools", "extract-nsfwjs.mjs");
/**
 * Models a spec may name by their name alone, wherever it lies (`model: "nsfwjs-mobilenet_v2"`):
 * the folders of vlmc's own models/.
 */
export const BUILTIN_MODELS: Readonly<Record<string, string>> = { "nsfwjs-mobilenet_v2": NSFWJS_FOLDER };

export interface TfjsFile {
  /** Relative to the folder: `model.json`, `group1-shard1of1.bin`. */
  name: string;
  sha256: string;
}

/** Bytes per value of a manifest entry: its quantized type's, else its dtype's. */
function bytesPer(w: { dtype?: string; quantization?: { dtype?: string } }): number {
  const q = w.quantization?.dtype;
  if (q) return q === "uint8" ? 1 : 2; // uint16, float16
  return w.dtype === "bool" ? 1 : 4; // float32, int32
}

/** preprocessor_config.json, as pixel settings: (v / 255 - mean) / std, on the [0, 1] scale. */
export interface Preprocessor {
  mean: number[];
  std: number[];
  resize: "stretch" | "crop";
  /** Its `size`, [height, width], when it gives one. */
  size?: [number, number];
}

export interface TfjsFolder {
  folder: string;
  graph: KerasGraph;
  /** model.json first, then the shards in manifest order. */
  files: TfjsFile[];
  preprocessor: Preprocessor | null;
  /** The weights manifest, as tfjs's `decodeWeights` takes it with the shards' bytes joined. */
  manifest: { paths: string[]; weights: unknown[] }[];
}

export class FolderProblem extends Error {
  constructor(
    message: string,
    readonly help: string[] = [],
  ) {
    super(message);
  }
}

/** The folder a written path names: the folder itself, or its model.json. */
export function modelFolder(path: string): string {
  return basename(path) === "model.json" ? dirname(path) : path;
}

/**
 * Extracts the nsfwjs MobileNetV2 when `folder` is where it goes (`builtin`: elsewhere, for
 * the tests) and it is missing. Returns a problem when that fails (nsfwjs not installed), null
 * otherwise.
 */
export function ensureExtracted(folder: string, builtin = NSFWJS_FOLDER): FolderProblem | null {
  if (resolve(folder) !== resolve(builtin) || existsSync(join(folder, "model.json"))) return null;
  try {
    execFileSync(process.execPath, [EXTRACT_SCRIPT, "--out", folder, "--quiet", "--strict"], { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
    return null;
  } catch (err) {
    const said = String((err as { stderr?: string }).stderr ?? "").trim().split("\n").pop() ?? "";
    return new FolderProblem(`it is missing, and it could not be extracted from nsfwjs: ${said.replace(/^vlmc nsfwjs: (not extracted: )?/, "") || (err as Error).message}`, ["run `npm ci` (it installs nsfwjs and extracts the model), or `node tools/extract-nsfwjs.mjs`"]);
  }
}

const sha256 = (bytes: Uint8Array): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

/** Reads and checks a folder; throws FolderProblem with a one-line reason. */
export function readTfjsFolder(path: string): TfjsFolder {
  const folder = modelFolder(path);
  const extracted = ensureExtracted(folder);
  if (extracted) throw extracted;
  if (!existsSync(folder)) throw new FolderProblem("no such folder");
  if (!statSync(folder).isDirectory()) throw new FolderProblem("not a folder (name the folder of a tfjs model, or its model.json)");
  const jsonFile = join(folder, "model.json");
  if (!existsSync(jsonFile)) throw new FolderProblem("the folder has no model.json", ["a tfjs LayersModel folder holds model.json and its weight shards (`model.save('file://DIR')` in tfjs, `tensorflowjs_converter --output_format tfjs_layers_model` from Keras)"]);
  const bytes = readFileSync(jsonFile);
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new FolderProblem(`model.json is not JSON: ${(err as Error).message}`);
  }
  const graph = readKerasGraph(doc);
  if (isProblem(graph)) throw new FolderProblem(`model.json: ${graph.message}`, graph.help);
  const manifest = (doc as { weightsManifest: { paths?: unknown; weights?: unknown }[] }).weightsManifest;
  const files: TfjsFile[] = [{ name: "model.json", sha256: sha256(bytes) }];
  for (const group of manifest) {
    if (!Array.isArray(group.paths) || !group.paths.every((p) => typeof p === "string")) throw new FolderProblem("model.json: a group of its `weightsManifest` has no `paths`");
    let bytes = 0;
    for (const p of group.paths as string[]) {
      const file = resolve(folder, p);
      if (!file.startsWith(resolve(folder) + "/")) throw new FolderProblem(`model.json: the shard \`${p}\` lies outside the folder`);
      if (!existsSync(file)) throw new FolderProblem(`the weight shard \`${p}\` that model.json names is missing`);
      const data = readFileSync(file);
      bytes += data.length;
      files.push({ name: p, sha256: sha256(data) });
    }
    // The shards must hold exactly the weights the manifest lists (a truncated download would
    // otherwise fail only at the first forward pass).
    const need = (group.weights as { shape: number[]; dtype?: string; quantization?: { dtype?: string } }[]).reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1) * bytesPer(w), 0);
    if (bytes !== need) throw new FolderProblem(`the weight shard${group.paths.length === 1 ? "" : "s"} ${(group.paths as string[]).map((p) => `\`${p}\``).join(", ")} hold${group.paths.length === 1 ? "s" : ""} ${bytes} bytes, the manifest's weights need ${need}`);
  }
  return { folder, graph, files, preprocessor: readPreprocessor(folder), manifest: manifest as TfjsFolder["manifest"] };
}

/** preprocessor_config.json (Hugging Face's image processor settings), or null without one. */
function readPreprocessor(folder: string): Preprocessor | null {
  const file = join(folder, "preprocessor_config.json");
  if (!existsSync(file)) return null;
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch (err) {
    throw new FolderProblem(`preprocessor_config.json is not JSON: ${(err as Error).message}`);
  }
  const list = (k: string, fallback: number[]): number[] => {
    const v = c[k];
    if (v === undefined) return fallback;
    if (typeof v === "number") return [v, v, v];
    if (Array.isArray(v) && v.every((x) => typeof x === "number")) return v as number[];
    throw new FolderProblem(`preprocessor_config.json: \`${k}\` is not a list of numbers`);
  };
  // The pipeline computes (v / 255 - mean) / std; Hugging Face (v * rescale - mean) / std. They
  // agree once mean and std are divided by 255 * rescale.
  const rescale = c.do_rescale === false ? 1 : typeof c.rescale_factor === "number" ? c.rescale_factor : 1 / 255;
  const normalize = c.do_normalize !== false;
  const k = 255 * rescale;
  const mean = normalize ? list("image_mean", [0, 0, 0]).map((m) => m / k) : [0, 0, 0];
  const std = normalize ? list("image_std", [1, 1, 1]).map((s) => s / k) : [1 / k, 1 / k, 1 / k];
  if (std.some((s) => !(s > 0))) throw new FolderProblem("preprocessor_config.json: `image_std` must be positive");
  const size = c.size as { height?: unknown; width?: unknown; shortest_edge?: unknown } | number | undefined;
  const hw: [number, number] | undefined =
    typeof size === "number" ? [size, size] : size && typeof size.height === "number" && typeof size.width === "number" ? [size.height, size.width] : undefined;
  return { mean, std, resize: c.do_center_crop === true ? "crop" : "stretch", ...(hw ? { size: hw } : {}) };
}
