"""MXNet 1.9 / Gluon adapter: ``collect_params``, ``Parameter.data()/grad()``,
``autograd.record``.

Gluon keeps parameters inside the blocks, so ``state`` is the block itself,
and a slot's ref is the Gluon ``Parameter`` object: it is what Gluon shares
between tied blocks, so ``ident = id(Parameter)`` makes ties explicit.
Gluon's layout is torch's ((out, in), (out, in/groups, *k)), so no slot
needs a layout conversion, and no parameter is a composite.

Both Gluon array interfaces are supported: the classic ``mx.nd`` one and the
NumPy one switched on by the user with ``npx.set_np()``.  That switch is
global state owned by the user; this module never flips it and only asks
``mxnet.util.is_np_array()`` which array type to produce.

Framework facts this module relies on (checked against the 1.9.1 source):

- ``Block._children`` is an ``OrderedDict`` of child blocks (``"0"``,
  ``"1"``, ... in ``Sequential``; attribute names elsewhere) and
  ``Block._reg_params`` maps attribute names to ``Parameter`` objects.
- Deferred initialisation: ``Parameter._data`` is ``None`` until the first
  forward resolves unknown dims, which Gluon spells ``0`` (``-1`` while
  ``npx.set_np()`` is on); ``Parameter._deferred_init`` holds the pending
  initializer meanwhile.
- Tying: ``nn.Dense(.., params=shared.params)`` gives a block whose
  ``_reg_params`` hold the *same* ``Parameter`` objects, and a block added
  twice is shared too, so ``id(Parameter)`` identifies the storage.
- ``NDArray._fresh_grad`` (on a parameter's *data* array) says whether a
  backward wrote its gradient since the flag was last reset
  (``Trainer.step`` resets it).
- An ``mx.np.ndarray`` is an ``mx.nd.NDArray`` subclass, but neither
  interface's constructor takes the other's arrays: they convert with the
  zero-copy ``as_np_ndarray`` / ``as_nd_ndarray``.
"""
from __future__ import annotations

import contextlib
import ctypes
import inspect
import re
from typing import Any, Optional, Tuple

import numpy as np

import mxnet as mx
from mxnet import autograd
from mxnet.base import _LIB, check_call
from mxnet.gluon import Block, HybridBlock, Parameter
from mxnet.gluon import nn, rnn
from mxnet.util import is_np_array

from ... import dtypes
from ... import initializers as I
from ... import layer_registry
from ...errors import CapabilityError
from ..base import SAME, Adapter, Capability, Inputs, LayerNode, ParamSlot
from .builders import BUILDERS, dense_twin

# Gluon's own norm layers: gamma is torch's ``weight`` (a scale), beta its ``bias``
_NORM_TYPES = (nn.basic_layers._BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm)
_NORM_KEYS = {"gamma": ("weight", "scale"), "beta": ("bias", "bias")}

# a recurrent layer's or cell's parameter: Gluon ``l0_i2h_weight`` (layer 0,
# left-to-right), ``r1_h2h_bias`` (layer 1, reverse), ``l0_h2r_weight`` (the
# LSTM projection); cells drop the ``l0_`` prefix (``i2h_weight``)
_RNN_PARAM = re.compile(r"^(?:(?P<dir>[lr])(?P<layer>\d+)_)?(?P<conn>i2h|h2h|h2r)_(?P<role>weight|bias)$")
_RNN_CONN = {"i2h": "ih", "h2h": "hh", "h2r": "hr"}

_NEUTRAL_KINDS = ((nn.Dense, "Dense"), (nn.Conv2D, "Conv2d"), (nn.BatchNorm, "BatchNorm"),
                  (nn.LayerNorm, "LayerNorm"), (nn.Embedding, "Embedding"), (rnn.LSTM, "LSTM"),
                  (nn.Flatten, "Flatten"))

# the dtypes checkpoints use that MXNet 1.9.1 cannot hold, and why; every
# other NumPy dtype a Parameter takes is held and read bit for bit
# (float16/32/64, int8, uint8, int32, int64)
_KEEP = "; keep the model in float32 (m.astype('float32'))"
_UNHOLDABLE = {
    "bfloat16": "MXNet 1.9.1 computes in bfloat16 only in some oneDNN operators (Dense and Conv; "
                "not BatchNorm, LayerNorm or the RNN layers) and asnumpy() hands it over as raw "
                "16-bit records ([('bfloat16', '<u2')]), not as a float" + _KEEP,
    "float8_e4m3fn": "MXNet 1.9.1 has no float8 dtype" + _KEEP,
    "float8_e5m2": "MXNet 1.9.1 has no float8 dtype" + _KEEP,
}
# what block.cast() converts a model to (m.astype)
_CAST_DTYPES = ("float16", "float32", "float64")

# draw kind -> MXNet's random op and the draw parameters it takes, in order
_RANDOM_OPS = {
    "uniform": (mx.nd.random.uniform, ("low", "high")),
    "normal": (mx.nd.random.normal, ("mean", "std")),
}

# Gluon's Initializer dispatches on the parameter name's suffix: what
# ``initialize()`` with no initializer gives each one (mxnet.initializer.
# Initializer.__call__, with the global default Uniform(0.07) for weights)
_GLUON_DEFAULT_BY_SUFFIX = (
    ("weight", I.uniform(-0.07, 0.07)), ("bias", I.zeros()),
    ("beta", I.zeros()), ("gamma", I.ones()),
    ("running_mean", I.zeros()), ("running_var", I.ones()),
    ("moving_mean", I.zeros()), ("moving_var", I.ones()),
)


# -- walking blocks ----------------------------------------------------------
def _unique_params(block: Block) -> list:
    """Every Parameter reachable from ``block`` once, in tree order."""
    return list(_iter_unique_params(block, set()))


def _iter_unique_params(block: Block, seen: set):
    """:func:`_unique_params` one at a time (a question about the first
    stops the walk there)."""
    for p in _own_params(block).values():
        if id(p) not in seen:
            seen.add(id(p))
            yield p
    for child in block._children.values():
        yield from _iter_unique_params(child, seen)


def _own_params(block: Block) -> dict:
    """A block's own parameters: attribute name -> Parameter.

    ``_reg_params`` holds those assigned as attributes (every built-in layer).
    Older custom blocks sometimes call ``self.params.get(..)`` without keeping
    the result as an attribute; such parameters are still in the block's
    ``ParameterDict`` (and in ``collect_params``), so they are added under
    their name with the block's prefix stripped, unless a child owns them.
    """
    own = dict(block._reg_params)
    params = block.params
    known = {id(p) for p in own.values()}
    extra = [p for p in params.values() if id(p) not in known]
    if extra:
        in_children = {id(p) for c in block._children.values() for p in _unique_params(c)}
        for p in extra:
            if id(p) in in_children:
                continue
            attr = p.name[len(block.prefix):] if p.name.startswith(block.prefix) else p.name
            if attr in own:
                attr = p.name
            own[attr] = p
    return own


def _gluon_shape(p: Parameter) -> Optional[tuple]:
    """The parameter's shape with None for unknown dims (Gluon: 0, or -1 in np mode)."""
    shape = p.shape
    if shape is None:
        return None
    if shape and all(type(d) is int and d > 0 for d in shape):
        return tuple(shape)
    return tuple(int(d) if d is not None and d > 0 else None for d in shape)


def _is_materialized(p: Parameter) -> bool:
    return p._data is not None


def _kind(block: Block) -> str:
    if isinstance(block, nn.Activation) and getattr(block, "_act_type", None) == "relu":
        return "ReLU"
    return _class_kind(type(block))


@layer_registry.per_class
def _class_kind(cls: type) -> str:
    """:func:`_kind` of a block of class ``cls`` (but a ReLU ``Activation``,
    whose ``act_type`` decides)."""
    if issubclass(cls, (nn.Sequential, nn.HybridSequential)):
        return "Sequential"
    for base, kind in _NEUTRAL_KINDS:
        if issubclass(cls, base):
            return kind
    return cls.__name__


def _is_gluon_class(cls: type) -> bool:
    return cls.__module__.split(".", 1)[0] == "mxnet"


def _rnn_key(cls: type, attr: str) -> Optional[str]:
    """torch's name for a Gluon recurrent parameter, or None: ``nn.LSTM``'s
    ``weight_ih_l0``, ``bias_hh_l1_reverse``, ``weight_hr_l0`` for a layer,
    ``nn.LSTMCell``'s ``weight_ih`` for a cell.  The layouts and gate orders
    agree (LSTM i, f, c/g, o; GRU r, z, n), so only the name changes."""
    if not issubclass(cls, (rnn.rnn_layer._RNNLayer, rnn.RecurrentCell)):
        return None
    match = _RNN_PARAM.match(attr)
    if match is None:
        return None
    key = f"{match['role']}_{_RNN_CONN[match['conn']]}"
    if match["layer"] is None:
        return key
    return f"{key}_l{match['layer']}" + ("_reverse" if match["dir"] == "r" else "")


@layer_registry.per_class
def _param_kind(cls: type, attr: str) -> tuple:
    """``(key, role, layout, declared)`` of the block's parameter ``attr``:
    the key is torch's attribute on the equivalent module (the last part of
    the canonical name, never Gluon's global name).  Registered layer
    classes first (``mp.register_layer``, by Gluon attribute name), then
    Gluon's own layers; a parameter of any other block keeps its attribute
    name and is undeclared (init will not guess its fans).  Memoised per
    class until the registry changes."""
    kinds = layer_registry.lookup(cls)
    if kinds is not None and attr in kinds:
        return attr, kinds[attr].role, kinds[attr].layout, True
    if issubclass(cls, _NORM_TYPES) and attr in _NORM_KEYS:
        return (*_NORM_KEYS[attr], SAME, True)
    if issubclass(cls, nn.Embedding) and attr == "weight":
        return "weight", "embedding", SAME, True
    if issubclass(cls, nn.PReLU) and attr == "alpha":
        return "weight", "weight", SAME, True     # torch's nn.PReLU.weight
    rnn_key = _rnn_key(cls, attr)
    if rnn_key is not None:
        return rnn_key, rnn_key.split("_", 1)[0], SAME, True
    return attr, attr, SAME, _is_gluon_class(cls)


def _drop_cached_graphs(block: Block) -> None:
    """Forget every hybridized block's cached graph under ``block``, so the
    next call rebinds its Parameters and reads its flags again."""
    if hasattr(block, "_clear_cached_op"):
        block._clear_cached_op()
    for child in block._children.values():
        _drop_cached_graphs(child)


@contextlib.contextmanager
def _global_stats(block: Block, on: bool):
    """Every BatchNorm under ``block`` with ``use_global_stats`` for the
    duration (forward *and* backward then use the running statistics),
    then back as it was; cached hybrid graphs are dropped both times."""
    norms = []
    stack = [block] if on else []
    while stack:
        b = stack.pop()
        if isinstance(b, nn.BatchNorm):
            norms.append((b, b._kwargs.get("use_global_stats", False)))
        stack.extend(b._children.values())
    if not norms:
        yield
        return
    for b, _ in norms:
        b._kwargs["use_global_stats"] = True
    _drop_cached_graphs(block)
    try:
        yield
    finally:
        for b, flag in norms:
            b._kwargs["use_global_stats"] = flag
        _drop_cached_graphs(block)


def _positional(block: Block, args: list, kwargs: dict) -> list:
    """``args`` then ``kwargs`` as the positional inputs ``block(*inputs)``
    takes: each keyword goes to the position of the parameter of that name
    in the block's ``forward`` (``hybrid_forward`` after its ``F`` for a
    HybridBlock that only defines that), a skipped parameter takes its
    default; a name the forward does not have is a ``TypeError``."""
    if not kwargs:
        return args
    hybrid = isinstance(block, HybridBlock) and type(block).forward is HybridBlock.forward
    forward = block.hybrid_forward if hybrid else block.forward
    params = [p for p in inspect.signature(forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][1 if hybrid else 0:]
    unknown = sorted(set(kwargs) - {p.name for p in params[len(args):]})
    if unknown:
        raise TypeError(f"{type(block).__name__}.{forward.__name__} takes no keyword input "
                        f"{', '.join(map(repr, unknown))} (Gluon blocks take positional inputs; "
                        f"its inputs: {', '.join(p.name for p in params)})")
    last = max(i for i, p in enumerate(params) if p.name in kwargs)
    inputs = list(args)
    for p in params[len(args):last + 1]:
        if p.name not in kwargs and p.default is p.empty:
            raise TypeError(f"{type(block).__name__}.{forward.__name__} needs its input {p.name!r} "
                            "before the keyword inputs given")
        inputs.append(kwargs.get(p.name, p.default))
    return inputs


# -- MXNet arrays --------------------------------------------------------------
def _is_mxnet_bfloat16(dtype: Any) -> bool:
    """MXNet 1.9's own bfloat16: a NumPy record dtype ``[('bfloat16', '<u2')]``."""
    return np.dtype(dtype).names == ("bfloat16",)


def _holdable(dtype: Any) -> np.dtype:
    """``dtype`` when MXNet can hold it, else ``CapabilityError`` saying why
    (bfloat16 and float8 values are never cast behind the caller's back)."""
    dtype = np.dtype(dtype)
    name = "bfloat16" if _is_mxnet_bfloat16(dtype) else dtypes.name(dtype)
    if name in _UNHOLDABLE:
        raise CapabilityError("mxnet", f"hold {name} values", _UNHOLDABLE[name])
    return dtype


def _in_interface(array: mx.nd.NDArray, numpy_interface: bool) -> mx.nd.NDArray:
    """``array`` as an ``mx.np.ndarray`` (``numpy_interface``) or a classic
    ``mx.nd.NDArray``, zero-copy; as it is when it already is one."""
    if isinstance(array, mx.np.ndarray) == numpy_interface:
        return array
    return array.as_np_ndarray() if numpy_interface else array.as_nd_ndarray()


def _as_mxnet(value: Any, numpy_interface: bool, dtype: Any, ctx: Any = None) -> mx.nd.NDArray:
    """``value`` (NumPy or either MXNet interface) as an MXNet array of the
    given interface, dtype and context (None: the current one).  NumPy is
    always copied (a read-only array is someone else's memory); an MXNet
    array already right is returned as it is."""
    dtype = _holdable(dtype)
    if isinstance(value, mx.nd.NDArray):       # mx.np.ndarray is a subclass
        if value.dtype != np.dtype(dtype):
            value = value.astype(dtype)
        if ctx is not None and value.context != ctx:
            value = value.as_in_context(ctx)
        return _in_interface(value, numpy_interface)
    make = mx.np.array if numpy_interface else mx.nd.array
    return make(value, dtype=dtype, ctx=ctx)


def _like(template: mx.nd.NDArray, value: Any) -> mx.nd.NDArray:
    """``value`` as an MXNet array of the same interface (np / nd), dtype and
    context as ``template``, so it can be assigned into ``template``."""
    return _as_mxnet(value, isinstance(template, mx.np.ndarray), template.dtype, template.context)


#: dtypes whose values are staged by a plain copy into MXNet's own memory
_STAGEABLE = frozenset(np.dtype(name) for name in ("float16", "float32", "float64", "int8", "uint8",
                                                    "int32", "int64"))


def _stageable(template: mx.nd.NDArray) -> bool:
    """Whether a value for ``template`` can be staged in a new MXNet array
    written by NumPy (:func:`_staged`): a CPU array of a usual dtype."""
    return np.dtype(template.dtype) in _STAGEABLE and template.context.device_type == "cpu" \
        and template.size > 0


def _staged(template: mx.nd.NDArray) -> Tuple[mx.nd.NDArray, np.ndarray]:
    """A new MXNet array of ``template``'s shape, dtype, context and
    interface, and a writable NumPy view of its memory
    (``MXNDArrayGetData``; nothing of MXNet's engine reads or writes a new
    array yet).  The view is for writing the value now, never to keep:
    MXNet frees that memory with the array."""
    staged = mx.nd.empty(template.shape, ctx=template.context, dtype=np.dtype(template.dtype))
    return _in_interface(staged, isinstance(template, mx.np.ndarray)), _memory(staged)


def _memory(array: mx.nd.NDArray) -> np.ndarray:
    """A writable NumPy view of the memory of ``array`` (a CPU array of a
    usual dtype, :func:`_stageable`) through ``MXNDArrayGetData``, which
    first turns an array MKL-DNN keeps in a layout of its own (a
    convolution's weight after a forward) back into the plain one.  It
    does not wait for MXNet's engine: the caller does, or the array is
    new.  Valid only while ``array`` lives."""
    dtype = np.dtype(array.dtype)
    address = ctypes.c_void_p()
    check_call(_LIB.MXNDArrayGetData(array.handle, ctypes.byref(address)))
    memory = (ctypes.c_char * (array.size * dtype.itemsize)).from_address(address.value)
    return np.frombuffer(memory, dtype).reshape(array.shape)


@contextlib.contextmanager
def _lent(array: mx.nd.NDArray):
    """A read-only view of ``array``'s memory once the engine's writes to
    it are done (``wait_to_read``), for :meth:`MxnetAdapter.lend_array`.
    The context holds ``array``, so its memory lives while the view is
    used."""
    array.wait_to_read()
    view = _memory(array)
    view.flags.writeable = False
    yield view


def _source_for(template: mx.nd.NDArray, value: Any) -> mx.nd.NDArray:
    """``value`` as an MXNet array to copy into ``template``.  NumPy values
    of the usual dtypes, for the CPU, are copied by NumPy straight into
    the memory of a new MXNet array (:func:`_staged`): MXNet owns it and
    frees it once its engine has copied it on.  ``mx.nd.array`` makes the
    same copy through the engine and waits for it (about 100 us a tensor
    here, most of a ResNet-50 load's 170 ms); an array adopted from NumPy
    (``from_numpy(zero_copy=True)``) instead has the engine call back into
    Python to free it, which crashed under ``tracemalloc``.  Anything else
    goes through :func:`_like`."""
    if not (isinstance(value, np.ndarray) and _stageable(template)):
        return _like(template, value)
    staged, memory = _staged(template)
    np.copyto(memory, value)
    return staged


def _assign(p: Parameter, source: mx.nd.NDArray) -> None:
    """``p.set_data(source)`` for an initialised ``p``: MXNet's engine
    copies ``source`` into the parameter on every context, without
    waiting.  set_data itself only where a Trainer keeps ``p`` in a KVStore
    (it resets that copy); elsewhere its ``arr[:] = source`` comes to
    ``source.copyto(arr)``, made here without the indexing machinery around
    it (~13 shape queries into the engine per array, a third of what a
    ResNet-50 load spent besides the copies)."""
    trainer = p._trainer
    if trainer and trainer._kv_initialized and trainer._update_on_kvstore:
        p.set_data(source)
        return
    for arr in p.list_data():
        source.copyto(arr)


class MxnetAdapter(Adapter):
    """MXNet 1.9.1 Gluon blocks (``mx.nd`` and ``npx.set_np()`` modes).

    ``state`` is the Gluon block; parameter refs are the Gluon ``Parameter``
    objects themselves.
    """

    name = "mxnet"
    channels_last = False   # Gluon convolutions are NCHW, the canonical layout
    value_reads_copy = True     # NDArray.asnumpy() copies: Gluon gives no view of its memory
    capabilities = {
        "tie_transposed": Capability(
            False, "a Gluon layer passes its own Parameter's data to its operator, and a "
                   "Parameter cannot be the transpose of another"),
        **{f"dtype:{name}": Capability(False, reason) for name, reason in _UNHOLDABLE.items()},
        "sharding": Capability(
            False, "MXNet's KVStore aggregates gradients of whole Parameters kept on every "
                   "device; it has no sharded-parameter model (no global array split over a mesh)"),
    }

    # -- recognising and preparing models ---------------------------------
    def is_model(self, obj: Any) -> bool:
        return isinstance(obj, Block)

    def prepare(self, native: Block, sample_input: Any = None, **options) -> Block:
        """Initialise the block if the user has not, then resolve deferred shapes.

        When no parameter is initialised nor pending deferred initialisation,
        call ``native.initialize()`` with Gluon's own default (Uniform(0.07)
        weights, zero biases): the chapter always does this right after
        building, and without it no parameter can ever get a value.  Blocks
        the user initialised (even partly) are left alone.
        """
        if all(p._data is None and not p._deferred_init for p in _iter_unique_params(native, set())):
            native.initialize()
        if sample_input is not None:
            self.call(native, Inputs.of(sample_input))
        return native

    def describe(self, state: Block) -> LayerNode:
        deferred: list = []
        root = self._node("", state, deferred)
        root.materialized = not deferred
        return root

    def _node(self, key: str, block: Block, deferred: list) -> LayerNode:
        """The block's node; ``deferred`` collects parameters whose data
        Gluon has not made yet (what :meth:`is_materialized` asks)."""
        slots, cls = [], type(block)
        for attr, p in _own_params(block).items():
            leaf, role, layout, declared = _param_kind(cls, attr)
            if p._data is None:
                deferred.append(p)
            # p.name carries Gluon's global counters (dense3_weight): shown, never used as a key.
            # Gluon's own layers are (out, in) and (out, in/groups, *k) like torch.  No shape
            # hint: Gluon's own shape (unknown dims None) is what array_shape gives
            slots.append(ParamSlot(role, p.name, p, layout, p.grad_req != "null", id(p), None, False, leaf,
                                   declared))
        children = [self._node(str(k), c, deferred) for k, c in block._children.items()]
        return LayerNode(key, _kind(block), block, slots, children)

    def is_materialized(self, state: Block) -> bool:
        # _data stays None while the shape has unknown dims or init is deferred
        return all(_is_materialized(p) for p in _unique_params(state))

    # -- forward -----------------------------------------------------------
    def _float_dtype(self, state: Block) -> np.dtype:
        """The float dtype inputs take: the model's (``block.cast('float64')``
        or ``m.astype('float16')`` make Gluon compute in another one), else
        Gluon's default float32."""
        for p in _unique_params(state):
            if _is_materialized(p) and np.dtype(p.dtype).kind == "f":
                return np.dtype(p.dtype)
        return np.dtype(np.float32)

    def _array_in(self, state: Block, x: Any) -> Any:
        """An input as the block takes it: MXNet arrays in the current Gluon
        interface (``mx.nd``, or ``mx.np`` under ``npx.set_np()``), NumPy
        arrays and lists of numbers as MXNet arrays (floats in the model's
        float dtype, integers keeping theirs: token ids), anything else
        (``None``, flags, states given as tuples) as it is."""
        if isinstance(x, mx.nd.NDArray):
            return _in_interface(x, is_np_array())
        if not isinstance(x, (np.ndarray, np.generic, list)):
            return x
        x = np.asarray(x)
        return _as_mxnet(x, is_np_array(), self._float_dtype(state) if x.dtype.kind == "f" else x.dtype)

    def call(self, state: Block, inputs: Inputs, train: Optional[bool] = None) -> Any:
        """``block(*args)``: inference mode outside ``autograd.record``
        (Gluon's own rule) unless ``train`` forces a mode
        (``autograd.train_mode()`` / ``predict_mode()``).  Gluon 1.x's
        ``Block.__call__`` takes positional inputs only, so keyword inputs go
        to the forward's parameters of those names (see :func:`_positional`)."""
        args = _positional(state, [self._array_in(state, a) for a in inputs.args],
                           {k: self._array_in(state, v) for k, v in inputs.kwargs.items()})
        if train is None:
            return state(*args)
        with (autograd.train_mode() if train else autograd.predict_mode()):
            return state(*args)

    def to_numpy(self, array: Any) -> np.ndarray:
        if isinstance(array, Parameter):
            return array.data().asnumpy()
        if isinstance(array, mx.nd.NDArray):
            return array.asnumpy()
        return np.asarray(array)

    # -- storage primitives (native layout) ---------------------------------
    def read_array(self, state: Block, ref: Parameter) -> np.ndarray:
        # asnumpy() copies: MXNet has no zero-copy view onto its engine's buffers
        array = ref.data().asnumpy()
        if array.dtype.kind == "V":
            raise self._bfloat16_unreadable(ref)
        return array

    def lend_array(self, state: Block, ref: Parameter):
        """Gluon's reads copy (``asnumpy()`` waits for the engine, then
        copies through it): a save or a transfer that consumes the value at
        once reads the parameter's own memory instead, once the engine is
        done with it.  ResNet-50's ``asnumpy()`` reads were a third of its
        save.  None for an array that is not a usual dtype on the CPU."""
        if ref._data is None or ref._stype != "default":
            return None
        array = ref.data()
        return _lent(array) if _stageable(array) else None

    def array_shape(self, state: Block, ref: Parameter) -> Optional[tuple]:
        return _gluon_shape(ref)

    def array_dtype(self, state: Block, ref: Parameter) -> Optional[np.dtype]:
        if ref.dtype is None:
            return None
        if _is_mxnet_bfloat16(ref.dtype):
            raise self._bfloat16_unreadable(ref)
        return np.dtype(ref.dtype)

    def _bfloat16_unreadable(self, ref: Parameter) -> CapabilityError:
        """A block the user cast to MXNet's bfloat16: its bits have no NumPy
        float face here (``m.astype('float32')`` converts it back)."""
        return CapabilityError(self.name, f"show {ref.name} (bfloat16) as a NumPy float",
                               _UNHOLDABLE["bfloat16"])

    def write_array(self, state: Block, ref: Parameter, value: Any) -> None:
        """``Parameter.set_data`` copies into the existing data arrays on every
        context, so the Parameter (and its autograd marking) stays the same.
        ``value`` is NumPy or an MXNet array of either interface."""
        if ref._data is None:
            # deferred: Gluon keeps the value and copies it to each context
            # when the shape resolves, so it must be an MXNet array of its own
            ref.set_data(_as_mxnet(value, is_np_array(), np.dtype(ref.dtype)))
        else:
            # through an MXNet array, not set_data(numpy): ``arr[:] = numpy``
            # is a synchronous copy that fails on an array MKL-DNN keeps in
            # its own layout (a Conv2D weight after a forward)
            _assign(ref, _source_for(ref.list_data()[0], value))

    def fill_array(self, state: Block, ref: Parameter, fill) -> bool:
        """Gluon gives no view of a parameter's memory: ``fill`` writes a
        new MXNet array's instead (:func:`_staged`), which MXNet's engine
        then copies into the parameter, as :meth:`write_array` does with a
        value.  A load reads each tensor from the file's mapping straight
        into that array: one copy fewer than a fresh NumPy array staged
        again.  False where the value cannot be staged so (the caller then
        uses ``write``)."""
        if ref._data is None:
            return False
        template = ref.list_data()[0]
        if not _stageable(template):
            return False
        staged, memory = _staged(template)
        fill(memory)
        del memory          # MXNet's memory: never kept past the write
        _assign(ref, staged)
        return True

    def array_object(self, state: Block, ref: Parameter) -> Parameter:
        return ref

    def array_grad(self, state: Block, ref: Parameter) -> Optional[np.ndarray]:
        """Gluon always holds a gradient buffer (zeros before any backward), so
        "no gradient" is read from the ``_fresh_grad`` flag: None when the
        parameter takes no gradient, or no backward wrote it since the flag was
        reset and the buffer is all zeros.  ``Trainer.step`` resets the flag
        but the buffer keeps the last backward's values; those are returned,
        as torch keeps ``.grad`` after ``optimizer.step()``."""
        if ref.grad_req == "null" or ref._data is None or ref._grad is None:
            return None
        g = ref.grad().asnumpy()
        if ref.list_data()[0]._fresh_grad or np.any(g):
            return g
        return None

    def grad_key(self, state: Block, ref: Parameter) -> int:
        return id(ref)

    # -- gradients -------------------------------------------------------------
    def native_grads(self, state: Block, inputs: Inputs, loss: Any = None, target: Any = None,
                     train: bool = False) -> dict:
        """Gradients of a scalar loss, leaving Gluon's own buffers as they were.

        Recorded with ``autograd.record(train_mode=train)``: inference mode
        by default (BatchNorm uses its running statistics), as the other
        backends' ``grad`` does, so gradients compare across frameworks.
        MXNet 1.9's BatchNorm backward uses the batch-statistics formula
        unless ``use_global_stats`` is set, even in predict mode, so that
        flag is switched on for the call (see :func:`_global_stats`).

        ``autograd.grad`` returns the gradients as new arrays instead of
        writing them into the Parameters' buffers, so Gluon's own gradients
        (and ``grad_req='add'`` accumulation, and ``_fresh_grad``) stay as
        the user's loop left them, with no copies to save and restore.  A
        shared Parameter is one variable, whose gradient sums every use.
        Non-trainable arrays (BatchNorm running statistics, which a
        training-mode forward updates) are restored after ``train=True``.
        """
        if not self.is_materialized(state):
            # resolve deferred shapes first with a plain forward (no recording,
            # no statistics update), so every parameter has its data
            self.call(state, inputs)
        params = [p for p in _unique_params(state) if _is_materialized(p)]
        trainable = [p for p in params if p._grad is not None]
        frozen = [p for p in params if p._grad is None]
        saved_frozen = {id(p): [d.copy() for d in p.list_data()] for p in frozen} if train else {}
        try:
            with _global_stats(state, not train), autograd.record(train_mode=bool(train)):
                out = self.call(state, inputs, bool(train))
                value = self.loss_value(out, loss, target)
            variables = [d for p in trainable for d in p.list_data()]
            grads = autograd.grad(value, variables, train_mode=bool(train)) if variables else []
            result, i = {}, 0
            for p in trainable:
                n = len(p.list_data())     # one data array per context
                per_context = [g.asnumpy() for g in grads[i:i + n]]
                i += n
                result[id(p)] = per_context[0] if n == 1 else np.sum(per_context, axis=0)
            return result
        finally:
            for p in frozen:
                for d, s in zip(p.list_data(), saved_frozen.get(id(p), ())):
                    d[:] = s

    def is_floating_array(self, x) -> bool:
        # float16/32/64; MXNet's bfloat16 is a record dtype (kind 'V'), never an output here
        return isinstance(x, mx.nd.NDArray) and np.dtype(x.dtype).kind == "f"

    def reduce_sum(self, out):
        return out.sum()

    def reduce_mean(self, out):
        return out.mean()

    def as_target(self, target, out):
        """``target`` in ``out``'s interface and context: class labels keep
        their integer dtype, floating targets take ``out``'s dtype."""
        if not isinstance(target, mx.nd.NDArray):
            target = np.asarray(target)
        dtype = out.dtype if np.dtype(target.dtype).kind == "f" else target.dtype
        return _as_mxnet(target, isinstance(out, mx.np.ndarray), dtype, out.context)

    # -- tying after construction --------------------------------------------
    def tie(self, state: Block, dst: ParamSlot, dst_layer: Block, src: ParamSlot,
            native_transpose: bool) -> None:
        """Gluon 1.x: point the dst block's ``_reg_params`` entry, its
        attribute and its ``ParameterDict`` (``_params._params``) at the src
        ``Parameter`` -- what ``params=shared.params`` does at construction --
        so ``collect_params()`` and a ``Trainer`` built afterwards see one
        Parameter.  Cached hybrid graphs are dropped so they rebind.  Leans
        on Gluon internals (pinned mxnet==1.9.1; the suite catches changes)."""
        if native_transpose:
            raise CapabilityError(self.name, "tie a parameter to a transposed one",
                                  self.capabilities["tie_transposed"].reason)
        old, shared = dst.ref, src.ref
        attrs = [a for a, p in dst_layer._reg_params.items() if p is old]
        if not attrs:
            raise CapabilityError(self.name, f"tie {old.name}", "no block attribute holds that Parameter")
        for attr in attrs:
            dst_layer._reg_params[attr] = shared
            object.__setattr__(dst_layer, attr, shared)   # Block.__setattr__ refuses to override
        table = dst_layer._params._params
        table.pop(old.name, None)
        table[shared.name] = shared
        _drop_cached_graphs(state)

    # -- building from the neutral spec ---------------------------------------
    builders = BUILDERS

    def reuse(self, native: Block, spec: Any) -> Block:
        """A Dense spec used twice: its second use is the twin
        ``nn.Dense(.., params=shared.params)``; other reused blocks stay one
        block used twice (Gluon shares those too)."""
        return dense_twin(native) if isinstance(native, nn.Dense) else native

    def finish_build(self, native: Block) -> Block:
        """``initialize()``, Gluon's default: deferred shapes resolve on the
        first forward."""
        native.initialize()
        return native

    # -- the framework's own listings ---------------------------------------
    def summary_idiom(self, state: Block) -> list:
        """``collect_params()`` as Gluon lists it: global names, unknown dims as
        Gluon shows them (0; -1 while ``npx.set_np()`` is on)."""
        return [(name, p.shape) for name, p in state.collect_params().items()]

    def native_count(self, state: Block) -> int:
        total, seen = 0, set()
        for p in state.collect_params().values():
            if id(p) in seen or p.grad_req == "null":   # running statistics are not trained
                continue
            seen.add(id(p))
            shape = _gluon_shape(p)
            if shape is not None and all(d is not None for d in shape):
                total += int(np.prod(shape))
        return total

    # -- converting the model ------------------------------------------------------
    def astype(self, state: Block, dtype: np.dtype) -> None:
        """``block.cast(dtype)``, Gluon's own conversion: every Parameter,
        deferred ones included, and hybridized graphs rebuilt; a block that
        overrides ``cast`` keeps its rule (Gluon's BatchNorm stays float32
        under float16: its operator takes float32 scale and statistics).
        A model the user cast to MXNet's bfloat16 converts back this way.
        ``Block.cast`` converts integer Parameters too; those are put back
        exactly as they were, since only floating ones are asked for.

        MXNet 1.9.1 runs Dense, Conv and RNN layers in float16 only on GPUs
        (cuDNN): on a CPU a float16 model holds, reads, saves and moves its
        values bit for bit, but its forward fails inside MXNet."""
        name = dtypes.name(dtype)
        if name not in _CAST_DTYPES:
            raise CapabilityError(self.name, f"convert a model to {name}",
                                  _UNHOLDABLE.get(name, f"Gluon casts models to {', '.join(_CAST_DTYPES)}"))
        kept = [(p, p.dtype, [d.copy() for d in p.list_data()] if _is_materialized(p) else [])
                for p in _unique_params(state)
                if p.dtype is not None and np.dtype(p.dtype).kind != "f" and not _is_mxnet_bfloat16(p.dtype)]
        state.cast(name)
        for p, original, data in kept:
            p.cast(original)
            for array, saved in zip(p.list_data() if data else (), data):
                array[:] = saved

    # -- initialisation (native mode) ------------------------------------------
    def draw(self, kind: str, shape: tuple, dtype: np.dtype, seed: int, **params):
        """``mx.nd.random`` on the CPU, where Gluon's own ``initialize()``
        draws too before copying to each context (the base's write copies
        into every context's array in place, so ``Trainer`` sees the same
        Parameter).  MXNet 1.x has no per-call generator: this seeds the
        global RNG with ``mx.random.seed(seed)``, as Gluon's initialisation
        draws from it.  MXNet has no truncated normal and no orthogonal
        draw: None, and the base falls back to portable mode."""
        op = _RANDOM_OPS.get(kind)
        if op is None:
            return None
        sample, arguments = op
        mx.random.seed(seed)
        return sample(*(params[a] for a in arguments), shape=shape, dtype=dtype, ctx=mx.cpu())

    def framework_default(self, state: Block, layer_node: Any, slot: Any):
        """Gluon 1.9.1's rule: the Parameter's own ``init`` when the layer
        sets one by default (bias/beta ``'zeros'``, gamma and running_var
        ``'ones'``, running_mean ``'zeros'``), else the global default of
        ``initialize()``, ``Uniform(0.07)``, for weights (Dense, Conv,
        Embedding have ``weight_initializer=None``)."""
        own = slot.ref.init
        if isinstance(own, str) and own.lower() in ("zeros", "ones"):
            return I.zeros() if own.lower() == "zeros" else I.ones()
        # Gluon's Initializer dispatches on the name's suffix; a layer's own
        # non-default weight_initializer is not "the default" and is ignored
        name = slot.ref.name
        for suffix, value in _GLUON_DEFAULT_BY_SUFFIX:
            if name.endswith(suffix):
                return value
        return None


ADAPTER = MxnetAdapter()
