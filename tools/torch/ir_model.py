"""A PyTorch model built from a vlmc IR document (`vlmc compile --emit ir`), layer kind by kind.

Used by bench_step.py to train in PyTorch exactly the model vlmc trains. Each layer kind is
written here from its meaning (docs/layers.md), in plain PyTorch; parameters keep vlmc's names
and layouts (a linear weight is [in, out]), so that vlmc's safetensors weights load as they are.
Dropout is the identity: the benchmark compares losses, so both sides run with dropout off.

    model = IrModel(ir, weights)          # weights: {vlmc name: numpy array}
    logits = model(images, tokens)        # images [B, H, W, C] or None, tokens [B, T] int64
    loss = masked_cross_entropy(logits, targets, mask)

Kinds: patch_embed, positions, dropout, sequence, residual, layernorm, rmsnorm, attention, mlp,
swiglu, linear, gelu, relu, silu, take, token_embed, join, lm_head. Any other is refused by name.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F


def linear(x, w, b=None):
    """x [..., in] @ w [in, out] (+ b), as one 2-D product (addmm with a bias)."""
    lead = x.shape[:-1]
    x2 = x.reshape(-1, w.shape[0])
    y = torch.addmm(b, x2, w) if b is not None else x2 @ w
    return y.view(*lead, w.shape[1])


def gelu(x, approximate):
    return F.gelu(x, approximate="tanh" if approximate == "tanh" else "none")


def activation(x, name):
    if name == "gelu":
        return F.gelu(x)
    if name == "gelu_tanh":
        return F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu(x)
    if name == "silu":
        return F.silu(x)
    raise ValueError(f"unknown activation {name}")


def sinusoids(n, d):
    """Vaswani et al.: sin on even dims, cos on odd dims, angle p / 10000^(i/d) for the pair at i."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(0, d, 2, dtype=torch.float64)[None, :]
    angle = pos / torch.pow(10000.0, i / d)
    out = torch.zeros(n, d, dtype=torch.float64)
    out[:, 0::2] = torch.sin(angle)
    out[:, 1::2] = torch.cos(angle[:, : d // 2])
    return out.float()


def rope_tables(n, hd, base):
    """cos and sin [n, hd] of rotary positions (rotate-half convention), halves repeated."""
    inv = torch.pow(float(base), -2.0 * torch.arange(hd // 2, dtype=torch.float64) / hd)
    angle = torch.arange(n, dtype=torch.float64)[:, None] * inv[None, :]
    angle = torch.cat([angle, angle], dim=-1)
    return torch.cos(angle).float(), torch.sin(angle).float()


def rotate(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class IrModel(torch.nn.Module):
    def __init__(self, ir, weights):
        super().__init__()
        self.ir = ir
        self.names = []
        self.params = torch.nn.ParameterList()
        self.by_name = {}
        for module in ("encoder", "projector", "decoder"):
            if ir["modules"].get(module):
                self._collect(ir["modules"][module]["layers"], weights)
        self.masks = {}

    def _collect(self, layers, weights):
        for layer in layers:
            for p in layer["params"]:
                name = p["name"]
                value = weights[name]
                if list(value.shape) != list(p["shape"]):
                    raise ValueError(f"{name}: weights {list(value.shape)}, IR {p['shape']}")
                param = torch.nn.Parameter(torch.from_numpy(value.astype(np.float32, copy=False)))  # shares the array: no second copy
                self.params.append(param)
                self.names.append(name)
                self.by_name[name] = param
            self._collect(layer.get("children") or [], weights)

    def named(self):
        """(vlmc name, parameter) pairs, in the IR's order."""
        return list(zip(self.names, self.params))

    def p(self, layer, name):
        return self.by_name.get(f"{layer['path']}.{name}")

    def forward(self, images, tokens):
        visual = None
        mods = self.ir["modules"]
        if mods.get("encoder"):
            visual = self.run(mods["encoder"]["layers"], images, {"cls": False})
            if mods.get("projector"):
                visual = self.run(mods["projector"]["layers"], visual, {"cls": False})
        return self.run(mods["decoder"]["layers"], tokens, {"cls": False, "visual": visual})

    def run(self, layers, x, state):
        for layer in layers:
            x = self.layer(layer, x, state)
            if layer["kind"] == "patch_embed":
                state["cls"] = bool(layer["attrs"].get("cls"))
            if layer["kind"] == "take":
                state["cls"] = False
        return x

    def layer(self, l, x, state):
        kind, a, p = l["kind"], l["attrs"], (lambda name: self.p(l, name))
        if kind == "sequence":
            return self.run(l.get("children") or [], x, state)
        if kind == "residual":
            return x + self.run(l.get("children") or [], x, state)
        if kind == "dropout":
            return x
        if kind == "patch_embed":  # [B, H, W, C] -> [B, (1+)N, D]: non-overlapping patches, flattened (row, col, channel)
            P = a["patch"]
            B, H, W, C = x.shape
            patches = x.reshape(B, H // P, P, W // P, P, C).permute(0, 1, 3, 2, 4, 5).reshape(B, (H // P) * (W // P), P * P * C)
            y = linear(patches, p("weight"), p("bias"))
            if a.get("cls"):
                y = torch.cat([p("cls").view(1, 1, -1).expand(B, 1, y.shape[2]), y], dim=1)
            return y
        if kind == "positions":
            n, d = x.shape[1], x.shape[2]
            if a["kind"] == "learned":
                return x + p("weight")[:n]
            if a["kind"] == "sinusoidal":
                return x + self.constant(("sin", n, d), lambda: sinusoids(n, d))
            return x
        if kind == "layernorm":
            return F.layer_norm(x, (x.shape[-1],), p("weight"), p("bias"), a["eps"])
        if kind == "rmsnorm":
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + a["eps"]) * p("weight")
        if kind == "attention":
            return self.attention(l, x)
        if kind == "mlp":
            h = activation(linear(x, p("fc1.weight"), p("fc1.bias")), a["activation"])
            return linear(h, p("fc2.weight"), p("fc2.bias"))
        if kind == "swiglu":
            gate = linear(x, p("gate.weight"), p("gate.bias"))
            return linear(F.silu(gate) * linear(x, p("up.weight"), p("up.bias")), p("down.weight"), p("down.bias"))
        if kind == "linear":
            return linear(x, p("weight"), p("bias"))
        if kind == "gelu":
            return gelu(x, a.get("approximate", "erf"))
        if kind == "relu":
            return F.relu(x)
        if kind == "silu":
            return F.silu(x)
        if kind == "take":
            first = 1 if state["cls"] else 0
            which = a["which"]
            if which == "cls":
                return x[:, :1]
            if which == "patches":
                return x[:, first:]
            if which == "pool":
                return x[:, first:].mean(dim=1, keepdim=True)
            return x
        if kind == "token_embed":
            return F.embedding(x, p("weight"))
        if kind == "join":
            return torch.cat([state["visual"], x], dim=1) if state.get("visual") is not None else x
        if kind == "lm_head":
            if a.get("tied"):
                return linear(x, self.by_name["decoder.embed.weight"].t(), p("bias"))
            return linear(x, p("weight"), p("bias"))
        raise ValueError(f"layer kind {kind} ({l['path']}) is not written in tools/torch/ir_model.py")

    def attention(self, l, x):
        a, p = l["attrs"], (lambda name: self.p(l, name))
        B, N, D = x.shape
        H = a["heads"]
        KV = a.get("kv_heads") or H
        hd = D // H
        q = linear(x, p("q.weight"), p("q.bias")).view(B, N, H, hd).transpose(1, 2)  # [B, H, N, hd]
        k = linear(x, p("k.weight"), p("k.bias")).view(B, N, KV, hd).transpose(1, 2)  # [B, KV, N, hd]
        v = linear(x, p("v.weight"), p("v.bias")).view(B, N, KV, hd).transpose(1, 2)  # [B, KV, N, hd]
        if a.get("rope"):
            cos, sin = self.constant(("rope", N, hd, a["rope_base"]), lambda: rope_tables(N, hd, a["rope_base"]))
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        if KV != H:  # grouped heads: head h reads key/value head h // (H / KV)
            k = k.repeat_interleave(H // KV, dim=1)
            v = v.repeat_interleave(H // KV, dim=1)
        s = a["scale"]
        scale = hd**-0.5 if s == "head" else D**-0.5 if s == "dim" else float(s)
        scores = (q @ k.transpose(-2, -1)) * scale  # [B, H, N, N]
        if a.get("causal"):
            scores = scores.masked_fill(self.constant(("causal", N), lambda: ~torch.tril(torch.ones(N, N, dtype=torch.bool))), float("-inf"))
        out = (F.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, N, D)  # [B, N, D]
        return linear(out, p("o.weight"), p("o.bias"))

    def constant(self, key, make):
        if key not in self.masks:
            self.masks[key] = make()
        return self.masks[key]


def masked_cross_entropy(logits, targets, mask):
    """Mean cross-entropy of the text positions (the last T of the sequence), where mask is 1."""
    B, T = targets.shape
    text = logits[:, logits.shape[1] - T :]  # [B, T, V]
    nll = F.cross_entropy(text.reshape(B * T, -1), targets.reshape(-1), reduction="none").view(B, T)
    return (nll * mask).sum() / mask.sum().clamp(min=1)


def count_params(ir):
    def walk(layers):
        return sum(math.prod(p["shape"]) for l in layers for p in l["params"]) + sum(walk(l.get("children") or []) for l in layers)

    return sum(walk(m["layers"]) for m in ir["modules"].values() if m)
