"""The chapter's architectures as multiparam.nn specs, and a NumPy reference.

The same spec gives the same canonical names on every backend: these
expectations are written once and checked against all of them.
"""
import numpy as np

import multiparam as mp

MLP_SHAPES = {"0.weight": (8, 4), "0.bias": (8,), "2.weight": (1, 8), "2.bias": (1,)}
MLP_DEFERRED = {"0.weight": (8, None), "0.bias": (8,), "2.weight": (1, None), "2.bias": (1,)}


def mlp():
    return mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), mp.nn.Dense(1))


def block1():
    return mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), mp.nn.Dense(4), mp.nn.ReLU())


def block2():
    net = mp.nn.Sequential()
    for i in range(4):
        net.add(block1(), name=f"block {i}")   # torch: net.add_module(f'block {i}', block1())
    return net


def rgnet():
    return mp.nn.Sequential(block2(), mp.nn.Dense(1))


RGNET_SHAPES = {}
for _i in range(4):
    RGNET_SHAPES.update({f"0.block {_i}.0.weight": (8, 4), f"0.block {_i}.0.bias": (8,),
                         f"0.block {_i}.2.weight": (4, 8), f"0.block {_i}.2.bias": (4,)})
RGNET_SHAPES.update({"1.weight": (1, 4), "1.bias": (1,)})


def shared_net():
    shared = mp.nn.Dense(8)
    return mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), shared, mp.nn.ReLU(), shared,
                            mp.nn.ReLU(), mp.nn.Dense(1))


SHARED_SHAPES = {"0.weight": (8, 4), "0.bias": (8,), "2.weight": (8, 8), "2.bias": (8,),
                 "6.weight": (1, 8), "6.bias": (1,)}
SHARED_TIES = [("2.weight", "4.weight"), ("2.bias", "4.bias")]


def tied_1x1():
    """Seed 004: nn.Linear(1, 1, bias=False) used twice."""
    linear = mp.nn.Dense(1, use_bias=False, in_features=1)
    return mp.nn.Sequential(linear, linear)


def numpy_forward(m, x):
    """Forward of a Sequential of Dense/ReLU from canonical values alone:
    the check that canonical layout really is (out, in)."""
    def run(layer, h):
        if layer.kind == "Sequential":
            for child in layer.children():
                h = run(child, h)
            return h
        if layer.kind == "ReLU":
            return np.maximum(h, 0)
        if layer.kind == "Dense":
            p = layer.params()
            h = h @ p["weight"].value.T.astype(np.float64)
            return h + p["bias"].value if "bias" in p else h
        raise AssertionError(f"numpy_forward cannot run {layer.kind}")
    return run(m.root, np.asarray(x, dtype=np.float64))


def numpy_grads(m, x):
    """Gradients of sum(outputs) for a Sequential of Dense/ReLU, by hand;
    a parameter used twice gets the sum of both uses."""
    layers = [l for l in m.root.children()]
    acts, h = [], np.asarray(x, dtype=np.float64)
    for l in layers:
        acts.append(h)
        if l.kind == "Dense":
            p = l.params()
            h = h @ p["weight"].value.T + (p["bias"].value if "bias" in p else 0)
        else:
            h = np.maximum(h, 0)
    g = np.ones_like(h)
    grads = {}
    for l, a in zip(reversed(layers), reversed(acts)):
        if l.kind == "Dense":
            p = l.params()
            w = p["weight"]
            grads[w.name] = grads.get(w.name, 0) + g.T @ a
            if "bias" in p:
                grads[p["bias"].name] = grads.get(p["bias"].name, 0) + g.sum(0)
            g = g @ w.value
        else:
            g = g * (a > 0)
    return grads
