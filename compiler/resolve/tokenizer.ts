// The tokenizer section. Its size is derived (`tokenizer.size`), never restated:
//   `chars`: one token per character of an alphabet (written in the spec, or every distinct
//            character of a corpus file), plus special tokens;
//   `hf`:    a Hugging Face tokenizer.json (byte-level BPE, GPT-2's kind), read here for its
//            vocabulary size and the ids of the tokens the spec names as specials; or a model
//            folder's (`pretrained: "folder"`: tokenizer.json, its specials from
//            tokenizer_config.json / special_tokens_map.json), the tokenizer a `pretrained:`
//            decoder implies when the spec has no `tokenizer` section;
//   `bpe`:   a byte-level BPE that `vlmc train` trains on the spec's `train.data` before the
//            first step; its size is the declared `vocab`.
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { diagnostic } from "../diagnostics/diagnostic.js";
import { pretrainedSetting, type PretrainedFolder, type PretrainedKind } from "./pretrained.js";
import { readHfTokenizerFile } from "../../runtime/tokenizers/hf-file.js";
import type { Span } from "../source.js";
import type { Schema, SectionReader } from "./section.js";
import { didYouMean } from "./suggest.js";
import { int, LIMITS, oneOf, str, type Typed, type TypedCall } from "./types.js";

export const SPECIALS = ["pad", "bos", "eos", "unk"] as const;

export type TokenizerInfo =
  | {
      kind: "chars";
      /** Characters in id order (after the specials). */
      alphabet: string;
      specials: string[];
      size: number;
    }
  | {
      kind: "hf";
      /** As written: relative to the spec. */
      file: string;
      sha256: string;
      /** The roles given a token, in the order pad, bos, eos, unk. */
      specials: string[];
      specialTokens: Record<string, { token: string; id: number }>;
      size: number;
    }
  | { kind: "bpe"; specials: string[]; minFrequency: number; size: number };

/** The 256 byte tokens every byte-level BPE starts from. */
export const BYTE_TOKENS = 256;

const specialsList = { type: { t: "list" as const, of: oneOf(...SPECIALS) }, default: ["pad", "bos", "eos"], doc: "special tokens: `pad`, `bos`, `eos`, `unk`" };

/** `specials: tokens(bos: "<|endoftext|>", ...)`: a role -> a token of the file. */
const specialTokenCalls = {
  tokens: {
    doc: "The file's token for each special role (each optional; one token may play several roles).",
    args: SPECIALS.map((name) => ({ name, type: str, default: "", doc: `the token that is \`${name}\` ("": none)` })),
  },
};

/** A Hugging Face tokenizer_config.json / special_tokens_map.json entry: the token, or `{ content }`. */
function tokenOf(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  return undefined;
}

/**
 * The special roles a model folder gives its tokenizer: each of `pad_token`, `bos_token`,
 * `eos_token`, `unk_token` from tokenizer_config.json, else special_tokens_map.json. GPT-2's
 * `<|endoftext|>` is its bos, eos and unk; it has no pad (batches are then padded with id 0,
 * which the loss mask hides, as for any `hf` tokenizer without a pad).
 */
export function folderSpecials(folder: PretrainedFolder): TypedCall {
  const files = ["tokenizer_config.json", "special_tokens_map.json"].map((f) => folder.json(f));
  const args: Record<string, Typed> = {};
  for (const role of SPECIALS) {
    let token = "";
    for (const f of files) {
      const t = f && typeof f === "object" ? tokenOf((f as Record<string, unknown>)[`${role}_token`]) : undefined;
      if (t !== undefined) {
        token = t;
        break;
      }
    }
    args[role] = token;
  }
  return { call: "tokens", args };
}

/** A model folder's tokenizer: its tokenizer.json, the specials from its config files. */
export const hfTokenizerFolder: PretrainedKind = {
  what: "a Hugging Face tokenizer folder",
  requires: ["tokenizer.json"],
  exclusive: ["file"],
  soft: ["specials"],
  missingHelp: "a model whose `pretrained:` decoder has no `tokenizer` section takes the folder's tokenizer.json: write a `tokenizer` section to use another",
  origin: (key) => (key === "specials" ? "tokenizer_config.json / special_tokens_map.json" : undefined),
  read: (folder) => ({ settings: { file: folder.file("tokenizer.json"), specials: folderSpecials(folder) }, problems: [] }),
};

export const tokenizerKinds: Record<string, { doc: string; settings: Schema }> = {
  chars: {
    doc: "One token per character. Ids: the special tokens first, in the order listed, then the alphabet's characters in order.",
    settings: {
      alphabet: { type: str, default: "", defaultDoc: "from `corpus`", doc: "the characters, in id order; give this or `corpus`" },
      corpus: { type: str, default: "", defaultDoc: "none", doc: "a UTF-8 text file whose distinct characters (sorted by code point) form the alphabet; relative to the spec" },
      specials: specialsList,
    },
  },
  hf: {
    doc: "A Hugging Face tokenizer.json of a byte-level BPE (GPT-2's kind), run by @huggingface/tokenizers: the same ids as Python's `tokenizers`. The size is the file's highest id + 1.",
    settings: {
      file: { type: str, doc: "the tokenizer.json, relative to the spec (or the `pretrained` folder's)" },
      pretrained: pretrainedSetting(hfTokenizerFolder),
      specials: {
        type: { t: "call", callees: specialTokenCalls },
        default: { call: "tokens", args: Object.fromEntries(SPECIALS.map((s) => [s, ""])) },
        defaultDoc: "none",
        doc: 'the file\'s tokens for the special roles: `tokens(bos: "<|endoftext|>", eos: "<|endoftext|>")`',
      },
    },
  },
  bpe: {
    doc: "A byte-level BPE trained by `vlmc train` on the training side of `train.data` before the first step (deterministic: the same data gives the same merges), saved in the run as a Hugging Face tokenizer.json. Ids: the special tokens (`<|pad|>`, ...) in the order listed, the 256 bytes, then the merges.",
    settings: {
      vocab: { type: int(BYTE_TOKENS + 1, LIMITS.dim), doc: "the vocabulary size: the specials, 256 bytes and the merges" },
      specials: specialsList,
      min_frequency: { type: int(1, 1e9), default: 2, doc: "merge a pair only when it occurs at least this often in the training text" },
    },
  },
};

/** The token text of a `bpe` tokenizer's special role. */
export const bpeSpecialToken = (role: string): string => `<|${role}|>`;

/** How a tokenizer's size comes about, for messages: `65 characters + 1 special token = 66`. */
export function tokenizerSizeLabel(t: TokenizerInfo): string {
  const specials = `${t.specials.length} special token${t.specials.length === 1 ? "" : "s"}`;
  if (t.kind === "chars") return `${Array.from(t.alphabet).length} characters + ${specials} = ${t.size}`;
  if (t.kind === "hf") return `${t.size} tokens in \`${t.file}\``;
  return `\`vocab: ${t.size}\``;
}

/** Files larger than this are not read at check time to derive an alphabet. */
const MAX_CORPUS = 64 * 1024 * 1024;

export function readTokenizer(r: SectionReader, specFile: string): TokenizerInfo | null {
  const kind = r.syntax.label?.name;
  if (kind === "hf") return readHf(r, specFile);
  if (kind === "bpe") return readBpe(r);
  return readChars(r, specFile);
}

/** The listed specials, or null (reported) when one is listed twice. */
function distinctSpecials(r: SectionReader): string[] | null {
  const specialsV = r.get("specials") as Typed[] | null;
  if (specialsV === null) return null;
  const specials = specialsV as string[];
  const seen = new Set<string>();
  for (const s of specials) {
    if (seen.has(s)) {
      r.diags.push(diagnostic("E0205", r.span("specials"), `special token \`${s}\` is listed twice`, { help: ["list each special token once"] }));
      return null;
    }
    seen.add(s);
  }
  return specials;
}

function readBpe(r: SectionReader): TokenizerInfo | null {
  const vocab = r.get("vocab") as number | null;
  const minFrequency = r.get("min_frequency") as number | null;
  const specials = distinctSpecials(r);
  if (vocab === null || minFrequency === null || specials === null) return null;
  const least = BYTE_TOKENS + specials.length + 1;
  if (vocab < least) {
    r.diags.push(
      diagnostic("E0402", r.span("vocab"), `\`vocab\` is ${vocab}, too small for a byte-level BPE with ${specials.length} special token${specials.length === 1 ? "" : "s"}`, {
        label: `must be at least ${least}`,
        notes: [`the vocabulary holds the specials, the 256 bytes, then one token per merge: ${specials.length} + 256 + at least 1`],
      }),
    );
    return null;
  }
  return { kind: "bpe", specials, minFrequency, size: vocab };
}

/** The span of `role: "..."` inside a written `tokens(...)`, else the setting's. */
function roleSpan(r: SectionReader, role: string): Span {
  const e = r.syntax.settings.get("specials")?.expr;
  const arg = e?.kind === "Call" ? e.args.find((a) => a.name?.name === role) : undefined;
  return arg ? arg.value.span : r.span("specials");
}

function readHf(r: SectionReader, specFile: string): TokenizerInfo | null {
  const file = r.get("file") as string | null;
  const call = r.get("specials") as TypedCall | null;
  if (file === null || call === null) return null;
  const path = resolve(dirname(specFile), file);
  if (!existsSync(path) || !statSync(path).isFile()) {
    r.diags.push(diagnostic("E0504", r.span("file"), `tokenizer file \`${file}\` not found`, { label: "no such file (paths are relative to the spec file's folder)" }));
    return null;
  }
  const read = readHfTokenizerFile(path);
  if (!read.ok) {
    r.diags.push(
      diagnostic("E0710", r.span("file"), `\`${file}\` cannot be used as a tokenizer: ${read.message}`, {
        label: "not a byte-level BPE tokenizer.json",
        help: ["give the tokenizer.json of a byte-level BPE (GPT-2's kind), as Hugging Face `tokenizers` saves it"],
      }),
    );
    return null;
  }
  const { info } = read;
  const specials: string[] = [];
  const specialTokens: Record<string, { token: string; id: number }> = {};
  let ok = true;
  for (const role of SPECIALS) {
    const token = call.args[role];
    if (typeof token !== "string" || token === "") continue;
    const id = info.ids.get(token);
    if (id === undefined) {
      ok = false;
      r.diags.push(
        diagnostic("E0711", roleSpan(r, role), `\`${file}\` has no token ${JSON.stringify(token)} for \`${role}\``, {
          label: "not in the vocabulary",
          ...(info.added.length ? { notes: [`its added tokens: ${info.added.slice(0, 8).map((t) => JSON.stringify(t)).join(", ")}${info.added.length > 8 ? ", ..." : ""}`] } : {}),
          help: didYouMean(token, info.added),
        }),
      );
      continue;
    }
    specials.push(role);
    specialTokens[role] = { token, id };
  }
  if (!ok) return null;
  return { kind: "hf", file, sha256: info.sha256, specials, specialTokens, size: info.size };
}

function readChars(r: SectionReader, specFile: string): TokenizerInfo | null {
  const alphabetSetting = r.get("alphabet") as string | null;
  const corpus = r.get("corpus") as string | null;
  if (alphabetSetting === null || corpus === null) return null;
  const specials = distinctSpecials(r);
  if (specials === null) return null;
  let alphabet = alphabetSetting;
  if (alphabet && corpus) {
    r.diags.push(
      diagnostic("E0213", r.span("corpus"), "give either `alphabet` or `corpus`, not both", {
        related: [{ span: r.span("alphabet"), label: "the alphabet is written here" }],
      }),
    );
    return null;
  }
  if (corpus) {
    const path = resolve(dirname(specFile), corpus);
    if (!existsSync(path) || !statSync(path).isFile()) {
      r.diags.push(diagnostic("E0504", r.span("corpus"), `corpus file \`${corpus}\` not found`, { label: "no such file (paths are relative to the spec file's folder)" }));
      return null;
    }
    if (statSync(path).size > MAX_CORPUS) {
      r.diags.push(diagnostic("E0402", r.span("corpus"), `corpus file \`${corpus}\` is larger than 64 MiB`, { help: ["write the alphabet in the spec instead"] }));
      return null;
    }
    alphabet = [...new Set(Array.from(readFileSync(path, "utf8")))].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!).join("");
  } else if (!alphabet) {
    r.diags.push(
      diagnostic("E0210", (r.syntax.label ?? r.syntax.name).span, "the `chars` tokenizer needs an `alphabet` or a `corpus`", {
        label: "no characters",
        help: ['write `alphabet: "abc..."` or `corpus: "text.txt"`'],
      }),
    );
    return null;
  }
  const chars = Array.from(alphabet);
  const unique: string[] = [];
  const have = new Set<string>();
  // A literal without escapes maps each character to its place in the source: mark the repeat.
  const written = corpus ? undefined : r.syntax.settings.get("alphabet")?.expr;
  const exact = written?.kind === "String" && written.span.end - written.span.start === alphabet.length + 2 ? written.span : undefined;
  const charSpan = (offset: number, c: string) => (exact ? { ...exact, start: exact.start + 1 + offset, end: exact.start + 1 + offset + c.length } : r.span("alphabet"));
  const first = new Map<string, number>();
  let at = 0; // UTF-16 offset of `c` in the alphabet
  for (const c of chars) {
    if (have.has(c)) {
      r.diags.push(
        diagnostic("W0401", charSpan(at, c), `the alphabet lists ${JSON.stringify(c)} more than once`, {
          label: "repeated character",
          ...(exact ? { related: [{ span: charSpan(first.get(c)!, c), label: "first listed here" }] } : {}),
          help: ["remove the duplicate; it would be ignored"],
        }),
      );
      at += c.length;
      continue;
    }
    first.set(c, at);
    at += c.length;
    have.add(c);
    unique.push(c);
  }
  return { kind: "chars", alphabet: unique.join(""), specials, size: unique.length + specials.length };
}

export const tokenizerKind = (name: string) => tokenizerKinds[name];
export const tokenizerKindNames = () => Object.keys(tokenizerKinds);
export { oneOf };
