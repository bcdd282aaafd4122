"""Orbax checkpoints as Flax users write them (issue 12, item 5, the JAX
side): a block reads only its slice of a stored array, and a Flax model's
own nested variables tree, saved by Orbax's ``StandardCheckpointer``,
loads into a sharded Flax model by its own variable paths.  Truth is
Orbax's own save and restore, ``jax.device_get`` of the model's own
variables and their ``NamedSharding``, NumPy, and the jitted forward."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import multiparam as mp

from .kits import X, jax_case, plain_case

#: the large-ish leaf of the slice test: (4096, 4096) float32, 64 MiB, saved over 8 devices by rows
BIG, PIECES = 4096, 8
REPO = Path(__file__).resolve().parents[2]


def orbax_save(path, tree):
    """Orbax's own save, as a Flax user writes a checkpoint."""
    import orbax.checkpoint as ocp
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, tree, force=True)
    checkpointer.wait_until_finished()
    return path


# -- 1. a block reads only its slice -------------------------------------------------------------
@pytest.fixture(scope="module")
def big_checkpoint(tmp_path_factory):
    """A (4096, 4096) float32 jax.Array sharded by rows over 8 devices,
    saved by Orbax (so stored in 8 chunks of 512 rows), and its NumPy truth."""
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    out = tmp_path_factory.mktemp("big")
    truth = np.random.default_rng(7).standard_normal((BIG, BIG)).astype(np.float32)
    np.save(out / "truth.npy", truth)
    mesh = Mesh(np.array(jax.devices()[:PIECES]), ("fsdp",))
    orbax_save(out / "ckpt", {"w": jax.device_put(truth, NamedSharding(mesh, P("fsdp", None)))})
    return out


def probe(folder: str, start: int, stop: int) -> dict:
    """Run in a fresh process (nothing freed earlier to reuse): the
    resident-set growth of reading rows [start, stop) of ``w`` through
    ``mp``'s Orbax Blocks, then of Orbax's own whole restore (the control:
    the measurement sees a whole leaf); whether the block equals NumPy's."""
    import orbax.checkpoint as ocp
    from multiparam import engine_io
    from tests.sharded.torch_workers import _reset_hwm, _vm_hwm
    blocks = engine_io.open_engine(Path(folder) / "ckpt")["w"]
    _reset_hwm()
    base = _vm_hwm()
    block = blocks.block((slice(start, stop), slice(0, BIG)))
    block_growth = _vm_hwm() - base
    _reset_hwm()
    base = _vm_hwm()
    whole = ocp.StandardCheckpointer().restore(Path(folder) / "ckpt")["w"]
    whole_growth = _vm_hwm() - base
    del whole
    truth = np.load(Path(folder) / "truth.npy", mmap_mode="r")
    return {"block": block_growth, "whole": whole_growth, "equal": bool(np.array_equal(block, truth[start:stop])),
            "shape": list(block.shape)}


def test_a_block_of_a_large_orbax_leaf_reads_only_its_slice(big_checkpoint):
    rows = BIG // PIECES
    code = (f"import json, sys; from tests.sharded.test_orbax_native import probe; "
            f"print(json.dumps(probe({str(big_checkpoint)!r}, {rows}, {2 * rows})))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    leaf, block = BIG * BIG * 4, rows * BIG * 4
    print(f"\nresident-set growth reading one {block >> 20} MiB block of a {leaf >> 20} MiB leaf: "
          f"{got['block'] / 2**20:.1f} MiB; Orbax's whole restore: {got['whole'] / 2**20:.1f} MiB")
    assert got["equal"] and got["shape"] == [rows, BIG]
    assert got["whole"] >= leaf               # the control: a whole leaf shows
    assert got["block"] < leaf // 2           # about the block (stored chunk and its decode), not the leaf


# -- 2. a Flax user's own tree ----------------------------------------------------------------------
def flax_tree(label, case, m, boxed):
    """The model's own variables as a Flax user hands them to Orbax:
    linen's ``variables`` (``nn.Partitioned`` boxes) or NNX's
    ``nnx.state(model)``; ``boxed=False``: the plain arrays
    (``nn.unbox``, ``nnx.to_pure_dict``)."""
    if label.startswith("linen"):
        from flax import linen as nn
        tree = m.flax.variables
        return tree if boxed else nn.unbox(tree)
    from flax import nnx
    state = nnx.state(case.model)
    return state if boxed else nnx.to_pure_dict(state)


def native_leaves(label, case, m):
    """``{path: (NumPy value by jax.device_get, its sharding)}`` of the
    model's own unboxed variables, in Flax's layout."""
    import jax
    tree = flax_tree(label, case, m, boxed=False)
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(path): (np.asarray(jax.device_get(v)), v.sharding) for path, v in flat}


@pytest.fixture(scope="module", params=["linen-2x4", "nnx-2x4"])
def flax_checkpoint(request, tmp_path_factory):
    """Flax's own Orbax checkpoint of a sharded model, boxed and plain,
    its variables (NumPy) and its jitted forward of ``X``."""
    label = request.param
    case = jax_case(label)
    m = case.wrap()
    out = tmp_path_factory.mktemp(label)
    paths = {boxed: orbax_save(out / f"boxed-{boxed}", flax_tree(label, case, m, boxed)) for boxed in (True, False)}
    values = {k: v for k, (v, _) in native_leaves(label, case, m).items()}
    return label, paths, values, case.forward(m, X)


def fresh(label, mesh):
    """The same Flax model on ``mesh``, its values redrawn (so a load must write them)."""
    case = jax_case(f"{label.split('-')[0]}-{mesh}")
    m = case.wrap()
    m.init("normal", seed=1)
    return case, m


@pytest.mark.parametrize("mesh", ["4x2", "8"])
@pytest.mark.parametrize("boxed", [True, False], ids=["boxed", "plain"])
def test_a_flax_orbax_tree_loads_into_the_sharded_flax_model(flax_checkpoint, mesh, boxed):
    label, paths, values, out = flax_checkpoint
    case, m = fresh(label, mesh)
    before = native_leaves(label, case, m)
    assert any(not np.array_equal(before[k][0], v) for k, v in values.items())
    mp.load(m, paths[boxed])
    after = native_leaves(label, case, m)
    assert set(after) == set(values)
    for path, value in values.items():
        np.testing.assert_array_equal(after[path][0], value)
        assert after[path][1] == before[path][1], path          # the NamedSharding kept
    np.testing.assert_allclose(case.forward(m, X), out, rtol=1e-6, atol=1e-6)


# -- 3. mp.save(names="native"): the tree Flax's own restore reads --------------------------------
@pytest.mark.parametrize("label", ["linen-2x4", "nnx-4x2"])
def test_a_native_orbax_save_is_what_flax_restores(tmp_path, label):
    import jax
    import orbax.checkpoint as ocp
    case = jax_case(label)
    m = case.wrap()
    m.init("normal", seed=3)
    path = mp.save(m, tmp_path / "native", format="orbax", names="native")
    tree = flax_tree(label, case, m, boxed=True)
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), tree)
    restored = ocp.StandardCheckpointer().restore(path, abstract)
    want, _ = jax.tree_util.tree_flatten_with_path(tree)
    got = dict(jax.tree_util.tree_flatten_with_path(restored)[0])
    assert set(got) == {p for p, _ in want}
    for key, value in want:
        np.testing.assert_array_equal(np.asarray(jax.device_get(got[key])), np.asarray(jax.device_get(value)))
        assert got[key].sharding == value.sharding
    other, again = fresh(label, "8")
    mp.load(again, path)                      # and it loads back by native path, onto another mesh
    loaded = native_leaves(label, other, again)
    for key, (value, _) in native_leaves(label, case, m).items():
        np.testing.assert_array_equal(loaded[key][0], value)


def test_native_names_are_refused_where_there_is_no_native_tree(tmp_path):
    m, _ = plain_case("torch")
    with pytest.raises(ValueError, match="Flax model's own variables tree"):
        mp.save(m, tmp_path / "t", format="orbax", names="native")
    with pytest.raises(ValueError, match="canonical names only"):
        mp.save(m, tmp_path / "d", format="dcp", names="native")
    assert not list(tmp_path.iterdir())


# -- bad input: a clear error naming the path, nothing written --------------------------------------
def numpy_tree(tree):
    """A (State or dict) tree of arrays as nested dicts of NumPy arrays, to damage."""
    import jax
    if hasattr(tree, "items"):
        return {k: numpy_tree(v) for k, v in tree.items()}
    return np.asarray(jax.device_get(tree))


def layer(tree, i):
    """The i-th Dense/Linear layer's node in linen's or NNX's tree."""
    return tree["params"][f"Dense_{i}"] if "params" in tree else tree[f"l{i}"]


def _rename(tree):
    layer(tree, 0)["kernl"] = layer(tree, 0).pop("kernel")
    return ["kernl'", "did you mean", "0/kernel'"]


def _drop(tree):
    layer(tree, 1).pop("bias")
    return ["no array for", "1/bias'"]


def _reshape(tree):
    layer(tree, 1)["bias"] = np.zeros(5, np.float32)
    return ["1/bias' has shape (5,)", "the model has (4,)"]


@pytest.mark.parametrize("damage", [_rename, _drop, _reshape], ids=["unknown path", "missing path", "shape"])
@pytest.mark.parametrize("label", ["linen-8", "nnx-8"])
def test_a_tree_that_does_not_match_is_refused_and_nothing_written(tmp_path, label, damage):
    case, m = fresh(label, "8")
    tree = numpy_tree(flax_tree(label, case, m, boxed=False))
    said = damage(tree)
    path = orbax_save(tmp_path / "bad", tree)
    m.init("normal", seed=2)
    before = native_leaves(label, case, m)
    with pytest.raises(mp.LoadError) as caught:
        mp.load(m, path)
    for words in said:
        assert words in str(caught.value)
    after = native_leaves(label, case, m)
    for key, (value, sharding) in before.items():
        np.testing.assert_array_equal(after[key][0], value)
        assert after[key][1] == sharding


def test_a_flax_tree_into_another_framework_says_to_transfer(flax_checkpoint):
    _, paths, _, _ = flax_checkpoint
    m, _ = plain_case("torch")
    before = {n: p.numpy() for n, p in m.named_parameters().items()}
    with pytest.raises(mp.LoadError, match=r"mp\.transfer"):
        mp.load(m, paths[True])
    for name, p in m.named_parameters().items():
        np.testing.assert_array_equal(p.value, before[name])


# -- a linen tie: Flax's tree keeps the tied parameter's own leaf ----------------------------------
def tied_linen():
    """Two Dense(4) layers, the second tied to the first after
    construction (the handle refills ``b``'s leaves from ``a``'s)."""
    import jax
    import jax.numpy as jnp
    from flax import linen as nn

    class TwoDense(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(4, name="b")(nn.Dense(4, name="a")(x))

    net = TwoDense()
    sample = np.ones((2, 4), np.float32)
    m = mp.wrap(net, sample, variables=net.init(jax.random.PRNGKey(0), jnp.asarray(sample)))
    m.tie("b", "a")
    return m


@pytest.mark.parametrize("saver", ["flax", "multiparam"])
def test_a_tied_linen_models_own_tree_loads_back(tmp_path, saver):
    import jax
    source = tied_linen()
    source.init("normal", seed=4)
    if saver == "flax":
        path = orbax_save(tmp_path / "tied", jax.device_get(source.flax.variables))
    else:
        path = mp.save(source, tmp_path / "tied", format="orbax", names="native")
    target = tied_linen()
    target.init("normal", seed=5)
    mp.load(target, path)
    want = jax.device_get(source.flax.variables)["params"]
    got = jax.device_get(target.flax.variables)["params"]
    for layer_name in ("a", "b"):
        for leaf in ("kernel", "bias"):
            np.testing.assert_array_equal(got[layer_name][leaf], want["a"][leaf])   # b is a's, tied
    assert target.ties() == source.ties()


@pytest.mark.parametrize("label", ["linen-8", "nnx-8"])
def test_strict_false_loads_the_rest_and_reports_what_did_not_match(tmp_path, label):
    case, m = fresh(label, "8")
    tree = numpy_tree(flax_tree(label, case, m, boxed=False))
    bias = layer(tree, 1)["bias"].copy()
    _rename(tree)
    path = orbax_save(tmp_path / "renamed", tree)
    m.init("normal", seed=2)
    before = {n: p.numpy() for n, p in m.named_parameters().items()}
    got = mp.load(m, path, strict=False)
    unexpected, = got.unexpected_keys                 # the renamed path, as the tree has it
    assert unexpected.endswith("0/kernl")
    missing, = got.missing_keys                       # the parameter it no longer fills, canonical
    np.testing.assert_array_equal(m[missing].value, before[missing])           # left as it was
    stored = dict(native_leaves(label, case, m))
    np.testing.assert_array_equal(next(v for k, (v, _) in stored.items() if "1" in k and "bias" in k), bias)
