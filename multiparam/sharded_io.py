"""Sharded checkpoints: each process saves its own shards, any mesh loads them.

``mp.save`` of a model with a sharded parameter writes a folder:

- ``shards-00001-of-00002.safetensors`` ...: one safetensors file per
  process, holding the blocks that process owns (a block several devices
  hold is written once, by the lowest process holding it), each under the
  key ``name[start:stop, ...]``;
- ``model.shards.json``: the index, written by process 0 from the
  shardings alone (no gather, no message between processes): per tensor
  its global shape, dtype and the slices, each with its file and key.

``mp.load`` of such a folder (or its index) into any model, sharded over
any mesh or world size or not at all, checks the index first (every file
present and holding its keys with the right shapes, the slices of each
tensor tiling it without overlap or gap) and then lets each parameter ask
for the blocks its own shards need: only the overlapping parts of the
slice files are read (memory-mapped), never a whole tensor per process.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np

from . import dtypes
from .checkpoint import FileFormatError, PlannedTensor, _temp_beside, read_header, write_checkpoint
from .sharding import (Blocks, ShardingError, _canonical_axes, check_cover, format_index, index_shape,
                       permute_index, whole)
from .state import StateDict

INDEX = "model.shards.json"
FORMAT = "multiparam-sharded"
FORMAT_VERSION = 1


def shard_file(process: int, count: int) -> str:
    return f"shards-{process + 1:05d}-of-{count:05d}.safetensors"


def key_of(name: str, index) -> str:
    return f"{name}{format_index(index)}"


def is_sharded_model(model) -> bool:
    """True when some parameter of ``model`` is sharded (so ``mp.save``
    writes this layout)."""
    if not model.adapter.capability("sharding").supported:
        return False
    return any(p.is_sharded for p in model.index().unique.values())


def is_sharded_checkpoint(path: Union[str, os.PathLike]) -> bool:
    path = Path(path)
    return path.name == INDEX or (path.is_dir() and (path / INDEX).exists())


# -- saving ------------------------------------------------------------------------------------
def _owned_blocks(model, p) -> Tuple[list, list]:
    """(every block of ``p`` with its owning process, this process's own
    (index, block) rows), canonical."""
    adapter, state = model.adapter, model.adapter_state
    if not p.is_sharded:
        shape = tuple(p.shape)
        rows = [(whole(shape), p.value)] if adapter.process_index() == 0 else []
        return [(whole(shape), 0)], rows
    axes = _canonical_axes(p, len(p.shape))
    owners = [(permute_index(idx, axes), proc) for idx, proc in adapter.shard_owners(state, p.slot.ref)]
    me = adapter.process_index()
    mine = {tuple((s.start, s.stop) for s in idx) for idx, proc in owners if proc == me}
    rows = [(idx, block) for idx, block in p.shards() if tuple((s.start, s.stop) for s in idx) in mine]
    return owners, rows


def save(model, path: Union[str, os.PathLike]) -> Path:
    """Write ``model``'s shards owned by this process, and (process 0) the
    index.  Every process of the mesh calls it with the same ``path``.
    Returns the index's path."""
    folder = Path(path)
    if folder.suffix == ".safetensors" or folder.name == INDEX:
        folder = folder.parent if folder.name == INDEX else folder.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    adapter = model.adapter
    me, count = adapter.process_index(), adapter.process_count()
    planned: List[PlannedTensor] = []
    tensors: Dict[str, dict] = {}
    for name, p in model.index().unique.items():
        owners, rows = _owned_blocks(model, p)
        dtype = np.dtype(p.dtype)
        tensors[name] = {
            "shape": list(p.shape), "dtype": dtypes.to_safetensors(dtype),
            "slices": [{"file": shard_file(proc, count), "key": key_of(name, idx),
                        "start": [s.start for s in idx], "stop": [s.stop for s in idx]}
                       for idx, proc in owners]}
        for idx, block in rows:
            planned.append(PlannedTensor(key_of(name, idx), dtype, index_shape(idx),
                                         lambda block=block: np.ascontiguousarray(block)))
    write_checkpoint(folder / shard_file(me, count), planned,
                     metadata={"format": FORMAT, "process": str(me), "processes": str(count)})
    index = folder / INDEX
    if me == 0:
        doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "processes": count,
               "backend": model.backend, "tensors": tensors}
        tmp = _temp_beside(index)
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, index)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    adapter.barrier()     # the index and every file exist before anyone reads them
    return index


# -- loading -----------------------------------------------------------------------------------
def _read_index(path: Path) -> Tuple[Path, dict]:
    index = path / INDEX if path.is_dir() else path
    try:
        doc = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise FileFormatError(f"{index} is not a readable sharded-checkpoint index: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("tensors"), dict):
        raise FileFormatError(f"{index} is not a {FORMAT} index")
    return index.parent, doc


def open_sharded(path: Union[str, os.PathLike]) -> StateDict:
    """The checkpoint as a StateDict of :class:`~multiparam.sharding.Blocks`
    (nothing read but headers), every file and slice checked first."""
    folder, doc = _read_index(Path(path))
    headers: Dict[str, dict] = {}
    for info in doc["tensors"].values():
        for sl in info.get("slices", []):
            f = sl.get("file")
            if f not in headers:
                target = folder / str(f)
                if not isinstance(f, str) or "/" in f or not target.is_file():
                    raise ShardingError(f"the sharded checkpoint {folder} is missing its slice file {f!r}")
                headers[f] = read_header(target)[0]
    out = StateDict()
    for name, info in doc["tensors"].items():
        shape = tuple(int(n) for n in info["shape"])
        dtype = dtypes.from_safetensors(info["dtype"])
        pieces = []
        for sl in info["slices"]:
            idx = tuple(slice(int(a), int(b)) for a, b in zip(sl["start"], sl["stop"]))
            entry = headers[sl["file"]].get(sl["key"])
            if entry is None or tuple(entry.shape) != index_shape(idx) or entry.dtype != dtype:
                raise ShardingError(f"{sl['file']} does not hold {sl['key']!r} as the index says "
                                    f"({dtype} {index_shape(idx)})")
            pieces.append((idx, entry))
        check_cover(shape, [idx for idx, _ in pieces], f"tensor {name!r} of the sharded checkpoint")
        out[name] = Blocks(shape, dtype, _assembler(pieces))
    out.ties = []
    out.backend = doc.get("backend", "")
    return out


def _assembler(pieces):
    """``fn(index)``: the block ``index`` from the slices that overlap it,
    each read only where it overlaps (a memory map)."""
    def assemble(index):
        out = np.empty(index_shape(index), pieces[0][1].dtype)
        for idx, entry in pieces:
            lo = [max(a.start, b.start) for a, b in zip(idx, index)]
            hi = [min(a.stop, b.stop) for a, b in zip(idx, index)]
            if any(l >= h for l, h in zip(lo, hi)) and math.prod(out.shape):
                continue
            src = _mapped(entry)[tuple(slice(l - a.start, h - a.start) for l, h, a in zip(lo, hi, idx))]
            out[tuple(slice(l - b.start, h - b.start) for l, h, b in zip(lo, hi, index))] = src
        return out
    return assemble


def _mapped(entry) -> np.ndarray:
    if entry.nbytes == 0:
        return np.empty(entry.shape, entry.dtype)
    raw = np.memmap(entry.path, dtype=np.uint8, mode="r", offset=entry.offset, shape=(entry.nbytes,))
    return raw.view(entry.dtype).reshape(entry.shape)
