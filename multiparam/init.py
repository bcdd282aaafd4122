"""``mp.init``: initialise parameters the same way on every backend.

    m.init(mp.init.normal(0, 0.01))                  # weights N(0, 0.01^2), biases 0
    m.init(mp.init.constant(42), where=".*bias")     # a regex: exactly what it matches
    m[0].init(mp.init.xavier_uniform())              # one layer
    m.init(mp.init.kaiming_normal(), where=mp.nn.Dense)   # a layer type (or torch.nn.Linear, ...)
    m.apply(lambda layer: layer.kind == "Dense" and layer.init(mp.init.ones()))
    m.init(mp.init.framework_default())              # each framework's own default again
    m.init(my_fn)                                    # fn(shape, rng) or fn(shape, rng, name)

**What gets what.**  An initializer is for weights, as in Gluon's
``initialize``: unless ``where`` is a name regex (or a single Param), the
initializer fills the weights (roles ``weight``, ``embedding``, and other
framework-specific parameters with 2 or more dims) and the other roles are
reset to neutral values: ``bias`` (and roles containing "bias") 0, ``scale``
1, ``running_mean`` 0, ``running_var`` 1.  A regex ``where`` applies the
initializer to exactly the parameters it matches.  ``framework_default()``
gives every selected parameter its framework's default for its layer and
role.  A tied parameter is initialised once, under its first name.

**Reproducible across frameworks (``mode="portable"``, the default).**
Values are drawn with NumPy in canonical layout, in float64, then cast to the
parameter's dtype.  Elementwise initializers (constant, uniform, normal,
truncated normal, and the fan-based ones) draw the flattened parameter in
blocks of :data:`DRAW_BLOCK` values, block ``b`` from
``np.random.default_rng([seed, zlib.crc32(canonical_name), b])``, so a
sharded parameter draws only the blocks its shards cover and gets the same
bits on any mesh; others (orthogonal, a user's function) draw the whole
parameter from ``np.random.default_rng([seed, zlib.crc32(canonical_name)])``
(which is also block 0's generator: NumPy pads short seed sequences with
zeros).  The same initializer, seed and model give bit-identical values on
all four backends, whatever else the call selected.  ``seed=None`` draws a
fresh seed.

**Native mode (``mode="native"``)** uses the framework's own random ops
(torch ``nn.init`` with a ``torch.Generator``, ``keras.random``,
``jax.random``, ``mx.nd.random``) through the adapter's ``native_init`` hook;
values are then reproducible per backend and seed but **differ across
frameworks**.  A parameter the hook cannot do (a custom initializer, a
distribution the framework lacks) falls back to portable mode.  MXNet has no
per-call generator, so its native mode seeds MXNet's global RNG
(``mx.random.seed``) as Gluon's own initialisation relies on it.

**Deferred shapes.**  Initialising a parameter whose shape is not known yet
(torch Lazy modules, Gluon deferred init, unbuilt Keras layers, Flax before
``init``) raises :class:`~multiparam.NotMaterializedError` and changes
nothing: run the model once (``m(X)``) or wrap with ``sample_input=X`` first.

**All or nothing.**  Selection, shapes, fans, and the values of custom
initializers (shape, dtype) are checked before the first write; a bad call
raises :class:`InitError` (``ValueError``), ``ShapeError``, ``DtypeError``,
``TypeError`` or ``NotMaterializedError`` and leaves every parameter as it
was.

**Framework semantics kept.**  Writes go through the adapter's ``write``:
Gluon ``Parameter`` objects stay the same (multiparam always re-initialises,
as ``initialize(force_reinit=True)`` does, and a ``Trainer`` keeps seeing
them); Keras variables are ``assign``-ed in place; Flax linen gets a new
variables pytree in the handle (``m.flax.variables``), used by the next ``m(X)``.
"""
from __future__ import annotations

import re
import zlib
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import numpy as np

from . import layout as _layout
from .errors import DtypeError, InitError
from .initializers import (  # noqa: F401  (re-exported as mp.init.*)
    BY_NAME, Constant, FrameworkDefault, Function, Initializer, Normal, Orthogonal,
    TruncatedNormal, Uniform, VarianceScaling, ZeroRows, by_name, calculate_gain, constant,
    framework_default, kaiming_normal, kaiming_uniform, lecun_normal, normal, ones, orthogonal,
    truncated_normal, uniform, variance_scaling, xavier_normal, xavier_uniform, zeros,
)
from .layer import Layer
from .param import Param
from .sharding import Blocks
from .spec import Spec
from .transaction import WritePlan

if TYPE_CHECKING:  # pragma: no cover
    from .model import Model

__all__ = [
    "Initializer", "InitError", "normal", "uniform", "constant", "zeros", "ones",
    "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "truncated_normal",
    "orthogonal", "lecun_normal", "variance_scaling", "framework_default", "calculate_gain",
    "init_model", "MODES",
]

MODES = ("portable", "native")

# neutral values for the roles an initializer is not meant for
_ZERO, _ONE = zeros(), ones()
_NEUTRAL = {"scale": _ONE, "running_var": _ONE, "running_mean": _ZERO}


def as_initializer(obj: Any) -> Initializer:
    """An Initializer from an Initializer, a built-in's name, or a function
    ``fn(shape, rng)`` / ``fn(shape, rng, name)``."""
    if isinstance(obj, Initializer):
        return obj
    if isinstance(obj, type) and issubclass(obj, Initializer):
        raise TypeError(f"pass an instance: {obj.__name__}(), not the class")
    if isinstance(obj, str):
        return by_name(obj)
    if callable(obj):
        return Function(obj)
    raise TypeError(f"expected an mp.init initializer, a built-in's name or fn(shape, rng), "
                    f"got {type(obj).__name__}")


def param_rng(seed: int, name: str) -> np.random.Generator:
    """The generator portable mode uses for the whole parameter ``name``
    (initializers that are not elementwise: orthogonal, a user's function)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


#: an elementwise initializer's portable values come in blocks of this many
#: values of the flattened canonical parameter, each from its own generator
DRAW_BLOCK = 1 << 16


def block_rng(seed: int, name: str, block: int) -> np.random.Generator:
    """The generator of block ``block`` (values ``block * DRAW_BLOCK`` on,
    in C order) of the parameter ``name``."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8")), block])


def portable_values(init: Initializer, shape: Tuple[int, ...], seed: int, name: str) -> Any:
    """What portable mode draws for the parameter ``name`` of canonical
    ``shape`` with the resolved initializer ``init``, with NumPy alone.

    An elementwise initializer (constant, uniform, normal, truncated normal,
    and the fan-based ones, which resolve to those) is drawn block by block
    (:data:`DRAW_BLOCK` values of the flattened parameter from
    :func:`block_rng`): the result is :class:`~multiparam.sharding.Blocks`,
    so a sharded parameter draws only the blocks its shards cover and the
    values are the same bits whatever the mesh (``np.asarray`` gives the
    whole).  Any other initializer is one draw of the whole parameter from
    :func:`param_rng`."""
    if not init.elementwise:
        out = init.sample(shape, param_rng(seed, name), name)
        return out if isinstance(out, np.ndarray) else np.asarray(out)
    return _Drawn(init, tuple(shape), seed, name, np.float64)


class _Drawn(Blocks):
    """Portable values given block by block; cast (``astype``) they are
    drawn straight into the target dtype, one draw block at a time, so a
    shard costs its own bytes and no float64 copy of it (each value is the
    float64 draw cast, as casting the whole would give)."""

    __slots__ = ("_args",)

    def __init__(self, init: Initializer, shape: Tuple[int, ...], seed: int, name: str, dtype: Any):
        dtype = np.dtype(dtype)
        super().__init__(shape, dtype, lambda index: _draw_box(init, shape, seed, name, index, dtype))
        self._args = (init, seed, name)

    def astype(self, dtype: Any, copy: bool = True) -> Blocks:
        init, seed, name = self._args
        return self if np.dtype(dtype) == self.dtype else _Drawn(init, self.shape, seed, name, dtype)


def _draw_box(init: Initializer, shape: Tuple[int, ...], seed: int, name: str, index,
              dtype: Any = np.float64) -> np.ndarray:
    """The values of the box ``index`` (a slice per dim) of the parameter,
    from the draw blocks its elements fall in.  In C order the box is
    ``runs`` contiguous stretches of ``run`` values of the flattened
    parameter; each draw block is drawn once, when the first stretch that
    needs it comes (stretches go in increasing order)."""
    box = tuple(s.stop - s.start for s in index)
    out = np.empty(box, dtype)
    if out.size == 0:
        return out
    if not shape:                                       # a scalar: block 0, one value
        out[()] = np.asarray(init.sample((1,), block_rng(seed, name, 0), name), np.float64)[0]
        return out
    strides = [int(np.prod(shape[d + 1:], dtype=np.int64)) for d in range(len(shape))]
    # trailing dims the box covers whole join the last partial dim k in one stretch
    k = len(shape) - 1
    while k > 0 and box[k] == shape[k]:
        k -= 1
    run = box[k] * strides[k]
    starts = np.array([index[k].start * strides[k]], dtype=np.int64)
    for d in reversed(range(k)):                        # C order: dim 0 varies slowest
        coords = np.arange(index[d].start, index[d].stop, dtype=np.int64) * strides[d]
        starts = (coords[:, None] + starts[None, :]).reshape(-1)
    rows = out.reshape(len(starts), run)
    total = int(np.prod(shape, dtype=np.int64))
    current, values = -1, None
    for r, start in enumerate(starts.tolist()):
        pos, end = 0, start + run
        while start < end:
            b = start // DRAW_BLOCK
            if b != current:
                values, current = None, b                 # one block in flight
                count = min(DRAW_BLOCK, total - b * DRAW_BLOCK)
                values = np.asarray(init.sample((count,), block_rng(seed, name, b), name), np.float64)
            take = min(end, (b + 1) * DRAW_BLOCK) - start
            off = start - b * DRAW_BLOCK
            rows[r, pos:pos + take] = values[off:off + take]
            start += take
            pos += take
    return out


def native_seed(seed: int, name: str) -> int:
    """A 32-bit seed for native mode, derived from the same two numbers."""
    return int(np.random.SeedSequence([seed, zlib.crc32(name.encode("utf-8"))])
               .generate_state(1, np.uint32)[0])


def init_model(model: "Model", initializer: Any, where: Any = None, seed: Optional[int] = None,
               mode: str = "portable") -> "Model":
    """Initialise ``model``'s parameters; see the module docstring.

    ``where``: None (the whole model), a regex over canonical names, a
    ``Layer`` handle, a ``Param``, an ``mp.nn`` spec class or a native layer
    class.  ``seed``: a non-negative int (None: fresh).  ``mode``:
    ``"portable"`` (bit-identical across frameworks) or ``"native"``.
    Returns the model."""
    init = as_initializer(initializer)
    if mode not in MODES:
        raise InitError(f"unknown mode {mode!r}; use 'portable' (the same values on every "
                        "backend) or 'native' (the framework's own random ops)")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)
    elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative int or None, got {seed!r}")
    seed = int(seed)

    targets = _select(model, where)
    plan = _InitPlan()
    for param, _node, _exact in targets:          # deferred shapes: raise, change nothing
        plan.require_materialized(param)

    # 1. which initializer each parameter gets, resolved on its canonical shape
    adapter, state = model.adapter, model.adapter_state
    chosen_for: List[Tuple[Param, Tuple[int, ...], Initializer]] = []
    missing = []
    for param, node, exact in targets:
        if not exact and _left_alone(param):
            continue
        if not exact and not param.slot.declared:
            _check_undeclared(param, node, init)
        if isinstance(init, FrameworkDefault):
            chosen = adapter.framework_default(state, node, param.slot)
            if chosen is None:
                missing.append(f"{param.name} ({node.native_type})")
                continue
        elif exact or _is_weight(param):
            chosen = init
        else:
            chosen = _NEUTRAL.get(param.role, _ZERO)   # bias-like roles: 0
        # fans and portable draws use torch's (out, in, *k) axes: a canonical
        # array stored otherwise (Conv1D's (in, out)) is drawn in that shape
        # and converted (see _draw)
        shape = _layout.shape_to_canonical(tuple(param.shape), param.slot.fans_layout) \
            if param.slot.fans_layout else tuple(param.shape)
        try:
            resolved = chosen.resolve(shape)
        except ValueError as e:
            raise InitError(f"cannot initialise {param.name!r} (shape {shape}) with {chosen!r}: {e}") from None
        chosen_for.append((param, shape, resolved))
    if missing:
        raise InitError(f"{adapter.name} has no known default initialiser for: {', '.join(missing)}; "
                        "select other parameters with where=, or give these an initializer")

    # 2. draw and check every value that cannot go through a native hook, before any write
    native = []
    for param, shape, resolved in chosen_for:
        if mode == "native" and resolved.builtin:
            native.append((param, shape, resolved))
        else:
            plan.add(param, _draw(param, shape, resolved, seed), source=resolved)

    # 3. write: the framework's own random ops, then the checked values
    for param, shape, resolved in native:
        if not adapter.native_init(state, param.slot.ref, resolved, native_seed(seed, param.name)):
            # a built-in the framework lacks: drawn portably, as in step 2
            plan.add(param, _draw(param, shape, resolved, seed), source=resolved)
    plan.commit()
    return model


def _draw(param: Param, shape: tuple, init: Initializer, seed: int) -> Any:
    """Portable values for one parameter (checked by ``_InitPlan.add``): an
    array, or Blocks a sharded parameter draws its own blocks of."""
    out = portable_values(init, shape, seed, param.name)
    if param.slot.fans_layout and out.shape == shape:
        out = np.ascontiguousarray(_layout.to_native(np.asarray(out), param.slot.fans_layout))
    return out


class _InitPlan(WritePlan):
    """An initializer's values, checked like any write; a refusal names the
    initializer (a user's function may return anything), and the values must
    be real numbers."""

    __slots__ = ()

    def shape_message(self, param: Param, shape: tuple, source: Initializer) -> str:
        return (f"{source!r} returned shape {shape} for {param.name!r}, which has shape "
                f"{tuple(param.shape)}; nothing was written")

    def check_dtype(self, param: Param, dtype: np.dtype, source: Any = None) -> np.dtype:
        if np.dtype(dtype).kind not in "biuf":
            raise DtypeError(f"{source!r} returned dtype {dtype} for {param.name!r}; return real "
                             "numbers (float or int); nothing was written")
        return super().check_dtype(param, dtype, source)


def _left_alone(param: Param) -> bool:
    """State that is not a parameter to initialise unless selected by name:
    a step counter, and buffers other than running statistics (a rotary
    table, a parametrization's base)."""
    return param.role == "counter" or (not param.trainable and param.role not in _NEUTRAL)


def _check_undeclared(param: Param, node: Any, init: Initializer) -> None:
    """A layer class neither the framework's nor registered: its parameters'
    meaning is only guessed from their names, so refuse what would need it
    (never a silently wrong fan, nor a norm scale drawn as a weight)."""
    cls = node.native_type
    # the framework's own attribute name, which is what a registration names
    attr = param.native_name.replace("/", ".").rsplit(".", 1)[-1]
    how = f"declare it with mp.register_layer({cls.rsplit('.', 1)[-1]}, {attr}=...)"
    if isinstance(init, VarianceScaling) and _is_weight(param):
        raise InitError(f"{param.name!r} belongs to {cls}, whose layout multiparam does not know, so "
                        f"its fans would be a guess; {how} (a layout tag such as 'dense_in_out'), "
                        "or select it with a name regex")
    if _is_weight(param) and len(param.shape) == 1 and param.role != "bias":
        raise InitError(f"{param.name!r} of {cls} is 1-D: a weight or a norm scale? {how} "
                        "('scale' or 'weight'), or select it with a name regex")


def _is_weight(param: Param) -> bool:
    role = param.role
    if role in ("weight", "embedding"):
        return True
    # other framework-specific roles (LSTM weight_ih_l0, Keras recurrent_kernel,
    # a custom layer's own names) get the initializer too, as Gluon's
    # Initializer does for names it does not know; a fan-based one then says
    # plainly that a 1-D parameter has no fans
    return not (role in _NEUTRAL or "bias" in role)


def _select(model: "Model", where: Any) -> List[Tuple[Param, Any, bool]]:
    """[(param, owning LayerNode, exact)] each parameter once, in model order;
    ``exact`` means the initializer applies as is (no weight/neutral split)."""
    index = model.index()
    # each parameter once (a transposed tie's name resolves to the shared
    # Param), with the layer of its first untransposed name
    owner: Dict[int, Tuple[Param, Any]] = {}
    for name, (slot, node) in index.slots.items():
        p = index.params[name].primary
        if id(p) not in owner or name == p.name:
            owner[id(p)] = (p, node)

    def subtree(layers) -> List[Tuple[Param, Any, bool]]:
        prefixes = [l.path for l in layers]
        out = []
        for p, node in owner.values():
            if any(prefix == "" or any(a.startswith(prefix + ".") for a in p.aliases)
                   for prefix in prefixes):
                out.append((p, node, False))
        return out

    if where is None:
        return [(p, node, False) for p, node in owner.values()]
    if isinstance(where, str):
        try:
            rx = re.compile(where)
        except re.error as e:
            raise InitError(f"where={where!r} is not a valid regular expression: {e}") from None
        out = [(p, node, True) for p, node in owner.values() if any(rx.match(a) for a in p.aliases)]
        if not out:
            names = list(index.unique)
            raise InitError(f"where={where!r} matches no parameter (matched from the start of the "
                            f"canonical name); names: {', '.join(names[:8])}{', ...' if len(names) > 8 else ''}")
        return out
    if isinstance(where, Param):
        if where.model is not model or id(where) not in owner:
            raise InitError(f"{where.name!r} is a parameter of another model")
        return [(where, owner[id(where)][1], True)]
    if isinstance(where, Layer):
        if where.model is not model:
            raise InitError(f"layer {where.path!r} belongs to another model")
        out = subtree([where])
        if not out:
            raise InitError(f"layer {where.path or '<root>'!r} ({where.kind}) has no parameters to initialise")
        return out
    if isinstance(where, type):
        if issubclass(where, Spec):
            layers = [l for l in index.layers.values() if l.kind == where.kind]
            what = f"mp.nn.{where.__name__}"
        else:
            layers = [l for l in index.layers.values() if isinstance(l.native, where)]
            what = f"{where.__module__}.{where.__qualname__}"
        out = subtree(layers)
        if not out:
            kinds = sorted({l.kind for l in index.layers.values() if l.path})
            raise InitError(f"where={what} matches no layer with parameters; this model's layers "
                            f"are: {', '.join(kinds)}")
        return out
    raise TypeError(f"where must be None, a regex string, a layer handle, a Param, an mp.nn spec "
                    f"class or a native layer class; got {type(where).__name__}")
