#!/usr/bin/env python
"""Access and collect-all: multiparam against the framework's own idiom.

One backend per run (frameworks are not mixed in one process):

    python benchmarks/bench_access.py --backend torch [--repeat 30] [--json out.json]

Backends: torch, jax (Flax linen), tensorflow (Keras 3), mxnet (Gluon; run
it with the MXNet environment's interpreter).  Measurements:

* collect-all on a 500-layer model (500 Dense 16->16, 1000 tensors):
  - warm: ``m.named_parameters()`` on a handle whose index is cached,
  - first look (wrap): ``mp.wrap(net).named_parameters()`` and
    ``mp.wrap(net).shapes()``, a fresh handle each time (issue 14's target:
    within 2x of the native listing); ``shapes()`` also against the native
    listing of shapes (torch ``{n: tuple(p.shape) for n, p in
    net.named_parameters()}``, Keras ``{v.path: tuple(v.shape) for v in
    net.weights}``, Flax ``{k: v.shape for k, v in flatten_dict(...).items()}``,
    Gluon ``{n: p.shape for n, p in net.collect_params().items()}``),
  - cold (refresh): ``m.refresh(); m.named_parameters()``,
  against the native collect-all (torch ``dict(net.named_parameters())``,
  Keras ``[(v.path, v) for v in net.weights]``, Flax
  ``flatten_dict(variables['params'])``, Gluon ``net.collect_params()``);
* value of one 64 MiB float32 parameter (Dense 4096x4096):
  ``m["0.weight"].value`` against the native read (torch
  ``net[0].weight.detach().numpy()``, Keras ``layer.kernel.numpy()``, Flax
  ``np.asarray(variables['params']['layers_0']['kernel'])``, Gluon
  ``net[0].weight.data().asnumpy()``), plus whether the value is zero-copy.

Timing is timeit-style: each measurement is calibrated to a loop of ``number``
calls taking ~5 ms (short loops, so that on a shared machine some escape
interruption), then native and multiparam loops alternate ``repeat`` times;
times are per call, min (best of N) and median.  The ratio is
multiparam / native on the best-of-N times; in parentheses, the median of the
ratios of adjacent native/multiparam loops (robust when the machine is
shared).  Targets are checked on the best-of-N ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)  # `import multiparam` is this checkout's package

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import multiparam as mp  # noqa: E402
from benchmarks.timing import compare  # noqa: E402

N_LAYERS = 500
WIDTH = 16
BIG = 4096  # 4096 * 4096 * 4 bytes = 64 MiB

TARGET_COLLECT = 2.0
TARGET_VALUE = 1.2


# ---------------------------------------------------------------------------
# per-backend models and native idioms
# ---------------------------------------------------------------------------
class Case:
    """What one backend provides to the benchmark.

    many:          the 500-layer native model; wrap_many() wraps it.
    collect():     the framework's collect-all idiom.
    big:           the one-parameter 64 MiB model; wrap_big() wraps it.
    read():        the framework's read of that parameter as NumPy.
    storage():     a NumPy view of the parameter's own storage, or None when
                   the framework cannot give one (Keras, MXNet copy).
    layout_T:      True when the native array is (in, out): canonical = .T
    """

    layout_T = False

    def storage(self):
        return None


def case_torch() -> Case:
    import torch
    from torch import nn

    torch.manual_seed(0)
    c = Case()
    c.framework = f"torch {torch.__version__}"
    c.many = nn.Sequential(*[nn.Linear(WIDTH, WIDTH) for _ in range(N_LAYERS)])
    c.wrap_many = lambda: mp.wrap(c.many)
    c.collect = lambda: dict(c.many.named_parameters())
    c.native_collect_idiom = "dict(net.named_parameters())"
    c.collect_shapes = lambda: {n: tuple(p.shape) for n, p in c.many.named_parameters()}
    c.native_shapes_idiom = "{n: tuple(p.shape) for n, p in net.named_parameters()}"
    c.big = nn.Sequential(nn.Linear(BIG, BIG, bias=False))
    c.wrap_big = lambda: mp.wrap(c.big)
    c.read = lambda: c.big[0].weight.detach().numpy()
    c.native_read_idiom = "net[0].weight.detach().numpy()"
    c.storage = lambda: c.big[0].weight.data.numpy()
    return c


def case_jax() -> Case:
    import jax
    import jax.numpy as jnp
    import flax
    from flax import linen as nn
    from flax import traverse_util

    c = Case()
    c.framework = f"jax {jax.__version__} / flax {flax.__version__}"
    c.many = nn.Sequential([nn.Dense(WIDTH) for _ in range(N_LAYERS)])
    # init one layer under jit and replicate its structure: 500 un-jitted
    # inits would take most of the time budget; values do not matter here
    key = jax.random.PRNGKey(0)
    keys = jax.random.split(key, N_LAYERS)
    dense = nn.Dense(WIDTH)
    init1 = jax.jit(lambda k: dense.init(k, jnp.zeros((1, WIDTH)))["params"])
    c.many_vars = {"params": {f"layers_{i}": init1(keys[i]) for i in range(N_LAYERS)}}
    c.wrap_many = lambda: mp.wrap(c.many, variables=c.many_vars)
    c.collect = lambda: traverse_util.flatten_dict(c.many_vars["params"])
    c.native_collect_idiom = "flatten_dict(variables['params'])"
    c.collect_shapes = lambda: {k: v.shape for k, v in traverse_util.flatten_dict(c.many_vars["params"]).items()}
    c.native_shapes_idiom = "{k: v.shape for k, v in flatten_dict(variables['params']).items()}"
    c.big = nn.Sequential([nn.Dense(BIG, use_bias=False)])
    c.big_vars = jax.jit(c.big.init)(key, jnp.zeros((1, BIG)))
    c.wrap_big = lambda: mp.wrap(c.big, variables=c.big_vars)
    c.read = lambda: np.asarray(c.big_vars["params"]["layers_0"]["kernel"])
    c.native_read_idiom = "np.asarray(variables['params']['layers_0']['kernel'])"
    c.storage = c.read  # zero-copy on CPU: the leaf's own buffer
    c.layout_T = True
    return c


def case_tensorflow() -> Case:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    c = Case()
    c.framework = f"tensorflow {tf.__version__} / keras {keras.__version__}"
    c.many = keras.Sequential([keras.layers.Dense(WIDTH) for _ in range(N_LAYERS)])
    c.many.build((None, WIDTH))
    c.wrap_many = lambda: mp.wrap(c.many)
    c.collect = lambda: [(v.path, v) for v in c.many.weights]
    c.native_collect_idiom = "[(v.path, v) for v in net.weights]"
    c.collect_shapes = lambda: {v.path: tuple(v.shape) for v in c.many.weights}
    c.native_shapes_idiom = "{v.path: tuple(v.shape) for v in net.weights}"
    c.big = keras.Sequential([keras.layers.Dense(BIG, use_bias=False)])
    c.big.build((None, BIG))
    layer = c.big.layers[0]
    c.wrap_big = lambda: mp.wrap(c.big)
    c.read = lambda: layer.kernel.numpy()
    c.native_read_idiom = "layer.kernel.numpy()"
    c.layout_T = True
    return c


def case_mxnet() -> Case:
    import mxnet as mx
    from mxnet.gluon import nn

    mx.random.seed(0)
    c = Case()
    c.framework = f"mxnet {mx.__version__}"
    c.many = nn.Sequential()
    for _ in range(N_LAYERS):
        c.many.add(nn.Dense(WIDTH, in_units=WIDTH))
    c.many.initialize()
    c.wrap_many = lambda: mp.wrap(c.many)
    c.collect = lambda: c.many.collect_params()
    c.native_collect_idiom = "net.collect_params()"
    c.collect_shapes = lambda: {n: p.shape for n, p in c.many.collect_params().items()}
    c.native_shapes_idiom = "{n: p.shape for n, p in net.collect_params().items()}"
    c.big = nn.Sequential()
    c.big.add(nn.Dense(BIG, in_units=BIG, use_bias=False))
    c.big.initialize()
    c.wrap_big = lambda: mp.wrap(c.big)
    c.read = lambda: c.big[0].weight.data().asnumpy()
    c.native_read_idiom = "net[0].weight.data().asnumpy()"
    return c


CASES = {"torch": case_torch, "jax": case_jax, "tensorflow": case_tensorflow, "mxnet": case_mxnet}


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------
def run(backend: str, repeat: int, budget: float) -> dict:
    t_setup = time.perf_counter()
    c = CASES[backend]()
    m = c.wrap_many()
    big = c.wrap_big()
    setup_s = time.perf_counter() - t_setup

    # correctness first: both sides see the same 1000 tensors and value
    names = m.named_parameters()
    native = c.collect()
    native_n = len(list(native.keys()) if hasattr(native, "keys") else native)
    assert len(names) == 2 * N_LAYERS == native_n, (len(names), native_n)
    shapes = c.wrap_many().shapes()
    assert list(shapes) == list(names) and set(shapes.values()) == {(WIDTH, WIDTH), (WIDTH,)}, shapes
    v, r = big["0.weight"].value, c.read()
    assert v.shape == (BIG, BIG) and v.dtype == np.float32 and not v.flags.writeable
    assert np.array_equal(v, r.T if c.layout_T else r)

    def cold_wrap():
        return c.wrap_many().named_parameters()

    def cold_shapes():
        return c.wrap_many().shapes()

    def cold_refresh():
        m.refresh()
        return m.named_parameters()

    rows = []

    def add(measurement, native_idiom, mp_idiom, res, target):
        res.update(measurement=measurement, native_idiom=native_idiom, multiparam_idiom=mp_idiom,
                   target=target,
                   status=("info" if target is None else
                           "MET" if res["ratio"] <= target else "MISSED"))
        rows.append(res)

    add("collect-all, warm", c.native_collect_idiom, "m.named_parameters()",
        compare(c.collect, m.named_parameters, repeat, budget), TARGET_COLLECT)
    add("collect-all, first look (wrap)", c.native_collect_idiom, "mp.wrap(net).named_parameters()",
        compare(c.collect, cold_wrap, repeat, budget), TARGET_COLLECT)
    add("shapes, first look (wrap)", c.native_collect_idiom, "mp.wrap(net).shapes()",
        compare(c.collect, cold_shapes, repeat, budget), TARGET_COLLECT)
    # the same against the framework's own listing of shapes (reading a
    # shape costs on both sides)
    add("shapes, first look (wrap), vs native shapes", c.native_shapes_idiom, "mp.wrap(net).shapes()",
        compare(c.collect_shapes, cold_shapes, repeat, budget), TARGET_COLLECT)
    add("collect-all, cold (refresh)", c.native_collect_idiom, "m.refresh(); m.named_parameters()",
        compare(c.collect, cold_refresh, max(5, repeat // 3), budget), None)
    add("value 64 MiB", c.native_read_idiom, 'm["0.weight"].value',
        compare(c.read, lambda: big["0.weight"].value, repeat, budget), TARGET_VALUE)
    p = big["0.weight"]
    add("value 64 MiB, held handle", c.native_read_idiom, "p.value",
        compare(c.read, lambda: p.value, repeat, budget), None)

    store = c.storage()
    mp_view = big["0.weight"].value
    zero_copy = {
        "native_zero_copy": bool(store is not None and np.shares_memory(c.read(), store)),
        "multiparam_zero_copy": bool(store is not None and np.shares_memory(mp_view, store)),
    }
    return {
        "backend": backend, "framework": c.framework, "python": platform.python_version(),
        "numpy": np.__version__, "multiparam": os.path.dirname(mp.__file__),
        "setup_seconds": setup_s, "repeat": repeat,
        "rows": rows, **zero_copy,
    }


def fmt_time(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} µs"


def fmt_ratio(r: float) -> str:
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x"


def print_table(result: dict) -> None:
    print(f"\n{result['backend']}: {result['framework']}, numpy {result['numpy']}, "
          f"python {result['python']} (setup {result['setup_seconds']:.1f} s)")
    head = ("measurement", "native (min / median)", "multiparam (min / median)",
            "ratio (paired median)", "target", "")
    lines = [head]
    for r in result["rows"]:
        lines.append((
            r["measurement"],
            f"{fmt_time(r['native_min'])} / {fmt_time(r['native_median'])}",
            f"{fmt_time(r['multiparam_min'])} / {fmt_time(r['multiparam_median'])}",
            f"{fmt_ratio(r['ratio'])} ({fmt_ratio(r['ratio_median'])})",
            "-" if r["target"] is None else f"<= {r['target']}x",
            r["status"],
        ))
    widths = [max(len(l[i]) for l in lines) for i in range(len(head))]
    for i, l in enumerate(lines):
        print("  ".join(s.ljust(w) for s, w in zip(l, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    zc = "zero-copy" if result["multiparam_zero_copy"] else "copy"
    nzc = "zero-copy" if result["native_zero_copy"] else "copy"
    print(f"value: multiparam {zc}, native read {nzc}"
          + ("" if result["native_zero_copy"] else " (the framework offers no view)"))
    print("native idioms: " + result["rows"][0]["native_idiom"] + "; "
          + result["rows"][-1]["native_idiom"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", required=True, choices=sorted(CASES))
    ap.add_argument("--repeat", type=int, default=60, help="timed loops per side (default 60)")
    ap.add_argument("--budget", type=float, default=6.0,
                    help="seconds per measurement before stopping early (default 6)")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    ap.add_argument("--strict", action="store_true", help="exit with status 1 when a target is missed")
    args = ap.parse_args(argv)
    result = run(args.backend, args.repeat, args.budget)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, default=lambda o: o.item() if isinstance(o, np.generic) else str(o))
    print_table(result)
    missed = [r["measurement"] for r in result["rows"] if r["status"] == "MISSED"]
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
