"""Bad input, per backend: a clear error and nothing changed."""
import numpy as np
import pytest

import multiparam as mp

from .models import mlp


@pytest.fixture
def m(X):
    return mp.wrap(mlp(), sample_input=X)


def test_unknown_name_suggests_close_matches(m):
    with pytest.raises(mp.UnknownNameError) as err:
        m["2.bais"]
    assert "2.bias" in str(err.value)
    assert isinstance(err.value, KeyError)
    with pytest.raises(mp.UnknownNameError, match="weight"):
        m[2]["wieght"]


def test_set_wrong_shape_changes_nothing(m, kit):
    before = kit.read(m, "0.weight")
    with pytest.raises(mp.ShapeError, match=r"\(8, 4\)"):
        m["0.weight"].set(np.zeros((4, 8), dtype=np.float32))
    with pytest.raises(mp.ShapeError):
        m["0.weight"].set(np.zeros(32, dtype=np.float32))
    np.testing.assert_array_equal(kit.read(m, "0.weight"), before)


def test_set_unsafe_dtype_changes_nothing(m, kit):
    before = kit.read(m, "0.bias")
    with pytest.raises(mp.DtypeError):
        m["0.bias"].set(np.ones(8, dtype=np.complex64))
    with pytest.raises(mp.DtypeError):
        m["0.bias"][0] = 1 + 2j
    np.testing.assert_array_equal(kit.read(m, "0.bias"), before)


def test_bad_index_changes_nothing(m, kit):
    before = kit.read(m, "0.weight")
    with pytest.raises(IndexError):
        m["0.weight"][8, 0] = 1.0
    with pytest.raises(ValueError):
        m["0.weight"][0] = np.ones(5)
    np.testing.assert_array_equal(kit.read(m, "0.weight"), before)


def test_wrap_rejects_wrong_backend(backend, m):
    other = next(b for b in mp.available_backends() if b != backend)
    with pytest.raises(mp.UnsupportedModelError, match=other):
        mp.wrap(m.native, backend=other)
