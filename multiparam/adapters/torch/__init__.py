"""The PyTorch backend: ``nn.Module``, ``named_parameters``, autograd.

``adapter`` holds the primitives (one native array each), ``builders`` the
table from ``mp.nn`` spec kinds to torch modules, ``layers`` the Lazy
modules multiparam adds so every spec infers its input size."""
from .adapter import ADAPTER, TorchAdapter

__all__ = ["ADAPTER", "TorchAdapter"]
