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
  as ``NativeCase`` records with the canonical names and shapes they must get.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple


@dataclass
class NativeCase:
    label: str
    model: Any
    x: Any                                   # sample input in the framework's own type
    shapes: Dict[str, Tuple[int, ...]]       # expected canonical names and shapes, in order
    ties: List[Tuple[str, ...]] = field(default_factory=list)
    options: dict = field(default_factory=dict)   # extra mp.wrap options (Flax variables)
