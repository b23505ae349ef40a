// The `captions(file, image:, text:)` source: JSON Lines read by runtime/data/captions.ts, image
// paths relative to the file, through the shared image-caption pipeline (common.ts).
import { resolve } from "node:path";
import { readCaptions } from "../captions.js";
import { DataError, imageCaptionStage, type SourceLoader } from "./common.js";

export const loadCaptions: SourceLoader = async (ctx) => {
  const file = resolve(ctx.baseDir, ctx.call.file as string);
  const read = readCaptions(file, { imageField: ctx.call.image as string, textField: ctx.call.text as string });
  const unreadable = read.problems.find((p) => p.kind === "unreadable-file");
  if (unreadable) throw new DataError(missingFileMessage(unreadable.message));
  const rows = read.rows.map((r) => ({ key: r.image, image: r.image, caption: r.caption, file, line: r.line }));
  return imageCaptionStage(ctx, rows, read.problems);
};

/** `vlmc check` only warns about a data file that is missing (W0504); training needs it. */
export function missingFileMessage(message: string): string {
  return /no such file$/.test(message) ? `${message}: the data file is needed to train (paths are relative to the spec; point elsewhere with --set train.data=...)` : message;
}
