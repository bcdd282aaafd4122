#!/usr/bin/env python
"""Moving ~1 GiB of parameters: multiparam against the memory-bandwidth bound.

    python benchmarks/bench_transfer.py [--mib 1024] [--repeat 3] [--json out.json] [--profile]

Run with the interpreter that has torch, jax and tensorflow (torch is
imported first).  The MXNet side runs in MXNet's own environment
(``$MULTIPARAM_MXNET_PYTHON``, else ``.tox/mxnet-worker/bin/python``) as a
small subprocess that builds its model with ``mp.nn`` and times ``mp.load``
of the file written here; it measures its own NumPy bound in that process.

The model: ``--mib / 64`` layers of ``Dense(4096, in_features=4096)`` with
biases (16 layers = 16 x 64 MiB + 16 x 16 KiB of float32), built with
``mp.nn`` on torch and on each destination.  Measured, best of
``--repeat`` runs after one warm-up (this machine's first touch of fresh
memory is slow, so every timed loop is warm):

* bound:  ``np.copyto(dst, src)`` of the same number of bytes, both arrays
  preallocated and touched: the memory-bandwidth bound of one copy;
* torch -> jax, torch -> tensorflow: ``mp.transfer(src, dst)`` in-process
  (dense kernels change layout, (out, in) -> (in, out), on the way);
* save: ``mp.save(torch model, file)`` (an XXH3-64 of every tensor as it streams, fsync);
* load: ``mp.load(torch model, file)`` in-process, and ``mp.load(mxnet
  model, file)`` in MXNet's environment (torch -> mxnet through the file).

GB/s are 10^9 bytes of parameters moved per second; "of bound" is the
copy bound's time divided by the operation's time.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import multiparam as mp  # noqa: E402

WIDTH = 4096
LAYER_MIB = WIDTH * WIDTH * 4 / 2**20    # 64 MiB per kernel


def spec(layers: int):
    return mp.nn.Sequential(*[mp.nn.Dense(WIDTH, in_features=WIDTH) for _ in range(layers)])


def best(fn, repeat: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def copy_bound(nbytes: int, repeat: int) -> float:
    """Seconds for one np.copyto of ``nbytes`` between preallocated arrays."""
    src = np.ones(nbytes // 4, np.float32)
    dst = np.zeros_like(src)
    t = best(lambda: np.copyto(dst, src), repeat)
    del src, dst
    gc.collect()
    return t


def nbytes_of(m) -> int:
    return sum(p.value.nbytes for p in m.named_parameters().values())


def check_same(a, b, names) -> None:
    for n in names:
        if not np.array_equal(a[n].value, b[n].value):
            raise AssertionError(f"{n} differs after the operation")


MXNET_SCRIPT = r"""
import gc, json, sys, time
import numpy as np
import multiparam as mp
path, layers, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
W = 4096
def best(fn):
    fn()
    ts = []
    for _ in range(repeat):
        gc.collect(); t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return min(ts)
src = np.ones(layers * (W * W + W), np.float32); dst = np.zeros_like(src)
bound = best(lambda: np.copyto(dst, src)); del src, dst; gc.collect()
m = mp.wrap(mp.nn.Sequential(*[mp.nn.Dense(W, in_features=W) for _ in range(layers)]), backend="mxnet")
load = best(lambda: mp.load(m, path))
ref = mp.io.read_state(path)
ok = all(np.array_equal(m[n].value, ref[n]) for n in ("0.weight", "0.bias", f"{layers - 1}.weight"))
import mxnet
print(json.dumps({"bound": bound, "load": load, "ok": bool(ok), "mxnet": mxnet.__version__,
                  "numpy": np.__version__}))
"""


def mxnet_python():
    env = os.environ.get("MULTIPARAM_MXNET_PYTHON")
    cand = env or os.path.join(_REPO, ".tox", "mxnet-worker", "bin", "python")
    return cand if os.path.exists(cand) else None


def run_mxnet_load(path: str, layers: int, repeat: int):
    python = mxnet_python()
    if python is None:
        return None, "no MXNet interpreter (set MULTIPARAM_MXNET_PYTHON)"
    env = dict(os.environ)
    env["PYTHONPATH"] = _REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run([python, "-c", MXNET_SCRIPT, path, str(layers), str(repeat)],
                          capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        return None, proc.stderr.strip().splitlines()[-1:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=int, default=1024, help="kernel MiB to move (multiple of 64)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--profile", action="store_true", help="cProfile one torch -> jax transfer")
    ap.add_argument("--dir", default=None, help="directory for the file (default: a temp dir)")
    args = ap.parse_args(argv)
    layers = max(1, round(args.mib / LAYER_MIB))

    import torch  # noqa: F401  (before tensorflow)

    rows = []
    t0 = time.perf_counter()
    src = mp.wrap(spec(layers), backend="torch")
    nbytes = nbytes_of(src)
    print(f"{layers} x Dense({WIDTH}, {WIDTH}) + bias: {nbytes / 2**30:.3f} GiB float32 "
          f"(torch built in {time.perf_counter() - t0:.1f} s)", flush=True)
    bound = copy_bound(nbytes, args.repeat)
    print(f"bound: np.copyto of {nbytes / 2**30:.3f} GiB: {bound:.3f} s = {nbytes / bound / 1e9:.2f} GB/s",
          flush=True)
    names = ["0.weight", "0.bias", f"{layers - 1}.weight"]

    def row(op, seconds, bound_s=bound, note=""):
        r = {"operation": op, "seconds": seconds, "GB/s": nbytes / seconds / 1e9,
             "of_bound": bound_s / seconds, "note": note}
        rows.append(r)
        print(f"{op:<40} {seconds:7.3f} s  {r['GB/s']:6.2f} GB/s  {r['of_bound']:6.1%} of bound  {note}",
              flush=True)

    for backend in ("jax", "tensorflow"):
        t0 = time.perf_counter()
        dst = mp.wrap(spec(layers), backend=backend)
        built = time.perf_counter() - t0
        t = best(lambda: mp.transfer(src, dst), args.repeat)
        check_same(src, dst, names)
        row(f"transfer torch -> {backend} (in-process)", t, note=f"dst built in {built:.0f} s")
        if args.profile and backend == "jax":
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.runcall(mp.transfer, src, dst)
            pstats.Stats(prof).sort_stats("tottime").print_stats(8)
        del dst
        gc.collect()

    dst = mp.wrap(spec(layers), backend="torch")
    row("transfer torch -> torch (in-process)", best(lambda: mp.transfer(src, dst), args.repeat),
        note="same layout")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = os.path.join(tmp, "w.safetensors")
        row("save torch -> file", best(lambda: mp.save(src, path), args.repeat),
            note="streamed, XXH3 per tensor, fsync")
        row("load file -> torch", best(lambda: mp.load(dst, path), args.repeat), note="XXH3 check, then streamed")
        check_same(src, dst, names)
        del dst
        gc.collect()
        res, err = run_mxnet_load(path, layers, args.repeat)
        if res is None:
            print(f"load file -> mxnet: not run: {err}")
        else:
            if not res["ok"]:
                raise AssertionError("mxnet values differ from the file after mp.load")
            row("load file -> mxnet (MXNet env)", res["load"], bound_s=res["bound"],
                note=f"bound there {nbytes / res['bound'] / 1e9:.2f} GB/s (numpy {res['numpy']})")

    print()
    print(f"| operation ({nbytes / 2**30:.2f} GiB float32) | time (s) | GB/s | of copy bound |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| bound: `np.copyto` of the same bytes | {bound:.3f} | {nbytes / bound / 1e9:.2f} | 100% |")
    for r in rows:
        print(f"| {r['operation']} | {r['seconds']:.3f} | {r['GB/s']:.2f} | {r['of_bound']:.0%} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"bytes": nbytes, "bound": bound, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
