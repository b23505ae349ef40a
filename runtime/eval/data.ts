// `vlmc eval --data FILE`: a captions JSON Lines file (the `captions(...)` source's format,
// runtime/data/captions.ts: `{"image": path, "caption": text}` a line, paths relative to the file)
// as evaluation examples for a trained run. It goes through the very pipeline training reads a
// `captions(file)` source with (runtime/train/data.ts, runtime/data/sources/), nothing held out
// (split 0), so the images are prepared exactly as the run's encoder takes them (its `pixels`:
// size, resize, normalisation), every image is decoded once up front, and each row that cannot be
// used (a malformed line, a missing or corrupt image, a character the run's tokenizer cannot
// spell) is skipped and reported as FILE:LINE with why. Only a file with no usable row at all,
// or no file, is an error.
import { statSync } from "node:fs";
import { resolve } from "node:path";
import type { Ir } from "../../compiler/ir/types.js";
import type { Tokenizer } from "../tokenizer.js";
import { DataError, describeCall, loadStageData, type Example } from "../train/data.js";
import type { LossData } from "./loss.js";

export interface EvalFile extends LossData {
  /** The file as given: what messages and results call it. */
  describe: string;
  /** One example per usable row, in file order. */
  examples: Example[];
  /** `FILE:LINE: why` for each row left out, in file order. */
  problems: string[];
}

/** Why a --data file cannot be used at all (one line; `usage`: it could not be read). */
export class EvalDataError extends Error {
  constructor(
    message: string,
    readonly usage: boolean,
  ) {
    super(message);
    this.name = "EvalDataError";
  }
}

/** Throws an EvalDataError (usage) when `file` is not a readable file: before any work starts. */
export function checkEvalFile(file: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(resolve(file)).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new EvalDataError(`${file}: ${code === "ENOENT" || code === "ENOTDIR" ? "no such file" : (err as Error).message}`, true);
  }
  if (isDir) throw new EvalDataError(`${file}: is a directory, not a captions file`, true);
}

export async function loadEvalFile(file: string, ir: Ir, tokenizer: Tokenizer): Promise<EvalFile> {
  checkEvalFile(file);
  if (!ir.modules.encoder) throw new EvalDataError(`the model \`${ir.model}\` has no encoder: it cannot caption the images of ${file}`, false);
  const abs = resolve(file);
  const call = { kind: "captions", file: abs, image: "image", text: "caption", bad_rows: "skip" };
  // Messages name the file as the user wrote it, not the source call or the absolute path.
  const named = (message: string) => {
    const m = message.startsWith(`${describeCall(call)}:`) ? `${file}:${message.slice(describeCall(call).length + 1)}` : message;
    return m.split(`${abs}:`).join(`${file}:`);
  };
  let data;
  try {
    data = await loadStageData(call, ir, tokenizer, { baseDir: process.cwd(), split: 0, seed: 0 });
  } catch (err) {
    if (err instanceof DataError) throw new EvalDataError(named(err.message), false);
    throw err;
  }
  return {
    describe: file,
    examples: [...data.train, ...data.validation],
    problems: data.problems.map(named),
    maxText: data.maxText,
    padId: data.padId,
    imageSize: data.imageSize,
    pixels: (batch) => data.pixels(batch),
  };
}
