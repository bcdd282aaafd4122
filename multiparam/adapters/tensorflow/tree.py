"""The layer tree of a Keras model: canonical keys, roles and layouts.

The tree mirrors Keras' own idioms:

* ``keras.Sequential``: children are ``model.layers`` keyed by position, as
  ``net.layers[i]`` indexes them (Keras 3 keeps a reused layer twice there);
* functional models: ``model.layers`` without the ``InputLayer``, keyed by
  name (see *names* below);
* subclassed models and layers: the sub-layers held in public attributes, in
  definition order (a list attribute ``blocks`` becomes a ``list`` node with
  children ``"0"``, ``"1"``, ..., so names read ``blocks.0.weight`` as with
  torch's ``ModuleList``).

**Names never depend on Keras' global counters.**  Keras names a layer the
user did not name from a process-wide counter per class (``dense``,
``dense_1``, ... across every model built so far), so two instances of one
architecture differ.  A layer whose name has that form is keyed instead by
its rank among its siblings of the same class with such names (the first
``dense``, then ``dense_1``, ...), which depends only on the model's own
structure; names the user gave (EfficientNet's ``block1a_dwconv``) stay as
they are.  A user name of Keras' own form (``dense_7``) cannot be told from
Keras' and is renumbered too.

**Keys are torch's attributes** (``multiparam.adapters.base.ParamSlot.key``):
a kernel is ``weight``, a norm's gamma ``weight`` (role ``scale``), an
embedding table ``weight`` (role ``embedding``), BatchNorm's moving
statistics ``running_mean``/``running_var``, an LSTM's arrays
``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``.  A class
registered with ``mp.register_layer`` is described by its registration
first; a Keras layer multiparam does not know keeps its attribute names,
and a layer class that is neither Keras' nor registered is marked
``declared=False``.

A slot's ``ref`` is a :class:`VariableRef` locating ``(layer, attribute)``
rather than the variable itself: Keras creates variables only when a layer
is built (on the first call), and a post-construction tie swaps the variable
held in the attribute, so the locator stays valid across both.  Torch's two
LSTM biases, which Keras keeps as one summed ``bias``, are
:class:`~multiparam.adapters.base.SumShare` refs over that bias, handled by
the base adapter.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import keras
from keras.src.models.functional import Functional  # no public alias in Keras 3.15
from keras.src.utils.naming import to_snake_case    # how Keras derives auto-names

from ... import layer_registry
from ..base import (CHANNELS_LAST_KERNEL, DENSE_IN_OUT, SAME, Composite, LayerNode, ParamSlot, SumShare,
                    flattened)
from .layers import NamedSequential
from .layouts import depthwise, einsum_kernel, einsum_specs

CONV = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
CONV_T = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
          keras.layers.Conv3DTranspose)
DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
NORM = (keras.layers.LayerNormalization, keras.layers.GroupNormalization)
#: layers with a kernel and a bias
KERNEL_LAYERS = (keras.layers.Dense, keras.layers.EinsumDense) + CONV + CONV_T + DEPTHWISE + SEPARABLE


class VariableRef:
    """Locator of one Keras Variable: the one held in ``layer.<attr>`` now,
    or a fixed variable that no attribute names (held in a list, say)."""

    __slots__ = ("layer", "attr", "var")

    def __init__(self, layer, attr: Optional[str], var=None):
        self.layer, self.attr, self.var = layer, attr, var

    def resolve(self):
        """The Variable, or None while the layer is unbuilt."""
        if self.attr is None:
            return self.var
        # the instance dict, not getattr: Dense.kernel is a property that
        # raises before build (and adds LoRA deltas after)
        v = vars(self.layer).get(self.attr)
        return v if isinstance(v, keras.Variable) else None

    def label(self) -> str:
        """``layer name/attribute``: the name of a variable not built yet."""
        return f"{self.layer.name}/{(self.attr or self.var.name).lstrip('_')}"

    def __repr__(self) -> str:
        return f"VariableRef({self.label()})"


# candidate for base: "the native arrays a slot's ref reads" (a composite's
# parts, else the ref itself), e.g. as Adapter.array_refs(ref); any backend
# whose is_materialized looks at each array needs it.
def variable_refs(ref) -> tuple:
    """The :class:`VariableRef` s a slot's ref reads (a composite's parts)."""
    return ref.parts if isinstance(ref, Composite) else (ref,)


@dataclass(frozen=True)
class LayerContainer:
    """A list, tuple or dict of layers held in one attribute of a subclassed
    layer: a node of its own (kind ``"list"`` or ``"dict"``) whose children
    are keyed by index or dict key, as torch's ``ModuleList``/``ModuleDict``."""

    kind: str
    native: Any          # the list, tuple or dict itself
    items: list          # [(key, layer)]


# -- recognising layers --------------------------------------------------------
def _is_relu(layer) -> bool:
    return isinstance(layer, keras.layers.ReLU) or (
        isinstance(layer, keras.layers.Activation)
        and getattr(layer, "activation", None) is keras.activations.relu)


_NEUTRAL_KINDS = (
    (keras.layers.Dense, "Dense"),
    (keras.layers.Conv2D, "Conv2d"),
    (keras.layers.BatchNormalization, "BatchNorm"),
    (keras.layers.LayerNormalization, "LayerNorm"),
    (keras.layers.Embedding, "Embedding"),
    (keras.layers.LSTM, "LSTM"),
    (keras.layers.Flatten, "Flatten"),
)


def _kind(layer) -> str:
    """The neutral kind of a recognised Keras layer, else its class name."""
    if isinstance(layer, (keras.Sequential, NamedSequential)):
        return "Sequential"
    if _is_relu(layer):
        return "ReLU"
    for cls, kind in _NEUTRAL_KINDS:
        if isinstance(layer, cls) and not isinstance(layer, keras.layers.Conv2DTranspose):
            return kind
    return type(layer).__name__


def _is_keras_class(layer) -> bool:
    """A layer class Keras ships (or multiparam's own Keras layers)."""
    module = type(layer).__module__
    return module.startswith("keras.") or module.startswith(__package__)


# -- what each variable is -------------------------------------------------------------
@dataclass(frozen=True)
class Known:
    """One variable of a layer multiparam knows: its canonical key (torch's
    attribute), role and layout (a ``base`` tag or a layout object)."""

    key: str
    role: str
    layout: Any = SAME
    declared: bool = True


_BIAS = Known("bias", "bias")
_DENSE = {"kernel": Known("weight", "weight", DENSE_IN_OUT), "bias": _BIAS}
# Keras (*k, in, out) and transposed (*k, out, in) both map to torch's
# (out, in, *k) / (in, out, *k) by the same axis move
_CONV_VARS = {"kernel": Known("weight", "weight", CHANNELS_LAST_KERNEL), "bias": _BIAS}
_NORM_VARS = {"gamma": Known("weight", "scale"), "beta": _BIAS}
_BATCH_NORM = {**_NORM_VARS, "moving_mean": Known("running_mean", "running_mean"),
               "moving_variance": Known("running_var", "running_var")}
# Keras' preprocessing Normalization: statistics of its inputs (adapt()),
# which a fresh layer holds as mean 0, variance 1, count 0; no torch module has them
_NORMALIZATION = {"adapt_mean": Known("mean", "running_mean"),
                  "adapt_variance": Known("variance", "running_var"),
                  "count": Known("count", "counter")}


def _einsum_vars(layer, shapes: dict) -> dict:
    """``EinsumDense``: a linear map's kernel is the ``nn.Linear`` weight
    ``(out, in)`` (its bias, when it spans every output axis of the kernel,
    the Linear's bias); any other equation keeps Keras' layout, undeclared,
    so fan-based init refuses it instead of guessing its fans."""
    shape = shapes.get("kernel")
    layout = None if shape is None else einsum_kernel(layer.equation, shape)
    if layout is None:
        return {"kernel": Known("weight", "weight", SAME, declared=False), "bias": _BIAS}
    kernel = DENSE_IN_OUT if layout.groups == ((1,), (0,)) else layout
    _, letters, output = einsum_specs(layer.equation)
    bias = shapes.get("bias")
    if bias is not None and len(bias) > 1 and set(layer.bias_axes or "") == set(letters) & set(output):
        return {"kernel": Known("weight", "weight", kernel), "bias": Known("bias", "bias", flattened(bias))}
    return {"kernel": Known("weight", "weight", kernel), "bias": _BIAS}


def _known_vars(layer, shapes: dict) -> Optional[dict]:
    """``{Keras attribute without its underscore: Known}`` for the Keras
    layers multiparam knows, else None.  ``shapes`` holds the built
    variables' shapes (layouts that regroup axes carry them)."""
    if isinstance(layer, keras.layers.EinsumDense):
        return _einsum_vars(layer, shapes)
    if isinstance(layer, keras.layers.Dense):
        return _DENSE
    if isinstance(layer, CONV + CONV_T):
        return _CONV_VARS
    if isinstance(layer, DEPTHWISE):
        # torch's Conv2d(in, in * multiplier, groups=in)
        shape = shapes.get("kernel")
        return {"kernel": Known("weight", "weight", SAME if shape is None else depthwise(shape)),
                "bias": _BIAS}
    if isinstance(layer, SEPARABLE):
        # a depthwise conv, then a 1x1 conv: torch has no one module for it
        shape = shapes.get("depthwise_kernel")
        return {"depthwise_kernel": Known("depthwise_weight", "weight",
                                          SAME if shape is None else depthwise(shape)),
                "pointwise_kernel": Known("pointwise_weight", "weight", CHANNELS_LAST_KERNEL),
                "bias": _BIAS}
    if isinstance(layer, keras.layers.BatchNormalization):
        return _BATCH_NORM
    if isinstance(layer, NORM):
        return _NORM_VARS
    if isinstance(layer, keras.layers.RMSNormalization):
        return {"scale": Known("weight", "scale")}
    if isinstance(layer, keras.layers.Embedding):
        return {"embeddings": Known("weight", "embedding")}
    if isinstance(layer, keras.layers.Normalization):
        return _NORMALIZATION
    return None


#: torch's attribute for a registered parameter's role
_TORCH_KEY = {"weight": "weight", "scale": "weight", "embedding": "weight", "bias": "bias",
              "running_mean": "running_mean", "running_var": "running_var"}


def _registered_vars(layer, attrs: list) -> Optional[dict]:
    """``{attribute: Known}`` from ``mp.register_layer`` (looked up by the
    attribute without its underscore, then by the variable's name).  Each
    takes torch's attribute for its role when no other variable of the
    layer takes the same one (a kernel and a recurrent kernel both ``weight``
    keep their own names)."""
    kinds = layer_registry.lookup(layer)
    if kinds is None:
        return None
    found = {}
    for attr, var in attrs:
        kind = kinds.get(attr.lstrip("_")) or kinds.get(var.name)
        if kind is not None:
            found[attr.lstrip("_")] = kind
    keys = {attr: _TORCH_KEY.get(kind.role, attr) for attr, kind in found.items()}
    taken = list(keys.values())
    return {attr: Known(key if taken.count(key) == 1 else attr, found[attr].role, found[attr].layout)
            for attr, key in keys.items()}


# -- slots -----------------------------------------------------------------------
def _lstm_slots(layer) -> list:
    """Canonical (torch) slots of a ``keras.layers.LSTM``: its cell's
    ``kernel (in, 4H)`` and ``recurrent_kernel (H, 4H)`` are torch's
    ``weight_ih_l0``/``weight_hh_l0`` transposed (Keras' gate order i, f, c,
    o is torch's i, f, g, o), and its one ``bias`` is the sum of torch's
    ``bias_ih_l0`` and ``bias_hh_l0`` (both are added to the same
    pre-activations): two :class:`SumShare` slots, the shares kept on the
    cell.  Keras' own ``weights`` and saving see the one summed bias."""
    cell, units = layer.cell, layer.cell.units
    slots = []
    for attr, key, hint in (("kernel", "weight_ih_l0", (4 * units, None)),
                            ("recurrent_kernel", "weight_hh_l0", (4 * units, units))):
        ref = VariableRef(cell, attr)
        var = ref.resolve()
        slots.append(ParamSlot(role="weight", key=key,
                               native_name=var.path if var is not None else ref.label(),
                               ref=ref, layout=DENSE_IN_OUT, trainable=True,
                               ident=id(var) if var is not None else ("unbuilt", id(cell), attr),
                               shape_hint=hint))
    if cell.use_bias:
        bias = VariableRef(cell, "bias")
        var = bias.resolve()
        for which, key in enumerate(("bias_ih_l0", "bias_hh_l0")):
            slots.append(ParamSlot(
                role="bias", key=key, native_name=f"{bias.label() if var is None else var.path}[{key}]",
                ref=SumShare(bias, owner=cell, key="bias", which=which), layout=SAME,
                trainable=True, ident=(key, id(var) if var is not None else id(cell)),
                shape_hint=(4 * units,)))
    return slots


def _unbuilt_slots(layer) -> list:
    """Slots of a layer whose variables do not exist yet, from its config:
    (attr, key, role, layout, canonical shape hint, trainable).  Only the
    layers whose build we know; an unknown unbuilt layer shows no slots yet."""
    if isinstance(layer, keras.layers.EinsumDense):
        return []    # its kernel's shape comes from the input
    if isinstance(layer, keras.layers.Dense):
        out = [("_kernel", "weight", "weight", DENSE_IN_OUT, (layer.units, None), True)]
        if layer.use_bias:
            out.append(("bias", "bias", "bias", SAME, (layer.units,), True))
        return out
    if isinstance(layer, CONV + CONV_T):
        k = tuple(layer.kernel_size)
        if isinstance(layer, CONV):  # Conv stores _kernel (LoRA-aware property)
            out = [("_kernel", "weight", "weight", CHANNELS_LAST_KERNEL, (layer.filters, None) + k, True)]
        else:                         # ConvTranspose stores kernel directly
            out = [("kernel", "weight", "weight", CHANNELS_LAST_KERNEL, (None, layer.filters) + k, True)]
        if layer.use_bias:
            out.append(("bias", "bias", "bias", SAME, (layer.filters,), True))
        return out
    if isinstance(layer, keras.layers.BatchNormalization):
        out = []
        if layer.scale:
            out.append(("gamma", "weight", "scale", SAME, (None,), True))
        if layer.center:
            out.append(("beta", "bias", "bias", SAME, (None,), True))
        out += [("moving_mean", "running_mean", "running_mean", SAME, (None,), False),
                ("moving_variance", "running_var", "running_var", SAME, (None,), False)]
        return out
    if isinstance(layer, keras.layers.LayerNormalization):
        axis = layer.axis
        if isinstance(axis, int) or len(axis) == 1:
            out = []
            if layer.scale:
                out.append(("gamma", "weight", "scale", SAME, (None,), True))
            if layer.center:
                out.append(("beta", "bias", "bias", SAME, (None,), True))
            return out
        return []
    if isinstance(layer, keras.layers.Embedding):
        return [("_embeddings", "weight", "embedding", SAME, (layer.input_dim, layer.output_dim), True)]
    return []


def _is_auto_variable_name(name: str) -> bool:
    # add_weight(name=None) gives "variable", "variable_1", ... from a global counter
    return name == "variable" or (name.startswith("variable_") and name[9:].isdigit())


def _own_slots(layer) -> list:
    """The layer's own parameters (not its sub-layers'), in Keras' order."""
    slots, used = [], set()

    def add(key, role, ref, var, layout, declared):
        key = key.replace(".", "_")
        base, n = key, 1
        while key in used:  # two variables with one name: keep both
            key, n = f"{base}_{n}", n + 1
        used.add(key)
        slots.append(ParamSlot(role=role, key=key, native_name=var.path, ref=ref, layout=layout,
                               trainable=bool(var.trainable), ident=id(var), declared=declared))

    attrs = [(a, v) for a, v in vars(layer).items() if isinstance(v, keras.Variable)]
    if not attrs and not layer.built:
        for attr, key, role, layout, hint, trainable in _unbuilt_slots(layer):
            ref = VariableRef(layer, attr)
            used.add(key)
            slots.append(ParamSlot(role=role, key=key, native_name=ref.label(), ref=ref, layout=layout,
                                   trainable=trainable, ident=("unbuilt", id(layer), attr),
                                   shape_hint=hint))
        return slots
    keras_class = _is_keras_class(layer)
    known = _registered_vars(layer, attrs)
    if known is None:
        known = _known_vars(layer, {a.lstrip("_"): tuple(int(d) for d in v.shape) for a, v in attrs}) or {}
    found = set()
    for attr, var in attrs:
        found.add(id(var))
        if attr == "_tied_kernel_t":       # multiparam's Dense, tied transposed
            add("weight", "weight", VariableRef(layer, attr), var, DENSE_IN_OUT, True)
            slots[-1].transposed = bool(layer._tied_canonical_t)
            continue
        k = known.get(attr.lstrip("_"))
        if k is None:
            # the variable's own name; its attribute when Keras named it
            name = attr.lstrip("_") if _is_auto_variable_name(var.name) else var.name
            add(name, name, VariableRef(layer, attr), var, SAME, keras_class)
        else:
            add(k.key, k.role, VariableRef(layer, attr), var, k.layout, k.declared)
    # variables no attribute names (kept in a list or dict by a custom layer)
    for var in list(layer._trainable_variables) + list(layer._non_trainable_variables):
        if id(var) not in found:
            found.add(id(var))
            name = "variable" if _is_auto_variable_name(var.name) else var.name
            add(name, name, VariableRef(layer, None, var), var, SAME, keras_class)
    return slots


# -- children and their keys ----------------------------------------------------------
def _auto_prefix(layer) -> Optional[str]:
    """The prefix Keras names ``layer``'s class from (``dense`` for
    ``Dense``) when the layer's name is one Keras made from it (``dense``,
    ``dense_3``), else None."""
    prefix = to_snake_case(type(layer).__name__)
    name = layer.name
    if name == prefix or (name.startswith(prefix + "_") and name[len(prefix) + 1:].isdigit()):
        return prefix
    return None


def structural_keys(layers) -> list:
    """Keys of sibling layers: a user's name as it is, a Keras auto-name
    renumbered by the layer's rank among its siblings auto-named from the
    same class (``dense``, ``dense_1``, ...), so the keys depend on the
    model's structure, never on how many models the process built before."""
    seen: dict = {}
    keys = []
    for layer in layers:
        prefix = _auto_prefix(layer)
        if prefix is None:
            keys.append(layer.name)
            continue
        n = seen.get(prefix, 0)
        seen[prefix] = n + 1
        keys.append(prefix if n == 0 else f"{prefix}_{n}")
    return keys


def _attr_children(layer) -> list:
    """(key, child) for a subclassed layer: sub-layers in public attributes,
    in definition order; lists/tuples/dicts of layers become
    :class:`LayerContainer` children.
    Tracked sub-layers reachable only through a private attribute (Keras'
    own ``MultiHeadAttention._query_dense``) follow, keyed without the
    underscore, and any left over by their structural key (see
    :func:`structural_keys`), so no parameter is ever missed."""
    if not layer._layers:  # Keras' tracker lists every sub-layer (bare, in lists, dicts) here
        return []
    tracked = {id(l) for l in layer._layers}
    seen, out, keys = set(), [], set()

    def put(key, child):
        if key in keys or "." in key:
            key = key.replace(".", "_")
            while key in keys:
                key += "_"
        keys.add(key)
        out.append((key, child))

    def container(obj):
        items = list(obj.items()) if isinstance(obj, dict) else list(enumerate(obj))
        if items and all(isinstance(v, keras.Layer) for _, v in items):
            return [(str(k), v) for k, v in items]
        return None

    for attr, value in vars(layer).items():
        if attr.startswith("_"):
            continue
        if isinstance(value, keras.Layer):
            seen.add(id(value))
            put(attr, value)
        elif isinstance(value, (list, tuple, dict)):
            items = container(value)
            if items:
                seen.update(id(v) for _, v in items)
                put(attr, LayerContainer("dict" if isinstance(value, dict) else "list", value, items))
    for attr, value in vars(layer).items():
        if (attr.startswith("_") and isinstance(value, keras.Layer)
                and id(value) in tracked and id(value) not in seen):
            seen.add(id(value))
            put(attr.lstrip("_") or attr, value)
    rest = []
    for sub in layer._layers:
        if id(sub) not in seen:
            seen.add(id(sub))
            rest.append(sub)
    for key, sub in zip(structural_keys(rest), rest):
        put(key, sub)
    return out


def _children(layer) -> list:
    """``[(key, child)]`` of a layer, by the rules in the module docstring."""
    if isinstance(layer, NamedSequential):
        return layer.named_layers()
    if isinstance(layer, keras.Sequential):
        # a reused layer is listed twice: both keys, same variables
        return [(str(i), l) for i, l in enumerate(layer.layers)]
    if isinstance(layer, Functional):
        layers = [l for l in layer.layers if not isinstance(l, keras.layers.InputLayer)]
        return list(zip(structural_keys(layers), layers))
    return _attr_children(layer)


def node(key: str, layer) -> LayerNode:
    """The node of ``layer`` (or of a :class:`LayerContainer`) under
    ``key``, with its own slots and, recursively, its children.  Reads
    attributes only: never builds or calls a layer."""
    if isinstance(layer, LayerContainer):
        return LayerNode(key=key, kind=layer.kind, native=layer.native,
                         children=[node(k, v) for k, v in layer.items])
    if isinstance(layer, keras.layers.LSTM):
        # the cell's arrays, in torch's names and layout; the cell is not a child
        return LayerNode(key=key, kind="LSTM", native=layer, params=_lstm_slots(layer))
    out = LayerNode(key=key, kind=_kind(layer), native=layer, params=_own_slots(layer))
    out.children = [node(k, v) for k, v in _children(layer)]
    return out


def is_materialized(root: LayerNode) -> bool:
    """False while a known slot has no variable, or a parameter-holding
    leaf layer (one with its own ``build``) is still unbuilt."""
    for slot in root.params:
        if any(ref.resolve() is None for ref in variable_refs(slot.ref)):
            return False
    layer = root.native
    if (isinstance(layer, keras.Layer) and not root.children and not layer.built
            and not getattr(type(layer).build, "_is_default", False)):
        return False
    return all(is_materialized(c) for c in root.children)
