"""The Flax NNX adapter: parameters live inside the model as mutable
``nnx.Variable`` objects, as in PyTorch.

The state (:class:`NnxState`) holds the ``nnx.Module`` and the input spec
of a call (``sample_input``, else the first ``m(x)``); a slot's ``ref`` is
the ``nnx.Variable`` and its ``ident`` the Variable's ``id``, so a layer
used twice (one Variable reached by two graph paths) gives slots with one
ident.  Writes ``set_value`` on the same Variable; gradients come from
``jax.grad`` over ``nnx.split``/``nnx.merge``.

Feature order (as linen's, ``..order``): a model written in Flax's own
style flattens a channels-last map (``x.reshape((x.shape[0], -1))``), so the
Linear and norms after it hold their features in (H, W, C) order where
torch's hold (C, H, W).  With an input spec the model is traced abstractly
(``jax.make_jaxpr`` over ``nnx.merge`` of its state, nothing run, nothing
changed) and each Variable's layout follows its features; without one, a
model holding a convolution cannot be known, and the Linears and norms
after its first Conv refuse values (``UnknownOrder``) until a sample is seen.

The mode of a call (``m(x, train=False)``, ``m.grad(x)`` in inference) is
set the NNX way for that call only: ``model.eval()`` / ``model.train()``
(Dropout's ``deterministic``, BatchNorm's ``use_running_average``), each
module's flag restored after, plus the mode argument when the module's
``__call__`` takes one.

Relied on from Flax 0.12.8: ``nnx.iter_graph``, ``nnx.iter_modules``,
``nnx.split``/``merge(copy=True)``, ``nnx.to_flat_state``, ``nnx.update``,
``Module.train/eval`` and ``Variable.get_value/set_value``.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Optional

import jax
import numpy as np
from flax import nnx

from ...errors import CapabilityError
from ..base import Capability, Inputs, LayerNode, ParamSlot
from .calls import AbstractInputs, floating_dtype, jax_inputs, with_mode
from .common import FlaxAdapter, cast_leaf
from .leaves import function_kind, layer_family, leaf_kinds
from .order import feature_layout, trace_orders
from .sharding import grad_array

#: what an NNX module holds that is random-number state, not a layer or parameter
_RNG_TYPES = (nnx.RngState, nnx.Rngs, nnx.RngStream)

_NO_TRANSPOSED_VARIABLE = "an nnx.Variable cannot be the transpose of another"

#: the module flags ``Module.train()`` / ``eval()`` set
_MODE_FLAGS = ("deterministic", "use_running_average")


@contextlib.contextmanager
def _mode(model: nnx.Module, train: Optional[bool]):
    """``model.train()`` or ``model.eval()`` for the block (None: as it is),
    every module's flags put back after, as they were."""
    if train is None:
        yield
        return
    saved = [(module, flag, getattr(module, flag)) for _, module in nnx.iter_modules(model)
             for flag in _MODE_FLAGS if hasattr(module, flag)]
    if train:
        model.train()
    else:
        model.eval()
    try:
        yield
    finally:
        for module, flag, value in saved:
            setattr(module, flag, value)


def _floating(model: nnx.Module) -> np.dtype:
    """The dtype NumPy float inputs take: the model's first floating Param's."""
    return floating_dtype(v.get_value() for _, v in nnx.to_flat_state(nnx.state(model, nnx.Param)))


@dataclasses.dataclass(eq=False)
class NnxState:
    """What the adapter keeps besides the module, which holds its own Variables.

    module:      the ``nnx.Module``.
    sample:      :class:`AbstractInputs` of ``sample_input`` or of the first
                 call, or None: what the model is traced on to follow its
                 features (see :meth:`NnxAdapter.orders`).
    trace_cache: (key of the Variables and sample, Labels or None) of the last trace.
    """

    module: nnx.Module
    sample: Optional[AbstractInputs] = None
    trace_cache: Any = dataclasses.field(default=None, repr=False)


def _inputs(model: nnx.Module, inputs: Inputs) -> Inputs:
    """A call's inputs as the model takes them (NumPy floats in its dtype)."""
    return jax_inputs(inputs, _floating(model))


class _NnxWalk:
    """One :meth:`NnxAdapter.describe`.  A class, not nested functions: a
    nested function that calls itself is a reference cycle, which would
    keep the description (and the model) alive until the garbage collector
    runs."""

    def __init__(self, root, orders):
        self.orders = orders
        self.first_path: dict = {}
        for path, value in nnx.iter_graph(root):
            if isinstance(value, nnx.Variable):
                self.first_path.setdefault(id(value), "/".join(map(str, path)))
        self.after_conv = False   # untraced: a Conv was met before, in attribute order

    def slots(self, obj, variables, path) -> list:
        family = layer_family(obj)
        kinds = leaf_kinds(obj, None, [(attr, np.shape(var.get_value()), isinstance(var, nnx.Param))
                                       for attr, var in variables])
        out = []
        for (attr, var), kind in zip(variables, kinds):
            name = self.first_path.get(id(var), "/".join(path + (attr,)))
            layout = feature_layout(self.orders, id(var), kind.layout, np.shape(var.get_value()), name,
                                    family=family, spatial=self.after_conv)
            out.append(ParamSlot(kind.role, name, var, layout, kind.trainable, id(var), key=kind.key,
                                 declared=kind.declared))
        self.after_conv = self.after_conv or family == "Conv"
        # trainable Params first (weight, bias, then running stats), as linen
        return sorted(out, key=lambda s: not s.trainable)

    def container(self, key, items, native, path, visiting) -> LayerNode:
        kind = "Sequential" if isinstance(native, nnx.Sequential) else "List"
        n = LayerNode(key, kind, native)
        for k, element in items:
            n.children.append(self.child(element, str(k), path + (str(k),), visiting))
        return n

    def child(self, obj, key, path, visiting) -> LayerNode:
        if isinstance(obj, nnx.Module):
            return self.node(obj, key, path, visiting)
        if callable(obj):
            return LayerNode(key, function_kind(obj), obj)
        return LayerNode(key, type(obj).__name__, obj)

    def node(self, obj, key, path, visiting) -> LayerNode:
        if isinstance(obj, nnx.Sequential):
            return self.container(key, enumerate(obj.layers), obj, path + ("layers",), visiting)
        if isinstance(obj, nnx.List):
            return self.container(key, enumerate(obj), obj, path, visiting)
        family = layer_family(obj)
        n = LayerNode(key, "Dense" if family == "Dense" else type(obj).__name__, obj)
        if id(obj) in visiting:
            return n
        visiting = visiting | {id(obj)}
        variables = []
        for attr, value in vars(obj).items():
            if attr.startswith("_pytree__") or isinstance(value, _RNG_TYPES):
                continue
            if isinstance(value, nnx.Variable):
                variables.append((attr, value))
            elif isinstance(value, nnx.Module):
                n.children.append(self.node(value, attr, path + (attr,), visiting))
            elif isinstance(value, (list, tuple)) and any(isinstance(e, nnx.Module) for e in value):
                n.children.append(self.container(attr, enumerate(value), value, path + (attr,), visiting))
            elif isinstance(value, dict) and any(isinstance(e, nnx.Module) for e in value.values()):
                n.children.append(self.container(attr, value.items(), value, path + (attr,), visiting))
        n.params = self.slots(obj, variables, path)
        return n


class NnxAdapter(FlaxAdapter):
    """Flax NNX modules (``nnx.Module``); the state an :class:`NnxState`."""

    flavour = "nnx"
    static_capabilities = {"tie_transposed": Capability(False, _NO_TRANSPOSED_VARIABLE)}

    def prepare(self, native: Any, sample_input: Any = None, **options) -> NnxState:
        """The module and the spec of ``sample_input`` (shapes and dtypes,
        ``Inputs.of``: a dict is keyword inputs): NNX parameters already
        exist, so no forward is run on it (a forward may change state a
        module keeps: a decoding cache, RNG counts); it is only traced to
        follow the model's features.  Linen's options (``variables``,
        ``seed``) do not apply."""
        if not isinstance(native, nnx.Module):
            raise TypeError(f"not a Flax NNX module: {type(native).__name__}")
        state = NnxState(native)
        if sample_input is not None:
            state.sample = AbstractInputs(_inputs(native, Inputs.of(sample_input)))
        return state

    def is_materialized(self, state: NnxState) -> bool:
        return True

    # -- feature order -----------------------------------------------------------
    def orders(self, state: NnxState) -> Any:
        """Each Variable's feature bindings (``..order.trace_orders``, keyed
        by the Variable's ``id``), traced on the sample in inference mode:
        ``jax.make_jaxpr`` of a function of the split state's arrays that
        merges a copy and calls it, so every Variable is one jaxpr input
        and the user's model neither runs nor changes.  None without a
        sample, or for a model the abstract trace cannot run (then read
        as untraced); cached per Variables and sample."""
        if state.sample is None:
            return None
        module, sample = state.module, state.sample
        with _mode(module, False):   # flags are static: split bakes them into graphdef
            graphdef, variables = nnx.split(module)
        flat = list(nnx.to_flat_state(variables))
        key = (sample.key(), tuple((path, id(var), np.shape(var.get_value())) for path, var in flat))
        if state.trace_cache is not None and state.trace_cache[0] == key:
            return state.trace_cache[1]

        def run(*arrays):
            values = arrays[:len(flat)]
            inputs = sample.rebuild(arrays[len(flat):])
            copy = nnx.merge(graphdef, nnx.from_flat_state(
                [(path, var.replace(value)) for (path, var), value in zip(flat, values)]), copy=True)
            return copy(*inputs.args, **with_mode(module, inputs.kwargs, False))

        try:
            orders = trace_orders(run, [(id(var), var.get_value()) for _, var in flat], list(sample.arrays))
        except Exception:  # a model the abstract trace cannot run: read as untraced
            orders = None
        state.trace_cache = (key, orders)
        return orders

    # -- description -----------------------------------------------------------
    def describe(self, state: NnxState) -> LayerNode:
        """The module graph from each module's attributes, in definition
        order: Variables are the layer's slots (trainable ``nnx.Param`` first),
        modules and lists/dicts of modules its children.  A slot's native
        name is the Variable's first graph path, where ``nnx.state`` lists it.
        Layouts follow the traced feature order (:meth:`orders`); untraced,
        every Linear and norm met after the first Conv in this (attribute)
        order may be fed a flattened map and cannot be known."""
        root = state.module
        return _NnxWalk(root, self.orders(state)).node(root, "", (), frozenset())

    # -- forward ---------------------------------------------------------------
    def call(self, state: NnxState, inputs: Inputs, train: Optional[bool] = None) -> Any:
        """``model(*args, **kwargs)``; ``train`` True/False runs this call
        in ``model.train()`` / ``model.eval()`` mode (flags restored after)
        and gives the mode argument the module's ``__call__`` takes.  A
        training call updates BatchNorm statistics, as NNX does.  NumPy
        float inputs take the model's dtype.  The first call's spec is kept
        as the sample when none was given."""
        module = state.module
        inputs = _inputs(module, inputs)
        if state.sample is None:
            state.sample = AbstractInputs(inputs)
        with _mode(module, train):
            return module(*inputs.args, **with_mode(module, inputs.kwargs, train))

    # -- storage primitives ------------------------------------------------------
    def jax_array(self, state, ref: nnx.Variable) -> jax.Array:
        return ref.get_value()

    def replace_array(self, state, ref: nnx.Variable, new: jax.Array) -> None:
        """``set_value`` on the same Variable, so every holder sees it."""
        ref.set_value(new)

    def array_object(self, state, ref: nnx.Variable) -> nnx.Variable:
        return ref

    def grad_key(self, state, ref: nnx.Variable) -> int:
        return id(ref)

    # -- gradients -----------------------------------------------------------------
    def native_grads(self, state: NnxState, inputs: Inputs, loss: Any = None, target: Any = None,
                     train: bool = False) -> dict:
        """``jax.grad`` w.r.t. the ``nnx.Param`` state of ``nnx.split``,
        keyed by Variable id, in the mode ``train`` asks (inference by
        default); nothing in the model changes."""
        model = state.module
        inputs = _inputs(model, inputs)
        kwargs = with_mode(model, inputs.kwargs, train)
        with _mode(model, train):   # the flags are static: split bakes them into graphdef
            graphdef, params, rest = nnx.split(model, nnx.Param, ...)

        # rest (BatchStat, RNG state) goes in as an argument too, and merge
        # copies (fresh Variables owned by this trace): a train-mode
        # BatchNorm updates the copy, never the user's model
        def f(p, r):
            out = nnx.merge(graphdef, p, r, copy=True)(*inputs.args, **kwargs)
            return self.scalar_loss(out, loss, target)

        grads = jax.grad(f)(params, rest)
        # split lists a shared Variable once, at its first graph path, the
        # same traversal iter_graph does: map paths back to the objects
        by_path = {tuple(p): v for p, v in nnx.iter_graph(model) if isinstance(v, nnx.Variable)}
        out = {}
        for path, value in nnx.to_flat_state(grads):
            array = value.get_value() if isinstance(value, nnx.Variable) else value
            out[id(by_path[tuple(path)])] = grad_array(array)   # sharded: kept so until gathered
        return out

    # -- dtype -------------------------------------------------------------------
    def astype(self, state: NnxState, dtype: np.dtype) -> None:
        """``set_value`` of each floating Variable (Params, BatchNorm
        statistics) cast to ``dtype``, each shared Variable once; RNG keys
        and counts stay.  Flax layers compute in the promoted dtype of their
        inputs and parameters (``dtype=None``), so the model then runs."""
        seen = set()
        for _, value in nnx.iter_graph(state.module):
            if isinstance(value, nnx.Variable) and id(value) not in seen:
                seen.add(id(value))
                new = cast_leaf(value.get_value(), dtype)
                if new is not value.get_value():
                    value.set_value(new)

    # -- tying after construction ------------------------------------------------------
    def tie(self, state, dst: ParamSlot, dst_layer: Any, src: ParamSlot, native_transpose: bool) -> None:
        """Assign the src ``nnx.Variable`` to the dst module's attribute: NNX
        graphs share Variables natively, so ``nnx.state``, ``nnx.grad`` and
        ``nnx.Optimizer`` see one parameter.  A Variable cannot be another's
        transpose (declared in ``capabilities``)."""
        if native_transpose:
            raise CapabilityError(self.name, "tie NNX parameters transposed", _NO_TRANSPOSED_VARIABLE)
        attrs = [a for a, v in vars(dst_layer).items() if v is dst.ref]
        if not attrs:
            raise CapabilityError(self.name, f"tie {dst.native_name}", "no module attribute holds that variable")
        for attr in attrs:
            setattr(dst_layer, attr, src.ref)

    # -- m.flax --------------------------------------------------------------------
    def native_variables(self, state: NnxState) -> Any:
        """``nnx.state(model)``."""
        return nnx.state(state.module)

    def set_native_variables(self, state: NnxState, variables: Any) -> None:
        """``nnx.update(model, variables)``."""
        nnx.update(state.module, variables)

    def unique_variables(self, state: NnxState) -> Any:
        """``nnx.state(model)``: it lists a shared Variable once already."""
        return nnx.state(state.module)

    def expand_variables(self, state: NnxState, unique: Any) -> Any:
        """The state as given: NNX ties are shared Variables, not copies."""
        return unique

    # -- the framework's own listings ---------------------------------------------------
    def summary_idiom(self, state: NnxState) -> list:
        """``nnx.state(model)`` flattened (``"layers/0/kernel"``), without RNG state."""
        return [("/".join(map(str, p)), tuple(np.shape(v.get_value())))
                for p, v in nnx.to_flat_state(nnx.state(state.module))
                if not isinstance(v, nnx.RngState)]

    def native_count(self, state: NnxState) -> int:
        """Leaf sizes of ``nnx.state(model, nnx.Param)``."""
        return int(sum(np.size(v.get_value()) for _, v in nnx.to_flat_state(nnx.state(state.module, nnx.Param))))


NNX_ADAPTER = NnxAdapter()
