"""Golden outputs for vlmc's runtime parity tests, from independent PyTorch models.

Run by hand (Debian's python3-torch; no transformers, no safetensors package):

    node dist/tools/parity-weights.js            # vlmc writes each case's initial weights + inputs
    /usr/bin/python3 tools/torch/parity.py       # this script: torch loads them, writes goldens

For each case in test/fixtures/parity/<case>/ it reads `case.json` (model kind and config),
vlmc's `weights.safetensors` (vlmc parameter names, vlmc layouts: linear weights [in, out]) and
`inputs.safetensors` (images [B, H, W, C], tokens, targets, mask), maps the weights onto a
PyTorch model written here (or in seemore.py) by hand, and writes `golden.safetensors`: the
logits, the loss, the gradients of every parameter named in case.json, and, after 5 Adam steps
on the same batch (dropout off), the loss of each step and those parameters. The weights file is
then deleted (the test recreates the weights from the seed and checks their checksums).

    /usr/bin/python3 tools/torch/parity.py --hf-gpt2 [SRC [OUT]]

writes test/fixtures/hf-gpt2-tiny/golden.safetensors instead: the Hugging Face GPT-2 checkpoint
in ../shared/data/hf-gpt2-tiny/ loaded by its own (Hugging Face) names, run on the tokens of
that folder's case.json (see run_hf_gpt2).
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_np  # noqa: E402
import seemore  # noqa: E402

torch.set_num_threads(1)
ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "parity")


# ---- the seed model: seemore.py, weights mapped from vlmc's names ----
def build_seemore(cfg, w):
    m = seemore.VisionLanguageModel(
        n_embd=cfg["n_embd"], image_embed_dim=cfg["image_dim"], vocab_size=cfg["vocab"], n_layer=cfg["n_layer"],
        img_size=cfg["img"], patch_size=cfg["patch"], num_heads=cfg["heads"], num_blks=cfg["blocks"], emb_dropout=0.0, blk_dropout=0.0,
    )
    for mod in m.modules():
        if isinstance(mod, nn.Dropout):
            mod.p = 0.0
    if cfg["scale"] == "head":  # the standard scale: head width instead of the seed's model width
        for mod in m.modules():
            if isinstance(mod, seemore.Head):
                mod.forward = head_forward_head_scale.__get__(mod)
    p = cfg["patch"]
    D = cfg["image_dim"]
    t = lambda name: torch.tensor(w[name])  # noqa: E731
    enc = m.vision_encoder
    with torch.no_grad():
        enc.patch_embedding.conv.weight.copy_(t("encoder.patch_embed.weight").reshape(p, p, 3, D).permute(3, 2, 0, 1))
        enc.patch_embedding.conv.bias.copy_(t("encoder.patch_embed.bias"))
        enc.cls_token.copy_(t("encoder.patch_embed.cls").reshape(1, 1, D))
        enc.pos_embedding.copy_(t("encoder.pos_embed.weight").unsqueeze(0))
        for i, b in enumerate(enc.blocks):
            load_block(b, w, f"encoder.blocks.{i}", "norm1", "norm2")
        enc.layer_norm.weight.copy_(t("encoder.norm.weight"))
        enc.layer_norm.bias.copy_(t("encoder.norm.bias"))
        net = m.image_projection.net
        net[0].weight.copy_(t("projector.0.weight").T)
        net[0].bias.copy_(t("projector.0.bias"))
        net[2].weight.copy_(t("projector.2.weight").T)
        net[2].bias.copy_(t("projector.2.bias"))
        dec = m.decoder
        dec.token_embedding_table.weight.copy_(t("decoder.embed.weight"))
        dec.position_embedding_table.weight.copy_(t("decoder.pos_embed.weight"))
        for i, b in enumerate(dec.blocks):
            load_block(b, w, f"decoder.blocks.{i}", "ln_1", "ln_2")
        dec.ln_f.weight.copy_(t("decoder.ln_f.weight"))
        dec.ln_f.bias.copy_(t("decoder.ln_f.bias"))
        dec.lm_head.weight.copy_(t("decoder.lm_head.weight").T)
        dec.lm_head.bias.copy_(t("decoder.lm_head.bias"))
    names = {}  # vlmc name -> (torch parameter, to_vlmc layout)
    names["encoder.patch_embed.weight"] = (enc.patch_embedding.conv.weight, lambda g: g.permute(2, 3, 1, 0).reshape(p * p * 3, D))
    names["encoder.blocks.0.attn.q.weight"] = (None, lambda _: torch.cat([h.query.weight.grad.T for h in enc.blocks[0].attn.heads], dim=1))
    names["encoder.blocks.2.norm2.weight"] = (enc.blocks[2].ln2.weight, lambda g: g)
    names["projector.2.bias"] = (net[2].bias, lambda g: g)
    names["decoder.embed.weight"] = (dec.token_embedding_table.weight, lambda g: g)
    names["decoder.blocks.0.attn.o.weight"] = (dec.blocks[0].attn.proj.weight, lambda g: g.T)
    names["decoder.lm_head.weight"] = (dec.lm_head.weight, lambda g: g.T)

    def forward(images, tokens):
        return m(images.permute(0, 3, 1, 2), tokens)

    return m, forward, names


def head_forward_head_scale(self, x):
    B, T, C = x.shape
    k, q, v = self.key(x), self.query(x), self.value(x)
    wei = q @ k.transpose(-2, -1) * (k.shape[-1] ** -0.5)
    if self.is_decoder:
        tril = torch.tril(torch.ones(T, T, dtype=torch.bool))
        wei = wei.masked_fill(tril == 0, float("-inf"))
    return F.softmax(wei, dim=-1) @ v


def load_block(b, w, prefix, n1, n2):
    t = lambda name: torch.tensor(w[f"{prefix}.{name}"])  # noqa: E731
    b.ln1.weight.copy_(t(f"{n1}.weight"))
    b.ln1.bias.copy_(t(f"{n1}.bias"))
    b.ln2.weight.copy_(t(f"{n2}.weight"))
    b.ln2.bias.copy_(t(f"{n2}.bias"))
    q, k, v = t("attn.q.weight"), t("attn.k.weight"), t("attn.v.weight")  # [D, D], heads side by side
    hd = q.shape[1] // len(b.attn.heads)
    for h, head in enumerate(b.attn.heads):
        head.query.weight.copy_(q[:, h * hd : (h + 1) * hd].T)
        head.key.weight.copy_(k[:, h * hd : (h + 1) * hd].T)
        head.value.weight.copy_(v[:, h * hd : (h + 1) * hd].T)
    b.attn.proj.weight.copy_(t("attn.o.weight").T)
    b.attn.proj.bias.copy_(t("attn.o.bias"))
    b.ffn[0].weight.copy_(t("mlp.fc1.weight").T)
    b.ffn[0].bias.copy_(t("mlp.fc1.bias"))
    b.ffn[2].weight.copy_(t("mlp.fc2.weight").T)
    b.ffn[2].bias.copy_(t("mlp.fc2.bias"))


# ---- GPT-2 (Hugging Face layout: Conv1D weights [in, out], fused c_attn, tied head) ----
class GPT2Block(nn.Module):
    def __init__(self, d, heads, eps):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=eps)
        self.c_attn_w = nn.Parameter(torch.zeros(d, 3 * d))
        self.c_attn_b = nn.Parameter(torch.zeros(3 * d))
        self.c_proj_w = nn.Parameter(torch.zeros(d, d))
        self.c_proj_b = nn.Parameter(torch.zeros(d))
        self.ln_2 = nn.LayerNorm(d, eps=eps)
        self.c_fc_w = nn.Parameter(torch.zeros(d, 4 * d))
        self.c_fc_b = nn.Parameter(torch.zeros(4 * d))
        self.mlp_proj_w = nn.Parameter(torch.zeros(4 * d, d))
        self.mlp_proj_b = nn.Parameter(torch.zeros(d))
        self.heads = heads

    def forward(self, x):
        B, T, D = x.shape
        h = self.ln_1(x) @ self.c_attn_w + self.c_attn_b
        q, k, v = h.split(D, dim=2)
        hd = D // self.heads
        q, k, v = (z.view(B, T, self.heads, hd).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = att.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), float("-inf"))
        y = (F.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(B, T, D)
        x = x + (y @ self.c_proj_w + self.c_proj_b)
        m = F.gelu(self.ln_2(x) @ self.c_fc_w + self.c_fc_b, approximate="tanh")  # gelu_new
        return x + (m @ self.mlp_proj_w + self.mlp_proj_b)


class GPT2(nn.Module):
    def __init__(self, vocab, d, heads, layers, ctx, eps=1e-5):
        super().__init__()
        self.wte = nn.Parameter(torch.zeros(vocab, d))
        self.wpe = nn.Parameter(torch.zeros(ctx, d))
        self.h = nn.ModuleList([GPT2Block(d, heads, eps) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d, eps=eps)

    def forward(self, tokens):
        T = tokens.shape[1]
        x = self.wte[tokens] + self.wpe[:T]
        for b in self.h:
            x = b(x)
        return self.ln_f(x) @ self.wte.T  # tied head


def build_gpt2(cfg, w):
    D = cfg["dim"]
    m = GPT2(cfg["vocab"], D, cfg["heads"], cfg["layers"], cfg["context"])
    t = lambda name: torch.tensor(w[name])  # noqa: E731
    with torch.no_grad():
        m.wte.copy_(t("decoder.embed.weight"))
        m.wpe.copy_(t("decoder.pos_embed.weight"))
        for i, b in enumerate(m.h):
            p = f"decoder.blocks.{i}"
            b.ln_1.weight.copy_(t(f"{p}.ln_1.weight"))
            b.ln_1.bias.copy_(t(f"{p}.ln_1.bias"))
            b.c_attn_w.copy_(torch.cat([t(f"{p}.attn.{z}.weight") for z in "qkv"], dim=1))
            b.c_attn_b.copy_(torch.cat([t(f"{p}.attn.{z}.bias") for z in "qkv"]))
            b.c_proj_w.copy_(t(f"{p}.attn.o.weight"))
            b.c_proj_b.copy_(t(f"{p}.attn.o.bias"))
            b.ln_2.weight.copy_(t(f"{p}.ln_2.weight"))
            b.ln_2.bias.copy_(t(f"{p}.ln_2.bias"))
            b.c_fc_w.copy_(t(f"{p}.mlp.fc1.weight"))
            b.c_fc_b.copy_(t(f"{p}.mlp.fc1.bias"))
            b.mlp_proj_w.copy_(t(f"{p}.mlp.fc2.weight"))
            b.mlp_proj_b.copy_(t(f"{p}.mlp.fc2.bias"))
        m.ln_f.weight.copy_(t("decoder.ln_f.weight"))
        m.ln_f.bias.copy_(t("decoder.ln_f.bias"))
    D3 = lambda g, i: g[:, i * D : (i + 1) * D]  # noqa: E731
    names = {
        "decoder.embed.weight": (m.wte, lambda g: g),
        "decoder.pos_embed.weight": (m.wpe, lambda g: g),
        "decoder.blocks.0.attn.q.weight": (m.h[0].c_attn_w, lambda g: D3(g, 0)),
        "decoder.blocks.0.attn.v.weight": (m.h[0].c_attn_w, lambda g: D3(g, 2)),
        "decoder.blocks.1.mlp.fc2.weight": (m.h[1].mlp_proj_w, lambda g: g),
        "decoder.ln_f.weight": (m.ln_f.weight, lambda g: g),
    }
    return m, lambda images, tokens: m(tokens), names


# ---- Llama style: RMSNorm, rotary positions (rotate half), SwiGLU, grouped KV, untied head ----
class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotary(x, base):
    B, H, T, hd = x.shape
    inv = base ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1).float()
    sin = torch.cat([ang.sin(), ang.sin()], -1).float()
    x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class LlamaBlock(nn.Module):
    def __init__(self, d, heads, kv, hidden, eps, base):
        super().__init__()
        self.attn_norm = RMSNorm(d, eps)
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, kv * (d // heads), bias=False)
        self.v = nn.Linear(d, kv * (d // heads), bias=False)
        self.o = nn.Linear(d, d, bias=False)
        self.mlp_norm = RMSNorm(d, eps)
        self.gate = nn.Linear(d, hidden, bias=False)
        self.up = nn.Linear(d, hidden, bias=False)
        self.down = nn.Linear(hidden, d, bias=False)
        self.heads, self.kv, self.base = heads, kv, base

    def forward(self, x):
        B, T, D = x.shape
        hd = D // self.heads
        h = self.attn_norm(x)
        q = self.q(h).view(B, T, self.heads, hd).transpose(1, 2)
        k = self.k(h).view(B, T, self.kv, hd).transpose(1, 2)
        v = self.v(h).view(B, T, self.kv, hd).transpose(1, 2)
        q, k = rotary(q, self.base), rotary(k, self.base)
        rep = self.heads // self.kv
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = att.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), float("-inf"))
        y = (F.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(B, T, D)
        x = x + self.o(y)
        h = self.mlp_norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(nn.Module):
    def __init__(self, vocab, d, heads, kv, layers, hidden, eps, base):
        super().__init__()
        self.embed = nn.Parameter(torch.zeros(vocab, d))
        self.blocks = nn.ModuleList([LlamaBlock(d, heads, kv, hidden, eps, base) for _ in range(layers)])
        self.norm = RMSNorm(d, eps)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, tokens):
        x = self.embed[tokens]
        for b in self.blocks:
            x = b(x)
        return self.lm_head(self.norm(x))


def build_llama(cfg, w):
    m = Llama(cfg["vocab"], cfg["dim"], cfg["heads"], cfg["kv_heads"], cfg["layers"], cfg["hidden"], cfg["eps"], cfg["rope_base"])
    t = lambda name: torch.tensor(w[name])  # noqa: E731
    with torch.no_grad():
        m.embed.copy_(t("decoder.embed.weight"))
        for i, b in enumerate(m.blocks):
            p = f"decoder.blocks.{i}"
            b.attn_norm.weight.copy_(t(f"{p}.attn_norm.weight"))
            for z in "qkvo":
                getattr(b, z).weight.copy_(t(f"{p}.attn.{z}.weight").T)
            b.mlp_norm.weight.copy_(t(f"{p}.mlp_norm.weight"))
            for z in ("gate", "up", "down"):
                getattr(b, z).weight.copy_(t(f"{p}.mlp.{z}.weight").T)
        m.norm.weight.copy_(t("decoder.norm.weight"))
        m.lm_head.weight.copy_(t("decoder.lm_head.weight").T)
    names = {
        "decoder.embed.weight": (m.embed, lambda g: g),
        "decoder.blocks.0.attn.q.weight": (m.blocks[0].q.weight, lambda g: g.T),
        "decoder.blocks.0.attn.k.weight": (m.blocks[0].k.weight, lambda g: g.T),
        "decoder.blocks.0.mlp.gate.weight": (m.blocks[0].gate.weight, lambda g: g.T),
        "decoder.blocks.1.attn_norm.weight": (m.blocks[1].attn_norm.weight, lambda g: g),
        "decoder.lm_head.weight": (m.lm_head.weight, lambda g: g.T),
    }
    return m, lambda images, tokens: m(tokens), names


BUILDERS = {"seemore": build_seemore, "gpt2": build_gpt2, "llama": build_llama}


def loss_of(logits, targets, mask):
    """Mean cross-entropy over the text positions (the last T), padding masked out."""
    T = targets.shape[1]
    text = logits[:, -T:, :]
    logp = F.log_softmax(text, dim=-1)
    picked = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return -(picked * mask).sum() / mask.sum().clamp(min=1)


def vlmc_grad(names, name, model):
    param, to_vlmc = names[name]
    g = to_vlmc(param.grad if param is not None else None)
    return g.detach().numpy().astype(np.float32)


def run_case(folder):
    cfg = json.load(open(os.path.join(folder, "case.json")))
    w, _ = safetensors_np.read(os.path.join(folder, "weights.safetensors"))
    inputs, _ = safetensors_np.read(os.path.join(folder, "inputs.safetensors"))
    model, forward, names = BUILDERS[cfg["model"]](cfg["config"], w)
    images = torch.tensor(inputs["images"]) if "images" in inputs else None
    tokens = torch.tensor(inputs["tokens"]).long()
    targets = torch.tensor(inputs["targets"]).long()
    mask = torch.tensor(inputs["mask"]).float()
    out = {}
    model.zero_grad()
    logits = forward(images, tokens)
    loss = loss_of(logits, targets, mask)
    loss.backward()
    out["logits"] = logits.detach().numpy()
    out["loss"] = np.array([loss.item()], dtype=np.float32)
    for name in cfg["grads"]:
        out[f"grad:{name}"] = vlmc_grad(names, name, model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.get("lr", 1e-3), betas=(0.9, 0.999), eps=1e-8)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = loss_of(forward(images, tokens), targets, mask)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    out["adam_losses"] = np.array(losses, dtype=np.float32)
    # Parameters after 5 steps, in vlmc layout (re-read through the same mapping as the weights).
    model.zero_grad()
    for name in cfg["after"]:
        param, to_vlmc = names[name]
        out[f"after:{name}"] = to_vlmc(param.detach()).numpy().astype(np.float32)
    safetensors_np.write(os.path.join(folder, "golden.safetensors"), out, {"torch": torch.__version__, "case": cfg["model"]})
    os.remove(os.path.join(folder, "weights.safetensors"))
    print(f"{os.path.basename(folder)}: loss {out['loss'][0]:.6f}, 5 Adam steps -> {losses[-1]:.6f}")


# ---- a real Hugging Face GPT-2 checkpoint, loaded by its own names (not through vlmc's mapping) ----
HF_GPT2_SRC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "hf-gpt2-tiny")
HF_GPT2_OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "hf-gpt2-tiny")


def build_hf_gpt2(src):
    """GPT2 above, its parameters read straight from the checkpoint's Hugging Face names."""
    cfg = json.load(open(os.path.join(src, "config.json")))
    assert cfg["activation_function"] == "gelu_new" and cfg.get("n_inner") is None, "GPT2 here is gelu_new with a 4 x n_embd MLP"
    assert cfg.get("scale_attn_weights", True) and not cfg.get("scale_attn_by_inverse_layer_idx", False)
    w, _ = safetensors_np.read(os.path.join(src, "model.safetensors"))
    w = {k[len("transformer."):] if k.startswith("transformer.") else k: v for k, v in w.items()}
    m = GPT2(cfg["vocab_size"], cfg["n_embd"], cfg["n_head"], cfg["n_layer"], cfg["n_positions"], cfg["layer_norm_epsilon"])
    t = lambda name: torch.tensor(w[name])  # noqa: E731
    with torch.no_grad():
        m.wte.copy_(t("wte.weight"))
        m.wpe.copy_(t("wpe.weight"))
        for i, b in enumerate(m.h):
            for ln in ("ln_1", "ln_2"):
                getattr(b, ln).weight.copy_(t(f"h.{i}.{ln}.weight"))
                getattr(b, ln).bias.copy_(t(f"h.{i}.{ln}.bias"))
            b.c_attn_w.copy_(t(f"h.{i}.attn.c_attn.weight"))
            b.c_attn_b.copy_(t(f"h.{i}.attn.c_attn.bias"))
            b.c_proj_w.copy_(t(f"h.{i}.attn.c_proj.weight"))
            b.c_proj_b.copy_(t(f"h.{i}.attn.c_proj.bias"))
            b.c_fc_w.copy_(t(f"h.{i}.mlp.c_fc.weight"))
            b.c_fc_b.copy_(t(f"h.{i}.mlp.c_fc.bias"))
            b.mlp_proj_w.copy_(t(f"h.{i}.mlp.c_proj.weight"))
            b.mlp_proj_b.copy_(t(f"h.{i}.mlp.c_proj.bias"))
        m.ln_f.weight.copy_(t("ln_f.weight"))
        m.ln_f.bias.copy_(t("ln_f.bias"))
    return m


def run_hf_gpt2(src=HF_GPT2_SRC, out=HF_GPT2_OUT):
    """Goldens of the checkpoint on case.json's tokens: every position's logsumexp and logits at a
    few vocabulary ids, each sequence's last position in full, and the next-token loss (the last
    position has no target: masked). Kept small: 50,257-wide rows are 200 KB each."""
    case = json.load(open(os.path.join(out, "case.json")))
    m = build_hf_gpt2(src)
    tokens = torch.tensor(case["tokens"]).long()
    B, T = tokens.shape
    targets = torch.cat([tokens[:, 1:], torch.zeros(B, 1, dtype=torch.long)], 1)
    mask = torch.ones(B, T)
    mask[:, -1] = 0
    with torch.no_grad():
        logits = m(tokens)
        loss = loss_of(logits, targets, mask)
    cols = torch.tensor(case["columns"]).long()
    golden = {
        "logits_last": logits[:, -1, :].numpy(),
        "logsumexp": torch.logsumexp(logits, -1).numpy(),
        "logits_columns": logits[:, :, cols].numpy(),
        "loss": np.array([loss.item()], dtype=np.float32),
    }
    import hashlib

    sha = hashlib.sha256(open(os.path.join(src, "model.safetensors"), "rb").read()).hexdigest()
    safetensors_np.write(os.path.join(out, "golden.safetensors"), golden, {"torch": torch.__version__, "model_sha256": sha})
    print(f"hf-gpt2-tiny: loss {loss.item():.6f}, logits [{B}, {T}, {logits.shape[2]}]")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--hf-gpt2"]:
        run_hf_gpt2(*sys.argv[2:4])
        sys.exit(0)
    cases = sys.argv[1:] or sorted(d for d in os.listdir(ROOT) if os.path.isdir(os.path.join(ROOT, d)))
    for c in cases:
        run_case(os.path.join(ROOT, c))
