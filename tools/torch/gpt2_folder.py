"""A small Hugging Face GPT-2 folder for CI, and PyTorch goldens of it.

Run by hand (Debian's python3-torch; no transformers, no safetensors package):

    /usr/bin/python3 tools/torch/gpt2_folder.py

The shared checkpoint (../shared/data/hf-gpt2-tiny/) carries GPT-2's real 2 MB tokenizer and
is absent from a user's clone, so the `pretrained:` tests need a folder small enough to commit.
This writes test/fixtures/pretrained/gpt2-mini/ laid out as `save_pretrained` lays out
GPT2LMHeadModel: config.json (model_type gpt2, 2 layers, 16 wide, 2 heads, 64 positions),
model.safetensors (`transformer.`-prefixed names, Conv1D [in, out] weights, fused c_attn, the
head tied to wte so not saved), tokenizer.json (test/fixtures/tokenizers/small.tokenizer.json,
a 408-token byte-level BPE, with its `<|eos|>` renamed GPT-2's `<|endoftext|>`), and
tokenizer_config.json / special_tokens_map.json naming `<|endoftext|>` bos, eos and unk, no pad,
as GPT-2's do. Weights are random (seeded) with non-trivial LayerNorm scales and biases, so a
mapping mistake shows in the logits.

Then test/fixtures/pretrained/golden.safetensors: the GPT2 reference of parity.py loading the
folder by its Hugging Face names (parity.run_hf_gpt2) on the token ids of
test/fixtures/pretrained/case.json.
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import parity  # noqa: E402
import safetensors_np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "test", "fixtures", "pretrained")
FOLDER = os.path.join(OUT, "gpt2-mini")
SMALL = os.path.join(HERE, "..", "..", "test", "fixtures", "tokenizers", "small.tokenizer.json")

V, D, H, L, P = 408, 16, 2, 2, 64
EOT = "<|endoftext|>"


def tokenizer():
    t = json.load(open(SMALL))
    for a in t["added_tokens"]:
        if a["content"] == "<|eos|>":
            a["content"] = EOT
    vocab = t["model"]["vocab"]
    vocab[EOT] = vocab.pop("<|eos|>")
    t["model"]["vocab"] = dict(sorted(vocab.items(), key=lambda kv: kv[1]))
    assert len(vocab) == V and max(vocab.values()) == V - 1
    return t


def weights():
    g = torch.Generator().manual_seed(9)
    r = lambda *shape, std=0.2: (torch.randn(*shape, generator=g) * std).numpy().astype(np.float32)  # noqa: E731
    w = {"wte.weight": r(V, D, std=0.5), "wpe.weight": r(P, D), "ln_f.weight": 1 + r(D), "ln_f.bias": r(D)}
    for i in range(L):
        w.update(
            {
                f"h.{i}.ln_1.weight": 1 + r(D),
                f"h.{i}.ln_1.bias": r(D),
                f"h.{i}.attn.c_attn.weight": r(D, 3 * D),
                f"h.{i}.attn.c_attn.bias": r(3 * D),
                f"h.{i}.attn.c_proj.weight": r(D, D),
                f"h.{i}.attn.c_proj.bias": r(D),
                f"h.{i}.ln_2.weight": 1 + r(D),
                f"h.{i}.ln_2.bias": r(D),
                f"h.{i}.mlp.c_fc.weight": r(D, 4 * D),
                f"h.{i}.mlp.c_fc.bias": r(4 * D),
                f"h.{i}.mlp.c_proj.weight": r(4 * D, D),
                f"h.{i}.mlp.c_proj.bias": r(D),
            }
        )
    return {f"transformer.{k}": v for k, v in w.items()}


def main():
    os.makedirs(FOLDER, exist_ok=True)
    config = {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": 2,
        "embd_pdrop": 0.1,
        "eos_token_id": 2,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": P,
        "n_embd": D,
        "n_head": H,
        "n_inner": None,
        "n_layer": L,
        "n_positions": P,
        "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "torch_dtype": "float32",
        "vocab_size": V,
    }
    specials = {"bos_token": EOT, "eos_token": EOT, "unk_token": EOT}
    files = {
        "config.json": config,
        "tokenizer.json": tokenizer(),
        "special_tokens_map.json": specials,
        "tokenizer_config.json": {"add_prefix_space": False, "model_max_length": P, "tokenizer_class": "GPT2Tokenizer", **specials},
    }
    for name, value in files.items():
        with open(os.path.join(FOLDER, name), "w") as f:
            json.dump(value, f, indent=2, ensure_ascii=False)
            f.write("\n")
    safetensors_np.write(os.path.join(FOLDER, "model.safetensors"), weights(), {"format": "pt"})
    parity.run_hf_gpt2(FOLDER, OUT)


if __name__ == "__main__":
    main()
