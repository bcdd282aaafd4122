"""Canonical layout conversions against hand-written NumPy."""
import numpy as np
import pytest

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
    from multiparam.adapters.base import Permuted, channels_last_flatten

    c, h, w, out = 3, 2, 4, 5
    tag = Permuted(DENSE_IN_OUT, channels_last_flatten(c, h, w))
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


def test_per_feature_vector_after_flatten():
    from multiparam.adapters.base import Permuted, channels_last_flatten

    c, h, w = 3, 2, 4
    tag = Permuted(SAME, channels_last_flatten(c, h, w))
    canonical = np.arange(c * h * w, dtype=np.float32)          # feature index in (C, H, W) order
    native = layout.to_native(canonical, tag)
    # the (H, W, C) flatten of the same map holds feature (c, h, w) at (h*W + w)*C + c
    np.testing.assert_array_equal(native, canonical.reshape(c, h, w).transpose(1, 2, 0).reshape(-1))
    np.testing.assert_array_equal(layout.to_canonical(native, tag), canonical)


def test_unknown_order_refuses_values_but_gives_shapes():
    from multiparam.adapters.base import FeatureOrderError, UnknownOrder

    tag = UnknownOrder(DENSE_IN_OUT, "because")
    assert layout.shape_to_canonical((6, 2), tag) == (2, 6)
    with pytest.raises(FeatureOrderError, match="because"):
        layout.to_canonical(np.zeros((6, 2)), tag)


def test_labels_follow_a_flatten_of_a_channels_last_map():
    from multiparam.adapters.base import Permuted, channels_last_flatten

    L = layout.Labels()
    x = L.image((2, 4, 5, 3))                               # NHWC of torch's (2, 3, 4, 5)
    flat = L.reshape(x, (2, 4, 5, 3), (2, 60))
    kernel = L.param("k", (60, 7))
    L.contract(flat, kernel, (2, 60), (60, 7), ((1,), (0,)), ((), ()))
    assert L.layout("k", 0, DENSE_IN_OUT, "k") == Permuted(DENSE_IN_OUT, channels_last_flatten(3, 4, 5))
    # transposed to torch's order first: nothing to permute
    L = layout.Labels()
    x = L.transpose(L.image((2, 4, 5, 3)), (0, 3, 1, 2))
    flat = L.reshape(x, (2, 3, 4, 5), (2, 60))
    L.contract(flat, L.param("k", (60, 7)), (2, 60), (60, 7), ((1,), (0,)), ((), ()))
    assert L.layout("k", 0, DENSE_IN_OUT, "k") == DENSE_IN_OUT


def _residual_dense(L):
    """``x + dense(x)`` on features in torch's order; the bias rides on dense(x)."""
    x = L.plain((2, 8))
    h = L.contract(x, L.param("k", (8, 8)), (2, 8), (8, 8), ((1,), (0,)), ((), ()))
    h = L.elementwise([h, L.broadcast(L.param("b", (8,)), (8,), (2, 8), (1,))])
    return L.elementwise([x, h])


def _residual_conv_then_flatten(L):
    """``x + conv(x)`` on an NHWC map (labels made apart, at torch's same
    ranks), flattened into a dense kernel."""
    x = L.image((2, 4, 5, 3))
    c = L.convolve(x, (2, 4, 5, 3), (0, 3, 1, 2), (0, 3, 1, 2))
    flat = L.reshape(L.elementwise([x, c]), (2, 4, 5, 3), (2, 60))
    return L.contract(flat, L.param("k", (60, 7)), (2, 60), (60, 7), ((1,), (0,)), ((), ()))


#: counterexamples: a residual around a layer lost the order of everything on it
#: (a Flax x + Dense(x) bias, NNX MultiHeadAttention's out bias, then unreadable)
RESIDUALS = {
    "dense-bias-in-torch-order": (_residual_dense, "b", SAME, None),
    "conv-block-then-flatten": (_residual_conv_then_flatten, "k", DENSE_IN_OUT, (3, 4, 5)),
}


@pytest.mark.parametrize("case", list(RESIDUALS))
def test_labels_follow_a_residual_connection(case):
    from multiparam.adapters.base import Permuted, channels_last_flatten

    build, key, base, flattened = RESIDUALS[case]
    L = layout.Labels()
    build(L)
    want = base if flattened is None else Permuted(base, channels_last_flatten(*flattened))
    assert L.layout(key, 0, base, key) == want
