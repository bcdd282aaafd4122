"""Layers multiparam ships for torch: the Lazy modules torch lacks, so every
``mp.nn`` spec infers its input size on the first forward, as
``nn.LazyLinear`` does.  Each becomes a plain torch module once
materialised, with torch's own parameter names."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm, _LazyNormBase
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedParameter


class LSTMSequence(nn.LSTM):
    """``nn.LSTM(batch_first=True)`` returning only the output sequence
    ``(N, T, H)``, so it composes in ``nn.Sequential`` (``nn.LSTM`` returns
    ``(output, (h, c))``).  Parameters and their names are ``nn.LSTM``'s."""

    def forward(self, x):
        return super().forward(x)[0]


class _LazyMixin(LazyModuleMixin):
    """torch's Lazy pattern: the layer's own reset_parameters runs only once
    its shapes are known (as LazyLinear does)."""

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params():
            super().reset_parameters()


class LazyLSTMSequence(_LazyMixin, LSTMSequence):
    """:class:`LSTMSequence` whose ``input_size`` comes from the first input,
    as ``nn.LazyLinear`` does for ``in_features``; becomes an LSTMSequence."""

    cls_to_become = LSTMSequence

    def __init__(self, hidden_size: int):
        super().__init__(1, hidden_size, batch_first=True)   # input_size fixed on first call
        self.weight_ih_l0 = UninitializedParameter()        # RNNBase keeps _flat_weights in sync

    def initialize_parameters(self, x) -> None:
        if self.has_uninitialized_params():
            with torch.no_grad():
                self.input_size = int(x.shape[-1])
                self.weight_ih_l0.materialize((4 * self.hidden_size, self.input_size))
                self.reset_parameters()
                self._init_flat_weights()


class LazyLayerNorm(_LazyMixin, nn.LayerNorm):
    """``nn.LayerNorm`` over the last axis, its size from the first input."""

    cls_to_become = nn.LayerNorm

    def __init__(self, eps: float = 1e-5):
        super().__init__(0, eps=eps)
        self.weight = UninitializedParameter()
        self.bias = UninitializedParameter()

    def initialize_parameters(self, x) -> None:
        if self.has_uninitialized_params():
            with torch.no_grad():
                self.normalized_shape = (int(x.shape[-1]),)
                self.weight.materialize(self.normalized_shape)
                self.bias.materialize(self.normalized_shape)
                self.reset_parameters()


class LazyBatchNorm(_LazyNormBase, _BatchNorm):
    """Lazy BatchNorm over axis 1 of an input of any rank >= 2: becomes
    ``nn.BatchNorm1d`` for ``(N, C)``/``(N, C, L)``, ``BatchNorm2d`` for
    images, ``BatchNorm3d`` for volumes (torch's lazy ones fix the rank)."""

    _BY_RANK = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}

    def _check_input_dim(self, input) -> None:
        if input.dim() not in self._BY_RANK:
            raise ValueError(f"BatchNorm expects a 2-D to 5-D input (got {input.dim()}D)")

    def initialize_parameters(self, input) -> None:
        self.cls_to_become = self._BY_RANK[input.dim()]   # read by _infer_parameters after this
        super().initialize_parameters(input)


