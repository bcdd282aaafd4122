"""``multiparam compare``: one architecture, the same weights, every backend.

The first backend builds the architecture from its ``multiparam.nn`` spec,
initialises it (portable mode, so the seed means the same everywhere) and
saves the weights to a portable file; every backend (MXNet in its own
environment) builds the same spec, loads that file, and runs a forward and a
gradient on the same input.  The result is a matrix of the largest output
and gradient differences between every pair, and each backend's native
names beside the canonical ones.

The input is canonical (NCHW images, int64 ids for embeddings); a
channels-last backend (Keras, Flax) receives it as NHWC through
``layout.input_to_native``.  Forwards and gradients run in inference mode
(BatchNorm uses its running statistics), so every backend computes the
same function.
"""
from __future__ import annotations

import html
import json
import os
import sys
import tempfile
from typing import Callable, Dict, List, Optional

import numpy as np

from . import bridge, nn, worker
from . import progress as _progress
from .layout import input_to_native
from .model import wrap
from .registry import import_order, load_adapter


def _mlp():
    return nn.Sequential(nn.Dense(8), nn.ReLU(), nn.Dense(1))


def _rgnet():
    def block1():
        return nn.Sequential(nn.Dense(8), nn.ReLU(), nn.Dense(4), nn.ReLU())
    return nn.Sequential(nn.Sequential({f"block {i}": block1() for i in range(4)}), nn.Dense(1))


def _shared():
    shared = nn.Dense(8)
    return nn.Sequential(nn.Dense(8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Dense(1))


def _cnn():
    """A small CNN; BatchNorm runs in inference mode (running statistics)
    in every forward and gradient compared here.  The Dense after the
    Flatten is where NCHW and NHWC frameworks order columns differently."""
    return nn.Sequential(nn.Conv2d(4, 3, padding=1), nn.BatchNorm(), nn.ReLU(), nn.Flatten(),
                         nn.Dense(3))


def _lstm():
    """One LSTM layer, then a Dense applied at every time step."""
    return nn.Sequential(nn.LSTM(5), nn.Dense(2))


def _embedding():
    """Embedding -> Dense whose weight is tied to the embedding (TIES)."""
    return nn.Sequential(nn.Embedding(10, 6), nn.Dense(10))


#: architecture name -> (spec factory, canonical input shape: NCHW for images)
ARCHITECTURES: Dict[str, tuple] = {
    "mlp": (_mlp, (2, 4)),
    "rgnet": (_rgnet, (2, 4)),
    "shared": (_shared, (2, 4)),
    "cnn": (_cnn, (2, 1, 6, 6)),
    "lstm": (_lstm, (2, 3, 4)),
    "embedding": (_embedding, (2, 5)),
}

#: ties made with ``m.tie(dst, src)`` after building (the output projection
#: shares the embedding table: canonical shapes (10, 6) both)
TIES: Dict[str, List[tuple]] = {"embedding": [("1.weight", "0.weight")]}

#: architectures whose input is integer ids, with the vocabulary size
INTEGER_INPUTS: Dict[str, int] = {"embedding": 10}


def sample_input(arch: str, seed: int = 0) -> np.ndarray:
    """The canonical input of ``arch``: uniform floats in [-1, 1) (NCHW for
    images), or int64 ids below the vocabulary size."""
    _, shape = ARCHITECTURES[arch]
    rng = np.random.default_rng(seed)
    if arch in INTEGER_INPUTS:
        return rng.integers(0, INTEGER_INPUTS[arch], size=shape).astype(np.int64)
    return rng.uniform(-1, 1, size=shape).astype(np.float32)


def build(arch: str, backend: str, x: Optional[np.ndarray] = None):
    """``arch`` built on ``backend`` as a Model handle, shapes inferred from
    the canonical input ``x`` (given to the backend in its own layout), its
    ties made.  Returns ``(model, native input)``."""
    factory, _ = ARCHITECTURES[arch]
    x = sample_input(arch) if x is None else x
    xn = input_to_native(x, load_adapter(backend).channels_last)
    m = wrap(factory(), backend=backend, sample_input=xn)
    for dst, src in TIES.get(arch, []):
        m.tie(dst, src)
    return m, xn


def compare(arch: str, backends: List[str], seed: int = 0,
            progress: Optional[Callable[[str], None]] = None, bar: Optional[bool] = None) -> dict:
    """Run ``arch`` on every backend with one set of weights; JSON-able result.
    ``progress(message)`` hears each step; ``bar``: a progress bar over the
    backends (see ``multiparam.progress``)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    factory, _ = ARCHITECTURES[arch]
    spec = nn.to_config(factory())
    say = progress or (lambda msg: None)
    x = sample_input(arch, seed)   # canonical; the worker converts it for NHWC backends
    results, names = {}, {}
    with tempfile.TemporaryDirectory(prefix="multiparam-compare-") as tmp:
        inp = os.path.join(tmp, "input.safetensors")
        worker.write_arrays({"x": x}, inp)
        weights = os.path.join(tmp, "weights.safetensors")
        for i, backend in enumerate(_progress.steps("compare", backends, "backends", bar)):
            say(f"[{i + 1}/{len(backends)}] {backend}: build, load weights, forward, gradient")
            out = os.path.join(tmp, f"{backend}.safetensors")
            job = {"backend": backend, "spec": spec, "input": inp, "outputs": out,
                   "ties": [list(t) for t in TIES.get(arch, [])]}
            if i == 0:
                job.update(seed=seed, save=weights)    # the reference weights
            else:
                job.update(load=weights)
            info = worker.run(job)
            names[backend] = info["names"]
            results[backend] = worker.read_arrays(out)
    keys = sorted(results[backends[0]])
    matrix = {}
    for a in backends:
        for b in backends:
            out_diff = _maxdiff(results[a]["y"], results[b]["y"])
            grad_diff = max((_maxdiff(results[a][k], results[b][k]) for k in keys if k != "y"), default=0.0)
            matrix[f"{a}|{b}"] = {"output": out_diff, "grad": grad_diff}
    return {"arch": arch, "backends": backends, "seed": seed, "matrix": matrix, "names": names}


def _maxdiff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0))


def render_text(result: dict) -> str:
    backends = result["backends"]
    w = max(len(b) for b in backends) + 2
    lines = [f"{result['arch']}: largest |difference| between backends (output / gradient), "
             f"same weights, float32", " " * w + "".join(b.rjust(20) for b in backends)]
    for a in backends:
        row = a.ljust(w)
        for b in backends:
            cell = result["matrix"][f"{a}|{b}"]
            row += f"{cell['output']:.1e} / {cell['grad']:.1e}".rjust(20)
        lines.append(row)
    lines += ["", "canonical name".ljust(22) + "".join(b.ljust(28) for b in backends)]
    first = result["names"][backends[0]]
    for name in first:
        lines.append(name.ljust(22) + "".join(
            str(result["names"][b].get(name, ["-"])[0]).ljust(28) for b in backends))
    return "\n".join(lines)


def render_html(result: dict) -> str:
    esc = html.escape
    backends = result["backends"]
    head = "".join(f"<th>{esc(b)}</th>" for b in backends)
    rows = "".join(
        f"<tr><th>{esc(a)}</th>" + "".join(
            f"<td>{result['matrix'][f'{a}|{b}']['output']:.1e} / "
            f"{result['matrix'][f'{a}|{b}']['grad']:.1e}</td>" for b in backends) + "</tr>"
        for a in backends)
    names = "".join(
        f"<tr><td><code>{esc(n)}</code></td>" + "".join(
            f"<td><code>{esc(str(result['names'][b].get(n, ['-'])[0]))}</code></td>" for b in backends)
        + "</tr>" for n in result["names"][backends[0]])
    return ("<!doctype html><meta charset='utf-8'><title>multiparam compare: "
            f"{esc(result['arch'])}</title><style>td,th{{padding:4px 10px;border:1px solid #ccc}}"
            "table{border-collapse:collapse;margin:1em 0}</style>"
            f"<h1>{esc(result['arch'])}: the same weights in {len(backends)} frameworks</h1>"
            "<p>Largest absolute difference of outputs / gradients (float32).</p>"
            f"<table><tr><th></th>{head}</tr>{rows}</table>"
            f"<h2>Names</h2><table><tr><th>canonical</th>{head}</tr>{names}</table>")


def reachable(backend: str) -> bool:
    """Whether ``backend`` runs here or through a worker environment."""
    try:
        if bridge.importable_here(backend):
            return True
    except Exception:       # a broken install is as good as none here
        pass
    return bridge.worker_python(backend) is not None


def main(args) -> int:
    backends = []
    for b in import_order(args.backend):
        if reachable(b):
            backends.append(b)
        else:
            print(f"[compare] skipping {b}: not installed here and no worker environment "
                  f"(set MULTIPARAM_{b.upper()}_PYTHON)", file=sys.stderr)
    if not backends:
        print("[compare] no backend to compare", file=sys.stderr)
        return 1
    result = compare(args.arch, backends, seed=args.seed,
                     progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(render_text(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"JSON written to {args.json}")
    if args.html:
        with open(args.html, "w") as f:
            f.write(render_html(result))
        print(f"HTML written to {args.html}")
    (worst, kind, pair) = max((max(c["output"], c["grad"]), "output" if c["output"] >= c["grad"] else "gradient",
                               key) for key, c in result["matrix"].items())
    if worst > args.tolerance:
        a, b = pair.split("|")
        print(f"FAILED: the largest difference, {worst:.3g} ({kind}, {a} vs {b}), exceeds --tolerance "
              f"{args.tolerance:g}")
        return 1
    return 0
