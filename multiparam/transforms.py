"""Named layout transforms for porting: what every converter between models
written apart needs, as plain data.

A transform acts on a *list* of canonical arrays (the source tensors of one
destination parameter) and returns a list:

- elementwise ops act on each array: :func:`transpose`, :func:`reshape`,
  :func:`heads` / :func:`merge_heads` (per-head layouts: a ``(E, ...)``
  axis as ``(H, D, ...)`` and back), :func:`reorder` (gate order);
- :func:`split` keeps one part of one array (a fused ``qkv`` weight into
  ``q``, ``k``, ``v``: the plan gives each destination its part);
- :func:`merge` concatenates the list into one array (``q``, ``k``, ``v``
  into torch's ``in_proj_weight``).

Each transform is ``Transform(op, args)``: it serialises as
``{"op": ..., **args}`` and computes shapes without values, so a plan finds
every shape problem (a split that does not divide, a reshape of the wrong
size) before anything is written.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

Shape = Tuple[int, ...]


class TransformError(ValueError):
    """A transform that cannot act on the shapes it is given (the plan adds
    which parameter and which rule)."""


def _axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise TransformError(f"axis {axis} is out of range for {ndim}-D shapes")
    return axis % ndim


@dataclass(frozen=True)
class Transform:
    """One named layout operation with its arguments (plain data)."""

    op: str
    args: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.op not in _OPS:
            raise ValueError(f"unknown transform {self.op!r}; known: {', '.join(_OPS)}")

    # -- plain data --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"op": self.op, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in self.args.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "Transform":
        d = dict(d)
        op = d.pop("op")
        return cls(op, {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})

    def with_part(self, part: int) -> "Transform":
        return Transform(self.op, {**self.args, "part": part})

    def __hash__(self):
        return hash((self.op, tuple(sorted((k, str(v)) for k, v in self.args.items()))))

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v}" if k in ("part", "sizes") else str(v)
                         for k, v in self.args.items() if v is not None)
        return f"{self.op}({args})"

    # -- shapes and values --------------------------------------------------------------------
    def shapes(self, shapes: List[Shape]) -> List[Shape]:
        """The output shapes for input ``shapes``; ``TransformError`` saying
        why when the transform cannot act on them."""
        return _OPS[self.op][0](self.args, [tuple(s) for s in shapes])

    def __call__(self, arrays: List[np.ndarray]) -> List[np.ndarray]:
        self.shapes([a.shape for a in arrays])
        return _OPS[self.op][1](self.args, arrays)

    @property
    def parts(self) -> Optional[int]:
        """How many parts a split makes (None for other ops)."""
        if self.op != "split":
            return None
        p = self.args["parts"]
        return p if isinstance(p, int) else len(p)


# -- the public constructors ------------------------------------------------------------------
def transpose(perm: Optional[Sequence[int]] = None) -> Transform:
    """Permute axes (``None``: reverse them, a 2-D transpose), as ``np.transpose``."""
    return Transform("transpose", {"perm": None if perm is None else tuple(int(p) for p in perm)})


def reshape(shape: Sequence[int]) -> Transform:
    """Reshape (one ``-1`` allowed), as ``np.reshape`` in C order."""
    return Transform("reshape", {"shape": tuple(int(s) for s in shape)})


def split(axis: int, parts: Union[int, Sequence[int]]) -> Transform:
    """Split along ``axis`` into ``parts`` equal parts, or parts of the given
    sizes; a rule with several destinations gives each its part in order."""
    parts = int(parts) if isinstance(parts, (int, np.integer)) else tuple(int(p) for p in parts)
    return Transform("split", {"axis": int(axis), "parts": parts})


def merge(axis: int) -> Transform:
    """Concatenate the sources along ``axis``, in the rule's pattern order."""
    return Transform("merge", {"axis": int(axis)})


def heads(n: int, axis: int = 0) -> Transform:
    """Per-head layout: axis ``axis`` of size ``E`` becomes two, ``(n, E // n)``
    (torch's ``(E, E)`` projection as Flax/Keras' ``(H, D, E)``)."""
    return Transform("heads", {"n": int(n), "axis": int(axis)})


def merge_heads(axis: int = 0) -> Transform:
    """The inverse of :func:`heads`: axes ``axis`` and ``axis + 1`` (``H``, ``D``) become one."""
    return Transform("merge_heads", {"axis": int(axis)})


def reorder(axis: int, order: Sequence[int]) -> Transform:
    """Cut ``axis`` into ``len(order)`` equal blocks and put them in ``order``
    (gate order: ``reorder(0, (0, 1, 3, 2))`` swaps the last two of four gates)."""
    return Transform("reorder", {"axis": int(axis), "order": tuple(int(o) for o in order)})


# -- shape rules and value rules, per op ------------------------------------------------------
def _each(fn):
    return lambda args, shapes: [fn(args, s) for s in shapes]


def _transpose_shape(args, s: Shape) -> Shape:
    perm = args["perm"]
    if perm is None:
        return tuple(reversed(s))
    if sorted(perm) != list(range(len(s))):
        raise TransformError(f"transpose{perm} is not a permutation of the {len(s)} axes of shape {s}")
    return tuple(s[p] for p in perm)


def _reshape_shape(args, s: Shape) -> Shape:
    want = args["shape"]
    size = int(np.prod(s, dtype=np.int64))
    if list(want).count(-1) > 1:
        raise TransformError(f"reshape{want} has more than one -1")
    known = int(np.prod([w for w in want if w != -1], dtype=np.int64))
    if -1 in want:
        if known == 0 or size % known:
            raise TransformError(f"cannot reshape shape {s} ({size} values) into {want}")
        want = tuple(size // known if w == -1 else w for w in want)
    elif known != size:
        raise TransformError(f"cannot reshape shape {s} ({size} values) into {want} ({known} values)")
    return tuple(want)


def _sizes(args, s: Shape) -> Tuple[int, List[int]]:
    axis = _axis(args["axis"], len(s))
    parts = args["parts"]
    n = s[axis]
    if isinstance(parts, int):
        if parts < 1 or n % parts:
            raise TransformError(f"split into {parts} parts does not divide axis {args['axis']} of "
                                 f"shape {s} ({n} is not a multiple of {parts})")
        return axis, [n // parts] * parts
    if sum(parts) != n:
        raise TransformError(f"split sizes {list(parts)} add up to {sum(parts)}, not to axis "
                             f"{args['axis']} of shape {s} ({n})")
    return axis, list(parts)


def _split_shape(args, shapes: List[Shape]) -> List[Shape]:
    if len(shapes) != 1:
        raise TransformError(f"split takes one tensor, not {len(shapes)}")
    s = shapes[0]
    axis, sizes = _sizes(args, s)
    part = args.get("part")
    if part is None:
        return [s[:axis] + (k,) + s[axis + 1:] for k in sizes]
    return [s[:axis] + (sizes[part],) + s[axis + 1:]]


def _split_values(args, arrays):
    a = arrays[0]
    axis, sizes = _sizes(args, a.shape)
    bounds = np.cumsum([0] + sizes)
    pieces = [np.take(a, np.arange(bounds[i], bounds[i + 1]), axis=axis) for i in range(len(sizes))]
    part = args.get("part")
    return pieces if part is None else [pieces[part]]


def _merge_shape(args, shapes: List[Shape]) -> List[Shape]:
    first = shapes[0]
    axis = _axis(args["axis"], len(first))
    for s in shapes[1:]:
        if len(s) != len(first) or s[:axis] + s[axis + 1:] != first[:axis] + first[axis + 1:]:
            raise TransformError(f"cannot merge shapes {shapes} along axis {args['axis']}: they "
                                 "differ off that axis")
    return [first[:axis] + (sum(s[axis] for s in shapes),) + first[axis + 1:]]


def _heads_shape(args, s: Shape) -> Shape:
    axis = _axis(args["axis"], len(s))
    n = args["n"]
    if n < 1 or s[axis] % n:
        raise TransformError(f"{n} heads do not divide axis {args['axis']} of shape {s}")
    return s[:axis] + (n, s[axis] // n) + s[axis + 1:]


def _merge_heads_shape(args, s: Shape) -> Shape:
    if len(s) < 2:
        raise TransformError(f"merge_heads needs two axes; shape {s} has {len(s)}")
    axis = args["axis"] % len(s)
    if axis + 1 >= len(s):
        raise TransformError(f"merge_heads(axis={args['axis']}) needs an axis after it in shape {s}")
    return s[:axis] + (s[axis] * s[axis + 1],) + s[axis + 2:]


def _reorder_shape(args, s: Shape) -> Shape:
    axis = _axis(args["axis"], len(s))
    order = args["order"]
    if sorted(order) != list(range(len(order))):
        raise TransformError(f"reorder{order} is not a permutation of {len(order)} blocks")
    if s[axis] % len(order):
        raise TransformError(f"{len(order)} blocks do not divide axis {args['axis']} of shape {s}")
    return s


def _reorder_values(args, a):
    axis = _axis(args["axis"], a.ndim)
    blocks = np.split(a, len(args["order"]), axis=axis)
    return np.concatenate([blocks[i] for i in args["order"]], axis=axis)


_OPS = {
    "transpose": (_each(_transpose_shape), lambda args, arrays: [np.transpose(a, args["perm"]) for a in arrays]),
    "reshape": (_each(_reshape_shape),
                lambda args, arrays: [np.reshape(a, _reshape_shape(args, a.shape)) for a in arrays]),
    "split": (_split_shape, _split_values),
    "merge": (_merge_shape, lambda args, arrays: [np.concatenate(arrays, axis=args["axis"])]),
    "heads": (_each(_heads_shape),
              lambda args, arrays: [np.reshape(a, _heads_shape(args, a.shape)) for a in arrays]),
    "merge_heads": (_each(_merge_heads_shape),
                    lambda args, arrays: [np.reshape(a, _merge_heads_shape(args, a.shape)) for a in arrays]),
    "reorder": (_each(_reorder_shape), lambda args, arrays: [_reorder_values(args, a) for a in arrays]),
}


def run(ops: Sequence[Transform], arrays: List[np.ndarray]) -> List[np.ndarray]:
    """Apply ``ops`` in order to ``arrays``."""
    for op in ops:
        arrays = op(arrays)
    return arrays


def shapes_through(ops: Sequence[Transform], shapes: List[Shape]) -> List[Shape]:
    """The shapes ``ops`` make of ``shapes`` (``TransformError`` when one cannot act)."""
    for op in ops:
        shapes = op.shapes(shapes)
    return shapes
