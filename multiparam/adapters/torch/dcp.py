"""PyTorch distributed checkpoints (``torch.distributed.checkpoint``) read
and written by DCP itself, keyed by canonical names (torch's ``state_dict``
keys); see ``multiparam.engine_io``."""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any, Dict

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed import checkpoint as dcp
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
from torch.distributed.checkpoint.metadata import ChunkStorageMetadata, TensorStorageMetadata
from torch.distributed.checkpoint.planner import LoadPlan
from torch.distributed.checkpoint.planner_helpers import create_read_items_for_chunk_list

from ... import engine_io
from ...checkpoint import FileFormatError
from ...errors import CapabilityError
from ...sharding import Blocks, ShardingError, check_cover, index_shape
from ...state import StateDict
from . import tensors

#: DCP's metadata file (torch.distributed.checkpoint.filesystem._metadata_fn)
METADATA = ".metadata"


def _folder(path) -> Path:
    path = Path(path)
    return path.parent if path.name == METADATA else path


@contextlib.contextmanager
def _one_process():
    """DCP without a process group: quiet about the single process it was asked for."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
        yield


class _BlockPlanner(DefaultLoadPlanner):
    """DCP's default load planner asked for one block of one tensor: its
    local plan is DCP's own resharding (``create_read_items_for_chunk_list``)
    of the stored chunks onto that block, read into a plain tensor of the
    block's shape (DCP narrows it by each read item's ``dest_offsets``,
    which are relative to the block)."""

    def __init__(self, name: str, index: tuple):
        super().__init__(flatten_state_dict=False, flatten_sharded_tensors=False)
        self._name = name
        self._block = ChunkStorageMetadata(offsets=torch.Size([s.start for s in index]),
                                           sizes=torch.Size([s.stop - s.start for s in index]))

    def create_local_plan(self) -> LoadPlan:
        stored = self.metadata.state_dict_metadata[self._name]
        return LoadPlan(create_read_items_for_chunk_list(self._name, stored, [self._block]))

    def lookup_tensor(self, index) -> torch.Tensor:
        # the default finds a plain tensor only at offset 0; this one *is* the block
        return self.state_dict[index.fqn]


class _Reader(dcp.FileSystemReader):
    """DCP's FileSystemReader, its metadata read (unpickled by DCP) once
    per checkpoint rather than once per block."""

    def __init__(self, folder: Path):
        super().__init__(str(folder))
        self._metadata = None

    def read_metadata(self, *args: Any, **kwargs: Any):
        if self._metadata is None:
            self._metadata = super().read_metadata(*args, **kwargs)
        return self._metadata


def _check_files(folder: Path, meta) -> None:
    """:class:`ShardingError` unless every data file DCP's metadata names is
    there and long enough for the items it holds (a block is read straight
    into a parameter: a file found missing half-way would leave it half
    written)."""
    needed: Dict[str, int] = {}
    for info in (meta.storage_data or {}).values():
        needed[info.relative_path] = max(needed.get(info.relative_path, 0), info.offset + info.length)
    for relative, end in needed.items():
        target = folder / relative
        size = target.stat().st_size if target.is_file() else None
        if size is None or size < end:
            raise ShardingError(f"the DCP checkpoint {folder} is missing its data file {relative!r}" if size is None
                                else f"the DCP checkpoint's data file {target} is cut short ({size} of {end} bytes)")


def open_checkpoint(path, model=None, strict: bool = True) -> StateDict:
    """A DCP checkpoint as a StateDict of Blocks (nothing read but DCP's
    metadata, through its own reader).  Each block is read alone, by
    ``dcp.load`` with :class:`_BlockPlanner`: only the stored chunks that
    overlap it, straight into the parameter's memory where it has some
    (:meth:`Blocks.fill_block`).  Entries that are not tensors (DCP's byte
    items: optimizer steps, Python objects) are left out.  ``model`` and
    ``strict`` change nothing here: DCP's keys are a torch ``state_dict``'s,
    which are canonical names (the load matches them)."""
    folder = _folder(path)
    reader = _Reader(folder)
    try:
        meta = reader.read_metadata()
    except Exception as e:   # DCP raises what its reader meets (OSError, unpickling errors)
        raise FileFormatError(f"{folder} is not a readable torch.distributed.checkpoint folder: {e}") from e
    found = {name: m for name, m in meta.state_dict_metadata.items() if isinstance(m, TensorStorageMetadata)}
    for name, m in found.items():
        # DCP fills what the stored chunks cover and leaves the rest as it was:
        # chunks with a gap (or overlapping) are refused before anything is read
        check_cover(tuple(m.size), [tuple(slice(o, o + n) for o, n in zip(c.offsets, c.sizes)) for c in m.chunks],
                    f"tensor {name!r} of the DCP checkpoint {folder}")
    _check_files(folder, meta)

    def blocks(name: str, m: TensorStorageMetadata) -> Blocks:
        def fill(index: tuple, out: np.ndarray) -> None:
            if not out.size:
                return
            # no_dist: every process reads for itself, no collective to wait on
            with _one_process():
                dcp.load({name: tensors.from_numpy(out)}, storage_reader=reader,
                         planner=_BlockPlanner(name, index), no_dist=True)

        dtype = tensors.numpy_dtype(m.properties.dtype)

        def block(index: tuple) -> np.ndarray:
            out = np.empty(index_shape(index), dtype)
            fill(index, out)
            return out
        return Blocks(tuple(m.size), dtype, block, fill)

    return engine_io.state_of({name: blocks(name, m) for name, m in found.items()})


def save_checkpoint(model, path) -> Path:
    """Write ``model`` with ``dcp.save``.  A torch model's tensors go as
    they are (a DTensor's shards from each rank: every rank calls it, DCP
    coordinates); another model's values are gathered into this process
    (``MULTIPARAM_MAX_GATHER`` applies), which then must be the only one."""
    folder = _folder(path)
    adapter = model.adapter
    distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    sd: Dict[str, Any] = {}
    for name, p in model.index().unique.items():
        if adapter.capability("sharding").supported:
            p.is_sharded          # FSDP2: reshards a root a forward left unsharded
        native = engine_io.native_in_canonical(model, p, torch.Tensor)
        if native is None and (distributed or adapter.process_count() > 1):
            raise CapabilityError(model.backend, "save a DCP checkpoint from several processes",
                                  "only torch tensors (DTensor shards) are written by each rank; "
                                  "save multiparam's sharded format (mp.save(m, folder)) instead")
        if native is None:
            with warnings.catch_warnings():   # a borrowed read-only value: DCP only reads it
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                native = tensors.from_numpy(np.ascontiguousarray(p.value))
        sd[name] = native.detach()
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as quiet:
        if not distributed:
            quiet.enter_context(_one_process())
        dcp.save(sd, storage_writer=dcp.FileSystemWriter(str(folder)), no_dist=not distributed)
    return folder
