"""The neutral spec is plain data: validated, named, printable."""
import pytest

import multiparam as mp


def test_numbered_and_named_children():
    seq = mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU())
    assert [k for k, _ in seq.children] == ["0", "1"]
    named = mp.nn.Sequential({"block 0": mp.nn.Dense(2), "block 1": mp.nn.Dense(3)})
    assert [k for k, _ in named.children] == ["block 0", "block 1"] and named.named
    built = mp.nn.Sequential()
    built.add(mp.nn.Dense(1), name="head")
    assert built.children[0][0] == "head"


def test_bad_specs_are_rejected():
    with pytest.raises(ValueError):
        mp.nn.Dense(0)
    with pytest.raises(ValueError):
        mp.nn.Dense(3, in_features=-1)
    with pytest.raises(TypeError, match="mp.wrap"):
        mp.nn.Sequential(object())
    seq = mp.nn.Sequential()
    seq.add(mp.nn.ReLU(), name="a")
    with pytest.raises(ValueError, match="duplicate"):
        seq.add(mp.nn.ReLU(), name="a")
    with pytest.raises(ValueError, match=r"'\.'"):
        seq.add(mp.nn.ReLU(), name="a.b")


def test_repr_reads_like_the_code():
    assert repr(mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU())) == "Sequential(Dense(units=8), ReLU())"
