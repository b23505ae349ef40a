// The `hf` and `bpe` tokenizers at run time: a Hugging Face tokenizer.json run by
// @huggingface/tokenizers (so ids are the ones Python's `tokenizers` gives), behind the same
// interface as CharTokenizer. The spec's special roles (pad, bos, eos, unk) are tokens of the
// file; bos/eos are added here, never by the file's post-processor, so that `encode` means the
// same for every kind.
//
// Encoding follows Hugging Face: text that spells an added special token (`<|endoftext|>`)
// becomes that token. Decoding is exact: `decode(encode(s).ids) === s` for any well-formed
// string (Hugging Face's default clean-up of spaces before punctuation is off). A lone UTF-16
// surrogate, which UTF-8 cannot hold, is the one thing encode refuses.
import { Tokenizer as HfLibTokenizer } from "@huggingface/tokenizers";
import { SPECIALS } from "../../compiler/resolve/tokenizer.js";
import { TokenizerFormatError, type DecodeOptions, type EncodeOptions, type EncodeResult, type Special, type Tokenizer } from "../tokenizer.js";
import { loneSurrogate } from "./bytelevel.js";
import { checkHfTokenizer } from "./hf-file.js";

export interface HfTokenizerOptions {
  kind: "hf" | "bpe";
  /** The role -> token text (tokens of the file). */
  specials: Partial<Record<Special, string>>;
  /** The vocabulary size the model has (at least the file's highest id + 1). */
  size?: number;
}

export class HfTokenizer implements Tokenizer {
  readonly kind: "hf" | "bpe";
  readonly size: number;
  readonly pad: number | null;
  readonly bos: number | null;
  readonly eos: number | null;
  readonly unk: number | null;
  /** Role -> token text. */
  readonly specialTokens: Readonly<Partial<Record<Special, string>>>;
  private readonly lib: HfLibTokenizer;
  /** Ids `decode` leaves out unless asked to show them: the roles' and the file's special added tokens. */
  private readonly hidden = new Set<number>();

  /** `text`: the tokenizer.json's contents, kept verbatim for the run folder. */
  constructor(
    readonly text: string,
    options: HfTokenizerOptions,
  ) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new TokenizerFormatError(`tokenizer.json does not parse: ${(err as Error).message}`);
    }
    const checked = checkHfTokenizer(doc);
    if (!checked.ok) throw new TokenizerFormatError(`tokenizer.json: ${checked.message}`);
    const { ids } = checked.info;
    this.size = options.size ?? checked.info.size;
    if (this.size < checked.info.size) throw new TokenizerFormatError(`the tokenizer has ids up to ${checked.info.size - 1}, more than a vocabulary of ${this.size} holds`);
    try {
      this.lib = new HfLibTokenizer(doc as object, {});
    } catch (err) {
      throw new TokenizerFormatError(`@huggingface/tokenizers cannot load tokenizer.json: ${(err as Error).message}`);
    }
    this.kind = options.kind;
    const roles: Partial<Record<Special, string>> = {};
    const at = (role: Special): number | null => {
      const token = options.specials[role];
      if (token === undefined) return null;
      const id = ids.get(token);
      if (id === undefined) throw new TokenizerFormatError(`the \`${role}\` token ${JSON.stringify(token)} is not in tokenizer.json`);
      roles[role] = token;
      this.hidden.add(id);
      return id;
    };
    this.pad = at("pad");
    this.bos = at("bos");
    this.eos = at("eos");
    this.unk = at("unk");
    this.specialTokens = roles;
    for (const t of (doc as { added_tokens?: { id: number; special?: boolean }[] }).added_tokens ?? []) if (t.special) this.hidden.add(t.id);
  }

  encode(text: string, options: EncodeOptions = {}): EncodeResult {
    const bos = options.bos ?? this.bos !== null;
    const eos = options.eos ?? this.eos !== null;
    if (bos && this.bos === null) return { ok: false, error: { code: "missing-special", special: "bos", message: "the tokenizer has no `bos` token" } };
    if (eos && this.eos === null) return { ok: false, error: { code: "missing-special", special: "eos", message: "the tokenizer has no `eos` token" } };
    const offset = loneSurrogate(text);
    if (offset >= 0) {
      const char = text[offset]!;
      const index = Array.from(text.slice(0, offset)).length;
      const cp = char.charCodeAt(0).toString(16).toUpperCase();
      return { ok: false, error: { code: "unknown-char", char, index, offset, message: `a lone surrogate U+${cp} at index ${index} cannot be encoded as UTF-8` } };
    }
    const ids = this.lib.encode(text, { add_special_tokens: false }).ids;
    const out = new Int32Array(ids.length + (bos ? 1 : 0) + (eos ? 1 : 0));
    if (bos) out[0] = this.bos!;
    out.set(ids, bos ? 1 : 0);
    if (eos) out[out.length - 1] = this.eos!;
    return { ok: true, ids: out };
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const show = options.specials === "show";
    let out = "";
    let run: number[] = [];
    const flush = () => {
      if (run.length) out += this.lib.decode(run, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
      run = [];
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (this.token(id) === null) {
        if (show) {
          flush();
          out += `<?${id}>`;
        }
        continue;
      }
      if (!show && this.hidden.has(id)) continue;
      run.push(id);
    }
    flush();
    return out;
  }

  token(id: number): string | null {
    if (!Number.isInteger(id) || id < 0 || id >= this.size) return null;
    return this.lib.id_to_token(id) ?? null;
  }

  /**
   * tokenizer.json (the file, byte for byte) and a tokenizer_config.json naming the roles'
   * tokens, as Hugging Face keeps them: `AutoTokenizer.from_pretrained(run_dir)` in Python
   * loads the pair, and so does loadRunTokenizer.
   */
  files(): Record<string, string> {
    const config: Record<string, unknown> = { tokenizer_class: "PreTrainedTokenizerFast", clean_up_tokenization_spaces: false };
    for (const role of SPECIALS) if (this.specialTokens[role] !== undefined) config[`${role}_token`] = this.specialTokens[role];
    return { "tokenizer.json": this.text, "tokenizer_config.json": `${JSON.stringify(config, null, 2)}\n` };
  }
}

/** The roles of a Hugging Face tokenizer_config.json (`bos_token` as a string or `{ "content": ... }`). */
export function rolesOfConfig(config: unknown): Partial<Record<Special, string>> {
  const out: Partial<Record<Special, string>> = {};
  if (typeof config !== "object" || config === null) return out;
  for (const role of SPECIALS) {
    const v = (config as Record<string, unknown>)[`${role}_token`];
    const token = typeof v === "string" ? v : typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string" ? (v as { content: string }).content : undefined;
    if (token !== undefined) out[role] = token;
  }
  return out;
}
