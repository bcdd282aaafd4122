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
from typing import Dict, Iterable, List, Optional, Tuple

from .errors import BackendNotInstalledError, UnknownBackendError, UnsupportedModelError


@dataclass(frozen=True)
class BackendSpec:
    """Every fact about one backend, in one place.  Nothing outside
    ``multiparam/adapters/`` names a backend; it reads these instead."""

    name: str
    module: str               #: the adapter package (exposes ``ADAPTER``)
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


BACKENDS: Dict[str, BackendSpec] = {
    "torch": BackendSpec(
        "torch", "multiparam.adapters.torch", ("torch",), "torch",
        "Install it with `pip install 'multiparam[torch]'` (pins torch==2.13.0) or run `tox -e torch`.",
        versions=("torch",), environment="torch", display="PyTorch", color="#ee4c2c",
        wraps="a torch.nn.Module"),
    "jax": BackendSpec(
        "jax", "multiparam.adapters.jax", ("flax", "jax"), "jax and flax",
        "Install them with `pip install 'multiparam[jax]'` or run `tox -e jax`.",
        versions=("jax", "flax"), environment="jax", display="JAX/Flax", color="#5e97f6",
        wraps="a Flax linen or NNX Module"),
    "tensorflow": BackendSpec(
        "tensorflow", "multiparam.adapters.tensorflow", ("keras", "tensorflow"), "tensorflow and keras 3",
        "Install them with `pip install 'multiparam[tensorflow]'` or run `tox -e tensorflow`.",
        versions=("tensorflow", "keras"), import_after=("torch",), environment="tensorflow",
        display="TensorFlow/Keras", color="#ff8f00", wraps="a Keras 3 Layer or Model"),
    "mxnet": BackendSpec(
        "mxnet", "multiparam.adapters.mxnet", ("mxnet",), "mxnet 1.9.1 (with numpy<1.24)",
        "MXNet needs its own environment: run `tox -e mxnet`, or "
        "`pip install 'multiparam[mxnet]'` in a Python 3.11 venv without the other frameworks.",
        versions=("mxnet",), environment="mxnet", own_environment=True, display="MXNet/Gluon",
        color="#3c9b4a", wraps="an MXNet Gluon Block"),
}


def import_order(names: Iterable[str]) -> List[str]:
    """``names`` in an order that is safe to import in one process: each
    backend after those it must follow (``import_after``), otherwise in
    registry order."""
    names = list(dict.fromkeys(names))
    specs = all_backends()
    rank = {n: i for i, n in enumerate(specs)}
    out: List[str] = []

    def place(name: str, stack: tuple) -> None:
        if name in out or name in stack:
            return
        for before in getattr(specs.get(name), "import_after", ()):
            if before in names:
                place(before, stack + (name,))
        out.append(name)

    for name in sorted(names, key=lambda n: rank.get(n, len(rank))):
        place(name, ())
    return out


def versions(name: str) -> Dict[str, str]:
    """``{module: __version__}`` for the modules that describe backend
    ``name`` (imports them; for tools, not for library code paths)."""
    out = {}
    for module in all_backends()[name].versions:
        try:
            out[module] = importlib.import_module(module).__version__
        except Exception:  # a broken install is shown, not fatal
            out[module] = "?"
    return out


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
    kinds = [spec.wraps or f"a {name} model" for name, spec in all_backends().items()]
    return (f"a multiparam.nn spec, {', '.join(kinds[:-1])} or {kinds[-1]} "
            f"(backends: {', '.join(available_backends())})")
