"""The chapter's exercise: train an MLP with a shared layer, watching each
layer's parameters and gradients, on any backend, with multiparam calls only.

    python examples/train_shared_mlp.py --backend jax

The model is the chapter's: Dense(8), ReLU, shared Dense(8), ReLU, the same
shared Dense(8), ReLU, Dense(1).  Training is plain gradient descent on a
mean squared error: ``m.grad`` (the framework's own autograd), then
``p.set(p.value - lr * g)``.  The two uses of the shared layer are one
parameter, so they stay identical, and its gradient is the sum of both uses.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import multiparam as mp  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default=mp.get_backend(), choices=mp.available_backends())
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=0.05)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(64, 4)).astype(np.float32)
    y = (np.sin(X).sum(axis=1, keepdims=True)).astype(np.float32)   # a target to fit

    shared = mp.nn.Dense(8)
    spec = mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), shared, mp.nn.ReLU(), shared,
                            mp.nn.ReLU(), mp.nn.Dense(1))
    m = mp.wrap(spec, backend=args.backend, sample_input=X)
    m.init(mp.init.xavier_uniform(), seed=0)     # the same start on every backend
    print(f"backend {m.backend}: {m.num_parameters()} parameters; tied: {m.ties()}")

    for step in range(args.steps + 1):
        grads = m.grad(X, loss="mse", target=y)
        if step % 50 == 0:
            loss = float(np.mean((mp.param.as_numpy(m(X)) - y) ** 2))
            print(f"\nstep {step:4d}  loss {loss:.5f}")
            print(f"  {'parameter':10s} {'|param|':>9s} {'|grad|':>9s}")
            for name, p in m.named_parameters().items():
                print(f"  {name:10s} {np.linalg.norm(p.value):9.4f} {np.linalg.norm(grads[name]):9.4f}")
        for name, p in m.named_parameters().items():
            p.set(p.value - args.lr * grads[name])

    same = np.array_equal(m["2.weight"].value, m["4.weight"].value)
    print(f"\nlayers 2 and 4 still identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
