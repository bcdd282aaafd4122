"""Gradients, per backend: NumPy reference, native autograd, the chapter's 9 and 6."""
import numpy as np
import pytest

import multiparam as mp

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


def test_chapter_fact_9_and_6():
    # seed 004: Linear(1, 1, bias=False) twice, weight 3, x = 1: y = 9, grad = 6
    m = mp.wrap(tied_1x1())
    m["0.weight"].set(np.array([[3.0]]))
    x = np.ones((1, 1), dtype=np.float32)
    assert float(mp.param.as_numpy(m(x)).sum()) == 9.0
    assert m.ties() == [("0.weight", "1.weight")]
    grads = m.grad(x)
    assert list(grads) == ["0.weight"]
    assert grads["0.weight"].tolist() == [[6.0]]
    assert m["1.weight"].grad.tolist() == [[6.0]]


def test_grad_leaves_native_gradients_alone(X):
    m = mp.wrap(mlp(), sample_input=X)
    m.grad(X)
    if m.backend in ("torch", "mxnet"):   # frameworks that keep gradients on parameters
        assert m.adapter.native_grad(m._state, m["0.weight"]._slot.ref) is None


def test_non_scalar_loss_is_rejected(X):
    m = mp.wrap(mlp(), sample_input=X)
    with pytest.raises(ValueError, match="scalar"):
        m.grad(X, loss=lambda out, target: out)
    with pytest.raises(ValueError, match="unknown loss"):
        m.grad(X, loss="hinge")
