// The `folder(file, captions:, text:)` source: a folder of images with an ImageFolder metadata
// file (runtime/data/folder.ts), through the shared image-caption pipeline. The folder's argument
// is named `file` as every data source's path is, so the IR re-bases it like the others.
import { resolve } from "node:path";
import { readFolder } from "../folder.js";
import { DataError, imageCaptionStage, type SourceLoader } from "./common.js";

export const loadFolder: SourceLoader = async (ctx) => {
  const dir = resolve(ctx.baseDir, ctx.call.file as string);
  const read = readFolder(dir, { captions: ctx.call.captions as string, text: ctx.call.text as string });
  if (read.fatal) throw new DataError(/no such folder$/.test(read.fatal) ? `${read.fatal}: the data is needed to train (paths are relative to the spec; point elsewhere with --set train.data=...)` : read.fatal);
  const file = read.metadata!;
  const rows = read.rows.map((r) => ({ key: r.image, image: r.image, caption: r.caption, file, line: r.line }));
  return imageCaptionStage(ctx, rows, read.problems);
};
