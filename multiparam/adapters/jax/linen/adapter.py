"""The Flax linen adapter: a module plus its variables pytree.

Flax linen keeps models and parameters apart: a ``Module`` is a pure
description and the numbers live in a nested dict of arrays (the *variables*
pytree, ``{'params': {...}, 'batch_stats': {...}}``) that ``module.init``
creates and ``module.apply`` consumes.  This adapter's ``state`` is
therefore a small :class:`LinenState` holding the module *and* its
variables; writes build a new pytree (JAX arrays are immutable) and store it
back in the state.  A slot's ``ref`` and ``ident`` are its pytree path
(``("params", "layers_2", "kernel")``), so a module reused twice (one Flax
path) gives slots with equal ``ident``.

Pinned against Flax 0.12.8 / JAX 0.10.2; what is relied on from Flax is
listed in ``record``.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import nnx
from flax.errors import ModifyScopeVariableError

from .... import layer_registry
from .... import layout as _layout
from ....errors import CapabilityError, NotMaterializedError
from ...base import Composite, Deferred, Inputs, LayerNode, ParamSlot, kept_shares
from ..builders import BUILDERS
from ..calls import AbstractInputs, default_float, floating_dtype, jax_inputs, with_mode
from ..common import FlaxAdapter, cast_leaf
from ..layers import IN_FEATURES_ATTR, SEQUENTIAL_TYPES
from ..layers import flatten
from ..leaves import function_kind, layer_family, leaf_kinds, ordered_leaf_kinds
from ..nnx import NNX_ADAPTER
from . import pytree
from .lstm import is_lstm, lstm_slots
from ..order import feature_layout
from ..sharding import grad_array, rebox, unbox
from .record import CallRecord, static_record, traced_record


@dataclasses.dataclass(eq=False)
class LinenState:
    """What the adapter needs to find a linen model's numbers again.

    module:    the linen Module (unbound).
    variables: the variables pytree, or None before it exists.
    seed:      PRNG seed used when the adapter initialises the variables,
               and of the dropout keys of training calls given no ``rngs``.
    sample:    :class:`AbstractInputs` of a call seen before (used to trace
               the call tree of ``@nn.compact`` modules).

    It is also the owner of the LSTM bias shares (``base.SumShare``): they
    live and die with the handle's pytree.
    """

    module: Any
    variables: Any = None
    seed: int = 0
    sample: Any = None
    #: leaf path -> native shape (None for unknown dims) before ``init``
    hints: dict = dataclasses.field(default_factory=dict, repr=False)
    #: ties made after construction: dst path -> (src path, transposed)
    ties: dict = dataclasses.field(default_factory=dict)
    #: dst path -> whether its *canonical* value is the src's transposed
    #: (differs from the native flag in ``ties`` when the layouts differ,
    #: as for a Dense kernel (in, out) tied to an Embed table (vocab, dim))
    ties_canonical_t: dict = dataclasses.field(default_factory=dict)
    #: (key of the variables and sample, CallRecord) of the last trace
    trace_cache: Any = dataclasses.field(default=None, repr=False)
    #: collections ``apply`` must make mutable (BatchNorm in train mode), once known
    mutable: Any = dataclasses.field(default=False, repr=False)
    #: training calls made without ``rngs``: each gets the next dropout key
    train_calls: int = dataclasses.field(default=0, repr=False)
    #: leaf path -> the Flax box (``nn.Partitioned``) the user's pytree had
    #: there; ``variables`` holds the arrays, ``m.flax.variables`` the boxes
    boxes: dict = dataclasses.field(default_factory=dict, repr=False)
    #: ``(variables, {id(leaf): (leaf, [every path holding it])})`` for the
    #: pytree ``replace_array`` last made, so the next write need not walk
    #: the whole pytree; dropped whenever ``variables`` is set otherwise
    leaf_paths: Any = dataclasses.field(default=None, repr=False)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "variables":
            # whatever sets a new pytree makes the index of its leaves stale
            # (and would keep the old pytree alive): replace_array sets its
            # own after it sets the pytree
            object.__setattr__(self, "leaf_paths", None)
        object.__setattr__(self, name, value)

    def next_dropout_key(self) -> jax.Array:
        """A fresh dropout key for a training call given no ``rngs`` (torch
        draws dropout masks from its global generator; this is the
        handle's, seeded with ``seed``)."""
        self.train_calls += 1
        return jax.random.fold_in(jax.random.PRNGKey(self.seed), self.train_calls)


#: ``module.apply`` keywords that are Flax's, not the module's call arguments
_APPLY_KWARGS = ("rngs", "mutable", "method", "capture_intermediates")


def _split_apply_kwargs(inputs: Inputs) -> tuple:
    """(the module's own call inputs, ``module.apply``'s keywords)."""
    own = {k: v for k, v in inputs.kwargs.items() if k not in _APPLY_KWARGS}
    flax_kw = {k: v for k, v in inputs.kwargs.items() if k in _APPLY_KWARGS}
    return Inputs(inputs.args, own), flax_kw


def _abstract(leaf) -> jax.ShapeDtypeStruct:
    """A leaf as a trace sees it: its shape, floats in JAX's default float."""
    floating = jnp.issubdtype(leaf.dtype, jnp.floating)
    return jax.ShapeDtypeStruct(np.shape(leaf), default_float() if floating else leaf.dtype)


_NEUTRAL_KINDS = {nn.Conv: "Conv2d", nn.BatchNorm: "BatchNorm", nn.LayerNorm: "LayerNorm",
                  nn.Embed: "Embedding"}


def _kind(module, name: Optional[str]) -> str:
    """The neutral kind of the module at a path (or, without a module
    object, of the pytree subtree named ``name``)."""
    if module is None:  # only in the pytree: Flax's auto-name tells the class
        cls, _, num = (name or "").rpartition("_")
        return "Dense" if cls == "Dense" else (cls if cls and num.isdigit() else "Module")
    if isinstance(module, nn.RNN) and is_lstm(module):
        return "LSTM"
    return _class_kind(type(module))


@layer_registry.per_class
def _class_kind(cls: type) -> str:
    """:func:`_kind` of a module of class ``cls`` (but an LSTM's ``nn.RNN``,
    whose cell decides)."""
    if issubclass(cls, SEQUENTIAL_TYPES):
        return "Sequential"
    if issubclass(cls, nn.Dense):
        return "Dense"
    return _NEUTRAL_KINDS.get(cls, cls.__name__)


def _config_leaves(module) -> list:
    """[(collection, leaf, native shape with None)] a linen layer will
    create, from its configuration alone (before ``init``)."""
    family = layer_family(module)
    out = []
    if family == "Dense":
        out.append(("params", "kernel", (getattr(module, IN_FEATURES_ATTR, None), module.features)))
        if module.use_bias:
            out.append(("params", "bias", (module.features,)))
    elif family == "Conv":
        ks = module.kernel_size
        ks = (ks,) if isinstance(ks, int) else tuple(ks)
        out.append(("params", "kernel", (*ks, None, module.features)))
        if module.use_bias:
            out.append(("params", "bias", (module.features,)))
    elif family in ("BatchNorm", "Norm"):
        if getattr(module, "use_scale", False):
            out.append(("params", "scale", (None,)))
        if getattr(module, "use_bias", False):
            out.append(("params", "bias", (None,)))
        if family == "BatchNorm":
            out += [("batch_stats", "mean", (None,)), ("batch_stats", "var", (None,))]
    elif family == "Embed":
        out.append(("params", "embedding", (module.num_embeddings, module.features)))
    return out


def _may_flatten_maps(rec: CallRecord, owning: list) -> bool:
    """Whether an untraced model may flatten a channels-last feature map:
    it has a convolution (a module, or a pytree subtree Flax named
    ``Conv_<n>``, among the paths ``owning`` leaves) or a visible flatten
    function."""
    paths = set(rec.modules).union(owning)
    if any(layer_family(rec.modules.get(p), p[-1] if p else None) == "Conv" for p in paths):
        return True
    return any(what == "fn" and fn is flatten for children in rec.seq.values() for _, (what, fn) in children)


def _leaf_shape(leaf) -> tuple:
    """A pytree leaf's shape (a JAX array's own; ``np.shape`` otherwise)."""
    shape = getattr(leaf, "shape", None)
    return tuple(shape) if shape is not None else np.shape(leaf)


def _unique_keys(slots: list, paths: list) -> list:
    """Keep keys unique within a layer: a second ``bias`` (from another
    collection) becomes ``<collection>:bias``."""
    if len(slots) < 2:
        return slots
    seen = set()
    for s, path in zip(slots, paths):
        leaf = s.key or s.role
        if leaf in seen:
            s.key = leaf = f"{path[0]}:{leaf}"
        seen.add(leaf)
    return slots


def _leaf_rank(leaf) -> int:
    shape = getattr(leaf, "shape", None)
    return len(shape) if shape is not None else np.ndim(leaf)


_CLASS_CACHE = layer_registry.CLASS_CACHE


def _layer_plan(module, name: Optional[str], family: Optional[str], leaves: list) -> tuple:
    """``((position in leaves, role, layout, trainable, key, declared),
    ...)`` of one layer's pytree leaves ``[(full path, leaf)]`` in torch's
    order (a slot's fields but its paths), keys made unique as
    :func:`_unique_keys` does: memoised per module class, leaf names,
    collections and ranks (what the kinds depend on; not for a
    ``DenseGeneral``, whose layouts need its shapes and axes, nor a
    module-less subtree), so 500 Dense layers are planned once."""
    cacheable = module is not None and family != "DenseGeneral"
    if cacheable:
        try:    # a JAX array's own shape: no call per leaf
            memo = (_layer_plan, type(module), *[(full[0], full[-1], len(leaf.shape)) for full, leaf in leaves])
        except AttributeError:  # a Python scalar leaf
            memo = (_layer_plan, type(module), *[(full[0], full[-1], _leaf_rank(leaf)) for full, leaf in leaves])
        plan = _CLASS_CACHE.get(memo)
        if plan is not None:
            return plan
    order, kinds = ordered_leaf_kinds(module, name, [(full[-1], _leaf_shape(leaf), full[0] == "params")
                                                     for full, leaf in leaves])
    plan, seen = [], set()
    for i in order:
        kind, key = kinds[i], kinds[i].key
        leaf = key or kind.role
        if leaf in seen:
            key = leaf = f"{leaves[i][0][0]}:{leaf}"
        seen.add(leaf)
        plan.append((i, kind.role, kind.layout, kind.trainable, key, kind.declared))
    plan = tuple(plan)
    if cacheable:
        _CLASS_CACHE[memo] = plan
    return plan


def _leaf_index(state: LinenState, variables, fresh: bool = False) -> dict:
    """``{id(leaf): (leaf, [every path holding it])}`` of ``variables``: the
    one ``replace_array`` kept for this very pytree (unless ``fresh``), else
    made by one walk."""
    kept = state.leaf_paths
    if kept is not None and kept[0] is variables and not fresh:
        return kept[1]
    index: dict = {}
    for path, leaf in pytree.ordered_leaves(variables):
        held = index.get(id(leaf))
        if held is None:
            index[id(leaf)] = (leaf, [path])
        else:
            held[1].append(path)
    return index


class _LinenWalk:
    """One :meth:`LinenAdapter.describe`: the module tree read along the
    call record, each node handing its children their dicts one key down.
    A class, not nested functions: a nested function that calls itself is
    a reference cycle, which would keep the description (and through it
    the model's arrays) alive until the garbage collector runs."""

    def __init__(self, state: LinenState, rec: CallRecord):
        self.state, self.rec = state, rec
        self.variables = state.variables
        self.materialized = state.variables is not None
        # feature orders are only needed for values: set at the first need
        # of a layout (names and shapes never need them)
        self.pending = Deferred(None)
        self.featured: list = []   # (slots, their plan, leaves, family) per layer
        self.owning: list = []     # paths of the layers holding leaves (what _may_flatten_maps looks at)

    def leaf_slots(self, module, name, leaves) -> list:
        family = layer_family(module, name)
        state, pending = self.state, self.pending
        ties, ties_t = state.ties, state.ties_canonical_t
        plan = _layer_plan(module, name, family, leaves)
        if ties or ties_t:
            out = []
            for i, role, layout, trainable, key, declared in plan:
                full = leaves[i][0]
                src, transposed = ties.get(full, (full, False)) if ties else (full, False)
                if ties_t:
                    transposed = ties_t.get(full, transposed)
                out.append(ParamSlot(role, "/".join(full), full, layout, trainable, src,
                                     None, transposed, key, declared, None, pending))
        else:   # the usual case: no tie, each leaf its own storage
            out = [ParamSlot(role, "/".join(full), full, layout, trainable, full, None, False, key, declared,
                             None, pending)
                   for i, role, layout, trainable, key, declared in plan for full in (leaves[i][0],)]
        self.featured.append((out, plan, leaves, family))
        return out

    def config_slots(self, path, module, name) -> list:
        config = _config_leaves(module)
        kinds = leaf_kinds(module, name, [(leafname, native, collection == "params")
                                          for collection, leafname, native in config])
        out, paths = [], []
        for (collection, leafname, native), kind in zip(config, kinds):
            full = (collection, *path, leafname)
            self.state.hints[full] = native
            out.append(ParamSlot(kind.role, "/".join(full), full, kind.layout, kind.trainable, full,
                                 shape_hint=_layout.shape_to_canonical(native, kind.layout),
                                 key=kind.key, declared=kind.declared))
            paths.append(full)
        return _unique_keys(out, paths)

    def node(self, path, key, visiting, dicts) -> LayerNode:
        rec = self.rec
        module = rec.modules.get(path)
        name = path[-1] if path else None
        kind = _kind(module, name)
        subs = None
        if kind == "LSTM":
            slots = lstm_slots(self.state, path, module, self.materialized)
        elif self.materialized:
            leaves, subs = pytree.level(dicts, path)
            slots = self.leaf_slots(module, name, leaves) if leaves else []
            if leaves:
                self.owning.append(path)
        else:
            slots = self.config_slots(path, module, name) if module is not None else []
        n = LayerNode(key, kind, module, slots)
        seq, calls = rec.seq.get(path), rec.calls.get(path)
        if not (seq or calls or subs) or path in visiting or kind == "LSTM":
            return n    # a leaf layer; self-calling; LSTM: its cell is its slots
        visiting = visiting | {path}
        children, done = n.children, set()
        for k, (what, val) in seq or ():
            if what == "mod":
                self.child_node(path, dicts, visiting, children, done, val, k)
            else:
                children.append(LayerNode(k, function_kind(val), val))
        if calls and not calls.keys() <= done:   # a Sequential's calls are its elements, done above
            for child in calls:
                if child not in done:
                    self.child_node(path, dicts, visiting, children, done, child, child[-1])
        # pytree subtrees no module reported (setup modules never called,
        # or variables given without a sample input): still list them
        for sub in subs or ():
            child = path + (sub,)
            if child not in done and child not in rec.modules and pytree.has_leaf(pytree.step(dicts, sub)):
                self.child_node(path, dicts, visiting, children, done, child, sub)
        return n

    def child_node(self, path, dicts, visiting, children: list, done: set, child, child_key) -> None:
        # a child module's dicts are one key down, unless it lives
        # elsewhere (a module shared from another parent)
        sub_dicts = (pytree.step(dicts, child[-1]) if child[:-1] == path
                     else pytree.dicts_at(self.variables, child)) if self.materialized else ()
        children.append(self.node(child, child_key, visiting, sub_dicts))
        done.add(child)

    def feature_orders(self) -> None:
        rec = self.rec
        spatial = rec.orders is None and _may_flatten_maps(rec, self.owning)
        for slots, plan, leaves, family in self.featured:
            for slot, entry in zip(slots, plan):
                full, leaf = leaves[entry[0]]
                slot.layout = feature_layout(rec.orders, full, slot.shape_layout, np.shape(leaf), slot.native_name,
                                             family=family, spatial=spatial)


class LinenAdapter(FlaxAdapter):
    """Flax linen modules with their variables pytree (:class:`LinenState`).

    The backend's ``ADAPTER``: it recognises NNX modules too and
    :meth:`specialise` hands those to the NNX adapter; ``build`` makes
    linen modules (``builders``)."""

    flavour = "linen"
    builders = BUILDERS

    # -- recognising and preparing ------------------------------------------
    def specialise(self, native: Any) -> FlaxAdapter:
        """The NNX adapter for an ``nnx.Module``; this one for linen modules."""
        return NNX_ADAPTER if isinstance(native, nnx.Module) else self

    def prepare(self, native: Any, sample_input: Any = None, variables: Any = None,
                seed: int = 0, **options) -> LinenState:
        """Take ``variables`` if given, else ``module.init`` on
        ``sample_input`` (see :meth:`_init`), else (built models whose first
        Dense fixes ``in_features``) init on a zeros input of that size;
        otherwise leave the state unmaterialised until the first forward.
        ``sample_input`` follows ``Inputs.of`` (a dict: keyword inputs)."""
        if not isinstance(native, nn.Module):
            raise TypeError(f"not a Flax module: {type(native).__name__}")
        state = LinenState(module=native, seed=seed)
        inputs = None
        if sample_input is not None:
            inputs, _ = _split_apply_kwargs(jax_inputs(Inputs.of(sample_input)))
        else:
            n = self._input_size(native)
            if n is not None and variables is None:
                inputs = Inputs((jnp.zeros((1, n), default_float()),))
        if inputs is not None:
            state.sample = AbstractInputs(inputs)
        if variables is not None:
            if isinstance(variables, pytree.DICTS) and not pytree.has_boxes(variables):
                state.variables = variables     # the common case: no box to take out
            else:
                state.variables, state.boxes = unbox(variables)   # nn.with_partitioning's boxes
        elif inputs is not None:
            state.variables = self._init(state, inputs)
        return state

    def _init(self, state: LinenState, inputs: Inputs) -> Any:
        """``module.init(PRNGKey(seed), ...)`` in inference mode (the mode
        argument as False, when the module's ``__call__`` takes one): the
        variables are the same, and no dropout key is needed."""
        kwargs = with_mode(state.module, inputs.kwargs, False)
        return state.module.init(jax.random.PRNGKey(state.seed), *inputs.args, **kwargs)

    @staticmethod
    def _input_size(module) -> Optional[int]:
        """The input size a built model fixes (its first Dense's in_features)."""
        while isinstance(module, SEQUENTIAL_TYPES) and len(module.layers):
            module = module.layers[0]
        return getattr(module, IN_FEATURES_ATTR, None) if isinstance(module, nn.Dense) else None

    def is_materialized(self, state: LinenState) -> bool:
        return state.variables is not None

    # -- description ---------------------------------------------------------
    def _record(self, state: LinenState) -> CallRecord:
        """The call tree: traced once materialised and a sample input is
        known (cached per variables structure and input spec), else from the
        modules' fields.  The trace runs in inference mode on the variables'
        shapes, floats as JAX's default float (a float8 pytree, which JAX
        will not promote, traces too)."""
        if state.variables is None or state.sample is None:
            return static_record(state.module)
        sample = state.sample
        key = (jax.tree_util.tree_structure(state.variables),
               tuple(np.shape(l) for l in jax.tree_util.tree_leaves(state.variables)), sample.key())
        if state.trace_cache is not None and state.trace_cache[0] == key:
            return state.trace_cache[1]
        shapes = jax.tree_util.tree_map(_abstract, state.variables)
        try:
            rec = traced_record(lambda v, arrays: self._run(state, v, sample.rebuild(arrays), False),
                                shapes, sample.arrays)
        except Exception:  # a model the abstract trace cannot run: use structure
            return static_record(state.module)
        state.trace_cache = (key, rec)
        return rec

    def describe(self, state: LinenState) -> LayerNode:
        """The layer tree: the call tree's modules, each owning the pytree
        leaves under its path (or, before ``init``, the leaves its
        configuration will create, with shape hints); Sequential children
        by key, plain functions (``nn.relu``) as parameterless layers, and
        pytree subtrees no module reported still listed.

        One walk: the pytree is read along the module tree, each node
        handing its children their dicts one key down (``pytree.step``), so
        a layer's leaves and its unreported subtrees come from one pass
        over its own dicts."""
        rec = self._record(state)
        walk = _LinenWalk(state, rec)
        root = walk.node((), "", frozenset(), pytree.collection_dicts(state.variables) if walk.materialized else ())
        # worked out at the first need of a layout: until then the slots'
        # Deferred holds the walk (its featured layers)
        walk.pending.fn = walk.feature_orders
        return root

    # -- forward -------------------------------------------------------------
    def _run(self, state: LinenState, variables, inputs: Inputs, train: Optional[bool],
             keep_stats: bool = False):
        """``module.apply(variables, *args, **kwargs)`` in the mode ``train``
        asks: the mode argument the module's ``__call__`` takes
        (:func:`calls.with_mode`), and for a training call the non-param
        collections mutable (BatchNorm's ``batch_stats``) with a dropout key
        from the handle unless the caller gave ``rngs``.  The updated
        statistics go into the handle's pytree only with ``keep_stats`` (a
        training forward); otherwise, and for a module that updates a
        collection in inference too, they are discarded.  A caller who gives
        ``mutable=`` gets what Flax returns, ``(output, updates)``."""
        own, flax_kw = _split_apply_kwargs(inputs)
        kwargs = with_mode(state.module, own.kwargs, train)
        apply = functools.partial(state.module.apply, variables, *own.args, **kwargs)
        if train:
            flax_kw.setdefault("rngs", {"dropout": state.next_dropout_key()})
        if "mutable" in flax_kw:
            return apply(**flax_kw)
        if train:
            mutable = [c for c in variables if c != "params"]
            if not mutable:
                return apply(**flax_kw)
            y, updates = apply(mutable=mutable, **flax_kw)
            if keep_stats:
                self._keep(state, updates)
            return y
        if not state.mutable:
            try:
                return apply(**flax_kw)
            except ModifyScopeVariableError:
                state.mutable = [c for c in variables if c != "params"] or True
        y, _updates = apply(mutable=state.mutable, **flax_kw)
        return y

    def _keep(self, state: LinenState, updates) -> None:
        """Put a training call's updated collections into the handle's
        pytree, leaf by leaf (the pytree keeps its own structure, FrozenDict
        or dict; a collection the pytree lacks is not added)."""
        variables = state.variables
        for path, leaf in pytree.ordered_leaves({c: v for c, v in updates.items() if c in variables}):
            variables = pytree.replace(variables, path, leaf)
        state.variables = self._expand(state, variables)

    @staticmethod
    def _floating(state: LinenState) -> np.dtype:
        """The dtype NumPy float inputs take: the model's (its first
        floating ``params`` leaf), JAX's default before ``init``."""
        if state.variables is None:
            return default_float()
        return floating_dtype(jax.tree_util.tree_leaves(state.variables.get("params", {})))

    def call(self, state: LinenState, inputs: Inputs, train: Optional[bool] = None) -> Any:
        """``module.apply(state.variables, *args, **kwargs)`` (see
        :meth:`_run`: ``train`` reaches the module as its mode argument; a
        training call keeps the updated BatchNorm statistics, as a training
        step would), initialising the variables first (with ``state.seed``)
        when they do not exist yet, as a lazy layer would on its first
        forward.  NumPy float inputs take the model's dtype.  ``rngs=``,
        ``mutable=``, ``method=`` and ``capture_intermediates=`` are
        ``apply``'s and go to it."""
        inputs = jax_inputs(inputs, self._floating(state))
        if state.variables is None or state.sample is None:
            own, _ = _split_apply_kwargs(inputs)
            if state.variables is None:
                state.variables = self._init(state, own)
            if state.sample is None:
                state.sample = AbstractInputs(own)
        return self._run(state, state.variables, inputs, train, keep_stats=True)

    # -- storage primitives (one pytree leaf each) -----------------------------
    # A ref is a leaf's path (composites of paths are the base's business).
    def jax_array(self, state: LinenState, ref: tuple) -> jax.Array:
        if state.variables is None:
            raise NotMaterializedError("/".join(ref), state.hints.get(ref, ()))
        return pytree.get(state.variables, ref)

    def array_shape(self, state: LinenState, ref) -> Optional[tuple]:
        variables = state.variables
        if variables is None:
            return state.hints.get(ref)   # what the layer's configuration tells
        if ref.__class__ is tuple:      # a leaf's path: its own shape (a JAX array's is a tuple)
            leaf = pytree.get(variables, ref)
            shape = getattr(leaf, "shape", None)
            return shape if shape.__class__ is tuple else tuple(np.shape(leaf))
        return super().array_shape(state, ref)

    def array_dtype(self, state: LinenState, ref) -> Optional[np.dtype]:
        if state.variables is None:
            return None
        return super().array_dtype(state, ref)

    def replace_array(self, state: LinenState, ref: tuple, new: jax.Array) -> None:
        """A new pytree with the leaf replaced -- at every path that holds
        the same leaf object, so parameters the handle tied stay one value.

        Which paths hold each leaf is kept from one write to the next
        (``LinenState.leaf_paths``): a load or transfer writes every leaf,
        and walking the whole pytree at each write made it quadratic (1000
        leaves of 16 x 16: 660 ms to load).  A model tied with ``m.tie``
        walks it still: the expansion rewrites the tied paths."""
        old = self.jax_array(state, ref)
        variables = state.variables
        if state.ties:
            index = None
            paths = [path for path, leaf in pytree.ordered_leaves(variables) if leaf is old or path == ref]
        else:
            index = _leaf_index(state, variables)
            held = index.pop(id(old), None)
            if held is None or held[0] is not old:
                # the leaf is not where the index has it: the user changed
                # the pytree's dicts in place (m.flax.variables is the
                # handle's own when nothing is boxed); index it again
                index = _leaf_index(state, variables, fresh=True)
                held = index.pop(id(old), None)
            paths = held[1] if held is not None and held[0] is old else [ref]
        for path in paths:
            variables = pytree.replace(variables, path, new)
        state.variables = variables = self._expand(state, variables)
        if index is not None:
            other = index.get(id(new))
            index[id(new)] = (new, other[1] + paths if other is not None and other[0] is new else paths)
            state.leaf_paths = (variables, index)

    def grad_key(self, state: LinenState, ref) -> Any:
        # native_grads keys a leaf by its path, its slot's ident
        return ref

    # -- gradients -------------------------------------------------------------
    def native_grads(self, state: LinenState, inputs: Inputs, loss: Any = None, target: Any = None,
                     train: bool = False) -> dict:
        """``jax.grad`` of the loss w.r.t. the ``params`` collection, keyed
        by leaf path, the module in the mode ``train`` asks (inference by
        default).  Nothing in the state changes: a training call's
        BatchNorm updates are discarded."""
        inputs = jax_inputs(inputs, self._floating(state))
        if state.variables is None:
            self.call(state, inputs, train=False)  # materialise, as the first forward would
        variables = state.variables
        if "params" not in variables:
            return {}

        def f(params):
            v = dict(variables)
            v["params"] = params
            # tied paths read their source inside the differentiated function,
            # so the source's gradient is the sum over every use
            return self.scalar_loss(self._run(state, self._expand(state, v), inputs, train), loss, target)

        g = jax.grad(f)(variables["params"])
        # a sharded gradient stays sharded until the core gathers it (or not: gather=False)
        leaves = {path: grad_array(leaf) for path, leaf in pytree.ordered_leaves({"params": g})}
        return leaves

    # -- dtype -----------------------------------------------------------------
    def astype(self, state: LinenState, dtype: np.dtype) -> None:
        """A new pytree with every floating leaf (params and batch_stats)
        cast to ``dtype``; the LSTM bias shares kept on the state are cast
        too, each on its own as torch casts ``bias_ih`` and ``bias_hh``.
        Flax layers compute in the promoted dtype of their inputs and
        parameters (``dtype=None``), so the model then runs."""
        if state.variables is not None:
            state.variables = self._expand(state, pytree.map_leaves(state.variables,
                                                                    lambda l: cast_leaf(l, dtype)))
        shares = kept_shares(state)
        for key, (first, second, total) in shares.items():
            shares[key] = (first.astype(dtype), second.astype(dtype), total.astype(dtype))

    # -- tying after construction, and m.flax -------------------------------------
    @staticmethod
    def _expand(state: LinenState, variables):
        """Every tied path (``m.tie``) given its source's leaf (transposed
        where the tie is): the pytree Flax applies is always consistent."""
        for dst, (src, transposed) in state.ties.items():
            leaf = pytree.get(variables, src)
            variables = pytree.replace(variables, dst, leaf.T if transposed else leaf)
        return variables

    def tie(self, state: LinenState, dst: ParamSlot, dst_layer: Any, src: ParamSlot,
            native_transpose: bool) -> None:
        """Flax keeps parameters in a pytree, so the handle records the tie
        (dst path -> src path) and rebuilds every dst leaf from its source
        after each write; ``grad`` differentiates through that expansion, so
        a tied parameter's gradient is the sum of its uses.
        ``unique_variables`` / ``expand_variables`` give an optax loop the
        de-duplicated pytree and the way back.  LSTM arrays, made of several
        leaves, do not tie."""
        for slot in (dst, src):
            if isinstance(slot.ref, Composite):
                raise CapabilityError(self.name, f"tie {slot.native_name}",
                                      "it is made of several Flax leaves (an LSTM's per-gate kernels)")
        dst_path, src_path = tuple(dst.ref), tuple(src.ident)
        state.ties[dst_path] = (src_path, native_transpose)
        # canonical relation: a layout change (Embed (V, D) vs kernel (D, V))
        # already accounts for one native transpose
        state.ties_canonical_t[dst_path] = native_transpose != _layout.transposes_natively(
            src.layout, dst.layout)
        state.variables = self._expand(state, state.variables)

    def native_variables(self, state: LinenState) -> Any:
        """The variables pytree (every tied path filled; partitioning boxes
        as the user gave them)."""
        return rebox(state.variables, state.boxes)

    def set_native_variables(self, state: LinenState, variables: Any) -> None:
        """Replace the handle's pytree (same structure and shapes), e.g. after
        an optax step on ``expand_variables(new_unique)``."""
        variables, boxes = unbox(variables)
        old = jax.tree_util.tree_structure(state.variables)
        new = jax.tree_util.tree_structure(variables)
        if old != new:
            raise ValueError(f"the new variables do not have the model's structure: {new} vs {old}")
        for a, b in zip(jax.tree_util.tree_leaves(state.variables), jax.tree_util.tree_leaves(variables)):
            if np.shape(a) != np.shape(b):
                raise ValueError(f"a leaf of shape {np.shape(b)} where the model has {np.shape(a)}")
        state.variables = self._expand(state, variables)
        state.boxes = boxes or state.boxes

    def unique_variables(self, state: LinenState) -> Any:
        """The variables with each tied path (``m.tie``) removed: the pytree
        to give optax, so an update changes a tied parameter once."""
        variables = state.variables
        for dst in state.ties:
            variables = pytree.remove(variables, dst)
        return variables

    def expand_variables(self, state: LinenState, unique: Any) -> Any:
        """The full pytree Flax applies, from a ``unique_variables`` tree."""
        variables = unique
        for dst, (src, transposed) in state.ties.items():
            leaf = pytree.get(variables, src)
            variables = pytree.insert(variables, dst, leaf.T if transposed else leaf)
        return variables

    # -- the framework's own listings ----------------------------------------------
    def summary_idiom(self, state: LinenState) -> list:
        """``jax.tree_util.tree_map(lambda x: x.shape, variables)``
        flattened: ``[("params/layers_0/kernel", (4, 8)), ...]`` in JAX's
        (sorted-key) tree order; empty before ``init``."""
        if state.variables is None:
            return []
        flat, _ = jax.tree_util.tree_flatten_with_path(state.variables)
        return [("/".join(pytree.key_name(k) for k in path), tuple(np.shape(leaf))) for path, leaf in flat]

    def native_count(self, state: LinenState) -> int:
        """Trainable scalars the Flax way: leaf sizes of the ``params``
        collection (0 before ``init``)."""
        if state.variables is None:
            return 0
        return int(sum(np.size(l) for l in jax.tree_util.tree_leaves(state.variables.get("params", {}))))


LINEN_ADAPTER = LinenAdapter()
