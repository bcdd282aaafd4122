"""Orbax checkpoints read and written by Orbax itself; see
``multiparam.engine_io``.

Two kinds of tree are read:

- **flat**, ``{canonical name: canonical array}``, as ``mp.save(...,
  format="orbax")`` writes it: its keys are canonical names, so it loads
  into a model of any backend;
- **native**, a Flax user's own nested tree (``StandardCheckpointer().save(
  path, variables)`` of linen's ``{"params": {"Dense_0": {"kernel": ...}}}``
  or NNX's ``nnx.state(model)``): keyed by the model's own variable paths
  in Flax's layout, so it loads into the Flax model whose variables it
  holds, matched by each parameter's native path (a box's array, which
  ``nn.Partitioned`` and ``nnx.Variable`` keep under ``value``, included).

Each array is read slice by slice with TensorStore through the spec Orbax
itself builds to read it (``get_json_tspec_read``): a block reads only the
stored chunks it overlaps (Orbax chunks an array by the shard shape it was
saved from; an array saved unsharded is one chunk)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import jax
import numpy as np
import orbax.checkpoint as ocp
import tensorstore as ts
from etils import epath

from ... import engine_io
from ...checkpoint import FileFormatError
from ...errors import UnknownNameError
from ...sharding import Blocks, canonical_blocks
from ...state import LoadError, StateDict
from .common import FlaxAdapter
from .linen.pytree import key_name

#: Orbax's tree metadata file: how its arrays are stored (zarr version, OCDBT)
TREE_METADATA = "_METADATA"
#: the key under which Flax's boxes (``nn.Partitioned``, ``nnx.Variable``) keep their array
BOX_VALUE = "value"

Leaves = Dict[str, Tuple[tuple, Any]]      # joined path -> (key path, Orbax's ArrayMetadata)


def _leaves(folder: Path) -> Leaves:
    """Every leaf of the checkpoint's tree, from Orbax's metadata alone."""
    try:
        meta = ocp.PyTreeCheckpointer().metadata(folder)
    except Exception as e:    # Orbax raises what it meets reading its metadata
        raise FileFormatError(f"{folder} is not a readable Orbax checkpoint: {e}") from e
    tree = getattr(meta, "item_metadata", meta)
    tree = getattr(tree, "tree", tree)
    leaves = engine_io.flat(tree) if tree is not None else {}
    if not leaves or any(getattr(m, "shape", None) is None or getattr(m, "dtype", None) is None
                         for _, m in leaves.values()):
        raise FileFormatError(f"{folder} is not a readable Orbax checkpoint: Orbax finds no tree of "
                              "arrays in its metadata")
    return leaves


class _Reader:
    """Reads the checkpoint's arrays as :class:`Blocks` in the layout they
    are stored in.  A leaf Orbax stores as a zarr array (its
    ``ArrayMetadata``: a jax.Array, NumPy array or scalar) is opened with
    TensorStore through Orbax's own read spec, and each block reads that
    slice alone.  Whole-leaf restore with ``PyTreeCheckpointer``
    (``partial_restore``, one tensor in flight) is kept for what the slice
    path does not know: a checkpoint without ``_METADATA`` (older Orbax,
    or other handlers), a leaf of another metadata type (a custom type
    handler's), or a store TensorStore cannot open as Orbax's spec says
    or that disagrees with the metadata's shape or dtype."""

    def __init__(self, folder: Path, leaves: Leaves):
        self.folder = folder
        self.leaves = leaves
        self._whole = engine_io.OneTensor(self._restore)
        self._spec_args = self._storage()

    def _storage(self) -> Optional[dict]:
        """How Orbax stored the arrays, as its own restore reads it from
        ``_METADATA`` (with Orbax's defaults for keys an older file lacks),
        or None: the slice path does not know this checkpoint."""
        try:
            stored = json.loads((self.folder / TREE_METADATA).read_text())
        except (OSError, ValueError):
            return None
        use_ocdbt = stored.get("use_ocdbt")
        if use_ocdbt is None:
            use_ocdbt = ocp.type_handlers.is_ocdbt_checkpoint(epath.Path(self.folder))
        return {"use_zarr3": bool(stored.get("use_zarr3", False)), "use_ocdbt": bool(use_ocdbt),
                "missing_is_error": bool(stored.get("store_array_data_equal_to_fill_value", False)),
                "context": ocp.type_handlers.get_ts_context(use_ocdbt=bool(use_ocdbt))}

    def _store(self, meta) -> Optional[Any]:
        """The leaf's TensorStore, opened with Orbax's read spec, or None
        (then the leaf is restored whole)."""
        args = self._spec_args
        if args is None or not isinstance(meta, ocp.metadata.ArrayMetadata) or not meta.name:
            return None
        info = ocp.type_handlers.ParamInfo(name=meta.name, parent_dir=epath.Path(self.folder),
                                           use_zarr3=args["use_zarr3"], ts_context=args["context"])
        spec = ocp.type_handlers.get_json_tspec_read(info, use_ocdbt=args["use_ocdbt"],
                                                     raise_array_data_missing_error=args["missing_is_error"])
        try:
            store = ts.open(ts.Spec(spec), open=True, read=True, context=args["context"]).result()
        except ValueError:      # TensorStore's error for a store it cannot open as specified
            return None
        if tuple(store.shape) != tuple(meta.shape) or store.dtype.numpy_dtype != np.dtype(meta.dtype):
            return None
        return store

    def _restore(self, name: str) -> np.ndarray:
        """One leaf, whole, by Orbax's own restore (the fallback)."""
        keys, m = self.leaves[name]
        item: dict = {}
        args: dict = {}
        node_i, node_a = item, args
        for k in keys[:-1]:
            node_i, node_a = node_i.setdefault(k, {}), node_a.setdefault(k, {})
        node_i[keys[-1]] = np.empty(tuple(m.shape), np.dtype(m.dtype))
        node_a[keys[-1]] = ocp.RestoreArgs(restore_type=np.ndarray)
        got = ocp.PyTreeCheckpointer().restore(self.folder, args=ocp.args.PyTreeRestore(
            item=item, restore_args=args, partial_restore=True))
        for k in keys:
            got = got[k]
        return np.asarray(got)

    def blocks(self, name: str) -> Blocks:
        """The leaf ``name`` as Blocks: each block read alone where the
        slice path knows the leaf, else from the whole leaf."""
        _, meta = self.leaves[name]
        shape, dtype = tuple(int(n) for n in meta.shape), np.dtype(meta.dtype)
        opened: list = []

        def block(index):
            if not opened:
                opened.append(self._store(meta))
            store = opened[0]
            if store is None:
                return self._whole.blocks(name, shape, dtype).block(index)
            return store[index].read().result()
        return Blocks(shape, dtype, block)


def open_checkpoint(path, model=None, strict: bool = True) -> StateDict:
    """An Orbax checkpoint as a StateDict of Blocks (nothing read but
    Orbax's metadata).  A flat tree is keyed by its keys (canonical names);
    a nested one, with ``model``, by ``model``'s canonical names, matched
    by native path (see the module's doc; without ``model``, by its paths
    joined with ``.``)."""
    folder = Path(path).resolve()
    folder = folder.parent if folder.name in ("_CHECKPOINT_METADATA", TREE_METADATA) else folder
    leaves = _leaves(folder)
    reader = _Reader(folder, leaves)
    if model is not None and any(len(keys) > 1 for keys, _ in leaves.values()):
        return _native_state(model, folder, leaves, reader, strict)
    return engine_io.state_of({name: reader.blocks(name) for name in leaves})


def _native_state(model, folder: Path, leaves: Leaves, reader: _Reader, strict: bool) -> StateDict:
    """A native (nested) tree keyed by ``model``'s canonical names, each
    value the stored native-layout array seen in canonical layout (views:
    the native blocks are what gets written).  Every path and shape is
    checked first; a path the model lacks, one it has that the tree lacks
    (with ``strict``) or a shape that differs is a :class:`LoadError`
    naming it, before anything is written."""
    if not isinstance(model.adapter, FlaxAdapter):
        raise LoadError(f"{folder} is a nested Orbax tree keyed by a Flax model's own variable paths "
                        f"({_some(leaves)}); a {model.backend} model does not have them. Load it into the "
                        "Flax model it was saved from (mp.load(flax_model, folder)), then "
                        "mp.transfer(flax_model, this_model)")
    by_path = {tuple(p.native_name.split("/")): (name, p) for name, p in model.index().unique.items()}
    # a linen tie keeps the tied parameter's own leaf, refilled from its
    # source after every write: Flax's tree holds it, and it is skipped here
    tied_copies = _tree_paths(model.adapter.native_variables(model.adapter_state)) - set(by_path)
    found: Dict[tuple, str] = {}        # native path -> the leaf's joined name
    unknown: Dict[str, str] = {}        # a path the model does not have, as shown -> the leaf's joined name
    for joined, (keys, _) in leaves.items():
        path = tuple(str(k) for k in keys)
        if path[-1] == BOX_VALUE and path not in by_path and path not in tied_copies:
            path = path[:-1]
        if path in by_path:
            found[path] = joined
        elif path not in tied_copies:
            unknown["/".join(path)] = joined
    missing = ["/".join(path) for path in by_path if path not in found]
    problems = []
    if strict and unknown:
        known = ["/".join(path) for path in by_path]
        named = []
        for u in unknown:
            close = UnknownNameError(u, known).suggestions
            named.append(repr(u) + (f" (did you mean {close[0]!r}?)" if close else ""))
        problems.append(f"paths the model does not have: {', '.join(named)}")
    if strict and missing:
        problems.append(f"the tree has no array for {', '.join(repr(m) for m in missing)}")
    for path, joined in found.items():
        stored = tuple(leaves[joined][1].shape)
        native = tuple(by_path[path][1].native_shape)
        if stored != native:
            problems.append(f"{'/'.join(path)!r} has shape {stored} in the checkpoint where the model has {native}")
    if problems:
        raise LoadError(f"the Orbax tree in {folder} does not match the {model.backend} model: " + "; ".join(problems))
    state = {by_path[path][0]: canonical_blocks(reader.blocks(joined), by_path[path][1].slot.layout)
             for path, joined in found.items()}
    # strict=False: the paths the model does not have come back as the
    # load's unexpected keys (never read), as load_state_dict reports them
    state.update({shown: reader.blocks(joined) for shown, joined in unknown.items()})
    return engine_io.state_of(state)


def _tree_paths(tree: Any) -> set:
    """Every leaf's key path in a Flax variables tree (linen's variables,
    NNX's state), a box's ``value`` key left out, as tuples of strings."""
    out = set()
    for keypath, _ in jax.tree_util.tree_flatten_with_path(tree)[0]:
        keys = tuple(key_name(k) for k in keypath)
        out.add(keys[:-1] if keys and keys[-1] == BOX_VALUE else keys)
    return out


def _some(leaves: Leaves) -> str:
    shown = ["/".join(str(k) for k in keys) for keys, _ in list(leaves.values())[:2]]
    return ", ".join(repr(s) for s in shown) + (", ..." if len(leaves) > 2 else "")


def save_checkpoint(model, path) -> Path:
    """Write ``model`` with Orbax's ``StandardCheckpointer``, the flat tree
    ``{canonical name: canonical array}``: a JAX array as it is (sharded:
    each process writes its shards, Orbax coordinating), any other value
    as NumPy."""
    tree: Dict[str, Any] = {}
    for name, p in model.index().unique.items():
        native = engine_io.native_in_canonical(model, p, jax.Array)
        tree[name] = native if native is not None else np.ascontiguousarray(p.value)
    return _orbax_save(tree, path)


def save_native(model, path) -> Path:
    """Write a Flax model's own variables tree with Orbax's
    ``StandardCheckpointer`` (linen's ``variables`` with its partitioning
    boxes, NNX's ``nnx.state(model)``): its paths, Flax's layout, each
    array as it is (sharded: each process its shards), as a Flax user's
    own save writes it."""
    if not isinstance(model.adapter, FlaxAdapter):
        raise ValueError(f"names='native' writes a Flax model's own variables tree; a {model.backend} model "
                         "has none: save it by canonical names (names='canonical')")
    return _orbax_save(model.adapter.native_variables(model.adapter_state), path)


def _orbax_save(tree: Any, path) -> Path:
    folder = Path(path).resolve()
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(folder, tree, force=True)
    checkpointer.wait_until_finished()
    return folder
