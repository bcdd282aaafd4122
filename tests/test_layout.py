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


def test_dense_after_flatten_round_trip_and_permutation():
    from multiparam.adapters.base import DenseAfterFlatten

    c, h, w, out = 3, 2, 4, 5
    tag = DenseAfterFlatten(c, h, w)
    canonical = np.arange(out * c * h * w, dtype=np.float32).reshape(out, c * h * w)
    native = layout.to_native(canonical, tag)
    assert native.shape == (h * w * c, out)
    np.testing.assert_array_equal(layout.to_canonical(native, tag), canonical)
    # the same function: x (C, H, W) flattened torch's way vs (H, W, C) the Keras way
    x = np.random.default_rng(0).normal(size=(c, h, w))
    np.testing.assert_allclose(canonical @ x.reshape(-1), x.transpose(1, 2, 0).reshape(-1) @ native)
    assert layout.shape_to_canonical(native.shape, tag) == canonical.shape


def test_input_to_native_only_moves_images():
    x = np.zeros((2, 3, 4, 5))
    assert layout.input_to_native(x, True).shape == (2, 4, 5, 3)
    assert layout.input_to_native(x, False) is x
    ids = np.zeros((2, 5), dtype=np.int64)
    assert layout.input_to_native(ids, True) is ids
    assert layout.output_to_canonical(np.zeros((2, 4, 5, 3)), True).shape == (2, 3, 4, 5)
