"""Canonical layout (PyTorch's) and the conversions from each native layout.

Canonical: dense ``(out, in)``, conv ``(out, in/groups, *kernel)``.  Keras
and Flax store dense kernels ``(in, out)`` and conv kernels
``(*kernel, in, out)``.  Both conversions are pure axis permutations, so a
NumPy view suffices: reading a value never copies here.  The exception is
an array indexing features that a channels-last framework holds in another
order (:class:`~multiparam.adapters.base.Permuted`): a dense kernel after a
flatten of an (H, W, C) map, and a norm over those features, whose features
are reordered to torch's (C, H, W), a copy.  Which order the features of a
tensor have is found by following it through the model (:class:`Labels`),
never by a pattern.

Inputs follow the same rule: canonical images are NCHW, and
:func:`input_to_native` gives a channels-last backend its NHWC.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Hashable, Optional, Tuple

import numpy as np

from .adapters.base import (CHANNELS_LAST_KERNEL, DENSE_IN_OUT, SAME, FeatureOrder, Permuted,
                            UnknownOrder)


def _converts_itself(layout: Any) -> bool:
    """A layout object that converts itself: a backend's own layout that is
    more than an axis permutation (Keras' depthwise and EinsumDense kernels,
    whose axes merge into torch's), with ``to_canonical``, ``to_native``,
    ``shape_to_canonical`` and ``shape_to_native`` methods."""
    return hasattr(layout, "to_canonical")


def _to_canonical_axes(layout: Any, ndim: int) -> Optional[Tuple[int, ...]]:
    """The axis permutation of a plain layout tag."""
    if layout == SAME or ndim < 2:
        return None
    if layout == DENSE_IN_OUT:
        return tuple(range(ndim))[::-1] if ndim == 2 else None
    if layout == CHANNELS_LAST_KERNEL:
        # (*k, in, out) -> (out, in, *k)
        return (ndim - 1, ndim - 2) + tuple(range(ndim - 2))
    raise ValueError(f"unknown layout {layout!r}")


def _inverse(axes: Tuple[int, ...]) -> Tuple[int, ...]:
    inv = [0] * len(axes)
    for i, a in enumerate(axes):
        inv[a] = i
    return tuple(inv)


def is_identity(layout: Any, ndim: int) -> bool:
    """Whether canonical and native layout are the same memory for an
    ``ndim``-dimensional array (then a value may be read straight into the
    parameter's memory)."""
    return not _converts_itself(layout) and _to_canonical_axes(layout, ndim) is None


def permutes(layout: Any, ndim: int) -> bool:
    """Whether the native array is a plain axis permutation of the canonical
    one, other than the identity (a Keras or Flax Dense or conv kernel): a
    write then copies the value into fresh memory in native order, and may
    read it from wherever it lies."""
    return not _converts_itself(layout) and _to_canonical_axes(layout, ndim) is not None


def is_transpose(layout: Any, ndim: int) -> bool:
    """Whether the canonical array is the plain transpose of the native one
    (a Keras or Flax Dense kernel)."""
    return not _converts_itself(layout) and ndim == 2 and _to_canonical_axes(layout, ndim) == (1, 0)


def to_canonical(array: np.ndarray, layout: Any) -> np.ndarray:
    """A view of a native-layout array in canonical layout (a copy for a
    :class:`Permuted` one, whose features are reordered)."""
    if _converts_itself(layout):
        return layout.to_canonical(array)
    axes = _to_canonical_axes(layout, array.ndim)
    return array if axes is None else array.transpose(axes)


def to_native(array: np.ndarray, layout: Any) -> np.ndarray:
    """A canonical-layout array in native layout (a view; callers copy if
    the framework needs contiguous memory)."""
    if _converts_itself(layout):
        return layout.to_native(array)
    axes = _to_canonical_axes(layout, array.ndim)
    return array if axes is None else array.transpose(_inverse(axes))


def transposes_natively(src_layout: Any, dst_layout: Any) -> bool:
    """Whether two 2-D layouts store the same canonical matrix transposed of
    each other (SAME vs DENSE_IN_OUT): an adapter uses this to tell a
    *canonical* transposed tie from a native one."""
    probe = np.arange(6).reshape(2, 3)
    return to_native(probe, src_layout).shape != to_native(probe, dst_layout).shape


def input_to_native(x: Any, channels_last: bool) -> Any:
    """A canonical input (torch's NCHW for 4-D images) in a backend's layout:
    NHWC when ``channels_last`` (Keras, Flax).  Anything that is not a 4-D
    array (vectors, sequences, integer ids) is the same everywhere."""
    if not channels_last or getattr(x, "ndim", None) != 4:
        return x
    return np.ascontiguousarray(np.asarray(x).transpose(0, 2, 3, 1))


def output_to_canonical(y: np.ndarray, channels_last: bool) -> np.ndarray:
    """A backend's output in canonical layout: NHWC feature maps back to
    NCHW; (N, classes) and (N, T, H) outputs are already canonical."""
    y = np.asarray(y)
    if not channels_last or y.ndim != 4:
        return y
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2))


def shape_to_canonical(shape: Optional[tuple], layout: Any) -> Optional[tuple]:
    """A native shape in canonical layout (None stays None)."""
    if shape is None:
        return None
    if _converts_itself(layout):
        return layout.shape_to_canonical(tuple(shape))
    axes = _to_canonical_axes(layout, len(shape))
    return tuple(shape) if axes is None else tuple(shape[a] for a in axes)


def shape_to_native(shape: Optional[tuple], layout: Any) -> Optional[tuple]:
    """A canonical shape in native layout (None stays None; unknown dims,
    None, move with their axis): a shape hint shown before the build."""
    if shape is None:
        return None
    if _converts_itself(layout):
        return layout.shape_to_native(tuple(shape))
    axes = _to_canonical_axes(layout, len(shape))
    return tuple(shape) if axes is None else tuple(shape[a] for a in _inverse(axes))


def fans(shape: Tuple[int, ...]) -> Tuple[int, int]:
    """(fan_in, fan_out) from a *canonical* shape, as torch computes them:
    ``(out, in, *k)`` gives fan_in = in * prod(k), fan_out = out * prod(k).
    Computing from canonical axes is what makes xavier on a Keras (in, out)
    kernel draw from the same distribution as on a torch (out, in) weight."""
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need at least 2 dims, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


# ---------------------------------------------------------------------------
# Following the feature order through a model
# ---------------------------------------------------------------------------
#: an axis whose make-up was lost (an operation that cannot be followed
#: on a tensor not in torch's order)
LOST = "lost"


@dataclass(frozen=True)
class Label:
    """One canonical axis, or a piece of one, that a native axis is made of.
    ``rank`` is torch's position for it among the labels of its tensor (a
    tuple, so a split axis orders its pieces after their parent's place)."""

    size: int
    rank: tuple
    uid: int


@dataclass(frozen=True)
class Tag:
    """What one native axis of a tensor is: ``labels``, the canonical axes
    it is made of in native order (None: no data on it, only parameters or
    a broadcast; ``LOST``: unknown), and ``params``, the ``(parameter key,
    native axis)`` pairs whose axis lines up with it."""

    labels: Any = None
    params: frozenset = frozenset()


class Labels:
    """Follows which canonical axes each tensor's features come from, and in
    what order, through a model's operations (one framework-free algebra; a
    backend maps its own operations onto it: ``adapters/jax/order.py``
    interprets a traced jaxpr, ``adapters/tensorflow/order.py`` walks Keras'
    layer graph).  A tensor is a tuple of :class:`Tag`, one per native axis.

    A model input in torch's NCHW reaches a channels-last framework as NHWC
    (:func:`input_to_native`): its axes are labelled N, H, W, C with torch's
    ranks 0, 2, 3, 1.  Reshapes merge and split labels, transposes move
    them, reductions drop them, a contraction (a dense layer) makes a new
    label, and wherever a parameter's axis lines up with data, the
    parameter is *bound* to that axis' labels: a dense kernel contracted
    with features labelled (H, W, C) holds them in that order, where torch
    holds (C, H, W).  :meth:`layout` turns the bindings into a layout."""

    def __init__(self):
        self._uid = 0
        self.bindings: Dict[Hashable, list] = {}

    # -- making tensors ------------------------------------------------------
    def fresh(self, size: int, rank: tuple) -> Label:
        self._uid += 1
        return Label(int(size), tuple(rank), self._uid)

    def plain(self, shape: tuple) -> tuple:
        """A tensor in torch's layout (an id sequence, a feature matrix)."""
        return tuple(Tag((self.fresh(d, (i,)),) if d != 1 else ()) for i, d in enumerate(shape))

    def image(self, shape: tuple) -> tuple:
        """A channels-last input ``(N, H, W, C)`` of torch's ``(N, C, H, W)``."""
        ranks = (0,) + tuple(range(2, len(shape))) + (1,)
        return tuple(Tag((self.fresh(d, (r,)),) if d != 1 else ()) for d, r in zip(shape, ranks))

    def param(self, key: Hashable, shape: tuple) -> tuple:
        """A parameter: no data labels, each axis its own ``(key, axis)``."""
        return tuple(Tag(None, frozenset({(key, i)})) for i in range(len(shape)))

    @staticmethod
    def constant(shape: tuple) -> tuple:
        return tuple(Tag() for _ in shape)

    # -- what a tensor is -----------------------------------------------------
    @staticmethod
    def is_canonical(t: tuple) -> bool:
        """In torch's order: no lost axis, and labels read in torch's order
        across the whole tensor (a flattened NHWC map is not; N, C is)."""
        ranks = []
        for tag in t:
            if tag.labels is LOST:
                return False
            ranks += [label.rank for label in tag.labels or ()]
        return ranks == sorted(ranks)

    def canonical_like(self, shape: tuple) -> tuple:
        """A new tensor of ``shape`` in torch's order (what an operation that
        cannot be followed makes of inputs in torch's order: the torch
        equivalent does the same to the same layout)."""
        return self.plain(shape)

    def lost(self, shape: tuple) -> tuple:
        return tuple(Tag(LOST) for _ in shape)

    # -- operations -------------------------------------------------------------
    def combine(self, tags: list) -> Tag:
        """Axes lined up elementwise: their labels must agree; every
        parameter on them is bound to those labels."""
        labels = None
        for tag in tags:
            if tag.labels is None:
                continue
            if tag.labels is LOST or (labels is not None and not _lined_up(labels, tag.labels)):
                labels = LOST
                break
            labels = labels or tag.labels
        params = frozenset().union(*(tag.params for tag in tags))
        if labels is not None:
            for key in params:
                self.bindings.setdefault(key, []).append(labels)
        return Tag(labels, params)

    def elementwise(self, operands: list) -> tuple:
        """Operands of one shape (broadcasts already made explicit).  When
        every operand holding data is in torch's order, torch's twin lines
        up the same axes whatever each came from (a residual ``x +
        attention(x)``, whose labels were made apart): the result is in
        torch's order, labelled anew, each parameter on it bound there."""
        axes = [list(tags) for tags in zip(*operands)]
        data = [t for t in operands if any(tag.labels is not None for tag in t)]
        if len(data) < 2 or not all(self.is_canonical(t) for t in data):
            return tuple(self.combine(tags) for tags in axes)
        out = []
        for i, tags in enumerate(axes):
            labels = next((tag.labels for tag in tags if tag.labels is not None), None)
            fresh = Tag(None if labels is None else
                        tuple(self.fresh(label.size, (i, j)) for j, label in enumerate(labels)))
            out.append(self.combine([fresh] + [Tag(None, tag.params) for tag in tags]))
        return tuple(out)

    def reshape(self, t: tuple, in_shape: tuple, out_shape: tuple) -> tuple:
        """Merge and split axes (row-major).  Parameters follow when only
        axes of size 1 come and go; labels are regrouped when the new axes
        fall on label boundaries (or split one label); otherwise a tensor in
        torch's order stays so, and any other is lost."""
        in_shape, out_shape = tuple(int(d) for d in in_shape), tuple(int(d) for d in out_shape)
        keep = [i for i, d in enumerate(in_shape) if d != 1]
        put = [j for j, d in enumerate(out_shape) if d != 1]
        if [in_shape[i] for i in keep] == [out_shape[j] for j in put]:
            out = [Tag(() if all(tag.labels is not None for tag in t) else None) for _ in out_shape]
            for i, j in zip(keep, put):
                out[j] = t[i]
            return tuple(out)
        if any(tag.labels is None for tag in t):
            return self.constant(out_shape)
        atoms = self._regroup([label for tag in t for label in (tag.labels or ())], out_shape) \
            if all(tag.labels is not LOST for tag in t) else None
        if atoms is not None:
            return tuple(Tag(group) for group in atoms)
        return self.canonical_like(out_shape) if self.is_canonical(t) else self.lost(out_shape)

    def _regroup(self, labels: list, out_shape: tuple) -> Optional[list]:
        groups, queue = [], list(labels)
        for d in out_shape:
            group, size = [], 1
            while size < d and queue:
                label = queue.pop(0)
                if size * label.size <= d:
                    group.append(label)
                    size *= label.size
                    continue
                need = d // size
                if d % size or label.size % need:
                    return None
                group.append(self.fresh(need, label.rank + (0,)))
                queue.insert(0, self.fresh(label.size // need, label.rank + (1,)))
                size = d
            if size != d:
                return None
            groups.append(tuple(group))
        return groups if not queue else None

    def transpose(self, t: tuple, perm: tuple) -> tuple:
        """Axes moved.  A tensor in torch's order stays in it (torch's twin
        moves its axes the same way: labels ranked anew by their place);
        any other keeps its labels, so moving an NHWC map's C before H and
        W puts it in torch's order."""
        moved = tuple(t[p] for p in perm)
        if not self.is_canonical(t):
            return moved
        return tuple(Tag(tag.labels if tag.labels is None else
                         tuple(self.fresh(label.size, (i, j)) for j, label in enumerate(tag.labels)), tag.params)
                     for i, tag in enumerate(moved))

    @staticmethod
    def broadcast(t: tuple, in_shape: tuple, out_shape: tuple, dims: tuple) -> tuple:
        """``broadcast_in_dim``: operand axis ``i`` becomes output axis
        ``dims[i]``; an axis stretched from size 1, or a new one, holds copies."""
        out = [Tag() for _ in out_shape]
        for i, j in enumerate(dims):
            if in_shape[i] == out_shape[j]:
                out[j] = t[i]
        return tuple(out)

    @staticmethod
    def reduce(t: tuple, axes) -> tuple:
        return tuple(tag for i, tag in enumerate(t) if i not in set(axes))

    def resized(self, t: tuple, in_shape: tuple, out_shape: tuple) -> tuple:
        """A rank-keeping operation on each axis (pooling, slicing,
        padding): an axis of one label keeps its place with the new size."""
        out = []
        for tag, a, b in zip(t, in_shape, out_shape):
            if a == b:
                out.append(tag)
            elif tag.labels in (None, LOST) or len(tag.labels) > 1:
                out.append(Tag(tag.labels if tag.labels is None else LOST))
            else:
                rank = tag.labels[0].rank if tag.labels else (len(out),)
                out.append(Tag((self.fresh(b, rank),) if b != 1 else ()))
        return tuple(out)

    @staticmethod
    def _ranks(tags) -> list:
        return [label.rank for tag in tags if tag.labels not in (None, LOST) for label in tag.labels]

    def _rank_of(self, tags) -> tuple:
        ranks = self._ranks(tags)
        return min(ranks) if ranks else None

    def _last_rank(self, tags) -> tuple:
        ranks = self._ranks(tags)
        return max(ranks) if ranks else None

    def contract(self, lhs: tuple, rhs: tuple, lhs_shape: tuple, rhs_shape: tuple,
                 contracting: tuple, batch: tuple) -> tuple:
        """``dot_general``: contracted axes are bound to each other (a
        kernel to the features it mixes); the output is the batch axes, the
        lhs' free axes, then the rhs' free axes, a free axis of parameters
        alone becoming a new feature label in the contracted features' place."""
        (lc, rc), (lb, rb) = contracting, batch
        for i, j in zip(lc, rc):
            self.combine([lhs[i], rhs[j]])
        out = [self.combine([lhs[i], rhs[j]]) for i, j in zip(lb, rb)]
        out += [lhs[i] for i in range(len(lhs)) if i not in lc and i not in lb]
        known = [tag for tag in out if tag.labels not in (None, LOST)]
        # the new features take the contracted ones' place; a contracted axis of
        # size 1 has no label to say where that is, and a dense layer contracts
        # the last axis: after the lhs' free axes ((N, T, 1) -> (N, T, F), F after T)
        rank = self._rank_of([lhs[i] for i in lc]) or (self._last_rank(known) or (0,)) + (1,)
        for j in range(len(rhs)):
            if j in rc or j in rb:
                continue
            tag = rhs[j]
            if tag.labels is None:
                tag = Tag((self.fresh(rhs_shape[j], rank),) if rhs_shape[j] != 1 else (), tag.params)
            out.append(tag)
        return tuple(out)

    def convolve(self, lhs: tuple, out_shape: tuple, lhs_spec: tuple, out_spec: tuple) -> tuple:
        """A convolution: batch kept, features and spatial axes made anew
        (``*_spec``: batch axis, feature axis, spatial axes, as
        ``lax.conv_general_dilated`` numbers them), each with torch's rank
        for it: its place in torch's (N, C, *spatial)."""
        out = [Tag() for _ in out_shape]
        out[out_spec[0]] = lhs[lhs_spec[0]]
        for k, b in enumerate(out_spec[1:], start=1):
            out[b] = Tag((self.fresh(out_shape[b], (k,)),) if out_shape[b] != 1 else ())
        return tuple(out)

    # -- the result -------------------------------------------------------------
    def layout(self, key: Hashable, axis: int, base: Any, what: str) -> Any:
        """The layout of a parameter whose native axis ``axis`` indexes
        features (the in-axis of a dense kernel, a per-feature vector's
        axis): ``base`` when bound to features in torch's order or never
        bound, a :class:`Permuted` when bound to one other order, an
        :class:`UnknownOrder` when the order is lost or differs between uses.
        ``what`` names the parameter in the error."""
        orders = set()
        for labels in self.bindings.get((key, axis), []):
            if labels is LOST:
                return UnknownOrder(base, f"{what} is applied to features a channels-last tensor was "
                                          "turned into by operations multiparam cannot follow")
            order = _order_of(labels)
            if order is not None:
                orders.add(order)
        if not orders:
            return base
        if len(orders) > 1:
            return UnknownOrder(base, f"{what} is applied to features in {len(orders)} different orders")
        return Permuted(base, orders.pop())


def _lined_up(a: tuple, b: tuple) -> bool:
    """Whether two axes' labels are the same features for torch's twin:
    the same labels, or labels of the same sizes at the same torch ranks
    in the same order (a residual ``x + dense(x)``, a conv block's
    ``x + conv(x)``, attention's queries against its keys: different
    tensors, whose twins line up the same axes)."""
    return a == b or (len(a) == len(b) and all(x.size == y.size and x.rank == y.rank for x, y in zip(a, b)))


def _order_of(labels: tuple) -> Optional[FeatureOrder]:
    """The :class:`FeatureOrder` of an axis made of ``labels`` (in native
    order), or None when it is torch's."""
    if len(labels) < 2:
        return None
    canonical = sorted(range(len(labels)), key=lambda i: labels[i].rank)
    if canonical == list(range(len(labels))):
        return None
    shape = tuple(labels[i].size for i in canonical)
    return FeatureOrder(shape, tuple(canonical.index(i) for i in range(len(labels))))
