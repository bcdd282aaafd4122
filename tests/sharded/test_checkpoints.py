"""Sharded checkpoints across meshes, world sizes and frameworks.

The issue's chain: an FSDP2 model on 2 processes saves its shards; JAX on 8
devices loads them; a JAX model on mesh (2, 4) saves again; unsharded
models of other frameworks load that.  Values are identical at every step
(truth: torch's ``full_tensor()`` gather, ``jax.device_get``), outputs equal
to 1e-5; each process reads and writes only its own shards."""
import json
import threading

import numpy as np
import pytest

import multiparam as mp
from multiparam.sharded_io import INDEX
from multiparam.sharding import ShardingError

from .kits import MESHES, PLAIN_BACKENDS, X, assert_loads, jax_named_case, plain_case
from .torch_workers import assert_loads_on_ranks, launch


@pytest.fixture(scope="module")
def fsdp_checkpoint(tmp_path_factory):
    """A checkpoint FSDP2 saved from 2 processes, and torch's own gather of its values."""
    out = tmp_path_factory.mktemp("fsdp")
    reports = launch("save_fsdp", out, path=str(out / "ckpt"))
    truth = {k: np.load(out / "truth.npz")[k] for k in np.load(out / "truth.npz").files}
    return out / "ckpt", truth, reports


def test_each_process_wrote_only_its_own_shards(fsdp_checkpoint):
    path, truth, reports = fsdp_checkpoint
    doc = json.loads((path / INDEX).read_text())
    assert doc["processes"] == 2
    files = {sl["file"] for t in doc["tensors"].values() for sl in t["slices"]}
    assert files == {"shards-00001-of-00002.safetensors", "shards-00002-of-00002.safetensors"}
    for name, t in doc["tensors"].items():
        assert tuple(t["shape"]) == truth[name].shape
    # each rank's file holds exactly its half of every tensor (FSDP2 shards dim 0 over 2)
    assert all(r["saved_bytes"][0] for r in reports)
    assert reports[0]["saved_bytes"][1] == reports[1]["saved_bytes"][1] == sum(v.nbytes for v in truth.values()) // 2


@pytest.mark.parametrize("mesh", list(MESHES))
def test_an_fsdp_checkpoint_loads_into_any_jax_mesh(fsdp_checkpoint, mesh):
    path, truth, _ = fsdp_checkpoint
    m, forward = jax_named_case(mesh)
    before = {n: p.sharding for n, p in m.named_parameters().items()}
    mp.load(m, path)
    for name, p in m.named_parameters().items():
        assert p.sharding == before[name]
        np.testing.assert_array_equal(np.asarray(p.value), truth[name])
    w0, b0, w1, b1 = (truth[k] for k in ("0.weight", "0.bias", "2.weight", "2.bias"))
    np.testing.assert_allclose(forward(X), np.maximum(X @ w0.T + b0, 0) @ w1.T + b1, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def jax_checkpoint(fsdp_checkpoint, tmp_path_factory):
    """The FSDP checkpoint, loaded into JAX on mesh (2, 4) and saved from there."""
    path, truth, _ = fsdp_checkpoint
    m, forward = jax_named_case("2x4")
    mp.load(m, path)
    out = tmp_path_factory.mktemp("jax") / "ckpt"
    mp.save(m, out)
    return out, truth, forward(X)


@pytest.mark.parametrize("label", PLAIN_BACKENDS)
def test_the_jax_checkpoint_loads_into_unsharded_models(jax_checkpoint, label):
    path, truth, jax_out = jax_checkpoint
    assert_loads(*plain_case(label), path, truth, jax_out)


def test_the_jax_checkpoint_loads_back_into_tensor_parallel_torch(jax_checkpoint, tmp_path):
    path, truth, _ = jax_checkpoint
    assert_loads_on_ranks(path, truth, tmp_path, "tp")


# -- world sizes that do not divide the shapes ---------------------------------------------------------
@pytest.fixture(scope="module")
def uneven(tmp_path_factory):
    out = tmp_path_factory.mktemp("uneven")
    return launch("uneven", out, folder=str(out))


@pytest.mark.parametrize("check", ["multiparam:values", "multiparam:placements", "dcp:values", "dcp:placements"])
def test_dims_the_world_size_does_not_divide_move_from_fsdp_to_tensor_parallel(uneven, check):
    """torch splits such dims unevenly (FSDP2 pads): there is nothing to
    refuse, and each rank's uneven block arrives bit for bit."""
    assert all(r[check][0] for r in uneven), [r[check] for r in uneven]


# -- bad input: a clear error, nothing written -----------------------------------------------------
def _damaged(jax_checkpoint, tmp_path, how):
    import shutil
    path, truth, _ = jax_checkpoint
    bad = tmp_path / "bad"
    shutil.copytree(path, bad)
    doc = json.loads((bad / INDEX).read_text())
    t = doc["tensors"]["0.weight"]
    if how == "missing file":
        (bad / t["slices"][0]["file"]).unlink()
    elif how == "overlap":
        t["slices"][1]["start"] = list(t["slices"][0]["start"])
        t["slices"][1]["stop"] = list(t["slices"][0]["stop"])
        t["slices"][1]["key"] = t["slices"][0]["key"]
        t["slices"][1]["file"] = t["slices"][0]["file"]
    elif how == "gap":
        del t["slices"][-1]
    elif how == "shape":
        t["shape"] = [t["shape"][0] * 2, t["shape"][1]]
    (bad / INDEX).write_text(json.dumps(doc))
    return bad


@pytest.mark.parametrize("how,error", [("missing file", ShardingError), ("overlap", ShardingError),
                                       ("gap", ShardingError), ("shape", ShardingError)])
def test_a_damaged_sharded_checkpoint_is_refused_and_nothing_written(jax_checkpoint, tmp_path, how, error):
    bad = _damaged(jax_checkpoint, tmp_path, how)
    m, _ = jax_named_case("8")
    before = {n: p.numpy() for n, p in m.named_parameters().items()}
    with pytest.raises((error, mp.ShapeError)):
        mp.load(m, bad)
    for name, p in m.named_parameters().items():
        np.testing.assert_array_equal(p.value, before[name])


# -- portable init does not depend on the mesh -------------------------------------------------------
def _reference(name, shape):
    """What portable init draws for a weight, in NumPy alone (block by block, unsharded)."""
    from multiparam.init import portable_values
    return np.asarray(portable_values(mp.init.normal(0, 0.5), shape, 11, name)).astype(np.float32)


@pytest.mark.parametrize("where", [f"mesh {k}" for k in MESHES] + [f"plain {b}" for b in PLAIN_BACKENDS])
def test_portable_init_is_identical_on_every_mesh_and_unsharded(where, fsdp_checkpoint):
    kind, key = where.split()
    m, _ = jax_named_case(key) if kind == "mesh" else plain_case(key)
    m.init(mp.init.normal(0, 0.5), seed=11)
    _, truth, _ = fsdp_checkpoint        # the same init under FSDP2 on 2 processes (torch's gather)
    for name in ("0.weight", "2.weight"):
        np.testing.assert_array_equal(np.asarray(m[name].value), _reference(name, m[name].shape))
        np.testing.assert_array_equal(truth[name], _reference(name, m[name].shape))


# -- memory: each process draws only its own shard --------------------------------------------------
SIZE = 4096     # a 64 MiB float32 weight, 32 MiB per rank under FSDP2 on 2


@pytest.fixture(scope="module")
def peaks(tmp_path_factory):
    out = tmp_path_factory.mktemp("peaks")
    return launch("peaks", out, size=SIZE, folder=str(out / "dcp"))


def test_portable_init_draws_only_this_process_shard(peaks):
    for report in peaks:
        shard = report["shard_bytes"][1]
        assert shard == SIZE * SIZE * 4 // 2
        assert report["identical"][0], "a shard differs from the unsharded draw"
        # one shard plus one draw block in flight (the whole weight would be 2 shards)
        assert report["init_peak"][1] < 1.1 * shard, report["init_peak"][1]


def test_a_dcp_checkpoint_round_trips_under_fsdp(peaks):
    assert all(r["dcp_loaded"][0] for r in peaks)


def test_a_dcp_load_reads_only_this_process_shard(peaks):
    """DCP reads each rank's block alone (the stored chunks that overlap
    it, straight into the parameter): the resident set grows by about one
    shard, never by the whole tensor (two shards here)."""
    for report in peaks:
        shard = report["shard_bytes"][1]
        assert report["dcp_load_growth"][1] < 1.25 * shard, report["dcp_load_growth"][1]


def test_sharded_save_and_load_hold_at_most_one_shard_in_flight(peaks):
    """multiparam's sharded format: a rank's save copies nothing of size
    (its blocks are written from the parameter's memory) and its load holds
    one shard in flight, never the whole tensor (two shards here)."""
    for report in peaks:
        shard = report["shard_bytes"][1]
        assert report["own_loaded"][0], "the sharded load did not bring the values back"
        assert report["own_save_peak"][1] < 0.1 * shard, report["own_save_peak"][1]
        assert report["own_load_peak"][1] < 1.1 * shard, report["own_load_peak"][1]


@pytest.fixture
def gathers(monkeypatch):
    """Each read of a sharded parameter's whole value (a gather into this
    process): how many values had been written anywhere before it
    (``written``), the thread that made it (``threads``), and a weak
    reference to the memory it returned (``memory``)."""
    import types
    import weakref

    from multiparam import param
    from tests.spies import count_writes
    seen = types.SimpleNamespace(written=[], memory=[], threads=set())
    plain_read = param.Param._read_canonical

    def read(self):
        out = plain_read(self)
        if self.is_sharded:
            seen.written.append(writes[0])
            seen.threads.add(threading.current_thread().name)
            root = out
            while isinstance(root.base, np.ndarray):
                root = root.base
            seen.memory.append(weakref.ref(root))
        return out

    monkeypatch.setattr(param.Param, "_read_canonical", read)
    writes = count_writes(monkeypatch)
    return seen


@pytest.mark.parametrize("ahead", [False, True], ids=["in-turn", "every-value-ahead"])
@pytest.mark.parametrize("label", PLAIN_BACKENDS)
def test_a_transfer_off_a_mesh_gathers_each_value_at_its_write(label, gathers, ahead, monkeypatch):
    """``mp.transfer`` from a sharded model gathers each value when it
    writes it, so it holds one gathered value at a time, never the whole
    model before the first write, and keeps none afterwards; the unsharded
    model then computes what the sharded one computes.  Still so where
    every value is large enough for the plan's workers (a gather is read in
    order on the writing thread: across processes it is a collective)."""
    import gc
    if ahead:
        from tests.spies import every_value_ahead
        every_value_ahead(monkeypatch)
    src, src_forward = jax_named_case("2x4")
    dst, dst_forward = plain_case(label)
    sharded = sum(p.is_sharded for p in src.named_parameters().values())
    assert sharded >= 3
    mp.transfer(src, dst)
    assert gathers.written == list(range(sharded))
    assert gathers.threads == {threading.current_thread().name}     # each at its turn, on the writing thread
    np.testing.assert_allclose(dst_forward(X), src_forward(X), rtol=1e-5, atol=1e-5)
    del dst, dst_forward
    gc.collect()
    assert not [ref for ref in gathers.memory if ref() is not None]    # the source keeps no gathered copy
