"""Orbax checkpoints read and written by Orbax itself: the flat pytree
``{canonical name: canonical array}``; see ``multiparam.engine_io``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import jax
import numpy as np
import orbax.checkpoint as ocp

from ... import engine_io
from ...checkpoint import FileFormatError
from ...state import StateDict


def open_checkpoint(path) -> StateDict:
    """An Orbax checkpoint as a StateDict of Blocks (nothing read but
    Orbax's metadata); each tensor is restored alone, as NumPy, by Orbax's
    ``PyTreeCheckpointer`` (``partial_restore``)."""
    folder = Path(path).resolve()
    checkpointer = ocp.PyTreeCheckpointer()
    try:
        meta = checkpointer.metadata(folder)
    except Exception as e:    # Orbax raises what it meets reading its metadata
        raise FileFormatError(f"{folder} is not a readable Orbax checkpoint: {e}") from e
    tree = getattr(meta, "item_metadata", meta)
    tree = getattr(tree, "tree", tree)
    leaves = engine_io.flat(tree) if tree is not None else {}
    if not leaves or any(getattr(m, "shape", None) is None or getattr(m, "dtype", None) is None
                         for _, m in leaves.values()):
        raise FileFormatError(f"{folder} is not a readable Orbax checkpoint: Orbax finds no tree of "
                              "arrays in its metadata")

    def read(name: str) -> np.ndarray:
        keys, m = leaves[name]
        item: dict = {}
        args: dict = {}
        node_i, node_a = item, args
        for k in keys[:-1]:
            node_i, node_a = node_i.setdefault(k, {}), node_a.setdefault(k, {})
        node_i[keys[-1]] = np.empty(tuple(m.shape), np.dtype(m.dtype))
        node_a[keys[-1]] = ocp.RestoreArgs(restore_type=np.ndarray)
        got = checkpointer.restore(folder, args=ocp.args.PyTreeRestore(
            item=item, restore_args=args, partial_restore=True))
        for k in keys:
            got = got[k]
        return np.asarray(got)

    return engine_io.state_of_blocks(engine_io.OneTensor(read),
                                     {name: (m.shape, m.dtype) for name, (_, m) in leaves.items()})


def save_checkpoint(model, path) -> Path:
    """Write ``model`` with Orbax's ``StandardCheckpointer``: a JAX array
    as it is (sharded: each process writes its shards, Orbax coordinating),
    any other value as NumPy."""
    folder = Path(path).resolve()
    tree: Dict[str, Any] = {}
    for name, p in model.index().unique.items():
        native = engine_io.native_in_canonical(model, p, jax.Array)
        tree[name] = native if native is not None else np.ascontiguousarray(p.value)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(folder, tree, force=True)
    checkpointer.wait_until_finished()
    return folder
