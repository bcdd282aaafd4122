"""What multiparam knows about layer classes: each parameter's role and layout.

Adapters recognise their framework's own layers.  Everything else (a
Hugging Face ``Conv1D`` that stores its weight ``(in, out)``, a Llama
``RMSNorm`` whose ``weight`` is a norm scale, your own layer) is described
here, once, by class:

    mp.register_layer(MyNorm, weight="scale")            # a role
    mp.register_layer(MyProjection, weight="dense_in_out")  # a layout (role: weight)
    mp.register_layer(MyCell, kernel=mp.ParamKind("weight", "dense_in_out"))

A registered class's parameters then take part in names, layout, init, fans
and transfer like a built-in layer's.  Lookups follow the MRO, so a subclass
is covered too, and match classes by ``module.qualname`` as well as by
object, so an adapter can describe a library's classes (``transformers``)
without importing the library.

Roles drive init (``mp.init``): ``weight`` and ``embedding`` get the
initializer, ``bias`` 0, ``scale`` 1, ``running_mean`` 0, ``running_var``
1, ``counter`` is left alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Union

from .adapters.base import CHANNELS_LAST_KERNEL, DENSE_IN_OUT, SAME

#: semantic roles a parameter can have (framework-specific ones pass through)
ROLES = ("weight", "bias", "scale", "embedding", "running_mean", "running_var", "counter")
#: layouts a registered parameter can declare (see ``multiparam.layout``)
LAYOUT_TAGS = (SAME, DENSE_IN_OUT, CHANNELS_LAST_KERNEL)


@dataclass(frozen=True)
class ParamKind:
    """One parameter of a registered layer: its role and native layout."""

    role: str = "weight"
    layout: str = SAME

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; known roles: {', '.join(ROLES)}")
        if self.layout not in LAYOUT_TAGS:
            raise ValueError(f"unknown layout tag {self.layout!r}; known layouts: {', '.join(LAYOUT_TAGS)}")


def _kind(attr: str, spec: Union[str, ParamKind]) -> ParamKind:
    """A ``ParamKind`` from a keyword of :func:`register_layer`: a role name,
    a layout tag (role ``weight``), or a ParamKind."""
    if isinstance(spec, ParamKind):
        return spec
    if isinstance(spec, str):
        if spec in ROLES:
            return ParamKind(role=spec)
        if spec in LAYOUT_TAGS:
            return ParamKind(role="weight" if attr != "bias" else "bias", layout=spec)
    raise ValueError(f"{attr}={spec!r}: use a role ({', '.join(ROLES)}), a layout tag "
                     f"({', '.join(LAYOUT_TAGS)}) or mp.ParamKind(role, layout)")


_REGISTRY: Dict[Union[type, str], Dict[str, ParamKind]] = {}
#: answers that depend only on a layer's class and the registry (``lookup``,
#: and the per-class facts adapters memoise with :func:`per_class`):
#: emptied whenever the registry changes
_PER_CLASS: Dict[tuple, object] = {}
#: the same dict, for adapters that look facts up inline on a hot walk
#: (``CLASS_CACHE.get(key)``, then :func:`per_class`'s function on a miss)
CLASS_CACHE = _PER_CLASS


def _key(cls: Union[type, str]) -> Union[type, str]:
    if isinstance(cls, str):
        if "." not in cls:
            raise ValueError(f"name a class by object or by 'module.QualName', not {cls!r}")
        return cls
    if not isinstance(cls, type):
        raise TypeError(f"register_layer takes a class (or 'module.QualName'), not {type(cls).__name__}")
    return cls


def register_layer(cls: Union[type, str], **params: Union[str, ParamKind]) -> None:
    """Declare the roles and layouts of ``cls``'s parameters, by attribute
    name (the name the framework gives them: torch's attribute, Keras'
    variable attribute, Flax's param name, Gluon's ``params.get`` name).

    Every keyword is checked before anything is registered; registering a
    class again replaces its entry."""
    key = _key(cls)
    if not params:
        raise ValueError("register_layer needs at least one parameter, e.g. weight='scale'")
    kinds = {attr: _kind(attr, spec) for attr, spec in params.items()}
    _REGISTRY[key] = kinds
    _PER_CLASS.clear()


def unregister_layer(cls: Union[type, str]) -> None:
    """Forget ``cls`` (tests, or a class registered by mistake)."""
    _REGISTRY.pop(_key(cls), None)
    _PER_CLASS.clear()


def lookup(obj_or_cls) -> Optional[Dict[str, ParamKind]]:
    """The registered parameter kinds of a layer (or its class): the first
    class in its MRO that is registered, by object or by qualified name
    (memoised per class until the registry changes)."""
    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    key = (lookup, cls)
    try:
        return _PER_CLASS[key]
    except KeyError:
        pass
    found = None
    for c in cls.__mro__:
        kinds = _REGISTRY.get(c) or _REGISTRY.get(f"{c.__module__}.{c.__qualname__}")
        if kinds is not None:
            found = kinds
            break
    _PER_CLASS[key] = found
    return found


def per_class(fn):
    """Memoise ``fn(cls, *args)``, a fact about a layer *class* that may
    depend on the registry (a parameter's role and layout), until the
    registry changes: a first look at a model of 500 Dense layers then
    classifies one Dense, not 500."""
    def memoised(cls, *args):
        key = (memoised, cls) + args
        try:
            return _PER_CLASS[key]
        except KeyError:
            out = _PER_CLASS[key] = fn(cls, *args)
            return out
    memoised.__wrapped__ = fn
    memoised.__doc__ = fn.__doc__
    return memoised
