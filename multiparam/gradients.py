"""Gradients through one interface: ``Model.grad``.

The adapter computes fresh gradients with the framework's own autograd and
returns them keyed by parameter identity; here they get canonical names and
layout, and are kept on the handle so ``Param.grad`` can show the last one.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from . import layout as _layout
from .errors import MultiparamError

LOSSES = (None, "sum", "mean", "mse")


def model_grad(model, x: Any, loss: Any = None, target: Any = None,
               train: bool = False) -> Dict[str, np.ndarray]:
    if not (loss in LOSSES or callable(loss)):
        raise ValueError(f"unknown loss {loss!r}; use None (sum of outputs), 'sum', 'mean', "
                         "'mse' (needs target=) or a callable loss(output, target)")
    if loss == "mse" and target is None:
        raise ValueError("loss='mse' needs target=")
    params = model.named_parameters()
    if not any(p.trainable for p in params.values()):
        raise MultiparamError("the model has no trainable parameters to differentiate")
    raw = model.adapter.grad(model._state, x, loss=loss, target=target, train=bool(train))
    if not model._materialized:
        model.refresh()  # the forward may have materialised lazy shapes
        params = model.named_parameters()
    out: Dict[str, np.ndarray] = {}
    grads = {}
    for name, p in params.items():
        g = raw.get(p._key)
        if g is None:
            continue
        grads[p._key] = g
        canon = _layout.to_canonical(np.asarray(g), p._slot.layout)
        canon = canon.view()
        canon.flags.writeable = False
        out[name] = canon
    model._grads = grads
    return out
