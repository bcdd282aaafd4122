"""The chapter's TensorFlow/Keras idioms (the tensorflow tab of seed 001)."""
import math

import numpy as np
import tensorflow as tf
import keras

from . import Distribution, NativeCase, NativeCNN, RealModel, exact_sum

# -- facts about Keras 3 on TensorFlow --------------------------------------------------------
MODEL_TYPES = (keras.layers.Layer,)   # a Model is a Layer
KEEPS_NATIVE_GRAD = False         # GradientTape.gradient returns gradients; none kept on a Variable
KEEPS_PARAMETER_OBJECTS = True    # writes assign() into the same Variable
BN_MOMENTUM_WEIGHS_OLD = True     # moving = momentum * moving + (1 - momentum) * batch


def dense_default(fan_in, fan_out):
    # keras.layers.Dense: kernel_initializer="glorot_uniform", bias_initializer="zeros"
    bound = math.sqrt(6 / (fan_in + fan_out))
    return Distribution.uniform(-bound, bound), Distribution.constant(0.0)


def _tensor(x):
    return tf.constant(np.asarray(x, dtype=np.float32))


def _layer(net, path):
    layer = net
    for key in path:
        if isinstance(layer, keras.Sequential):
            layer = layer.layers[int(key)]           # net.layers[2]
        elif isinstance(layer, keras.Model) and not isinstance(layer, keras.Sequential) and \
                hasattr(layer, key):
            layer = getattr(layer, key)              # a subclassed model's attribute
        elif isinstance(layer, keras.Model):
            layer = layer.get_layer(key)             # a functional model's layer by name
        else:                                        # a named container (multiparam's NamedSequential)
            layer = layer[key] if not key.isdigit() else layer[int(key)]
    return layer


def read(m, name):
    *path, role = name.split(".")
    layer = _layer(m.native, path)
    if role == "weight":
        # Keras keeps Dense kernels (in, out): canonical is the transpose
        return np.asarray(tf.convert_to_tensor(layer.kernel)).T.copy()
    return np.asarray(tf.convert_to_tensor(getattr(layer, role))).copy()


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
    by_var = {id(v): gv.numpy() for v, gv in zip(net.trainable_variables, g)}
    out = {}
    for name in m.named_parameters():
        *path, role = name.split(".")
        layer = _layer(net, path)
        var = layer.kernel if role == "weight" else getattr(layer, role)
        out[name] = by_var[id(var)].T if role == "weight" else by_var[id(var)]
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


def chapter_models():
    return {"mlp-flatten": mlp_flatten, "shared": shared, "functional": functional,
            "subclassed": subclassed}


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
