"""A toy deep-learning framework, the example third-party backend's framework.

Just enough to have models of its own: a ``Chain`` of ``Dense`` layers whose
parameters are NumPy arrays in a dict, kernels stored ``(in, out)`` as Keras
and Flax store them, and its own array type ``Tensor`` for outputs.  It
knows nothing of multiparam; ``toy_multiparam`` adapts it.
"""
import numpy as np


class Tensor:
    """The framework's own array type."""

    def __init__(self, data):
        self.data = np.asarray(data)

    @property
    def shape(self):
        return self.data.shape

    def numpy(self) -> np.ndarray:
        return self.data.copy()


class Dense:
    """``y = x @ kernel + bias``; ``params["kernel"]`` is ``(in, out)``."""

    def __init__(self, in_features: int, units: int):
        rng = np.random.default_rng(0)
        self.params = {
            "kernel": rng.uniform(-1, 1, (in_features, units)).astype(np.float32),
            "bias": np.zeros(units, np.float32),
        }

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x @ self.params["kernel"] + self.params["bias"]


class Chain:
    """Layers applied in order; the same layer may appear twice (shared)."""

    def __init__(self, *layers: Dense):
        self.layers = list(layers)

    def __call__(self, x) -> Tensor:
        x = x.data if isinstance(x, Tensor) else np.asarray(x, np.float32)
        for layer in self.layers:
            x = layer(x)
        return Tensor(x)
