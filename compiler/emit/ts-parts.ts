// The parts of a `vlmc compile --emit ts` module around the forward pass (compiler/emit/ts.ts
// assembles them): the parameters and their initialisers, a safetensors reader and the weights
// loader, the encoder's image preprocessing, the tokenizer's vocabulary, and greedy generation.
// Each mirrors the runtime's behaviour that it stands in for (cited at each), so that a model
// trained by `vlmc train` runs the same in the module.
import type * as TsMorph from "ts-morph";
import type { Ir, IrCharsTokenizer } from "../ir/types.js";
import { shapeComment } from "./ts-forward.js";
import type { ModelFacts, ModuleBuilder } from "./ts.js";

type Enums = Pick<typeof TsMorph, "VariableDeclarationKind">;

const lines =
  (...ls: string[]) =>
  (w: TsMorph.CodeBlockWriter) => {
    for (const l of ls) w.writeLine(l);
  };

/** `{ kind: "normal", std: 0.02 }`: a flat object as code. */
function objectLiteral(o: object): string {
  return `{ ${Object.entries(o).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(", ")} }`;
}

function exportedConst(sf: ModuleBuilder, e: Enums, name: string, docs: string, initializer: string | ((w: TsMorph.CodeBlockWriter) => void), type?: string): void {
  sf.addVariableStatement({ isExported: true, declarationKind: e.VariableDeclarationKind.Const, docs: [docs], declarations: [{ name, initializer, ...(type ? { type } : {}) }] });
}

/**
 * `Weights` (one property per parameter), PARAMS (names, shapes and the IR's initialisers),
 * `createWeights` and `loadWeights`, with the safetensors reader it needs.
 */
export function addWeights(sf: ModuleBuilder, model: ModelFacts, e: Enums): void {
  sf.addInterface({
    name: "Weights",
    isExported: true,
    docs: ["Every parameter, by its name in weights.safetensors; the shape is in each one's comment."],
    properties: model.params.map((p) => ({ name: JSON.stringify(p.name), type: "tf.Tensor", isReadonly: true, docs: [shapeComment(p.shape)] })),
  });
  sf.addTypeAlias({
    name: "Init",
    isExported: true,
    docs: ["An initialiser, as the IR records it (runtime/model.ts draws them from seeded streams; this module from tfjs's)."],
    type: '{ kind: "zeros" } | { kind: "ones" } | { kind: "normal"; std: number } | { kind: "uniform"; bound: number } | { kind: "xavier_uniform" }',
  });
  sf.addInterface({
    name: "ParamInfo",
    isExported: true,
    properties: [
      { name: "name", type: "keyof Weights", isReadonly: true },
      { name: "shape", type: "readonly number[]", isReadonly: true },
      { name: "init", type: "Init", isReadonly: true },
    ],
  });
  exportedConst(sf, e, "PARAMS", "Every parameter of the model, in the IR's order.", (w) => {
    w.write("[").indent(() => {
      for (const p of model.params) w.writeLine(`{ name: ${JSON.stringify(p.name)}, shape: [${p.shape.join(", ")}], init: ${objectLiteral(p.init)} },`);
    });
    w.write("]");
  }, "readonly ParamInfo[]");

  sf.addFunction({
    name: "createWeights",
    isExported: true,
    docs: ["Fresh variables with the IR's initialisers (seeded from `seed`, one stream per parameter), to train or to test with."],
    parameters: [{ name: "seed", type: "number", initializer: "0" }],
    returnType: "Weights",
    statements: lines(
      "const out: Record<string, tf.Tensor> = {};",
      "PARAMS.forEach((p, i) => {",
      "  const s = seed * 7919 + i;",
      "  const shape = [...p.shape];",
      "  out[p.name] = tf.tidy(() => {",
      "    switch (p.init.kind) {",
      "      case \"zeros\":",
      "        return tf.variable(tf.zeros(shape));",
      "      case \"ones\":",
      "        return tf.variable(tf.ones(shape));",
      "      case \"normal\":",
      "        return tf.variable(tf.randomNormal(shape, 0, p.init.std, \"float32\", s));",
      "      case \"uniform\":",
      "        return tf.variable(tf.randomUniform(shape, -p.init.bound, p.init.bound, \"float32\", s));",
      "      case \"xavier_uniform\": {",
      "        // Fans from the matrix [in, out], as runtime/model.ts takes them.",
      "        const bound = Math.sqrt(6 / (shape[0]! + (shape[1] ?? shape[0]!)));",
      "        return tf.variable(tf.randomUniform(shape, -bound, bound, \"float32\", s));",
      "      }",
      "    }",
      "  });",
      "});",
      "return out as unknown as Weights;",
    ),
  });

  sf.addInterface({
    name: "SafetensorsEntry",
    docs: ["A tensor's entry in a safetensors header."],
    properties: [
      { name: "dtype", type: "string" },
      { name: "shape", type: "number[]" },
      { name: "data_offsets", type: "[number, number]" },
    ],
  });
  sf.addFunction({
    name: "readSafetensorsHeader",
    docs: [
      "The header of a safetensors file: 8 bytes of header length (u64, little-endian), then that much JSON; the data follows. Read from the bytes alone, so it works in a browser.",
    ],
    parameters: [{ name: "buffer", type: "ArrayBuffer" }],
    returnType: "{ entries: Map<string, SafetensorsEntry>; metadata: Record<string, string>; dataStart: number }",
    statements: lines(
      'if (buffer.byteLength < 8) throw new Error(`weights: ${buffer.byteLength} bytes is too short for a safetensors file`);',
      "const length = Number(new DataView(buffer).getBigUint64(0, true));",
      "if (8 + length > buffer.byteLength) throw new Error(`weights: the safetensors header says ${length} bytes, the file has ${buffer.byteLength - 8} after the length`);",
      "let header: unknown;",
      "try {",
      "  header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, length)));",
      "} catch {",
      '  throw new Error("weights: the safetensors header is not JSON");',
      "}",
      'if (typeof header !== "object" || header === null || Array.isArray(header)) throw new Error("weights: the safetensors header is not a JSON object");',
      "const entries = new Map<string, SafetensorsEntry>();",
      "let metadata: Record<string, string> = {};",
      "for (const [name, value] of Object.entries(header)) {",
      '  if (name === "__metadata__") metadata = value as Record<string, string>;',
      "  else entries.set(name, value as SafetensorsEntry);",
      "}",
      "return { entries, metadata, dataStart: 8 + length };",
    ),
  });
  sf.addVariableStatement({
    declarationKind: e.VariableDeclarationKind.Const,
    docs: ["Bytes per value of the dtypes parameters load from."],
    declarations: [{ name: "DTYPE_BYTES", type: "Record<string, number | undefined>", initializer: "{ F32: 4, F16: 2, BF16: 2 }" }],
  });
  sf.addFunction({
    name: "toFloat32",
    docs: ["A tensor's little-endian bytes as float32: F32, F16 and BF16 (what weights are saved as)."],
    parameters: [
      { name: "view", type: "DataView" },
      { name: "dtype", type: "string" },
      { name: "count", type: "number" },
    ],
    returnType: "Float32Array",
    statements: lines(
      "const out = new Float32Array(count);",
      "switch (dtype) {",
      '  case "F32":',
      "    for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);",
      "    return out;",
      '  case "BF16": {',
      "    // The top 16 bits of a float32.",
      "    const bits = new Uint32Array(out.buffer);",
      "    for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;",
      "    return out;",
      "  }",
      '  case "F16":',
      "    for (let i = 0; i < count; i++) {",
      "      const h = view.getUint16(2 * i, true);",
      "      const sign = h & 0x8000 ? -1 : 1;",
      "      const exp = (h >> 10) & 0x1f;",
      "      const frac = h & 0x3ff;",
      "      out[i] = exp === 0 ? sign * frac * 2 ** -24 : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * (1 + frac / 1024) * 2 ** (exp - 15);",
      "    }",
      "    return out;",
      "  default:",
      "    throw new Error(`internal: dtype ${dtype}`);",
      "}",
    ),
  });
  sf.addFunction({
    name: "loadWeights",
    isExported: true,
    docs: [
      "The weights of a run (its weights.safetensors, or a checkpoint's), from the file's bytes: every parameter must be there with its shape; other tensors are ignored. Throws an Error naming the first tensor that does not fit. `warn` hears of a file written for another architecture (its `vlmc.hash`), as `vlmc` warns.",
    ],
    parameters: [
      { name: "buffer", type: "ArrayBuffer" },
      { name: "warn", type: "(message: string) => void", initializer: "(message) => console.warn(message)" },
    ],
    returnType: "Weights",
    statements: lines(
      "const { entries, metadata, dataStart } = readSafetensorsHeader(buffer);",
      'const hash = metadata["vlmc.hash"];',
      "if (hash !== undefined && hash !== HASH) warn(`weights: the file was written for the architecture ${hash}, not this one (${HASH})`);",
      "const out: Record<string, tf.Tensor> = {};",
      "for (const p of PARAMS) {",
      "  const e = entries.get(p.name);",
      "  if (!e) throw new Error(`weights: the file has no tensor ${p.name}`);",
      '  if (!Array.isArray(e.shape) || !Array.isArray(e.data_offsets)) throw new Error(`weights: the entry of ${p.name} has no shape or data_offsets`);',
      '  if (e.shape.join(",") !== p.shape.join(",")) throw new Error(`weights: ${p.name} is [${e.shape.join(", ")}] in the file, the model needs [${p.shape.join(", ")}]`);',
      "  const size = DTYPE_BYTES[e.dtype];",
      "  if (size === undefined) throw new Error(`weights: ${p.name} is ${e.dtype}; parameters load from F32, F16 or BF16`);",
      "  const [begin, end] = e.data_offsets;",
      "  const count = p.shape.reduce((a, b) => a * b, 1);",
      "  if (end - begin !== count * size) throw new Error(`weights: ${p.name} has ${end - begin} bytes, ${e.dtype} [${e.shape.join(\", \")}] takes ${count * size}`);",
      "  if (begin < 0 || dataStart + end > buffer.byteLength) throw new Error(`weights: ${p.name} lies outside the file (is it truncated?)`);",
      "  out[p.name] = tf.tensor(toFloat32(new DataView(buffer, dataStart + begin, end - begin), e.dtype, count), [...p.shape], \"float32\");",
      "}",
      "return out as unknown as Weights;",
    ),
  });
}

/** IMAGE and `preprocess`: how training turns images into numbers (runtime/data/images.ts, runtime/data/sources/common.ts), for pixels in memory. */
export function addPreprocessing(sf: ModuleBuilder, ir: Ir, e: Enums): void {
  const enc = ir.modules.encoder!;
  const [, height, width] = enc.input as [string, number, number, number];
  const px = enc.pixels ?? { normalize: "unit", mean: [0, 0, 0], std: [1, 1, 1], resize: "stretch" as const };
  exportedConst(
    sf,
    e,
    "IMAGE",
    `The encoder's input: images are brought to height x width under \`resize\` (${px.resize}), then each value v (0..255) of channel c becomes (v / 255 - mean[c]) / std[c] (\`normalize: ${px.normalize}\`).`,
    `{ height: ${height}, width: ${width}, resize: ${JSON.stringify(px.resize)}, mean: [${px.mean.join(", ")}], std: [${px.std.join(", ")}] }`,
    '{ height: number; width: number; resize: "stretch" | "crop" | "pad"; mean: readonly number[]; std: readonly number[] }',
  );
  sf.addInterface({
    name: "PixelImage",
    isExported: true,
    docs: ["Pixels in memory, row by row: RGB (3 values per pixel) or RGBA (4: a canvas's ImageData), 0..255."],
    properties: [
      { name: "width", type: "number", isReadonly: true },
      { name: "height", type: "number", isReadonly: true },
      { name: "data", type: "ArrayLike<number>", isReadonly: true },
    ],
  });
  sf.addFunction({
    name: "resize",
    docs: [
      "Brings an RGB image [h, w, 3] (0..255) to the encoder's size: `stretch` scales each axis, `crop` scales to cover and cuts the middle, `pad` scales to fit and centres it on black. Bilinear: training resized with lanczos3 (sharp), so a resized image differs slightly from what training saw; one already at the size does not.",
    ],
    parameters: [{ name: "x", type: "tf.Tensor3D" }],
    returnType: "tf.Tensor3D",
    statements: lines(
      "const [h, w] = x.shape;",
      "const { height: H, width: W } = IMAGE;",
      "if (h === H && w === W) return x;",
      'if (IMAGE.resize === "stretch") return tf.image.resizeBilinear(x, [H, W], false, true);',
      'const scale = IMAGE.resize === "crop" ? Math.max(H / h, W / w) : Math.min(H / h, W / w);',
      'const [rh, rw] = IMAGE.resize === "crop" ? [Math.max(H, Math.round(h * scale)), Math.max(W, Math.round(w * scale))] : [Math.min(H, Math.round(h * scale)), Math.min(W, Math.round(w * scale))];',
      "const r = rh === h && rw === w ? x : tf.image.resizeBilinear(x, [rh, rw], false, true);",
      'if (IMAGE.resize === "crop") return tf.slice(r, [Math.floor((rh - H) / 2), Math.floor((rw - W) / 2), 0], [H, W, 3]);',
      "const top = Math.floor((H - rh) / 2);",
      "const left = Math.floor((W - rw) / 2);",
      "return tf.pad(r, [[top, H - rh - top], [left, W - rw - left], [0, 0]]);",
    ),
  });
  sf.addFunction({
    name: "preprocess",
    isExported: true,
    docs: [
      "Images as the encoder takes them: [B, H, W, 3] float32. Alpha is composited on white (as training decodes images), the image resized (`resize`), rounded to 8 bits, and normalised.",
    ],
    parameters: [{ name: "images", type: "readonly PixelImage[]" }],
    returnType: "tf.Tensor4D",
    statements: lines(
      "const one = (image: PixelImage): tf.Tensor3D => {",
      "  const { width, height, data } = image;",
      "  const channels = data.length / (width * height);",
      "  if (channels !== 3 && channels !== 4) throw new Error(`preprocess: a ${width} x ${height} image needs ${width * height * 3} (RGB) or ${width * height * 4} (RGBA) values, found ${data.length}`);",
      "  const rgb = new Float32Array(width * height * 3);",
      "  for (let i = 0; i < width * height; i++) {",
      "    const a = channels === 4 ? data[i * 4 + 3]! / 255 : 1;",
      "    for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Math.round(data[i * channels + c]! * a + 255 * (1 - a));",
      "  }",
      "  const sized = tf.tidy(() => tf.clipByValue(tf.round(resize(tf.tensor3d(rgb, [height, width, 3]))), 0, 255));",
      "  const v = sized.dataSync();",
      "  sized.dispose();",
      "  const out = new Float32Array(v.length);",
      "  // v / 255 rounded to float32 first, as training does it (runtime/data/sources/common.ts).",
      "  for (let i = 0; i < v.length; i++) out[i] = (Math.fround(v[i]! / 255) - IMAGE.mean[i % 3]!) / IMAGE.std[i % 3]!;",
      "  return tf.tensor3d(out, [IMAGE.height, IMAGE.width, 3]);",
      "};",
      "return tf.tidy(() => tf.stack(images.map(one)) as tf.Tensor4D);",
    ),
  });
}

/** The `chars` tokenizer (runtime/tokenizer.ts): the specials first, then the alphabet. */
export function addTokenizer(sf: ModuleBuilder, ir: Ir, e: Enums): void {
  const tok = ir.tokenizer as IrCharsTokenizer; // compiler/emit/ts.ts reports the others (E0802)
  const vocab = [...tok.specials.map((s) => `<${s}>`), ...Array.from(tok.alphabet)];
  exportedConst(sf, e, "VOCAB", "The tokenizer (`chars`): id -> token; the special tokens first, then one per character of the alphabet.", (w) => {
    w.write("[").indent(() => {
      // A line per 16 tokens keeps the alphabet readable.
      for (let i = 0; i < vocab.length; i += 16) w.writeLine(`${vocab.slice(i, i + 16).map((t) => JSON.stringify(t)).join(", ")},`);
    });
    w.write("]");
  }, "readonly string[]");
  for (const s of ["pad", "bos", "eos", "unk"]) {
    const id = tok.specials.indexOf(s);
    if (id >= 0) exportedConst(sf, e, s.toUpperCase(), `The id of \`<${s}>\`.`, String(id));
  }
  exportedConst(sf, e, "SPECIALS", "How many ids the special tokens take (the first ones).", String(tok.specials.length));
  sf.addFunction({
    name: "encode",
    isExported: true,
    docs: [
      `Token ids of a text, one per character${tok.specials.includes("bos") ? "; captions were trained with BOS in front (and EOS after)" : ""}. A character outside the alphabet ${tok.specials.includes("unk") ? "becomes UNK" : "throws an Error naming it"}.`,
    ],
    parameters: [{ name: "text", type: "string" }],
    returnType: "number[]",
    statements: lines(
      "return Array.from(text, (ch, i) => {",
      "  const id = VOCAB.indexOf(ch, SPECIALS);",
      "  if (id >= 0) return id;",
      tok.specials.includes("unk") ? "  return UNK;" : "  throw new Error(`encode: ${JSON.stringify(ch)} (character ${i}) is not in the vocabulary`);",
      "});",
    ),
  });
  sf.addFunction({
    name: "decode",
    isExported: true,
    docs: ["The text of token ids; special tokens are left out."],
    parameters: [{ name: "ids", type: "readonly number[]" }],
    returnType: "string",
    statements: lines('return ids.filter((id) => id >= SPECIALS && id < VOCAB.length).map((id) => VOCAB[id]).join("");'),
  });
}

/** Greedy decoding, as runtime/generate.ts's greedyDecode: the whole forward pass per token. */
export function addGeneration(sf: ModuleBuilder, model: ModelFacts): void {
  const { ir } = model;
  const tok = ir.tokenizer;
  const hasBos = tok?.specials.includes("bos") === true;
  const eos = tok?.specials.includes("eos") ? "EOS" : "null";
  const pad = tok?.specials.includes("pad") ? "PAD" : "0";
  const encoder = ir.modules.encoder !== undefined;
  const budget = model.context === null ? null : model.context - model.visualTokens;
  sf.addFunction({
    name: "generateIds",
    isExported: true,
    isAsync: true,
    docs: [
      `Greedy decoding: every row starts from \`start\`${hasBos ? " (BOS: the token every training caption starts with)" : ""}; each step runs the whole forward pass on the tokens so far and appends the argmax of the last position, until ${eos === "EOS" ? "EOS (left out) or " : ""}\`maxTokens\`${budget !== null ? ` (at most ${budget}: the context less the visual tokens)` : ""}. A finished row is fed ${pad === "PAD" ? "PAD" : "0"}. No KV cache: simple, not fast.`,
    ],
    parameters: [
      { name: "w", type: "Weights" },
      encoder ? { name: "images", type: "tf.Tensor4D" } : { name: "rows", type: "number" },
      { name: "maxTokens", type: "number" },
      hasBos ? { name: "start", type: "number", initializer: "BOS" } : { name: "start", type: "number" },
    ],
    returnType: "Promise<number[][]>",
    statements: lines(
      ...(encoder ? ["const rows = images.shape[0];"] : []),
      ...(budget !== null ? [`if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > ${budget}) throw new RangeError(\`generate: maxTokens must be 1..${budget}, got \${maxTokens}\`);`] : []),
      "const fed: number[][] = Array.from({ length: rows }, () => [start]);",
      "const out: number[][] = Array.from({ length: rows }, () => []);",
      "const ended: boolean[] = new Array<boolean>(rows).fill(false);",
      "const finished = (b: number) => ended[b]! || out[b]!.length >= maxTokens;",
      "while (!out.every((_, b) => finished(b))) {",
      "  const next = tf.tidy(() => {",
      "    const tokens = tf.tensor2d(fed.flat(), [rows, fed[0]!.length], \"int32\");",
      `    const logits = forward(w, ${encoder ? "images, " : ""}tokens); // [B, N, V]`,
      "    const [, n, v] = logits.shape;",
      "    return tf.argMax(tf.reshape(tf.slice(logits, [0, n - 1, 0], [rows, 1, v]), [rows, v]), -1); // [B]",
      "  });",
      "  const ids = await next.data();",
      "  next.dispose();",
      "  for (let b = 0; b < rows; b++) {",
      "    const done = finished(b);",
      "    const id = ids[b]!;",
      ...(eos === "EOS"
        ? ["    if (!done) {", "      if (id === EOS) ended[b] = true;", "      else out[b]!.push(id);", "    }"]
        : ["    if (!done) out[b]!.push(id);"]),
      `    fed[b]!.push(done || ended[b] ? ${pad} : id);`,
      "  }",
      "}",
      "return out;",
    ),
  });
  if (!tok) return;
  sf.addFunction({
    name: "generate",
    isExported: true,
    isAsync: true,
    docs: [`Greedy ${encoder ? "captions of the images" : "texts"} (\`generateIds\`, decoded).`],
    parameters: [
      { name: "w", type: "Weights" },
      encoder ? { name: "images", type: "tf.Tensor4D" } : { name: "rows", type: "number" },
      { name: "maxTokens", type: "number" },
      hasBos ? { name: "start", type: "number", initializer: "BOS" } : { name: "start", type: "number" },
    ],
    returnType: "Promise<string[]>",
    statements: lines(`return (await generateIds(w, ${encoder ? "images" : "rows"}, maxTokens, start)).map(decode);`),
  });
}
