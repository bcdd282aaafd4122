"""Random ``mp.nn`` architectures for the property suites, and what every
framework must make of them, computed from the spec alone.

- :func:`architectures` is a hypothesis strategy of :class:`Arch`: a spec of
  1 to 6 layers (Dense, Conv2d, Flatten, LayerNorm, BatchNorm, Embedding,
  LSTM, ReLU) wherever the layer is legal on the tensor at that point, nested
  in Sequentials with numbered or named children, some layer objects used
  twice (tied parameters), and a canonical input for it.
- :func:`reference_state` is torch's ``state_dict`` of that spec (names,
  shapes, roles, tied aliases), from torch's documented conventions;
  :func:`reference_forward` its inference forward in NumPy from canonical
  values; :func:`random_values` values to write, by role.

"Legal" means the layer computes the same function on every backend whatever
its native layout: canonical images are NCHW and channels-last backends get
NHWC, so a Dense or LayerNorm (last axis) never sees an image, a BatchNorm
(axis 1 canonically, the last axis natively) never sees a sequence, and an
Embedding only ever takes the integer input.  Conv2d takes images, LSTM
sequences ``(N, T, F)``, Flatten anything.  Whatever follows the Flatten of
a feature map (norms, activations, nesting, a Dense) is fair game, since the
adapters follow the feature order through the model; only the model's
*output* is never such a flattened map left unmixed, because its order is
each framework's own (NHWC flatten on Keras and Flax) and no canonical
layout exists to compare it in.

Counterexamples print as the code that builds them (:meth:`Arch.code`), so
a regression test is that code pasted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from hypothesis import strategies as st

from multiparam import nn

#: layers per architecture (leaves; the Sequentials around them are extra)
MAX_LAYERS = 6
#: Sequentials inside the root, at most this deep
MAX_NESTING = 2
#: names a child of a Sequential may get instead of its position
#: (torch's ``add_module``; the chapter names its blocks ``"block 0"``)
CHILD_NAMES = ("block 0", "head", "stem", "b")


# -- the tensor between two layers, canonical layout, batch axis left out -------------------
@dataclass(frozen=True)
class Tensor:
    #: "ids" (integer, the input only), "vector" (F,), "sequence" (T, F), "image" (C, H, W)
    kind: str
    shape: Tuple[int, ...]
    #: the (C, H, W) a vector was flattened from, when its feature order differs
    #: between NCHW and NHWC frameworks (C > 1 and H*W > 1); None otherwise
    flattened_from: Optional[Tuple[int, int, int]] = None

    @property
    def features(self) -> int:
        return self.shape[-1]


def output_of(layer, t: Tensor) -> Tensor:
    """The tensor ``layer`` (a leaf spec) makes of ``t``."""
    kind = layer.kind
    if kind in ("ReLU", "BatchNorm", "LayerNorm"):
        return t
    if kind == "Dense":
        return Tensor(t.kind, t.shape[:-1] + (layer.units,))
    if kind == "Embedding":
        return Tensor("sequence", t.shape + (layer.features,))
    if kind == "LSTM":
        return Tensor("sequence", (t.shape[0], layer.hidden_size))
    if kind == "Conv2d":
        _, h, w = t.shape
        k, s, p = layer.kernel_size, layer.stride, layer.padding
        return Tensor("image", (layer.out_channels, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1))
    if kind == "Flatten":
        if t.kind == "vector":
            return t
        permuted = t.kind == "image" and t.shape[0] > 1 and t.shape[1] * t.shape[2] > 1
        return Tensor("vector", (int(np.prod(t.shape)),), t.shape if permuted else None)
    raise AssertionError(f"no reference for {kind}")


# -- torch's state_dict of a spec -----------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One key of torch's ``state_dict``."""

    name: str
    shape: Tuple[int, ...]
    role: str
    #: the key of the same tensor at the layer's first use (itself unless this
    #: is an alias of a layer used twice); ``named_parameters`` lists only those
    first: str


def _own_state(layer, t: Tensor) -> List[Tuple[str, Tuple[int, ...], str]]:
    """(torch attribute, shape, role) of a leaf on input ``t``, in torch's
    registration order (parameters, then buffers)."""
    kind = layer.kind
    if kind == "Dense":
        return [("weight", (layer.units, t.features), "weight")] + \
            ([("bias", (layer.units,), "bias")] if layer.use_bias else [])
    if kind == "Conv2d":
        k = layer.kernel_size
        return [("weight", (layer.out_channels, t.shape[0], k, k), "weight")] + \
            ([("bias", (layer.out_channels,), "bias")] if layer.use_bias else [])
    if kind == "LayerNorm":
        return [("weight", (t.features,), "scale"), ("bias", (t.features,), "bias")]
    if kind == "BatchNorm":
        c = t.shape[0]
        return [("weight", (c,), "scale"), ("bias", (c,), "bias"), ("running_mean", (c,), "running_mean"),
                ("running_var", (c,), "running_var"), ("num_batches_tracked", (), "counter")]
    if kind == "Embedding":
        return [("weight", (layer.num_embeddings, layer.features), "embedding")]
    if kind == "LSTM":
        h, f = layer.hidden_size, t.features
        return [("weight_ih_l0", (4 * h, f), "weight"), ("weight_hh_l0", (4 * h, h), "weight"),
                ("bias_ih_l0", (4 * h,), "bias"), ("bias_hh_l0", (4 * h,), "bias")]
    return []


def leaves(spec, prefix: str = ""):
    """``(path, leaf)`` for every use of a leaf layer, in the order a
    Sequential runs them (and torch's ``state_dict`` lists them)."""
    if spec.kind != "Sequential":
        yield prefix, spec
        return
    for key, child in spec.children:
        yield from leaves(child, f"{prefix}.{key}" if prefix else key)


def reference_state(spec, input_shape: Tuple[int, ...]) -> List[Entry]:
    """torch's ``state_dict`` keys of ``spec`` on a canonical input of
    ``input_shape`` (batch axis included), in torch's order: each leaf's
    parameters then its buffers, leaves in the order they run; a layer used
    twice lists its tensors again under the second path (aliases)."""
    t = _input_tensor(input_shape)
    first_path: Dict[int, str] = {}
    entries = []
    for path, layer in leaves(spec):
        first = first_path.setdefault(id(layer), path)
        for attr, shape, role in _own_state(layer, t):
            entries.append(Entry(f"{path}.{attr}", shape, role, f"{first}.{attr}"))
        t = output_of(layer, t)
    return entries


def unique(entries: List[Entry]) -> List[Entry]:
    """The entries ``named_parameters`` lists: each tensor once, at its first use."""
    return [e for e in entries if e.name == e.first]


def tie_groups(entries: List[Entry]) -> List[Tuple[str, ...]]:
    """Names that are one tensor, as ``m.ties()`` lists them: groups of two
    or more, in the order of their first name."""
    groups: Dict[str, List[str]] = {}
    for e in entries:
        groups.setdefault(e.first, []).append(e.name)
    return [tuple(g) for g in groups.values() if len(g) > 1]


def _input_tensor(shape: Tuple[int, ...]) -> Tensor:
    return Tensor({2: "vector", 3: "sequence", 4: "image"}[len(shape)], tuple(shape[1:]))


# -- values and the NumPy forward -----------------------------------------------------------------------
def random_values(entries: List[Entry], seed: int) -> Dict[str, np.ndarray]:
    """A float32 value for every tensor (first names only), drawn by role so
    that the forward stays well scaled: weights ``U(+-1/sqrt(fan_in))``,
    running variances in [0.5, 2], the counter a small integer (a stream
    apart from the input's, which has the same seed)."""
    rng = np.random.default_rng([seed, 1])
    values = {}
    for e in unique(entries):
        if e.role == "counter":
            values[e.name] = np.asarray(rng.integers(0, 100), dtype=np.int64)
        elif e.role == "running_var":
            values[e.name] = rng.uniform(0.5, 2.0, size=e.shape).astype(np.float32)
        else:
            bound = 1 / np.sqrt(int(np.prod(e.shape[1:]))) if len(e.shape) > 1 else 1.0
            values[e.name] = rng.uniform(-bound, bound, size=e.shape).astype(np.float32)
    return values


def assert_bitwise(got: dict, want: dict):
    """Every array of ``want`` is in ``got`` with the same dtype, shape and
    bits (float values compared as bytes: -0.0 is not 0.0, a NaN is itself)."""
    differ = [n for n in want if n not in got or np.asarray(got[n]).dtype != np.asarray(want[n]).dtype
              or np.shape(got[n]) != np.shape(want[n])
              or np.asarray(got[n], order="C").tobytes() != np.asarray(want[n], order="C").tobytes()]
    assert not differ, f"not bit for bit: {differ}"


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def numpy_lstm(x, w_ih, w_hh, b_ih, b_hh):
    """torch's LSTM (gates i, f, g, o; zero initial state), batch-first."""
    n, t_len, _ = x.shape
    hidden = w_hh.shape[1]
    h, c = np.zeros((n, hidden)), np.zeros((n, hidden))
    out = []
    for t in range(t_len):
        z = x[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f, g, o = np.split(z, 4, axis=1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.stack(out, axis=1)


def numpy_conv2d(x, w, b, stride: int, padding: int):
    """torch's Conv2d: NCHW cross-correlation with zero padding."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    _, _, hp, wp = x.shape
    k = w.shape[-1]
    h_out, w_out = (hp - k) // stride + 1, (wp - k) // stride + 1
    y = np.zeros((x.shape[0], w.shape[0], h_out, w_out))
    for i in range(h_out):
        for j in range(w_out):
            patch = x[:, :, i * stride:i * stride + k, j * stride:j * stride + k]
            y[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return y if b is None else y + b[None, :, None, None]


def _per_channel(v, ndim):
    """A (C,) vector broadcast over axis 1 of an ndim-array (torch's BatchNorm)."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def reference_forward(spec, values: Dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The inference forward of ``spec`` on the canonical input ``x``, in
    float64 NumPy, from canonical ``values`` keyed by first names
    (BatchNorm uses its running statistics)."""
    h = x if x.dtype.kind in "iu" else x.astype(np.float64)
    first_path: Dict[int, str] = {}
    for path, layer in leaves(spec):
        base = first_path.setdefault(id(layer), path)

        def v(attr):
            value = values.get(f"{base}.{attr}")
            return None if value is None else value.astype(np.float64)

        kind = layer.kind
        if kind == "ReLU":
            h = np.maximum(h, 0)
        elif kind == "Flatten":
            h = h.reshape(h.shape[0], -1)           # torch's (C, H, W) order
        elif kind == "Dense":
            h = h @ v("weight").T + (0 if v("bias") is None else v("bias"))
        elif kind == "Embedding":
            h = v("weight")[h]
        elif kind == "Conv2d":
            h = numpy_conv2d(h, v("weight"), v("bias"), layer.stride, layer.padding)
        elif kind == "LayerNorm":
            mu, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
            h = (h - mu) / np.sqrt(var + layer.eps) * v("weight") + v("bias")
        elif kind == "BatchNorm":
            c = lambda attr: _per_channel(v(attr), h.ndim)  # noqa: E731
            h = (h - c("running_mean")) / np.sqrt(c("running_var") + layer.eps) * c("weight") + c("bias")
        elif kind == "LSTM":
            h = numpy_lstm(h, v("weight_ih_l0"), v("weight_hh_l0"), v("bias_ih_l0"), v("bias_hh_l0"))
        else:
            raise AssertionError(f"no reference for {kind}")
    return h


# -- the strategy --------------------------------------------------------------------------------------
def make_input(shape: Tuple[int, ...], seed: int, vocab: Optional[int] = None) -> np.ndarray:
    """A canonical input: float32 in [-1, 1) (NCHW for images), or int64 ids
    below ``vocab``."""
    rng = np.random.default_rng([seed, 0])
    if vocab is not None:
        return rng.integers(0, vocab, size=shape).astype(np.int64)
    return rng.uniform(-1, 1, size=shape).astype(np.float32)


class Arch:
    """A drawn architecture: the spec, its canonical input (NCHW images,
    int64 ids below ``vocab``) and the seed of the input and of the
    parameter values.  Its repr is the code that builds it (not a
    dataclass: hypothesis would print the fields, and one layer used twice
    would look like two)."""

    def __init__(self, spec: nn.Sequential, input_shape: Tuple[int, ...], seed: int,
                 vocab: Optional[int] = None):
        self.spec, self.input_shape, self.seed, self.vocab = spec, tuple(input_shape), seed, vocab

    @property
    def x(self) -> np.ndarray:
        return make_input(self.input_shape, self.seed, self.vocab)

    def entries(self) -> List[Entry]:
        """torch's state_dict of this architecture (:func:`reference_state`)."""
        return reference_state(self.spec, self.input_shape)

    def code(self) -> str:
        """Python that builds this spec and input (a regression test's body)."""
        shared: Dict[int, str] = {}
        counts: Dict[int, int] = {}
        for _, layer in leaves(self.spec):
            counts[id(layer)] = counts.get(id(layer), 0) + 1
        lines = []

        def render(s) -> str:
            if s.kind == "Sequential":
                if s.named:
                    return "mp.nn.Sequential({" + ", ".join(f"{k!r}: {render(c)}" for k, c in s.children) + "})"
                return "mp.nn.Sequential(" + ", ".join(render(c) for _, c in s.children) + ")"
            if counts.get(id(s), 1) > 1:
                if id(s) not in shared:
                    shared[id(s)] = f"shared{len(shared)}"
                    lines.append(f"{shared[id(s)]} = mp.nn.{s!r}")
                return shared[id(s)]
            return f"mp.nn.{s!r}"

        body = render(self.spec)
        vocab = "" if self.vocab is None else f", vocab={self.vocab}"
        return "\n".join(lines + [f"spec = {body}",
                                  f"arch = Arch(spec, {self.input_shape}, seed={self.seed}{vocab})"])

    def __repr__(self) -> str:
        return "Arch:\n" + self.code()


def _sizes(lo: int = 1, hi: int = 5):
    return st.integers(lo, hi)


@st.composite
def _input(draw) -> Tensor:
    kind = draw(st.sampled_from(["vector", "sequence", "image", "ids"]))
    if kind == "vector":
        return Tensor("vector", (draw(_sizes(1, 6)),))
    if kind == "sequence":
        return Tensor("sequence", (draw(_sizes(1, 4)), draw(_sizes(1, 5))))
    if kind == "image":
        return Tensor("image", (draw(_sizes(1, 3)), draw(_sizes(1, 6)), draw(_sizes(1, 6))))
    return Tensor("ids", (draw(_sizes(1, 4)),))


#: the leaves legal on each kind of tensor
LEGAL = {"ids": ("Embedding",),
         "vector": ("Dense", "ReLU", "LayerNorm", "BatchNorm", "Flatten"),
         "sequence": ("Dense", "ReLU", "LayerNorm", "LSTM", "Flatten"),
         "image": ("Conv2d", "BatchNorm", "ReLU", "Flatten")}
#: layers whose second use ties parameters (ReLU and Flatten have none)
REUSABLE = ("Dense", "Conv2d", "LayerNorm", "BatchNorm", "LSTM")


def _fresh_layer(draw, t: Tensor, kinds):
    """A new leaf of one of ``kinds``, legal on ``t``."""
    kind = draw(st.sampled_from(kinds))
    if kind == "Dense":
        units = draw(_sizes(1, 6))
        known = draw(st.booleans())          # nn.Linear(in, out) or LazyLinear
        return nn.Dense(units, use_bias=draw(st.booleans()), in_features=t.features if known else None)
    if kind == "Conv2d":
        _, h, w = t.shape
        padding = draw(st.integers(0, 1))
        k = draw(st.integers(1, min(3, h + 2 * padding, w + 2 * padding)))
        return nn.Conv2d(draw(_sizes(1, 4)), k, stride=draw(st.integers(1, 2)), padding=padding,
                         use_bias=draw(st.booleans()))
    if kind == "BatchNorm":
        return nn.BatchNorm(momentum=draw(st.sampled_from([0.1, 0.3])), eps=draw(st.sampled_from([1e-5, 1e-3])))
    if kind == "LayerNorm":
        return nn.LayerNorm(eps=draw(st.sampled_from([1e-5, 1e-3])))
    if kind == "Embedding":
        return nn.Embedding(draw(_sizes(2, 8)), draw(_sizes(1, 5)))
    if kind == "LSTM":
        return nn.LSTM(draw(_sizes(1, 4)))
    return {"ReLU": nn.ReLU, "Flatten": nn.Flatten}[kind]()


def _layer(draw, t: Tensor, pool: List[Tuple[Tensor, object]], kinds=None):
    """A leaf for ``t`` (of one of ``kinds``, default: any legal one): an
    earlier layer used again when one was first used on exactly this tensor
    (a tie; the same input means the same function on every backend), else
    a fresh one."""
    kinds = LEGAL[t.kind] if kinds is None else kinds
    again = [layer for seen, layer in pool if seen == t and layer.kind in kinds]
    if again and draw(st.booleans()):
        return draw(st.sampled_from(again))
    layer = _fresh_layer(draw, t, kinds)
    if layer.kind in REUSABLE:
        pool.append((t, layer))
    return layer


@st.composite
def _layers(draw, t: Tensor) -> List[object]:
    """1 to MAX_LAYERS leaves, each legal on the tensor before it."""
    layers: List[object] = []
    pool: List[Tuple[Tensor, object]] = []
    count = draw(st.integers(1, MAX_LAYERS))
    while len(layers) < count:
        kinds = LEGAL[t.kind]
        if len(layers) == count - 1:
            # the output is compared across frameworks in canonical layout, and
            # a flattened channels-last map has no canonical layout but torch's
            # own order: the last layer mixes such features (a Dense) or makes none
            if t.flattened_from:
                kinds = ("Dense",)
            elif output_of(nn.Flatten(), t).flattened_from:
                kinds = tuple(k for k in kinds if k != "Flatten")
        layer = _layer(draw, t, pool, kinds)
        layers.append(layer)
        t = output_of(layer, t)
    return layers


def _nest(draw, layers: List[object], level: int) -> nn.Sequential:
    """A Sequential of ``layers``, some runs of them wrapped in inner
    Sequentials, some children named instead of numbered."""
    children: List[object] = []
    i = 0
    while i < len(layers):
        if level < MAX_NESTING and draw(st.integers(0, 3)) == 0:
            j = draw(st.integers(i + 1, len(layers)))
            children.append(_nest(draw, layers[i:j], level + 1))
            i = j
        else:
            children.append(layers[i])
            i += 1
    seq = nn.Sequential()
    for child in children:
        free = [n for n in CHILD_NAMES if all(k != n for k, _ in seq.children)]
        named = free and draw(st.integers(0, 3)) == 0
        seq.add(child, name=draw(st.sampled_from(free)) if named else None)
    return seq


@st.composite
def architectures(draw) -> Arch:
    """A legal architecture of 1 to MAX_LAYERS layers and its input."""
    t = draw(_input())
    spec = _nest(draw, draw(_layers(t)), 0)
    vocab = next(layer for _, layer in leaves(spec)).num_embeddings if t.kind == "ids" else None
    return Arch(spec, (draw(st.integers(1, 3)),) + t.shape, seed=draw(st.integers(0, 2 ** 16)), vocab=vocab)
