"""The base of every neutral layer description (``mp.nn``): :class:`Spec`.

It lives apart from ``multiparam.nn`` because the core needs to recognise a
spec (``mp.wrap(spec)``, ``m.init(where=mp.nn.Dense)``) while ``mp.nn``
needs the core to wrap what it builds (``mp.nn.Sequential(..., backend=)``);
this module depends on neither.
"""
from __future__ import annotations

from typing import Optional

from .backend import get_backend
from .registry import load_adapter


class Spec:
    """Base of every neutral layer description."""

    #: the neutral kind, also used as ``Layer.kind`` on wrapped models
    kind: str = "Spec"

    def build(self, backend: Optional[str] = None):
        """Build the native model of ``backend`` (default: the current one)."""
        return load_adapter(backend or get_backend()).build(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"{type(self).__name__}({args})"

    def _config(self) -> dict:
        return {}
