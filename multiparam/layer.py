"""The Layer handle: one layer of a wrapped model, indexed like the
framework's own Sequential (``m[0]``, ``m[0][1][0]``, ``m[0]["block 1"]``).

A Layer reads its model's index (``Model.index()``) on every access, so it
follows ``refresh()`` and lazy shapes the same way the Model does.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Union

import numpy as np

from .errors import UnknownNameError
from .param import Param, format_shape

if TYPE_CHECKING:  # pragma: no cover
    from .adapters.base import LayerNode
    from .model import Model


class Layer:
    """One layer of a wrapped model, indexed like the framework's own
    Sequential: ``m[0]``, ``m[0][1][0]``, ``m[0]["block 1"]``."""

    def __init__(self, model: "Model", node: "LayerNode", path: str):
        self._model = model
        self._node = node
        self.path = path          #: canonical path from the root ("" for the root)

    @property
    def model(self) -> "Model":
        """The Model handle this layer belongs to."""
        return self._model

    @property
    def node(self) -> "LayerNode":
        """The adapter's description of this layer (package-internal)."""
        return self._node

    @property
    def key(self) -> str:
        return self._node.key

    @property
    def kind(self) -> str:
        """Neutral kind (Dense, ReLU, Sequential, ...) or the native class name."""
        return self._node.kind

    @property
    def native(self) -> Any:
        """The framework's own layer object."""
        return self._node.native

    @property
    def native_type(self) -> str:
        return self._node.native_type

    def _child_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def children(self) -> List["Layer"]:
        index = self._model.index()
        return [index.layers[self._child_path(c.key)] for c in self._node.children]

    def __len__(self) -> int:
        return len(self._node.children)

    def __iter__(self) -> Iterator["Layer"]:
        return iter(self.children())

    def __getitem__(self, key: Union[int, str]) -> Union["Layer", Param]:
        """A child layer by position or key, or one of this layer's own
        parameters by role (``m[2]["bias"]``)."""
        children = self._node.children
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            n = len(children)
            if not -n <= key < n:
                raise IndexError(f"layer {self.path or '<root>'!r} has {n} children; index {key} is out of range")
            return self._model.index().layers[self._child_path(children[key].key)]
        if isinstance(key, str):
            index = self._model.index()
            if any(c.key == key for c in children):
                return index.layers[self._child_path(key)]
            own = self.params()
            if key in own:
                return own[key]
            known = [c.key for c in children] + list(own)
            raise UnknownNameError(key, known, what=f"child or parameter of layer {self.path or '<root>'!r}")
        raise TypeError(f"layers are indexed by int or str, not {type(key).__name__}")

    def params(self) -> Dict[str, Param]:
        """This layer's own parameters by role: ``{"weight": Param, "bias": Param}``."""
        index = self._model.index()
        return {slot.leaf: index.params[self._child_path(slot.leaf)] for slot in self._node.params}

    def named_parameters(self, pattern: Optional[str] = None) -> Dict[str, Param]:
        """Parameters of this layer and its descendants, named relative to it
        (``net[0].named_parameters()`` gives ``weight``, ``bias``)."""
        prefix = f"{self.path}." if self.path else ""
        out: Dict[str, Param] = {}
        seen = set()
        for name, p in self._model.index().params.items():
            if not name.startswith(prefix) or id(p) in seen:
                continue
            rel = name[len(prefix):]
            if pattern is not None and not re.match(pattern, rel):
                continue
            seen.add(id(p))
            out[rel] = p
        return out

    def init(self, initializer, seed: Optional[int] = None, **kw):
        """Initialise this layer's parameters (see ``Model.init``)."""
        return self._model.init(initializer, where=self, seed=seed, **kw)

    def __repr__(self) -> str:
        params = ", ".join(f"{r}{format_shape(p.shape)}" for r, p in self.params().items())
        return f"Layer({self.path or '<root>'!r}, kind={self.kind}, native={type(self.native).__name__}" + (
            f", params: {params})" if params else ")")
