"""The linen variables pytree as nested dicts: paths, leaves, and copies
with one leaf replaced, removed or inserted.

JAX arrays are immutable and the pytree is shared with the user, so nothing
here changes a dict in place: every edit rebuilds only the dicts along the
path and shares the rest.  A path is a tuple of keys from the root,
collection first (``("params", "layers_0", "kernel")``).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax.core import FrozenDict
from flax.core.meta import AxisMetadata

_DICTS = DICTS = (dict, FrozenDict)


def ordered_leaves(variables) -> list:
    """[(path tuple, leaf)] in creation order, ``params`` first (so a layer
    lists weight, bias, then its running statistics, as torch does)."""
    out = []

    def walk(prefix, node):
        for k, v in node.items():
            if isinstance(v, _DICTS):
                walk(prefix + (k,), v)
            else:
                out.append((prefix + (k,), v))

    collections = sorted(variables.keys(), key=lambda c: c != "params")  # stable: params first
    for c in collections:
        v = variables[c]
        if isinstance(v, _DICTS):
            walk((c,), v)
    return out


def leaves_by_module(variables) -> dict:
    """``{module path: [(full path, leaf)]}``: :func:`ordered_leaves`
    grouped by the path of the dict holding them (collection left out),
    in one walk; modules in the order their first leaf comes."""
    owned: dict = {}

    def walk(prefix, node, module_path):
        leaves = None
        for k, v in node.items():
            if isinstance(v, _DICTS):
                walk(prefix + (k,), v, module_path + (k,))
                continue
            if leaves is None:
                leaves = owned.get(module_path)
                if leaves is None:
                    leaves = owned[module_path] = []
            leaves.append((prefix + (k,), v))

    for c in sorted(variables.keys(), key=lambda c: c != "params"):  # stable: params first
        v = variables[c]
        if isinstance(v, _DICTS):
            walk((c,), v, ())
    return owned


def has_boxes(node) -> bool:
    """Whether a Flax box (``nn.Partitioned``, any ``AxisMetadata``) is
    among the leaves: a scan that builds nothing, asking once per value
    type what it is (a box, a mapping to look into as ``sharding.unbox``
    does, or a leaf)."""
    for v in node.values():
        t = type(v)
        what = _WHAT.get(t)
        if what is None:
            what = _WHAT[t] = ("box" if issubclass(t, AxisMetadata) else
                               "map" if issubclass(t, dict) or hasattr(t, "items") and not hasattr(t, "shape")
                               else "leaf")
        if what == "map":
            if has_boxes(v):
                return True
        elif what == "box":
            return True
    return False


#: value type -> "box", "map" or "leaf" (see :func:`has_boxes`)
_WHAT: dict = {}


def map_leaves(node, fn):
    """A copy of the nested dict ``node`` with ``fn`` applied to every leaf,
    dict types and key order kept (``jax.tree_util.tree_map`` would sort
    the keys, and the order is the layer's parameter order)."""
    if not isinstance(node, _DICTS):
        return fn(node)
    items = {k: map_leaves(v, fn) for k, v in node.items()}
    return FrozenDict(items) if isinstance(node, FrozenDict) else items


def get(node, path):
    """The leaf (or subtree) at ``path``."""
    for k in path:
        node = node[k]
    return node


def replace(node, path, new):
    """A copy of the nested dict ``node`` with the leaf at ``path`` replaced;
    only the dicts along the path are rebuilt (the rest is shared)."""
    k = path[0]
    child = new if len(path) == 1 else replace(node[k], path[1:], new)
    if isinstance(node, FrozenDict):
        return node.copy({k: child})
    out = dict(node)
    out[k] = child
    return out


def remove(node, path):
    """A copy of the nested dict ``node`` without the leaf at ``path``."""
    k = path[0]
    out = dict(node)
    if len(path) == 1:
        out.pop(k, None)
    else:
        out[k] = remove(node[k], path[1:])
    return out


def insert(node, path, leaf):
    """A copy of ``node`` with ``leaf`` at ``path`` (creating dicts on the way)."""
    k = path[0]
    out = dict(node)
    out[k] = leaf if len(path) == 1 else insert(node.get(k, {}), path[1:], leaf)
    return out


def key_name(k) -> str:
    """One key of a ``tree_flatten_with_path`` path as text."""
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def shape_spec(x) -> Any:
    """``x`` as a tree of ``jax.ShapeDtypeStruct`` (what an abstract trace needs)."""
    return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(np.shape(a), jnp.asarray(a).dtype), x)
