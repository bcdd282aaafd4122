"""The engines' own checkpoints: PyTorch distributed checkpoints
(``torch.distributed.checkpoint``, "DCP") and Orbax, read and written with
those libraries' own readers and writers (their code is in the adapters'
packages, ``multiparam.adapters.engines`` says where).

- **DCP**: a folder with a ``.metadata`` file.  Read with DCP's
  ``FileSystemReader`` (its metadata through ``read_metadata``), each
  block a parameter asks for by its own ``dcp.load`` whose planner plans
  that block alone (DCP's resharding finds the stored chunks that overlap
  it, whatever world size saved them), straight into the parameter's
  memory where the framework exposes it.
  Written with ``dcp.save``: a torch model's own tensors (a ``DTensor``
  stays sharded, every rank writing its shards: DCP's collective save), or
  any other model's values gathered in one process.  Keys are canonical
  names, which for torch are ``state_dict`` keys: the folder is what
  ``dcp.save(model.state_dict(), ...)`` writes, and ``dcp.load`` reads it.
- **Orbax**: a folder Orbax's ``StandardCheckpointer``/``PyTreeCheckpointer``
  wrote (``_CHECKPOINT_METADATA`` or ``_METADATA``).  Written as a flat
  pytree ``{canonical name: array in canonical layout}``; a sharded JAX
  parameter is handed to Orbax as its sharded ``jax.Array`` (transposed
  lazily where the layouts differ), so each process writes its own shards
  and nothing is gathered.  Read slice by slice with TensorStore through
  Orbax's own read spec (whole leaves by ``partial_restore`` where that
  does not know the layout).  A nested tree (a Flax user's own variables)
  is matched to a Flax model's variable paths, values in native layout.

Reads give :class:`~multiparam.sharding.Blocks`: a parameter asks for its
shards' blocks, never the whole checkpoint, and each engine reads each
block alone (the stored chunks it overlaps, each read whole by the
engine): DCP straight into the parameter's memory where it has some,
Orbax through TensorStore (whole leaves by :class:`OneTensor`, one tensor
in flight per process, where Orbax's spec does not know the layout)."""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, Union

import numpy as np

from . import layout as _layout
from .adapters.engines import ENGINES
from .sharding import Blocks
from .state import StateDict

FORMATS = ("safetensors",) + tuple(ENGINES)
PathLike = Union[str, os.PathLike]


def engine_of(path: PathLike) -> Optional[str]:
    """The engine format whose checkpoint ``path`` is (by the files it
    holds, nothing imported), or None."""
    path = Path(path)
    for name, engine in ENGINES.items():
        folder = path.parent if path.name in engine.marks else path
        if folder.is_dir() and any((folder / f).is_file() for f in engine.marks):
            return name
    return None


def _module(name: str):
    try:
        return importlib.import_module(ENGINES[name].module)    # imports that engine's framework
    except ImportError as e:
        raise ImportError(f"a {name} checkpoint needs {ENGINES[name].requires}, which does not import "
                          f"here: {e}") from e


def open_engine(path: PathLike, model=None, strict: bool = True) -> StateDict:
    """An engine's checkpoint (see :func:`engine_of`) as a StateDict of
    :class:`Blocks`, nothing read but its metadata, keyed by canonical
    names.  ``model`` is the model it is for: an engine whose checkpoints
    may be keyed by a framework's own paths (a Flax user's Orbax tree)
    matches them to ``model``'s parameters (``strict``: every path)."""
    name = engine_of(path)
    return _module(name).open_checkpoint(path, model, strict)


#: what ``mp.save(..., names=)`` takes: canonical names, or the framework's own paths
NAMES = ("canonical", "native")


def check_names(format: str, names: str) -> None:
    """ValueError (before anything is written) unless ``format`` writes ``names``."""
    if names not in NAMES:
        raise ValueError(f"unknown names {names!r}; use one of {', '.join(NAMES)}")
    if names == "native" and not (format in ENGINES and ENGINES[format].native_names):
        able = [name for name, engine in ENGINES.items() if engine.native_names]
        raise ValueError(f"format {format!r} is written by canonical names only; names='native' is for "
                         f"format={' or '.join(repr(a) for a in able)}")


def save_engine(model, path: PathLike, format: str, names: str = "canonical") -> Path:
    """Write ``model`` in an engine's format, keyed by canonical names or
    (``names="native"``) by the framework's own paths; returns the folder."""
    check_names(format, names)
    module = _module(format)
    return module.save_native(model, path) if names == "native" else module.save_checkpoint(model, path)


class OneTensor:
    """The last tensor an engine read, kept while its parameter asks for
    blocks of it: one tensor in flight, each read once per parameter."""

    def __init__(self, read: Callable[[str], np.ndarray]):
        self._read = read
        self._name = None
        self._array = None

    def blocks(self, name: str, shape: Tuple[int, ...], dtype: np.dtype) -> Blocks:
        def block(index):
            if self._name != name:
                self._array, self._name = None, None    # the previous tensor goes first
                self._array, self._name = self._read(name), name
            return self._array[index]
        return Blocks(shape, dtype, block)


def state_of(entries: Dict[str, Blocks]) -> StateDict:
    """``{name: Blocks}`` as the StateDict a load takes (an engine's
    checkpoint records no ties and no origin backend)."""
    out = StateDict(entries)
    out.ties = []
    out.backend = ""
    return out


def native_in_canonical(model, p, kind: type) -> Any:
    """``p``'s native array when it is a ``kind`` whose layout is canonical
    up to an axis permutation (returned permuted by the array's own
    ``transpose``, which keeps a sharded array sharded), else None."""
    adapter, state = model.adapter, model.adapter_state
    native = adapter.native_param(state, p.slot.ref)
    native = native.unbox() if hasattr(native, "unbox") else native     # Flax's partitioning boxes
    if not isinstance(native, kind) or _layout._converts_itself(p.slot.layout):
        return None
    axes = _layout._to_canonical_axes(p.slot.layout, len(native.shape))
    return native if axes is None else native.transpose(axes)


def flat(tree: Any, keys: tuple = ()) -> Dict[str, Tuple[tuple, Any]]:
    """``{path joined with '.': (path, leaf)}`` of a nested mapping."""
    if isinstance(tree, dict) or (hasattr(tree, "items") and not hasattr(tree, "shape")):
        out = {}
        for k, v in tree.items():
            out.update(flat(v, keys + (k,)))
        return out
    return {".".join(str(k) for k in keys): (keys, tree)}
