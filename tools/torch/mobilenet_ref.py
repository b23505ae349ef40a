"""PyTorch's reading of a tfjs LayersModel folder: the golden outputs of test/tfjs-encoder.test.ts.

    /usr/bin/python3 tools/torch/mobilenet_ref.py [--folder models/nsfwjs-mobilenet_v2] [--layer out_relu]
        [--size 96] [--out test/fixtures/tfjs-encoder]

Reads the folder's model.json and weight shards itself (no tensorflow: the uint8-quantized
weights are dequantized as value = min + scale * q), interprets the Keras layers up to the cut
with torch.nn.functional in float64 (Keras' `same` padding is asymmetric for even inputs:
the extra row and column go after, as TensorFlow pads; ZeroPadding2D; BatchNormalization with
the config's epsilon; ReLU's max_value, negative_slope and threshold; a depthwise convolution as
a grouped one) and writes golden.safetensors: the output at the cut for two images whose
pixels are an integer formula of their position (`pixels` below, the same in the test), fed as
pixels / 255, as nsfwjs feeds them. The test (test/tfjs-encoder.test.ts) compares vlmc's
encoder with it, max|a - b| / max|ref| < 1e-4.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_np  # noqa: E402

IMAGES = 2


def pixels(b, size):
    """[size, size, 3] uint8 pixels of image b: smooth gradients with a texture, exactly as integers."""
    h = np.arange(size).reshape(size, 1, 1)
    w = np.arange(size).reshape(1, size, 1)
    c = np.arange(3).reshape(1, 1, 3)
    return ((h * (2 + b) + w * (3 - b) + c * 85 + ((h * w + 7 * b) % 23) * 4) % 256).astype(np.uint8)


def load(folder):
    with open(os.path.join(folder, "model.json")) as f:
        doc = json.load(f)
    weights = {}
    for group in doc["weightsManifest"]:
        data = b"".join(open(os.path.join(folder, p), "rb").read() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q:
                assert q["dtype"] == "uint8", q
                raw = np.frombuffer(data, dtype=np.uint8, count=n, offset=offset).astype(np.float64)
                value = q["min"] + q["scale"] * raw
                offset += n
            else:
                assert w["dtype"] == "float32", w
                value = np.frombuffer(data, dtype="<f4", count=n, offset=offset).astype(np.float64)
                offset += 4 * n
            weights[w["name"]] = torch.from_numpy(value.reshape(w["shape"]))
        assert offset == len(data), (offset, len(data))
    topo = doc["modelTopology"]
    return topo.get("model_config", topo)["config"]["layers"], weights


def same_pad(n, k, s, d):
    """TensorFlow's `same` padding of one axis: (before, after)."""
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def conv(x, kernel, cfg, groups=1):
    """x [B, C, H, W]; kernel already [out, in/groups, kh, kw]."""
    kh, kw = kernel.shape[2], kernel.shape[3]
    s = cfg.get("strides", [1, 1])
    d = cfg.get("dilation_rate", [1, 1])
    if cfg["padding"] == "same":
        t, b = same_pad(x.shape[2], kh, s[0], d[0])
        l, r = same_pad(x.shape[3], kw, s[1], d[1])
        x = F.pad(x, (l, r, t, b))
    else:
        assert cfg["padding"] == "valid", cfg["padding"]
    return F.conv2d(x, kernel, stride=tuple(s), dilation=tuple(d), groups=groups)


def activation(x, name):
    return {"linear": lambda v: v, "relu": F.relu, "relu6": lambda v: v.clamp(0, 6)}[name or "linear"](x)


def run(layers, weights, cut, x):
    """The output of `cut` for x [B, H, W, C] (NHWC in and out; NCHW inside)."""
    by_name = {l["name"]: l for l in layers}
    order, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        for node in by_name[name]["inbound_nodes"][:1]:
            for ref in node:
                visit(ref[0])
        order.append(name)

    visit(cut)
    values = {}
    for name in order:
        layer = by_name[name]
        cls, cfg = layer["class_name"], layer["config"]
        ins = [values[ref[0]] for node in layer["inbound_nodes"][:1] for ref in node]
        w = lambda k: weights[f"{name}/{k}"]  # noqa: E731
        if cls == "InputLayer":
            y = x.permute(0, 3, 1, 2)
        elif cls == "ZeroPadding2D":
            (t, b), (l, r) = cfg["padding"]
            y = F.pad(ins[0], (l, r, t, b))
        elif cls == "Conv2D":
            y = conv(ins[0], w("kernel").permute(3, 2, 0, 1), cfg)
            if cfg.get("use_bias", True):
                y = y + w("bias").reshape(1, -1, 1, 1)
            y = activation(y, cfg.get("activation"))
        elif cls == "DepthwiseConv2D":
            k = w("depthwise_kernel")  # [kh, kw, C, m] -> [C*m, 1, kh, kw]
            kh, kw, c, m = k.shape
            y = conv(ins[0], k.permute(2, 3, 0, 1).reshape(c * m, 1, kh, kw), cfg, groups=c)
            if cfg.get("use_bias", True):
                y = y + w("bias").reshape(1, -1, 1, 1)
            y = activation(y, cfg.get("activation"))
        elif cls == "BatchNormalization":
            shape = (1, -1, 1, 1)
            y = (ins[0] - w("moving_mean").reshape(shape)) / torch.sqrt(w("moving_variance").reshape(shape) + cfg["epsilon"])
            if cfg.get("scale", True):
                y = y * w("gamma").reshape(shape)
            if cfg.get("center", True):
                y = y + w("beta").reshape(shape)
        elif cls == "ReLU":
            v, th, slope, top = ins[0], cfg.get("threshold", 0.0), cfg.get("negative_slope", 0.0), cfg.get("max_value")
            y = torch.where(v >= th, v, slope * (v - th))
            if top is not None:
                y = y.clamp(max=top)
        elif cls == "Add":
            y = sum(ins)
        else:
            raise SystemExit(f"{name}: the reference does not read Keras {cls}")
        values[name] = y
    return values[cut].permute(0, 2, 3, 1)


def main():
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    ap = argparse.ArgumentParser()
    ap.add_argument("--folder", default=os.path.join(root, "models", "nsfwjs-mobilenet_v2"))
    ap.add_argument("--layer", default="out_relu")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--out", default=os.path.join(root, "test", "fixtures", "tfjs-encoder"))
    a = ap.parse_args()
    layers, weights = load(a.folder)
    x = torch.from_numpy(np.stack([pixels(b, a.size) for b in range(IMAGES)]).astype(np.float64) / 255.0)
    with torch.no_grad():
        y = run(layers, weights, a.layer, x)
    os.makedirs(a.out, exist_ok=True)
    meta = {"layer": a.layer, "size": a.size, "images": IMAGES, "torch": torch.__version__, "model_json_bytes": os.path.getsize(os.path.join(a.folder, "model.json"))}
    safetensors_np.write(os.path.join(a.out, "golden.safetensors"), {"features": y.numpy().astype(np.float32)}, meta)
    print(f"{a.layer} at {a.size}: {tuple(y.shape)}, max |y| {y.abs().max().item():.4f}, mean {y.mean().item():.4f}")


if __name__ == "__main__":
    main()
