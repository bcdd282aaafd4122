"""Copies between layouts near the hardware's limit.

Moving a model between frameworks is mostly one operation: a canonical
``(out, in)`` matrix becomes a Keras/Flax ``(in, out)`` kernel, a
transposing copy.  NumPy's strided copy runs that at a fraction of memory
bandwidth (about 0.5 GB/s for 4096 x 4096 float32 here, against ~9 GB/s for a
plain copy), so the copy is made by the fastest kernel the process has:

* a backend's own, when that framework is already imported (nothing is
  imported for it): torch's ``Tensor.copy_`` of a transposed view, tiled
  and multi-threaded, runs at ~3.4 GB/s.  A backend offers it as
  ``Adapter.copy_kernel``;
* else a tiled NumPy copy through a cache-sized buffer (~1.3 GB/s), split
  over the machine's cores (NumPy releases the GIL while it copies).

A large plain copy (a tensor read from a file's memory map) takes the same
kernel: torch's copy of 4 GiB from a mapped file into resident memory took
0.27 s here against 0.34 s for NumPy's (glibc's ``memcpy``) split over both
cores (median of 6 fresh processes each, run alternately).

Every buffer made here is 64-byte aligned, the alignment JAX and TensorFlow
need to adopt a NumPy buffer without copying it again, and one fresh
allocation (so a destination that keeps it is written once).
"""
from __future__ import annotations

import sys
from typing import Callable, Optional, Tuple

import numpy as np

from . import threads
from .registry import all_backends, load_adapter

#: what JAX and TensorFlow need to adopt a buffer without a copy (XLA's
#: and Eigen's largest alignment)
ALIGNMENT = 64
#: side of the tiles of the NumPy fallback (float32: 256 KiB, fits L2)
TILE = 256
#: below this many elements a plain NumPy copy is as fast as anything
SMALL = TILE * TILE
#: a plain (contiguous) copy of at least this many bytes is made by the
#: framework's kernel when one is offered: torch's runs on its own threads,
#: which start cheaply.  Measured here, 256 MiB in copies of each size:
#: 1 MiB, 23 ms against NumPy's 24; 2 MiB, 17 against 24; 4 MiB, 14
#: against 22.  The tensors of real checkpoints are mostly 2-64 MiB
#: (BERT-base's and GPT-2's largest are 9 MiB in float32, 4.5 in bfloat16)
KERNEL_COPY = 2 << 20
#: without a framework kernel, a plain copy of at least this many bytes is
#: split over the cores by the package's copy workers; below, one NumPy
#: copy costs less than handing it out
LARGE_COPY = 16 << 20

#: the kernel for each set of imported frameworks, and under "modules" the
#: last answer with the size of ``sys.modules`` it was given for (one dict,
#: so emptying it forgets both)
_kernel_cache: dict = {}


def empty_aligned(shape: Tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data is ``ALIGNMENT``-aligned."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def is_aligned(array: np.ndarray) -> bool:
    return array.ctypes.data % ALIGNMENT == 0


def _framework_kernel() -> Optional[Callable[[np.ndarray, np.ndarray], None]]:
    """The copy kernel of a backend whose framework this process has
    already imported, if one offers it (looked up once per set of imported
    frameworks; nothing is imported for it)."""
    # asked per copy: worked out again only once more modules are imported
    seen = _kernel_cache.get("modules")
    if seen is not None and seen[0] == len(sys.modules):
        return seen[1]
    imported = tuple(sorted(name for name, spec in all_backends().items()
                            if spec.roots and all(root in sys.modules for root in spec.roots)))
    if imported not in _kernel_cache:
        kernel = None
        for name in imported:
            try:
                kernel = getattr(load_adapter(name), "copy_kernel", None)
            except Exception:   # an adapter that cannot load offers nothing
                kernel = None
            if kernel is not None:
                break
        _kernel_cache[imported] = kernel
    _kernel_cache["modules"] = (len(sys.modules), _kernel_cache[imported])
    return _kernel_cache[imported]


def _tiled_rows(src: np.ndarray, out: np.ndarray, rows: range) -> None:
    # out = src.T for the rows of src in ``rows``: each tile is read along
    # src's rows into a small buffer and written along out's rows from it
    buf = np.empty((TILE, TILE), src.dtype)
    cols = src.shape[1]
    for i in rows:
        for j in range(0, cols, TILE):
            block = src[i:i + TILE, j:j + TILE]
            tile = buf[:block.shape[0], :block.shape[1]]
            np.copyto(tile, block)
            np.copyto(out[j:j + TILE, i:i + TILE], tile.T)


def _numpy_transpose_2d(src: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = src.T`` for a C-contiguous ``src``, tiled, over the cores
    (the package's transpose workers, made once: their tasks never wait on
    one another, so callers on several threads may share them)."""
    starts = list(range(0, src.shape[0], TILE))
    workers = min(threads.cores(), len(starts))
    if workers <= 1:
        _tiled_rows(src, out, range(0, src.shape[0], TILE))
        return
    pool = threads.pool("transpose", threads.cores())
    list(pool.map(lambda k: _tiled_rows(src, out, starts[k::workers]), range(workers)))


def _numpy_copy_in_parts(out: np.ndarray, src: np.ndarray) -> None:
    """``out[...] = src`` for C-contiguous arrays, one part per core (the
    package's copy workers, made once; their tasks never wait on one
    another, so callers on several threads may share them)."""
    flat_out, flat_src = out.reshape(-1), src.reshape(-1)
    parts = threads.cores()
    bounds = [flat_src.size * i // parts for i in range(parts + 1)]
    pool = threads.pool("copy", parts)
    list(pool.map(lambda i: np.copyto(flat_out[bounds[i]:bounds[i + 1]], flat_src[bounds[i]:bounds[i + 1]]),
                  range(parts)))


def copy_into(out: np.ndarray, src: np.ndarray) -> None:
    """``out[...] = src`` for a C-contiguous ``out`` of ``src``'s shape and
    dtype, by the fastest kernel here (see the module docstring).  ``src``
    is only read: it may be read-only (a memory-mapped file)."""
    plain = src.flags.c_contiguous
    if src.size < SMALL or (plain and src.nbytes < KERNEL_COPY):
        np.copyto(out, src)          # small: one NumPy copy costs least
        return
    kernel = _framework_kernel()
    if kernel is not None and kernel(out, src):
        return
    if plain and src.nbytes < LARGE_COPY:
        np.copyto(out, src)
    elif plain:
        _numpy_copy_in_parts(out, src)
    elif src.ndim == 2 and src.T.flags.c_contiguous:
        _numpy_transpose_2d(src.T, out)
    else:
        np.copyto(out, src)


def contiguous(native: np.ndarray) -> np.ndarray:
    """``native`` as C-contiguous memory for an adapter's write: itself when
    it already is, else one fresh aligned copy made by the fastest kernel
    here (see the module docstring)."""
    if native.flags.c_contiguous:
        return native
    out = empty_aligned(native.shape, native.dtype)
    copy_into(out, native)
    return out


def aligned_copy(array: np.ndarray, dtype=None) -> np.ndarray:
    """A fresh aligned C-contiguous copy of ``array`` (cast to ``dtype``)."""
    dtype = np.dtype(dtype or array.dtype)
    if dtype == array.dtype and not array.flags.c_contiguous:
        return contiguous(array)      # already a fresh aligned copy
    out = empty_aligned(array.shape, dtype)
    np.copyto(out, array, casting="unsafe")
    return out
