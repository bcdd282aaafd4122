"""The chapter's JAX/Flax idioms (the jax tab of seed 001).

Flax keeps parameters in a pytree outside the model; the kit reads the
handle's pytree (``m.flax.variables``) with plain dictionary indexing, as the
chapter does with ``params['params']['layers_2']['bias']``.
"""
import math

import flax
import jax
import numpy as np
from flax import linen as nn
from flax import nnx
from jax import numpy as jnp

from ..models import MLP_SHAPES
from . import Distribution, NativeCase, NativeCNN, RealModel, exact_sum

# -- facts about JAX/Flax --------------------------------------------------------------------
MODEL_TYPES = (nn.Module, nnx.Module)
KEEPS_NATIVE_GRAD = False         # jax.grad returns gradients; nothing is kept on a parameter
KEEPS_PARAMETER_OBJECTS = False   # linen (what multiparam.nn builds): JAX arrays are immutable,
                                  # so a write puts a new leaf in the variables pytree
BN_MOMENTUM_WEIGHS_OLD = True     # ra = momentum * ra + (1 - momentum) * batch

# lecun_normal draws a normal truncated at 2 std, rescaled so the variance is 1/fan_in:
# this is the std of the untruncated normal it starts from, over sqrt(1/fan_in)
_TRUNCATION_RESCALE = .87962566103423978


def dense_default(fan_in, fan_out):
    # nn.Dense: kernel_init=lecun_normal(), bias_init=zeros
    s = math.sqrt(1 / fan_in) / _TRUNCATION_RESCALE
    return Distribution.truncated_normal(0.0, s, -2 * s, 2 * s), Distribution.constant(0.0)


def _path(module, keys):
    """Pytree keys of a canonical layer path, by Flax's naming rules:
    Sequential children are layers_<i> (a module reused keeps its first
    position's name); multiparam's named blocks keep their own names."""
    out = []
    for key in keys:
        names = getattr(module, "names", None)
        if names is not None:            # multiparam's NamedSequential: children keep their names
            child = module.layers[names.index(key)]
            out.append(key)
        else:
            child = module.layers[int(key)]
            first = next(j for j, l in enumerate(module.layers) if l is child)
            out.append(f"layers_{first}")
        module = child
    return out


def _nnx_layer(model, keys):
    for key in keys:
        model = model.layers[int(key)]      # nnx.Sequential keeps a list
    return model


def read(m, name):
    *keys, role = name.split(".")
    if isinstance(m.native, nnx.Module):     # NNX: parameters live on the module, mutable
        layer = _nnx_layer(m.native, keys)
        if role == "weight":
            return np.asarray(layer.kernel[...]).T.copy()
        return np.asarray(getattr(layer, role)[...]).copy()
    tree = m.flax.variables["params"]
    for k in _path(m.native, keys):
        tree = tree[k]
    if role == "weight":
        return np.asarray(tree["kernel"]).T.copy()     # Flax kernels are (in, out)
    return np.asarray(tree[role]).copy()


def forward(m, x):
    if isinstance(m.native, nnx.Module):
        return np.asarray(m.native(jnp.asarray(x)))
    return np.asarray(m.native.apply(m.flax.variables, jnp.asarray(x)))


def to_numpy(value):
    if isinstance(value, nnx.Variable):
        return np.asarray(value[...])
    return np.asarray(value)


def count(m):
    if isinstance(m.native, nnx.Module):
        return sum(x.size for x in jax.tree_util.tree_leaves(nnx.state(m.native, nnx.Param)))
    # the pytree an optax loop updates: after m.tie, each parameter once
    return sum(x.size for x in jax.tree_util.tree_leaves(m.flax.unique_variables()["params"]))


def grads(m, x):
    # the documented loop: differentiate the de-duplicated pytree through
    # expand_variables, so a tie made with m.tie gets the sum of its uses
    unique = m.flax.unique_variables()
    g = jax.grad(lambda p: m.native.apply(m.flax.expand_variables({**unique, "params": p}),
                                          jnp.asarray(x)).sum())(unique["params"])
    out = {}
    for name in m.named_parameters():
        *keys, role = name.split(".")
        tree = g
        for k in _path(m.native, keys):
            tree = tree[k]
        out[name] = np.asarray(tree["kernel"]).T if role == "weight" else np.asarray(tree[role])
    return out


def backward(m, x):
    """Flax keeps no gradient on a parameter (``KEEPS_NATIVE_GRAD`` is False):
    ``jax.grad`` returns them, so a backward leaves nothing behind."""


def native_grads(m):
    return {name: None for name in m.named_parameters()}


def _chapter_input():
    return jax.random.uniform(jax.random.PRNGKey(0), (2, 4))


def mlp():
    """d2l 001: nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(1)]), initialised by net.init."""
    net = nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(1)])
    params = net.init(jax.random.PRNGKey(1), _chapter_input())
    return NativeCase(net, None, MLP_SHAPES, options={"variables": params})


def shared():
    """d2l 001: one nn.Dense used at positions 2 and 4; the pytree holds it once."""
    layer = nn.Dense(8)
    net = nn.Sequential([nn.Dense(8), nn.relu, layer, nn.relu, layer, nn.relu, nn.Dense(1)])
    params = net.init(jax.random.PRNGKey(2), _chapter_input())
    assert len(params["params"]) == 3          # the chapter's check
    return NativeCase(net, None, {"0.weight": (8, 4), "0.bias": (8,), "2.weight": (8, 8), "2.bias": (8,),
                                  "6.weight": (1, 8), "6.bias": (1,)},
                      ties=[("2.weight", "4.weight"), ("2.bias", "4.bias")], options={"variables": params})


def rgnet():
    """Nested Sequentials, initialised by mp.wrap from a sample input."""
    def block1():
        return nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(4), nn.relu])

    def block2():
        return nn.Sequential([block1() for _ in range(4)])

    shapes = {}
    for i in range(4):
        shapes.update({f"0.{i}.0.weight": (8, 4), f"0.{i}.0.bias": (8,),
                       f"0.{i}.2.weight": (4, 8), f"0.{i}.2.bias": (4,)})
    shapes.update({"1.weight": (1, 4), "1.bias": (1,)})
    return NativeCase(nn.Sequential([block2(), nn.Dense(1)]), _chapter_input(), shapes)


def nnx_mlp():
    """The MLP in Flax NNX: parameters live on the module."""
    rngs = nnx.Rngs(0)
    model = nnx.Sequential(nnx.Linear(4, 8, rngs=rngs), nnx.relu, nnx.Linear(8, 1, rngs=rngs))
    return NativeCase(model, None, MLP_SHAPES)


def nnx_shared():
    """One nnx.Linear used at positions 2 and 4."""
    rngs = nnx.Rngs(0)
    layer = nnx.Linear(8, 8, rngs=rngs)
    model = nnx.Sequential(nnx.Linear(4, 8, rngs=rngs), nnx.relu, layer, nnx.relu, layer)
    return NativeCase(model, None, {"0.weight": (8, 4), "0.bias": (8,), "2.weight": (8, 8), "2.bias": (8,)},
                      ties=[("2.weight", "4.weight"), ("2.bias", "4.bias")])


def chapter_models():
    return {"mlp": mlp, "shared": shared, "rgnet": rgnet, "nnx-mlp": nnx_mlp, "nnx-shared": nnx_shared}


def sgd_step(m, x, lr):
    """One optax SGD step on sum(outputs), on the de-duplicated pytree so the
    tie survives (the documented optax loop); NNX: nnx.Optimizer."""
    import optax

    if isinstance(m.native, nnx.Module):
        opt = nnx.Optimizer(m.native, optax.sgd(lr), wrt=nnx.Param)
        grads = nnx.grad(lambda model: model(jnp.asarray(x)).sum())(m.native)
        opt.update(m.native, grads)
        return
    unique = m.flax.unique_variables()
    tx = optax.sgd(lr)
    opt_state = tx.init(unique["params"])

    def loss(p):
        return m.native.apply(m.flax.expand_variables({**unique, "params": p}), jnp.asarray(x)).sum()

    g = jax.grad(loss)(unique["params"])
    updates, _ = tx.update(g, opt_state)
    new = optax.apply_updates(unique["params"], updates)
    m.flax.variables = m.flax.expand_variables({**unique, "params": new})


# -- real models: Flax's own layers, written natively -------------------------------------
class CNN(nn.Module):
    """A small linen CNN as the Flax examples write one (inference mode)."""

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(features=8, kernel_size=(3, 3))(x)
        x = nn.BatchNorm(use_running_average=True)(x)
        x = nn.relu(x)
        x = nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
        x = nn.Conv(features=16, kernel_size=(3, 3))(x)
        x = nn.BatchNorm(use_running_average=True)(x)
        x = nn.relu(x)
        x = nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        return nn.Dense(features=10)(x)


def native_arrays(m):
    if isinstance(m.native, nnx.Module):       # NNX: the module's Param state, flattened
        return [("/".join(map(str, path)), np.asarray(v[...]))
                for path, v in nnx.to_flat_state(nnx.state(m.native, nnx.Param))]
    # linen: the variables pytree flattened, as flax.traverse_util.flatten_dict lists it
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(m.flax.variables), sep="/")
    return [(k, np.asarray(v)) for k, v in flat.items()]


def infer(m, x):
    return [np.asarray(m.native.apply(m.flax.variables, x))]


def linen_cnn():
    """A linen CNN with Conv, BatchNorm, relu, avg_pool and Dense, as the Flax examples write one."""
    x = jax.random.uniform(jax.random.PRNGKey(7), (2, 16, 16, 3))

    def fresh(seed):
        net = CNN()
        variables = net.init(jax.random.PRNGKey(seed), x)
        k1, k2 = jax.random.split(jax.random.PRNGKey(seed + 1000))
        stats = variables["batch_stats"]   # running statistics as training would leave them
        stats = jax.tree_util.tree_map_with_path(
            lambda p, v: (jax.random.normal(k1, v.shape, v.dtype) if p[-1].key == "mean"
                          else jax.random.uniform(k2, v.shape, v.dtype, 0.5, 2.0)), stats)
        variables = {**variables, "batch_stats": stats}
        return net, {"variables": variables}

    net, options = fresh(0)
    variables = options["variables"]
    leaves = jax.tree_util.tree_leaves(variables)
    trainable = sum(leaf.size for leaf in jax.tree_util.tree_leaves(variables["params"]))
    names = list(flax.traverse_util.flatten_dict(flax.core.unfreeze(variables), sep="/"))
    return RealModel(net, x, trainable, sum(leaf.size for leaf in leaves), exact_sum(leaves), names,
                     fresh, options=options)


def real_models():
    return {"linen-CNN": linen_cnn}


# -- layers beyond Dense (tests/conformance/test_layers.py) --------------------------------
def bn_momentum(layer):
    return layer.momentum


def bn_train_step(m, x):
    """Sequential(BatchNorm) applied in training mode (Flax fixes the mode in
    the module, so a clone with use_running_average=False); the new mean."""
    bn = m.native.layers[0].clone(use_running_average=False, parent=None)
    v = m.flax.variables
    _, updates = bn.apply({"params": v["params"]["layers_0"], "batch_stats": v["batch_stats"]["layers_0"]},
                          jnp.asarray(x), mutable=["batch_stats"])
    return np.asarray(updates["batch_stats"]["mean"]).copy()


class _CNN(nn.Module):
    """Conv -> reshape -> Dense, as Flax examples write a CNN (NHWC)."""

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(2, (3, 3), padding=1)(x)
        x = x.reshape((x.shape[0], -1))
        return nn.Dense(3)(x)


def native_cnn():
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 5, 4, 1))
    return NativeCNN(_CNN(), x, conv="Conv_0", dense="Dense_0")
