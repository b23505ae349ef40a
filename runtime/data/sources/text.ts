// The `text(file)` source: one document a line, for a text-only stage (the decoder alone), split
// by line. A line the tokenizer cannot encode is a bad row, skipped or fatal as `bad_rows` says.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { splitByImage } from "../split.js";
import { applyBadRows, badRowsPolicy, DataError, encodeCaption, type RowProblem, type SourceLoader } from "./common.js";

export const loadText: SourceLoader = async (ctx) => {
  const file = resolve(ctx.baseDir, ctx.call.file as string);
  let body: string;
  try {
    body = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DataError(code === "ENOENT" ? `${file}: no such file: the data file is needed to train (paths are relative to the spec)` : `${file}: ${(err as Error).message}`);
  }
  const lines = body.split(/\r?\n/).map((t, i) => ({ t, i })).filter((l) => l.t.trim() !== "");
  if (lines.length === 0) throw new DataError(`${file}: no text`);
  const problems: RowProblem[] = [];
  const examples: { image: string; text: string; ids: Int32Array }[] = [];
  for (const l of lines) {
    const e = encodeCaption(ctx.tokenizer, l.t);
    if (e.ok) examples.push({ image: `line:${l.i + 1}`, text: l.t, ids: e.ids });
    else problems.push({ file, line: l.i + 1, message: e.message });
  }
  const reported = applyBadRows(problems, badRowsPolicy(ctx.call));
  if (examples.length === 0) throw new DataError(`${file}: no usable lines (${reported.length} bad, the first: ${reported[0]})`);
  const split = splitByImage(examples, ctx.split, ctx.seed);
  return {
    describe: ctx.describe,
    train: split.train.map((i) => ({ ...examples[i]!, image: null })),
    validation: split.validation.map((i) => ({ ...examples[i]!, image: null })),
    problems: reported,
    images: false,
    maxText: ctx.maxText,
    padId: ctx.padId,
    imageSize: null,
    pixels: async () => new Float32Array(0),
  };
};
