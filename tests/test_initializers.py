"""The distributions of mp.init with NumPy alone (the `core` environment):
fans from the canonical layout, goodness of fit at fixed seeds, validation,
and the portable-mode fixture (the same bytes under any NumPy version)."""
import json
import math
import os

import numpy as np
import pytest

import multiparam as mp
from multiparam.init import portable_values
from tests import stats
from tests.conformance.data.make_init_reference import BIG_CASES, CASES, expected, expected_big

SHAPE = (256, 512)   # canonical (out, in)


def draw(init, shape=SHAPE, seed=0, name="0.weight"):
    init = mp.init.as_initializer(init)
    return np.asarray(portable_values(init.resolve(shape), shape, seed, name))


def test_fixture_is_reproduced_by_this_numpy():
    ref = json.load(open(os.path.join(os.path.dirname(__file__), "conformance", "data",
                                      "init_reference.json")))
    for case in CASES:
        assert expected(case) == ref["cases"][case], case
    for case in BIG_CASES:
        assert expected_big(case) == ref["blocks"]["cases"][case], case


@pytest.mark.parametrize("index", [(slice(0, 128), slice(0, 512)), (slice(0, 256), slice(256, 512)),
                                   (slice(100, 140), slice(3, 500)), (slice(5, 6), slice(0, 0))])
def test_a_block_drawn_alone_is_that_block_of_the_whole(index):
    # what a sharded process draws (its shards' boxes) against the whole draw, sliced
    whole = draw(mp.init.normal())
    values = portable_values(mp.init.normal().resolve(SHAPE), SHAPE, 0, "0.weight")
    np.testing.assert_array_equal(values.block(index), whole[index])


def test_fans_come_from_the_canonical_layout():
    # xavier/kaiming resolve on canonical (out, in): fan_in = 512, fan_out = 256
    u = mp.init.kaiming_uniform(a=math.sqrt(5)).resolve(SHAPE)
    assert isinstance(u, mp.init.Uniform) and math.isclose(u.high, 1 / math.sqrt(512))
    x = mp.init.xavier_uniform().resolve(SHAPE)
    assert math.isclose(x.high, math.sqrt(6 / 768))
    conv = mp.init.kaiming_normal(mode="fan_out").resolve((16, 3, 5, 5))  # fan_out = 16 * 25
    assert math.isclose(conv.std, math.sqrt(2 / (1 + 0)) / math.sqrt(400))


@pytest.mark.parametrize("init,cdf", [
    (mp.init.normal(1, 3), stats.gaussian_cdf(1, 3)),
    (mp.init.uniform(2, 5), stats.uniform_cdf(2, 5)),
    (mp.init.truncated_normal(0, 2, -1, 3), stats.truncated_cdf(0, 2, -1, 3)),
    (mp.init.xavier_normal(), stats.gaussian_cdf(0, math.sqrt(2 / 768))),
])
def test_goodness_of_fit(init, cdf):
    w = draw(init)
    assert w.dtype == np.float64 and w.shape == SHAPE
    assert stats.ks_statistic(w, cdf) < stats.ks_critical(w.size)


def test_the_statistic_rejects_a_wrong_distribution():
    w = draw(mp.init.normal(0, 1.03))
    assert stats.ks_statistic(w, stats.gaussian_cdf(0, 1)) > stats.ks_critical(w.size)


def test_per_parameter_streams():
    a, b = draw(mp.init.normal(), name="0.weight"), draw(mp.init.normal(), name="2.weight")
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, draw(mp.init.normal(), name="0.weight"))


def test_bad_arguments_raise_at_construction():
    with pytest.raises(ValueError, match="std >= 0"):
        mp.init.normal(0, -1)
    with pytest.raises(ValueError, match="low <= high"):
        mp.init.uniform(1, 0)
    with pytest.raises(ValueError, match="a < b"):
        mp.init.truncated_normal(0, 1, 2, -2)
    with pytest.raises(ValueError, match="mode"):
        mp.init.kaiming_uniform(mode="avg")
    with pytest.raises(ValueError, match="nonlinearity"):
        mp.init.kaiming_uniform(nonlinearity="swish")
    with pytest.raises(TypeError):
        mp.init.constant("1")
    with pytest.raises(mp.init.InitError, match="did you mean 'orthogonal'"):
        mp.init.by_name("orthogonl")
    with pytest.raises(ValueError, match="fan in"):
        mp.init.xavier_uniform().resolve((8,))


def test_calculate_gain_matches_torch():
    assert mp.init.calculate_gain("relu") == math.sqrt(2)
    assert mp.init.calculate_gain("tanh") == 5 / 3
    assert math.isclose(mp.init.calculate_gain("leaky_relu", math.sqrt(5)), math.sqrt(1 / 3))


def test_custom_function_arity():
    assert mp.init.as_initializer(lambda shape, rng: np.zeros(shape)).sample((2,), None, "x").shape == (2,)
    seen = []
    mp.init.as_initializer(lambda shape, rng, name: seen.append(name) or np.zeros(shape)).sample((2,), None, "b")
    assert seen == ["b"]
