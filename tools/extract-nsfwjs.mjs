// Extracts the MobileNetV2 that the `nsfwjs` npm package ships into a standard tfjs model folder,
// models/nsfwjs-mobilenet_v2/ at the repository root (not committed: .gitignore), which the
// `tfjs` encoder preset reads (docs/language.md):
//
//   model.json                   { format, modelTopology, weightsManifest } as tfjs writes it
//   group1-shard1of1.bin         the weights (uint8-quantized, as nsfwjs ships them)
//   preprocessor_config.json     the pixels nsfwjs feeds the model, in Hugging Face's naming
//                                (pixels / 255, no mean or std, 224 x 224)
//
// nsfwjs ships the model as two UMD JavaScript modules (the topology with the manifest, and the
// shard as a base64 string) so that bundlers can inline it; they are `require`d here, decoded
// and written out as files. It runs from package.json's `install` script (during `npm ci`,
// before TypeScript is compiled: plain JavaScript and Node's standard library only) and on
// first use (runtime/pretrained/folder.ts runs it when a spec names the folder and it is
// missing). It never fails an install: without nsfwjs it prints one line and exits 0.
// `--force` rewrites the folder; `--out DIR` writes elsewhere (the tests use it).
//
// The folder is written whole or not at all: into a temporary sibling, each file flushed, then
// renamed into place, so a reader (another `vlmc check` at the same time) never sees half of it.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SOURCE = join("dist", "models", "mobilenet_v2");
export const DEFAULT_OUT = join(root, "models", "nsfwjs-mobilenet_v2");
const SHARD = "group1-shard1of1.bin";
/** What nsfwjs does to an image before the model (its core.js: `fromPixels(img).toFloat().div(255)`, resized to 224). */
const PREPROCESSOR = {
  do_resize: true,
  size: { height: 224, width: 224 },
  resample: 2,
  do_rescale: true,
  rescale_factor: 1 / 255,
  do_normalize: true,
  image_mean: [0, 0, 0],
  image_std: [1, 1, 1],
};

class Missing extends Error {}

/** The model's files as name -> bytes, from the installed nsfwjs. Throws Missing without it. */
export function nsfwjsFiles() {
  const require = createRequire(join(root, "package.json"));
  try {
    // Its `exports` map hides these files from `require("nsfwjs/...")`: they are required by path.
    const pkg = packageDir(require.resolve("nsfwjs"));
    const { modelTopology: topology, weightsManifest: manifest } = require(join(pkg, SOURCE, "model.min.js"));
    const shard = require(join(pkg, SOURCE, "group1-shard1of1.min.js"));
    const version = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")).version;
    if (!topology || !Array.isArray(manifest) || manifest.length !== 1 || typeof shard !== "string") throw new Error("nsfwjs's mobilenet_v2 modules are not shaped as expected (a topology, one weight group, one base64 shard)");
    const bytes = Buffer.from(shard, "base64");
    const need = manifest[0].weights.reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1) * bytesPer(w), 0);
    if (bytes.length !== need) throw new Error(`nsfwjs's mobilenet_v2 shard has ${bytes.length} bytes, its manifest needs ${need}`);
    const model = {
      format: "layers-model",
      generatedBy: `keras v${topology.keras_version ?? "?"}`,
      convertedBy: `vlmc tools/extract-nsfwjs.mjs from nsfwjs ${version}`,
      modelTopology: topology,
      weightsManifest: [{ paths: [SHARD], weights: manifest[0].weights }],
    };
    return new Map([
      ["model.json", JSON.stringify(model)],
      [SHARD, bytes],
      ["preprocessor_config.json", `${JSON.stringify(PREPROCESSOR, null, 2)}\n`],
    ]);
  } catch (err) {
    if (err && err.code === "MODULE_NOT_FOUND") throw new Missing("the nsfwjs package is not installed (npm ci installs it)");
    throw err;
  }
}

/** The folder of the package a file of it lies in: the nearest one up with a package.json. */
function packageDir(file) {
  let dir = dirname(file);
  while (!existsSync(join(dir, "package.json")) || JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).name !== "nsfwjs") {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json of nsfwjs above ${file}`);
    dir = up;
  }
  return dir;
}

function bytesPer(w) {
  const q = w.quantization?.dtype;
  if (q === "uint8") return 1;
  if (q === "uint16" || q === "float16") return 2;
  return 4;
}

/** Writes the folder atomically (see the header). Returns `out`. */
export function extract(out = DEFAULT_OUT) {
  const files = nsfwjsFiles();
  const parent = dirname(out);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.${basename(out)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  const old = `${tmp}.old`;
  try {
    mkdirSync(tmp);
    for (const [name, data] of files) writeFileSync(join(tmp, name), data, { flush: true });
    fsyncDir(tmp);
    if (existsSync(out)) renameSync(out, old);
    try {
      renameSync(tmp, out);
    } catch (err) {
      // Another process extracted it first (a folder cannot be renamed over a non-empty one): theirs will do.
      if (!existsSync(join(out, "model.json"))) throw err;
    }
    fsyncDir(parent);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    if (existsSync(old) && !existsSync(out)) renameSync(old, out);
    rmSync(old, { recursive: true, force: true });
  }
  return out;
}

function fsyncDir(dir) {
  let fd;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // Some filesystems cannot sync a directory; the rename is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf("--out");
  const out = at > 0 && process.argv[at + 1] ? resolve(process.argv[at + 1]) : DEFAULT_OUT;
  const quiet = process.argv.includes("--quiet");
  const say = (line) => void (quiet ? process.stderr : process.stdout).write(`vlmc nsfwjs: ${line}\n`);
  if (existsSync(join(out, "model.json")) && !process.argv.includes("--force")) {
    if (!quiet) say(`${out} is already there`);
  } else {
    try {
      extract(out);
      if (!quiet) say(`extracted MobileNetV2 to ${out}`);
    } catch (err) {
      // Never fails the install: the `tfjs` encoder preset reports a missing folder itself.
      say(`not extracted: ${err instanceof Missing ? err.message : `${err?.message ?? err}`}`);
      process.exitCode = process.argv.includes("--strict") ? 1 : 0;
    }
  }
}
