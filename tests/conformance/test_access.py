"""Parameter access, per backend: the chapter's 'Parameter Access' and
'Targeted Parameters' steps on a model built with multiparam.nn."""
import numpy as np
import pytest

import multiparam as mp

from .models import MLP_SHAPES, mlp, numpy_forward


@pytest.fixture
def m(backend, X):
    return mp.wrap(mlp(), sample_input=X)


def test_backend_and_native(m, backend, kit, X):
    assert m.backend == backend
    assert isinstance(m.native, kit.MODEL_TYPES)
    # the handle runs the framework's own model
    np.testing.assert_array_equal(kit.to_numpy(m(X)), kit.forward(m, X))


def test_layers_indexed_like_sequential(m):
    assert len(m) == 3
    assert [l.kind for l in m] == ["Dense", "ReLU", "Dense"]
    assert m[2].kind == "Dense" and m[-1].path == "2"
    assert set(m[2].params()) == {"weight", "bias"}
    assert m[1].params() == {}
    with pytest.raises(IndexError):
        m[3]


def test_names_and_shapes_are_canonical(m):
    assert list(m.named_parameters()) == list(MLP_SHAPES)
    assert m.shapes() == MLP_SHAPES
    for name, p in m.named_parameters().items():
        assert p.name == name
        assert p.shape == MLP_SHAPES[name]
        assert p.dtype == np.float32
        assert p.trainable


def test_named_parameters_maps_to_the_handles_every_access_returns(m):
    """``named_parameters()`` lists names before any handle exists; each
    Param is made when first asked for, and is the one ``m[name]``, the
    layer's ``params()`` and ``parameters()`` give from then on."""
    params = m.named_parameters()
    assert len(params) == len(MLP_SHAPES) and "0.weight" in params and "0.nothing" not in params
    first = params["2.weight"]
    assert m["2.weight"] is first and m[2].params()["weight"] is first
    assert [m[name] for name in params] == list(params.values()) == m.parameters()
    assert all(p is m[name] for name, p in params.items())
    assert dict(params) == {name: m[name] for name in MLP_SHAPES}
    with pytest.raises(KeyError):
        params["0.nothing"]
    with pytest.raises(TypeError):      # read-only: the index's own listing
        params["0.weight"] = first


def test_value_matches_native_idiom(m, kit):
    for name, p in m.named_parameters().items():
        np.testing.assert_array_equal(p.value, kit.read(m, name))


def test_targeted_param_and_layer_params_are_one(m):
    p = m["2.bias"]
    assert m[2].params()["bias"] is p
    assert m[2]["bias"] is p
    assert p.value.shape == (1,)


def test_native_object_is_the_frameworks(m, kit):
    p = m["2.bias"]
    np.testing.assert_array_equal(kit.to_numpy(p.native), kit.read(m, "2.bias"))


def test_forward_matches_numpy_reference(m, kit, X):
    out = kit.to_numpy(m(X))
    np.testing.assert_allclose(out, numpy_forward(m, X), rtol=1e-5, atol=1e-6)


def test_set_is_visible_to_native_forward(m, kit, X):
    rng = np.random.default_rng(1)
    for name, p in m.named_parameters().items():
        new = rng.normal(size=p.shape).astype(np.float32)
        native_before = p.native
        old = kit.to_numpy(native_before).copy()     # native layout
        p.set(new)
        np.testing.assert_array_equal(p.value, new)
        np.testing.assert_array_equal(kit.read(m, name), new)
        if kit.KEEPS_PARAMETER_OBJECTS:
            assert p.native is native_before       # the same Parameter / Variable, written in place
        else:
            # immutable arrays (Flax leaves): the handle holds a new leaf, the old one is untouched
            np.testing.assert_array_equal(kit.to_numpy(native_before), old)
    np.testing.assert_allclose(kit.forward(m, X), numpy_forward(m, X), rtol=1e-5, atol=1e-6)


def test_set_accepts_float64_and_framework_arrays(m):
    p = m["0.weight"]
    p.set(np.ones((8, 4)))                    # NumPy's float64 default
    assert p.dtype == np.float32 and p.value.sum() == 32
    b = m["0.bias"]
    b.set(np.full(8, 2.0))
    b.set(b.native)                           # the framework's own parameter / array type
    assert b.value.sum() == 16


def test_chapter_direct_edits(m, kit):
    # net[0].weight.data[:] += 1; net[0].weight.data[0, 0] = 42
    p = m["0.weight"]
    before = p.numpy()
    p[:] += 1
    p[0, 0] = 42
    expected = before + 1
    expected[0, 0] = 42
    np.testing.assert_array_equal(p.value, expected)
    np.testing.assert_array_equal(kit.read(m, "0.weight"), expected)
    p += 1
    np.testing.assert_array_equal(kit.read(m, "0.weight"), expected + 1)
    m["0.bias"] = np.zeros(8, dtype=np.float32)
    np.testing.assert_array_equal(kit.read(m, "0.bias"), np.zeros(8))


def test_value_is_read_only(m):
    p = m["0.weight"]
    with pytest.raises(ValueError):
        p.value[0, 0] = 1.0
    with pytest.raises(mp.ReadOnlyError):
        p.value = np.zeros((8, 4))


def test_grad_is_none_before_any_backward(m):
    assert m["2.weight"].grad is None
    assert all(p.grad is None for p in m.parameters())


def test_summary_lists_names_and_native_names(m):
    text = str(m.summary())
    for name, p in m.named_parameters().items():
        assert name in text and p.native_name in text
    html = m._repr_html_()
    assert html.startswith("<table") and "0.weight" in html
