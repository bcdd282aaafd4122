"""Checkpoints as people hold them: the ecosystem's models (Hugging Face
``transformers`` built from tiny configs, random weights, nothing
downloaded) in every dtype the framework holds, checked against the
framework's own idioms from the kit:

- the canonical names are the framework's own state keys (PyTorch's
  ``state_dict``), each tie listed once;
- ``m.grad(inputs, loss="model")`` equals the framework's own backward of
  the model's own loss;
- a checkpoint the ecosystem writes (``save_pretrained``, one file and
  sharded) loads with ``mp.load`` into a fresh instance, bit for bit;
- a file ``mp.save`` writes loads with the framework's own loader
  (``load_state_dict(load_file(path), strict=False)``): nothing unexpected,
  missing keys only tied aliases, identical state once tied;
- ``m.init`` keeps norm scales at 1 and biases at 0, and draws weights
  stored (in, out) with the fans of their true axes.
"""
import numpy as np
import pytest

import multiparam as mp


def _same_state(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_names_are_the_frameworks_state_keys(checkpoint_model):
    net = checkpoint_model.model
    m = mp.wrap(net)
    state = checkpoint_model.state(net)
    aliases = {a for group in m.ties() for a in group[1:]}
    assert list(m.state_dict()) == [n for n in state if n not in aliases]
    assert set(m.named_parameters()) | aliases == set(state)
    for name, p in m.named_parameters().items():
        assert tuple(p.shape) == state[name].shape, name
        assert p.dtype.itemsize == state[name].dtype.itemsize, name


def test_loss_model_gradient_is_the_frameworks(checkpoint_model, kit, checkpoint_model_label):
    net, inputs = checkpoint_model.model, checkpoint_model.inputs
    m = mp.wrap(net)
    got = m.grad(dict(inputs), loss=kit.checkpoint_loss(checkpoint_model_label))
    want = checkpoint_model.loss_grads(net, inputs)
    assert set(want) <= set(got)
    for name in set(got) - set(want):     # not on the loss's path: the framework has no grad
        assert not np.any(got[name]), name
    for name, g in want.items():
        np.testing.assert_allclose(np.asarray(got[name], dtype=np.float32), g,
                                   atol=checkpoint_model.atol, rtol=1e-2, err_msg=name)


@pytest.mark.parametrize("max_shard_size", [None, "20KB"], ids=["one-file", "sharded"])
def test_the_ecosystems_checkpoint_loads_bit_for_bit(checkpoint_model, tmp_path, max_shard_size, work_ahead):
    src = checkpoint_model.model
    checkpoint_model.save_native(src, tmp_path, max_shard_size)
    dst = checkpoint_model.fresh(1)
    assert not all(np.array_equal(a, b) for a, b in zip(checkpoint_model.state(src).values(),
                                                        checkpoint_model.state(dst).values()))
    mp.load(dst, tmp_path)            # the folder: its index, or its one file
    _same_state(checkpoint_model.state(src), checkpoint_model.state(dst))


def test_mp_save_loads_with_the_frameworks_own_loader(checkpoint_model, tmp_path):
    src = checkpoint_model.model
    m = mp.wrap(src)
    path = tmp_path / "model.safetensors"
    mp.save(m, path)
    dst = checkpoint_model.fresh(2)
    missing, unexpected = checkpoint_model.load_native(dst, path)
    aliases = {a for group in m.ties() for a in group[1:]}
    assert unexpected == []
    assert set(missing) <= aliases
    _same_state(checkpoint_model.state(src), checkpoint_model.state(dst))


def test_mp_save_sharded_loads_back(checkpoint_model, tmp_path):
    src = checkpoint_model.model
    index = mp.save(src, tmp_path / "sharded", max_shard_size="10KB")
    assert index.name == "model.safetensors.index.json"
    dst = checkpoint_model.fresh(3)
    mp.load(dst, index)
    _same_state(checkpoint_model.state(src), checkpoint_model.state(dst))


def test_init_keeps_norm_scales_and_biases_and_reads_true_fans(checkpoint_model):
    m = mp.wrap(checkpoint_model.model)
    m.init(mp.init.normal(0, 0.02), seed=0)
    params = m.named_parameters()
    scales = [p for p in params.values() if p.role == "scale"]
    assert scales, "a transformer has norms"
    for p in scales:
        assert np.all(p.value.astype(np.float32) == 1), p.name
    for p in params.values():
        if p.role == "bias":
            assert np.all(p.value.astype(np.float32) == 0), p.name
    m.init(mp.init.kaiming_uniform(a=0), seed=0)       # on the whole model: no parameter refused
    for p in params.values():
        if p.role == "weight" and p.slot.fans_layout:
            fan_in = p.shape[0]                          # stored (in, out)
            bound = np.sqrt(6.0 / fan_in)
            v = p.value.astype(np.float32)
            assert np.abs(v).max() <= bound * 1.01 and np.abs(v).max() > 0.8 * bound, p.name
