// The `csv(file, image:, text:)` source: the seed project's format, a CSV whose image column holds
// each image's file bytes (PNG, JPEG, ...) in base64 (a `data:image/...;base64,` prefix is
// allowed) and whose text column holds the caption. Defaults are the seed's column names.
//
// A row's image is identified by a hash of its base64 text, so rows repeating an image share one
// side of the split and one cache entry. The base64 text is kept (it is smaller than the decoded
// pixels) so an image evicted from the cache can be decoded again.
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { readCsv } from "../csv.js";
import { missingFileMessage } from "./captions.js";
import { DataError, imageCaptionStage, type ImageRow, type RowProblem, type SourceLoader } from "./common.js";

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$|^[A-Za-z0-9_-]*={0,2}$/;

export const loadCsv: SourceLoader = async (ctx) => {
  const file = resolve(ctx.baseDir, ctx.call.file as string);
  const imageColumn = ctx.call.image as string;
  const textColumn = ctx.call.text as string;
  const table = readCsv(file, [imageColumn, textColumn]);
  const fatal = table.problems.find((p) => p.scope === "file");
  if (fatal) throw new DataError(fatal.line > 0 ? `${file}:${fatal.line}: ${fatal.message}` : missingFileMessage(fatal.message));
  const problems: RowProblem[] = table.problems.map((p) => ({ file, line: p.line, message: p.message }));
  const rows: ImageRow[] = [];
  for (const { line, fields } of table.records) {
    const caption = fields[textColumn]!;
    const b64 = fields[imageColumn]!.replace(/^data:[^,]*;base64,/, "").replace(/\s+/g, "");
    if (b64 === "") problems.push({ file, line, message: `"${imageColumn}" is empty` });
    else if (!BASE64.test(b64)) problems.push({ file, line, message: `"${imageColumn}" is not base64 (an image's bytes, base64-encoded)` });
    else if (caption.trim() === "") problems.push({ file, line, message: `"${textColumn}" is empty` });
    else {
      const key = `${file}#${createHash("sha1").update(b64).digest("hex")}`;
      rows.push({ key, image: () => base64Bytes(b64), label: `the image in "${imageColumn}"`, caption, file, line });
    }
  }
  return imageCaptionStage(ctx, rows, problems);
};

function base64Bytes(b64: string): Uint8Array {
  const buf = Buffer.from(b64, b64.includes("-") || b64.includes("_") ? "base64url" : "base64");
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
