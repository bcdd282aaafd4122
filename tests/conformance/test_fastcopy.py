"""Copies in a process where the backend's framework is imported: whichever
kernel ``multiparam.fastcopy`` picks here (a backend's own, or NumPy's)
copies every bit as NumPy's own copy does, and a load's large tensors go
through it."""
import numpy as np
import pytest

from multiparam import dtypes, fastcopy
from multiparam.adapters.base import Adapter

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


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_plain_copy_is_bit_exact(dtype):
    # what a load's read of a large tensor from the file's mapping runs
    size = fastcopy.LARGE_COPY // dtypes.dtype(dtype).itemsize + 4099
    source = _every_bit_pattern(dtype, (size,))
    out = np.zeros_like(source)
    fastcopy.copy_into(out, source)
    np.testing.assert_array_equal(out.view(np.uint8), source.view(np.uint8))


def test_a_large_tensor_loads_through_the_framework_kernel_when_offered(adapter, tmp_path, monkeypatch):
    """A load copies a large tensor from the file's mapping exactly, and by
    the backend's own copy kernel where it offers one (faster than NumPy's;
    see ``multiparam.fastcopy``); a small one by one NumPy copy."""
    from safetensors.numpy import save_file

    from multiparam import checkpoint
    calls = []
    offered = type(adapter).copy_kernel
    if offered is not None:
        kernel = offered.__func__ if hasattr(offered, "__func__") else offered

        def spy(out, src):
            calls.append(src.nbytes)
            return kernel(out, src)
        monkeypatch.setattr(type(adapter), "copy_kernel", staticmethod(spy))
    monkeypatch.setattr(fastcopy, "_kernel_cache", {})
    big = _every_bit_pattern("float32", (fastcopy.KERNEL_COPY // 4 + 1024,))
    small = _every_bit_pattern("float32", (300,))
    save_file({"big": big, "small": small}, str(tmp_path / "f.safetensors"))
    ck = checkpoint.open_checkpoint(tmp_path / "f.safetensors")
    for name, want in (("big", big), ("small", small)):
        out = np.zeros_like(want)
        ck.read_into(name, out)
        np.testing.assert_array_equal(out.view(np.uint8), want.view(np.uint8))
    assert calls == ([big.nbytes] if offered is not None else [])


def _offers_own_transpose(adapter) -> bool:
    return type(adapter).transposed_array is not Adapter.transposed_array


def _every_bit_pattern(dtype, shape, offset_items=0):
    """A C-contiguous array of random bits (NaNs included), read-only,
    starting ``offset_items`` elements past a 64-byte boundary."""
    dtype = dtypes.dtype(dtype)
    size = int(np.prod(shape))
    raw = fastcopy.empty_aligned((size + offset_items,), dtype)
    rng = np.random.default_rng(2)
    raw.view(np.uint8)[...] = rng.integers(0, 256, size=raw.nbytes, dtype=np.uint8)
    source = raw[offset_items:].reshape(shape)
    source.flags.writeable = False
    return source


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(300, 700), (1024, 256)], ids=str)
def test_framework_transpose_is_bit_exact(adapter, dtype, shape):
    source = _every_bit_pattern(dtype, shape)
    before = source.copy()
    made = adapter.transposed_array(source)
    if made is None:
        # declining is always allowed, except for the case it is made for
        assert not (_offers_own_transpose(adapter) and dtype == "float32")
    else:
        out = np.ascontiguousarray(adapter.to_numpy(made))
        assert out.shape == shape[::-1] and out.dtype == source.dtype
        np.testing.assert_array_equal(out.view(np.uint8), np.ascontiguousarray(source.T).view(np.uint8))
    np.testing.assert_array_equal(source.view(np.uint8), before.view(np.uint8))   # only read


def test_framework_transpose_declines_unaligned_memory(adapter):
    # a framework's transpose may need aligned memory (one aborts the
    # process without it): such a source is declined or copied exactly
    source = _every_bit_pattern("float32", (300, 700), offset_items=1)
    assert not fastcopy.is_aligned(source)
    made = adapter.transposed_array(source)
    assert made is None or np.array_equal(np.ascontiguousarray(adapter.to_numpy(made)).view(np.uint8),
                                          np.ascontiguousarray(source.T).view(np.uint8))
