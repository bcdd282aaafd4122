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
from operator import is_
from typing import Any, Optional

import keras
from keras.src.models.functional import Functional  # no public alias in Keras 3.15
from keras.src.utils.naming import to_snake_case    # how Keras derives auto-names

from ... import layer_registry
from ..base import (CHANNELS_LAST_KERNEL, DENSE_IN_OUT, SAME, Composite, Deferred, LayerNode, ParamSlot,
                    SumShare, flattened)
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
    if isinstance(layer, keras.layers.Activation):
        return "ReLU" if _is_relu(layer) else type(layer).__name__
    return _class_kind(type(layer))


@layer_registry.per_class
def _class_kind(cls: type) -> str:
    """:func:`_kind` of a layer whose kind its class tells (any but an
    ``Activation``, whose function decides)."""
    if issubclass(cls, (keras.Sequential, NamedSequential)):
        return "Sequential"
    if issubclass(cls, keras.layers.ReLU):
        return "ReLU"
    for base, kind in _NEUTRAL_KINDS:
        if issubclass(cls, base) and not issubclass(cls, keras.layers.Conv2DTranspose):
            return kind
    return cls.__name__


@layer_registry.per_class
def _is_keras_class(cls: type) -> bool:
    """A layer class Keras ships (or multiparam's own Keras layers)."""
    module = cls.__module__
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


#: layers whose variables' layouts depend on their shapes (they regroup axes)
_SHAPED = (keras.layers.EinsumDense,) + DEPTHWISE + SEPARABLE


def _known_vars(layer, attrs: list) -> Optional[dict]:
    """``{Keras attribute without its underscore: Known}`` for the Keras
    layers multiparam knows, else None, given the layer's ``[(attribute,
    Variable)]``: by class (memoised) unless the layouts depend on the
    variables' shapes (layouts that regroup axes carry them)."""
    cls = type(layer)
    if not issubclass(cls, _SHAPED):
        return _class_known_vars(cls)
    return _shaped_known_vars(cls, layer, {a.lstrip("_"): tuple(int(d) for d in v.shape) for a, v in attrs})


@layer_registry.per_class
def _class_known_vars(cls: type) -> Optional[dict]:
    """:func:`_known_vars` of a layer class whose layouts its class tells."""
    return _shaped_known_vars(cls, None, {})


def _shaped_known_vars(cls: type, layer, shapes: dict) -> Optional[dict]:
    """:func:`_known_vars` of a layer of class ``cls`` given its built
    variables' shapes (``layer`` is needed only for the classes in
    ``_SHAPED``)."""
    if issubclass(cls, keras.layers.EinsumDense):
        return _einsum_vars(layer, shapes)
    if issubclass(cls, keras.layers.Dense):
        return _DENSE
    if issubclass(cls, CONV + CONV_T):
        return _CONV_VARS
    if issubclass(cls, DEPTHWISE):
        # torch's Conv2d(in, in * multiplier, groups=in)
        shape = shapes.get("kernel")
        return {"kernel": Known("weight", "weight", SAME if shape is None else depthwise(shape)),
                "bias": _BIAS}
    if issubclass(cls, SEPARABLE):
        # a depthwise conv, then a 1x1 conv: torch has no one module for it
        shape = shapes.get("depthwise_kernel")
        return {"depthwise_kernel": Known("depthwise_weight", "weight",
                                          SAME if shape is None else depthwise(shape)),
                "pointwise_kernel": Known("pointwise_weight", "weight", CHANNELS_LAST_KERNEL),
                "bias": _BIAS}
    if issubclass(cls, keras.layers.BatchNormalization):
        return _BATCH_NORM
    if issubclass(cls, NORM):
        return _NORM_VARS
    if issubclass(cls, keras.layers.RMSNormalization):
        return {"scale": Known("weight", "scale")}
    if issubclass(cls, keras.layers.Embedding):
        return {"embeddings": Known("weight", "embedding")}
    if issubclass(cls, keras.layers.Normalization):
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
def _lstm_slots(layer, pending: Optional[Deferred] = None) -> list:
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
                               shape_hint=hint, pending=pending))
    if cell.use_bias:
        bias = VariableRef(cell, "bias")
        var = bias.resolve()
        for which, key in enumerate(("bias_ih_l0", "bias_hh_l0")):
            slots.append(ParamSlot(
                role="bias", key=key, native_name=f"{bias.label() if var is None else var.path}[{key}]",
                ref=SumShare(bias, owner=cell, key="bias", which=which), layout=SAME,
                trainable=True, ident=(key, id(var) if var is not None else id(cell)),
                shape_hint=(4 * units,), pending=pending))
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


#: layer class -> the sets of attributes that held its instances' Variables,
#: each in its instance dict's order (see :func:`_variable_attrs`)
_VARIABLE_ATTRS: dict = {}


def _variable_attrs(layer) -> tuple:
    """``([(attribute, Variable)], [Variable no attribute holds])`` of a
    layer: its instance dict's Variables in its order, then the Variables
    Keras tracks for it that no attribute names (kept in a list or dict by
    a custom layer).

    A Keras layer tracks every Variable assigned to one of its attributes
    (``_trainable_variables``, ``_non_trainable_variables``: what its own
    ``weights`` lists), so the attribute sets other instances of its class
    had are tried first (in their dict order): one that holds exactly the
    tracked Variables is the answer.  Only otherwise is the whole instance
    dict (some 60 attributes for a Dense) searched, and the class learns
    the new set."""
    d = vars(layer)
    tracked = layer._trainable_variables + layer._non_trainable_variables
    seen = _VARIABLE_ATTRS.get(type(layer))
    if seen is not None:
        n = len(tracked)
        for names in seen:
            if len(names) != n:
                continue
            found = [d.get(a) for a in names]
            if all(map(is_, found, tracked)):   # the usual case: the tracked Variables, in attribute order
                return list(zip(names, found)), ()
            attrs = [(a, v) for a, v in zip(names, found) if isinstance(v, keras.Variable)]
            if len(attrs) != n:
                continue
            if all(v is t for (_, v), t in zip(attrs, tracked)):
                return attrs, ()      # the usual case: the tracked Variables, in attribute order
            ids = {id(v) for _, v in attrs}
            if all(id(v) in ids for v in tracked):
                return attrs, ()
    attrs = [(a, v) for a, v in d.items() if isinstance(v, keras.Variable)]
    names = tuple(a for a, _ in attrs)
    _VARIABLE_ATTRS[type(layer)] = [names] + [other for other in seen or () if other != names][:3]
    found, rest = {id(v) for _, v in attrs}, []
    for v in tracked:
        if id(v) not in found:
            found.add(id(v))
            rest.append(v)
    return attrs, rest


#: :func:`_class_plan` of a class whose variables' kinds depend on the instance
_PER_INSTANCE = object()
_CLASS_CACHE = layer_registry.CLASS_CACHE


@layer_registry.per_class
def _class_plan(cls: type) -> Any:
    """The ``{attribute: Known}`` every layer of class ``cls`` has, or
    ``_PER_INSTANCE`` when a registration (looked up by variable name too)
    or the variables' shapes decide."""
    if issubclass(cls, _SHAPED) or layer_registry.lookup(cls) is not None:
        return _PER_INSTANCE
    return _class_known_vars(cls) or {}


def _unique_key(key: str, used: set) -> str:
    """``key`` as a canonical name part (no dots), made unique among ``used``
    (two variables with one name: keep both), and added to it."""
    key = key.replace(".", "_")
    base, n = key, 1
    while key in used:
        key, n = f"{base}_{n}", n + 1
    used.add(key)
    return key


def _attr_plan(cls: type, known: dict, attrs: list) -> Optional[tuple]:
    """``((key, role, layout, declared), ...)`` for a layer of class ``cls``
    whose variables sit in the attributes of ``attrs``, when its class
    knows every one of them (what :func:`_own_slots` works out per
    variable, keys made unique); None otherwise.  Memoised per class and
    attribute names."""
    names = tuple([a for a, _ in attrs])
    memo = (_attr_plan, cls, names)
    plan = _CLASS_CACHE.get(memo, False)
    if plan is not False:
        return plan
    plan, used = [], set()
    for attr in names:
        k = known.get(attr.lstrip("_"))
        if k is None or attr == "_tied_kernel_t":
            plan = None
            break
        key = k.key
        if key in used or "." in key:
            key = _unique_key(key, used)
        else:
            used.add(key)
        plan.append((key, k.role, k.layout, k.declared))
    plan = _CLASS_CACHE[memo] = None if plan is None else tuple(plan)
    return plan


def _own_slots(layer, pending: Optional[Deferred] = None, unbuilt: Optional[list] = None) -> list:
    """The layer's own parameters (not its sub-layers'), in Keras' order.
    ``pending``: the description's deferred feature orders (given to every
    slot); ``unbuilt`` collects the layer when its variables do not exist
    yet."""
    fast = _CLASS_CACHE.get((_own_slots, type(layer)))
    if fast is not None:
        # the usual case, checked in one pass: the attributes this class's
        # instances used hold exactly the Variables Keras tracks, in order,
        # and the class knows each one's record (a plan memoised below)
        names, plan = fast
        tracked = layer._trainable_variables + layer._non_trainable_variables
        if len(tracked) == len(names) and all(map(is_, map(vars(layer).get, names), tracked)):
            return [ParamSlot(role, var.path, VariableRef(layer, attr), layout, bool(var.trainable), id(var),
                              None, False, key, declared, None, pending)
                    for attr, var, (key, role, layout, declared) in zip(names, tracked, plan)]
    slots, used = [], set()
    attrs, rest = _variable_attrs(layer)
    if not attrs and not layer.built:
        for attr, key, role, layout, hint, trainable in _unbuilt_slots(layer):
            ref = VariableRef(layer, attr)
            used.add(key)
            slots.append(ParamSlot(role=role, key=key, native_name=ref.label(), ref=ref, layout=layout,
                                   trainable=trainable, ident=("unbuilt", id(layer), attr),
                                   shape_hint=hint, pending=pending))
        if slots and unbuilt is not None:
            unbuilt.append(layer)
        return slots
    cls = type(layer)
    known = _CLASS_CACHE.get((_class_plan, cls))
    if known is None:
        known = _class_plan(cls)
    if known is not _PER_INSTANCE and not rest:
        plan = _attr_plan(cls, known, attrs)
        if plan is not None:    # every variable known from its class: one record each
            if plan:            # the next layer of this class tries this plan first
                _CLASS_CACHE[(_own_slots, cls)] = (tuple([a for a, _ in attrs]), plan)
            for (attr, var), (key, role, layout, declared) in zip(attrs, plan):
                slots.append(ParamSlot(role, var.path, VariableRef(layer, attr), layout, bool(var.trainable),
                                       id(var), None, False, key, declared, None, pending))
            return slots
    if known is _PER_INSTANCE:
        known = _registered_vars(layer, attrs)
        if known is None:
            known = _known_vars(layer, attrs) or {}
    keras_class = None
    for attr, var in attrs:
        transposed = False
        if attr == "_tied_kernel_t":       # multiparam's Dense, tied transposed
            key, role, layout, declared = "weight", "weight", DENSE_IN_OUT, True
            transposed = bool(layer._tied_canonical_t)
        else:
            k = known.get(attr.lstrip("_"))
            if k is None:
                # the variable's own name; its attribute when Keras named it
                key = role = attr.lstrip("_") if _is_auto_variable_name(var.name) else var.name
                layout = SAME
                if keras_class is None:
                    keras_class = _is_keras_class(type(layer))
                declared = keras_class
            else:
                key, role, layout, declared = k.key, k.role, k.layout, k.declared
        if key in used or "." in key:
            key = _unique_key(key, used)
        else:
            used.add(key)
        slots.append(ParamSlot(role, var.path, VariableRef(layer, attr), layout, bool(var.trainable), id(var),
                               None, transposed, key, declared, None, pending))
    # variables no attribute names (kept in a list or dict by a custom layer)
    for var in rest:
        key = role = "variable" if _is_auto_variable_name(var.name) else var.name
        key = _unique_key(key, used)
        if keras_class is None:
            keras_class = _is_keras_class(type(layer))
        slots.append(ParamSlot(role, var.path, VariableRef(layer, None, var), SAME, bool(var.trainable),
                               id(var), None, False, key, keras_class, None, pending))
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


def describe(model, pending: Optional[Deferred] = None) -> LayerNode:
    """The tree of ``model`` (see :func:`node`), its root saying whether
    every variable exists (``LayerNode.materialized``, found on the walk)."""
    unbuilt: list = []
    root = node("", model, pending, unbuilt)
    root.materialized = not unbuilt
    return root


def node(key: str, layer, pending: Optional[Deferred] = None, unbuilt: Optional[list] = None) -> LayerNode:
    """The node of ``layer`` (or of a :class:`LayerContainer`) under
    ``key``, with its own slots and, recursively, its children.  Reads
    attributes only: never builds or calls a layer.  ``pending`` is given
    to every slot (the description's deferred feature orders);
    ``unbuilt`` collects what :func:`is_materialized` would find unbuilt."""
    if isinstance(layer, LayerContainer):
        return LayerNode(key, layer.kind, layer.native, None,
                         [node(k, v, pending, unbuilt) for k, v in layer.items])
    if isinstance(layer, keras.layers.LSTM):
        # the cell's arrays, in torch's names and layout; the cell is not a child
        out = LayerNode(key, "LSTM", layer, _lstm_slots(layer, pending))
        if unbuilt is not None and not is_materialized(out):
            unbuilt.append(layer)
        return out
    out = LayerNode(key, _kind(layer), layer, _own_slots(layer, pending, unbuilt))
    children = _children(layer)
    if children:
        out.children = [node(k, v, pending, unbuilt) for k, v in children]
    elif unbuilt is not None and not layer.built and not getattr(type(layer).build, "_is_default", False):
        unbuilt.append(layer)
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
