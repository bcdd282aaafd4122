"""The TensorFlow / Keras 3 adapter: the primitives on one ``keras.Variable``,
the forward and ``GradientTape``, ``astype``, ties and ``keras.random`` draws.

Keras keeps parameters inside the layers, as ``keras.Variable`` objects held
in layer attributes (``Dense._kernel``, ``Dense.bias``, ...), so the state is
the model itself.  How the model becomes a tree of canonical names, roles
and layouts is in :mod:`.tree`.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import keras
import numpy as np
import tensorflow as tf
from keras.src.backend.common import is_float_dtype
from keras.src.initializers.random_initializers import compute_fans   # Keras' own fan rule

from ... import dtypes, fastcopy
from ... import initializers as I
from ... import layout as _layout
from ...errors import CapabilityError, NotMaterializedError
from ..base import Adapter, Capability, Composite, Deferred, Inputs, LayerNode, ParamSlot, SumShare, kept_shares
from . import tree
from .builders import BUILDERS
from .layers import Dense, StoragePolicy
from .layouts import einsum_specs
from .order import apply_feature_orders
from .tree import VariableRef

#: dtypes Keras computes in; others (float8) are storage only (see ``astype``)
_COMPUTE_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _adoptable(value: Any, dtype: Any) -> Any:
    """What to ``assign`` for ``value``: for the handle's own fresh array
    (writable by the write contract, C-contiguous, 64-byte aligned, of the
    variable's dtype) a tensor on its memory through DLPack, which
    TensorFlow's assign takes over without copying (``assign`` of NumPy
    converts it to a tensor first: a second full copy).  Anything else, and
    dtypes DLPack cannot carry (bfloat16 from ml_dtypes), as it is."""
    if not (isinstance(value, np.ndarray) and value.flags.writeable and value.flags.c_contiguous
            and value.size and fastcopy.is_aligned(value) and np.dtype(value.dtype) == dtypes.dtype(dtype)):
        return value
    try:
        return tf.experimental.dlpack.from_dlpack(value.__dlpack__())
    except (TypeError, ValueError, BufferError, tf.errors.InvalidArgumentError):
        return value


class _ReadAlias:
    """NumPy's array interface of ``array``'s memory with the read-only flag
    cleared.  NumPy exports DLPack's unversioned capsule (the one TensorFlow
    2.21 takes) only from writable arrays, as that capsule cannot say
    "read-only"; the sources of a write are often read-only views (a
    value borrowed from another model, a memory-mapped file).  Only
    ``tf.transpose`` sees the alias, and it only reads."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array        # kept alive as long as the alias is
        interface = dict(array.__array_interface__)
        interface["data"] = (interface["data"][0], False)
        self.__array_interface__ = interface


def _transposed(source: np.ndarray) -> Any:
    """``source.T`` by TensorFlow's own transpose (oneDNN, on every core:
    about twice torch's single-core transposing copy for float32 here), read
    straight from ``source``'s memory through DLPack; the result is a fresh
    tensor that ``assign`` keeps, so the write holds one value, as
    ``var.assign(w.T)`` does.  None when TensorFlow cannot take ``source``:
    too small to gain, memory not 64-byte aligned (TensorFlow's transpose
    aborts the process on such a tensor), or a dtype it cannot bitcast to
    (float8)."""
    # as its bits: dtypes NumPy cannot export to DLPack (bfloat16) cross too
    bits = dtypes.UNSIGNED_OF_SIZE.get(source.itemsize)
    if (bits is None or source.ndim != 2 or source.size < fastcopy.SMALL
            or not source.flags.c_contiguous or not fastcopy.is_aligned(source)):
        return None
    try:
        target = tf.as_dtype(source.dtype)
        tensor = tf.experimental.dlpack.from_dlpack(np.asarray(_ReadAlias(source.view(bits))).__dlpack__())
        if tensor.dtype != target:
            tensor = tf.bitcast(tensor, target)   # the same bits, no copy
    except (TypeError, ValueError, BufferError, tf.errors.InvalidArgumentError):
        return None
    return tf.transpose(tensor)


class TensorflowAdapter(Adapter):
    """Keras 3 on TensorFlow: layers, ``weights`` with ``.path``,
    ``GradientTape``.  State is the model itself.

    Every dtype real checkpoints use is a Keras Variable dtype on TensorFlow
    (float16, bfloat16, float8_e4m3fn, float8_e5m2, int8, uint8, float32,
    float64), read and written bit for bit through ``ml_dtypes``, so no
    ``dtype:*`` capability is declared unsupported."""

    name = "tensorflow"
    # transposed ties: supported for the Dense layers multiparam builds (its
    # Dense subclass); ``tie`` raises CapabilityError for a plain keras Dense
    capabilities: dict = {
        "sharding": Capability(
            False, "Keras 3's distribution API (keras.distribution, DataParallel/ModelParallel "
                   "layouts) exists only on its JAX backend; this adapter runs Keras on TensorFlow, "
                   "whose variables are whole on one device"),
    }
    channels_last = True    # Keras' default data_format: NHWC images
    builders = BUILDERS
    value_reads_copy = True     # variable.numpy() copies: TensorFlow gives no view of a variable
    transposes_aligned_only = True   # see _transposed: TensorFlow aborts on unaligned memory

    # -- recognising and preparing models ---------------------------------
    def is_model(self, obj: Any) -> bool:
        """Any ``keras.Layer`` (a ``Model`` is a ``Layer``)."""
        return isinstance(obj, keras.Layer)

    def prepare(self, native: Any, sample_input: Any = None, **options) -> Any:
        """The model itself; one inference forward on ``sample_input`` builds it."""
        if sample_input is not None:
            self.call(native, Inputs.of(sample_input), train=False)
        return native

    # -- description -----------------------------------------------------------
    def describe(self, state: Any) -> LayerNode:
        """The layer tree (:mod:`.tree`), each variable indexing features in
        the order it holds them (:mod:`.order`: Keras' graph followed once,
        at the first need of a value's layout; names and shapes never need
        it); reads attributes and Keras' own graph only, never builds or
        calls."""
        pending = Deferred(None)
        root = tree.describe(state, pending)
        pending.fn = lambda: apply_feature_orders(root, state)
        return root

    def is_materialized(self, state: Any, root: Optional[LayerNode] = None) -> bool:
        return tree.is_materialized(self.describe_structure(state) if root is None else root)

    def is_materialized_tree(self, state: Any, root: LayerNode) -> bool:
        if root.materialized is not None:
            return root.materialized
        return tree.is_materialized(root)

    # -- forward -----------------------------------------------------------
    def _tensor_in(self, x: Any, floats: str) -> Any:
        """An input as Keras takes it: NumPy arrays become tensors (floating
        ones in ``floats``, integer ids and boolean masks keep their dtype),
        a list or tuple of arrays (a multi-input model's) and a dict of
        named inputs are converted item by item, a nested list of plain
        numbers becomes one array; tensors and anything else (flags,
        strings, None) pass as they are."""
        if isinstance(x, (np.ndarray, np.generic)):
            arr = np.asarray(x)
            if dtypes.is_floating(arr.dtype):
                arr = arr.astype(dtypes.dtype(floats), copy=False)   # NumPy's rounding, as m.astype's
            return tf.convert_to_tensor(arr)
        if isinstance(x, dict):
            return {k: self._tensor_in(v, floats) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            leaves = tf.nest.flatten(x)
            if leaves and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in leaves):
                return self._tensor_in(np.asarray(x), floats)
            items = [self._tensor_in(v, floats) for v in x]
            return tuple(items) if isinstance(x, tuple) else items
        return x

    def call(self, state: Any, inputs: Inputs, train: Optional[bool] = None) -> Any:
        """``model(*args, **kwargs)``, with ``training=train`` when ``train``
        is given (Keras passes it on to every layer whose ``call`` takes it);
        None leaves Keras' default, inference outside ``fit``.  Floating
        NumPy inputs become tensors in the model's compute dtype (Keras'
        ``floatx``, or what ``astype`` set), so a float64 model gets its
        inputs unrounded."""
        floats = state.compute_dtype
        args = [self._tensor_in(a, floats) for a in inputs.args]
        kwargs = {k: self._tensor_in(v, floats) for k, v in inputs.kwargs.items()}
        if train is not None:
            kwargs["training"] = bool(train)
        return state(*args, **kwargs)

    def to_numpy(self, array: Any) -> np.ndarray:
        if isinstance(array, np.ndarray):
            return array
        if isinstance(array, keras.Variable):
            return array.numpy()
        if isinstance(array, tf.IndexedSlices):
            array = tf.convert_to_tensor(array)
        if hasattr(array, "numpy"):
            return np.asarray(array.numpy())
        return np.asarray(array)

    # -- storage primitives (one Variable each) -----------------------------
    @staticmethod
    def _var(ref: VariableRef):
        """The Variable ``ref`` locates; NotMaterializedError while unbuilt."""
        v = ref.resolve()
        if v is None:
            raise NotMaterializedError(ref.label(), ())
        return v

    def read_transposed(self, state, ref) -> Optional[np.ndarray]:
        """``tf.transpose`` of the variable (oneDNN, on every core) handed
        to NumPy through DLPack without a copy: one pass instead of
        ``numpy()``'s copy and a transposing copy after it.  Not for a
        2-byte dtype: TensorFlow transposes bfloat16 and float16 slowly
        here, and ``numpy()`` then torch's transposing copy is faster (32
        kernels of 2048 x 2048, Keras into torch: bfloat16 147-162 ms
        against 188-192, float16 162-167 against 262-339; float32 the
        other way, 119-140 against 221-233 for twice the bytes)."""
        var = self._var(ref)
        if math.prod(var.shape) < fastcopy.SMALL:
            return None
        dtype = dtypes.dtype(var.dtype)
        bits = dtypes.UNSIGNED_OF_SIZE.get(dtype.itemsize)
        if bits is None or dtype.itemsize == 2:
            return None
        try:
            transposed = tf.transpose(var.value)
            if transposed.dtype != tf.as_dtype(bits):
                transposed = tf.bitcast(transposed, tf.as_dtype(bits))   # DLPack carries plain bits
            return np.from_dlpack(transposed).view(dtype)
        except (TypeError, ValueError, BufferError, tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
            return None   # a dtype TensorFlow cannot transpose or bitcast (float8)

    def read_array(self, state, ref) -> np.ndarray:
        """``variable.numpy()``: a copy (TF variables are not viewable)."""
        return self._var(ref).numpy()

    def write_array(self, state, ref, value) -> None:
        """``variable.assign`` (NumPy or a tensor): the same Variable object,
        seen by every layer holding it.  A borrowed (read-only) array is
        copied by ``assign``; the handle's own fresh array is handed over
        (see :func:`_adoptable`), which saves a copy of every byte."""
        var = self._var(ref)
        var.assign(_adoptable(value, var.dtype))

    def transposed_array(self, source: np.ndarray) -> Any:
        """TensorFlow's own transpose of ``source`` (see :func:`_transposed`),
        which :meth:`write_array` assigns without another copy."""
        return _transposed(source)

    def array_shape(self, state, ref) -> Optional[tuple]:
        v = ref.resolve()
        if v is None:
            return None
        # Keras' own shape tuple (``shape`` wraps it in a tf.TensorShape per call)
        shape = getattr(v, "_shape", None)
        if type(shape) is tuple and None not in shape:
            return shape
        return tuple(int(d) for d in v.shape)

    def array_shapes(self, state, refs: list) -> list:
        # shapes() of a whole model: Keras' own shape tuples in one loop
        out = []
        for ref in refs:
            shape = getattr(ref.resolve(), "_shape", None)
            out.append(shape if type(shape) is tuple and None not in shape else self.array_shape(state, ref))
        return out

    def array_dtype(self, state, ref) -> Optional[np.dtype]:
        v = ref.resolve()
        return None if v is None else dtypes.dtype(v.dtype)   # Keras' standard names: ml_dtypes' too

    def array_object(self, state, ref) -> Any:
        return self._var(ref)

    # array_grad: the base's None; Keras keeps no gradient on its variables

    def grad_key(self, state, ref):
        return id(self._var(ref))

    # -- gradients -------------------------------------------------------------
    def native_grads(self, state: Any, inputs: Inputs, loss: Any = None, target: Any = None,
                     train: bool = False) -> dict:
        """``tf.GradientTape`` over ``model.trainable_variables``, the
        forward run by :meth:`call` with ``training=train``; non-trainable
        variables (BatchNorm moving statistics) are restored afterwards.

        Keras de-duplicates a reused layer's variables, so the tape already
        sums the contributions of every use.  Unused variables get zeros;
        embedding gradients (``IndexedSlices``) come back dense.  A float8
        variable (``astype`` to a storage-only dtype) has no gradient:
        TensorFlow's ``Cast`` does not differentiate from float8, so that
        raises rather than giving zeros."""
        stored = [v for v in state.trainable_variables
                  if is_float_dtype(v.dtype) and v.dtype not in _COMPUTE_DTYPES]
        if stored:
            raise CapabilityError(self.name, f"differentiate {stored[0].path} ({stored[0].dtype})",
                                  "TensorFlow has no gradient through a cast from float8; "
                                  "m.astype a compute dtype (bfloat16, float16, float32) first")
        saved = [(v, v.numpy()) for v in state.non_trainable_variables]
        with tf.GradientTape() as tape:
            # builds the model on a first call; the tape sees the new variables
            out = self.call(state, inputs, train=bool(train))
            value = tf.convert_to_tensor(self.loss_value(out, loss, target))
        for v, old in saved:
            v.assign(old)
        variables = state.trainable_variables
        grads = tape.gradient(value, variables,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return {id(v): self.to_numpy(g) for v, g in zip(variables, grads)}

    def is_floating_array(self, x) -> bool:
        return (tf.is_tensor(x) or isinstance(x, keras.Variable)) and is_float_dtype(x.dtype)

    def reduce_sum(self, out):
        return tf.reduce_sum(out)

    def reduce_mean(self, out):
        return tf.reduce_mean(out)

    def as_target(self, target, out):
        """An integer target (class labels) keeps its dtype; a floating one
        takes the output's."""
        t = target if tf.is_tensor(target) else tf.convert_to_tensor(np.asarray(target))
        return tf.cast(t, out.dtype) if t.dtype.is_floating else t

    # -- tying after construction --------------------------------------------
    def tie(self, state: Any, dst: ParamSlot, dst_layer: Any, src: ParamSlot,
            native_transpose: bool) -> None:
        """Keras 3: with the dst layer's tracker unlocked, point its attribute
        (``_kernel``, ``bias``) at the src Variable and untrack the old one,
        then lock again.  ``trainable_variables`` (de-duplicated by Keras),
        ``GradientTape`` and any optimizer then see one Variable.  Leans on
        Keras' private ``_tracker`` (pinned keras==3.15.1; the conformance
        suite catches a Keras that changes it)."""
        if isinstance(dst.ref, Composite) or isinstance(src.ref, Composite):
            raise CapabilityError(self.name, f"tie {dst.native_name}",
                                  "Keras keeps an LSTM's two biases as one summed Variable")
        if native_transpose:
            self._tie_transposed(dst, src)
            return
        ref = dst.ref
        if ref.attr is None:
            raise CapabilityError(self.name, f"tie {dst.native_name}",
                                  "no layer attribute holds that variable")
        layer, shared = ref.layer, self._var(src.ref)
        old = vars(layer).get(ref.attr)
        layer._tracker.unlock()
        try:
            setattr(layer, ref.attr, shared)   # the tracker records the shared Variable
            if old is not None and old is not shared:
                layer._tracker.untrack(old)
        finally:
            layer._tracker.lock()

    def _tie_transposed(self, dst: ParamSlot, src: ParamSlot) -> None:
        """A kernel that is another Variable transposed: only multiparam's
        :class:`Dense` can read one (``kernel`` returns ``transpose(var)``);
        its own kernel Variable is untracked, so Keras lists one Variable."""
        ref = dst.ref
        if not (isinstance(ref.layer, Dense) and ref.attr == "_kernel"):
            raise CapabilityError(
                self.name, "tie a parameter to a transposed one",
                "a keras.layers.Dense reads its own kernel Variable, which cannot be the "
                "transpose of another; build the layer with mp.nn (multiparam's Dense can)")
        layer, shared = ref.layer, self._var(src.ref)
        old = vars(layer).get("_kernel")
        layer._tracker.unlock()
        try:
            layer._tied_kernel_t = shared            # tracked: the shared Variable
            if old is not None:
                layer._tracker.untrack(old)
            layer._kernel = None
        finally:
            layer._tracker.lock()
        # canonical relation: a layout change (embedding (V, D) vs kernel
        # (D, V)) already accounts for one transpose
        object.__setattr__(layer, "_tied_canonical_t",
                           not _layout.transposes_natively(src.layout, dst.layout))

    # -- the framework's own views ------------------------------------------------------------
    def summary_idiom(self, state: Any) -> list:
        """``[(v.path, shape) for v in model.weights]``: Keras' collect-all,
        a tied variable listed once."""
        return [(v.path, tuple(int(d) for d in v.shape)) for v in state.weights]

    def native_count(self, state: Any) -> int:
        """Trainable scalars the Keras way: the sizes of
        ``model.trainable_weights`` (which Keras de-duplicates), the
        "Trainable params" line of ``model.summary()``."""
        return int(sum(int(np.prod(v.shape)) for v in state.trainable_weights))

    # -- converting the model's dtype -----------------------------------------------------
    def astype(self, state: Any, dtype: np.dtype) -> None:
        """Keras has no call that converts a built model (its idiom is to
        rebuild it under another dtype policy and ``set_weights``), so this
        does what that rebuild would give, in place:

        * every layer gets the dtype policy of ``dtype``, so it computes in
          it and creates any later variable in it;
        * every floating Variable gets a new backing ``tf.Variable`` holding
          its value cast to ``dtype`` (by ``ml_dtypes``, round to nearest
          even, as torch's ``module.to`` casts).  The ``keras.Variable``
          objects themselves stay (Keras' private ``_dtype`` and
          ``_initialize``, pinned keras==3.15.1): ties, ``model.weights``
          and whoever holds a variable still see the same one;
        * float8 is a storage dtype (TensorFlow has no float8 kernels on
          CPU): variables become float8 and layers compute in ``floatx``
          through a :class:`StoragePolicy`, reading each variable cast up.

        Functions Keras compiled (``fit``, ``predict``) are dropped, since
        they captured the old variables; an optimizer built before keeps
        slots of the old dtype, so ``compile`` again before training."""
        name = dtypes.name(dtype)
        policy = keras.DTypePolicy(name) if name in _COMPUTE_DTYPES else \
            StoragePolicy(name, keras.config.floatx())
        shares = self._lstm_shares(state)
        for layer in state._flatten_layers(include_self=True, recursive=True):
            layer.dtype_policy = policy
        seen = set()
        for v in state.variables:
            if id(v) in seen or not is_float_dtype(v.dtype) or v.dtype == name:
                continue
            seen.add(id(v))
            cast = v.numpy().astype(dtype)
            v._dtype = name
            v._initialize(cast)
        for owner, key, share, native in shares.values():
            # each torch bias cast by itself, as torch's module.to casts them,
            # remembered with the sum Keras now holds
            kept_shares(owner)[key] = (share[0].astype(dtype), share[1].astype(dtype),
                                        self.read_array(state, native))
        for attr in ("train_function", "test_function", "predict_function"):
            if getattr(state, attr, None) is not None:
                setattr(state, attr, None)

    def _lstm_shares(self, state: Any) -> dict:
        """``{(id(owner), key): (owner, key, [share 0, share 1], native
        ref)}`` of every :class:`SumShare` pair (an LSTM's two torch
        biases), read now."""
        out: dict = {}
        stack = [self.describe_structure(state)]
        while stack:
            node = stack.pop()
            stack.extend(node.children)
            for slot in node.params:
                ref = slot.ref
                if isinstance(ref, SumShare) and ref.part.resolve() is not None:
                    entry = out.setdefault((id(ref.owner), ref.key),
                                           (ref.owner, ref.key, [None, None], ref.part))
                    entry[2][ref.which] = self.read(state, ref)
        return out

    # -- initialisation (native mode) --
    def draw(self, kind: str, shape: tuple, dtype: np.dtype, seed: int, **params):
        """``keras.random`` (or ``keras.initializers.Orthogonal``) seeded with
        the int ``seed``.  Keras' truncated normal always cuts at 2 std, so
        other bounds return None and the base draws them portably."""
        dtype = np.dtype(dtype).name
        if kind == "uniform":
            return keras.random.uniform(shape, params["low"], params["high"], dtype=dtype, seed=seed)
        if kind == "normal":
            return keras.random.normal(shape, params["mean"], params["std"], dtype=dtype, seed=seed)
        if kind == "truncated_normal":
            mean, std = params["mean"], params["std"]
            if not (np.isclose(params["a"], mean - 2 * std) and np.isclose(params["b"], mean + 2 * std)):
                return None
            return keras.random.truncated_normal(shape, mean, std, dtype=dtype, seed=seed)
        if kind == "orthogonal":
            return keras.initializers.Orthogonal(gain=params["gain"], seed=seed)(shape, dtype=dtype)
        return None

    def framework_default(self, state: Any, layer_node: Any, slot: Any):
        """The layer classes' constructor defaults in Keras 3.15: Dense,
        Conv, DepthwiseConv, SeparableConv and EinsumDense glorot_uniform
        kernels, zeros bias; BatchNormalization gamma ones, beta zeros,
        moving_mean zeros, moving_variance ones; Layer/GroupNormalization
        ones/zeros, RMSNormalization ones; Embedding ``"uniform"`` =
        RandomUniform(-0.05, 0.05); Normalization (before ``adapt``) mean
        zeros, variance ones, count 0.  LSTM: not known here.

        Where the canonical layout regroups a kernel's axes (depthwise,
        einsum), torch's fans of the canonical shape are not the ones Keras
        computes, so the glorot bound is Keras' own, from the native shape."""
        if isinstance(slot.ref, Composite):
            return None
        layer = slot.ref.layer
        attr = (slot.ref.attr or "").lstrip("_")
        if attr == "bias" and isinstance(layer, tree.KERNEL_LAYERS):
            return I.zeros()
        if isinstance(layer, keras.layers.EinsumDense) and attr == "kernel":
            _, kernel, output = einsum_specs(layer.equation)
            return _keras_glorot(self._var(slot.ref),
                                 input_axes=[i for i, c in enumerate(kernel) if c not in output],
                                 output_axes=[i for i, c in enumerate(kernel) if c in output])
        if isinstance(layer, tree.DEPTHWISE + tree.SEPARABLE) and attr.endswith("kernel"):
            return _keras_glorot(self._var(slot.ref))
        if isinstance(layer, (keras.layers.Dense,) + tree.CONV + tree.CONV_T) and attr == "kernel":
            return I.xavier_uniform()
        if isinstance(layer, keras.layers.BatchNormalization):
            return {"gamma": I.ones(), "beta": I.zeros(), "moving_mean": I.zeros(),
                    "moving_variance": I.ones()}.get(attr)
        if isinstance(layer, tree.NORM):
            return {"gamma": I.ones(), "beta": I.zeros()}.get(attr)
        if isinstance(layer, keras.layers.RMSNormalization) and attr == "scale":
            return I.ones()
        if isinstance(layer, keras.layers.Embedding) and attr == "embeddings":
            return I.uniform(-0.05, 0.05)
        if isinstance(layer, keras.layers.Normalization):
            return {"adapt_mean": I.zeros(), "adapt_variance": I.ones(), "count": I.zeros()}.get(attr)
        return None


def _keras_glorot(var, input_axes=None, output_axes=None):
    """Keras' glorot_uniform, U(+-sqrt(6 / (fan_in + fan_out))), with the
    fans Keras computes from the native shape (and EinsumDense's axes)."""
    fan_in, fan_out = compute_fans(tuple(int(d) for d in var.shape), input_axes, output_axes)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return I.uniform(-limit, limit)


ADAPTER = TensorflowAdapter()
