// `vlmc export --format tfjs`: the whole trained model (encoder, projector, decoder) as
// TensorFlow.js artifacts for inference, and their reading back (`loadTfjsExport`).
//
// The folder holds
//   model.json                 tfjs's ModelArtifacts JSON: `format` ("vlmc-ir"), `generatedBy`,
//                              `convertedBy`, `modelTopology` (the run's IR, vlmc's JSON),
//                              `weightsManifest` ([{ paths, weights: [{ name, shape, dtype }] }],
//                              vlmc's parameter names, float32) and `userDefinedMetadata` (what it
//                              takes to run it: tokenizer roles and files, pixels, visual tokens)
//   group1-shardNofM.bin       the weights, concatenated in manifest order and cut every 4 MiB
//                              (a tensor may straddle two shards), as tfjs's converter writes them
//   tokenizer.json (...)       the run's tokenizer files, as the run folder has them
//   pretrained/NAME/           a pretrained tfjs encoder's folder (model.json and its shards: its
//                              weights are not parameters, so not in the shards above), the
//                              exported IR pointing there, so the export runs on its own
//   model.ts, model.js         the standalone module `vlmc compile --emit ts` writes from the IR
//                              (compiler/emit/ts.ts), plus `loadExport(url)`, which reads this
//                              folder with tf.io.http + tf.io.decodeWeights: an app needs only
//                              @tensorflow/tfjs and the folder
//
// Why not a tfjs GraphModel or LayersModel: a GraphModel is TensorFlow GraphDef ops and a
// LayersModel Keras layers; vlmc's layers lower to tfjs ops directly and have no TF graph or
// Keras form, so `tf.loadGraphModel` / `tf.loadLayersModel` cannot run them. The weights are
// plain tf.io artifacts (any tf.io handler reads them), and the forward pass is the emitted
// module's code. `format` says so, so that tfjs's loaders refuse the folder rather than misread it.
//
// A model whose tokenizer or a layer has no TypeScript form (E0802, E0801) is still exported,
// without model.ts/model.js: a note says why. The folder is written whole or not at all.
import { existsSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { endianness } from "node:os";
import { basename, join } from "node:path";
import type * as TsMorph from "ts-morph";
import { decoderContext, visualTokens } from "../../compiler/cost/estimate.js";
import { emitTs } from "../../compiler/emit/ts.js";
import type { Ir, IrLayer } from "../../compiler/ir/types.js";
import { admitIr } from "../../compiler/ir/validate.js";
import type { Tf } from "../backend.js";
import { irParams } from "../model.js";
import { formatShape } from "../safetensors.js";
import type { Special, Tokenizer } from "../tokenizer.js";
import { loadRunTokenizer } from "../tokenizers/load.js";
import { loadWeights } from "../weights-check.js";
import { PretrainedError, resolvePretrained } from "../pretrained/index.js";
import { writeFolderAtomic } from "./folder.js";
import { ExportError } from "./hf.js";

/** model.json's `format`: not tfjs's "layers-model" or "graph-model", which its loaders would try to run. */
export const TFJS_FORMAT = "vlmc-ir";
/** The largest shard, in bytes: tfjs's converter's default (4 MiB). */
export const SHARD_BYTES = 4 * 1024 * 1024;

const require = createRequire(import.meta.url);

export interface TfjsManifestEntry {
  name: string;
  shape: number[];
  dtype: "float32";
}

/** What `userDefinedMetadata` holds. */
export interface TfjsExportMetadata {
  vlmc: { version: string; model: string; hash: string; parameters: number };
  tokenizer: { kind: string; size: number; files: string[]; ids: Partial<Record<Special, number>> } | null;
  /** The encoder's input and how pixels become it (compiler/ir/types.ts `IrPixels`), or null without an encoder. */
  pixels: { height: number; width: number; channels: number; resize: string; normalize: string; mean: number[]; std: number[] } | null;
  /** Visual tokens in front of the text, and the decoder's context (null: no limit). */
  visualTokens: number;
  context: number | null;
  /** The standalone module beside model.json, or null when the model has none (the notes say why). */
  module: string | null;
}

export interface TfjsExport {
  files: string[];
  shards: string[];
  bytes: number;
  notes: string[];
}

/** The shard files of `bytes` bytes of weights, as tfjs names them: group1-shard1of3.bin, ... */
export function shardNames(bytes: number, shardBytes = SHARD_BYTES): string[] {
  const n = Math.max(1, Math.ceil(bytes / shardBytes));
  return Array.from({ length: n }, (_, i) => `group1-shard${i + 1}of${n}.bin`);
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

/** Appended to the emitted module: the folder's weights through tf.io. */
const LOADER = `
/** model.json's \`format\` in a folder written by \`vlmc export --format tfjs\`. */
export const FORMAT = "${TFJS_FORMAT}";

/**
 * The exported folder's weights, read with tf.io: \`url\` is its model.json (relative to the page, or
 * any URL tf.io.http takes); the shards it lists are fetched from beside it. \`fetchFunc\` stands in
 * for fetch (in Node, one that reads files). Every parameter must be there with its shape.
 */
export async function loadExport(url: string = "model.json", fetchFunc?: typeof fetch): Promise<Weights> {
  const handler = tf.io.http(url, fetchFunc ? { fetchFunc } : {});
  const artifacts = await handler.load!();
  if (artifacts.format !== FORMAT) throw new Error(\`\${url}: its format is \${JSON.stringify(artifacts.format)}, not "\${FORMAT}" (a folder written by \\\`vlmc export --format tfjs\\\`)\`);
  if (!artifacts.weightSpecs || !artifacts.weightData) throw new Error(\`\${url} lists no weights\`);
  const meta = artifacts.userDefinedMetadata as { vlmc?: { hash?: string } } | undefined;
  if (meta?.vlmc?.hash !== undefined && meta.vlmc.hash !== HASH) throw new Error(\`\${url} holds the weights of another architecture (\${meta.vlmc.hash}; this module is \${HASH})\`);
  const named = tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs);
  for (const p of PARAMS) {
    const t = named[p.name];
    if (!t) throw new Error(\`\${url} has no weights for \${p.name}\`);
    if (t.shape.join(",") !== p.shape.join(",")) throw new Error(\`\${url}: \${p.name} is [\${t.shape.join(", ")}], the model needs [\${p.shape.join(", ")}]\`);
  }
  return named as unknown as Weights;
}
`;

/** The emitted module for the export, or the reason there is none. */
function exportModule(ir: Ir): { ts: string; js: string } | { why: string } {
  const emitted = emitTs(ir, { where: () => ({ file: "model.json", start: 0, end: 0 }), source: "the model.json beside it (`vlmc export --format tfjs`)" });
  if (emitted.text === null) {
    const first = emitted.diagnostics.find((d) => d.severity === "error")!;
    return { why: `model.ts was not written: ${first.code} ${first.message}` };
  }
  // The module's usage line names a safetensors file; this folder's weights are model.json's.
  const text = emitted.text.replace('//   const w = loadWeights(await (await fetch("weights.safetensors")).arrayBuffer());', '//   const w = await loadExport("model.json"); // this folder (or loadWeights(bytes) for a weights.safetensors)') + LOADER;
  const ts = (require("ts-morph") as typeof TsMorph).ts;
  const js = ts.transpileModule(text, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022 } }).outputText;
  return { ts: text, js };
}

function metadataOf(ir: Ir, tokenizer: Tokenizer, tokFiles: string[], params: number, module: string | null): TfjsExportMetadata {
  const enc = ir.modules.encoder;
  let pixels: TfjsExportMetadata["pixels"] = null;
  if (enc) {
    const [, height, width, channels] = enc.input as [string, number, number, number];
    const px = enc.pixels ?? { normalize: "unit", mean: [0, 0, 0], std: [1, 1, 1], resize: "stretch" };
    pixels = { height, width, channels, resize: px.resize, normalize: px.normalize, mean: [...px.mean], std: [...px.std] };
  }
  const ids: Partial<Record<Special, number>> = {};
  for (const role of ["pad", "bos", "eos", "unk"] as const) if (tokenizer[role] !== null) ids[role] = tokenizer[role]!;
  return {
    vlmc: { version: packageVersion(), model: ir.model, hash: ir.hash, parameters: params },
    tokenizer: ir.tokenizer ? { kind: tokenizer.kind, size: tokenizer.size, files: tokFiles, ids } : null,
    pixels,
    visualTokens: ir.modules.decoder ? visualTokens(ir) : 0,
    context: ir.modules.decoder ? decoderContext(ir) : null,
    module,
  };
}

/**
 * Exports a run (its IR, tokenizer and weights file) to `out` as TensorFlow.js artifacts. Throws
 * ExportError (nothing written) when the weights do not fit the IR. `onProgress`: bytes written
 * so far and in all, after each file.
 */
export function exportTfjs(
  run: { ir: Ir; tokenizer: Tokenizer; weights: string; weightsLabel: string; dir?: string },
  out: string,
  options: { shardBytes?: number; onProgress?: (written: number, total: number) => void } = {},
): TfjsExport {
  const { ir, tokenizer } = run;
  const params = irParams(ir);
  const loaded = loadWeights(run.weights, params, { expectHash: ir.hash });
  if (!loaded.ok) throw new ExportError(`${run.weightsLabel} does not fit the run's ir.json`, loaded.problems.map((p) => p.message));
  const notes = loaded.warnings.filter((w) => w.kind === "hash").map((w) => `${run.weightsLabel}: ${w.message}`);

  // The weights in manifest order, little-endian float32, one buffer cut into shards.
  const bytes = params.reduce((a, p) => a + 4 * p.shape.reduce((x, y) => x * y, 1), 0);
  const all = new Uint8Array(bytes);
  let at = 0;
  for (const p of params) {
    const v = loaded.values.get(p.name)!;
    if (endianness() === "LE") new Float32Array(all.buffer, at, v.length).set(v);
    else {
      const view = new DataView(all.buffer, at, 4 * v.length);
      v.forEach((x, i) => view.setFloat32(4 * i, x, true));
    }
    at += 4 * v.length;
  }
  const shardBytes = options.shardBytes ?? SHARD_BYTES;
  const shards = shardNames(bytes, shardBytes);
  const manifest = [{ paths: shards, weights: params.map((p): TfjsManifestEntry => ({ name: p.name, shape: [...p.shape], dtype: "float32" })) }];

  // A pretrained tfjs encoder's folder travels with the export (its weights are not parameters,
  // so not in the shards): its files under pretrained/NAME/, the IR pointing there.
  const bundled = bundlePretrained(ir, run.dir);
  const module = exportModule(ir);
  if ("why" in module) notes.push(module.why);
  const tokFiles = ir.tokenizer ? tokenizer.files() : {};
  const metadata = metadataOf(ir, tokenizer, Object.keys(tokFiles), params.length, "ts" in module ? "model.js" : null);
  const modelJson = {
    format: TFJS_FORMAT,
    generatedBy: `vlmc ${packageVersion()}`,
    convertedBy: "vlmc export --format tfjs",
    modelTopology: bundled.ir,
    weightsManifest: manifest,
    userDefinedMetadata: metadata,
  };

  const files = new Map<string, Uint8Array | string>();
  files.set("model.json", `${JSON.stringify(modelJson)}\n`);
  shards.forEach((name, i) => files.set(name, all.subarray(i * shardBytes, Math.min(bytes, (i + 1) * shardBytes))));
  for (const [name, text] of Object.entries(tokFiles)) files.set(name, text);
  for (const [name, data] of bundled.files) files.set(name, data);
  if ("ts" in module) {
    files.set("model.ts", module.ts);
    files.set("model.js", module.js);
  }
  writeFolderAtomic(out, files, options.onProgress);
  return { files: [...files.keys()], shards, bytes, notes };
}

/**
 * The files of the IR's pretrained tfjs folders (checked against their recorded sha256) as
 * `pretrained/NAME/FILE`, and a copy of the IR whose layers point there. `dir`: the folder the
 * IR's paths are relative to (the run's); needed only when there is such a layer.
 */
function bundlePretrained(ir: Ir, dir: string | undefined): { ir: Ir; files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  const layers = (i: Ir): IrLayer[] => {
    const out: IrLayer[] = [];
    const walk = (ls: IrLayer[]) => ls.forEach((l) => (l.kind === "tfjs_model" ? out.push(l) : l.children && walk(l.children)));
    for (const m of Object.values(i.modules)) if (m) walk(m.layers);
    return out;
  };
  if (layers(ir).length === 0) return { ir, files };
  if (dir === undefined) throw new ExportError("the model runs a pretrained tfjs folder, and the run's folder was not given to find it");
  let absolute: Ir;
  try {
    absolute = resolvePretrained(ir, dir);
  } catch (err) {
    if (err instanceof PretrainedError) throw new ExportError(`the pretrained encoder cannot be exported: ${err.message}`);
    throw err;
  }
  const copy = structuredClone(ir);
  const used = new Set<string>();
  layers(absolute).forEach((l, k) => {
    const folder = String(l.attrs.weights);
    let name = basename(folder);
    while (used.has(name)) name = `${basename(folder)}-${k}`;
    used.add(name);
    for (const f of l.attrs.files as string[]) files.set(`pretrained/${name}/${f}`, new Uint8Array(readFileSync(join(folder, f))));
    layers(copy)[k]!.attrs.weights = `pretrained/${name}`;
  });
  return { ir: copy, files };
}

// ---------------------------------------------------------------------------------------------
// Reading an export back

/** A folder that is not a readable tfjs export: one line; `usage` when it could not be read at all. */
export class TfjsExportError extends Error {
  constructor(
    message: string,
    readonly usage = false,
  ) {
    super(message);
    this.name = "TfjsExportError";
  }
}

export interface TfjsExportContents {
  ir: Ir;
  /** The export's tokenizer (null for a model without one). */
  tokenizer: Tokenizer | null;
  metadata: TfjsExportMetadata;
  /** Every parameter's values, by vlmc name. */
  values: Map<string, Float32Array>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Reads a folder written by `exportTfjs`: model.json through tf.io (a file IOHandler built with
 * `tf.io.getModelArtifactsForJSON`, the shards read from disk), the IR admitted as any IR
 * document is, the weights decoded by `tf.io.decodeWeights` and checked against the IR's
 * parameters, and the tokenizer files. Throws TfjsExportError with one line on anything wrong.
 */
export async function loadTfjsExport(tf: Tf, dir: string): Promise<TfjsExportContents> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new TfjsExportError(`${dir}: no such folder`, true);
  const file = join(dir, "model.json");
  if (!existsSync(file)) throw new TfjsExportError(`${dir}: not a tfjs export (no model.json; \`vlmc export --run RUN --format tfjs --out ${dir}\` makes one)`, true);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new TfjsExportError(`${file}: ${err instanceof SyntaxError ? `not JSON (${err.message})` : (err as Error).message}`, !(err instanceof SyntaxError));
  }
  if (!isObject(json)) throw new TfjsExportError(`${file}: not a tfjs model.json (not a JSON object)`);
  if (json.format !== TFJS_FORMAT) throw new TfjsExportError(`${file}: its format is ${JSON.stringify(json.format)}, not "${TFJS_FORMAT}" (a folder written by \`vlmc export --format tfjs\`)`);
  const groups = json.weightsManifest;
  if (!Array.isArray(groups) || !groups.every((g) => isObject(g) && Array.isArray(g.paths) && g.paths.every((p) => typeof p === "string") && Array.isArray(g.weights))) {
    throw new TfjsExportError(`${file}: \`weightsManifest\` is not a list of { paths, weights }`);
  }
  // Shards sit beside model.json: a path out of the folder is not one of this export's.
  const outside = groups.flatMap((g) => g.paths as string[]).find((p) => basename(p) !== p || p === "." || p === "..");
  if (outside !== undefined) throw new TfjsExportError(`${file}: the shard ${JSON.stringify(outside)} is not a file beside model.json`);
  const handler = {
    load: () =>
      tf.io.getModelArtifactsForJSON(json as unknown as Parameters<Tf["io"]["getModelArtifactsForJSON"]>[0], async (manifest) => {
        const buffers: ArrayBuffer[] = [];
        for (const g of manifest) {
          for (const p of g.paths) {
            const shard = join(dir, p);
            if (!existsSync(shard)) throw new TfjsExportError(`${shard}: missing (model.json lists it)`, true);
            const b = readFileSync(shard);
            buffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
          }
        }
        return [manifest.flatMap((g) => g.weights), buffers];
      }),
  };
  const artifacts = await handler.load();

  const admitted = admitIr(artifacts.modelTopology, file);
  if (!admitted.ir) throw new TfjsExportError(`${file}: its modelTopology is not a valid IR: ${admitted.diagnostics.map((d) => `${d.code} ${d.message}`)[0] ?? "rejected"}`);
  // A bundled pretrained encoder's folder (pretrained/NAME), made absolute once its files are checked.
  let ir: Ir;
  try {
    ir = resolvePretrained(admitted.ir, dir);
  } catch (err) {
    if (err instanceof PretrainedError) throw new TfjsExportError(`${dir}: ${err.message}`);
    throw err;
  }
  const specs = artifacts.weightSpecs ?? [];
  const params = irParams(ir);
  const bySpec = new Map(specs.map((s) => [s.name, s]));
  for (const p of params) {
    const s = bySpec.get(p.name);
    if (!s) throw new TfjsExportError(`${file}: the manifest has no weights for ${p.name} ${formatShape(p.shape)}`);
    if (s.dtype !== "float32" || s.shape.join() !== p.shape.join()) throw new TfjsExportError(`${file}: ${p.name} is ${s.dtype} ${formatShape(s.shape)} in the manifest, the IR makes it float32 ${formatShape(p.shape)}`);
  }
  const need = specs.reduce((a, s) => a + 4 * s.shape.reduce((x, y) => x * y, 1), 0);
  const data = artifacts.weightData;
  const have = data === undefined ? 0 : Array.isArray(data) ? data.reduce((a, b) => a + b.byteLength, 0) : data.byteLength;
  if (have !== need) throw new TfjsExportError(`${dir}: the shards hold ${have} bytes, the manifest's weights take ${need} (a shard is truncated or from another export)`);
  const named = tf.io.decodeWeights(data!, specs);
  const values = new Map<string, Float32Array>();
  try {
    for (const p of params) values.set(p.name, (named[p.name]!.dataSync() as Float32Array).slice());
  } finally {
    tf.dispose(Object.values(named));
  }
  const metadata = artifacts.userDefinedMetadata as unknown as TfjsExportMetadata;
  let tokenizer: Tokenizer | null = null;
  if (ir.tokenizer) {
    try {
      tokenizer = loadRunTokenizer(dir, ir.tokenizer);
    } catch (err) {
      throw new TfjsExportError(`${join(dir, "tokenizer.json")}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : (err as Error).message}`);
    }
  }
  return { ir, tokenizer, metadata, values };
}
