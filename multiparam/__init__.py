"""multiparam: one interface to deep-learning model parameters across
PyTorch, JAX/Flax, TensorFlow/Keras and MXNet/Gluon.

    import multiparam as mp
    m = mp.wrap(native_model, sample_input=X)
    m["2.bias"].value, m.named_parameters(), m.shapes()

Importing this package imports no framework: an adapter (and its framework)
is imported the first time a model of that framework is wrapped or built.
"""
from . import init, layout, nn
from .backend import get_backend, set_backend, use_backend
from .errors import (
    BackendNotInstalledError, CapabilityError, DtypeError, MultiparamError, NotMaterializedError,
    ReadOnlyError, ShapeError, UnknownBackendError, UnknownNameError, UnsupportedModelError,
)
from .io import FileFormatError, load, save
from .model import Layer, Model, wrap
from .param import Param
from .registry import available_backends
from .state import IncompatibleKeys, LoadError, StateDict, transfer

__version__ = "0.1.0"

__all__ = [
    "nn", "init", "wrap", "save", "load", "transfer", "StateDict", "IncompatibleKeys",
    "LoadError", "FileFormatError", "Model", "Layer", "Param",
    "available_backends", "get_backend", "set_backend", "use_backend",
    "MultiparamError", "UnknownBackendError", "BackendNotInstalledError", "UnsupportedModelError",
    "UnknownNameError", "ShapeError", "DtypeError", "NotMaterializedError", "ReadOnlyError",
    "CapabilityError",
]
