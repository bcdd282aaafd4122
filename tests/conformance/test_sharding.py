"""The sharded API on every backend, with the model on one device.

Where a backend can hold sharded parameters (its ``sharding`` capability),
an unsharded parameter has no sharding and is one shard: its whole value.
Where it cannot, the sharded API raises ``CapabilityError`` with the
backend's reason and changes nothing.  Sharded models themselves (meshes,
several processes) are ``tests/sharded``, run by ``tox -e sharded``."""
import re

import numpy as np
import pytest

import multiparam as mp
from multiparam.sharding import Blocks, GatherError
from multiparam.transaction import WritePlan

from .models import MLP_SHAPES, mlp

PARAM_NAMES = list(MLP_SHAPES)


@pytest.fixture
def m(X):
    return mp.wrap(mlp(), sample_input=X)


@pytest.mark.parametrize("name", PARAM_NAMES)
def test_an_unsharded_parameter_is_one_shard_or_a_declared_refusal(m, adapter, kit, name):
    p = m[name]
    assert p.is_sharded is False
    if not adapter.capability("sharding").supported:
        before = kit.read(m, name).copy()
        with pytest.raises(mp.CapabilityError, match=re.escape(adapter.capability("sharding").reason[:30])):
            p.sharding
        with pytest.raises(mp.CapabilityError):
            list(p.shards())
        np.testing.assert_array_equal(kit.read(m, name), before)
        return
    assert p.sharding is None
    shards = list(p.shards())
    assert len(shards) == 1
    index, block = shards[0]
    assert index == tuple(slice(0, n) for n in MLP_SHAPES[name])
    np.testing.assert_array_equal(block, kit.read(m, name))


def test_the_summary_has_no_sharding_column_for_a_model_on_one_device(m):
    assert "sharding" not in str(m.summary())


def test_a_write_given_block_by_block_lands_whole(m, kit):
    # what a sharded load or init hands an unsharded parameter: it asks for the whole block
    value = np.arange(32, dtype=np.float32).reshape(8, 4)
    asked = []

    def block(index):
        asked.append(index)
        return value[index]

    plan = WritePlan()
    plan.add(m["0.weight"], Blocks(value.shape, value.dtype, block))
    plan.commit()
    np.testing.assert_array_equal(kit.read(m, "0.weight"), value)
    assert asked == [(slice(0, 8), slice(0, 4))]


def test_the_gather_limit_leaves_unsharded_reads_alone(m, kit, monkeypatch):
    monkeypatch.setenv("MULTIPARAM_MAX_GATHER", "1")
    np.testing.assert_array_equal(m["0.weight"].value, kit.read(m, "0.weight"))
    assert GatherError.__mro__[1] is mp.MultiparamError


def test_unsharded_gradients_are_one_block_each_or_a_declared_refusal(m, adapter, kit, X):
    truth = kit.grads(m, X)
    if not adapter.capability("sharding").supported:
        before = {name: kit.read(m, name).copy() for name in PARAM_NAMES}
        with pytest.raises(mp.CapabilityError, match=re.escape(adapter.capability("sharding").reason[:30])):
            m.grad(X, gather=False)
        for name in PARAM_NAMES:
            np.testing.assert_array_equal(kit.read(m, name), before[name])
        return
    got = m.grad(X, gather=False)
    assert set(got) == set(truth)
    for name, rows in got.items():
        assert len(rows) == 1
        index, block = rows[0]
        assert index == tuple(slice(0, n) for n in truth[name].shape)
        np.testing.assert_allclose(block, truth[name], rtol=1e-5, atol=1e-6)
