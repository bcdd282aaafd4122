"""The TensorFlow / Keras 3 adapter: the layer tree, the primitives on one
``keras.Variable``, ``GradientTape``, ties and ``keras.random`` draws.

Keras keeps parameters inside the layers, as ``keras.Variable`` objects held
in layer attributes (``Dense._kernel``, ``Dense.bias``, ...), so the state is
the model itself.  The layer tree mirrors Keras' own idioms:

* ``keras.Sequential``: children are ``model.layers`` keyed by position, as
  ``net.layers[i]`` indexes them (Keras 3 keeps a reused layer twice there);
* functional models: ``model.layers`` without the ``InputLayer``, keyed by
  ``layer.name``;
* subclassed models and layers: the sub-layers held in public attributes, in
  definition order (a list attribute ``blocks`` becomes a ``list`` node with
  children ``"0"``, ``"1"``, ..., so names read ``blocks.0.weight`` as with
  torch's ``ModuleList``).

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
import numpy as np
import tensorflow as tf
from keras.src.models.functional import Functional  # no public alias in Keras 3.15

from ... import initializers as I
from ... import layout as _layout
from ...errors import CapabilityError, NotMaterializedError
from ..base import (CHANNELS_LAST_KERNEL, DENSE_IN_OUT, SAME, Adapter, Composite, LayerNode,
                    ParamSlot, SumShare)
from .builders import BUILDERS
from .layers import Dense, NamedSequential

_CONV = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_CONV_T = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
           keras.layers.Conv3DTranspose)
_NORM = (keras.layers.LayerNormalization, keras.layers.GroupNormalization)


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
def _variable_refs(ref) -> tuple:
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


# -- slots -----------------------------------------------------------------------
def _lstm_slots(layer) -> list:
    """Canonical (torch) slots of a ``keras.layers.LSTM``: its cell's
    ``kernel (in, 4H)`` and ``recurrent_kernel (H, 4H)`` are torch's
    ``weight_ih``/``weight_hh`` transposed (Keras' gate order i, f, c, o is
    torch's i, f, g, o), and its one ``bias`` is the sum of torch's
    ``bias_ih`` and ``bias_hh`` (both are added to the same
    pre-activations): two :class:`SumShare` slots, the shares kept on the
    cell.  Keras' own ``weights`` and saving see the one summed bias."""
    cell, units = layer.cell, layer.cell.units
    slots = []
    for attr, role, hint in (("kernel", "weight_ih", (4 * units, None)),
                             ("recurrent_kernel", "weight_hh", (4 * units, units))):
        ref = VariableRef(cell, attr)
        var = ref.resolve()
        slots.append(ParamSlot(role=role, native_name=var.path if var is not None else ref.label(),
                               ref=ref, layout=DENSE_IN_OUT, trainable=True,
                               ident=id(var) if var is not None else ("unbuilt", id(cell), attr),
                               shape_hint=hint))
    if cell.use_bias:
        bias = VariableRef(cell, "bias")
        var = bias.resolve()
        for which, role in enumerate(("bias_ih", "bias_hh")):
            slots.append(ParamSlot(
                role=role, native_name=f"{bias.label() if var is None else var.path}[{role}]",
                ref=SumShare(bias, owner=cell, key="bias", which=which), layout=SAME,
                trainable=True, ident=(role, id(var) if var is not None else id(cell)),
                shape_hint=(4 * units,)))
    return slots


def _flatten_input(layer) -> Optional[tuple]:
    """The per-sample input shape a built channels-last ``Flatten`` saw."""
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return None
    shapes = getattr(layer, "_build_shapes_dict", None) or {}
    shape = next(iter(shapes.values()), None)
    return None if shape is None else tuple(shape)[1:]


def _mark_dense_after_flatten(children: list) -> None:
    """Give the weight of the first Dense after each Flatten of a
    channels-last feature map the row permutation to torch's (C, H, W)
    order.  Parameterless layers in between (ReLU, Dropout) are skipped; a
    layer with parameters ends the search."""
    for i, node in enumerate(children):
        if node.kind != "Flatten":
            continue
        fmap = _flatten_input(node.native)
        for nxt in children[i + 1:]:
            if nxt.kind == "Dense":
                for slot in nxt.params:
                    if slot.role == "weight" and slot.layout == DENSE_IN_OUT:
                        var = slot.ref.resolve() if isinstance(slot.ref, VariableRef) else None
                        n_in = None if var is None else int(var.shape[0])
                        slot.layout = _layout.dense_layout_after_flatten(fmap, n_in)
                break
            if nxt.params or nxt.children:
                break


def _known_role(layer, attr: str):
    """(role, layout) for the recognised layers' variables, else None."""
    a = attr.lstrip("_")
    if isinstance(layer, keras.layers.Dense):
        return {"kernel": ("weight", DENSE_IN_OUT), "bias": ("bias", SAME)}.get(a)
    if isinstance(layer, _CONV + _CONV_T):
        # Keras (*k, in, out) and transposed (*k, out, in) both map to torch's
        # (out, in, *k) / (in, out, *k) by the same axis move
        return {"kernel": ("weight", CHANNELS_LAST_KERNEL), "bias": ("bias", SAME)}.get(a)
    if isinstance(layer, keras.layers.BatchNormalization):
        return {"gamma": ("scale", SAME), "beta": ("bias", SAME),
                "moving_mean": ("running_mean", SAME),
                "moving_variance": ("running_var", SAME)}.get(a)
    if isinstance(layer, _NORM):
        return {"gamma": ("scale", SAME), "beta": ("bias", SAME)}.get(a)
    if isinstance(layer, keras.layers.Embedding):
        return {"embeddings": ("embedding", SAME)}.get(a)
    return None


def _unbuilt_slots(layer) -> list:
    """Slots of a layer whose variables do not exist yet, from its config:
    (attr, role, layout, canonical shape hint, trainable).  Only the layers
    whose build we know; an unknown unbuilt layer shows no slots yet."""
    if isinstance(layer, keras.layers.Dense):
        out = [("_kernel", "weight", DENSE_IN_OUT, (layer.units, None), True)]
        if layer.use_bias:
            out.append(("bias", "bias", SAME, (layer.units,), True))
        return out
    if isinstance(layer, _CONV + _CONV_T):
        k = tuple(layer.kernel_size)
        if isinstance(layer, _CONV):  # Conv stores _kernel (LoRA-aware property)
            out = [("_kernel", "weight", CHANNELS_LAST_KERNEL, (layer.filters, None) + k, True)]
        else:                         # ConvTranspose stores kernel directly
            out = [("kernel", "weight", CHANNELS_LAST_KERNEL, (None, layer.filters) + k, True)]
        if layer.use_bias:
            out.append(("bias", "bias", SAME, (layer.filters,), True))
        return out
    if isinstance(layer, keras.layers.BatchNormalization):
        out = []
        if layer.scale:
            out.append(("gamma", "scale", SAME, (None,), True))
        if layer.center:
            out.append(("beta", "bias", SAME, (None,), True))
        out += [("moving_mean", "running_mean", SAME, (None,), False),
                ("moving_variance", "running_var", SAME, (None,), False)]
        return out
    if isinstance(layer, keras.layers.LayerNormalization):
        axis = layer.axis
        if isinstance(axis, int) or len(axis) == 1:
            out = []
            if layer.scale:
                out.append(("gamma", "scale", SAME, (None,), True))
            if layer.center:
                out.append(("beta", "bias", SAME, (None,), True))
            return out
        return []
    if isinstance(layer, keras.layers.Embedding):
        return [("_embeddings", "embedding", SAME, (layer.input_dim, layer.output_dim), True)]
    return []


def _is_auto_name(name: str) -> bool:
    # add_weight(name=None) gives "variable", "variable_1", ...
    return name == "variable" or (name.startswith("variable_") and name[9:].isdigit())


def _own_slots(layer) -> list:
    """The layer's own parameters (not its sub-layers'), in Keras' order."""
    slots, used = [], set()

    def add(role, ref, var, layout):
        role = role.replace(".", "_")
        base, n = role, 1
        while role in used:  # two variables with one name: keep both
            role, n = f"{base}_{n}", n + 1
        used.add(role)
        slots.append(ParamSlot(role=role, native_name=var.path, ref=ref, layout=layout,
                               trainable=bool(var.trainable), ident=id(var)))

    found = set()
    attrs = [(a, v) for a, v in vars(layer).items() if isinstance(v, keras.Variable)]
    if not attrs and not layer.built:
        for attr, role, layout, hint, trainable in _unbuilt_slots(layer):
            ref = VariableRef(layer, attr)
            used.add(role)
            slots.append(ParamSlot(role=role, native_name=ref.label(), ref=ref, layout=layout,
                                   trainable=trainable, ident=("unbuilt", id(layer), attr),
                                   shape_hint=hint))
        return slots
    for attr, var in attrs:
        if attr == "_tied_kernel_t":       # multiparam's Dense, tied transposed
            found.add(id(var))
            add("weight", VariableRef(layer, attr), var, DENSE_IN_OUT)
            slots[-1].transposed = bool(layer._tied_canonical_t)
            continue
        known = _known_role(layer, attr)
        if known:
            role, layout = known
        else:
            # the variable's own name; its attribute when Keras named it
            role, layout = (attr.lstrip("_") if _is_auto_name(var.name) else var.name), SAME
        found.add(id(var))
        add(role, VariableRef(layer, attr), var, layout)
    # variables no attribute names (kept in a list or dict by a custom layer)
    for var in list(layer._trainable_variables) + list(layer._non_trainable_variables):
        if id(var) not in found:
            found.add(id(var))
            add(var.name, VariableRef(layer, None, var), var, SAME)
    return slots


def _attr_children(layer) -> list:
    """(key, child) for a subclassed layer: sub-layers in public attributes,
    in definition order; lists/tuples/dicts of layers become
    :class:`LayerContainer` children.
    Tracked sub-layers reachable only through a private attribute (Keras'
    own ``MultiHeadAttention._query_dense``) follow, keyed without the
    underscore, and any left over by their Keras name, so no parameter is
    ever missed."""
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
    for sub in layer._layers:
        if id(sub) not in seen:
            seen.add(id(sub))
            put(sub.name, sub)
    return out


class TensorflowAdapter(Adapter):
    """Keras 3 on TensorFlow: layers, ``weights`` with ``.path``,
    ``GradientTape``.  State is the model itself."""

    name = "tensorflow"
    # transposed ties: supported for the Dense layers multiparam builds (its
    # Dense subclass); ``tie`` raises CapabilityError for a plain keras Dense
    capabilities: dict = {}
    channels_last = True    # Keras' default data_format: NHWC images
    builders = BUILDERS

    # -- recognising and preparing models ---------------------------------
    def is_model(self, obj: Any) -> bool:
        """Any ``keras.Layer`` (a ``Model`` is a ``Layer``)."""
        return isinstance(obj, keras.Layer)

    def prepare(self, native: Any, sample_input: Any = None, **options) -> Any:
        """The model itself; one forward on ``sample_input`` builds it."""
        if sample_input is not None:
            self.forward(native, sample_input)
        return native

    # -- description -----------------------------------------------------------
    def describe(self, state: Any) -> LayerNode:
        """The layer tree; reads attributes only, never builds or calls."""
        return self._node("", state)

    def _node(self, key: str, layer) -> LayerNode:
        """The node of ``layer`` (or of a :class:`LayerContainer`) under
        ``key``, with its own slots and, recursively, its children."""
        if isinstance(layer, LayerContainer):
            return LayerNode(key=key, kind=layer.kind, native=layer.native,
                             children=[self._node(k, v) for k, v in layer.items])
        if isinstance(layer, keras.layers.LSTM):
            # the cell's arrays, in torch's names and layout; the cell is not a child
            return LayerNode(key=key, kind="LSTM", native=layer, params=_lstm_slots(layer))
        node = LayerNode(key=key, kind=_kind(layer), native=layer, params=_own_slots(layer))
        if isinstance(layer, NamedSequential):
            pairs = layer.named_layers()
        elif isinstance(layer, keras.Sequential):
            # a reused layer is listed twice: both keys, same variables
            pairs = [(str(i), l) for i, l in enumerate(layer.layers)]
        elif isinstance(layer, Functional):
            pairs = [(l.name, l) for l in layer.layers
                     if not isinstance(l, keras.layers.InputLayer)]
        else:
            pairs = _attr_children(layer)
        node.children = [self._node(k, v) for k, v in pairs]
        _mark_dense_after_flatten(node.children)
        return node

    def is_materialized(self, state: Any, root: Optional[LayerNode] = None) -> bool:
        """False while a known slot has no variable, or a parameter-holding
        leaf layer (one with its own ``build``) is still unbuilt."""
        def walk(node):
            for slot in node.params:
                if any(ref.resolve() is None for ref in _variable_refs(slot.ref)):
                    return False
            layer = node.native
            if (isinstance(layer, keras.Layer) and not node.children and not layer.built
                    and not getattr(type(layer).build, "_is_default", False)):
                return False
            return all(walk(c) for c in node.children)

        return walk(self.describe(state) if root is None else root)

    def is_materialized_tree(self, state: Any, root: LayerNode) -> bool:
        return self.is_materialized(state, root)

    # -- forward -----------------------------------------------------------
    def _to_tensor(self, x):
        """An input as Keras takes it: arrays and numbers as float tensors."""
        if isinstance(x, (tf.Tensor, tf.Variable, keras.Variable)):
            return x
        if isinstance(x, (np.ndarray, list, float, int, np.generic)):
            arr = np.asarray(x)
            if not np.issubdtype(arr.dtype, np.floating):
                arr = arr.astype(np.float32)  # Embedding casts ids back to int32 itself
            return tf.convert_to_tensor(arr)
        return x  # dicts of inputs and other structures go to Keras as they are

    def forward(self, state: Any, x: Any, train: Optional[bool] = None) -> Any:
        """``model(x)`` (``model(x, training=train)`` when ``train`` is given);
        NumPy input becomes a tensor (float32 unless already float)."""
        if train is None:
            return state(self._to_tensor(x))
        return state(self._to_tensor(x), training=bool(train))

    def to_numpy(self, array: Any) -> np.ndarray:
        if isinstance(array, np.ndarray):
            return array
        if isinstance(array, keras.Variable):
            return array.numpy()
        if isinstance(array, tf.IndexedSlices):
            array = tf.convert_to_tensor(array)
        if hasattr(array, "numpy"):
            return np.asarray(array.numpy())
        return np.asarray(array)

    # -- storage primitives (one Variable each) -----------------------------
    @staticmethod
    def _var(ref: VariableRef):
        """The Variable ``ref`` locates; NotMaterializedError while unbuilt."""
        v = ref.resolve()
        if v is None:
            raise NotMaterializedError(ref.label(), ())
        return v

    def read_array(self, state, ref) -> np.ndarray:
        """``variable.numpy()``: a copy (TF variables are not viewable)."""
        return self._var(ref).numpy()

    def write_array(self, state, ref, value) -> None:
        """``variable.assign`` (NumPy or a tensor): the same Variable object,
        seen by every layer holding it; ``assign`` copies, so a borrowed
        array is never kept."""
        self._var(ref).assign(value)

    def array_shape(self, state, ref) -> Optional[tuple]:
        v = ref.resolve()
        return None if v is None else tuple(int(d) for d in v.shape)

    def array_dtype(self, state, ref) -> Optional[np.dtype]:
        v = ref.resolve()
        return None if v is None else np.dtype(tf.as_dtype(v.dtype).as_numpy_dtype)

    def array_object(self, state, ref) -> Any:
        return self._var(ref)

    # array_grad: the base's None; Keras keeps no gradient on its variables

    def grad_key(self, state, ref):
        return id(self._var(ref))

    # -- gradients -------------------------------------------------------------
    def native_grads(self, state: Any, x: Any, loss: Any = None, target: Any = None,
                     train: bool = False) -> dict:
        """``tf.GradientTape`` over ``model.trainable_variables``, calling
        ``model(x, training=train)``; non-trainable variables (BatchNorm
        moving statistics) are restored afterwards.

        Keras de-duplicates a reused layer's variables, so the tape already
        sums the contributions of every use.  Unused variables get zeros;
        embedding gradients (``IndexedSlices``) come back dense."""
        xt = self._to_tensor(x)
        saved = [(v, v.numpy()) for v in state.non_trainable_variables]
        with tf.GradientTape() as tape:
            # builds the model on a first call; the tape sees the new variables
            out = state(xt, training=bool(train))
            value = tf.convert_to_tensor(self.loss_value(out, loss, target))
        for v, old in saved:
            v.assign(old)
        variables = state.trainable_variables
        grads = tape.gradient(value, variables,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return {id(v): self.to_numpy(g) for v, g in zip(variables, grads)}

    def reduce_sum(self, out):
        return tf.add_n([tf.reduce_sum(o) for o in tf.nest.flatten(out)])

    def reduce_mean(self, out):
        return tf.reduce_mean(out)

    def as_target(self, target, out):
        return tf.cast(self._to_tensor(target), out.dtype)

    # -- tying after construction --------------------------------------------
    def tie(self, state: Any, dst: ParamSlot, dst_layer: Any, src: ParamSlot,
            native_transpose: bool) -> None:
        """Keras 3: with the dst layer's tracker unlocked, point its attribute
        (``_kernel``, ``bias``) at the src Variable and untrack the old one,
        then lock again.  ``trainable_variables`` (de-duplicated by Keras),
        ``GradientTape`` and any optimizer then see one Variable.  Leans on
        Keras' private ``_tracker`` (pinned keras==3.15.1; the conformance
        suite catches a Keras that changes it)."""
        if isinstance(dst.ref, Composite) or isinstance(src.ref, Composite):
            raise CapabilityError(self.name, f"tie {dst.native_name}",
                                  "Keras keeps an LSTM's two biases as one summed Variable")
        if native_transpose:
            self._tie_transposed(dst, src)
            return
        ref = dst.ref
        if ref.attr is None:
            raise CapabilityError(self.name, f"tie {dst.native_name}",
                                  "no layer attribute holds that variable")
        layer, shared = ref.layer, self._var(src.ref)
        old = vars(layer).get(ref.attr)
        layer._tracker.unlock()
        try:
            setattr(layer, ref.attr, shared)   # the tracker records the shared Variable
            if old is not None and old is not shared:
                layer._tracker.untrack(old)
        finally:
            layer._tracker.lock()

    def _tie_transposed(self, dst: ParamSlot, src: ParamSlot) -> None:
        """A kernel that is another Variable transposed: only multiparam's
        :class:`Dense` can read one (``kernel`` returns ``transpose(var)``);
        its own kernel Variable is untracked, so Keras lists one Variable."""
        ref = dst.ref
        if not (isinstance(ref.layer, Dense) and ref.attr == "_kernel"):
            raise CapabilityError(
                self.name, "tie a parameter to a transposed one",
                "a keras.layers.Dense reads its own kernel Variable, which cannot be the "
                "transpose of another; build the layer with mp.nn (multiparam's Dense can)")
        layer, shared = ref.layer, self._var(src.ref)
        old = vars(layer).get("_kernel")
        layer._tracker.unlock()
        try:
            layer._tied_kernel_t = shared            # tracked: the shared Variable
            if old is not None:
                layer._tracker.untrack(old)
            layer._kernel = None
        finally:
            layer._tracker.lock()
        # canonical relation: a layout change (embedding (V, D) vs kernel
        # (D, V)) already accounts for one transpose
        object.__setattr__(layer, "_tied_canonical_t",
                           not _layout.transposes_natively(src.layout, dst.layout))

    # -- the framework's own views ------------------------------------------------------------
    def summary_idiom(self, state: Any) -> list:
        """``[(v.path, shape) for v in model.weights]``: Keras' collect-all,
        a tied variable listed once."""
        return [(v.path, tuple(int(d) for d in v.shape)) for v in state.weights]

    def native_count(self, state: Any) -> int:
        """Trainable scalars the Keras way: the sizes of
        ``model.trainable_weights`` (which Keras de-duplicates), the
        "Trainable params" line of ``model.summary()``."""
        return int(sum(int(np.prod(v.shape)) for v in state.trainable_weights))

    # -- initialisation (native mode) --
    def draw(self, kind: str, shape: tuple, dtype: np.dtype, seed: int, **params):
        """``keras.random`` (or ``keras.initializers.Orthogonal``) seeded with
        the int ``seed``.  Keras' truncated normal always cuts at 2 std, so
        other bounds return None and the base draws them portably."""
        dtype = np.dtype(dtype).name
        if kind == "uniform":
            return keras.random.uniform(shape, params["low"], params["high"], dtype=dtype, seed=seed)
        if kind == "normal":
            return keras.random.normal(shape, params["mean"], params["std"], dtype=dtype, seed=seed)
        if kind == "truncated_normal":
            mean, std = params["mean"], params["std"]
            if not (np.isclose(params["a"], mean - 2 * std) and np.isclose(params["b"], mean + 2 * std)):
                return None
            return keras.random.truncated_normal(shape, mean, std, dtype=dtype, seed=seed)
        if kind == "orthogonal":
            return keras.initializers.Orthogonal(gain=params["gain"], seed=seed)(shape, dtype=dtype)
        return None

    def framework_default(self, state: Any, layer_node: Any, slot: Any):
        """The layer classes' constructor defaults in Keras 3.15: Dense and
        Conv glorot_uniform kernel, zeros bias; BatchNormalization gamma
        ones, beta zeros, moving_mean zeros, moving_variance ones;
        Layer/GroupNormalization ones/zeros; Embedding
        ``"uniform"`` = RandomUniform(-0.05, 0.05).  LSTM: not known here."""
        if isinstance(slot.ref, Composite):
            return None
        layer = slot.ref.layer
        attr = (slot.ref.attr or "").lstrip("_")
        if isinstance(layer, (keras.layers.Dense,) + _CONV + _CONV_T):
            return {"kernel": I.xavier_uniform(), "bias": I.zeros()}.get(attr)
        if isinstance(layer, keras.layers.BatchNormalization):
            return {"gamma": I.ones(), "beta": I.zeros(), "moving_mean": I.zeros(),
                    "moving_variance": I.ones()}.get(attr)
        if isinstance(layer, _NORM):
            return {"gamma": I.ones(), "beta": I.zeros()}.get(attr)
        if isinstance(layer, keras.layers.Embedding) and attr == "embeddings":
            return I.uniform(-0.05, 0.05)
        return None


ADAPTER = TensorflowAdapter()
