"""Initialisation, per backend: the chapter's sequences as exact facts,
statistics of every initializer on a large layer (fixed seeds, so never
flaky), bit-identity of portable mode against a checked-in fixture, each
framework's documented default, targeting, bad input, deferred shapes and
the framework objects that must survive."""
import json
import math
import os

import numpy as np
import pytest

import multiparam as mp
from tests import stats

from .data.make_init_reference import BIG, BIG_CASES, CASES, PARAMS, SEED, digest
from .models import numpy_grads, MLP_SHAPES, SHARED_TIES, mlp, numpy_forward, shared_net

OUT, IN = 256, 512          # (out, in) differ, so a fan taken from the wrong axis shows
N = OUT * IN
MODES = ("portable", "native")


def mlp_known():
    return mp.nn.Sequential(mp.nn.Dense(8, in_features=4), mp.nn.ReLU(), mp.nn.Dense(1))


def big():
    return mp.wrap(mp.nn.Sequential(mp.nn.Dense(OUT, in_features=IN)))


def snapshot(m):
    return {n: p.numpy() for n, p in m.named_parameters().items()}


def assert_unchanged(m, before):
    for name, value in before.items():
        np.testing.assert_array_equal(m[name].value, value, err_msg=name)


# -- bit-identity: portable mode against the fixture (numpy 2.x wrote it) -------------------
REFERENCE = json.load(open(os.path.join(os.path.dirname(__file__), "data", "init_reference.json")))


@pytest.mark.parametrize("case", sorted(CASES))
def test_portable_values_are_the_reference_bytes(case, X):
    assert REFERENCE["seed"] == SEED
    m = mp.wrap(mlp_known(), sample_input=X)
    m.init(CASES[case](), seed=SEED)
    for name, (shape, _role) in PARAMS.items():
        assert m[name].shape == shape
        assert digest(m[name].value) == REFERENCE["cases"][case][name]["sha256"], (case, name)


@pytest.mark.parametrize("case", BIG_CASES)
def test_portable_values_drawn_block_by_block_are_the_reference_bytes(case):
    # several draw blocks, the last partial: the same bits on every backend and NumPy
    name, shape = BIG
    m = mp.wrap(mp.nn.Sequential(mp.nn.Dense(shape[0], in_features=shape[1])),
                sample_input=np.zeros((1, shape[1]), np.float32))
    m.init(CASES[case](), seed=SEED)
    assert m[name].shape == shape
    assert digest(m[name].value) == REFERENCE["blocks"]["cases"][case], case


def test_portable_values_do_not_depend_on_the_selection(X):
    m = mp.wrap(mlp_known(), sample_input=X)
    m.init(mp.init.normal(), seed=3)
    whole = m["2.weight"].numpy()
    m.init(mp.init.zeros())
    m[2].init(mp.init.normal(), seed=3)
    np.testing.assert_array_equal(m["2.weight"].value, whole)
    m.init(mp.init.zeros())
    m.init(mp.init.normal(), where="2.weight", seed=3)
    np.testing.assert_array_equal(m["2.weight"].value, whole)


def test_native_mode_is_reproducible_per_seed(X):
    m = mp.wrap(mlp_known(), sample_input=X)
    m.init(mp.init.xavier_uniform(), seed=11, mode="native")
    a = m["0.weight"].numpy()
    m.init(mp.init.xavier_uniform(), seed=11, mode="native")
    np.testing.assert_array_equal(m["0.weight"].value, a)
    m.init(mp.init.xavier_uniform(), seed=12, mode="native")
    assert not np.array_equal(m["0.weight"].value, a)


def test_seed_none_draws_fresh_values(X):
    m = mp.wrap(mlp_known(), sample_input=X)
    m.init(mp.init.normal())
    a = m["0.weight"].numpy()
    m.init(mp.init.normal())
    assert not np.array_equal(m["0.weight"].value, a)


# -- statistics on a 256x512 layer: mean, std, bounds, Kolmogorov-Smirnov ---------------------
def _fan_in_out():
    return IN, OUT


def _distribution(label):
    """(initializer, reference CDF, mean, std, bounds) in canonical fans."""
    fi, fo = _fan_in_out()
    if label == "normal":
        return mp.init.normal(0.5, 2.0), stats.gaussian_cdf(0.5, 2.0), 0.5, 2.0, None
    if label == "uniform":
        return mp.init.uniform(-3, 1), stats.uniform_cdf(-3, 1), -1.0, 4 / math.sqrt(12), (-3, 1)
    if label == "xavier_uniform":
        b = math.sqrt(6 / (fi + fo))
        return mp.init.xavier_uniform(), stats.uniform_cdf(-b, b), 0.0, b / math.sqrt(3), (-b, b)
    if label == "xavier_normal":
        s = 1.5 * math.sqrt(2 / (fi + fo))
        return mp.init.xavier_normal(1.5), stats.gaussian_cdf(0, s), 0.0, s, None
    if label == "kaiming_uniform":
        b = math.sqrt(2) * math.sqrt(3 / fi)
        return mp.init.kaiming_uniform(nonlinearity="relu"), stats.uniform_cdf(-b, b), 0.0, b / math.sqrt(3), (-b, b)
    if label == "kaiming_normal":
        s = math.sqrt(2) / math.sqrt(fo)
        return (mp.init.kaiming_normal(mode="fan_out", nonlinearity="relu"), stats.gaussian_cdf(0, s),
                0.0, s, None)
    if label == "truncated_normal":
        # mean 0.2, std 1, cut to [-1, 2]: the truncated distribution's moments
        m, s, a, b = 0.2, 1.0, -1.0, 2.0
        lo, hi = (a - m) / s, (b - m) / s
        pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
        Z = float(stats.normal_cdf(hi) - stats.normal_cdf(lo))
        mean = m + s * (pdf(lo) - pdf(hi)) / Z
        var = s * s * (1 + (lo * pdf(lo) - hi * pdf(hi)) / Z - ((pdf(lo) - pdf(hi)) / Z) ** 2)
        return mp.init.truncated_normal(m, s, a, b), stats.truncated_cdf(m, s, a, b), mean, math.sqrt(var), (a, b)
    if label == "lecun_normal":
        s = math.sqrt(1 / fi) / .87962566103423978
        return (mp.init.lecun_normal(), stats.truncated_cdf(0, s, -2 * s, 2 * s), 0.0, math.sqrt(1 / fi),
                (-2 * s, 2 * s))
    raise AssertionError(label)


DISTRIBUTIONS = ("normal", "uniform", "xavier_uniform", "xavier_normal", "kaiming_uniform",
                 "kaiming_normal", "truncated_normal", "lecun_normal")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("label", DISTRIBUTIONS)
def test_distribution_statistics(label, mode):
    init, cdf, mean, std, bounds = _distribution(label)
    m = big()
    m.init(init, seed=1234, mode=mode)
    w = m["0.weight"].value.astype(np.float64)
    assert w.shape == (OUT, IN)
    np.testing.assert_array_equal(m["0.bias"].value, 0)
    assert abs(w.mean() - mean) < 5 * std / math.sqrt(N) + 1e-7
    assert abs(w.std() - std) / std < 0.01
    if bounds is not None:
        lo, hi = bounds
        eps = 1e-6 * max(1.0, abs(lo), abs(hi))
        assert w.min() >= lo - eps and w.max() <= hi + eps
    d = stats.ks_statistic(w, cdf)
    assert d < stats.ks_critical(N), f"KS statistic {d:.5f} >= {stats.ks_critical(N):.5f}"


@pytest.mark.parametrize("mode", MODES)
def test_orthogonal_is_orthogonal(mode):
    m = mp.wrap(mp.nn.Sequential(mp.nn.Dense(512, in_features=512)))
    m.init(mp.init.orthogonal(gain=2.0), seed=5, mode=mode)
    w = m["0.weight"].value.astype(np.float64)
    np.testing.assert_allclose(w @ w.T, 4 * np.eye(512), atol=1e-4)
    # entries of a Haar orthogonal matrix are close to N(0, 1/n)
    assert abs(w.std() - 2 / math.sqrt(512)) / (2 / math.sqrt(512)) < 0.01
    m = big()   # semi-orthogonal: rows orthonormal when out < in
    m.init(mp.init.orthogonal(), seed=5, mode=mode)
    w = m["0.weight"].value.astype(np.float64)
    np.testing.assert_allclose(w @ w.T, np.eye(OUT), atol=1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_constant_zeros_ones_are_exact(mode):
    m = big()
    m.init(mp.init.constant(-0.25), mode=mode)
    np.testing.assert_array_equal(m["0.weight"].value, -0.25)
    m.init(mp.init.ones(), where=".*", mode=mode)
    np.testing.assert_array_equal(m["0.bias"].value, 1)
    m.init(mp.init.zeros(), mode=mode)
    np.testing.assert_array_equal(m["0.weight"].value, 0)


def test_chapter_custom_distribution_on_a_large_layer():
    class MyInit(mp.init.Initializer):
        def sample(self, shape, rng, name):
            w = rng.uniform(-10, 10, size=shape)
            return w * (np.abs(w) >= 5)

    m = big()
    m.init(MyInit(), seed=9)
    w = m["0.weight"].value.astype(np.float64)
    zero, pos, neg = w == 0, w > 0, w < 0
    for frac, p in ((zero.mean(), 0.5), (pos.mean(), 0.25), (neg.mean(), 0.25)):
        assert abs(frac - p) < 5 * math.sqrt(p * (1 - p) / N)
    assert w[pos].min() >= 5 and w[pos].max() <= 10 and w[neg].max() <= -5 and w[neg].min() >= -10
    assert stats.ks_statistic(w[pos], stats.uniform_cdf(5, 10)) < stats.ks_critical(int(pos.sum()))
    assert stats.ks_statistic(w[neg], stats.uniform_cdf(-10, -5)) < stats.ks_critical(int(neg.sum()))


# -- framework_default(): each framework's documented default -----------------------------------
def _cdf(dist):
    """The reference CDF of a documented distribution (kits state them as plain numbers)."""
    if dist.kind == "uniform":
        return stats.uniform_cdf(dist.low, dist.high)
    if dist.kind == "truncated_normal":
        return stats.truncated_cdf(dist.mean, dist.std, dist.low, dist.high)
    raise AssertionError(f"no reference CDF for a {dist.kind} distribution")


def _assert_drawn_from(values, dist):
    """Values of a small tensor (a bias) against a documented distribution."""
    if dist.kind == "constant":
        np.testing.assert_array_equal(values, dist.value)
    else:
        assert np.all((values >= dist.low - 1e-7) & (values <= dist.high + 1e-7))
        assert len(np.unique(values)) > 1


def test_framework_default_matches_the_documented_default(kit):
    weight, bias = kit.dense_default(*_fan_in_out())
    cdf = _cdf(weight)
    m = big()
    fresh = m["0.weight"].numpy()   # what the framework itself drew when building the layer
    m.init(mp.init.framework_default(), seed=21)
    w = m["0.weight"].value.astype(np.float64)
    assert w.min() >= weight.low - 1e-6 and w.max() <= weight.high + 1e-6
    assert stats.ks_statistic(w, cdf) < stats.ks_critical(N)
    # and the framework's own draw fits the same documented distribution
    assert stats.ks_statistic(fresh, cdf) < stats.ks_critical(N)
    assert stats.ks_2samp(fresh, w) < stats.ks_2samp_critical(N, N)
    _assert_drawn_from(m["0.bias"].value, bias)


def test_framework_default_native_mode(kit):
    weight, _ = kit.dense_default(*_fan_in_out())
    m = big()
    m.init(mp.init.framework_default(), seed=21, mode="native")
    assert stats.ks_statistic(m["0.weight"].value, _cdf(weight)) < stats.ks_critical(N)


# -- the chapter's sequences, as exact checks ------------------------------------------------
def test_chapter_normal_weights_zero_biases(X):
    m = mp.wrap(mlp(), sample_input=X)

    def init_normal(layer):
        if layer.kind == "Dense":
            layer.init(mp.init.normal(mean=0, std=0.01))

    m.apply(init_normal)
    assert m["0.bias"].value[0] == 0 and np.all(m["0.bias"].value == 0)
    w = m["0.weight"].value
    assert 0 < np.abs(w).max() < 0.06 and len(np.unique(w)) == w.size


def test_chapter_constant_one(X):
    m = mp.wrap(mlp(), sample_input=X)
    m.apply(lambda layer: layer.kind == "Dense" and layer.init(mp.init.constant(1)))
    np.testing.assert_array_equal(m["0.weight"].value[0], [1, 1, 1, 1])
    assert m["0.bias"].value[0] == 0


def test_chapter_xavier_on_layer_0_and_42_on_layer_2(kit, X):
    m = mp.wrap(mlp(), sample_input=X)
    m[0].init(mp.init.xavier_uniform())
    m[2].init(mp.init.constant(42))
    np.testing.assert_array_equal(m["2.weight"].value, np.full((1, 8), 42, np.float32))
    bound = math.sqrt(6 / (4 + 8))
    assert np.all(np.abs(m["0.weight"].value) <= bound)
    # the model computes with them
    np.testing.assert_allclose(kit.to_numpy(m(X)), numpy_forward(m, X), rtol=1e-4, atol=1e-4)


def test_chapter_custom_initializer_prints_and_draws(X, capsys):
    class MyInit(mp.init.Initializer):
        def sample(self, shape, rng, name):
            print("Init", name, shape)
            w = rng.uniform(-10, 10, size=shape)
            return w * (np.abs(w) >= 5)

    m = mp.wrap(mlp(), sample_input=X)
    m.init(MyInit())
    assert capsys.readouterr().out == "Init 0.weight (8, 4)\nInit 2.weight (1, 8)\n"
    w = m["0.weight"].value
    assert np.all((w == 0) | ((np.abs(w) >= 5) & (np.abs(w) <= 10)))

    def my_init(shape, rng, name):   # a plain function, seeing the name too
        print("Init", name, shape)
        return np.where(rng.random(shape) < 0.5, 0.0, 7.0)

    m.init(my_init)
    assert capsys.readouterr().out == "Init 0.weight (8, 4)\nInit 2.weight (1, 8)\n"
    assert set(np.unique(m["0.weight"].value)) <= {0.0, 7.0}


def test_chapter_direct_edits_after_init(X):
    m = mp.wrap(mlp(), sample_input=X)
    m.init(lambda shape, rng: rng.uniform(-10, 10, size=shape), seed=4)
    w0 = m["0.weight"].numpy()
    m["0.weight"][:] += 1
    m["0.weight"][0, 0] = 42
    expected = w0 + np.float32(1)
    expected[0, 0] = 42
    np.testing.assert_array_equal(m["0.weight"].value, expected)
    assert m["0.weight"].value[0, 0] == 42


# -- targeting ------------------------------------------------------------------------------
def test_where_regex_sets_exactly_what_it_matches(X):
    m = mp.wrap(mlp(), sample_input=X)
    before = snapshot(m)
    m.init(mp.init.constant(42), where=".*bias")
    np.testing.assert_array_equal(m["0.bias"].value, 42)
    np.testing.assert_array_equal(m["2.bias"].value, 42)
    assert_unchanged(m, {k: v for k, v in before.items() if k.endswith("weight")})


def test_where_layer_type_spec_and_native_class(X):
    m = mp.wrap(mlp(), sample_input=X)
    m.init(mp.init.constant(3), where=mp.nn.Dense)
    np.testing.assert_array_equal(m["2.weight"].value, 3)
    np.testing.assert_array_equal(m["2.bias"].value, 0)
    m.init(mp.init.constant(5), where=type(m[0].native))   # torch.nn.Linear, keras Dense, ...
    np.testing.assert_array_equal(m["0.weight"].value, 5)
    np.testing.assert_array_equal(m["2.weight"].value, 5)


def test_where_param_handle(X):
    m = mp.wrap(mlp(), sample_input=X)
    before = snapshot(m)
    m.init(mp.init.constant(7), where=m["2.bias"])
    np.testing.assert_array_equal(m["2.bias"].value, 7)
    assert_unchanged(m, {k: v for k, v in before.items() if k != "2.bias"})


def test_layer_init_leaves_other_layers(X):
    m = mp.wrap(mlp(), sample_input=X)
    before = snapshot(m)
    m[2].init(mp.init.ones())
    np.testing.assert_array_equal(m["2.weight"].value, 1)
    assert_unchanged(m, {"0.weight": before["0.weight"], "0.bias": before["0.bias"]})


def test_tied_parameter_is_initialised_once(kit, X):
    m = mp.wrap(shared_net(), sample_input=X)
    seen = []

    def record(shape, rng, name):
        seen.append(name)
        return rng.standard_normal(shape)

    m.init(record, seed=1)
    assert seen == ["0.weight", "2.weight", "6.weight"]
    for a, b in SHARED_TIES:
        np.testing.assert_array_equal(m[a].value, m[b].value)
    np.testing.assert_allclose(kit.to_numpy(m(X)), numpy_forward(m, X), rtol=1e-4, atol=1e-4)


# -- bad input: a clear exception, nothing changed ----------------------------------------------
@pytest.mark.parametrize("bad", ["unknown", "negative std", "wrong shape", "wrong dtype", "no match",
                                 "no match type", "bias fans", "fails midway", "bad mode", "bad seed",
                                 "not an initializer"])
def test_bad_input_changes_nothing(bad, X):
    m = mp.wrap(mlp(), sample_input=X)
    before = snapshot(m)
    calls = []

    def midway(shape, rng, name):
        calls.append(name)
        if name == "2.weight":
            raise RuntimeError("boom")
        return np.ones(shape)

    cases = {
        "unknown": (mp.init.InitError, r"xavier_uniform", lambda: m.init("xavier_unifrom")),
        "negative std": (ValueError, r"std >= 0", lambda: m.init(mp.init.normal(0, -1))),
        "wrong shape": (mp.ShapeError, r"returned shape \(4, 8\)",
                        lambda: m.init(lambda shape, rng: np.ones(shape[::-1]))),
        "wrong dtype": (mp.DtypeError, r"complex128",
                        lambda: m.init(lambda shape, rng: np.ones(shape, complex))),
        "no match": (mp.init.InitError, r"matches no parameter", lambda: m.init(mp.init.ones(), where="nothing.*")),
        "no match type": (mp.init.InitError, r"matches no layer",
                          lambda: m.init(mp.init.ones(), where=mp.nn.ReLU)),
        "bias fans": (mp.init.InitError, r"fan in", lambda: m.init(mp.init.xavier_uniform(), where=".*")),
        "fails midway": (RuntimeError, r"boom", lambda: m.init(midway)),
        "bad mode": (mp.init.InitError, r"portable", lambda: m.init(mp.init.ones(), mode="fast")),
        "bad seed": (TypeError, r"seed", lambda: m.init(mp.init.ones(), seed=-1)),
        "not an initializer": (TypeError, r"initializer", lambda: m.init(42)),
    }
    exc, match, call = cases[bad]
    with pytest.raises(exc, match=match):
        call()
    assert_unchanged(m, before)
    if bad == "fails midway":
        assert calls == ["0.weight", "2.weight"]   # 0.weight was drawn, never written


# -- deferred shapes: raise, change nothing ------------------------------------------------------
def test_deferred_shapes_raise_and_nothing_is_kept(X):
    m = mp.wrap(mlp())
    with pytest.raises(mp.NotMaterializedError, match="sample_input"):
        m.init(mp.init.constant(42))
    m(X)
    assert m.shapes() == MLP_SHAPES
    assert not np.all(m["0.weight"].value == 42)   # nothing was remembered for later
    m.init(mp.init.constant(42))
    np.testing.assert_array_equal(m["0.weight"].value, 42)


# -- framework objects survive: Gluon force_reinit, Keras assign, Flax pytree ----------------------
def test_native_objects_are_kept_and_used(kit, X):
    m = mp.wrap(mlp(), sample_input=X)
    before = {n: (p.native, kit.to_numpy(p.native).copy()) for n, p in m.named_parameters().items()}
    m.init(mp.init.constant(0.5))
    m.init(mp.init.normal(0, 1), seed=3, mode="native")
    for name, (obj, old) in before.items():
        if kit.KEEPS_PARAMETER_OBJECTS:
            # torch Parameter, Keras Variable (assign), Gluon Parameter (always re-initialised,
            # as initialize(force_reinit=True), into the same Parameter)
            assert m[name].native is obj, name
        else:
            # immutable arrays (Flax leaves): the handle holds new leaves, the old ones are untouched
            np.testing.assert_array_equal(kit.to_numpy(obj), old, err_msg=name)
        np.testing.assert_array_equal(kit.read(m, name), m[name].value, err_msg=name)
    # ... and the next forward uses the new values on every backend
    np.testing.assert_allclose(kit.forward(m, X), numpy_forward(m, X), rtol=1e-4, atol=1e-4)


def test_native_optimizer_sees_reinitialised_parameters(kit, X):
    """After m.init, the framework's own optimizer (torch SGD, Keras SGD,
    Gluon Trainer built before or after, optax on the handle's pytree)
    steps from the new values."""
    m = mp.wrap(mlp(), sample_input=X)
    m.init(mp.init.constant(0.5))
    w = m["0.weight"].numpy()
    g = numpy_grads(m, X)["0.weight"]
    kit.sgd_step(m, X, lr=0.1)
    np.testing.assert_allclose(kit.read(m, "0.weight"), w - 0.1 * g, rtol=1e-5, atol=1e-6)
