"""The built-in backends, described without importing any framework.

The registry (``multiparam.registry``) reads this table at import time, so
this module must stay plain data: it imports no framework and no adapter.
Each spec's ``module`` is the adapter package, imported the first time a
model of that backend is wrapped or built.  The order is the order users
see (``mp.available_backends()``), and the first one is the default backend.
"""
from ..backend_spec import BackendSpec

BUILTIN_BACKENDS = (
    BackendSpec(
        "torch", "multiparam.adapters.torch", ("torch",), "torch",
        "Install it with `pip install 'multiparam[torch]'` (pins torch==2.13.0) or run `tox -e torch`.",
        versions=("torch",), environment="torch", display="PyTorch", color="#ee4c2c",
        wraps="a torch.nn.Module"),
    BackendSpec(
        "jax", "multiparam.adapters.jax", ("flax", "jax"), "jax and flax",
        "Install them with `pip install 'multiparam[jax]'` or run `tox -e jax`.",
        versions=("jax", "flax"), environment="jax", display="JAX/Flax", color="#5e97f6",
        wraps="a Flax linen or NNX Module"),
    BackendSpec(
        "tensorflow", "multiparam.adapters.tensorflow", ("keras", "tensorflow"), "tensorflow and keras 3",
        "Install them with `pip install 'multiparam[tensorflow]'` or run `tox -e tensorflow`.",
        versions=("tensorflow", "keras"), import_after=("torch",), environment="tensorflow",
        display="TensorFlow/Keras", color="#ff8f00", wraps="a Keras 3 Layer or Model"),
    BackendSpec(
        "mxnet", "multiparam.adapters.mxnet", ("mxnet",), "mxnet 1.9.1 (with numpy<1.24)",
        "MXNet needs its own environment: run `tox -e mxnet`, or "
        "`pip install 'multiparam[mxnet]'` in a Python 3.11 venv without the other frameworks.",
        versions=("mxnet",), environment="mxnet", own_environment=True, display="MXNet/Gluon",
        color="#3c9b4a", wraps="an MXNet Gluon Block"),
)
