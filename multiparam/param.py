"""The Param handle: one parameter, the same on every backend.

All validation lives in the handles and in ``multiparam.transaction``
(shape, dtype, materialisation), so an adapter's ``write`` only ever
receives a value that is already checked, cast and in native layout: a bad
``set`` raises before anything is written.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, Hashable, Optional

import numpy as np

from . import fastcopy
from . import layout as _layout
from .adapters.base import DENSE_IN_OUT, SAME, Composite
from . import sharding as _sharding
from .errors import NotMaterializedError, ReadOnlyError
from .registry import backend_of_type, load_adapter
from .transaction import WritePlan

if TYPE_CHECKING:  # pragma: no cover
    from .adapters.base import ParamSlot
    from .model import Model


def as_numpy(value: Any) -> np.ndarray:
    """Any framework's array (or tensor, variable, native parameter, Param,
    list, scalar) as a NumPy array, importing no framework: a value of a
    backend's class is converted by that backend's adapter
    (``Adapter.to_numpy``), anything else by ``np.asarray``."""
    if isinstance(value, (np.ndarray, _sharding.Blocks)):   # Blocks: read block by block later
        return value
    backend = backend_of_type(type(value))
    if backend is not None:
        return load_adapter(backend).to_numpy(value)
    return np.asarray(value)    # lists, scalars, a Param (its read-only value)


def canonical_shape(slot: "ParamSlot", shape: Optional[tuple]) -> Optional[tuple]:
    """The canonical shape of ``slot`` given its native ``shape`` (None: not
    built yet, the slot's hint): ``Param.shape``, and ``Model.shapes()``
    for every parameter from one bulk read."""
    if shape is None:
        return slot.shape_hint
    layout = slot.shape_layout
    if layout is SAME or (layout is DENSE_IN_OUT and len(shape) != 2):
        return shape if shape.__class__ is tuple else tuple(shape)
    if layout is DENSE_IN_OUT:
        return (shape[1], shape[0])
    return _layout.shape_to_canonical(tuple(shape), layout)


class Param:
    """One parameter of a wrapped model, in canonical names and layout.

    ``value`` is a read-only NumPy array in canonical layout (a view of the
    framework's memory where it allows: torch, JAX on CPU).  Writes go
    through the handle (``set``, ``p[...] = v``, ``p += 1``) so they mean the
    same on every backend and keep the framework's own parameter object.
    """

    __slots__ = ("_model", "_slot", "name", "aliases", "_view", "_read")

    def __init__(self, model: "Model", slot: "ParamSlot", name: str):
        self._model = model
        self._slot = slot
        self._read = None           # the adapter's read, resolved at the first value
        self.name = name            #: canonical name (the first one, for a tie)
        self.aliases = (name,)      #: every canonical name that reaches it
        self._view = None           # (adapter storage key, read-only canonical view)

    # -- description ----------------------------------------------------------
    @property
    def model(self) -> "Model":
        """The Model handle this parameter belongs to."""
        return self._model

    @property
    def slot(self) -> "ParamSlot":
        """The adapter's description of this parameter (package-internal:
        its ``ref`` and ``layout`` are what adapter hooks take)."""
        return self._slot

    @property
    def ident(self) -> Hashable:
        """The identity of the underlying storage: the same for every name
        of a tied parameter; the key of ``Adapter.grad``'s result."""
        slot = self._slot
        return slot.ident if slot.ident is not None else id(slot)

    @property
    def primary(self) -> "Param":
        """The Param that owns the storage: itself, or for a name tied
        transposed (:class:`TransposedParam`) the shared parameter."""
        return self

    @property
    def role(self) -> str:
        return self._slot.role

    @property
    def native_name(self) -> str:
        """The framework's own name (Gluon's carries global counters)."""
        return self._slot.native_name

    @property
    def trainable(self) -> bool:
        return self._slot.trainable

    @property
    def backend(self) -> str:
        return self._model.backend

    @property
    def native_shape(self) -> Optional[tuple]:
        """The shape as the framework stores it; None for unknown dims."""
        model = self._model
        shape = model.adapter.native_shape(model.adapter_state, self._slot.ref)
        if shape is None:
            return _layout.shape_to_native(self._slot.shape_hint, self._slot.shape_layout)
        return tuple(shape)

    @property
    def shape(self) -> Optional[tuple]:
        """Canonical (PyTorch) shape; None for dims not known yet."""
        model, slot = self._model, self._slot
        ref, adapter = slot.ref, model.adapter
        # a plain ref straight to the adapter's primitive
        shape = (adapter.native_shape if isinstance(ref, Composite) else adapter.array_shape)(
            model.adapter_state, ref)
        return canonical_shape(slot, shape)

    @property
    def materialized(self) -> bool:
        """True once the framework knows every dim of this parameter."""
        model = self._model
        shape = model.adapter.native_shape(model.adapter_state, self._slot.ref)
        return shape is not None and all(d is not None for d in shape)

    @property
    def dtype(self) -> Optional[np.dtype]:
        model = self._model
        return model.adapter.dtype(model.adapter_state, self._slot.ref)

    @property
    def size(self) -> int:
        self._require_value()
        return int(np.prod(self.shape, dtype=np.int64))

    # -- sharding (multiparam.sharding) ---------------------------------------
    @property
    def sharding(self) -> Optional["_sharding.Sharding"]:
        """How the parameter is split over a device mesh (canonical axes):
        ``Shard(dim=0 over 'fsdp'=4)``; None when one device holds it.
        ``CapabilityError`` on a backend that cannot shard."""
        return _sharding.param_sharding(self)

    @property
    def is_sharded(self) -> bool:
        """True when some dim is split over devices (False on a backend
        that cannot shard)."""
        return _sharding.param_is_sharded(self)

    def shards(self):
        """``(global index, read-only NumPy block)`` for each block of the
        canonical array this process holds, without gathering: the global
        index is a tuple of ``slice(start, stop)``.  An unsharded parameter
        is one block, its value.  ``CapabilityError`` on a backend that
        cannot shard."""
        return _sharding.param_shards(self)

    # -- values ---------------------------------------------------------------
    def _require_value(self) -> None:
        if not self.materialized:
            raise NotMaterializedError(self.name, self.shape)

    @property
    def value(self) -> np.ndarray:
        """Read-only canonical-layout NumPy array.  A sharded parameter is
        gathered whole into this process (a collective under
        ``torch.distributed``: every rank reads it); ``MULTIPARAM_MAX_GATHER``
        bounds that, and ``shards()`` reads without gathering."""
        model = self._model
        if not model.materialized:  # a materialised model stays so until refresh()
            self._require_value()
        adapter, state, ref = model.adapter, model.adapter_state, self._slot.ref
        key = adapter.storage_key(state, ref)
        view = self._view
        if key is not None and view is not None and view[0] is key:
            return view[1]
        out = self._read_canonical()
        if out.flags.writeable:
            out = out.view()
            out.flags.writeable = False
        self._view = None if key is None else (key, out)
        return out

    def _read_canonical(self) -> np.ndarray:
        # the framework's read in canonical layout, as it comes: a view of
        # its memory, or (value_reads_copy) a fresh array nobody else holds
        model = self._model
        read = self._read
        if read is None:
            read = self._read = model.adapter.reader(self._slot.ref)
        return _layout.to_canonical(read(model.adapter_state, self._slot.ref), self._slot.layout)

    def read_copy(self, contiguous: bool = False) -> np.ndarray:
        """The value as a fresh canonical array nobody else holds, for an
        adapter whose reads copy (package-internal: a whole-model read
        takes values one at a time this way, see ``state.state_streams``).
        As the framework's copy comes, in native layout under a canonical
        view (a writer converting to its own layout starts from that), or
        with ``contiguous`` C-contiguous (a file stores canonical bytes)."""
        self._require_value()
        if not contiguous:
            return self._read_canonical()
        made = self._read_transposed()
        return fastcopy.contiguous(self._read_canonical()) if made is None else made

    def read_into(self, out: np.ndarray) -> None:
        """Copy the value into ``out`` (C-contiguous, canonical shape and
        dtype) with the fastest copy here (package-internal)."""
        self._require_value()
        self.lend(functools.partial(fastcopy.copy_into, out), into=True)

    def lend(self, fn: Callable[[np.ndarray], Any], contiguous: bool = False, into: bool = False) -> Any:
        """``fn(value)`` of a read-only canonical array valid only while
        ``fn`` runs, for a caller that consumes it at once: a save writing
        it to its file, a transfer copying it on (package-internal).  Where
        the framework's reads copy, that is a view of its own memory where
        it lends one (``Adapter.lend``: Gluon), saving that copy; else the
        value as :meth:`read_copy` reads it (``contiguous``), or, with
        ``into`` (``fn`` copies it into place anyway), as it comes or
        through the framework's own transpose.  Returns what ``fn``
        returns."""
        self._require_value()
        model, slot = self._model, self._slot
        lent = model.adapter.lend(model.adapter_state, slot.ref) if model.adapter.value_reads_copy else None
        if lent is None:
            made = self._read_transposed() if contiguous or into else None
            if made is not None:
                return fn(made)
            value = self._read_canonical()
            return fn(fastcopy.contiguous(value) if contiguous else value)
        with lent as native:
            return fn(_layout.to_canonical(native, slot.layout))

    def _read_transposed(self) -> Optional[np.ndarray]:
        # a kernel stored transposed, made C-contiguous canonical by the
        # framework's own transpose in the copy out (None: no such kernel)
        model, ref, shape = self._model, self._slot.ref, self.shape
        if not _layout.is_transpose(self._slot.layout, len(shape)) or isinstance(ref, Composite):
            return None
        return model.adapter.read_transposed(model.adapter_state, ref)

    @value.setter
    def value(self, _new) -> None:
        raise ReadOnlyError(
            f"Param.value is read-only; write with {self.name!r}.set(array), "
            "p[...] = v or p += v, which mean the same on every backend")

    def numpy(self) -> np.ndarray:
        """A writable copy of the value (canonical layout), taken under the
        handle's lock: never half of a concurrent write (``value`` itself is
        a live view where the framework allows one, so it follows writes)."""
        with self._model.lock:
            return np.array(self.value)

    def __array__(self, dtype=None, copy=None):
        v = self.value
        return np.array(v, dtype=dtype) if (dtype is not None or copy) else v

    @property
    def native(self) -> Any:
        """The framework's own parameter object (the pytree leaf for Flax)."""
        model = self._model
        return model.adapter.native_param(model.adapter_state, self._slot.ref)

    @property
    def grad(self) -> Optional[np.ndarray]:
        """Gradient in canonical layout, or None before any backward.

        The framework's own accumulated gradient when it keeps one (torch
        ``.grad`` after your ``backward()``, Gluon ``grad()`` after
        ``autograd`` backward), else the one from the model handle's last
        ``m.grad(...)`` call."""
        model = self._model
        native = model.adapter.native_grad(model.adapter_state, self._slot.ref)
        if native is None:
            native = model.last_grad(self.ident)
        if native is None:
            return None
        out = _layout.to_canonical(np.asarray(native), self._slot.layout)
        out = out.view()
        out.flags.writeable = False
        return out

    # -- writes ---------------------------------------------------------------
    def set(self, array: Any) -> "Param":
        """Replace the value in place (canonical layout), checked first.

        The shape must equal ``shape`` exactly; the dtype must cast to the
        parameter's under NumPy's 'same_kind' rule.  Nothing is written when
        either check fails."""
        plan = WritePlan()
        plan.add(self, as_numpy(array))
        plan.commit()
        return self

    def write_validated(self, canonical: np.ndarray, owned: bool = False) -> None:
        """Write a canonical array that a :class:`~multiparam.transaction.WritePlan`
        has checked and cast (package-internal: write through ``set`` or a
        WritePlan, which check first).  ``owned``: nobody else holds
        ``canonical`` (a tensor just read from a file), so the framework may
        keep its memory instead of copying it."""
        convert = self.native_conversion(canonical, owned)
        if convert is None:       # each shard its own block, sharding kept
            self._view = None     # do not keep the old storage alive
            _sharding.write_param(self, canonical)
            return
        self.write_native(convert())

    def native_conversion(self, canonical: np.ndarray,
                          owned: bool = False) -> Optional[Callable[[], Any]]:
        """The first half of :meth:`write_validated` (package-internal): a
        function turning the checked ``canonical`` array into what the
        adapter writes, for :meth:`write_native`: a NumPy array in native
        layout, C-contiguous, read-only when the memory is borrowed; or,
        where the native layout is a transpose and the adapter has its own
        (:meth:`~multiparam.adapters.base.Adapter.transposed_array`), the
        framework's own array.

        Everything that reads the model is decided here, on the caller's
        thread (the slot's layout, whose deferred work runs once; whether
        the parameter is sharded); the function itself only copies arrays,
        so a WritePlan runs it on another core while it writes the value
        before.  None when the write goes shard by shard (no single native
        array to prepare)."""
        if _sharding.wants_blocks(self, canonical):
            return None
        layout = self._slot.layout
        # a composite's parts are split from one NumPy array
        transposed = None if isinstance(self._slot.ref, Composite) else self._model.adapter.transposed_array

        def convert() -> Any:
            native = _layout.to_native(canonical, layout)
            if transposed is not None and native.ndim == 2 and native.T.flags.c_contiguous \
                    and not native.flags.c_contiguous:
                made = transposed(native.T)    # the framework's own transpose, if it has one
                if made is not None:
                    return made
            prepared = fastcopy.contiguous(native)
            if not owned and (prepared is native or np.may_share_memory(prepared, canonical)):
                # borrowed memory (the caller's array, another model's value):
                # read-only tells the adapter to copy it rather than keep it
                prepared = prepared.view()
                prepared.flags.writeable = False
            return prepared
        return convert

    def write_native(self, prepared: np.ndarray) -> None:
        """The second half of :meth:`write_validated` (package-internal):
        hand the adapter what :meth:`native_conversion`'s function made."""
        self._view = None  # do not keep the old storage alive
        model = self._model
        model.adapter.write(model.adapter_state, self._slot.ref, prepared)

    def fill_validated(self, fill: Callable[[np.ndarray], None], shape: Optional[tuple] = None) -> bool:
        """Let ``fill(array)`` write a checked canonical value straight into
        the parameter's memory, where canonical and native layout are the
        same and the framework exposes its memory (package-internal, for a
        WritePlan's deferred values).  ``shape``: the value's, as the plan
        checked it against this parameter's (not asked again).  False,
        having done nothing, otherwise."""
        if shape is None:
            shape = self.shape
        if shape is None or not _layout.is_identity(self._slot.layout, len(shape)):
            return False
        if self.is_sharded:         # each shard takes its own block: write_validated
            return False
        model = self._model
        if not model.adapter.fill(model.adapter_state, self._slot.ref, fill):
            return False
        self._view = None
        return True

    def write_from_view(self, view: Callable[[], np.ndarray]) -> bool:
        """Write a checked canonical value from ``view()``, a read-only array
        on its source's own memory (a tensor mapped from a file), where the
        layout conversion copies it into fresh memory anyway (a Keras or
        Flax kernel: :func:`multiparam.layout.permutes`), so the value is
        not first read into fresh memory of its own (package-internal, for
        a WritePlan's deferred values).  False, having done nothing,
        otherwise."""
        source = self._convertible_view(view)
        if source is None:
            return False
        self.write_validated(source)     # borrowed: the conversion copies it
        return True

    def view_conversion(self, view: Callable[[], np.ndarray]) -> Optional[Callable[[], Any]]:
        """The first half of :meth:`write_from_view`, as
        :meth:`native_conversion` is of :meth:`write_validated`
        (package-internal): the function converting ``view()`` into what
        :meth:`write_native` takes, so a WritePlan runs it on another core
        while it writes the value before; None where ``write_from_view``
        would not convert from the view, or writes shard by shard."""
        source = self._convertible_view(view)
        return None if source is None else self.native_conversion(source)

    def _convertible_view(self, view: Callable[[], np.ndarray]) -> Optional[np.ndarray]:
        # view(), where the layout conversion copies it anyway; else None
        shape = self.shape
        if shape is None or isinstance(self._slot.ref, Composite) \
                or not _layout.permutes(self._slot.layout, len(shape)):
            return None
        source = view()
        if self._model.adapter.transposes_aligned_only and not fastcopy.is_aligned(source):
            # a tensor's place in a file is rarely 64-byte aligned; without
            # the framework's own transpose (TensorFlow's, on every core)
            # torch's one-core transpose would run: a fresh aligned read
            # first is faster (1 GiB into Keras: 0.35-0.38 s against
            # 0.46-0.52 s, alternating processes)
            return None
        return source

    def __getitem__(self, index) -> np.ndarray:
        """A writable copy of ``value[index]`` (so ``p[:] += 1`` works),
        taken under the handle's lock.  ``p[i] += 1`` is Python's read, then
        write: two steps for other threads; ``p += 1`` is one."""
        with self._model.lock:
            return self.value[index].copy()

    def __setitem__(self, index, v) -> None:
        """``p[0, 0] = 42``: canonical indices, written in place (read,
        change and write under the handle's lock: one step for other threads)."""
        with self._model.lock:
            plan = WritePlan()
            new = self.numpy()    # NotMaterializedError before anything else
            src = as_numpy(v)
            plan.check_dtype(self, src.dtype)   # before NumPy would cast it into the copy silently
            new[index] = src      # NumPy raises for a bad index or shape; nothing written yet
            plan.add(self, new)
            plan.commit()

    def _inplace(self, op, other) -> "Param":
        with self._model.lock:      # read, compute and write as one step for other threads
            plan = _InPlaceUpdate()
            current = self.numpy()    # NotMaterializedError before anything else
            other = as_numpy(other)
            plan.check_dtype(self, other.dtype)  # the operand's kind, before NumPy computes
            plan.add(self, op(current, other))
            plan.commit()
        return self

    def __iadd__(self, other):
        return self._inplace(np.add, other)

    def __isub__(self, other):
        return self._inplace(np.subtract, other)

    def __imul__(self, other):
        return self._inplace(np.multiply, other)

    def __itruediv__(self, other):
        return self._inplace(np.true_divide, other)

    # -- display ----------------------------------------------------------------
    def __repr__(self) -> str:
        shape = format_shape(self.shape)
        dtype = self.dtype
        tied = f", tied={list(self.aliases[1:])}" if len(self.aliases) > 1 else ""
        return (f"Param({self.name!r}, shape={shape}, dtype={dtype}, backend={self.backend!r}, "
                f"native_name={self.native_name!r}{tied})")


class _InPlaceUpdate(WritePlan):
    """``p += x`` and the like: a result of another shape is a broadcast
    that would change the parameter's shape."""

    __slots__ = ()

    def shape_message(self, param: Param, shape: tuple, source: Any) -> str:
        return f"in-place update of {param.name!r} would change its shape {param.shape} to {shape}"


def format_shape(shape: Optional[tuple]) -> str:
    """``(8, ?)`` for a shape with an unknown dim, ``(8,)`` for 1-D, ``?`` for None."""
    if shape is None:
        return "?"
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


class TransposedParam(Param):
    """The name of a parameter tied transposed (``m.tie(a, b, transpose=True)``):
    it reads and writes the shared parameter, transposed, so ``m[a].value``
    is ``m[b].value.T``.  Listed once, under the shared parameter's name."""

    __slots__ = ("_primary",)

    def __init__(self, primary: Param, name: str):
        super().__init__(primary.model, primary.slot, name)
        self._primary = primary

    @property
    def shape(self):
        shape = self._primary.shape
        return None if shape is None else tuple(reversed(shape))

    @property
    def native_shape(self):
        shape = self._primary.native_shape
        return None if shape is None else tuple(reversed(shape))

    @property
    def value(self) -> np.ndarray:
        return self._primary.value.T

    @property
    def grad(self):
        g = self._primary.grad
        return None if g is None else g.T

    @property
    def primary(self) -> Param:
        return self._primary

    def write_validated(self, canonical: np.ndarray, owned: bool = False) -> None:
        self._primary.write_validated(np.ascontiguousarray(canonical.T), owned=True)

    def native_conversion(self, canonical: np.ndarray, owned: bool = False):
        return None         # rare (a transposed tie): written whole, in order

    def fill_validated(self, fill, shape=None) -> bool:
        return False        # the values land transposed: write_validated does it

    def write_from_view(self, view) -> bool:
        return False        # rare (a transposed tie): written whole, in order

    def view_conversion(self, view):
        return None         # as write_from_view

    def __repr__(self) -> str:
        return f"TransposedParam({self.name!r}, shape={format_shape(self.shape)}, of={self._primary.name!r})"
