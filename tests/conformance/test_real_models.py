"""Models written by the frameworks' own authors, not by us.

torch ``nn.TransformerEncoderLayer`` and ``nn.LSTM`` (and a CNN of torch's
own layers with BatchNorm buffers), ``keras.applications.MobileNetV2``,
Gluon ``model_zoo.vision.resnet18_v1``, and a Flax linen CNN with Conv,
BatchNorm, avg_pool and Dense: all built without downloading anything
(``kits/native_<backend>.py``, ``real_models()``).  For each:

- collect-all agrees with the framework's own count and total (trainable
  scalars, every scalar the framework counts, and the exact float64 sum of
  every value);
- every native parameter appears exactly once in ``named_parameters``;
- ``mp.save`` then ``mp.load`` into a fresh instance of the architecture
  (another seed, so every value differs first) gives bit-identical
  parameters and bit-identical outputs of the native inference forward.

What "total" means per framework: torch ``parameters()`` plus the running
statistics buffers (``num_batches_tracked``, an int64 step counter, is not a
parameter: neither side counts it); Keras ``count_params()`` (moving
statistics included); Gluon ``collect_params()`` (running statistics
included); Flax every leaf of the variables pytree (``batch_stats`` too).
"""
import numpy as np
import pytest

import multiparam as mp
from .kits import exact_sum

_CACHE = {}


@pytest.fixture
def real_models(backend, kit):
    """The kit's real models, built once per backend (MobileNetV2 takes seconds)."""
    if backend not in _CACHE:
        _CACHE[backend] = kit.real_models()
    return _CACHE[backend]


def _wrap(case):
    return mp.wrap(case.model, sample_input=case.x, **case.options)


def test_there_are_real_models(real_models, backend):
    assert real_models, f"the {backend} kit lists no real models"


def test_counts_match_the_framework(real_models, backend):
    for case in real_models:
        m = _wrap(case)
        assert m.backend == backend
        assert m.num_parameters(trainable=True) == case.trainable, case.label
        assert m.num_parameters() == case.total, case.label
        # the exact sum of every value, canonical layout, against the framework's
        assert exact_sum(p.value for p in m.named_parameters().values()) == case.value_sum, case.label
        # and the trainable count the adapter computes the framework's way
        assert m.adapter.native_count(m._state) == case.trainable, case.label


def test_every_native_parameter_listed_once(real_models, kit):
    for case in real_models:
        m = _wrap(case)
        native = [p.native_name for p in m.named_parameters().values()]
        assert len(native) == len(set(native)), case.label
        assert set(native) == set(case.names), case.label
        assert len(native) == len(case.names), case.label
        # each value is the framework's own array, by native name
        listed = dict(kit.native_arrays(m))
        for name, p in m.named_parameters().items():
            arr = listed[p.native_name]
            assert tuple(arr.shape) == tuple(p.native_shape), (case.label, name)
            np.testing.assert_array_equal(
                mp.layout.to_native(p.value, p._slot.layout), arr, err_msg=f"{case.label}: {name}")


def test_counters_are_not_parameters(real_models):
    """State a framework keeps beside its parameters that is not one (torch's
    int64 num_batches_tracked) is not listed, counted, saved or moved."""
    for case in real_models:
        m = _wrap(case)
        native = {p.native_name for p in m.named_parameters().values()}
        for name in case.not_parameters:
            assert name not in native, (case.label, name)
            assert name.rpartition(".")[0] + ".running_mean" in native, (case.label, name)


def test_save_load_into_a_fresh_instance_is_bit_identical(real_models, kit, tmp_path):
    for i, case in enumerate(real_models):
        src = _wrap(case)
        model, options = case.fresh(12345)
        dst = mp.wrap(model, sample_input=case.x, **options)
        assert list(dst.named_parameters()) == list(src.named_parameters()), case.label
        before = {n: p.numpy() for n, p in dst.named_parameters().items()}
        differ = [n for n, p in src.named_parameters().items() if not np.array_equal(p.value, before[n])]
        # every parameter that is not a constant at init (BatchNorm gamma = 1, biases = 0) differs
        assert len(differ) >= len(before) // 2, (case.label, len(differ), len(before))

        path = tmp_path / f"real{i}.safetensors"
        mp.save(src, path)
        mp.load(dst, path)

        for name, p in src.named_parameters().items():
            assert np.array_equal(dst[name].value, p.value), (case.label, name)
        # the framework's own listings agree, in the framework's order
        ours, theirs = kit.native_arrays(dst), kit.native_arrays(src)
        assert len(ours) == len(theirs)
        for (n1, a1), (n2, a2) in zip(ours, theirs):
            assert a1.dtype == a2.dtype and np.array_equal(a1, a2), (case.label, n1, n2)
        y_src, y_dst = kit.infer(src, case.x), kit.infer(dst, case.x)
        assert len(y_src) == len(y_dst)
        for a, b in zip(y_src, y_dst):
            assert np.array_equal(a, b), case.label


def test_loaded_values_do_not_alias_the_state_dict(real_models):
    """After load_state_dict the model owns its values: editing the dict it
    was loaded from changes nothing (JAX on CPU would otherwise alias large
    NumPy buffers: jnp.asarray is zero-copy there)."""
    case = real_models[0]
    src = _wrap(case)
    model, options = case.fresh(999)
    dst = mp.wrap(model, sample_input=case.x, **options)
    sd = src.state_dict()
    dst.load_state_dict(sd)
    for arr in sd.values():
        arr[...] = 0
    for name, p in src.named_parameters().items():
        assert np.array_equal(dst[name].value, p.value), (case.label, name)
