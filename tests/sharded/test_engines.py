"""The engines' own checkpoints (issue 12, item 5): an FSDP2 run's
``torch.distributed.checkpoint`` (DCP) loads into a JAX mesh; from there an
Orbax checkpoint; that loads back into torch, unsharded and under FSDP2.
Truth is the engines' own readers and gathers (``dcp.load``, Orbax's
``StandardCheckpointer.restore``, ``full_tensor()``, ``jax.device_get``)."""
import numpy as np
import pytest

import multiparam as mp
from multiparam.checkpoint import FileFormatError

from .kits import PLAIN_BACKENDS, X, assert_loads, jax_named_case, plain_case
from .torch_workers import assert_loads_on_ranks, launch, numpy_mlp


@pytest.fixture(scope="module")
def dcp_checkpoints(tmp_path_factory):
    """FSDP2 on 2 processes: a DCP folder torch wrote itself, one written by
    ``mp.save(format="dcp")``, and torch's own gather of the values."""
    out = tmp_path_factory.mktemp("dcp")
    launch("save_dcp", out, native=str(out / "native"), ours=str(out / "ours"))
    truth = {k: np.load(out / "truth.npz")[k] for k in np.load(out / "truth.npz").files}
    return out / "native", out / "ours", truth


def dcp_read(path, truth):
    """DCP's own reader: ``dcp.load`` into plain tensors of the truth's shapes."""
    import torch
    import torch.distributed.checkpoint as dcp
    sd = {k: torch.empty(v.shape, dtype=torch.float32) for k, v in truth.items()}
    dcp.load(sd, storage_reader=dcp.FileSystemReader(str(path)), no_dist=True)
    return {k: v.numpy() for k, v in sd.items()}


def test_mp_save_writes_a_dcp_checkpoint_dcp_reads(dcp_checkpoints):
    _, ours, truth = dcp_checkpoints
    got = dcp_read(ours, truth)
    for name, v in truth.items():
        np.testing.assert_array_equal(got[name], v)


@pytest.mark.parametrize("which", ["native", "ours"])
def test_an_fsdp_dcp_checkpoint_loads_into_a_jax_mesh(dcp_checkpoints, which):
    native, ours, truth = dcp_checkpoints
    m, forward = jax_named_case("2x4")
    before = {n: p.sharding for n, p in m.named_parameters().items()}
    mp.load(m, native if which == "native" else ours)
    for name, p in m.named_parameters().items():
        assert p.sharding == before[name]
        np.testing.assert_array_equal(np.asarray(p.value), truth[name])
    np.testing.assert_allclose(forward(X), numpy_mlp(truth, X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("which", ["native", "ours"])
@pytest.mark.parametrize("kind", ["tp", "fsdp"])
def test_an_fsdp_dcp_checkpoint_loads_into_sharded_torch(dcp_checkpoints, tmp_path, which, kind):
    """Each rank reads its own blocks of the FSDP2 (dim 0) chunks: tensor
    parallelism splits the second weight by columns, so its blocks cut
    across both stored chunks; placements are kept."""
    native, ours, truth = dcp_checkpoints
    assert_loads_on_ranks(native if which == "native" else ours, truth, tmp_path, kind)


@pytest.mark.parametrize("label", PLAIN_BACKENDS)
def test_an_fsdp_dcp_checkpoint_loads_into_unsharded_models(dcp_checkpoints, label):
    native, _, truth = dcp_checkpoints
    assert_loads(*plain_case(label), native, truth, numpy_mlp(truth, X))


@pytest.fixture(scope="module")
def orbax_checkpoint(dcp_checkpoints, tmp_path_factory):
    """The FSDP run's DCP checkpoint in JAX on mesh (2, 4), saved from there with Orbax."""
    native, _, truth = dcp_checkpoints
    m, forward = jax_named_case("2x4")
    mp.load(m, native)
    path = mp.save(m, tmp_path_factory.mktemp("orbax") / "ckpt", format="orbax")
    return path, truth, forward(X)


def test_orbax_reads_what_mp_saved_by_canonical_name(orbax_checkpoint):
    import orbax.checkpoint as ocp
    path, truth, _ = orbax_checkpoint
    got = ocp.StandardCheckpointer().restore(path)
    assert set(got) == set(truth)
    for name, v in truth.items():
        np.testing.assert_array_equal(np.asarray(got[name]), v)


@pytest.mark.parametrize("where", [f"plain {b}" for b in PLAIN_BACKENDS] + ["mesh 4x2"])
def test_the_orbax_checkpoint_loads_anywhere(orbax_checkpoint, where):
    path, truth, jax_out = orbax_checkpoint
    kind, key = where.split()
    assert_loads(*(plain_case(key) if kind == "plain" else jax_named_case(key)), path, truth, jax_out)


@pytest.mark.parametrize("kind", ["fsdp", "tp"])
def test_the_orbax_checkpoint_loads_back_into_sharded_torch(orbax_checkpoint, tmp_path, kind):
    path, truth, _ = orbax_checkpoint
    assert_loads_on_ranks(path, truth, tmp_path, kind)


def test_a_jax_model_saves_dcp_torch_reads(orbax_checkpoint, tmp_path):
    path, truth, _ = orbax_checkpoint
    m, _ = jax_named_case("8")
    mp.load(m, path)
    mp.save(m, tmp_path / "dcp", format="dcp")
    got = dcp_read(tmp_path / "dcp", truth)
    for name, v in truth.items():
        np.testing.assert_array_equal(got[name], v)


# -- bad input: a clear error, nothing written ---------------------------------------------------
def _corrupt_metadata(folder):
    (folder / ".metadata").write_bytes(b"not DCP metadata")


def _corrupt_orbax(folder):
    import shutil
    for f in ("_METADATA", "_CHECKPOINT_METADATA"):
        if (folder / f).exists():
            (folder / f).write_text("{not json")
    shutil.rmtree(folder / "d", ignore_errors=True)


@pytest.mark.parametrize("damage", [_corrupt_metadata, _corrupt_orbax], ids=["dcp", "orbax"])
def test_an_unreadable_engine_checkpoint_is_refused_and_nothing_written(dcp_checkpoints, orbax_checkpoint,
                                                                       tmp_path, damage):
    import shutil
    source = dcp_checkpoints[0] if damage is _corrupt_metadata else orbax_checkpoint[0]
    bad = tmp_path / "bad"
    shutil.copytree(source, bad)
    damage(bad)
    m, _ = jax_named_case("8")
    before = {n: p.numpy() for n, p in m.named_parameters().items()}
    with pytest.raises(FileFormatError):
        mp.load(m, bad)
    for name, p in m.named_parameters().items():
        np.testing.assert_array_equal(p.value, before[name])


def _drop_a_chunk(folder):
    import pickle
    meta = pickle.loads((folder / ".metadata").read_bytes())    # torch's own Metadata, as DCP pickled it
    meta.state_dict_metadata["0.weight"].chunks.pop()
    (folder / ".metadata").write_bytes(pickle.dumps(meta))


def _drop_a_data_file(folder):
    sorted(folder.glob("*.distcp"))[-1].unlink()


@pytest.mark.parametrize("damage,says", [(_drop_a_chunk, "gap"), (_drop_a_data_file, "missing its data file")],
                         ids=["gap", "missing file"])
def test_a_damaged_dcp_checkpoint_is_refused_and_nothing_written(dcp_checkpoints, tmp_path, damage, says):
    """DCP fills what its stored chunks cover, from the files it finds, into
    the parameter itself: a chunk missing from the metadata, or a data file
    missing, is a ShardingError before anything is read."""
    import shutil
    from multiparam.sharding import ShardingError
    bad = tmp_path / "bad"
    shutil.copytree(dcp_checkpoints[0], bad)
    damage(bad)
    m, _ = plain_case("torch")
    before = {n: p.numpy() for n, p in m.named_parameters().items()}
    with pytest.raises(ShardingError, match=says):
        mp.load(m, bad)
    for name, p in m.named_parameters().items():
        np.testing.assert_array_equal(p.value, before[name])


def test_a_dcp_checkpoint_of_another_architecture_is_refused_and_nothing_written(dcp_checkpoints):
    native, _, _ = dcp_checkpoints
    m = mp.wrap(mp.nn.Sequential(mp.nn.Dense(17, in_features=8), mp.nn.ReLU(), mp.nn.Dense(4), backend="jax"))
    before = {n: p.numpy() for n, p in m.named_parameters().items()}
    with pytest.raises(mp.ShapeError):
        mp.load(m, native)
    for name, p in m.named_parameters().items():
        np.testing.assert_array_equal(p.value, before[name])


def test_an_unknown_format_is_refused(tmp_path):
    m, _ = plain_case("torch")
    with pytest.raises(ValueError, match="unknown checkpoint format"):
        mp.save(m, tmp_path / "x", format="npz")
    assert not (tmp_path / "x").exists()
