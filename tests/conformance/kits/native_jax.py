"""The chapter's JAX/Flax idioms (the jax tab of seed 001).

Flax keeps parameters in a pytree outside the model; the kit reads the
handle's pytree (``m.flax.variables``) with plain dictionary indexing, as the
chapter does with ``params['params']['layers_2']['bias']``.
"""
import flax
import jax
import numpy as np
from flax import linen as nn
from flax import nnx
from jax import numpy as jnp

from . import NativeCase, RealModel, exact_sum


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


def chapter_models():
    X = jax.random.uniform(jax.random.PRNGKey(0), (2, 4))
    cases = []
    net = nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(1)])
    params = net.init(jax.random.PRNGKey(1), X)
    cases.append(NativeCase("mlp (d2l 001)", net, None,
                            {"0.weight": (8, 4), "0.bias": (8,), "2.weight": (1, 8), "2.bias": (1,)},
                            options={"variables": params}))

    shared = nn.Dense(8)
    net = nn.Sequential([nn.Dense(8), nn.relu, shared, nn.relu, shared, nn.relu, nn.Dense(1)])
    params = net.init(jax.random.PRNGKey(2), X)
    assert len(params["params"]) == 3          # the chapter's check
    cases.append(NativeCase("shared (d2l 001)", net, None,
                            {"0.weight": (8, 4), "0.bias": (8,), "2.weight": (8, 8), "2.bias": (8,),
                             "6.weight": (1, 8), "6.bias": (1,)},
                            ties=[("2.weight", "4.weight"), ("2.bias", "4.bias")],
                            options={"variables": params}))

    def block1():
        return nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(4), nn.relu])

    def block2():
        return nn.Sequential([block1() for _ in range(4)])

    rgnet = nn.Sequential([block2(), nn.Dense(1)])
    shapes = {}
    for i in range(4):
        shapes.update({f"0.{i}.0.weight": (8, 4), f"0.{i}.0.bias": (8,),
                       f"0.{i}.2.weight": (4, 8), f"0.{i}.2.bias": (4,)})
    shapes.update({"1.weight": (1, 4), "1.bias": (1,)})
    cases.append(NativeCase("rgnet (sample_input)", rgnet, X, shapes))

    rngs = nnx.Rngs(0)
    model = nnx.Sequential(nnx.Linear(4, 8, rngs=rngs), nnx.relu, nnx.Linear(8, 1, rngs=rngs))
    cases.append(NativeCase("nnx mlp", model, None,
                            {"0.weight": (8, 4), "0.bias": (8,), "2.weight": (1, 8), "2.bias": (1,)}))
    shared = nnx.Linear(8, 8, rngs=rngs)
    model = nnx.Sequential(nnx.Linear(4, 8, rngs=rngs), nnx.relu, shared, nnx.relu, shared)
    cases.append(NativeCase("nnx shared", model, None,
                            {"0.weight": (8, 4), "0.bias": (8,), "2.weight": (8, 8), "2.bias": (8,)},
                            ties=[("2.weight", "4.weight"), ("2.bias", "4.bias")]))
    return cases


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
    # the variables pytree flattened, as flax.traverse_util.flatten_dict lists it
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(m.flax.variables), sep="/")
    return [(k, np.asarray(v)) for k, v in flat.items()]


def infer(m, x):
    return [np.asarray(m.native.apply(m.flax.variables, x))]


def real_models():
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
    return [RealModel("linen CNN (Conv, BatchNorm, relu, avg_pool, Dense)", net, x, trainable,
                      sum(leaf.size for leaf in leaves), exact_sum(leaves), names, fresh,
                      options=options)]


# -- layers beyond Dense (tests/conformance/test_layers.py) --------------------------------
BN_MOMENTUM_WEIGHS_OLD = True       # Flax: ra = momentum * ra + (1 - momentum) * batch


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
    net = _CNN()
    return net, x, "Conv_0", "Dense_0", {}
