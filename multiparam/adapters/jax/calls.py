"""A forward's inputs for a Flax module: NumPy arrays as JAX arrays, and
``train=`` given to the module the way its ``__call__`` takes a mode.

Flax has no global train/eval switch: a module takes its mode as a call
argument, ``train`` (``nn.BatchNorm(use_running_average=not train)``, as
Flax's guides write it), or ``deterministic`` / ``use_running_average``
(Flax's own layers, and modules written after them).  ``m(x, train=...)``
and ``m.grad(x, train=...)`` give it as the module names it.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from ... import dtypes
from ..base import Inputs

#: call arguments that carry a mode, and their value for ``train``
MODE_ARGS: Dict[str, Callable[[bool], bool]] = {
    "train": lambda train: train,
    "deterministic": lambda train: not train,
    "use_running_average": lambda train: not train,
}


@functools.lru_cache(maxsize=None)
def _mode_params(cls: type) -> Tuple[Tuple[str, bool], ...]:
    """((name, required), ...) of the mode arguments ``cls.__call__`` takes
    by name (a ``**kwargs`` is not taken as one)."""
    try:
        params = inspect.signature(cls.__call__).parameters
    except (TypeError, ValueError):
        return ()
    return tuple((name, p.default is inspect.Parameter.empty) for name, p in params.items()
                 if name in MODE_ARGS and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def with_mode(module: Any, kwargs: dict, train: Any) -> dict:
    """``kwargs`` plus the mode arguments ``module.__call__`` takes that the
    caller did not give: for ``train`` True/False each as it means
    (``train=True``, ``deterministic=False``, ...); for ``train`` None only
    the *required* ones, as inference: Flax has no current mode to follow,
    and inference is what a model is called for unless asked otherwise."""
    out = dict(kwargs)
    for name, required in _mode_params(type(module)):
        if name in out or (train is None and not required):
            continue
        out[name] = MODE_ARGS[name](bool(train))
    return out


def takes_mode(module: Any) -> bool:
    """Whether ``module.__call__`` takes a mode argument."""
    return bool(_mode_params(type(module)))


def default_float() -> np.dtype:
    """JAX's default float dtype: float32, float64 under ``jax_enable_x64``."""
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


def floating_dtype(arrays) -> np.dtype:
    """The dtype of the first floating array among ``arrays`` (a model's
    parameters), else JAX's default float."""
    for a in arrays:
        if jnp.issubdtype(a.dtype, jnp.floating):
            return np.dtype(a.dtype)
    return default_float()


def to_jax(tree: Any, floating: Optional[np.dtype] = None) -> Any:
    """A pytree of inputs with each NumPy array (or scalar) made a JAX
    array, floating ones in ``floating`` (the model's dtype: a bfloat16
    model computes in bfloat16, and NumPy's float64 default would promote
    a float32 one); anything else (JAX arrays, flags, strings) as it is."""
    floating = default_float() if floating is None else floating

    def convert(x):
        if not isinstance(x, (np.ndarray, np.generic)):
            return x
        arr = np.asarray(x)
        return jnp.asarray(arr, dtype=floating if dtypes.is_floating(arr.dtype) else None)

    return jax.tree_util.tree_map(convert, tree)


def jax_inputs(inputs: Inputs, floating: Optional[np.dtype] = None) -> Inputs:
    """``inputs`` with NumPy arrays as JAX arrays (see :func:`to_jax`)."""
    return Inputs(tuple(to_jax(a, floating) for a in inputs.args),
                  {k: to_jax(v, floating) for k, v in inputs.kwargs.items()})


# ---------------------------------------------------------------------------
# abstract inputs: what a shape-only trace of a call needs
# ---------------------------------------------------------------------------
def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, jax.ShapeDtypeStruct))


class AbstractInputs:
    """A call's inputs with each array replaced by its ``ShapeDtypeStruct``
    and everything else (flags, ``None``, strings) kept, so a
    ``jax.eval_shape`` can trace the call without running it: ``arrays``
    go in as the traced argument, :meth:`rebuild` puts them back."""

    def __init__(self, inputs: Inputs):
        leaves, self.treedef = jax.tree_util.tree_flatten((inputs.args, inputs.kwargs))
        self.is_array = tuple(_is_array(l) for l in leaves)
        self.static = tuple(None if a else l for l, a in zip(leaves, self.is_array))
        self.arrays = [jax.ShapeDtypeStruct(np.shape(l), l.dtype) for l, a in zip(leaves, self.is_array) if a]
        self._key = None

    def rebuild(self, arrays) -> Inputs:
        it = iter(arrays)
        leaves = [next(it) if a else s for s, a in zip(self.static, self.is_array)]
        args, kwargs = jax.tree_util.tree_unflatten(self.treedef, leaves)
        return Inputs(tuple(args), dict(kwargs))

    def key(self) -> tuple:
        """Equal for inputs that trace alike.  Made once: the model's index
        asks for it on every lookup (``m["0.weight"]``)."""
        if self._key is None:
            self._key = (self.treedef, tuple((a.shape, str(a.dtype)) for a in self.arrays),
                         tuple(repr(s) for s in self.static))
        return self._key
