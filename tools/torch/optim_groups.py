# Reference values for runtime/train's optimizers (test/train-optim.test.ts): PyTorch's SGD (with
# momentum, plain and Nesterov, with weight decay) and AdamW on one parameter tensor, fed a fixed
# sequence of gradients, with the learning rate changed each step as a schedule would.
# Run: /usr/bin/python3 tools/torch/optim_groups.py > test/fixtures/train/optim-torch.json
import json
import torch

torch.set_default_dtype(torch.float32)
p0 = [0.5, -1.25, 2.0, 0.0]
grads = [[0.1, -0.2, 0.3, 0.05], [-0.4, 0.1, 0.0, 0.2], [0.25, 0.25, -0.5, -0.1], [0.0, -0.3, 0.6, 0.4]]
lrs = [0.1, 0.05, 0.08, 0.02]

def run(make):
    p = torch.nn.Parameter(torch.tensor(p0))
    opt = make([p])
    out = []
    for g, lr in zip(grads, lrs):
        for group in opt.param_groups:
            group["lr"] = lr
        p.grad = torch.tensor(g)
        opt.step()
        out.append([float(x) for x in p.detach()])
    return out

cases = {
    "sgd_momentum": {"args": {"kind": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 0.01}, "steps": run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01))},
    "sgd_nesterov": {"args": {"kind": "sgd", "lr": 0.1, "momentum": 0.8, "nesterov": True, "weight_decay": 0.0}, "steps": run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.8, nesterov=True))},
    "adamw": {"args": {"kind": "adamw", "lr": 0.1, "beta1": 0.8, "beta2": 0.95, "eps": 1e-6, "weight_decay": 0.1}, "steps": run(lambda ps: torch.optim.AdamW(ps, lr=0.1, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1))},
}
print(json.dumps({"torch": torch.__version__, "p0": p0, "grads": grads, "lrs": lrs, "cases": cases}, indent=1))
