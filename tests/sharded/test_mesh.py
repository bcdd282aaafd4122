"""Sharded parameters on a device mesh (8 CPU devices; meshes (8,), (2, 4),
(4, 2); Flax linen with ``nn.with_partitioning`` and NNX with sharding
metadata): seen without gathering, written shard by shard with the native
sharding kept, the jitted forward running after every write."""
import numpy as np
import pytest

import multiparam as mp
from multiparam.io import save_state
from multiparam.sharding import GatherError

from .kits import JAX_CASES, X, jax_case

@pytest.fixture(params=list(JAX_CASES))
def case(request):
    return jax_case(request.param)


def names(m):
    return list(m.named_parameters())


def numpy_mlp(values, x):
    """The MLP in NumPy, its parameters found by their shapes (Flax NNX
    lists a layer's bias before its kernel)."""
    by_shape = {v.shape: v for v in values}
    w0, b0, w1, b1 = (by_shape[s] for s in ((16, 8), (16,), (4, 16), (4,)))
    return np.maximum(x @ w0.T + b0, 0) @ w1.T + b1


@pytest.mark.parametrize("position", range(4))
def test_shards_are_the_blocks_the_framework_holds(case, position):
    m = case.wrap()
    name = names(m)[position]
    p = m[name]
    truth = case.truth(m, name)
    assert p.shape == truth.shape
    native = case.native_sharding(m, name)
    distinct = {tuple((s.start, s.stop) for s in idx) for idx in
                (tuple(slice(*sl.indices(n)[:2]) for sl, n in zip(index, p.native_shape))
                 for index in native.devices_indices_map(p.native_shape).values())}
    shards = list(p.shards())
    assert len(shards) == len(distinct)
    assert p.is_sharded == (len(distinct) > 1)
    for index, block in shards:
        np.testing.assert_array_equal(block, truth[index])
    np.testing.assert_array_equal(p.value, truth)   # gathers


def test_sharding_reads_like_the_partition_spec(case):
    m = case.wrap()
    shown = {name: repr(p.sharding) for name, p in m.named_parameters().items() if p.is_sharded}
    assert shown, "the case shards something"
    text = str(m.summary())
    for name, sharding in shown.items():
        assert sharding.startswith("Shard(dim=") and " over '" in sharding
        assert sharding in text


def _write(kind, m, values, tmp_path):
    """Write ``values`` (canonical, in parameter order) into ``m`` one way."""
    params = list(m.named_parameters().values())
    if kind == "set":
        for p, v in zip(params, values):
            p.set(v)
    elif kind == "setitem":
        for p, v in zip(params, values):
            p[...] = v
    elif kind == "load_state_dict":
        m.load_state_dict(dict(zip(names(m), values)))
    elif kind == "load":
        save_state(dict(zip(names(m), values)), tmp_path / "w.safetensors")
        mp.load(m, tmp_path / "w.safetensors")
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["set", "setitem", "load_state_dict", "load", "init"])
def test_writes_keep_the_native_sharding(case, kind, tmp_path):
    m = case.wrap()
    before = {name: case.native_sharding(m, name) for name in names(m)}
    if kind == "init":
        m.init(mp.init.normal(0, 0.5), seed=7)
        values = [case.truth(m, name) for name in names(m)]
        assert all(np.any(v) for v, p in zip(values, m.named_parameters().values()) if p.role == "weight")
    else:
        rng = np.random.default_rng(1)
        values = [rng.standard_normal(p.shape).astype(np.float32) for p in m.named_parameters().values()]
        _write(kind, m, values, tmp_path)
    for name, v in zip(names(m), values):
        assert case.native_sharding(m, name) == before[name]
        np.testing.assert_array_equal(case.truth(m, name), v)
    np.testing.assert_allclose(case.forward(m, X), numpy_mlp(values, X), rtol=1e-5, atol=1e-5)


def test_a_large_gather_is_refused_and_shards_still_read(case, monkeypatch):
    m = case.wrap()
    p = next(p for p in m.named_parameters().values() if p.is_sharded)
    monkeypatch.setenv("MULTIPARAM_MAX_GATHER", "16")
    with pytest.raises(GatherError, match="MULTIPARAM_MAX_GATHER"):
        p.value
    assert sum(b.size for _, b in p.shards()) == int(np.prod(p.shape))


def test_a_value_of_another_shape_is_refused_and_nothing_written(case):
    m = case.wrap()
    p = next(p for p in m.named_parameters().values() if p.is_sharded)
    before = p.numpy()
    wrong = np.zeros(tuple(n + 1 for n in p.shape), np.float32)
    with pytest.raises(mp.ShapeError):
        p.set(wrong)
    np.testing.assert_array_equal(p.value, before)


# -- gradients: sharded on request, gathered by default -------------------------------------------
def numpy_mlp_grads(values, x):
    """d sum(MLP(x)) / d each parameter, in NumPy, keyed by shape."""
    by_shape = {v.shape: v for v in values}
    w0, b0, w1, b1 = (by_shape[s] for s in ((16, 8), (16,), (4, 16), (4,)))
    z = x @ w0.T + b0
    h = np.maximum(z, 0)
    g_out = np.ones((x.shape[0], w1.shape[0]), np.float32)
    dz = (g_out @ w1) * (z > 0)
    return {(16, 8): dz.T @ x, (16,): dz.sum(0), (4, 16): g_out.T @ h, (4,): g_out.sum(0)}


@pytest.mark.parametrize("position", range(4))
def test_sharded_gradients_are_the_frameworks_own_blocks(case, position):
    m = case.wrap()
    name = names(m)[position]
    whole, blocks = case.grads(m, X)[name]
    got = m.grad(X, gather=False)[name]
    assert {tuple((s.start, s.stop) for s in index) for index, _ in got} == blocks
    for index, block in got:
        np.testing.assert_allclose(block, whole[index], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("position", range(4))
def test_gathered_gradients_equal_jax_and_numpy(case, position):
    m = case.wrap()
    name = names(m)[position]
    whole, _ = case.grads(m, X)[name]
    got = m.grad(X)[name]
    np.testing.assert_allclose(got, whole, rtol=1e-6, atol=1e-6)
    values = [case.truth(m, n) for n in names(m)]
    np.testing.assert_allclose(got, numpy_mlp_grads(values, X)[got.shape], rtol=1e-5, atol=1e-5)


def test_a_large_gradient_gather_is_refused_and_shards_still_come(case, monkeypatch):
    m = case.wrap()
    monkeypatch.setenv("MULTIPARAM_MAX_GATHER", "16")
    with pytest.raises(GatherError, match="MULTIPARAM_MAX_GATHER"):
        m.grad(X)
    got = m.grad(X, gather=False)
    assert {n: sum(b.size for _, b in rows) for n, rows in got.items()} == \
        {n: int(np.prod(p.shape)) for n, p in m.named_parameters().items()}
