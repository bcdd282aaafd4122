"""The distributions behind ``mp.init``: framework-free, NumPy only.

Every initializer draws in *canonical* layout (PyTorch's) and in float64 from
a ``numpy.random.Generator`` it is handed; ``multiparam.init`` casts to the
parameter's dtype and writes.  Fans come from the canonical shape
(:func:`multiparam.layout.fans`), so xavier on a Keras or Flax ``(in, out)``
kernel draws from the same distribution as on a torch ``(out, in)`` weight.

Fan-based initializers (xavier, kaiming, lecun, ``variance_scaling``) are
*resolved* against a shape into one of five primitives (:class:`Constant`,
:class:`Normal`, :class:`Uniform`, :class:`TruncatedNormal`,
:class:`Orthogonal`); only those primitives ever reach an adapter's native
mode, so no adapter computes fans.

The code only uses ``Generator.random`` and ``Generator.standard_normal``,
whose streams are the same in NumPy 1.23 and 2.x; a checked-in fixture
(``tests/conformance/data/init_reference.json``) proves it.
"""
from __future__ import annotations

import difflib
import inspect
import math
from typing import Any, Callable, Optional, Tuple

import numpy as np

from .errors import InitError
from .layout import fans as _fans


class Initializer:
    """Base of every initializer.

    Subclass it and override :meth:`sample`; it sees the parameter's
    canonical name and shape (the chapter's ``Init 0.weight (8, 4)``)::

        class MyInit(mp.init.Initializer):
            def sample(self, shape, rng, name):
                print("Init", name, shape)
                w = rng.uniform(-10, 10, size=shape)
                return w * (np.abs(w) >= 5)

    ``sample`` returns a NumPy array of exactly ``shape`` (canonical layout)
    whose dtype casts to the parameter's under NumPy's ``same_kind`` rule;
    anything else raises before any parameter is written.
    """

    #: name shown in messages and reprs
    label = "initializer"
    #: True when each value is drawn on its own (``sample`` of any shape is
    #: its values in C order): portable mode then draws a parameter block by
    #: block (``multiparam.init.portable_values``), and a sharded process
    #: only the blocks its shards cover
    elementwise = False

    def sample(self, shape: Tuple[int, ...], rng: np.random.Generator, name: str) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must override sample(shape, rng, name)")

    def resolve(self, shape: Tuple[int, ...]) -> "Initializer":
        """The initializer to use for a parameter of this canonical shape.
        Fan-based ones return a primitive; ValueError when the shape does not
        suit (fans of a 1-D bias, say)."""
        return self

    @property
    def builtin(self) -> bool:
        """True for multiparam's own primitives (eligible for native mode)."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _Builtin(Initializer):
    @property
    def builtin(self) -> bool:
        return True


class Constant(_Builtin):
    """Every value ``value``."""

    elementwise = True

    def __init__(self, value: float, label: str = "constant"):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"constant(value) needs a real number, got {type(value).__name__}")
        if not math.isfinite(float(value)):
            raise ValueError(f"constant(value) needs a finite number, got {value!r}")
        self.value = float(value)
        self.label = label

    def sample(self, shape, rng, name):
        return np.full(shape, self.value, dtype=np.float64)

    def __repr__(self):
        return f"{self.label}({self.value:g})" if self.label == "constant" else f"{self.label}()"


class Uniform(_Builtin):
    """U[low, high): ``low + (high - low) * rng.random(shape)``."""

    elementwise = True

    label = "uniform"

    def __init__(self, low: float = 0.0, high: float = 1.0):
        low, high = _real(low, "low"), _real(high, "high")
        if not low <= high:
            raise ValueError(f"uniform(low, high) needs low <= high, got low={low}, high={high}")
        self.low, self.high = low, high

    def sample(self, shape, rng, name):
        out = rng.random(shape)           # float64 in [0, 1)
        out *= self.high - self.low       # in place: no second 8-byte buffer
        out += self.low
        return out

    def __repr__(self):
        return f"uniform({self.low:g}, {self.high:g})"


class Normal(_Builtin):
    """N(mean, std^2): ``mean + std * rng.standard_normal(shape)``."""

    elementwise = True

    label = "normal"

    def __init__(self, mean: float = 0.0, std: float = 1.0):
        self.mean, self.std = _real(mean, "mean"), _real(std, "std")
        if self.std < 0:
            raise ValueError(f"normal(mean, std) needs std >= 0, got std={self.std}")

    def sample(self, shape, rng, name):
        out = rng.standard_normal(shape)
        out *= self.std
        out += self.mean
        return out

    def __repr__(self):
        return f"normal({self.mean:g}, {self.std:g})"


class TruncatedNormal(_Builtin):
    """N(mean, std^2) restricted to [a, b] (absolute bounds, as torch's
    ``trunc_normal_``), by rejection: out-of-range draws are redrawn."""

    elementwise = True

    label = "truncated_normal"

    def __init__(self, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0):
        self.mean, self.std = _real(mean, "mean"), _real(std, "std")
        self.a, self.b = _real(a, "a"), _real(b, "b")
        if self.std <= 0:
            raise ValueError(f"truncated_normal needs std > 0, got std={self.std}")
        if not self.a < self.b:
            raise ValueError(f"truncated_normal needs a < b, got a={self.a}, b={self.b}")
        lo, hi = (self.a - self.mean) / self.std, (self.b - self.mean) / self.std
        if normal_cdf(hi) - normal_cdf(lo) < 1e-3:
            # rejection would loop for ever; say so instead
            raise ValueError(f"truncated_normal: [a, b] = [{self.a}, {self.b}] holds less than 0.1% "
                             f"of N({self.mean}, {self.std}^2); widen it or move the mean")

    def sample(self, shape, rng, name):
        lo, hi = (self.a - self.mean) / self.std, (self.b - self.mean) / self.std
        z = rng.standard_normal(shape)
        flat = z.reshape(-1)
        bad = np.flatnonzero((flat < lo) | (flat > hi))
        while bad.size:                   # redraw only the rejected ones, in index order
            flat[bad] = rng.standard_normal(bad.size)
            bad = bad[(flat[bad] < lo) | (flat[bad] > hi)]
        z *= self.std
        z += self.mean
        return z

    def __repr__(self):
        return f"truncated_normal({self.mean:g}, {self.std:g}, a={self.a:g}, b={self.b:g})"


class Orthogonal(_Builtin):
    """A (semi-)orthogonal matrix times ``gain``, computed as torch's
    ``orthogonal_``: the parameter viewed as ``(shape[0], rest)``, QR of a
    Gaussian matrix, signs fixed by ``diag(R)``."""

    label = "orthogonal"

    def __init__(self, gain: float = 1.0):
        self.gain = _real(gain, "gain")

    def resolve(self, shape):
        if len(shape) < 2:
            raise ValueError(f"orthogonal needs a parameter with at least 2 dims, got shape {tuple(shape)}")
        return self

    def sample(self, shape, rng, name):
        self.resolve(shape)
        rows = shape[0]
        cols = int(np.prod(shape[1:]))
        flat = rng.standard_normal((rows, cols))
        if rows < cols:
            flat = flat.T
        q, r = np.linalg.qr(flat)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return np.ascontiguousarray(q).reshape(shape) * self.gain

    def __repr__(self):
        return f"orthogonal(gain={self.gain:g})"


class VarianceScaling(_Builtin):
    """Keras/JAX ``variance_scaling``: variance ``scale / n`` with ``n`` the
    fan in, fan out or their mean (from the canonical shape), drawn
    ``uniform``, ``normal`` or ``truncated_normal`` (cut at 2 std and
    rescaled, as JAX and Keras do).  xavier, kaiming and lecun are this."""

    MODES = ("fan_in", "fan_out", "fan_avg")
    DISTRIBUTIONS = ("uniform", "normal", "truncated_normal")
    # std of a standard normal truncated to [-2, 2] (JAX's and Keras' constant)
    TRUNC_STD = .87962566103423978

    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal", label: str = "variance_scaling"):
        self.scale = _real(scale, "scale")
        if self.scale < 0:
            raise ValueError(f"{label} needs scale >= 0, got {self.scale}")
        if mode not in self.MODES:
            raise ValueError(f"{label}: mode must be one of {self.MODES}, got {mode!r}")
        if distribution not in self.DISTRIBUTIONS:
            raise ValueError(f"{label}: distribution must be one of {self.DISTRIBUTIONS}, "
                             f"got {distribution!r}")
        self.mode, self.distribution, self.label = mode, distribution, label

    def resolve(self, shape):
        try:
            fan_in, fan_out = _fans(tuple(shape))
        except ValueError:
            raise ValueError(f"{self.label} needs fan in and fan out, which a parameter of shape "
                             f"{tuple(shape)} does not have (at least 2 dims); select weights only, "
                             "or use normal/uniform/constant for it") from None
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            bound = math.sqrt(3.0 * variance)
            return Uniform(-bound, bound)
        if self.distribution == "normal":
            return Normal(0.0, math.sqrt(variance))
        std = math.sqrt(variance) / self.TRUNC_STD
        if std == 0:
            return Constant(0.0)
        return TruncatedNormal(0.0, std, -2 * std, 2 * std)

    def sample(self, shape, rng, name):
        return self.resolve(shape).sample(shape, rng, name)

    def __repr__(self):
        return f"{self.label}(scale={self.scale:g}, mode={self.mode!r}, distribution={self.distribution!r})"


class ZeroRows(Initializer):
    """``base`` with some rows (first canonical axis) set to 0: torch's
    ``Embedding(padding_idx=...)`` default."""

    def __init__(self, base: Initializer, rows):
        self.base, self.rows = base, tuple(rows)

    def sample(self, shape, rng, name):
        out = np.asarray(self.base.resolve(shape).sample(shape, rng, name))
        out[list(self.rows)] = 0
        return out

    def __repr__(self):
        return f"ZeroRows({self.base!r}, rows={self.rows})"


class Function(Initializer):
    """A user function ``fn(shape, rng)`` or ``fn(shape, rng, name)``."""

    def __init__(self, fn: Callable):
        self.fn = fn
        self.label = getattr(fn, "__name__", type(fn).__name__)
        self._wants_name = _positional_arity(fn) >= 3

    def sample(self, shape, rng, name):
        return self.fn(shape, rng, name) if self._wants_name else self.fn(shape, rng)

    def __repr__(self):
        return f"Function({self.label})"


class FrameworkDefault(Initializer):
    """Marker: each parameter gets its framework's documented default for
    its layer type and role (the adapter's ``framework_default`` hook)."""

    label = "framework_default"

    def sample(self, shape, rng, name):
        raise TypeError("framework_default() is resolved per parameter by m.init; it has no "
                        "distribution of its own")

    def __repr__(self):
        return "framework_default()"


# -- the public constructors (mp.init.normal(...), ...) ---------------------------
def normal(mean: float = 0.0, std: float = 1.0) -> Normal:
    """N(mean, std^2), like ``nn.init.normal_`` / Gluon ``init.Normal(sigma)``."""
    return Normal(mean, std)


def uniform(low: float = 0.0, high: float = 1.0) -> Uniform:
    """U[low, high), like ``nn.init.uniform_``."""
    return Uniform(low, high)


def constant(value: float) -> Constant:
    """Every value ``value`` (the chapter's 1 and 42)."""
    return Constant(value)


def zeros() -> Constant:
    return Constant(0.0, label="zeros")


def ones() -> Constant:
    return Constant(1.0, label="ones")


def xavier_uniform(gain: float = 1.0) -> VarianceScaling:
    """U(+-gain * sqrt(6 / (fan_in + fan_out))): torch ``xavier_uniform_``,
    Keras ``glorot_uniform`` (gain 1), Gluon ``Xavier()``."""
    return VarianceScaling(_real(gain, "gain") ** 2, "fan_avg", "uniform", label="xavier_uniform")


def xavier_normal(gain: float = 1.0) -> VarianceScaling:
    """N(0, gain^2 * 2 / (fan_in + fan_out)), untruncated as torch's."""
    return VarianceScaling(_real(gain, "gain") ** 2, "fan_avg", "normal", label="xavier_normal")


def calculate_gain(nonlinearity: str, a: Optional[float] = None) -> float:
    """torch's ``nn.init.calculate_gain``."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if a is None else _real(a, "a")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}; use one of "
                     f"{', '.join(linear + ('tanh', 'relu', 'leaky_relu', 'selu'))}")


def _kaiming(a, mode, nonlinearity, distribution, label):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{label}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    gain = calculate_gain(nonlinearity, a)
    return VarianceScaling(gain ** 2, mode, distribution, label=label)


def kaiming_uniform(a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> VarianceScaling:
    """U(+-gain * sqrt(3 / fan)), torch's ``kaiming_uniform_`` with its
    defaults; ``kaiming_uniform(a=math.sqrt(5))`` is torch Linear's default."""
    return _kaiming(a, mode, nonlinearity, "uniform", "kaiming_uniform")


def kaiming_normal(a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> VarianceScaling:
    """N(0, gain^2 / fan), torch's ``kaiming_normal_``."""
    return _kaiming(a, mode, nonlinearity, "normal", "kaiming_normal")


def truncated_normal(mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0) -> TruncatedNormal:
    """N(mean, std^2) cut to [a, b] (absolute bounds), torch's ``trunc_normal_``."""
    return TruncatedNormal(mean, std, a, b)


def orthogonal(gain: float = 1.0) -> Orthogonal:
    """torch's ``orthogonal_`` (Keras/Flax ``orthogonal``)."""
    return Orthogonal(gain)


def lecun_normal() -> VarianceScaling:
    """Flax's default kernel init: truncated normal, variance 1 / fan_in."""
    return VarianceScaling(1.0, "fan_in", "truncated_normal", label="lecun_normal")


def variance_scaling(scale: float = 1.0, mode: str = "fan_in",
                     distribution: str = "truncated_normal") -> VarianceScaling:
    """Keras/JAX ``variance_scaling`` with fans from the canonical shape."""
    return VarianceScaling(scale, mode, distribution)


def framework_default() -> FrameworkDefault:
    """Re-apply each framework's own default for each layer and role
    (torch Linear kaiming_uniform(a=sqrt(5)) and U(+-1/sqrt(fan_in)) bias,
    Keras glorot_uniform/zeros, Flax lecun_normal/zeros, Gluon
    Uniform(0.07)/zeros; norms, embeddings and convs as documented)."""
    return FrameworkDefault()


# plain mapping, so m.init("xavier_uniform") works and a typo gets suggestions
BY_NAME = {
    "normal": normal, "uniform": uniform, "zeros": zeros, "ones": ones,
    "xavier_uniform": xavier_uniform, "xavier_normal": xavier_normal,
    "kaiming_uniform": kaiming_uniform, "kaiming_normal": kaiming_normal,
    "truncated_normal": truncated_normal, "orthogonal": orthogonal,
    "lecun_normal": lecun_normal, "variance_scaling": variance_scaling,
    "framework_default": framework_default,
}


def by_name(name: str) -> Initializer:
    """The built-in initializer ``name`` with its default arguments."""
    if name not in BY_NAME:
        close = difflib.get_close_matches(name, list(BY_NAME), n=2, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise InitError(
            f"unknown initializer {name!r}{hint} Known: {', '.join(sorted(BY_NAME))} "
            "(constant(v) needs its value), or pass an mp.init.Initializer or fn(shape, rng)")
    return BY_NAME[name]()


# -- helpers ----------------------------------------------------------------------
def _real(x: Any, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a real number, got {type(x).__name__}")
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{what} must be finite, got {x}")
    return x


def _positional_arity(fn: Callable) -> int:
    """How many positional arguments ``fn`` takes (a large number for *args)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 2
    n = 0
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            return 99
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
    return n


def normal_cdf(x):
    """Standard normal CDF, vectorised over NumPy arrays (via math.erf)."""
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * (1.0 + erf(np.asarray(x, dtype=np.float64) / math.sqrt(2.0)))
