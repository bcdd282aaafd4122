"""Canonical state: ``state_dict`` and ``load_state_dict``.

A state dict maps canonical names to NumPy arrays in canonical layout, one
entry per parameter (a tied group once, under its first name) with
non-trainable state (BatchNorm running statistics) included.  Loading
validates every entry (names, shapes, dtypes) before it writes any, so a bad
state dict leaves the model as it was.
"""
from __future__ import annotations

import functools
import warnings
from collections import OrderedDict
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from . import dtypes
from . import progress as _progress
from .errors import MultiparamError, NotMaterializedError, UnknownNameError
from .param import Param, as_numpy
from .transaction import WritePlan, nbytes_of


class StateDict(OrderedDict):
    """``{canonical name: array}`` plus what a plain dict cannot carry: the
    tie groups of the model it came from and its backend."""

    ties: List[Tuple[str, ...]] = []
    backend: str = ""


class DeferredArray(NamedTuple):
    """A state dict entry known by its shape and dtype and read only when it
    is written: ``load`` gives each tensor of a file this way, so it is
    checked from the header and read at the write, one tensor at a time.
    ``read()`` gives a fresh array nobody else holds; ``read_into(out)``
    fills a C-contiguous array of its shape and dtype (a parameter's own
    memory, where the framework exposes it); ``view()``, where the source
    has one, a read-only array on the source's own memory (a file's
    mapping) for a write that copies the value into a layout of its own
    anyway.  ``in_order``: read on the writing thread in the order of the
    writes, never by a worker beside another write (a gather of a sharded
    parameter: with several processes, a collective each must make in the
    same order).  ``with_view(fn)``: ``fn`` of a read-only array of the
    value valid only until ``fn`` returns: ``view()``'s array where the
    source has one (a file's pages dropped after, as a load's copies drop
    them), a parameter's memory where its framework lends it (Gluon), else
    a read; for a write that converts the value's dtype in one pass, and
    a save writing it out."""

    shape: Tuple[int, ...]
    dtype: np.dtype
    read: Callable[[], np.ndarray]
    read_into: Optional[Callable[[np.ndarray], None]] = None
    view: Optional[Callable[[], np.ndarray]] = None
    in_order: bool = False
    with_view: Optional[Callable[[Callable[[np.ndarray], Any]], Any]] = None


def _given(value: np.ndarray, fn: Callable[[np.ndarray], Any]) -> Any:
    # DeferredArray.with_view over an array the caller holds
    return fn(value)


def _readable(value: Any) -> np.ndarray:
    """An entry's values to read: a deferred one's view of its source where
    it has one (a file's mapping: nothing copied), else a fresh read."""
    if isinstance(value, DeferredArray):
        return value.view() if value.view is not None else value.read()
    return as_numpy(value)


def _same_values(a: Any, b: Any) -> bool:
    """Whether two entries given for one tied parameter agree.  The same
    entry twice (a tie group expanded from a file that stores the tensor
    once) agrees without being read: comparing it with itself read the
    largest tensor of a tied language model twice and cost a GPT-2 load
    four times its copies.  Others are compared bit for bit where the
    dtypes match (two copies of one parameter: a NaN matches itself), by
    value where they do not."""
    if a is b:
        return True
    a, b = _readable(a), _readable(b)
    bits = dtypes.UNSIGNED_OF_SIZE.get(a.dtype.itemsize)
    if a.dtype == b.dtype and bits is not None and a.shape == b.shape:
        return bool(np.array_equal(a.view(bits), b.view(bits)))
    return bool(np.array_equal(a, b))


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` did not load (as torch's)."""

    missing_keys: List[str]
    unexpected_keys: List[str]


class LoadError(MultiparamError, ValueError):
    pass


class StateNote(UserWarning):
    """A note on state one side keeps and the other does not (torch's
    ``num_batches_tracked``): skipped, not an error."""


#: state only some frameworks keep, by the last part of its canonical name:
#: when one side of a load or transfer has it and the other does not, it is
#: skipped with a :class:`StateNote` instead of being a missing or
#: unexpected key (torch's BatchNorm step counter; no other framework counts)
FRAMEWORK_ONLY_STATE = ("num_batches_tracked",)


def is_framework_only(name: str) -> bool:
    """True for state one framework keeps and the others have no slot for
    (``num_batches_tracked``): a load or a port skips it rather than
    calling it missing or unexpected."""
    return name.rsplit(".", 1)[-1] in FRAMEWORK_ONLY_STATE


def state_dict(model) -> StateDict:
    """A copy of every parameter and state array, canonical names and layout."""
    return _collect(model, Param.numpy)


def state_views(model) -> StateDict:
    """``state_dict`` without the copies: each entry is the parameter's
    read-only ``value`` (a view of the framework's memory where it allows),
    for callers that only read it before the model changes again (``save``,
    ``transfer``)."""
    return _collect(model, lambda p: p.value)


def state_streams(model, contiguous: bool = False) -> StateDict:
    """``state_views`` for a caller that reads each entry once, in order
    (``save``, ``transfer``): where a read copies, each entry is a
    :class:`DeferredArray` read when it is written out, so the caller holds
    one copy at a time (one per core into a backend whose writes run side
    by side, ``Adapter.writes_in_parallel``; a gather, one at a time)
    instead of a second model.  Reads copy on a backend
    whose framework gives no view of its memory
    (``Adapter.value_reads_copy``: Keras, Gluon), and for a parameter on
    more than one device on any backend (its value is gathered into this
    process).
    ``contiguous``: each read gives C-contiguous memory
    (``Param.read_copy``)."""
    adapter, state = model.adapter, model.adapter_state
    copies = adapter.value_reads_copy
    # "on more than one device" straight from the adapter, asked once per
    # parameter (Param.is_sharded also describes the placement in canonical
    # axes: a fifth of a small transfer's time on 1000 parameters)
    may_shard = not copies and adapter.capability("sharding").supported

    def stream(p):
        gathers = may_shard and adapter.sharding(state, p.slot.ref) is not None
        if gathers:
            return DeferredArray(p.shape, p.dtype, functools.partial(p.read_copy, contiguous), p.read_into,
                                 in_order=True)
        if copies:
            # where the framework lends its memory (Gluon), a caller that
            # consumes the value at once reads it there, not a copy
            return DeferredArray(p.shape, p.dtype, functools.partial(p.read_copy, contiguous), p.read_into,
                                 with_view=functools.partial(p.lend, contiguous=contiguous))
        return p.value
    return _collect(model, stream)


def _collect(model, read) -> StateDict:
    out = StateDict()
    for name, p in model.named_parameters().items():
        if not p.materialized:
            raise NotMaterializedError(name, p.shape)
        out[name] = read(p)
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


def load_state_dict(model, d, strict: bool = True, progress: Optional[bool] = None,
                    description: str = "load") -> IncompatibleKeys:
    """Load ``d`` (a state dict from any backend) into ``model``, in place.

    Every entry is checked first: with ``strict`` the keys must match the
    model's parameters exactly (a tied parameter may be given under any of
    its names); each shape must equal the canonical shape and each dtype
    must cast under NumPy's 'same_kind' rule.  Nothing is written unless all
    entries pass.  ``progress``: a progress bar for long loads (see
    ``multiparam.progress``)."""
    index = model.index()
    ties = list(getattr(d, "ties", []) or [])
    given = _expand_ties(d, ties)
    matched = []         # (name, param, key in given) in model order
    used = set()
    missing = []
    for name, p in index.unique.items():
        key = next((a for a in p.aliases if a in given), None)
        if key is None:
            missing.append(name)
            continue
        present = [a for a in p.aliases if a in given]
        for other in present[1:]:
            if not _same_values(given[other], given[key]):
                raise LoadError(f"{key!r} and {other!r} are one parameter in this model but "
                                "the state dict gives them different values")
        used.update(present)
        matched.append((name, p, key))
    unexpected = [k for k in given if k not in used and k not in index.params]
    unexpected_orig = [k for k in unexpected if k in d]
    skipped = [k for k in unexpected_orig if is_framework_only(k)]
    kept = [k for k in missing if is_framework_only(k)]
    if skipped or kept:
        unexpected_orig = [k for k in unexpected_orig if k not in skipped]
        missing = [k for k in missing if k not in kept]
        what = skipped or kept
        warnings.warn(f"{len(what)} entries of state only one side keeps were "
                      f"{'skipped' if skipped else 'left as they are'} ({what[0]!r}"
                      f"{', ...' if len(what) > 1 else ''}): the {model.backend} model "
                      f"{'does not keep' if skipped else 'keeps'} it and the state dict "
                      f"{'does' if skipped else 'does not'}", StateNote, stacklevel=2)
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
    writes = _StateDictLoad(model.backend)
    total = 0
    for _name, p, key in matched:
        value = given[key]
        if isinstance(value, DeferredArray):
            writes.add_deferred(p, value.shape, np.dtype(value.dtype), value.read, value.read_into,
                                value.view, source=key, in_order=value.in_order, with_view=value.with_view)
        else:
            value = as_numpy(value)
            if isinstance(value, np.ndarray) and p.materialized and value.dtype != p.dtype:
                # a cast (a bfloat16 model into a float32 one): made at its
                # write, from the caller's array; cast here, every value
                # would be held twice until the last write
                writes.add_deferred(p, value.shape, value.dtype, functools.partial(np.array, value),
                                    source=key, with_view=functools.partial(_given, value))
            else:
                writes.add(p, value, source=key)
        total += nbytes_of(value.shape, value.dtype)
    with _progress.bar(description, total, len(writes), progress) as bar:
        writes.commit(on_write=lambda p, nbytes: bar.update(nbytes))   # every entry passed: now write
    return IncompatibleKeys(missing, unexpected_orig)


class _StateDictLoad(WritePlan):
    """A state dict's entries, checked like any write; a refusal names the
    state dict's key and the model's backend."""

    __slots__ = ("backend",)

    def __init__(self, backend: str):
        super().__init__()
        self.backend = backend

    def shape_message(self, param: Param, shape: tuple, key: Any) -> str:
        return (f"{key!r} does not fit {param.name!r}: shape {shape} where the "
                f"{self.backend} model has {param.shape}")

    def dtype_message(self, param: Param, dtype: np.dtype, key: Any) -> str:
        return f"{key!r} does not fit: " + super().dtype_message(param, dtype, key)
