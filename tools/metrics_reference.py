#!/usr/bin/env python3
# Writes test/fixtures/metrics/coco-reference.json: BLEU-1..4 and CIDEr-D computed by the COCO
# caption evaluation itself (pycocoevalcap: bleu/bleu_scorer.py and cider/cider_scorer.py, the
# code behind every published COCO captioning score) on seeded corpora of made-up captions, so
# that test/metrics.test.ts compares runtime/eval/bleu.ts and cider.ts with the reference
# implementation on cases too large to work out by hand (several references per image, repeated
# n-grams, captions of different lengths, an empty and a one-word candidate).
#
# pycocoevalcap is not a dependency of vlmc and the tests never run Python: the fixture is
# committed. To regenerate it, with a pycocoevalcap checkout (github.com/salaniz/pycocoevalcap,
# pure Python + numpy) or `pip install pycocoevalcap`:
#
#   /usr/bin/python3 tools/metrics_reference.py [PATH_TO_PYCOCOEVALCAP]
#
# The captions are already words (lowercase, no punctuation), as runtime/eval/words.ts and the
# COCO tokenizer would leave them, so both sides split them on spaces alone.
import importlib.util
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "test", "fixtures", "metrics", "coco-reference.json")


def load(root, rel, name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(root, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_root():
    if len(sys.argv) > 1:
        return sys.argv[1]
    try:
        import pycocoevalcap  # noqa: F401
    except ImportError:
        sys.exit("usage: metrics_reference.py PATH_TO_PYCOCOEVALCAP (a checkout of github.com/salaniz/pycocoevalcap, or pip install pycocoevalcap)")
    return os.path.dirname(pycocoevalcap.__file__)


WORDS = "a the small large red blue green yellow circle square triangle on in left right center and of".split()


def caption(rng, lo, hi):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def edited(rng, text):
    """A copy of `text` with one word replaced, dropped or repeated: a plausible model output."""
    words = text.split()
    i = rng.randrange(len(words))
    what = rng.choice(["replace", "drop", "repeat"])
    if what == "replace":
        words[i] = rng.choice(WORDS)
    elif what == "drop" and len(words) > 1:
        del words[i]
    else:
        words.insert(i, words[i])
    return " ".join(words)


def corpus(seed, images, refs_lo, refs_hi):
    rng = random.Random(seed)
    items = []
    for _ in range(images):
        refs = [caption(rng, 4, 11) for _ in range(rng.randint(refs_lo, refs_hi))]
        r = rng.random()
        cand = refs[0] if r < 0.2 else edited(rng, rng.choice(refs)) if r < 0.7 else caption(rng, 3, 12)
        items.append({"candidate": cand, "references": refs})
    return items


def main():
    root = reference_root()
    bleu_scorer = load(root, "bleu/bleu_scorer.py", "bleu_scorer")
    cider_scorer = load(root, "cider/cider_scorer.py", "cider_scorer")
    cases = [
        {"name": "one reference per image, 6 images", "items": corpus(1, 6, 1, 1)},
        {"name": "1 to 3 references per image, 10 images", "items": corpus(2, 10, 1, 3)},
        {"name": "5 references per image, 25 images (COCO-like)", "items": corpus(3, 25, 5, 5)},
        {
            "name": "an empty, a one-word and a repetitive candidate",
            "items": corpus(4, 5, 2, 3)
            + [
                {"candidate": "", "references": ["a red circle on the left", "a small red circle"]},
                {"candidate": "circle", "references": ["a blue circle in the center"]},
                {"candidate": "a a a a red red red", "references": ["a red square and a red circle", "a red triangle"]},
            ],
        },
    ]
    out = []
    for case in cases:
        items = case["items"]
        bleu = bleu_scorer.BleuScorer(n=4)
        cider = cider_scorer.CiderScorer(n=4, sigma=6.0)
        for it in items:
            bleu += (it["candidate"], it["references"])
            cider += (it["candidate"], it["references"])
        bleus, _ = bleu.compute_score(option="closest", verbose=0)
        score, scores = cider.compute_score()
        out.append({"name": case["name"], "items": items, "bleu": [float(b) for b in bleus], "cider_d": float(score), "cider_d_per_image": [float(s) for s in scores]})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"source": "pycocoevalcap (github.com/salaniz/pycocoevalcap) bleu_scorer.BleuScorer(option='closest') and cider_scorer.CiderScorer(n=4, sigma=6.0), run by tools/metrics_reference.py", "cases": out}, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT)} ({len(out)} cases)")


if __name__ == "__main__":
    main()
