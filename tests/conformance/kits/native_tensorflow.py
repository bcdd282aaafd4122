"""The chapter's TensorFlow/Keras idioms (the tensorflow tab of seed 001).

A kit for :class:`multiparam.testing.NativeKit`: everything here reaches
variables the way Keras does (``net.layers[2]``, ``get_layer``, ``kernel``,
``gamma``), never through multiparam, and turns them into torch's names and
layout by hand."""
import math

import keras
import numpy as np
import tensorflow as tf
from keras.src.models.functional import Functional  # what keras.Model(inputs, outputs) builds
from keras.src.utils.naming import to_snake_case   # how Keras names a layer nobody named

from . import Distribution, NativeCase, NativeCNN, PortCase, RealModel, exact_sum

# -- facts about Keras 3 on TensorFlow --------------------------------------------------------
MODEL_TYPES = (keras.layers.Layer,)   # a Model is a Layer
KEEPS_NATIVE_GRAD = False         # GradientTape.gradient returns gradients; none kept on a Variable
KEEPS_PARAMETER_OBJECTS = True    # writes assign() into the same Variable
BN_MOMENTUM_WEIGHS_OLD = True     # moving = momentum * moving + (1 - momentum) * batch
#: dtypes a keras.Variable holds on TensorFlow and numpy() shows bit for bit (ml_dtypes for
#: bfloat16 and float8; keras.Variable(value, dtype=...) and assign, checked)
DTYPES = ("float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "float32", "float64", "int8", "uint8")
#: dtypes Keras' Dense, Conv2D, depthwise and separable convs, norms, Embedding and LSTM compute
#: in on a CPU under that dtype policy; TensorFlow has no float8 kernels ("no implicit
#: conversions from float8"), so a float8 model only runs with float8 as its storage dtype
FORWARD_DTYPES = ("float16", "bfloat16", "float32", "float64")


def dense_default(fan_in, fan_out):
    # keras.layers.Dense: kernel_initializer="glorot_uniform", bias_initializer="zeros"
    bound = math.sqrt(6 / (fan_in + fan_out))
    return Distribution.uniform(-bound, bound), Distribution.constant(0.0)


def _tensor(x):
    return tf.constant(np.asarray(x, dtype=np.float32))


# -- canonical names -> Keras layers and variables --------------------------------------------
def keyed(layers):
    """[(key, layer)] of sibling layers: the name a user gave, as it is; a name
    Keras made (the snake-cased class name and a process-wide counter:
    dense, dense_4, ...) by the layer's rank among its siblings Keras named
    from the same class (dense, dense_1, ...), so two instances of one
    architecture get the same keys."""
    out, seen = [], {}
    for layer in layers:
        prefix, name = to_snake_case(type(layer).__name__), layer.name
        if name == prefix or (name.startswith(prefix + "_") and name[len(prefix) + 1:].isdigit()):
            n = seen.get(prefix, 0)
            seen[prefix] = n + 1
            name = prefix if n == 0 else f"{prefix}_{n}"
        out.append((name, layer))
    return out


def _layer(net, path):
    layer = net
    for key in path:
        if isinstance(layer, keras.Sequential):
            layer = layer.layers[int(key)]           # net.layers[2]
        elif isinstance(layer, Functional):          # a functional model's layer
            layer = dict(keyed(l for l in layer.layers if not isinstance(l, keras.layers.InputLayer)))[key]
        elif isinstance(layer, keras.Model):
            layer = getattr(layer, key)              # a subclassed model's attribute
        elif isinstance(layer, keras.layers.MultiHeadAttention):
            layer = getattr(layer, f"_{key}")        # mha._query_dense
        else:                                        # a named container (multiparam's NamedSequential)
            layer = layer[key] if not key.isdigit() else layer[int(key)]
    return layer


def _channels_first(k):
    """A Keras conv kernel (*k, in, out) in torch's (out, in, *k)."""
    return np.moveaxis(np.moveaxis(k, -1, 0), -1, 1)


def _grouped(k):
    """A Keras depthwise kernel (*k, in, multiplier) as torch's Conv2d(groups=in)
    weight (in * multiplier, 1, *k): output channel i * multiplier + m."""
    merged = k.reshape(*k.shape[:-2], k.shape[-2] * k.shape[-1])
    return np.moveaxis(merged, -1, 0)[:, None]


def _einsum(layer, k):
    """MultiHeadAttention's EinsumDense kernels as the nn.Linear weight (out, in)
    they are: query/key/value ``abc,cde->abde`` (dim, heads, head_dim) contract
    their first axis, output ``abcd,cde->abe`` (heads, head_dim, dim) the first two."""
    contracted = 1 if layer.equation.endswith("de") else 2
    return k.reshape(int(np.prod(k.shape[:contracted])), -1).T


_NORMS = (keras.layers.BatchNormalization, keras.layers.LayerNormalization)
_NORM_ATTRS = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
               "running_var": "moving_variance"}


def _variable(layer, key):
    """(the Keras variable holding torch's ``key`` of ``layer``, its conversion
    to torch's layout)."""
    same = np.asarray
    if isinstance(layer, keras.layers.LSTM):
        # Keras' cell: kernel (in, 4H), recurrent_kernel (H, 4H), one bias = bias_ih + bias_hh
        cell = layer.cell
        return {"weight_ih_l0": (cell.kernel, np.transpose),
                "weight_hh_l0": (cell.recurrent_kernel, np.transpose),
                "bias_ih_l0": (cell.bias, same), "bias_hh_l0": (cell.bias, same)}[key]
    if isinstance(layer, _NORMS):
        return getattr(layer, _NORM_ATTRS[key]), same
    if isinstance(layer, keras.layers.Embedding):
        return layer.embeddings, same
    if isinstance(layer, keras.layers.EinsumDense):
        if key == "bias":
            return layer.bias, np.ravel
        return layer.kernel, lambda k: _einsum(layer, k)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return (layer.kernel, _grouped) if key == "weight" else (layer.bias, same)
    if isinstance(layer, keras.layers.SeparableConv2D):
        return {"depthwise_weight": (layer.depthwise_kernel, _grouped),
                "pointwise_weight": (layer.pointwise_kernel, _channels_first),
                "bias": (layer.bias, same)}[key]
    if isinstance(layer, keras.layers.Conv2D):
        return (layer.kernel, _channels_first) if key == "weight" else (layer.bias, same)
    if key == "weight":
        # Keras keeps Dense kernels (in, out): canonical is the transpose
        return layer.kernel, np.transpose
    return getattr(layer, key), same


def read(m, name):
    *path, key = name.split(".")
    layer = _layer(m.native, path)
    var, canonical = _variable(layer, key)
    value = canonical(np.asarray(tf.convert_to_tensor(var)))
    if isinstance(layer, keras.layers.LSTM) and key == "bias_hh_l0":
        # Keras keeps only the sum of torch's two biases: a model nobody split is (sum, 0)
        value = np.zeros_like(value)
    return value.copy()


def forward(m, x):
    return m.native(_tensor(x)).numpy()


def to_numpy(value):
    return np.asarray(tf.convert_to_tensor(value))     # tensors and Variables alike


def count(m):
    # what model.summary() prints as "Trainable params"
    return int(sum(np.prod(v.shape) for v in m.native.trainable_weights))


def grads(m, x):
    net = m.native
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(net(_tensor(x)))
    g = tape.gradient(y, net.trainable_variables)
    by_var = {id(v): tf.convert_to_tensor(gv).numpy() for v, gv in zip(net.trainable_variables, g)}
    out = {}
    for name in m.named_parameters():
        *path, key = name.split(".")
        var, canonical = _variable(_layer(net, path), key)
        # an LSTM's two biases are added to the same pre-activations: both get the sum's gradient
        out[name] = canonical(by_var[id(var)])
    return out


def backward(m, x):
    """Keras keeps no gradient on a Variable (``KEEPS_NATIVE_GRAD`` is False):
    ``GradientTape.gradient`` returns them, so a backward leaves nothing behind."""


def native_grads(m):
    return {name: None for name in m.named_parameters()}


def _chapter_input():
    keras.utils.set_random_seed(0)
    return tf.random.uniform((2, 4))


def mlp_flatten():
    """d2l 001: Sequential([Flatten(), Dense(4, activation=relu), Dense(1)])."""
    X = _chapter_input()
    net = tf.keras.models.Sequential([
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(4, activation=tf.nn.relu),
        tf.keras.layers.Dense(1),
    ])
    return NativeCase(net, X, {"1.weight": (4, 4), "1.bias": (4,), "2.weight": (1, 4), "2.bias": (1,)})


def shared():
    """d2l 001: one Dense layer used twice (listed twice in net.layers, once in net.weights)."""
    X = _chapter_input()
    layer = tf.keras.layers.Dense(4, activation=tf.nn.relu)
    net = tf.keras.models.Sequential([tf.keras.layers.Flatten(), layer, layer, tf.keras.layers.Dense(1)])
    return NativeCase(net, X, {"1.weight": (4, 4), "1.bias": (4,), "3.weight": (1, 4), "3.bias": (1,)},
                      ties=[("1.weight", "2.weight"), ("1.bias", "2.bias")])


def functional():
    """A functional keras.Model: layers named by the user."""
    X = _chapter_input()
    inputs = keras.Input(shape=(4,))
    h = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(1, name="out")(h)
    return NativeCase(keras.Model(inputs, outputs), X,
                      {"hidden.weight": (8, 4), "hidden.bias": (8,), "out.weight": (1, 8), "out.bias": (1,)})


def subclassed():
    """A subclassed keras.Model: layers are attributes."""
    X = _chapter_input()

    class MLP(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(8, activation="relu")
            self.out = keras.layers.Dense(1)

        def call(self, x):
            return self.out(self.hidden(x))

    return NativeCase(MLP(), X, {"hidden.weight": (8, 4), "hidden.bias": (8,),
                                 "out.weight": (1, 8), "out.bias": (1,)})


def sequence():
    """Keras' Embedding, LayerNormalization and Dense on token ids: the names are
    those of torch's nn.Embedding, nn.LayerNorm and nn.Linear.  (Keras' LSTM, whose
    one bias is torch's two, is checked by test_layers, its count Keras' own.)"""
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((3,), dtype="int32"), keras.layers.Embedding(10, 6),
                            keras.layers.LayerNormalization(), keras.layers.Dense(3)])
    shapes = {"0.weight": (10, 6), "1.weight": (6,), "1.bias": (6,), "2.weight": (3, 6), "2.bias": (3,)}
    return NativeCase(net, np.array([[1, 2, 3], [4, 5, 6]]), shapes)


def cnn_batchnorm():
    """Conv2D, BatchNormalization, ReLU, global pooling, Dense: gamma/beta are torch's
    weight/bias, the moving statistics its running_mean/running_var (no step counter)."""
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(4, 3),
                            keras.layers.BatchNormalization(), keras.layers.ReLU(),
                            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    shapes = {"0.weight": (4, 2, 3, 3), "0.bias": (4,), "1.weight": (4,), "1.bias": (4,),
              "1.running_mean": (4,), "1.running_var": (4,), "4.weight": (3, 4), "4.bias": (3,)}
    return NativeCase(net, tf.random.uniform((2, 6, 6, 2), seed=0), shapes)


def depthwise_separable():
    """DepthwiseConv2D and SeparableConv2D (depth multiplier 2): the depthwise kernels
    are torch's Conv2d(in, 2 * in, groups=in) weights, the pointwise one a 1x1 conv's."""
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.DepthwiseConv2D(3, depth_multiplier=2),
                            keras.layers.SeparableConv2D(3, 3, depth_multiplier=2),
                            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    shapes = {"0.weight": (4, 1, 3, 3), "0.bias": (4,), "1.depthwise_weight": (8, 1, 3, 3),
              "1.pointwise_weight": (3, 8, 1, 1), "1.bias": (3,), "3.weight": (2, 3), "3.bias": (2,)}
    return NativeCase(net, tf.random.uniform((2, 6, 6, 2), seed=0), shapes)


def attention():
    """keras.layers.MultiHeadAttention(2 heads of 3) in a functional model: its
    EinsumDense projections are the nn.Linear weights of torch's separate q/k/v/out
    projections (6 = 2 * 3 outputs), its layer auto-named."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 6))
    outputs = keras.layers.MultiHeadAttention(2, 3)(inputs, inputs)
    shapes = {}
    for proj in ("query", "key", "value", "output"):
        shapes.update({f"multi_head_attention.{proj}_dense.weight": (6, 6),
                       f"multi_head_attention.{proj}_dense.bias": (6,)})
    return NativeCase(keras.Model(inputs, outputs), tf.random.uniform((2, 4, 6), seed=0), shapes)


def _auto_named():
    """A functional model whose layers nobody named: Keras names them from
    process-wide counters (dense_7, batch_normalization_2, ...)."""
    inputs = keras.Input((4,))
    h = keras.layers.Dense(8)(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Dense(8, activation="relu")(h)
    return keras.Model(inputs, keras.layers.Dense(1)(h))


def functional_twin():
    """A second instance of a functional model of auto-named layers: Keras' names
    differ from the first's (its counters moved on), the canonical names do not."""
    first, second = _auto_named(), _auto_named()
    assert {l.name for l in first.layers}.isdisjoint(l.name for l in second.layers)   # the counters differ
    shapes = {"dense.weight": (8, 4), "dense.bias": (8,), "batch_normalization.weight": (8,),
              "batch_normalization.bias": (8,), "batch_normalization.running_mean": (8,),
              "batch_normalization.running_var": (8,), "dense_1.weight": (8, 8), "dense_1.bias": (8,),
              "dense_2.weight": (1, 8), "dense_2.bias": (1,)}
    return NativeCase(second, _chapter_input(), shapes)


def chapter_models():
    return {"mlp-flatten": mlp_flatten, "shared": shared, "functional": functional,
            "subclassed": subclassed, "sequence": sequence, "cnn-batchnorm": cnn_batchnorm,
            "depthwise-separable": depthwise_separable, "attention": attention,
            "functional-twin": functional_twin}


def sgd_step(m, x, lr):
    """One native Keras optimizer step on sum(outputs)."""
    net = m.native
    opt = keras.optimizers.SGD(learning_rate=lr)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(net(_tensor(x)))
    g = tape.gradient(y, net.trainable_variables)
    opt.apply_gradients(zip(g, net.trainable_variables))


# -- real models: written by Keras' authors --------------------------------------------------
def native_arrays(m):
    # model.weights: Keras' collect-all, variables listed once with their paths
    return [(v.path, v.numpy()) for v in m.native.weights]


def infer(m, x):
    return [np.asarray(m.native(x, training=False))]


def mobilenet_v2():
    """keras.applications.MobileNetV2(alpha=0.35) on 32x32 images, no weights downloaded."""
    def fresh(seed):
        keras.utils.set_random_seed(seed)
        net = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35,
                                             weights=None, classes=10)
        rng = np.random.default_rng(seed)
        for layer in net.layers:        # moving statistics as training would leave them
            if isinstance(layer, keras.layers.BatchNormalization):
                n = layer.moving_mean.shape
                layer.moving_mean.assign(rng.normal(size=n).astype(np.float32))
                layer.moving_variance.assign(rng.uniform(0.5, 2.0, size=n).astype(np.float32))
        return net, {}

    net, _ = fresh(0)
    x = tf.random.uniform((2, 32, 32, 3), seed=1)
    trainable = int(sum(np.prod(v.shape) for v in net.trainable_weights))
    return RealModel(net, x, trainable=trainable, total=net.count_params(),
                     value_sum=exact_sum(net.get_weights()), names=[v.path for v in net.weights],
                     fresh=fresh)


def real_models():
    return {"MobileNetV2": mobilenet_v2}


# -- layers beyond Dense (tests/conformance/test_layers.py) --------------------------------
def bn_momentum(layer):
    return layer.momentum


def bn_train_step(m, x):
    """One training-mode call of Sequential(BatchNormalization); the new moving mean."""
    net = m.native
    net(_tensor(x), training=True)
    return net.layers[0].moving_mean.numpy().copy()


def native_cnn():
    """Conv2D -> Flatten -> Dense written in Keras (NHWC)."""
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.layers.Conv2D(2, 3, padding="same"), keras.layers.Flatten(),
                            keras.layers.Dense(3)])
    return NativeCNN(net, tf.random.uniform((2, 5, 4, 1)), conv="0", dense="2")


# -- checkpoints as people hold them (tests/conformance/test_checkpoints.py) -----------
#: kinds of case this kit has none of, and why
ABSENT = {"shared_memory_models": "a Keras Variable owns its memory: two variables never view one buffer",
          "checkpoint_models": "Hugging Face transformers 5 ships no TensorFlow models, and keras_hub "
                               "(not installed) builds its models from presets it downloads; Keras "
                               "models' torch names are checked by chapter_models() (sequence, "
                               "cnn-batchnorm, depthwise-separable, attention, functional-twin) and "
                               "twin_models() (functional, EfficientNetB0)"}


def checkpoint_models():
    return {}


def checkpoint_loss(label):
    raise KeyError(f"the tensorflow kit has no checkpoint model {label!r}")


# -- two instances of one architecture (tests/conformance/test_twins.py) -----------------
def _with_statistics(net, seed):
    """``net`` with BatchNormalization moving statistics as training would leave them
    (a fresh model's are 0 and 1 in every instance)."""
    rng = np.random.default_rng(seed)
    for layer in net._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(size=n).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, size=n).astype(np.float32))
    return net


def shared_memory_models():
    return {}


def twin_models():
    """Two instances each, built apart: Keras names the second's layers from
    counters that moved on (dense_3, efficientnetb0's rescaling_1), so only
    names taken from the structure agree; set_weights(get_weights()) is
    Keras' own copy between them."""
    def functional():
        keras.utils.set_random_seed(1)
        a = _with_statistics(_auto_named(), 1)
        keras.utils.set_random_seed(2)
        return a, _with_statistics(_auto_named(), 2), _chapter_input()

    def efficientnet():
        def make(seed):
            keras.utils.set_random_seed(seed)
            net = keras.applications.EfficientNetB0(weights=None, input_shape=(32, 32, 3), classes=10,
                                                    classifier_activation=None)
            return _with_statistics(net, seed)
        return make(1), make(2), tf.random.uniform((2, 32, 32, 3), seed=3)

    return {"functional": functional, "EfficientNetB0": efficientnet}


# -- porting (tests/conformance/test_port.py) --------------------------------------------------
#: the reference's numbered names onto this model's attribute names
PORT_RULES = [(r"^0\.", "encoder."), (r"^2\.", "norm."), (r"^3\.", "head.")]


def port_models():
    """A subclassed keras.Model written apart from the reference
    Sequential(Dense(8), ReLU, LayerNorm, Dense(3)): its layers are attributes."""
    def named_mlp():
        import multiparam as mp

        class Net(keras.Model):
            def __init__(self):
                super().__init__()
                self.encoder = keras.layers.Dense(8, activation="relu")
                self.norm = keras.layers.LayerNormalization(epsilon=1e-5)
                self.head = keras.layers.Dense(3)

            def call(self, x):
                return self.head(self.norm(self.encoder(x)))

        spec = mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), mp.nn.LayerNorm(), mp.nn.Dense(3))
        x = np.random.default_rng(5).uniform(-1, 1, size=(2, 4)).astype(np.float32)
        net = Net()
        net(x)
        return PortCase(net, x, spec, PORT_RULES)

    return {"named-mlp": named_mlp}
