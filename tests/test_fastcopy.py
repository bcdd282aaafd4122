"""multiparam.fastcopy: the copies between layouts, against NumPy's own."""
import numpy as np
import pytest

from multiparam import fastcopy

SHAPES = [(3, 5), (257, 513), (600, 1000), (1024, 300)]
DTYPES = ["float32", "float16", "float64", "int8", "int64"]


def _transposed_view(shape, dtype):
    rng = np.random.default_rng(0)
    base = (rng.standard_normal(shape) * 100).astype(dtype)
    return base.T


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_contiguous_copy_of_a_transposed_view_is_numpys(shape, dtype):
    view = _transposed_view(shape, dtype)
    out = fastcopy.contiguous(view)
    np.testing.assert_array_equal(out, np.ascontiguousarray(view))
    assert out.dtype == view.dtype and out.flags.c_contiguous and out.flags.writeable
    assert fastcopy.is_aligned(out) and not np.shares_memory(out, view)


def test_a_contiguous_array_is_returned_as_it_is():
    a = np.arange(12.0).reshape(3, 4)
    assert fastcopy.contiguous(a) is a


@pytest.mark.parametrize("axes", [(2, 0, 1), (1, 0, 2), (3, 2, 1, 0)], ids=str)
def test_other_permutations_are_copied_exactly(axes):
    base = np.arange(np.prod([6, 70, 80, 3][:len(axes)]), dtype=np.float32).reshape([6, 70, 80, 3][:len(axes)])
    view = base.transpose(axes)
    np.testing.assert_array_equal(fastcopy.contiguous(view), np.ascontiguousarray(view))


@pytest.mark.parametrize("dtype", ["float32", "float16", "int32"])
def test_aligned_copy_casts_and_never_aliases(dtype):
    a = np.linspace(-3, 3, 300 * 301).reshape(300, 301)
    out = fastcopy.aligned_copy(a, dtype)
    np.testing.assert_array_equal(out, a.astype(dtype))
    assert fastcopy.is_aligned(out) and not np.shares_memory(out, a)
    same = fastcopy.aligned_copy(out)
    assert not np.shares_memory(same, out)


@pytest.mark.parametrize("shape", [(0, 4), (4, 0), (1,), ()], ids=str)
def test_empty_and_tiny_buffers_are_aligned(shape):
    out = fastcopy.empty_aligned(shape, np.float32)
    assert out.shape == shape and out.flags.c_contiguous


def test_transposes_from_several_threads_at_once_are_each_exact():
    # callers on several threads (a transfer's conversion workers) share the
    # package's transpose workers: each must get its own exact result
    from concurrent.futures import ThreadPoolExecutor
    views = [_transposed_view((600 + 7 * i, 1000 - 13 * i), "float32") for i in range(8)]
    with ThreadPoolExecutor(4) as callers:
        outs = list(callers.map(fastcopy.contiguous, views))
    for out, view in zip(outs, views):
        np.testing.assert_array_equal(out, np.ascontiguousarray(view))


@pytest.mark.parametrize("dtype", ["uint8", "float32", "float64"])
def test_a_large_plain_copy_is_exact_from_read_only_memory(dtype):
    # at LARGE_COPY and above a contiguous copy is handed to a framework's
    # kernel or split over the cores: every element lands once, in place,
    # also for a size the parts do not divide evenly
    itemsize = np.dtype(dtype).itemsize
    source = np.random.default_rng(3).integers(0, 256, fastcopy.LARGE_COPY + 3 * 4096 + 8 * 7,
                                                dtype=np.uint8).view(dtype)
    source.flags.writeable = False
    out = np.zeros_like(source)
    fastcopy.copy_into(out, source)
    assert out.nbytes >= fastcopy.LARGE_COPY and out.size * itemsize == source.nbytes
    np.testing.assert_array_equal(out.view(np.uint8), source.view(np.uint8))
