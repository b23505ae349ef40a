// Training a byte-level BPE (the `bpe` tokenizer kind) and writing it as a Hugging Face
// tokenizer.json, so that @huggingface/tokenizers (and Python's `tokenizers`) load it back.
//
// The algorithm is Hugging Face's BpeTrainer with GPT-2's ByteLevel pre-tokenizer: texts are
// split into words (bytelevel.ts), equal words counted once with their frequency, every word
// starts as its byte characters, then the most frequent adjacent pair is merged, again and
// again, until the vocabulary has `vocab` tokens or no pair occurs `minFrequency` times. Ties go
// to the pair of smaller ids (first id, then second), as Hugging Face's trainer breaks them, so
// the same texts give the same merges whatever order they come in. Ids: the special tokens
// first (in the order given), then the 256 byte characters in code-point order, then each
// merge's token. A merge whose token already exists (reached by another pair) adds no id.
//
// Pair counts are kept up to date incrementally: a merge touches only the words holding its
// pair (an index from pair to words), and a heap with lazy deletion finds the next best pair.
// tools/tokenizers/bpe_reference.py is a naive Python rewrite (recounting every pair at every
// step) whose merges test/tokenizer-bpe.test.ts compares against.
import { BYTE_ALPHABET, byteLevel, splitWords } from "./bytelevel.js";

export interface BpeTrainOptions {
  /** The vocabulary size to reach: specials + 256 bytes + merges. */
  vocab: number;
  /** Special tokens' text (`<|pad|>`, ...): ids 0.. in this order. */
  specials: readonly string[];
  /** A pair is merged only when it occurs at least this often (at least 1). */
  minFrequency?: number;
  /** Called every so many merges, and at the end. */
  onProgress?: (merges: number, target: number) => void;
}

export interface TrainedBpe {
  /** Token text by id: specials, bytes, merged tokens. */
  tokens: string[];
  /** The merges in order, as pairs of token texts. */
  merges: [string, string][];
  specials: string[];
  /** Distinct words and word occurrences the counts came from. */
  words: { distinct: number; total: number };
  /** The vocabulary stopped short of `vocab`: no pair was frequent enough. */
  exhausted: boolean;
}

const PAIR = 0x400000; // ids < 2^22 (LIMITS.dim): a pair (a, b) is the number a * PAIR + b
const pairKey = (a: number, b: number) => a * PAIR + b;

/** A max-heap of [count, a, b] by count, then smaller a, then smaller b; stale entries are skipped on pop. */
class PairHeap {
  private readonly items: number[][] = [];
  get size(): number {
    return this.items.length;
  }
  private above(x: number[], y: number[]): boolean {
    return x[0]! !== y[0]! ? x[0]! > y[0]! : x[1]! !== y[1]! ? x[1]! < y[1]! : x[2]! < y[2]!;
  }
  push(item: number[]): void {
    const h = this.items;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  pop(): number[] | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.above(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.above(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

/** Word -> occurrences, over GPT-2 words of every text. */
export function countWords(texts: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const t of texts) for (const w of splitWords(t)) counts.set(w, (counts.get(w) ?? 0) + 1);
  return counts;
}

export function trainBpe(texts: Iterable<string>, options: BpeTrainOptions): TrainedBpe {
  const specials = [...options.specials];
  const minFrequency = Math.max(1, options.minFrequency ?? 1);
  if (new Set(specials).size !== specials.length) throw new Error("special tokens must be distinct");
  if (options.vocab < specials.length + BYTE_ALPHABET.length) throw new Error(`a byte-level BPE needs a vocabulary of at least ${specials.length + BYTE_ALPHABET.length} (the specials and 256 bytes)`);
  if (options.vocab > PAIR) throw new Error(`a vocabulary of ${options.vocab} is more than ${PAIR}`);
  const tokens = [...specials, ...BYTE_ALPHABET];
  const ids = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (!ids.has(t)) ids.set(t, i);
  });

  // Distinct words, sorted so that nothing depends on the order texts came in.
  const counted = countWords(texts);
  const distinct = [...counted.keys()].sort();
  const words: number[][] = [];
  const freq: number[] = [];
  let total = 0;
  for (const w of distinct) {
    words.push(Array.from(byteLevel(w), (c) => ids.get(c)!));
    freq.push(counted.get(w)!);
    total += counted.get(w)!;
  }

  const counts = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const heap = new PairHeap();
  const addPairs = (wi: number, sign: 1 | -1, changed: Set<number>) => {
    const w = words[wi]!;
    const f = freq[wi]! * sign;
    for (let i = 0; i + 1 < w.length; i++) {
      const k = pairKey(w[i]!, w[i + 1]!);
      counts.set(k, (counts.get(k) ?? 0) + f);
      changed.add(k);
      if (sign > 0) {
        let s = where.get(k);
        if (!s) where.set(k, (s = new Set()));
        s.add(wi);
      }
    }
  };
  const pushChanged = (changed: Set<number>) => {
    for (const k of changed) {
      const c = counts.get(k)!;
      if (c > 0) heap.push([c, Math.floor(k / PAIR), k % PAIR]);
      else counts.delete(k);
    }
  };
  const initial = new Set<number>();
  for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1, initial);
  pushChanged(initial);

  const merges: [string, string][] = [];
  const target = options.vocab;
  const every = Math.max(1, Math.floor((target - tokens.length) / 100));
  let exhausted = false;
  while (tokens.length < target) {
    const top = heap.pop();
    if (!top) {
      exhausted = true;
      break;
    }
    const [c, a, b] = top as [number, number, number];
    const key = pairKey(a, b);
    if (counts.get(key) !== c) continue; // stale: the pair's current count has its own entry
    if (c < minFrequency) {
      exhausted = true;
      break;
    }
    const text = tokens[a]! + tokens[b]!;
    let id = ids.get(text);
    if (id === undefined) {
      id = tokens.length;
      tokens.push(text);
      ids.set(text, id);
    }
    merges.push([tokens[a]!, tokens[b]!]);
    const changed = new Set<number>();
    for (const wi of [...(where.get(key) ?? [])].sort((x, y) => x - y)) {
      const w = words[wi]!;
      let has = false;
      for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) has = true;
      if (!has) continue;
      addPairs(wi, -1, changed);
      const merged: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          merged.push(id);
          i++;
        } else merged.push(w[i]!);
      }
      words[wi] = merged;
      addPairs(wi, 1, changed);
    }
    where.delete(key);
    pushChanged(changed);
    if (merges.length % every === 0) options.onProgress?.(tokens.length - specials.length - BYTE_ALPHABET.length, target - specials.length - BYTE_ALPHABET.length);
  }
  options.onProgress?.(tokens.length - specials.length - BYTE_ALPHABET.length, target - specials.length - BYTE_ALPHABET.length);
  return { tokens, merges, specials, words: { distinct: distinct.length, total }, exhausted };
}

/**
 * The trained tokenizer as Hugging Face's tokenizer.json, laid out as Hugging Face writes a
 * byte-level BPE (GPT-2's pre-tokenizer, post-processor and decoder settings; merges as
 * `"a b"` strings, which every version of Python's `tokenizers` reads). Specials are in the
 * vocabulary and listed as added special tokens, so they are never split. Byte-stable.
 */
export function bpeTokenizerJson(t: TrainedBpe): string {
  const byteLevelPart = (addPrefixSpace: boolean, trimOffsets: boolean) => ({ type: "ByteLevel", add_prefix_space: addPrefixSpace, trim_offsets: trimOffsets, use_regex: true });
  const doc = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: t.specials.map((content) => ({ id: t.tokens.indexOf(content), content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: byteLevelPart(false, true),
    post_processor: byteLevelPart(true, false),
    decoder: byteLevelPart(true, true),
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(t.tokens.map((tok, i) => [tok, i])),
      merges: t.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}
