"""``m.flax``: the Flax-only part of a handle's API on the jax backend (the
variables pytree and its de-duplicated form), a backend extension instead of
methods every backend would have to refuse."""
from __future__ import annotations

from typing import Any


class FlaxExtension:
    """``m.flax``: the Flax view of a handle on the jax backend.

    ``m.flax.variables`` is the variables pytree Flax applies (linen: the
    handle's pytree, every tied path filled; NNX: ``nnx.state(model)``);
    assign a pytree of the same structure to replace it.  For an optax loop
    on a model tied with ``m.tie``, differentiate and update
    ``m.flax.unique_variables()`` (each parameter once) and put it back with
    ``m.flax.variables = m.flax.expand_variables(new_unique)``.

    The work is the adapter's (``native_variables``,
    ``set_native_variables``, ``unique_variables``, ``expand_variables``),
    so linen and NNX each do it their own way."""

    def __init__(self, model):
        self._model = model

    @property
    def _adapter(self):
        return self._model.adapter

    @property
    def _state(self):
        return self._model._state

    @property
    def variables(self) -> Any:
        return self._adapter.native_variables(self._state)

    @variables.setter
    def variables(self, tree: Any) -> None:
        self._adapter.set_native_variables(self._state, tree)

    def unique_variables(self) -> Any:
        """The pytree with every tied copy removed (what optax should update)."""
        return self._adapter.unique_variables(self._state)

    def expand_variables(self, unique: Any) -> Any:
        """The full pytree Flax applies, from a :meth:`unique_variables` tree."""
        return self._adapter.expand_variables(self._state, unique)

    def __repr__(self) -> str:
        return f"<m.flax of a {self._adapter.flavour} {type(self._model.native).__name__}>"
