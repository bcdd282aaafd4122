"""The chapter's steps, as code that runs: each framework's own idiom, and
the one multiparam call.  The tour executes exactly these strings and shows
what they printed (nothing here is a hand-written output).

A step whose native code is empty is done with multiparam alone (the
exercise).  Each backend's native snippets share one namespace, step after step, as the
cells of one notebook tab do; the multiparam snippet of a step runs in the
same namespace right after the native one.  The native code builds the same
architecture in each framework (the chapter's MXNet and Keras tabs fuse the
ReLU into the Dense layer or add a Flatten; here the layers are kept apart
so canonical names line up), and a step's ``note`` says where frameworks
genuinely differ.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict

BACKEND_ORDER = ("torch", "jax", "tensorflow", "mxnet")


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    native: Dict[str, str]                 # backend -> the framework's own code
    multiparam: str                        # the same multiparam code on every backend
    multiparam_overrides: Dict[str, str] = field(default_factory=dict)
    note: Dict[str, str] = field(default_factory=dict)   # backend -> one line on a real difference
    about: str = ""                        # one line on the step, the same for every backend

    def multiparam_code(self, backend: str) -> str:
        return self.multiparam_overrides.get(backend, self.multiparam)


STEPS = (
    Step(
        "build", "Build the chapter's MLP and run it once",
        native={
            "torch": (
                "import torch\n"
                "from torch import nn\n"
                "torch.manual_seed(0)\n"
                "net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))\n"
                "X = torch.rand(size=(2, 4))\n"
                "net(X).shape"),
            "jax": (
                "import jax\n"
                "from flax import linen as nn\n"
                "net = nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(1)])\n"
                "X = jax.random.uniform(jax.random.PRNGKey(0), (2, 4))\n"
                "params = net.init(jax.random.PRNGKey(1), X)\n"
                "net.apply(params, X).shape"),
            "tensorflow": (
                "import tensorflow as tf\n"
                "tf.random.set_seed(0)\n"
                "net = tf.keras.models.Sequential([\n"
                "    tf.keras.layers.Dense(8), tf.keras.layers.ReLU(), tf.keras.layers.Dense(1)])\n"
                "X = tf.random.uniform((2, 4))\n"
                "net(X).shape"),
            "mxnet": (
                "import mxnet as mx\n"
                "from mxnet import init, np, npx\n"
                "from mxnet.gluon import nn\n"
                "npx.set_np()\n"
                "mx.random.seed(0)\n"
                "net = nn.Sequential()\n"
                "net.add(nn.Dense(8), nn.Activation('relu'), nn.Dense(1))\n"
                "net.initialize()  # Use the default initialization method\n"
                "X = np.random.uniform(size=(2, 4))\n"
                "net(X).shape"),
        },
        multiparam=(
            "import multiparam as mp\n"
            "m = mp.wrap(net, sample_input=X)\n"
            "m"),
        multiparam_overrides={"jax": (
            "import multiparam as mp\n"
            "m = mp.wrap(net, variables=params)   # Flax keeps parameters outside the model\n"
            "m")},
        note={"mxnet": "The chapter's Gluon code fuses ReLU into Dense(8, activation='relu'); "
                       "kept apart here so layer 2 is the output layer everywhere."},
    ),
    Step(
        "access", "One layer's parameters",
        native={
            "torch": "net[2].state_dict()",
            "jax": "params['params']['layers_2']",
            "tensorflow": "net.layers[2].weights",
            "mxnet": "net[2].params",
        },
        multiparam="m[2].params()",
        note={"jax": "Flax names Sequential children layers_<i>; only layers with parameters appear.",
              "tensorflow": "Keras stores the kernel as (in, out); multiparam shows (out, in)."},
    ),
    Step(
        "targeted", "A targeted parameter: its type and its value",
        native={
            "torch": "type(net[2].bias), net[2].bias.data",
            "jax": "bias = params['params']['layers_2']['bias']\ntype(bias), bias",
            "tensorflow": ("type(net.layers[2].weights[1]), "
                           "tf.convert_to_tensor(net.layers[2].weights[1])"),
            "mxnet": "type(net[2].bias), net[2].bias.data()",
        },
        multiparam='p = m["2.bias"]\ntype(p.native).__name__, p.value',
    ),
    Step(
        "grad", "The gradient before any backward",
        native={
            "torch": "net[2].weight.grad == None",
            "jax": "hasattr(params['params']['layers_2']['kernel'], 'grad')",
            "tensorflow": "hasattr(net.layers[2].kernel, 'grad')",
            "mxnet": "net[2].weight.grad()",
        },
        multiparam='m["2.weight"].grad is None',
        note={"jax": "JAX keeps no gradient on parameters: jax.grad computes them on demand.",
              "tensorflow": "Keras variables keep no gradient: GradientTape returns them.",
              "mxnet": "Gluon allocates gradient buffers at initialisation: zeros, not None."},
    ),
    Step(
        "all", "All parameters at once",
        native={
            "torch": "[(name, param.shape) for name, param in net.named_parameters()]",
            "jax": "jax.tree_util.tree_map(lambda x: x.shape, params)",
            "tensorflow": "[(w.path, w.shape) for w in net.weights]",
            "mxnet": "net.collect_params()",
        },
        multiparam="m.shapes()",
        note={"mxnet": "Gluon's names carry global counters (dense0_weight); canonical names do not."},
    ),
    Step(
        "summary", "Canonical and native names side by side",
        native={
            "torch": "sum(p.numel() for p in net.parameters())",
            "jax": "sum(x.size for x in jax.tree_util.tree_leaves(params))",
            "tensorflow": "net.count_params()",
            "mxnet": "sum(p.data().size for p in net.collect_params().values())",
        },
        multiparam="print(m.summary())",
    ),
    Step(
        "regex", "Selecting parameters with a regular expression",
        native={
            "torch": "import re\n[n for n, _ in net.named_parameters() if re.match('.*weight', n)]",
            "jax": ("from flax import traverse_util\n"
                    "[k for k in traverse_util.flatten_dict(params['params'], sep='/') "
                    "if k.endswith('kernel')]"),
            "tensorflow": "[w.path for w in net.weights if w.path.endswith('kernel')]",
            "mxnet": "net.collect_params('.*weight')",
        },
        multiparam="list(m.named_parameters('.*weight'))",
        note={"mxnet": "Gluon's collect_params(regex) is the idiom multiparam follows (re.match)."},
    ),
    Step(
        "nested", "Nested blocks: rgnet, and rgnet[0][1][0].bias",
        native={
            "torch": (
                "def block1():\n"
                "    return nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(4), nn.ReLU())\n"
                "def block2():\n"
                "    net = nn.Sequential()\n"
                "    for i in range(4):\n"
                "        net.add_module(f'block {i}', block1())\n"
                "    return net\n"
                "rgnet = nn.Sequential(block2(), nn.LazyLinear(1))\n"
                "rgnet(X)\n"
                "rgnet[0][1][0].bias.data"),
            "jax": (
                "def block1():\n"
                "    return nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(4), nn.relu])\n"
                "def block2():\n"
                "    return nn.Sequential([block1() for i in range(4)])\n"
                "rgnet = nn.Sequential([block2(), nn.Dense(1)])\n"
                "rg_params = rgnet.init(jax.random.PRNGKey(2), X)\n"
                "rg_params['params']['layers_0']['layers_1']['layers_0']['bias']"),
            "tensorflow": (
                "def block1():\n"
                "    return tf.keras.Sequential([tf.keras.layers.Dense(8), tf.keras.layers.ReLU(),\n"
                "                                tf.keras.layers.Dense(4), tf.keras.layers.ReLU()])\n"
                "def block2():\n"
                "    return tf.keras.Sequential([block1() for i in range(4)])\n"
                "rgnet = tf.keras.Sequential([block2(), tf.keras.layers.Dense(1)])\n"
                "rgnet(X)\n"
                "rgnet.layers[0].layers[1].layers[0].bias"),
            "mxnet": (
                "def block1():\n"
                "    net = nn.Sequential()\n"
                "    net.add(nn.Dense(8), nn.Activation('relu'), nn.Dense(4), nn.Activation('relu'))\n"
                "    return net\n"
                "def block2():\n"
                "    net = nn.Sequential()\n"
                "    for i in range(4):\n"
                "        net.add(block1())\n"
                "    return net\n"
                "rgnet = nn.Sequential()\n"
                "rgnet.add(block2(), nn.Dense(1))\n"
                "rgnet.initialize()\n"
                "rgnet(X)\n"
                "rgnet[0][1][0].bias.data()"),
        },
        multiparam=(
            "rg = mp.wrap(rgnet, sample_input=X)\n"
            "print(rg[0][1][0].path, rg[0][1][0].params()['bias'].value)\n"
            "len(rg.named_parameters()), rg.num_parameters()"),
        multiparam_overrides={"jax": (
            "rg = mp.wrap(rgnet, variables=rg_params)\n"
            "print(rg[0][1][0].path, rg[0][1][0].params()['bias'].value)\n"
            "len(rg.named_parameters()), rg.num_parameters()")},
        note={"torch": "Only torch names the blocks ('block 1'); the others number them, "
                       "so canonical paths follow each model's own structure."},
    ),
    Step(
        "spec", "One neutral spec, built natively: identical canonical names",
        native={
            "torch": "type(mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), mp.nn.Dense(1)).build('torch'))",
            "jax": "type(mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), mp.nn.Dense(1)).build('jax'))",
            "tensorflow": ("type(mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), mp.nn.Dense(1))"
                           ".build('tensorflow'))"),
            "mxnet": "type(mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), mp.nn.Dense(1)).build('mxnet'))",
        },
        multiparam=(
            "spec = mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), mp.nn.Dense(1))\n"
            "same = mp.wrap(spec, sample_input=X)   # built for the current backend\n"
            "[(name, p.native_name, p.shape) for name, p in same.named_parameters().items()]"),
    ),
    Step(
        "deferred", "Deferred initialisation: shapes before and after the first forward",
        native={
            "torch": (
                "def lazy_mlp():\n"
                "    return nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))\n"
                "lazy_net = lazy_mlp()\n"
                "print(lazy_net[0].weight)\n"
                "lazy_net(X)\n"
                "lazy_net[0].weight.shape"),
            "jax": (
                "def lazy_mlp():\n"
                "    return nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(1)])\n"
                "lazy_net = lazy_mlp()\n"
                "print(lazy_net.layers[0].features)   # no input size anywhere: init infers it\n"
                "lazy_params = lazy_net.init(jax.random.PRNGKey(5), X)\n"
                "jax.tree_util.tree_map(lambda x: x.shape, lazy_params)"),
            "tensorflow": (
                "def lazy_mlp():\n"
                "    return tf.keras.models.Sequential([\n"
                "        tf.keras.layers.Dense(8), tf.keras.layers.ReLU(), tf.keras.layers.Dense(1)])\n"
                "lazy_net = lazy_mlp()\n"
                "print(lazy_net.weights)\n"
                "lazy_net(X)\n"
                "[w.shape for w in lazy_net.weights]"),
            "mxnet": (
                "def lazy_mlp():\n"
                "    net = nn.Sequential()\n"
                "    net.add(nn.Dense(8), nn.Activation('relu'), nn.Dense(1))\n"
                "    net.initialize()   # deferred: input sizes are not known yet\n"
                "    return net\n"
                "lazy_net = lazy_mlp()\n"
                "print(lazy_net.collect_params())\n"
                "lazy_net(X)\n"
                "lazy_net.collect_params()"),
        },
        multiparam=(
            "lazy = mp.wrap(lazy_mlp())   # a fresh one, no sample input: input sizes unknown\n"
            "print(lazy.shapes())\n"
            "lazy(X)\n"
            "lazy.shapes()"),
        note={"jax": "Flax has no parameters at all before init; multiparam shows the shapes it "
                     "will have, None where the input decides.",
              "mxnet": "Gluon marks unknown dims 0 (-1 in the numpy interface) until the first forward."},
    ),
    Step(
        "init_normal", "Built-in initialisation: normal(0, 0.01) weights, zero biases",
        native={
            "torch": (
                "def init_normal(module):\n"
                "    if type(module) == nn.Linear:\n"
                "        nn.init.normal_(module.weight, mean=0, std=0.01)\n"
                "        nn.init.zeros_(module.bias)\n"
                "net.apply(init_normal)\n"
                "net[0].weight.data[0], net[0].bias.data[0]"),
            "jax": (
                "net_n = nn.Sequential([nn.Dense(8, kernel_init=nn.initializers.normal(0.01),\n"
                "                                bias_init=nn.initializers.zeros),\n"
                "                       nn.relu, nn.Dense(1)])\n"
                "params_n = net_n.init(jax.random.PRNGKey(6), X)\n"
                "params_n['params']['layers_0']['kernel'][:, 0], params_n['params']['layers_0']['bias'][0]"),
            "tensorflow": (
                "for layer in net.layers:\n"
                "    if isinstance(layer, tf.keras.layers.Dense):\n"
                "        layer.kernel.assign(tf.keras.initializers.RandomNormal(0, 0.01)(layer.kernel.shape))\n"
                "        layer.bias.assign(tf.keras.initializers.Zeros()(layer.bias.shape))\n"
                "net.layers[0].kernel[:, 0], net.layers[0].bias[0]"),
            "mxnet": (
                "net.initialize(init=init.Normal(sigma=0.01), force_reinit=True)\n"
                "net[0].weight.data()[0], net[0].bias.data()[0]"),
        },
        multiparam=(
            "m.init(mp.init.normal(0, 0.01), where=mp.nn.Dense, seed=0)   # biases: zeros\n"
            "print(m[\"0.weight\"].value[0], m[\"0.bias\"].value[0])"),
        note={"jax": "Flax initialisers are chosen when the layer is built (kernel_init=); "
                     "multiparam re-initialises the existing pytree instead.",
              "mxnet": "Gluon re-initialises with initialize(..., force_reinit=True); "
                       "multiparam always does."},
    ),
    Step(
        "init_constant", "Built-in initialisation: constant 1",
        native={
            "torch": (
                "def init_constant(module):\n"
                "    if type(module) == nn.Linear:\n"
                "        nn.init.constant_(module.weight, 1)\n"
                "        nn.init.zeros_(module.bias)\n"
                "net.apply(init_constant)\n"
                "net[0].weight.data[0], net[0].bias.data[0]"),
            "jax": (
                "net_c = nn.Sequential([nn.Dense(8, kernel_init=nn.initializers.constant(1),\n"
                "                                bias_init=nn.initializers.zeros),\n"
                "                       nn.relu, nn.Dense(1)])\n"
                "params_c = net_c.init(jax.random.PRNGKey(7), X)\n"
                "params_c['params']['layers_0']['kernel'][:, 0], params_c['params']['layers_0']['bias'][0]"),
            "tensorflow": (
                "for layer in net.layers:\n"
                "    if isinstance(layer, tf.keras.layers.Dense):\n"
                "        layer.kernel.assign(tf.keras.initializers.Constant(1)(layer.kernel.shape))\n"
                "        layer.bias.assign(tf.keras.initializers.Zeros()(layer.bias.shape))\n"
                "net.layers[0].kernel[:, 0], net.layers[0].bias[0]"),
            "mxnet": (
                "net.initialize(init=init.Constant(1), force_reinit=True)\n"
                "net[0].weight.data()[0], net[0].bias.data()[0]"),
        },
        multiparam=(
            "m.init(mp.init.constant(1), where=mp.nn.Dense)\n"
            "print(m[\"0.weight\"].value[0], m[\"0.bias\"].value[0])"),
        note={"mxnet": "Gluon initializers dispatch on the name: *_bias gets zeros whatever "
                       "the initializer, as multiparam's bias-like roles do."},
    ),
    Step(
        "init_layers", "Different initialisers per layer: xavier on layer 0, 42 on layer 2",
        native={
            "torch": (
                "def xavier(module):\n"
                "    if type(module) == nn.Linear:\n"
                "        nn.init.xavier_uniform_(module.weight)\n"
                "def init_42(module):\n"
                "    if type(module) == nn.Linear:\n"
                "        nn.init.constant_(module.weight, 42)\n"
                "net[0].apply(xavier)\n"
                "net[2].apply(init_42)\n"
                "print(net[0].weight.data[0])\n"
                "print(net[2].weight.data)"),
            "jax": (
                "net_x = nn.Sequential([nn.Dense(8, kernel_init=nn.initializers.xavier_uniform()),\n"
                "                       nn.relu, nn.Dense(1, kernel_init=nn.initializers.constant(42))])\n"
                "params_x = net_x.init(jax.random.PRNGKey(8), X)\n"
                "print(params_x['params']['layers_0']['kernel'][:, 0])\n"
                "print(params_x['params']['layers_2']['kernel'])"),
            "tensorflow": (
                "k0, k2 = net.layers[0].kernel, net.layers[2].kernel\n"
                "k0.assign(tf.keras.initializers.GlorotUniform()(k0.shape))\n"
                "k2.assign(tf.keras.initializers.Constant(42)(k2.shape))\n"
                "print(k0[:, 0])\n"
                "print(k2)"),
            "mxnet": (
                "net[0].weight.initialize(init=init.Xavier(), force_reinit=True)\n"
                "net[2].weight.initialize(init=init.Constant(42), force_reinit=True)\n"
                "print(net[0].weight.data()[0])\n"
                "print(net[2].weight.data())"),
        },
        multiparam=(
            "m.init(mp.init.xavier_uniform(), where=\"0.weight\", seed=0)\n"
            "m.init(mp.init.constant(42), where=\"2.weight\")\n"
            "print(m[\"0.weight\"].value[0])\n"
            "print(m[\"2.weight\"].value)"),
        note={"tensorflow": "Keras kernels are (in, out): layer 2's 42s print as a column; "
                            "multiparam shows (out, in) everywhere."},
    ),
    Step(
        "init_custom", "A custom initializer: U(-10, 10), zeroing |w| < 5",
        native={
            "torch": (
                "def my_init(module):\n"
                "    if type(module) == nn.Linear:\n"
                "        print('Init', *[(name, param.shape) for name, param in module.named_parameters()][0])\n"
                "        nn.init.uniform_(module.weight, -10, 10)\n"
                "        module.weight.data *= module.weight.data.abs() >= 5\n"
                "net.apply(my_init)\n"
                "net[0].weight[:2]"),
            "jax": (
                "def my_init(key, shape, dtype=jax.numpy.float32):\n"
                "    print('Init', shape)\n"
                "    data = jax.random.uniform(key, shape, dtype, -10, 10)\n"
                "    return data * (jax.numpy.abs(data) >= 5)\n"
                "net_my = nn.Sequential([nn.Dense(8, kernel_init=my_init), nn.relu,\n"
                "                        nn.Dense(1, kernel_init=my_init)])\n"
                "params_my = net_my.init(jax.random.PRNGKey(9), X)\n"
                "params_my['params']['layers_0']['kernel'][:, :2]"),
            "tensorflow": (
                "class MyInit(tf.keras.initializers.Initializer):\n"
                "    def __call__(self, shape, dtype='float32'):\n"
                "        print('Init', shape)\n"
                "        data = tf.random.uniform(shape, -10, 10, dtype=dtype)\n"
                "        return data * tf.cast(tf.abs(data) >= 5, data.dtype)\n"
                "for layer in net.layers:\n"
                "    if isinstance(layer, tf.keras.layers.Dense):\n"
                "        layer.kernel.assign(MyInit()(layer.kernel.shape))\n"
                "net.layers[0].kernel[:, :2]"),
            "mxnet": (
                "class MyInit(init.Initializer):\n"
                "    def _init_weight(self, name, data):\n"
                "        print('Init', name, data.shape)\n"
                "        data[:] = np.random.uniform(-10, 10, data.shape)\n"
                "        data *= np.abs(data) >= 5\n"
                "net.initialize(MyInit(), force_reinit=True)\n"
                "net[0].weight.data()[:2]"),
        },
        multiparam=(
            "def my_init(shape, rng, name):   # any fn(shape, rng[, name]) -> array\n"
            "    print('Init', name, shape)\n"
            "    data = rng.uniform(-10, 10, shape)\n"
            "    return data * (abs(data) >= 5)\n"
            "m.init(my_init, where=mp.nn.Dense, seed=0)\n"
            "print(m[\"0.weight\"].value[:2])"),
        note={"mxnet": "Gluon's Initializer sees its global names (dense0_weight); "
                       "a multiparam initializer sees canonical ones."},
    ),
    Step(
        "edit", "Setting parameters directly",
        native={
            "torch": (
                "net[0].weight.data[:] += 1\n"
                "net[0].weight.data[0, 0] = 42\n"
                "net[0].weight.data[0]"),
            "jax": (
                "kernel = params['params']['layers_0']['kernel']   # JAX arrays are immutable:\n"
                "params['params']['layers_0']['kernel'] = (kernel + 1).at[0, 0].set(42)   # a new one\n"
                "params['params']['layers_0']['kernel'][:, 0]"),
            "tensorflow": (
                "kernel = net.layers[0].kernel\n"
                "kernel.assign(kernel + 1)\n"
                "kernel.assign(tf.tensor_scatter_nd_update(kernel, [[0, 0]], [42.0]))\n"
                "kernel[:, 0]"),
            "mxnet": (
                "net[0].weight.data()[:] += 1\n"
                "net[0].weight.data()[0, 0] = 42\n"
                "net[0].weight.data()[0]"),
        },
        multiparam=(
            "w = m[\"0.weight\"]\n"
            "m.init(mp.init.constant(1), where=\"0.weight\")   # a known start, to compare\n"
            "w[:] += 1\n"
            "w[0, 0] = 42\n"
            "print(w.value[0])"),
        note={"tensorflow": "Keras variables change through assign(); w[0, 0] reads but cannot be assigned.",
              "jax": "Flax: multiparam's handle keeps its own pytree, so the edit above is not "
                     "seen by m, nor m's by params."},
    ),
    Step(
        "tied", "Tied parameters: one shared layer used twice",
        native={
            "torch": (
                "shared = nn.LazyLinear(8)\n"
                "tnet = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), shared, nn.ReLU(), shared,\n"
                "                     nn.ReLU(), nn.LazyLinear(1))\n"
                "tnet(X)\n"
                "print(tnet[2].weight.data[0] == tnet[4].weight.data[0])\n"
                "tnet[2].weight.data[0, 0] = 100\n"
                "print(tnet[2].weight.data[0] == tnet[4].weight.data[0])"),
            "jax": (
                "shared = nn.Dense(8)\n"
                "tnet = nn.Sequential([nn.Dense(8), nn.relu, shared, nn.relu, shared,\n"
                "                      nn.relu, nn.Dense(1)])\n"
                "t_params = tnet.init(jax.random.PRNGKey(10), X)\n"
                "list(t_params['params'])   # the shared layer has one entry"),
            "tensorflow": (
                "shared = tf.keras.layers.Dense(8)\n"
                "tnet = tf.keras.models.Sequential([\n"
                "    tf.keras.layers.Dense(8), tf.keras.layers.ReLU(), shared, tf.keras.layers.ReLU(),\n"
                "    shared, tf.keras.layers.ReLU(), tf.keras.layers.Dense(1)])\n"
                "tnet(X)\n"
                "print(len(tnet.layers), len(tnet.weights), tnet.layers[2] is tnet.layers[4])\n"
                "net_k = tnet.layers[2].kernel\n"
                "net_k.assign(tf.tensor_scatter_nd_update(net_k, [[0, 0]], [100.0]))\n"
                "print(tnet.layers[4].kernel[0, 0])"),
            "mxnet": (
                "shared = nn.Dense(8)\n"
                "tnet = nn.Sequential()\n"
                "tnet.add(nn.Dense(8), nn.Activation('relu'), shared, nn.Activation('relu'),\n"
                "         nn.Dense(8, params=shared.params), nn.Activation('relu'), nn.Dense(1))\n"
                "tnet.initialize()\n"
                "tnet(X)\n"
                "print(tnet[2].weight.data()[0] == tnet[4].weight.data()[0])\n"
                "tnet[2].weight.data()[0, 0] = 100\n"
                "print(tnet[2].weight.data()[0] == tnet[4].weight.data()[0])"),
        },
        multiparam=(
            "tm = mp.wrap(tnet, sample_input=X)\n"
            "print(tm.ties())\n"
            "tm[\"2.weight\"][0, 0] = 100\n"
            "print(tm[\"2.weight\"] is tm[\"4.weight\"], tm[\"4.weight\"].value[0, 0])"),
        multiparam_overrides={"jax": (
            "tm = mp.wrap(tnet, variables=t_params)\n"
            "print(tm.ties())\n"
            "tm[\"2.weight\"][0, 0] = 100\n"
            "print(tm[\"2.weight\"] is tm[\"4.weight\"], tm[\"4.weight\"].value[0, 0])")},
        note={"tensorflow": "Keras 3 keeps a reused layer twice in layers (7) but once in weights.",
              "jax": "Flax stores a shared module's parameters once (under its first name); "
                     "multiparam names both uses.",
              "mxnet": "Gluon ties by handing one block's params to another (params=shared.params)."},
    ),
    Step(
        "tied_grad", "A tied Linear(1, 1) set to 3: y = 9 and the summed gradient 6",
        native={
            "torch": (
                "linear = nn.Linear(1, 1, bias=False)\n"
                "lnet = nn.Sequential(linear, linear)\n"
                "nn.init.constant_(linear.weight, 3)\n"
                "print(id(lnet[0].weight) == id(lnet[1].weight))\n"
                "x = torch.ones(1, 1)\n"
                "y = lnet(x).sum()\n"
                "y.backward()\n"
                "print(y, lnet[0].weight.grad)   # 3 from each use: 6"),
            "jax": (
                "linear = nn.Dense(1, use_bias=False, kernel_init=nn.initializers.constant(3))\n"
                "lnet = nn.Sequential([linear, linear])\n"
                "x = jax.numpy.ones((1, 1))\n"
                "l_params = lnet.init(jax.random.PRNGKey(11), x)\n"
                "y, g = jax.value_and_grad(lambda p: lnet.apply(p, x).sum())(l_params)\n"
                "print(y, g['params'])"),
            "tensorflow": (
                "linear = tf.keras.layers.Dense(1, use_bias=False,\n"
                "                               kernel_initializer=tf.keras.initializers.Constant(3))\n"
                "lnet = tf.keras.models.Sequential([linear, linear])\n"
                "x = tf.ones((1, 1))\n"
                "with tf.GradientTape() as tape:\n"
                "    y = tf.reduce_sum(lnet(x))\n"
                "print(lnet.layers[0] is lnet.layers[1], len(lnet.trainable_variables))\n"
                "print(y, tape.gradient(y, lnet.trainable_variables))"),
            "mxnet": (
                "from mxnet import autograd\n"
                "linear = nn.Dense(1, use_bias=False)\n"
                "lnet = nn.Sequential()\n"
                "lnet.add(linear, nn.Dense(1, use_bias=False, params=linear.params))\n"
                "lnet.initialize(init.Constant(3))\n"
                "x = np.ones((1, 1))\n"
                "with autograd.record():\n"
                "    y = lnet(x).sum()\n"
                "y.backward()\n"
                "print(lnet[0].weight is lnet[1].weight)\n"
                "print(y, lnet[0].weight.grad())"),
        },
        multiparam=(
            "lm = mp.wrap(lnet, sample_input=x)\n"
            "lm.init(mp.init.constant(3))\n"
            "print(lm.ties(), lm[\"0.weight\"] is lm[\"1.weight\"])\n"
            "print(float(mp.param.as_numpy(lm(x)).sum()), lm.grad(x))"),
        multiparam_overrides={"jax": (
            "lm = mp.wrap(lnet, variables=l_params)\n"
            "lm.init(mp.init.constant(3))\n"
            "print(lm.ties(), lm[\"0.weight\"] is lm[\"1.weight\"])\n"
            "print(float(mp.param.as_numpy(lm(x)).sum()), lm.grad(x))")},
        note={"jax": "Flax keeps no gradient on the parameter: jax.grad returns a pytree of them.",
              "tensorflow": "Keras keeps no gradient on the variable: GradientTape returns them."},
    ),
    Step(
        "custom_param", "Registering a parameter of your own",
        native={
            "torch": (
                "class MyModel(nn.Module):\n"
                "    def __init__(self):\n"
                "        super().__init__()\n"
                "        self.weight1 = nn.Parameter(torch.rand(20, 20))   # registered\n"
                "        self.weight2 = torch.rand(20, 20)                 # a plain tensor: not\n"
                "    def forward(self, x):\n"
                "        return x @ self.weight1 + x @ self.weight2\n"
                "mine, x20 = MyModel(), torch.ones(1, 20)\n"
                "[name for name, _ in mine.named_parameters()]"),
            "jax": (
                "class MyModel(nn.Module):\n"
                "    @nn.compact\n"
                "    def __call__(self, x):\n"
                "        weight1 = self.param('weight1', nn.initializers.uniform(1.0), (20, 20))\n"
                "        weight2 = jax.random.uniform(jax.random.PRNGKey(0), (20, 20))  # not a param\n"
                "        return x @ weight1 + x @ weight2\n"
                "mine, x20 = MyModel(), jax.numpy.ones((1, 20))\n"
                "mine_params = mine.init(jax.random.PRNGKey(12), x20)\n"
                "list(mine_params['params'])"),
            "tensorflow": (
                "class MyModel(tf.keras.Model):\n"
                "    def __init__(self):\n"
                "        super().__init__()\n"
                "        self.weight1 = self.add_weight(shape=(20, 20), initializer='random_uniform',\n"
                "                                       name='weight1')   # registered\n"
                "        self.weight2 = tf.random.uniform((20, 20))        # a plain tensor: not\n"
                "    def call(self, x):\n"
                "        return x @ self.weight1 + x @ self.weight2\n"
                "mine, x20 = MyModel(), tf.ones((1, 20))\n"
                "[w.path for w in mine.weights]"),
            "mxnet": (
                "from mxnet import gluon\n"
                "class MyModel(gluon.Block):\n"
                "    def __init__(self, **kwargs):\n"
                "        super().__init__(**kwargs)\n"
                "        self.weight1 = self.params.get('weight1', shape=(20, 20))   # a Parameter\n"
                "        self.weight2 = np.random.uniform(size=(20, 20))   # a plain array: not\n"
                "    def forward(self, x):\n"
                "        return np.dot(x, self.weight1.data()) + np.dot(x, self.weight2)\n"
                "mine, x20 = MyModel(), np.ones((1, 20))\n"
                "mine.initialize()\n"
                "list(mine.collect_params())"),
        },
        multiparam=(
            "mm = mp.wrap(mine, sample_input=x20)\n"
            "{name: p.shape for name, p in mm.named_parameters().items()}"),
        multiparam_overrides={"jax": (
            "mm = mp.wrap(mine, variables=mine_params)\n"
            "{name: p.shape for name, p in mm.named_parameters().items()}")},
        note={"mxnet": "Gluon's parameter names carry the block's counter prefix (mymodel0_).",
              "tensorflow": "Keras paths carry the model's generated name (my_model/weight1)."},
    ),
    Step(
        "init_hist", "Each initializer's values, per framework (the histograms)",
        native={
            "torch": "nn.Linear(64, 256).weight.std()   # torch's own default",
            "jax": ("dense = nn.Dense(256)   # Flax's own default\n"
                    "dense.init(jax.random.PRNGKey(13), jax.numpy.ones((1, 64)))['params']['kernel'].std()"),
            "tensorflow": ("dense = tf.keras.layers.Dense(256)   # Keras' own default\n"
                           "dense.build((1, 64))\n"
                           "tf.math.reduce_std(dense.kernel)"),
            "mxnet": ("dense = nn.Dense(256, in_units=64)   # Gluon's own default\n"
                      "dense.initialize()\n"
                      "dense.weight.data().std()"),
        },
        multiparam=(
            "import numpy\n"
            "big = mp.wrap(mp.nn.Sequential(mp.nn.Dense(256)), sample_input=numpy.ones((1, 64), 'float32'))\n"
            "hist = {}\n"
            "for name, initializer, r in [('framework default', mp.init.framework_default(), 0.3),\n"
            "                             ('normal(0, 0.01)', mp.init.normal(0, 0.01), 0.04),\n"
            "                             ('xavier_uniform()', mp.init.xavier_uniform(), 0.3),\n"
            "                             ('my_init (custom)', my_init, 10)]:\n"
            "    big.init(initializer, where='0.weight', seed=1, mode='native')\n"
            "    w = big['0.weight'].value\n"
            "    hist[name] = [r, numpy.histogram(w, bins=40, range=(-r, r))[0].tolist()]\n"
            "    print(f'{name:18s} mean {w.mean():+.4f}  std {w.std():.4f}')"),
        about="mode='native' draws with each framework's own random ops: the same "
              "distributions, different numbers; the defaults differ for real.",
    ),
    Step(
        "exercise", "Exercise: train an MLP with a shared layer; parameter and gradient norms per layer",
        native={b: "" for b in BACKEND_ORDER},
        multiparam=(
            "import numpy\n"
            "shared = mp.nn.Dense(8)\n"
            "ex = mp.wrap(mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), shared, mp.nn.ReLU(), shared,\n"
            "                              mp.nn.ReLU(), mp.nn.Dense(1)), sample_input=X)\n"
            "ex.init(mp.init.xavier_uniform(), seed=0)   # the same start on every backend\n"
            "xs = numpy.random.default_rng(0).uniform(-1, 1, (32, 4)).astype('float32')\n"
            "ys = numpy.sin(xs).sum(axis=1, keepdims=True)\n"
            "for step in range(41):\n"
            "    grads = ex.grad(xs, loss='mse', target=ys)\n"
            "    if step % 40 == 0:\n"
            "        print(f'step {step}: |param| / |grad| per layer')\n"
            "        for name, p in ex.named_parameters().items():\n"
            "            norms = numpy.linalg.norm(p.value), numpy.linalg.norm(grads[name])\n"
            "            print(f'  {name:9s} {norms[0]:7.3f} {norms[1]:7.3f}')\n"
            "    for name, p in ex.named_parameters().items():\n"
            "        p.set(p.value - 0.1 * grads[name])\n"
            "ex.ties(), ex['2.weight'] is ex['4.weight']"),
        about="One multiparam loop trains on every backend (no native code): m.grad is the "
              "framework's own autograd; the shared layer's gradient sums its two uses.",
    ),
)

STEP_IDS = tuple(s.id for s in STEPS)
