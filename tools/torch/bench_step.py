"""PyTorch's side of `npm run bench`: N training steps of a vlmc model, from vlmc's own files.

    /usr/bin/python3 tools/torch/bench_step.py DIR --steps N

DIR is what bench/train-inputs.ts writes: ir.json (the model, built by ir_model.py), the initial
weights (weights.safetensors, vlmc's names and layouts) and the batch (inputs.safetensors). Each
step: forward (dropout off, as on the vlmc side), masked cross-entropy, backward, an Adam (or
AdamW) step with the spec's settings (eps 1e-8 by default), the loss read back. Prints one JSON
object: the time of each step (ms) and the median after the first (warm-up) step, the loss of
each step, the peak RSS (ru_maxrss), the forward matrix-product FLOPs as PyTorch's profiler
counts them, torch's version, threads and BLAS.

PyTorch's strongest setting on a small CPU is 1 intra-op thread and OpenBLAS threads = cores
(bench/torch.ts sets OPENBLAS_NUM_THREADS and clears OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE,
which would override OpenBLAS's own CPU detection); --threads sets torch's threads (default 1).
"""
import argparse
import ctypes
import json
import os
import resource
import statistics
import struct
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import ir_model  # noqa: E402
import safetensors_np  # noqa: E402


def openblas_info():
    """The OpenBLAS core and build torch's BLAS runs on, read from the loaded library (None elsewhere)."""
    try:
        # torch loads libblas.so.3 with local symbols: open the OpenBLAS it brought in by its path
        # (the same, already loaded, library: its state and settings are torch's).
        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = {line.split()[-1] for line in f if "libopenblas" in line}
        if not paths:
            return None
        lib = ctypes.CDLL(sorted(paths)[0])
        core = lib.openblas_get_corename
        core.restype = ctypes.c_char_p
        config = lib.openblas_get_config
        config.restype = ctypes.c_char_p
        threads = lib.openblas_get_num_threads
        threads.restype = ctypes.c_int
        return {"core": core().decode(), "config": config().decode().strip(), "threads": threads()}
    except (AttributeError, OSError):
        return None


def blas_line():
    """torch's build BLAS (from torch.__config__.show()) and the OpenBLAS core it found at run time."""
    build = next((l.strip() for l in torch.__config__.show().splitlines() if "BLAS_INFO" in l), "")
    blas = build.split("BLAS_INFO=")[1].split(",")[0] if "BLAS_INFO=" in build else "unknown"
    ob = openblas_info()
    if ob:
        version = " ".join(ob["config"].split()[:2])  # "OpenBLAS 0.3.21"
        return f"{version}, core {ob['core']}, {ob['threads']} thread(s)", ob
    return f"BLAS_INFO={blas}", None


def read_weights(path):
    """{name: array} of a safetensors file, each tensor read on its own (np.fromfile), so that the
    file is never held in memory beside the arrays: the peak RSS is then the model's, not twice it."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
        out = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            begin, end = info["data_offsets"]
            dtype = np.dtype(safetensors_np.DTYPES[info["dtype"]]).newbyteorder("<")
            f.seek(8 + n + begin)
            out[name] = np.fromfile(f, dtype=dtype, count=(end - begin) // dtype.itemsize).reshape(info["shape"])
    return out


def forward_matmul_flops(model, images, tokens):
    """Forward matrix-product FLOPs by torch.profiler (mm, bmm, addmm, matmul), as seemore.py --flops counts."""
    with torch.no_grad(), torch.profiler.profile(with_flops=True) as prof:
        model(images, tokens)
    keys = ("aten::conv2d", "aten::mm", "aten::bmm", "aten::addmm", "aten::matmul")
    return int(sum(e.flops for e in prof.key_averages() if e.key in keys and e.flops))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-flops", action="store_true", help="skip the profiler's FLOP count")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    with open(os.path.join(args.dir, "ir.json"), encoding="utf-8") as f:
        ir = json.load(f)
    weights = read_weights(os.path.join(args.dir, "weights.safetensors"))
    inputs, _ = safetensors_np.read(os.path.join(args.dir, "inputs.safetensors"))
    model = ir_model.IrModel(ir, weights)
    del weights
    tokens = torch.tensor(inputs["tokens"].astype(np.int64))
    targets = torch.tensor(inputs["targets"].astype(np.int64))
    mask = torch.tensor(inputs["mask"])
    images = torch.tensor(inputs["images"]) if "images" in inputs else None

    stage = (ir.get("train") or {}).get("stages") or [{}]
    o = stage[0].get("optimizer") or {"kind": "adam", "lr": 1e-3}
    kind = o.get("kind", "adam")
    if kind not in ("adam", "adamw"):
        raise SystemExit(f"bench_step.py: the benchmark runs Adam or AdamW, the spec's first stage uses {kind}")
    wd = o.get("weight_decay", 0.01 if kind == "adamw" else 0.0)
    decay = {p["name"] for p in iter_params(ir) if p.get("decay")}
    named = model.named()
    groups = [{"params": [p for n, p in named if n in decay], "weight_decay": wd}, {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    Opt = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    opt = Opt(groups, lr=o.get("lr", 1e-3), betas=(o.get("beta1", 0.9), o.get("beta2", 0.999)), eps=o.get("eps", 1e-8))

    times, losses = [], []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = ir_model.masked_cross_entropy(model(images, tokens), targets, mask)
        loss.backward()
        opt.step()
        value = loss.item()
        times.append((time.perf_counter() - t0) * 1000)
        losses.append(value)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB
    blas, ob = blas_line()
    out = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "blas": blas,
        "openblas": ob,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS")},
        "params": ir_model.count_params(ir),
        "times_ms": [round(t, 2) for t in times],
        "ms_per_step": statistics.median(times[1:]) if len(times) > 1 else times[0],
        "losses": losses,
        "peak_rss_mb": round(peak, 1),
        "forward_matmul_flops": None if args.no_flops else forward_matmul_flops(model, images, tokens),
    }
    print(json.dumps(out))


def iter_params(ir):
    def walk(layers):
        for l in layers:
            yield from l["params"]
            yield from walk(l.get("children") or [])

    for m in ir["modules"].values():
        if m:
            yield from walk(m["layers"])


if __name__ == "__main__":
    main()
