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
from .backend_spec import BackendSpec
from .errors import (
    BackendNotInstalledError, CapabilityError, DtypeError, MultiparamError, NotMaterializedError,
    ReadOnlyError, ShapeError, UnknownBackendError, UnknownNameError, UnsupportedModelError,
)
from .io import FileFormatError, load, save
from .layer import Layer
from .layer_registry import ParamKind, register_layer, unregister_layer
from .model import Model, wrap
from .param import Param
from .porting import CheckReport, PlanError, Rule, TransferPlan, check, plan, rule, transfer
from .registry import available_backends
from .state import IncompatibleKeys, LoadError, StateDict, StateNote
from .transforms import Transform, heads, merge, merge_heads, reorder, reshape, split, transpose
from .version import __version__

__all__ = [
    "nn", "init", "wrap", "save", "load", "transfer", "StateDict", "IncompatibleKeys",
    "LoadError", "FileFormatError", "Model", "Layer", "Param",
    "available_backends", "get_backend", "set_backend", "use_backend", "BackendSpec",
    "MultiparamError", "UnknownBackendError", "BackendNotInstalledError", "UnsupportedModelError",
    "UnknownNameError", "ShapeError", "DtypeError", "NotMaterializedError", "ReadOnlyError",
    "CapabilityError", "register_layer", "unregister_layer", "ParamKind", "StateNote",
    "plan", "check", "rule", "Rule", "TransferPlan", "PlanError", "CheckReport", "Transform",
    "split", "merge", "reshape", "transpose", "heads", "merge_heads", "reorder",
]
