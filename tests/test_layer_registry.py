"""mp.register_layer: roles and layouts of a user's layer class, checked
before anything is registered, found through the MRO by class or name."""
import pytest

import multiparam as mp
from multiparam import layer_registry


class Norm:
    pass


class SubNorm(Norm):
    pass


@pytest.fixture(autouse=True)
def _forget():
    yield
    for cls in (Norm, SubNorm, "some.lib.Proj"):
        mp.unregister_layer(cls)


def test_roles_and_layouts_by_attribute():
    mp.register_layer(Norm, weight="scale", bias="bias")
    kinds = layer_registry.lookup(Norm())
    assert kinds["weight"] == mp.ParamKind("scale") and kinds["bias"] == mp.ParamKind("bias")
    assert layer_registry.lookup(SubNorm) is kinds            # through the MRO
    mp.register_layer("some.lib.Proj", weight="dense_in_out")
    assert layer_registry.lookup(type("Proj", (), {"__module__": "some.lib"}))["weight"] == \
        mp.ParamKind("weight", "dense_in_out")


@pytest.mark.parametrize("bad", [dict(weight="sideways"), dict(weight=mp.ParamKind) , dict()])
def test_bad_declarations_register_nothing(bad):
    with pytest.raises((ValueError, TypeError)):
        mp.register_layer(Norm, **bad)
    assert layer_registry.lookup(Norm) is None


def test_unknown_tags_list_the_known_ones():
    with pytest.raises(ValueError, match="dense_in_out") as err:
        mp.register_layer(Norm, weight="sideways")
    assert "scale" in str(err.value)
    with pytest.raises(ValueError, match="known layouts"):
        mp.ParamKind("weight", "diagonal")


def test_a_class_is_named_by_object_or_qualified_name():
    with pytest.raises(ValueError, match="module.QualName"):
        mp.register_layer("Norm", weight="scale")
    with pytest.raises(TypeError):
        mp.register_layer(Norm(), weight="scale")
