"""Which order the features of each parameter come in: a Flax model's
traced jaxpr, interpreted with :class:`multiparam.layout.Labels`.

A channels-last model holds a feature map as ``(H, W, C)``; flattened
(``x.reshape((x.shape[0], -1))``, ``mp.nn.Flatten``) its features are in
(H, W, C) order where torch's are in (C, H, W).  Every parameter that
indexes those features (a Dense kernel's rows, a LayerNorm's scale, a
BatchNorm's statistics) holds them in the native order until a layer mixes
them.  Rather than recognise layer patterns, the model is traced once
(``jax.make_jaxpr``, no FLOPs) and each equation is followed: model inputs
are labelled (a 4-D float input is NHWC), reshapes, transposes,
broadcasts, reductions, contractions and convolutions move the labels,
and a parameter is bound wherever its axis meets data.  So a plain
``x.reshape`` is seen, as are ``x.transpose(0, 3, 1, 2).reshape(...)``
(torch's order: nothing to permute), pooling before the flatten, nesting,
activations and norms in between.

An equation this module does not know is taken as opaque: outputs in
torch's order when its data inputs are (the torch equivalent does the same
to the same layout), else lost, and a parameter then bound to lost
features gets an :class:`~multiparam.adapters.base.UnknownOrder` layout
that refuses to guess.
"""
from __future__ import annotations

from typing import Any, Callable, Hashable, List

import jax
from jax.extend.core import Literal
import numpy as np

from ...layout import Labels, Tag
from ..base import DENSE_IN_OUT, SAME, UnknownOrder

#: same-shape primitives that are *not* elementwise
_NOT_ELEMENTWISE = {"rev", "cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp", "sort", "fft",
                    "triangular_solve", "cholesky", "eigh", "qr", "svd", "lu"}
#: primitives whose one sub-jaxpr takes the operands as they are
_CALLS = {"jit", "pjit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call",
          "custom_vjp_call_jaxpr", "remat", "checkpoint", "custom_lin"}
_REDUCTIONS = {"reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_and", "reduce_or",
               "reduce_xor", "argmax", "argmin"}
_RESIZING = {"reduce_window_sum", "reduce_window_max", "reduce_window_min", "reduce_window",
             "slice", "dynamic_slice", "pad"}


def _shape(var) -> tuple:
    return tuple(getattr(var.aval, "shape", ()))


def _broadcasts(shape: tuple, out: tuple) -> bool:
    """An operand shape an elementwise op stretches to ``out``: a scalar,
    or ``out`` with some axes of size 1."""
    return not shape or (len(shape) == len(out) and all(a in (1, b) for a, b in zip(shape, out)))


def _sub_jaxpr(eqn):
    """The jaxpr a call-like equation runs on its operands, or None."""
    for name in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        sub = eqn.params.get(name)
        if sub is None:
            continue
        inner = getattr(sub, "jaxpr", sub)
        if hasattr(inner, "eqns") and len(inner.invars) == len(eqn.invars):
            return inner
    return None


class _Interpreter:
    def __init__(self, labels: Labels):
        self.labels = labels

    def run(self, jaxpr, args: list) -> list:
        env = {}

        def read(v):
            if isinstance(v, Literal):
                return Labels.constant(np.shape(v.val))
            return env.get(v, Labels.constant(_shape(v)))

        for var, tags in zip(jaxpr.invars, args):
            env[var] = tags
        for var in jaxpr.constvars:
            env[var] = Labels.constant(_shape(var))
        for eqn in jaxpr.eqns:
            outs = self.equation(eqn, [read(v) for v in eqn.invars])
            for var, tags in zip(eqn.outvars, outs):
                env[var] = tags
        return [read(v) for v in jaxpr.outvars]

    def equation(self, eqn, ins: list) -> list:
        L, name, p = self.labels, eqn.primitive.name, eqn.params
        shapes = [_shape(v) for v in eqn.invars]
        outs = [_shape(v) for v in eqn.outvars]
        if name in _CALLS:
            sub = _sub_jaxpr(eqn)
            if sub is not None:
                return self.run(sub, ins)
        if name == "reshape":
            return [L.reshape(ins[0], shapes[0], outs[0])]
        if name == "transpose":
            return [L.transpose(ins[0], tuple(p["permutation"]))]
        if name == "broadcast_in_dim":
            return [L.broadcast(ins[0], shapes[0], outs[0], tuple(p["broadcast_dimensions"]))]
        if name == "squeeze":
            return [L.reduce(ins[0], tuple(p["dimensions"]))]
        if name in _REDUCTIONS:
            return [L.reduce(ins[0], tuple(p["axes"]))]
        if name == "dot_general":
            contracting, batch = p["dimension_numbers"]
            return [L.contract(ins[0], ins[1], shapes[0], shapes[1], contracting, batch)]
        if name == "conv_general_dilated":
            dn = p["dimension_numbers"]
            return [L.convolve(ins[0], outs[0], tuple(dn.lhs_spec), tuple(dn.out_spec))]
        if name in _RESIZING and len(outs) == 1 and len(outs[0]) == len(shapes[0]):
            return [L.resized(ins[0], shapes[0], outs[0])]
        if len(outs) == 1 and name not in _NOT_ELEMENTWISE and all(_broadcasts(s, outs[0]) for s in shapes):
            # elementwise (scalars and size-1 axes broadcast implicitly)
            out = outs[0]
            aligned = [tuple(tag if a == b else Tag() for tag, a, b in zip(t, s, out))
                       for t, s in zip(ins, shapes) if len(s) == len(out)]
            return [L.elementwise(aligned)] if aligned else [Labels.constant(out)]
        # opaque: in torch's order out of inputs in torch's order, else lost
        data = [t for t in ins if any(tag.labels is not None for tag in t)]
        follow = all(L.is_canonical(t) for t in data)
        return [L.canonical_like(s) if follow else L.lost(s) for s in outs]


def _input_tags(labels: Labels, leaf) -> tuple:
    shape = tuple(np.shape(leaf))
    floating = np.issubdtype(np.dtype(leaf.dtype), np.floating) if hasattr(leaf, "dtype") else False
    return labels.image(shape) if floating and len(shape) == 4 else labels.plain(shape)


def trace_orders(fn: Callable, params: List[tuple], inputs: list) -> Labels:
    """Trace ``fn(*[leaf for _, leaf in params], *inputs)`` abstractly and
    follow its features; the returned :class:`Labels` has each parameter's
    bindings under ``(key, axis)``, ``key`` the first of each ``params``
    pair.  ``inputs`` are the model's input leaves (4-D floats are NHWC)."""
    labels = Labels()
    n = len(params)
    closed = jax.make_jaxpr(lambda *leaves: fn(*leaves))(*[leaf for _, leaf in params], *inputs)
    args = [labels.param(key, np.shape(leaf)) for key, leaf in params]
    args += [_input_tags(labels, leaf) for leaf in inputs]
    _Interpreter(labels).run(closed.jaxpr, args[:n] + args[n:])
    return labels


def param_layout(labels: Labels, key: Hashable, layout: Any, shape: tuple, what: str) -> Any:
    """The layout of one leaf given the traced bindings: a Dense kernel
    (2-D ``DENSE_IN_OUT``: features on native axis 0) or a per-feature
    vector (1-D ``SAME``) permuted when bound to features in another order;
    any other leaf as it is."""
    if (layout == DENSE_IN_OUT and len(shape) == 2) or (layout == SAME and len(shape) == 1):
        return labels.layout(key, 0, layout, what)
    return layout


def feature_layout(orders: Any, key: Hashable, layout: Any, shape: tuple, what: str,
                   family: Any = None, spatial: bool = False) -> Any:
    """A leaf's layout with its feature order: from the traced ``orders``
    (:func:`trace_orders`) when there are some; untraced, a Dense kernel or
    a norm's vector in a model that may flatten a channels-last map
    (``spatial``) cannot be known, and says what to do."""
    if orders is not None:
        return param_layout(orders, key, layout, shape, what)
    indexes_features = (family == "Dense" and layout == DENSE_IN_OUT and len(shape) == 2) or \
        (family in ("Norm", "BatchNorm") and len(shape) == 1)
    if spatial and indexes_features:
        return UnknownOrder(layout, f"{what} may be fed a flattened channels-last feature map, and the "
                                    "model was not traced; pass sample_input=x to mp.wrap (or call the "
                                    "model once) so multiparam can follow its features")
    return layout
