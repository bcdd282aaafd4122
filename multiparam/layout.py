"""Canonical layout (PyTorch's) and the conversions from each native layout.

Canonical: dense ``(out, in)``, conv ``(out, in/groups, *kernel)``.  Keras
and Flax store dense kernels ``(in, out)`` and conv kernels
``(*kernel, in, out)``.  Both conversions are pure axis permutations, so a
NumPy view suffices: reading a value never copies here.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .adapters.base import CHANNELS_LAST_KERNEL, DENSE_IN_OUT, SAME


def _to_canonical_axes(layout: str, ndim: int) -> Optional[Tuple[int, ...]]:
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


def to_canonical(array: np.ndarray, layout: str) -> np.ndarray:
    """A view of a native-layout array in canonical layout."""
    axes = _to_canonical_axes(layout, array.ndim)
    return array if axes is None else array.transpose(axes)


def to_native(array: np.ndarray, layout: str) -> np.ndarray:
    """A canonical-layout array in native layout (a view; callers copy if
    the framework needs contiguous memory)."""
    axes = _to_canonical_axes(layout, array.ndim)
    return array if axes is None else array.transpose(_inverse(axes))


def shape_to_canonical(shape: Optional[tuple], layout: str) -> Optional[tuple]:
    if shape is None:
        return None
    axes = _to_canonical_axes(layout, len(shape))
    return tuple(shape) if axes is None else tuple(shape[a] for a in axes)


def fans(shape: Tuple[int, ...]) -> Tuple[int, int]:
    """(fan_in, fan_out) from a *canonical* shape, as torch computes them:
    ``(out, in, *k)`` gives fan_in = in * prod(k), fan_out = out * prod(k).
    Computing from canonical axes is what makes xavier on a Keras (in, out)
    kernel draw from the same distribution as on a torch (out, in) weight."""
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need at least 2 dims, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive
