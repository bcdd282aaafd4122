"""Moving parameters: ``save`` and ``load`` in safetensors files, and
``transfer`` from one model to another (any backend to any backend),
canonical names and layout throughout.

Why safetensors: loading it never runs code (unlike pickle-based formats), it
is what the ecosystem ships (Hugging Face ``save_pretrained``, timm), and it
is a plain header plus raw bytes.  ``load`` reads any safetensors file, a
plain one or a Hugging Face sharded set (the ``model.safetensors.index.json``
or its folder); the names are canonical names (PyTorch's ``state_dict``
keys), so a torch checkpoint loads into the torch model it came from and into
the same architecture on any other backend.

What safetensors cannot say, multiparam's metadata does, and it is optional
when reading: the format version, the origin backend, the library version,
the tie groups (safetensors refuses shared tensors, so a tied parameter is
stored once and re-tied on load by name) and a CRC-32 of every tensor's
bytes, checked before anything is written, so a damaged file is rejected
with the model unchanged.  Every header is validated before a byte of data
is read (see ``multiparam.checkpoint``).  Writes are atomic: each file is
written beside its target and renamed over it.
"""
from __future__ import annotations

import hashlib
import json
import os
import zlib
from pathlib import Path
from typing import Dict, List, Union

import numpy as np

from .checkpoint import (Checkpoint, FileFormatError, PlannedTensor, open_checkpoint,
                         write_checkpoint)
from . import sharded_io
from .model import Model, wrap
from .state import IncompatibleKeys, StateDict, load_state_dict, state_dict, state_views
from .version import __version__

__all__ = ["FileFormatError", "save", "load", "transfer", "read_state", "save_state"]

FORMAT = "multiparam"
#: 1: one SHA-256 over every tensor; 2: a CRC-32 per tensor (streams, and
#: checks a sharded set file by file).  Both are read.
FORMAT_VERSION = 2


def _crc32(array: np.ndarray) -> str:
    data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return f"{zlib.crc32(memoryview(data)) & 0xFFFFFFFF:08x}"


def _sha256_v1(arrays: Dict[str, np.ndarray]) -> str:
    """Format 1's digest, kept to read files written by multiparam 0.1."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _as_model(model) -> Model:
    """A Model handle for ``model`` (a native model is wrapped)."""
    return model if isinstance(model, Model) else wrap(model)


def save_state(sd: Dict[str, np.ndarray], path: Union[str, os.PathLike], backend: str = "",
               ties=(), max_shard_size: Union[int, str, None] = None) -> List[Path]:
    """Write a canonical state dict to ``path`` atomically (a folder in the
    Hugging Face sharded layout when ``max_shard_size`` is given); returns
    the files written."""
    groups = [list(g) for g in ties]
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "library_version": __version__,
            "origin_backend": backend, "ties": json.dumps(groups)}
    tensors = [PlannedTensor(name, np.asarray(v).dtype, tuple(np.shape(v)), (lambda v=v: np.asarray(v)))
               for name, v in sd.items()]

    def checksums(group: List[PlannedTensor]) -> Dict[str, str]:
        # a CRC-32 per tensor, in the header of the file that holds it (its
        # bytes are read once more for this; zlib's CRC runs at ~3 GB/s)
        return {"crc32": json.dumps({t.name: _crc32(t.fetch()) for t in group})}

    return write_checkpoint(path, tensors, metadata=meta, max_shard_size=max_shard_size,
                            file_metadata=checksums)


def save(model, path: Union[str, os.PathLike], max_shard_size: Union[int, str, None] = None) -> Path:
    """Save every parameter and state array of ``model`` (a handle, or a
    native model, which is wrapped) to a safetensors file at ``path``, or,
    with ``max_shard_size`` (bytes or ``"2GB"``), to the folder ``path`` in
    Hugging Face's sharded layout with its index.  Canonical names are
    PyTorch's ``state_dict`` keys, so a torch model's file loads with
    ``model.load_state_dict(safetensors.torch.load_file(path), strict=False)``
    (the missing keys are only the aliases of tied parameters, stored once).
    Returns the file (or the index) written.

    A model with a sharded parameter is saved sharded instead
    (``multiparam.sharded_io``): every process calls ``save`` with the same
    ``path``, a folder, and writes only the shards it owns, never gathering;
    the index ``model.shards.json`` records each tensor's global shape and
    the slices each file holds."""
    model = _as_model(model)
    if sharded_io.is_sharded_model(model):
        return sharded_io.save(model, path)
    views = state_views(model)        # read-only views: written out, never copied first
    written = save_state(views, path, backend=views.backend, ties=views.ties,
                         max_shard_size=max_shard_size)
    return written[-1]


def _multiparam_metadata(ck: Checkpoint):
    """(ties, origin backend) from multiparam's metadata, validated; a file
    without it (any other safetensors file) gives no ties."""
    meta = ck.metadata
    if meta.get("format") != FORMAT:
        return [], ""
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise FileFormatError(f"{ck.path} has a malformed format_version "
                              f"{meta.get('format_version')!r}") from None
    if version < 1:
        raise FileFormatError(f"{ck.path} has an invalid format_version {version}")
    if version > FORMAT_VERSION:
        raise FileFormatError(f"{ck.path} uses format version {version}, newer than this multiparam "
                              f"reads ({FORMAT_VERSION}); upgrade multiparam")
    try:
        ties = json.loads(meta.get("ties", "[]"))
    except ValueError:
        ties = None
    if not (isinstance(ties, list) and all(isinstance(g, list) and len(g) >= 2
                                           and all(isinstance(n, str) for n in g) for g in ties)):
        raise FileFormatError(f"{ck.path} has malformed tie metadata: {meta.get('ties')!r}")
    held = [g for g in ties if not any(n in ck for n in g)]
    if held:
        raise FileFormatError(f"{ck.path} ties {held[0]} but holds none of those tensors")
    return [tuple(g) for g in ties], meta.get("origin_backend", "")


def _verify(ck: Checkpoint) -> None:
    """Check the integrity metadata of every file of ``ck`` (format 2: a
    CRC-32 per tensor; format 1: one SHA-256), if it has any."""
    for file in ck.files:
        names = [n for n, e in ck.entries.items() if e.path == file]
        meta = ck.file_metadata[file]
        if meta.get("format") != FORMAT:
            continue
        if "crc32" in meta:
            try:
                want = json.loads(meta["crc32"])
            except ValueError:
                want = None
            if not isinstance(want, dict) or set(want) != set(names):
                raise FileFormatError(f"{file} has malformed checksum metadata")
            for name in names:
                if _crc32(ck.array(name)) != want[name]:
                    raise FileFormatError(f"{file} is damaged or was altered: tensor {name!r} does not "
                                          "match the checksum written with it")
        elif "sha256" in meta:
            if _sha256_v1({n: ck.array(n) for n in names}) != meta["sha256"]:
                raise FileFormatError(f"{file} is damaged or was altered: its contents do not match "
                                      "the checksum written with it")
        else:
            raise FileFormatError(f"{file} says it was written by multiparam but carries no checksum")


def read_state(path: Union[str, os.PathLike], verify: bool = True) -> StateDict:
    """Open any safetensors checkpoint (see :func:`load`) as a StateDict of
    read-only memory-mapped arrays, with ``ties`` and ``backend`` from
    multiparam's metadata when the file has it.  ``verify`` checks the
    integrity metadata (reading every tensor once)."""
    ck = open_checkpoint(path)
    ties, backend = _multiparam_metadata(ck)
    if verify:
        _verify(ck)
    sd = StateDict((name, ck.array(name)) for name in ck.entries)
    sd.ties = ties
    sd.backend = backend
    return sd


def load(model, path: Union[str, os.PathLike], strict: bool = True, verify: bool = True):
    """Load a safetensors checkpoint into ``model`` (a handle, or a native
    model, which is wrapped): a file written by ``save`` on any backend, a
    Hugging Face ``model.safetensors``, or a sharded set given by its index
    or its folder.  Every header is validated, the integrity metadata (when
    the file has it) checked and every entry matched against the model
    before anything is written; tensors are memory-mapped and copied into
    the model one at a time.  Returns ``IncompatibleKeys`` as torch's
    ``load_state_dict`` does.

    A sharded checkpoint (a folder with ``model.shards.json``, from a
    sharded ``save``) loads into any mesh, world size or an unsharded
    model: each parameter reads only the slices its own shards need."""
    model = _as_model(model)
    if sharded_io.is_sharded_checkpoint(path):
        return load_state_dict(model, sharded_io.open_sharded(path), strict=strict)
    return load_state_dict(model, read_state(path, verify=verify), strict=strict)


def transfer(src, dst, strict: bool = True) -> IncompatibleKeys:
    """Copy every parameter of ``src`` into ``dst``, any backend to any
    backend (both Model handles, or anything ``mp.wrap`` takes).  The
    architectures must match by canonical name and shape; the error names
    the first parameter that does not fit, and ``dst`` is then unchanged."""
    src = src if isinstance(src, Model) else wrap(src)
    dst = dst if isinstance(dst, Model) else wrap(dst)
    if src.native is dst.native:
        # one model: its views would change under the writes, so copy first
        return load_state_dict(dst, state_dict(src), strict=strict)
    # no copy: the src's read-only values (zero-copy views on torch and JAX)
    # go straight to the dst's writes, which copy them once into the dst's
    # native layout (Param.write_validated)
    return load_state_dict(dst, state_views(src), strict=strict)
