"""What the Flax linen and Flax NNX adapters share: the :class:`FlaxAdapter`
base class (the backend's name, NHWC images, ``m.flax``, the native arrays
as JAX arrays, ``jax.random`` draws, the loss ops, Flax's documented
defaults) and the tables that tell a Flax layer's family and a leaf's
canonical role and layout.

Both flavours spell a dense kernel ``(in, out)`` and a conv kernel
``(*k, in, out)``; the slots say so with their layout tag and the handles
convert.
"""
from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import nnx

from ... import initializers as I
from ..base import CHANNELS_LAST_KERNEL, DENSE_IN_OUT, SAME, Adapter, Composite
from .extension import FlaxExtension
from .layers import flatten

# ---------------------------------------------------------------------------
# layer families and leaf roles
# ---------------------------------------------------------------------------
#: (Flax layer classes, family): the layers whose leaves have a known role
#: and layout, linen and NNX alike.  Conv is not ConvTranspose/ConvLocal
#: (other kernel layouts, and not subclasses of Conv).
_FAMILIES = (
    ((nn.Dense, nnx.Linear), "Dense"),
    ((nn.Conv, nnx.Conv), "Conv"),
    ((nn.BatchNorm, nnx.BatchNorm), "BatchNorm"),
    ((nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nnx.LayerNorm, nnx.GroupNorm, nnx.RMSNorm), "Norm"),
    ((nn.Embed, nnx.Embed), "Embed"),
)

#: Flax's auto-name class prefix (``Dense_0``) -> family, for a linen
#: pytree subtree no module object was found for
_AUTO_NAME_FAMILIES = {"Dense": "Dense", "Conv": "Conv", "BatchNorm": "BatchNorm", "LayerNorm": "Norm",
                       "GroupNorm": "Norm", "RMSNorm": "Norm", "Embed": "Embed"}

#: activation functions that are a ReLU layer in a Sequential
_RELUS = (jax.nn.relu, nn.relu, nnx.relu)


def layer_family(module: Any, auto_name: Optional[str] = None) -> Optional[str]:
    """Which known layer a Flax module is (``"Dense"``, ``"Conv"``,
    ``"BatchNorm"``, ``"Norm"``, ``"Embed"``), or None.  Without a module
    object (a linen pytree-only subtree), guess from Flax's auto-name
    ``<ClassName>_<n>``."""
    if module is not None:
        for classes, family in _FAMILIES:
            if isinstance(module, classes):
                return family
        return None
    if auto_name:
        cls, _, number = auto_name.rpartition("_")
        return _AUTO_NAME_FAMILIES.get(cls) if number.isdigit() else None
    return None


def leaf_role(family: Optional[str], collection: str, leaf: str, ndim: Optional[int]) -> tuple:
    """(role, layout, trainable) of one leaf named ``leaf`` in a layer of
    ``family``, held in ``collection`` (linen's ``params``/``batch_stats``;
    NNX passes ``params`` for an ``nnx.Param``)."""
    trainable = collection == "params"
    if family == "Dense" and leaf == "kernel" and ndim in (2, None):
        return "weight", DENSE_IN_OUT, trainable
    if family == "Conv" and leaf == "kernel":
        return "weight", CHANNELS_LAST_KERNEL, trainable
    if family == "BatchNorm" and leaf in ("mean", "var"):
        return "running_" + leaf, SAME, False
    if family == "Embed" and leaf == "embedding":
        return "embedding", SAME, trainable
    # bias / scale keep their names, which are already the canonical roles
    return leaf, SAME, trainable


def function_kind(fn: Any) -> str:
    """The neutral kind of a plain function used as a layer (``nn.relu`` in
    a Sequential): ``ReLU``, ``Flatten``, else the function's name."""
    if any(fn is relu for relu in _RELUS):
        return "ReLU"
    if fn is flatten:
        return "Flatten"
    return getattr(fn, "__name__", type(fn).__name__)


def private_array(value: Any, dtype: Any) -> jax.Array:
    """A jax array that owns its memory.  On CPU ``jnp.asarray`` (and even
    ``jnp.array(copy=True)``, jax 0.10.2) aliases a NumPy buffer, so a
    parameter would change when the caller later edits the array it wrote
    from (a state dict, say): read-only NumPy input, which by the write
    contract is borrowed, is copied first; a writable one is the handle's
    fresh array and is kept without a second copy."""
    if isinstance(value, np.ndarray) and (not value.flags.writeable or value.dtype != dtype):
        value = np.array(value, dtype=dtype, copy=True)
    return jnp.asarray(value, dtype=dtype)


def as_jax(x: Any) -> Any:
    """A forward's input with a NumPy array or scalar made a JAX array
    (anything else, a JAX array or a pytree of inputs, as it is)."""
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return jnp.asarray(x)
    return x


def as_jax_tree(x: Any) -> Any:
    """A differentiated input as JAX arrays, leaf by leaf."""
    return jax.tree_util.tree_map(jnp.asarray, x)


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
    capabilities: dict = {}
    extensions = {"flax": FlaxExtension}
    channels_last = True    # Flax convolutions are NHWC
    #: "linen" or "nnx": which kind of Flax model this adapter wraps
    flavour: str = ""

    def is_model(self, obj: Any) -> bool:
        return isinstance(obj, (nn.Module, nnx.Module))

    def to_numpy(self, array: Any) -> np.ndarray:
        if isinstance(array, nnx.Variable):
            array = array.get_value()
        return np.asarray(array)

    # -- storage primitives over one JAX array -------------------------------
    def jax_array(self, state: Any, ref: Any) -> jax.Array:
        """The JAX array ``ref`` locates (a pytree leaf, a Variable's value)."""
        raise NotImplementedError

    def read_array(self, state, ref) -> np.ndarray:
        return np.asarray(self.jax_array(state, ref))   # zero-copy on CPU

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
        self.replace_array(state, ref, private_array(value, self.jax_array(state, ref).dtype))

    def array_object(self, state, ref) -> Any:
        return self.jax_array(state, ref)

    def storage_key(self, state, ref) -> Any:
        # JAX arrays are immutable: the same array object is the same values
        # (a composite is joined from several arrays: no key)
        return None if isinstance(ref, Composite) else self.jax_array(state, ref)

    # -- the loss ops --------------------------------------------------------
    def reduce_sum(self, out):
        return sum(jnp.sum(o) for o in jax.tree_util.tree_leaves(out))

    def reduce_mean(self, out):
        return jnp.mean(out)

    def as_target(self, target, out):
        return jnp.asarray(target, dtype=out.dtype)

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
        """Flax 0.12.8 defaults, linen and NNX alike: Dense/Linear and Conv
        kernel ``lecun_normal`` (truncated normal, variance 1/fan_in), bias
        zeros; BatchNorm scale ones, bias zeros, mean zeros, var ones;
        LayerNorm/GroupNorm/RMSNorm scale ones, bias zeros; Embed
        ``variance_scaling(1, 'fan_in', 'normal', out_axis=0)``, i.e.
        N(0, 1/features)."""
        family = layer_family(layer_node.native, layer_node.key)
        role = slot.role.split(":")[-1]
        if family in ("Dense", "Conv"):
            return {"weight": I.lecun_normal(), "bias": I.zeros()}.get(role)
        if family in ("BatchNorm", "Norm"):
            return {"scale": I.ones(), "bias": I.zeros(), "running_mean": I.zeros(),
                    "running_var": I.ones()}.get(role)
        if family == "Embed" and role == "embedding":
            # canonical (num_embeddings, features): torch fans give fan_in = features
            return I.variance_scaling(1.0, "fan_in", "normal")
        return None
