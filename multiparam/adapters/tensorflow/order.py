"""Which order the features of each Keras variable come in: the model's
layer graph followed with :class:`multiparam.layout.Labels`.

Keras holds a feature map as ``(H, W, C)``; its ``Flatten`` gives features
in (H, W, C) order where torch's gives (C, H, W).  Every variable indexing
those features (a Dense kernel's rows, a LayerNormalization's gamma and
beta, a BatchNormalization's statistics) holds them in Keras' order until a
layer mixes them.  Instead of recognising layer patterns, the data is
followed through the graph Keras itself keeps: a ``Sequential`` (its
functional graph once built), a functional model (its nodes, with the
shapes of every tensor), a multiparam ``NamedSequential`` (its children in
order), nested to any depth.  Each Keras layer is one operation on the
labels: convolutions and pooling keep the map channels-last, ``Flatten``,
``Reshape`` and ``Permute`` regroup, norms bind their vectors to the axis
they normalise, ``Dense`` binds its kernel and mixes.

A layer this module does not know is opaque: its output is in torch's
order when its input is (the torch equivalent does the same to the same
layout), else lost; variables inside an opaque layer that is fed, or
holds, a channels-last map, and a model whose input shape Keras does not
know, get an :class:`~multiparam.adapters.base.UnknownOrder` layout that
refuses to guess.
"""
from __future__ import annotations

from typing import Any, Optional

import keras
from keras.src.models.functional import Functional

from ...layout import LOST, Labels, Tag
from ..base import DENSE_IN_OUT, SAME, Composite, LayerNode, UnknownOrder
from .layers import NamedSequential

CONV = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.DepthwiseConv1D,
        keras.layers.DepthwiseConv2D, keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
POOL = (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
        keras.layers.AveragePooling1D, keras.layers.AveragePooling2D, keras.layers.AveragePooling3D,
        keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D, keras.layers.ZeroPadding3D,
        keras.layers.Cropping1D, keras.layers.Cropping2D, keras.layers.Cropping3D,
        keras.layers.UpSampling1D, keras.layers.UpSampling2D, keras.layers.UpSampling3D)
GLOBAL_POOL = (keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
               keras.layers.GlobalAveragePooling3D, keras.layers.GlobalMaxPooling1D,
               keras.layers.GlobalMaxPooling2D, keras.layers.GlobalMaxPooling3D)
#: layers that act on each element alone (or the last axis as a whole, as softmax)
ELEMENTWISE = (keras.layers.ReLU, keras.layers.Activation, keras.layers.Dropout, keras.layers.LeakyReLU,
               keras.layers.ELU, keras.layers.PReLU, keras.layers.Softmax, keras.layers.GaussianNoise,
               keras.layers.GaussianDropout, keras.layers.AlphaDropout, keras.layers.SpatialDropout1D,
               keras.layers.SpatialDropout2D, keras.layers.SpatialDropout3D, keras.layers.Identity,
               keras.layers.Rescaling)
#: norms: their vectors index the axis (or axes) they normalise
NORMS = (keras.layers.LayerNormalization, keras.layers.BatchNormalization,
         keras.layers.GroupNormalization, keras.layers.RMSNormalization)
MERGE = (keras.layers.Add, keras.layers.Subtract, keras.layers.Multiply, keras.layers.Average,
         keras.layers.Maximum, keras.layers.Minimum)

#: the batch size labels are made with (any size > 1 keeps the axis labelled)
_BATCH = 2


def _sizes(shape) -> Optional[tuple]:
    """A Keras shape with the batch axis sized, or None if a dim is unknown."""
    if shape is None:
        return None
    dims = (_BATCH,) + tuple(shape)[1:]
    return None if any(d is None for d in dims) else tuple(int(d) for d in dims)


class _Follower:
    def __init__(self):
        self.labels = Labels()
        #: id(layer) of layers whose variables could not be followed
        self.opaque: set = set()

    def key(self, layer, attr: str) -> tuple:
        return (id(layer), attr)

    def bind(self, layer, attrs, tag: Tag) -> None:
        """Line a layer's 1-D variables up with one axis of data."""
        for attr in attrs:
            if isinstance(vars(layer).get(attr), keras.Variable) and len(vars(layer)[attr].shape) == 1:
                self.labels.combine([tag, Tag(None, frozenset({(self.key(layer, attr.lstrip("_")), 0)}))])

    # -- containers ------------------------------------------------------------
    def container(self, layer, t: Optional[tuple], shape) -> Optional[tuple]:
        """A Sequential, functional model or NamedSequential: its graph, or
        None when it has none to follow."""
        graph = layer if isinstance(layer, Functional) else getattr(layer, "_functional", None)
        if isinstance(graph, Functional):
            return self.graph(graph, t)
        if isinstance(layer, NamedSequential):
            for child in layer.child_layers:
                out_shape = _output_shape(child, shape)
                t, shape = self.layer(child, t, shape, out_shape), out_shape
            return t
        return None

    def graph(self, graph: Functional, t: Optional[tuple]) -> Optional[tuple]:
        tags = {}
        inputs = list(graph.inputs)
        for i, tensor in enumerate(inputs):
            tags[id(tensor)] = t if (len(inputs) == 1 and t is not None) else self.start(tensor.shape)
        for depth in sorted(graph._nodes_by_depth, reverse=True):
            for node in graph._nodes_by_depth[depth]:
                layer = node.operation
                if isinstance(layer, keras.layers.InputLayer):
                    continue
                ins = [tags.get(id(x)) for x in node.input_tensors]
                outs = node.output_tensors
                if len(ins) == 1 and len(outs) == 1:
                    shape = node.input_tensors[0].shape
                    tags[id(outs[0])] = self.layer(layer, ins[0], shape, outs[0].shape)
                elif isinstance(layer, MERGE) and all(x is not None for x in ins) and len(outs) == 1:
                    tags[id(outs[0])] = self.labels.elementwise(ins) if len({len(x) for x in ins}) == 1 \
                        else self.labels.lost(outs[0].shape)
                else:
                    follow = all(x is not None and self.labels.is_canonical(x) for x in ins)
                    self.cannot_follow(layer, ins[0] if follow and ins else None)
                    for out in outs:
                        sizes = _sizes(out.shape) or tuple(1 for _ in out.shape)
                        tags[id(out)] = self.labels.canonical_like(sizes) if follow else self.labels.lost(sizes)
        outputs = graph.outputs
        return tags.get(id(outputs[0])) if len(outputs) == 1 else None

    def start(self, shape) -> Optional[tuple]:
        """The labels of a model input of Keras shape ``shape`` (a 4-D
        float image is NHWC, the layout ``input_to_native`` gives)."""
        sizes = _sizes(shape)
        if sizes is None:
            return None
        return self.labels.image(sizes) if len(sizes) == 4 else self.labels.plain(sizes)

    # -- one layer ----------------------------------------------------------------
    def layer(self, layer, t: Optional[tuple], in_shape, out_shape) -> Optional[tuple]:
        L = self.labels
        a, b = _sizes(in_shape), _sizes(out_shape)
        if t is None or a is None or len(t) != len(a):
            self.cannot_follow(layer, None)
            return None
        inner = self.container(layer, t, in_shape)
        if inner is not None or isinstance(layer, (Functional, keras.Sequential, NamedSequential)):
            return inner
        if b is None:
            self.cannot_follow(layer, t)
            return None
        if isinstance(layer, CONV) and getattr(layer, "data_format", "channels_last") == "channels_last":
            n = len(a)
            spec = (0, n - 1) + tuple(range(1, n - 1))
            return L.convolve(t, b, spec, spec)
        if isinstance(layer, POOL) and len(a) == len(b):
            return L.resized(t, a, b)
        if isinstance(layer, GLOBAL_POOL) and len(b) in (2, len(a)):
            return L.reduce(t, range(1, len(a) - 1)) if len(b) == 2 else L.resized(t, a, b)
        if isinstance(layer, (keras.layers.Flatten, keras.layers.Reshape)):
            return L.reshape(t, a, b)
        if isinstance(layer, keras.layers.Permute):
            return L.transpose(t, (0,) + tuple(layer.dims))
        if isinstance(layer, ELEMENTWISE) and a == b:
            return t
        if isinstance(layer, keras.layers.Dense) and not isinstance(layer, keras.layers.EinsumDense):
            kernel = Tag(None, frozenset({(self.key(layer, "kernel"), 0)}))
            return L.contract(t, (kernel, Tag()), a, (a[-1], b[-1]), ((len(a) - 1,), (0,)), ((), ()))
        if isinstance(layer, NORMS) and a == b:
            axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
            if len(axes) == 1:
                self.bind(layer, ("gamma", "beta", "moving_mean", "moving_variance", "scale"),
                          t[axes[0] % len(a)])
                return t
        # anything else is opaque: its output in torch's order only from an input in it
        self.cannot_follow(layer, t)
        return L.canonical_like(b) if L.is_canonical(t) else L.lost(b)

    def cannot_follow(self, layer, t: Optional[tuple]) -> None:
        """A layer whose inside is not followed (fed ``t``, None when
        unknown): its variables, and its sublayers', are refused when they
        may index flattened features: it holds a convolution or Flatten of
        its own, or it is fed a flattened map, or a lost one, or a map it
        passes to sublayers.  A leaf layer fed an unflattened map (Keras'
        Normalization on an image) indexes its channels, as torch's twin."""
        if t is None or self.labels.is_canonical(t):
            follow = not _holds_maps(layer)
        else:
            follow = not layer._layers and all(tag.labels is not LOST and len(tag.labels or ()) <= 1
                                               for tag in t)
        if not follow:
            self.opaque.add(id(layer))


def _output_shape(layer, shape):
    try:
        return tuple(layer.compute_output_shape(tuple(shape)))
    except Exception:   # a layer that cannot say: its output is not followed
        return None


def _holds_maps(layer) -> bool:
    """Whether a layer holds a convolution or a Flatten somewhere inside."""
    return any(isinstance(sub, CONV + (keras.layers.Flatten,)) for sub in layer._flatten_layers())


def _input_shape(model) -> Optional[tuple]:
    """The input shape Keras recorded for a built model, or None."""
    inputs = getattr(model, "inputs", None)
    if inputs and len(inputs) == 1:
        return tuple(inputs[0].shape)
    shapes = getattr(model, "_build_shapes_dict", None) or {}
    shape = next(iter(shapes.values()), None) if len(shapes) == 1 else None
    return tuple(shape) if isinstance(shape, (list, tuple)) else None


def apply_feature_orders(root: LayerNode, model: Any) -> None:
    """Give each Dense kernel and per-feature vector in ``root`` the layout
    its feature order asks for (:class:`~multiparam.adapters.base.Permuted`
    after a channels-last flatten, :class:`~multiparam.adapters.base.UnknownOrder`
    where it cannot be followed)."""
    follower = _Follower()
    shape = _input_shape(model)
    start = follower.start(shape) if shape is not None else None
    if start is not None:
        follower.layer(model, start, shape, _model_output_shape(model, shape))
    unknown = start is None and isinstance(model, keras.Layer) and _holds_maps(model)

    _set_feature_layouts(root, False, follower, unknown)


def _set_feature_layouts(node: LayerNode, inside_opaque: bool, follower: "_Follower", unknown: bool) -> None:
    """:func:`apply_feature_orders` on ``node`` and its subtree."""
    inside_opaque = inside_opaque or id(node.native) in follower.opaque
    for slot in node.params:
        ref = slot.ref
        if isinstance(ref, Composite) or getattr(ref, "attr", None) is None:
            continue
        var = ref.resolve()
        if var is None:
            continue
        ndim = len(var.shape)
        if not ((slot.layout == DENSE_IN_OUT and ndim == 2) or (slot.layout == SAME and ndim == 1)):
            continue
        if unknown or inside_opaque:
            slot.layout = UnknownOrder(slot.layout, _WHY.format(name=var.path))
            continue
        slot.layout = follower.labels.layout((id(ref.layer), ref.attr.lstrip("_")), 0, slot.layout,
                                             var.path)
    for child in node.children:
        _set_feature_layouts(child, inside_opaque, follower, unknown)


_WHY = ("{name} may be fed a flattened channels-last feature map by a layer multiparam cannot follow "
        "(a subclassed layer's call, or a model whose input shape Keras does not know); build the model "
        "as keras.Sequential or a functional model, or call it once on an input")


def _model_output_shape(model, shape):
    outputs = getattr(model, "outputs", None)
    if outputs and len(outputs) == 1:
        return tuple(outputs[0].shape)
    return _output_shape(model, shape)
