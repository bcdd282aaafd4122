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


#: backend -> (the native model, torch's keys for the same layers)
NATIVE = {
    "tensorflow": (_keras_model, ["0", "1", "2", "3"]),
    "jax": (_flax_model, ["Conv_0", "flatten", "LayerNorm_0", "Dense_0"]),
}


@pytest.mark.parametrize("backend", list(NATIVE))
@pytest.mark.parametrize("direction", ["from-torch", "to-torch"])
def test_native_channels_last_model_matches_torch(backend, direction):
    make, names = NATIVE[backend]
    t = mp.wrap(_torch_model(names), sample_input=X)
    n = mp.wrap(make(), sample_input=mp.layout.input_to_native(X, True))
    src, dst = (t, n) if direction == "from-torch" else (n, t)
    _randomise(src, seed=5)
    mp.transfer(src, dst)
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


UNKNOWABLE = {"jax": _untraced_flax, "tensorflow": _subclassed_keras}


@pytest.mark.parametrize("backend", list(UNKNOWABLE))
def test_unknowable_order_is_refused_with_what_to_do(backend):
    m, name, advice = UNKNOWABLE[backend]()
    assert m[name].shape is not None                   # names and shapes still show
    with pytest.raises(FeatureOrderError, match=advice):
        m[name].value
    before = {k: v for k, v in m.named_parameters().items()}
    with pytest.raises(FeatureOrderError):
        m[name].set(np.zeros(m[name].shape, np.float32))
    assert list(m.named_parameters()) == list(before)
