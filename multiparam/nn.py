"""The neutral model spec: describe an architecture once, build it natively.

These classes import no framework.  They only describe; an adapter's
``build`` turns a spec into the native model of its backend:

    spec = mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), mp.nn.Dense(1))
    m = mp.wrap(spec, backend="torch")           # a Model handle
    m = mp.nn.Sequential(..., backend="jax")     # the same, in one call

Input sizes are inferred on the first forward, as torch's Lazy modules,
Keras layers, Flax modules and Gluon's deferred initialisation all do.
Use one spec object in two places to share its parameters (the chapter's
tied layer); every adapter maps that to its framework's own sharing idiom.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional, Tuple, Union

from .model import wrap
from .spec import Spec


class Dense(Spec):
    """A fully connected layer: ``y = x W^T + b`` with ``W`` of shape
    ``(units, in_features)`` in canonical layout.  ``in_features`` is
    inferred on the first forward unless given."""

    kind = "Dense"

    def __init__(self, units: int, use_bias: bool = True, in_features: Optional[int] = None):
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"Dense units must be a positive int, got {units!r}")
        if in_features is not None and (not isinstance(in_features, int) or in_features <= 0):
            raise ValueError(f"Dense in_features must be a positive int or None, got {in_features!r}")
        self.units = units
        self.use_bias = bool(use_bias)
        self.in_features = in_features

    def _config(self) -> dict:
        cfg = {"units": self.units}
        if not self.use_bias:
            cfg["use_bias"] = False
        if self.in_features is not None:
            cfg["in_features"] = self.in_features
        return cfg


class ReLU(Spec):
    """Elementwise ``max(x, 0)``; no parameters."""

    kind = "ReLU"


def _positive_int(layer: str, what: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{layer} {what} must be a positive int, got {value!r}")
    return value


def _fraction(layer: str, what: str, value, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1 \
            or (low_open and value == 0):
        raise ValueError(f"{layer} {what} must be a number in {'(0' if low_open else '[0'}, 1], got {value!r}")
    return float(value)


def _positive_float(layer: str, what: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{layer} {what} must be a positive number, got {value!r}")
    return float(value)


class Conv2d(Spec):
    """A 2-D convolution; canonical weight ``(out_channels, in_channels, k, k)``
    (torch's OIHW; Keras and Flax store HWIO, the adapters convert).

    Input is the framework's native image layout: NCHW on torch and Gluon,
    NHWC on Keras and Flax (``Adapter.channels_last``).  ``padding`` pads
    every spatial side by that many zeros, as torch's int padding does.
    ``in_channels`` is inferred on the first forward."""

    kind = "Conv2d"

    def __init__(self, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 use_bias: bool = True):
        self.out_channels = _positive_int("Conv2d", "out_channels", out_channels)
        self.kernel_size = _positive_int("Conv2d", "kernel_size", kernel_size)
        self.stride = _positive_int("Conv2d", "stride", stride)
        if not isinstance(padding, int) or isinstance(padding, bool) or padding < 0:
            raise ValueError(f"Conv2d padding must be a non-negative int, got {padding!r}")
        self.padding = padding
        self.use_bias = bool(use_bias)

    def _config(self) -> dict:
        cfg = {"out_channels": self.out_channels, "kernel_size": self.kernel_size}
        if self.stride != 1:
            cfg["stride"] = self.stride
        if self.padding:
            cfg["padding"] = self.padding
        if not self.use_bias:
            cfg["use_bias"] = False
        return cfg


class BatchNorm(Spec):
    """Batch normalisation over the channel axis (canonical axis 1: ``(N, C)``
    or ``(N, C, H, W)``; the last axis on channels-last backends).

    Parameters ``scale`` and ``bias``; state ``running_mean`` and
    ``running_var`` (``trainable=False``).  ``momentum`` has *torch's*
    meaning: ``running = (1 - momentum) * running + momentum * batch``.
    Keras, Flax and Gluon spell it the other way round, so their adapters
    build with ``1 - momentum`` (torch 0.1 is Keras 0.9)."""

    kind = "BatchNorm"

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5):
        self.momentum = _fraction("BatchNorm", "momentum", momentum)
        self.eps = _positive_float("BatchNorm", "eps", eps)

    def _config(self) -> dict:
        return {"momentum": self.momentum, "eps": self.eps}


class LayerNorm(Spec):
    """Layer normalisation over the last axis, with ``scale`` and ``bias``
    of that axis' size (inferred on the first forward)."""

    kind = "LayerNorm"

    def __init__(self, eps: float = 1e-5):
        self.eps = _positive_float("LayerNorm", "eps", eps)

    def _config(self) -> dict:
        return {"eps": self.eps}


class Embedding(Spec):
    """A lookup table: integer ids ``(N, ...)`` to vectors ``(N, ..., features)``;
    parameter ``embedding`` of shape ``(num_embeddings, features)``."""

    kind = "Embedding"

    def __init__(self, num_embeddings: int, features: int):
        self.num_embeddings = _positive_int("Embedding", "num_embeddings", num_embeddings)
        self.features = _positive_int("Embedding", "features", features)

    def _config(self) -> dict:
        return {"num_embeddings": self.num_embeddings, "features": self.features}


class LSTM(Spec):
    """One LSTM layer over a batch-first sequence: input ``(N, T, F)``,
    output the whole hidden sequence ``(N, T, hidden_size)``, zero initial
    state.  Canonical parameters are torch's: ``weight_ih (4H, F)``,
    ``weight_hh (4H, H)``, ``bias_ih (4H,)``, ``bias_hh (4H,)``, gates in
    the order i, f, g, o.  ``F`` is inferred on the first forward."""

    kind = "LSTM"

    def __init__(self, hidden_size: int):
        self.hidden_size = _positive_int("LSTM", "hidden_size", hidden_size)

    def _config(self) -> dict:
        return {"hidden_size": self.hidden_size}


class Flatten(Spec):
    """Flatten every axis after the first.  Canonical order is torch's
    (C, H, W): a Dense after a Flatten of a channels-last feature map has
    its weight columns permuted by the Keras and Flax adapters."""

    kind = "Flatten"


ChildSpec = Union[Spec, Tuple[str, Spec]]


class Sequential(Spec):
    """Children applied in order.

    Children are numbered (``Sequential(a, b)`` gives keys ``"0"``, ``"1"``)
    unless named: ``Sequential({"block 0": a, "block 1": b})`` or
    ``seq.add(a, name="block 0")``, which keep their names in canonical
    parameter names (``0.block 1.2.weight``), as torch's ``add_module`` does.

    ``backend=`` builds and wraps at once and returns a ``Model`` handle.
    """

    kind = "Sequential"

    def __new__(cls, *layers, backend: Optional[str] = None, sample_input=None):
        self = super().__new__(cls)
        self.__init__(*layers)
        if backend is not None:
            return wrap(self, backend=backend, sample_input=sample_input)
        return self

    def __init__(self, *layers, backend: Optional[str] = None, sample_input=None):
        if getattr(self, "_initialised", False):
            return  # __new__ already ran __init__ (Python calls it again)
        self._initialised = True
        self.children: list = []  # list of (key, Spec)
        if len(layers) == 1 and isinstance(layers[0], Mapping):
            for name, layer in layers[0].items():
                self.add(layer, name=name)
        else:
            for layer in layers:
                self.add(layer)

    def add(self, layer: Spec, name: Optional[str] = None) -> "Sequential":
        """Append a child; ``name`` keeps it named instead of numbered."""
        if not isinstance(layer, Spec):
            raise TypeError(
                f"Sequential children must be multiparam.nn specs, got {type(layer).__name__}; "
                "wrap native models with mp.wrap instead")
        key = str(len(self.children)) if name is None else str(name)
        if not key or "." in key:
            raise ValueError(f"child name {key!r} must be non-empty and contain no '.'")
        if any(k == key for k, _ in self.children):
            raise ValueError(f"duplicate child name {key!r}")
        self.children.append((key, layer))
        return self

    @property
    def named(self) -> bool:
        """True when any child key is a name rather than its position."""
        return any(k != str(i) for i, (k, _) in enumerate(self.children))

    def __len__(self) -> int:
        return len(self.children)

    def __getitem__(self, i: int) -> Spec:
        return self.children[i][1]

    def __iter__(self) -> Iterable[Spec]:
        return iter(layer for _, layer in self.children)

    def _config(self) -> dict:
        return {k: v for k, v in self.children}

    def __repr__(self) -> str:
        inner = ", ".join(repr(v) if not self.named else f"{k!r}: {v!r}" for k, v in self.children)
        return f"Sequential({{{inner}}})" if self.named else f"Sequential({inner})"


# -- plain-data form, for other processes (the MXNet worker) and files ------------
def to_config(spec: Spec) -> dict:
    """A JSON-able description of ``spec``; a spec object used in two places
    is written once and referenced by id, so sharing survives the trip."""
    return _encoded(spec, {})


def _encoded(s: Spec, seen: dict) -> dict:
    if id(s) in seen:
        return {"ref": seen[id(s)]}
    seen[id(s)] = len(seen)
    cfg = {"id": seen[id(s)], "kind": type(s).__name__}
    if isinstance(s, Sequential):
        cfg["children"] = [[k, _encoded(c, seen)] for k, c in s.children]
    else:
        cfg["config"] = s._config()
    return cfg


def from_config(cfg: dict) -> Spec:
    """The spec written by :func:`to_config`."""
    return _decoded(cfg, {}, {cls.__name__: cls for cls in SPEC_CLASSES})


def _decoded(c: dict, made: dict, kinds: dict) -> Spec:
    if "ref" in c:
        return made[c["ref"]]
    cls = kinds.get(c["kind"])
    if cls is None:
        raise ValueError(f"unknown spec kind {c['kind']!r}; known: {', '.join(sorted(kinds))}")
    if cls is Sequential:
        s = Sequential()
        made[c["id"]] = s
        for key, child in c["children"]:
            s.add(_decoded(child, made, kinds), name=None if key == str(len(s.children)) else key)
    else:
        s = cls(**c.get("config", {}))
        made[c["id"]] = s
    return s


#: every spec class, by which ``from_config`` rebuilds specs (add new layers here)
SPEC_CLASSES = (Dense, ReLU, Conv2d, BatchNorm, LayerNorm, Embedding, LSTM, Flatten, Sequential)
