"""The JAX backend: Flax linen (module + variables pytree) and Flax NNX.

One adapter per kind of Flax model, both named ``jax``: ``ADAPTER`` is the
linen one, which also recognises NNX modules and hands them to the NNX
adapter (``ADAPTER.specialise``); ``mp.nn`` specs build linen modules.

- ``common``: the base class both share (JAX arrays, dtypes, ``jax.random``
  draws, the loss ops, Flax's defaults);
- ``leaves``: what each Flax leaf is: its torch key, role and layout;
- ``calls``: a call's inputs as JAX arrays, and ``train=`` as the module's
  mode argument;
- ``linen/``: the linen adapter (the state is the module and its pytree);
- ``nnx``: the NNX adapter (the state is the module, parameters live in it);
- ``builders``: the ``mp.nn`` spec kind -> linen module table;
- ``layers``: what multiparam ships for Flax (``NamedSequential``, ``flatten``);
- ``extension``: ``m.flax`` (the variables pytree, de-duplicated or not).
"""
from .common import FlaxAdapter
from .extension import FlaxExtension
from .layers import NamedSequential, flatten
from .linen import LINEN_ADAPTER, LinenAdapter, LinenState
from .nnx import NNX_ADAPTER, NnxAdapter

ADAPTER = LINEN_ADAPTER

__all__ = ["ADAPTER", "FlaxAdapter", "FlaxExtension", "LINEN_ADAPTER", "LinenAdapter", "LinenState",
           "NNX_ADAPTER", "NnxAdapter", "NamedSequential", "flatten"]
