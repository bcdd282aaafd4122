"""Gradients, per backend: NumPy reference, native autograd, the chapter's 9 and 6."""
import numpy as np
import pytest

import multiparam as mp

from .conftest import needs_fact
from .models import mlp, numpy_grads, shared_net, tied_1x1


def test_grad_matches_numpy_reference(X):
    m = mp.wrap(mlp(), sample_input=X)
    grads = m.grad(X)
    ref = numpy_grads(m, X)
    assert list(grads) == list(m.named_parameters())
    for name, g in grads.items():
        np.testing.assert_allclose(g, ref[name], rtol=1e-5, atol=1e-6)
        assert g.shape == m[name].shape


def test_grad_matches_native_autograd(kit, X):
    m = mp.wrap(mlp(), sample_input=X)
    grads = m.grad(X)
    native = kit.grads(m, X)
    for name, g in grads.items():
        np.testing.assert_allclose(g, native[name], rtol=1e-5, atol=1e-6)


def test_tied_grad_is_sum_of_uses(X):
    m = mp.wrap(shared_net(), sample_input=X)
    grads = m.grad(X)
    assert "4.weight" not in grads
    ref = numpy_grads(m, X)
    for name, g in grads.items():
        np.testing.assert_allclose(g, ref[name], rtol=1e-4, atol=1e-5)


def test_chapter_fact_9_and_6(kit):
    # seed 004: Linear(1, 1, bias=False) twice, weight 3, x = 1: y = 9, grad = 6
    m = mp.wrap(tied_1x1())
    m["0.weight"].set(np.array([[3.0]]))
    x = np.ones((1, 1), dtype=np.float32)
    assert float(kit.to_numpy(m(x)).sum()) == 9.0
    assert float(kit.forward(m, x).sum()) == 9.0
    assert m.ties() == [("0.weight", "1.weight")]
    grads = m.grad(x)
    assert list(grads) == ["0.weight"]
    assert grads["0.weight"].tolist() == [[6.0]]
    assert m["1.weight"].grad.tolist() == [[6.0]]


def test_grad_leaves_the_model_alone(kit, X):
    """m.grad computes gradients and changes nothing the framework sees."""
    m = mp.wrap(mlp(), sample_input=X)
    before = {name: kit.read(m, name) for name in m.named_parameters()}
    y = kit.forward(m, X)
    m.grad(X)
    for name, value in before.items():
        np.testing.assert_array_equal(kit.read(m, name), value, err_msg=name)
    np.testing.assert_array_equal(kit.forward(m, X), y)


def test_p_grad_is_the_last_m_grad_without_a_native_backward(X):
    m = mp.wrap(mlp(), sample_input=X)
    grads = m.grad(X)
    ref = numpy_grads(m, X)
    for name, p in m.named_parameters().items():
        np.testing.assert_array_equal(p.grad, grads[name], err_msg=name)
        np.testing.assert_allclose(p.grad, ref[name], rtol=1e-5, atol=1e-6, err_msg=name)


def _assert_same_grads(now, before):
    assert list(now) == list(before)
    for name, g in now.items():
        if before[name] is None:
            assert g is None, name
        else:
            np.testing.assert_array_equal(g, before[name], err_msg=name)


def test_grad_leaves_native_gradients_alone(kit, X):
    """A native training loop keeps its accumulated gradients: m.grad neither
    creates nor changes torch's .grad or Gluon's grad()."""
    needs_fact(kit, "KEEPS_NATIVE_GRAD", "the framework keeps no gradient on its parameters")
    m = mp.wrap(mlp(), sample_input=X)
    untouched = kit.native_grads(m)      # torch: None; Gluon: its zero-filled buffers
    m.grad(X)
    _assert_same_grads(kit.native_grads(m), untouched)
    kit.backward(m, X)
    accumulated = kit.native_grads(m)
    m.grad(2 * X)
    _assert_same_grads(kit.native_grads(m), accumulated)


def test_p_grad_is_the_frameworks_own_after_a_native_backward(kit, X):
    needs_fact(kit, "KEEPS_NATIVE_GRAD", "the framework keeps no gradient on its parameters")
    m = mp.wrap(mlp(), sample_input=X)
    m.grad(2 * X)                       # a different gradient, which p.grad must not report
    kit.backward(m, X)
    native = kit.native_grads(m)
    ref = numpy_grads(m, X)
    for name, p in m.named_parameters().items():
        np.testing.assert_array_equal(p.grad, native[name], err_msg=name)
        np.testing.assert_allclose(p.grad, ref[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_non_scalar_loss_is_rejected(X):
    m = mp.wrap(mlp(), sample_input=X)
    with pytest.raises(ValueError, match="scalar"):
        m.grad(X, loss=lambda out, target: out)
    with pytest.raises(ValueError, match="unknown loss"):
        m.grad(X, loss="hinge")
