"""Sharded parameters, framework-free: what a sharding is, which block of a
global array each shard holds, and the guard on gathering.

A parameter that outgrew one device is *sharded*: JAX keeps a ``jax.Array``
with a ``NamedSharding`` over a ``Mesh``, PyTorch a ``DTensor`` (FSDP2's
``fully_shard``, tensor parallelism's ``parallelize_module``).  An adapter
describes either as a :class:`Sharding`: the mesh's axes and sizes, and for
each tensor dim the mesh axes it is split over.  Its blocks are what the
frameworks make of it (``torch.chunk``'s rule, which is also JAX's: blocks
of ``ceil(size / pieces)``, the last ones shorter or empty).

A *global index* is a tuple of ``slice(start, stop)``, one per dim, that
says which block of the global array a shard holds; ``Param.shards()``
yields ``(global index, local NumPy array)`` in canonical layout.

Gathering (``Param.value`` of a sharded parameter) copies the whole tensor
into this process; ``MULTIPARAM_MAX_GATHER`` (bytes, or a size such as
``"2GB"``) turns a gather larger than that into a :class:`GatherError`.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import layout as _layout
from .checkpoint import parse_size
from .errors import MultiparamError, ShapeError

#: environment variable: the largest gather (bytes or e.g. "512MB") a read may make
MAX_GATHER_ENV = "MULTIPARAM_MAX_GATHER"

Index = Tuple[slice, ...]


class GatherError(MultiparamError, MemoryError):
    """Reading a sharded parameter whole would gather more than
    ``MULTIPARAM_MAX_GATHER`` bytes into this process."""


class ShardingError(MultiparamError, ValueError):
    """A sharded value or checkpoint that cannot be placed: slices that
    overlap or leave a gap, a missing slice file.  Raised before anything
    is written.  (A shape a mesh cannot split evenly never reaches a write:
    JAX refuses such a NamedSharding when the array is made, and torch
    splits unevenly, FSDP2 padding its shards.)"""


@dataclass(frozen=True)
class Sharding:
    """How a tensor is split over a device mesh, the same for every framework.

    ``mesh``: the mesh's axes as ``(name, size)`` pairs, in the mesh's order.
    ``dims``: for each tensor dim, the names of the mesh axes it is split
    over (major first; empty: not split).  Mesh axes no dim uses replicate.
    ``native``: what the framework calls it (``NamedSharding``, ``DTensor``),
    for display only.

    ``repr`` reads ``Shard(dim=0 over 'fsdp'=4)``, ``Shard(dim=0 over
    'data'=2, dim=1 over 'model'=4)``, or ``Replicated(over 'fsdp'=4)``
    for a tensor every device holds whole."""

    mesh: Tuple[Tuple[str, int], ...]
    dims: Tuple[Tuple[str, ...], ...]
    native: str = ""

    def __post_init__(self):
        known = dict(self.mesh)
        used = [a for axes in self.dims for a in axes]
        if any(a not in known for a in used) or len(used) != len(set(used)):
            raise ValueError(f"dims {self.dims} must name distinct axes of the mesh {self.mesh}")

    # -- what it says -------------------------------------------------------------
    @property
    def is_sharded(self) -> bool:
        """True when some dim is split (False: every device holds it whole)."""
        return any(self.pieces(d) > 1 for d in range(len(self.dims)))

    @property
    def mesh_shape(self) -> dict:
        """``{axis name: size}``."""
        return dict(self.mesh)

    @property
    def devices(self) -> int:
        return math.prod(size for _, size in self.mesh)

    def pieces(self, dim: int) -> int:
        """Into how many blocks ``dim`` is split."""
        sizes = self.mesh_shape
        return math.prod(sizes[a] for a in self.dims[dim])

    def __repr__(self) -> str:
        sizes = self.mesh_shape

        def over(axes):
            named = [f"{a!r}={sizes[a]}" for a in axes]
            return named[0] if len(named) == 1 else "(" + ", ".join(named) + ")"

        split = [f"dim={d} over {over(axes)}" for d, axes in enumerate(self.dims) if axes]
        if split:
            return f"Shard({', '.join(split)})"
        return f"Replicated(over {', '.join(f'{n!r}={s}' for n, s in self.mesh)})"

    # -- blocks ---------------------------------------------------------------------
    def block_size(self, shape: Sequence[int], dim: int) -> int:
        """The length of a (non-last) block along ``dim`` (ceil division)."""
        n = self.pieces(dim)
        return -(-int(shape[dim]) // n) if n > 1 else int(shape[dim])

    def blocks(self, shape: Sequence[int]) -> List[Index]:
        """Every distinct block of a global array of ``shape``, row-major
        (empty blocks of an uneven split left out)."""
        per_dim = []
        for d, size in enumerate(shape):
            n, step = self.pieces(d), self.block_size(shape, d)
            per_dim.append([slice(min(i * step, size), min((i + 1) * step, size)) for i in range(n)])
        out = []
        for combo in _product(per_dim):
            if all(s.stop > s.start for s in combo) or math.prod(shape) == 0:
                out.append(combo)
        return out

    # -- layouts ----------------------------------------------------------------------
    def permuted(self, axes: Optional[Sequence[int]]) -> "Sharding":
        """The sharding of ``array.transpose(axes)``."""
        if axes is None:
            return self
        return Sharding(self.mesh, tuple(self.dims[a] for a in axes), self.native)


def _product(lists):
    if not lists:
        yield ()
        return
    for head in lists[0]:
        for rest in _product(lists[1:]):
            yield (head,) + rest


# ---------------------------------------------------------------------------
# global indices
# ---------------------------------------------------------------------------
def normalise(index: Sequence[Any], shape: Sequence[int]) -> Index:
    """``index`` (slices with None ends, as JAX gives them, or ints) as
    ``slice(start, stop)`` per dim of ``shape``."""
    out = []
    for d, size in enumerate(shape):
        s = index[d] if d < len(index) else slice(None)
        if isinstance(s, (int, np.integer)):
            s = slice(int(s), int(s) + 1)
        start, stop, step = s.indices(int(size))
        if step != 1:
            raise ShardingError(f"a shard with a stride ({s}) is not a block")
        out.append(slice(start, max(start, stop)))
    return tuple(out)


def whole(shape: Sequence[int]) -> Index:
    """The index of the whole array."""
    return tuple(slice(0, int(n)) for n in shape)


def index_shape(index: Index) -> Tuple[int, ...]:
    return tuple(s.stop - s.start for s in index)


def format_index(index: Index) -> str:
    """``[0:8, 0:4]``."""
    return "[" + ", ".join(f"{s.start}:{s.stop}" for s in index) + "]"


def permute_index(index: Index, axes: Optional[Sequence[int]]) -> Index:
    """The index of the same block after ``transpose(axes)``."""
    return tuple(index) if axes is None else tuple(index[a] for a in axes)


def check_cover(shape: Sequence[int], indices: Sequence[Index], what: str) -> None:
    """:class:`ShardingError` unless ``indices`` tile an array of ``shape``
    exactly: inside it, no two overlapping, no element left out."""
    shape = tuple(int(n) for n in shape)
    total = 0
    for i, idx in enumerate(indices):
        if len(idx) != len(shape) or any(s.start < 0 or s.stop > n or s.start > s.stop
                                          for s, n in zip(idx, shape)):
            raise ShardingError(f"{what}: slice {format_index(idx)} lies outside its global shape {shape}")
        total += math.prod(index_shape(idx))
        for other in indices[:i]:
            if all(max(a.start, b.start) < min(a.stop, b.stop) for a, b in zip(idx, other)):
                raise ShardingError(f"{what}: slices {format_index(other)} and {format_index(idx)} overlap")
    if total != math.prod(shape):
        raise ShardingError(f"{what}: the slices hold {total} of the {math.prod(shape)} elements of "
                            f"shape {shape}: a gap")


# ---------------------------------------------------------------------------
# values given block by block
# ---------------------------------------------------------------------------
class Blocks:
    """A canonical value given block by block (``fn(global index) ->
    NumPy array`` of that block), so a sharded parameter's write reads or
    draws only the blocks its shards need: ``mp.load`` slices a memory
    mapped file, portable init draws each block alone.  It has the
    ``shape``, ``dtype`` and ``astype`` a :class:`~multiparam.transaction.WritePlan`
    checks; an unsharded parameter takes it whole (``np.asarray``).

    ``fill(global index, out)``, when given, writes that block into a
    writable array ``out`` of its shape and of ``dtype`` instead: an
    engine reads a checkpoint's slice straight into a parameter's own
    memory (:meth:`fill_block`), no block-sized buffer in between."""

    __slots__ = ("shape", "dtype", "_fn", "_fill")

    def __init__(self, shape: Sequence[int], dtype: Any, fn: Callable[[Index], np.ndarray],
                 fill: Optional[Callable[[Index, np.ndarray], None]] = None):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self._fn = fn
        self._fill = fill

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def block(self, index: Index) -> np.ndarray:
        """The values of the block ``index``, of ``self.dtype``."""
        out = np.asarray(self._fn(tuple(index)))
        if out.shape != index_shape(index):
            raise ShapeError(f"block {format_index(index)} came back with shape {out.shape}")
        return out if out.dtype == self.dtype else out.astype(self.dtype)

    @property
    def fills_in_place(self) -> bool:
        """True when blocks can be written straight into a caller's array
        (see :meth:`fill_block`); False: each comes as a new array."""
        return self._fill is not None

    def fill_block(self, index: Index, out: np.ndarray) -> None:
        """Write the block ``index`` into ``out`` (writable, of the block's
        shape): in place where this value can fill (same dtype), else a copy
        of :meth:`block`."""
        if out.shape != index_shape(index):
            raise ShapeError(f"block {format_index(index)} cannot fill an array of shape {out.shape}")
        if self._fill is not None and out.dtype == self.dtype:
            self._fill(tuple(index), out)
        else:
            out[...] = self.block(index)

    def astype(self, dtype: Any, copy: bool = True) -> "Blocks":
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return self
        fn = self._fn
        return Blocks(self.shape, dtype, lambda index: np.asarray(fn(index)).astype(dtype))

    def __array__(self, dtype=None, copy=None):
        out = self.block(whole(self.shape))
        return out if dtype is None else out.astype(dtype)

    @property
    def T(self) -> "Blocks":
        """The transpose (a name tied transposed writes through it)."""
        fn, fill = self._fn, self._fill
        return Blocks(self.shape[::-1], self.dtype,
                      lambda index: np.asarray(fn(tuple(index[::-1]))).T,
                      None if fill is None else lambda index, out: fill(tuple(index[::-1]), out.T))

    def __repr__(self) -> str:
        return f"Blocks(shape={self.shape}, dtype={self.dtype})"


class ShardedArray:
    """A sharded native array an adapter hands the core (a gradient of a
    sharded parameter), framework-neutral: its global ``shape``, ``dtype``
    and :class:`Sharding` (native axes), this process's blocks
    (:meth:`shards`, never gathered) and :meth:`gather`, the framework's
    own gather (torch: a collective, every process calls it in the same
    order) within ``MULTIPARAM_MAX_GATHER``.  ``np.asarray`` gathers."""

    __slots__ = ("shape", "dtype", "sharding", "_shards", "_gather")

    def __init__(self, shape: Sequence[int], dtype: Any, sharding: Sharding,
                 shards: Sequence[Tuple[Index, np.ndarray]], gather: Callable[[], np.ndarray]):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.sharding = sharding
        self._shards = list(shards)
        self._gather = gather

    def shards(self) -> List[Tuple[Index, np.ndarray]]:
        """``[(global native index, NumPy block)]`` this process holds, each
        distinct block once."""
        return list(self._shards)

    def gather(self, what: str = "a sharded array") -> np.ndarray:
        """The whole array in this process (:class:`GatherError` past the limit)."""
        check_gather(self.shape, self.dtype, self.sharding, what)
        return np.asarray(self._gather())

    def __array__(self, dtype=None, copy=None):
        out = self.gather()
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"ShardedArray(shape={self.shape}, dtype={self.dtype}, {self.sharding!r})"


def sliced(array: Any) -> Blocks:
    """An array (a memory map, say) as :class:`Blocks` that slice it."""
    array = array if hasattr(array, "shape") and hasattr(array, "dtype") else np.asarray(array)
    return Blocks(array.shape, array.dtype, lambda index: array[index])


# ---------------------------------------------------------------------------
# the gather guard
# ---------------------------------------------------------------------------
def max_gather() -> Optional[int]:
    """``MULTIPARAM_MAX_GATHER`` in bytes, or None (no limit)."""
    raw = os.environ.get(MAX_GATHER_ENV, "").strip()
    if not raw:
        return None
    return parse_size(raw)    # sizes read as everywhere else ("2GB", "512MiB")


def check_gather(shape: Sequence[int], dtype: Any, sharding: Sharding, what: str = "a parameter") -> None:
    """:class:`GatherError` when gathering an array of ``shape`` and
    ``dtype`` (sharded as ``sharding``) would pass ``MULTIPARAM_MAX_GATHER``."""
    limit = max_gather()
    if limit is None:
        return
    nbytes = math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize
    if nbytes > limit:
        raise GatherError(
            f"reading {what} of shape {tuple(shape)} ({nbytes:,} bytes, {sharding!r}) would gather "
            f"it whole into this process, more than {MAX_GATHER_ENV}={os.environ[MAX_GATHER_ENV]}; "
            "read its local shards with p.shards(), or raise the limit")


def shard_rows(shards: Iterator[Tuple[Index, np.ndarray]]) -> List[Tuple[Index, np.ndarray]]:
    """Shards as a list, each distinct global index once (replicas of one
    block on several devices are one shard)."""
    seen, out = set(), []
    for index, array in shards:
        key = tuple((s.start, s.stop) for s in index)
        if key not in seen:
            seen.add(key)
            out.append((index, array))
    return out


# ---------------------------------------------------------------------------
# a Param's sharding, shards and sharded writes, in canonical layout
# (``Param.sharding``, ``Param.shards``, ``Param.write_validated`` call these)
# ---------------------------------------------------------------------------
def _canonical_axes(param, ndim: int) -> Optional[Tuple[int, ...]]:
    """Canonical axis i is native axis ``axes[i]`` (None: the same axes);
    a layout that regroups or reorders features maps no block to a block."""
    lay = param.slot.layout
    if _layout._converts_itself(lay):
        raise ShardingError(f"{param.name!r} is stored in a layout that regroups or reorders its axes "
                            f"({type(lay).__name__}): its native shards are not blocks of the canonical "
                            "array; read its value (gathered) instead")
    return _layout._to_canonical_axes(lay, ndim)


def _inverse(axes: Sequence[int]) -> Tuple[int, ...]:
    inv = [0] * len(axes)
    for i, a in enumerate(axes):
        inv[a] = i
    return tuple(inv)


def param_sharding(param) -> Optional[Sharding]:
    """``Param.sharding``: the adapter's native sharding in canonical axes
    (None before the framework has made the parameter)."""
    model = param.model
    model.adapter.require_sharding("describe a sharded parameter")
    if not (model.materialized and param.materialized):
        return None
    native = model.adapter.sharding(model.adapter_state, param.slot.ref)
    if native is None:
        return None
    return native.permuted(_canonical_axes(param, len(native.dims)))


def param_is_sharded(param) -> bool:
    """``Param.is_sharded``: False on a backend that cannot shard."""
    model = param.model
    adapter = model.adapter
    if not (adapter.capability("sharding").supported and model.materialized and param.materialized):
        return False
    # the native sharding, not param_sharding's canonical one: a split dim
    # is split in any order of axes, and a load asks this per tensor
    native = adapter.sharding(model.adapter_state, param.slot.ref)
    return native is not None and native.is_sharded


def param_shards(param) -> Iterator[Tuple[Index, np.ndarray]]:
    """``Param.shards()``: ``(canonical global index, read-only canonical
    block)`` for each block this process holds."""
    model = param.model
    adapter, state, ref = model.adapter, model.adapter_state, param.slot.ref
    if adapter.sharding(state, ref) is None:      # one device holds it: one block, the value
        out = np.asarray(param.value)
        yield whole(out.shape), out
        return
    yield from _canonical_rows(param, adapter.shards(state, ref))


def _canonical_rows(param, rows) -> List[Tuple[Index, np.ndarray]]:
    """Native ``(global index, block)`` rows of ``param`` in canonical axes, read-only."""
    out_rows = []
    for native_index, block in rows:
        axes = _canonical_axes(param, len(native_index))
        out = np.asarray(block) if axes is None else np.asarray(block).transpose(axes)
        out = out.view()
        out.flags.writeable = False
        out_rows.append((permute_index(native_index, axes), out))
    return out_rows


def wants_blocks(param, value: Any) -> bool:
    """True when ``param``'s write goes block by block: the value is
    :class:`Blocks`, or the parameter is sharded (then each shard takes
    only its block of a whole value)."""
    if isinstance(value, Blocks):
        return True
    adapter = param.model.adapter
    if not adapter.capability("sharding").supported:
        return False
    return adapter.sharding(param.model.adapter_state, param.slot.ref) is not None


def write_param(param, value: Any) -> None:
    """Write a checked canonical value (an array or :class:`Blocks`) into
    ``param`` through the adapter's ``write_blocks``: a sharded parameter
    asks for its shards' blocks only and keeps its native sharding."""
    model = param.model
    adapter, state, ref = model.adapter, model.adapter_state, param.slot.ref
    lay = param.slot.layout
    source = value if isinstance(value, Blocks) else sliced(value)
    ndim = len(source.shape)
    if _layout._converts_itself(lay):
        # regrouped or reordered axes: a native block is no canonical block;
        # convert the whole value once and slice that
        native_whole = np.ascontiguousarray(_layout.to_native(np.asarray(source), lay))

        def block(native_index):
            return np.ascontiguousarray(native_whole[native_index])
    else:
        axes = _layout._to_canonical_axes(lay, ndim)
        inv = None if axes is None else _inverse(axes)
        if source.fills_in_place:
            def fill(native_index, out):
                # out is native; out.transpose(axes) is the same memory in canonical axes
                source.fill_block(permute_index(native_index, axes), out if axes is None else out.transpose(axes))
            if adapter.fill_blocks(state, ref, fill):     # read straight into the parameter's memory
                return

        def block(native_index):
            got = source.block(permute_index(native_index, axes))
            return np.ascontiguousarray(got if inv is None else got.transpose(inv))
    adapter.write_blocks(state, ref, block)


def canonical_blocks(native: Blocks, layout: Any) -> Blocks:
    """A native-layout :class:`Blocks` of a parameter stored in ``layout``,
    as canonical Blocks.  An axis permutation maps each canonical block to
    one native block, read alone and returned as a transposed view
    (:func:`write_param` transposes it back: the native block's own memory
    is written, never a transposed copy); a layout that regroups or reorders
    features reads the native value whole, once."""
    if _layout._converts_itself(layout):
        state: dict = {}

        def regrouped(index):
            if "whole" not in state:
                state["whole"] = _layout.to_canonical(np.asarray(native), layout)
            return state["whole"][index]
        shape = _layout.shape_to_canonical(native.shape, layout)
        return Blocks(shape, native.dtype, regrouped)
    axes = _layout._to_canonical_axes(layout, len(native.shape))
    if axes is None:
        return native
    inv = _inverse(axes)
    return Blocks(tuple(native.shape[a] for a in axes), native.dtype,
                  lambda index: native.block(permute_index(index, inv)).transpose(axes))


def canonical_shards(param, native: Any) -> List[Tuple[Index, np.ndarray]]:
    """``[(canonical global index, read-only canonical block)]`` of a
    native-layout array of ``param`` (a gradient): a :class:`ShardedArray`'s
    own blocks, never gathered; any other array is one block, the whole."""
    if not isinstance(native, ShardedArray):
        out = _layout.to_canonical(np.asarray(native), param.slot.layout).view()
        out.flags.writeable = False
        return [(whole(out.shape), out)]
    return _canonical_rows(param, native.shards())
