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
from torch.distributed.checkpoint.metadata import TensorStorageMetadata

from ... import engine_io
from ...checkpoint import FileFormatError
from ...errors import CapabilityError
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


def open_checkpoint(path, model=None, strict: bool = True) -> StateDict:
    """A DCP checkpoint as a StateDict of Blocks (nothing read but DCP's
    metadata, through its own reader).  Entries that are not tensors
    (DCP's byte items: optimizer steps, Python objects) are left out.
    ``model`` and ``strict`` change nothing here: DCP's keys are a torch
    ``state_dict``'s, which are canonical names (the load matches them)."""
    folder = _folder(path)
    try:
        meta = dcp.FileSystemReader(str(folder)).read_metadata()
    except Exception as e:   # DCP raises what its reader meets (OSError, unpickling errors)
        raise FileFormatError(f"{folder} is not a readable torch.distributed.checkpoint folder: {e}") from e
    found = {name: m for name, m in meta.state_dict_metadata.items() if isinstance(m, TensorStorageMetadata)}

    def read(name: str) -> np.ndarray:
        m = found[name]
        target = torch.empty(tuple(m.size), dtype=m.properties.dtype)
        # no_dist: every process reads for itself, no collective to wait on
        with _one_process():
            dcp.load({name: target}, storage_reader=dcp.FileSystemReader(str(folder)), no_dist=True)
        return tensors.to_numpy(target)

    return engine_io.state_of_blocks(engine_io.OneTensor(read), {
        name: (tuple(m.size), tensors.numpy_dtype(m.properties.dtype)) for name, m in found.items()})


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
