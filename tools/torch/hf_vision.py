"""Tiny Hugging Face CLIP-vision and SigLIP checkpoints, and their golden outputs, for
test/hf-vision.test.ts (runtime/hf-vision.ts maps them into vlmc's `vit` / `siglip` presets).

Run by hand (Debian's python3-torch 1.13; no transformers, no safetensors package):

    /usr/bin/python3 tools/torch/hf_vision.py [OUT]     # OUT: test/fixtures/hf-vision/

The modules below follow Hugging Face's `CLIPVisionTransformer` and `SiglipVisionTransformer`
(transformers/models/{clip,siglip}/modeling_*.py) line by line, with the same parameter names,
so that `state_dict()` is what `CLIPModel` / `SiglipVisionModel` save: the reference is written
without any vlmc code or layout in mind, and vlmc's mapping has to meet it. The weights are
seeded random (LayerNorm gains not 1, biases not 0), so a mapping that drops or misplaces a
tensor cannot pass. For each of `clip/` and `siglip/` this writes:

- config.json: a full `CLIPConfig` (the vision settings nested in `vision_config`, a text side
  vlmc ignores) for CLIP; a plain `SiglipVisionConfig` for SigLIP.
- preprocessor_config.json: `CLIPImageProcessor` (shortest edge + centre crop, CLIP's mean and
  std) / `SiglipImageProcessor` (plain resize, mean = std = 0.5).
- model.safetensors: CLIP as a whole `CLIPModel` would save it (text_model.*, visual_projection,
  text_projection, logit_scale and the old `position_ids` buffer included, all to be ignored);
  SigLIP as `SiglipVisionModel` with its attention-pooling head (`vision_model.head.*`, ignored).
- golden.safetensors: `pixels` (8-bit images [B, H, W, C], I32), `pixel_values` (after the
  processor's rescale and normalisation, [B, H, W, C]), `hidden` (the encoder's last block,
  before the final LayerNorm) and `post` (every token through the final LayerNorm), [B, N, D];
  metadata `model_sha256` ties them to model.safetensors.
"""
import hashlib
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

torch.set_num_threads(1)
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "hf-vision")

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

# transformers.activations.ACT2FN, the entries these configs use.
ACT2FN = {
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "gelu": lambda x: F.gelu(x),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
}


class Attention(nn.Module):
    """CLIPAttention / SiglipAttention: q, k, v, out_proj with biases; scale head_dim^-0.5."""

    def __init__(self, c):
        super().__init__()
        self.embed_dim = c["hidden_size"]
        self.num_heads = c["num_attention_heads"]
        self.head_dim = self.embed_dim // self.num_heads
        self.scale = self.head_dim**-0.5
        self.k_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.v_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.q_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.out_proj = nn.Linear(self.embed_dim, self.embed_dim)

    def forward(self, x):
        B, N, D = x.shape
        shape = lambda t: t.view(B, N, self.num_heads, self.head_dim).transpose(1, 2)  # (B, h, N, hd)
        q = shape(self.q_proj(x) * self.scale)
        k = shape(self.k_proj(x))
        v = shape(self.v_proj(x))
        w = torch.softmax(q @ k.transpose(-1, -2), dim=-1)  # (B, h, N, N)
        y = (w @ v).transpose(1, 2).reshape(B, N, D)
        return self.out_proj(y)


class Mlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.activation_fn = ACT2FN[c["hidden_act"]]
        self.fc1 = nn.Linear(c["hidden_size"], c["intermediate_size"])
        self.fc2 = nn.Linear(c["intermediate_size"], c["hidden_size"])

    def forward(self, x):
        return self.fc2(self.activation_fn(self.fc1(x)))


class EncoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = Attention(c)
        self.layer_norm1 = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.mlp = Mlp(c)
        self.layer_norm2 = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layers = nn.ModuleList([EncoderLayer(c) for _ in range(c["num_hidden_layers"])])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class ClipEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, P = c["hidden_size"], c["patch_size"]
        self.class_embedding = nn.Parameter(torch.randn(D))
        self.patch_embedding = nn.Conv2d(c["num_channels"], D, kernel_size=P, stride=P, bias=False)
        n = (c["image_size"] // P) ** 2
        self.position_embedding = nn.Embedding(n + 1, D)
        self.register_buffer("position_ids", torch.arange(n + 1).expand((1, -1)))

    def forward(self, pixel_values):  # (B, C, H, W)
        B = pixel_values.shape[0]
        patch = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)  # (B, N, D)
        cls = self.class_embedding.expand(B, 1, -1)
        return torch.cat([cls, patch], dim=1) + self.position_embedding(self.position_ids)


class SiglipEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, P = c["hidden_size"], c["patch_size"]
        self.patch_embedding = nn.Conv2d(c["num_channels"], D, kernel_size=P, stride=P, padding="valid")
        n = (c["image_size"] // P) ** 2
        self.position_embedding = nn.Embedding(n, D)
        self.register_buffer("position_ids", torch.arange(n).expand((1, -1)), persistent=False)

    def forward(self, pixel_values):
        patch = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)  # (B, N, D)
        return patch + self.position_embedding(self.position_ids)


class ClipVisionTransformer(nn.Module):
    """Returns (last_hidden_state, every token through post_layernorm); HF's pooler_output is the latter's token 0."""

    def __init__(self, c):
        super().__init__()
        D = c["hidden_size"]
        self.embeddings = ClipEmbeddings(c)
        self.pre_layrnorm = nn.LayerNorm(D, eps=c["layer_norm_eps"])
        self.encoder = Encoder(c)
        self.post_layernorm = nn.LayerNorm(D, eps=c["layer_norm_eps"])

    def forward(self, pixel_values):
        h = self.encoder(self.pre_layrnorm(self.embeddings(pixel_values)))
        return h, self.post_layernorm(h)


class SiglipHead(nn.Module):
    """SiglipMultiheadAttentionPoolingHead: only its parameter names matter here (vlmc ignores it)."""

    def __init__(self, c):
        super().__init__()
        D = c["hidden_size"]
        self.probe = nn.Parameter(torch.randn(1, 1, D))
        self.attention = nn.MultiheadAttention(D, c["num_attention_heads"], batch_first=True)
        self.layernorm = nn.LayerNorm(D, eps=c["layer_norm_eps"])
        self.mlp = Mlp(c)


class SiglipVisionTransformer(nn.Module):
    """Returns (the encoder's output, last_hidden_state = its post_layernorm)."""

    def __init__(self, c):
        super().__init__()
        self.embeddings = SiglipEmbeddings(c)
        self.encoder = Encoder(c)
        self.post_layernorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.head = SiglipHead(c)

    def forward(self, pixel_values):
        h = self.encoder(self.embeddings(pixel_values))
        return h, self.post_layernorm(h)


def randomize(module, gen):
    """Every parameter seeded random: weights ~ N(0, 1/fan_in), LayerNorm gains 1 + N(0, 0.1^2), biases N(0, 0.05^2)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
            elif p.dim() == 1 and ("norm" in name):
                p.copy_(1 + torch.randn(p.shape, generator=gen) * 0.1)
            elif p.dim() == 1 or name.endswith("probe"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            else:
                fan_in = p[0].numel() if p.dim() > 1 else p.shape[0]
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))


VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_channels=3, image_size=32, patch_size=8)


def clip_files():
    vision = dict(VISION, hidden_act="quick_gelu", layer_norm_eps=1e-5, model_type="clip_vision_model", projection_dim=16, attention_dropout=0.0, initializer_range=0.02, initializer_factor=1.0)
    text = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=40, max_position_embeddings=8, hidden_act="quick_gelu", layer_norm_eps=1e-5, model_type="clip_text_model", projection_dim=16)
    config = {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 16, "logit_scale_init_value": 2.6592, "initializer_factor": 1.0, "torch_dtype": "float32", "transformers_version": "4.41.2", "text_config": text, "vision_config": vision}
    pre = {
        "crop_size": {"height": 32, "width": 32},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": CLIP_MEAN,
        "image_processor_type": "CLIPImageProcessor",
        "image_std": CLIP_STD,
        "resample": 3,
        "rescale_factor": 0.00392156862745098,
        "size": {"shortest_edge": 32},
    }
    return vision, config, pre, ClipVisionTransformer


def siglip_files():
    vision = dict(VISION, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, model_type="siglip_vision_model", attention_dropout=0.0)
    config = dict({"architectures": ["SiglipVisionModel"], "torch_dtype": "float32", "transformers_version": "4.41.2"}, **vision)
    pre = {
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_processor_type": "SiglipImageProcessor",
        "image_std": [0.5, 0.5, 0.5],
        "processor_class": "SiglipProcessor",
        "resample": 3,
        "rescale_factor": 0.00392156862745098,
        "size": {"height": 32, "width": 32},
    }
    return vision, config, pre, SiglipVisionTransformer


def clip_extras(gen, config):
    """The rest of a whole CLIPModel's state dict: tensors vlmc must ignore (a few, small, random)."""
    t = config["text_config"]
    D, V, P = t["hidden_size"], t["vocab_size"], config["projection_dim"]
    r = lambda *s: torch.randn(s, generator=gen).numpy().astype(np.float32)
    return {
        "text_model.embeddings.token_embedding.weight": r(V, D),
        "text_model.embeddings.position_embedding.weight": r(t["max_position_embeddings"], D),
        "text_model.final_layer_norm.weight": r(D),
        "text_model.final_layer_norm.bias": r(D),
        "visual_projection.weight": r(P, config["vision_config"]["hidden_size"]),
        "text_projection.weight": r(P, D),
        "logit_scale": np.array(config["logit_scale_init_value"], dtype=np.float32),
    }


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def build(name, seed, out):
    vision, config, pre, cls = {"clip": clip_files, "siglip": siglip_files}[name]()
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = cls(vision).eval()
    randomize(model, gen)
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    write_json(os.path.join(folder, "config.json"), config)
    write_json(os.path.join(folder, "preprocessor_config.json"), pre)
    tensors = {f"vision_model.{k}": v.detach().numpy().copy() for k, v in model.state_dict().items()}
    if name == "clip":
        tensors.update(clip_extras(gen, config))
    model_path = os.path.join(folder, "model.safetensors")
    safetensors_np.write(model_path, tensors, {"format": "pt"})

    # Two 8-bit images at the processor's output size (so no resampling is involved), rescaled
    # and normalised as the processor does: (v * rescale_factor - mean) / std.
    B, S, C = 2, vision["image_size"], vision["num_channels"]
    pixels = torch.randint(0, 256, (B, S, S, C), generator=gen, dtype=torch.int32)
    mean = torch.tensor(pre["image_mean"], dtype=torch.float64)
    std = torch.tensor(pre["image_std"], dtype=torch.float64)
    values = ((pixels.double() * pre["rescale_factor"] - mean) / std).float()  # (B, H, W, C)
    with torch.no_grad():
        hidden, post = model(values.permute(0, 3, 1, 2).contiguous())  # the models take (B, C, H, W)
    with open(model_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    golden = {"pixels": pixels.numpy(), "pixel_values": values.numpy(), "hidden": hidden.numpy(), "post": post.numpy()}
    safetensors_np.write(os.path.join(folder, "golden.safetensors"), golden, {"model_sha256": sha})
    print(f"{name}: {len(tensors)} tensors, hidden {list(hidden.shape)}, max |post| {post.abs().max().item():.4f}")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else OUT
    build("clip", 1, out)
    build("siglip", 2, out)


if __name__ == "__main__":
    main()
