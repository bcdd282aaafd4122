"""Canonical state: ``state_dict``, ``load_state_dict`` and ``transfer``.

A state dict maps canonical names to NumPy arrays in canonical layout, one
entry per parameter (a tied group once, under its first name) with
non-trainable state (BatchNorm running statistics) included.  Loading
validates every entry (names, shapes, dtypes) before it writes any, so a bad
state dict leaves the model as it was.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, NamedTuple, Tuple

import numpy as np

from .errors import DtypeError, MultiparamError, NotMaterializedError, ShapeError, UnknownNameError
from .param import as_numpy, check_cast


class StateDict(OrderedDict):
    """``{canonical name: array}`` plus what a plain dict cannot carry: the
    tie groups of the model it came from and its backend."""

    ties: List[Tuple[str, ...]] = []
    backend: str = ""


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` did not load (as torch's)."""

    missing_keys: List[str]
    unexpected_keys: List[str]


class LoadError(MultiparamError, ValueError):
    pass


def state_dict(model) -> StateDict:
    """A copy of every parameter and state array, canonical names and layout."""
    out = StateDict()
    for name, p in model.named_parameters().items():
        if not p.materialized:
            raise NotMaterializedError(name, p.shape)
        out[name] = p.numpy()
    out.ties = model.ties()
    out.backend = model.backend
    return out


def _expand_ties(d, ties) -> Dict[str, np.ndarray]:
    """Every name of a tied group gets the group's array, so a destination
    without that tie still receives values for each of its parameters."""
    full = dict(d)
    for group in ties:
        have = [n for n in group if n in full]
        if have:
            for n in group:
                full.setdefault(n, full[have[0]])
    return full


def load_state_dict(model, d, strict: bool = True) -> IncompatibleKeys:
    """Load ``d`` (a state dict from any backend) into ``model``, in place.

    Every entry is checked first: with ``strict`` the keys must match the
    model's parameters exactly (a tied parameter may be given under any of
    its names); each shape must equal the canonical shape and each dtype
    must cast under NumPy's 'same_kind' rule.  Nothing is written unless all
    entries pass."""
    index = model._index()
    ties = list(getattr(d, "ties", []) or [])
    given = _expand_ties(d, ties)
    plan = []            # (param, array) in model order
    used = set()
    missing = []
    for name, p in index.unique.items():
        key = next((a for a in p.aliases if a in given), None)
        if key is None:
            missing.append(name)
            continue
        present = [a for a in p.aliases if a in given]
        for other in present[1:]:
            if not np.array_equal(as_numpy(given[other]), as_numpy(given[key])):
                raise LoadError(f"{key!r} and {other!r} are one parameter in this model but "
                                "the state dict gives them different values")
        used.update(present)
        plan.append((name, p, key))
    unexpected = [k for k in given if k not in used and k not in index.params]
    unexpected_orig = [k for k in unexpected if k in d]
    if strict and (missing or unexpected_orig):
        parts = []
        if missing:
            parts.append(f"missing keys: {missing}")
        if unexpected_orig:
            hints = []
            for k in unexpected_orig[:3]:
                hint = UnknownNameError(k, list(index.params)).suggestions
                if hint:
                    hints.append(f"{k!r} (did you mean {hint[0]!r}?)")
            parts.append(f"unexpected keys: {unexpected_orig}" + (f"; {', '.join(hints)}" if hints else ""))
        raise LoadError(f"state dict does not match the {model.backend} model: " + "; ".join(parts))
    checked = []
    for name, p, key in plan:
        if not p.materialized:
            raise NotMaterializedError(name, p.shape)
        arr = as_numpy(given[key])
        if tuple(arr.shape) != tuple(p.shape):
            raise ShapeError(f"{key!r} does not fit {name!r}: shape {tuple(arr.shape)} where the "
                             f"{model.backend} model has {p.shape}")
        try:
            check_cast(arr.dtype, p.dtype, repr(name))
        except DtypeError as exc:
            raise DtypeError(f"{key!r} does not fit: {exc}") from None
        checked.append((p, arr.astype(p.dtype, copy=False)))
    for p, arr in checked:          # all checks passed: now write
        p._write_canonical(arr)
    return IncompatibleKeys(missing, unexpected_orig)


def transfer(src, dst, strict: bool = True) -> IncompatibleKeys:
    """Copy every parameter of ``src`` into ``dst``, any backend to any
    backend (both Model handles, or anything ``mp.wrap`` takes).  The
    architectures must match by canonical name and shape; the error names
    the first parameter that does not fit, and ``dst`` is then unchanged."""
    from .model import Model, wrap

    src = src if isinstance(src, Model) else wrap(src)
    dst = dst if isinstance(dst, Model) else wrap(dst)
    if src.native is dst.native:
        return load_state_dict(dst, state_dict(src), strict=strict)
    # no state_dict copy: the src's read-only values (zero-copy views on
    # torch and JAX) go straight to the dst's writes, which copy them once
    # into the dst's native layout (Param._write_canonical)
    views = StateDict()
    for name, p in src.named_parameters().items():
        if not p.materialized:
            raise NotMaterializedError(name, p.shape)
        views[name] = p.value
    views.ties = src.ties()
    views.backend = src.backend
    return load_state_dict(dst, views, strict=strict)
