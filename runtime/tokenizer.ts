// The tokenizer at run time: `Tokenizer`, the one interface training, evaluation and generation
// use, and `CharTokenizer`, the `chars` kind: one id per character (code point) of the
// alphabet, after the special tokens. Ids: the specials first, in the order listed, then the
// alphabet's characters in order (compiler/resolve/tokenizer.ts). The `hf` and `bpe` kinds
// (Hugging Face tokenizer.json files, loaded or trained) are in tokenizers/; building any kind
// from the IR, and saving and loading it in a run folder, is tokenizers/load.ts. No tfjs here:
// ids are Int32Arrays.
//
// User text never makes this throw: `encode` returns a structured error naming the first
// character outside the vocabulary (unless the vocabulary has `unk`, which then stands in for it).
import type { IrCharsTokenizer, IrTokenizer } from "../compiler/ir/types.js";
import { SPECIALS } from "../compiler/resolve/tokenizer.js";

export type Special = (typeof SPECIALS)[number];

export interface EncodeOptions {
  /** Prepend `bos`. Default: when the vocabulary has `bos`. `true` without `bos` is an error. */
  bos?: boolean;
  /** Append `eos`. Default: when the vocabulary has `eos`. `true` without `eos` is an error. */
  eos?: boolean;
}

export type EncodeError =
  | {
      code: "unknown-char";
      /** The first character (code point) not in the vocabulary. */
      char: string;
      /** Its index in code points. */
      index: number;
      /** Its index in UTF-16 units (JavaScript string offset). */
      offset: number;
      message: string;
    }
  | { code: "missing-special"; special: "bos" | "eos"; message: string };

export type EncodeResult = { ok: true; ids: Int32Array } | { ok: false; error: EncodeError };

export interface DecodeOptions {
  /** `drop` (default): special tokens are left out; `show`: written `<pad>`, `<bos>`, ... */
  specials?: "drop" | "show";
}

/** What every tokenizer kind offers (CharTokenizer, tokenizers/hf.ts's HfTokenizer). */
export interface Tokenizer {
  readonly kind: "chars" | "hf" | "bpe";
  /** The vocabulary: ids are 0 .. size - 1 (the decoder's `vocab`). */
  readonly size: number;
  readonly pad: number | null;
  readonly bos: number | null;
  readonly eos: number | null;
  readonly unk: number | null;
  /** Text to ids, with bos/eos as asked; a structured error, never an exception, for text it cannot encode. */
  encode(text: string, options?: EncodeOptions): EncodeResult;
  /** Ids to text; ids outside the vocabulary are dropped (or shown as `<?id>`). */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** The token an id stands for, or null. */
  token(id: number): string | null;
  /** Its files in a run folder: file name -> contents (always `tokenizer.json`). */
  files(): Record<string, string>;
}

/** The saved form: fixed key order, so `JSON.stringify` of it is byte-stable. */
export interface TokenizerJSON {
  kind: "chars";
  alphabet: string;
  specials: Special[];
  size: number;
}

/** A tokenizer document that could not be read back. */
export class TokenizerFormatError extends Error {
  override name = "TokenizerFormatError";
}

/** The alphabet of a corpus: its distinct characters sorted by code point (as the compiler derives it). */
export function alphabetOf(texts: Iterable<string>): string {
  const seen = new Set<string>();
  for (const t of texts) for (const c of t) seen.add(c);
  return [...seen].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!).join("");
}

export class CharTokenizer implements Tokenizer {
  readonly kind = "chars" as const;
  readonly alphabet: string;
  readonly specials: readonly Special[];
  readonly size: number;
  readonly pad: number | null;
  readonly bos: number | null;
  readonly eos: number | null;
  readonly unk: number | null;
  private readonly ids = new Map<string, number>();
  private readonly tokens: string[];

  constructor(t: Pick<IrCharsTokenizer, "alphabet" | "specials">) {
    const specials: Special[] = [];
    for (const s of t.specials) {
      if (!(SPECIALS as readonly string[]).includes(s)) throw new TokenizerFormatError(`unknown special token \`${s}\` (expected one of ${SPECIALS.join(", ")})`);
      if (specials.includes(s as Special)) throw new TokenizerFormatError(`special token \`${s}\` is listed twice`);
      specials.push(s as Special);
    }
    const chars = Array.from(t.alphabet);
    this.tokens = [...specials.map((s) => `<${s}>`), ...chars];
    chars.forEach((c, i) => {
      if (this.ids.has(c)) throw new TokenizerFormatError(`the alphabet lists ${JSON.stringify(c)} more than once`);
      this.ids.set(c, specials.length + i);
    });
    this.alphabet = t.alphabet;
    this.specials = specials;
    this.size = specials.length + chars.length;
    const at = (s: Special) => (specials.includes(s) ? specials.indexOf(s) : null);
    this.pad = at("pad");
    this.bos = at("bos");
    this.eos = at("eos");
    this.unk = at("unk");
  }

  /** From the IR's tokenizer section (its `size` is checked against the alphabet and specials). */
  static fromIr(t: IrTokenizer): CharTokenizer {
    if (t.kind !== "chars") throw new TokenizerFormatError(`a \`${t.kind}\` tokenizer is not a \`chars\` one (tokenizers/load.ts builds every kind)`);
    const tok = new CharTokenizer(t);
    if (t.size !== tok.size) throw new TokenizerFormatError(`tokenizer size ${t.size} does not match its ${tok.specials.length} specials and ${tok.size - tok.specials.length} characters`);
    return tok;
  }

  /** Text to ids, code point by code point. */
  encode(text: string, options: EncodeOptions = {}): EncodeResult {
    const bos = options.bos ?? this.bos !== null;
    const eos = options.eos ?? this.eos !== null;
    if (bos && this.bos === null) return { ok: false, error: { code: "missing-special", special: "bos", message: "the tokenizer has no `bos` token" } };
    if (eos && this.eos === null) return { ok: false, error: { code: "missing-special", special: "eos", message: "the tokenizer has no `eos` token" } };
    const out: number[] = [];
    if (bos) out.push(this.bos!);
    let index = 0;
    let offset = 0;
    for (const c of text) {
      const id = this.ids.get(c) ?? this.unk;
      if (id === null) {
        const cp = c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
        return {
          ok: false,
          error: { code: "unknown-char", char: c, index, offset, message: `character ${JSON.stringify(c)} (U+${cp}) at index ${index} is not in the tokenizer's alphabet` },
        };
      }
      out.push(id);
      index++;
      offset += c.length;
    }
    if (eos) out.push(this.eos!);
    return { ok: true, ids: Int32Array.from(out) };
  }

  /** Ids to text. Ids outside the vocabulary are dropped, or shown as `<?id>`. */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const show = options.specials === "show";
    const n = this.specials.length;
    let s = "";
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (Number.isInteger(id) && id >= n && id < this.size) s += this.tokens[id];
      else if (show) s += Number.isInteger(id) && id >= 0 && id < n ? this.tokens[id] : `<?${id}>`;
    }
    return s;
  }

  /** The token an id stands for (`<pad>` for a special), or null. */
  token(id: number): string | null {
    return Number.isInteger(id) && id >= 0 && id < this.size ? this.tokens[id]! : null;
  }

  toJSON(): TokenizerJSON {
    return { kind: "chars", alphabet: this.alphabet, specials: [...this.specials], size: this.size };
  }

  /** The run folder's tokenizer.json: `toJSON()`, indented, as runs have always had it. */
  files(): Record<string, string> {
    return { "tokenizer.json": `${JSON.stringify(this.toJSON(), null, 2)}\n` };
  }

  /** Reads back `toJSON()` (an object or its JSON text); throws TokenizerFormatError on a bad document. */
  static fromJSON(doc: unknown): CharTokenizer {
    let v = doc;
    if (typeof v === "string") {
      try {
        v = JSON.parse(v);
      } catch (e) {
        throw new TokenizerFormatError(`tokenizer JSON does not parse: ${(e as Error).message}`);
      }
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new TokenizerFormatError("tokenizer JSON must be an object");
    const o = v as Record<string, unknown>;
    if (o.kind !== "chars") throw new TokenizerFormatError(`unknown tokenizer kind ${JSON.stringify(o.kind)}`);
    if (typeof o.alphabet !== "string") throw new TokenizerFormatError("tokenizer `alphabet` must be a string");
    if (!Array.isArray(o.specials) || !o.specials.every((s) => typeof s === "string")) throw new TokenizerFormatError("tokenizer `specials` must be a list of strings");
    if (typeof o.size !== "number") throw new TokenizerFormatError("tokenizer `size` must be a number");
    return CharTokenizer.fromIr({ kind: "chars", alphabet: o.alphabet, specials: o.specials as string[], size: o.size });
  }
}
