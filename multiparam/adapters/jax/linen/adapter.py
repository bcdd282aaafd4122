"""The JAX backend: Flax linen (module + variables pytree) and Flax NNX.

Flax linen keeps models and parameters apart: a ``Module`` is a pure
description and the numbers live in a nested dict of arrays (the *variables*
pytree, ``{'params': {...}, 'batch_stats': {...}}``) that ``module.init``
creates and ``module.apply`` consumes.  This adapter's ``state`` is therefore
a small :class:`FlaxState` holding the module *and* its variables; writes
build a new pytree (JAX arrays are immutable) and store it back in the state.

Flax NNX keeps parameters inside the model as mutable ``nnx.Param``
variables, like PyTorch; its state is the module itself (wrapped in the same
:class:`FlaxState` with ``kind="nnx"``).

Both spell a dense kernel ``(in, out)`` and a conv kernel ``(*k, in, out)``;
the slots say so with their layout tag and the handles convert.

Pinned against Flax 0.12.8 / JAX 0.10.2.  Things relied on from Flax, all
checked in its source: ``nn.intercept_methods`` (public), ``Module.path`` on
bound modules, setup running before interceptors (``_call_wrapped_method``),
the adoption naming of attribute submodules (``{field}{suffix}``, sorted by
suffix, shared objects adopted once, names kept when the class sets
``preserve_adopted_names``), and NNX ``Variable.get_value/set_value``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
import flax
from flax import linen as nn
from flax import nnx
from flax.core import FrozenDict
from flax.errors import ModifyScopeVariableError

from .base import (CHANNELS_LAST_KERNEL, DENSE_IN_OUT, SAME, Adapter, LayerNode,
                   ParamSlot)
from .. import layout as _layout
from ..errors import NotMaterializedError

_IN_FEATURES_ATTR = "_multiparam_in_features"  # set by build() on nn.Dense


# ---------------------------------------------------------------------------
# A linen container with named children (what nn.Sequential cannot express)
# ---------------------------------------------------------------------------
class NamedSequential(nn.Module):
    """``nn.Sequential`` whose children keep names (``"block 0"``).

    The layers are ordinary dataclass-field submodules; because the class
    sets ``preserve_adopted_names``, Flax names each adopted layer by its own
    ``name=`` (given by ``build``) instead of ``layers_<i>``, so the params
    live at ``params/.../block 0/...``.  ``names[i]`` is the key of
    ``layers[i]``; ``m[i]`` and ``m["block 0"]`` both index it.
    """

    names: tuple
    layers: tuple
    preserve_adopted_names = True  # read by Module._register_submodules

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, i):
        if isinstance(i, str):
            return self.layers[self.names.index(i)]
        return self.layers[i]

    def __len__(self):
        return len(self.layers)


_SEQ_TYPES = (nn.Sequential, NamedSequential)
_RELUS = (jax.nn.relu, nn.relu, nnx.relu)
_LSTM_CELLS = (nn.LSTMCell, nn.OptimizedLSTMCell)
_GATES = "ifgo"   # torch's gate order; Flax names its per-gate Dense params i<g> / h<g>


def flatten(x):
    """Flatten every axis after the first: what ``mp.nn.Flatten`` builds on
    Flax (linen has no Flatten module).  On an NHWC feature map the order
    is (H, W, C); the next Dense's kernel gets a ``DenseAfterFlatten`` layout."""
    return x.reshape((x.shape[0], -1))


def _is_lstm(module) -> bool:
    """An ``nn.RNN`` over one of Flax's LSTM cells: one canonical LSTM layer."""
    return isinstance(module, nn.RNN) and isinstance(module.cell, _LSTM_CELLS)


@dataclasses.dataclass(frozen=True)
class _LstmRef:
    """A composite slot: one of torch's LSTM arrays assembled from the
    per-gate Dense params of a Flax LSTM cell (``LSTMCell`` and
    ``OptimizedLSTMCell`` store the same ones: ``i{i,f,g,o}/kernel (in, H)``
    without bias, ``h{i,f,g,o}/kernel (H, H)`` and ``h{...}/bias (H,)``).

    ``weight_ih`` is the gate kernels transposed and stacked in torch's
    order (4H, in), ``weight_hh`` likewise (4H, H): already canonical, so
    the slot's layout is SAME.  Flax has one bias per gate, added to the
    same pre-activation as torch's ``bias_ih + bias_hh``: the Flax bias
    holds that sum and the ``bias_hh`` share is kept in the handle's state
    (zeros until written), exactly as the Keras adapter does."""

    cell: tuple    # pytree path of the cell: ("params", *rnn path, "cell")
    part: str      # weight_ih | weight_hh | bias_ih | bias_hh

    def leaves(self) -> list:
        prefix, leaf = {"weight_ih": ("i", "kernel"), "weight_hh": ("h", "kernel"),
                        "bias_ih": ("h", "bias"), "bias_hh": ("h", "bias")}[self.part]
        return [self.cell + (prefix + g, leaf) for g in _GATES]

    def assemble(self, get) -> np.ndarray:
        """The canonical array from ``get(path)`` of each gate leaf (values or grads)."""
        arrays = [np.asarray(get(p)) for p in self.leaves()]
        if self.part.startswith("weight"):
            return np.concatenate([a.T for a in arrays], axis=0)
        return np.concatenate(arrays, axis=0)

    def split(self, value: np.ndarray) -> list:
        """[(leaf path, native array)]: the inverse of :meth:`assemble`."""
        chunks = np.split(np.asarray(value), 4, axis=0)
        if self.part.startswith("weight"):
            chunks = [c.T for c in chunks]
        return list(zip(self.leaves(), chunks))


@dataclasses.dataclass
class FlaxState:
    """What the adapter needs to find a Flax model's numbers again.

    module:    the linen Module (unbound) or the nnx Module.
    variables: linen: the variables pytree, or None before it exists;
               nnx: None (the numbers live in the module).
    kind:      "linen" or "nnx".
    seed:      PRNG seed used when the adapter initialises the variables.
    sample:    linen: ``jax.ShapeDtypeStruct`` tree of an input seen before
               (used to trace the call tree of ``@nn.compact`` modules).
    """

    module: Any
    variables: Any = None
    kind: str = "linen"
    seed: int = 0
    sample: Any = None
    hints: dict = dataclasses.field(default_factory=dict, repr=False)
    #: linen ties made after construction: dst path -> (src path, transposed)
    ties: dict = dataclasses.field(default_factory=dict)
    #: dst path -> whether its *canonical* value is the src's transposed
    #: (differs from the native flag in ``ties`` when the layouts differ,
    #: as for a Dense kernel (in, out) tied to an Embed table (vocab, dim))
    ties_canonical_t: dict = dataclasses.field(default_factory=dict)
    #: LSTM cell path -> the ``bias_hh`` share of its one Flax bias (see _LstmRef)
    lstm_bias_hh: dict = dataclasses.field(default_factory=dict)
    _trace_cache: Any = dataclasses.field(default=None, repr=False)
    _mutable: Any = dataclasses.field(default=False, repr=False)


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------
def _kind_of_fn(fn) -> str:
    if any(fn is r for r in _RELUS):
        return "ReLU"
    if fn is flatten:
        return "Flatten"
    return getattr(fn, "__name__", type(fn).__name__)


def _linen_family(module, name: Optional[str]) -> Optional[str]:
    """Which known layer a linen module is; for a pytree-only node (no
    module object) guess from Flax's auto-name ``<ClassName>_<n>``."""
    if module is not None:
        if isinstance(module, nn.Dense):
            return "Dense"
        if isinstance(module, nn.Conv):  # not ConvTranspose/ConvLocal: other layouts
            return "Conv"
        if isinstance(module, nn.BatchNorm):
            return "BatchNorm"
        if isinstance(module, (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)):
            return "Norm"
        if isinstance(module, nn.Embed):
            return "Embed"
        return None
    if name:
        cls = name.rsplit("_", 1)[0] if name.rsplit("_", 1)[-1].isdigit() else ""
        return {"Dense": "Dense", "Conv": "Conv", "BatchNorm": "BatchNorm", "LayerNorm": "Norm",
                "GroupNorm": "Norm", "RMSNorm": "Norm", "Embed": "Embed"}.get(cls)
    return None


def _nnx_family(module) -> Optional[str]:
    if isinstance(module, nnx.Linear):
        return "Dense"
    if isinstance(module, nnx.Conv):
        return "Conv"
    if isinstance(module, nnx.BatchNorm):
        return "BatchNorm"
    if isinstance(module, (nnx.LayerNorm, nnx.GroupNorm, nnx.RMSNorm)):
        return "Norm"
    if isinstance(module, nnx.Embed):
        return "Embed"
    return None


def _role(family: Optional[str], collection: str, leaf: str, ndim: Optional[int]):
    """(role, layout, trainable) of one leaf, from the layer family."""
    trainable = collection == "params"
    if family == "Dense" and leaf == "kernel" and ndim in (2, None):
        return "weight", DENSE_IN_OUT, trainable
    if family == "Conv" and leaf == "kernel":
        return "weight", CHANNELS_LAST_KERNEL, trainable
    if family == "BatchNorm" and leaf in ("mean", "var"):
        return "running_" + leaf, SAME, False
    if family == "Embed" and leaf == "embedding":
        return "embedding", SAME, trainable
    # bias / scale keep their names, which are already the canonical roles
    return leaf, SAME, trainable


_NEUTRAL_KINDS = {nn.Conv: "Conv2d", nn.BatchNorm: "BatchNorm", nn.LayerNorm: "LayerNorm",
                  nn.Embed: "Embedding"}


def _dense_layout(rec, path: tuple, kernel_shape: tuple):
    """DENSE_IN_OUT, or a DenseAfterFlatten when the module call that
    finished just before this Dense started produced an NHWC feature map of
    exactly the Dense's input size (Conv/BatchNorm -> flatten -> Dense; the
    flatten and activations are plain functions Flax does not see)."""
    io = rec.io.get(path)
    if io is None or len(io[0]) != 2:
        return DENSE_IN_OUT
    before = rec.finished[:rec.started.get(path, 0)]
    if not before:
        return DENSE_IN_OUT
    prev_out = rec.io.get(before[-1], (None, None))[1]
    if prev_out is None or len(prev_out) != 4:
        return DENSE_IN_OUT
    return _layout.dense_layout_after_flatten(tuple(prev_out[1:]), int(kernel_shape[0]))


def _canonical_hint(native: tuple, layout: str) -> tuple:
    """A native shape hint (None for unknown dims) in canonical layout."""
    if layout == DENSE_IN_OUT:
        return tuple(reversed(native))
    if layout == CHANNELS_LAST_KERNEL:
        return (native[-1], native[-2], *native[:-2])
    return tuple(native)


def _linen_hints(module) -> list:
    """[(collection, leaf, native shape with None)] a linen layer will create,
    from its configuration alone (before ``init``)."""
    fam = _linen_family(module, None)
    out = []
    if fam == "Dense":
        out.append(("params", "kernel", (getattr(module, _IN_FEATURES_ATTR, None), module.features)))
        if module.use_bias:
            out.append(("params", "bias", (module.features,)))
    elif fam == "Conv":
        ks = module.kernel_size
        ks = (ks,) if isinstance(ks, int) else tuple(ks)
        out.append(("params", "kernel", (*ks, None, module.features)))
        if module.use_bias:
            out.append(("params", "bias", (module.features,)))
    elif fam in ("BatchNorm", "Norm"):
        if getattr(module, "use_scale", False):
            out.append(("params", "scale", (None,)))
        if getattr(module, "use_bias", False):
            out.append(("params", "bias", (None,)))
        if fam == "BatchNorm":
            out += [("batch_stats", "mean", (None,)), ("batch_stats", "var", (None,))]
    elif fam == "Embed":
        out.append(("params", "embedding", (module.num_embeddings, module.features)))
    return out


def _ordered_leaves(variables) -> list:
    """[(path tuple, leaf)] in creation order, ``params`` first (so a layer
    lists weight, bias, then its running statistics, as torch does)."""
    out = []

    def walk(prefix, node):
        for k, v in node.items():
            if isinstance(v, (dict, FrozenDict)):
                walk(prefix + (k,), v)
            else:
                out.append((prefix + (k,), v))

    cols = list(variables.keys())
    cols.sort(key=lambda c: c != "params")  # stable: params first
    for c in cols:
        v = variables[c]
        if isinstance(v, (dict, FrozenDict)):
            walk((c,), v)
    return out


def _replace(node, path, new):
    """A copy of the nested dict ``node`` with the leaf at ``path`` replaced;
    only the dicts along the path are rebuilt (the rest is shared)."""
    k = path[0]
    child = new if len(path) == 1 else _replace(node[k], path[1:], new)
    if isinstance(node, FrozenDict):
        return node.copy({k: child})
    out = dict(node)
    out[k] = child
    return out


def _remove(node, path):
    """A copy of the nested dict ``node`` without the leaf at ``path``."""
    k = path[0]
    out = dict(node)
    if len(path) == 1:
        out.pop(k, None)
    else:
        out[k] = _remove(node[k], path[1:])
    return out


def _insert(node, path, leaf):
    """A copy of ``node`` with ``leaf`` at ``path`` (creating dicts on the way)."""
    k = path[0]
    out = dict(node)
    out[k] = leaf if len(path) == 1 else _insert(node.get(k, {}), path[1:], leaf)
    return out


def _private(value, dtype):
    """A jax array that owns its memory.  On CPU ``jnp.asarray`` (and even
    ``jnp.array(copy=True)``, jax 0.10.2) aliases a NumPy buffer, so a
    parameter would change when the caller later edits the array it wrote
    from (a state dict, say): read-only NumPy input, which by the write
    contract is borrowed, is copied first; a writable one is the handle's
    fresh array and is kept without a second copy."""
    if isinstance(value, np.ndarray) and (not value.flags.writeable or value.dtype != dtype):
        value = np.array(value, dtype=dtype, copy=True)
    return jnp.asarray(value, dtype=dtype)


def _get(node, path):
    for k in path:
        node = node[k]
    return node


def _keystr(k) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def _spec_of(x):
    return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(np.shape(a), jnp.asarray(a).dtype), x)


def _suffixed(val) -> list:
    """[(suffix, value)] as Flax names submodules held in one attribute:
    ``""`` for a bare module, ``_<i>`` / ``_<key>`` inside lists, tuples and
    dicts (nested ones joined by ``_``), sorted by key path as Flax adopts
    them (``_map_over_modules_in_tree``), which decides the name a shared
    object gets."""
    flat = []

    def walk(prefix, v):
        if isinstance(v, (list, tuple)) and not hasattr(v, "_fields"):
            for i, e in enumerate(v):
                walk(prefix + (str(i),), e)
        elif isinstance(v, (dict, FrozenDict)):
            for k, e in v.items():
                walk(prefix + (str(k),), e)
        else:
            flat.append((prefix, v))

    walk((), val)
    if not flat or flat == [((), val)]:
        return [("", val)]
    return [("_" + "_".join(k), v) for k, v in sorted(flat, key=lambda kv: kv[0])]


class _Record:
    """The submodule tree of a linen model: modules by path, which module
    called which (in order), and the elements of Sequential containers."""

    def __init__(self):
        self.modules: dict = {}   # path -> Module (bound when traced)
        self.calls: dict = {}     # caller path -> {callee path: None}, first-call order
        self.seq: dict = {}       # path -> [(key, ("mod", path) | ("fn", fn))]
        # traced only: per path, the first call's (input shape, output shape),
        # and how many calls had finished when it started (the call just
        # before a Dense tells whether a flattened feature map feeds it)
        self.io: dict = {}
        self.finished: list = []
        self.started: dict = {}

    def add_call(self, parent, child):
        self.calls.setdefault(parent, {})[child] = None  # ordered set


class FlaxExtension:
    """``m.flax``: the Flax view of a handle on the jax backend.

    ``m.flax.variables`` is the variables pytree Flax applies (linen: the
    handle's pytree, every tied path filled; NNX: ``nnx.state(model)``);
    assign a pytree of the same structure to replace it.  For an optax loop
    on a model tied with ``m.tie``, differentiate and update
    ``m.flax.unique_variables()`` (each parameter once) and put it back with
    ``m.flax.variables = m.flax.expand_variables(new_unique)``."""

    def __init__(self, model):
        self._model = model

    @property
    def _state(self):
        return self._model._state

    @property
    def variables(self) -> Any:
        return self._model.adapter.native_variables(self._state)

    @variables.setter
    def variables(self, tree: Any) -> None:
        self._model.adapter.set_native_variables(self._state, tree)

    def unique_variables(self) -> Any:
        """The pytree with every tied copy removed (what optax should update)."""
        return self._model.adapter.unique_variables(self._state)

    def expand_variables(self, unique: Any) -> Any:
        """The full pytree Flax applies, from a :meth:`unique_variables` tree."""
        return self._model.adapter.expand_variables(self._state, unique)

    def __repr__(self) -> str:
        return f"<m.flax of a {self._state.kind} {type(self._state.module).__name__}>"


# ---------------------------------------------------------------------------
# the adapter
# ---------------------------------------------------------------------------
class JaxAdapter(Adapter):
    """Flax linen and Flax NNX models.

    linen: ``state.variables`` is the pytree; a slot's ``ref`` and ``ident``
    are its pytree path (``("params", "layers_2", "kernel")``), so a module
    reused twice (one Flax path) gives slots with equal ``ident``.
    NNX: ``ref`` is the ``nnx.Variable`` itself and ``ident`` its ``id``.
    """

    name = "jax"
    capabilities: dict = {}
    extensions = {"flax": FlaxExtension}
    channels_last = True    # Flax convolutions are NHWC

    # -- recognising and preparing ------------------------------------------
    def is_model(self, obj: Any) -> bool:
        return isinstance(obj, (nn.Module, nnx.Module))

    def prepare(self, native: Any, sample_input: Any = None, variables: Any = None,
                seed: int = 0, **options) -> FlaxState:
        """linen: take ``variables`` if given, else ``module.init`` on
        ``sample_input``, else (built models whose first Dense fixes
        ``in_features``) init on a zeros input of that size; otherwise leave
        the state unmaterialised.  NNX: parameters already exist; no forward
        is run (it would move BatchNorm statistics in train mode)."""
        if isinstance(native, FlaxState):
            return native
        if isinstance(native, nnx.Module):
            return FlaxState(module=native, kind="nnx", seed=seed)
        if not isinstance(native, nn.Module):
            raise TypeError(f"not a Flax module: {type(native).__name__}")
        state = FlaxState(module=native, kind="linen", seed=seed)
        if sample_input is not None:
            sample_input = jax.tree_util.tree_map(jnp.asarray, sample_input)
            state.sample = _spec_of(sample_input)
        if variables is not None:
            state.variables = variables
        elif sample_input is not None:
            state.variables = native.init(jax.random.PRNGKey(seed), sample_input)
        else:
            n = self._input_size(native)
            if n is not None:
                x = jnp.zeros((1, n), jnp.float32)
                state.sample = _spec_of(x)
                state.variables = native.init(jax.random.PRNGKey(seed), x)
        return state

    def _input_size(self, module) -> Optional[int]:
        """The input size a built model fixes (its first Dense's in_features)."""
        while isinstance(module, _SEQ_TYPES) and len(module.layers):
            module = module.layers[0]
        return getattr(module, _IN_FEATURES_ATTR, None) if isinstance(module, nn.Dense) else None

    def native_variables(self, state: FlaxState) -> Any:
        """linen: the variables pytree; NNX: ``nnx.state(model)``."""
        if state.kind == "nnx":
            return nnx.state(state.module)
        return state.variables

    def is_materialized(self, state: FlaxState) -> bool:
        return state.kind == "nnx" or state.variables is not None

    # -- describe: linen -------------------------------------------------------
    def describe(self, state: FlaxState) -> LayerNode:
        if state.kind == "nnx":
            return self._describe_nnx(state)
        return self._describe_linen(state)

    def _static_record(self, root) -> _Record:
        """The submodule tree from the unbound modules' dataclass fields,
        naming children exactly as Flax adopts them (so the paths predicted
        here are the pytree paths after ``init``).  Sees Sequential and
        attribute submodules; not those made in ``setup``/``@nn.compact``."""
        rec = _Record()
        adopted: dict = {}  # id(module) -> path; Flax adopts a shared object once
        preserve_default = bool(flax.config.flax_preserve_adopted_names)

        def walk(module, path):
            rec.modules[path] = module
            preserve = getattr(type(module), "preserve_adopted_names", preserve_default)
            for f in dataclasses.fields(module):
                if f.name in ("parent", "name") or not f.init:
                    continue
                val = getattr(module, f.name)
                if not isinstance(val, (nn.Module, list, tuple, dict, FrozenDict)):
                    continue  # features=16, kernel_init=...: no submodule
                items = _suffixed(val)
                for suffix, sub in items:
                    if not isinstance(sub, nn.Module) or id(sub) in adopted:
                        continue
                    own = object.__getattribute__(sub, "name")
                    name = own if (preserve and own) else f"{f.name}{suffix}"
                    adopted[id(sub)] = path + (name,)
                    rec.add_call(path, path + (name,))
                    walk(sub, path + (name,))
            if isinstance(module, _SEQ_TYPES):
                keys = module.names if isinstance(module, NamedSequential) else range(len(module.layers))
                rec.seq[path] = [
                    (str(k), ("mod", adopted[id(el)]) if isinstance(el, nn.Module) else ("fn", el))
                    for k, el in zip(keys, module.layers)]

        walk(root, ())
        return rec

    def _traced_record(self, state: FlaxState) -> _Record:
        """The submodule tree seen by running the model abstractly.

        ``@nn.compact`` submodules exist only during a call, so the model is
        traced once with ``jax.eval_shape`` (no FLOPs) under
        ``nn.intercept_methods``: every module method call reports the bound
        module, its path, and (through a stack) which module called it.
        Cached per variables structure and input spec."""
        key = (jax.tree_util.tree_structure(state.variables),
               tuple(np.shape(l) for l in jax.tree_util.tree_leaves(state.variables)),
               jax.tree_util.tree_structure(state.sample),
               tuple((s.shape, str(s.dtype)) for s in jax.tree_util.tree_leaves(state.sample)))
        if state._trace_cache is not None and state._trace_cache[0] == key:
            return state._trace_cache[1]
        rec = _Record()
        stack: list = []

        def interceptor(next_fun, args, kwargs, ctx):
            m = ctx.module
            if ctx.method_name == "setup" or m.scope is None:
                return next_fun(*args, **kwargs)
            p = tuple(m.path)
            rec.modules.setdefault(p, m)
            if stack and stack[-1] != p:
                rec.add_call(stack[-1], p)
            if isinstance(m, _SEQ_TYPES) and p not in rec.seq:
                # setup already ran (it runs before interceptors), so
                # m.layers holds the adopted, bound children
                keys = m.names if isinstance(m, NamedSequential) else range(len(m.layers))
                rec.seq[p] = [(str(k), ("mod", tuple(el.path)) if isinstance(el, nn.Module) else ("fn", el))
                              for k, el in zip(keys, m.layers)]
            stack.append(p)
            rec.started.setdefault(p, len(rec.finished))
            try:
                out = next_fun(*args, **kwargs)
            finally:
                stack.pop()
            if p not in rec.io and args:
                rec.io[p] = (np.shape(args[0]), np.shape(out) if hasattr(out, "shape") else None)
            rec.finished.append(p)
            return out

        with nn.intercept_methods(interceptor):
            jax.eval_shape(lambda v, x: self._apply(state, v, x), state.variables, state.sample)
        state._trace_cache = (key, rec)
        return rec

    def _describe_linen(self, state: FlaxState) -> LayerNode:
        materialized = state.variables is not None
        if materialized and state.sample is not None:
            try:
                rec = self._traced_record(state)
            except Exception:  # a model the abstract trace cannot run: use structure
                rec = self._static_record(state.module)
        else:
            rec = self._static_record(state.module)
        owned: dict = {}  # module path -> [(full path, leaf)]
        subtree_names: dict = {}  # module path -> {child name present in the pytree: None}
        if materialized:
            for full, leaf in _ordered_leaves(state.variables):
                owned.setdefault(full[1:-1], []).append((full, leaf))
                mp = full[1:-1]
                for i in range(len(mp)):
                    subtree_names.setdefault(mp[:i], {})[mp[i]] = None  # ordered set
        known_paths = set(rec.modules)
        hints = state.hints

        def slots_for(path, module, name):
            if module is not None and _is_lstm(module):
                return self._lstm_slots(state, path, module, materialized)
            fam = _linen_family(module, name)
            out = []
            if materialized:
                for full, leaf in owned.get(path, []):
                    role, layout, trainable = _role(fam, full[0], full[-1], np.ndim(leaf))
                    if fam == "Dense" and layout == DENSE_IN_OUT:
                        layout = _dense_layout(rec, path, np.shape(leaf))
                    src, transposed = state.ties.get(full, (full, False))
                    transposed = state.ties_canonical_t.get(full, transposed)
                    out.append(ParamSlot(role, "/".join(full), full, layout, trainable, src,
                                         transposed=transposed))
            elif module is not None:
                for col, leafname, native in _linen_hints(module):
                    full = (col, *path, leafname)
                    role, layout, trainable = _role(fam, col, leafname, len(native))
                    hints[full] = native
                    out.append(ParamSlot(role, "/".join(full), full, layout, trainable, full,
                                         shape_hint=_canonical_hint(native, layout)))
            seen = set()
            for s in out:  # keep roles unique within a layer
                if s.role in seen:
                    s.role = f"{s.ref[0]}:{s.role}"
                seen.add(s.role)
            return out

        def node(path, key, visiting):
            module = rec.modules.get(path)
            name = path[-1] if path else None
            if module is None:  # only in the pytree: Flax's auto-name tells the class
                cls, _, num = (name or "").rpartition("_")
                kind = "Dense" if cls == "Dense" else (cls if cls and num.isdigit() else "Module")
            elif isinstance(module, _SEQ_TYPES):
                kind = "Sequential"
            elif isinstance(module, nn.Dense):
                kind = "Dense"
            elif _is_lstm(module):
                kind = "LSTM"
            else:
                kind = _NEUTRAL_KINDS.get(type(module), type(module).__name__)
            n = LayerNode(key, kind, module, slots_for(path, module, name))
            if path in visiting or kind == "LSTM":  # self-calling; LSTM: its cell is its slots
                return n
            visiting = visiting | {path}
            done = set()
            for k, (what, val) in rec.seq.get(path, []):
                if what == "mod":
                    n.children.append(node(val, k, visiting))
                    done.add(val)
                else:
                    n.children.append(LayerNode(k, _kind_of_fn(val), val))
            for child in rec.calls.get(path, []):
                if child not in done:
                    n.children.append(node(child, child[-1], visiting))
                    done.add(child)
            # pytree subtrees no module reported (setup modules never called,
            # or variables given without a sample input): still list them
            for sub in subtree_names.get(path, []):
                cp = path + (sub,)
                if cp not in done and cp not in known_paths:
                    n.children.append(node(cp, sub, visiting))
                    done.add(cp)
            return n

        return node((), "", frozenset())

    def _lstm_slots(self, state: FlaxState, path: tuple, module, materialized: bool) -> list:
        """Composite slots (:class:`_LstmRef`) of an ``nn.RNN`` LSTM at ``path``."""
        cell = ("params", *path, "cell")
        hidden = module.cell.features
        hints = {"weight_ih": (4 * hidden, None), "weight_hh": (4 * hidden, hidden),
                 "bias_ih": (4 * hidden,), "bias_hh": (4 * hidden,)}
        out = []
        for part, hint in hints.items():
            ref = _LstmRef(cell, part)
            native = "/".join(cell) + "/" + ("i*/kernel" if part == "weight_ih" else
                                             "h*/kernel" if part == "weight_hh" else f"h*/bias[{part}]")
            out.append(ParamSlot(part, native, ref, SAME, True, ("lstm",) + cell + (part,),
                                 shape_hint=None if materialized else hint))
        return out

    # -- describe: nnx ------------------------------------------------------
    def _describe_nnx(self, state: FlaxState) -> LayerNode:
        root = state.module
        first_path: dict = {}
        for p, v in nnx.iter_graph(root):
            if isinstance(v, nnx.Variable):
                first_path.setdefault(id(v), "/".join(map(str, p)))

        def slot(var, attr, fam, path):
            role, layout, _ = _role(fam, "params" if isinstance(var, nnx.Param) else "x",
                                    attr, np.ndim(var.get_value()))
            if fam == "BatchNorm" and attr in ("mean", "var"):
                role = "running_" + attr
            return ParamSlot(role, first_path.get(id(var), "/".join(path + (attr,))), var, layout,
                             isinstance(var, nnx.Param), id(var))

        def skip(val):
            return isinstance(val, (nnx.RngState, nnx.Rngs, nnx.RngStream))

        def container(key, items, native, path, visiting):
            n = LayerNode(key, "List" if not isinstance(native, nnx.Sequential) else "Sequential", native)
            for k, el in items:
                n.children.append(child(el, str(k), path + (str(k),), visiting))
            return n

        def child(obj, key, path, visiting):
            if isinstance(obj, nnx.Module):
                return node(obj, key, path, visiting)
            if callable(obj):
                return LayerNode(key, _kind_of_fn(obj), obj)
            return LayerNode(key, type(obj).__name__, obj)

        def node(obj, key, path, visiting):
            if isinstance(obj, nnx.Sequential):
                n = container(key, enumerate(obj.layers), obj, path + ("layers",), visiting)
                return n
            if isinstance(obj, nnx.List):
                return container(key, enumerate(obj), obj, path, visiting)
            fam = _nnx_family(obj)
            kind = "Dense" if fam == "Dense" else type(obj).__name__
            n = LayerNode(key, kind, obj)
            if id(obj) in visiting:
                return n
            visiting = visiting | {id(obj)}
            for attr, val in vars(obj).items():
                if attr.startswith("_pytree__") or skip(val):
                    continue
                if isinstance(val, nnx.Variable):
                    n.params.append(slot(val, attr, fam, path))
                elif isinstance(val, nnx.Module):
                    n.children.append(node(val, attr, path + (attr,), visiting))
                elif isinstance(val, (list, tuple)) and any(isinstance(e, nnx.Module) for e in val):
                    n.children.append(container(attr, enumerate(val), val, path + (attr,), visiting))
                elif isinstance(val, dict) and any(isinstance(e, nnx.Module) for e in val.values()):
                    n.children.append(container(attr, val.items(), val, path + (attr,), visiting))
            # trainable Params first (weight, bias, then running stats), as linen
            n.params.sort(key=lambda sl: not sl.trainable)
            return n

        return node(root, "", (), frozenset())

    # -- forward -------------------------------------------------------------------
    def _apply(self, state: FlaxState, variables, x):
        """``module.apply`` without mutation; a module that must update a
        collection (BatchNorm in train mode: ``batch_stats``) is applied with
        the non-param collections mutable and the updates discarded."""
        if not state._mutable:
            try:
                return state.module.apply(variables, x)
            except ModifyScopeVariableError:
                state._mutable = [c for c in variables if c != "params"] or True
        y, _updates = state.module.apply(variables, x, mutable=state._mutable)
        return y

    def forward(self, state: FlaxState, x: Any, train: Optional[bool] = None) -> Any:
        """linen: ``module.apply(state.variables, x)``, initialising the
        variables first (with ``state.seed``) when they do not exist yet, as
        a lazy layer would on its first forward.  NNX: ``model(x)``."""
        if isinstance(x, np.ndarray) or np.isscalar(x):
            x = jnp.asarray(x)
        if state.kind == "nnx":
            return state.module(x)   # train: not applied; the module holds its mode
        if state.variables is None:
            state.variables = state.module.init(jax.random.PRNGKey(state.seed), x)
        if state.sample is None:
            state.sample = _spec_of(x)
        return self._apply(state, state.variables, x)

    def to_numpy(self, array: Any) -> np.ndarray:
        if isinstance(array, nnx.Variable):
            array = array.get_value()
        return np.asarray(array)

    # -- parameter storage --------------------------------------------------------
    def _leaf(self, state: FlaxState, ref):
        if state.kind == "nnx":
            return ref.get_value()
        if state.variables is None:
            raise NotMaterializedError("/".join(ref), state.hints.get(ref, ()))
        return _get(state.variables, ref)

    def storage_key(self, state: FlaxState, ref: Any) -> Any:
        # JAX arrays are immutable: the same leaf object is the same values
        # (an LSTM slot is assembled from several leaves and handle state: no key)
        return None if isinstance(ref, _LstmRef) else self._leaf(state, ref)

    def read(self, state: FlaxState, ref: Any) -> np.ndarray:
        """``np.asarray(leaf)``: zero-copy on CPU.  An LSTM slot is
        assembled from its gate leaves (a copy)."""
        if isinstance(ref, _LstmRef):
            value = ref.assemble(lambda p: self._leaf(state, p))
            if ref.part.startswith("bias"):
                share = state.lstm_bias_hh.get(ref.cell, np.zeros_like(value))
                value = value - share if ref.part == "bias_ih" else np.array(share)
            return value
        return np.asarray(self._leaf(state, ref))

    def native_shape(self, state: FlaxState, ref: Any) -> Optional[tuple]:
        if state.kind == "linen" and state.variables is None:
            return None if isinstance(ref, _LstmRef) else state.hints.get(ref)
        if isinstance(ref, _LstmRef):
            shapes = [np.shape(self._leaf(state, p)) for p in ref.leaves()]
            if ref.part.startswith("weight"):   # gate kernels (in, H) -> (4H, in)
                return (4 * shapes[0][1], shapes[0][0])
            return (4 * shapes[0][0],)
        return tuple(np.shape(self._leaf(state, ref)))

    def dtype(self, state: FlaxState, ref: Any) -> Optional[np.dtype]:
        if state.kind == "linen" and state.variables is None:
            return None
        if isinstance(ref, _LstmRef):
            ref = ref.leaves()[0]
        return np.dtype(self._leaf(state, ref).dtype)

    def write(self, state: FlaxState, ref: Any, value: np.ndarray) -> None:
        """NNX: ``variable.set_value(...)`` (same Variable object).  linen:
        a new pytree with the leaf replaced -- at every path that holds the
        same leaf object, so parameters the handle tied stay one value."""
        if state.kind == "nnx":
            old = ref.get_value()
            ref.set_value(_private(value, old.dtype))
            return
        if isinstance(ref, _LstmRef):
            self._write_lstm(state, ref, np.asarray(value))
            return
        old = self._leaf(state, ref)
        new = _private(value, old.dtype)
        variables = state.variables
        for path, leaf in _ordered_leaves(variables):
            if leaf is old or path == tuple(ref):
                variables = _replace(variables, path, new)
        state.variables = self._expand(state, variables)

    def _write_lstm(self, state: FlaxState, ref: _LstmRef, value: np.ndarray) -> None:
        """Split a canonical LSTM array into its gate leaves; a bias share
        stores the new sum ``bias_ih + bias_hh`` in the one Flax bias."""
        if ref.part.startswith("bias"):
            bias = ref.assemble(lambda p: self._leaf(state, p))
            share = state.lstm_bias_hh.get(ref.cell, np.zeros_like(bias))
            if ref.part == "bias_ih":
                value = value + share
            else:
                state.lstm_bias_hh[ref.cell] = np.array(value)
                value = (bias - share) + value
        for path, chunk in ref.split(value):
            self.write(state, path, np.ascontiguousarray(chunk))

    @staticmethod
    def _expand(state: FlaxState, variables):
        """Every tied path (``m.tie``) given its source's leaf (transposed
        where the tie is): the pytree Flax applies is always consistent."""
        for dst, (src, transposed) in state.ties.items():
            leaf = _get(variables, src)
            variables = _replace(variables, dst, leaf.T if transposed else leaf)
        return variables

    def tie(self, state: FlaxState, dst: ParamSlot, dst_layer: Any, src: ParamSlot,
            native_transpose: bool) -> None:
        """linen: Flax keeps parameters in a pytree, so the handle records the
        tie (dst path -> src path) and rebuilds every dst leaf from its
        source after each write; ``grad`` differentiates through that
        expansion, so a tied parameter's gradient is the sum of its uses.
        ``unique_variables`` / ``expand_variables`` give an optax loop the
        de-duplicated pytree and the way back.  NNX: assign the src
        ``nnx.Variable`` to the dst module's attribute (NNX graphs share
        Variables natively)."""
        from ..errors import CapabilityError

        if state.kind == "nnx":
            if native_transpose:
                raise CapabilityError(self.name, "tie NNX parameters transposed",
                                      "an nnx.Variable cannot be the transpose of another")
            attrs = [a for a, v in vars(dst_layer).items() if v is dst.ref]
            if not attrs:
                raise CapabilityError(self.name, f"tie {dst.native_name}",
                                      "no module attribute holds that variable")
            for a in attrs:
                setattr(dst_layer, a, src.ref)
            return
        state.ties[tuple(dst.ref)] = (tuple(src.ident), native_transpose)
        # canonical relation: a layout change (Embed (V, D) vs kernel (D, V))
        # already accounts for one native transpose
        state.ties_canonical_t[tuple(dst.ref)] = native_transpose != _layout.transposes_natively(
            src.layout, dst.layout)
        state.variables = self._expand(state, state.variables)

    def unique_variables(self, state: FlaxState) -> Any:
        """The variables with each tied path (``m.tie``) removed: the pytree
        to give optax, so an update changes a tied parameter once."""
        variables = state.variables
        for dst in state.ties:
            variables = _remove(variables, dst)
        return variables

    def expand_variables(self, state: FlaxState, unique: Any) -> Any:
        """The full pytree Flax applies, from a ``unique_variables`` tree."""
        variables = unique
        for dst, (src, transposed) in state.ties.items():
            leaf = _get(variables, src)
            variables = _insert(variables, dst, leaf.T if transposed else leaf)
        return variables

    def set_native_variables(self, state: FlaxState, variables: Any) -> None:
        """Replace the handle's pytree (same structure and shapes), e.g. after
        an optax step on ``expand_variables(new_unique)``."""
        if state.kind == "nnx":
            nnx.update(state.module, variables)
            return
        old = jax.tree_util.tree_structure(state.variables)
        new = jax.tree_util.tree_structure(variables)
        if old != new:
            raise ValueError(f"the new variables do not have the model's structure: {new} vs {old}")
        for a, b in zip(jax.tree_util.tree_leaves(state.variables), jax.tree_util.tree_leaves(variables)):
            if np.shape(a) != np.shape(b):
                raise ValueError(f"a leaf of shape {np.shape(b)} where the model has {np.shape(a)}")
        state.variables = self._expand(state, variables)

    def native_param(self, state: FlaxState, ref: Any) -> Any:
        """NNX: the ``nnx.Variable``; linen: the pytree leaf (a jax Array);
        an LSTM slot: its four gate leaves, in torch's gate order."""
        if isinstance(ref, _LstmRef):
            return tuple(self._leaf(state, p) for p in ref.leaves())
        return ref if state.kind == "nnx" else self._leaf(state, ref)

    def native_grad(self, state: FlaxState, ref: Any) -> Optional[np.ndarray]:
        return None  # JAX keeps no gradient on parameters

    # -- gradients ----------------------------------------------------------------
    def reduce_sum(self, out):
        return sum(jnp.sum(o) for o in jax.tree_util.tree_leaves(out))

    def reduce_mean(self, out):
        return jnp.mean(out)

    def as_target(self, target, out):
        return jnp.asarray(target, dtype=out.dtype)

    def _loss(self, out, loss, target):
        # jax.grad needs a () shaped result
        return jnp.reshape(self.loss_value(out, loss, target), ())

    def grad(self, state: FlaxState, x: Any, loss: Any = None, target: Any = None,
             train: bool = False) -> dict:
        """``jax.grad`` of the loss w.r.t. the trainable parameters (linen:
        the ``params`` collection; NNX: ``nnx.Param`` via split/merge).
        Nothing in the state changes (BatchNorm updates go to a copy).
        ``train`` is not applied: a Flax module fixes its mode itself
        (``mp.nn.BatchNorm`` builds ``use_running_average=True``).  LSTM
        slots get their gate gradients assembled; both bias shares get the
        gradient of the one Flax bias."""
        x = jax.tree_util.tree_map(jnp.asarray, x)
        if state.kind == "nnx":
            return self._grad_nnx(state, x, loss, target)
        if state.variables is None:
            self.forward(state, x)  # materialise, as the first forward would
        variables = state.variables
        if "params" not in variables:
            return {}

        def f(params):
            v = dict(variables)
            v["params"] = params
            # tied paths read their source inside the differentiated function,
            # so the source's gradient is the sum over every use
            return self._loss(self._apply(state, self._expand(state, v), x), loss, target)

        g = jax.grad(f)(variables["params"])
        out = {path: np.asarray(leaf) for path, leaf in _ordered_leaves({"params": g})}
        self._add_lstm_grads(self.describe(state), out)
        return out

    @staticmethod
    def _add_lstm_grads(node: LayerNode, out: dict) -> None:
        for slot in node.params:
            if isinstance(slot.ref, _LstmRef):
                out[slot.ident] = slot.ref.assemble(lambda p: out[tuple(p)])
        for child in node.children:
            JaxAdapter._add_lstm_grads(child, out)

    def _grad_nnx(self, state, x, loss, target) -> dict:
        model = state.module
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)

        # rest (BatchStat, RNG state) goes in as an argument too, and merge
        # copies (fresh Variables owned by this trace): a train-mode
        # BatchNorm updates the copy, never the user's model
        def f(p, r):
            return self._loss(nnx.merge(graphdef, p, r, copy=True)(x), loss, target)

        g = jax.grad(f)(params, rest)
        # split lists a shared Variable once, at its first graph path, the
        # same traversal iter_graph does: map paths back to the objects
        by_path = {tuple(p): v for p, v in nnx.iter_graph(model) if isinstance(v, nnx.Variable)}
        out = {}
        for path, val in nnx.to_flat_state(g):
            var = by_path[tuple(path)]
            arr = val.get_value() if isinstance(val, nnx.Variable) else val
            out[id(var)] = np.asarray(arr)
        return out

    # -- building from the neutral spec -----------------------------------------------
    def build(self, spec: Any) -> Any:
        """linen modules: Dense -> ``nn.Dense`` (input size inferred by Flax;
        ``in_features`` is remembered for shape hints and to initialise at
        once), ReLU -> ``nn.relu``, Conv2d -> ``nn.Conv`` (NHWC, explicit
        padding pairs), BatchNorm -> ``nn.BatchNorm(use_running_average=True,
        momentum=1 - spec.momentum)`` (inference mode: Flax fixes the mode
        in the module), LayerNorm -> ``nn.LayerNorm``, Embedding ->
        ``nn.Embed``, LSTM -> ``nn.RNN(nn.OptimizedLSTMCell(H))``, Flatten ->
        :func:`flatten`, numbered Sequential -> ``nn.Sequential``,
        named Sequential -> :class:`NamedSequential`.  One spec object maps
        to one module object, which Flax adopts once: tied parameters."""
        from .. import nn as spec_nn

        cache: dict = {}

        def make(s, name=None):
            if isinstance(s, spec_nn.ReLU):
                return nn.relu
            if isinstance(s, spec_nn.Flatten):
                return flatten
            if id(s) in cache:
                return cache[id(s)]
            if isinstance(s, spec_nn.Dense):
                m = nn.Dense(s.units, use_bias=s.use_bias, name=name)
                if s.in_features is not None:
                    object.__setattr__(m, _IN_FEATURES_ATTR, s.in_features)
            elif isinstance(s, spec_nn.Conv2d):
                p = s.padding
                m = nn.Conv(s.out_channels, (s.kernel_size, s.kernel_size), strides=(s.stride, s.stride),
                            padding=((p, p), (p, p)), use_bias=s.use_bias, name=name)
            elif isinstance(s, spec_nn.BatchNorm):
                # inference mode, fixed in the module as Flax does; Flax's
                # momentum weighs the old statistics: torch's 0.1 is 0.9
                m = nn.BatchNorm(use_running_average=True, momentum=1.0 - s.momentum,
                                 epsilon=s.eps, name=name)
            elif isinstance(s, spec_nn.LayerNorm):
                # exact two-pass variance, as torch computes it
                m = nn.LayerNorm(epsilon=s.eps, use_fast_variance=False, name=name)
            elif isinstance(s, spec_nn.Embedding):
                m = nn.Embed(s.num_embeddings, s.features, name=name)
            elif isinstance(s, spec_nn.LSTM):
                # batch-first scan over the cell; returns the whole sequence
                m = nn.RNN(nn.OptimizedLSTMCell(s.hidden_size), name=name)
            elif isinstance(s, spec_nn.Sequential):
                if s.named:
                    m = NamedSequential(names=tuple(k for k, _ in s.children),
                                        layers=tuple(make(c, k) for k, c in s.children), name=name)
                else:
                    m = nn.Sequential([make(c) for _, c in s.children], name=name)
            else:
                raise TypeError(f"the jax backend cannot build {type(s).__name__} specs")
            cache[id(s)] = m
            return m

        return make(spec)

    # -- the framework's own listings -------------------------------------------------------
    def summary_idiom(self, state: FlaxState) -> list:
        """linen: ``jax.tree_util.tree_map(lambda x: x.shape, variables)``
        flattened: ``[("params/layers_0/kernel", (4, 8)), ...]`` in JAX's
        (sorted-key) tree order.  NNX: ``nnx.state(model)`` the same way,
        without RNG state."""
        if state.kind == "nnx":
            return [("/".join(map(str, p)), tuple(np.shape(v.get_value())))
                    for p, v in nnx.to_flat_state(nnx.state(state.module))
                    if not isinstance(v, nnx.RngState)]
        if state.variables is None:
            return []
        flat, _ = jax.tree_util.tree_flatten_with_path(state.variables)
        return [("/".join(_keystr(k) for k in path), tuple(np.shape(leaf))) for path, leaf in flat]

    def native_count(self, state: FlaxState) -> int:
        """Trainable scalars the Flax way: leaf sizes of the ``params``
        collection (linen; 0 before init), or of ``nnx.state(model, nnx.Param)``."""
        if state.kind == "nnx":
            return int(sum(np.size(v.get_value())
                           for _, v in nnx.to_flat_state(nnx.state(state.module, nnx.Param))))
        if state.variables is None:
            return 0
        return int(sum(np.size(l) for l in jax.tree_util.tree_leaves(state.variables.get("params", {}))))

    # -- initialisation (native mode) --
    def native_init(self, state: FlaxState, ref: Any, initializer: Any, seed: int) -> bool:
        """``jax.random`` with ``PRNGKey(seed)`` (orthogonal:
        ``jax.nn.initializers.orthogonal``), stored through :meth:`write`:
        linen gets a new pytree in the handle (every tied path follows),
        NNX ``set_value`` on the same Variable."""
        from .. import initializers as I

        if isinstance(ref, _LstmRef):  # one canonical array over many leaves: portable path
            return False
        shape = self.native_shape(state, ref)
        dtype = self.dtype(state, ref)
        if shape is None or any(d is None for d in shape) or dtype is None or dtype.kind != "f":
            return False
        key = jax.random.PRNGKey(seed)
        if isinstance(initializer, I.Constant):
            value = jnp.full(shape, initializer.value, dtype)
        elif isinstance(initializer, I.Uniform):
            value = jax.random.uniform(key, shape, dtype, initializer.low, initializer.high)
        elif isinstance(initializer, I.Normal):
            value = initializer.mean + initializer.std * jax.random.normal(key, shape, dtype)
        elif isinstance(initializer, I.TruncatedNormal):
            m, s = initializer.mean, initializer.std
            z = jax.random.truncated_normal(key, (initializer.a - m) / s, (initializer.b - m) / s,
                                            shape, dtype)
            value = m + s * z
        elif isinstance(initializer, I.Orthogonal) and len(shape) >= 2:
            value = jax.nn.initializers.orthogonal(initializer.gain)(key, shape, dtype)
        else:
            return False
        self.write(state, ref, value)  # write() takes jax arrays as they are (jnp.asarray)
        return True

    def framework_default(self, state: FlaxState, layer_node: Any, slot: Any):
        """Flax 0.12.8 defaults, linen and NNX alike: Dense/Linear and Conv
        kernel ``lecun_normal`` (truncated normal, variance 1/fan_in), bias
        zeros; BatchNorm scale ones, bias zeros, mean zeros, var ones;
        LayerNorm/GroupNorm/RMSNorm scale ones, bias zeros; Embed
        ``variance_scaling(1, 'fan_in', 'normal', out_axis=0)``, i.e.
        N(0, 1/features)."""
        from .. import initializers as I

        if state.kind == "nnx":
            family = _nnx_family(layer_node.native)
        else:
            family = _linen_family(layer_node.native, layer_node.key)
        role = slot.role.split(":")[-1]
        if family in ("Dense", "Conv"):
            return {"weight": I.lecun_normal(), "bias": I.zeros()}.get(role)
        if family in ("BatchNorm", "Norm"):
            return {"scale": I.ones(), "bias": I.zeros(), "running_mean": I.zeros(),
                    "running_var": I.ones()}.get(role)
        if family == "Embed" and role == "embedding":
            # canonical (num_embeddings, features): torch fans give fan_in = features
            return I.variance_scaling(1.0, "fan_in", "normal")
        return None


ADAPTER = JaxAdapter()
