"""The one registry of backends: names, adapter modules, and how to find them.

Everything that lists backends to users (errors, docs, CLI help) reads
:func:`all_backends`, never a literal list.  A backend is described by a
:class:`~multiparam.backend_spec.BackendSpec`, plain data that imports no
framework:

- the built-in backends' specs are the table in ``multiparam.adapters.builtin``
  (:data:`BACKENDS` here, by name, in the order users see them; the first is
  the default backend);
- another package adds a backend through the ``multiparam.adapters`` entry
  point group.  The entry point's name is the backend's name and its object
  is the backend's spec, a ``BackendSpec`` or a mapping of its fields, in a
  module that imports no framework::

      # pyproject.toml of the package "toy-multiparam"
      [project.entry-points."multiparam.adapters"]
      toy = "toy_multiparam.spec:SPEC"

      # toy_multiparam/spec.py
      from multiparam import BackendSpec
      SPEC = BackendSpec(name="toy", module="toy_multiparam.adapter",
                         roots=("toyframework",), requires="toyframework",
                         install="pip install toy-multiparam")

  Listing backends reads the spec only; the adapter module (``module``,
  exposing ``ADAPTER``) and its framework are imported the first time a
  model of that backend is wrapped or built.  An entry point that cannot
  be read is skipped with a warning that says why.

Dispatch on a native model looks at the top-level package of each class in
its MRO and picks the backend that declares it in ``roots`` (``torch``,
``flax``, ``keras``, ``mxnet``, ``toyframework``), the same way for built-in
and third-party backends.  Only packages already in ``sys.modules`` count:
an object of a framework's class cannot exist unless that framework was
imported, so no framework is ever imported just to ask "is this yours?"
(the array-api-compat approach).
"""
from __future__ import annotations

import importlib
import sys
import warnings
from importlib.metadata import entry_points
from typing import Dict, Iterable, List, Mapping, Optional

from .adapters.builtin import BUILTIN_BACKENDS
from .backend_spec import BackendSpec
from .errors import BackendNotInstalledError, UnknownBackendError, UnsupportedModelError

__all__ = [
    "BackendSpec", "BACKENDS", "ENTRY_POINT_GROUP", "all_backends", "available_backends",
    "importable_backends", "default_backend", "check_name", "load_adapter", "backend_of",
    "backend_of_type", "supported_text", "import_order", "versions",
]

#: the built-in backends by name, in the order users see them
BACKENDS: Dict[str, BackendSpec] = {spec.name: spec for spec in BUILTIN_BACKENDS}

ENTRY_POINT_GROUP = "multiparam.adapters"

_specs_cache: Optional[Dict[str, BackendSpec]] = None   # built-in, then entry points
_root_owner: Optional[Dict[str, str]] = None           # top-level package -> backend name
_loaded: dict = {}                                     # backend name -> its ADAPTER


def default_backend() -> str:
    """The backend used when none is chosen: the first built-in one."""
    return next(iter(BACKENDS))


def import_order(names: Iterable[str]) -> List[str]:
    """``names`` in an order that is safe to import in one process: each
    backend after those it must follow (``import_after``), otherwise in
    registry order."""
    names = list(dict.fromkeys(names))
    specs = all_backends()
    rank = {n: i for i, n in enumerate(specs)}
    out: List[str] = []
    for name in sorted(names, key=lambda n: rank.get(n, len(rank))):
        _place(name, (), names, specs, out)
    return out


def _place(name: str, stack: tuple, names: List[str], specs: dict, out: List[str]) -> None:
    """Append ``name`` to ``out`` after the backends it must follow."""
    if name in out or name in stack:
        return
    for before in getattr(specs.get(name), "import_after", ()):
        if before in names:
            _place(before, stack + (name,), names, specs, out)
    out.append(name)


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


def _entry_point_backends() -> Dict[str, BackendSpec]:
    """The specs other packages register in the ``multiparam.adapters``
    entry point group (see the module docstring); imports no framework."""
    found: Dict[str, BackendSpec] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in BACKENDS or ep.name in found:
            continue   # a built-in name, or the same distribution seen twice on sys.path
        try:
            found[ep.name] = _spec_of_entry_point(ep)
        except Exception as exc:   # a broken third-party package must not break multiparam
            warnings.warn(f"multiparam ignores the entry point {ep.name} = {ep.value} in group "
                          f"{ENTRY_POINT_GROUP!r}: {exc}", RuntimeWarning, stacklevel=3)
    return found


def _spec_of_entry_point(ep) -> BackendSpec:
    obj = ep.load()
    if isinstance(obj, BackendSpec):
        spec = obj
    elif isinstance(obj, Mapping):
        spec = BackendSpec.from_mapping(obj)
    else:
        raise TypeError(f"it names a {type(obj).__name__}, not a BackendSpec or a mapping of its "
                        f"fields; point it at one, e.g. {ep.name} = package.spec:SPEC")
    if spec.name != ep.name:
        raise ValueError(f"the spec it names is for backend {spec.name!r}; the entry point's "
                         "name must be the backend's name")
    return spec


def _specs() -> Dict[str, BackendSpec]:
    global _specs_cache
    if _specs_cache is None:
        _specs_cache = {**BACKENDS, **_entry_point_backends()}
    return _specs_cache


def all_backends() -> Dict[str, BackendSpec]:
    """Every registered backend's spec by name: built-in first, then those
    registered through entry points (read once, on first use)."""
    return dict(_specs())


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
    """``name`` if it is a registered backend, else ``UnknownBackendError``
    listing the registered ones."""
    specs = _specs()
    if name not in specs:
        raise UnknownBackendError(name, list(specs))
    return name


def load_adapter(name: str):
    """The adapter instance for ``name``, importing its framework now."""
    if name in _loaded:
        return _loaded[name]
    spec = _specs()[check_name(name)]
    try:
        module = importlib.import_module(spec.module)
    except ImportError as exc:
        if exc.name and exc.name.startswith("multiparam"):
            raise
        raise BackendNotInstalledError(name, spec.requires, spec.install) from exc
    adapter = module.ADAPTER
    _loaded[name] = adapter
    return adapter


def backend_of_type(cls: type) -> Optional[str]:
    """The backend whose framework defined ``cls`` (or one of its bases),
    or None; imports no framework (see the module docstring)."""
    global _root_owner
    if _root_owner is None:
        owner: Dict[str, str] = {}
        for spec_name, spec in _specs().items():
            for root in spec.roots:
                owner.setdefault(root, spec_name)   # a root two backends claim: the first registered
        _root_owner = owner
    for klass in cls.__mro__:
        root = (klass.__module__ or "").partition(".")[0]
        name = _root_owner.get(root)
        if name is not None and sys.modules.get(root) is not None:
            return name
    return None


def backend_of(obj) -> str:
    """The backend whose framework defined ``obj``'s class, without importing
    any framework; ``UnsupportedModelError`` when no backend claims it."""
    name = backend_of_type(type(obj))
    if name is None:
        raise UnsupportedModelError(obj, supported_text())
    return name


def supported_text() -> str:
    kinds = [spec.wraps or f"a {name} model" for name, spec in all_backends().items()]
    return (f"a multiparam.nn spec, {', '.join(kinds[:-1])} or {kinds[-1]} "
            f"(backends: {', '.join(available_backends())})")
