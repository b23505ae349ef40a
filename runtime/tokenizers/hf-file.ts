// Reading a Hugging Face tokenizer.json at check time, without building the tokenizer: what
// the checker needs (the vocabulary size, the id of each token a spec names as a special, the
// file's hash) and the problems that would stop the runtime later, found now. Only byte-level
// BPE files are accepted (GPT-2's kind: a BPE model whose pre-tokenizer is ByteLevel, with all
// 256 byte characters in its vocabulary), because only they encode every text and decode it
// back exactly. Building the tokenizer (a few hundred ms for GPT-2's 50,000 merges) is left to
// run time (hf.ts, through @huggingface/tokenizers).
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { BYTE_CHARS } from "./bytelevel.js";

/** Files larger than this are not read (Hugging Face tokenizers are a few MiB). */
export const MAX_TOKENIZER_FILE = 64 * 1024 * 1024;

export interface HfFileInfo {
  /** sha256 of the file's bytes: `sha256:` and 64 hex digits. */
  sha256: string;
  /** Highest id + 1: the embedding rows the vocabulary needs. */
  size: number;
  /** Token text -> id, the model's vocabulary and the added tokens. */
  ids: Map<string, number>;
  /** The added tokens' texts (for suggestions). */
  added: string[];
  merges: number;
}

export type HfFileResult = { ok: true; info: HfFileInfo } | { ok: false; message: string };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 2 ** 31;

/** JSON.parse's "at position N" as "line L column C" of the text. */
function jsonProblem(text: string, err: Error): string {
  const m = /position (\d+)/.exec(err.message);
  const msg = err.message.replace(/ in JSON at position \d+.*$/, "").replace(/\s*\(line \d+ column \d+\)$/, "");
  if (!m) return msg;
  const before = text.slice(0, Number(m[1]));
  const line = before.split("\n").length;
  const column = before.length - before.lastIndexOf("\n");
  return `${msg} at line ${line}, column ${column}`;
}

/** The pre-tokenizer is ByteLevel, or a Sequence holding one. */
function byteLevelPreTokenizer(p: unknown): boolean {
  if (!isObj(p)) return false;
  if (p.type === "ByteLevel") return true;
  return p.type === "Sequence" && Array.isArray(p.pretokenizers) && p.pretokenizers.some(byteLevelPreTokenizer);
}

/** The last few files read, by path, size and modification time: a spec checked again (tests, an editor) does not re-read GPT-2's 2 MiB. */
const cache = new Map<string, HfFileResult>();

/** The file, checked. */
export function readHfTokenizerFile(path: string): HfFileResult {
  let data: Uint8Array;
  let key: string;
  try {
    const st = statSync(path);
    if (st.size > MAX_TOKENIZER_FILE) return { ok: false, message: `it is larger than ${MAX_TOKENIZER_FILE / 2 ** 20} MiB` };
    key = `${path}\0${st.size}\0${st.mtimeMs}`;
    const hit = cache.get(key);
    if (hit) return hit;
    data = readFileSync(path);
  } catch (err) {
    return { ok: false, message: `it cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
  const result = checkHfFile(data);
  if (cache.size >= 4) cache.delete(cache.keys().next().value!);
  cache.set(key, result);
  return result;
}

function checkHfFile(data: Uint8Array): HfFileResult {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(data);
  } catch {
    return { ok: false, message: "it is not UTF-8 text" };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { ok: false, message: `it is not JSON: ${jsonProblem(text, err as Error)}` };
  }
  const checked = checkHfTokenizer(doc);
  if (!checked.ok) return checked;
  return { ok: true, info: { ...checked.info, sha256: `sha256:${createHash("sha256").update(data).digest("hex")}` } };
}

/** The checks of readHfTokenizerFile on a parsed document. */
export function checkHfTokenizer(doc: unknown): { ok: true; info: Omit<HfFileInfo, "sha256"> } | { ok: false; message: string } {
  const bad = (message: string) => ({ ok: false as const, message });
  if (!isObj(doc)) return bad("it is not a tokenizer.json: not a JSON object");
  const model = doc.model;
  if (!isObj(model)) return bad("it is not a tokenizer.json: no `model` object");
  if (model.type !== undefined && model.type !== "BPE") return bad(`its model is ${JSON.stringify(model.type)}; vlmc reads BPE tokenizers only`);
  if (!isObj(model.vocab)) return bad("its `model.vocab` is not an object of token -> id");
  if (!Array.isArray(model.merges)) return bad("its `model.merges` is not a list");
  if (!byteLevelPreTokenizer(doc.pre_tokenizer)) return bad("it is not a byte-level BPE (its pre-tokenizer is not `ByteLevel`): characters outside its vocabulary could not be encoded");
  const ids = new Map<string, number>();
  let size = 0;
  for (const [token, id] of Object.entries(model.vocab)) {
    if (!isId(id)) return bad(`\`model.vocab\` gives ${JSON.stringify(token)} the id ${JSON.stringify(id)}, not a whole number >= 0`);
    ids.set(token, id);
    size = Math.max(size, id + 1);
  }
  const missing = BYTE_CHARS.findIndex((c) => !ids.has(c));
  if (missing >= 0) return bad(`its vocabulary lacks the byte 0x${missing.toString(16).padStart(2, "0")} (${JSON.stringify(BYTE_CHARS[missing])}): a byte-level BPE must hold all 256`);
  for (let i = 0; i < model.merges.length; i++) {
    const m = model.merges[i];
    const pair = typeof m === "string" ? m.split(" ") : m;
    if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((p) => typeof p === "string")) return bad(`merge ${i + 1} is ${JSON.stringify(m)}, not two tokens`);
    const [a, b] = pair as [string, string];
    for (const t of [a, b, a + b]) if (!ids.has(t)) return bad(`merge ${i + 1} (${JSON.stringify(a)}, ${JSON.stringify(b)}) uses ${JSON.stringify(t)}, which is not in the vocabulary`);
  }
  const added: string[] = [];
  const list = doc.added_tokens ?? [];
  if (!Array.isArray(list)) return bad("its `added_tokens` is not a list");
  for (const [i, t] of list.entries()) {
    if (!isObj(t) || typeof t.content !== "string" || !isId(t.id)) return bad(`added token ${i + 1} has no \`content\` string and whole-number \`id\``);
    ids.set(t.content, t.id);
    added.push(t.content);
    size = Math.max(size, t.id + 1);
  }
  return { ok: true, info: { size, ids, added, merges: model.merges.length } };
}
