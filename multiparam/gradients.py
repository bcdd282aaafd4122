"""Gradients through one interface: ``Model.grad``.

The adapter computes fresh gradients with the framework's own autograd and
returns them keyed by parameter identity; here they get canonical names and
layout, and the Model handle keeps them so ``Param.grad`` can show the last one.
"""
from __future__ import annotations

from typing import Any, Dict, Hashable, Tuple

import numpy as np

from . import layout as _layout
from . import sharding as _sharding
from .adapters.base import Inputs
from .errors import MultiparamError

LOSSES = (None, "sum", "mean", "mse", "model")


def model_grad(model, x: Any, loss: Any = None, target: Any = None,
               train: bool = False, gather: bool = True) -> Tuple[Dict[str, Any], Dict[Hashable, Any]]:
    """Fresh gradients of ``model`` (see ``Model.grad``): returns
    ``({canonical name: read-only canonical gradient}, {storage ident:
    native gradient})``; the handle keeps the second for ``Param.grad``.
    ``gather=False``: each gradient is ``[(canonical global index, block)]``
    (the blocks this process holds, as ``Param.shards()``)."""
    if not (loss in LOSSES or callable(loss)):
        raise ValueError(f"unknown loss {loss!r}; use None (sum of the output), 'sum', 'mean', "
                         "'mse' (needs target=), 'model' (the model's own loss) or a callable "
                         "loss(output, target)")
    if loss == "mse" and target is None:
        raise ValueError("loss='mse' needs target=")
    if not gather:      # before any autograd: a backend that cannot shard says so first
        model.adapter.require_sharding("return sharded gradients (grad(..., gather=False))")
    if not any(p.trainable for p in model.named_parameters().values()):
        raise MultiparamError("the model has no trainable parameters to differentiate")
    raw = model.adapter.grad(model.adapter_state, Inputs.of(x), loss=loss, target=target, train=bool(train))
    # asked again: the forward may have materialised lazy shapes (the index is
    # rebuilt until every shape is known, and cached after)
    params = model.named_parameters()
    out: Dict[str, np.ndarray] = {}
    by_ident: Dict[Hashable, Any] = {}
    for name, p in params.items():
        ident = p.ident
        g = raw.get(ident)
        if g is None:
            continue
        by_ident[ident] = g
        if not gather:
            out[name] = _sharding.canonical_shards(p, g)
            continue
        if isinstance(g, _sharding.ShardedArray):   # every process gathers, in the model's order
            g = g.gather(f"the gradient of {name!r}")
        canon = _layout.to_canonical(np.asarray(g), p.slot.layout)
        canon = canon.view()
        canon.flags.writeable = False
        out[name] = canon
    return out, by_ident
