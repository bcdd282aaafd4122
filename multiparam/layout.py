"""Canonical layout (PyTorch's) and the conversions from each native layout.

Canonical: dense ``(out, in)``, conv ``(out, in/groups, *kernel)``.  Keras
and Flax store dense kernels ``(in, out)`` and conv kernels
``(*kernel, in, out)``.  Both conversions are pure axis permutations, so a
NumPy view suffices: reading a value never copies here.  The one exception
is a dense kernel after a channels-last flatten (``DenseAfterFlatten``):
its rows are also reordered from (H, W, C) to torch's (C, H, W), a copy.

Inputs follow the same rule: canonical images are NCHW, and
:func:`input_to_native` gives a channels-last backend its NHWC.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from .adapters.base import CHANNELS_LAST_KERNEL, DENSE_IN_OUT, SAME, DenseAfterFlatten


def _converts_itself(layout: Any) -> bool:
    """A layout object that converts itself: a backend's own layout that is
    more than an axis permutation (Keras' depthwise and EinsumDense kernels,
    whose axes merge into torch's), with ``to_canonical``, ``to_native``,
    ``shape_to_canonical`` and ``shape_to_native`` methods."""
    return hasattr(layout, "to_canonical")


def _to_canonical_axes(layout: Any, ndim: int) -> Optional[Tuple[int, ...]]:
    """The axis permutation of a layout (for a DenseAfterFlatten: the
    transpose part; its row permutation is applied by the callers below)."""
    if layout == SAME or ndim < 2:
        return None
    if layout == DENSE_IN_OUT or isinstance(layout, DenseAfterFlatten):
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


def to_canonical(array: np.ndarray, layout: Any) -> np.ndarray:
    """A view of a native-layout array in canonical layout (a copy for a
    DenseAfterFlatten, whose rows are permuted)."""
    if isinstance(layout, DenseAfterFlatten):
        return _flatten_columns_to_chw(array.T, layout)
    if _converts_itself(layout):
        return layout.to_canonical(array)
    axes = _to_canonical_axes(layout, array.ndim)
    return array if axes is None else array.transpose(axes)


def to_native(array: np.ndarray, layout: Any) -> np.ndarray:
    """A canonical-layout array in native layout (a view; callers copy if
    the framework needs contiguous memory)."""
    if isinstance(layout, DenseAfterFlatten):
        return _flatten_columns_to_hwc(array, layout).T
    if _converts_itself(layout):
        return layout.to_native(array)
    axes = _to_canonical_axes(layout, array.ndim)
    return array if axes is None else array.transpose(_inverse(axes))


def _flatten_columns_to_chw(w: np.ndarray, layout: DenseAfterFlatten) -> np.ndarray:
    """(out, H*W*C) with columns in (H, W, C) order -> columns in (C, H, W)."""
    c, h, wd = layout.chw
    out = w.shape[0]
    return w.reshape(out, h, wd, c).transpose(0, 3, 1, 2).reshape(out, c * h * wd)


def _flatten_columns_to_hwc(w: np.ndarray, layout: DenseAfterFlatten) -> np.ndarray:
    """(out, C*H*W) with columns in (C, H, W) order -> columns in (H, W, C)."""
    c, h, wd = layout.chw
    out = w.shape[0]
    return w.reshape(out, c, h, wd).transpose(0, 2, 3, 1).reshape(out, c * h * wd)


def dense_layout_after_flatten(feature_map_shape: Optional[tuple], in_features: Optional[int]):
    """The layout of a channels-last dense kernel fed by a flatten of a
    feature map of per-sample shape ``(H, W, C)``: a DenseAfterFlatten when
    that map really is spatial and its size is the dense's input size, else
    the plain DENSE_IN_OUT (a flatten of ``(N, F)`` permutes nothing)."""
    if feature_map_shape is None or len(feature_map_shape) != 3:
        return DENSE_IN_OUT
    h, w, c = (int(d) if d is not None else None for d in feature_map_shape)
    if None in (h, w, c) or (h == 1 and w == 1):
        return DENSE_IN_OUT
    if in_features is not None and h * w * c != in_features:
        return DENSE_IN_OUT
    return DenseAfterFlatten(c, h, w)


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
