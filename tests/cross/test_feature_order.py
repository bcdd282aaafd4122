"""Feature order through a model: after a channels-last framework flattens
an (H, W, C) map its features are in (H, W, C) order, torch's in (C, H, W).
Every parameter indexing them (Dense columns, LayerNorm and BatchNorm
vectors and statistics) is converted, whatever the nesting or the layers in
between, and where the order cannot be known reading refuses instead of
guessing.  (Issue 13's table: before, several rows differed by 0.9 to 2.5.)

Outputs are compared in canonical NCHW layout, the same canonical input
given to each backend in its own layout (``mp.layout.input_to_native``)."""
import itertools
from collections import OrderedDict

import numpy as np
import pytest

import multiparam as mp
from multiparam import nn
from multiparam.adapters.base import FeatureOrderError

LOCAL = ("torch", "jax", "tensorflow")
PAIRS = list(itertools.permutations(LOCAL, 2))
X = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32)   # NCHW

#: the fuzz's table: architectures whose features are flattened from a map
ARCHITECTURES = {
    "conv-flatten-dense": lambda: nn.Sequential(nn.Conv2d(4, 3, padding=1), nn.Flatten(), nn.Dense(3)),
    "flatten-dense": lambda: nn.Sequential(nn.Flatten(), nn.Dense(3)),
    "conv-flatten-seq(dense)": lambda: nn.Sequential(nn.Conv2d(4, 3, padding=1), nn.Flatten(),
                                                     nn.Sequential(nn.Dense(3))),
    "conv-seq(flatten)-dense": lambda: nn.Sequential(nn.Conv2d(4, 3, padding=1), nn.Sequential(nn.Flatten()),
                                                     nn.Dense(3)),
    "conv-flatten-layernorm-dense": lambda: nn.Sequential(nn.Conv2d(4, 3, padding=1), nn.Flatten(),
                                                          nn.LayerNorm(), nn.Dense(3)),
    "conv-flatten-batchnorm-dense": lambda: nn.Sequential(nn.Conv2d(4, 3, padding=1), nn.Flatten(),
                                                          nn.BatchNorm(), nn.ReLU(), nn.Dense(3)),
    "conv-relu-flatten-seq(layernorm, relu, seq(dense))": lambda: nn.Sequential(
        nn.Conv2d(2, 3), nn.ReLU(), nn.Flatten(),
        nn.Sequential(nn.LayerNorm(), nn.ReLU(), nn.Sequential(nn.Dense(4))), nn.Dense(2)),
}


def _wrap(native_or_spec, backend=None, **options):
    model = mp.wrap(native_or_spec, backend=backend, **options) if backend else mp.wrap(native_or_spec, **options)
    return model


def _canonical_output(m, x_canonical):
    x = mp.layout.input_to_native(x_canonical, m.channels_last)
    return mp.layout.output_to_canonical(mp.param.as_numpy(m(x, train=False)), m.channels_last)


def _randomise(m, seed):
    """Every parameter and running statistic drawn, so a permutation shows."""
    m.init(mp.init.normal(0, 0.5), seed=seed)
    rng = np.random.default_rng(seed)
    for name, p in m.named_parameters().items():
        if p.role == "running_mean":
            p.set(rng.normal(0, 0.5, p.shape).astype(p.dtype))
        elif p.role == "running_var":
            p.set(rng.uniform(0.5, 2.0, p.shape).astype(p.dtype))


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("src,dst", PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_outputs_agree_after_transfer(src, dst, arch):
    a = _wrap(ARCHITECTURES[arch](), src, sample_input=mp.layout.input_to_native(X, src != "torch"))
    b = _wrap(ARCHITECTURES[arch](), dst, sample_input=mp.layout.input_to_native(X, dst != "torch"))
    _randomise(a, seed=3)
    mp.transfer(a, b)
    np.testing.assert_allclose(_canonical_output(b, X), _canonical_output(a, X), rtol=1e-5, atol=1e-5)
    # and back: every value as it was
    back = _wrap(ARCHITECTURES[arch](), src, sample_input=mp.layout.input_to_native(X, src != "torch"))
    mp.transfer(b, back)
    for name, value in a.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[name], value, err_msg=name)


# -- natively written models: Conv -> Flatten -> LayerNorm -> Dense ------------------------
def _torch_model(names):
    import torch
    layers = [torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Flatten(), torch.nn.LayerNorm(100),
              torch.nn.Linear(100, 3)]
    return torch.nn.Sequential(OrderedDict(zip(names, layers))).eval()


def _keras_model():
    """As Keras users write one: Sequential with an Input, channels-last."""
    import keras
    return keras.Sequential([keras.Input((5, 5, 3)), keras.layers.Conv2D(4, 3, padding="same"),
                             keras.layers.Flatten(), keras.layers.LayerNormalization(epsilon=1e-5),
                             keras.layers.Dense(3)])


def _flax_model():
    """As Flax users write one: @nn.compact with Flax's own x.reshape."""
    from flax import linen

    class CNN(linen.Module):
        @linen.compact
        def __call__(self, x):
            x = linen.Conv(4, (3, 3), padding=1)(x)
            x = x.reshape((x.shape[0], -1))
            x = linen.LayerNorm(epsilon=1e-5, use_fast_variance=False)(x)
            return linen.Dense(3)(x)

    return CNN()


def _nnx_model():
    """As Flax NNX users write one: Variables made in ``__init__``, Flax's
    own ``x.reshape`` in ``__call__`` (no Flatten layer anywhere to see)."""
    from flax import nnx

    class CNN(nnx.Module):
        def __init__(self, rngs):
            self.conv = nnx.Conv(3, 4, (3, 3), padding=1, rngs=rngs)
            self.norm = nnx.LayerNorm(100, epsilon=1e-5, use_fast_variance=False, rngs=rngs)
            self.dense = nnx.Linear(100, 3, rngs=rngs)

        def __call__(self, x):
            x = self.conv(x)
            x = x.reshape((x.shape[0], -1))
            return self.dense(self.norm(x))

    return CNN(nnx.Rngs(0))


#: model kind -> (the native model, torch's keys for the same layers)
NATIVE = {
    "keras-sequential": (_keras_model, ["0", "1", "2", "3"]),
    "flax-linen-compact": (_flax_model, ["Conv_0", "flatten", "LayerNorm_0", "Dense_0"]),
    "flax-nnx": (_nnx_model, ["conv", "flatten", "norm", "dense"]),
}


@pytest.mark.parametrize("kind", list(NATIVE))
@pytest.mark.parametrize("direction", ["from-torch", "to-torch"])
def test_native_channels_last_model_matches_torch(kind, direction):
    make, names = NATIVE[kind]
    t = mp.wrap(_torch_model(names), sample_input=X)
    n = mp.wrap(make(), sample_input=mp.layout.input_to_native(X, True))
    src, dst = (t, n) if direction == "from-torch" else (n, t)
    _randomise(src, seed=5)
    mp.transfer(src, dst)
    np.testing.assert_allclose(_canonical_output(n, X), _canonical_output(t, X), rtol=1e-5, atol=1e-5)
    # and back into a fresh twin of the source: every value bit for bit
    back = mp.wrap(_torch_model(names), sample_input=X) if src is t else \
        mp.wrap(make(), sample_input=mp.layout.input_to_native(X, True))
    mp.transfer(dst, back)
    for name, value in src.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[name], value, err_msg=name)


#: kind -> (a materialised Flax model wrapped without a sample input, torch's
#: keys for its layers, the name of its Dense weight)
UNCALLED = {
    "flax-nnx": (lambda: mp.wrap(_nnx_model()), NATIVE["flax-nnx"][1], "dense.weight"),
    "flax-linen-variables": (lambda: _untraced_flax()[0], NATIVE["flax-linen-compact"][1], "Dense_0.weight"),
}


@pytest.mark.parametrize("kind", list(UNCALLED))
def test_first_call_makes_the_order_known(kind):
    """Wrapped without ``sample_input`` and then called once through the
    handle (the advice the refusal gives), a model reads its features in
    torch's order, even after a read was refused: the call records the
    sample, and the handle's index, already cached, is described again."""
    wrap, names, dense = UNCALLED[kind]
    n = wrap()
    with pytest.raises(FeatureOrderError, match="sample_input"):
        n[dense].value
    n(mp.layout.input_to_native(X, True))
    t = mp.wrap(_torch_model(names), sample_input=X)
    _randomise(t, seed=7)
    mp.transfer(t, n)
    np.testing.assert_allclose(_canonical_output(n, X), _canonical_output(t, X), rtol=1e-5, atol=1e-5)


# -- an order nobody can know: refused, saying what to do ------------------------------------
def _untraced_flax():
    """A Flax CNN given its variables but no sample input: nothing shows
    whether its Dense is fed a flattened map."""
    import jax
    module = _flax_model()
    variables = module.init(jax.random.PRNGKey(0), mp.layout.input_to_native(X, True))
    return mp.wrap(module, variables=variables), "Dense_0.weight", "sample_input"


def _subclassed_keras():
    """A subclassed Keras model: its call is Python multiparam cannot follow."""
    import keras

    class CNN(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3, padding="same")
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.dense(keras.ops.reshape(self.conv(x), (keras.ops.shape(x)[0], -1)))

    model = CNN()
    model(mp.layout.input_to_native(X, True))
    return mp.wrap(model), "dense.weight", "Sequential or a functional model"


def _uncalled_nnx():
    """An NNX CNN wrapped without a sample input and never called: its
    Variables exist, but nothing shows whether its norm and Linear are fed
    a flattened map."""
    return mp.wrap(_nnx_model()), "dense.weight", "sample_input"


def _uncalled_nnx_norm():
    m, _, advice = _uncalled_nnx()
    return m, "norm.weight", advice


def _uncalled_pooled_nnx():
    """Untraced, a Linear after a Conv is refused even where it reads pooled
    channels: without a trace nothing tells pooling from flattening."""
    return mp.wrap(_pooled_nnx()), "dense.weight", "sample_input"


UNKNOWABLE = {"flax-linen-untraced": _untraced_flax, "keras-subclassed": _subclassed_keras,
              "flax-nnx-uncalled": _uncalled_nnx, "flax-nnx-uncalled-norm": _uncalled_nnx_norm,
              "flax-nnx-uncalled-pooled": _uncalled_pooled_nnx}


@pytest.mark.parametrize("kind", list(UNKNOWABLE))
def test_unknowable_order_is_refused_with_what_to_do(kind):
    m, name, advice = UNKNOWABLE[kind]()
    assert m[name].shape is not None                   # names and shapes still show
    with pytest.raises(FeatureOrderError, match=advice):
        m[name].value
    before = {k: v for k, v in m.named_parameters().items()}
    native_before = mp.param.as_numpy(m[name].native).copy()
    with pytest.raises(FeatureOrderError):
        m[name].set(np.zeros(m[name].shape, np.float32))
    assert list(m.named_parameters()) == list(before)
    np.testing.assert_array_equal(mp.param.as_numpy(m[name].native), native_before)
    # a whole state dict is refused as well, and changes nothing either
    with pytest.raises(FeatureOrderError):
        m.state_dict()


def _pooled_nnx():
    """An NNX model with a Conv whose Linear reads pooled channels (no
    flatten): nothing to permute, but only a trace shows it."""
    from flax import nnx

    class Pooled(nnx.Module):
        def __init__(self, rngs):
            self.conv = nnx.Conv(3, 4, (3, 3), rngs=rngs)
            self.dense = nnx.Linear(4, 2, rngs=rngs)

        def __call__(self, x):
            return self.dense(self.conv(x).mean(axis=(1, 2)))

    return Pooled(nnx.Rngs(0))


def _mlp_nnx():
    from flax import nnx
    rngs = nnx.Rngs(0)
    return nnx.Sequential(nnx.Linear(3, 4, rngs=rngs), nnx.LayerNorm(4, rngs=rngs), nnx.Linear(4, 2, rngs=rngs))


#: models whose Linear reads features in the native order: (model, sample input or None, the Linear)
NOT_FLATTENED = {
    "nnx-pooled-conv-traced": (_pooled_nnx, mp.layout.input_to_native(X, True), "dense.weight"),
    "nnx-mlp-untraced": (_mlp_nnx, None, "2.weight"),
}


@pytest.mark.parametrize("kind", list(NOT_FLATTENED))
def test_features_not_flattened_read_as_they_are(kind):
    """A Linear after pooled channels is a plain (out, in) transpose of
    Flax's kernel once traced; a model without a conv needs no sample."""
    make, sample, name = NOT_FLATTENED[kind]
    m = mp.wrap(make(), sample_input=sample)
    np.testing.assert_array_equal(m[name].value, mp.param.as_numpy(m[name].native).T)
