"""The Flax linen adapter: ``adapter`` (the module plus its variables
pytree), ``record`` (the call tree, traced or from the modules' fields),
``pytree`` (copies of the variables with one leaf changed) and ``lstm``
(torch's LSTM arrays over Flax's per-gate leaves)."""
from .adapter import LINEN_ADAPTER, LinenAdapter, LinenState

__all__ = ["LINEN_ADAPTER", "LinenAdapter", "LinenState"]
