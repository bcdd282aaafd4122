"""Models written by the frameworks' own authors, not by us.

torch ``nn.TransformerEncoderLayer`` and ``nn.LSTM`` (and a CNN of torch's
own layers with BatchNorm buffers), ``keras.applications.MobileNetV2``,
Gluon ``model_zoo.vision.resnet18_v1``, and a Flax linen CNN with Conv,
BatchNorm, avg_pool and Dense: all built without downloading anything (the
kit's ``real_models()``; one test per model).  For each:

- collect-all agrees with the framework's own count and total (trainable
  scalars, every scalar the framework counts, and the exact float64 sum of
  every value);
- every native parameter appears exactly once in ``named_parameters``;
- ``mp.save`` then ``mp.load`` into a fresh instance of the architecture
  (another seed, so every value differs first) gives bit-identical
  parameters and bit-identical outputs of the native inference forward.

What "total" means per framework: torch's ``state_dict()`` (parameters and
persistent buffers: running statistics and the int64 step counter
``num_batches_tracked``, which travels on torch and is skipped with a note
elsewhere); Keras ``count_params()`` (moving
statistics included); Gluon ``collect_params()`` (running statistics
included); Flax every leaf of the variables pytree (``batch_stats`` too).
"""
import numpy as np
import pytest
from safetensors import safe_open

import multiparam as mp
from multiparam import dtypes
from multiparam.testing import exact_sum


def _wrap(case):
    return mp.wrap(case.model, sample_input=case.x, **case.options)


def _fresh(case, seed):
    model, options = case.fresh(seed)
    return mp.wrap(model, sample_input=case.x, **options)


def test_the_kit_lists_real_models(kit):
    assert list(kit.real_models()), f"{kit.__name__} lists no real models"


def test_counts_match_the_framework(real_model, kit, backend):
    m = _wrap(real_model)
    assert m.backend == backend
    assert m.num_parameters(trainable=True) == real_model.trainable
    assert m.num_parameters() == real_model.total
    # the exact sum of every value, canonical layout, against the framework's
    assert exact_sum(p.value for p in m.named_parameters().values()) == real_model.value_sum
    # and the framework's own count of the wrapped model, taken now
    assert kit.count(m) == real_model.trainable


def test_every_native_parameter_listed_once(real_model, kit):
    m = _wrap(real_model)
    native = [p.native_name for p in m.named_parameters().values()]
    assert len(native) == len(set(native))
    assert sorted(native) == sorted(real_model.names)
    # each handle holds the framework's own array of that name: its native
    # object is the one listed, and its canonical value holds the same numbers
    listed = dict(kit.native_arrays(m))
    for name, p in m.named_parameters().items():
        arr = listed[p.native_name]
        assert tuple(arr.shape) == tuple(p.native_shape), name
        np.testing.assert_array_equal(kit.to_numpy(p.native), arr, err_msg=name)
        np.testing.assert_array_equal(np.sort(p.value, axis=None), np.sort(arr, axis=None), err_msg=name)


def test_counters_travel_on_their_own_framework(real_model, tmp_path):
    """State a framework keeps beside its parameters that is not trained
    (torch's int64 ``num_batches_tracked``) is listed with role ``counter``,
    not trainable, and saved and loaded on that framework with its dtype."""
    if not real_model.not_parameters:
        pytest.skip("the framework keeps no state beside this model's parameters")
    m = _wrap(real_model)
    path = tmp_path / "real.safetensors"
    mp.save(m, path)
    with safe_open(str(path), framework="numpy") as f:
        saved = set(f.keys())
    dst = _fresh(real_model, 7)
    for name in real_model.not_parameters:
        p = m[name]
        assert p.role == "counter" and not p.trainable and p.dtype.kind in "iu"
        assert name in m.state_dict() and name in saved
        m[name].set(np.full(p.shape, 5, p.dtype))
    mp.save(m, path)
    mp.load(dst, path)
    for name in real_model.not_parameters:
        np.testing.assert_array_equal(dst[name].value, m[name].value)


def test_inference_mode_is_the_frameworks(real_model, kit):
    """``m(x, train=False)`` is the framework's own inference forward (Keras
    ``training=False``, torch ``eval()``, Flax ``train=False``), whatever
    mode the model was left in."""
    m = _wrap(real_model)
    got = m(real_model.x, train=False)
    want = kit.infer(m, real_model.x)
    first = got[0] if isinstance(got, (tuple, list)) else got
    np.testing.assert_allclose(kit.to_numpy(first), want[0], rtol=1e-5, atol=1e-6)


def test_save_load_into_a_fresh_instance_is_bit_identical(real_model, kit, tmp_path, work_ahead):
    src = _wrap(real_model)
    dst = _fresh(real_model, 12345)
    assert list(dst.named_parameters()) == list(src.named_parameters())
    before = {n: p.numpy() for n, p in dst.named_parameters().items()}
    differ = [n for n, p in src.named_parameters().items() if not np.array_equal(p.value, before[n])]
    # every parameter that is not a constant at init (BatchNorm gamma = 1, biases = 0) differs
    assert len(differ) >= len(before) // 2, (len(differ), len(before))

    path = tmp_path / "real.safetensors"
    mp.save(src, path)
    mp.load(dst, path)

    for name, p in src.named_parameters().items():
        assert np.array_equal(dst[name].value, p.value), name
    # the framework's own listings agree, in the framework's order
    ours, theirs = kit.native_arrays(dst), kit.native_arrays(src)
    assert len(ours) == len(theirs)
    for (n1, a1), (n2, a2) in zip(ours, theirs):
        assert a1.dtype == a2.dtype and np.array_equal(a1, a2), (n1, n2)
    y_src, y_dst = kit.infer(src, real_model.x), kit.infer(dst, real_model.x)
    assert len(y_src) == len(y_dst)
    for a, b in zip(y_src, y_dst):
        assert np.array_equal(a, b)


def test_loaded_values_do_not_alias_the_state_dict(real_model, work_ahead):
    """After load_state_dict the model owns its values: editing the dict it
    was loaded from changes nothing (JAX on CPU would otherwise alias large
    NumPy buffers: jnp.asarray is zero-copy there)."""
    src = _wrap(real_model)
    dst = _fresh(real_model, 999)
    sd = src.state_dict()
    dst.load_state_dict(sd)
    for arr in sd.values():
        arr[...] = 0
    for name, p in src.named_parameters().items():
        assert np.array_equal(dst[name].value, p.value), name


def test_a_bfloat16_checkpoint_loads_into_the_float32_model(real_model, tmp_path, work_ahead):
    """The checkpoints people hold are mostly bfloat16, the models they
    load them into often float32: this model's values, stored in bfloat16,
    load into a fresh float32 instance as NumPy casts them, bit for bit
    (each real layer's layout, composite and tie on the casting path), and
    integer state (torch's step counter) stays as it is."""
    bfloat16 = dtypes.dtype("bfloat16")
    src = _wrap(real_model)
    stored = {n: (v.astype(bfloat16) if dtypes.is_floating(v.dtype) else v) for n, v in src.state_dict().items()}
    path = tmp_path / "bfloat16.safetensors"
    mp.io.save_state(stored, path, backend=src.backend, ties=src.ties())
    dst = _fresh(real_model, 4321)
    mp.load(dst, path)
    for name, v in stored.items():
        p = dst[name]
        assert p.dtype == src[name].dtype, name
        np.testing.assert_array_equal(p.value, v.astype(p.dtype), err_msg=name)


@pytest.mark.parametrize("forward", [False, True], ids=["right-after-the-writes", "after-a-forward"])
def test_a_save_stores_the_values_just_written(real_model, kit, tmp_path, forward):
    """A save reads every value where the framework holds it, once the
    framework has finished with it: written just before (MXNet's engine
    makes writes asynchronously, and a Gluon save reads its parameters'
    own memory), or used by a forward since (MKL-DNN keeps a Gluon
    convolution's weight in a layout of its own after one).  The file holds
    the values written, bit for bit."""
    m = _fresh(real_model, 2468)          # not the shared instance: its values change here
    rng = np.random.default_rng(2468)
    # positive values: a running variance among them stays one
    written = {name: rng.uniform(0.5, 1.5, p.shape).astype(p.dtype)
               for name, p in m.named_parameters().items() if dtypes.is_floating(p.dtype)}
    m.load_state_dict(written, strict=False)
    if forward:
        kit.infer(m, real_model.x)
    path = tmp_path / "after.safetensors"
    mp.save(m, path)
    with safe_open(str(path), "numpy") as f:
        assert set(written) <= set(f.keys())
        for name, value in written.items():
            np.testing.assert_array_equal(f.get_tensor(name), value, err_msg=name)
