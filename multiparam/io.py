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
stored once and re-tied on load by name) and a checksum of every tensor's
bytes (XXH3-64).  Every header is validated before a byte of data is read
(see ``multiparam.checkpoint``), and every checksum is checked before
anything is written: a damaged file is rejected with the model unchanged,
without staging a copy of the model.  The price is one more read of every
byte before the first write, hashed on every core (XXH3 runs at about
25 GB/s per core from memory here, so the pass is about a third of a load's
time on two cores).  Staging instead (each tensor read into fresh memory and
hashed while hot, then swapped in) was measured and is slower: fresh pages
must be faulted in and zeroed by the kernel, which costs more than the
second read (190 ms against 150 ms per GiB on the same run), and it would
change the storage of the user's tensors.  Writes are atomic: each file is
written beside its target and renamed over it.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np
import xxhash

from . import progress as _progress
from .checkpoint import (Checkpoint, FileFormatError, PlannedTensor, TensorChecksum, open_checkpoint,
                         write_checkpoint)
from . import engine_io, sharded_io
from .model import Model, wrap
from .state import DeferredArray, IncompatibleKeys, StateDict, load_state_dict, state_dict, state_streams
from .version import __version__

__all__ = ["FileFormatError", "save", "load", "transfer", "read_state", "save_state"]

FORMAT = "multiparam"
#: 1: one SHA-256 over every tensor; 2: a CRC-32 per tensor; 3: an XXH3-64
#: per tensor (the same scheme, ten times faster than zlib's CRC-32).  All
#: are read.
FORMAT_VERSION = 3


def _bytes_of(array: np.ndarray) -> memoryview:
    # a memory map or a parameter's own memory: hashed where it lies
    return memoryview(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


def _xxh3_64(array: np.ndarray) -> str:
    return xxhash.xxh3_64_hexdigest(_bytes_of(array))


def _crc32(array: np.ndarray) -> str:
    return f"{zlib.crc32(_bytes_of(array)) & 0xFFFFFFFF:08x}"


#: per-tensor checksums a file's metadata may carry, by metadata key
TENSOR_CHECKSUMS = {"xxh3_64": _xxh3_64, "crc32": _crc32}
#: what ``save`` writes: 64 bits as 16 hex digits, hashed as each tensor streams
WRITTEN = TensorChecksum("xxh3_64", _xxh3_64, 16)


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
               ties=(), max_shard_size: Union[int, str, None] = None,
               progress: Optional[bool] = None) -> List[Path]:
    """Write a canonical state dict to ``path`` atomically (a folder in the
    Hugging Face sharded layout when ``max_shard_size`` is given); returns
    the files written."""
    groups = [list(g) for g in ties]
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "library_version": __version__,
            "origin_backend": backend, "ties": json.dumps(groups)}
    tensors = [_planned(name, v) for name, v in sd.items()]

    total = sum(t.nbytes for t in tensors)
    with _progress.bar("save", total, len(tensors), progress) as bar:
        return write_checkpoint(path, tensors, metadata=meta, max_shard_size=max_shard_size,
                                checksum=WRITTEN, on_tensor=lambda t, a: bar.update(a.nbytes))


def _planned(name: str, value) -> PlannedTensor:
    # a deferred entry (a Keras or Gluon value, see state_streams) is read
    # when its bytes are written, one at a time
    if isinstance(value, DeferredArray):
        return PlannedTensor(name, np.dtype(value.dtype), tuple(value.shape), value.read, value.with_view)
    return PlannedTensor(name, np.asarray(value).dtype, tuple(np.shape(value)), lambda: np.asarray(value))


def save(model, path: Union[str, os.PathLike], max_shard_size: Union[int, str, None] = None,
         progress: Optional[bool] = None, format: str = "safetensors", names: str = "canonical") -> Path:
    """Save every parameter and state array of ``model`` (a handle, or a
    native model, which is wrapped) to a safetensors file at ``path``, or,
    with ``max_shard_size`` (bytes or ``"2GB"``), to the folder ``path`` in
    Hugging Face's sharded layout with its index.  Canonical names are
    PyTorch's ``state_dict`` keys, so a torch model's file loads with
    ``model.load_state_dict(safetensors.torch.load_file(path), strict=False)``
    (the missing keys are only the aliases of tied parameters, stored once).
    Tensors stream from the parameters' own memory to the file (no copy of
    the model is made), with a checksum each and one fsync per file; a
    progress bar appears when it runs for over a second in a terminal
    (``progress=False``: never).  Returns the file (or the index) written.

    A model with a sharded parameter is saved sharded instead
    (``multiparam.sharded_io``): every process calls ``save`` with the same
    ``path``, a folder, and writes only the shards it owns, never gathering;
    the index ``model.shards.json`` records each tensor's global shape and
    the slices each file holds.

    ``format="dcp"`` writes the folder ``path`` with
    ``torch.distributed.checkpoint`` (a torch model's DTensors sharded, each
    rank its own shards), ``format="orbax"`` with Orbax's
    ``StandardCheckpointer`` (a sharded JAX array by each process's shards);
    both keyed by canonical names (see ``multiparam.engine_io``).
    ``format="orbax", names="native"`` writes a Flax model's own variables
    tree instead (linen's ``variables``, NNX's ``nnx.state(model)``, keyed
    by its own paths, Flax's layout and shardings), the checkpoint Flax's
    ``StandardCheckpointer().restore(folder, abstract_variables)`` reads."""
    if format not in engine_io.FORMATS:
        raise ValueError(f"unknown checkpoint format {format!r}; use one of {', '.join(engine_io.FORMATS)}")
    engine_io.check_names(format, names)
    model = _as_model(model)
    if format != "safetensors":
        return engine_io.save_engine(model, path, format, names)
    if sharded_io.is_sharded_model(model):
        return sharded_io.save(model, path)
    # views, or reads one at a time (as the file stores them): never a copy of the model
    views = state_streams(model, contiguous=True)
    written = save_state(views, path, backend=views.backend, ties=views.ties,
                         max_shard_size=max_shard_size, progress=progress)
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
    """Check the integrity metadata of every file of ``ck`` (formats 2 and
    3: a checksum per tensor, each kind the file carries; format 1: one
    SHA-256), if it has any.  Per-tensor checksums are computed on every
    core from the file's one mapping, its pages dropped in spans
    (``Checkpoint.map_tensors``; XXH3 and CRC-32 release the GIL)."""
    for file in ck.files:
        names = [n for n, e in ck.entries.items() if e.path == file]
        meta = ck.file_metadata[file]
        if meta.get("format") != FORMAT:
            continue
        kinds = [k for k in TENSOR_CHECKSUMS if k in meta]
        for kind in kinds:
            try:
                want = json.loads(meta[kind])
            except ValueError:
                want = None
            if not (isinstance(want, dict) and set(want) == set(names)
                    and all(isinstance(v, str) for v in want.values())):
                raise FileFormatError(f"{file} has malformed checksum metadata ({kind})")
            found = ck.map_tensors(TENSOR_CHECKSUMS[kind], names)
            for name in names:       # the first damaged tensor in header order is named
                if found[name] != want[name]:
                    raise FileFormatError(f"{file} is damaged or was altered: tensor {name!r} does not "
                                          "match the checksum written with it")
        if kinds:
            continue
        if "sha256" in meta:
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


def load(model, path: Union[str, os.PathLike], strict: bool = True, verify: bool = True,
         progress: Optional[bool] = None):
    """Load a safetensors checkpoint into ``model`` (a handle, or a native
    model, which is wrapped): a file written by ``save`` on any backend, a
    Hugging Face ``model.safetensors``, or a sharded set given by its index
    or its folder.  Returns ``IncompatibleKeys`` as torch's
    ``load_state_dict`` does.

    Nothing is written until everything is checked: every header is
    validated and every entry matched against the model (names, shapes,
    dtypes) from the headers alone; with ``verify`` (the default) every
    tensor's checksum, when the file has them, is checked too, before the
    first write (a damaged file leaves the model unchanged, and no staged
    copy of the model is needed; the checksums are computed on every core,
    one more read of the file).  Then tensors stream from the file's
    memory map into the model, one per core at a time into torch and Flax
    and one at a time into Keras and Gluon, so the extra memory is a few
    tensors (the README's memory table has each backend's), and a file
    larger than free memory loads.  ``verify=False``
    skips the checksums (the headers are still checked).  A progress bar
    appears when it runs for over a second in a terminal (``progress=False``:
    never).

    A sharded checkpoint (a folder with ``model.shards.json``, from a
    sharded ``save``) loads into any mesh, world size or an unsharded
    model: each parameter reads only the slices its own shards need.

    The engines' own checkpoints load too, read by the engines' readers: a
    ``torch.distributed.checkpoint`` folder (it holds ``.metadata``), from
    any world size, and an Orbax checkpoint folder, each block a
    parameter's shards need read alone.  An Orbax flat tree of canonical
    names loads into any model, a Flax user's own nested tree
    (``StandardCheckpointer().save(path, variables)``, ``nnx.state(model)``)
    into the Flax model whose variable paths it holds (see
    ``multiparam.engine_io``)."""
    model = _as_model(model)
    if sharded_io.is_sharded_checkpoint(path):
        return load_state_dict(model, sharded_io.open_sharded(path), strict=strict, progress=progress)
    if engine_io.engine_of(path) is not None:
        return load_state_dict(model, engine_io.open_engine(path, model, strict), strict=strict, progress=progress)
    ck = open_checkpoint(path)
    ties, backend = _multiparam_metadata(ck)
    if verify:
        _verify(ck)
    entries = StateDict((name, DeferredArray(e.shape, e.dtype, functools.partial(ck.read, name),
                                             functools.partial(ck.read_into, name),
                                             functools.partial(ck.array, name),
                                             with_view=functools.partial(ck.with_tensor, name)))
                        for name, e in ck.entries.items())
    entries.ties = ties
    entries.backend = backend
    return load_state_dict(model, entries, strict=strict, progress=progress)


def transfer(src, dst, strict: bool = True, progress: Optional[bool] = None) -> IncompatibleKeys:
    """Copy every parameter of ``src`` into ``dst``, any backend to any
    backend (both Model handles, or anything ``mp.wrap`` takes).  The
    architectures must match by canonical name and shape; the error names
    the first parameter that does not fit, and ``dst`` is then unchanged."""
    src = src if isinstance(src, Model) else wrap(src)
    dst = dst if isinstance(dst, Model) else wrap(dst)
    if src.native is dst.native:
        # one model: its views would change under the writes, so copy first
        return load_state_dict(dst, state_dict(src), strict=strict, progress=progress,
                               description="transfer")
    # no copy of the model: the src's read-only values (zero-copy views on
    # torch and JAX; read one at a time where reads copy, on Keras and Gluon)
    # go straight to the dst's writes, which copy them once into the dst's
    # native layout (Param.write_validated)
    return load_state_dict(dst, state_streams(src), strict=strict, progress=progress,
                           description="transfer")
