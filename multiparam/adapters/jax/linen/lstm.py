"""An ``nn.RNN`` over a Flax LSTM cell as torch's one LSTM layer: four
composite slots over the cell's per-gate leaves.

``LSTMCell`` and ``OptimizedLSTMCell`` store the same leaves: per gate
``g`` in ``i, f, g, o`` (torch's order), ``i<g>/kernel (in, H)`` without
bias, ``h<g>/kernel (H, H)`` and ``h<g>/bias (H,)``.

- ``weight_ih`` (4H, in) is the four input kernels, each transposed, stacked
  (``base.Stacked``); ``weight_hh`` (4H, H) likewise; both already
  canonical, so the slots' layout is SAME;
- Flax has one bias per gate, added to the same pre-activation as torch's
  ``bias_ih + bias_hh``: the four gate biases stacked are that sum, and the
  two torch biases are its shares (``base.SumShare`` over that ``Stacked``,
  kept on the handle's state; the base reads and writes a composite part).

Keys are torch's for a one-layer ``nn.LSTM`` (``weight_ih_l0``, ...), roles
``weight`` and ``bias``.
"""
from __future__ import annotations

from flax import linen as nn

from ...base import SAME, ParamSlot, Stacked, SumShare

_LSTM_CELLS = (nn.LSTMCell, nn.OptimizedLSTMCell)
_GATES = "ifgo"   # torch's gate order; Flax names its per-gate Dense params i<g> / h<g>


def is_lstm(module) -> bool:
    """An ``nn.RNN`` over one of Flax's LSTM cells: one canonical LSTM layer."""
    return isinstance(module, nn.RNN) and isinstance(module.cell, _LSTM_CELLS)


def _gate_leaves(cell: tuple, dense: str, leaf: str) -> tuple:
    """Pytree paths of one leaf of the four gates' Dense params, torch's order."""
    return tuple(cell + (dense + gate, leaf) for gate in _GATES)


def lstm_slots(owner, path: tuple, module: nn.RNN, materialized: bool) -> list:
    """The four slots of the LSTM at ``path``; ``owner`` (the handle's
    state) keeps the bias shares."""
    cell = ("params", *path, "cell")
    hidden = module.cell.features
    gate_sum = Stacked(_gate_leaves(cell, "h", "bias"))
    refs = {
        "weight_ih_l0": (Stacked(_gate_leaves(cell, "i", "kernel"), transpose=True), "i*/kernel",
                         (4 * hidden, None)),
        "weight_hh_l0": (Stacked(_gate_leaves(cell, "h", "kernel"), transpose=True), "h*/kernel",
                         (4 * hidden, hidden)),
        "bias_ih_l0": (SumShare(gate_sum, owner, cell, 0), "h*/bias[bias_ih]", (4 * hidden,)),
        "bias_hh_l0": (SumShare(gate_sum, owner, cell, 1), "h*/bias[bias_hh]", (4 * hidden,)),
    }
    prefix = "/".join(cell) + "/"
    return [ParamSlot(key.split("_")[0], prefix + native, ref, SAME, True, ("lstm",) + cell + (key,),
                      shape_hint=None if materialized else hint, key=key)
            for key, (ref, native, hint) in refs.items()]
