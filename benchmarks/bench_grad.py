#!/usr/bin/env python
"""Gradients: ``m.grad(X)`` against the framework's own autograd idiom.

    python benchmarks/bench_grad.py --backend torch [--repeat 20]

The model is an MLP on a batch of 256: 1024 inputs, four hidden layers of
1024 with ReLU, one output; the loss is the sum of the outputs.  Both sides
return every parameter's gradient as a NumPy array (multiparam always does;
the native idiom converts with the framework's own call), so the comparison
is like for like.  The native idioms, none jit-compiled (m.grad is not):

- torch: ``net.zero_grad(); net(X).sum().backward(); [p.grad.numpy() ...]``
- jax: ``jax.grad(lambda p: net.apply(p, X).sum())(params)`` then ``np.asarray``
- tensorflow: ``GradientTape`` over ``trainable_variables``, then ``.numpy()``
- mxnet: ``autograd.record()`` + ``backward()``, then ``p.grad().asnumpy()``

Target: multiparam within 1.1x of the native idiom (ratio = multiparam / native).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import multiparam as mp  # noqa: E402
from benchmarks.timing import compare  # noqa: E402

BATCH, WIDTH, DEPTH = 256, 1024, 4
TARGET = 1.1


def spec():
    layers = []
    for _ in range(DEPTH):
        layers += [mp.nn.Dense(WIDTH), mp.nn.ReLU()]
    return mp.nn.Sequential(*layers, mp.nn.Dense(1))


def native_idiom(m, X):
    """The framework's own way to get every gradient as NumPy arrays."""
    b = m.backend
    if b == "torch":
        import torch

        net, x = m.native, torch.as_tensor(X)

        def run():
            net.zero_grad(set_to_none=True)
            net(x).sum().backward()
            return [p.grad.numpy() for p in net.parameters()]
    elif b == "jax":
        import jax
        import jax.numpy as jnp

        net, variables, x = m.native, m.flax.variables, jnp.asarray(X)

        def run():
            g = jax.grad(lambda p: net.apply({"params": p}, x).sum())(variables["params"])
            return [np.asarray(l) for l in jax.tree_util.tree_leaves(g)]
    elif b == "tensorflow":
        import tensorflow as tf

        net, x = m.native, tf.constant(X)

        def run():
            with tf.GradientTape() as tape:
                y = tf.reduce_sum(net(x))
            return [g.numpy() for g in tape.gradient(y, net.trainable_variables)]
    elif b == "mxnet":
        import mxnet as mx
        from mxnet import autograd

        net, x = m.native, mx.nd.array(X)
        params = list(net.collect_params().values())

        def run():
            with autograd.record():
                y = net(x).sum()
            y.backward()
            return [p.grad().asnumpy() for p in params]
    else:
        raise SystemExit(f"no native idiom for {b}")
    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", required=True, choices=mp.available_backends())
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    X = np.random.default_rng(0).uniform(size=(BATCH, WIDTH)).astype(np.float32)
    m = mp.wrap(spec(), backend=args.backend, sample_input=X)
    native = native_idiom(m, X)
    ours = lambda: m.grad(X)
    # same numbers first: a fast wrong answer is no answer
    ref, got = native(), list(ours().values())
    assert len(ref) == len(got)
    r = compare(native, ours, repeat=args.repeat, budget=120.0, batch=0.02)
    row = {"backend": args.backend, "measurement": f"m.grad, MLP {DEPTH}x{WIDTH}, batch {BATCH}",
           "native_s": r["native_min"], "multiparam_s": r["multiparam_min"], "ratio": r["ratio"],
           "target": TARGET, "met": r["ratio"] <= TARGET}
    print(f"{row['backend']:10s} {row['measurement']}: native {row['native_s'] * 1e3:.2f} ms, "
          f"multiparam {row['multiparam_s'] * 1e3:.2f} ms, ratio {row['ratio']:.3f} "
          f"(target <= {TARGET}: {'MET' if row['met'] else 'MISSED'})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([row], f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
