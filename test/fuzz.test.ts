// A seeded, bounded fuzz test of the contract every input must keep, whatever it contains:
// no exception, diagnostics that are one valid JSON document of the documented shape, codes
// from the catalogue, spans inside their file, at most 101 errors per file, and exit 1 exactly
// when an error was reported (0 otherwise; 2 never, since every file here is readable).
//
// Inputs are mutations of the bundled specs, of a few inline snippets and of a generated spec:
// byte-level (flips, NULs, 0xFF, invalid UTF-8, BOMs, bidi controls, random code points,
// truncation) and token-level (delete, duplicate, swap, insert, replace tokens; truncate).
// Thousands are checked in-process through `checkSource` (what the CLI's `check` runs on each
// file), then a smaller batch is written to disk and checked by the real `vlmc` in one process.
// Every file lies beside a copy of specs/seemore.vlm, so `use "seemore.vlm"` resolves.
//
// Reproduce a failure: every message names the seed and the case; run with
//   VLMC_FUZZ_SEED=<seed> VLMC_FUZZ_ONLY=<case> node --test dist/test/fuzz.test.js
// (the failing input is also written to the temp dir named in the message).
// VLMC_FUZZ_CASES=<n> and VLMC_FUZZ_CLI_FILES=<n> change the sizes (longer hunts: another seed
// and more cases); VLMC_FUZZ_STATS=1 prints how often each code was produced.
import { spawnSync } from "node:child_process";
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateSpec } from "../bench/gen-spec.js";
import { checkSource } from "../compiler/check.js";
import { catalogue } from "../compiler/diagnostics/codes.js";
import { toJson } from "../compiler/diagnostics/render-json.js";
import { renderText } from "../compiler/diagnostics/render-text.js";
import { parseSource } from "../compiler/syntax/index.js";
import { envInt, Rng } from "../tools/random.js";
import { repoPath, vlmcBin } from "./helpers/paths.js";

const SEED = envInt("VLMC_FUZZ_SEED", 0x5eed_2024);
const CASES = envInt("VLMC_FUZZ_CASES", 4000);
const CLI_FILES = envInt("VLMC_FUZZ_CLI_FILES", 200);
const ONLY = process.env.VLMC_FUZZ_ONLY === undefined ? undefined : Number(process.env.VLMC_FUZZ_ONLY);
/** The front end reports at most 100 errors per file, then one E0105. */
const MAX_ERRORS_SHOWN = 101;

// ---- PRNG ----

/** Each case has its own generator, so that one case can be replayed alone. */
function caseRng(caseIndex: number): Rng {
  return new Rng((Math.imul(SEED, 0x9e3779b1) ^ Math.imul(caseIndex + 1, 0x85ebca6b)) >>> 0);
}

// ---- seeds ----

const SNIPPETS: Record<string, string> = {
  "snippet-blocks.vlm": `vlm 0.1

# A pre-LN transformer block, written out by hand.
block transformer(dim, heads, mlp = 4 * dim, p = 0.1) {
  residual { layernorm -> attention(heads: heads, causal: true) -> dropout(p) }
  residual { layernorm -> linear(mlp) -> gelu -> linear(dim) -> dropout(p) }
}

model handmade {
  tokenizer chars { alphabet: "abcdefghijklmnopqrstuvwxyz .", specials: [pad] }
  encoder vit { image: 32 x 32 x 3, patch: 8, dim: 64, heads: 4, blocks: 2 }
  projector { linear(decoder.dim) }
  decoder gpt {
    dim: 64
    context: 128
    repeat 4 { transformer(dim, heads: 4) }
  }
}
`,
  "snippet-use-extends.vlm": `vlm 0.1

use "seemore.vlm"          # specs/seemore.vlm, when this file is in specs/

model seemore_small extends seemore {
  decoder.layers: 4
  encoder.blocks: 2
}

train {
  data: shapes(images: 2000, size: 96, seed: 1)
  batch: 16
  stage tune {
    train: [projector, decoder]
    optimizer: adamw(lr: 2e-5, weight_decay: 0.01)
    schedule: cosine(warmup: 100)
    steps: 600
  }
}
`,
  "snippet-let-exprs.vlm": `vlm 0.1

let width = 512
let heads = 8
let head_dim = width / heads
let hidden = 4 * width + 2 * (heads - 1) % 3
let neg = --width
let shape = 2 * 48 x 96 x 3
let compact = 96x96x3
let ratio = 1e-3
let big = 1_000_000
let label = "caption \\u{1F600} \\"quoted\\" \\\\ été"
let flags = [true, false, pad, bos, eos,]
let empty = []

model m {
  let inner = hidden - width
  projector { linear(inner) -> gelu -> linear(decoder.dim) }
  decoder gpt { dim: 128, heads: heads, layers: 2, context: 256 }
}
`,
  "snippet-chains.vlm": `vlm 0.1

model m {
  decoder {
    dim: 128
    embedding(vocab: tokenizer.size, dim: dim)
      -> repeat 4 {
        residual { layernorm -> attention(heads: 4, causal: true) }
        residual { layernorm -> linear(4 * dim) -> gelu -> linear(dim) }
      }
      -> layernorm
  }
  projector {
    linear(2048)
      → gelu
      -> linear(128)
      -> dropout(0.1)
  }
  encoder { image: 64 × 64 × 3; patch: 8; dim: 96 }
}
`,
  "snippet-keywords-as-names.vlm": `vlm 0.1

model pretrained {
  encoder {
    model: "weights/encoder.json"   # \`model\` as a setting name
    block: 3                        # and \`block\`
    use: true                       # and \`use\`
    vlm: 1, extends: 2;
  }
  a.b.c: f(x_proj: 1, xavier: [1, 2, 3], g(h: (1 + 2) * 3),)
}
`,
  "snippet-crlf-train.vlm":
    "vlm 0.1\r\n\r\nmodel m {\r\n  decoder gpt { dim: 64, heads: 4, layers: 2, context: 64 }\r\n}\r\n\r\ntrain {\r\n  data: captions(\"pairs.jsonl\", image: \"image\", text: \"caption\")\r\n  batch: 8\r\n  stage align { train: [projector], optimizer: adam(lr: 1e-3), steps: 100 }\r\n}\r\n",
};

interface Seed {
  name: string;
  bytes: Uint8Array;
}

const encoder = new TextEncoder();

/** A plain Uint8Array copy: a Buffer's `slice` shares memory, and mutations must not. */
function readBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

function loadSeeds(): { seeds: Seed[]; valid: Seed[] } {
  const valid: Seed[] = [];
  const specsDir = repoPath("specs");
  for (const f of readdirSync(specsDir).sort()) {
    if (f.endsWith(".vlm")) valid.push({ name: `specs/${f}`, bytes: readBytes(join(specsDir, f)) });
  }
  for (const [name, text] of Object.entries(SNIPPETS)) valid.push({ name, bytes: encoder.encode(text) });
  valid.push({ name: "generated-150.vlm", bytes: encoder.encode(generateSpec(150, 7)) });
  // The diagnostic fixtures, when present, are broken files to start from.
  const seeds = valid.slice();
  const fixtures = repoPath("test", "fixtures", "diagnostics");
  if (existsSync(fixtures)) {
    for (const f of readdirSync(fixtures).sort()) {
      const p = join(fixtures, f);
      if (f.endsWith(".vlm") && statSync(p).size <= 64 * 1024) seeds.push({ name: `fixtures/${f}`, bytes: readBytes(p) });
    }
  }
  return { seeds, valid };
}

// ---- mutations ----

const utf8 = (s: string) => Array.from(encoder.encode(s));

/** Byte sequences worth inserting: invalid UTF-8 of every kind, and characters that need care. */
const BYTE_INSERTS: number[][] = [
  [0x00],
  [0xff],
  [0xfe],
  [0x80], // a lone continuation byte
  [0xc0, 0x80], // overlong NUL
  [0xc3], // a truncated 2-byte sequence
  [0xe2, 0x82], // a truncated 3-byte sequence
  [0xed, 0xa0, 0x80], // an encoded surrogate
  [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
  [0xf0, 0x9f, 0x98], // a truncated emoji
  [0xef, 0xbb, 0xbf], // BOM
  utf8("\u202e"), // RIGHT-TO-LEFT OVERRIDE
  utf8("\u2066"), // LEFT-TO-RIGHT ISOLATE
  utf8("\u2069"),
  utf8("\u200f"),
  utf8("\u061c"),
  utf8("\u00a0"), // no-break space
  utf8("\u2028"), // line separator
  utf8("\u201c"), // typographic quote
  utf8("\u0301"), // a combining mark
  utf8("😀"),
  utf8("é"),
  utf8("×"),
  utf8("→"),
  [0x0d],
  [0x0d, 0x0a],
  [0x0a],
  [0x09],
  [0x0b],
  [0x0c],
  [0x1b], // ESC
  [0x7f],
  utf8('"'),
  utf8("\\"),
  utf8("#"),
];

const TOKENS = [
  "{", "}", "(", ")", "[", "]", "->", "→", ":", ",", ";", ".", "=", "+", "-", "*", "/", "%", "x", "×",
  "repeat", "let", "model", "block", "use", "extends", "vlm", "true", "false", "train", "stage", "encoder",
  "decoder", "projector", "tokenizer", "linear", "gelu", "residual", "dim", "a", "_", "x_proj",
  "0", "1", "0.1", "1e-3", "1e", "1.", "1.2.3", "96x96x3", "96x", "0x1F", "1__0", "12ab", "1_000",
  '"s"', '"', '"unterminated', '"bad \\q escape"', '"\\u{110000}"', '"\\u{1F600}"', '""',
  "#", "# comment", "\n", "\r\n", "\r", "\t", " ", "'", "@", "$", "`", "!", "?", "&", "|", "^", "~", "<", ">",
  "\u00a0", "\u202e", "\u2066", "\ufeff", "\u0000", "é", "😀", "\u{10FFFF}", "\ud800",
];

/** A random code point: ASCII, Latin, CJK, astral, or a lone surrogate (a string can hold one). */
function randomCodePoint(rng: Rng): string {
  switch (rng.int(0, 5)) {
    case 0:
      return String.fromCharCode(rng.int(0, 0x7f));
    case 1:
      return String.fromCharCode(rng.int(0x80, 0x7ff));
    case 2:
      return String.fromCharCode(rng.int(0x800, 0xd7ff));
    case 3:
      return String.fromCharCode(rng.int(0xe000, 0xffff));
    case 4:
      return String.fromCodePoint(rng.int(0x10000, 0x10ffff));
    default:
      return String.fromCharCode(rng.int(0xd800, 0xdfff));
  }
}

/** Splits text into tokens that cover it exactly (whitespace and comments included). */
const TOKEN_RE = /\s+|#[^\n\r]*|"(?:[^"\\\n\r]|\\.)*"?|->|[0-9][0-9A-Za-z_.]*|[A-Za-z_][A-Za-z0-9_]*|./gsu;

function splitTokens(text: string): string[] {
  return text.match(TOKEN_RE) ?? [];
}

const lossy = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

type Mutation = (input: Uint8Array, rng: Rng) => Uint8Array;

const byteMutations: Record<string, Mutation> = {
  flipBit(b, rng) {
    if (b.length === 0) return b;
    const out = b.slice();
    out[rng.int(0, b.length - 1)]! ^= 1 << rng.int(0, 7);
    return out;
  },
  setByte(b, rng) {
    if (b.length === 0) return b;
    const out = b.slice();
    out[rng.int(0, b.length - 1)] = rng.pick([0x00, 0xff, 0x80, 0xc0, 0xe2, 0xf0, 0x0d, 0x22, 0x5c, rng.int(0, 255)]);
    return out;
  },
  insertBytes(b, rng) {
    const at = rng.int(0, b.length);
    return concat(b.subarray(0, at), rng.pick(BYTE_INSERTS), b.subarray(at));
  },
  insertCodePoints(b, rng) {
    const at = rng.int(0, b.length);
    let s = "";
    for (let n = rng.int(1, 4); n > 0; n--) s += randomCodePoint(rng);
    return concat(b.subarray(0, at), encoder.encode(s), b.subarray(at));
  },
  insertRandomBytes(b, rng) {
    const at = rng.int(0, b.length);
    const junk = new Uint8Array(rng.chance(0.8) ? rng.int(1, 16) : rng.int(64, 2048));
    for (let i = 0; i < junk.length; i++) junk[i] = rng.int(0, 255);
    return concat(b.subarray(0, at), junk, b.subarray(at));
  },
  deleteBytes(b, rng) {
    if (b.length === 0) return b;
    const at = rng.int(0, b.length - 1);
    return concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + rng.int(1, 16))));
  },
  duplicateBytes(b, rng) {
    if (b.length === 0) return b;
    const at = rng.int(0, b.length - 1);
    const end = Math.min(b.length, at + rng.int(1, 64));
    return concat(b.subarray(0, end), b.subarray(at, end), b.subarray(end));
  },
  prependBom(b) {
    return concat([0xef, 0xbb, 0xbf], b);
  },
  truncateBytes(b, rng) {
    return b.subarray(0, rng.int(0, b.length));
  },
};

/** Token-level mutations work on the (lossily) decoded text. */
function tokenMutation(f: (toks: string[], rng: Rng) => string[]): Mutation {
  return (b, rng) => encoder.encode(f(splitTokens(lossy.decode(b)), rng).join(""));
}

const tokenMutations: Record<string, Mutation> = {
  deleteToken: tokenMutation((t, rng) => {
    const out = t.slice();
    if (out.length) out.splice(rng.int(0, t.length - 1), 1);
    return out;
  }),
  duplicateToken: tokenMutation((t, rng) => {
    if (!t.length) return t;
    const i = rng.int(0, t.length - 1);
    return [...t.slice(0, i + 1), t[i]!, ...t.slice(i + 1)];
  }),
  swapTokens: tokenMutation((t, rng) => {
    if (t.length < 2) return t;
    const out = t.slice();
    const i = rng.int(0, t.length - 1);
    const j = rng.int(0, t.length - 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
    return out;
  }),
  insertToken: tokenMutation((t, rng) => {
    const i = rng.int(0, t.length);
    const tok = rng.pick(TOKENS);
    const pad = rng.chance(0.5) ? " " : "";
    return [...t.slice(0, i), pad, tok, pad, ...t.slice(i)];
  }),
  replaceToken: tokenMutation((t, rng) => {
    if (!t.length) return [rng.pick(TOKENS)];
    const out = t.slice();
    out[rng.int(0, t.length - 1)] = rng.pick(TOKENS);
    return out;
  }),
  repeatToken: tokenMutation((t, rng) => {
    // A run long enough to reach the caps: deep nesting, many errors on one or many lines.
    const i = rng.int(0, t.length);
    const unit = rng.pick([...TOKENS, "(", "{", "[", "}\n", "a b\n", "- ", "@\n", '"\n']);
    return [...t.slice(0, i), unit.repeat(rng.int(20, 400)), ...t.slice(i)];
  }),
  truncateText(b, rng) {
    const text = lossy.decode(b);
    return encoder.encode(text.slice(0, rng.int(0, text.length)));
  },
};

/** Random token soup, sometimes with a version line: inputs far from any seed. */
function tokenSoup(rng: Rng): Uint8Array {
  const parts: string[] = rng.chance(0.5) ? ["vlm 0.1\n"] : [];
  for (let n = rng.int(0, 300); n > 0; n--) {
    parts.push(rng.pick(TOKENS));
    if (rng.chance(0.6)) parts.push(rng.pick([" ", " ", "\n", "  ", "\t"]));
  }
  return encoder.encode(parts.join(""));
}

const BYTE_NAMES = Object.keys(byteMutations);
const TOKEN_NAMES = Object.keys(tokenMutations);

interface Case {
  index: number;
  seed: string;
  ops: string[];
  bytes: Uint8Array;
}

function makeCase(index: number, seeds: readonly Seed[]): Case {
  const rng = caseRng(index);
  if (rng.chance(0.04)) return { index, seed: "(token soup)", ops: [], bytes: tokenSoup(rng) };
  const seed = rng.pick(seeds);
  let bytes: Uint8Array = seed.bytes;
  const ops: string[] = [];
  for (let n = rng.pick([1, 1, 1, 2, 2, 3, 5]); n > 0; n--) {
    const byteLevel = rng.chance(0.5);
    const name = rng.pick(byteLevel ? BYTE_NAMES : TOKEN_NAMES);
    bytes = (byteLevel ? byteMutations : tokenMutations)[name]!(bytes, rng);
    ops.push(name);
  }
  return { index, seed: seed.name, ops, bytes };
}

// ---- the contract ----

interface FileLines {
  /** Code points per line, as the compiler counts lines (LF, CRLF and CR end a line). */
  lineLengths: number[];
}

function fileLines(bytes: Uint8Array): FileLines {
  const text = lossy.decode(bytes);
  return { lineLengths: text.split(/\r\n|\r|\n/).map((l) => codePoints(l)) };
}

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

class ContractError extends Error {}

function expect(cond: boolean, what: () => string): asserts cond {
  if (!cond) throw new ContractError(what());
}

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === "string");

function checkRange(r: Record<string, unknown>, files: ReadonlyMap<string, FileLines>, where: string): void {
  for (const k of ["line", "column", "endLine", "endColumn"]) expect(isInt(r[k]), () => `${where}: \`${k}\` is not an integer: ${JSON.stringify(r[k])}`);
  expect(typeof r.file === "string", () => `${where}: \`file\` is not a string`);
  const f = files.get(r.file as string);
  expect(f !== undefined, () => `${where}: names a file that was not checked: ${JSON.stringify(r.file)}`);
  const [line, column, endLine, endColumn] = [r.line, r.column, r.endLine, r.endColumn] as number[];
  const n = f.lineLengths.length;
  const inside = (l: number, c: number) => l >= 1 && l <= n && c >= 1 && c <= f.lineLengths[l - 1]! + 1;
  const at = `${where} ${line}:${column}-${endLine}:${endColumn} (file has ${n} line(s))`;
  expect(inside(line!, column!), () => `${at}: the start is outside the file (line ${line} has ${f.lineLengths[line! - 1]} code points)`);
  expect(inside(endLine!, endColumn!), () => `${at}: the end is outside the file (line ${endLine} has ${f.lineLengths[endLine! - 1]} code points)`);
  expect(endLine! > line! || (endLine === line && endColumn! >= column!), () => `${at}: the end is before the start`);
}

/**
 * Checks one `{"diagnostics": [...]}` document against the files it is about; returns whether
 * any error was reported.
 */
function checkDocument(doc: unknown, files: ReadonlyMap<string, FileLines>): boolean {
  expect(typeof doc === "object" && doc !== null && !Array.isArray(doc), () => "the document is not a JSON object");
  const list = (doc as { diagnostics?: unknown }).diagnostics;
  expect(Array.isArray(list), () => "`diagnostics` is not an array");
  const errorsPerFile = new Map<string, number>();
  const tooMany = new Map<string, number>();
  let anyError = false;
  list.forEach((d: unknown, i) => {
    const where = `diagnostics[${i}]`;
    expect(typeof d === "object" && d !== null, () => `${where} is not an object`);
    const o = d as Record<string, unknown>;
    const show = () => JSON.stringify(o).slice(0, 400);
    expect(typeof o.code === "string" && Object.prototype.hasOwnProperty.call(catalogue, o.code), () => `${where}: code not in the catalogue: ${show()}`);
    const code = o.code as keyof typeof catalogue;
    expect(o.severity === catalogue[code].severity, () => `${where}: severity ${JSON.stringify(o.severity)} is not the catalogue's ${catalogue[code].severity}: ${show()}`);
    expect(typeof o.message === "string" && o.message.length > 0, () => `${where}: no message: ${show()}`);
    expect(o.label === undefined || typeof o.label === "string", () => `${where}: label is not a string: ${show()}`);
    expect(isStringArray(o.help), () => `${where}: help is not a list of strings: ${show()}`);
    expect(o.notes === undefined || isStringArray(o.notes), () => `${where}: notes is not a list of strings: ${show()}`);
    checkRange(o, files, `${where} (${code}: ${o.message as string})`);
    expect(Array.isArray(o.related), () => `${where}: related is not an array: ${show()}`);
    (o.related as unknown[]).forEach((r, j) => {
      expect(typeof r === "object" && r !== null, () => `${where}.related[${j}] is not an object`);
      const rr = r as Record<string, unknown>;
      expect(typeof rr.label === "string", () => `${where}.related[${j}]: label is not a string: ${show()}`);
      checkRange(rr, files, `${where}.related[${j}] (${code})`);
    });
    const file = o.file as string;
    if (o.severity === "error") {
      anyError = true;
      errorsPerFile.set(file, (errorsPerFile.get(file) ?? 0) + 1);
    }
    if (code === "E0105") tooMany.set(file, (tooMany.get(file) ?? 0) + 1);
  });
  for (const [file, n] of errorsPerFile) expect(n <= MAX_ERRORS_SHOWN, () => `${file}: ${n} errors reported, more than ${MAX_ERRORS_SHOWN}`);
  for (const [file, n] of tooMany) expect(n === 1, () => `${file}: E0105 reported ${n} times`);
  return anyError;
}

const BIDI_OR_NUL = /[\u0000\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/;

/**
 * Files are checked as if they lay in a directory that holds only the seed spec, so that
 * `use "seemore.vlm"` resolves (and its diagnostics may point into that file) and no other
 * `use` can reach anything.
 */
const USED = "seemore.vlm";
const usedBytes = readBytes(repoPath("specs", USED));

function useDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(join(dir, USED), usedBytes);
  return dir;
}

const inProcessDir = useDir("vlmc-fuzz-use-");
after(() => rmSync(inProcessDir, { recursive: true, force: true }));

/** The in-process half: checkSource, then what the CLI does with its result. Returns the codes. */
function checkInProcess(c: Case): string[] {
  const path = join(inProcessDir, `case-${c.index}.vlm`);
  const result = checkSource(path, c.bytes);
  expect(result.sources.has(path), () => "checkSource returned no source for the file");
  // Offsets, before they become lines and columns.
  for (const d of result.diagnostics) {
    for (const s of [d.span, ...d.related.map((r) => r.span)]) {
      const text = result.sources.get(s.file)?.text;
      expect(text !== undefined, () => `${d.code}: a span names a file that was not read: ${s.file}`);
      expect(Number.isInteger(s.start) && Number.isInteger(s.end) && 0 <= s.start && s.start <= s.end && s.end <= text.length, () => `${d.code}: span ${s.start}..${s.end} is not inside the text of ${s.file} (length ${text.length})`);
      expect(!splitsPair(text, s.start) && !splitsPair(text, s.end), () => `${d.code}: span ${s.start}..${s.end} splits a surrogate pair`);
    }
  }
  const files = new Map<string, FileLines>([
    [path, fileLines(c.bytes)],
    [join(inProcessDir, USED), fileLines(usedBytes)],
  ]);
  const doc = JSON.parse(JSON.stringify(toJson(result.diagnostics, result.sources))) as unknown;
  const anyError = checkDocument(doc, files);
  expect(result.ok === !anyError, () => `ok is ${result.ok} but ${anyError ? "an error was" : "no error was"} reported`);
  expect(result.unreadable.length === 0, () => "an in-memory file was reported unreadable");
  const rendered = renderText(result.diagnostics, result.sources, { color: false });
  expect(!BIDI_OR_NUL.test(rendered), () => "the text rendering contains a NUL or bidi control character");
  return result.diagnostics.map((d) => d.code);
}

function splitsPair(text: string, offset: number): boolean {
  if (offset <= 0 || offset >= text.length) return false;
  const a = text.charCodeAt(offset - 1);
  const b = text.charCodeAt(offset);
  return a >= 0xd800 && a <= 0xdbff && b >= 0xdc00 && b <= 0xdfff;
}

function describe(c: Case): string {
  let saved = "";
  try {
    const dir = mkdtempSync(join(tmpdir(), "vlmc-fuzz-fail-"));
    const p = join(dir, `case-${c.index}.vlm`);
    writeFileSync(p, c.bytes);
    saved = `; input saved to ${p}`;
  } catch {
    // only a convenience
  }
  return `[fuzz seed ${SEED} (0x${SEED.toString(16)}) case ${c.index}: ${c.seed} + ${c.ops.join(", ") || "nothing"}, ${c.bytes.length} bytes${saved}; replay: VLMC_FUZZ_SEED=${SEED} VLMC_FUZZ_ONLY=${c.index}]`;
}

/** The real bin, like helpers/cli.ts's runVlmc, with room for a large JSON document on stdout. */
function runVlmc(args: string[], cwd: string): { code: number | null; signal: string | null; stdout: string; stderr: string; error?: Error } {
  const r = spawnSync(process.execPath, [vlmcBin, ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: "1" },
    input: "",
    encoding: "utf8",
    timeout: 120_000, // a hang guard only
    maxBuffer: 512 * 1024 * 1024,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ...(r.error ? { error: r.error } : {}) };
}

// ---- tests ----

const { seeds, valid } = loadSeeds();

test("fuzz: the seeds themselves are clean", () => {
  for (const s of valid) {
    const p = parseSource(s.name, s.bytes);
    assert.deepEqual(
      p.diagnostics.map((d) => `${d.code} ${d.message} @${p.source.position(d.span.start).line}`),
      [],
      `seed ${s.name} should parse without diagnostics`,
    );
  }
});

test(`fuzz: ${CASES} mutated inputs in-process keep the contract`, () => {
  const codesSeen = new Map<string, number>();
  const indices = ONLY !== undefined ? [ONLY] : Array.from({ length: CASES }, (_, i) => i);
  for (const i of indices) {
    const c = makeCase(i, seeds);
    try {
      for (const code of checkInProcess(c)) codesSeen.set(code, (codesSeen.get(code) ?? 0) + 1);
    } catch (err) {
      const kind = err instanceof ContractError ? "contract broken" : "exception";
      assert.fail(`${kind}: ${err instanceof Error ? (err instanceof ContractError ? err.message : err.stack) : String(err)}\n${describe(c)}`);
    }
  }
  if (process.env.VLMC_FUZZ_STATS) process.stderr.write(`fuzz codes seen: ${JSON.stringify(Object.fromEntries([...codesSeen].sort()))}\n`);
  if (ONLY === undefined && CASES >= 1000) {
    // The fuzzer must actually reach the interesting paths, or it tests little.
    for (const code of ["E0001", "E0002", "E0003", "E0004", "E0005", "E0006", "E0101", "E0102", "E0103", "E0104", "E0105"]) {
      assert.ok(codesSeen.has(code), `[fuzz seed ${SEED}] no case produced ${code}; seen: ${[...codesSeen.keys()].sort().join(" ")}`);
    }
  }
});

test(`fuzz: ${CLI_FILES} mutated files through the real vlmc in one process`, (t) => {
  if (ONLY !== undefined) {
    t.skip("VLMC_FUZZ_ONLY replays one in-process case");
    return;
  }
  const dir = useDir("vlmc-fuzz-");
  let passed = false;
  try {
    const files = new Map<string, FileLines>([[USED, fileLines(usedBytes)]]);
    const cases = new Map<string, Case>();
    const names: string[] = [];
    for (let k = 0; k < CLI_FILES; k++) {
      // Cases beyond the in-process range: new inputs, replayable the same way.
      const c = makeCase(1_000_000 + k, seeds);
      const name = `f${String(k).padStart(4, "0")}.vlm`;
      writeFileSync(join(dir, name), c.bytes);
      files.set(name, fileLines(c.bytes));
      cases.set(name, c);
      names.push(name);
    }
    const ctx = `[fuzz seed ${SEED}, CLI batch of ${CLI_FILES} files in ${dir}]`;

    const json = runVlmc(["check", "--format", "json", ...names], dir);
    assert.ok(json.code === 0 || json.code === 1, `${ctx} exit code ${json.code} (signal ${json.signal}, ${json.error?.message ?? "no spawn error"}); stderr: ${json.stderr.slice(0, 2000)}`);
    assert.equal(json.stderr, "", `${ctx} --format json wrote to stderr`);
    let doc: unknown;
    try {
      doc = JSON.parse(json.stdout);
    } catch (err) {
      assert.fail(`${ctx} stdout is not one JSON document (${(err as Error).message}): ${json.stdout.slice(0, 500)}`);
    }
    let anyError = false;
    try {
      anyError = checkDocument(doc, files);
    } catch (err) {
      const m = /\bf\d{4}\.vlm\b/.exec(String((err as Error).message));
      const c = m ? cases.get(m[0]) : undefined;
      assert.fail(`${ctx} ${(err as Error).message}${c ? `\n${describe(c)}` : ""}`);
    }
    assert.equal(json.code, anyError ? 1 : 0, `${ctx} exit code ${json.code} but ${anyError ? "errors were" : "no error was"} reported`);

    // The CLI and checkSource agree on the front end's findings, file by file.
    const byFile = new Map<string, string[]>();
    for (const d of (doc as { diagnostics: { file: string; code: string; line: number; column: number }[] }).diagnostics) {
      if (!/^[EW]0[01]/.test(d.code) || d.code === "E0105") continue;
      byFile.set(d.file, [...(byFile.get(d.file) ?? []), `${d.code}@${d.line}:${d.column}`]);
    }
    for (const name of names) {
      const r = checkSource(join(dir, name), cases.get(name)!.bytes);
      const own = toJson(r.diagnostics, r.sources);
      const expected = own.diagnostics
        .filter((d) => d.file === join(dir, name) && /^[EW]0[01]/.test(d.code) && d.code !== "E0105")
        .map((d) => `${d.code}@${d.line}:${d.column}`);
      assert.deepEqual(byFile.get(name) ?? [], expected, `${ctx} ${name}: the CLI and checkSource disagree\n${describe(cases.get(name)!)}`);
    }

    // The text renderer on the same batch: no crash, no stack trace.
    const text = runVlmc(["check", ...names], dir);
    assert.equal(text.code, json.code, `${ctx} text mode exit code ${text.code}, JSON mode ${json.code}; stderr: ${text.stderr.slice(-2000)}`);
    assert.doesNotMatch(text.stderr, /internal error|^\s+at .+:\d+:\d+\)?$/m, `${ctx} text mode printed an internal error or a stack trace`);
    assert.equal(text.stdout, "", `${ctx} text mode wrote to stdout`);
    passed = true;
  } finally {
    if (passed) rmSync(dir, { recursive: true, force: true }); // else kept, for the messages above
  }
});
