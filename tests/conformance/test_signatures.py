"""Any forward signature, and losses that understand what models return.

``m.grad`` takes one input, a tuple of positional inputs or a dict of
keyword inputs; ``m(...)`` passes positional and keyword inputs through
unchanged.  Integer targets keep their dtype (class labels), a model
without a loss of its own says what ``loss="model"`` needs, and inference
mode (``train=False``) equals the framework's own inference forward.
"""
import numpy as np
import pytest

import multiparam as mp


def _model(x):
    return mp.wrap(mp.nn.Sequential(mp.nn.Dense(5), mp.nn.ReLU(), mp.nn.Dense(3)), sample_input=x)


def test_a_tuple_is_positional_inputs(X):
    m = _model(X)
    one, tupled = m.grad(X), m.grad((X,))
    assert set(one) == set(tupled)
    for name in one:
        np.testing.assert_array_equal(one[name], tupled[name])


def test_integer_targets_stay_integer(X, kit, adapter):
    m = _model(X)
    seen = {}

    def loss(out, target):
        seen["kind"] = kit.to_numpy(target).dtype.kind
        return adapter.reduce_sum(out)          # the framework's own sum

    m.grad(X, loss=loss, target=np.array([2, 0]))
    assert seen["kind"] in "iu"
    m.grad(X, loss=loss, target=np.zeros((2, 3)))
    assert seen["kind"] == "f"


def test_loss_model_needs_a_model_loss(X):
    m = _model(X)
    with pytest.raises(ValueError, match="labels"):
        m.grad(X, loss="model")


def test_inference_mode_is_the_frameworks(X, kit):
    m = _model(X)
    np.testing.assert_allclose(kit.to_numpy(m(X, train=False)), kit.forward(m, X), rtol=1e-6)
