"""Moving weights between frameworks: all 12 ordered pairs of backends.

torch, jax and tensorflow transfer in this process with mp.transfer; pairs
with MXNet go through a portable file and the MXNet worker environment (the
migration off a retired framework).  Verified by output and gradient
equality after the move, in inference mode (BatchNorm running statistics),
with the same canonical input given to each backend in its own layout
(NHWC for Keras and Flax)."""
import itertools
import json
import os

import numpy as np
import pytest

import multiparam as mp
from multiparam import bridge, compare, nn, worker
from multiparam.registry import available_backends, import_order

BACKEND_ORDER = tuple(import_order(available_backends()))
PAIRS = list(itertools.permutations(BACKEND_ORDER, 2))
ARCHS = ["mlp", "shared", "rgnet", "cnn", "lstm", "embedding"]
LOCAL = ("torch", "jax", "tensorflow")


def _x(arch):
    return compare.sample_input(arch, seed=1)


def _run(backend, arch, tmp_path, **job):
    spec, _ = compare.ARCHITECTURES[arch]
    inp = str(tmp_path / "x.safetensors")
    worker.write_arrays({"x": _x(arch)}, inp)
    out = str(tmp_path / f"{backend}-{len(os.listdir(tmp_path))}.safetensors")
    ties = [list(t) for t in compare.TIES.get(arch, [])]
    info = worker.run(dict(job, backend=backend, spec=nn.to_config(spec()), input=inp, outputs=out,
                           ties=ties))
    return info, worker.read_arrays(out)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("src,dst", PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_transfer_pair(src, dst, arch, tmp_path, mxnet_python):
    weights = str(tmp_path / "w.safetensors")
    if src in LOCAL and dst in LOCAL:
        _transfer_in_process(src, dst, arch)
        return
    # across environments: the source saves a portable file, the destination loads it
    info_a, out_a = _run(src, arch, tmp_path, seed=3, init="xavier_uniform", save=weights)
    info_b, out_b = _run(dst, arch, tmp_path, load=weights)
    assert info_a["ties"] == info_b["ties"]
    assert sorted(out_a) == sorted(out_b)
    for key in out_a:
        np.testing.assert_allclose(out_b[key], out_a[key], rtol=1e-5, atol=1e-6, err_msg=key)


def _transfer_in_process(src, dst, arch):
    # mp.transfer, then each framework's own forward and gradient agree
    a, xa = compare.build(arch, src, _x(arch))
    a.init(mp.init.normal(0, 0.5), seed=3)
    b, xb = compare.build(arch, dst, _x(arch))
    mp.transfer(a, b)
    assert b.ties() == a.ties()
    ya = mp.layout.output_to_canonical(mp.param.as_numpy(a(xa, train=False)), a.channels_last)
    yb = mp.layout.output_to_canonical(mp.param.as_numpy(b(xb, train=False)), b.channels_last)
    np.testing.assert_allclose(yb, ya, rtol=1e-5, atol=1e-6)
    ga, gb = a.grad(xa), b.grad(xb)
    assert list(ga) == list(gb)
    for name in ga:
        np.testing.assert_allclose(gb[name], ga[name], rtol=1e-5, atol=1e-6)


LOCAL_PAIRS = [p for p in PAIRS if p[0] in LOCAL and p[1] in LOCAL]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("src,dst", LOCAL_PAIRS, ids=[f"{a}->{b}" for a, b in LOCAL_PAIRS])
def test_transfer_with_every_value_taken_ahead(src, dst, arch, monkeypatch):
    """The same transfer with every value large enough to be converted or
    written on a worker beside the others (three cores): ties, composites
    and small models too, so the order and the exclusions are exercised."""
    from tests.spies import every_value_ahead
    every_value_ahead(monkeypatch)
    _transfer_in_process(src, dst, arch)


@pytest.mark.parametrize("src,dst", LOCAL_PAIRS, ids=lambda p: str(p))
def test_mismatched_architecture_names_first_misfit(src, dst):
    x = _x("mlp")
    a = mp.wrap(nn.Sequential(nn.Dense(8), nn.ReLU(), nn.Dense(2)), backend=src, sample_input=x)
    b = mp.wrap(nn.Sequential(nn.Dense(8), nn.ReLU(), nn.Dense(1)), backend=dst, sample_input=x)
    before = b.state_dict()
    with pytest.raises(mp.ShapeError, match=r"'2\.weight'.*\(2, 8\).*\(1, 8\)"):
        mp.transfer(a, b)
    for name, v in before.items():
        np.testing.assert_array_equal(b[name].value, v)


def test_compare_all_four(tmp_path, mxnet_python):
    result = compare.compare("shared", list(BACKEND_ORDER), seed=0)
    worst = max(max(c["output"], c["grad"]) for c in result["matrix"].values())
    assert worst < 1e-5
    assert set(result["names"]) == set(BACKEND_ORDER)
    assert all(list(n) == list(result["names"]["torch"]) for n in result["names"].values())
    page = compare.render_html(result)
    assert "<table>" in page and "dense0_weight" in page or "_weight" in page
    text = compare.render_text(result)
    assert "mxnet" in text and "params/layers_0/kernel" in text


@pytest.mark.parametrize("bar", [True, False])
def test_compare_draws_a_bar_over_the_backends_on_request(capfd, bar):
    """``compare`` shows a progress bar over the backends when asked (and in
    a terminal after a second); never with ``bar=False``."""
    backends = [b for b in BACKEND_ORDER if bridge.importable_here(b)][:2]   # in this process: quick
    capfd.readouterr()
    compare.compare("mlp", backends, seed=0, bar=bar)
    err = capfd.readouterr().err
    assert ("compare" in err and "backends" in err) == bar
