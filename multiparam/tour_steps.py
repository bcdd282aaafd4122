"""The chapter's steps, as code that runs: each framework's own idiom, and
the one multiparam call.  The tour executes exactly these strings and shows
what they printed (nothing here is a hand-written output).

Each backend's native snippets share one namespace, step after step, as the
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
)

STEP_IDS = tuple(s.id for s in STEPS)
