"""``mp.nn`` spec kind -> torch module: the table the base adapter's
memoised ``build`` walks (one spec used twice is one module used twice, the
chapter's tied layer).  Lazy modules everywhere, so input sizes come from
the first forward."""
from __future__ import annotations

from torch import nn

from .layers import LazyBatchNorm, LazyLayerNorm, LazyLSTMSequence


def _dense(spec, name):
    if spec.in_features is None:
        return nn.LazyLinear(spec.units, bias=spec.use_bias)
    return nn.Linear(spec.in_features, spec.units, bias=spec.use_bias)


def _sequential(spec, name, children):
    module = nn.Sequential()
    for key, child in children:
        module.add_module(key, child)  # the chapter's add_module idiom: keys become names
    return module


BUILDERS = {
    "Dense": _dense,
    "ReLU": lambda spec, name: nn.ReLU(),
    "Conv2d": lambda spec, name: nn.LazyConv2d(spec.out_channels, spec.kernel_size, stride=spec.stride,
                                               padding=spec.padding, bias=spec.use_bias),
    # momentum keeps torch's own meaning (the weight of the new batch)
    "BatchNorm": lambda spec, name: LazyBatchNorm(eps=spec.eps, momentum=spec.momentum),
    "LayerNorm": lambda spec, name: LazyLayerNorm(eps=spec.eps),
    "Embedding": lambda spec, name: nn.Embedding(spec.num_embeddings, spec.features),
    "LSTM": lambda spec, name: LazyLSTMSequence(spec.hidden_size),
    "Flatten": lambda spec, name: nn.Flatten(),
    "Sequential": _sequential,
}
