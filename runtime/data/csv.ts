// CSV files of the data sources: the seed project's format (`csv(file, image:, text:)`: a column of
// base64-encoded images and a caption column) and ImageFolder's `metadata.csv` (folder.ts). Parsing
// is csv-parse's (quoted fields with commas, quotes and line breaks, CRLF, a UTF-8 byte order mark);
// this file adds what it does not give: each record's first line, for problems, and rows that
// name the columns they lack.
//
// As captions.ts, reading never throws for bad content: a bad row is a problem with its line and
// is left out; a file that cannot be read or parsed at all is one problem at line 0 or at the line
// the parser stopped.
import { readFileSync, statSync } from "node:fs";
import { parse } from "csv-parse/sync";

export interface CsvRecord {
  /** 1-based line the record starts on. */
  line: number;
  /** Fields by column name (absent when the record is short). */
  fields: Record<string, string | undefined>;
}

export interface CsvProblem {
  file: string;
  line: number;
  /** `file`: the whole file is unusable (unreadable, malformed, missing a column); `row`: one record. */
  scope: "file" | "row";
  message: string;
}

export interface CsvTable {
  columns: string[];
  records: CsvRecord[];
  problems: CsvProblem[];
}

/**
 * Reads a CSV file with a header row. `required` columns must be in the header (else one file
 * problem); a record with fewer fields than the header is a row problem.
 */
export function readCsv(path: string, required: readonly string[] = []): CsvTable {
  const problems: CsvProblem[] = [];
  const fileProblem = (line: number, message: string): CsvTable => ({ columns: [], records: [], problems: [{ file: path, line, scope: "file", message }] });
  let text: string;
  try {
    if (statSync(path).isDirectory()) return fileProblem(0, `${path}: is a directory, not a file`);
    text = new TextDecoder("utf-8", { fatal: true }).decode(readFileSync(path));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return fileProblem(0, `${path}: no such file`);
    if (err instanceof TypeError) return fileProblem(0, `${path}: not UTF-8 text`);
    return fileProblem(0, `${path}: ${(err as Error).message}`);
  }
  let parsed: { record: Record<string, string>; info: { records: number; invalid_field_length: number } }[];
  try {
    parsed = parse(text, { bom: true, columns: true, info: true, skip_empty_lines: true, relax_column_count: true }) as typeof parsed;
  } catch (err) {
    const e = err as Error & { lines?: number };
    const what = e.message.replace(/^[^:]*:\s*/, "");
    return fileProblem(e.lines ?? 0, `not valid CSV: ${what}`);
  }
  const starts = recordStarts(text);
  const header = starts[0] ?? 1;
  const columns = parsed.length > 0 ? Object.keys(parsed[0]!.record) : headerColumns(text);
  const missing = required.filter((c) => !columns.includes(c));
  if (missing.length) {
    return fileProblem(header, `no ${missing.map((c) => `"${c}"`).join(" or ")} column (the header has ${columns.map((c) => `"${c}"`).join(", ") || "no columns"})`);
  }
  const records: CsvRecord[] = [];
  for (const { record, info } of parsed) {
    const line = starts[info.records] ?? 0;
    const absent = required.filter((c) => record[c] === undefined);
    if (absent.length) {
      problems.push({ file: path, line, scope: "row", message: `the row has no ${absent.map((c) => `"${c}"`).join(" or ")} field (fewer fields than the header)` });
      continue;
    }
    records.push({ line, fields: record });
  }
  return { columns, records, problems };
}

/**
 * The 1-based line each record starts on, the header first, found as RFC 4180 reads a file: a
 * line break inside double quotes belongs to the field; empty lines are not records (as
 * csv-parse's `skip_empty_lines`). A malformed quote has already been rejected by the parser.
 */
export function recordStarts(text: string): number[] {
  const starts: number[] = [];
  let line = 1;
  let inQuotes = false;
  let empty = true;
  let start = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) inQuotes = !inQuotes;
    if (c === 0x0a) {
      if (!inQuotes) {
        if (!empty) starts.push(start);
        empty = true;
        start = line + 1;
      }
      line++;
      continue;
    }
    if (c !== 0x0d && c !== 0xfeff) empty = false;
  }
  if (!empty) starts.push(start);
  return starts;
}

function headerColumns(text: string): string[] {
  try {
    const rows = parse(text, { bom: true, to_line: 1 }) as string[][];
    return rows[0] ?? [];
  } catch {
    return [];
  }
}
