#!/usr/bin/env python
"""Initialisation: ``m.init(mp.init.xavier_uniform())`` against the framework's
own idiom, on about 100M parameters (6 Dense 4096 -> 4096 layers, 400 MB).

One backend per run (frameworks are not mixed in one process):

    python benchmarks/bench_init.py --backend torch [--repeat 3] [--layers 6] [--json out.json]

Native idioms (each ends when the values are really in place):

* torch: ``nn.init.xavier_uniform_`` / ``zeros_`` over the Linear modules;
* tensorflow: ``keras.initializers.GlorotUniform(seed)(shape)`` then
  ``kernel.assign``, ``bias.assign(zeros)`` per layer;
* jax: Flax re-init, ``module.init(key, x)`` of a Sequential of
  ``nn.Dense(kernel_init=xavier_uniform())``, blocked until ready;
* mxnet: ``net.initialize(mx.init.Xavier(), force_reinit=True)`` then
  ``mx.nd.waitall()``.

multiparam is timed in portable mode (NumPy float64 draws, bit-identical on
every backend) and native mode (the framework's own random ops).  Runs of the
three alternate; times are the best of ``repeat`` runs; the ratio is multiparam / native idiom.
Targets: native mode within 1.2x, portable mode within 3x.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import multiparam as mp  # noqa: E402

WIDTH = 4096
TARGET_NATIVE = 1.2
TARGET_PORTABLE = 3.0


def spec(layers: int):
    # a fresh Dense object per layer: one object used twice would be a tie
    return mp.nn.Sequential(*[mp.nn.Dense(WIDTH, in_features=WIDTH) for _ in range(layers)])


# -- per backend: (native idiom, a function that waits for the values) -------------------------
def torch_case(layers):
    import torch
    from torch import nn

    m = mp.wrap(spec(layers), backend="torch")
    net = m.native

    def idiom():
        for mod in net.modules():
            if isinstance(mod, nn.Linear):
                nn.init.xavier_uniform_(mod.weight)
                nn.init.zeros_(mod.bias)

    torch.set_grad_enabled(False)
    return m, idiom, lambda: None


def tensorflow_case(layers):
    import torch  # noqa: F401  (the project's rule: torch before tensorflow, when both exist)
    import keras

    m = mp.wrap(spec(layers), backend="tensorflow")
    net = m.native

    def idiom():
        for i, layer in enumerate(net.layers):
            layer.kernel.assign(keras.initializers.GlorotUniform(seed=i)(layer.kernel.shape))
            layer.bias.assign(keras.ops.zeros(layer.bias.shape))

    return m, idiom, lambda: None


def jax_case(layers):
    import jax
    import jax.numpy as jnp
    from flax import linen as nn

    m = mp.wrap(spec(layers), backend="jax")
    native = nn.Sequential([nn.Dense(WIDTH, kernel_init=nn.initializers.xavier_uniform())
                            for _ in range(layers)])
    x = jnp.zeros((1, WIDTH), jnp.float32)
    holder = {}

    def idiom():
        holder["v"] = native.init(jax.random.PRNGKey(0), x)
        jax.block_until_ready(holder["v"])

    def wait():
        jax.block_until_ready(m.flax.variables)

    return m, idiom, wait


def mxnet_case(layers):
    import mxnet as mx

    m = mp.wrap(spec(layers), backend="mxnet")
    net = m.native

    def idiom():
        net.initialize(mx.init.Xavier(), force_reinit=True)
        mx.nd.waitall()

    return m, idiom, mx.nd.waitall


CASES = {"torch": torch_case, "tensorflow": tensorflow_case, "jax": jax_case, "mxnet": mxnet_case}


def timed(fn) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", required=True, choices=sorted(CASES))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)

    m, idiom, wait = CASES[args.backend](args.layers)
    n = m.num_parameters()
    xavier = mp.init.xavier_uniform()

    def portable():
        m.init(xavier, seed=0)
        wait()

    def native():
        m.init(xavier, seed=0, mode="native")
        wait()

    for fn in (idiom, portable, native):   # warm-up: first-call costs (allocation, tracing)
        fn()
    # interleaved, so a busy machine slows all three alike; best of `repeat` each
    t_idiom = t_portable = t_native = float("inf")
    for _ in range(args.repeat):
        t_idiom = min(t_idiom, timed(idiom))
        t_portable = min(t_portable, timed(portable))
        t_native = min(t_native, timed(native))
    r_portable, r_native = t_portable / t_idiom, t_native / t_idiom

    print(f"backend {args.backend}: xavier_uniform on {n:,} parameters "
          f"({args.layers} x Dense {WIDTH}x{WIDTH}), best of {args.repeat}")
    print(f"  native idiom      {t_idiom * 1e3:9.1f} ms")
    print(f"  multiparam native {t_native * 1e3:9.1f} ms   ratio {r_native:5.2f}x "
          f"(target <= {TARGET_NATIVE}x: {'ok' if r_native <= TARGET_NATIVE else 'MISSED'})")
    print(f"  multiparam portable {t_portable * 1e3:7.1f} ms   ratio {r_portable:5.2f}x "
          f"(target <= {TARGET_PORTABLE}x: {'ok' if r_portable <= TARGET_PORTABLE else 'MISSED'})")
    result = {"backend": args.backend, "parameters": n, "idiom_s": t_idiom, "native_s": t_native,
              "portable_s": t_portable, "native_ratio": r_native, "portable_ratio": r_portable,
              "numpy": np.__version__, "python": platform.python_version(),
              "cpu_count": os.cpu_count()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
