"""Canonical layout conversions against hand-written NumPy."""
import numpy as np

from multiparam import layout
from multiparam.adapters.base import CHANNELS_LAST_KERNEL, DENSE_IN_OUT, SAME


def test_dense_in_out_is_a_transpose_view():
    native = np.arange(12, dtype=np.float32).reshape(3, 4)   # (in, out)
    canon = layout.to_canonical(native, DENSE_IN_OUT)
    assert canon.shape == (4, 3) and np.shares_memory(canon, native)
    np.testing.assert_array_equal(canon, native.T)
    np.testing.assert_array_equal(layout.to_native(canon, DENSE_IN_OUT), native)


def test_channels_last_kernel():
    native = np.random.default_rng(0).normal(size=(3, 5, 2, 7))   # (kh, kw, in, out)
    canon = layout.to_canonical(native, CHANNELS_LAST_KERNEL)
    assert canon.shape == (7, 2, 3, 5)
    np.testing.assert_array_equal(canon[6, 1, 2, 4], native[2, 4, 1, 6])
    np.testing.assert_array_equal(layout.to_native(canon, CHANNELS_LAST_KERNEL), native)
    assert layout.shape_to_canonical((3, 5, 2, 7), CHANNELS_LAST_KERNEL) == (7, 2, 3, 5)


def test_vectors_and_same_are_untouched():
    v = np.ones(5)
    assert layout.to_canonical(v, DENSE_IN_OUT) is v
    assert layout.to_canonical(v, SAME) is v


def test_fans_from_canonical_axes():
    assert layout.fans((8, 4)) == (4, 8)
    assert layout.fans((16, 3, 5, 5)) == (75, 400)
