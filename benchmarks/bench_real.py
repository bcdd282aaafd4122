#!/usr/bin/env python
"""Real models at their published sizes, against their users' own idioms,
with time ratios and peak memory.

    python -m benchmarks.bench_real [--models gpt2,bert-base,llama-1b,resnet50-keras,resnet50-gluon]
                                    [--dtype bfloat16] [--repeat 3] [--rounds 1] [--json out.json]

``bench_files`` measures a stack of equal ``Dense`` layers, which shows how
time grows with size; a real model adds what a stack hides: tied
embeddings (GPT-2's ``lm_head`` is its ``wte``), hundreds of small tensors
beside a few large ones (norms, biases, BatchNorm statistics), and each
framework's own file.  Every model is built from its configuration with
random weights (nothing is downloaded):

* ``gpt2``: Hugging Face GPT-2 small, 124M parameters, 148 tensors,
  embedding tied;
* ``bert-base``: Hugging Face BERT base, 110M parameters, 199 tensors;
* ``llama-1b``: Hugging Face Llama in TinyLlama's shape (22 layers, hidden
  2048, grouped-query attention), 1.1B parameters, 201 tensors: 2.2 GB in
  bfloat16;
* ``resnet50-keras``: ``keras.applications.ResNet50(weights=None)``, 25.6M
  parameters, 320 arrays, float32 (``--dtype`` is for the torch models);
* ``resnet50-gluon``: Gluon's ``model_zoo.vision.resnet50_v1(pretrained=False)``,
  299 arrays, float32; it runs with MXNet's own interpreter (the
  ``mxnet-worker`` environment, or ``$MULTIPARAM_MXNET_PYTHON``).

Run it with the interpreter that has torch, transformers, tensorflow and
safetensors (the ``cross`` tox environment).  As in ``bench_files``, every
measurement runs in a fresh child process of its own (a warm-up run, then
the best of ``--repeat``, and the peak extra resident memory; ``--rounds``
alternates fresh processes), and so does writing each model's files, once.

What each multiparam operation is compared with, in the same run:

* torch, load: ``model.load_state_dict(safetensors.torch.load_file(p),
  strict=False)`` (``strict=False``: Hugging Face's file leaves out the tied
  ``lm_head``), where ``p`` is ``save_pretrained``'s file, which
  ``mp.load(verify=False)`` reads too; ``mp.load`` with its checksums
  checked reads ``mp.save``'s file, against the same idiom on that file and
  against that idiom with the check a user would add (each tensor's
  XXH3-64 before ``load_state_dict``);
* torch, save: ``model.save_pretrained(folder)`` (safetensors, Hugging
  Face's default) plus an fsync of what it wrote, against ``mp.save``
  (which fsyncs);
* torch, transfer: ``dst.load_state_dict(src.state_dict())`` against
  ``mp.transfer(src, dst)``;
* Keras and Gluon: the framework's own file, ``model.load_weights(f)`` /
  ``net.load_parameters(f)`` against ``mp.load`` (checked and not), and
  ``model.save_weights(f)`` / ``net.save_parameters(f)`` plus an fsync
  against ``mp.save``.  MXNet runs asynchronously: every Gluon case ends
  with ``mx.nd.waitall()``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile


#: name: (framework, what builds it: a transformers class and config, or a model zoo's name)
MODELS = {
    "gpt2": ("torch", ("GPT2LMHeadModel", "GPT2Config", {})),
    "bert-base": ("torch", ("BertModel", "BertConfig", {})),
    "llama-1b": ("torch", ("LlamaForCausalLM", "LlamaConfig",
                           dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                                num_attention_heads=32, num_key_value_heads=4, vocab_size=32000,
                                max_position_embeddings=2048))),
    "resnet50-keras": ("tensorflow", "ResNet50"),
    "resnet50-gluon": ("mxnet", "resnet50_v1"),
}

#: (idiom, multiparam) pairs of cases, each ``op/side``, by framework
PAIRS = {
    "torch": [("load/idiom-hf-file", "load/multiparam-noverify"), ("load/idiom", "load/multiparam"),
              ("load/idiom-verified", "load/multiparam"), ("save/idiom", "save/multiparam"),
              ("transfer/idiom", "transfer/multiparam")],
    "tensorflow": [("load/idiom", "load/multiparam-noverify"), ("load/idiom", "load/multiparam"),
                   ("save/idiom", "save/multiparam")],
}
PAIRS["mxnet"] = PAIRS["tensorflow"]


# -- the models, in the child ---------------------------------------------------
def build(model: str, dtype: str, values: bool = True):
    """The native model, in eval mode where the framework has one.  A
    torch model is in ``dtype``; ``values=False`` leaves its memory
    uninitialised (a load's destination: every value is overwritten, and
    drawing 1.1B random numbers would take longer than the load it
    measures)."""
    framework, spec = MODELS[model]
    if framework == "tensorflow":
        import keras
        keras.utils.set_random_seed(0)
        return getattr(keras.applications, spec)(weights=None)
    if framework == "mxnet":
        import mxnet as mx
        from mxnet.gluon.model_zoo import vision
        mx.random.seed(0)
        net = getattr(vision, spec)(pretrained=False)
        net.initialize()
        net(mx.nd.zeros((1, 3, 224, 224)))      # Gluon's shapes resolve at the first forward
        return net
    import torch
    import transformers
    cls_name, config_name, kwargs = spec
    cls, config = getattr(transformers, cls_name), getattr(transformers, config_name)(**kwargs)
    torch.manual_seed(0)
    if values:
        net = cls(config)
    else:
        with torch.device("meta"):
            net = cls(config)
        net = net.to_empty(device="cpu")
        net.tie_weights()        # to_empty gives each tied use its own memory
    return net.to(getattr(torch, dtype)).eval()


def _files(folder: str) -> list:
    return [os.path.join(folder, f) for f in sorted(os.listdir(folder))]


#: each framework's own weights file, in the model's folder
_NATIVE_FILE = {"tensorflow": "native.weights.h5", "mxnet": "native.params"}


def _write_files(model: str, dtype: str, folder: str) -> dict:
    """The model's files: the framework's own (Hugging Face's
    ``save_pretrained`` for torch) and ``mp.save``'s."""
    import multiparam as mp
    framework = MODELS[model][0]
    net = build(model, dtype)
    if framework == "torch":
        net.save_pretrained(os.path.join(folder, "hf"))
    elif framework == "tensorflow":
        net.save_weights(os.path.join(folder, _NATIVE_FILE[framework]))
    else:
        net.save_parameters(os.path.join(folder, _NATIVE_FILE[framework]))
    m = mp.wrap(net)
    mp.save(m, os.path.join(folder, "mp.safetensors"))
    return {"bytes": os.path.getsize(os.path.join(folder, "mp.safetensors")), "tensors": len(m.named_parameters())}


def _torch_case(net, m, op: str, side: str, folder: str, dtype: str, model: str):
    import safetensors.torch

    import multiparam as mp
    from benchmarks.bench_files import _fsync, _verified_torch_idiom
    hf_file = os.path.join(folder, "hf", "model.safetensors")
    mp_file = os.path.join(folder, "mp.safetensors")
    if op == "load":
        if side == "idiom-verified":
            return _verified_torch_idiom(net, mp_file, strict=False)
        return {"idiom-hf-file": lambda: net.load_state_dict(safetensors.torch.load_file(hf_file), strict=False),
                "idiom": lambda: net.load_state_dict(safetensors.torch.load_file(mp_file), strict=False),
                "multiparam-noverify": lambda: mp.load(m, hf_file, verify=False),
                "multiparam": lambda: mp.load(m, mp_file)}[side]
    if op == "save":
        out = os.path.join(folder, "saved")

        def save_pretrained():
            net.save_pretrained(out)
            for path in _files(out):
                _fsync(path)
        return save_pretrained if side == "idiom" else (lambda: mp.save(m, out + ".safetensors"))
    src = build(model, dtype)
    return (lambda: net.load_state_dict(src.state_dict())) if side == "idiom" else (lambda: mp.transfer(src, m))


def _native_case(framework: str, net, m, op: str, side: str, folder: str):
    """Keras' and Gluon's cases: their own file or multiparam's."""
    import multiparam as mp
    from benchmarks.bench_files import _fsync
    native = os.path.join(folder, _NATIVE_FILE[framework])
    mp_file = os.path.join(folder, "mp.safetensors")
    if framework == "mxnet":
        import mxnet as mx
        done = mx.nd.waitall           # MXNet's engine runs asynchronously
        load_own, save_own = net.load_parameters, net.save_parameters
    else:
        def done():
            return None
        load_own, save_own = net.load_weights, net.save_weights
    if op == "load":
        if side == "idiom":
            return lambda: (load_own(native), done())
        return lambda: (mp.load(m, mp_file, verify=side == "multiparam"), done())
    out = os.path.join(folder, "saved." + _NATIVE_FILE[framework].split(".", 1)[1])

    def save_idiom():
        save_own(out)
        done()
        _fsync(out)
    return save_idiom if side == "idiom" else (lambda: (mp.save(m, out + ".safetensors"), done()))


def _child(case: str, model: str, dtype: str, folder: str, repeat: int) -> dict:
    framework = MODELS[model][0]
    if framework == "torch":
        import torch  # noqa: F401  (before tensorflow, as the environment requires)
    import multiparam as mp
    from benchmarks.bench_files import left_resident, measure
    if case == "prepare":
        return _write_files(model, dtype, folder)
    op, side = case.split("/")
    net = build(model, dtype, values=op == "save" or framework != "torch")
    m = mp.wrap(net)
    if framework == "torch":
        fn = _torch_case(net, m, op, side, folder, dtype, model)
    else:
        fn = _native_case(framework, net, m, op, side, folder)
    left = left_resident(fn)
    result = measure(fn, repeat)
    result["left_resident"] = left
    if op != "save":
        # the destination holds the file's values (first, largest and last)
        truth = mp.io.read_state(os.path.join(folder, "mp.safetensors"))
        names = list(truth)
        names = [names[0], max(names, key=lambda n: truth[n].size), names[-1]]
        if not all(m[n].numpy().tobytes() == truth[n].tobytes() for n in names):
            raise AssertionError(f"{case}: the destination does not hold the file's values")
        result["checked"] = True
    return result


# -- the parent: no framework imported -----------------------------------------
def _interpreter(framework: str) -> str:
    if framework != "mxnet":
        return sys.executable
    from multiparam import bridge
    found = bridge.worker_python("mxnet")
    if found is None:
        raise RuntimeError("no MXNet interpreter: run `tox -e mxnet-worker` or set MULTIPARAM_MXNET_PYTHON")
    return found


def _run_child(case: str, model: str, dtype: str, folder: str, repeat: int) -> dict:
    from benchmarks.bench_files import run_child
    return run_child("benchmarks.bench_real", ["--child", case, "--models", model, "--dtype", dtype,
                                               "--dir", folder, "--repeat", str(repeat)],
                     f"{model} {case}", _interpreter(MODELS[model][0]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help=f"any of {', '.join(MODELS)}")
    ap.add_argument("--dtype", default="bfloat16", help="the torch models' dtype (bfloat16, float32, ...)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per case (best is kept)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="fresh processes per case, the cases taking turns (best is kept)")
    ap.add_argument("--dir", default=None, help="folder for the files (default: a temporary one)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.models, args.dtype, args.dir, args.repeat)))
        return 0

    rows = []
    for model in args.models.split(","):
        framework = MODELS[model][0]
        pairs = PAIRS[framework]
        cases = list(dict.fromkeys(case for pair in pairs for case in pair))
        with tempfile.TemporaryDirectory(dir=args.dir) as folder:
            files = _run_child("prepare", model, args.dtype, folder, args.repeat)
            held = args.dtype if framework == "torch" else "float32"
            print(f"{model}: {files['tensors']} tensors, {files['bytes'] / 2**30:.2f} GiB in {held}", flush=True)
            rounds: dict = {case: [] for case in cases}
            for turn in range(args.rounds):
                for case in (cases if turn % 2 == 0 else cases[::-1]):
                    r = _run_child(case, model, args.dtype, folder, args.repeat)
                    rounds[case].append(r)
                    print(f"  {case:<28} {r['seconds']:7.3f} s  peak +{r['peak_extra'] / 2**30:5.2f} GiB  "
                          f"left +{r['left_resident'] / 2**30:5.2f} GiB", flush=True)
            for base, ours in pairs:
                a, b = rounds[base], rounds[ours]
                rows.append({"model": model, "dtype": held, "operation": ours, "against": base,
                             "seconds": min(r["seconds"] for r in b),
                             "against_seconds": min(r["seconds"] for r in a),
                             "ratio_median": statistics.median(y["seconds"] / x["seconds"] for x, y in zip(a, b)),
                             "peak_extra": max(r["peak_extra"] for r in b),
                             "against_peak_extra": max(r["peak_extra"] for r in a)})
                rows[-1]["time_ratio"] = rows[-1]["seconds"] / rows[-1]["against_seconds"]
    print()
    print("| model | multiparam | idiom | time ratio | median of the rounds' ratios | peak extra (multiparam / idiom) |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['model']} ({r['dtype']}) | `{r['operation']}` {r['seconds'] * 1e3:.1f} ms | `{r['against']}` "
              f"{r['against_seconds'] * 1e3:.1f} ms | {r['time_ratio']:.2f}x | {r['ratio_median']:.2f}x "
              f"({args.rounds}) | {r['peak_extra'] / 2**30:.2f} / {r['against_peak_extra'] / 2**30:.2f} GiB |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": args.rounds, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
