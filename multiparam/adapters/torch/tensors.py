"""torch tensors as NumPy arrays and back, every dtype checkpoints use.

NumPy has no bfloat16 or float8, so ``Tensor.numpy()`` refuses them.  They
cross as their raw bits instead: a bfloat16 tensor is viewed as int16,
handed to NumPy (no copy) and viewed as ``ml_dtypes.bfloat16``; the way
back views the bits the other way.  Values are never converted, so every
read, write, file and transfer is bit for bit."""
from __future__ import annotations

import threading
import warnings
from typing import Callable, Dict, Optional

import numpy as np
import torch

from ... import dtypes

#: torch dtype -> NumPy dtype name, for the dtypes NumPy itself has
_PLAIN = {
    torch.float16: "float16", torch.float32: "float32", torch.float64: "float64",
    torch.int8: "int8", torch.int16: "int16", torch.int32: "int32", torch.int64: "int64",
    torch.uint8: "uint8", torch.bool: "bool", torch.complex64: "complex64",
    torch.complex128: "complex128",
}
#: torch dtype -> (ml_dtypes name, the same-width integer dtype that carries its bits)
BITS = {
    torch.bfloat16: ("bfloat16", torch.int16),
    torch.float8_e4m3fn: ("float8_e4m3fn", torch.uint8),
    torch.float8_e5m2: ("float8_e5m2", torch.uint8),
}
_BY_NAME = {**{n: t for t, n in _PLAIN.items()}, **{n: t for t, (n, _) in BITS.items()}}


#: torch dtype -> NumPy dtype, as resolved (asked per parameter, per check)
_NUMPY: Dict[torch.dtype, np.dtype] = {}


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    """The NumPy dtype of a torch dtype (ml_dtypes for bfloat16 and float8)."""
    found = _NUMPY.get(dtype)
    if found is not None:
        return found
    if dtype in _PLAIN:
        found = _NUMPY[dtype] = np.dtype(_PLAIN[dtype])
        return found
    if dtype in BITS:
        found = _NUMPY[dtype] = dtypes.dtype(BITS[dtype][0])
        return found
    raise dtypes.DtypeError(f"torch {dtype} has no NumPy counterpart multiparam knows")


def torch_dtype(dtype: np.dtype) -> torch.dtype:
    """The torch dtype of a NumPy (or ml_dtypes) dtype."""
    found = _BY_NAME.get(np.dtype(dtype).name)
    if found is None:
        raise dtypes.DtypeError(f"torch has no dtype for NumPy {np.dtype(dtype).name}")
    return found


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A detached CPU tensor as NumPy, sharing its memory (no copy on CPU)."""
    t = t.detach()
    if not t.is_cpu:
        t = t.cpu()
    if t.dtype in BITS:
        name, carrier = BITS[t.dtype]
        return t.view(carrier).numpy().view(dtypes.dtype(name))
    return t.numpy()


def from_numpy(a: np.ndarray) -> torch.Tensor:
    """A NumPy array as a tensor sharing its memory (bits for ml_dtypes)."""
    target = torch_dtype(a.dtype)
    if target in BITS:
        return torch.from_numpy(a.view(numpy_dtype(BITS[target][1]))).view(target)
    return torch.from_numpy(a)


def fill_in_place(t: torch.Tensor, fill: Callable[[np.ndarray], None]) -> bool:
    """Call ``fill`` on a writable NumPy view of ``t``'s own memory and
    record the change as ``copy_`` would; False, having done nothing, when
    ``t`` is not a plain contiguous CPU tensor NumPy can view."""
    plain = t.detach()
    # a plain CPU tensor only: a subclass (a DTensor, even a replicated
    # one) keeps its memory behind its own API
    if type(plain) is not torch.Tensor or t.device.type != "cpu" or not t.is_contiguous():
        return False
    try:
        # the tensor's own memory; bfloat16 and float8 as their ml_dtypes,
        # over the same bits (the checkpoints people hold are bfloat16)
        view = to_numpy(plain)
    except TypeError:                 # a dtype neither NumPy nor ml_dtypes has: the caller copies instead
        return False
    fill(view)
    # an in-place change, as copy_ under no_grad records it: autograd
    # then refuses a backward through a graph that saved the old values
    torch.autograd.graph.increment_version(t)
    return True


#: held while torch's warning about a read-only source is silenced
_QUIET_FROM_NUMPY = threading.Lock()
#: True once torch has warned about a read-only array (silenced) and shown
#: that it warns only once per process (its TORCH_WARN_ONCE): later calls
#: then skip the silencing, which swapped the process's warning filters
#: under a lock on every read of a load
_READ_ONLY_WARNED = False
_READ_ONLY_MESSAGE = "The given NumPy array is not writable"
#: a copy is a copy of bits: every dtype crosses as the torch integer of its size
_BITS = {1: np.uint8, 2: np.int16, 4: np.int32, 8: np.int64}


def borrowed(a: np.ndarray, convert: Callable[[np.ndarray], torch.Tensor] = torch.from_numpy) -> torch.Tensor:
    """``convert(a)``, a tensor on ``a``'s memory that is only read (``a``
    may be read-only: a memory map, another model's value): torch's warning
    about that is silenced, under a lock because ``catch_warnings`` swaps
    the process's filters and WritePlans copy on several threads at once,
    until torch has shown it will not warn again."""
    global _READ_ONLY_WARNED
    if _READ_ONLY_WARNED or a.flags.writeable:
        return convert(a)
    with _QUIET_FROM_NUMPY, warnings.catch_warnings(record=True) as seen:
        # recorded, so never shown; each warning of this message counted
        warnings.filterwarnings("always", message=_READ_ONLY_MESSAGE)
        out = convert(a)
        before = len(seen)
        convert(a)
        # a second call that warned no more: none ever will
        _READ_ONLY_WARNED = len(seen) == before
    return out


def copy_kernel(out: np.ndarray, src: np.ndarray) -> bool:
    """``out[...] = src`` by torch's copy kernel, as bits, so any dtype of
    1, 2, 4 or 8 bytes is copied exactly; False for anything else.  On
    torch's intra-op threads: a transposed matrix ~6x NumPy's strided copy
    (tiled), a plain copy about 1.25x NumPy's split over the same cores."""
    bits = _BITS.get(out.dtype.itemsize)
    if bits is None or src.dtype.itemsize != out.dtype.itemsize or out.shape != src.shape:
        return False
    target, source = torch.from_numpy(out.view(bits)), borrowed(src.view(bits))
    # neither tensor needs grad (both new, over NumPy memory): autograd
    # records nothing, so no no_grad() context is needed around it
    target.copy_(source)
    return True


def cast_kernel(out: np.ndarray, src: np.ndarray) -> bool:
    """``out[...] = src`` converted to ``out``'s dtype by torch's ``copy_``
    (the conversion ``load_state_dict`` makes, on torch's intra-op
    threads); False for a dtype torch has not."""
    if out.shape != src.shape:
        return False
    try:
        target, source = from_numpy(out), borrowed(src, from_numpy)
    except (dtypes.DtypeError, TypeError):
        return False
    target.copy_(source)     # nothing needs grad: see copy_kernel
    return True


def transposed_view(source: np.ndarray) -> Optional[torch.Tensor]:
    """``source.T`` as a tensor on ``source``'s memory (no copy), for a
    write whose ``copy_`` then transposes it straight into the parameter
    with torch's own kernel; None for a dtype torch has not."""
    try:
        return borrowed(source, from_numpy).t()
    except dtypes.DtypeError:
        return None
