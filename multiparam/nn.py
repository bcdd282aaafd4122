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


class Spec:
    """Base of every neutral layer description."""

    #: the neutral kind, also used as ``Layer.kind`` on wrapped models
    kind: str = "Spec"

    def build(self, backend: Optional[str] = None):
        """Build the native model of ``backend`` (default: the current one)."""
        from .registry import load_adapter
        from .backend import get_backend

        return load_adapter(backend or get_backend()).build(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"{type(self).__name__}({args})"

    def _config(self) -> dict:
        return {}


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
            from .model import wrap

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
    seen: dict = {}

    def enc(s: Spec) -> dict:
        if id(s) in seen:
            return {"ref": seen[id(s)]}
        seen[id(s)] = len(seen)
        cfg = {"id": seen[id(s)], "kind": type(s).__name__}
        if isinstance(s, Sequential):
            cfg["children"] = [[k, enc(c)] for k, c in s.children]
        else:
            cfg["config"] = s._config()
        return cfg

    return enc(spec)


def from_config(cfg: dict) -> Spec:
    """The spec written by :func:`to_config`."""
    made: dict = {}
    kinds = {cls.__name__: cls for cls in SPEC_CLASSES}

    def dec(c: dict) -> Spec:
        if "ref" in c:
            return made[c["ref"]]
        cls = kinds.get(c["kind"])
        if cls is None:
            raise ValueError(f"unknown spec kind {c['kind']!r}; known: {', '.join(sorted(kinds))}")
        if cls is Sequential:
            s = Sequential()
            made[c["id"]] = s
            for key, child in c["children"]:
                s.add(dec(child), name=None if key == str(len(s.children)) else key)
        else:
            s = cls(**c.get("config", {}))
            made[c["id"]] = s
        return s

    return dec(cfg)


#: every spec class, by which ``from_config`` rebuilds specs (add new layers here)
SPEC_CLASSES = (Dense, ReLU, Sequential)
