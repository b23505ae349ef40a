// Any tokenizer kind from the IR, and a run folder's tokenizer files: what `vlmc train` builds
// (training the `bpe` kind on the spec's `train.data` first) and saves, and what `vlmc eval`
// reads back.
//
// The run folder holds `tokenizer.json`: CharTokenizer's own JSON for `chars` (unchanged, so
// old runs still load), the Hugging Face file for `hf` and `bpe`, which then also get a
// Hugging Face `tokenizer_config.json` naming the special roles' tokens: the folder loads in
// Python with `AutoTokenizer.from_pretrained(run_dir)`. The vocabulary size is the IR's (the
// decoder's `vocab`): a `bpe` whose training text ran out of pairs leaves ids unused.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeFileAtomic } from "../../compiler/files.js";
import type { Ir, IrBpeTokenizer, IrHfTokenizer, IrTokenizer } from "../../compiler/ir/types.js";
import { bpeSpecialToken } from "../../compiler/resolve/tokenizer.js";
import { CharTokenizer, TokenizerFormatError, type EncodeResult, type Special, type Tokenizer } from "../tokenizer.js";
import { loadStageData } from "../train/data.js";
import { bpeTokenizerJson, trainBpe, type TrainedBpe } from "./bpe-train.js";
import { HfTokenizer, rolesOfConfig } from "./hf.js";

/** The files a run folder's tokenizer may have (what `--force` removes). */
export const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json"];

const sha256 = (bytes: Uint8Array | string) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

function hfRoles(t: IrHfTokenizer): Partial<Record<Special, string>> {
  return Object.fromEntries(Object.entries(t.special_tokens).map(([role, s]) => [role, s.token]));
}

/**
 * The tokenizer of an IR whose tokenizer needs no training (`chars`, `hf`); `baseDir` is the
 * folder the IR's paths are relative to. An `hf` file must still be the one the IR was compiled
 * from (its sha256), and each role's token must have the id the IR recorded.
 */
export function tokenizerFromIr(t: IrTokenizer, baseDir: string): Tokenizer {
  if (t.kind === "chars") return CharTokenizer.fromIr(t);
  if (t.kind === "bpe") throw new TokenizerFormatError("a `bpe` tokenizer is trained when a run starts: read it from the run folder");
  const file = resolve(baseDir, t.file);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new TokenizerFormatError(`${file}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : (err as Error).message}`);
  }
  if (sha256(bytes) !== t.sha256) throw new TokenizerFormatError(`${file} has changed since the spec was checked (its sha256 is not the IR's): check the spec again`);
  const tok = new HfTokenizer(bytes.toString("utf8"), { kind: "hf", specials: hfRoles(t), size: t.size });
  checkRoleIds(tok, t);
  return tok;
}

function checkRoleIds(tok: Tokenizer, t: IrHfTokenizer): void {
  for (const [role, s] of Object.entries(t.special_tokens)) {
    const id = tok[role as Special];
    if (id !== s.id) throw new TokenizerFormatError(`the \`${role}\` token ${JSON.stringify(s.token)} has id ${id}, not the IR's ${s.id}`);
  }
}

/** Encodes nothing: lets the data sources read a stage's texts before a tokenizer exists. */
const textsOnly: Tokenizer = {
  kind: "chars",
  size: 1,
  pad: 0,
  bos: null,
  eos: null,
  unk: null,
  encode: (): EncodeResult => ({ ok: true, ids: new Int32Array(0) }),
  decode: () => "",
  token: () => null,
  files: () => ({}),
};

/** The texts a `bpe` tokenizer trains on: the training side of `train.data`, as the trainer splits it. */
export async function trainingTexts(ir: Ir, baseDir: string): Promise<string[]> {
  if (!ir.train) throw new TokenizerFormatError(`the model \`${ir.model}\` has no \`train\` section: a \`bpe\` tokenizer has nothing to train on`);
  const data = await loadStageData(ir.train.data, ir, textsOnly, { baseDir, split: ir.train.split, seed: ir.train.seed });
  return data.train.map((e) => e.text);
}

/** A `bpe` tokenizer trained on `texts` as the IR says, through its tokenizer.json (so exactly what `tokenizer hf` would load). */
export function trainBpeTokenizer(t: IrBpeTokenizer, texts: Iterable<string>, onProgress?: (merges: number, target: number) => void): { tokenizer: HfTokenizer; trained: TrainedBpe } {
  const roles = t.specials as Special[];
  const trained = trainBpe(texts, { vocab: t.size, specials: roles.map(bpeSpecialToken), minFrequency: t.min_frequency, ...(onProgress ? { onProgress } : {}) });
  const specials = Object.fromEntries(roles.map((r) => [r, bpeSpecialToken(r)]));
  return { tokenizer: new HfTokenizer(bpeTokenizerJson(trained), { kind: "bpe", specials, size: t.size }), trained };
}

export interface PrepareOptions {
  /** The folder the IR's paths are relative to. */
  baseDir: string;
  runDir: string;
  /** A resumed run: a `bpe` tokenizer already in the run folder is used as it is, not trained again. */
  resume: boolean;
  note: (message: string) => void;
}

/** The tokenizer a run trains with, saved into its folder. */
export async function prepareRunTokenizer(ir: Ir, options: PrepareOptions): Promise<Tokenizer> {
  const t = ir.tokenizer;
  if (!t) throw new TokenizerFormatError(`the model \`${ir.model}\` has no tokenizer`);
  let tok: Tokenizer;
  if (t.kind !== "bpe") tok = tokenizerFromIr(t, options.baseDir);
  else if (options.resume && existsSync(join(options.runDir, "tokenizer.json"))) tok = loadRunTokenizer(options.runDir, t);
  else {
    const started = performance.now();
    const texts = await trainingTexts(ir, options.baseDir);
    const { tokenizer, trained } = trainBpeTokenizer(t, texts);
    const merges = trained.merges.length;
    const used = trained.tokens.length;
    const why = trained.exhausted ? `; no pair occurs ${t.min_frequency} times any more, so ids ${used}..${t.size - 1} stay unused` : "";
    options.note(`tokenizer: trained a byte-level BPE of ${merges} merges on ${texts.length} texts (${trained.words.total} words, ${trained.words.distinct} distinct) in ${((performance.now() - started) / 1000).toFixed(1)} s${why}`);
    tok = tokenizer;
  }
  saveRunTokenizer(options.runDir, tok);
  return tok;
}

/** Writes the tokenizer's files into a run folder (atomically), removing a stale tokenizer_config.json. */
export function saveRunTokenizer(dir: string, tok: Tokenizer): void {
  const files = tok.files();
  for (const name of TOKENIZER_FILES) if (!(name in files)) rmSync(join(dir, name), { force: true });
  for (const [name, text] of Object.entries(files)) writeFileAtomic(join(dir, name), text);
}

/**
 * A run folder's tokenizer, as the IR (the run's ir.json) says it should be. Throws
 * TokenizerFormatError when the files do not fit it, and the file system's error when one
 * cannot be read.
 */
export function loadRunTokenizer(dir: string, t: IrTokenizer | null): Tokenizer {
  const bytes = readFileSync(join(dir, "tokenizer.json"));
  const text = bytes.toString("utf8");
  // `chars` (or an IR without a tokenizer) reads as runs always have: CharTokenizer's own JSON.
  if (!t || t.kind === "chars") return CharTokenizer.fromJSON(text);
  if (t.kind === "hf" && sha256(bytes) !== t.sha256) throw new TokenizerFormatError("it is not the file the IR's tokenizer names (its sha256 differs)");
  let config: unknown = {};
  try {
    config = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new TokenizerFormatError(`tokenizer_config.json: ${(err as Error).message}`);
  }
  const specials = rolesOfConfig(config);
  const missing = t.specials.filter((r) => specials[r as Special] === undefined);
  if (missing.length) throw new TokenizerFormatError(`tokenizer_config.json names no token for ${missing.map((r) => `\`${r}\``).join(", ")}, which the IR's tokenizer has`);
  const tok = new HfTokenizer(text, { kind: t.kind, specials, size: t.size });
  if (t.kind === "hf") checkRoleIds(tok, t);
  return tok;
}
