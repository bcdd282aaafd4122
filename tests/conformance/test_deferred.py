"""Deferred shapes, per backend: torch Lazy modules, Gluon deferred
initialisation, unbuilt Keras layers, Flax modules before init."""
import numpy as np
import pytest

import multiparam as mp

from .models import MLP_DEFERRED, MLP_SHAPES, mlp


def test_unknown_dims_are_none_before_first_forward():
    m = mp.wrap(mlp())
    assert m.shapes() == MLP_DEFERRED
    assert m["0.weight"].materialized is False


def test_reading_explains_how_to_materialise():
    m = mp.wrap(mlp())
    with pytest.raises(mp.NotMaterializedError, match=r"sample_input"):
        m["0.weight"].value
    with pytest.raises(mp.NotMaterializedError):
        m.num_parameters()
    with pytest.raises(mp.NotMaterializedError):
        m["0.weight"].set(np.zeros((8, 4)))
    assert "unknown until the first forward" in str(m.summary())


def test_first_forward_makes_shapes_known(X):
    m = mp.wrap(mlp())
    m(X)
    assert m.shapes() == MLP_SHAPES
    assert m["0.weight"].value.shape == (8, 4)


def test_sample_input_materialises_at_wrap(X):
    assert mp.wrap(mlp(), sample_input=X).shapes() == MLP_SHAPES


def test_known_in_features_needs_no_forward():
    spec = mp.nn.Sequential(mp.nn.Dense(3, in_features=2))
    m = mp.wrap(spec)
    assert m.shapes() == {"0.weight": (3, 2), "0.bias": (3,)}
    assert m["0.weight"].value.shape == (3, 2)
