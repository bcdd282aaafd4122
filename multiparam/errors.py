"""Every error multiparam raises, each saying what went wrong and what to do.

All derive from :class:`MultiparamError`, and each also derives from the
built-in exception a Python user would try to catch (``KeyError`` for an
unknown name, ``ValueError`` for a bad shape, ...).
"""
from __future__ import annotations

import difflib
from typing import Iterable, Sequence


class MultiparamError(Exception):
    """Base of all multiparam errors."""


class UnknownBackendError(MultiparamError, ValueError):
    def __init__(self, name: str, known: Sequence[str]):
        self.name, self.known = name, tuple(known)
        hint = _close(name, known)
        super().__init__(
            f"unknown backend {name!r}; known backends: {', '.join(known)}" + hint)


class BackendNotInstalledError(MultiparamError, ImportError):
    def __init__(self, backend: str, missing: str, how: str):
        self.backend = backend
        super().__init__(
            f"backend {backend!r} needs {missing}, which cannot be imported here. {how}")


class UnsupportedModelError(MultiparamError, TypeError):
    def __init__(self, obj: object, supported: str):
        cls = type(obj)
        super().__init__(
            f"cannot wrap an object of type {cls.__module__}.{cls.__qualname__}; "
            f"multiparam wraps {supported}")


class UnknownNameError(MultiparamError, KeyError):
    """A parameter or layer name that does not exist; suggests close ones."""

    def __init__(self, name: str, known: Iterable[str], what: str = "parameter"):
        known = list(known)
        self.name, self.known = name, known
        self.suggestions = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
        msg = f"no {what} named {name!r}"
        if self.suggestions:
            msg += "; did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        elif known:
            shown = ", ".join(repr(k) for k in known[:8])
            msg += f"; known: {shown}" + (", ..." if len(known) > 8 else "")
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class ShapeError(MultiparamError, ValueError):
    pass


class DtypeError(MultiparamError, TypeError):
    pass


class NotMaterializedError(MultiparamError, RuntimeError):
    """A parameter whose shape the framework does not know yet."""

    def __init__(self, name: str, shape: tuple):
        shown = "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")" if shape else "unknown"
        super().__init__(
            f"parameter {name!r} has no value yet (shape {shown}): the framework infers its "
            "input size on the first forward. Run the model once (m(X)) or wrap it with "
            "mp.wrap(model, sample_input=X).")


class ReadOnlyError(MultiparamError, AttributeError):
    pass


class CapabilityError(MultiparamError, NotImplementedError):
    """A backend that truly cannot do something; says why."""

    def __init__(self, backend: str, capability: str, reason: str):
        self.backend, self.capability, self.reason = backend, capability, reason
        super().__init__(f"backend {backend!r} cannot {capability}: {reason}")


def _close(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


class InitError(MultiparamError, ValueError):
    """A bad ``m.init`` call: an unknown initializer, a ``where`` that
    selects nothing, a layer with no known framework default.  Raised before
    any parameter is written."""
