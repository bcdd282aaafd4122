"""The chapter's JAX/Flax idioms (the jax tab of seed 001).

Flax keeps parameters in a pytree outside the model; the kit reads the
handle's pytree (``m.flax.variables``) with plain dictionary indexing, as the
chapter does with ``params['params']['layers_2']['bias']``.
"""
import inspect
import math

import flax
import jax
import numpy as np
from flax import linen as nn
from flax import nnx
from jax import numpy as jnp

from ..models import MLP_SHAPES
from . import Distribution, NativeCase, NativeCNN, PortCase, RealModel, exact_sum

# -- facts about JAX/Flax --------------------------------------------------------------------
MODEL_TYPES = (nn.Module, nnx.Module)
KEEPS_NATIVE_GRAD = False         # jax.grad returns gradients; nothing is kept on a parameter
KEEPS_PARAMETER_OBJECTS = False   # linen (what multiparam.nn builds): JAX arrays are immutable,
                                  # so a write puts a new leaf in the variables pytree
BN_MOMENTUM_WEIGHS_OLD = True     # ra = momentum * ra + (1 - momentum) * batch
#: dtypes a JAX array holds bit for bit (bfloat16 and float8 through ml_dtypes); float64 and
#: int64 only under jax_enable_x64, which the suite does not set (JAX makes them 32-bit)
DTYPES = ("float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "float32", "int8", "uint8")
#: dtypes Flax's Dense, Conv, norms and LSTM cells run in from float32 inputs (they promote
#: inputs and parameters); JAX has no implicit promotion for float8, so a float8 model holds
#: and moves its values but does not run
FORWARD_DTYPES = ("float16", "bfloat16", "float32")

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
    position's name); multiparam's named blocks keep their own names; any
    other module's children are its own pytree keys (``Dense_0``, ``query``)."""
    out = []
    for key in keys:
        names = getattr(module, "names", None)
        if names is not None:            # multiparam's NamedSequential: children keep their names
            child = module.layers[names.index(key)]
            out.append(key)
        elif isinstance(module, nn.Sequential):
            child = module.layers[int(key)]
            first = next(j for j, l in enumerate(module.layers) if l is child)
            out.append(f"layers_{first}")
        else:                            # @nn.compact / setup children: the pytree names them
            child = None
            out.append(key)
        module = child
    return out


def _nnx_layer(model, keys):
    for key in keys:
        if isinstance(model, nnx.Sequential):
            model = model.layers[int(key)]      # nnx.Sequential keeps a list
        else:
            model = getattr(model, key)
    return model


# torch's LSTM arrays from Flax's per-gate leaves (gate order i, f, g, o, torch's):
# weight_ih is the four input kernels (in, H) transposed and stacked; Flax keeps one bias
# per gate, the sum torch splits into bias_ih + bias_hh, so a fresh model's is bias_ih
_LSTM = {"weight_ih_l0": ("i", "kernel"), "weight_hh_l0": ("h", "kernel"), "bias_ih_l0": ("h", "bias")}


def _canonical(leaves, key):
    """Canonical ``key`` (torch's attribute) from one Flax layer's leaves (a
    dict of its params, and of its batch_stats under ``"batch_stats"``), by
    Flax's documented layouts: Dense kernel (in, out), Conv kernel
    (*k, in, out), DenseGeneral kernel (*in, *out) over a bias (*out)."""
    if key in _LSTM:
        kind, leaf = _LSTM[key]
        gates = [np.asarray(leaves["cell"][f"{kind}{g}"][leaf]) for g in "ifgo"]
        return np.concatenate([g.T if leaf == "kernel" else g for g in gates], axis=0)
    if key == "bias_hh_l0":
        return np.zeros_like(_canonical(leaves, "bias_ih_l0"))
    if key in ("running_mean", "running_var"):
        return np.asarray(leaves["batch_stats"][key.split("_")[1]])
    if key == "bias":
        return np.asarray(leaves["bias"]).reshape(-1)
    if key != "weight":
        return np.asarray(leaves[key])
    for table in ("scale", "embedding"):       # a norm's scale, an embedding's table
        if table in leaves:
            return np.asarray(leaves[table])
    kernel = np.asarray(leaves["kernel"])
    if kernel.ndim == 4:                       # Conv (kh, kw, in, out) -> (out, in, kh, kw)
        return kernel.transpose(3, 2, 0, 1)
    outputs = np.ndim(leaves["bias"]) if "bias" in leaves else 1
    return kernel.reshape(-1, math.prod(kernel.shape[kernel.ndim - outputs:])).T


def _linen_leaves(m, variables, keys):
    path = _path(m.native, keys)
    leaves = dict(variables["params"])
    for k in path:
        leaves = leaves[k]
    stats = variables.get("batch_stats", {})
    for k in path:
        stats = stats.get(k, {})
    return {**leaves, "batch_stats": stats}


def _nnx_leaves(m, keys):
    layer = _nnx_layer(m.native, keys)
    leaves = {k: v[...] for k, v in vars(layer).items() if isinstance(v, nnx.Variable)}
    return {**leaves, "batch_stats": {k: leaves[k] for k in ("mean", "var") if k in leaves}}


def read(m, name):
    *keys, key = name.split(".")
    if isinstance(m.native, nnx.Module):     # NNX: parameters live on the module, mutable
        return _canonical(_nnx_leaves(m, keys), key).copy()
    value = _canonical(_linen_leaves(m, m.flax.variables, keys), key)
    hwc = _FLATTENED.get((type(m.native), ".".join(keys)))
    if hwc is not None and key == "weight":
        # fed an (H, W, C) map flattened: torch's Linear after its (C, H, W) flatten
        h, w, c = hwc
        value = value.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(value.shape)
    return value.copy()


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
    # the pytree an optax loop updates: after m.tie, each parameter once (a
    # model without parameters, Sequential(ReLU()), has no "params" collection)
    return sum(x.size for x in jax.tree_util.tree_leaves(m.flax.unique_variables().get("params", {})))


def grads(m, x):
    # the documented loop: differentiate the de-duplicated pytree through
    # expand_variables, so a tie made with m.tie gets the sum of its uses
    unique = m.flax.unique_variables()
    g = jax.grad(lambda p: m.native.apply(m.flax.expand_variables({**unique, "params": p}),
                                          jnp.asarray(x)).sum())(unique["params"])
    out = {}
    for name in m.named_parameters():
        *keys, key = name.split(".")
        out[name] = _canonical(_linen_leaves(m, {"params": g}, keys), key)
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


def sequence():
    """Flax's own Embed, LayerNorm and Dense: the names are those of torch's
    nn.Embedding, nn.LayerNorm and nn.Linear.  (Flax's LSTM cell keeps twelve per-gate
    leaves for torch's four arrays, so the framework's listing cannot match one to one;
    tests/conformance/test_layers.py checks its torch names.)"""
    net = nn.Sequential([nn.Embed(10, 6), nn.LayerNorm(), nn.Dense(3)])
    shapes = {"0.weight": (10, 6), "1.weight": (6,), "1.bias": (6,), "2.weight": (3, 6), "2.bias": (3,)}
    return NativeCase(net, jnp.array([[1, 2, 3], [4, 5, 6]]), shapes)


def attention():
    """Flax's MultiHeadDotProductAttention: its DenseGeneral projections, kernels
    (embed, heads, head_dim) and (heads, head_dim, embed), are torch nn.Linear weights
    (out, in) on the flattened axes, as Hugging Face's torch attention holds them."""
    net = nn.MultiHeadDotProductAttention(num_heads=2, qkv_features=8)
    shapes = {}
    for proj in ("query", "key", "value"):
        shapes.update({f"{proj}.weight": (8, 6), f"{proj}.bias": (8,)})
    shapes.update({"out.weight": (6, 8), "out.bias": (6,)})
    return NativeCase(net, jax.random.uniform(jax.random.PRNGKey(4), (2, 3, 6)), shapes)


class TrainFlagCNN(nn.Module):
    """A CNN as Flax's BatchNorm and Dropout guides write one: the mode is the
    ``train`` call argument, given to each layer as it names it."""

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Conv(features=8, kernel_size=(3, 3))(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = nn.relu(x)
        x = nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.Dropout(rate=0.5, deterministic=not train)(x)
        return nn.Dense(features=10)(x)


#: (model class, layer) -> the (H, W, C) map a Dense is fed flattened
_FLATTENED = {(TrainFlagCNN, "Dense_0"): (4, 4, 8)}


def cnn_batchnorm():
    """The train-flag CNN: @nn.compact children keep Flax's names (per-module counters,
    the same in every instance); BatchNorm's scale/bias are torch's weight/bias."""
    x = jax.random.uniform(jax.random.PRNGKey(5), (2, 8, 8, 3))
    shapes = {"Conv_0.weight": (8, 3, 3, 3), "Conv_0.bias": (8,), "BatchNorm_0.weight": (8,),
              "BatchNorm_0.bias": (8,), "BatchNorm_0.running_mean": (8,), "BatchNorm_0.running_var": (8,),
              "Dense_0.weight": (10, 128), "Dense_0.bias": (10,)}
    return NativeCase(TrainFlagCNN(), x, shapes)


def nnx_sequence():
    """NNX's Embed, LayerNorm, RMSNorm, BatchNorm and LinearGeneral as attributes (the
    LinearGeneral's (6, 2, 4) kernel is torch's nn.Linear(6, 8) weight)."""
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.embed = nnx.Embed(10, 6, rngs=rngs)
            self.norm = nnx.LayerNorm(6, rngs=rngs)
            self.rms = nnx.RMSNorm(6, rngs=rngs)
            self.bn = nnx.BatchNorm(6, use_running_average=True, rngs=rngs)
            self.proj = nnx.LinearGeneral(6, (2, 4), rngs=rngs)

        def __call__(self, ids):
            return self.proj(self.bn(self.rms(self.norm(self.embed(ids)))))

    shapes = {"embed.weight": (10, 6), "norm.weight": (6,), "norm.bias": (6,), "rms.weight": (6,),
              "bn.weight": (6,), "bn.bias": (6,), "bn.running_mean": (6,), "bn.running_var": (6,),
              "proj.weight": (8, 6), "proj.bias": (8,)}
    return NativeCase(Net(nnx.Rngs(0)), jnp.array([[1, 2, 3]]), shapes)


def chapter_models():
    return {"mlp": mlp, "shared": shared, "rgnet": rgnet, "nnx-mlp": nnx_mlp, "nnx-shared": nnx_shared,
            "sequence": sequence, "attention": attention, "cnn-batchnorm": cnn_batchnorm,
            "nnx-sequence": nnx_sequence}


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
    if isinstance(m.native, nnx.Module):       # NNX: the module's Param and BatchStat state, flattened
        return [("/".join(map(str, path)), np.asarray(v[...]))
                for path, v in nnx.to_flat_state(nnx.state(m.native, nnx.Any(nnx.Param, nnx.BatchStat)))]
    # linen: the variables pytree flattened, as flax.traverse_util.flatten_dict lists it
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(m.flax.variables), sep="/")
    return [(k, np.asarray(v)) for k, v in flat.items()]


def _takes_train(module):
    return "train" in inspect.signature(type(module).__call__).parameters


def infer(m, x):
    """Inference, Flax's way: NNX ``model.eval()`` then call it; linen
    ``apply(variables, x, train=False)`` for a module that takes its mode as
    Flax's guides write it, else ``apply`` (the mode fixed in the module)."""
    if isinstance(m.native, nnx.Module):
        m.native.eval()
        return [np.asarray(m.native(x))]
    kwargs = {"train": False} if _takes_train(m.native) else {}
    return [np.asarray(m.native.apply(m.flax.variables, x, **kwargs))]


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


def linen_train_flag():
    """The train-flag CNN (BatchNorm and Dropout, the mode a call argument), its
    variables from ``init(..., train=False)`` as Flax's guides do, with running
    statistics as training would leave them.  Inference is ``apply(..., train=False)``."""
    x = jax.random.uniform(jax.random.PRNGKey(8), (2, 8, 8, 3))

    def fresh(seed):
        net = TrainFlagCNN()
        variables = net.init(jax.random.PRNGKey(seed), x, train=False)
        k1, k2 = jax.random.split(jax.random.PRNGKey(seed + 1000))
        stats = jax.tree_util.tree_map_with_path(
            lambda p, v: (jax.random.normal(k1, v.shape, v.dtype) if p[-1].key == "mean"
                          else jax.random.uniform(k2, v.shape, v.dtype, 0.5, 2.0)), variables["batch_stats"])
        return net, {"variables": {**variables, "batch_stats": stats}}

    net, options = fresh(0)
    variables = options["variables"]
    leaves = jax.tree_util.tree_leaves(variables)
    trainable = sum(leaf.size for leaf in jax.tree_util.tree_leaves(variables["params"]))
    names = list(flax.traverse_util.flatten_dict(flax.core.unfreeze(variables), sep="/"))
    return RealModel(net, x, trainable, sum(leaf.size for leaf in leaves), exact_sum(leaves), names,
                     fresh, options=options)


def real_models():
    return {"linen-CNN": linen_cnn, "linen-train-flag": linen_train_flag}


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


def cast(m, dtype):
    """Flax's own conversion of a model to another float dtype: every floating leaf of the
    variables pytree ``astype``'d (linen), or each floating Variable's value (NNX)."""
    def floating(a):
        return jnp.issubdtype(a.dtype, jnp.floating)

    if isinstance(m.native, nnx.Module):
        state = nnx.state(m.native)
        nnx.update(m.native, jax.tree_util.tree_map(lambda a: a.astype(dtype) if floating(a) else a, state))
        return
    m.flax.variables = jax.tree_util.tree_map(lambda a: a.astype(dtype) if floating(a) else a,
                                              m.flax.variables)


# -- checkpoints as people hold them, and twins -----------------------------------------
ABSENT = {
    "shared_memory_models": "JAX arrays are immutable values: two leaves of a pytree never share "
                            "memory that a write could change under the other",
    "checkpoint_models": "Hugging Face transformers 5 ships no Flax models, and Flax has no checkpoint "
                         "format keyed by torch's names; Flax layers' torch names are checked by "
                         "chapter_models() (sequence, attention, cnn-batchnorm, nnx-sequence)",
}


def checkpoint_models():
    return {}


def checkpoint_loss(label):
    raise KeyError(f"the jax kit has no checkpoint model {label!r}")


class _NnxBlock(nnx.Module):
    """An encoder block as NNX users write one: attention (LinearGeneral
    projections), LayerNorm, a Linear MLP and BatchNorm, eval mode fixed."""

    def __init__(self, rngs):
        self.attention = nnx.MultiHeadAttention(num_heads=2, in_features=8, qkv_features=8,
                                                decode=False, rngs=rngs)
        self.norm = nnx.LayerNorm(8, rngs=rngs)
        self.mlp = nnx.Linear(8, 8, rngs=rngs)
        self.bn = nnx.BatchNorm(8, use_running_average=True, rngs=rngs)

    def __call__(self, x):
        h = self.norm(x + self.attention(x))
        return self.bn(h + nnx.relu(self.mlp(h)))


def shared_memory_models():
    return {}


def twin_models():
    """Two instances each, built apart (other seeds): NNX parameters live in the
    module, so two instances differ as torch's do.  (A linen module is a
    description: two instances differ only by the variables ``init`` gives them,
    which mp.wrap draws with one seed unless given ``variables=``.)"""
    def nnx_block():
        x = jax.random.uniform(jax.random.PRNGKey(3), (2, 5, 8))
        return _NnxBlock(nnx.Rngs(1)), _NnxBlock(nnx.Rngs(2)), x

    return {"nnx-block": nnx_block}


# -- porting (tests/conformance/test_port.py) --------------------------------------------------
#: the reference's numbered names onto this model's submodule names
PORT_RULES = [(r"^0\.", "encoder."), (r"^2\.", "norm."), (r"^3\.", "head.")]


def port_models():
    """A linen Module written apart from the reference Sequential(Dense(8), ReLU,
    LayerNorm, Dense(3)): its submodules carry their own names."""
    def named_mlp():
        import multiparam as mp

        class Net(nn.Module):
            @nn.compact
            def __call__(self, x):
                h = nn.relu(nn.Dense(8, name="encoder")(x))
                return nn.Dense(3, name="head")(nn.LayerNorm(epsilon=1e-5, name="norm")(h))

        spec = mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), mp.nn.LayerNorm(), mp.nn.Dense(3))
        x = np.random.default_rng(5).uniform(-1, 1, size=(2, 4)).astype(np.float32)
        return PortCase(Net(), x, spec, PORT_RULES)

    return {"named-mlp": named_mlp}
