"""The MXNet 1.9 / Gluon backend: ``Block``, ``collect_params``,
``Parameter.data()/grad()``, ``autograd``.

``adapter`` holds the primitives (one Gluon ``Parameter`` each), the
gradients, ties and the framework's own listings; ``builders`` the table
from ``mp.nn`` spec kinds to Gluon blocks.  Gluon's own layers do what the
specs ask, so there is no ``layers`` module.  MXNet needs numpy<1.24 and
lives in its own environment; other environments reach it through the
worker (``multiparam.bridge``)."""
from .adapter import ADAPTER, MxnetAdapter

__all__ = ["ADAPTER", "MxnetAdapter"]
