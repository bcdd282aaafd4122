"""The adapter interface: what one backend must provide to multiparam.

An adapter is the only place a framework is imported.  It does the native
work and nothing else; validation, canonical layout, names, error messages
and suggestions live once in the framework-free handles (``multiparam.model``
and ``multiparam.param``), the template-method split of Keras' ``Variable``.

An adapter describes a native model as a tree of :class:`LayerNode` with
:class:`ParamSlot` leaves.  The handles turn that tree into canonical names,
shapes and tie groups, and call the hooks below with the slot's ``ref`` (a
locator only the adapter understands) to read and write values.

Arrays cross the interface as NumPy arrays in the framework's *native*
layout; the handles convert to and from canonical layout (PyTorch's) using
the slot's ``layout`` tag, so the per-framework code never transposes.

The split is Keras 3's ``Variable(KerasVariable)``: this base class holds
the template methods that do the work (``read``, ``write``, ``native_shape``,
``dtype``, ``native_param``, ``native_grad``, ``grad``, ``build``,
``native_init``), and a backend supplies a few *primitives* per native array
(``read_array``, ``write_array``, ``array_shape``, ``array_dtype``,
``array_object``, ``array_grad``), a table of constructors (``builders``),
random draws (``draw``) and its autograd (``native_grads``).  Parameters the
framework stores as several arrays, or as a share of one, are
:class:`Composite` refs, handled here once for every backend.

Each backend is one package ``multiparam/adapters/<name>/`` that defines one
subclass of :class:`Adapter` and exposes an instance as ``ADAPTER``.  ``multiparam.registry`` maps backend names to those
modules; third-party adapters register through the ``multiparam.adapters``
entry point group and run the same conformance suite
(``pytest tests/conformance --backend NAME``).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Dict, Hashable, List, Optional, Tuple

import numpy as np

from .. import dtypes
from .. import sharding as _sharding
from ..errors import CapabilityError, MultiparamError

# Layout tags: how a native array differs from the canonical (PyTorch) layout.
SAME = "same"                  # native == canonical
DENSE_IN_OUT = "dense_in_out"  # native (in, out), canonical (out, in): Keras, Flax kernels
CHANNELS_LAST_KERNEL = "channels_last_kernel"  # native (*k, in, out), canonical (out, in, *k)
LAYOUTS = (SAME, DENSE_IN_OUT, CHANNELS_LAST_KERNEL)


@dataclass(frozen=True)
class FeatureOrder:
    """The order of a flattened feature axis, relative to torch's.

    The features are a block of canonical axes of sizes ``shape`` (torch's
    order: ``(C, H, W)`` for a feature map), flattened in the order
    ``native`` of those axes: a channels-last framework flattening an
    ``(H, W, C)`` map gives ``FeatureOrder((C, H, W), (1, 2, 0))``, feature
    ``(h*W + w)*C + c``, where torch's flatten gives ``c*H*W + h*W + w``.
    Found by following the feature order through the model
    (``multiparam.layout.Labels``), never by a pattern."""

    shape: Tuple[int, ...]
    native: Tuple[int, ...]

    def __post_init__(self):
        if sorted(self.native) != list(range(len(self.shape))):
            raise ValueError(f"native order {self.native} is not a permutation of the axes of {self.shape}")

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def is_identity(self) -> bool:
        return self.native == tuple(range(len(self.shape)))

    def _moved(self, array: np.ndarray, axis: int, to_canonical: bool) -> np.ndarray:
        axis = axis % array.ndim
        lead, rest = array.shape[:axis], array.shape[axis + 1:]
        block = [self.shape[a] for a in self.native] if to_canonical else list(self.shape)
        perm = np.argsort(self.native) if to_canonical else np.asarray(self.native)
        split = array.reshape(lead + tuple(block) + rest)
        k = len(lead)
        axes = list(range(k)) + [k + int(p) for p in perm] + list(range(k + len(block), split.ndim))
        return split.transpose(axes).reshape(array.shape)

    def to_canonical(self, array: np.ndarray, axis: int = -1) -> np.ndarray:
        """``array`` with its feature axis ``axis`` reordered from this
        native order to torch's (a copy)."""
        return self._moved(array, axis, True)

    def to_native(self, array: np.ndarray, axis: int = -1) -> np.ndarray:
        """The inverse of :meth:`to_canonical`."""
        return self._moved(array, axis, False)


def channels_last_flatten(channels: int, *spatial: int) -> FeatureOrder:
    """The order of a channels-last map ``(*spatial, channels)`` flattened:
    torch's ``(C, *spatial)`` features in ``(*spatial, C)`` order."""
    n = len(spatial)
    return FeatureOrder((channels,) + tuple(spatial), tuple(range(1, n + 1)) + (0,))


def _base_axes(base: str, ndim: int) -> tuple:
    """Native -> canonical axis permutation of a plain tag on 1-D/2-D arrays."""
    return tuple(range(ndim))[::-1] if base == DENSE_IN_OUT and ndim == 2 else tuple(range(ndim))


@dataclass(frozen=True)
class Permuted:
    """The layout of an array whose *last canonical axis* indexes features
    held in a native order: ``base`` is its plain layout (``DENSE_IN_OUT`` for
    a dense kernel ``(in, out)``, whose canonical ``(out, in)`` in-axis is
    the features; ``SAME`` for a per-feature vector: a norm's scale and
    bias, BatchNorm's running statistics), ``order`` how the features are
    ordered natively.  A dense kernel after a channels-last flatten is
    ``Permuted(DENSE_IN_OUT, channels_last_flatten(C, H, W))``; a LayerNorm
    over those features ``Permuted(SAME, ...)``.  Not a view: reading copies.
    It converts itself (``multiparam.layout`` calls its four methods)."""

    base: str
    order: FeatureOrder

    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        return self.order.to_canonical(array.transpose(_base_axes(self.base, array.ndim)))

    def to_native(self, array: np.ndarray) -> np.ndarray:
        return self.order.to_native(array).transpose(_base_axes(self.base, array.ndim))

    def shape_to_canonical(self, shape: tuple) -> tuple:
        return tuple(shape[a] for a in _base_axes(self.base, len(shape)))

    def shape_to_native(self, shape: tuple) -> tuple:
        return tuple(shape[a] for a in _base_axes(self.base, len(shape)))


class FeatureOrderError(MultiparamError, ValueError):
    """A parameter indexes features whose order multiparam cannot know."""


@dataclass(frozen=True)
class UnknownOrder:
    """The layout of a per-feature array (``base`` as in :class:`Permuted`)
    whose features' native order cannot be known: a channels-last feature
    map may have been flattened before it, and nothing shows how.  Shapes
    convert; values refuse, with ``reason`` and what to do, instead of
    guessing a permutation (reading, writing, transfer raise
    :class:`FeatureOrderError`)."""

    base: str
    reason: str

    def _refuse(self, array=None):
        raise FeatureOrderError(f"the order of the features this parameter indexes cannot be known: "
                                f"{self.reason}")

    to_canonical = to_native = _refuse

    def shape_to_canonical(self, shape: tuple) -> tuple:
        return tuple(shape[a] for a in _base_axes(self.base, len(shape)))

    shape_to_native = shape_to_canonical


@dataclass(frozen=True)
class Regrouped:
    """The layout of a native array whose axes merge into torch's: Keras'
    depthwise kernel ``(kh, kw, in, mult)`` is ``Conv2d(groups=in)``'s
    ``(in*mult, 1, kh, kw)``; an ``EinsumDense`` or Flax ``DenseGeneral``
    kernel ``(in, heads, head_dim)`` is an ``nn.Linear`` weight
    ``(heads*head_dim, in)``.  Native array of ``native_shape``; canonical
    axis ``j`` merges the native axes ``groups[j]`` (row-major; an empty
    group is an axis of size 1).  Every native axis is in exactly one
    group.  It converts itself: ``multiparam.layout`` calls its four
    methods.  Merging axes adjacent in memory is a NumPy view."""

    native_shape: Tuple[int, ...]
    groups: Tuple[Tuple[int, ...], ...]

    def __post_init__(self):
        if sorted(self.order) != list(range(len(self.native_shape))):
            raise ValueError(f"groups {self.groups} do not cover the axes of {self.native_shape} once each")

    @property
    def order(self) -> Tuple[int, ...]:
        return tuple(axis for group in self.groups for axis in group)

    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        return array.transpose(self.order).reshape(self.shape_to_canonical(array.shape))

    def to_native(self, array: np.ndarray) -> np.ndarray:
        split = array.reshape([self.native_shape[a] for a in self.order])
        return split.transpose(np.argsort(self.order))

    def shape_to_canonical(self, shape: tuple) -> tuple:
        def merged(group) -> Optional[int]:
            dims = [shape[a] for a in group]
            return None if None in dims else math.prod(dims)
        return tuple(merged(group) for group in self.groups)

    def shape_to_native(self, shape: tuple) -> tuple:
        return tuple(self.native_shape)


def flattened(native_shape: tuple) -> Regrouped:
    """An array as one axis (the bias of an ``EinsumDense`` or ``DenseGeneral``
    over every output axis of its kernel is the Linear's 1-D bias)."""
    return Regrouped(tuple(native_shape), (tuple(range(len(native_shape))),))


class Deferred:
    """Work a description leaves for the first time a value's layout is
    needed: the feature orders of a model (a graph walk or a trace) are
    only needed to read and write values, never to list names and shapes,
    so ``describe`` hands them to the slots as one :class:`Deferred` that
    the first ``slot.layout`` runs, once, for every slot of that
    description.  A new description (``refresh()``, a tie, unknown
    shapes, a changed ``description_key``) makes a new one."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], None]):
        self.fn = fn

    def run(self) -> None:
        fn, self.fn = self.fn, None
        if fn is not None:
            fn()

    def cancel(self) -> None:
        """Drop the work unrun, for a description read for its structure
        only: the work refers to the description's slots and they to it,
        a reference cycle until it runs or is dropped."""
        self.fn = None


class ParamSlot:
    """One parameter (or non-trainable state array) of one layer.

    fans_layout:  how the canonical array's axes differ from torch's
                  (out, in, *kernel) convention that fans and portable draws
                  assume, when the canonical array is not in it: torch's
                  own storage is canonical for a torch model (names *and*
                  layout are its ``state_dict``'s), so Hugging Face's
                  ``Conv1D`` weight stays (in, out) with ``fans_layout``
                  ``dense_in_out``.
    declared:     False for a parameter of a layer class neither the
                  framework's own nor registered (``mp.register_layer``):
                  its role is only guessed from its name, so init refuses
                  what would need its meaning (fans, a 1-D ``weight``).
    key:          the last part of the canonical name: the attribute the
                  equivalent torch module has (``weight`` for a norm's scale
                  and an embedding's table, ``weight_ih_l0`` for an LSTM);
                  None means the role is the key.
    role:         canonical role: ``weight``, ``bias``, ``scale``,
                  ``running_mean``, ``running_var``, ``embedding``, or a
                  framework-specific name kept as the framework spells it.
    native_name:  the framework's own name for it (torch ``0.weight``,
                  Gluon ``dense0_weight``, Keras ``sequential/dense/kernel``,
                  Flax ``params/layers_0/kernel``).
    ref:          adapter-private locator passed back to the hooks.
    layout:       one of ``LAYOUTS``, or a layout object that converts
                  itself (:class:`Permuted`, :class:`Regrouped`, :class:`UnknownOrder`).
                  A description may defer its final value (``pending``,
                  a :class:`Deferred`): the first read of ``layout`` runs
                  it.  Until then the slot holds its *shape layout*: one
                  that converts shapes exactly as the final one does
                  (a feature order refines a base tag and keeps its shape
                  rule), so ``shape_layout`` answers names and shapes
                  without the deferred work.
    trainable:    False for BatchNorm running statistics and frozen weights.
    ident:        hashable identity of the underlying storage; slots with
                  equal ``ident`` are one parameter (a tie).
    shape_hint:   canonical shape known from the layer's configuration
                  before the framework has materialised the parameter,
                  with ``None`` for unknown dims (e.g. ``(8, None)`` for a
                  lazy dense layer of 8 units).  Ignored once materialised.
    transposed:   True when this slot is tied to another slot (same
                  ``ident``) and its canonical value is that slot's
                  canonical value transposed (``m.tie(..., transpose=True)``).
    """

    __slots__ = ("role", "native_name", "ref", "_layout", "trainable", "ident", "shape_hint",
                 "transposed", "key", "declared", "fans_layout", "pending")

    def __init__(self, role: str, native_name: str, ref: Any, layout: Any = SAME, trainable: bool = True,
                 ident: Hashable = None, shape_hint: Optional[tuple] = None, transposed: bool = False,
                 key: Optional[str] = None, declared: bool = True, fans_layout: Optional[str] = None,
                 pending: Optional[Deferred] = None):
        # one plain store per field: a first look makes a slot per parameter
        self.role = role
        self.native_name = native_name
        self.ref = ref
        self._layout = layout
        self.trainable = trainable
        self.ident = ident
        self.shape_hint = shape_hint
        self.transposed = transposed
        self.key = key
        self.declared = declared
        self.fans_layout = fans_layout
        self.pending = pending

    @property
    def layout(self) -> Any:
        """The layout values convert with (running the description's
        deferred work first, once)."""
        pending = self.pending
        if pending is not None:
            self.pending = None
            pending.run()
        return self._layout

    @layout.setter
    def layout(self, value: Any) -> None:
        self._layout = value

    @property
    def shape_layout(self) -> Any:
        """The layout shapes convert with: :attr:`layout` without running
        deferred work (which never changes how shapes convert)."""
        return self._layout

    def __repr__(self) -> str:
        return (f"ParamSlot(role={self.role!r}, native_name={self.native_name!r}, key={self.key!r}, "
                f"layout={self._layout!r}, trainable={self.trainable!r}, ident={self.ident!r})")

    @property
    def leaf(self) -> str:
        """The last part of the canonical name (``key``, else ``role``)."""
        return self.key or self.role


class LayerNode:
    """One layer (module, block, sub-model) of a native model.

    key:      the child key under its parent: the position for sequential
              containers (``"0"``), the attribute/child name otherwise
              (``"block 1"``); ``""`` for the root.
    kind:     the neutral kind when recognised (``Dense``, ``ReLU``,
              ``Sequential``, ...), else the native class name.
    native:   the framework's own layer object (or Flax module).
    params:   the layer's own parameters, in the framework's order.
    children: child layers, in the framework's order.  The same native
              layer may appear under two keys (a layer reused twice).
    materialized: on the root, whether every parameter's shape is known,
              when ``describe`` found out on its walk (the handle then
              asks :meth:`Adapter.is_materialized_tree` nothing); None:
              not said.
    """

    __slots__ = ("key", "kind", "native", "params", "children", "materialized")

    def __init__(self, key: str, kind: str, native: Any, params: Optional[list] = None,
                 children: Optional[list] = None, materialized: Optional[bool] = None):
        self.key = key
        self.kind = kind
        self.native = native
        self.params = [] if params is None else params
        self.children = [] if children is None else children
        self.materialized = materialized

    def __repr__(self) -> str:
        return (f"LayerNode(key={self.key!r}, kind={self.kind!r}, params={len(self.params)}, "
                f"children={len(self.children)})")

    @property
    def native_type(self) -> str:
        cls = type(self.native)
        return f"{cls.__module__}.{cls.__qualname__}"


# ---------------------------------------------------------------------------
# Composite parameters: one canonical array, several native ones
# ---------------------------------------------------------------------------
class Composite:
    """The ref of a slot whose canonical array the framework stores as
    several native arrays (``parts``), or as a share of one.

    The base adapter reads each part with the backend's ``read_array`` and
    gives them to :meth:`join`; a write gets new part values from
    :meth:`split` and writes each with ``write_array``.  A backend only
    describes which native arrays make the parameter; the arithmetic lives
    here, once (the LSTM bias pair of Keras and Flax, Flax's per-gate LSTM
    kernels, fused projections)."""

    #: refs of the native arrays this parameter is made of, in order
    parts: tuple = ()

    def join(self, arrays: List[np.ndarray]) -> np.ndarray:
        """The parameter's array (in the slot's layout) from its parts."""
        raise NotImplementedError

    def split(self, value: np.ndarray, current: List[np.ndarray]) -> List[np.ndarray]:
        """New values of the parts that make ``value``; ``current`` holds the
        parts' present values (a share of one array keeps the other share)."""
        raise NotImplementedError

    def shape(self, shapes: List[Optional[tuple]]) -> Optional[tuple]:
        """The joined shape from the parts' native shapes (None if unknown)."""
        if any(s is None or None in s for s in shapes):
            return None
        probe = [np.empty(s, np.int8) for s in shapes]
        return tuple(self.join(probe).shape)

    def join_grads(self, grads: List[np.ndarray]) -> np.ndarray:
        """The parameter's gradient from the parts' gradients."""
        return self.join(grads)

    def committed(self, parts: List[np.ndarray], value: np.ndarray,
                  current: List[np.ndarray]) -> None:
        """Called once :meth:`split`'s ``parts`` are written (a share
        remembers what it wrote); ``current`` are the parts before."""

    def native_size(self, size: int) -> int:
        """How many of the framework's own scalars this parameter of
        ``size`` canonical scalars adds to its count: all of them, by
        default; a share of a sum none (:class:`SumShare`), so
        ``num_parameters()`` counts what the framework counts."""
        return size

    def label(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class Stacked(Composite):
    """A canonical array stacked along axis 0 from equal native blocks:
    Flax's per-gate LSTM kernels ``i{i,f,g,o}/kernel (in, H)`` are torch's
    ``weight_ih (4H, in)`` with each block transposed (``transpose=True``);
    its per-gate biases stack as they are."""

    parts: tuple
    transpose: bool = False

    def join(self, arrays):
        return np.concatenate([a.T if self.transpose else a for a in arrays], axis=0)

    def split(self, value, current):
        chunks = np.split(np.asarray(value), len(self.parts), axis=0)
        return [np.ascontiguousarray(c.T) if self.transpose else c for c in chunks]


def kept_shares(owner: Any) -> dict:
    """The shares :class:`SumShare` remembered on ``owner``, ``{key: (first,
    second, native sum)}``, in its instance dict: they live and die with the
    native object (a Keras cell, a Flax state), and writing the dict
    directly bypasses framework attribute tracking.  An adapter that
    converts a model's dtype (``astype``) casts them with it."""
    return vars(owner).setdefault("_multiparam_shares", {})


@dataclass(frozen=True, eq=False)
class SumShare(Composite):
    """One of two canonical arrays whose *sum* is one native array: torch's
    LSTM ``bias_ih`` and ``bias_hh`` are added to the same pre-activations,
    and Keras and Flax keep only their sum.

    The shares last written are remembered (per ``owner`` and ``key``)
    together with the native sum they made.  While the native array still
    holds exactly that sum, both shares read back bit for bit as written (a
    torch -> Keras -> torch round trip is exact); once the framework changed
    it (a native training step), the change is given to share 0
    (``bias_ih``) and share 1 keeps its value.  Nothing remembered: share 1
    is zero.  The framework's own listings see the one summed array."""

    part: Any            # ref of the one native array (the sum)
    owner: Any           # weak-referenceable object the shares are kept on
    key: Hashable        # which sum of that owner
    which: int           # 0 or 1: which share this slot is

    @property
    def parts(self) -> tuple:
        return (self.part,)

    def _shares(self, native: np.ndarray) -> tuple:
        kept = kept_shares(self.owner).get(self.key)
        if kept is not None:
            first, second, total = kept
            if total.shape == native.shape and np.array_equal(total, native):
                return first, second
            return native - second, second
        return np.array(native), np.zeros_like(native)

    def join(self, arrays):
        return self._shares(np.asarray(arrays[0]))[self.which]

    def _written(self, value: np.ndarray, current: List[np.ndarray]) -> list:
        shares = list(self._shares(np.asarray(current[0])))
        shares[self.which] = np.array(value, dtype=shares[self.which].dtype)
        return shares

    def split(self, value, current):
        first, second = self._written(value, current)
        return [first + second]

    def committed(self, parts, value, current):
        first, second = self._written(value, current)
        kept_shares(self.owner)[self.key] = (first, second, np.array(parts[0]))

    def join_grads(self, grads):
        return grads[0]     # d(a + b)/da = d(a + b)/db = the sum's gradient

    def native_size(self, size: int) -> int:
        # the framework holds the sum once: counted with share 0
        return size if self.which == 0 else 0


@dataclass
class Inputs:
    """A forward's inputs in any signature: positional and keyword
    arguments, passed to the native model unchanged (``input_ids=``,
    ``attention_mask=``, ``labels=``, Flax ``train=``, rngs)."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    @classmethod
    def of(cls, x: Any) -> "Inputs":
        """What ``m.grad(x)`` and ``sample_input=x`` mean: a dict is keyword
        arguments (``m.grad(dict(input_ids=ids, labels=y))``), a tuple is
        positional arguments, anything else is the one positional input.
        (A model that takes one dict positionally: ``Inputs((d,))``.)"""
        if isinstance(x, Inputs):
            return x
        if isinstance(x, Mapping):
            return cls((), dict(x))
        if isinstance(x, tuple):
            return cls(tuple(x), {})
        return cls((x,), {})


@dataclass(frozen=True)
class Capability:
    """Whether a backend can do one thing, and why not when it cannot."""

    supported: bool
    reason: str = ""


class Adapter:
    """Base class of every backend adapter.  Each hook documents its contract.

    ``state`` below is the object returned by :meth:`prepare`; it is whatever
    the adapter needs to find the parameters again: the native model itself
    for frameworks that keep parameters inside the model (torch, Keras,
    Gluon), or a holder of the variables pytree for Flax linen.
    """

    #: registry name of the backend ("torch", "jax", ...)
    name: str = ""
    #: capability name -> Capability; absent means supported
    capabilities: dict = {}
    #: True when the framework's images are NHWC (Keras, Flax): ``m(x)``
    #: takes that layout, and ``multiparam.layout.input_to_native`` turns a
    #: canonical NCHW input into it (the worker and compare do).
    channels_last: bool = False

    # -- recognising and preparing models ---------------------------------
    def is_model(self, obj: Any) -> bool:
        """True if ``obj`` is a native model this adapter can wrap."""
        raise NotImplementedError

    def specialise(self, native: Any) -> "Adapter":
        """The adapter that wraps ``native``: this one, unless the backend has
        one adapter per kind of model (the jax backend: Flax linen and Flax
        NNX), all with this backend's ``name``."""
        return self

    def prepare(self, native: Any, sample_input: Any = None, **options) -> Any:
        """Make the model usable and return its ``state``.

        Runs one forward on ``sample_input`` when given, so lazy or deferred
        parameters get their shapes.  Flax: initialise (or take
        ``options['variables']``) and keep the variables pytree.
        """
        raise NotImplementedError

    def describe(self, state: Any) -> LayerNode:
        """The model's layer tree.  Must not change the model."""
        raise NotImplementedError

    def is_materialized(self, state: Any) -> bool:
        """False while some parameter's shape is still unknown."""
        raise NotImplementedError

    def description_key(self, state: Any) -> Hashable:
        """A value that changes when :meth:`describe` may answer otherwise
        for a reason the handle cannot see (a first call recording the
        sample input a Flax model's feature orders are traced on); the
        handle describes the model again when it does.  None: never."""
        return None

    def describe_structure(self, state: Any) -> LayerNode:
        """:meth:`describe` for a caller that reads the tree's layers, refs
        and idents only, never a value's layout: the description's deferred
        work (one :class:`Deferred` per description) is dropped unrun, since
        it refers back to the slots that refer to it, a reference cycle
        until it runs."""
        root = self.describe(state)
        stack = [root]
        while stack:
            node = stack.pop()
            for slot in node.params:
                if slot.pending is not None:
                    slot.pending.cancel()
                    return root
            stack.extend(node.children)
        return root

    def is_materialized_tree(self, state: Any, root: LayerNode) -> bool:
        """``is_materialized`` given the tree ``describe`` just returned, for
        adapters that would otherwise describe the model again: the root's
        ``materialized`` when ``describe`` set it."""
        if root.materialized is not None:
            return root.materialized
        return self.is_materialized(state)

    def storage_key(self, state: Any, ref: Any) -> Any:
        """An object that stays the same (``is``) exactly as long as the
        parameter's storage and values do, so the handle may hand out the
        same read-only view again; None (default) reads every time.  Only
        for zero-copy reads of immutable storage (JAX arrays)."""
        return None

    # -- forward -----------------------------------------------------------
    def forward(self, state: Any, x: Any, train: Optional[bool] = None) -> Any:
        """``m(x)`` for one input (a dict: keyword arguments, a tuple:
        positional ones; see :meth:`Inputs.of`): :meth:`call`."""
        return self.call(state, Inputs.of(x), train)

    def call(self, state: Any, inputs: Inputs, train: Optional[bool] = None) -> Any:
        """Run the native forward on ``inputs.args`` and ``inputs.kwargs``,
        passed unchanged except that NumPy arrays become the framework's
        (floating ones in the framework's default float dtype); return what
        the model returns (an array, a tuple, a ``ModelOutput``, ...).

        Inputs are in the framework's native layout (NHWC images when
        ``channels_last``).  ``train`` None follows the framework's current
        mode (torch ``module.training``; Keras and Gluon inference outside
        a training call / ``autograd.record``; a Flax module's ``train``
        argument as the caller gives it); False forces inference (BatchNorm
        uses its running statistics and leaves them alone), True training
        mode; Flax gets it as ``train=`` when the module's ``__call__``
        takes one."""
        raise NotImplementedError

    def to_numpy(self, array: Any) -> np.ndarray:
        """A framework array (or tensor, or variable) as a NumPy array."""
        raise NotImplementedError

    # -- parameter storage: templates (composites handled here) ------------
    # The handles call these; a backend implements the *_array primitives
    # below for one native array and never sees a Composite.
    def read(self, state: Any, ref: Any) -> np.ndarray:
        """The parameter's value as a NumPy array in native layout (the
        slot's layout tells how it differs from canonical).  Zero-copy where
        the framework allows it (torch, JAX on CPU); the handle marks the
        result read-only.  Only called once materialised."""
        if isinstance(ref, Composite):
            # a part may itself be a composite (Flax's LSTM bias shares are
            # a sum of per-gate biases): the templates recurse
            return ref.join([np.asarray(self.read(state, part)) for part in ref.parts])
        return self.read_array(state, ref)

    def reader(self, ref: Any) -> Callable[[Any, Any], np.ndarray]:
        """:meth:`read` for ``ref``, resolved once: the primitive itself for
        a plain ref (``Param.value`` is the hot path, and a plain ref needs
        nothing of the template), the template for a composite."""
        return self.read if isinstance(ref, Composite) else self.read_array

    def native_shape(self, state: Any, ref: Any) -> Optional[tuple]:
        """The native shape, with None for dims not known yet, or None when
        the parameter does not exist yet (an unbuilt Keras layer)."""
        if isinstance(ref, Composite):
            return ref.shape([self.native_shape(state, part) for part in ref.parts])
        return self.array_shape(state, ref)

    def native_shapes(self, state: Any, refs: list) -> list:
        """:meth:`native_shape` of many parameters at once (``shapes()``
        asks every parameter): plain refs through :meth:`array_shapes`, so
        a backend can read them in one tight loop."""
        if any(isinstance(ref, Composite) for ref in refs):
            return [self.native_shape(state, ref) for ref in refs]
        return self.array_shapes(state, refs)

    def array_shapes(self, state: Any, refs: list) -> list:
        """:meth:`array_shape` of many plain refs (override for a bulk read)."""
        array_shape = self.array_shape
        return [array_shape(state, ref) for ref in refs]

    def dtype(self, state: Any, ref: Any) -> Optional[np.dtype]:
        """The NumPy dtype of the parameter (None if not known yet)."""
        if isinstance(ref, Composite):
            return self.dtype(state, ref.parts[0])
        return self.array_dtype(state, ref)

    def write(self, state: Any, ref: Any, value: Any) -> None:
        """Replace the whole value in place, so the native model sees it.

        ``value`` is already validated, cast and in native layout: a NumPy
        array (C-contiguous) or the framework's own array (native-mode
        init).  A writable NumPy array is fresh and may be kept as the
        parameter's storage; a read-only one is someone else's memory (the
        caller's array, another model's value during a transfer) and must
        be copied, never kept.  See :meth:`write_array`."""
        if not isinstance(ref, Composite):
            self.write_array(state, ref, value)
            return
        current = [np.asarray(self.read(state, part)) for part in ref.parts]
        parts = ref.split(np.asarray(value), current)
        for part, array in zip(ref.parts, parts):
            self.write(state, part, np.ascontiguousarray(array))
        ref.committed(parts, value, current)

    def fill(self, state: Any, ref: Any, fill: Callable[[np.ndarray], None]) -> bool:
        """Let ``fill(array)`` write a whole native-layout value straight
        into the parameter's own memory (a load reads a file into it: one
        copy, no buffer).  False, having done nothing, where the framework
        does not expose writable memory; the caller then uses ``write``.
        See :meth:`fill_array`."""
        return False if isinstance(ref, Composite) else self.fill_array(state, ref, fill)

    def lend(self, state: Any, ref: Any) -> Optional[ContextManager[np.ndarray]]:
        """A context giving a read-only NumPy view of the parameter's own
        memory in native layout, valid only inside it (a save writes it to
        its file there, a transfer copies it on), for a backend whose reads
        copy (``value_reads_copy``); None where there is no such view: the
        caller then reads a copy.  See :meth:`lend_array`."""
        return None if isinstance(ref, Composite) else self.lend_array(state, ref)

    def memory_of(self, state: Any, ref: Any) -> Hashable:
        """Primitive: the identity of the memory the array of ``ref`` lives
        in, the same for two parameters that view one block of memory (two
        torch Parameters made over one tensor's storage, overlapping or
        not); None where parameters never share memory but through a tie,
        whose names share the slot's ``ident`` (the default).  A write plan
        whose writes run side by side (``writes_in_parallel``) writes the
        values of one memory in order, so the later value wins where they
        overlap, as written one at a time."""
        return None

    def fill_array(self, state: Any, ref: Any, fill: Callable[[np.ndarray], None]) -> bool:
        """Primitive: call ``fill`` on a writable NumPy view of the array's
        own memory and tell the framework it changed (torch bumps its
        version counter), or of memory the framework then copies in (Gluon:
        a new array its engine copies on); False where there is no such
        view (immutable JAX arrays, Keras variables: the default)."""
        return False

    def lend_array(self, state: Any, ref: Any) -> Optional[ContextManager[np.ndarray]]:
        """Primitive: a context giving a read-only NumPy view of the array's
        own memory, once the framework's pending work on it is done, valid
        only inside the context; None where there is none (the default).
        Only a backend whose reads copy needs it (Gluon): elsewhere a read
        is that view already."""
        return None

    def native_param(self, state: Any, ref: Any) -> Any:
        """The framework's own parameter object (or pytree leaf); for a
        composite, the tuple of its parts' objects."""
        if isinstance(ref, Composite):
            objects = tuple(self.native_param(state, part) for part in ref.parts)
            return objects[0] if len(objects) == 1 else objects
        return self.array_object(state, ref)

    def native_grad(self, state: Any, ref: Any) -> Optional[np.ndarray]:
        """The gradient the framework itself holds for this parameter, in
        native layout, or None when it holds none (never computed, or the
        framework keeps no gradient on parameters: JAX, Keras)."""
        if isinstance(ref, Composite):
            grads = [self.native_grad(state, part) for part in ref.parts]
            return None if any(g is None for g in grads) else ref.join_grads(grads)
        return self.array_grad(state, ref)

    # -- parameter storage: primitives (one native array each) ---------------
    def read_array(self, state: Any, ref: Any) -> np.ndarray:
        """One native array as NumPy, zero-copy where the framework allows."""
        raise NotImplementedError

    def array_shape(self, state: Any, ref: Any) -> Optional[tuple]:
        """One native array's shape (None dims unknown; None if not built)."""
        raise NotImplementedError

    def array_dtype(self, state: Any, ref: Any) -> Optional[np.dtype]:
        """One native array's NumPy dtype (None if not known yet)."""
        raise NotImplementedError

    def write_array(self, state: Any, ref: Any, value: Any) -> None:
        """Write one native array in place (contract of :meth:`write`).
        Must keep the parameter object's identity (torch ``Parameter``,
        Keras ``Variable``, Gluon ``Parameter``); Flax linen: update the
        pytree in ``state``, keeping every tied path pointing at the new
        leaf."""
        raise NotImplementedError

    def array_object(self, state: Any, ref: Any) -> Any:
        """The framework's own object for one native array."""
        raise NotImplementedError

    # -- sharded arrays (JAX NamedSharding, torch DTensor): templates ----------
    # A backend that holds sharded arrays implements the four primitives
    # after these; the templates check the ``sharding`` capability (a
    # backend that cannot shard declares it False with the reason) and keep
    # composites (several native arrays) unsharded.
    def sharding(self, state: Any, ref: Any) -> Optional["_sharding.Sharding"]:
        """The parameter's :class:`~multiparam.sharding.Sharding` in native
        axes, or None when one device holds it."""
        self.require_sharding("describe a sharded parameter")
        if isinstance(ref, Composite):
            if any(self.sharding(state, part) is not None for part in ref.parts):
                raise CapabilityError(self.name, "shard a parameter the framework stores as several "
                                      "arrays", "read its value (gathered) instead")
            return None
        return self.array_sharding(state, ref)

    def shards(self, state: Any, ref: Any) -> list:
        """``[(global native index, NumPy block)]`` this process holds, each
        block once (see :meth:`local_shards`); the whole array when it is
        not sharded."""
        if self.sharding(state, ref) is None:
            return [(_sharding.whole(self.native_shape(state, ref)), np.asarray(self.read(state, ref)))]
        return self.local_shards(state, ref)

    def write_blocks(self, state: Any, ref: Any, block: Callable[[tuple], np.ndarray]) -> None:
        """Write the parameter from ``block(global native index)``, asking
        only for the blocks this process's shards hold, keeping the native
        sharding (see :meth:`write_shards`); an unsharded parameter asks for
        the whole array and is written with :meth:`write`."""
        if self.capability("sharding").supported and self.sharding(state, ref) is not None:
            self.write_shards(state, ref, block)
            return
        self.write(state, ref, np.ascontiguousarray(block(_sharding.whole(self.native_shape(state, ref)))))

    def fill_blocks(self, state: Any, ref: Any, fill: Callable[[tuple, np.ndarray], None]) -> bool:
        """Let ``fill(global native index, out)`` write each block this
        process holds straight into the parameter's own memory (``out``: a
        writable native-layout NumPy view of it), so an engine reads a
        checkpoint's slice into it with no buffer in between.  False,
        having done nothing, where the framework exposes no such memory
        (the caller then uses :meth:`write_blocks`).  See
        :meth:`fill_array` and :meth:`fill_shard_arrays`."""
        if isinstance(ref, Composite):
            return False
        if self.capability("sharding").supported and self.sharding(state, ref) is not None:
            return self.fill_shard_arrays(state, ref, fill)
        return self.fill_array(state, ref, lambda out: fill(_sharding.whole(out.shape), out))

    def require_sharding(self, what: str) -> None:
        """``CapabilityError`` with the backend's reason when it cannot hold
        sharded parameters."""
        cap = self.capability("sharding")
        if not cap.supported:
            raise CapabilityError(self.name, what, cap.reason)

    # -- sharded arrays: primitives (one native array each) ------------------------
    def array_sharding(self, state: Any, ref: Any) -> Optional["_sharding.Sharding"]:
        """One native array's sharding (native axes), or None when a single
        device holds it.  Default: never sharded."""
        return None

    def local_shards(self, state: Any, ref: Any) -> list:
        """``[(global native index, NumPy block)]`` of one sharded native
        array: the blocks this process holds, each distinct block once,
        without gathering."""
        return [(_sharding.whole(self.array_shape(state, ref)), self.read_array(state, ref))]

    def write_shards(self, state: Any, ref: Any, block: Callable[[tuple], np.ndarray]) -> None:
        """Write one sharded native array in place, shard by shard, from
        ``block(global native index) -> NumPy array`` (asked once per
        distinct block this process holds), so the framework's object keeps
        its sharding and type (the same ``DTensor`` placements, a
        ``jax.Array`` with the same ``NamedSharding``)."""
        self.write_array(state, ref, np.ascontiguousarray(block(_sharding.whole(self.array_shape(state, ref)))))

    def fill_shard_arrays(self, state: Any, ref: Any, fill: Callable[[tuple, np.ndarray], None]) -> bool:
        """Primitive: call ``fill(global native index, view)`` with a
        writable NumPy view of each distinct block of one sharded native
        array this process holds, and tell the framework they changed;
        False, having done nothing, where there is no such view (the
        default: JAX arrays are immutable)."""
        return False

    def shard_owners(self, state: Any, ref: Any) -> list:
        """``[(global native index, process index)]``: every distinct block
        of one native array across all processes, with the lowest process
        that holds it (a sharded save writes each block once, from there)."""
        return [(_sharding.whole(self.array_shape(state, ref)), 0)]

    def process_index(self) -> int:
        """This process's index among the processes that share the mesh."""
        return 0

    def process_count(self) -> int:
        """How many processes share the mesh (torch's world size)."""
        return 1

    def barrier(self) -> None:
        """Wait until every process of the mesh reaches this point (a
        sharded save: the files exist before anyone loads them)."""

    def array_grad(self, state: Any, ref: Any) -> Optional[np.ndarray]:
        """The framework's own accumulated gradient of one native array,
        or None (the default: JAX and Keras keep none)."""
        return None

    def grad_key(self, state: Any, ref: Any) -> Hashable:
        """The key :meth:`native_grads` uses for one native array: the
        ``ident`` its own slot would have."""
        raise NotImplementedError

    # -- gradients -------------------------------------------------------------
    def grad(self, state: Any, inputs: Inputs, loss: Any = None, target: Any = None,
             train: bool = False) -> dict:
        """Fresh gradients of a scalar loss w.r.t. every trainable parameter,
        ``{slot.ident: NumPy gradient in native layout}``: the backend's
        :meth:`native_grads`, plus one entry per composite slot joined from
        its parts' gradients."""
        grads = self.native_grads(state, inputs, loss=loss, target=target, train=train)
        stack = [self.describe_structure(state)]    # for its composites only
        while stack:
            node = stack.pop()
            stack.extend(node.children)
            for slot in node.params:
                if isinstance(slot.ref, Composite) and slot.ident not in grads:
                    g = self._joined_grad(state, slot.ref, grads)
                    if g is not None:
                        grads[slot.ident] = g
        return grads

    def _joined_grad(self, state: Any, ref: Any, grads: dict) -> Any:
        """The gradient of ``ref`` from ``grads``, a composite's joined from
        its parts'; None when a part has no gradient (not trainable)."""
        if not isinstance(ref, Composite):
            return grads.get(self.grad_key(state, ref))
        parts = [self._joined_grad(state, part, grads) for part in ref.parts]
        return None if any(g is None for g in parts) else ref.join_grads(parts)

    def native_grads(self, state: Any, inputs: Inputs, loss: Any = None, target: Any = None,
                     train: bool = False) -> dict:
        """The framework's own autograd: ``{grad key: NumPy gradient}`` for
        every trainable native array (keys as :meth:`grad_key`, which for a
        plain slot is its ``ident``).

        ``train`` False (the default) differentiates the inference-mode
        forward: BatchNorm uses its running statistics, which stay as they
        are, so gradients compare across frameworks; True uses training
        mode (batch statistics), as a training step would, and still leaves
        the running statistics unchanged.  Flax linen: the module's own mode.

        The scalar comes from :meth:`loss_value`.  A parameter used twice
        appears once with the sum of its contributions.  Must not touch the
        gradients the framework itself accumulates (torch ``.grad``, Gluon
        ``grad()``): a native training loop the user keeps is unaffected."""
        raise NotImplementedError

    # -- the loss: one rule on every backend (a template method) -------------------
    def loss_value(self, out: Any, loss: Any, target: Any) -> Any:
        """The scalar ``grad`` differentiates, by the same rule everywhere.

        ``loss="model"``: the model's own loss (``out.loss`` or
        ``out["loss"]``: a Hugging Face ``ModelOutput`` given ``labels=``).
        A callable: ``loss(output, target)`` on the output as the model
        returned it, the target in the framework's own array type.  The
        named losses act on the *primary output*: the output itself, or for
        a structured one (a ``ModelOutput``, dict, dataclass, tuple or list)
        its first floating array, depth first: None or ``"sum"`` its sum,
        ``"mean"`` its mean, ``"mse"`` the mean of ``(output - target) **
        2``.  An integer target stays integer (class labels); a floating
        one takes the output's dtype.  ``model_grad`` has already checked
        the name and that ``"mse"`` has a target.  Raises ``ValueError``
        when the result is not a scalar."""
        if loss == "model":
            value = self.model_loss(out)
        else:
            primary = self.primary_output(out)
            native_target = None if target is None else self.as_target(target, primary)
            if callable(loss):
                value = loss(out, native_target)
            elif loss is None or loss == "sum":
                value = self.reduce_sum(primary)
            elif loss == "mean":
                value = self.reduce_mean(primary)
            else:
                diff = primary - native_target
                value = self.reduce_mean(diff * diff)
        shape = tuple(value.shape)
        if int(np.prod(shape, dtype=np.int64)) != 1:
            raise ValueError(f"the loss must be a scalar, got shape {shape}")
        return value

    def model_loss(self, out: Any) -> Any:
        """The loss the model computed itself (``loss="model"``)."""
        value = out.get("loss") if isinstance(out, Mapping) else getattr(out, "loss", None)
        if value is None:
            raise ValueError(f"loss='model' needs an output with a loss (a {type(out).__name__} has none"
                             "; pass the labels the model needs, e.g. labels=...)")
        return value

    def primary_output(self, out: Any) -> Any:
        """The output the named losses act on: ``out`` when it is an array,
        else the first floating array inside it, depth first (see
        :meth:`loss_value`)."""
        if self.is_floating_array(out):
            return out
        if isinstance(out, Mapping):
            items = list(out.values())
        elif dataclasses.is_dataclass(out) and not isinstance(out, type):
            items = [getattr(out, f.name) for f in dataclasses.fields(out)]
        elif isinstance(out, (tuple, list)):
            items = list(out)
        else:
            raise ValueError(f"the model returned a {type(out).__name__}, not an array of floats; "
                             "pass loss=callable(output, target)")
        for item in items:
            if item is None:
                continue
            try:
                return self.primary_output(item)
            except ValueError:
                continue
        raise ValueError(f"the model's {type(out).__name__} output holds no floating array; "
                         "pass loss='model' or loss=callable(output, target)")

    def is_floating_array(self, x: Any) -> bool:
        """True for the framework's floating-point array (tensor) type."""
        raise NotImplementedError

    def reduce_sum(self, out: Any) -> Any:
        """The sum of every element of one array."""
        raise NotImplementedError

    def reduce_mean(self, out: Any) -> Any:
        """The mean of the output's elements."""
        raise NotImplementedError

    def as_target(self, target: Any, out: Any) -> Any:
        """``target`` (NumPy or native) as the framework's array: an integer
        target keeps its integer dtype (class labels for cross-entropy), a
        floating one takes the output's dtype."""
        raise NotImplementedError

    # -- tying after construction ------------------------------------------------
    def tie(self, state: Any, dst: ParamSlot, dst_layer: Any, src: ParamSlot,
            native_transpose: bool) -> None:
        """Make the framework itself use ``src``'s parameter where ``dst``'s
        was, so its native forward, autograd and optimizers see one
        parameter.  ``dst_layer`` is the native layer that owns ``dst``.
        ``native_transpose`` says the dst's native value must be the
        transpose of src's native value (layouts differ, or the user asked
        for a transposed tie); a framework that cannot express that raises
        ``CapabilityError``.  The handle has already checked names, shapes
        and dtypes; after this, ``describe`` must give ``dst`` the ident of
        ``src`` (and ``transposed=True`` when the canonical values are
        transposes of each other)."""
        raise CapabilityError(self.name, "tie parameters after construction", "not implemented")

    #: ``fn(out, src) -> bool``: ``out[...] = src`` for NumPy arrays of one
    #: dtype and shape, ``out`` C-contiguous and ``src`` C-contiguous or a
    #: strided view (a transposed matrix), with the framework's own copy
    #: kernel; False if it cannot.  ``src`` is only read (it may be
    #: read-only: a memory-mapped file).  ``multiparam.fastcopy`` uses the
    #: first one offered by a framework the process has imported, for
    #: transposing copies and large plain ones.
    copy_kernel: Optional[Callable[[np.ndarray, np.ndarray], bool]] = None

    #: ``fn(out, src) -> bool``: ``out[...] = src`` converted to ``out``'s
    #: dtype by the framework's own conversion (the one its own load makes:
    #: torch's ``copy_`` into a parameter of another dtype), for C-contiguous
    #: arrays of one shape; False for dtypes it cannot convert.  ``src`` is
    #: only read (a memory-mapped file).  A load that casts a file's tensor
    #: into a parameter whose memory the framework exposes (``fill_array``)
    #: converts it there in one pass with it; None (the default): NumPy's
    #: conversion (ml_dtypes' for bfloat16 and float8) into fresh memory.
    cast_kernel: Optional[Callable[[np.ndarray, np.ndarray], bool]] = None

    def transposed_array(self, source: np.ndarray) -> Any:
        """Primitive: ``source.T`` as the framework's own array for
        :meth:`write_array`: made by the framework's own transpose (for a
        write that keeps it), or a transposed view of ``source`` that the
        write's own copy transposes into the parameter's memory.
        ``source`` is a C-contiguous 2-D NumPy array that is only read (it
        may be read-only: another model's value, a memory-mapped file).
        A write of a parameter whose native layout is the transpose of its
        canonical one asks this first.  None (the default) where the
        framework offers nothing faster than
        :func:`multiparam.fastcopy.contiguous` into NumPy memory, or cannot
        take this array; the write then makes that NumPy copy."""
        return None

    def read_transposed(self, state: Any, ref: Any) -> Optional[np.ndarray]:
        """Primitive: the transpose of one native 2-D array, as a fresh
        C-contiguous NumPy array nobody else holds, made by the framework's
        own transpose.  Asked by reads that copy anyway (see
        ``value_reads_copy``) for a parameter whose canonical layout is the
        native one transposed, so the copy out is also the layout change.
        None (the default) where the framework has none, or not for this
        array: the read then copies and transposes as NumPy views do."""
        return None

    #: whether reading a value copies it out of the framework (Keras and
    #: Gluon arrays cannot be viewed).  A read of the whole model (``save``,
    #: ``transfer``) then reads each value when it is written out, so it
    #: holds one copy at a time (one per core into a backend whose writes
    #: run side by side: ``writes_in_parallel``), never a second model;
    #: where reads are views (False: torch, JAX) it takes them all at
    #: once, for free.
    value_reads_copy: bool = False

    #: whether a write plan converts this backend's large values one per
    #: core at a time (``multiparam.transaction``), holding one converted
    #: value per core instead of one.  True where every write makes a new
    #: array anyway and the framework's own conversion holds a whole new
    #: model (JAX); False where values are assigned one at a time and the
    #: user's own idiom holds one value (``var.assign(w.T)`` on Keras), so
    #: the peak stays what that idiom needs.
    converts_values_in_parallel: bool = False

    #: whether writes into distinct parameters may run on several threads
    #: at once (``multiparam.transaction``): each is a copy into that
    #: parameter's own memory, holding nothing new, by a kernel that may run
    #: on one core (torch's transposing copy), so a write plan writes its
    #: large values one per core.  A value read from a framework whose reads
    #: copy (Keras) is then held once per core, not once.  False where a
    #: write replaces a node of a shared structure (a Flax pytree) or the
    #: framework's own assignment holds one value at a time.
    writes_in_parallel: bool = False

    #: whether :meth:`transposed_array` takes only 64-byte-aligned memory
    #: (``multiparam.fastcopy.ALIGNMENT``; TensorFlow's transpose).  A load
    #: then reads a tensor whose place in the file is not aligned into
    #: aligned memory first, instead of converting it straight from the
    #: file's mapping, so that the framework's transpose still runs.
    transposes_aligned_only: bool = False

    # -- building from the neutral spec: one memoised walk ---------------------
    #: spec kind (``multiparam.nn`` ``Spec.kind``) -> constructor.  A
    #: constructor is ``fn(spec, name)`` returning the native layer, where
    #: ``name`` is the child's key inside a *named* Sequential (else None);
    #: the ``"Sequential"`` one is ``fn(spec, name, children)`` with
    #: ``children`` the built ``[(key, native)]``.
    builders: Dict[str, Callable] = {}

    def build(self, spec: Any) -> Any:
        """Build the native model for a ``multiparam.nn`` spec.

        A spec object used twice becomes one native layer used twice (the
        framework's own sharing idiom), so its parameters are tied."""
        return self.finish_build(self._build_node(spec, None, {}))

    def _build_node(self, node: Any, name: Optional[str], built: dict) -> Any:
        """The native layer of spec ``node`` (``built``: id(spec) -> native
        layer, for the specs built so far)."""
        if id(node) in built:
            return self.reuse(built[id(node)], node)
        constructor = self.builders.get(node.kind)
        if constructor is None:
            raise CapabilityError(self.name, f"build {node.kind} layers",
                                  f"known kinds: {', '.join(sorted(self.builders))}")
        if node.kind == "Sequential":
            named = getattr(node, "named", False)
            children = [(key, self._build_node(child, key if named else None, built))
                        for key, child in node.children]
            native = constructor(node, name, children)
        else:
            native = constructor(node, name)
        built[id(node)] = native
        return native

    def reuse(self, native: Any, spec: Any) -> Any:
        """What a second use of ``spec`` becomes, given its first build
        ``native``: the same object (the default; torch, Keras and Flax
        share a layer used twice), or the framework's own sharing idiom
        (Gluon: ``nn.Dense(.., params=shared.params)``)."""
        return native

    def finish_build(self, native: Any) -> Any:
        """The built model, after the walk (Gluon: ``initialize()``)."""
        return native

    #: backend extensions on the handle: attribute name -> class taking the
    #: Model handle (``m.flax`` on the jax backend: the Flax variables
    #: pytree and its de-duplicated form).  API that only one framework can
    #: have lives there, not on every handle.
    extensions: dict = {}

    def summary_idiom(self, state: Any) -> list:
        """Native (name, shape) pairs exactly as the framework's own
        collect-all idiom lists them (torch ``named_parameters``, Gluon
        ``collect_params``, Keras ``weights``, Flax ``tree_map`` over the
        pytree).  Used by the tour and by the conformance suite."""
        raise NotImplementedError

    def native_count(self, state: Any) -> int:
        """The number of *trainable* scalars, counted the framework's own way
        over its own collection (torch ``parameters()`` with requires_grad,
        Keras ``trainable_weights``, Gluon ``collect_params()`` without
        ``grad_req='null'``, the Flax ``params`` collection), de-duplicated
        as the framework does.  Compared with ``num_parameters(trainable=True)``
        by the conformance suite."""
        raise NotImplementedError

    def astype(self, state: Any, dtype: np.dtype) -> None:
        """Convert every floating parameter and state array of the model to
        ``dtype`` in place, so the model then computes in it (torch
        ``module.to(dtype)``, Gluon ``cast``); ``m.astype`` has checked the
        ``dtype:<name>`` capability."""
        raise CapabilityError(self.name, "convert a model's dtype", "not implemented")

    def capability(self, what: str) -> Capability:
        return self.capabilities.get(what, Capability(True))

    # -- initialisation (native mode): a template over ``draw`` ---------------
    def native_init(self, state: Any, ref: Any, initializer: Any, seed: int) -> bool:
        """Initialise one parameter in place with the framework's own random
        ops (``m.init(..., mode="native")``); return False, having changed
        nothing, when this backend cannot, and the core draws the values
        portably instead.

        ``initializer`` is already resolved against the canonical shape, so
        it is one of the primitives of ``multiparam.initializers``:
        ``Constant``, ``Uniform``, ``Normal``, ``TruncatedNormal`` (absolute
        bounds) or ``Orthogonal``; fan-based initializers arrive as those
        with their bounds computed, so no backend computes fans.  Values are
        drawn in the native shape by :meth:`draw` and stored by
        :meth:`write`, which keeps the parameter object.  A composite or a
        non-floating parameter falls back to portable mode."""
        if isinstance(ref, Composite):
            return False
        shape, dtype = self.native_shape(state, ref), self.dtype(state, ref)
        if shape is None or None in shape or not dtypes.is_floating(dtype):
            return False
        if type(initializer).__name__ == "Constant":
            value = np.full(shape, initializer.value, dtype)
        else:
            draw = _DRAWS.get(type(initializer).__name__)
            if draw is None:
                return False
            kind, params = draw(initializer)
            if kind == "orthogonal" and len(shape) < 2:
                return False
            value = self.draw(kind, tuple(shape), dtype, seed, **params)
            if value is None:
                return False
        self.write(state, ref, value)
        return True

    def draw(self, kind: str, shape: tuple, dtype: np.dtype, seed: int, **params) -> Any:
        """``shape`` values of distribution ``kind`` from the framework's own
        random ops seeded with ``seed``, as the framework's array (or
        NumPy), or None when it has no such op:

        - ``"uniform"``: ``low``, ``high``;
        - ``"normal"``: ``mean``, ``std``;
        - ``"truncated_normal"``: ``mean``, ``std``, absolute bounds ``a``, ``b``;
        - ``"orthogonal"``: ``gain`` (2 or more dims).

        The default has none."""
        return None

    def framework_default(self, state: Any, layer_node: LayerNode, slot: ParamSlot):
        """The ``multiparam.init`` initializer that reproduces the framework's
        documented default for this layer type and parameter role
        (``mp.init.framework_default()``), or None when unknown (the core
        then raises, naming the parameter).  Fans are computed by the core
        from the canonical shape."""
        return None


#: native-mode initializer class name -> (draw kind, its parameters).  By
#: name, not class: ``multiparam.initializers`` imports ``layout``, which
#: imports the layout tags above, so importing it here would be a cycle.
_DRAWS: Dict[str, Callable] = {
    "Uniform": lambda i: ("uniform", {"low": i.low, "high": i.high}),
    "Normal": lambda i: ("normal", {"mean": i.mean, "std": i.std}),
    "TruncatedNormal": lambda i: ("truncated_normal", {"mean": i.mean, "std": i.std, "a": i.a, "b": i.b}),
    "Orthogonal": lambda i: ("orthogonal", {"gain": i.gain}),
}
