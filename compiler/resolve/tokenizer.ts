// The tokenizer section. `chars`: one token per character of an alphabet (written in the
// spec, or every distinct character of a corpus file), plus special tokens. Its size is
// derived (`tokenizer.size`), never restated.
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { diagnostic } from "../diagnostics/diagnostic.js";
import type { Schema, SectionReader } from "./section.js";
import { oneOf, str, type Typed } from "./types.js";

export const SPECIALS = ["pad", "bos", "eos", "unk"] as const;

export interface TokenizerInfo {
  kind: "chars";
  /** Characters in id order (after the specials). */
  alphabet: string;
  specials: string[];
  size: number;
}

export const tokenizerKinds: Record<string, { doc: string; settings: Schema }> = {
  chars: {
    doc: "One token per character. Ids: the special tokens first, in the order listed, then the alphabet's characters in order.",
    settings: {
      alphabet: { type: str, default: "", defaultDoc: "from `corpus`", doc: "the characters, in id order; give this or `corpus`" },
      corpus: { type: str, default: "", defaultDoc: "none", doc: "a UTF-8 text file whose distinct characters (sorted by code point) form the alphabet; relative to the spec" },
      specials: { type: { t: "list", of: oneOf(...SPECIALS) }, default: ["pad", "bos", "eos"], doc: "special tokens: `pad`, `bos`, `eos`, `unk`" },
    },
  },
};

/** Files larger than this are not read at check time to derive an alphabet. */
const MAX_CORPUS = 64 * 1024 * 1024;

export function readTokenizer(r: SectionReader, specFile: string): TokenizerInfo | null {
  const alphabetSetting = r.get("alphabet") as string | null;
  const corpus = r.get("corpus") as string | null;
  const specialsV = r.get("specials") as Typed[] | null;
  if (alphabetSetting === null || corpus === null || specialsV === null) return null;
  const specials = specialsV as string[];
  const seen = new Set<string>();
  for (const s of specials) {
    if (seen.has(s)) {
      r.diags.push(diagnostic("E0205", r.span("specials"), `special token \`${s}\` is listed twice`, { help: ["list each special token once"] }));
      return null;
    }
    seen.add(s);
  }
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
