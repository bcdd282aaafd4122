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
    out: list = []
    for c, d in collection_dicts(variables):
        _collect_leaves((c,), d, out)
    return out


def _collect_leaves(prefix: tuple, node, out: list) -> None:
    # a module-level function, not a closure calling itself: such a closure
    # is a reference cycle, and the list it fills (every leaf of the tree)
    # would live until the garbage collector runs; each Flax write calls
    # this, so a transfer kept every replaced array alive until then
    for k, v in node.items():
        if _IS_SUBTREE[v.__class__]:
            _collect_leaves(prefix + (k,), v, out)
        else:
            out.append((prefix + (k,), v))


class _SubtreeTypes(dict):
    """value type -> whether a value of it is a subtree (a dict or
    FrozenDict), asked once per type: ``isinstance`` against FrozenDict, an
    ABC, would cost a metaclass call per leaf."""

    def __missing__(self, t: type) -> bool:
        self[t] = subtree = issubclass(t, _DICTS)
        return subtree


_IS_SUBTREE = _SubtreeTypes()


def collection_dicts(variables) -> list:
    """``[(collection, its dict)]``, ``params`` first: the dicts a module
    at the root path reads; :func:`step` goes one module down."""
    return [(c, variables[c]) for c in sorted(variables.keys(), key=lambda c: c != "params")  # stable
            if _IS_SUBTREE[variables[c].__class__]]


def step(dicts: list, name) -> list:
    """The ``[(collection, dict)]`` of the child module ``name`` of the
    module whose dicts are ``dicts`` (the collections holding it)."""
    out = []
    for c, d in dicts:
        sub = d.get(name)
        if sub is not None and _IS_SUBTREE[sub.__class__]:
            out.append((c, sub))
    return out


def dicts_at(variables, path: tuple) -> list:
    """:func:`step` from the root along ``path``."""
    dicts = collection_dicts(variables)
    for name in path:
        dicts = step(dicts, name)
    return dicts


def level(dicts: list, path: tuple) -> tuple:
    """What a module at ``path`` holds directly, from its dicts in one
    pass: ``([(full path, leaf)], {name of a child subtree: None} or
    None)``, leaves in creation order and ``params`` first (a layer lists
    weight, bias, then its running statistics, as torch does)."""
    leaves, subs = [], None
    for c, d in dicts:
        prefix = (c,) + path
        for k, v in d.items():
            if _IS_SUBTREE[v.__class__]:
                if subs is None:
                    subs = {}
                subs[k] = None      # ordered set
            else:
                leaves.append((prefix + (k,), v))
    return leaves, subs


def has_leaf(dicts: list) -> bool:
    """Whether any leaf is under the dicts (an empty subtree holds none)."""
    return any(not _IS_SUBTREE[v.__class__] or has_leaf([(c, v)]) for c, d in dicts for v in d.values())


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
