"""What a backend is, said without importing it: :class:`BackendSpec`.

A spec is plain data: the registry reads specs to list backends, to say how
to install one, and to dispatch a native model to its backend by the
top-level package of its class (``roots``), all without importing a
framework.  The adapter itself (``module``) is imported only when a model of
that backend is wrapped or built.

The built-in backends' specs live in ``multiparam.adapters.builtin``; a
third-party package gives its spec through the ``multiparam.adapters`` entry
point group (see ``multiparam.registry``).  This module imports nothing from
multiparam, so a spec module can import it without a cycle.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping, Tuple


@dataclass(frozen=True)
class BackendSpec:
    """Every fact about one backend, in one place.  Nothing outside
    ``multiparam/adapters/`` names a backend; it reads these instead."""

    name: str                 #: the backend's name (``mp.set_backend(name)``)
    module: str               #: the adapter module; exposes ``ADAPTER``, imported on first use
    roots: Tuple[str, ...]    #: top-level packages whose classes this backend wraps
    requires: str             #: what must import, for error messages
    install: str              #: how to get it
    #: modules whose ``__version__`` describe this backend (tour, compare, benchmarks)
    versions: Tuple[str, ...] = ()
    #: backends that must be imported before this one when both live in one
    #: process (TensorFlow after torch: the reverse order crashes here)
    import_after: Tuple[str, ...] = ()
    #: the tox environment whose interpreter has this backend; a backend
    #: whose framework cannot share the main environment (MXNet needs
    #: numpy<1.24) is reached through ``<environment>-worker`` instead
    environment: str = ""
    #: True when it can never share an environment with the other backends
    own_environment: bool = False
    #: the name people call the framework by (tour tabs, HTML headings)
    display: str = ""
    #: one colour per backend for plots (the framework's own brand colour)
    color: str = "#777777"
    #: a short phrase of what it wraps (error messages, ``supported_text``)
    wraps: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "BackendSpec":
        """A spec from a mapping of its fields (a third-party spec module
        may hold a plain dict so that it need not import multiparam).
        Raises ``TypeError`` for a missing or unknown field."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TypeError(f"unknown BackendSpec fields {unknown}; known: {sorted(known)}")
        return cls(**data)

    def __post_init__(self) -> None:
        for name in ("name", "module"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise TypeError(f"BackendSpec.{name} must be a non-empty string, got {getattr(self, name)!r}")
        # frozen: normalise a list given for a tuple field in place
        for name in ("roots", "versions", "import_after"):
            object.__setattr__(self, name, _names(getattr(self, name), name))


def _names(value: Any, field_name: str) -> Tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"BackendSpec.{field_name} must be a sequence of strings, got {value!r}")
    return tuple(value)
