"""Properties of random ``mp.nn`` architectures, on every backend.

Hypothesis draws architectures (:mod:`tests.architectures`: 1 to 6 layers
of Dense, Conv2d, Flatten, LayerNorm, BatchNorm, Embedding, LSTM and ReLU
where legal, nested Sequentials with numbered and named children, layers
used twice), and each test checks one property against a truth that does
not come from the adapter:

- the trainable count is the framework's own (the kit's ``count``);
- names, shapes, roles and ties are torch's ``state_dict`` of the spec,
  computed from the spec alone (:func:`tests.architectures.reference_state`);
- save, then load into a fresh build, gives back every value bit for bit,
  in canonical layout and in the framework's own listing;
- the framework's inference forward with values written in canonical
  layout is the NumPy forward of those values.

The budget is the hypothesis profile's (``tests/conftest.py``): ``ci`` by
default, a fixed and derandomised one; ``--hypothesis-profile=fuzz`` (or
``tox -e fuzz``) for a long random search.  A counterexample prints as the
code that builds it; paste it into a ``test_regression_*`` test below.
"""
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given

import multiparam as mp
from multiparam.layout import input_to_native, output_to_canonical
from tests.architectures import (Arch, architectures, assert_bitwise, random_values, reference_forward,
                                 tie_groups, unique)

#: tolerance of a float32 forward against the float64 reference
RTOL, ATOL = 1e-4, 1e-5


def build(arch: Arch, adapter) -> mp.Model:
    """The architecture built natively and wrapped, shapes inferred from its
    input given in the backend's own layout."""
    return mp.wrap(arch.spec, backend=adapter.name, sample_input=input_to_native(arch.x, adapter.channels_last))


def expected(arch: Arch, m: mp.Model):
    """torch's state_dict of the spec, without its ``num_batches_tracked``
    counters on a backend that keeps none (the one state only torch has)."""
    entries = arch.entries()
    if not any(p.role == "counter" for p in m.named_parameters().values()):
        entries = [e for e in entries if e.role != "counter"]
    return entries


def write(m: mp.Model, arch: Arch) -> dict:
    """Random values (by role) written into ``m`` in canonical layout; returns them."""
    values = random_values(expected(arch, m), arch.seed)
    m.load_state_dict(values)
    return values


# -- the properties, each a check of one architecture ---------------------------------------------------
def check_count(arch: Arch, adapter, kit):
    m = build(arch, adapter)
    assert m.num_parameters(trainable=True) == kit.count(m)


def check_names(arch: Arch, adapter):
    m = build(arch, adapter)
    entries = expected(arch, m)
    listed = [(n, p.shape, p.role, p.trainable) for n, p in m.named_parameters().items()]
    statistics = ("running_mean", "running_var", "counter")
    assert listed == [(e.name, e.shape, e.role, e.role not in statistics) for e in unique(entries)]
    assert m.ties() == tie_groups(entries)


def check_save_load(arch: Arch, adapter, kit):
    src = build(arch, adapter)
    values = write(src, arch)
    dst = build(arch, adapter)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.safetensors"
        mp.save(src, path)
        mp.load(dst, path)
    state = dst.state_dict()
    assert list(state) == list(values)
    assert_bitwise(state, values)
    # the framework's own listing of both models, in its order and native layout
    native, want = ([a for _, a in kit.native_arrays(m)] for m in (dst, src))
    assert len(native) == len(want)
    assert_bitwise(dict(enumerate(native)), dict(enumerate(want)))


def check_forward(arch: Arch, adapter, kit):
    m = build(arch, adapter)
    values = write(m, arch)
    y = m(input_to_native(arch.x, adapter.channels_last), train=False)
    y = output_to_canonical(kit.to_numpy(y), adapter.channels_last)
    np.testing.assert_allclose(y, reference_forward(arch.spec, values, arch.x), rtol=RTOL, atol=ATOL)


@given(arch=architectures())
def test_count_is_the_frameworks(arch, adapter, kit):
    check_count(arch, adapter, kit)


@given(arch=architectures())
def test_names_shapes_roles_and_ties_are_torchs(arch, adapter):
    check_names(arch, adapter)


@given(arch=architectures())
def test_save_then_load_into_a_fresh_build_is_bitwise(arch, adapter, kit):
    check_save_load(arch, adapter, kit)


@given(arch=architectures())
def test_inference_forward_is_the_numpy_reference(arch, adapter, kit):
    check_forward(arch, adapter, kit)


# -- counterexamples the search found, kept as regression tests ------------------------------------
def test_regression_count_of_a_model_without_parameters(adapter, kit):
    """Flax gives a model without parameters no ``params`` collection at
    all (the jax kit's count indexed it)."""
    check_count(Arch(mp.nn.Sequential(mp.nn.ReLU()), (1, 1), seed=0), adapter, kit)


def test_regression_dense_on_size_one_features_then_flatten(adapter, kit):
    """A Dense over features of size 1, ``(N, T, 1) -> (N, T, 3)``: the
    feature tracker placed the new features before T, so the Dense after
    the Flatten was read as fed a permuted map (jax and tensorflow: silently
    wrong outputs, 0.35).  Fixed in ``Labels.contract``."""
    spec = mp.nn.Sequential(mp.nn.Dense(units=3), mp.nn.Flatten(), mp.nn.Dense(units=1))
    check_forward(Arch(spec, (2, 3, 1), seed=0), adapter, kit)


def test_regression_dense_on_size_one_features_then_lstm(adapter, kit):
    """The same after a one-feature Embedding, an LSTM next: tensorflow
    refused its kernel (FeatureOrderError, "may be fed a flattened
    channels-last feature map")."""
    spec = mp.nn.Sequential(mp.nn.Embedding(num_embeddings=2, features=1), mp.nn.Dense(units=2),
                            mp.nn.LSTM(hidden_size=1))
    check_forward(Arch(spec, (1, 2), seed=0, vocab=2), adapter, kit)


def test_regression_reused_layer_beside_its_namesake(adapter):
    """A layer used twice, first as child "block 0" of an inner Sequential,
    then beside another child named "block 0" (jax: Flax adopted the shared
    Dense into the outer container under "block 0", NameInUseError; the jax
    builder now renames such a shared module)."""
    shared = mp.nn.Dense(units=3)
    spec = mp.nn.Sequential({"block 0": mp.nn.Sequential({"block 0": shared}), "1": shared})
    check_names(Arch(spec, (1, 3), seed=0), adapter)


def test_regression_named_sequential_after_a_named_sequential(adapter, kit):
    """A named Sequential after another: Keras could not give the first
    one's output shape (its default traces call()), and the feature tracker
    stopped there, refusing the LayerNorm after it (tensorflow:
    FeatureOrderError; found by ``tox -e fuzz``).  NamedSequential now
    computes its output shape through its children, as Keras' Sequential."""
    spec = mp.nn.Sequential({"block 0": mp.nn.Sequential({"block 0": mp.nn.Sequential(mp.nn.ReLU()),
                                                          "1": mp.nn.Dense(units=2, use_bias=False),
                                                          "2": mp.nn.ReLU()}),
                             "1": mp.nn.Sequential(mp.nn.LayerNorm(eps=1e-05), mp.nn.Flatten())})
    check_forward(Arch(spec, (1, 1, 1), seed=0), adapter, kit)


def test_regression_shared_layer_in_a_sequential_beside_its_second_use(adapter, kit):
    """A LayerNorm used twice, first inside a Sequential and then beside it
    (tensorflow: the Dense after it refused, FeatureOrderError; found by
    ``tox -e fuzz``)."""
    shared = mp.nn.LayerNorm(eps=1e-05)
    spec = mp.nn.Sequential({"block 0": mp.nn.Sequential({"block 0": mp.nn.Sequential(shared), "1": shared,
                                                          "2": mp.nn.Flatten()}),
                             "1": mp.nn.Sequential(mp.nn.Dense(units=1, use_bias=False), mp.nn.Flatten())})
    check_save_load(Arch(spec, (1, 1, 2), seed=0), adapter, kit)
