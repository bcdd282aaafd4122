"""Sharded torch parameters as multiparam sees them: ``DTensor``s, as FSDP2
(``torch.distributed.fsdp.fully_shard``) and tensor parallelism
(``parallelize_module`` with ``ColwiseParallel``/``RowwiseParallel``) leave
them.

- :func:`describe`: a DTensor's :class:`~multiparam.sharding.Sharding` from
  its ``device_mesh`` and ``placements`` (``Shard(d)`` on mesh dim i: tensor
  dim d split over mesh axis i; ``Replicate()``: whole there);
- :func:`local_shards`: this rank's block (``to_local()``, offset from
  torch's own ``compute_local_shape_and_global_offset``), never gathered;
- :func:`write_local`: each rank writes its own block into ``to_local()``,
  which is the parameter's storage (FSDP2's sharded parameter included), so
  the placements, the ``nn.Parameter`` and FSDP's buffers stay;
- :func:`gathered`: ``full_tensor()`` (a collective: every rank must read)
  within ``MULTIPARAM_MAX_GATHER``.

FSDP2 leaves a module's parameters *unsharded* (plain tensors holding the
all-gather) between a forward and ``reshard()`` (the root module by default,
to save a second all-gather in backward); a write there would be lost at
the next reshard.  :func:`settle` reshards every FSDP module first.
"""
from __future__ import annotations

import itertools
import warnings
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor, Partial, Replicate, Shard
from torch.distributed.tensor._utils import _compute_local_shape_and_global_offset

from ... import sharding as S
from . import tensors

try:    # FSDP2 (torch >= 2.6)
    from torch.distributed.fsdp import FSDPModule
except ImportError:  # pragma: no cover
    FSDPModule = ()


def is_dtensor(t: Any) -> bool:
    return isinstance(t, DTensor)


def settle(module: torch.nn.Module) -> bool:
    """Reshard every FSDP2 module under ``module`` whose parameters a
    forward left unsharded, so they are the sharded DTensors again; False
    when there is none."""
    if not (FSDPModule and FSDPModule.__subclasses__()):
        # fully_shard makes each module's class an FSDPModule subclass: with
        # none made in this process, no module is sharded by it.  Every read
        # and write of a plain tensor asks this once torch.distributed.tensor
        # is imported (transformers imports it), and walking every module
        # each time made a load or a transfer quadratic in the model
        return False
    found = [m for m in module.modules() if isinstance(m, FSDPModule)]
    for m in found:
        m.reshard()
    return bool(found)


def _axis_names(mesh) -> tuple:
    names = mesh.mesh_dim_names
    return tuple(names) if names else tuple(f"mesh{i}" for i in range(mesh.ndim))


def describe(t: DTensor) -> S.Sharding:
    """The Sharding of a DTensor (tensor axes as torch's)."""
    mesh = t.device_mesh
    names = _axis_names(mesh)
    dims = [[] for _ in range(t.ndim)]
    for axis, placement in enumerate(t.placements):
        if isinstance(placement, Partial):
            raise S.ShardingError(f"a DTensor with a pending reduction ({placement}) holds no values "
                                  "yet; redistribute it to Shard or Replicate first")
        if isinstance(placement, Shard):
            dims[placement.dim % t.ndim].append(names[axis])
        elif not isinstance(placement, Replicate):
            raise S.ShardingError(f"placement {placement} of a DTensor is not one multiparam knows "
                                  "(Shard, Replicate)")
    mesh_axes = tuple((n, int(s)) for n, s in zip(names, mesh.shape))
    return S.Sharding(mesh_axes, tuple(tuple(d) for d in dims), "DTensor")


def _index(shape, local_shape, offset) -> S.Index:
    return tuple(slice(int(o), int(o) + int(n)) for o, n in zip(offset, local_shape)) \
        if offset else S.whole(shape)


def local_index(t: DTensor) -> S.Index:
    """This rank's block of the global tensor."""
    mesh = t.device_mesh
    coord = mesh.get_coordinate()
    local_shape, offset = _compute_local_shape_and_global_offset(t.shape, mesh.shape, coord,
                                                                 t.placements)
    return _index(t.shape, local_shape, offset)


def local_shards(t: DTensor) -> list:
    """``[(global index, NumPy block)]``: this rank's block (zero-copy)."""
    return [(local_index(t), tensors.to_numpy(t.to_local()))]


def owners(t: DTensor) -> list:
    """``[(global index, rank)]``: every distinct block once, with the
    lowest rank holding it."""
    mesh = t.device_mesh
    ranks = mesh.mesh
    best = {}
    for coord in itertools.product(*(range(int(n)) for n in mesh.shape)):
        local_shape, offset = _compute_local_shape_and_global_offset(t.shape, mesh.shape, list(coord),
                                                                     t.placements)
        idx = _index(t.shape, local_shape, offset)
        if any(s.stop <= s.start for s in idx) and t.numel():
            continue
        key = tuple((s.start, s.stop) for s in idx)
        rank = int(ranks[coord])
        if key not in best or rank < best[key][1]:
            best[key] = (idx, rank)
    return list(best.values())


def write_local(t: DTensor, block: Callable[[S.Index], np.ndarray]) -> None:
    """Copy ``block(this rank's index)`` into the rank's shard, in place."""
    local = t.to_local()
    value = np.ascontiguousarray(block(local_index(t)))
    with torch.no_grad(), warnings.catch_warnings():
        # a read-only (borrowed) block is only read here: copy_ copies it
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        local.copy_(tensors.from_numpy(value).reshape(local.shape))


def fill_local(t: DTensor, fill: Callable[[S.Index, np.ndarray], None]) -> bool:
    """Let ``fill(this rank's index, view)`` write the rank's shard in
    place through a NumPy view of its memory (FSDP2's sharded parameter
    included); False when it has none (not a contiguous CPU tensor)."""
    with torch.no_grad():       # the local tensor itself, not an autograd view of it
        local = t.to_local()
    index = local_index(t)
    return tensors.fill_in_place(local, lambda view: fill(index, view))


def gathered(t: DTensor, what: str) -> np.ndarray:
    """The whole tensor on this rank (a collective), within ``MULTIPARAM_MAX_GATHER``."""
    S.check_gather(tuple(t.shape), tensors.numpy_dtype(t.dtype), describe(t), what)
    return tensors.to_numpy(t.full_tensor())


def fsdp_grads(value: torch.Tensor, params: list) -> list:
    """The gradients FSDP2's own backward leaves on ``params`` (sharded
    DTensors: reduce-scattered), each parameter's ``.grad`` set aside
    before (FSDP accumulates into one it finds) and put back after, so a
    training loop the user keeps is unaffected."""
    kept = [p.grad for p in params]
    for p in params:
        p.grad = None
    try:
        value.backward()
        return [p.grad for p in params]
    finally:
        for p, g in zip(params, kept):
            p.grad = g


def sharded_grad(g: DTensor) -> S.ShardedArray:
    """A DTensor gradient, framework-neutral: its local block now, its
    ``full_tensor()`` (a collective) only when gathered.  A pending
    reduction (``Partial``) is reduced first, as DTensor itself would."""
    if any(isinstance(p, Partial) for p in g.placements):
        g = g.redistribute(g.device_mesh, [Replicate() if isinstance(p, Partial) else p
                                           for p in g.placements])
    return S.ShardedArray(tuple(g.shape), tensors.numpy_dtype(g.dtype), describe(g), local_shards(g),
                          lambda: tensors.to_numpy(g.full_tensor()))


def process_index() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def process_count() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
