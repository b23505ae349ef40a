// Weights files: the safetensors reader and writer (runtime/safetensors.ts), the load plan and
// all-or-nothing loading (runtime/weights-check.ts), and the check-time validation of a module's
// `weights:` file (E07xx). A real file written by Python (Hugging Face GPT-2) is read as it is;
// a table of damaged files must each give the expected problem, naming the tensor, and never throw.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { check } from "../compiler/check.js";
import { compile } from "../compiler/compile.js";
import type { IrLayer } from "../compiler/ir/types.js";
import {
  decodeSafetensors,
  decodeSafetensorsHeader,
  encodeSafetensors,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  METADATA_HASH,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensorsFile,
  type HeaderResult,
  type SafetensorsProblemKind,
  type TensorToWrite,
} from "../runtime/safetensors.js";
import { mulberry32 } from "../tools/random.js";
import { checkWeightsAgainst, loadWeights, modulePrefixNameMap, transposed, type ExpectedParam } from "../runtime/weights-check.js";

const dir = mkdtempSync(join(tmpdir(), "vlmc-safetensors-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const HF_GPT2 = "/work/shared/data/hf-gpt2-tiny";

const f32 = (...xs: number[]) => Float32Array.from(xs);

/** A small file of several dtypes, given out of order. */
function sample(): TensorToWrite[] {
  return [
    { name: "b.weight", dtype: "F32", shape: [2, 3], data: f32(1, 2, 3, 4, 5, 6.5) },
    { name: "a.ids", dtype: "I32", shape: [3], data: Int32Array.from([-1, 0, 2147483647]) },
    { name: "c.half", dtype: "F16", shape: [2], data: f32(0.5, -2) },
    { name: "d.bf", dtype: "BF16", shape: [1, 2], data: f32(1.5, -0.25) },
    { name: "e.long", dtype: "I64", shape: [2], data: BigInt64Array.from([-5n, 1n << 40n]) },
    { name: "f.scalar", dtype: "F64", shape: [], data: Float64Array.from([Math.PI]) },
    { name: "g.mask", dtype: "BOOL", shape: [2, 0], data: new Uint8Array(0) },
    { name: "h.bytes", dtype: "U8", shape: [3], data: Uint8Array.from([0, 128, 255]) },
  ];
}

function headerText(bytes: Uint8Array): string {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return Buffer.from(bytes.subarray(8, 8 + n)).toString("utf8");
}

function write(name: string, bytes: Uint8Array | string): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Writing and reading back

test("encode -> decode gives back every tensor, converted as documented", () => {
  const bytes = encodeSafetensors(sample(), { [METADATA_HASH]: "sha256:abc", format: "pt" });
  const r = decodeSafetensors(bytes);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
  assert.deepEqual(r.header.metadata, { [METADATA_HASH]: "sha256:abc", format: "pt" });
  const get = (n: string) => r.tensors.get(n)!;
  assert.deepEqual(get("b.weight").data, f32(1, 2, 3, 4, 5, 6.5));
  assert.deepEqual(get("b.weight").shape, [2, 3]);
  assert.deepEqual(get("a.ids").data, Int32Array.from([-1, 0, 2147483647]));
  assert.deepEqual(get("c.half").data, f32(0.5, -2)); // exact in half precision
  assert.deepEqual(get("d.bf").data, f32(1.5, -0.25));
  assert.deepEqual(get("e.long").data, BigInt64Array.from([-5n, 1n << 40n]));
  assert.deepEqual(get("f.scalar").data, Float64Array.from([Math.PI]));
  assert.deepEqual(get("f.scalar").shape, []);
  assert.equal(get("g.mask").data.length, 0);
  assert.deepEqual(get("h.bytes").data, Uint8Array.from([0, 128, 255]));
  assert.equal(get("c.half").dtype, "F16");
  assert.equal(get("e.long").end - get("e.long").begin, 16);
});

test("encoding is byte-deterministic: the same bytes from any input order, sorted, no whitespace, padded to 8", () => {
  const a = encodeSafetensors(sample(), { z: "1", a: "2" });
  const b = encodeSafetensors([...sample()].reverse(), { a: "2", z: "1" });
  assert.deepEqual(Buffer.from(a), Buffer.from(b));
  const text = headerText(a);
  assert.equal((8 + text.length) % 8, 0);
  const json = text.trimEnd();
  assert.ok(/^ *$/.test(text.slice(json.length)), "padded with spaces only");
  assert.ok(text.length - json.length < 8);
  assert.ok(!/\s/.test(json), "no whitespace in the JSON");
  assert.ok(json.startsWith('{"__metadata__":{"a":"2","z":"1"},"a.ids":{"data_offsets":[0,12],"dtype":"I32","shape":[3]},'), json);
  const keys = [...json.matchAll(/"([^"]+)":\{"data_offsets"/g)].map((m) => m[1]);
  assert.deepEqual(keys, [...keys].sort());
  assert.deepEqual(keys, ["a.ids", "b.weight", "c.half", "d.bf", "e.long", "f.scalar", "g.mask", "h.bytes"]);
  // Data in the same order, contiguous: the header's offsets tile the data section.
  const parsed = JSON.parse(json) as Record<string, { data_offsets: [number, number] }>;
  let at = 0;
  for (const k of keys) {
    assert.equal(parsed[k]!.data_offsets[0], at);
    at = parsed[k]!.data_offsets[1];
  }
  assert.equal(a.length, 8 + text.length + at);
  // No metadata: no `__metadata__` key.
  assert.ok(headerText(encodeSafetensors([sample()[0]!])).startsWith('{"b.weight":'));
});

test("encode rejects data that does not fit its dtype or shape (a programming error: it throws)", () => {
  const t = sample()[0]!;
  assert.throws(() => encodeSafetensors([t, t]), /given twice/);
  assert.throws(() => encodeSafetensors([{ ...t, name: "__metadata__" }]), /__metadata__/);
  assert.throws(() => encodeSafetensors([{ ...t, shape: [4, 3] }]), /holds 12 values, the data 6/);
  assert.throws(() => encodeSafetensors([{ ...t, dtype: "I32" }]), /Int32Array/);
  assert.throws(() => encodeSafetensors([{ ...t, shape: [2, -3] }]), /bad shape/);
  assert.throws(() => encodeSafetensors([{ name: "m", dtype: "BOOL", shape: [1], data: Uint8Array.from([2]) }]), /0 or 1/);
});

test("half and bfloat16 conversions round to nearest even and keep the special values", () => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65520, 0x7c00], // rounds up to infinity
    [Infinity, 0x7c00],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // a tie: rounds to even (zero)
    [3 * 2 ** -25, 0x0002], // a tie: rounds to even (2)
    [1 + 2 ** -11, 0x3c00], // a tie between 1 and the next half: even
    [1 + 3 * 2 ** -11, 0x3c02],
    [-0, 0x8000],
  ];
  for (const [x, bits] of cases) assert.equal(f32ToF16(x), bits, `f16(${x})`);
  assert.ok(Number.isNaN(f16ToF32(f32ToF16(NaN))));
  for (let h = 0; h < 0x10000; h++) {
    const x = f16ToF32(h);
    if (!Number.isNaN(x)) assert.equal(f32ToF16(x), h, `f16 bits ${h.toString(16)} round trip`);
  }
  assert.equal(f32ToBf16(1), 0x3f80);
  assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80); // tie: even
  assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82);
  assert.equal(f32ToBf16(Infinity), 0x7f80);
  const nan = f32ToBf16(NaN);
  assert.equal(nan & 0x7f80, 0x7f80);
  assert.notEqual(nan & 0x7f, 0);
  // Through a file: values not exact in half precision come back rounded.
  const r = decodeSafetensors(encodeSafetensors([{ name: "x", dtype: "F16", shape: [2], data: f32(0.1, 1000.3) }]));
  assert.ok(r.ok);
  assert.deepEqual(r.tensors.get("x")!.data, f32(f16ToF32(f32ToF16(0.1)), 1000.5));
});

test("writeSafetensorsFile writes atomically: the file, no temporary left, the same bytes as encode", () => {
  const sub = join(dir, "atomic");
  mkdirSync(sub);
  const path = join(sub, "w.safetensors");
  writeFileSync(path, "old contents");
  writeSafetensorsFile(path, sample(), { [METADATA_HASH]: "h" });
  assert.deepEqual(readdirSync(sub), ["w.safetensors"]);
  assert.deepEqual(readFileSync(path), Buffer.from(encodeSafetensors(sample(), { [METADATA_HASH]: "h" })));
  const r = readSafetensors(path);
  assert.ok(r.ok);
  assert.deepEqual(r.tensors.get("b.weight")!.data, f32(1, 2, 3, 4, 5, 6.5));
  // A failed write leaves the old file and no temporary.
  assert.throws(() => writeSafetensorsFile(path, [{ name: "x", dtype: "F32", shape: [2], data: f32(1) }]));
  assert.deepEqual(readdirSync(sub), ["w.safetensors"]);
  assert.throws(() => writeSafetensorsFile(join(sub, "missing-folder", "x.safetensors"), sample()));
  assert.deepEqual(readdirSync(sub), ["w.safetensors"]);
});

// ---------------------------------------------------------------------------------------------
// A real file, written by Python

test("reads the Hugging Face GPT-2 file: names, dtypes and shapes match config.json, values are finite", (t) => {
  const config = JSON.parse(readFileSync(join(HF_GPT2, "config.json"), "utf8")) as { n_embd: number; n_layer: number; n_positions: number; vocab_size: number; n_inner: number | null };
  const path = join(HF_GPT2, "model.safetensors");
  const h = readSafetensorsHeader(path);
  assert.ok(h.ok, JSON.stringify(!h.ok && h.problems));
  const header = h.header;
  t.diagnostic(header.tensors.map((x) => `${x.name} ${x.dtype} [${x.shape.join(", ")}]`).join("; "));
  assert.deepEqual(header.metadata, { format: "pt" });
  assert.equal(header.headerBytes, 1392); // padded with two spaces by Python
  assert.equal(header.dataStart % 8, 0);
  const e = config.n_embd;
  const inner = config.n_inner ?? 4 * e;
  const expected: Record<string, number[]> = {
    "transformer.wte.weight": [config.vocab_size, e],
    "transformer.wpe.weight": [config.n_positions, e],
    "transformer.ln_f.weight": [e],
    "transformer.ln_f.bias": [e],
  };
  for (let i = 0; i < config.n_layer; i++) {
    const b = `transformer.h.${i}`;
    Object.assign(expected, {
      [`${b}.ln_1.weight`]: [e],
      [`${b}.ln_1.bias`]: [e],
      [`${b}.attn.c_attn.weight`]: [e, 3 * e], // Conv1D: [in, out]
      [`${b}.attn.c_attn.bias`]: [3 * e],
      [`${b}.attn.c_proj.weight`]: [e, e],
      [`${b}.attn.c_proj.bias`]: [e],
      [`${b}.ln_2.weight`]: [e],
      [`${b}.ln_2.bias`]: [e],
      [`${b}.mlp.c_fc.weight`]: [e, inner],
      [`${b}.mlp.c_fc.bias`]: [inner],
      [`${b}.mlp.c_proj.weight`]: [inner, e],
      [`${b}.mlp.c_proj.bias`]: [e],
    });
  }
  assert.deepEqual(Object.fromEntries(header.tensors.map((x) => [x.name, x.shape])), expected);
  assert.ok(header.tensors.every((x) => x.dtype === "F32"));
  assert.equal(header.dataBytes, 410560);

  const r = readSafetensors(path);
  assert.ok(r.ok);
  for (const x of r.tensors.values()) {
    assert.ok(x.data instanceof Float32Array);
    assert.equal(x.data.length, x.shape.reduce((a, d) => a * d, 1));
    assert.ok((x.data as Float32Array).every(Number.isFinite), `${x.name} has a non-finite value`);
  }
  const wte = r.tensors.get("transformer.wte.weight")!.data as Float32Array;
  const std = Math.sqrt(wte.reduce((a, v) => a + v * v, 0) / wte.length);
  assert.ok(std > 0.005 && std < 0.05, `wte looks initialised with std ~0.02 (got ${std})`);
  assert.deepEqual(r.tensors.get("transformer.h.0.ln_1.weight")!.data, f32(1, 1));
  // Re-encoded, the data section is the same bytes (all F32, so Python's order is by name too).
  const again = encodeSafetensors([...r.tensors.values()], header.metadata);
  const original = readFileSync(path);
  assert.deepEqual(Buffer.from(again.subarray(again.length - header.dataBytes)), original.subarray(header.dataStart));
  assert.equal(again.length, original.length);
});

test("readSafetensorsHeader reads the header only: a 3 GiB file (sparse) is checked at once", () => {
  const size = 3 * 2 ** 30;
  const json = JSON.stringify({ big: { dtype: "U8", shape: [size], data_offsets: [0, size] } });
  const n = Math.ceil(json.length / 8) * 8;
  const head = Buffer.alloc(8 + n, 0x20);
  head.writeBigUInt64LE(BigInt(n));
  head.write(json, 8);
  const path = write("sparse.safetensors", head);
  truncateSync(path, 8 + n + size);
  const t0 = process.hrtime.bigint();
  const h = readSafetensorsHeader(path);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.ok(h.ok);
  assert.equal(h.header.dataBytes, size);
  assert.ok(ms < 2000, `took ${ms} ms`);
  rmSync(path);
});

// ---------------------------------------------------------------------------------------------
// Damaged files

/** A file from header JSON text and a data section of `data` bytes, padded as Python pads. */
function raw(json: string, data: number | Uint8Array, pad = true): Uint8Array {
  const j = Buffer.from(json, "utf8");
  const n = pad ? Math.ceil(j.length / 8) * 8 : j.length;
  const d = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + n + d.length).fill(0x20, 8, 8 + n);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(j, 8);
  out.set(d, 8 + n);
  return out;
}

const entry = (dtype: string, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });
const hdr = (o: Record<string, unknown>) => JSON.stringify(o);

interface Corruption {
  name: string;
  bytes: () => Uint8Array;
  kind: SafetensorsProblemKind;
  /** The tensor the problem must name (in `tensor` and in the message). */
  tensor?: string;
  message?: RegExp;
  limits?: { maxTensors?: number; maxHeaderBytes?: number };
}

const good = () => encodeSafetensors([{ name: "w", dtype: "F32", shape: [2, 2], data: f32(1, 2, 3, 4) }, { name: "b", dtype: "F32", shape: [2], data: f32(5, 6) }]);

const corruptions: Corruption[] = [
  { name: "empty file", bytes: () => new Uint8Array(0), kind: "too-short", message: /0 bytes long/ },
  { name: "five bytes", bytes: () => new Uint8Array(5), kind: "too-short" },
  {
    name: "absurd header size (> 100 MB)",
    bytes: () => {
      const b = new Uint8Array(16);
      new DataView(b.buffer).setBigUint64(0, 0xffffffffffffn, true);
      return b;
    },
    kind: "header-too-large",
    message: /281474976710655 bytes, more than the 100,000,000/,
  },
  {
    name: "header length larger than the file",
    bytes: () => {
      const b = good().slice(0, 40);
      return b;
    },
    kind: "header-length",
    message: /only 40 bytes long/,
  },
  { name: "header not UTF-8", bytes: () => raw('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4).fill(0xff, 10, 11), kind: "header-encoding" },
  { name: "invalid JSON", bytes: () => raw('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}', 4), kind: "header-json", message: /not valid JSON/ },
  { name: "JSON with a trailing comma", bytes: () => raw('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},}', 4), kind: "header-json" },
  { name: "JSON nested 100,000 deep (no stack overflow)", bytes: () => raw(`{"w":${"[".repeat(100000)}${"]".repeat(100000)}}`, 0), kind: "header-json", message: /nested more than/ },
  { name: "not an object", bytes: () => raw("[1, 2]", 0), kind: "header-not-object", message: /\[1, 2\] rather than an object/ },
  { name: "a tensor listed twice", bytes: () => raw(`{"w":${JSON.stringify(entry("F32", [1], [0, 4]))},"w":${JSON.stringify(entry("F32", [1], [4, 8]))}}`, 8), kind: "duplicate", tensor: "w", message: /listed twice/ },
  { name: "a field given twice", bytes: () => raw('{"w":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}', 4), kind: "duplicate", tensor: "w", message: /`dtype` is given twice/ },
  { name: "metadata not strings", bytes: () => raw(hdr({ __metadata__: { epoch: 3 }, w: entry("F32", [1], [0, 4]) }), 4), kind: "metadata", message: /`epoch` is 3, not a string/ },
  { name: "entry not an object", bytes: () => raw(hdr({ w: [1, 2] }), 0), kind: "entry", tensor: "w" },
  { name: "entry without data_offsets", bytes: () => raw(hdr({ w: { dtype: "F32", shape: [1] } }), 4), kind: "entry", tensor: "w", message: /no `data_offsets`/ },
  { name: "unknown dtype", bytes: () => raw(hdr({ w: entry("F33", [1], [0, 4]) }), 4), kind: "dtype", tensor: "w", message: /unknown dtype `F33`/ },
  { name: "dtype not a string", bytes: () => raw(hdr({ w: entry(7 as unknown as string, [1], [0, 4]) }), 4), kind: "dtype", tensor: "w" },
  { name: "negative dimension", bytes: () => raw(hdr({ w: entry("F32", [2, -1], [0, 4]) }), 4), kind: "shape", tensor: "w", message: /\[2, -1\] is not a list of non-negative integers/ },
  { name: "fractional dimension", bytes: () => raw('{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,10]}}', 10), kind: "shape", tensor: "w" },
  { name: "dimension written 1e1", bytes: () => raw('{"w":{"dtype":"U8","shape":[1e1],"data_offsets":[0,10]}}', 10), kind: "shape", tensor: "w" },
  { name: "shape not a list", bytes: () => raw(hdr({ w: entry("F32", "2x2", [0, 16]) }), 16), kind: "shape", tensor: "w" },
  { name: "dimension beyond 2^53", bytes: () => raw('{"w":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,1]}}', 1), kind: "shape", tensor: "w" },
  { name: "one offset", bytes: () => raw(hdr({ w: entry("F32", [1], [4]) }), 4), kind: "offsets", tensor: "w", message: /not two non-negative integers/ },
  { name: "offset a string", bytes: () => raw(hdr({ w: entry("F32", [1], [0, "4"]) }), 4), kind: "offsets", tensor: "w" },
  { name: "end before begin", bytes: () => raw(hdr({ w: entry("F32", [1], [8, 4]) }), 8), kind: "offsets", tensor: "w", message: /end before they begin/ },
  { name: "offsets that lie about the size", bytes: () => raw(hdr({ w: entry("F32", [2, 2], [0, 12]) }), 12), kind: "byte-length", tensor: "w", message: /\[2, 2\] of F32 needs 16 bytes, but its data_offsets \[0, 12\] span 12/ },
  { name: "size overflowing 2^53", bytes: () => raw(hdr({ w: entry("F64", [2 ** 30, 2 ** 30, 2 ** 30], [0, 8]) }), 8), kind: "byte-length", tensor: "w" },
  {
    name: "truncated file (last tensor cut)",
    bytes: () => good().slice(0, good().length - 3),
    kind: "truncated",
    tensor: "w",
    message: /run past the end of the data section, which holds 21 bytes: the file is truncated/,
  },
  { name: "offsets outside the data section", bytes: () => raw(hdr({ w: entry("F32", [1], [100, 104]) }), 4), kind: "truncated", tensor: "w" },
  {
    name: "overlapping tensors",
    bytes: () => raw(hdr({ a: entry("F32", [2], [0, 8]), b: entry("F32", [2], [4, 12]) }), 12),
    kind: "overlap",
    tensor: "b",
    message: /`b`: its data_offsets \[4, 12\] overlap those of `a` \[0, 8\]/,
  },
  { name: "two tensors on the same bytes", bytes: () => raw(hdr({ a: entry("F32", [2], [0, 8]), b: entry("I32", [2], [0, 8]) }), 8), kind: "overlap", tensor: "b" },
  { name: "a gap between tensors (rejected, as the reference reader does)", bytes: () => raw(hdr({ a: entry("F32", [1], [0, 4]), b: entry("F32", [1], [8, 12]) }), 12), kind: "gap", tensor: "b", message: /bytes \[4, 8\) belong to no tensor/ },
  { name: "a gap before the first tensor", bytes: () => raw(hdr({ a: entry("F32", [1], [4, 8]) }), 8), kind: "gap", tensor: "a" },
  { name: "bytes after the last tensor", bytes: () => raw(hdr({ a: entry("F32", [1], [0, 4]) }), 8), kind: "trailing", tensor: "a", message: /4 bytes belong to no tensor/ },
  { name: "too many tensors", bytes: () => raw(hdr({ a: entry("F32", [0], [0, 0]), b: entry("F32", [0], [0, 0]), c: entry("F32", [0], [0, 0]) }), 0), kind: "too-many-tensors", limits: { maxTensors: 2 } },
  { name: "header over a lowered limit", bytes: () => good(), kind: "header-too-large", limits: { maxHeaderBytes: 16 } },
];

function problemsOf(r: HeaderResult) {
  assert.equal(r.ok, false, "the damaged file was accepted");
  return r.ok ? [] : r.problems;
}

for (const c of corruptions) {
  test(`damaged file: ${c.name} -> ${c.kind}${c.tensor ? ` naming \`${c.tensor}\`` : ""}`, () => {
    const bytes = c.bytes();
    const path = write(`bad-${c.name.replace(/[^a-z0-9]+/gi, "-")}.safetensors`, bytes);
    const fromBytes = problemsOf(decodeSafetensorsHeader(bytes, bytes.length, c.limits));
    const fromFile = problemsOf(readSafetensorsHeader(path, c.limits));
    assert.deepEqual(fromFile, fromBytes, "bytes and file give the same problems");
    const read = readSafetensors(path, c.limits ?? {});
    assert.equal(read.ok, false);
    assert.deepEqual(!read.ok && read.problems, fromBytes, "reading the data gives the same problems and no tensor");
    const p = fromBytes.find((x) => x.kind === c.kind);
    assert.ok(p, `expected a ${c.kind} problem, got ${JSON.stringify(fromBytes)}`);
    if (c.tensor !== undefined) {
      assert.equal(p.tensor, c.tensor);
      assert.ok(p.message.includes(`\`${c.tensor}\``), `the message names the tensor: ${p.message}`);
    }
    if (c.message) assert.match(p.message, c.message);
  });
}

test("a header with many bad tensors lists 100 problems and counts the rest", () => {
  const o: Record<string, unknown> = {};
  for (let i = 0; i < 150; i++) o[`t${i}`] = entry("F99", [1], [0, 4]);
  const r = decodeSafetensorsHeader(raw(hdr(o), 0));
  const ps = problemsOf(r);
  assert.equal(ps.length, 101);
  assert.equal(ps[100]!.kind, "more");
  assert.match(ps[100]!.message, /^50 more problems/);
});

test("random damage (seeded) never throws: every file is read whole or reported", () => {
  const rand = mulberry32(0x5afe);
  const base = encodeSafetensors(sample(), { [METADATA_HASH]: "h" });
  const headerEnd = 8 + Number(new DataView(base.buffer).getBigUint64(0, true));
  let rejected = 0;
  for (let i = 0; i < 3000; i++) {
    let b = base.slice();
    const what = i % 4;
    if (what === 0) b = b.subarray(0, Math.floor(rand() * b.length));
    else if (what === 1) for (let k = 0; k < 1 + Math.floor(rand() * 3); k++) b[Math.floor(rand() * headerEnd)] = Math.floor(rand() * 256);
    else if (what === 2) b[8 + Math.floor(rand() * (headerEnd - 8))] = "0123456789[]{},:\"-e.".charCodeAt(Math.floor(rand() * 20));
    else b = Uint8Array.from([...b, ...new Uint8Array(1 + Math.floor(rand() * 9))]);
    const r = decodeSafetensors(b);
    if (!r.ok) {
      rejected++;
      assert.ok(r.problems.length > 0 && r.problems.every((p) => typeof p.message === "string" && p.message.length > 0));
    } else {
      for (const t of r.tensors.values()) assert.equal(t.data.length, t.shape.reduce((a, d) => a * d, 1));
    }
  }
  assert.ok(rejected > 2000, `only ${rejected} of 3000 damaged files were rejected`);
});

test("files that cannot be read are problems, not exceptions", () => {
  for (const path of [join(dir, "no-such.safetensors"), dir]) {
    const h = readSafetensorsHeader(path);
    assert.equal(h.ok, false);
    assert.equal(!h.ok && h.problems[0]!.kind, "unreadable");
    const r = readSafetensors(path);
    assert.equal(!r.ok && r.problems[0]!.kind, "unreadable");
  }
});

test("valid oddities: an empty file of tensors, zero-sized tensors, metadata null, unpadded headers, unknown fields", () => {
  for (const bytes of [
    raw("{}", 0),
    raw(hdr({ __metadata__: null, a: entry("F32", [0, 3], [0, 0]), b: entry("F32", [1], [0, 4]) }), 4),
    raw(hdr({ a: entry("F32", [1], [0, 4]) }), 4, false),
    raw(hdr({ a: { ...entry("F32", [1], [0, 4]), extra: "ignored" } }), 4),
    raw(' \n{"a" : {"shape":[1], "data_offsets":[0,4], "dtype":"F32"}}\t', 4),
  ]) {
    const r = decodeSafetensors(bytes);
    assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
  }
});

// ---------------------------------------------------------------------------------------------
// The load plan

const header = (tensors: TensorToWrite[]) => {
  const r = decodeSafetensorsHeader(encodeSafetensors(tensors));
  assert.ok(r.ok);
  return r.header;
};
const t32 = (name: string, shape: number[]): TensorToWrite => ({ name, dtype: "F32", shape, data: new Float32Array(shape.reduce((a, d) => a * d, 1)) });

test("checkWeightsAgainst collects every problem before anything is loaded", () => {
  const expected: ExpectedParam[] = [
    { name: "m.w", shape: [4, 3] },
    { name: "m.b", shape: [3] },
    { name: "m.g", shape: [3] },
    { name: "m.e", shape: [-1, 3] },
  ];
  const plan = checkWeightsAgainst(
    header([t32("m.w", [3, 4]), { name: "m.b", dtype: "I32", shape: [3], data: new Int32Array(3) }, t32("m.e", [10, 3]), t32("m.extra", [1])]),
    expected,
  );
  assert.equal(plan.ok, false);
  const byKind = Object.fromEntries(plan.problems.map((p) => [p.kind, p]));
  assert.match(byKind.shape!.message, /`m\.w` has shape \[3, 4\] in the file, the spec makes it \[4, 3\]/);
  assert.match(byKind.dtype!.message, /`m\.b` is I32/);
  assert.match(byKind.missing!.message, /`m\.g` \[3\] has no tensor/);
  assert.equal(byKind.unexpected!.severity, "warning");
  assert.equal(byKind.unexpected!.kind === "unexpected" && byKind.unexpected!.tensor, "m.extra");
  assert.deepEqual(plan.steps.map((s) => s.param), ["m.e"]); // -1 matches any size
});

test("the name map and transposition: another naming convention, tensors stored [out, in]", () => {
  const hf = header([t32("h.0.c_attn.weight", [6, 2]), t32("h.0.c_attn.bias", [6]), t32("lm_head.weight", [5, 2]), t32("other", [1])]);
  const expected: ExpectedParam[] = [
    { name: "decoder.blocks.0.qkv.weight", shape: [2, 6] },
    { name: "decoder.blocks.0.qkv.bias", shape: [6] },
  ];
  const nameMap = (n: string) => (n === "lm_head.weight" ? null : n.startsWith("h.") ? n.replace(/^h\.(\d+)\.c_attn/, "decoder.blocks.$1.qkv") : n);
  const plan = checkWeightsAgainst(hf, expected, { nameMap, transpose: (p) => p.endsWith(".weight") });
  assert.ok(plan.ok, JSON.stringify(plan.problems));
  assert.deepEqual(plan.ignored, ["lm_head.weight"]);
  assert.deepEqual(plan.steps.map((s) => [s.param, s.tensor.name, s.transpose]), [
    ["decoder.blocks.0.qkv.weight", "h.0.c_attn.weight", true],
    ["decoder.blocks.0.qkv.bias", "h.0.c_attn.bias", false],
  ]);
  assert.deepEqual(plan.problems.map((p) => p.kind), ["unexpected"]);
  // Two tensors mapped to one parameter.
  const twice = checkWeightsAgainst(header([t32("a", [1]), t32("m.a", [1])]), [{ name: "m.a", shape: [1] }], { nameMap: modulePrefixNameMap("m", ["m", "n"]) });
  assert.deepEqual(twice.problems.map((p) => [p.kind, p.message]), [["duplicate", "tensors `a` and `m.a` both hold parameter `m.a`"]]);
});

test("modulePrefixNameMap: with or without the module's prefix; other modules' tensors ignored", () => {
  const map = modulePrefixNameMap("decoder");
  assert.equal(map("decoder.ln_f.weight"), "decoder.ln_f.weight");
  assert.equal(map("ln_f.weight"), "decoder.ln_f.weight");
  assert.equal(map("encoder.norm.weight"), null);
  assert.equal(map("projector.0.weight"), null);
  assert.equal(map("decoderx.w"), "decoder.decoderx.w");
});

test("transposed reverses the axes of row-major data", () => {
  assert.deepEqual(transposed(f32(1, 2, 3, 4, 5, 6), [2, 3]), f32(1, 4, 2, 5, 3, 6));
  // [2, 1, 3] -> [3, 1, 2]: out[k][j][i] = in[i][j][k]
  assert.deepEqual(transposed(f32(1, 2, 3, 4, 5, 6), [2, 1, 3]), f32(1, 4, 2, 5, 3, 6));
  assert.deepEqual(transposed(f32(7), [1]), f32(7));
});

test("loadWeights is all or nothing: values only when the whole plan holds", () => {
  const expected: ExpectedParam[] = [
    { name: "m.w", shape: [2, 3] },
    { name: "m.b", shape: [3] },
  ];
  const okPath = write(
    "load-ok.safetensors",
    encodeSafetensors(
      [
        { name: "m.w", dtype: "F32", shape: [3, 2], data: f32(1, 2, 3, 4, 5, 6) },
        { name: "m.b", dtype: "BF16", shape: [3], data: f32(0.5, 1, -1) },
      ],
      { [METADATA_HASH]: "sha256:old" },
    ),
  );
  const r = loadWeights(okPath, expected, { transpose: (p) => p === "m.w", expectHash: "sha256:new" });
  assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
  assert.deepEqual(r.values.get("m.w"), f32(1, 3, 5, 2, 4, 6));
  assert.deepEqual(r.values.get("m.b"), f32(0.5, 1, -1));
  assert.deepEqual(r.warnings.map((w) => w.kind), ["hash"]);

  // One wrong shape: nothing comes back, and every problem is listed.
  const bad = loadWeights(okPath, [{ name: "m.w", shape: [2, 3] }, { name: "m.b", shape: [4] }, { name: "m.c", shape: [1] }]);
  assert.equal(bad.ok, false);
  assert.ok(!("values" in bad));
  assert.deepEqual(!bad.ok && bad.problems.map((p) => p.kind), ["shape", "shape", "missing"]);

  // A truncated file: nothing comes back.
  const whole = readFileSync(okPath);
  const cut = write("load-cut.safetensors", whole.subarray(0, whole.length - 2));
  const t = loadWeights(cut, expected, { transpose: (p) => p === "m.w" });
  assert.equal(t.ok, false);
  assert.deepEqual(!t.ok && t.problems.map((p) => [p.kind, "tensor" in p ? p.tensor : undefined]), [["truncated", "m.w"]]);
});

// ---------------------------------------------------------------------------------------------
// Check time: `weights:` in a spec

const SPEC = (weights: { encoder?: string; projector?: string; decoder?: string }) => `vlm 0.1

model tiny {
  tokenizer chars { alphabet: "abc", specials: [pad] }
  encoder vit { image: 16 x 16 x 3, patch: 8, dim: 8, heads: 2, blocks: 1${weights.encoder ? `, weights: "${weights.encoder}"` : ""} }
  projector {
    ${weights.projector ? `weights: "${weights.projector}"` : ""}
    linear(16) -> gelu -> linear(decoder.dim)
  }
  decoder gpt { dim: 8, heads: 2, layers: 1, context: 16${weights.decoder ? `, weights: "${weights.decoder}"` : ""} }
}
`;

/** Every parameter of the spec, with its shape, from the IR. */
function irParams(): Map<string, number[]> {
  const specPath = write("params.vlm", SPEC({}));
  const { ir } = compile(specPath);
  assert.ok(ir);
  const out = new Map<string, number[]>();
  const walk = (ls: IrLayer[]) => {
    for (const l of ls) {
      for (const p of l.params) out.set(p.name, p.shape);
      if (l.children) walk(l.children);
    }
  };
  for (const m of Object.values(ir.modules)) if (m) walk(m.layers);
  return out;
}

function checkSpec(name: string, weights: Parameters<typeof SPEC>[0]) {
  const r = check([write(`${name}.vlm`, SPEC(weights))]);
  return r.diagnostics.map((d) => ({ code: d.code, message: d.message, notes: d.notes, line: r.sources.get(d.span.file)!.position(d.span.start).line }));
}

test("check: a whole-model checkpoint serves every module; a module's own file with or without its prefix", () => {
  const params = irParams();
  const all = [...params].map(([n, s]) => t32(n, s));
  write("all.safetensors", encodeSafetensors(all, { [METADATA_HASH]: "x" }));
  assert.deepEqual(checkSpec("whole", { encoder: "all.safetensors", projector: "all.safetensors", decoder: "all.safetensors" }), []);
  const proj = [...params].filter(([n]) => n.startsWith("projector."));
  write("proj-bare.safetensors", encodeSafetensors(proj.map(([n, s]) => t32(n.slice("projector.".length), s))));
  write("proj-mixed.safetensors", encodeSafetensors(proj.map(([n, s], i) => t32(i % 2 ? n : n.slice("projector.".length), s))));
  assert.deepEqual(checkSpec("bare", { projector: "proj-bare.safetensors" }), []);
  assert.deepEqual(checkSpec("mixed", { projector: "proj-mixed.safetensors" }), []);
});

test("check: the spec's shapes against the file's header, naming the tensor and both shapes", () => {
  const params = irParams();
  const dec = [...params].filter(([n]) => n.startsWith("decoder."));
  const wrong = dec.map(([n, s]) => (n === "decoder.blocks.0.attn.q.weight" ? t32(n, [8, 4]) : t32(n, s)));
  write("dec-wrong.safetensors", encodeSafetensors(wrong));
  const ds = checkSpec("dec-wrong", { decoder: "dec-wrong.safetensors" });
  assert.deepEqual(
    ds.map((d) => [d.code, d.message, d.line]),
    [["E0703", "`decoder.blocks.0.attn.q.weight` has shape [8, 4] in `dec-wrong.safetensors`, the spec makes it [8, 8]", 10]],
  );
});

test("check: many missing tensors are listed three by one, then summed up; an unrelated file says what it holds", () => {
  // The GPT-2 file as the encoder's weights: nothing in it is the encoder's.
  write("hf.safetensors", readFileSync(join(HF_GPT2, "model.safetensors")));
  const ds = checkSpec("hf", { encoder: "hf.safetensors" });
  const missing = ds.filter((d) => d.code === "E0702");
  assert.equal(missing.length, 4);
  assert.equal(ds.length, 4, "no W0701 when nothing matched: the note says what the file holds");
  assert.equal(missing[0]!.message, "`hf.safetensors` has no tensor for `encoder.patch_embed.weight` [192, 8]");
  assert.match(missing[3]!.message, /has no tensor for \d+ more parameters of the encoder, `encoder\.[a-z0-9_.]+` first$/);
  assert.ok(missing[0]!.notes.some((n) => /it holds `transformer\.h\.0\.attn\.c_attn\.bias`/.test(n)), JSON.stringify(missing[0]!.notes));
  assert.ok(missing.every((d) => d.line === 5));
});

test("check: a damaged header is E0701 naming the tensor; a missing file is E0504 only", () => {
  write("dmg.safetensors", raw(hdr({ "projector.0.weight": entry("F32", [8, 16], [0, 100]) }), 100));
  const ds = checkSpec("dmg", { projector: "dmg.safetensors" });
  assert.deepEqual(ds.map((d) => d.code), ["E0701"]);
  assert.match(ds[0]!.message, /`projector\.0\.weight`: shape \[8, 16\] of F32 needs 512 bytes/);
  assert.deepEqual(checkSpec("gone", { projector: "gone.safetensors" }).map((d) => d.code), ["E0504"]);
});
