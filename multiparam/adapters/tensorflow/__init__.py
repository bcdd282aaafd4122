"""The TensorFlow backend: Keras 3 layers, ``weights`` with ``.path``,
``GradientTape``.

``adapter`` holds the layer tree and the primitives (one ``keras.Variable``
each), ``builders`` the table from ``mp.nn`` spec kinds to Keras layers,
``layers`` the Keras layers multiparam ships (:class:`NamedSequential`,
:class:`Dense` that can be tied transposed, :class:`PaddedConv2D`).  The
layers are re-exported here, where user code imported them from before this
was a package (``from multiparam.adapters.tensorflow import NamedSequential``)."""
from .adapter import ADAPTER, TensorflowAdapter
from .layers import Dense, NamedSequential, PaddedConv2D

__all__ = ["ADAPTER", "TensorflowAdapter", "Dense", "NamedSequential", "PaddedConv2D"]
