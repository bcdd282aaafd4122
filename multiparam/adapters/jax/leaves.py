"""What a Flax layer's arrays are: the layer's family, and each array's
canonical key, role and layout, linen and NNX alike.

Canonical names are PyTorch's ``state_dict`` keys, so a leaf's *key* is the
attribute the equivalent torch module has, whatever Flax calls it
(``leaf -> key, role, layout``):

- Dense / Linear ``kernel`` -> ``weight``, weight, DENSE_IN_OUT ``(in, out)``;
- Conv ``kernel`` -> ``weight``, weight, CHANNELS_LAST_KERNEL;
- DenseGeneral / LinearGeneral ``kernel`` -> ``weight``, weight, regrouped
  (below);
- LayerNorm / RMSNorm / GroupNorm / BatchNorm ``scale`` -> ``weight``, scale;
- BatchNorm ``mean`` / ``var`` -> ``running_mean`` / ``running_var``, not
  trainable;
- Embed ``embedding`` -> ``weight``, embedding;
- any of them ``bias`` -> ``bias``, bias.

(LSTMs are composites of per-gate leaves: ``linen/lstm.py``.)

``DenseGeneral`` (linen) and ``LinearGeneral`` (NNX) contract the input's
last axes with a kernel ``(*in, *out)`` (attention's query kernel is
``(embed, heads, head_dim)``, its output kernel ``(heads, head_dim, embed)``).
The torch equivalent is an ``nn.Linear`` on the flattened axes, so the
kernel's layout is a :class:`~multiparam.adapters.base.Regrouped`, canonical
``(prod(out), prod(in))``, and the bias ``(*out)`` is ``(prod(out),)``:
exactly the arrays of Hugging Face's torch attention projections, and the
shape Flax's own initialisers draw the kernel in, so fans agree.  Where the
split is unknown (a ``batch_dims`` kernel, which has no ``nn.Linear``
equivalent, or a pytree subtree without its module) the arrays keep their
native layout and are *undeclared*, so init refuses to guess their fans.

A class registered with ``mp.register_layer`` (by Flax's leaf name) wins
over the table; its leaves take torch's key for their role (``weight`` for a
weight, scale or embedding) unless two leaves of the layer would then share
one, in which case they keep Flax's name.  Leaves of any other class (a
user's own module, or a Flax layer not in the table such as
``ConvTranspose``) keep Flax's name as key and role and are undeclared.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import jax
from flax import linen as nn
from flax import nnx

from ... import layer_registry
from ..base import CHANNELS_LAST_KERNEL, DENSE_IN_OUT, SAME, Regrouped, flattened
from .layers import flatten

#: (Flax layer classes, family): the layers whose leaves have a known role
#: and layout, linen and NNX alike.  Conv is not ConvTranspose/ConvLocal
#: (other kernel layouts, and not subclasses of Conv).
_FAMILIES = (
    ((nn.Dense, nnx.Linear), "Dense"),
    ((nn.DenseGeneral, nnx.LinearGeneral), "DenseGeneral"),
    ((nn.Conv, nnx.Conv), "Conv"),
    ((nn.BatchNorm, nnx.BatchNorm), "BatchNorm"),
    ((nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nnx.LayerNorm, nnx.GroupNorm, nnx.RMSNorm), "Norm"),
    ((nn.Embed, nnx.Embed), "Embed"),
)

#: Flax's auto-name class prefix (``Dense_0``) -> family, for a linen
#: pytree subtree no module object was found for
_AUTO_NAME_FAMILIES = {"Dense": "Dense", "DenseGeneral": "DenseGeneral", "Conv": "Conv",
                       "BatchNorm": "BatchNorm", "LayerNorm": "Norm", "GroupNorm": "Norm",
                       "RMSNorm": "Norm", "Embed": "Embed"}

#: torch's attribute for a role (a norm's scale and an embedding's table are ``weight``)
_TORCH_KEYS = {"weight": "weight", "scale": "weight", "embedding": "weight", "bias": "bias",
              "running_mean": "running_mean", "running_var": "running_var"}

#: activation functions that are a ReLU layer in a Sequential
_RELUS = (jax.nn.relu, nn.relu, nnx.relu)


def layer_family(module: Any, auto_name: Optional[str] = None) -> Optional[str]:
    """Which known layer a Flax module is (``"Dense"``, ``"DenseGeneral"``,
    ``"Conv"``, ``"BatchNorm"``, ``"Norm"``, ``"Embed"``), or None.  Without
    a module object (a linen pytree-only subtree), guess from Flax's
    auto-name ``<ClassName>_<n>``."""
    if module is not None:
        return _class_family(type(module))
    if auto_name:
        cls, _, number = auto_name.rpartition("_")
        return _AUTO_NAME_FAMILIES.get(cls) if number.isdigit() else None
    return None


@layer_registry.per_class
def _class_family(cls: type) -> Optional[str]:
    """:func:`layer_family` of a module class (memoised)."""
    for classes, family in _FAMILIES:
        if issubclass(cls, classes):
            return family
    return None


def function_kind(fn: Any) -> str:
    """The neutral kind of a plain function used as a layer (``nn.relu`` in
    a Sequential): ``ReLU``, ``Flatten``, else the function's name."""
    if any(fn is relu for relu in _RELUS):
        return "ReLU"
    if fn is flatten:
        return "Flatten"
    return getattr(fn, "__name__", type(fn).__name__)


def _general_inputs(module: Any) -> Optional[int]:
    """How many leading kernel axes a DenseGeneral/LinearGeneral contracts
    with the input, or None when its kernel also has batch axes (or no
    module object tells)."""
    if isinstance(module, nn.DenseGeneral):
        if module.batch_dims:
            return None
        return len(module.axis) if isinstance(module.axis, Sequence) else 1
    if isinstance(module, nnx.LinearGeneral):
        if module.batch_axis:
            return None
        return len(module.in_features)
    return None


# ---------------------------------------------------------------------------
# a leaf's canonical key, role and layout
# ---------------------------------------------------------------------------
@dataclass
class LeafKind:
    """What one leaf of one layer is (see the module's table)."""

    role: str
    key: str
    layout: Any = SAME
    trainable: bool = True
    declared: bool = True


def _general(module: Any, name: str, shape: Optional[tuple], trainable: bool) -> LeafKind:
    """A DenseGeneral/LinearGeneral kernel or bias: the ``nn.Linear``
    weight or bias it is (a plain 2-D kernel and 1-D bias as Dense's)."""
    role = "weight" if name == "kernel" else "bias"
    plain = 2 if name == "kernel" else 1
    if shape is None or len(shape) == plain:
        return LeafKind(role, role, DENSE_IN_OUT if plain == 2 else SAME, trainable)
    inputs = _general_inputs(module)
    if inputs is None:      # batched kernel, or no module: native layout, meaning unknown
        return LeafKind(role, role, SAME, trainable, declared=False)
    if name == "bias":
        return LeafKind(role, role, flattened(shape), trainable)
    axes = tuple(range(len(shape)))
    return LeafKind(role, role, Regrouped(tuple(shape), (axes[inputs:], axes[:inputs])), trainable)


def _known(family: Optional[str], module: Any, name: str, shape: Optional[tuple],
           trainable: bool) -> Optional[LeafKind]:
    """The table's entry for a leaf of a known family, or None."""
    if family in ("BatchNorm", "Norm") and name == "scale":
        return LeafKind("scale", "weight", SAME, trainable)
    if family == "BatchNorm" and name in ("mean", "var"):
        return LeafKind("running_" + name, "running_" + name, SAME, False)
    if family == "Embed" and name == "embedding":
        return LeafKind("embedding", "weight", SAME, trainable)
    if family == "Conv" and name == "kernel":
        return LeafKind("weight", "weight", CHANNELS_LAST_KERNEL, trainable)
    if family == "Dense" and name == "kernel" and (shape is None or len(shape) == 2):
        return LeafKind("weight", "weight", DENSE_IN_OUT, trainable)
    if family == "DenseGeneral" and name in ("kernel", "bias"):
        return _general(module, name, shape, trainable)
    if family is not None and name == "bias":
        return LeafKind("bias", "bias", SAME, trainable)
    return None


def leaf_kinds(module: Any, auto_name: Optional[str], leaves: List[Tuple[str, Optional[tuple], bool]]
               ) -> List[LeafKind]:
    """The kinds of one layer's leaves ``[(Flax name, native shape or None,
    trainable)]``, in order: a registered class's declaration first, then
    the table for Flax's own layers, else the leaf's own name, undeclared.
    Keys stay unique within the layer."""
    family = layer_family(module, auto_name)
    registered = layer_registry.lookup(module) if module is not None else None
    kinds = []
    for name, shape, trainable in leaves:
        if registered is not None and name in registered:
            role, layout = registered[name].role, registered[name].layout
            trainable = trainable and role not in ("running_mean", "running_var", "counter")
            kinds.append(LeafKind(role, _TORCH_KEYS.get(role, name), layout, trainable))
            continue
        kind = _known(family, module, name, shape, trainable)
        kinds.append(kind if kind is not None else LeafKind(name, name, SAME, trainable, declared=False))
    if registered is not None:   # two registered leaves on one torch key: keep Flax's names
        keys = [k.key for k in kinds]
        for (name, _, _), kind in zip(leaves, kinds):
            if keys.count(kind.key) > 1 and name in registered:
                kind.key = name
    return kinds


def ordered_leaf_kinds(module: Any, auto_name: Optional[str],
                       leaves: List[Tuple[str, Optional[tuple], bool]]) -> Tuple[List[int], List[LeafKind]]:
    """``(order, kinds)``: :func:`leaf_kinds` and :func:`torch_order` of one
    layer's leaves, memoised per module class and leaf names, ranks and
    trainability (what they depend on, but for ``DenseGeneral`` layouts,
    which need the shapes and the module's axes, and a module-less subtree):
    500 Dense layers are classified once.  The kinds are shared: read
    them, never change them."""
    if module is None or _class_family(type(module)) == "DenseGeneral":
        kinds = leaf_kinds(module, auto_name, leaves)
        return torch_order(kinds), kinds
    key = (ordered_leaf_kinds, type(module),
           tuple((name, None if shape is None else len(shape), trainable) for name, shape, trainable in leaves))
    found = _CLASS_CACHE.get(key)
    if found is None:
        kinds = leaf_kinds(module, auto_name, leaves)
        found = _CLASS_CACHE[key] = (torch_order(kinds), kinds)
    return found


_CLASS_CACHE = layer_registry.CLASS_CACHE

#: torch's order of a layer's state (``Linear``: weight, bias; ``BatchNorm``: then its statistics)
_TORCH_ORDER = {"weight": 0, "bias": 1, "running_mean": 2, "running_var": 3}


def torch_order(kinds: List[LeafKind]) -> List[int]:
    """Positions of ``kinds`` in torch's order of its ``state_dict``: a
    declared leaf by its key, anything else after them in the order given.
    Flax's own order is its dicts' order, which ``jax.tree_util.tree_map``
    sorts (``bias`` before ``kernel``), so a pytree the user rebuilt would
    otherwise reorder the names."""
    return sorted(range(len(kinds)),
                  key=lambda i: _TORCH_ORDER.get(kinds[i].key, len(_TORCH_ORDER)) if kinds[i].declared
                  else len(_TORCH_ORDER))
