"""Moving parameters: ``save`` and ``load`` in portable safetensors files,
and ``transfer`` from one model to another (any backend to any backend),
canonical names and layout throughout.

Why safetensors: loading it never runs code (unlike pickle-based formats), it
is read by every framework's ecosystem, and it is a plain header plus raw
bytes.  What it cannot say, the metadata does: the format version, the
origin backend, the library version, the tie groups (safetensors refuses
shared tensors, so a tied parameter is stored once and re-tied on load by
name) and a SHA-256 of every tensor's bytes, so an altered file is rejected
rather than loaded.  Writes are atomic: the file is written beside the
target and renamed over it, so a crash mid-write leaves the old file intact.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Dict, Union

import numpy as np

from .errors import MultiparamError
from .model import Model, wrap
from .state import IncompatibleKeys, StateDict, load_state_dict, state_dict, state_views
from .version import __version__

FORMAT = "multiparam"
FORMAT_VERSION = 1


class FileFormatError(MultiparamError, ValueError):
    """A file that is not a multiparam safetensors file, is damaged, or is
    from a newer format version."""


def _digest(arrays: Dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_state(sd: Dict[str, np.ndarray], path: Union[str, os.PathLike], backend: str = "",
               ties=()) -> Path:
    """Write a canonical state dict to ``path`` atomically."""
    from safetensors.numpy import save_file   # optional dependency (multiparam[io])

    arrays = {k: np.ascontiguousarray(v) for k, v in sd.items()}
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "library_version": __version__,
        "origin_backend": backend,
        "ties": json.dumps([list(g) for g in ties]),
        "sha256": _digest(arrays),
    }
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent or "."))
    os.close(fd)
    try:
        save_file(arrays, tmp, metadata=meta)   # streams to disk: no 1 GiB bytes object
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)        # atomic on POSIX: readers see old or new, never half
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def read_state(path: Union[str, os.PathLike]) -> StateDict:
    """Read and verify a file written by ``save``; returns a StateDict with
    ``ties`` and ``backend`` set.  Raises FileFormatError for anything else."""
    from safetensors import safe_open   # optional dependency (multiparam[io])

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            arrays = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:    # safetensors raises its own error types for damaged files
        raise FileFormatError(f"{path} is not a readable safetensors file ({exc})") from None
    if meta.get("format") != FORMAT:
        raise FileFormatError(f"{path} is a safetensors file but not one written by multiparam "
                              "(no multiparam metadata); load its arrays with safetensors and "
                              "pass them to load_state_dict")
    try:
        version = int(meta.get("format_version", "0"))
    except ValueError:
        raise FileFormatError(f"{path} has a malformed format_version") from None
    if version > FORMAT_VERSION:
        raise FileFormatError(f"{path} uses format version {version}, newer than this multiparam "
                              f"reads ({FORMAT_VERSION}); upgrade multiparam")
    if meta.get("sha256") != _digest(arrays):
        raise FileFormatError(f"{path} is damaged or was altered: its contents do not match "
                              "the checksum written with it")
    sd = StateDict(arrays)
    try:
        sd.ties = [tuple(g) for g in json.loads(meta.get("ties", "[]"))]
    except ValueError:
        raise FileFormatError(f"{path} has malformed tie metadata") from None
    sd.backend = meta.get("origin_backend", "")
    return sd


def save(model, path: Union[str, os.PathLike]) -> Path:
    """Save every parameter of ``model`` to a portable safetensors file."""
    views = state_views(model)        # read-only views: written out, never copied first
    return save_state(views, path, backend=views.backend, ties=views.ties)


def load(model, path: Union[str, os.PathLike], strict: bool = True):
    """Load a file written by ``save`` (from any backend) into ``model``.
    The file is verified and every entry checked before anything is written."""
    return load_state_dict(model, read_state(path), strict=strict)


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
