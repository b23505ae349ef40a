// `vlmc compile --emit ts` (compiler/emit/): for the seed spec, every example spec under
// examples/ and two specs that between them use every layer kind, the emitted module
// type-checks alone under `tsc --strict` (no Node types: it must work in a browser), and, run
// in this process on the same backend as the runtime, gives the runtime's logits for the same
// weights (the runtime's random weights, written as safetensors and read by the module's own
// loader) and the same input. Also: its greedy generation against runtime/generate.ts, its
// preprocessing against training's, its loader on F16/BF16 files and on bad files, and the
// diagnostics (E0801, E0802) and atomic output of the command.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import type * as Tfjs from "@tensorflow/tfjs";
import ts from "typescript";
import { compile } from "../compiler/compile.js";
import { emitTs } from "../compiler/emit/ts.js";
import type { Ir, IrLayer } from "../compiler/ir/types.js";
import { layerKinds } from "../compiler/layers/index.js";
import type { LayerKind } from "../compiler/layers/kind.js";
import type { Span } from "../compiler/source.js";
import { initBackend, type Tf } from "../runtime/backend.js";
import { normalizePixels } from "../runtime/data/sources/common.js";
import { resizeImage } from "../runtime/data/images.js";
import { greedyDecode } from "../runtime/generate.js";
import { irParams, Model } from "../runtime/model.js";
import { decodeSafetensors, encodeSafetensors } from "../runtime/safetensors.js";
import { encodeWeights } from "../runtime/weights.js";
import { runVlmc } from "./helpers/cli.js";
import { relError } from "./helpers/numeric.js";
import { repoPath } from "./helpers/paths.js";

/** Two small specs that, with the others, reach every layer kind and option the emitter writes. */
const EXTRA: Record<string, string> = {
  // rmsnorm, swiglu, rotary positions, grouped key/value heads, an untied head; no encoder.
  "llama-gqa": `vlm 0.1
model llama_gqa {
  tokenizer chars { alphabet: "abcdefgh", specials: [pad, bos, eos, unk] }
  decoder llama { dim: 16, heads: 4, kv_heads: 2, layers: 2, context: 12, hidden: 24 }
}
`,
  // A custom encoder (CLS token, pooled output, sinusoidal positions, silu, relu, dropout, a
  // numeric attention scale) and a custom decoder (learned positions, tanh GELU, head bias).
  custom: `vlm 0.1
model custom {
  tokenizer chars { alphabet: "xyz ", specials: [pad] }
  encoder {
    image: 16 x 16 x 3
    patch_embed(patch: 8, dim: 16, cls: true) -> positions(sinusoidal) ->
    residual { layernorm -> attention(heads: 2, scale: 0.3, qkv_bias: true) } ->
    residual { layernorm -> mlp(hidden: 32, activation: silu, dropout: 0.1) } ->
    layernorm
    output: pool
  }
  projector { linear(24) -> relu -> dropout(0.2) -> linear(decoder.dim, bias: false) -> silu -> quick_gelu }
  decoder gpt { dim: 8, heads: 2, layers: 1, context: 10, activation: gelu_tanh, tie_embeddings: false, head_bias: true }
}
`,
};

interface Case {
  name: string;
  ir: Ir;
  text: string;
  /** The emitted module, loaded. */
  mod?: EmittedModule;
}

/** What the tests use of an emitted module (it exports more). */
interface EmittedModule {
  loadWeights(buffer: ArrayBuffer, warn?: (m: string) => void): Record<string, Tfjs.Tensor>;
  forward(w: unknown, ...inputs: unknown[]): Tfjs.Tensor;
  generateIds(w: unknown, imagesOrRows: unknown, maxTokens: number, start?: number): Promise<number[][]>;
  preprocess?(images: { width: number; height: number; data: ArrayLike<number> }[]): Tfjs.Tensor;
  encode?(text: string): number[];
  decode?(ids: number[]): string;
  IMAGE?: { height: number; width: number; resize: string };
  BOS?: number;
  EOS?: number;
  PAD?: number;
}

const dir = mkdtempSync(join(tmpdir(), "vlmc-emit-ts-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const nowhere = (file: string) => (): Span => ({ file, start: 0, end: 0 });

/** specs/seemore.vlm, each .vlm under examples/ (one level of folders), then the extra specs. */
function specFiles(): { name: string; path: string }[] {
  const out = [{ name: "seemore", path: repoPath("specs", "seemore.vlm") }];
  const examples = repoPath("examples");
  for (const entry of readdirSync(examples, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const files = entry.isDirectory() ? readdirSync(join(examples, entry.name)).map((f) => join(examples, entry.name, f)) : [join(examples, entry.name)];
    for (const f of files.filter((p) => p.endsWith(".vlm")).sort()) out.push({ name: `example-${basename(f, ".vlm")}`, path: f });
  }
  for (const [name, text] of Object.entries(EXTRA)) {
    const path = join(dir, `${name}.vlm`);
    writeFileSync(path, text);
    out.push({ name, path });
  }
  return out;
}

let tf: Tf;
const cases: Case[] = [];

before(async () => {
  // The module and the runtime share one tfjs (the folder's node_modules links to the repo's), so
  // one backend runs both: wasm (ten times faster than cpu on the seed model), where the runtime
  // uses the native accelerator's fused kernels when it is built and the module tfjs's own ops.
  symlinkSync(repoPath("node_modules"), join(dir, "node_modules"), "dir");
  writeFileSync(join(dir, "package.json"), '{"type": "module"}\n');
  tf = (await initBackend("wasm", { log: () => {} })).tf;
  for (const { name, path } of specFiles()) {
    const r = compile(path, { baseDir: dir });
    assert.ok(r.ir, `${path} does not compile: ${r.diagnostics.map((d) => `${d.code} ${d.message}`).join("; ")}`);
    const emitted = emitTs(r.ir, { where: nowhere(path), source: basename(path) });
    // A pretrained tfjs encoder (examples/recipe) runs a model folder, not vlmc's layers: no module.
    if (emitted.diagnostics.length > 0 && emitted.diagnostics.every((d) => d.code === "E0801" && d.message.includes("`tfjs_model`"))) continue;
    assert.deepEqual(
      emitted.diagnostics.map((d) => `${d.code} ${d.message}`),
      [],
      `${path}: --emit ts reported diagnostics`,
    );
    writeFileSync(join(dir, `${name}.ts`), emitted.text!);
    cases.push({ name, ir: r.ir, text: emitted.text! });
  }
  for (const c of cases) {
    const js = ts.transpileModule(c.text, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022 } }).outputText;
    writeFileSync(join(dir, `${c.name}.js`), js);
    c.mod = (await import(pathToFileURL(join(dir, `${c.name}.js`)).href)) as EmittedModule;
  }
});

test("the modules cover the seed spec, the examples and every layer kind", () => {
  assert.ok(cases.some((c) => c.name === "seemore") && cases.some((c) => c.name === "example-shapes"));
  const kinds = new Set<string>();
  const walk = (ls: IrLayer[]) => {
    for (const l of ls) {
      kinds.add(l.kind);
      if (l.children) walk(l.children);
    }
  };
  for (const c of cases) for (const m of Object.values(c.ir.modules)) if (m) walk(m.layers);
  // Every kind with a TypeScript form is emitted by some case; only the pretrained tfjs model has none.
  assert.deepEqual([...layerKinds.values()].filter((k) => !k.emitTs).map((k) => k.name), ["tfjs_model"]);
  assert.deepEqual([...layerKinds.values()].filter((k) => k.emitTs && !kinds.has(k.name)).map((k) => k.name), [], "layer kinds no case emits");
});

test("each module's only import is @tensorflow/tfjs, and it reads layer by layer with shape comments", () => {
  for (const c of cases) {
    const imports = [...c.text.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]);
    assert.deepEqual(imports, ["@tensorflow/tfjs"], c.name);
    const body = c.text.slice(c.text.indexOf("export function forward"));
    const consts = body.slice(0, body.indexOf("\n}\n")).split("\n").filter((l) => /^\s+const \w+ = /.test(l));
    assert.ok(consts.length > 5, c.name);
    // Every tensor line but B and T ends with its shape.
    for (const l of consts.filter((l) => !/const [BT] = /.test(l))) assert.match(l, /; \/\/ \[[^\]]*\]$/, `${c.name}: ${l}`);
  }
  assert.match(cases.find((c) => c.name === "example-shapes")!.text, /const attn = linear\(mergeHeads\(tf\.matMul\(att, v\)\), w\["decoder\.blocks\.0\.attn\.o\.weight"\], w\["decoder\.blocks\.0\.attn\.o\.bias"\]\); \/\/ \[B, 9\+T, 64\]/);
});

test("each module passes tsc --strict --noEmit alone (DOM, no Node types)", () => {
  // skipLibCheck, as in the repo's tsconfig: tfjs 4.22's own .d.ts do not check (`Long` is missing).
  const tsconfig = {
    compilerOptions: { strict: true, noEmit: true, target: "ES2022", module: "ES2022", moduleResolution: "Bundler", lib: ["ES2022", "DOM"], types: [], skipLibCheck: true },
    files: cases.map((c) => `${c.name}.ts`),
  };
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(tsconfig));
  const r = spawnSync(process.execPath, [repoPath("node_modules", "typescript", "bin", "tsc"), "-p", join(dir, "tsconfig.json")], { encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, `tsc reported:\n${r.stdout}${r.stderr}`);
});

/** Random images [B, H, W, C] and tokens [B, T] for a model, from a fixed seed. */
function inputs(ir: Ir, batch: number, text: number): { images: Tfjs.Tensor4D | null; tokens: Tfjs.Tensor2D } {
  const enc = ir.modules.encoder;
  const vocab = ir.modules.decoder!.output[2] as number;
  const [h, w, c] = (enc?.input.slice(1) ?? []) as number[];
  const images = enc ? (tf.randomUniform([batch, h!, w!, c!], -2, 2, "float32", 11) as Tfjs.Tensor4D) : null;
  const tokens = tf.randomUniform([batch, text], 0, vocab, "int32", 12) as Tfjs.Tensor2D;
  return { images, tokens };
}

/** Bytes as an ArrayBuffer of their own (what `fetch(...).arrayBuffer()` gives). */
const arrayBuffer = (bytes: Uint8Array): ArrayBuffer => bytes.slice().buffer;

test("each module's logits match the runtime's for the same weights (loaded from safetensors) and input", () => {
  for (const c of cases) {
    const model = Model.create(tf, c.ir, 3);
    const weights = c.mod!.loadWeights(arrayBuffer(encodeWeights(model)), (m) => assert.fail(m));
    try {
      const { images, tokens } = inputs(c.ir, 2, 5);
      const want = model.forward(images, tokens, { training: false, checkShapes: true });
      const got = c.mod!.forward(weights, ...(images ? [images] : []), tokens);
      assert.deepEqual(got.shape, want.shape, c.name);
      const err = relError(got.dataSync() as Float32Array, want.dataSync() as Float32Array);
      assert.ok(err < 1e-5, `${c.name}: max|module - runtime| / max|runtime| = ${err}`);
      tf.dispose([want, got, tokens, ...(images ? [images] : [])]);
    } finally {
      model.dispose();
      tf.dispose(Object.values(weights));
    }
  }
});

test("greedy generation gives the runtime's tokens", async () => {
  for (const name of ["example-shapes", "llama-gqa"]) {
    const c = cases.find((x) => x.name === name)!;
    const model = Model.create(tf, c.ir, 5);
    const weights = c.mod!.loadWeights(arrayBuffer(encodeWeights(model)));
    try {
      const { images } = inputs(c.ir, 3, 1);
      const opts = { start: c.mod!.BOS!, eos: c.mod!.EOS ?? null, pad: c.mod!.PAD ?? 0, maxTokens: 6 };
      const want = await greedyDecode(model, images, opts, images ? undefined : 3);
      const got = await c.mod!.generateIds(weights, images ?? 3, 6);
      assert.deepEqual(got, want.ids.map((ids) => Array.from(ids)), name);
      if (images) images.dispose();
    } finally {
      model.dispose();
      tf.dispose(Object.values(weights));
    }
  }
});

test("the tokenizer: ids as runtime/tokenizer.ts gives them; unknown characters", () => {
  const shapes = cases.find((c) => c.name === "example-shapes")!.mod!;
  // Ids: pad 0, bos 1, eos 2, then the alphabet " abcdefghilmnoqrstuwy".
  assert.deepEqual(shapes.encode!("a red"), [4, 3, 18, 8, 7]);
  assert.equal(shapes.decode!([1, 4, 3, 18, 8, 7, 2, 0]), "a red");
  assert.throws(() => shapes.encode!("a pink"), /"p" \(character 2\) is not in the vocabulary/);
  const llama = cases.find((c) => c.name === "llama-gqa")!.mod!;
  assert.deepEqual(llama.encode!("a?"), [4, 3]); // ? -> unk (id 3)
});

test("preprocess: pixels at the encoder's size become exactly what training feeds; RGBA on white; crop and pad", async () => {
  const c = cases.find((x) => x.name === "example-shapes")!;
  const mod = c.mod!;
  const pixels = c.ir.modules.encoder!.pixels!;
  const { height, width } = mod.IMAGE!;
  const rgb = new Uint8Array(height * width * 3).map((_, i) => (i * 37 + 11) % 256);
  const want = normalizePixels([rgb], pixels);
  const got = mod.preprocess!([{ width, height, data: rgb }]);
  assert.deepEqual(got.shape, [1, height, width, 3]);
  assert.deepEqual(got.dataSync(), want);
  // RGBA: opaque pixels as they are, transparent ones white.
  const rgba = new Uint8Array(height * width * 4).map((_, i) => (i % 4 === 3 ? (i % 8 === 3 ? 255 : 0) : (i * 37 + 11) % 256));
  const flat = new Uint8Array(height * width * 3).map((_, i) => (Math.floor(i / 3) % 2 === 0 ? rgba[Math.floor(i / 3) * 4 + (i % 3)]! : 255));
  assert.deepEqual(mod.preprocess!([{ width, height, data: rgba }]).dataSync(), normalizePixels([flat], pixels));
  assert.throws(() => mod.preprocess!([{ width, height, data: new Uint8Array(10) }]), new RegExp(`a ${height} x ${width} image needs ${height * width * 3} \\(RGB\\) or ${height * width * 4} \\(RGBA\\) values, found 10`));
  tf.dispose(got);

  // Crop and pad at scale 1 (no resampling): the geometry of sharp's `cover` and `contain`.
  for (const mode of ["crop", "pad"] as const) {
    const text = readFileSync(repoPath("examples", "shapes", "shapes.vlm"), "utf8").replace("normalize: stats", `resize: ${mode}\n    normalize: stats`);
    const path = join(dir, `shapes-${mode}.vlm`);
    writeFileSync(path, text);
    const ir = compile(path, { baseDir: dir }).ir!;
    assert.equal(ir.modules.encoder!.pixels!.resize, mode);
    const src = emitTs(ir, { where: nowhere(path), source: path }).text!;
    writeFileSync(join(dir, `shapes-${mode}.js`), ts.transpileModule(src, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022 } }).outputText);
    const m = (await import(pathToFileURL(join(dir, `shapes-${mode}.js`)).href)) as EmittedModule;
    // For an S x S encoder input: crop, 2S wide, cut to the middle S columns; pad, S/2 wide, centred on black.
    const S = ir.modules.encoder!.input[1] as number;
    const w = mode === "crop" ? 2 * S : S / 2;
    const img = new Uint8Array(S * w * 3).map((_, i) => (i * 53 + 7) % 256);
    const ref = await resizeImage({ width: w, height: S, channels: 3, data: img }, { height: S, width: S }, mode);
    const out = m.preprocess!([{ width: w, height: S, data: img }]);
    assert.deepEqual(out.dataSync(), normalizePixels([ref.data], ir.modules.encoder!.pixels!), mode);
    tf.dispose(out);
  }
});

test("the loader: F16 and BF16 files as the runtime reads them; missing, misshapen and truncated tensors named", () => {
  const c = cases.find((x) => x.name === "example-shapes")!;
  const model = Model.create(tf, c.ir, 7);
  const params = irParams(c.ir);
  try {
    for (const dtype of ["F16", "BF16"] as const) {
      const bytes = encodeSafetensors(params.map((p) => ({ name: p.name, dtype, shape: p.shape, data: model.variables.get(p.name)!.dataSync() as Float32Array })));
      const read = decodeSafetensors(bytes);
      assert.ok(read.ok);
      const w = c.mod!.loadWeights(arrayBuffer(bytes));
      for (const p of params) assert.deepEqual(w[p.name]!.dataSync(), read.tensors.get(p.name)!.data, `${dtype} ${p.name}`);
      tf.dispose(Object.values(w));
    }
    const tensors = params.map((p) => ({ name: p.name, dtype: "F32" as const, shape: p.shape, data: model.variables.get(p.name)!.dataSync() as Float32Array }));
    const load = (ts: typeof tensors, meta: Record<string, string> = {}) => c.mod!.loadWeights(arrayBuffer(encodeSafetensors(ts, meta)), () => {});
    assert.throws(() => load(tensors.filter((t) => t.name !== "decoder.ln_f.bias")), /^Error: weights: the file has no tensor decoder\.ln_f\.bias$/);
    const wrong = tensors.map((t) => (t.name === "encoder.pos_embed.weight" ? { ...t, shape: [4, 144], data: new Float32Array(576) } : t));
    assert.throws(() => load(wrong), /weights: encoder\.pos_embed\.weight is \[4, 144\] in the file, the model needs \[9, 64\]/);
    const full = encodeSafetensors(tensors);
    assert.throws(() => c.mod!.loadWeights(arrayBuffer(full.subarray(0, full.length - 100))), /lies outside the file \(is it truncated\?\)/);
    assert.throws(() => c.mod!.loadWeights(arrayBuffer(full.subarray(0, 20))), /the safetensors header says \d+ bytes, the file has 12 after the length/);
    const warnings: string[] = [];
    tf.dispose(Object.values(c.mod!.loadWeights(arrayBuffer(encodeSafetensors(tensors, { "vlmc.hash": "sha256:other" })), (m) => warnings.push(m))));
    assert.deepEqual(warnings, [`weights: the file was written for the architecture sha256:other, not this one (${c.ir.hash})`]);
  } finally {
    model.dispose();
  }
});

test("a layer kind without a TypeScript form is E0801 at its layer; a tokenizer other than chars is E0802; no text either way", () => {
  const path = repoPath("examples", "shapes", "shapes.vlm");
  const r = compile(path);
  const noGelu = new Map<string, LayerKind>([...layerKinds].map(([k, v]) => [k, k === "gelu" ? { ...v, emitTs: undefined } : v] as [string, LayerKind]));
  const seen: unknown[] = [];
  const where = (p: readonly (string | number)[]): Span => {
    seen.push(p);
    return { file: path, start: 1, end: 2 };
  };
  const a = emitTs(r.ir!, { where, source: path, kinds: noGelu });
  assert.equal(a.text, null);
  assert.deepEqual(a.diagnostics.map((d) => [d.code, d.message]), [["E0801", "`vlmc compile --emit ts` cannot write layer kind `gelu` yet"]]);
  assert.deepEqual(seen, [["modules", "projector", "layers", 1]]);
  const bpe = { ...r.ir!, tokenizer: { kind: "bpe", specials: ["pad"], min_frequency: 2, trained_on: "train.data", size: 24 } } as unknown as Ir;
  const b = emitTs(bpe, { where: nowhere(path), source: path });
  assert.equal(b.text, null);
  assert.deepEqual(b.diagnostics.map((d) => [d.code, d.message]), [["E0802", "`vlmc compile --emit ts` cannot write the `bpe` tokenizer yet"]]);
});

test("vlmc compile --emit ts: -o written atomically (by extension too), stdout without -o; a spec with errors writes nothing", () => {
  const out = join(dir, "cli", "sub", "shapes.ts");
  const r = runVlmc(["compile", "examples/shapes/shapes.vlm", "-o", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  assert.equal(r.stdout, "");
  const written = readFileSync(out, "utf8");
  assert.match(written, /^\/\/ shapes: the model as a standalone TensorFlow\.js module, written by `vlmc compile --emit ts`\n\/\/ from examples\/shapes\/shapes\.vlm\./);
  assert.deepEqual(readdirSync(join(dir, "cli", "sub")), ["shapes.ts"], "a temporary file was left behind");
  const s = runVlmc(["compile", "examples/shapes/shapes.vlm", "--emit", "ts"]);
  assert.equal(s.code, 0, s.stderr);
  assert.equal(s.stdout, written);

  const bad = join(dir, "bad.vlm");
  writeFileSync(bad, 'vlm 0.1\nmodel m {\n  tokenizer chars { alphabet: "ab" }\n  decoder gpt { dim: 8, heads: 3, layers: 1, context: 8 }\n}\n');
  const e = runVlmc(["compile", bad, "--emit", "ts", "-o", join(dir, "bad.ts")]);
  assert.equal(e.code, 1);
  assert.match(e.stderr, /^error\[E0302\]: width 8 is not divisible by 3 heads$/m);
  assert.doesNotMatch(e.stderr, /\n\s+at /, "a stack trace");
  assert.equal(existsSync(join(dir, "bad.ts")), false);
  const u = runVlmc(["compile", "examples/shapes/shapes.vlm", "--emit", "ts", "-o", join(dir, "bad.vlm", "x.ts")]);
  assert.equal(u.code, 2);
  assert.match(u.stderr, /^vlmc: error: cannot write .*x\.ts: /);
});
