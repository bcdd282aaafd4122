"""The chapter's PyTorch idioms (seeds 000, 003, 004 and the pytorch tab of 001)."""
import numpy as np
import torch
from torch import nn

from . import NativeCase, RealModel, exact_sum


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


# -- real models: written by PyTorch's authors -------------------------------------------
# torch's own collect-all is parameters() plus the running statistics buffers;
# other buffers (BatchNorm's num_batches_tracked, an int64 step counter in
# state_dict) are not parameters, and neither torch's parameters() nor
# multiparam counts them.
_STATS = ("running_mean", "running_var")


def native_arrays(m):
    net = m.native
    out = [(n, p.detach().numpy()) for n, p in net.named_parameters()]
    out += [(n, b.numpy()) for n, b in net.named_buffers() if n.rpartition(".")[2] in _STATS]
    return out


def infer(m, x):
    net = m.native
    net.eval()
    with torch.no_grad():
        y = net(x)
    ys = y if isinstance(y, tuple) else (y,)          # LSTM: output, (h_n, c_n)
    flat = []
    for t in ys:
        flat.extend(t if isinstance(t, tuple) else (t,))
    return [t.numpy() for t in flat]


def _real(label, make, x):
    def fresh(seed):
        torch.manual_seed(seed)
        net = make()
        with torch.no_grad():        # running statistics as training would leave them
            for name, b in net.named_buffers():
                if name.rpartition(".")[2] == "running_mean":
                    b.normal_()
                elif name.rpartition(".")[2] == "running_var":
                    b.uniform_(0.5, 2.0)
        return net, {}

    net, _ = fresh(0)
    params = list(net.parameters())
    stats = [b for n, b in net.named_buffers() if n.rpartition(".")[2] in _STATS]
    trainable = sum(p.numel() for p in params if p.requires_grad)
    total = sum(p.numel() for p in params) + sum(b.numel() for b in stats)
    value_sum = exact_sum([p.detach().numpy() for p in params] + [b.numpy() for b in stats])
    names = [n for n, _ in net.named_parameters()] + \
        [n for n, _ in net.named_buffers() if n.rpartition(".")[2] in _STATS]
    counters = [n for n, _ in net.named_buffers() if n.rpartition(".")[2] not in _STATS]
    return RealModel(label, net, x, trainable, total, value_sum, names, fresh,
                     not_parameters=counters)


def real_models():
    torch.manual_seed(100)
    cases = [
        _real("nn.TransformerEncoderLayer",
              lambda: nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32,
                                                 batch_first=True, dropout=0.0).eval(),
              torch.rand(2, 5, 16)),
        _real("nn.LSTM (2 layers)", lambda: nn.LSTM(8, 16, num_layers=2, batch_first=True),
              torch.rand(2, 5, 8)),
        # torch's own layers with BatchNorm buffers (num_batches_tracked included)
        _real("nn.Sequential CNN with BatchNorm2d",
              lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                    nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 10)).eval(),
              torch.rand(2, 3, 8, 8)),
    ]
    return cases


# -- layers beyond Dense (tests/conformance/test_layers.py) --------------------------------
BN_MOMENTUM_WEIGHS_OLD = False      # torch: running = (1 - momentum) * running + momentum * batch


def bn_momentum(layer):
    return layer.momentum


def bn_train_step(m, x):
    """One training-mode forward of Sequential(BatchNorm); the new running mean."""
    net = m.native
    net.train()
    with torch.no_grad():
        net(torch.as_tensor(np.asarray(x, dtype=np.float32)))
    return net[0].running_mean.detach().numpy().copy()


def native_cnn():
    """Conv -> Flatten -> Dense written in torch (NCHW): (model, sample, conv path, dense path)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 5 * 4, 3))
    return net, torch.rand(2, 1, 5, 4), "0", "2", {}
