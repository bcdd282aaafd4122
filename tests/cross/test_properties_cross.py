"""Properties of random ``mp.nn`` architectures across frameworks: for every
ordered pair (A, B) of backends, moving the weights A -> B gives B the
outputs of A (to 1e-5, inference mode, the canonical input given to each
backend in its own layout), and moving them back B -> A gives A every value
bit for bit.

Backends in this process (torch, jax, tensorflow) move weights with
``mp.transfer``; a backend that lives in another environment (MXNet, through
``MULTIPARAM_MXNET_PYTHON``) is reached through portable files and its
worker (``multiparam.worker``), as ``multiparam compare`` does.

Architectures, budgets and the reading of a counterexample are as in
``tests/conformance/test_properties.py``; each pair's budget is the
profile's ``max_examples`` times :data:`SHARE` (a worker call costs a
process start).
"""
import itertools
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

import multiparam as mp
from multiparam import nn, worker
from multiparam.layout import input_to_native, output_to_canonical
from multiparam.param import as_numpy
from multiparam.registry import available_backends, import_order, importable_backends, load_adapter
from tests.architectures import Arch, architectures, assert_bitwise, random_values

BACKENDS = tuple(import_order(available_backends()))
#: backends whose framework imports in this process; the others run in their worker
HERE = tuple(importable_backends())
PAIRS_HERE = list(itertools.permutations(HERE, 2))
PAIRS_ACROSS = [(a, b) for a, b in itertools.permutations(BACKENDS, 2) if a not in HERE or b not in HERE]
#: the share of the profile's budget each pair gets: (pairs in this process, pairs through a worker)
SHARE = (0.6, 0.2)
#: "outputs agree" after a transfer
RTOL = ATOL = 1e-5

# torch's num_batches_tracked crossing to a backend without it: a documented
# note, expected here on every BatchNorm (the checks below leave it out)
pytestmark = pytest.mark.filterwarnings("ignore::multiparam.StateNote")


def budget(share: float) -> settings:
    """The profile's settings with ``share`` of its examples."""
    return settings(max_examples=max(1, round(settings.default.max_examples * share)))


def _ids(pairs):
    return [f"{a}->{b}" for a, b in pairs]


def kept_by(values: dict, names) -> dict:
    """``values`` of ``names`` only: without the state a backend does not
    keep (torch's ``num_batches_tracked``, skipped with a note when moving
    to a backend without it)."""
    return {n: v for n, v in values.items() if n in names}


# -- in this process: mp.transfer ------------------------------------------------------------------------
def build(arch: Arch, backend: str) -> mp.Model:
    x = input_to_native(arch.x, load_adapter(backend).channels_last)
    return mp.wrap(arch.spec, backend=backend, sample_input=x)


def infer(m: mp.Model, arch: Arch) -> np.ndarray:
    """The inference forward on the canonical input, as a canonical NumPy array."""
    y = m(input_to_native(arch.x, m.channels_last), train=False)
    return output_to_canonical(as_numpy(y), m.channels_last)


def check_transfer(src: str, dst: str, arch: Arch):
    """Values written into ``src``; ``src -> dst`` gives ``dst`` its outputs,
    ``dst -> src`` (a fresh build) gives back every value both keep, bit for bit."""
    a = build(arch, src)
    values = random_values(arch.entries(), arch.seed)
    a.load_state_dict(kept_by(values, a.state_dict()))
    b = build(arch, dst)
    mp.transfer(a, b)
    np.testing.assert_allclose(infer(b, arch), infer(a, arch), rtol=RTOL, atol=ATOL)
    back = build(arch, src)
    mp.transfer(b, back)
    kept_by_both = kept_by(kept_by(values, a.state_dict()), b.state_dict())
    assert_bitwise(back.state_dict(), kept_by_both)


@pytest.mark.parametrize("src,dst", PAIRS_HERE, ids=_ids(PAIRS_HERE))
@budget(SHARE[0])
@given(arch=architectures())
def test_transfer_agrees_and_comes_back_bitwise(src, dst, arch):
    check_transfer(src, dst, arch)


# -- across environments: files and the worker ---------------------------------------------------------
def run(backend: str, arch: Arch, tmp: Path, load: str, save: str):
    """``backend`` (here or in its worker) builds ``arch``, loads the file
    ``load``, saves to ``save``; returns its inference output on the
    canonical input, and the names it keeps."""
    worker.write_arrays({"x": arch.x}, str(tmp / "x.safetensors"))
    info = worker.run({"backend": backend, "spec": nn.to_config(arch.spec), "input": str(tmp / "x.safetensors"),
                       "load": str(tmp / load), "save": str(tmp / save), "outputs": str(tmp / "y.safetensors"),
                       "grads": False})
    return worker.read_arrays(str(tmp / "y.safetensors"))["y"], set(info["names"])


def check_bridge(src: str, dst: str, arch: Arch):
    """The same through files: ``src`` loads the values and saves them
    ("there"), ``dst`` loads that and saves ("moved"), a fresh ``src``
    loads that and saves ("back"); "back" is "there" bit for bit."""
    values = random_values(arch.entries(), arch.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        worker.write_arrays(values, str(tmp / "values.safetensors"))
        y_src, kept_src = run(src, arch, tmp, "values.safetensors", "there.safetensors")
        y_dst, kept_dst = run(dst, arch, tmp, "there.safetensors", "moved.safetensors")
        run(src, arch, tmp, "moved.safetensors", "back.safetensors")
        there, back = (worker.read_arrays(str(tmp / f)) for f in ("there.safetensors", "back.safetensors"))
    np.testing.assert_allclose(y_dst, y_src, rtol=RTOL, atol=ATOL)
    assert_bitwise(there, kept_by(values, kept_src))
    assert_bitwise(back, kept_by(there, kept_dst))


@pytest.mark.parametrize("src,dst", PAIRS_ACROSS, ids=_ids(PAIRS_ACROSS))
@budget(SHARE[1])
@given(arch=architectures())
def test_file_bridge_agrees_and_comes_back_bitwise(src, dst, arch, mxnet_python):
    check_bridge(src, dst, arch)


# -- counterexamples the search found, kept as regression tests ------------------------------------
def test_regression_a_scalar_crosses_the_file_bridge_as_a_scalar(tmp_path):
    """``worker.write_arrays`` made a 0-d array 1-d (``np.ascontiguousarray``),
    so torch's ``num_batches_tracked`` written for another environment no
    longer fit (torch -> mxnet -> torch of ``Sequential(BatchNorm())``:
    ShapeError, shape (1,) where the torch model has ())."""
    worker.write_arrays({"counter": np.array(7, dtype=np.int64)}, str(tmp_path / "c.safetensors"))
    counter = worker.read_arrays(str(tmp_path / "c.safetensors"))["counter"]
    assert counter.shape == () and counter == 7


@pytest.mark.parametrize("backend", HERE)
def test_regression_worker_outputs_of_a_model_without_parameters(backend, tmp_path):
    """A worker job's outputs took ``m.grad``, which refuses a model with no
    trainable parameter (``Sequential(ReLU())`` through the file bridge);
    such a model has its output and no gradient."""
    arch = Arch(nn.Sequential(nn.ReLU()), (2, 3), seed=0)
    worker.write_arrays({"x": arch.x}, str(tmp_path / "x.safetensors"))
    worker.run({"backend": backend, "spec": nn.to_config(arch.spec), "input": str(tmp_path / "x.safetensors"),
                "outputs": str(tmp_path / "y.safetensors")})
    assert list(worker.read_arrays(str(tmp_path / "y.safetensors"))) == ["y"]
