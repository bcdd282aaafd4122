"""Layers beyond Dense, per backend: Conv2d, BatchNorm, LayerNorm, Embedding,
LSTM and Flatten built from mp.nn specs (and natively written CNNs).

The truth is a NumPy reference computed from canonical (torch-layout)
values alone, the framework's own forward (``kit.forward``) and the
framework's own BatchNorm update (``kit.bn_train_step``)."""
import numpy as np
import pytest

import multiparam as mp
from multiparam import compare
from multiparam.layout import input_to_native

from ..architectures import numpy_lstm   # torch's LSTM in NumPy, shared with the property suite


def numpy_conv2d(x, w, b, padding):
    """NCHW cross-correlation, stride 1, zero padding (torch's Conv2d)."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, _, hp, wp = x.shape
    out_c, _, kh, kw = w.shape
    h_out, w_out = hp - kh + 1, wp - kw + 1
    y = np.zeros((n, out_c, h_out, w_out))
    for i in range(h_out):
        for j in range(w_out):
            patch = x[:, :, i:i + kh, j:j + kw]
            y[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return y + b[None, :, None, None]


def _canon(m, kit, y):
    return mp.layout.output_to_canonical(kit.to_numpy(y), m.channels_last)


def _v(m, name):
    return m[name].value.astype(np.float64)


# -- names, shapes, roles, trainable -------------------------------------------------
def _without_counters(m, table: dict) -> dict:
    """``table`` without state only some frameworks keep (torch's
    ``num_batches_tracked``, role ``counter``): checked on its own."""
    return {n: v for n, v in table.items() if m[n].role != "counter"}


def test_cnn_names_shapes_roles(backend):
    m, _ = compare.build("cnn", backend)
    assert _without_counters(m, m.shapes()) == {"0.weight": (4, 1, 3, 3), "0.bias": (4,), "1.weight": (4,), "1.bias": (4,),
                          "1.running_mean": (4,), "1.running_var": (4,),
                          "4.weight": (3, 144), "4.bias": (3,)}
    params = m.named_parameters()
    assert {n: p.role for n, p in params.items() if n.startswith("1.")} == {
        "1.weight": "scale", "1.bias": "bias", "1.running_mean": "running_mean",
        "1.running_var": "running_var", **{n: "counter" for n in params if n == "1.num_batches_tracked"}}
    assert _without_counters(m, {n: p.trainable for n, p in params.items()}) == {
        "0.weight": True, "0.bias": True, "1.weight": True, "1.bias": True,
        "1.running_mean": False, "1.running_var": False, "4.weight": True, "4.bias": True}
    assert [m[i].kind for i in range(5)] == ["Conv2d", "BatchNorm", "ReLU", "Flatten", "Dense"]
    assert m.num_parameters(trainable=True) == 4 * 9 + 4 + 4 + 4 + 3 * 144 + 3


def test_lstm_names_shapes_roles(backend):
    m, _ = compare.build("lstm", backend)
    assert m.shapes() == {"0.weight_ih_l0": (20, 4), "0.weight_hh_l0": (20, 5), "0.bias_ih_l0": (20,),
                          "0.bias_hh_l0": (20,), "1.weight": (2, 5), "1.bias": (2,)}
    assert all(p.trainable for p in m.parameters())
    assert m[0].kind == "LSTM"


def test_embedding_and_layernorm_shapes(kit):
    x = np.array([[1, 2, 3], [4, 5, 9]])
    m = mp.wrap(mp.nn.Sequential(mp.nn.Embedding(10, 6), mp.nn.LayerNorm(), mp.nn.Dense(2)),
                sample_input=x)
    assert m.shapes() == {"0.weight": (10, 6), "1.weight": (6,), "1.bias": (6,),
                          "2.weight": (2, 6), "2.bias": (2,)}
    assert [m[i].kind for i in range(3)] == ["Embedding", "LayerNorm", "Dense"]
    m.init(mp.init.normal(0, 0.5), seed=1)
    h = _v(m, "0.weight")[x]
    mu, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
    h = (h - mu) / np.sqrt(var + 1e-5) * _v(m, "1.weight") + _v(m, "1.bias")
    ref = h @ _v(m, "2.weight").T + _v(m, "2.bias")
    np.testing.assert_allclose(kit.to_numpy(m(x)), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", sorted(compare.ARCHITECTURES))
def test_spec_config_round_trip(arch):
    factory, _ = compare.ARCHITECTURES[arch]
    spec = factory()
    assert repr(mp.nn.from_config(mp.nn.to_config(spec))) == repr(spec)


def test_spec_repr_and_bad_arguments():
    assert repr(mp.nn.Conv2d(4, 3, stride=2, padding=1)) == \
        "Conv2d(out_channels=4, kernel_size=3, stride=2, padding=1)"
    with pytest.raises(ValueError):
        mp.nn.BatchNorm(momentum=1.5)
    with pytest.raises(ValueError):
        mp.nn.Conv2d(4, 3, padding=-1)


# -- BatchNorm: momentum's opposite meaning, inference mode ------------------------------
def test_batchnorm_momentum_conversion(kit):
    x = np.random.default_rng(0).uniform(-1, 1, size=(4, 3)).astype(np.float32)
    m = mp.wrap(mp.nn.Sequential(mp.nn.BatchNorm(momentum=0.2)), sample_input=x)
    native = kit.bn_momentum(m[0].native)
    assert native == pytest.approx(0.8 if kit.BN_MOMENTUM_WEIGHS_OLD else 0.2)
    # the framework's own training-mode update means torch's momentum 0.2
    before = m["0.running_mean"].numpy()
    new_mean = kit.bn_train_step(m, x)
    np.testing.assert_allclose(new_mean, 0.8 * before + 0.2 * x.mean(0), rtol=1e-5, atol=1e-6)


def test_cnn_inference_matches_numpy(backend, kit):
    m, xn = compare.build("cnn", backend)
    m.init(mp.init.normal(0, 0.5), seed=2)
    m["1.running_mean"].set(np.array([0.1, -0.2, 0.3, 0.0]))
    m["1.running_var"].set(np.array([0.5, 1.5, 2.0, 1.0]))
    x = compare.sample_input("cnn").astype(np.float64)
    h = numpy_conv2d(x, _v(m, "0.weight"), _v(m, "0.bias"), padding=1)
    mean, var = _v(m, "1.running_mean"), _v(m, "1.running_var")
    h = (h - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    h = h * _v(m, "1.weight")[:, None, None] + _v(m, "1.bias")[:, None, None]
    h = np.maximum(h, 0).reshape(h.shape[0], -1)          # torch's (C, H, W) flatten
    ref = h @ _v(m, "4.weight").T + _v(m, "4.bias")
    np.testing.assert_allclose(_canon(m, kit, m(xn, train=False)), ref, rtol=1e-4, atol=1e-5)
    stats = m["1.running_mean"].numpy()
    m.grad(xn)                                              # inference mode: stats unchanged
    np.testing.assert_array_equal(m["1.running_mean"].numpy(), stats)


# -- Flatten between conv and dense: the NCHW/NHWC column permutation --------------------
def test_flatten_permutation_from_spec(kit):
    x = np.random.default_rng(3).uniform(-1, 1, size=(2, 1, 5, 4)).astype(np.float32)
    spec = mp.nn.Sequential(mp.nn.Conv2d(2, 3, padding=1), mp.nn.Flatten(), mp.nn.Dense(3))
    m = mp.wrap(spec, sample_input=input_to_native(x, mp.wrap(spec).channels_last))
    m.init(mp.init.normal(0, 0.5), seed=4)
    assert m["2.weight"].shape == (3, 2 * 5 * 4)
    h = numpy_conv2d(x.astype(np.float64), _v(m, "0.weight"), _v(m, "0.bias"), padding=1)
    ref = h.reshape(2, -1) @ _v(m, "2.weight").T + _v(m, "2.bias")
    out = kit.forward(m, input_to_native(x, m.channels_last))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    # a write in canonical layout lands where the framework's flatten order needs it
    w = m["2.weight"].numpy()
    w[:, 5] += 1.0                       # canonical column 5: channel 0, row 1, col 1
    m["2.weight"].set(w)
    ref2 = ref + h.reshape(2, -1)[:, 5:6] * np.ones((1, 3))
    np.testing.assert_allclose(kit.forward(m, input_to_native(x, m.channels_last)), ref2,
                               rtol=1e-4, atol=1e-5)


def test_flatten_permutation_native_cnn(kit):
    cnn = kit.native_cnn()
    m = mp.wrap(cnn.model, sample_input=cnn.x, **cnn.options)
    sample = kit.to_numpy(cnn.x)
    x = mp.layout.output_to_canonical(sample, m.channels_last).astype(np.float64)
    assert m[f"{cnn.dense}.weight"].shape == (3, 2 * 5 * 4)
    h = numpy_conv2d(x, _v(m, f"{cnn.conv}.weight"), _v(m, f"{cnn.conv}.bias"), padding=1)
    ref = h.reshape(2, -1) @ _v(m, f"{cnn.dense}.weight").T + _v(m, f"{cnn.dense}.bias")
    np.testing.assert_allclose(kit.forward(m, sample), ref, rtol=1e-4, atol=1e-5)


# -- LSTM: torch's names, layout and gate order everywhere -----------------------------------
def test_lstm_matches_numpy_reference(kit):
    x = np.random.default_rng(5).uniform(-1, 1, size=(2, 3, 4)).astype(np.float32)
    m = mp.wrap(mp.nn.Sequential(mp.nn.LSTM(5)), sample_input=x)
    # torch's names split what Keras and Flax hold as one summed bias; the count is the framework's
    assert m.num_parameters(trainable=True) == kit.count(m)
    m.init(mp.init.normal(0, 0.5), seed=6)
    # distinct biases: a single-bias framework must keep their sum and each share
    b_hh = np.random.default_rng(7).uniform(-1, 1, size=20).astype(np.float32)
    b_ih = m["0.bias_ih_l0"].numpy()
    m["0.bias_hh_l0"].set(b_hh)
    np.testing.assert_allclose(m["0.bias_hh_l0"].value, b_hh, rtol=1e-6)
    np.testing.assert_allclose(m["0.bias_ih_l0"].value, b_ih, rtol=1e-5, atol=1e-6)
    ref = numpy_lstm(x.astype(np.float64), _v(m, "0.weight_ih_l0"), _v(m, "0.weight_hh_l0"),
                     _v(m, "0.bias_ih_l0"), _v(m, "0.bias_hh_l0"))
    np.testing.assert_allclose(kit.forward(m, x), ref, rtol=1e-4, atol=1e-5)
    # gate order: bumping the forget-gate rows (torch's f = rows H:2H) moves the output as
    # the NumPy reference says
    w = m["0.weight_ih_l0"].numpy()
    w[5:10] += 0.5
    m["0.weight_ih_l0"].set(w)
    ref = numpy_lstm(x.astype(np.float64), w.astype(np.float64), _v(m, "0.weight_hh_l0"),
                     _v(m, "0.bias_ih_l0"), _v(m, "0.bias_hh_l0"))
    np.testing.assert_allclose(kit.forward(m, x), ref, rtol=1e-4, atol=1e-5)
    g = m.grad(x)
    np.testing.assert_allclose(g["0.bias_ih_l0"], g["0.bias_hh_l0"], rtol=1e-5, atol=1e-6)


# -- Embedding with the output projection tied to it ---------------------------------------
def test_embedding_tied_projection(backend, kit):
    m, x = compare.build("embedding", backend)
    assert m.ties() == [("0.weight", "1.weight")]
    assert m["1.weight"] is m["0.weight"]
    m.init(mp.init.normal(0, 0.5), seed=8)
    e = _v(m, "0.weight")
    ref = e[np.asarray(x)] @ e.T + _v(m, "1.bias")
    np.testing.assert_allclose(kit.to_numpy(m(x)), ref, rtol=1e-4, atol=1e-5)
    m["0.weight"][0, 0] = 3.0           # one parameter: the projection sees it
    e = _v(m, "0.weight")
    ref = e[np.asarray(x)] @ e.T + _v(m, "1.bias")
    np.testing.assert_allclose(kit.to_numpy(m(x)), ref, rtol=1e-4, atol=1e-5)
    assert set(m.grad(x)) == {"0.weight", "1.bias"}
