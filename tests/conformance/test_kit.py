"""The backend's kit satisfies multiparam.testing.NativeKit and agrees with
NumPy: the suite trusts the kit, so the kit is checked too."""
import importlib
import types

import numpy as np
import pytest

import multiparam as mp
from multiparam.registry import all_backends
from multiparam.testing import (DEFAULT_KIT_MODULE, KIT_ATTRIBUTE, kit_module_name, kit_problems,
                                parse_kit_choices)

from .models import mlp, numpy_grads


def test_kit_satisfies_the_protocol(request, backend):
    name = kit_module_name(backend, parse_kit_choices(request.config.getoption("--kit")))
    assert kit_problems(importlib.import_module(name)) == []


def test_kit_lists_chapter_models(kit):
    labels = list(kit.chapter_models())
    assert labels and all(label and " " not in label for label in labels)


def test_kit_reads_the_values_it_is_given(kit, X):
    """read() and native_arrays() show a value written a moment ago."""
    m = mp.wrap(mlp(), sample_input=X)
    m["0.bias"].set(np.arange(8, dtype=np.float32))
    np.testing.assert_array_equal(kit.read(m, "0.bias"), np.arange(8))
    listed = dict(kit.native_arrays(m))
    np.testing.assert_array_equal(listed[m["0.bias"].native_name], np.arange(8))


def test_kit_count_and_grads_agree_with_numpy(kit, X):
    m = mp.wrap(mlp(), sample_input=X)
    assert kit.count(m) == 8 * 4 + 8 + 8 + 1
    ref = numpy_grads(m, X)
    for name, g in kit.grads(m, X).items():
        np.testing.assert_allclose(g, ref[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_the_kit_is_found_by_the_documented_rule(backend, monkeypatch):
    assert kit_module_name(backend) == DEFAULT_KIT_MODULE.format(backend=backend)
    # a third-party adapter package names its kit ...
    package = importlib.import_module(all_backends()[backend].module)
    monkeypatch.setattr(package, KIT_ATTRIBUTE, "their_package.kit", raising=False)
    assert kit_module_name(backend) == "their_package.kit"
    # ... and --kit NAME=module overrides both
    chosen = parse_kit_choices([f"{backend}=my.kit"])
    assert kit_module_name(backend, chosen) == "my.kit"
    with pytest.raises(ValueError, match="NAME=package.module"):
        parse_kit_choices([backend])


def test_kit_problems_say_what_is_missing(kit):
    broken = types.ModuleType("broken_kit")
    broken.__dict__.update(vars(kit))
    del broken.read
    broken.forward = "not a function"
    broken.KEEPS_NATIVE_GRAD = "yes"
    broken.MODEL_TYPES = ()
    assert sorted(kit_problems(broken)) == [
        "KEEPS_NATIVE_GRAD must be True or False, not 'yes'",
        "MODEL_TYPES must be a non-empty tuple of classes, not ()",
        "forward must be callable, not str",
        "read is missing",
    ]
