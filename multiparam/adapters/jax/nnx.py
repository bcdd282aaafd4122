"""The Flax NNX adapter: parameters live inside the model as mutable
``nnx.Variable`` objects, as in PyTorch.

The state is the ``nnx.Module`` itself; a slot's ``ref`` is the
``nnx.Variable`` and its ``ident`` the Variable's ``id``, so a layer used
twice (one Variable reached by two graph paths) gives slots with one ident.
Writes ``set_value`` on the same Variable; gradients come from ``jax.grad``
over ``nnx.split``/``nnx.merge``.

Relied on from Flax 0.12.8: ``nnx.iter_graph``, ``nnx.split``/``merge(copy=True)``,
``nnx.to_flat_state``, ``nnx.update`` and ``Variable.get_value/set_value``.
"""
from __future__ import annotations

from typing import Any, Optional

import jax
import numpy as np
from flax import nnx

from ...errors import CapabilityError
from ..base import Capability, LayerNode, ParamSlot
from .common import FlaxAdapter, as_jax, as_jax_tree, function_kind, layer_family, leaf_role

#: what an NNX module holds that is random-number state, not a layer or parameter
_RNG_TYPES = (nnx.RngState, nnx.Rngs, nnx.RngStream)

_NO_TRANSPOSED_VARIABLE = "an nnx.Variable cannot be the transpose of another"


class NnxAdapter(FlaxAdapter):
    """Flax NNX modules (``nnx.Module``); the state is the module itself."""

    flavour = "nnx"
    capabilities = {"tie_transposed": Capability(False, _NO_TRANSPOSED_VARIABLE)}

    def prepare(self, native: Any, sample_input: Any = None, **options) -> nnx.Module:
        """The module itself: NNX parameters already exist.  No forward is
        run on ``sample_input`` (it would move BatchNorm statistics in train
        mode); linen's options (``variables``, ``seed``) do not apply."""
        if not isinstance(native, nnx.Module):
            raise TypeError(f"not a Flax NNX module: {type(native).__name__}")
        return native

    def is_materialized(self, state: nnx.Module) -> bool:
        return True

    # -- description -----------------------------------------------------------
    def describe(self, state: nnx.Module) -> LayerNode:
        """The module graph from each module's attributes, in definition
        order: Variables are the layer's slots (trainable ``nnx.Param`` first),
        modules and lists/dicts of modules its children.  A slot's native
        name is the Variable's first graph path, where ``nnx.state`` lists it."""
        first_path: dict = {}
        for path, value in nnx.iter_graph(state):
            if isinstance(value, nnx.Variable):
                first_path.setdefault(id(value), "/".join(map(str, path)))

        def slot(var, attr, family, path):
            collection = "params" if isinstance(var, nnx.Param) else "state"
            role, layout, _ = leaf_role(family, collection, attr, np.ndim(var.get_value()))
            return ParamSlot(role, first_path.get(id(var), "/".join(path + (attr,))), var, layout,
                             isinstance(var, nnx.Param), id(var))

        def container(key, items, native, path, visiting):
            kind = "Sequential" if isinstance(native, nnx.Sequential) else "List"
            n = LayerNode(key, kind, native)
            for k, element in items:
                n.children.append(child(element, str(k), path + (str(k),), visiting))
            return n

        def child(obj, key, path, visiting):
            if isinstance(obj, nnx.Module):
                return node(obj, key, path, visiting)
            if callable(obj):
                return LayerNode(key, function_kind(obj), obj)
            return LayerNode(key, type(obj).__name__, obj)

        def node(obj, key, path, visiting):
            if isinstance(obj, nnx.Sequential):
                return container(key, enumerate(obj.layers), obj, path + ("layers",), visiting)
            if isinstance(obj, nnx.List):
                return container(key, enumerate(obj), obj, path, visiting)
            family = layer_family(obj)
            n = LayerNode(key, "Dense" if family == "Dense" else type(obj).__name__, obj)
            if id(obj) in visiting:
                return n
            visiting = visiting | {id(obj)}
            for attr, value in vars(obj).items():
                if attr.startswith("_pytree__") or isinstance(value, _RNG_TYPES):
                    continue
                if isinstance(value, nnx.Variable):
                    n.params.append(slot(value, attr, family, path))
                elif isinstance(value, nnx.Module):
                    n.children.append(node(value, attr, path + (attr,), visiting))
                elif isinstance(value, (list, tuple)) and any(isinstance(e, nnx.Module) for e in value):
                    n.children.append(container(attr, enumerate(value), value, path + (attr,), visiting))
                elif isinstance(value, dict) and any(isinstance(e, nnx.Module) for e in value.values()):
                    n.children.append(container(attr, value.items(), value, path + (attr,), visiting))
            # trainable Params first (weight, bias, then running stats), as linen
            n.params.sort(key=lambda s: not s.trainable)
            return n

        return node(state, "", (), frozenset())

    # -- forward ---------------------------------------------------------------
    def forward(self, state: nnx.Module, x: Any, train: Optional[bool] = None) -> Any:
        """``model(x)``; ``train`` is not applied: the module holds its mode."""
        return state(as_jax(x))

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
    def native_grads(self, state: nnx.Module, x: Any, loss: Any = None, target: Any = None,
                     train: bool = False) -> dict:
        """``jax.grad`` w.r.t. the ``nnx.Param`` state of ``nnx.split``,
        keyed by Variable id.  ``train`` is not applied (the module holds
        its mode); nothing in the model changes."""
        x = as_jax_tree(x)
        graphdef, params, rest = nnx.split(state, nnx.Param, ...)

        # rest (BatchStat, RNG state) goes in as an argument too, and merge
        # copies (fresh Variables owned by this trace): a train-mode
        # BatchNorm updates the copy, never the user's model
        def f(p, r):
            return self.scalar_loss(nnx.merge(graphdef, p, r, copy=True)(x), loss, target)

        grads = jax.grad(f)(params, rest)
        # split lists a shared Variable once, at its first graph path, the
        # same traversal iter_graph does: map paths back to the objects
        by_path = {tuple(p): v for p, v in nnx.iter_graph(state) if isinstance(v, nnx.Variable)}
        out = {}
        for path, value in nnx.to_flat_state(grads):
            array = value.get_value() if isinstance(value, nnx.Variable) else value
            out[id(by_path[tuple(path)])] = np.asarray(array)
        return out

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
    def native_variables(self, state: nnx.Module) -> Any:
        """``nnx.state(model)``."""
        return nnx.state(state)

    def set_native_variables(self, state: nnx.Module, variables: Any) -> None:
        """``nnx.update(model, variables)``."""
        nnx.update(state, variables)

    def unique_variables(self, state: nnx.Module) -> Any:
        """``nnx.state(model)``: it lists a shared Variable once already."""
        return nnx.state(state)

    def expand_variables(self, state: nnx.Module, unique: Any) -> Any:
        """The state as given: NNX ties are shared Variables, not copies."""
        return unique

    # -- the framework's own listings ---------------------------------------------------
    def summary_idiom(self, state: nnx.Module) -> list:
        """``nnx.state(model)`` flattened (``"layers/0/kernel"``), without RNG state."""
        return [("/".join(map(str, p)), tuple(np.shape(v.get_value())))
                for p, v in nnx.to_flat_state(nnx.state(state))
                if not isinstance(v, nnx.RngState)]

    def native_count(self, state: nnx.Module) -> int:
        """Leaf sizes of ``nnx.state(model, nnx.Param)``."""
        return int(sum(np.size(v.get_value()) for _, v in nnx.to_flat_state(nnx.state(state, nnx.Param))))


NNX_ADAPTER = NnxAdapter()
