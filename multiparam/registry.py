"""The one registry of backends: names, adapter modules, and how to find them.

Everything that lists backends to users (errors, docs, CLI help) reads
:data:`BACKENDS` (plus third-party entry points), never a literal list.

Dispatch on a native model looks at the top-level package of each class in
its MRO (``torch``, ``flax``, ``keras``, ``mxnet``) and only considers
packages already in ``sys.modules``: an object of a framework's class
cannot exist unless that framework was imported, so no framework is ever
imported just to ask "is this yours?" (the array-api-compat approach).
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from .errors import BackendNotInstalledError, UnknownBackendError, UnsupportedModelError


@dataclass(frozen=True)
class BackendSpec:
    name: str
    module: str               # the adapter module
    roots: Tuple[str, ...]    # top-level packages whose classes this backend wraps
    requires: str             # what must import, for error messages
    install: str              # how to get it


BACKENDS: Dict[str, BackendSpec] = {
    "torch": BackendSpec(
        "torch", "multiparam.adapters.torch", ("torch",), "torch",
        "Install it with `pip install 'multiparam[torch]'` (pins torch==2.13.0) or run `tox -e torch`."),
    "jax": BackendSpec(
        "jax", "multiparam.adapters.jax", ("flax", "jax"), "jax and flax",
        "Install them with `pip install 'multiparam[jax]'` or run `tox -e jax`."),
    "tensorflow": BackendSpec(
        "tensorflow", "multiparam.adapters.tensorflow", ("keras", "tensorflow"), "tensorflow and keras 3",
        "Install them with `pip install 'multiparam[tensorflow]'` or run `tox -e tensorflow`."),
    "mxnet": BackendSpec(
        "mxnet", "multiparam.adapters.mxnet", ("mxnet",), "mxnet 1.9.1 (with numpy<1.24)",
        "MXNet needs its own environment: run `tox -e mxnet`, or "
        "`pip install 'multiparam[mxnet]'` in a Python 3.11 venv without the other frameworks."),
}

ENTRY_POINT_GROUP = "multiparam.adapters"
_third_party: Optional[Dict[str, BackendSpec]] = None
_loaded: dict = {}


def _entry_point_backends() -> Dict[str, BackendSpec]:
    """Backends registered by other packages.

    An entry point ``name = package.module`` in the ``multiparam.adapters``
    group names an adapter module exposing ``ADAPTER`` and ``ROOTS`` (the
    top-level packages its models come from)."""
    global _third_party
    if _third_party is None:
        from importlib.metadata import entry_points

        found = {}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name not in BACKENDS:
                found[ep.name] = BackendSpec(ep.name, ep.value, (), ep.name,
                                             f"Install the package that provides it ({ep.value}).")
        _third_party = found
    return _third_party


def all_backends() -> Dict[str, BackendSpec]:
    return {**BACKENDS, **_entry_point_backends()}


def available_backends() -> list:
    """Every registered backend name, built-in first.  Registered does not
    mean importable here: see :func:`importable_backends`."""
    return list(all_backends())


def importable_backends() -> list:
    """The registered backends whose framework can be imported here (this
    imports them; use it in tools, not in library code paths)."""
    out = []
    for name in all_backends():
        try:
            load_adapter(name)
        except BackendNotInstalledError:
            continue
        out.append(name)
    return out


def check_name(name: str) -> str:
    specs = all_backends()
    if name not in specs:
        raise UnknownBackendError(name, list(specs))
    return name


def load_adapter(name: str):
    """The adapter instance for ``name``, importing its framework now."""
    check_name(name)
    if name in _loaded:
        return _loaded[name]
    spec = all_backends()[name]
    try:
        module = importlib.import_module(spec.module)
    except ImportError as exc:
        if exc.name and exc.name.startswith("multiparam"):
            raise
        raise BackendNotInstalledError(name, spec.requires, spec.install) from exc
    adapter = module.ADAPTER
    _loaded[name] = adapter
    return adapter


def backend_of(obj) -> str:
    """The backend whose framework defined ``obj``'s class, without importing
    any framework."""
    specs = all_backends()
    for cls in type(obj).__mro__:
        root = cls.__module__.partition(".")[0]
        for spec in specs.values():
            if root in spec.roots and root in sys.modules:
                return spec.name
    # third-party adapters declare their roots on the module; ask only loaded ones
    for name in _entry_point_backends():
        adapter = _loaded.get(name)
        if adapter is not None and adapter.is_model(obj):
            return name
    raise UnsupportedModelError(obj, supported_text())


def supported_text() -> str:
    return ("a multiparam.nn spec, torch.nn.Module, a Flax linen or NNX Module, "
            "a Keras 3 Layer or Model, or an MXNet Gluon Block "
            f"(backends: {', '.join(available_backends())})")
