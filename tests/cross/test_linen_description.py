"""A linen model's description is read from its variables pytree along the
module tree.  Whether a module object reports a submodule (an attribute, a
Sequential element, a traced call) or only the pytree names it (the
``@nn.compact`` and ``setup`` children of a model given ``variables=``
without a sample input), every leaf Flax holds is listed once, under its
pytree path and with its shape, and an empty subtree lists nothing:
checked against Flax's own flat listing, ``traverse_util.flatten_dict``."""
import jax
import jax.numpy as jnp
import pytest
from flax import linen as nn
from flax import traverse_util

import multiparam as mp

X = jnp.ones((2, 5))


class CompactMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(nn.relu(nn.Dense(4)(x)))


class Block(nn.Module):
    def setup(self):
        self.proj = nn.Dense(4)
        self.norm = nn.LayerNorm()

    def __call__(self, x):
        return self.norm(self.proj(x))


class BlockThenBatchNorm(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.BatchNorm(use_running_average=True)(Block()(x))


MODELS = {
    "compact children": CompactMLP,
    "setup children inside compact ones, batch_stats": BlockThenBatchNorm,
    "Sequential holding setup children": lambda: nn.Sequential([nn.Dense(4), nn.relu, Block(), nn.Dense(2)]),
}


def _with_empty_subtree(variables):
    params = dict(variables["params"])
    params["Unused_0"] = {}
    return {**variables, "params": params}


@pytest.mark.parametrize("traced", [False, True], ids=["variables only", "with a sample input"])
@pytest.mark.parametrize("empty", [False, True], ids=["", "an empty subtree"])
@pytest.mark.parametrize("model", MODELS)
def test_every_flax_leaf_is_listed_once_with_its_shape(model, empty, traced):
    module = MODELS[model]()
    variables = module.init(jax.random.PRNGKey(0), X)
    if empty:
        variables = _with_empty_subtree(variables)
    m = mp.wrap(module, variables=variables, **({"sample_input": X} if traced else {}))
    flax_leaves = traverse_util.flatten_dict(variables, sep="/")   # empty subtrees left out
    listed = [(p.native_name, p.native_shape) for p in m.named_parameters().values()]
    assert sorted(listed) == sorted((path, leaf.shape) for path, leaf in flax_leaves.items())
