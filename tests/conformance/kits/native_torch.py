"""The chapter's PyTorch idioms (seeds 000, 003, 004 and the pytorch tab of 001)."""
import numpy as np
import torch
from torch import nn

from . import NativeCase


def read(m, name):
    # the chapter: net[2].bias.data (a parametrized weight reads through its property)
    path, _, attr = name.rpartition(".")
    module = m.native.get_submodule(path) if path else m.native
    return getattr(module, attr).detach().numpy().copy()


def forward(m, x):
    with torch.no_grad():
        return m.native(torch.as_tensor(np.asarray(x), dtype=torch.float32)).numpy()


def count(m):
    return sum(p.numel() for p in m.native.parameters() if p.requires_grad)


def grads(m, x):
    net = m.native
    net.zero_grad(set_to_none=True)
    net(torch.as_tensor(np.asarray(x), dtype=torch.float32)).sum().backward()
    out = {name: p.grad.numpy().copy() for name, p in net.named_parameters()}
    net.zero_grad(set_to_none=True)
    return out


def chapter_models():
    torch.manual_seed(0)
    X = torch.rand(size=(2, 4))
    cases = []

    net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))
    cases.append(NativeCase("mlp (lazy, d2l 001)", net, X,
                            {"0.weight": (8, 4), "0.bias": (8,), "2.weight": (1, 8), "2.bias": (1,)}))

    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    cases.append(NativeCase("mlp (d2l 000)", net, X,
                            {"0.weight": (8, 4), "0.bias": (8,), "2.weight": (1, 8), "2.bias": (1,)}))

    def block1():
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU())

    def block2():
        net = nn.Sequential()
        for i in range(4):
            net.add_module(f"block {i}", block1())
        return net

    rgnet = nn.Sequential(block2(), nn.Linear(4, 1))
    shapes = {}
    for i in range(4):
        shapes.update({f"0.block {i}.0.weight": (8, 4), f"0.block {i}.0.bias": (8,),
                       f"0.block {i}.2.weight": (4, 8), f"0.block {i}.2.bias": (4,)})
    shapes.update({"1.weight": (1, 4), "1.bias": (1,)})
    cases.append(NativeCase("rgnet (d2l 000)", rgnet, X, shapes))

    shared = nn.LazyLinear(8)
    net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.LazyLinear(1))
    cases.append(NativeCase("shared (d2l 001)", net, X,
                            {"0.weight": (8, 4), "0.bias": (8,), "2.weight": (8, 8), "2.bias": (8,),
                             "6.weight": (1, 8), "6.bias": (1,)},
                            ties=[("2.weight", "4.weight"), ("2.bias", "4.bias")]))

    linear = nn.Linear(1, 1, bias=False)
    net = nn.Sequential(linear, linear)
    cases.append(NativeCase("tied 1x1 (seed 004)", net, torch.ones(1, 1), {"0.weight": (1, 1)},
                            ties=[("0.weight", "1.weight")]))

    class MyModel(nn.Module):   # seed 004: only nn.Parameter registers
        def __init__(self):
            super().__init__()
            self.weight1 = nn.Parameter(torch.rand(20, 20))
            self.weight2 = torch.rand(20, 20)

        def forward(self, x):
            return x @ self.weight1

    cases.append(NativeCase("custom nn.Parameter (seed 004)", MyModel(), torch.rand(2, 20),
                            {"weight1": (20, 20)}))
    return cases


def sgd_step(m, x, lr):
    """One native SGD step on sum(outputs); the optimizer is built after the tie."""
    net = m.native
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    opt.zero_grad()
    net(torch.as_tensor(np.asarray(x), dtype=torch.float32)).sum().backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
