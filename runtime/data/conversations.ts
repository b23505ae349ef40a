// The `conversations(file)` data source's reader: JSON Lines in LLaVA's shape, one row a line,
//
//   {"image": "shapes/3.png", "conversations": [{"from": "human", "value": "<image>\nwhat colour is the circle?"},
//                                               {"from": "gpt", "value": "red"}, ...], "type": "colour"}
//
// image paths relative to the .jsonl file's folder (absolute paths kept). `type` (optional) is the
// question type an evaluation scores the last answer under (runtime/eval/qa.ts). The turns are
// checked against the spec's chat template as runtime/chat.ts says (alternating human/gpt turns,
// an answer last, the image placeholder only at the start of the first question).
//
// Reading never throws for bad content: a line that cannot become a row is a RowProblem (file,
// 1-based line, message) and is left out; whether problems are skipped or fatal is the spec's
// `bad_rows` (sources/common.ts). Blank lines are allowed, a UTF-8 byte order mark is ignored,
// CRLF line ends are accepted. Images are only checked to exist here; the loader decodes them.
import { readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { toExchanges, type ChatTemplate, type Exchange, type Turn } from "../chat.js";

export interface ConversationRow {
  /** Absolute path of the image. */
  image: string;
  exchanges: Exchange[];
  /** The row's question type, or null. */
  type: string | null;
  file: string;
  /** 1-based line in the .jsonl file. */
  line: number;
}

export interface ConversationProblem {
  file: string;
  /** 1-based line; 0 for the whole file. */
  line: number;
  message: string;
  /** The file itself could not be read. */
  unreadable?: boolean;
}

export interface ConversationsResult {
  rows: ConversationRow[];
  problems: ConversationProblem[];
}

/** Reads a conversations .jsonl file against the chat template. `path` is used as given in problems. */
export function readConversations(path: string, chat: ChatTemplate): ConversationsResult {
  const rows: ConversationRow[] = [];
  const problems: ConversationProblem[] = [];
  const problem = (line: number, message: string) => problems.push({ file: path, line, message });
  let bytes: Uint8Array;
  try {
    if (statSync(path).isDirectory()) return { rows, problems: [{ file: path, line: 0, message: `${path}: is a directory, not a file`, unreadable: true }] };
    bytes = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" || code === "ENOTDIR" ? "no such file" : code === "EACCES" || code === "EPERM" ? "permission denied" : (err as Error).message;
    return { rows, problems: [{ file: path, line: 0, message: `${path}: ${why}`, unreadable: true }] };
  }
  const base = dirname(resolve(path));
  const isFile = cachedIsFile();
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  let start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  for (let line = 1; start <= bytes.length; line++) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const stop = end > start && bytes[end - 1] === 0x0d ? end - 1 : end;
    const raw = bytes.subarray(start, stop);
    start = end + 1;
    let text: string;
    try {
      text = decoder.decode(raw);
    } catch {
      problem(line, "not valid UTF-8");
      continue;
    }
    if (text.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      problem(line, `not valid JSON: ${shorten((err as Error).message.replace(/ in JSON at position \d+.*$/, ""))}`);
      continue;
    }
    const row = toRow(value, chat, base, isFile);
    if (typeof row === "string") problem(line, row);
    else rows.push({ ...row, file: path, line });
  }
  return { rows, problems };
}

/** A parsed line as a row, or why it is not one. */
function toRow(value: unknown, chat: ChatTemplate, base: string, isFile: (p: string) => boolean): Omit<ConversationRow, "file" | "line"> | string {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return `${describe(value)}, not an object {"image": ..., "conversations": [...]}`;
  const obj = value as Record<string, unknown>;
  const image = obj.image;
  if (image === undefined || image === null) return 'no "image" field (each row is a conversation about one image)';
  if (typeof image !== "string") return `"image" is ${describe(image)}, expected a string`;
  if (image.trim() === "") return '"image" is empty';
  const conv = obj.conversations;
  if (conv === undefined || conv === null) return 'no "conversations" field';
  if (!Array.isArray(conv)) return `"conversations" is ${describe(conv)}, expected a list of {"from": ..., "value": ...}`;
  const turns: Turn[] = [];
  for (let i = 0; i < conv.length; i++) {
    const t = conv[i] as unknown;
    if (typeof t !== "object" || t === null || Array.isArray(t)) return `turn ${i + 1} is ${describe(t)}, not an object {"from": ..., "value": ...}`;
    const { from, value: v } = t as Record<string, unknown>;
    if (typeof from !== "string") return `turn ${i + 1}: "from" is ${from === undefined ? "missing" : describe(from)}, expected "human" or "gpt"`;
    if (typeof v !== "string") return `turn ${i + 1}: "value" is ${v === undefined ? "missing" : describe(v)}, expected a string`;
    turns.push({ from, value: v });
  }
  const type = obj.type;
  if (type !== undefined && type !== null && typeof type !== "string") return `"type" is ${describe(type)}, expected a string (the question type)`;
  const ex = toExchanges(turns, chat, true);
  if (!ex.ok) return ex.message;
  const abs = isAbsolute(image) ? resolve(image) : resolve(base, image);
  if (!isFile(abs)) return `image ${JSON.stringify(image)} not found (looked for ${abs})`;
  return { image: abs, exchanges: ex.exchanges, type: typeof type === "string" && type !== "" ? type : null };
}

function cachedIsFile(): (p: string) => boolean {
  const known = new Map<string, boolean>();
  return (p) => {
    let k = known.get(p);
    if (k === undefined) {
      try {
        k = statSync(p).isFile();
      } catch {
        k = false;
      }
      known.set(p, k);
    }
    return k;
  };
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return "a string";
  return `a ${typeof v} (${shorten(String(v))})`;
}

function shorten(s: string, max = 120): string {
  return s.length <= max ? s : `${s.slice(0, max - 3)}...`;
}
