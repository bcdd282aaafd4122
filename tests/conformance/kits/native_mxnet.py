"""The chapter's MXNet/Gluon idioms (seed 002 and the mxnet tab of seed 001)."""
import re

import mxnet as mx
import numpy as np
from mxnet import autograd, init
from mxnet import gluon
from mxnet.gluon import nn, rnn

from . import Distribution, NativeCase, NativeCNN, PortCase, RealModel, exact_sum

# -- facts about MXNet/Gluon 1.x --------------------------------------------------------------
MODEL_TYPES = (nn.Block,)          # HybridBlock and SymbolBlock are Blocks
KEEPS_NATIVE_GRAD = True           # backward() leaves grad() on every Parameter
KEEPS_PARAMETER_OBJECTS = True     # writes set_data() into the same Parameter
BN_MOMENTUM_WEIGHS_OLD = True      # running = momentum * running + (1 - momentum) * batch
#: dtypes a Gluon Parameter holds and data().asnumpy() shows bit for bit (set_data, checked)
DTYPES = ("float16", "float32", "float64", "int8", "uint8")
#: dtypes MXNet 1.9.1 runs Dense, Conv2D and LSTM forwards in on a CPU: float16 needs cuDNN
#: ("float16 fully connected layer is currently only supported by CuDNN version")
FORWARD_DTYPES = ("float32", "float64")


def dense_default(fan_in, fan_out):
    # net.initialize() with no initializer: init.Uniform(scale=0.07) for weights; biases zeros
    return Distribution.uniform(-0.07, 0.07), Distribution.constant(0.0)


def _array(x):
    return mx.nd.array(np.asarray(x, dtype=np.float32))


def _block(net, path):
    block = net
    for key in path:
        block = block._children[key]      # Sequential keys are "0", "1", ...; named children keep names
    return block


# Gluon's attribute for torch's (the last part of a canonical name), and back: a norm's
# gamma/beta are torch's weight/bias, PReLU's alpha its weight, an RNN layer's
# l0_i2h_weight / r1_h2h_bias torch's weight_ih_l0 / bias_hh_l1_reverse
_NORMS = (nn.BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm)
_GLUON_RNN = re.compile(r"^([lr])(\d+)_(i|h)2(h|r)_(weight|bias)$")
_TORCH_RNN = re.compile(r"^(weight|bias)_(i|h)(h|r)_l(\d+)(_reverse)?$")


def _gluon_attr(block, key):
    if isinstance(block, _NORMS):
        return {"weight": "gamma", "bias": "beta"}.get(key, key)
    if isinstance(block, nn.PReLU) and key == "weight":
        return "alpha"
    match = _TORCH_RNN.match(key)
    if isinstance(block, rnn.rnn_layer._RNNLayer) and match:
        kind, src, dst, layer, reverse = match.groups()
        return f"{'r' if reverse else 'l'}{layer}_{src}2{dst}_{kind}"
    return key


def _torch_key(block, attr):
    if isinstance(block, _NORMS):
        return {"gamma": "weight", "beta": "bias"}.get(attr, attr)
    if isinstance(block, nn.PReLU) and attr == "alpha":
        return "weight"
    match = _GLUON_RNN.match(attr)
    if isinstance(block, rnn.rnn_layer._RNNLayer) and match:
        direction, layer, src, dst, kind = match.groups()
        return f"{kind}_{src}{dst}_l{layer}" + ("_reverse" if direction == "r" else "")
    return attr


def torch_names(net):
    """{canonical name: shape} of a Gluon block by its structure alone: the
    path of ``_children`` keys, then torch's attribute for each of the block's
    own ``_reg_params``; Gluon's global names (``resnetv10_conv0_weight``)
    play no part.  A Parameter shared by two blocks is listed once."""
    out, seen = {}, set()

    def walk(block, prefix):
        for attr, p in block._reg_params.items():
            if id(p) not in seen:
                seen.add(id(p))
                out[prefix + _torch_key(block, attr)] = tuple(p.shape)
        for key, child in block._children.items():
            walk(child, f"{prefix}{key}.")

    walk(net, "")
    return out


def _parameter(m, name):
    *path, key = name.split(".")
    block = _block(m.native, path)
    return getattr(block, _gluon_attr(block, key))


def read(m, name):
    return _parameter(m, name).data().asnumpy().copy()   # net[1].bias.data()


def forward(m, x):
    return m.native(_array(x)).asnumpy()


def to_numpy(value):
    if isinstance(value, gluon.Parameter):
        return value.data().asnumpy()
    if isinstance(value, mx.nd.NDArray):
        return value.asnumpy()
    return np.asarray(value)


def count(m):
    params = {id(p): p for p in m.native.collect_params().values() if p.grad_req != "null"}
    return sum(p.data().size for p in params.values())


def grads(m, x):
    net = m.native
    with autograd.record():
        y = net(_array(x)).sum()
    y.backward()
    out = {name: _parameter(m, name).grad().asnumpy().copy() for name in m.named_parameters()}
    for p in net.collect_params().values():
        p.zero_grad()
    return out


def backward(m, x):
    with autograd.record():
        y = m.native(_array(x)).sum()
    y.backward()          # writes grad() (grad_req "write"), as a training loop does


def native_grads(m):
    # Gluon allocates a gradient buffer with the parameter; after zero_grad() it
    # holds zeros, never None
    return {name: _parameter(m, name).grad().asnumpy().copy() for name in m.named_parameters()}


def _chapter_input():
    mx.random.seed(0)
    return mx.nd.random.uniform(shape=(2, 20))


def mlp():
    """d2l 002: Dense(256, relu), Dense(10), net.initialize()."""
    x = _chapter_input()
    net = nn.Sequential()
    net.add(nn.Dense(256, activation="relu"))
    net.add(nn.Dense(10))
    net.initialize()  # Use the default initialization method
    return NativeCase(net, x, {"0.weight": (256, 20), "0.bias": (256,), "1.weight": (10, 256),
                               "1.bias": (10,)})


def rgnet():
    """d2l 002: block2 of four block1s, then Dense(10)."""
    x = _chapter_input()

    def block1():
        net = nn.Sequential()
        net.add(nn.Dense(32, activation="relu"))
        net.add(nn.Dense(16, activation="relu"))
        return net

    def block2():
        net = nn.Sequential()
        for _ in range(4):
            net.add(block1())
        return net

    rgnet = nn.Sequential()
    rgnet.add(block2())
    rgnet.add(nn.Dense(10))
    rgnet.initialize()
    shapes = {}
    for i in range(4):
        shapes.update({f"0.{i}.0.weight": (32, 20 if i == 0 else 16), f"0.{i}.0.bias": (32,),
                       f"0.{i}.1.weight": (16, 32), f"0.{i}.1.bias": (16,)})
    shapes.update({"1.weight": (10, 16), "1.bias": (10,)})
    return NativeCase(rgnet, x, shapes)


def shared():
    """d2l 002: nn.Dense(8, activation="relu", params=shared.params)."""
    x = _chapter_input()
    net = nn.Sequential()
    layer = nn.Dense(8, activation="relu")
    net.add(nn.Dense(8, activation="relu"), layer,
            nn.Dense(8, activation="relu", params=layer.params), nn.Dense(10))
    net.initialize()
    return NativeCase(net, x, {"0.weight": (8, 20), "0.bias": (8,), "1.weight": (8, 8), "1.bias": (8,),
                               "3.weight": (10, 8), "3.bias": (10,)},
                      ties=[("1.weight", "2.weight"), ("1.bias", "2.bias")])


def sequence():
    """Gluon's own Embedding, LayerNorm, two-layer bidirectional LSTM and
    Dense: the names are those of torch's nn.Embedding, nn.LayerNorm,
    nn.LSTM(6, 5, num_layers=2, bidirectional=True) and nn.Linear."""
    net = nn.Sequential()
    net.add(nn.Embedding(10, 6), nn.LayerNorm(),
            rnn.LSTM(5, num_layers=2, bidirectional=True, layout="NTC"), nn.Dense(3, flatten=False))
    net.initialize()
    shapes = {"0.weight": (10, 6), "1.weight": (6,), "1.bias": (6,)}
    for layer, width in ((0, 6), (1, 10)):          # layer 1 reads both directions of layer 0
        for suffix in ("", "_reverse"):
            shapes.update({f"2.weight_ih_l{layer}{suffix}": (20, width),
                           f"2.weight_hh_l{layer}{suffix}": (20, 5),
                           f"2.bias_ih_l{layer}{suffix}": (20,), f"2.bias_hh_l{layer}{suffix}": (20,)})
    shapes.update({"3.weight": (3, 10), "3.bias": (3,)})
    return NativeCase(net, mx.nd.array([[1, 2, 3], [4, 5, 6]]), shapes)


def cnn_batchnorm():
    """Conv2D, BatchNorm, relu, Dense: BatchNorm's gamma/beta are torch's
    weight/bias, beside its running statistics (MXNet keeps no step counter)."""
    mx.random.seed(0)
    net = nn.Sequential()
    net.add(nn.Conv2D(4, 3), nn.BatchNorm(), nn.Activation("relu"), nn.Dense(3))
    net.initialize()
    shapes = {"0.weight": (4, 1, 3, 3), "0.bias": (4,), "1.weight": (4,), "1.bias": (4,),
              "1.running_mean": (4,), "1.running_var": (4,), "3.weight": (3, 36), "3.bias": (3,)}
    return NativeCase(net, mx.nd.random.uniform(shape=(2, 1, 5, 5)), shapes)


def resnet18_v1_twin():
    """A second model_zoo resnet18_v1: Gluon names its Parameters with global
    counters (resnetv10_conv0_weight, then resnetv11_conv0_weight), so the
    canonical names expected are the first instance's, taken from its
    structure alone."""
    from mxnet.gluon.model_zoo import vision

    x = mx.nd.random.uniform(shape=(1, 3, 32, 32))
    first, second = (vision.resnet18_v1(pretrained=False, classes=10) for _ in range(2))
    for net in (first, second):
        net.initialize()
        net(x)
    assert set(first.collect_params()).isdisjoint(second.collect_params())   # the counters differ
    return NativeCase(second, x, torch_names(first))


def chapter_models():
    return {"mlp": mlp, "rgnet": rgnet, "shared": shared, "sequence": sequence,
            "cnn-batchnorm": cnn_batchnorm, "resnet18_v1-twin": resnet18_v1_twin}


def sgd_step(m, x, lr):
    """One native Gluon Trainer step on sum(outputs); Trainer built after the tie."""
    net = m.native
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": lr})
    with autograd.record():
        y = net(_array(x)).sum()
    y.backward()
    trainer.step(1)
    for p in net.collect_params().values():
        p.zero_grad()


# -- real models: written by Gluon's authors (model_zoo) ---------------------------------------
def native_arrays(m):
    # collect_params(): Gluon's collect-all, names with global counters
    return [(name, p.data().asnumpy()) for name, p in m.native.collect_params().items()]


def infer(m, x):
    return [m.native(x).asnumpy()]       # outside autograd.record(): inference mode


def _real(net, x, fresh):
    params = net.collect_params()
    trainable = sum(p.data().size for p in params.values() if p.grad_req != "null")
    total = sum(p.data().size for p in params.values())
    return RealModel(net, x, trainable, total, exact_sum([p.data().asnumpy() for p in params.values()]),
                     list(params.keys()), fresh)


def resnet18_v1():
    """model_zoo.vision.resnet18_v1(classes=10), no weights downloaded."""
    from mxnet.gluon.model_zoo import vision

    x = mx.nd.random.uniform(shape=(1, 3, 32, 32))

    def fresh(seed):
        mx.random.seed(seed)
        net = vision.resnet18_v1(pretrained=False, classes=10)
        net.initialize()
        net(x)                           # deferred shapes resolve on the first forward
        rng = np.random.default_rng(seed)
        for name, p in net.collect_params().items():   # running statistics as training leaves them
            if name.endswith("running_mean"):
                p.set_data(mx.nd.array(rng.normal(size=p.shape)))
            elif name.endswith("running_var"):
                p.set_data(mx.nd.array(rng.uniform(0.5, 2.0, size=p.shape)))
        return net, {}

    net, _ = fresh(0)
    return _real(net, x, fresh)


def lstm():
    """rnn.LSTM(8, num_layers=2, bidirectional=True): torch's nn.LSTM names
    (weight_ih_l0 ... bias_hh_l1_reverse) from Gluon's l0_i2h_weight ... r1_h2h_bias."""
    x = mx.nd.random.uniform(shape=(2, 3, 4))

    def fresh(seed):
        mx.random.seed(seed)
        net = rnn.LSTM(8, num_layers=2, bidirectional=True, layout="NTC", input_size=4)
        net.initialize(init.Uniform(0.1))      # biases too: every value differs between seeds
        return net, {}

    net, _ = fresh(0)
    return _real(net, x, fresh)


def real_models():
    return {"resnet18_v1": resnet18_v1, "LSTM": lstm}


def cast(m, dtype):
    """Gluon's own conversion of a model to another float dtype."""
    m.native.cast(dtype)


# -- layers beyond Dense (tests/conformance/test_layers.py) --------------------------------
def bn_momentum(layer):
    return layer._kwargs["momentum"]


def bn_train_step(m, x):
    """One training step's forward and backward of Sequential(BatchNorm)
    (MXNet 1.x updates the running statistics in BatchNorm's backward)."""
    net = m.native
    with autograd.record():
        y = net(_array(x)).sum()
    y.backward()
    return net[0].running_mean.data().asnumpy().copy()


def native_cnn():
    """Conv2D -> Flatten -> Dense written in Gluon (NCHW)."""
    mx.random.seed(0)
    net = nn.Sequential()
    net.add(nn.Conv2D(2, 3, padding=1), nn.Flatten(), nn.Dense(3))
    net.initialize()
    return NativeCNN(net, mx.nd.random.uniform(shape=(2, 1, 5, 4)), conv="0", dense="2")


# -- checkpoints as people hold them (tests/conformance/test_checkpoints.py) -----------
#: kinds of case this kit has none of, and why (see conftest)
ABSENT = {"shared_memory_models": ("a Gluon Parameter owns its NDArray: set_data copies into it, so two "
                                   "parameters never share memory"),
          "checkpoint_models": (
    "Gluon 1.x writes its own .params files (save_parameters), not safetensors, and Hugging Face "
    "ships no MXNet models; Gluon models' names are checked against torch's by chapter_models() "
    "(sequence, cnn-batchnorm, resnet18_v1-twin) and twin_models()")}


def checkpoint_models():
    return {}


def checkpoint_loss(label: str):
    raise KeyError(label)             # no checkpoint models (ABSENT says why)


def shared_memory_models():
    return {}


def twin_models():
    """Two model_zoo ResNet-18s and two Dense MLPs built apart: Gluon's global
    name counters have moved on between them (dense0_ vs dense2_)."""
    def resnet():
        from mxnet.gluon.model_zoo import vision

        x = mx.nd.random.uniform(shape=(1, 3, 32, 32))
        pair = []
        for seed in (1, 2):
            mx.random.seed(seed)
            net = vision.resnet18_v1(pretrained=False, classes=10)
            net.initialize()
            net(x)
            pair.append(net)
        return pair[0], pair[1], x

    def mlp():
        x = mx.nd.random.uniform(shape=(2, 4))
        pair = []
        for seed in (3, 4):
            mx.random.seed(seed)
            net = nn.Sequential()
            net.add(nn.Dense(8, activation="relu"), nn.Dense(3))
            net.initialize()
            net(x)
            pair.append(net)
        return pair[0], pair[1], x

    return {"resnet18_v1": resnet, "MLP": mlp}


# -- porting (tests/conformance/test_port.py) --------------------------------------------------
#: the reference's numbered names onto this model's attribute names
PORT_RULES = [(r"^0\.", "encoder."), (r"^2\.", "norm."), (r"^3\.", "head.")]


def port_models():
    """A HybridBlock written apart from the reference Sequential(Dense(8), ReLU,
    LayerNorm, Dense(3)): its children are attributes with their own names."""
    def named_mlp():
        import multiparam as mp

        class Net(gluon.HybridBlock):
            def __init__(self):
                super().__init__()
                with self.name_scope():
                    self.encoder = nn.Dense(8, activation="relu", in_units=4)
                    self.norm = nn.LayerNorm(epsilon=1e-5, in_channels=8)
                    self.head = nn.Dense(3, in_units=8)

            def hybrid_forward(self, F, x):
                return self.head(self.norm(self.encoder(x)))

        spec = mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), mp.nn.LayerNorm(), mp.nn.Dense(3))
        x = np.random.default_rng(5).uniform(-1, 1, size=(2, 4)).astype(np.float32)
        net = Net()
        net.initialize()
        return PortCase(net, x, spec, PORT_RULES)

    return {"named-mlp": named_mlp}
