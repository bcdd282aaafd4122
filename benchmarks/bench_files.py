#!/usr/bin/env python
"""Big models: load, save and transfer against the user's own idiom, with
time ratios and peak memory, at any size (1 and 4 GiB in the README).

    python -m benchmarks.bench_files [--gib 1] [--repeat 3] [--rounds 1] [--cases load,save,transfer]
                                     [--backends torch,jax,tensorflow] [--width 4096] [--dtype float32]
                                     [--file-dtype bfloat16] [--json out.json]

Run it with the interpreter that has torch, jax, tensorflow and safetensors
(the ``cross`` tox environment).  Every measurement runs in a fresh child
process of its own, so its peak memory is its own: the child builds the
model, runs the operation once to warm up, then resets the kernel's
high-water mark (``/proc/self/clear_refs``) and times ``--repeat`` runs.
"peak extra" is the largest resident-set growth over the operation (VmHWM
minus the resident set just before it; mapped file pages count, on both
sides alike).  "left resident" is what the child's very first run leaves
resident with the garbage collector off (:func:`left_resident`): memory
only a reference cycle would hold until a collection.  Times are the best
of the runs.  With ``--rounds N`` every
case runs in N fresh processes, the cases taking turns (in reverse order
every other round), so a drift of the machine's speed over the run hits
every case alike: a case's time is then its best over all rounds, and each
row also gets the median over rounds of the ratio within a round, which a
slow spell in one round cannot move much.

The model: ``gib * 16`` layers of ``Dense(4096, in_features=4096)`` with
biases, float32 (64 MiB per kernel), built with ``mp.nn``; the file is
written once by ``mp.save`` from torch and read by every case (it is a
plain safetensors file: the idioms read it too).  ``--width`` and
``--dtype`` change the layers (``m.astype(dtype)`` on every side) and so
the size of each tensor: ``--width 2048 --dtype bfloat16`` gives 8 MiB
kernels, the size of a mid-sized model's in the checkpoints people hold.
In bfloat16 the Hugging Face idioms take each tensor through float32, as
HF's converters do (NumPy has no bfloat16), and the copy bounds copy into
memory of the source's dtype.  ``--file-dtype`` writes the file in another
dtype than the models' (``--file-dtype bfloat16``: a bfloat16 checkpoint
loaded into float32 models, the most common cast); every load then casts,
the idioms as their users would (torch's ``load_state_dict`` casts itself;
the Flax and Keras idioms call ``astype``).

What each multiparam operation is compared with, in the same run:

* load into torch: ``net.load_state_dict(safetensors.torch.load_file(p))``;
  and, for the checked load, the same idiom with the check a user would
  add: each tensor's XXH3-64 against the file's metadata before
  ``load_state_dict`` (a load that checks before its first write reads
  every byte once more; the plain idiom does not);
* load into jax: ``safetensors.flax.load_file(p)`` and the Flax variables
  pytree rebuilt with each kernel transposed (``w.T``), the Hugging Face
  conversion idiom;
* load into tensorflow: ``safetensors.numpy.load_file(p)`` and
  ``layer.kernel.assign(w.T)``, ``layer.bias.assign(b)`` per layer;
* save from torch: ``safetensors.torch.save_file(net.state_dict(), p)``
  plus an fsync of ``p`` (``mp.save`` fsyncs); from Keras:
  ``safetensors.numpy.save_file`` of each ``kernel.numpy().T`` and
  ``bias.numpy()`` under torch's names, plus the fsync;
* transfer torch -> jax and torch -> tensorflow, and back (jax -> torch,
  tensorflow -> torch, the Hugging Face ``load_flax_weights_in_pytorch_model``
  and ``load_tf2_weights_in_pytorch_model`` idioms: each kernel as NumPy,
  transposed, ``torch.from_numpy`` into ``load_state_dict``): the transposing copy
  bound, torch's ``dst.copy_(src.t())`` into preallocated tensors (the
  issue's bar: at least 80% of its throughput); the same copies spread over
  the cores, one thread per core (torch runs one transposing copy on one
  core), the best bound measured here; and the Hugging Face idiom,
  ``jnp.asarray(t.numpy().T)`` per tensor into the pytree, or
  ``var.assign(t.numpy().T)`` on Keras.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDTH = 4096


# -- measuring in the child ---------------------------------------------------
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> None:
    # "5" resets the peak resident set size (VmHWM) to the current one
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measure(fn, repeat: int) -> dict:
    """Best time of ``repeat`` runs after one warm-up, and the largest peak
    resident-set growth over a run (bytes)."""
    fn()
    times, peaks = [], []
    for _ in range(repeat):
        gc.collect()
        before = _status_kib("VmRSS")
        _reset_peak()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        peaks.append((_status_kib("VmHWM") - before) * 1024)
    return {"seconds": min(times), "peak_extra": max(peaks)}


def left_resident(fn) -> int:
    """The resident-set growth a first run of ``fn`` leaves behind with no
    garbage collection before it returns (bytes): what a user's process
    holds after one call until a collection happens to run.  Beyond what
    the operation keeps by design, only reference cycles hold memory here
    (a load that replaces a model's arrays should leave about nothing)."""
    gc.collect()
    gc.disable()
    try:
        before = _status_kib("VmRSS")
        fn()
        return (_status_kib("VmRSS") - before) * 1024
    finally:
        gc.enable()


def _wrap(layers: int, backend: str, width: int = WIDTH, dtype: str = "float32"):
    """The benchmark's model on ``backend``: ``layers`` x ``Dense(width)``
    with biases, in ``dtype``."""
    import multiparam as mp
    m = mp.wrap(mp.nn.Sequential(*[mp.nn.Dense(width, in_features=width) for _ in range(layers)]),
                backend=backend)
    return m if dtype == "float32" else m.astype(dtype)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _child(case: str, path: str, layers: int, repeat: int, width: int, dtype: str) -> dict:
    """One measurement: ``case`` is ``op/backend/side``."""
    import torch  # noqa: F401  (before tensorflow, as the environment requires)

    import multiparam as mp
    op, backend, side = case.split("/")
    if op == "transfer":
        src = _wrap(layers, "torch", width, dtype)
        dst = _wrap(layers, backend, width, dtype)
        fn = _transfer_case(src, dst, backend, side, layers)
    elif op == "transfer-back":
        src = _wrap(layers, backend, width, dtype)
        dst = _wrap(layers, "torch", width, dtype)
        fn = _transfer_back_case(src, dst, backend, side, layers)
    else:
        m = _wrap(layers, backend, width, dtype)
        # a save writes a file of its own: the one every load reads stays
        # mp.save's, whatever order the cases run in
        target = path + ".saved" if op == "save" else path
        fn = _file_case(m, op, backend, side, target, layers)
    left = left_resident(fn)
    result = measure(fn, repeat)
    result["left_resident"] = left
    if op == "load" or (op.startswith("transfer") and not side.startswith("copy-bound")):
        result["checked"] = _check(m if op == "load" else dst, path if op == "load" else src, layers)
    return result


def _check(model, truth, layers: int) -> bool:
    """The destination holds the source's values (first and last layer)."""
    import numpy as np

    import multiparam as mp
    ref = mp.io.read_state(truth) if isinstance(truth, str) else truth
    names = ["0.weight", "0.bias", f"{layers - 1}.weight"]
    # a file of another dtype holds the values the load casts
    ok = all(np.array_equal(model[n].value, np.asarray(ref[n].value if hasattr(ref[n], "value") else ref[n])
                            .astype(model[n].dtype)) for n in names)
    if not ok:
        raise AssertionError("the destination does not hold the source's values")
    return ok


def _file_case(m, op: str, backend: str, side: str, path: str, layers: int):
    import multiparam as mp
    if side == "multiparam":
        return (lambda: mp.load(m, path)) if op == "load" else (lambda: mp.save(m, path))
    if side == "multiparam-noverify":
        return lambda: mp.load(m, path, verify=False)
    if op == "save" and backend == "tensorflow":
        import safetensors.numpy
        dense = [layer for layer in m.native.layers]

        def keras_save_idiom():
            # torch's names and layout, as the file multiparam writes
            state = {}
            for i, layer in enumerate(dense):
                state[f"{i}.weight"] = layer.kernel.numpy().T
                state[f"{i}.bias"] = layer.bias.numpy()
            safetensors.numpy.save_file(state, path)
            _fsync(path)
        return keras_save_idiom
    if op == "save":
        import safetensors.torch
        net = m.native

        def save_idiom():
            safetensors.torch.save_file(net.state_dict(), path)
            _fsync(path)
        return save_idiom
    if backend == "torch":
        import safetensors.torch
        net = m.native
        if side == "idiom-verified":
            return _verified_torch_idiom(net, path)
        return lambda: net.load_state_dict(safetensors.torch.load_file(path))
    held = m["0.weight"].dtype     # a file of another dtype: cast, as the user would
    if backend == "jax":
        import safetensors.flax
        handle = m

        def jax_idiom():
            sd = safetensors.flax.load_file(path)
            params = {f"layers_{i}": {"kernel": sd[f"{i}.weight"].T.astype(held),
                                      "bias": sd[f"{i}.bias"].astype(held)}
                      for i in range(layers)}
            handle.flax.variables = {"params": params}
        return jax_idiom
    import safetensors.numpy
    dense = [layer for layer in m.native.layers]

    def keras_idiom():
        sd = safetensors.numpy.load_file(path)
        for i, layer in enumerate(dense):
            layer.kernel.assign(sd[f"{i}.weight"].T.astype(held, copy=False))
            layer.bias.assign(sd[f"{i}.bias"].astype(held, copy=False))
    return keras_idiom


def _verified_torch_idiom(net, path: str, strict: bool = True):
    """The torch idiom with the check a user would add to it: every
    tensor's XXH3-64 (the checksums ``mp.save`` wrote in the file's
    metadata) compared before ``load_state_dict``, so a damaged file
    changes nothing.  Any load that checks before its first write pays this
    read of every byte; the plain idiom does not.  ``strict=False`` for a
    file that stores a tied tensor once (``load_state_dict``'s own flag)."""
    import safetensors
    import safetensors.torch
    import torch
    import xxhash

    with safetensors.safe_open(path, framework="pt") as f:
        want = json.loads(f.metadata()["xxh3_64"])

    def verified_idiom():
        state = safetensors.torch.load_file(path)
        for name, tensor in state.items():
            # as bytes: NumPy has no bfloat16
            if xxhash.xxh3_64_hexdigest(tensor.reshape(-1).view(torch.uint8).numpy()) != want[name]:
                raise ValueError(f"{path}: tensor {name!r} is damaged")
        net.load_state_dict(state, strict=strict)
    return verified_idiom


def _hf_numpy(t):
    """A torch tensor as NumPy, as Hugging Face's converters take it: a
    bfloat16 one through float32 (NumPy has no bfloat16; the destination
    casts it back on assignment)."""
    import torch
    return t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()


def _hf_float(a):
    """A NumPy array torch can take, as Hugging Face's converters make it:
    bfloat16 (ml_dtypes, which torch.from_numpy refuses) as float32, cast
    back by ``load_state_dict``'s copy."""
    import numpy as np
    return a.astype(np.float32) if a.dtype.name == "bfloat16" else a


def _transfer_case(src, dst, backend: str, side: str, layers: int):
    import multiparam as mp
    if side == "multiparam":
        return lambda: mp.transfer(src, dst)
    import torch
    tensors = [t.detach() for t in src.native.parameters()]
    if side.startswith("copy-bound"):
        # the transposing copy bound: torch's own, into preallocated memory;
        # "-parallel": the tensors spread over one thread per core
        outs = [torch.empty(t.shape[::-1], dtype=t.dtype) if t.ndim == 2 else torch.empty_like(t) for t in tensors]
        pairs = list(zip(tensors, outs))

        def copy_one(pair):
            t, o = pair
            o.copy_(t.t() if t.ndim == 2 else t)

        if side == "copy-bound":
            return lambda: [copy_one(pair) for pair in pairs]
        from concurrent.futures import ThreadPoolExecutor
        pool = ThreadPoolExecutor(os.cpu_count() or 1)
        return lambda: list(pool.map(copy_one, pairs))
    names = [n for n, _ in src.native.named_parameters()]
    t_dtype = dst.parameters()[0].dtype
    if backend == "jax":
        import jax.numpy as jnp
        handle = dst

        def jax_idiom():
            arrays = {n: jnp.asarray(_hf_numpy(t).T, dtype=t_dtype) for n, t in zip(names, tensors)}
            handle.flax.variables = {"params": {
                f"layers_{i}": {"kernel": arrays[f"{i}.weight"], "bias": arrays[f"{i}.bias"]}
                for i in range(layers)}}
        return jax_idiom
    dense = [layer for layer in dst.native.layers]

    def keras_idiom():
        by_name = dict(zip(names, tensors))
        for i, layer in enumerate(dense):
            layer.kernel.assign(_hf_numpy(by_name[f"{i}.weight"]).T)
            layer.bias.assign(_hf_numpy(by_name[f"{i}.bias"]))
    return keras_idiom


def _transfer_back_case(src, dst, backend: str, side: str, layers: int):
    """jax -> torch and tensorflow -> torch: multiparam, or the Hugging Face
    conversion idiom (``load_flax_weights_in_pytorch_model``,
    ``load_tf2_weights_in_pytorch_model``): each kernel as NumPy, transposed,
    through ``torch.from_numpy`` into ``load_state_dict``."""
    import multiparam as mp
    if side == "multiparam":
        return lambda: mp.transfer(src, dst)
    import numpy as np
    import torch
    net = dst.native
    if backend == "jax":
        handle = src

        def jax_idiom():
            params = handle.flax.variables["params"]
            state = {}
            for i in range(layers):
                state[f"{i}.weight"] = torch.from_numpy(_hf_float(np.asarray(params[f"layers_{i}"]["kernel"].T)))
                state[f"{i}.bias"] = torch.from_numpy(_hf_float(np.asarray(params[f"layers_{i}"]["bias"])))
            net.load_state_dict(state)
        return jax_idiom
    dense = [layer for layer in src.native.layers]

    def keras_idiom():
        state = {}
        for i, layer in enumerate(dense):
            state[f"{i}.weight"] = torch.from_numpy(_hf_float(layer.kernel.numpy().T))
            state[f"{i}.bias"] = torch.from_numpy(_hf_float(layer.bias.numpy()))
        net.load_state_dict(state)
    return keras_idiom


# -- the parent: the file, the cases, the table ---------------------------------
CASES = {
    "load": [("load/torch/idiom", "load/torch/multiparam"), ("load/torch/idiom-verified", "load/torch/multiparam"),
             ("load/torch/idiom", "load/torch/multiparam-noverify"),
             ("load/jax/idiom", "load/jax/multiparam"), ("load/tensorflow/idiom", "load/tensorflow/multiparam")],
    "save": [("save/torch/idiom", "save/torch/multiparam"),
             ("save/tensorflow/idiom", "save/tensorflow/multiparam")],
    "transfer": [(f"transfer/{backend}/{against}", f"transfer/{backend}/multiparam")
                 for backend in ("jax", "tensorflow")
                 for against in ("copy-bound", "copy-bound-parallel", "idiom")]
    # the other way, into torch: the same copy bounds (torch's transposing copies)
    + [(f"transfer/{backend}/{against}" if against.startswith("copy-bound") else f"transfer-back/{backend}/{against}",
        f"transfer-back/{backend}/multiparam")
       for backend in ("jax", "tensorflow")
       for against in ("copy-bound", "copy-bound-parallel", "idiom")],
}


def run_child(module: str, args: list, what: str, python: str = sys.executable) -> dict:
    """``python -m module *args`` run from this repository in a fresh
    process of its own; the JSON its last line prints.  ``what`` names it
    in the error when it fails."""
    env = dict(os.environ, PYTHONPATH=_REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([python, "-m", module, *args], capture_output=True, text=True, env=env, cwd=_REPO,
                          timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _run_child(case: str, path: str, layers: int, repeat: int, width: int, dtype: str) -> dict:
    return run_child("benchmarks.bench_files", ["--child", case, "--path", path, "--layers", str(layers),
                                                "--repeat", str(repeat), "--width", str(width), "--dtype", dtype],
                     case)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gib", type=float, default=1.0, help="model size in GiB of kernels")
    ap.add_argument("--width", type=int, default=WIDTH, help="each layer's Dense(width, in_features=width)")
    ap.add_argument("--dtype", default="float32", help="the parameters' dtype (float32, bfloat16, ...)")
    ap.add_argument("--file-dtype", default=None, help="the file's dtype (default: the parameters'); "
                    "another one makes every load cast")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per case (best is kept)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="fresh processes per case, the cases taking turns (best is kept)")
    ap.add_argument("--cases", default="load,save,transfer")
    ap.add_argument("--backends", default="torch,jax,tensorflow", help="destinations measured")
    ap.add_argument("--dir", default=None, help="folder for the file (default: a temporary one)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--layers", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.path, args.layers, args.repeat, args.width, args.dtype)))
        return 0

    import numpy as np

    from multiparam import dtypes
    kernel_bytes = args.width * args.width * np.dtype(dtypes.dtype(args.dtype)).itemsize
    layers = max(1, round(args.gib * 2**30 / kernel_bytes))
    backends = args.backends.split(",")
    pairs = [p for c in args.cases.split(",") for p in CASES[c] if p[1].split("/")[1] in backends]
    results: dict = {}
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = os.path.join(tmp, "model.safetensors")
        import torch  # noqa: F401

        import multiparam as mp
        mp.save(_wrap(layers, "torch", args.width, args.file_dtype or args.dtype), path)
        # the saved model is cyclic garbage until a collection: without one
        # this process held a whole model (4 GiB at --gib 4) beside every
        # child, pressing the file out of the page cache on a shared machine
        gc.collect()
        nbytes = os.path.getsize(path)
        print(f"{layers} x Dense({args.width}, {args.width}) + bias, {args.dtype}: {nbytes / 2**30:.2f} GiB file"
              + (f" in {args.file_dtype}" if args.file_dtype else ""), flush=True)
        cases = list(dict.fromkeys(case for pair in pairs for case in pair))
        rounds: dict = {case: [] for case in cases}
        for turn in range(args.rounds):
            for case in (cases if turn % 2 == 0 else cases[::-1]):
                r = _run_child(case, path, layers, args.repeat, args.width, args.dtype)
                rounds[case].append(r)
                print(f"  {case:<36} {r['seconds']:7.3f} s  {nbytes / r['seconds'] / 1e9:6.2f} GB/s  "
                      f"peak +{r['peak_extra'] / 2**30:5.2f} GiB  left +{r['left_resident'] / 2**30:5.2f} GiB",
                      flush=True)
        for case, runs in rounds.items():
            results[case] = {"seconds": min(r["seconds"] for r in runs),
                             "peak_extra": max(r["peak_extra"] for r in runs),
                             "left_resident": max(r["left_resident"] for r in runs),
                             "round_seconds": [r["seconds"] for r in runs]}
            if any("checked" in r for r in runs):
                results[case]["checked"] = all(r.get("checked") for r in runs)
        for base, ours in pairs:
            a, b = results[base], results[ours]
            rows.append({"operation": ours, "against": base, "time_ratio": b["seconds"] / a["seconds"],
                         # the ratio within each round, then their median
                         "ratio_median": statistics.median(
                             x / y for x, y in zip(b["round_seconds"], a["round_seconds"])),
                         "throughput_share": a["seconds"] / b["seconds"],
                         "memory_ratio": b["peak_extra"] / max(a["peak_extra"], 1),
                         "seconds": b["seconds"], "against_seconds": a["seconds"],
                         "peak_extra": b["peak_extra"], "against_peak_extra": a["peak_extra"],
                         "left_resident": b["left_resident"], "against_left_resident": a["left_resident"]})
    print()
    print(f"| {nbytes / 2**30:.2f} GiB | multiparam | idiom | time ratio | median of the rounds' ratios "
          "| peak extra (multiparam / idiom) | left resident after a first run (multiparam / idiom) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        # the copy bound writes into memory it allocated before timing: no ratio
        memory = (f"{r['peak_extra'] / 2**30:.2f} / {r['against_peak_extra'] / 2**30:.2f} GiB"
                  + (f" ({r['memory_ratio']:.2f}x)" if r["against_peak_extra"] >= 2**20 else " (preallocated)"))
        print(f"| `{r['operation']}` vs `{r['against']}` | {r['seconds']:.2f} s | {r['against_seconds']:.2f} s | "
              f"{r['time_ratio']:.2f}x | {r['ratio_median']:.2f}x ({args.rounds}) | {memory} | "
              f"{r['left_resident'] / 2**30:.2f} / {r['against_left_resident'] / 2**30:.2f} GiB |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"bytes": nbytes, "layers": layers, "rounds": args.rounds, "results": results, "rows": rows},
                      f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
