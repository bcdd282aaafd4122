"""Transposing copies in a process where the backend's framework is
imported: whichever kernel ``multiparam.fastcopy`` picks here (a backend's
own, or tiled NumPy) copies every bit as NumPy's strided copy does."""
import numpy as np
import pytest

from multiparam import dtypes, fastcopy

DTYPES = ["float32", "float16", "bfloat16", "float64", "int8", "int64", "bool"]


@pytest.fixture(autouse=True)
def _framework_imported(adapter):
    """The backend's framework is imported (the kernel choice depends on it)."""
    return adapter


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(300, 700), (1024, 256)], ids=str)
def test_transposing_copy_is_bit_exact(dtype, shape):
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 256, size=shape + (dtypes.dtype(dtype).itemsize,), dtype=np.uint8)
    base = bits.view(dtypes.dtype(dtype)).reshape(shape)   # every bit pattern, NaNs included
    view = base.T
    out = fastcopy.contiguous(view)
    assert out.dtype == view.dtype and out.flags.c_contiguous and fastcopy.is_aligned(out)
    np.testing.assert_array_equal(out.view(np.uint8), np.ascontiguousarray(view).view(np.uint8))
