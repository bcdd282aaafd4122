"""``mp.nn`` spec kind -> Keras layer: the table the base adapter's memoised
``build`` walks (one spec used twice is one Keras layer called twice, so its
variables are shared: the chapter's tied layer).

Keras layers build their variables on the first call, so input sizes come
from the first forward; images are NHWC (Keras' default ``data_format``)."""
from __future__ import annotations

import keras

from .layers import Dense, NamedSequential, PaddedConv2D


def _dense(spec, name):
    """multiparam's :class:`Dense` (it can be tied transposed), built now when
    the spec gives its input size."""
    layer = Dense(spec.units, use_bias=spec.use_bias)
    if spec.in_features is not None:
        layer.build((None, spec.in_features))
    return layer


def _conv2d(spec, name):
    """``Conv2D``; :class:`PaddedConv2D` for torch's integer padding."""
    options = dict(filters=spec.out_channels, kernel_size=spec.kernel_size, strides=spec.stride,
                   use_bias=spec.use_bias)
    return PaddedConv2D(pad=spec.padding, **options) if spec.padding else keras.layers.Conv2D(**options)


def _batch_norm(spec, name):
    """``BatchNormalization`` over the channels axis.  Keras' momentum weighs
    the *old* statistics, torch's the new batch: ``1 - spec.momentum``."""
    return keras.layers.BatchNormalization(axis=-1, momentum=1.0 - spec.momentum, epsilon=spec.eps)


def _lstm(spec, name):
    """``LSTM`` returning the whole sequence ``(N, T, H)``, as the other
    backends' LSTM layers do."""
    return keras.layers.LSTM(spec.hidden_size, return_sequences=True)


def _sequential(spec, name, children):
    """``keras.Sequential`` (numbered, as Keras indexes ``layers``), or
    :class:`NamedSequential` when the spec's children are named."""
    if spec.named:
        return NamedSequential(children)
    return keras.Sequential([layer for _, layer in children])


BUILDERS = {
    "Dense": _dense,
    "ReLU": lambda spec, name: keras.layers.ReLU(),
    "Conv2d": _conv2d,
    "BatchNorm": _batch_norm,
    "LayerNorm": lambda spec, name: keras.layers.LayerNormalization(axis=-1, epsilon=spec.eps),
    "Embedding": lambda spec, name: keras.layers.Embedding(spec.num_embeddings, spec.features),
    "LSTM": _lstm,
    "Flatten": lambda spec, name: keras.layers.Flatten(),
    "Sequential": _sequential,
}
