"""The chapter's TensorFlow/Keras idioms (the tensorflow tab of seed 001)."""
import numpy as np
import tensorflow as tf
import keras

from . import NativeCase, RealModel, exact_sum


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


# -- real models: written by Keras' authors --------------------------------------------------
def native_arrays(m):
    # model.weights: Keras' collect-all, variables listed once with their paths
    return [(v.path, v.numpy()) for v in m.native.weights]


def infer(m, x):
    return [np.asarray(m.native(x, training=False))]


def real_models():
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
    return [RealModel("keras.applications.MobileNetV2(alpha=0.35, 32x32)", net, x,
                      trainable=trainable, total=net.count_params(),
                      value_sum=exact_sum(net.get_weights()),
                      names=[v.path for v in net.weights], fresh=fresh)]


# -- layers beyond Dense (tests/conformance/test_layers.py) --------------------------------
BN_MOMENTUM_WEIGHS_OLD = True       # Keras: moving = momentum * moving + (1 - momentum) * batch


def bn_momentum(layer):
    return layer.momentum


def bn_train_step(m, x):
    """One training-mode call of Sequential(BatchNormalization); the new moving mean."""
    net = m.native
    net(tf.constant(np.asarray(x, dtype=np.float32)), training=True)
    return net.layers[0].moving_mean.numpy().copy()


def native_cnn():
    """Conv2D -> Flatten -> Dense written in Keras (NHWC): (model, sample, conv path, dense path)."""
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.layers.Conv2D(2, 3, padding="same"), keras.layers.Flatten(),
                            keras.layers.Dense(3)])
    return net, tf.random.uniform((2, 5, 4, 1)), "0", "2", {}
