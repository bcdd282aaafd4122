"""The first look at a model, per backend: names and shapes come from cheap
per-parameter records; what only values need (the feature order a
channels-last flatten gives a Dense after it) is worked out at the first
value, once per description, and again after ``refresh()``.  Whether a
backend defers anything is its own business: these hold on every one."""
import numpy as np

import multiparam as mp
from multiparam.layout import input_to_native

from .test_layers import numpy_conv2d


def _slots(m):
    return [slot for slot, _ in m.index().slots.values()]


def _cnn(x):
    spec = mp.nn.Sequential(mp.nn.Conv2d(2, 3, padding=1), mp.nn.Flatten(), mp.nn.Dense(3))
    m = mp.wrap(spec, sample_input=input_to_native(x, mp.wrap(spec).channels_last))
    return m


def _reference(m, x):
    """The CNN's output from canonical values, in NumPy (torch's NCHW flatten)."""
    v = lambda name: m[name].value.astype(np.float64)
    h = numpy_conv2d(x.astype(np.float64), v("0.weight"), v("0.bias"), padding=1)
    return h.reshape(len(x), -1) @ v("2.weight").T + v("2.bias"), h


def test_names_and_shapes_first_then_values_in_torchs_feature_order(kit):
    x = np.random.default_rng(11).uniform(-1, 1, size=(2, 1, 5, 4)).astype(np.float32)
    m = _cnn(x)
    # the first look: names and canonical shapes, no value read
    assert m.shapes() == {"0.weight": (2, 1, 3, 3), "0.bias": (2,), "2.weight": (3, 40), "2.bias": (3,)}
    assert [p.native_shape is not None for p in m.parameters()] == [True] * 4
    # the first value resolves every layout of this description, once
    m.init(mp.init.normal(0, 0.5), seed=4)
    assert all(slot.pending is None for slot in _slots(m))
    ref, h = _reference(m, x)
    np.testing.assert_allclose(kit.forward(m, input_to_native(x, m.channels_last)), ref, rtol=1e-4, atol=1e-5)
    # a canonical column written after the first look lands where the framework's flatten needs it
    w = m["2.weight"].numpy()
    w[:, 5] += 1.0
    m["2.weight"].set(w)
    np.testing.assert_allclose(kit.forward(m, input_to_native(x, m.channels_last)),
                               ref + h.reshape(2, -1)[:, 5:6], rtol=1e-4, atol=1e-5)


def test_refresh_describes_again_and_values_still_follow_the_feature_order(kit):
    x = np.random.default_rng(12).uniform(-1, 1, size=(2, 1, 5, 4)).astype(np.float32)
    m = _cnn(x)
    m.init(mp.init.normal(0, 0.5), seed=5)
    before = {name: p.numpy() for name, p in m.named_parameters().items()}
    old = m.index()
    m.refresh()
    assert m.index() is not old
    assert m.shapes() == {name: v.shape for name, v in before.items()}
    # a fresh description: its values read the same canonical arrays
    for name, value in before.items():
        np.testing.assert_array_equal(m[name].value, value)
    w = before["2.weight"].copy()
    w[:, 7] -= 2.0
    m["2.weight"].set(w)
    ref, _ = _reference(m, x)
    np.testing.assert_allclose(kit.forward(m, input_to_native(x, m.channels_last)), ref, rtol=1e-4, atol=1e-5)
