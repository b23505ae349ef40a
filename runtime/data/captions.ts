// The `captions(file, image:, text:)` data source: JSON Lines, one `{"image": path, "caption": text}`
// object a line, image paths relative to the .jsonl file's folder (absolute paths are kept).
//
// Reading never throws for bad content: every line that cannot become a row is a `CaptionProblem`
// with the file, its 1-based line (and column where known), a kind and a message, and is left out of
// `rows`. Whether problems are skipped or fatal is the caller's decision (the spec's). Blank lines
// (whitespace only) are allowed; a UTF-8 byte order mark at the start is ignored; CRLF line ends are
// accepted. Images are only checked to exist as regular files here; decoding is images.ts's job.
import { readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";

export interface CaptionRow {
  /** Absolute path of the image. */
  image: string;
  caption: string;
  /** 1-based line in the .jsonl file. */
  line: number;
}

export type CaptionProblemKind =
  /** The .jsonl file itself cannot be read (line 0). */
  | "unreadable-file"
  /** The line is not valid UTF-8. */
  | "invalid-utf8"
  /** The line is not valid JSON. */
  | "invalid-json"
  /** The line is JSON but not an object. */
  | "not-an-object"
  /** The image or caption field is absent (or null). */
  | "missing-field"
  /** The image or caption field is not a string. */
  | "wrong-type"
  /** The caption is empty or whitespace only. */
  | "empty-caption"
  /** The image path is empty. */
  | "empty-image"
  /** The image file does not exist, or is not a regular file. */
  | "missing-image";

export interface CaptionProblem {
  file: string;
  /** 1-based line; 0 for a problem with the whole file. */
  line: number;
  /** 1-based column within the line (UTF-16 units), where known. */
  column?: number;
  kind: CaptionProblemKind;
  message: string;
}

export interface CaptionsResult {
  rows: CaptionRow[];
  problems: CaptionProblem[];
}

export interface CaptionFields {
  imageField?: string;
  textField?: string;
}

/** Reads a captions .jsonl file. `jsonlPath` is used as given in problems' `file`. */
export function readCaptions(jsonlPath: string, fields: CaptionFields = {}): CaptionsResult {
  const imageField = fields.imageField ?? "image";
  const textField = fields.textField ?? "caption";
  const rows: CaptionRow[] = [];
  const problems: CaptionProblem[] = [];
  const file = jsonlPath;
  const problem = (line: number, kind: CaptionProblemKind, message: string, column?: number) => {
    problems.push(column === undefined ? { file, line, kind, message } : { file, line, column, kind, message });
  };

  let bytes: Uint8Array;
  try {
    if (statSync(jsonlPath).isDirectory()) {
      problem(0, "unreadable-file", `${jsonlPath}: is a directory, not a file`);
      return { rows, problems };
    }
    bytes = readFileSync(jsonlPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" || code === "ENOTDIR" ? "no such file" : code === "EACCES" || code === "EPERM" ? "permission denied" : err instanceof Error ? err.message : String(err);
    problem(0, "unreadable-file", `${jsonlPath}: ${why}`);
    return { rows, problems };
  }

  const base = dirname(resolve(jsonlPath));
  const exists = new Map<string, boolean>();
  const isFile = (p: string): boolean => {
    let known = exists.get(p);
    if (known === undefined) {
      try {
        known = statSync(p).isFile();
      } catch {
        known = false;
      }
      exists.set(p, known);
    }
    return known;
  };
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

  let start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  for (let line = 1; start <= bytes.length; line++) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const next = end + 1;
    let stop = end;
    if (stop > start && bytes[stop - 1] === 0x0d) stop--;
    const raw = bytes.subarray(start, stop);
    start = next;

    let text: string;
    try {
      text = decoder.decode(raw);
    } catch {
      problem(line, "invalid-utf8", `line ${line} is not valid UTF-8`);
      continue;
    }
    if (text.trim() === "") continue;

    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      const pos = /at position (\d+)/.exec(msg);
      const column = pos ? Number(pos[1]) + 1 : undefined;
      const why = msg.replace(/ in JSON at position \d+.*$/, "");
      problem(line, "invalid-json", `line ${line}${column === undefined ? "" : `, column ${column}`} is not valid JSON: ${shorten(why)}`, column);
      continue;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      problem(line, "not-an-object", `line ${line} is ${describe(value)}, not an object {"${imageField}": ..., "${textField}": ...}`);
      continue;
    }
    const obj = value as Record<string, unknown>;
    const image = obj[imageField];
    const caption = obj[textField];
    let bad = false;
    for (const [name, v] of [
      [imageField, image],
      [textField, caption],
    ] as const) {
      if (v === undefined || v === null) {
        problem(line, "missing-field", `line ${line} has no "${name}" field`);
        bad = true;
      } else if (typeof v !== "string") {
        problem(line, "wrong-type", `line ${line}: "${name}" is ${describe(v)}, expected a string`);
        bad = true;
      }
    }
    if (bad) continue;
    const imagePath = image as string;
    const captionText = caption as string;
    if (imagePath.trim() === "") {
      problem(line, "empty-image", `line ${line}: "${imageField}" is empty`);
      continue;
    }
    if (captionText.trim() === "") {
      problem(line, "empty-caption", `line ${line}: "${textField}" is empty`);
      continue;
    }
    const abs = isAbsolute(imagePath) ? resolve(imagePath) : resolve(base, imagePath);
    if (!isFile(abs)) {
      problem(line, "missing-image", `line ${line}: image ${JSON.stringify(imagePath)} not found (looked for ${abs})`);
      continue;
    }
    rows.push({ image: abs, caption: captionText, line });
  }
  return { rows, problems };
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `a string`;
  if (typeof v === "object") return "an object";
  return `a ${typeof v} (${shorten(String(v))})`;
}

function shorten(s: string, max = 120): string {
  return s.length <= max ? s : `${s.slice(0, max - 3)}...`;
}
