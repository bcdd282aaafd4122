"""One job on one backend, here or in that backend's own environment.

A job builds a ``multiparam.nn`` spec natively, optionally loads portable
weights, optionally saves them, and optionally runs a forward and a
gradient on a given input, writing the results to a safetensors file.
Everything crosses the process boundary as JSON (the job, the spec through
``nn.to_config``) and safetensors files (weights, inputs, results), which is
how MXNet's environment exchanges weights with the others.

    python -m multiparam worker '{"backend": "mxnet", "spec": {...}, ...}'
"""
from __future__ import annotations

import json
from typing import Any, Dict

import numpy as np

from . import bridge, init, io, nn
from .layout import input_to_native, output_to_canonical
from .model import wrap
from .param import as_numpy
from .registry import load_adapter


def write_arrays(arrays: Dict[str, np.ndarray], path: str) -> None:
    from safetensors.numpy import save_file

    # asarray(order="C"), not ascontiguousarray: that makes a 0-d array (torch's
    # num_batches_tracked) 1-d, which then no longer fits its parameter
    save_file({k: np.asarray(v, order="C") for k, v in arrays.items()}, path)


def read_arrays(path: str) -> Dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(path)


def run_job(job: Dict[str, Any]) -> Dict[str, Any]:
    """Run ``job`` in this process.  Keys: backend, spec (nn.to_config),
    input (safetensors path holding "x" in canonical layout: NCHW images,
    integer ids as they are), and optionally ties (``[[dst, src], ...]``
    made with ``m.tie`` after building), load / save (weights paths), seed
    (portable init before load), outputs (path for "y" and "grad:<name>"
    arrays, canonical layout; ``"grads": false`` writes "y" alone).  The
    input reaches a channels-last backend as NHWC; forward and gradient run
    in inference mode.  A model without trainable parameters has no
    gradient to write."""
    backend = job["backend"]
    spec = nn.from_config(job["spec"])
    x_canonical = read_arrays(job["input"])["x"]
    x = input_to_native(x_canonical, load_adapter(backend).channels_last)
    m = wrap(spec, backend=backend, sample_input=x)
    for dst, src in job.get("ties", []):
        m.tie(dst, src)
    if job.get("seed") is not None:
        m.init(_init_by_name(job.get("init", "xavier_uniform")), seed=job["seed"])
    if job.get("load"):
        io.load(m, job["load"])
    if job.get("save"):
        io.save(m, job["save"])
    if job.get("outputs"):
        y = output_to_canonical(as_numpy(m(x, train=False)), m.channels_last)
        out = {"y": y.astype(np.float32)}
        if job.get("grads", True) and any(p.trainable for p in m.parameters()):
            for name, g in m.grad(x, train=False).items():
                out[f"grad:{name}"] = np.ascontiguousarray(g)
        write_arrays(out, job["outputs"])
    return {"backend": backend,
            "names": {n: [p.native_name, list(p.native_shape)] for n, p in m.named_parameters().items()},
            "ties": [list(g) for g in m.ties()]}


def _init_by_name(name: str):
    return getattr(init, name)()


def run(job: Dict[str, Any]) -> Dict[str, Any]:
    """Run ``job`` here when its backend imports, else in its worker env."""
    if bridge.importable_here(job["backend"]):
        return run_job(job)
    return bridge.run_worker_json(job["backend"], ["worker", json.dumps(job)])
