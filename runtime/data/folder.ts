// A folder of images with a captions file, as Hugging Face's ImageFolder lays it out: image files
// anywhere under the folder and a metadata file (`metadata.jsonl` or `metadata.csv`) whose
// `file_name` column gives each image's path relative to the metadata file's folder and whose
// text column (default `text`) its caption. JSON Lines go through captions.ts's reader, CSV
// through csv.ts's; both report bad rows as problems with their line and never throw.
import { existsSync, statSync } from "node:fs";
import { dirname, extname, isAbsolute, resolve } from "node:path";
import { readCaptions } from "./captions.js";
import { readCsv } from "./csv.js";

/** ImageFolder's name for the image path column. */
export const FILE_NAME = "file_name";
export const DEFAULT_METADATA = "metadata.jsonl";
/** Tried when the default metadata.jsonl is absent, as ImageFolder does. */
export const ALTERNATE_METADATA = "metadata.csv";

export interface FolderRow {
  /** Absolute path of the image. */
  image: string;
  caption: string;
  /** 1-based line (record) in the metadata file. */
  line: number;
}

export interface FolderResult {
  /** The metadata file read (absolute); null when the folder has none. */
  metadata: string | null;
  rows: FolderRow[];
  /** Row problems: `metadata:line: message`. */
  problems: { file: string; line: number; message: string }[];
  /** Why nothing could be read (no folder, no metadata file, a malformed one); null when rows were read. */
  fatal: string | null;
}

export function readFolder(dir: string, opts: { captions?: string; text?: string } = {}): FolderResult {
  const none = (fatal: string): FolderResult => ({ metadata: null, rows: [], problems: [], fatal });
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    return none(`${dir}: no such folder`);
  }
  if (!isDir) return none(`${dir}: not a folder (a \`folder\` source names the folder that holds the images and ${DEFAULT_METADATA})`);
  const asked = opts.captions ?? DEFAULT_METADATA;
  let metadata = resolve(dir, asked);
  if (!existsSync(metadata) && asked === DEFAULT_METADATA && existsSync(resolve(dir, ALTERNATE_METADATA))) metadata = resolve(dir, ALTERNATE_METADATA);
  if (!existsSync(metadata)) return none(`${dir}: no ${asked}${asked === DEFAULT_METADATA ? ` or ${ALTERNATE_METADATA}` : ""} (the captions file, with a "${FILE_NAME}" column)`);
  const text = opts.text ?? "text";
  const ext = extname(metadata).toLowerCase();
  if (ext === ".jsonl") {
    const read = readCaptions(metadata, { imageField: FILE_NAME, textField: text });
    const unreadable = read.problems.find((p) => p.kind === "unreadable-file");
    if (unreadable) return { ...none(unreadable.message), metadata };
    return { metadata, rows: read.rows, problems: read.problems.map((p) => ({ file: metadata, line: p.line, message: p.message })), fatal: null };
  }
  if (ext !== ".csv") return { ...none(`${metadata}: a captions file is .jsonl or .csv`), metadata };
  const table = readCsv(metadata, [FILE_NAME, text]);
  const fatal = table.problems.find((p) => p.scope === "file");
  if (fatal) return { ...none(fatal.line > 0 ? `${metadata}:${fatal.line}: ${fatal.message}` : fatal.message), metadata };
  const problems = table.problems.map((p) => ({ file: metadata, line: p.line, message: p.message }));
  const rows: FolderRow[] = [];
  const base = dirname(metadata);
  for (const { line, fields } of table.records) {
    const name = fields[FILE_NAME]!;
    const caption = fields[text]!;
    if (name.trim() === "") problems.push({ file: metadata, line, message: `"${FILE_NAME}" is empty` });
    else if (caption.trim() === "") problems.push({ file: metadata, line, message: `"${text}" is empty` });
    else {
      const abs = isAbsolute(name) ? resolve(name) : resolve(base, name);
      if (!isFile(abs)) problems.push({ file: metadata, line, message: `image ${JSON.stringify(name)} not found (looked for ${abs})` });
      else rows.push({ image: abs, caption, line });
    }
  }
  return { metadata, rows, problems, fatal: null };
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
