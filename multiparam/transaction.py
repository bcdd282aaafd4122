"""One write transaction: check every value, then write them all.

Every way of changing parameter values goes through a :class:`WritePlan`:
``Param.set``, indexed writes (``p[0, 0] = 1``), in-place operators
(``p += 1``), ``Model.init``, ``load_state_dict`` and so ``mp.load`` and
``mp.transfer``; ``Model.tie`` checks its pairs with one too.

``add`` checks one canonical NumPy value against its parameter (its shape is
known, the value's shape is exactly the parameter's, its dtype casts to the
parameter's under NumPy's ``same_kind`` rule) and keeps it, cast.
``add_deferred`` checks a value known only by its shape and dtype (a tensor
in a file, from its header) and keeps how to read it: ``commit`` reads it
when it writes it and drops it at once, so a load streams one tensor at a
time instead of holding the file in memory.
``commit`` writes everything, and a caller reaches it only when every
``add`` passed, so a bad value anywhere leaves every parameter as it was.

A refusal is worded for where the value came from (a state dict names its
key, an initializer itself): such a caller subclasses ``WritePlan`` and
overrides :meth:`WritePlan.shape_message` or :meth:`WritePlan.dtype_message`;
the checks and the error classes stay the same.
"""
from __future__ import annotations

import contextlib
import functools
import math
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from typing import TYPE_CHECKING, Any, Callable, Dict, Hashable, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from . import fastcopy
from . import layout as _layout
from . import sharding as _sharding
from . import threads
from .adapters.base import Composite
from .errors import DtypeError, NotMaterializedError, ShapeError

if TYPE_CHECKING:  # pragma: no cover
    from .param import Param


def nbytes_of(shape: tuple, dtype: np.dtype) -> int:
    """Bytes of a value of ``shape`` and ``dtype`` (any value a plan takes:
    an array, a deferred tensor, sharded blocks)."""
    # math.prod: NumPy's costs ~5 us a call, twice per tensor of a load
    return math.prod(shape) * np.dtype(dtype).itemsize


class _Deferred(NamedTuple):
    """How a deferred value is read at commit (see :meth:`WritePlan.add_deferred`)."""

    read: Callable[[], np.ndarray]
    #: straight into the parameter's memory; None where a cast is needed
    read_into: Optional[Callable[[np.ndarray], None]]
    #: the source's own memory (a file's mapping); None where a cast is needed
    view: Optional[Callable[[], np.ndarray]]
    #: the parameter's dtype
    dtype: np.dtype
    #: read on the writing thread, in order (a gather)
    in_order: bool
    #: where a cast is needed: ``cast_with(fn)`` is ``fn`` of the source's
    #: own memory (a file's mapping), to convert from in one pass; None
    #: where none is needed or the source has no memory to read
    cast_with: Optional[Callable[[Callable[[np.ndarray], Any]], Any]] = None
    #: the canonical shape, checked equal to the parameter's when added
    shape: Optional[tuple] = None


def _checked_shape(param: "Param", value) -> Optional[tuple]:
    """The canonical shape of a value a plan holds: checked equal to the
    parameter's when it was added, so commit need not ask the framework
    again (a load asked it five times per tensor)."""
    shape = getattr(value, "shape", None)
    return param.shape if shape is None else tuple(shape)


class WritePlan:
    """Writes checked now and made later, all or none (see the module
    docstring).  ``source`` is whatever the caller's messages name the value
    by (a state dict key, an initializer); the default messages ignore it."""

    __slots__ = ("_writes",)

    def __init__(self) -> None:
        # (param, value): an array, or a _Deferred
        self._writes: List[Tuple["Param", Union[np.ndarray, _Deferred]]] = []

    # -- checks ---------------------------------------------------------------
    def require_materialized(self, param: "Param") -> None:
        """``NotMaterializedError`` unless ``param``'s shape is known."""
        if not param.materialized:
            raise NotMaterializedError(param.name, param.shape)

    def check_dtype(self, param: "Param", dtype: np.dtype, source: Any = None) -> np.dtype:
        """``DtypeError`` unless values of ``dtype`` cast to ``param``'s dtype
        under NumPy's 'same_kind' rule (float64 into float32 is fine, since
        NumPy literals are float64; float into int or complex into float is
        not).  Returns the parameter's dtype."""
        target = param.dtype
        if not np.can_cast(dtype, target, casting="same_kind"):
            raise DtypeError(self.dtype_message(param, dtype, source))
        return target

    def check(self, param: "Param", shape: tuple, dtype: np.dtype, source: Any = None) -> np.dtype:
        """Check a value of ``shape`` and ``dtype`` for ``param`` without
        holding the value: materialised, exact shape, castable dtype.
        Returns the parameter's dtype."""
        self.require_materialized(param)
        if tuple(shape) != tuple(param.shape):
            raise ShapeError(self.shape_message(param, tuple(shape), source))
        return self.check_dtype(param, dtype, source)

    # -- the transaction ------------------------------------------------------
    def add(self, param: "Param", value: np.ndarray, source: Any = None) -> None:
        """Check ``value`` (a NumPy array in canonical layout) for ``param``
        and keep it, cast to the parameter's dtype (no copy when it already
        has it).  Raises, keeping nothing, when a check fails."""
        dtype = self.check(param, value.shape, value.dtype, source)
        self._writes.append((param, value.astype(dtype, copy=False)))

    def add_deferred(self, param: "Param", shape: tuple, dtype: np.dtype,
                     read: Callable[[], np.ndarray],
                     read_into: Optional[Callable[[np.ndarray], None]] = None,
                     view: Optional[Callable[[], np.ndarray]] = None, source: Any = None,
                     in_order: bool = False,
                     with_view: Optional[Callable[[Callable[[np.ndarray], Any]], Any]] = None) -> None:
        """Check a value of ``shape`` and ``dtype`` that ``read()`` will give
        (a tensor in a file, known from its header) and keep how to read it.
        At ``commit``, where no cast is needed, it is read straight into
        the parameter's memory with ``read_into`` where the framework allows,
        or converted from ``view()`` (the source's own memory, a file's
        mapping) where the parameter's layout copies it anyway (a Keras or
        Flax kernel); else it is read into a fresh array the framework may
        keep, written and dropped.  Where a cast is needed it is converted
        in one pass from the source's memory (``with_view(fn)``: ``fn`` of
        ``view()``, released after; else ``view()`` itself): into the
        parameter's own memory by the framework's conversion where it
        allows (``Adapter.cast_kernel``: a bfloat16 checkpoint into a
        float32 torch model), else into fresh memory.  ``in_order``: read
        on the writing thread, in order, never by a worker beside another
        write (a gather that is a collective of several processes)."""
        target = self.check(param, shape, dtype, source)
        if np.dtype(dtype) == target:
            self._writes.append((param, _Deferred(read, read_into, view, target, in_order, shape=tuple(shape))))
            return
        if with_view is None and view is not None:
            with_view = functools.partial(_apply, view)
        self._writes.append((param, _Deferred(read, None, None, target, in_order, with_view, shape=tuple(shape))))

    def commit(self, on_write: Optional[Callable[["Param", int], None]] = None) -> None:
        """Write every value added, in the order added.  Call it once every
        ``add`` has passed; the plan is empty afterwards.  ``on_write(param,
        nbytes)`` follows each write (progress).

        The writes are made in order on this thread; the layout
        conversions before them (a transposing copy into fresh memory for a
        Flax kernel) run one per core at a time where the backend allows
        it, and so do whole writes into a backend whose writes may run side
        by side (torch: a copy into each parameter's own memory); see
        :class:`_WorkAhead`."""
        writes, self._writes = self._writes, []
        # each handle's lock, in a fixed order: one transaction's writes are
        # never interleaved with another's, nor with a copy or a grad
        models = {id(p.model): p.model for p, _ in writes}
        with contextlib.ExitStack() as held:
            for key in sorted(models):
                held.enter_context(models[key].lock)
            ahead = held.enter_context(_WorkAhead(writes))
            for i, (param, value) in enumerate(writes):
                writes[i] = None       # a deferred value's memory map goes with it
                nbytes = nbytes_of(_checked_shape(param, value), param.dtype) if on_write is not None else 0
                done = ahead.result(i)
                if done is _WRITTEN:
                    pass               # a worker wrote it, beside the write before
                elif done is not None:
                    param.write_native(done)
                else:
                    _write(param, value)
                if on_write is not None:
                    on_write(param, nbytes)
                del value

    def __len__(self) -> int:
        return len(self._writes)

    # -- how refusals are worded (override per caller) --------------------------
    def shape_message(self, param: "Param", shape: tuple, source: Any) -> str:
        return f"cannot set {param.name!r} of shape {param.shape} from an array of shape {shape}"

    def dtype_message(self, param: "Param", dtype: np.dtype, source: Any) -> str:
        return (f"cannot write {dtype} values into {param.name!r} of dtype {param.dtype} "
                "without losing their kind; cast explicitly first")


def _write(param: "Param", value) -> None:
    """Write one checked value of a plan: an array, or a deferred value
    read now, straight into the parameter's memory or converted from its
    source's view where it can (a cast too), else read into fresh memory
    and dropped."""
    if not isinstance(value, _Deferred):
        param.write_validated(value)
    elif value.cast_with is not None:
        _write_cast(param, value.cast_with, value.dtype)
    elif not ((value.read_into is not None and param.fill_validated(value.read_into, value.shape))
              or (value.view is not None and param.write_from_view(value.view))):
        param.write_validated(value.read().astype(value.dtype, copy=False), owned=True)


def _apply(view: Callable[[], np.ndarray], fn: Callable[[np.ndarray], Any]) -> Any:
    return fn(view())


def _write_cast(param: "Param", cast_with: Callable[[Callable[[np.ndarray], Any]], Any], dtype: np.dtype) -> None:
    """Write the source's own memory (of another dtype, given to the
    function ``cast_with`` calls) converted to ``dtype`` in one pass: into
    the parameter's own memory by the framework's conversion where it
    exposes both (a float32 torch model from a bfloat16 file: ``copy_``, as
    ``load_state_dict`` casts), else into fresh aligned memory the
    framework may keep.  Reading the value into fresh memory first, then
    casting it, took a 0.5 GiB bfloat16 file into a float32 torch model
    2.2x the idiom's time."""
    kernel = param.model.adapter.cast_kernel

    def convert(out: np.ndarray, src: np.ndarray) -> None:
        if not kernel(out, src):
            np.copyto(out, src, casting="same_kind")
    if kernel is not None and param.fill_validated(lambda out: cast_with(functools.partial(convert, out))):
        return
    param.write_validated(cast_with(functools.partial(fastcopy.aligned_copy, dtype=dtype)), owned=True)


#: a value at least this large is converted (or written) on a worker
#: thread, beside another (below it, a hand-off costs more than it saves)
CONVERT_AHEAD_BYTES = 1 << 20

#: what :meth:`_WorkAhead.result` gives for a value a worker wrote itself
_WRITTEN = object()


def _written(write: Callable[..., None], *args) -> object:
    # a worker's whole write; its result tells the writing thread that
    # nothing is left to write for that value
    write(*args)
    return _WRITTEN


def _ahead_bytes(param: "Param", value) -> Optional[int]:
    """The bytes a worker would take on for ``value`` ahead of its turn,
    None where it may not: into a backend whose writes may run side by
    side, the whole write of an array or a deferred value; into one whose
    conversions may, the conversion of an array or of a deferred value
    that has a view (a file's tensor, converted from its mapping).  Never
    Blocks, a value whose shape is not known, nor one read in order (a
    gather: with several processes, each must make it in the same order)."""
    adapter = param.model.adapter
    if isinstance(value, np.ndarray):
        return value.nbytes if adapter.writes_in_parallel or adapter.converts_values_in_parallel else None
    if not isinstance(value, _Deferred) or value.shape is None or value.in_order:
        return None     # Blocks; a shape not known; read in order (a gather)
    if adapter.writes_in_parallel or (adapter.converts_values_in_parallel and value.view is not None):
        return nbytes_of(value.shape, value.dtype)
    return None


def _memory(param: "Param") -> Hashable:
    """What a write lands in, for the order of writes beside each other:
    the framework's memory where the adapter tells it (``memory_of``: two
    torch Parameters over one tensor's storage, whose writes must land in
    order, the later winning where they overlap), else the storage's
    ident in its model (a tie's names share it)."""
    model, ref = param.model, param.slot.ref
    memory = None if isinstance(ref, Composite) else model.adapter.memory_of(model.adapter_state, ref)
    return (id(model), param.ident) if memory is None else ("memory", memory)


def _copies_on_every_core(param: "Param", value) -> bool:
    """Whether writing ``value`` is one plain copy into the parameter's
    memory, large enough that the framework's copy kernel spreads it over
    every core itself (``fastcopy.KERNEL_COPY``): canonical and native
    layout are the same memory, and the value is a C-contiguous array or a
    file's tensor read straight into place (a deferred value with a view
    of its source's memory and no cast), or cast into place by the
    framework's own conversion (``Adapter.cast_kernel``: 0.5 GiB of
    bfloat16 into float32 torch parameters took 1.13x the idiom's time in
    turn, 1.28x two at a time).  A worker writing another value
    beside it only contends for the same cores and memory: a 1 GiB load
    of 8 MiB bfloat16 tensors into torch took 87.5-94.8 ms written in
    turn, 93.8-101.2 ms two at a time (fresh processes, alternately)."""
    shape = _checked_shape(param, value)
    if shape is None or nbytes_of(shape, param.dtype) < fastcopy.KERNEL_COPY:
        return False
    if isinstance(value, _Deferred):
        plain = (value.read_into is not None and value.view is not None) or \
            (value.cast_with is not None and param.model.adapter.cast_kernel is not None)
    else:
        plain = value.flags.c_contiguous
    return plain and _layout.is_identity(param.slot.layout, len(shape))


class _WorkAhead:
    """The work of a plan's large values, one value per core at a time:
    the writing thread writes one value itself while worker threads take on
    the next ones, each either

    * its layout conversion, into a backend whose adapter says
      ``converts_values_in_parallel`` (JAX: every write makes a new array,
      and the framework's own idiom holds a whole new model): a transfer
      into Flax is mostly transposing copies into fresh memory, and so is a
      load into Flax (each kernel transposed from the file's mapping).  A
      worker holds one converted value until its turn to be written;
    * or its whole write, into a backend whose adapter says
      ``writes_in_parallel`` (torch: a copy into the parameter's own
      memory, nothing new held): a transfer into torch is mostly
      transposing copies into parameters.

    torch's transposing copy runs on one core; this way a transfer either
    way uses every core (into torch, 1 GiB of 8 MiB bfloat16 kernels: 0.44
    s on one core, 0.24 s two at a time).  Writes are still *recorded* in
    order on the writing thread (progress, the plan's ``on_write``).

    The large values go round in groups of one per core: at the first of a
    group (:meth:`result` gives None, and the caller writes it) the
    workers start on the others, whose results :meth:`result` then waits
    for.  A value is not taken ahead when its memory (``_memory``: its
    storage, or a block of memory it shares) has an earlier write still to
    come (that write must land first, and could change what the value
    converts to); None for it too, as for a value read from a file whose
    layout needs no conversion into a backend that converts ahead (it is
    read straight into place), a small one, a plain copy the framework's
    kernel already runs on every core (``_copies_on_every_core``: a load
    into torch), a parameter on a mesh (written block by block), a
    composite one (split into parts against their current values) or a
    transposed tie.

    Leaving the ``with`` block (a write failed) cancels what has not
    started and waits for what has, so no worker runs after the plan
    returns."""

    def __init__(self, writes: list):
        self._writes = writes
        self._started: Dict[int, Future] = {}
        #: the first value of each group -> the values the workers take on beside it
        self._groups: Dict[int, List[int]] = {}
        cores = threads.cores()
        # the values a worker may take on (see _ahead_bytes), large enough
        # that handing them out costs less than it saves
        large = [i for i, nbytes in enumerate(_ahead_bytes(param, value) for param, value in writes)
                 if nbytes is not None and nbytes >= CONVERT_AHEAD_BYTES]
        if cores > 1:
            for k in range(0, len(large), cores):
                self._groups[large[k]] = large[k + 1:k + cores]
        #: write index -> the index of the write before it to the same memory
        self._earlier: Dict[int, int] = {}
        if self._groups:
            last: Dict[Hashable, int] = {}
            for i, (param, _) in enumerate(writes):
                memory = _memory(param)
                if memory in last:
                    self._earlier[i] = last[memory]
                last[memory] = i

    def __enter__(self) -> "_WorkAhead":
        return self

    def __exit__(self, *exc) -> None:
        for future in self._started.values():
            future.cancel()
        wait_for(list(self._started.values()))
        self._started.clear()

    def result(self, i: int) -> Any:
        """Write ``i``'s converted value (waiting for it), ``_WRITTEN``
        once a worker has written it (waiting for that), or None: the caller
        writes it itself."""
        for j in self._groups.pop(i, ()):
            if self._earlier.get(j, -1) >= i:
                continue                     # taken at its turn, after that write
            work = self._work(*self._writes[j])
            if work is not None:             # None: written in order, at its turn
                pool, job = work
                self._started[j] = threads.pool(pool, threads.cores() - 1).submit(job)
        future = self._started.pop(i, None)
        return None if future is None else future.result()

    @staticmethod
    def _work(param: "Param", value) -> Optional[Tuple[str, Callable[[], Any]]]:
        # (the workers' pool, the job) for a value taken ahead, decided on
        # the writing thread (what reads the model's structure runs here);
        # None where it is written at its turn
        if param.model.adapter.writes_in_parallel:
            if isinstance(param.slot.ref, Composite) or param.primary is not param \
                    or _sharding.wants_blocks(param, value) or _copies_on_every_core(param, value):
                # split against its current parts; a transposed tie; on a
                # mesh (split or replicated), written block by block; a
                # plain copy, on every core already
                return None
            if isinstance(value, _Deferred):     # read on the worker too: into place, or fresh
                _ = param.slot.layout        # any deferred description work runs here, not there
                return "write", lambda: _written(_write, param, value)
            convert = param.native_conversion(value)
            return None if convert is None else ("write", lambda: _written(param.write_native, convert()))
        if isinstance(value, _Deferred):     # a file's tensor: from its mapping
            convert = param.view_conversion(value.view)
        else:
            convert = param.native_conversion(value)
        return None if convert is None else ("convert", convert)
