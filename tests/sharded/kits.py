"""Sharded native models and the frameworks' own truth, for the sharded suite.

Test bodies never name a framework: they take a *case* from here (a builder
of a sharded model) and read truth through the case (``jax.device_get`` of
a leaf, its ``NamedSharding``; torch's ``DTensor.full_tensor()`` and
``placements`` in the workers of :mod:`tests.sharded.torch_workers`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Tuple

import numpy as np

#: mesh shapes the issue asks for, with their axis names
MESHES = {"8": ((8,), ("fsdp",)), "2x4": ((2, 4), ("data", "model")), "4x2": ((4, 2), ("data", "model"))}
IN, HIDDEN, OUT = 8, 16, 4
X = np.random.default_rng(0).standard_normal((2, IN)).astype(np.float32)


def specs(names: Tuple[str, ...]) -> Dict[str, tuple]:
    """PartitionSpecs (as tuples) of the MLP's kernels (in, out) and first bias."""
    if len(names) == 1:
        a, = names
        return {"k0": (a, None), "b0": (a,), "k1": (a, None)}
    a, b = names
    return {"k0": (a, b), "b0": (b,), "k1": (b, a)}


@dataclass
class Case:
    """A sharded model: ``model`` (native), ``wrap()`` its handle,
    ``truth(name)`` the whole canonical value the framework gathers itself,
    ``native_sharding(name)`` the framework's own sharding object of it,
    ``forward(x)`` its jitted forward as NumPy, ``grads(m, x)`` the
    framework's own ``jax.grad`` of ``sum(forward(x))`` with the same
    sharded arrays: ``{name: (canonical gradient gathered by JAX, the
    distinct canonical blocks of its sharding)}``."""

    model: Any
    wrap: Callable[[], Any]
    truth: Callable[[Any, str], np.ndarray]
    native_sharding: Callable[[Any, str], Any]
    forward: Callable[[Any, np.ndarray], np.ndarray]
    grads: Callable[[Any, np.ndarray], Dict[str, tuple]]


# -- JAX: Flax linen with nn.with_partitioning, Flax NNX with sharding metadata ----------
def _mesh(mesh_key):
    import jax
    from jax.sharding import Mesh
    shape, names = MESHES[mesh_key]
    return Mesh(np.array(jax.devices()[:int(np.prod(shape))]).reshape(shape), names), names


def _canonical(kernel_or_bias: np.ndarray) -> np.ndarray:
    return kernel_or_bias.T if kernel_or_bias.ndim == 2 else kernel_or_bias


def _grad_truth(native_grad) -> tuple:
    """A JAX gradient as (canonical whole array by ``jax.device_get``, the
    set of its distinct canonical blocks as ``((start, stop), ...)``)."""
    import jax
    shape = native_grad.shape
    blocks = set()
    for index in native_grad.sharding.devices_indices_map(shape).values():
        key = tuple(sl.indices(n)[:2] for sl, n in zip(index, shape))
        blocks.add(key[::-1] if len(key) == 2 else key)     # canonical: kernels transposed
    return _canonical(np.asarray(jax.device_get(native_grad))), blocks


def linen_case(mesh_key: str) -> Case:
    import jax
    import jax.numpy as jnp
    from flax import linen as nn
    from jax.sharding import NamedSharding

    import multiparam as mp
    mesh, names = _mesh(mesh_key)
    sp = specs(names)
    part = nn.with_partitioning

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Dense(HIDDEN, kernel_init=part(nn.initializers.lecun_normal(), sp["k0"]),
                         bias_init=part(nn.initializers.normal(1.0), sp["b0"]))(x)
            x = nn.relu(x)
            return nn.Dense(OUT, kernel_init=part(nn.initializers.lecun_normal(), sp["k1"]),
                            bias_init=nn.initializers.normal(1.0))(x)

    model = MLP()
    abstract = jax.eval_shape(model.init, jax.random.PRNGKey(0), X)
    shardings = jax.tree.map(lambda s: NamedSharding(mesh, s), nn.get_partition_spec(abstract))
    variables = jax.jit(model.init, out_shardings=shardings)(jax.random.PRNGKey(0), X)
    native_names = {"Dense_0.weight": ("Dense_0", "kernel"), "Dense_0.bias": ("Dense_0", "bias"),
                    "Dense_1.weight": ("Dense_1", "kernel"), "Dense_1.bias": ("Dense_1", "bias")}

    def leaf(m, name):
        layer, attr = native_names[name]
        return nn.unbox(m.flax.variables["params"][layer][attr])

    apply = jax.jit(model.apply)

    def grads(m, x):
        params = nn.unbox(m.flax.variables["params"])
        g = jax.grad(lambda p: model.apply({"params": p}, jnp.asarray(x)).sum())(params)
        return {name: _grad_truth(g[layer][attr]) for name, (layer, attr) in native_names.items()}

    return Case(model, lambda: mp.wrap(model, variables=variables),
                lambda m, name: _canonical(np.asarray(jax.device_get(leaf(m, name)))),
                lambda m, name: leaf(m, name).sharding,
                lambda m, x: np.asarray(apply(m.flax.variables, jnp.asarray(x))), grads)


def nnx_case(mesh_key: str) -> Case:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    import multiparam as mp
    mesh, names = _mesh(mesh_key)
    sp = specs(names)
    part = nnx.with_partitioning

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.l0 = nnx.Linear(IN, HIDDEN, kernel_init=part(nnx.initializers.lecun_normal(), sp["k0"]),
                                 bias_init=part(nnx.initializers.normal(1.0), sp["b0"]), rngs=rngs)
            self.l1 = nnx.Linear(HIDDEN, OUT, kernel_init=part(nnx.initializers.lecun_normal(), sp["k1"]),
                                 bias_init=nnx.initializers.normal(1.0), rngs=rngs)

        def __call__(self, x):
            return self.l1(nnx.relu(self.l0(x)))

    @nnx.jit
    def create():
        model = MLP(nnx.Rngs(0))
        state = nnx.state(model)
        nnx.update(model, jax.lax.with_sharding_constraint(state, nnx.get_partition_spec(state)))
        return model

    with jax.set_mesh(mesh):
        model = create()

    def var(m, name):
        layer, attr = name.split(".")
        return getattr(getattr(m.native, layer), {"weight": "kernel", "bias": "bias"}[attr]).get_value()

    forward = nnx.jit(lambda model, x: model(x))

    def grads(m, x):
        g = nnx.grad(lambda model: model(jnp.asarray(x)).sum())(m.native)
        out = {}
        for name in ("l0.weight", "l0.bias", "l1.weight", "l1.bias"):
            layer, attr = name.split(".")
            out[name] = _grad_truth(g[layer][{"weight": "kernel", "bias": "bias"}[attr]].get_value())
        return out

    return Case(model, lambda: mp.wrap(model, sample_input=X),
                lambda m, name: _canonical(np.asarray(jax.device_get(var(m, name)))),
                lambda m, name: var(m, name).sharding,
                lambda m, x: np.asarray(forward(m.native, jnp.asarray(x))), grads)


JAX_CASES = {f"{flavour}-{mesh}": (builder, mesh) for flavour, builder in
             (("linen", linen_case), ("nnx", nnx_case)) for mesh in MESHES}


def jax_case(label: str) -> Case:
    builder, mesh = JAX_CASES[label]
    return builder(mesh)


# -- the MLP built from one mp.nn spec, for moving checkpoints between frameworks ---------------
def jax_named_case(mesh_key: str):
    """The spec's MLP on the jax backend (torch's names: ``0.weight`` ...),
    its variables then placed over the mesh as a user would
    (``jax.device_put`` with a NamedSharding per leaf, every dim the mesh
    divides split).  Returns ``(handle, forward(x) as NumPy)``."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec as P

    import multiparam as mp
    mesh, names = _mesh(mesh_key)
    m = mp.wrap(mp.nn.Sequential(*spec_layers(), backend="jax"))
    sizes = dict(zip(names, MESHES[mesh_key][0]))
    axes = list(names) if len(names) > 1 else [names[0], None]

    def place(leaf):
        parts = []
        for d, n in enumerate(leaf.shape):
            a = axes[d] if d < len(axes) else None
            parts.append(a if a is not None and n % sizes[a] == 0 else None)
        return jax.device_put(leaf, NamedSharding(mesh, P(*parts)))

    m.flax.variables = jax.tree.map(place, m.flax.variables)
    return m, lambda x: np.asarray(m(x))


def spec_layers():
    import multiparam as mp
    return [mp.nn.Dense(HIDDEN, in_features=IN), mp.nn.ReLU(), mp.nn.Dense(OUT)]


#: backends whose unsharded models of the spec load the sharded checkpoints
PLAIN_BACKENDS = ("torch", "tensorflow")


def plain_case(label: str):
    """``(handle, forward(x) as NumPy)`` of the spec's MLP on one device."""
    import multiparam as mp
    m = mp.wrap(mp.nn.Sequential(*spec_layers(), backend=label), sample_input=X)
    return m, lambda x: m.adapter.to_numpy(m(x))


def assert_loads(m, forward, path, truth: dict, expected_out: np.ndarray) -> None:
    """``mp.load(m, path)`` gives every parameter the truth's bits, and the
    model's own forward the expected output to 1e-5."""
    import multiparam as mp
    mp.load(m, path)
    for name, p in m.named_parameters().items():
        np.testing.assert_array_equal(np.asarray(p.value), truth[name])
    np.testing.assert_allclose(forward(X), expected_out, rtol=1e-5, atol=1e-5)
