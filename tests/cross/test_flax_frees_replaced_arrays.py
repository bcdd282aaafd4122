"""A write into a Flax model replaces JAX arrays (they are immutable): the
replaced array must be freed once nothing else holds it, not kept until the
garbage collector runs, or a transfer holds a second copy of the model."""
import gc
import weakref

import jax
import numpy as np
import pytest

import multiparam as mp


def _spec():
    return mp.nn.Sequential(*[mp.nn.Dense(32, in_features=32) for _ in range(4)])


@pytest.fixture
def described():
    """A torch source and a Flax destination, both described (their index
    made: a description's own garbage is not what is checked here), then
    the cyclic garbage collector off, so only reference counts free memory."""
    src = mp.wrap(_spec(), backend="torch")
    dst = mp.wrap(_spec(), backend="jax")
    src.named_parameters(), dst.named_parameters()
    gc.collect()
    gc.disable()
    try:
        yield src, dst
    finally:
        gc.enable()


@pytest.mark.parametrize("write", ["transfer", "load_state_dict"])
def test_replaced_arrays_are_freed_without_the_collector(write, described):
    src, dst = described
    replaced = [weakref.ref(leaf) for leaf in jax.tree_util.tree_leaves(dst.flax.variables)]
    if write == "transfer":
        mp.transfer(src, dst)
    else:
        dst.load_state_dict(src.state_dict())
    assert [r for r in replaced if r() is not None] == []
    for name, value in src.state_dict().items():
        np.testing.assert_array_equal(dst[name].value, value)
