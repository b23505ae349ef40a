// How captions become words for BLEU and CIDEr-D (bleu.ts, cider.ts): lowercase, then split on
// anything that is not a letter or a digit, punctuation dropped. This is what the COCO caption
// evaluation does before scoring (its PTB tokenizer lowercases and removes punctuation), so "A
// red circle." and "a red circle" score alike; exact match (exact-match.ts) stays character-exact.
// Apostrophes split words ("man's" -> "man", "s"), where the PTB tokenizer would keep "'s": the
// two agree on captions without clitics, which is every caption vlmc generates today.

const SEPARATOR = /[^\p{L}\p{N}]+/u;

/** The words of a caption for n-gram metrics: lowercase letter/digit runs. */
export function captionWords(text: string): string[] {
  return text.toLowerCase().split(SEPARATOR).filter((w) => w !== "");
}
