"""Collect-all, per backend: 'All Parameters at Once', nested blocks, regex."""
import numpy as np
import pytest

import multiparam as mp

from .models import (MLP_SHAPES, RGNET_SHAPES, SHARED_SHAPES, SHARED_TIES, mlp, numpy_forward,
                     rgnet, shared_net)


def test_mlp_count_matches_framework(backend, kit, X):
    m = mp.wrap(mlp(), sample_input=X)
    assert m.num_parameters() == 8 * 4 + 8 + 8 + 1 == 49
    assert m.num_parameters(trainable=True) == kit.count(m)


def test_gluon_style_regex_selection(X):
    m = mp.wrap(mlp(), sample_input=X)
    assert list(m.named_parameters(".*weight")) == ["0.weight", "2.weight"]
    assert list(m.named_parameters(r"0\..*")) == ["0.weight", "0.bias"]
    assert m.named_parameters("nothing") == {}


def test_layer_named_parameters_are_relative(X):
    m = mp.wrap(mlp(), sample_input=X)
    # print(*[(name, param.shape) for name, param in net[0].named_parameters()])
    assert {n: p.shape for n, p in m[0].named_parameters().items()} == {"weight": (8, 4), "bias": (8,)}


def test_rgnet_nested_names(kit, X):
    m = mp.wrap(rgnet(), sample_input=X)
    assert m.shapes() == RGNET_SHAPES
    assert list(m.shapes()) == list(RGNET_SHAPES)
    assert m.num_parameters(trainable=True) == kit.count(m) == sum(
        int(np.prod(s)) for s in RGNET_SHAPES.values())
    for name in RGNET_SHAPES:
        np.testing.assert_array_equal(m[name].value, kit.read(m, name))
    np.testing.assert_allclose(kit.to_numpy(m(X)), numpy_forward(m, X), rtol=1e-5, atol=1e-6)


def test_rgnet_deep_indexing(kit, X):
    m = mp.wrap(rgnet(), sample_input=X)
    # rgnet[0][1][0].bias.data
    layer = m[0][1][0]
    assert layer.kind == "Dense" and layer.path == "0.block 1.0"
    assert layer.params()["bias"] is m["0.block 1.0.bias"]
    np.testing.assert_array_equal(layer.params()["bias"].value, kit.read(m, "0.block 1.0.bias"))
    # a named child is reached by its name, by position and by its dotted path alike
    by_name, by_path = m[0]["block 1"], m["0.block 1"]
    assert by_name.path == by_path.path == "0.block 1"
    assert by_name.native is by_path.native is m[0][1].native
    assert by_name[0].params()["bias"] is m["0.block 1.0.bias"]
    assert [c.key for c in m[0]] == [f"block {i}" for i in range(4)]


def test_shared_layer_listed_once(kit, X):
    m = mp.wrap(shared_net(), sample_input=X)
    assert m.shapes() == SHARED_SHAPES
    assert m.ties() == SHARED_TIES
    assert m["4.weight"] is m["2.weight"]
    assert m.num_parameters(trainable=True) == kit.count(m)
    # the chapter's identity check: net[2].weight.data[0, 0] = 100
    m["2.weight"][0, 0] = 100
    assert m["4.weight"].value[0, 0] == 100
    assert kit.read(m, "4.weight")[0, 0] == 100
    np.testing.assert_allclose(kit.forward(m, X), numpy_forward(m, X), rtol=1e-5, atol=1e-5)


def test_regex_reaches_tied_alias(X):
    m = mp.wrap(shared_net(), sample_input=X)
    assert list(m.named_parameters(r"4\..*")) == ["4.weight", "4.bias"]
    assert m.named_parameters(r"4\..*")["4.weight"] is m["2.weight"]


def test_model_apply_visits_every_layer_once(X):
    m = mp.wrap(shared_net(), sample_input=X)
    seen = []
    m.apply(lambda layer: seen.append(layer.path))
    assert seen[-1] == ""                              # children before parents, root last
    assert seen.count("2") == 1                        # the shared layer once, like torch
    distinct = {id(layer.native) for layer in m.named_layers().values()}
    assert len(seen) == len(distinct)                  # every distinct native layer once
