"""The current backend: set_backend, get_backend, use_backend, MULTIPARAM_BACKEND."""
from __future__ import annotations

import contextlib
import contextvars
import os
from typing import Iterator

from .registry import check_name, default_backend

ENV_VAR = "MULTIPARAM_BACKEND"

# A ContextVar, so use_backend() is local to the thread / asyncio task that
# entered it and set_backend() in one task does not leak into another.
_current: contextvars.ContextVar = contextvars.ContextVar("multiparam_backend", default=None)


def get_backend() -> str:
    """The current backend: the innermost use_backend(), else set_backend(),
    else $MULTIPARAM_BACKEND, else the first built-in backend (torch).  A
    bad name in the environment variable is an error listing the known names."""
    name = _current.get()
    if name is not None:
        return name
    env = os.environ.get(ENV_VAR)
    if env:
        return check_name(env.strip())
    return default_backend()


def set_backend(name: str) -> None:
    """Make ``name`` the current backend for this context (validated now;
    its framework is imported only when a model of it is built)."""
    _current.set(check_name(name))


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[str]:
    """``with use_backend("jax"): ...``: the backend inside the block; the
    previous one is restored on exit, even on error."""
    token = _current.set(check_name(name))
    try:
        yield name
    finally:
        _current.reset(token)
