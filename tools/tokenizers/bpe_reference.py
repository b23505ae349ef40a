"""Reference byte-level BPE, written independently of runtime/tokenizers/ for its tests.

Writes two committed fixtures under test/fixtures/tokenizers/:

  reference.json   the merges a naive BPE trainer makes on corpus.txt (every pair recounted at
                   every step; ties to the pair of smaller ids, as Hugging Face's BpeTrainer
                   breaks them), and the ids GPT-2's encoding algorithm gives a few strings with
                   those merges. test/tokenizer-bpe.test.ts checks runtime/tokenizers/bpe-train.ts
                   and @huggingface/tokenizers against them.
  gpt2-ids.json    the ids of the same algorithm over the real GPT-2 vocab.json + merges.txt
                   (from /work/shared/data/hf-gpt2-tiny, when it is there), which
                   test/tokenizer-hf.test.ts checks `tokenizer hf` against.

The encoder is OpenAI's GPT-2 `encoder.py` (bytes_to_unicode, the regex, rank-ordered merges),
the one Hugging Face's GPT-2 tokenizer reproduces. Needs the `regex` module (Debian:
python3-regex) for \\p{L} and \\p{N}.

    python3 tools/tokenizers/bpe_reference.py [--gpt2 /work/shared/data/hf-gpt2-tiny]
"""
import argparse
import json
import os
import regex

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "test", "fixtures", "tokenizers")
PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

# What the fixture trains: kept in step with test/tokenizer-bpe.test.ts.
SPECIALS = ["<|pad|>", "<|bos|>", "<|eos|>"]
VOCAB = 420
MIN_FREQUENCY = 2
STRINGS = [
    "a small red circle on the left",
    "The quick brown fox doesn't jump; it's 2024!",
    "  two  spaces, tabs\tand\nnew lines\n\n",
    "café naïve façade — “quotes” ½ 😀 日本語",
    "<|eos|> is a special token",
]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE = bytes_to_unicode()


def words_of(text):
    return ["".join(BYTE[b] for b in w.encode("utf-8")) for w in PAT.findall(text)]


def train(texts, vocab_size, specials, min_frequency):
    counts = {}
    for t in texts:
        for w in words_of(t):
            counts[w] = counts.get(w, 0) + 1
    tokens = list(specials) + sorted(BYTE.values())
    ids = {t: i for i, t in enumerate(tokens)}
    words = [([ids[c] for c in w], n) for w, n in counts.items()]
    merges = []
    while len(tokens) < vocab_size:
        pairs = {}
        for w, n in words:
            for p in zip(w, w[1:]):
                pairs[p] = pairs.get(p, 0) + n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < max(1, min_frequency):
            break
        a, b = best
        text = tokens[a] + tokens[b]
        if text not in ids:
            ids[text] = len(tokens)
            tokens.append(text)
        merges.append([tokens[a], tokens[b]])
        new = ids[text]
        out = []
        for w, n in words:
            m, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    m.append(new)
                    i += 2
                else:
                    m.append(w[i])
                    i += 1
            out.append((m, n))
        words = out
    return tokens, merges


def encode(text, vocab, ranks, specials):
    """GPT-2's encoder.py, with special tokens split out first (as Hugging Face's added tokens are)."""
    out = []
    parts = regex.split("(" + "|".join(regex.escape(s) for s in specials) + ")", text) if specials else [text]
    for part in parts:
        if part in specials:
            out.append(vocab[part])
            continue
        for word in words_of(part):
            w = list(word)
            while len(w) > 1:
                pairs = [(ranks.get((x, y), float("inf")), i) for i, (x, y) in enumerate(zip(w, w[1:]))]
                rank, _ = min(pairs)
                if rank == float("inf"):
                    break
                x, y = [p for p in zip(w, w[1:]) if ranks.get(p) == rank][0]
                m, i = [], 0
                while i < len(w):
                    if i + 1 < len(w) and w[i] == x and w[i + 1] == y:
                        m.append(x + y)
                        i += 2
                    else:
                        m.append(w[i])
                        i += 1
                w = m
            out.extend(vocab[t] for t in w)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpt2", default="/work/shared/data/hf-gpt2-tiny")
    args = ap.parse_args()
    with open(os.path.join(FIXTURES, "corpus.txt"), encoding="utf-8") as f:
        texts = f.read().split("\n")
    tokens, merges = train(texts, VOCAB, SPECIALS, MIN_FREQUENCY)
    vocab = {t: i for i, t in enumerate(tokens)}
    ranks = {tuple(m): i for i, m in enumerate(merges)}
    doc = {
        "vocab": VOCAB,
        "specials": SPECIALS,
        "min_frequency": MIN_FREQUENCY,
        "merges": merges,
        "encodings": [{"text": s, "ids": encode(s, vocab, ranks, SPECIALS)} for s in STRINGS],
    }
    with open(os.path.join(FIXTURES, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"reference.json: {len(merges)} merges")
    if os.path.isdir(args.gpt2):
        with open(os.path.join(args.gpt2, "vocab.json"), encoding="utf-8") as f:
            gvocab = json.load(f)
        with open(os.path.join(args.gpt2, "merges.txt"), encoding="utf-8") as f:
            lines = [l for l in f.read().split("\n")[1:] if l]
        granks = {tuple(l.split(" ")): i for i, l in enumerate(lines)}
        strings = ["Hello", " world", "Hello world"] + STRINGS
        out = [{"text": s, "ids": encode(s, gvocab, granks, ["<|endoftext|>"])} for s in strings + ["<|endoftext|>Hello<|endoftext|>"]]
        with open(os.path.join(FIXTURES, "gpt2-ids.json"), "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print(f"gpt2-ids.json: {len(out)} strings")


if __name__ == "__main__":
    main()
