"""Sharded JAX arrays as multiparam sees them: a ``jax.Array`` whose
``NamedSharding`` splits it over a ``Mesh`` (or any sharding over several
devices), and Flax's partitioning metadata around it.

- :func:`describe`: the array's :class:`~multiparam.sharding.Sharding` (the
  mesh's axes and sizes, the ``PartitionSpec`` per dim);
- :func:`local_shards`: ``arr.addressable_shards``, each distinct block once
  (replicas of a block on several devices are one), without gathering;
- :func:`rebuilt`: a new array with the *same* sharding, each device's block
  from a callback (``jax.make_array_from_callback``): a write never gathers
  and never reshards;
- :func:`unbox` / :func:`rebox`: linen's ``nn.with_partitioning`` leaves are
  ``nn.Partitioned`` boxes; the adapter works on their arrays and gives the
  user back the boxes (``m.flax.variables``), names kept.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import jax
import numpy as np
from flax.core import meta
from jax.sharding import NamedSharding, SingleDeviceSharding

from ... import fastcopy
from ... import sharding as S


def is_sharded_array(array: Any) -> bool:
    """True for a ``jax.Array`` placed on more than one device."""
    if not isinstance(array, jax.Array):
        return False
    sharding = array.sharding
    # the common case first, without building the device set (Param.value asks on every read)
    return type(sharding) is not SingleDeviceSharding and len(sharding.device_set) > 1


def describe(array: jax.Array) -> Optional[S.Sharding]:
    """The sharding of ``array`` in its own axes, or None on one device."""
    if not is_sharded_array(array):
        return None
    sharding, ndim = array.sharding, array.ndim
    if isinstance(sharding, NamedSharding):
        mesh = tuple((str(name), int(size)) for name, size in sharding.mesh.shape.items())
        spec = tuple(sharding.spec) + (None,) * (ndim - len(sharding.spec))
        dims = []
        for entry in spec[:ndim]:
            if entry is None:
                dims.append(())
            elif isinstance(entry, (tuple, list)):
                dims.append(tuple(str(a) for a in entry))
            else:
                dims.append((str(entry),))
        return S.Sharding(mesh, tuple(dims), "NamedSharding")
    # another sharding (GSPMD, positional): name one mesh axis per split dim
    shard_shape = sharding.shard_shape(array.shape)
    pieces = [(-(-n // m) if m else 1) for n, m in zip(array.shape, shard_shape)]
    mesh = tuple((f"d{d}", p) for d, p in enumerate(pieces) if p > 1)
    replicas = len(sharding.device_set) // max(1, int(np.prod(pieces)))
    if replicas > 1:
        mesh += (("replica", replicas),)
    dims = tuple(((f"d{d}",) if p > 1 else ()) for d, p in enumerate(pieces))
    return S.Sharding(mesh, dims, type(sharding).__name__)


def local_shards(array: jax.Array) -> list:
    """``[(global index, NumPy block)]`` of the devices of this process."""
    return S.shard_rows((S.normalise(s.index, array.shape), np.asarray(s.data))
                        for s in array.addressable_shards)


def owners(array: jax.Array) -> list:
    """``[(global index, process)]``: each distinct block once, with the
    lowest process index that holds it."""
    best: Dict[tuple, Tuple[S.Index, int]] = {}
    for device, index in array.sharding.devices_indices_map(array.shape).items():
        idx = S.normalise(index, array.shape)
        key = tuple((s.start, s.stop) for s in idx)
        if key not in best or device.process_index < best[key][1]:
            best[key] = (idx, int(device.process_index))
    return list(best.values())


def rebuilt(array: jax.Array, block: Callable[[S.Index], np.ndarray]) -> jax.Array:
    """A new array of ``array``'s shape, dtype and sharding whose blocks are
    ``block(global index)``, each distinct block asked for once.  Blocks are
    copied (a NumPy buffer JAX would alias could be the caller's)."""
    cache: Dict[tuple, np.ndarray] = {}
    dtype = np.dtype(array.dtype)

    def fetch(index):
        idx = S.normalise(index, array.shape)
        key = tuple((s.start, s.stop) for s in idx)
        if key not in cache:
            cache[key] = np.array(block(idx), dtype=dtype, copy=True)
        return cache[key]

    return jax.make_array_from_callback(array.shape, array.sharding, fetch)


def grad_array(array: jax.Array) -> Any:
    """A gradient as NumPy, or a sharded one as a ``ShardedArray`` (its
    addressable blocks; ``np.asarray`` of the array only when gathered)."""
    if not is_sharded_array(array):
        return np.asarray(array)
    return S.ShardedArray(array.shape, np.dtype(array.dtype), describe(array), local_shards(array),
                          lambda: np.asarray(array))


def gathered(array: jax.Array, what: str) -> np.ndarray:
    """The whole array in this process, within ``MULTIPARAM_MAX_GATHER``:
    fresh memory nobody else holds, assembled from this process's shards.

    Not ``np.asarray(array)``: JAX keeps the NumPy value it assembles on
    the array (``_npy_value``), so every parameter once gathered would stay
    gathered beside its shards for as long as the model lives (a transfer
    off a mesh held a second, whole model)."""
    S.check_gather(array.shape, array.dtype, describe(array), what)
    if not array.is_fully_addressable:
        return np.asarray(array)    # JAX's own answer across processes
    out = fastcopy.empty_aligned(array.shape, array.dtype)
    for index, block in local_shards(array):
        out[index] = block
    return out


# -- Flax linen's partitioning boxes ---------------------------------------------------
def _is_box(x: Any) -> bool:
    return isinstance(x, meta.AxisMetadata)


def _is_mapping(node: Any) -> bool:
    return isinstance(node, dict) or hasattr(node, "items") and not hasattr(node, "shape")


def _unboxed(node: Any, path: tuple, boxes: Dict[tuple, Any]) -> Any:
    if _is_box(node):
        boxes[path] = node
        return node.unbox()
    if _is_mapping(node):
        items = {k: _unboxed(v, path + (k,), boxes) for k, v in node.items()}
        return type(node)(items) if not isinstance(node, dict) else items
    return node


def unbox(variables: Any) -> Tuple[Any, Dict[tuple, Any]]:
    """``(variables with every box's array in its place, {path: box})``;
    no boxes: the tree itself and ``{}``."""
    if variables is None:
        return variables, {}
    # module-level recursion, not a closure: a nested function that calls
    # itself is a reference cycle, which would keep the boxes (and so the
    # arrays they hold) alive until the garbage collector runs
    boxes: Dict[tuple, Any] = {}
    plain = _unboxed(variables, (), boxes)
    return (plain, boxes) if boxes else (variables, {})


def _reboxed(node: Any, path: tuple, boxes: Dict[tuple, Any]) -> Any:
    if path in boxes:
        return boxes[path].replace_boxed(node)
    if _is_mapping(node):
        items = {k: _reboxed(v, path + (k,), boxes) for k, v in node.items()}
        return type(node)(items) if not isinstance(node, dict) else items
    return node


def rebox(variables: Any, boxes: Dict[tuple, Any]) -> Any:
    """The tree with each boxed path's array put back in its box (the box's
    metadata, a ``nn.Partitioned``'s names, kept)."""
    if not boxes or variables is None:
        return variables
    return _reboxed(variables, (), boxes)
