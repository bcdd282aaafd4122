"""A composite whose part is itself a composite: what Flax's LSTM bias needs.

torch's ``bias_ih``/``bias_hh`` are two shares of one sum (``base.SumShare``),
and Flax keeps that sum as four per-gate leaves ``h{i,f,g,o}/bias``, i.e. a
``base.Stacked``.  The base's templates call the per-array primitives on a
composite's parts, so a ``SumShare`` over a ``Stacked`` needs primitives
that accept a composite; :class:`CompositeParts` gives them, by handing a
composite part back to the base's own templates, and the adapter's
``grad_key`` of a composite part is the part itself, whose gradient
:class:`CompositeGrads` joins from its own parts'.  No new arithmetic: the
stacking and the shares stay the base's.

# candidate for base: composite parts.  In ``Adapter.read``, ``write``,
# ``native_shape``, ``dtype``, ``native_param``, ``native_grad`` and the
# joining loop of ``grad``, use the template (``self.read`` ...) instead of
# the primitive (``self.read_array`` ...) for a part that is itself a
# ``Composite``, and join a composite part's gradient from its own parts'
# (``grad_key`` recursion).  Then this module goes away.
"""
from __future__ import annotations

from typing import Any, Callable, Hashable

from ..base import Composite


class CompositeParts:
    """Mixin for an adapter whose composite refs may have composite parts:
    each primitive given a :class:`~multiparam.adapters.base.Composite`
    does what the base's template does for it; any other ref goes to the
    backend's own primitive.  Put it before the adapter base class."""

    def read_array(self, state, ref):
        if isinstance(ref, Composite):
            return self.read(state, ref)
        return super().read_array(state, ref)

    def write_array(self, state, ref, value) -> None:
        if isinstance(ref, Composite):
            self.write(state, ref, value)
        else:
            super().write_array(state, ref, value)

    def array_shape(self, state, ref):
        if isinstance(ref, Composite):
            return self.native_shape(state, ref)
        return super().array_shape(state, ref)

    def array_dtype(self, state, ref):
        if isinstance(ref, Composite):
            return self.dtype(state, ref)
        return super().array_dtype(state, ref)

    def array_object(self, state, ref):
        if isinstance(ref, Composite):
            return self.native_param(state, ref)
        return super().array_object(state, ref)


class CompositeGrads(dict):
    """``native_grads``' result ``{grad key: gradient}`` in which a composite
    part, the ``grad_key`` of which must be the part itself, is present as
    soon as its own parts' keys are: its gradient is joined from theirs on
    first use.  ``key_of(part)`` is the adapter's ``grad_key`` for the state."""

    def __init__(self, grads: dict, key_of: Callable[[Any], Hashable]):
        super().__init__(grads)
        self._key_of = key_of

    def __contains__(self, key) -> bool:
        if isinstance(key, Composite) and not dict.__contains__(self, key):
            return all(self._key_of(part) in self for part in key.parts)
        return dict.__contains__(self, key)

    def __missing__(self, key):
        if not isinstance(key, Composite):
            raise KeyError(key)
        joined = key.join_grads([self[self._key_of(part)] for part in key.parts])
        self[key] = joined
        return joined
