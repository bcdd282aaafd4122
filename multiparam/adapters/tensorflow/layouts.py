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

:class:`~multiparam.adapters.base.Regrouped` (shared with Flax's
``DenseGeneral``) describes both: canonical axis ``j`` is the native axes
``groups[j]`` merged in row-major order.  Like
:class:`~multiparam.adapters.base.DenseAfterFlatten` it carries what the
canonical shape cannot say (here the native shape, to split merged axes
again), and it converts itself: ``multiparam.layout`` calls its four
methods.  Merging axes that are adjacent in memory is a NumPy view, so
reading a depthwise kernel never copies.
"""
from __future__ import annotations

from typing import Optional, Tuple

from ..base import Regrouped


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
