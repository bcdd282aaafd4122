"""Keras kernel layouts that are more than an axis permutation of torch's.

Two Keras layers store what torch stores as one axis as several:

* a ``DepthwiseConv2D`` kernel is ``(kh, kw, in, multiplier)``; the torch
  module computing the same thing is ``Conv2d(in, in * multiplier,
  groups=in)``, whose weight is ``(in * multiplier, 1, kh, kw)`` with
  output channel ``i * multiplier + m`` (TensorFlow's depthwise order too);
* an ``EinsumDense`` kernel that is a linear map (each kernel axis either
  contracted with the input or kept in the output) is an ``nn.Linear``
  weight ``(out, in)`` whose two axes are split: Keras'
  ``MultiHeadAttention`` query kernel ``(dim, heads, head_dim)`` is torch's
  ``q_proj.weight`` ``(heads * head_dim, dim)``, its bias ``(heads,
  head_dim)`` the Linear's ``(heads * head_dim,)``.

:class:`Regrouped` describes both: canonical axis ``j`` is the native axes
``groups[j]`` merged in row-major order.  Like
:class:`~multiparam.adapters.base.DenseAfterFlatten` it carries what the
canonical shape cannot say (here the native shape, to split merged axes
again), and it converts itself: ``multiparam.layout`` calls its four
methods.  Merging axes that are adjacent in memory is a NumPy view, so
reading a depthwise kernel never copies.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class Regrouped:
    """Native array of ``native_shape``; canonical axis ``j`` merges the
    native axes ``groups[j]`` (row-major; an empty group is an axis of
    size 1).  Every native axis is in exactly one group."""

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


def depthwise(native_shape: tuple) -> Regrouped:
    """A depthwise kernel ``(*k, in, multiplier)`` as torch's grouped conv
    weight ``(in * multiplier, 1, *k)``."""
    n = len(native_shape)
    return Regrouped(tuple(native_shape), ((n - 2, n - 1), ()) + tuple((a,) for a in range(n - 2)))


def einsum_specs(equation: str) -> Tuple[str, str, str]:
    """The input, kernel and output axis letters of an ``EinsumDense``
    equation (``"...b,bc->...c"`` gives ``("b", "bc", "c")``)."""
    inputs, rest = equation.replace("...", "").split(",")
    kernel, output = rest.split("->")
    return inputs, kernel, output


def einsum_kernel(equation: str, native_shape: tuple) -> Optional[Regrouped]:
    """An ``EinsumDense`` kernel as the ``(out, in)`` weight of the
    ``nn.Linear`` it is: output axes in the output's order, then the
    contracted axes in the input's order.  None when the equation is not a
    linear map (a kernel axis both in the input and the output)."""
    inputs, kernel, output = einsum_specs(equation)
    if len(kernel) != len(native_shape) or any(c in inputs and c in output for c in kernel):
        return None
    rows = sorted((i for i, c in enumerate(kernel) if c in output), key=lambda i: output.index(kernel[i]))
    cols = sorted((i for i, c in enumerate(kernel) if c in inputs), key=lambda i: inputs.index(kernel[i]))
    return Regrouped(tuple(native_shape), (tuple(rows), tuple(cols)))


def flattened(native_shape: tuple) -> Regrouped:
    """An array as one axis (an ``EinsumDense`` bias over every output axis
    of its kernel is the Linear's 1-D bias)."""
    return Regrouped(tuple(native_shape), (tuple(range(len(native_shape))),))
