"""``mp.nn`` spec kind -> Gluon block: the table the base adapter's memoised
``build`` walks, and :func:`dense_twin`, Gluon's own idiom for a Dense
spec used twice.

Every block leaves unknown input sizes at Gluon's ``0``: the adapter's
``build`` calls ``initialize()``, and deferred initialisation gives each
parameter its shape on the first forward.  Gluon's own layers already
return what the spec asks for (``rnn.LSTM`` called without states returns
only the output sequence), so multiparam ships no Gluon blocks.
"""
from __future__ import annotations

from mxnet.gluon import nn, rnn


def _dense(spec, name) -> nn.Dense:
    # flatten=False: like torch, a Dense acts on the last axis ((N, T, F)
    # sequences too); a feature map is flattened by an explicit Flatten
    return nn.Dense(spec.units, use_bias=spec.use_bias, in_units=spec.in_features or 0,
                    flatten=False)


def _sequential(spec, name, children) -> nn.Sequential:
    block = nn.Sequential()
    for key, child in children:
        # the key is the position ("0", "1", ...; what add() would use) or the
        # child's name: Sequential.forward/__getitem__/__len__ iterate
        # _children in order, so named children work like numbered ones
        block.register_child(child, key)
    return block


BUILDERS = {
    "Dense": _dense,
    "ReLU": lambda spec, name: nn.Activation("relu"),
    "Conv2d": lambda spec, name: nn.Conv2D(spec.out_channels, spec.kernel_size, strides=spec.stride,
                                           padding=spec.padding, use_bias=spec.use_bias,
                                           in_channels=0),
    # Gluon's momentum weighs the old statistics: torch's 0.1 is Gluon's 0.9
    "BatchNorm": lambda spec, name: nn.BatchNorm(axis=1, momentum=1.0 - spec.momentum,
                                                 epsilon=spec.eps),
    "LayerNorm": lambda spec, name: nn.LayerNorm(axis=-1, epsilon=spec.eps),
    "Embedding": lambda spec, name: nn.Embedding(spec.num_embeddings, spec.features),
    "LSTM": lambda spec, name: rnn.LSTM(spec.hidden_size, layout="NTC"),  # batch-first
    "Flatten": lambda spec, name: nn.Flatten(),
    "Sequential": _sequential,
}


def dense_twin(shared: nn.Dense) -> nn.Dense:
    """``nn.Dense(.., params=shared.params)``: a block of its own over the
    same Parameters, configured as ``shared`` -- the chapter's Gluon idiom
    for a shared layer, so a built model is the one a Gluon user writes."""
    return nn.Dense(shared._units, use_bias=shared.bias is not None, in_units=shared._in_units,
                    flatten=shared._flatten, params=shared.params)
