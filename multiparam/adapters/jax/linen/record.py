"""The submodule tree of a linen model: which module is at which pytree
path, which module called which, and the children of Sequential containers.

A linen ``Module`` is a description, and ``@nn.compact`` submodules exist
only during a call, so the tree is found one of two ways:

- :func:`traced_record`: run the model abstractly (``jax.make_jaxpr``, no
  FLOPs) under ``nn.intercept_methods``, recording every module method call;
  the same trace's jaxpr tells in which order each parameter holds the
  features it indexes (``..order``: a Dense after a flattened NHWC map);
- :func:`static_record`: from the unbound modules' dataclass fields, naming
  children exactly as Flax adopts them, for a model not initialised yet.

Relied on from Flax 0.12.8 (checked in its source): ``nn.intercept_methods``
(public), ``Module.path`` on bound modules, setup running before
interceptors (``_call_wrapped_method``), and the adoption naming of
attribute submodules (``{field}{suffix}``, sorted by suffix, shared objects
adopted once, names kept when the class sets ``preserve_adopted_names``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax
import jax
from flax import linen as nn
from flax.core import FrozenDict

from .... import layer_registry
from ..layers import SEQUENTIAL_TYPES, child_keys
from ..order import trace_orders
from .pytree import key_name


class CallRecord:
    """The submodule tree of a linen model: modules by path, which module
    called which (in order), and the elements of Sequential containers."""

    def __init__(self):
        self.modules: dict = {}   # path -> Module (bound when traced)
        self.calls: dict = {}     # caller path -> {callee path: None}, first-call order
        self.seq: dict = {}       # path -> [(key, ("mod", path) | ("fn", fn))]
        #: traced only: the feature order bindings of every leaf, keyed by
        #: its pytree path (``multiparam.layout.Labels``); None untraced
        self.orders = None

    def add_call(self, parent, child) -> None:
        self.calls.setdefault(parent, {})[child] = None  # ordered set

    def add_sequential(self, path, container, path_of: Callable) -> None:
        """The children of a Sequential container at ``path``: modules by
        their path (``path_of(module)``), plain functions as they are."""
        self.seq[path] = [(key, ("mod", path_of(el)) if isinstance(el, nn.Module) else ("fn", el))
                          for key, el in zip(child_keys(container), container.layers)]


_NESTING = (list, tuple, dict, FrozenDict)


def _flatten_nested(prefix: tuple, v, flat: list) -> None:
    """``(key path, value)`` of every non-container in ``v`` (lists,
    tuples and dicts, nested), appended to ``flat``."""
    if isinstance(v, (list, tuple)) and not hasattr(v, "_fields"):
        for i, e in enumerate(v):
            _flatten_nested(prefix + (str(i),), e, flat)
    elif isinstance(v, (dict, FrozenDict)):
        for k, e in v.items():
            _flatten_nested(prefix + (str(k),), e, flat)
    else:
        flat.append((prefix, v))


def _suffixed(val) -> list:
    """[(suffix, value)] as Flax names submodules held in one attribute:
    ``""`` for a bare module, ``_<i>`` / ``_<key>`` inside lists, tuples and
    dicts (nested ones joined by ``_``), sorted by key path as Flax adopts
    them (``_map_over_modules_in_tree``), which decides the name a shared
    object gets."""
    if isinstance(val, (list, tuple)) and not hasattr(val, "_fields") and not any(
            issubclass(t, _NESTING) for t in set(map(type, val))):   # the usual list of modules: one level
        return [(f"_{i}", val[i]) for i in sorted(range(len(val)), key=str)]   # by index as text
    flat: list = []
    _flatten_nested((), val, flat)
    if not flat or flat == [((), val)]:
        return [("", val)]
    return [("_" + "_".join(k), v) for k, v in sorted(flat, key=lambda kv: kv[0])]


#: value type -> whether a field of that type may hold submodules (a
#: module, or a list, tuple or dict of them); by type, so an ABC's
#: ``isinstance`` runs once per type
_MAY_HOLD_MODULES: dict = {}


#: Flax's own parameter layers: their fields are configuration (sizes,
#: dtypes, initialisers), never submodules (exact classes: a user's
#: subclass may add a submodule field)
_LEAF_LAYERS = frozenset((nn.Dense, nn.DenseGeneral, nn.Conv, nn.ConvTranspose, nn.ConvLocal, nn.Embed,
                          nn.BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm))


@layer_registry.per_class
def _init_fields(cls: type) -> tuple:
    """The dataclass fields of a module class that may hold submodules:
    its ``__init__`` fields but ``parent`` and ``name``; none for Flax's
    own parameter layers (memoised)."""
    if cls in _LEAF_LAYERS:
        return ()
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in ("parent", "name") and f.init)


def static_record(root: nn.Module) -> CallRecord:
    """The submodule tree from the unbound modules' dataclass fields,
    naming children exactly as Flax adopts them (so the paths predicted
    here are the pytree paths after ``init``).  Sees Sequential and
    attribute submodules; not those made in ``setup``/``@nn.compact``."""
    rec = CallRecord()
    rec.modules[()] = root
    # id(module) -> path: Flax adopts a shared object once
    _adopt_fields(root, (), rec, {}, bool(flax.config.flax_preserve_adopted_names))
    return rec


def _adopt_fields(module: nn.Module, path: tuple, rec: CallRecord, adopted: dict, preserve_default: bool) -> None:
    """Record the submodules ``module``'s fields hold, and theirs, under
    the names Flax adopts them by (see :func:`static_record`)."""
    fields = _init_fields(type(module))
    if not fields:
        return      # a Dense, a LayerNorm: no submodule, not a Sequential
    preserve = getattr(type(module), "preserve_adopted_names", preserve_default)
    modules = rec.modules
    calls = None    # this module's callees, made at its first child
    for field_name in fields:
        val = getattr(module, field_name)
        holds = _MAY_HOLD_MODULES.get(type(val))
        if holds is None:
            holds = _MAY_HOLD_MODULES[type(val)] = isinstance(val, (nn.Module, list, tuple, dict, FrozenDict))
        if not holds:
            continue  # features=16, kernel_init=...: no submodule
        for suffix, sub in _suffixed(val):
            if not isinstance(sub, nn.Module) or id(sub) in adopted:
                continue
            own = object.__getattribute__(sub, "name")
            name = own if (preserve and own) else f"{field_name}{suffix}"
            child = adopted[id(sub)] = path + (name,)
            if calls is None:
                calls = rec.calls.setdefault(path, {})
            calls[child] = None     # ordered set, as add_call
            modules[child] = sub
            if type(sub) not in _LEAF_LAYERS:   # a leaf layer has no field to walk
                _adopt_fields(sub, child, rec, adopted, preserve_default)
    if isinstance(module, SEQUENTIAL_TYPES):
        rec.add_sequential(path, module, lambda el: adopted[id(el)])


def traced_record(apply: Callable, variables: Any, sample: Any) -> CallRecord:
    """The submodule tree seen by running ``apply(variables, x)`` abstractly
    on ``sample`` (a list of ``ShapeDtypeStruct``) under ``nn.intercept_methods``:
    every module method call reports the bound module, its path, and
    (through a stack) which module called it; the trace's jaxpr gives each
    leaf's feature order (``rec.orders``, keyed by leaf path)."""
    rec = CallRecord()
    stack: list = []

    def interceptor(next_fun, args, kwargs, ctx):
        m = ctx.module
        if ctx.method_name == "setup" or m.scope is None:
            return next_fun(*args, **kwargs)
        p = tuple(m.path)
        rec.modules.setdefault(p, m)
        if stack and stack[-1] != p:
            rec.add_call(stack[-1], p)
        if isinstance(m, SEQUENTIAL_TYPES) and p not in rec.seq:
            # setup already ran (it runs before interceptors), so
            # m.layers holds the adopted, bound children
            rec.add_sequential(p, m, lambda el: tuple(el.path))
        stack.append(p)
        try:
            return next_fun(*args, **kwargs)
        finally:
            stack.pop()

    flat, treedef = jax.tree_util.tree_flatten_with_path(variables)
    leaves = [(tuple(key_name(k) for k in path), leaf) for path, leaf in flat]

    def run(*arrays):
        return apply(jax.tree_util.tree_unflatten(treedef, arrays[:len(leaves)]), list(arrays[len(leaves):]))

    with nn.intercept_methods(interceptor):
        rec.orders = trace_orders(run, leaves, list(sample))
    return rec
