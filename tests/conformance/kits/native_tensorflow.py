"""The chapter's TensorFlow/Keras idioms (the tensorflow tab of seed 001)."""
import numpy as np
import tensorflow as tf
import keras

from . import NativeCase


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
    return m.native(tf.constant(np.asarray(x, dtype=np.float32))).numpy()


def count(m):
    # what model.summary() prints as "Trainable params"
    return int(sum(np.prod(v.shape) for v in m.native.trainable_weights))


def grads(m, x):
    net = m.native
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(net(tf.constant(np.asarray(x, dtype=np.float32))))
    g = tape.gradient(y, net.trainable_variables)
    by_var = {id(v): gv.numpy() for v, gv in zip(net.trainable_variables, g)}
    out = {}
    for name in m.named_parameters():
        *path, role = name.split(".")
        layer = _layer(net, path)
        var = layer.kernel if role == "weight" else getattr(layer, role)
        out[name] = by_var[id(var)].T if role == "weight" else by_var[id(var)]
    return out


def chapter_models():
    keras.utils.set_random_seed(0)
    X = tf.random.uniform((2, 4))
    cases = []
    net = tf.keras.models.Sequential([
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(4, activation=tf.nn.relu),
        tf.keras.layers.Dense(1),
    ])
    cases.append(NativeCase("mlp with Flatten (d2l 001)", net, X,
                            {"1.weight": (4, 4), "1.bias": (4,), "2.weight": (1, 4), "2.bias": (1,)}))

    shared = tf.keras.layers.Dense(4, activation=tf.nn.relu)
    net = tf.keras.models.Sequential([
        tf.keras.layers.Flatten(), shared, shared, tf.keras.layers.Dense(1)])
    cases.append(NativeCase("shared layer (d2l 001)", net, X,
                            {"1.weight": (4, 4), "1.bias": (4,), "3.weight": (1, 4), "3.bias": (1,)},
                            ties=[("1.weight", "2.weight"), ("1.bias", "2.bias")]))

    inputs = keras.Input(shape=(4,))
    h = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(1, name="out")(h)
    net = keras.Model(inputs, outputs)
    cases.append(NativeCase("functional model", net, X,
                            {"hidden.weight": (8, 4), "hidden.bias": (8,),
                             "out.weight": (1, 8), "out.bias": (1,)}))

    class MLP(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(8, activation="relu")
            self.out = keras.layers.Dense(1)

        def call(self, x):
            return self.out(self.hidden(x))

    cases.append(NativeCase("subclassed model", MLP(), X,
                            {"hidden.weight": (8, 4), "hidden.bias": (8,),
                             "out.weight": (1, 8), "out.bias": (1,)}))
    return cases


def sgd_step(m, x, lr):
    """One native Keras optimizer step on sum(outputs)."""
    net = m.native
    opt = keras.optimizers.SGD(learning_rate=lr)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(net(tf.constant(np.asarray(x, dtype=np.float32))))
    g = tape.gradient(y, net.trainable_variables)
    opt.apply_gradients(zip(g, net.trainable_variables))
