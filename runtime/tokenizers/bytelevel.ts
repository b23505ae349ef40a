// GPT-2's byte-level alphabet and pre-tokenizer, as Hugging Face's `ByteLevel` pre-tokenizer
// defines them: text is split into words by GPT-2's regex, each word's UTF-8 bytes become
// printable characters (a byte that is printable Latin-1 stands for itself, the others are
// moved up past U+0100), and BPE runs on those characters. The trainer (bpe-train.ts) and the
// check-time reader of tokenizer.json files (hf-file.ts) need them; encoding itself is left to
// @huggingface/tokenizers, so that ids are the library's (and hence Python's).

/** GPT-2's `bytes_to_unicode`: byte value -> the character that stands for it. */
export const BYTE_CHARS: readonly string[] = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let next = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(printable(b) ? b : 256 + next++));
  return out;
})();

/** The 256 byte characters in code-point order: the order Hugging Face's trainer gives them ids in (GPT-2's ids 0..255). */
export const BYTE_ALPHABET: readonly string[] = [...BYTE_CHARS].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);

/** GPT-2's pre-tokenization regex (contractions, letters, numbers, other symbols, spaces). */
export const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

const utf8 = new TextEncoder();

/** A word as byte characters (`" hello"` -> `"Ġhello"`). */
export function byteLevel(word: string): string {
  let s = "";
  for (const b of utf8.encode(word)) s += BYTE_CHARS[b];
  return s;
}

/** Text split into GPT-2 words (before the byte mapping). */
export function splitWords(text: string): string[] {
  return text.match(GPT2_SPLIT) ?? [];
}

/** The UTF-16 offset of the first lone surrogate (which UTF-8 cannot hold), or -1. */
export function loneSurrogate(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
      return i;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return i;
  }
  return -1;
}
