"""Golden logits for vlmc's Llama export, from an independent PyTorch LlamaForCausalLM forward.

Run by hand (Debian's python3-torch; no transformers, no safetensors package):

    node dist/tools/gen-llama-export-fixtures.js   # vlmc exports tiny seeded llama runs
    /usr/bin/python3 tools/torch/hf_llama.py       # this script: writes golden.safetensors

For each folder test/fixtures/export/llama-*/ it reads config.json and model.safetensors by
Hugging Face's names and layouts only (nothing of vlmc's), builds the model written below by hand
after transformers' modeling_llama.py (LlamaRMSNorm computed in float32, rotary positions by
rotate_half with inv_freq = theta^(-2i/head_dim) and cos/sin of the halves repeated, repeat_kv for
grouped key/value heads, SiLU-gated MLP, causal softmax attention scaled by head_dim^-0.5, the LM
head tied to embed_tokens when tie_word_embeddings), runs the token rows of case.json, and writes
golden.safetensors: `logits` [B, T, V]. test/export-llama.test.ts loads the same folder into vlmc
(`decoder llama { weights: ... }`) and compares: agreement means the export means what Hugging
Face means, not only that vlmc reads back its own writing.
"""
import glob
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_np  # noqa: E402

torch.set_num_threads(1)
ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "export"))


def rms_norm(x, weight, eps):
    # LlamaRMSNorm: the variance in float32, the weight applied after casting back.
    dtype = x.dtype
    h = x.to(torch.float32)
    variance = h.pow(2).mean(-1, keepdim=True)
    h = h * torch.rsqrt(variance + eps)
    return weight * h.to(dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def rotary(n, head_dim, theta):
    # LlamaRotaryEmbedding (default rope type): inv_freq over even indices, freqs for both halves.
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    t = torch.arange(n, dtype=torch.float32)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def repeat_kv(x, n_rep):
    b, kv, n, hd = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, kv, n_rep, n, hd).reshape(b, kv * n_rep, n, hd)


def forward(cfg, w, ids):
    prefix = "model." if "model.embed_tokens.weight" in w else ""
    t = lambda name: torch.from_numpy(w[prefix + name])  # noqa: E731
    d = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads", heads)
    hd = cfg.get("head_dim") or d // heads
    eps = cfg["rms_norm_eps"]
    b, n = ids.shape
    x = F.embedding(ids, t("embed_tokens.weight"))
    cos, sin = rotary(n, hd, cfg.get("rope_theta", 10000.0))
    mask = torch.full((n, n), float("-inf")).triu(1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"layers.{i}."
        h = rms_norm(x, t(p + "input_layernorm.weight"), eps)
        q = F.linear(h, t(p + "self_attn.q_proj.weight")).view(b, n, heads, hd).transpose(1, 2)
        k = F.linear(h, t(p + "self_attn.k_proj.weight")).view(b, n, kv, hd).transpose(1, 2)
        v = F.linear(h, t(p + "self_attn.v_proj.weight")).view(b, n, kv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = repeat_kv(k, heads // kv)
        v = repeat_kv(v, heads // kv)
        att = torch.matmul(q, k.transpose(2, 3)) * hd**-0.5 + mask
        att = F.softmax(att, dim=-1, dtype=torch.float32).to(q.dtype)
        o = torch.matmul(att, v).transpose(1, 2).reshape(b, n, d)
        x = x + F.linear(o, t(p + "self_attn.o_proj.weight"))
        h = rms_norm(x, t(p + "post_attention_layernorm.weight"), eps)
        m = F.silu(F.linear(h, t(p + "mlp.gate_proj.weight"))) * F.linear(h, t(p + "mlp.up_proj.weight"))
        x = x + F.linear(m, t(p + "mlp.down_proj.weight"))
    x = rms_norm(x, t("norm.weight"), eps)
    head = torch.from_numpy(w["lm_head.weight"]) if "lm_head.weight" in w else t("embed_tokens.weight")
    if cfg.get("tie_word_embeddings", False):
        head = t("embed_tokens.weight")
    return F.linear(x, head)


def main():
    folders = sorted(glob.glob(os.path.join(ROOT, "llama-*")))
    if not folders:
        sys.exit(f"no test/fixtures/export/llama-* folders: run node dist/tools/gen-llama-export-fixtures.js first")
    for folder in folders:
        with open(os.path.join(folder, "config.json")) as f:
            cfg = json.load(f)
        with open(os.path.join(folder, "case.json")) as f:
            case = json.load(f)
        w, _ = safetensors_np.read(os.path.join(folder, "model.safetensors"))
        ids = torch.tensor(case["tokens"], dtype=torch.int64)
        with torch.no_grad():
            logits = forward(cfg, w, ids)
        safetensors_np.write(os.path.join(folder, "golden.safetensors"), {"logits": logits.numpy()}, {"source": "tools/torch/hf_llama.py"})
        print(f"wrote {folder}/golden.safetensors: logits {list(logits.shape)}")


if __name__ == "__main__":
    main()
