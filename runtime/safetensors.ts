// The safetensors format (https://github.com/huggingface/safetensors), read and written in plain
// TypeScript: no tfjs, no native code, so that `vlmc check` can validate a weights file's header
// without loading a runtime.
//
//   [8 bytes]  N, the header's length, an unsigned 64-bit little-endian integer
//   [N bytes]  the header: UTF-8 JSON, an object
//                {"__metadata__": {"key": "value", ...},             (optional; strings only)
//                 "<tensor>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
//              padded at its end with spaces (JSON whitespace) so that the data starts at a
//              multiple of 8 bytes
//   [rest]     the data section: each tensor's bytes, row-major, little-endian; offsets are
//              relative to the data section's first byte
//
// Reading validates everything before any tensor is read, and reports what is wrong as data
// (`SafetensorsProblem`, each naming the tensor it is about), never by throwing: a file is used
// whole or not at all. The rules are those of Hugging Face's reference reader (the Rust crate):
//
//   - the header is at most 100,000,000 bytes and lies inside the file;
//   - it is UTF-8 JSON whose top level is an object; `__metadata__`, when present, maps strings
//     to strings; every other key is a tensor whose entry has a known `dtype`, a `shape` of
//     non-negative integers and `data_offsets` of two non-negative integers with begin <= end;
//   - end - begin is exactly prod(shape) x the dtype's size;
//   - the tensors, in offset order, tile the data section exactly: no overlap, no gap (the
//     reference reader rejects a gap, "non-contiguous" offsets, so vlmc does too: bytes that no
//     tensor owns are a sign of a file written wrongly) and nothing after the last tensor;
//   - stricter than the reference: a key given twice in an object (a tensor listed twice, or a
//     `dtype` given twice) is an error. `JSON.parse` would silently keep the last one; the
//     header is therefore parsed by the small strict parser below, which sees every key.
//
// Writing is byte-deterministic: tensors sorted by name (UTF-16 code-unit order), header keys
// sorted (`__metadata__` first, then the tensors; inside an entry `data_offsets`, `dtype`,
// `shape`), no whitespace but the padding, no timestamps, data in that same order with no
// padding between tensors. `writeSafetensorsFile` writes atomically.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { reason, writeFileAtomic } from "../compiler/files.js";

// ---------------------------------------------------------------------------------------------
// Dtypes

/** Every dtype of the format, with its size in bytes. */
export const DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
} as const;

export type Dtype = keyof typeof DTYPE_BYTES;

export function isDtype(s: string): s is Dtype {
  return Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

/** Dtypes whose values are floating-point numbers: what a parameter can be loaded from. */
export const FLOAT_DTYPES: readonly Dtype[] = ["F32", "F16", "BF16", "F64", "F8_E5M2", "F8_E4M3"];

/**
 * A tensor's values in memory. Reading gives: F32, F16, BF16 and both F8s as Float32Array, F64 as
 * Float64Array, I32 as Int32Array, I64 as BigInt64Array (exact; convert with `Number` where the
 * values are known to be small), U8 and BOOL as Uint8Array, and the other integer types as
 * their typed array.
 */
export type TensorData = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

/** The metadata key naming the spec's architecture hash (`Ir.hash`) in files vlmc writes. */
export const METADATA_HASH = "vlmc.hash";

// ---------------------------------------------------------------------------------------------
// Limits

/** The largest header the reference reader accepts. */
export const MAX_HEADER_BYTES = 100_000_000;
/** More tensors than any single file holds (large checkpoints are sharded into files). */
export const MAX_TENSORS = 1_000_000;
/** Problems reported for one file; the rest are counted in a final `more` problem. */
export const MAX_PROBLEMS = 100;
/** Objects and arrays nest at most this deep in a header (a valid one needs 3). */
const MAX_JSON_DEPTH = 64;

export interface HeaderLimits {
  maxHeaderBytes?: number;
  maxTensors?: number;
}

// ---------------------------------------------------------------------------------------------
// Headers and problems

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Offsets into the data section: the tensor is bytes [begin, end). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** N: the header's length in bytes, padding included. */
  headerBytes: number;
  /** Where the data section starts in the file: 8 + N. */
  dataStart: number;
  /** The data section's length: the file's length - 8 - N. */
  dataBytes: number;
  metadata: Record<string, string>;
  /** In the order the header lists them. */
  tensors: TensorInfo[];
  byName: Map<string, TensorInfo>;
}

export type SafetensorsProblemKind =
  | "unreadable" // the file could not be opened or read
  | "too-short" // fewer than 8 bytes
  | "header-too-large" // N over the limit
  | "header-length" // N runs past the end of the file
  | "header-encoding" // not UTF-8
  | "header-json" // not JSON
  | "header-not-object" // JSON, but not an object
  | "duplicate" // a key given twice
  | "metadata" // `__metadata__` not an object of strings
  | "too-many-tensors"
  | "entry" // a tensor's entry is not an object, or lacks a field
  | "dtype" // unknown dtype
  | "shape" // not a list of non-negative integers
  | "offsets" // not two non-negative integers, or end < begin
  | "byte-length" // end - begin != prod(shape) x dtype size
  | "truncated" // a tensor ends past the end of the data section
  | "overlap" // two tensors share bytes
  | "gap" // bytes between two tensors that no tensor owns
  | "trailing" // bytes after the last tensor
  | "more"; // MAX_PROBLEMS reached: how many more there were

export interface SafetensorsProblem {
  kind: SafetensorsProblemKind;
  /** The tensor it is about, when it is about one. */
  tensor?: string;
  /** The other tensor, for `overlap` and `duplicate`s of a tensor. */
  other?: string;
  /** A complete sentence naming the tensor, e.g. "tensor `a.weight`: unknown dtype `F33`". */
  message: string;
}

export type HeaderResult = { ok: true; header: SafetensorsHeader } | { ok: false; problems: SafetensorsProblem[] };

class Problems {
  readonly items: SafetensorsProblem[] = [];
  private dropped = 0;
  add(kind: SafetensorsProblemKind, message: string, tensor?: string, other?: string): void {
    if (this.items.length >= MAX_PROBLEMS) {
      this.dropped++;
      return;
    }
    this.items.push({ kind, message, ...(tensor !== undefined ? { tensor } : {}), ...(other !== undefined ? { other } : {}) });
  }
  finish(): SafetensorsProblem[] {
    if (this.dropped > 0) this.items.push({ kind: "more", message: `${this.dropped} more problem${this.dropped === 1 ? "" : "s"} not listed` });
    return this.items;
  }
  get length(): number {
    return this.items.length + this.dropped;
  }
}

/** `[2, 3]` */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

const tick = (name: string) => `\`${name}\``;

// ---------------------------------------------------------------------------------------------
// A strict JSON parser for headers: every key of every object is kept, in order, so that a key
// given twice can be reported; numbers keep their text, so that `1e3` or `2.0` is not taken for
// an integer and a huge integer is not silently rounded.

type Json = null | boolean | string | JsonNumber | Json[] | JsonObject;

interface JsonNumber {
  kind: "number";
  raw: string;
}

interface JsonObject {
  kind: "object";
  entries: [string, Json][];
}

class JsonError extends Error {}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const STRING_RUN = /[^"\\\u0000-\u001f]*/y;
const LITERALS: [string, Json][] = [
  ["true", true],
  ["false", false],
  ["null", null],
];
const ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

class JsonParser {
  private i = 0;
  constructor(private readonly s: string) {}

  parseDocument(): Json {
    this.ws();
    const v = this.value(0);
    this.ws();
    if (this.i < this.s.length) this.fail("unexpected text after the JSON value");
    return v;
  }

  private fail(what: string): never {
    throw new JsonError(`${what} at character ${this.i + 1}`);
  }

  private ws(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.i++;
      else break;
    }
  }

  private value(depth: number): Json {
    const c = this.s[this.i];
    if (c === "{" || c === "[") {
      if (depth >= MAX_JSON_DEPTH) this.fail(`objects and arrays nested more than ${MAX_JSON_DEPTH} deep`);
      return c === "{" ? this.object(depth + 1) : this.array(depth + 1);
    }
    if (c === '"') return this.string();
    for (const [word, v] of LITERALS) {
      if (this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.s);
    if (m && m[0].length > 0) {
      this.i += m[0].length;
      return { kind: "number", raw: m[0] };
    }
    this.fail(this.i >= this.s.length ? "unexpected end of the header" : `unexpected ${JSON.stringify(c)}`);
  }

  private object(depth: number): JsonObject {
    this.i++; // {
    const entries: [string, Json][] = [];
    this.ws();
    if (this.s[this.i] === "}") {
      this.i++;
      return { kind: "object", entries };
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') this.fail("expected a string key");
      const key = this.string();
      this.ws();
      if (this.s[this.i] !== ":") this.fail("expected `:`");
      this.i++;
      this.ws();
      entries.push([key, this.value(depth)]);
      this.ws();
      const c = this.s[this.i];
      this.i++;
      if (c === "}") return { kind: "object", entries };
      if (c !== ",") {
        this.i--;
        this.fail("expected `,` or `}`");
      }
    }
  }

  private array(depth: number): Json[] {
    this.i++; // [
    const items: Json[] = [];
    this.ws();
    if (this.s[this.i] === "]") {
      this.i++;
      return items;
    }
    for (;;) {
      this.ws();
      items.push(this.value(depth));
      this.ws();
      const c = this.s[this.i];
      this.i++;
      if (c === "]") return items;
      if (c !== ",") {
        this.i--;
        this.fail("expected `,` or `]`");
      }
    }
  }

  private string(): string {
    this.i++; // "
    let out = "";
    for (;;) {
      STRING_RUN.lastIndex = this.i;
      const run = STRING_RUN.exec(this.s)![0];
      out += run;
      this.i += run.length;
      const c = this.s[this.i];
      if (c === '"') {
        this.i++;
        return out;
      }
      if (c === undefined) this.fail("unterminated string");
      if (c !== "\\") this.fail("control character in a string");
      const e = this.s[this.i + 1];
      if (e === "u") {
        const hex = this.s.slice(this.i + 2, this.i + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail("invalid \\u escape");
        out += String.fromCharCode(parseInt(hex, 16));
        this.i += 6;
      } else if (e !== undefined && ESCAPES[e] !== undefined) {
        out += ESCAPES[e];
        this.i += 2;
      } else this.fail("invalid escape");
    }
  }
}

const isObject = (v: Json): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v) && v.kind === "object";
const isNumber = (v: Json): v is JsonNumber => typeof v === "object" && v !== null && !Array.isArray(v) && v.kind === "number";

/** A non-negative integer written as one (`12`, not `12.0` or `1.2e1`), within 2^53; else null. */
function naturalOf(v: Json): number | null {
  if (!isNumber(v) || !/^(?:0|[1-9]\d*)$/.test(v.raw)) return null;
  const n = Number(v.raw);
  return Number.isSafeInteger(n) ? n : null;
}

function describeJson(v: Json): string {
  if (v === null) return "null";
  if (typeof v === "boolean") return String(v);
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (Array.isArray(v)) return v.length > 8 ? `[${v.slice(0, 8).map(describeJson).join(", ")}, ...]` : `[${v.map(describeJson).join(", ")}]`;
  if (v.kind === "number") return v.raw;
  return "an object";
}

// ---------------------------------------------------------------------------------------------
// Decoding the header

/**
 * Parses and validates a header. `bytes` holds the file's start (at least its first 8 + N
 * bytes, or all of it); `fileBytes` is the whole file's length (by default `bytes.length`), which
 * the offsets are checked against: the data itself is never looked at.
 */
export function decodeSafetensorsHeader(bytes: Uint8Array, fileBytes = bytes.length, limits: HeaderLimits = {}): HeaderResult {
  const maxHeader = limits.maxHeaderBytes ?? MAX_HEADER_BYTES;
  const maxTensors = limits.maxTensors ?? MAX_TENSORS;
  const problems = new Problems();
  const fail = (kind: SafetensorsProblemKind, message: string): HeaderResult => {
    problems.add(kind, message);
    return { ok: false, problems: problems.finish() };
  };

  if (fileBytes < 8) return fail("too-short", `the file is ${fileBytes} byte${fileBytes === 1 ? "" : "s"} long: a safetensors file starts with an 8-byte header length`);
  if (bytes.length < 8) throw new RangeError("decodeSafetensorsHeader: `bytes` must hold at least the first 8 bytes");
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(maxHeader)) {
    return fail("header-too-large", `the header length is ${n64} bytes, more than the ${maxHeader.toLocaleString("en-US")} a safetensors header may have: the file is probably not safetensors`);
  }
  const n = Number(n64);
  if (8 + n > fileBytes) {
    return fail("header-length", `the header length is ${n} bytes, but the file is only ${fileBytes} bytes long: the file is truncated, or not safetensors`);
  }
  if (bytes.length < 8 + n) throw new RangeError("decodeSafetensorsHeader: `bytes` must hold the whole header");

  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail("header-encoding", "the header is not valid UTF-8: the file is probably not safetensors");
  }
  if (text.charCodeAt(0) === 0xfeff) return fail("header-encoding", "the header starts with a byte-order mark");

  let root: Json;
  try {
    root = new JsonParser(text).parseDocument();
  } catch (err) {
    if (!(err instanceof JsonError)) throw err;
    return fail("header-json", `the header is not valid JSON: ${err.message}`);
  }
  if (!isObject(root)) return fail("header-not-object", `the header is JSON, but ${describeJson(root)} rather than an object of tensors`);

  const dataBytes = fileBytes - 8 - n;
  const metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  const seen = new Set<string>();
  let count = 0;
  for (const [key] of root.entries) if (key !== "__metadata__") count++;
  if (count > maxTensors) return fail("too-many-tensors", `the header lists ${count.toLocaleString("en-US")} tensors, more than the ${maxTensors.toLocaleString("en-US")} vlmc reads from one file`);

  for (const [key, value] of root.entries) {
    if (seen.has(key)) {
      problems.add("duplicate", key === "__metadata__" ? "`__metadata__` is given twice in the header" : `tensor ${tick(key)} is listed twice in the header`, key === "__metadata__" ? undefined : key);
      continue;
    }
    seen.add(key);
    if (key === "__metadata__") {
      readMetadata(value, metadata, problems);
      continue;
    }
    const info = readEntry(key, value, problems);
    if (info) tensors.push(info);
  }
  if (problems.length === 0) checkLayout(tensors, dataBytes, problems);
  if (problems.length > 0) return { ok: false, problems: problems.finish() };
  return { ok: true, header: { headerBytes: n, dataStart: 8 + n, dataBytes, metadata, tensors, byName: new Map(tensors.map((t) => [t.name, t])) } };
}

function readMetadata(value: Json, out: Record<string, string>, problems: Problems): void {
  if (value === null) return; // the reference reader reads `null` as no metadata
  if (!isObject(value)) {
    problems.add("metadata", `\`__metadata__\` is ${describeJson(value)}, not an object of strings`);
    return;
  }
  const seen = new Set<string>();
  for (const [k, v] of value.entries) {
    if (seen.has(k)) problems.add("duplicate", `metadata key ${tick(k)} is given twice`);
    else if (typeof v !== "string") problems.add("metadata", `metadata key ${tick(k)} is ${describeJson(v)}, not a string`);
    else out[k] = v;
    seen.add(k);
  }
}

function readEntry(name: string, value: Json, problems: Problems): TensorInfo | null {
  const t = `tensor ${tick(name)}`;
  if (!isObject(value)) {
    problems.add("entry", `${t}: its entry is ${describeJson(value)}, not an object with \`dtype\`, \`shape\` and \`data_offsets\``, name);
    return null;
  }
  const fields = new Map<string, Json>();
  let ok = true;
  for (const [k, v] of value.entries) {
    if (fields.has(k)) {
      problems.add("duplicate", `${t}: \`${k}\` is given twice`, name);
      ok = false;
    }
    fields.set(k, v);
  }
  for (const f of ["dtype", "shape", "data_offsets"]) {
    if (!fields.has(f)) {
      problems.add("entry", `${t}: its entry has no \`${f}\``, name);
      ok = false;
    }
  }
  if (!ok) return null;

  const dtypeJ = fields.get("dtype")!;
  const dtype = typeof dtypeJ === "string" && isDtype(dtypeJ) ? dtypeJ : null;
  if (!dtype) problems.add("dtype", `${t}: unknown dtype ${typeof dtypeJ === "string" ? tick(dtypeJ) : describeJson(dtypeJ)} (known: ${Object.keys(DTYPE_BYTES).join(", ")})`, name);

  const shapeJ = fields.get("shape")!;
  let shape: number[] | null = null;
  if (Array.isArray(shapeJ)) {
    const dims = shapeJ.map(naturalOf);
    if (dims.every((d): d is number => d !== null)) shape = dims;
  }
  if (!shape) problems.add("shape", `${t}: shape ${describeJson(shapeJ)} is not a list of non-negative integers`, name);

  const offJ = fields.get("data_offsets")!;
  let offsets: [number, number] | null = null;
  if (Array.isArray(offJ) && offJ.length === 2) {
    const [b, e] = offJ.map(naturalOf);
    if (b != null && e != null) offsets = [b, e];
  }
  if (!offsets) problems.add("offsets", `${t}: data_offsets ${describeJson(offJ)} are not two non-negative integers [begin, end]`, name);
  else if (offsets[1] < offsets[0]) {
    problems.add("offsets", `${t}: data_offsets [${offsets[0]}, ${offsets[1]}] end before they begin`, name);
    offsets = null;
  }

  if (!dtype || !shape || !offsets) return null;
  let elements = 1;
  for (const d of shape) elements *= d;
  const need = elements * DTYPE_BYTES[dtype];
  const have = offsets[1] - offsets[0];
  if (!Number.isSafeInteger(need) || need !== have) {
    problems.add(
      "byte-length",
      `${t}: shape ${formatShape(shape)} of ${dtype} needs ${Number.isSafeInteger(need) ? need.toLocaleString("en-US") : "more than 2^53"} bytes, but its data_offsets [${offsets[0]}, ${offsets[1]}] span ${have.toLocaleString("en-US")}`,
      name,
    );
    return null;
  }
  return { name, dtype, shape, begin: offsets[0], end: offsets[1] };
}

/** The tensors, in offset order, must tile the data section exactly. */
function checkLayout(tensors: TensorInfo[], dataBytes: number, problems: Problems): void {
  let truncated = false;
  for (const t of tensors) {
    if (t.end > dataBytes) {
      truncated = true;
      problems.add(
        "truncated",
        `tensor ${tick(t.name)}: its data_offsets [${t.begin}, ${t.end}] run past the end of the data section, which holds ${dataBytes.toLocaleString("en-US")} bytes: the file is truncated`,
        t.name,
      );
    }
  }
  const order = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let cursor = 0;
  let last: TensorInfo | null = null;
  for (const t of order) {
    if (t.begin < cursor && last) {
      problems.add("overlap", `tensor ${tick(t.name)}: its data_offsets [${t.begin}, ${t.end}] overlap those of ${tick(last.name)} [${last.begin}, ${last.end}]`, t.name, last.name);
    } else if (t.begin > cursor) {
      problems.add(
        "gap",
        `tensor ${tick(t.name)}: its data starts at byte ${t.begin}, but ${last ? `${tick(last.name)} ends at ${cursor}` : "the data section starts at 0"}: bytes [${cursor}, ${t.begin}) belong to no tensor`,
        t.name,
        last?.name,
      );
    }
    if (t.end >= cursor) {
      cursor = t.end;
      last = t;
    }
  }
  if (!truncated && cursor < dataBytes) {
    problems.add(
      "trailing",
      last
        ? `the data section holds ${dataBytes.toLocaleString("en-US")} bytes, but the last tensor, ${tick(last.name)}, ends at ${cursor}: ${(dataBytes - cursor).toLocaleString("en-US")} bytes belong to no tensor`
        : `the header lists no tensors, but the data section holds ${dataBytes.toLocaleString("en-US")} bytes`,
      last?.name,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Reading files

/** Reads exactly `length` bytes at `position`, or fewer at the end of the file. */
function readAt(fd: number, into: Uint8Array, position: number): number {
  let got = 0;
  const CHUNK = 1 << 30;
  while (got < into.length) {
    const n = readSync(fd, into, got, Math.min(CHUNK, into.length - got), position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

interface OpenHeader {
  fd: number;
  size: number;
  result: HeaderResult;
}

function openHeader(path: string, limits: HeaderLimits): OpenHeader | { problems: SafetensorsProblem[] } {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    return { problems: [{ kind: "unreadable", message: `cannot read the file: ${reason(err)}` }] };
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw Object.assign(new Error("is a directory"), { code: "EISDIR" });
    const size = st.size;
    const head = new Uint8Array(8);
    const got = readAt(fd, head, 0);
    if (got < 8) return { fd, size, result: decodeSafetensorsHeader(head.subarray(0, got), got, limits) };
    const n64 = new DataView(head.buffer).getBigUint64(0, true);
    // Too large or past the end: decided from the 8 bytes alone, before anything is allocated.
    if (n64 > BigInt(limits.maxHeaderBytes ?? MAX_HEADER_BYTES) || 8n + n64 > BigInt(size)) return { fd, size, result: decodeSafetensorsHeader(head, size, limits) };
    const bytes = new Uint8Array(8 + Number(n64));
    bytes.set(head);
    const gotHeader = readAt(fd, bytes.subarray(8), 8);
    // The file shrank since fstat: judge what is there.
    if (gotHeader < bytes.length - 8) return { fd, size: 8 + gotHeader, result: decodeSafetensorsHeader(bytes.subarray(0, 8 + gotHeader), 8 + gotHeader, limits) };
    return { fd, size, result: decodeSafetensorsHeader(bytes, size, limits) };
  } catch (err) {
    closeSync(fd);
    return { problems: [{ kind: "unreadable", message: `cannot read the file: ${reason(err)}` }] };
  }
}

/**
 * Reads and validates a file's header: only its first 8 + N bytes are read, never the data.
 * Never throws: a file that cannot be read is an `unreadable` problem.
 */
export function readSafetensorsHeader(path: string, limits: HeaderLimits = {}): HeaderResult {
  const h = openHeader(path, limits);
  if (!("fd" in h)) return { ok: false, problems: h.problems };
  closeSync(h.fd);
  return h.result;
}

export interface LoadedTensor extends TensorInfo {
  data: TensorData;
}

export type ReadResult = { ok: true; header: SafetensorsHeader; tensors: Map<string, LoadedTensor> } | { ok: false; problems: SafetensorsProblem[] };

export interface ReadOptions extends HeaderLimits {
  /** Read only these tensors (all must exist); by default every tensor. */
  only?: Iterable<string>;
}

/**
 * Reads a file: the header is validated first, then each tensor's bytes are read into a typed
 * array of its own (see `TensorData` for the types). All or nothing: any problem, including a
 * file that shrinks while it is read, gives problems and no tensor.
 */
export function readSafetensors(path: string, options: ReadOptions = {}): ReadResult {
  const h = openHeader(path, options);
  if (!("fd" in h)) return { ok: false, problems: h.problems };
  try {
    if (!h.result.ok) return h.result;
    const header = h.result.header;
    const chosen = selectTensors(header, options.only);
    if (!Array.isArray(chosen)) return chosen;
    const tensors = new Map<string, LoadedTensor>();
    for (const t of chosen) {
      const bytes = new Uint8Array(t.end - t.begin);
      let got: number;
      try {
        got = readAt(h.fd, bytes, header.dataStart + t.begin);
      } catch (err) {
        return { ok: false, problems: [{ kind: "unreadable", tensor: t.name, message: `tensor ${tick(t.name)}: cannot read its data: ${reason(err)}` }] };
      }
      if (got < bytes.length) {
        return { ok: false, problems: [{ kind: "truncated", tensor: t.name, message: `tensor ${tick(t.name)}: the file ended after ${got} of its ${bytes.length} bytes: it was truncated while being read` }] };
      }
      tensors.set(t.name, { ...t, data: tensorData(t.dtype, bytes) });
    }
    return { ok: true, header, tensors };
  } finally {
    closeSync(h.fd);
  }
}

/** Decodes a whole file held in memory: the header, validated, then every tensor. */
export function decodeSafetensors(bytes: Uint8Array, options: ReadOptions = {}): ReadResult {
  const r = decodeSafetensorsHeader(bytes, bytes.length, options);
  if (!r.ok) return r;
  const chosen = selectTensors(r.header, options.only);
  if (!Array.isArray(chosen)) return chosen;
  const tensors = new Map<string, LoadedTensor>();
  for (const t of chosen) tensors.set(t.name, { ...t, data: tensorData(t.dtype, bytes.subarray(r.header.dataStart + t.begin, r.header.dataStart + t.end)) });
  return { ok: true, header: r.header, tensors };
}

function selectTensors(header: SafetensorsHeader, only: Iterable<string> | undefined): TensorInfo[] | { ok: false; problems: SafetensorsProblem[] } {
  if (!only) return header.tensors;
  const out: TensorInfo[] = [];
  const problems: SafetensorsProblem[] = [];
  for (const name of only) {
    const t = header.byName.get(name);
    if (t) out.push(t);
    else problems.push({ kind: "entry", tensor: name, message: `tensor ${tick(name)} is not in the file` });
  }
  return problems.length ? { ok: false, problems } : out;
}

// ---------------------------------------------------------------------------------------------
// Bytes <-> values

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A tensor's little-endian bytes as its typed array (always a copy: aligned, and independent of `bytes`). */
export function tensorData(dtype: Dtype, bytes: Uint8Array): TensorData {
  const n = bytes.length / DTYPE_BYTES[dtype];
  switch (dtype) {
    case "F16": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16ToF32(bytes[2 * i]! | (bytes[2 * i + 1]! << 8));
      return out;
    }
    case "BF16": {
      const out = new Float32Array(n);
      // The bits go in through a host-order view of the same memory, so no byte order matters.
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = ((bytes[2 * i]! | (bytes[2 * i + 1]! << 8)) << 16) >>> 0;
      return out;
    }
    case "F8_E5M2": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16ToF32(bytes[i]! << 8);
      return out;
    }
    case "F8_E4M3": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f8e4m3ToF32(bytes[i]!);
      return out;
    }
    case "BOOL":
    case "U8":
      return bytes.slice();
    case "I8":
      return new Int8Array(bytes.slice().buffer);
    default: {
      const copy = bytes.slice();
      if (!LITTLE_ENDIAN_HOST) swapBytes(copy, DTYPE_BYTES[dtype]);
      const buf = copy.buffer;
      switch (dtype) {
        case "F32":
          return new Float32Array(buf);
        case "F64":
          return new Float64Array(buf);
        case "I16":
          return new Int16Array(buf);
        case "U16":
          return new Uint16Array(buf);
        case "I32":
          return new Int32Array(buf);
        case "U32":
          return new Uint32Array(buf);
        case "I64":
          return new BigInt64Array(buf);
        case "U64":
          return new BigUint64Array(buf);
      }
    }
  }
}

function swapBytes(b: Uint8Array, width: number): void {
  for (let i = 0; i + width <= b.length; i += width) b.subarray(i, i + width).reverse();
}

const scratch = new DataView(new ArrayBuffer(4));
function f32ToBits(x: number): number {
  scratch.setFloat32(0, x);
  return scratch.getUint32(0);
}

/** IEEE half precision bits to a number. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** float8 e4m3 "fn" (no infinities; S.1111.111 is NaN), as PyTorch's float8_e4m3fn. */
function f8e4m3ToF32(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const exp = (b >> 3) & 0xf;
  const mant = b & 0x7;
  if (exp === 0xf && mant === 0x7) return NaN;
  if (exp === 0) return sign * mant * 2 ** -9;
  return sign * (1 + mant / 8) * 2 ** (exp - 7);
}

/** A number to IEEE half precision bits, rounding to nearest even. */
export function f32ToF16(x: number): number {
  const bits = f32ToBits(x);
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

/** A number to bfloat16 bits, rounding to nearest even (NaN stays NaN). */
export function f32ToBf16(x: number): number {
  const bits = f32ToBits(x);
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return ((bits >>> 16) | 0x40) & 0xffff;
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface TensorToWrite {
  name: string;
  dtype: Dtype;
  shape: readonly number[];
  /**
   * F32: Float32Array. F64: Float64Array. F16 and BF16: Float32Array (rounded to nearest even)
   * or Uint16Array (the raw bits). I8/U8/BOOL/I16/U16/I32/U32/I64/U64: the typed array of that
   * type (BOOL: a Uint8Array of 0 and 1). F8_*: Uint8Array (raw bits).
   */
  data: TensorData;
}

const ARRAY_FOR: Record<Dtype, string[]> = {
  BOOL: ["Uint8Array"],
  U8: ["Uint8Array"],
  I8: ["Int8Array"],
  F8_E5M2: ["Uint8Array"],
  F8_E4M3: ["Uint8Array"],
  I16: ["Int16Array"],
  U16: ["Uint16Array"],
  F16: ["Float32Array", "Uint16Array"],
  BF16: ["Float32Array", "Uint16Array"],
  I32: ["Int32Array"],
  U32: ["Uint32Array"],
  F32: ["Float32Array"],
  I64: ["BigInt64Array"],
  U64: ["BigUint64Array"],
  F64: ["Float64Array"],
};

function typeName(a: TensorData): string {
  return Object.prototype.toString.call(a).slice(8, -1);
}

/** A tensor's values as little-endian bytes of its dtype. */
function tensorBytes(t: TensorToWrite): Uint8Array {
  const kind = typeName(t.data);
  if ((t.dtype === "F16" || t.dtype === "BF16") && kind === "Float32Array") {
    const src = t.data as Float32Array;
    const out = new Uint8Array(src.length * 2);
    const conv = t.dtype === "F16" ? f32ToF16 : f32ToBf16;
    for (let i = 0; i < src.length; i++) {
      const h = conv(src[i]!);
      out[2 * i] = h & 0xff;
      out[2 * i + 1] = h >>> 8;
    }
    return out;
  }
  const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  if (LITTLE_ENDIAN_HOST || t.data.BYTES_PER_ELEMENT === 1) return raw;
  const copy = raw.slice();
  swapBytes(copy, t.data.BYTES_PER_ELEMENT);
  return copy;
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * The bytes of a safetensors file holding `tensors` and `metadata`; the same arguments always
 * give the same bytes. Throws (a programming error, not a file problem) on a tensor whose data
 * does not fit its dtype and shape, a name given twice, or the name `__metadata__`.
 */
export function encodeSafetensors(tensors: readonly TensorToWrite[], metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  const sorted = [...tensors].sort(byName);
  const parts: Uint8Array[] = [];
  const entries: string[] = [];
  const metaKeys = Object.keys(metadata).sort();
  if (metaKeys.length > 0) {
    const m = metaKeys.map((k) => {
      const v = metadata[k];
      if (typeof v !== "string") throw new TypeError(`encodeSafetensors: metadata ${JSON.stringify(k)} is not a string`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    entries.push(`"__metadata__":{${m.join(",")}}`);
  }
  let offset = 0;
  let previous: string | null = null;
  for (const t of sorted) {
    if (t.name === previous) throw new RangeError(`encodeSafetensors: tensor ${JSON.stringify(t.name)} given twice`);
    if (t.name === "__metadata__") throw new RangeError("encodeSafetensors: `__metadata__` cannot name a tensor");
    previous = t.name;
    if (!isDtype(t.dtype)) throw new RangeError(`encodeSafetensors: tensor ${JSON.stringify(t.name)}: unknown dtype ${String(t.dtype)}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new RangeError(`encodeSafetensors: tensor ${JSON.stringify(t.name)}: bad shape ${JSON.stringify(t.shape)}`);
    const kind = typeName(t.data);
    if (!ARRAY_FOR[t.dtype].includes(kind)) throw new TypeError(`encodeSafetensors: tensor ${JSON.stringify(t.name)}: ${t.dtype} data must be a ${ARRAY_FOR[t.dtype].join(" or ")}, not a ${kind}`);
    const elements = t.shape.reduce((a, d) => a * d, 1);
    if (t.data.length !== elements) throw new RangeError(`encodeSafetensors: tensor ${JSON.stringify(t.name)}: shape ${formatShape(t.shape)} holds ${elements} values, the data ${t.data.length}`);
    if (t.dtype === "BOOL" && (t.data as Uint8Array).some((v) => v > 1)) throw new RangeError(`encodeSafetensors: tensor ${JSON.stringify(t.name)}: BOOL values must be 0 or 1`);
    const bytes = tensorBytes(t);
    entries.push(`${JSON.stringify(t.name)}:{"data_offsets":[${offset},${offset + bytes.length}],"dtype":"${t.dtype}","shape":[${t.shape.join(",")}]}`);
    parts.push(bytes);
    offset += bytes.length;
  }
  const json = new TextEncoder().encode(`{${entries.join(",")}}`);
  const headerBytes = Math.ceil(json.length / 8) * 8;
  if (headerBytes > MAX_HEADER_BYTES) throw new RangeError(`encodeSafetensors: the header would be ${headerBytes} bytes, over the format's limit`);
  const out = new Uint8Array(8 + headerBytes + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerBytes);
  let at = 8 + headerBytes;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Writes a safetensors file atomically: to a temporary file in the same folder, flushed to disk,
 * then renamed over `path`; a reader sees the old file or the new one, never a part. Throws on
 * an I/O error (the temporary file is removed).
 */
export function writeSafetensorsFile(path: string, tensors: readonly TensorToWrite[], metadata: Readonly<Record<string, string>> = {}): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
