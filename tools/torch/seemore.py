"""The seed model ("seemore") in PyTorch, written from the article and reference-model.md.

An independent reference for vlmc: run by hand with Debian's python3-torch (no transformers).
`python3 tools/torch/seemore.py` prints the parameter count per module, which
`vlmc summary specs/seemore.vlm` must reproduce; `--flops` prints the forward pass's matmul
FLOPs as PyTorch's profiler counts them.

The seed's quirks are kept where they change numbers: the attention scale uses the model width
(C ** -0.5) instead of the head width, the LM head is untied with a bias, GELU is exact.
"""
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class PatchEmbeddings(nn.Module):
    def __init__(self, img_size=96, patch_size=16, hidden_dim=512):
        super().__init__()
        self.img_size = img_size
        self.num_patches = (img_size // patch_size) ** 2
        self.conv = nn.Conv2d(3, hidden_dim, kernel_size=patch_size, stride=patch_size)
        nn.init.xavier_uniform_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x):  # x: [B, 3, H, W]
        x = self.conv(x)  # [B, D, H/p, W/p]
        return x.flatten(2).transpose(1, 2)  # [B, N, D]


class Head(nn.Module):
    def __init__(self, n_embd, head_size, dropout=0.1, is_decoder=False):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.is_decoder = is_decoder

    def forward(self, x):
        B, T, C = x.shape
        k, q, v = self.key(x), self.query(x), self.value(x)
        wei = q @ k.transpose(-2, -1) * (C ** -0.5)  # the seed scales by the model width
        if self.is_decoder:
            tril = torch.tril(torch.ones(T, T, dtype=torch.bool))
            wei = wei.masked_fill(tril == 0, float("-inf"))
        wei = self.dropout(F.softmax(wei, dim=-1))
        return wei @ v


class MultiHeadAttention(nn.Module):
    def __init__(self, n_embd, num_heads, dropout=0.1, is_decoder=False):
        super().__init__()
        self.heads = nn.ModuleList([Head(n_embd, n_embd // num_heads, dropout, is_decoder) for _ in range(num_heads)])
        self.proj = nn.Linear(n_embd, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.proj(torch.cat([h(x) for h in self.heads], dim=-1)))


class Block(nn.Module):
    """Pre-LN transformer block with a 4x GELU MLP."""

    def __init__(self, n_embd, num_heads, dropout=0.1, is_decoder=False):
        super().__init__()
        self.ln1 = nn.LayerNorm(n_embd)
        self.attn = MultiHeadAttention(n_embd, num_heads, dropout, is_decoder)
        self.ln2 = nn.LayerNorm(n_embd)
        self.ffn = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd), nn.Dropout(dropout))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ffn(self.ln2(x))


class ViT(nn.Module):
    def __init__(self, img_size, patch_size, num_hiddens, num_heads, num_blks, emb_dropout, blk_dropout):
        super().__init__()
        self.patch_embedding = PatchEmbeddings(img_size, patch_size, num_hiddens)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, num_hiddens))
        num_patches = (img_size // patch_size) ** 2
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, num_hiddens))
        self.dropout = nn.Dropout(emb_dropout)
        self.blocks = nn.ModuleList([Block(num_hiddens, num_heads, blk_dropout, is_decoder=False) for _ in range(num_blks)])
        self.layer_norm = nn.LayerNorm(num_hiddens)

    def forward(self, x):
        x = self.patch_embedding(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = self.dropout(x + self.pos_embedding)
        for b in self.blocks:
            x = b(x)
        return self.layer_norm(x[:, 0])  # the CLS token: one visual token


class MultiModalProjector(nn.Module):
    def __init__(self, n_embd, image_embed_dim, dropout=0.1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(image_embed_dim, 4 * image_embed_dim), nn.GELU(), nn.Linear(4 * image_embed_dim, n_embd), nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class DecoderLanguageModel(nn.Module):
    def __init__(self, n_embd, image_embed_dim, vocab_size, num_heads, n_layer, dropout=0.1):
        super().__init__()
        self.token_embedding_table = nn.Embedding(vocab_size, n_embd)
        self.position_embedding_table = nn.Embedding(1000, n_embd)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*[Block(n_embd, num_heads, dropout, is_decoder=True) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size)

    def forward(self, idx, img_emb):
        x = torch.cat([img_emb.unsqueeze(1), self.token_embedding_table(idx)], dim=1)
        x = self.dropout(x + self.position_embedding_table(torch.arange(x.size(1))))
        return self.lm_head(self.ln_f(self.blocks(x)))


class VisionLanguageModel(nn.Module):
    def __init__(self, n_embd=128, image_embed_dim=512, vocab_size=66, n_layer=8, img_size=96, patch_size=16, num_heads=8, num_blks=3, emb_dropout=0.1, blk_dropout=0.1):
        super().__init__()
        self.vision_encoder = ViT(img_size, patch_size, image_embed_dim, num_heads, num_blks, emb_dropout, blk_dropout)
        self.image_projection = MultiModalProjector(n_embd, image_embed_dim)
        self.decoder = DecoderLanguageModel(n_embd, image_embed_dim, vocab_size, num_heads, n_layer)

    def forward(self, images, idx):
        return self.decoder(idx, self.image_projection(self.vision_encoder(images)))


def count(module):
    return sum(p.numel() for p in module.parameters())


def forward_flops(batch=16, text=64):
    """Matmul FLOPs of one forward pass, counted by PyTorch's profiler (conv2d, mm, bmm, addmm)."""
    m = VisionLanguageModel().eval()
    images, tokens = torch.zeros(batch, 3, 96, 96), torch.zeros(batch, text, dtype=torch.long)
    with torch.no_grad(), torch.profiler.profile(with_flops=True) as prof:
        m(images, tokens)
    return sum(e.flops for e in prof.key_averages() if e.key in ("aten::conv2d", "aten::mm", "aten::bmm", "aten::addmm", "aten::matmul") and e.flops)


if __name__ == "__main__":
    if "--flops" in sys.argv:
        # `vlmc summary specs/seemore.vlm --batch 16 --text 64` reports the forward FLOPs: its
        # matmuls must equal this count (it adds the element-wise work on top).
        print(f"forward matmul FLOPs at batch 16, text 64: {forward_flops():,d}")
        sys.exit(0)
    m = VisionLanguageModel()
    rows = [("encoder", count(m.vision_encoder)), ("projector", count(m.image_projection)), ("decoder", count(m.decoder))]
    for name, n in rows:
        print(f"{name:10s} {n:>12,d}")
    print(f"{'total':10s} {count(m):>12,d}")
    # Sanity: a forward pass gives [B, 1 + T, vocab].
    with torch.no_grad():
        out = m(torch.zeros(2, 3, 96, 96), torch.zeros(2, 5, dtype=torch.long))
    print("logits", tuple(out.shape), file=sys.stderr)
