"""Tying after construction, per backend: the framework itself then uses one
parameter (native forward, native gradient, native optimizer step)."""
import numpy as np
import pytest

import multiparam as mp

from .conftest import needs
from .models import numpy_forward, numpy_grads


def untied_net():
    """The chapter's shared-layer MLP, but built with two separate layers."""
    return mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), mp.nn.Dense(8), mp.nn.ReLU(),
                            mp.nn.Dense(8), mp.nn.ReLU(), mp.nn.Dense(1))


@pytest.fixture
def m(X):
    m = mp.wrap(untied_net(), sample_input=X)
    assert m.ties() == []
    return m


def test_tie_layer_after_construction(m, kit, X):
    src = m["2.weight"].numpy()
    n_before = kit.count(m)
    m.tie("4", "2")
    assert m.ties() == [("2.weight", "4.weight"), ("2.bias", "4.bias")]
    assert m["4.weight"] is m["2.weight"]
    assert list(m.named_parameters()) == ["0.weight", "0.bias", "2.weight", "2.bias",
                                          "6.weight", "6.bias"]
    np.testing.assert_array_equal(kit.read(m, "4.weight"), src)    # dst took src's values
    assert kit.count(m) == n_before - 8 * 8 - 8                      # the framework counts one
    np.testing.assert_allclose(kit.forward(m, X), numpy_forward(m, X), rtol=1e-5, atol=1e-5)


def test_identity_after_tie(m, kit):
    m.tie("4", "2")
    m["2.weight"][0, 0] = 100          # net[2].weight.data[0, 0] = 100
    assert kit.read(m, "4.weight")[0, 0] == 100
    m["4.bias"][:] = 7                 # writing through the alias reaches the source
    np.testing.assert_array_equal(kit.read(m, "2.bias"), np.full(8, 7, dtype=np.float32))


def test_native_gradient_sums_both_uses(m, kit, X):
    m.tie("4", "2")
    native = kit.grads(m, X)
    ref = numpy_grads(m, X)
    np.testing.assert_allclose(native["2.weight"], ref["2.weight"], rtol=1e-4, atol=1e-5)
    grads = m.grad(X)
    assert "4.weight" not in grads
    np.testing.assert_allclose(grads["2.weight"], ref["2.weight"], rtol=1e-4, atol=1e-5)


def test_native_optimizer_updates_the_tie_once(m, kit, X):
    m.tie("4", "2")
    before = m["2.weight"].numpy()
    g = numpy_grads(m, X)["2.weight"]
    kit.sgd_step(m, X, lr=0.1)        # torch.optim.SGD / keras SGD / gluon Trainer / optax
    np.testing.assert_allclose(kit.read(m, "2.weight"), before - 0.1 * g, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(kit.read(m, "4.weight"), kit.read(m, "2.weight"))


def test_tie_single_parameter(m, kit, X):
    m.tie("4.weight", "2.weight")
    assert m.ties() == [("2.weight", "4.weight")]
    assert m["4.bias"] is not m["2.bias"]
    np.testing.assert_allclose(kit.forward(m, X), numpy_forward(m, X), rtol=1e-5, atol=1e-5)


def test_tie_transposed(m, adapter, kit, X):
    if not adapter.capability("tie_transposed").supported:
        # a declared limit: a clear error, and nothing tied
        with pytest.raises(mp.CapabilityError, match="transpose"):
            m.tie("4.weight", "2.weight", transpose=True)
        assert m.ties() == []
        return
    m.tie("4.weight", "2.weight", transpose=True)
    w = m["2.weight"].numpy()
    np.testing.assert_array_equal(m["4.weight"].value, w.T)
    np.testing.assert_array_equal(kit.read(m, "4.weight"), w.T)
    m["2.weight"][0, 1] = 5
    assert kit.read(m, "4.weight")[1, 0] == 5
    np.testing.assert_allclose(kit.forward(m, X), numpy_forward(m, X), rtol=1e-5, atol=1e-5)
    g = m.grad(X)
    assert "4.weight" not in g


BAD_TIES = {   # label -> (exception, message pattern, tie arguments)
    "shape mismatch": (mp.ShapeError, r"\(8, 4\)", ("2.weight", "0.weight")),       # (8, 8) vs (8, 4)
    "transposed shape mismatch": (mp.ShapeError, "transpose", ("2.weight", "0.weight", True)),
    "layer shapes differ": (mp.ShapeError, None, ("6", "2")),                        # Dense(1) vs Dense(8)
    "itself": (mp.MultiparamError, "itself", ("2", "2")),
    "unknown name": (mp.UnknownNameError, "2.weight", ("4.weight", "2.wieght")),
    "layer to parameter": (TypeError, None, ("4", "2.weight")),
}


@pytest.mark.parametrize("bad", list(BAD_TIES))
def test_bad_ties_change_nothing(bad, m, kit):
    exc, match, (dst, src, *transpose) = BAD_TIES[bad]
    before = {n: kit.read(m, n) for n in m.named_parameters()}
    with pytest.raises(exc, match=match):
        m.tie(dst, src, transpose=bool(transpose))
    assert m.ties() == []
    for n, v in before.items():
        np.testing.assert_array_equal(kit.read(m, n), v)


def test_exercise_trains_shared_mlp_with_multiparam_calls_only(backend, capsys):
    """examples/train_shared_mlp.py: loss goes down, the tie holds, and the
    numbers are the same on every backend (portable init, same data)."""
    import pathlib
    import runpy

    script = pathlib.Path(__file__).resolve().parents[2] / "examples" / "train_shared_mlp.py"
    main = runpy.run_path(str(script), run_name="example")["main"]
    assert main(["--backend", backend, "--steps", "100"]) == 0
    out = capsys.readouterr().out
    losses = [float(line.split("loss")[1]) for line in out.splitlines() if line.startswith("step")]
    assert losses[-1] < losses[0] / 2
    assert "layers 2 and 4 still identical: True" in out
    # the same trajectory everywhere: portable init and float32 math
    assert abs(losses[-1] - 0.03917) < 5e-4, losses


def test_ties_join_like_with_like(kit):
    """A running statistic tied to a trainable parameter breaks torch's
    forward and means nothing anywhere: refused, nothing tied."""
    m = mp.wrap(mp.nn.Sequential(mp.nn.Dense(4), mp.nn.BatchNorm()),
                sample_input=np.ones((2, 3), np.float32))
    before = m.ties()
    with pytest.raises(mp.MultiparamError, match="statistics with statistics"):
        m.tie("1.running_mean", "0.bias")
    with pytest.raises(mp.MultiparamError, match="statistics with statistics"):
        m.tie("0.bias", "1.running_var")
    assert m.ties() == before
