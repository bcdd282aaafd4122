"""What the Flax linen and Flax NNX adapters share: the :class:`FlaxAdapter`
base class (the backend's name, NHWC images, ``m.flax``, the native arrays
as JAX arrays, dtypes, ``jax.random`` draws, the loss ops, Flax's
documented defaults).  What each leaf is (its canonical key, role and
layout) is ``leaves``; how a call takes its inputs and mode is ``calls``.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import nnx

from ... import dtypes, fastcopy
from ... import initializers as I
from ..base import Adapter, Capability, Composite
from . import sharding as _sharding
from .extension import FlaxExtension
from .leaves import layer_family


def private_array(value: Any, dtype: Any) -> jax.Array:
    """A jax array that owns its memory, made with at most one copy.

    On CPU ``jax.device_put`` adopts a 64-byte-aligned NumPy buffer without
    copying it (``jnp.asarray`` always copies).  So a writable value of the
    right dtype, which by the write contract is the handle's fresh array
    (``multiparam.fastcopy`` makes them aligned), is adopted as it is; a
    read-only one is borrowed (a state dict's, a memory map) and is copied
    first, once, into aligned memory, as is one that needs a cast."""
    if isinstance(value, np.ndarray):
        if (not value.flags.writeable or value.dtype != dtype or not value.flags.c_contiguous
                or not fastcopy.is_aligned(value)):
            value = fastcopy.aligned_copy(value, dtype)
        return jax.device_put(value)
    return jnp.asarray(value, dtype=dtype)


def cast_leaf(leaf: Any, dtype: np.dtype) -> Any:
    """A floating array cast to ``dtype`` (``astype``); any other leaf (an
    integer counter, an RNG key) as it is, as torch's ``module.to(dtype)``
    leaves integer buffers alone."""
    if hasattr(leaf, "dtype") and dtypes.is_floating(np.dtype(leaf.dtype)):
        return jnp.asarray(leaf).astype(dtype)
    return leaf


#: dtypes JAX holds only under ``jax_enable_x64`` (without it, it silently
#: makes them 32-bit, which multiparam must never do)
_X64_DTYPES = ("float64", "int64", "uint64")
_X64_REASON = ("JAX keeps 64-bit arrays only with jax_enable_x64 set "
               "(jax.config.update('jax_enable_x64', True)); without it they become 32-bit")


# ---------------------------------------------------------------------------
# the shared base of the linen and NNX adapters
# ---------------------------------------------------------------------------
class FlaxAdapter(Adapter):
    """Base of the jax backend's adapters (Flax linen and Flax NNX).

    Every native array is a JAX array, found by the subclass's
    :meth:`jax_array` primitive and replaced by its :meth:`replace_array`;
    reading, writing, shapes, dtypes and the storage key follow from them
    here.  JAX keeps no gradient on parameters, so ``array_grad`` stays the
    base's None."""

    name = "jax"
    #: what this flavour cannot do, whatever JAX's configuration
    static_capabilities: dict = {}
    extensions = {"flax": FlaxExtension}
    channels_last = True    # Flax convolutions are NHWC
    converts_values_in_parallel = True    # a new array per write; Flax's own idiom holds a new pytree
    #: "linen" or "nnx": which kind of Flax model this adapter wraps
    flavour: str = ""

    #: (jax_enable_x64, the capabilities under it), made at the first ask
    _capabilities_made: Optional[tuple] = None

    @property
    def capabilities(self) -> Mapping[str, Capability]:
        """The flavour's own limits, plus the 64-bit dtypes while JAX runs
        32-bit (``jax_enable_x64`` is read at each call: it may be set
        later).  bfloat16, float16, float8_e4m3fn, float8_e5m2, int8 and
        uint8 are JAX dtypes (NumPy's face through ml_dtypes) and always
        held.  Made once per setting of the flag and read-only: every
        ``Param.is_sharded`` asks three times (it took 26 ms over 1000
        parameters when each ask built the table)."""
        x64 = bool(jax.config.jax_enable_x64)
        made = self._capabilities_made
        if made is None or made[0] != x64:
            caps = dict(self.static_capabilities)
            if not x64:
                caps.update({f"dtype:{name}": Capability(False, _X64_REASON) for name in _X64_DTYPES})
            made = self._capabilities_made = (x64, MappingProxyType(caps))
        return made[1]

    def is_model(self, obj: Any) -> bool:
        return isinstance(obj, (nn.Module, nnx.Module))

    def description_key(self, state: Any) -> Any:
        """The key of the sample input (linen's and NNX's states both keep
        one, ``state.sample``): a first call that records it makes the
        feature orders (and linen's call tree) traceable."""
        return None if state.sample is None else state.sample.key()

    def to_numpy(self, array: Any) -> np.ndarray:
        if isinstance(array, nnx.Variable):
            array = array.get_value()
        return np.asarray(array)

    # -- storage primitives over one JAX array -------------------------------
    def jax_array(self, state: Any, ref: Any) -> jax.Array:
        """The JAX array ``ref`` locates (a pytree leaf, a Variable's value)."""
        raise NotImplementedError

    def read_array(self, state, ref) -> np.ndarray:
        array = self.jax_array(state, ref)
        if _sharding.is_sharded_array(array):     # a gather: bounded by MULTIPARAM_MAX_GATHER
            return _sharding.gathered(array, f"the array at {ref}")
        return np.asarray(array)   # zero-copy on CPU

    def array_shape(self, state, ref) -> Optional[tuple]:
        return tuple(np.shape(self.jax_array(state, ref)))

    def array_dtype(self, state, ref) -> Optional[np.dtype]:
        # JAX dtypes are NumPy dtypes (bfloat16 and float8 through ml_dtypes)
        return np.dtype(self.jax_array(state, ref).dtype)

    def replace_array(self, state: Any, ref: Any, new: jax.Array) -> None:
        """Put ``new`` (a private JAX array of the same shape and dtype)
        where ``ref`` is, so the model sees it."""
        raise NotImplementedError

    def write_array(self, state, ref, value) -> None:
        # JAX arrays are immutable: writing is replacing the array
        current = self.jax_array(state, ref)
        if _sharding.is_sharded_array(current):
            whole = np.asarray(value)
            self.write_shards(state, ref, lambda index: whole[index])
            return
        self.replace_array(state, ref, private_array(value, current.dtype))

    # -- sharded arrays (multiparam.sharding; the base's templates use these) ----
    def array_sharding(self, state, ref):
        return _sharding.describe(self.jax_array(state, ref))

    def local_shards(self, state, ref) -> list:
        return _sharding.local_shards(self.jax_array(state, ref))

    def write_shards(self, state, ref, block) -> None:
        # a new array with the same sharding, each device's block from ``block``
        self.replace_array(state, ref, _sharding.rebuilt(self.jax_array(state, ref), block))

    def shard_owners(self, state, ref) -> list:
        return _sharding.owners(self.jax_array(state, ref))

    def process_index(self) -> int:
        return jax.process_index()

    def process_count(self) -> int:
        return jax.process_count()

    def array_object(self, state, ref) -> Any:
        return self.jax_array(state, ref)

    def storage_key(self, state, ref) -> Any:
        # JAX arrays are immutable: the same array object is the same values
        # (a composite is joined from several arrays: no key); a sharded
        # array's gathered copy is not kept (it may be large), so no key
        if isinstance(ref, Composite):
            return None
        array = self.jax_array(state, ref)
        return None if _sharding.is_sharded_array(array) else array

    # -- the loss ops --------------------------------------------------------
    def is_floating_array(self, x) -> bool:
        # bfloat16 and float8 are floating to jnp.issubdtype; tracers are jax.Arrays
        return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jnp.floating)

    def reduce_sum(self, out):
        return jnp.sum(out)

    def reduce_mean(self, out):
        return jnp.mean(out)

    def as_target(self, target, out):
        t = jnp.asarray(target)
        return t.astype(out.dtype) if jnp.issubdtype(t.dtype, jnp.floating) else t

    def scalar_loss(self, out, loss, target) -> jax.Array:
        """:meth:`loss_value` shaped ``()``, as ``jax.grad`` needs it."""
        return jnp.reshape(self.loss_value(out, loss, target), ())

    # -- initialisation ------------------------------------------------------
    def draw(self, kind: str, shape: tuple, dtype: np.dtype, seed: int, **params):
        """``jax.random`` with ``PRNGKey(seed)``; orthogonal through
        ``jax.nn.initializers.orthogonal``."""
        key = jax.random.PRNGKey(seed)
        if kind == "uniform":
            return jax.random.uniform(key, shape, dtype, params["low"], params["high"])
        if kind == "normal":
            return params["mean"] + params["std"] * jax.random.normal(key, shape, dtype)
        if kind == "truncated_normal":
            mean, std = params["mean"], params["std"]
            z = jax.random.truncated_normal(key, (params["a"] - mean) / std, (params["b"] - mean) / std,
                                            shape, dtype)
            return mean + std * z
        if kind == "orthogonal":
            return jax.nn.initializers.orthogonal(params["gain"])(key, shape, dtype)
        return None

    def framework_default(self, state, layer_node, slot):
        """Flax 0.12.8 defaults, linen and NNX alike: Dense/Linear,
        DenseGeneral/LinearGeneral (drawn flattened, as the slot shows it)
        and Conv kernel ``lecun_normal`` (truncated normal, variance 1/fan_in), bias
        zeros; BatchNorm scale ones, bias zeros, mean zeros, var ones;
        LayerNorm/GroupNorm/RMSNorm scale ones, bias zeros; Embed
        ``variance_scaling(1, 'fan_in', 'normal', out_axis=0)``, i.e.
        N(0, 1/features)."""
        family = layer_family(layer_node.native, layer_node.key)
        role = slot.role.split(":")[-1]
        if family in ("Dense", "DenseGeneral", "Conv") and slot.declared:
            return {"weight": I.lecun_normal(), "bias": I.zeros()}.get(role)
        if family in ("BatchNorm", "Norm"):
            return {"scale": I.ones(), "bias": I.zeros(), "running_mean": I.zeros(),
                    "running_var": I.ones()}.get(role)
        if family == "Embed" and role == "embedding":
            # canonical (num_embeddings, features): torch fans give fan_in = features
            return I.variance_scaling(1.0, "fan_in", "normal")
        return None
