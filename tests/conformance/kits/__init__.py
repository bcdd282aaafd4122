"""Per-backend kits: the chapter's code, written in each framework's own idiom.

A kit module ``native_<backend>.py`` is the independent truth the
conformance suite compares multiparam with.  It never uses multiparam to
reach a parameter; it only takes the native model (and, for Flax, the
variables) out of a handle.  Every kit provides:

- ``read(m, name)``: the value of canonical ``name`` as the framework's own
  access idiom gives it (``net[2].bias.data``, ``net[1].bias.data()``,
  ``params['params']['layers_2']['bias']``, ``net.layers[2].weights[1]``),
  converted to canonical layout by hand;
- ``forward(m, x)``: the native forward (``net(X)`` / ``net.apply(params, X)``);
- ``count(m)``: the trainable parameter count, the framework's own way;
- ``grads(m, x)``: gradients of ``sum(net(X))`` by the framework's own autograd;
- ``chapter_models()``: models written natively as the chapter writes them,
  as ``NativeCase`` records with the canonical names and shapes they must get;
- ``real_models()``: models written by the frameworks' own authors (torch
  ``TransformerEncoderLayer``, ``LSTM``; ``keras.applications.MobileNetV2``;
  Gluon ``model_zoo`` ResNet-18; a Flax CNN), built without downloading
  anything, as ``RealModel`` records carrying the framework's own counts;
- ``native_arrays(m)``: the framework's own collect-all listing of a wrapped
  model, ``[(native name, NumPy array)]`` in the framework's order;
- ``infer(m, x)``: the native forward in inference mode, as NumPy arrays.
"""
import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple


@dataclass
class NativeCase:
    label: str
    model: Any
    x: Any                                   # sample input in the framework's own type
    shapes: Dict[str, Tuple[int, ...]]       # expected canonical names and shapes, in order
    ties: List[Tuple[str, ...]] = field(default_factory=list)
    options: dict = field(default_factory=dict)   # extra mp.wrap options (Flax variables)


@dataclass
class RealModel:
    """A model written by the framework's authors, with the framework's own
    view of it, computed with the framework's own idioms when it was built."""

    label: str
    model: Any
    x: Any                      # sample input in the framework's own type
    trainable: int              # trainable scalars (torch parameters(), Keras trainable_weights, ...)
    total: int                  # every scalar the framework counts (count_params, collect_params, ...)
    value_sum: float            # exact_sum of every value in that same collection
    names: List[str]            # native names, as the framework's collect-all lists them
    fresh: Callable[[int], Tuple[Any, dict]]   # seed -> (a second instance, mp.wrap options)
    options: dict = field(default_factory=dict)   # extra mp.wrap options (Flax variables)
    #: state the framework keeps that is deliberately not a parameter (torch's
    #: BatchNorm num_batches_tracked step counter), as the framework names it
    not_parameters: List[str] = field(default_factory=list)


def exact_sum(arrays) -> float:
    """The correctly rounded float64 sum of every element (``math.fsum``), so
    two listings of the same values agree exactly whatever their order or
    memory layout (a transposed view sums in another order)."""
    import numpy as np

    return math.fsum(itertools.chain.from_iterable(
        np.asarray(a, dtype=np.float64).ravel().tolist() for a in arrays))
