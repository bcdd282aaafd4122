"""The TensorFlow backend: Keras 3 layers, ``weights`` with ``.path``,
``GradientTape``.

``adapter`` holds the layer tree and the primitives (one ``keras.Variable``
each), ``builders`` the table from ``mp.nn`` spec kinds to Keras layers,
``layers`` the Keras layers multiparam ships (:class:`NamedSequential`,
:class:`Dense` that can be tied transposed, :class:`PaddedConv2D`).  The
layers are re-exported here, where they lived before this was a package, so
Keras configs that name this module still deserialise."""
from .adapter import ADAPTER, TensorflowAdapter
from .layers import Dense, NamedSequential, PaddedConv2D

__all__ = ["ADAPTER", "TensorflowAdapter", "Dense", "NamedSequential", "PaddedConv2D"]
