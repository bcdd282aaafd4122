"""Porting weights between models written apart: rules, a reviewable plan,
``transfer`` with rules, and ``check``.

    plan = mp.plan(src, dst, rules=[
        (r"^transformer\\.", ""),                               # renames, in order
        (r"^h\\.(\\d+)\\.", r"h_\\1."),
        mp.rule(r"attn\\.c_attn\\.weight$", ["attn.query.weight", "attn.key.weight",
                "attn.value.weight"], mp.split(1, 3), mp.transpose()),
    ])
    print(plan)          # a table: destination, shape, source(s), layout ops
    plan.apply()         # one checked write: all or nothing
    mp.check(src, dst, inputs, grads=True)

Rules
-----
Every source name goes through the rules in order; each rule that matches
rewrites it (``re.sub``) and the next rule sees the result:

- ``(pattern, replacement)``: a regex rename;
- ``rule(pattern, replacement, *transforms)``: a rename that also attaches
  layout transforms (:mod:`multiparam.transforms`);
- ``rule(pattern, [r1, r2, r3], split(axis, 3), ...)``: one source becomes
  several destinations, each its part of the split, in order;
- ``rule([p1, p2, p3], replacement, merge(axis), ...)``: several sources (one
  per pattern, in that order) become one destination;
- a callable ``fn(name) -> new name`` (None leaves the source unmapped).

Names left unmatched are then paired by ``match``: ``"name"`` (only the
rules), ``"order"`` (leftovers paired in order within the same role and
number of axes), ``"shape"`` (leftovers paired with the first leftover of
the same shape and role).

A plan checks every shape (and dtype) before anything is written, and
refuses a rule that maps two sources onto one destination, a split that
does not divide, a merge whose parts overlap: each error names the
destination parameter and the rule.
"""
from __future__ import annotations

import difflib
import functools
import importlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import transforms as T
from . import io as _io
from .errors import MultiparamError, NotMaterializedError, UnknownNameError
from .layout import input_to_native, output_to_canonical
from .model import Model, wrap
from .param import as_numpy
from .state import (DeferredArray, StateDict, is_framework_only, load_state_dict, state_dict, state_streams,
                    state_views)
from .transaction import WritePlan

__all__ = ["Rule", "rule", "TransferPlan", "PlanEntry", "PlanError", "plan", "transfer", "check",
           "CheckReport", "MATCH_MODES"]

MATCH_MODES = ("name", "order", "shape")
PLAN_FORMAT = 1


class PlanError(MultiparamError, ValueError):
    """A plan that cannot be made or applied: names the destination
    parameter and the rule.  Nothing was written."""


# -- rules --------------------------------------------------------------------------------------
@dataclass
class Rule:
    """One porting rule (see the module docstring).  ``pattern`` is a regex
    or, for a merge, a list of them (one per part, in order); ``to`` a
    replacement or, for a split, a list of them; ``fn`` a callable rule."""

    pattern: Union[str, Tuple[str, ...], None] = None
    to: Union[str, Tuple[str, ...], None] = None
    transforms: Tuple[T.Transform, ...] = ()
    fn: Optional[Callable[[str], Optional[str]]] = None

    def __post_init__(self):
        if self.fn is not None:
            return
        if isinstance(self.pattern, (list, tuple)):
            self.pattern = tuple(self.pattern)
        if isinstance(self.to, (list, tuple)):
            self.to = tuple(self.to)
        self.transforms = tuple(self.transforms)
        for t in self.transforms:
            if not isinstance(t, T.Transform):
                raise TypeError(f"rule {self}: {t!r} is not a transform (use multiparam.split, merge, "
                                "reshape, transpose, heads, merge_heads, reorder)")
        splits = [t for t in self.transforms if t.op == "split"]
        merges = [t for t in self.transforms if t.op == "merge"]
        if isinstance(self.to, tuple):
            if len(splits) != 1 or splits[0].parts != len(self.to):
                raise PlanError(f"rule {self} maps one source to {len(self.to)} destinations, so it needs "
                                f"one split into {len(self.to)} parts")
        elif splits:
            raise PlanError(f"rule {self} splits, so it needs one destination per part (a list)")
        if isinstance(self.pattern, tuple):
            if isinstance(self.to, tuple) or len(merges) != 1:
                raise PlanError(f"rule {self} takes {len(self.pattern)} sources, so it needs one merge "
                                "and one destination")
        elif merges:
            raise PlanError(f"rule {self} merges, so it needs one pattern per part (a list)")
        for p in self.patterns:
            re.compile(p)

    @property
    def patterns(self) -> Tuple[str, ...]:
        if self.fn is not None:
            return ()
        return self.pattern if isinstance(self.pattern, tuple) else (self.pattern,)

    def __str__(self) -> str:
        if self.fn is not None:
            return f"{getattr(self.fn, '__qualname__', self.fn)!s}()"
        ops = "".join(f", {t}" for t in self.transforms)
        return f"({self.pattern!r} -> {self.to!r}{ops})"

    # -- plain data ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        if self.fn is not None:
            module, qual = getattr(self.fn, "__module__", None), getattr(self.fn, "__qualname__", "")
            if not module or "<" in qual or module == "__main__":
                raise PlanError(f"rule {self} is a callable that cannot be saved ({module}.{qual}: a "
                                "lambda, a local function or one in __main__ cannot be imported again); "
                                "write it as regex rules, or as a module-level function")
            return {"callable": f"{module}:{qual}"}
        return {"pattern": list(self.pattern) if isinstance(self.pattern, tuple) else self.pattern,
                "to": list(self.to) if isinstance(self.to, tuple) else self.to,
                "transforms": [t.to_dict() for t in self.transforms]}

    @classmethod
    def from_dict(cls, d: dict) -> "Rule":
        if "callable" in d:
            module, _, qual = d["callable"].partition(":")
            obj = importlib.import_module(module)
            for part in qual.split("."):
                obj = getattr(obj, part)
            return cls(fn=obj)
        return cls(d["pattern"], d["to"], tuple(T.Transform.from_dict(t) for t in d.get("transforms", ())))


def rule(pattern, to, *transforms: T.Transform) -> Rule:
    """A rule: rename ``pattern`` (a regex, or a list of them for a merge) to
    ``to`` (a replacement, or a list for a split) and apply ``transforms``."""
    return Rule(pattern, to, tuple(transforms))


def as_rules(rules) -> List[Rule]:
    """Rules from what users write: Rules, ``(pattern, to, *transforms)``
    tuples, callables, or a module / object with a ``RULES`` list."""
    if rules is None:
        return []
    if hasattr(rules, "RULES"):
        rules = rules.RULES
    if isinstance(rules, (Rule, tuple)) or callable(rules):
        rules = [rules]
    out = []
    for r in rules:
        if isinstance(r, Rule):
            out.append(r)
        elif isinstance(r, (tuple, list)) and len(r) >= 2:
            out.append(Rule(r[0], r[1], tuple(r[2:])))
        elif callable(r):
            out.append(Rule(fn=r))
        else:
            raise TypeError(f"a rule is (pattern, replacement[, transforms...]), multiparam.rule(...) or a "
                            f"callable name -> name; got {r!r}")
    return out


# -- the two sides ------------------------------------------------------------------------------
@dataclass
class _Tensor:
    name: str                   # its primary name
    shape: Tuple[int, ...]
    dtype: np.dtype
    role: Optional[str] = None
    aliases: Tuple[str, ...] = ()


class _Source:
    """What a plan reads from: a Model handle, or a state dict / safetensors
    checkpoint (no model: values only)."""

    def __init__(self, obj):
        self.model: Optional[Model] = None
        self.tensors: Dict[str, _Tensor] = {}
        self.by_name: Dict[str, _Tensor] = {}
        if isinstance(obj, (str, os.PathLike)):
            self.state = _io.read_state(obj)
            self.kind = f"file {os.fspath(obj)}"
        elif isinstance(obj, Mapping):
            self.state = obj
            self.kind = "state dict"
        else:
            self.model = obj if isinstance(obj, Model) else wrap(obj)
            self.state = None
            self.kind = f"{self.model.backend} model"
        if self.model is not None:
            for name, p in self.model.named_parameters().items():
                if not p.materialized:
                    raise NotMaterializedError(name, p.shape)
                t = _Tensor(name, tuple(p.shape), np.dtype(p.dtype), p.role, tuple(p.aliases))
                self.tensors[name] = t
                for a in p.aliases:
                    self.by_name[a] = t
        else:
            ties = list(getattr(self.state, "ties", []) or [])
            alias_of = {n: g[0] for g in ties for n in g}
            for name, v in self.state.items():
                a = v if isinstance(v, np.ndarray) else as_numpy(v)
                primary = alias_of.get(name, name)
                if primary in self.tensors:
                    self.by_name[name] = self.tensors[primary]
                    continue
                group = next((tuple(g) for g in ties if name in g), (name,))
                t = _Tensor(name, tuple(a.shape), a.dtype, None, group)
                self.tensors[name] = t
                for n in group:
                    self.by_name[n] = t

    def values(self) -> Dict[str, np.ndarray]:
        if self.model is not None:
            return dict(state_views(self.model))
        return {n: as_numpy(self.state[n]) for n in self.tensors}

    def streams(self) -> Dict[str, Any]:
        """:meth:`values` for a caller that writes each as it goes: where a
        read copies (a Keras or Gluon model, a sharded parameter), a
        :class:`DeferredArray` read at its write (``state_streams``)."""
        if self.model is not None:
            return dict(state_streams(self.model))
        return self.values()

    def describe(self) -> dict:
        return {"kind": self.kind, "tensors": {n: [list(t.shape), t.dtype.name] for n, t in self.tensors.items()}}


# -- the plan -----------------------------------------------------------------------------------
@dataclass
class PlanEntry:
    """One destination parameter: its source tensor(s), the layout ops from
    the sources' canonical layout to its own, and the shapes."""

    dst: str
    sources: List[str]
    ops: List[T.Transform]
    src_shapes: List[Tuple[int, ...]]
    dst_shape: Tuple[int, ...]
    how: str = "name"           #: "name" (by the rules), "order" or "shape"
    rules: List[int] = field(default_factory=list)   #: indices of the rules that matched
    native_shape: Optional[Tuple[int, ...]] = None   #: the destination's own layout

    def to_dict(self) -> dict:
        return {"dst": self.dst, "sources": list(self.sources), "ops": [o.to_dict() for o in self.ops],
                "src_shapes": [list(s) for s in self.src_shapes], "dst_shape": list(self.dst_shape),
                "how": self.how, "rules": list(self.rules),
                "native_shape": None if self.native_shape is None else list(self.native_shape)}

    @classmethod
    def from_dict(cls, d: dict) -> "PlanEntry":
        return cls(d["dst"], list(d["sources"]), [T.Transform.from_dict(o) for o in d["ops"]],
                   [tuple(s) for s in d["src_shapes"]], tuple(d["dst_shape"]), d.get("how", "name"),
                   list(d.get("rules", [])), None if d.get("native_shape") is None else tuple(d["native_shape"]))

    def run(self, arrays: List[np.ndarray]) -> np.ndarray:
        out = T.run(self.ops, [np.asarray(a) for a in arrays])
        return out[0]


class TransferPlan:
    """What a port will do, before it does it: per destination parameter its
    sources, layout ops and shapes, plus the names left unmatched on each side
    with their closest candidates.  Prints as a table; ``to_json`` /
    ``from_json`` keep it (rules included) as plain data; ``apply()`` runs it
    as one checked write."""

    def __init__(self, entries: List[PlanEntry], unmatched_src: Dict[str, List[str]],
                 unmatched_dst: Dict[str, List[str]], rules: List[Rule], match: Tuple[str, ...],
                 skipped: List[str] = (), src: Optional[_Source] = None, dst: Optional[Model] = None,
                 src_info: Optional[dict] = None, dst_info: Optional[dict] = None):
        self.entries = list(entries)
        self.unmatched_src = dict(unmatched_src)   #: source name -> closest destination names
        self.unmatched_dst = dict(unmatched_dst)   #: destination name -> closest source names
        self.rules = list(rules)
        self.match = tuple(match)
        self.skipped = list(skipped)               #: state only the source keeps (a step counter)
        self._src, self._dst = src, dst
        self.src_info = src_info if src_info is not None else (src.describe() if src else {})
        self.dst_info = dst_info if dst_info is not None else (
            {"kind": f"{dst.backend} model", "tensors": {n: [list(p.shape), np.dtype(p.dtype).name]
                                                           for n, p in dst.named_parameters().items()}}
            if dst is not None else {})

    # -- reading it ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __getitem__(self, dst_name: str) -> PlanEntry:
        for e in self.entries:
            if e.dst == dst_name:
                return e
        raise UnknownNameError(dst_name, [e.dst for e in self.entries], what="planned destination")

    @property
    def complete(self) -> bool:
        """True when every destination parameter has a source."""
        return not self.unmatched_dst

    def table(self) -> str:
        rows = [("destination", "shape", "<-", "source", "shape", "ops")]
        for e in self.entries:
            ops = " | ".join(str(o) for o in e.ops) or "-"
            if e.how != "name":
                ops += f"  [by {e.how}]"
            for i, s in enumerate(e.sources):
                rows.append((e.dst if i == 0 else "", _fmt(e.dst_shape) if i == 0 else "",
                             "<-" if i == 0 else "+", s, _fmt(e.src_shapes[i]), ops if i == 0 else ""))
        widths = [max(len(r[c]) for r in rows) for c in range(5)]
        lines = ["  ".join(r[c].ljust(widths[c]) for c in range(5)) + "  " + r[5] for r in rows]
        lines.insert(1, "-" * min(120, max(len(line) for line in lines)))
        head = (f"TransferPlan: {len(self.entries)} destination parameters from "
                f"{self.src_info.get('kind', 'source')} into {self.dst_info.get('kind', 'destination')}")
        out = [head, *lines]
        if self.unmatched_dst:
            out.append(f"unmatched destination parameters ({len(self.unmatched_dst)}), closest sources:")
            out += [f"  {n}" + (f"  ~ {', '.join(c)}" if c else "") for n, c in self.unmatched_dst.items()]
        if self.unmatched_src:
            out.append(f"unmatched source tensors ({len(self.unmatched_src)}), closest destinations:")
            out += [f"  {n}" + (f"  ~ {', '.join(c)}" if c else "") for n, c in self.unmatched_src.items()]
        if self.skipped:
            out.append(f"skipped (state only the source keeps): {', '.join(self.skipped)}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return self.table()

    # -- plain data ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": "multiparam-transfer-plan", "format_version": PLAN_FORMAT,
                "match": list(self.match), "rules": [r.to_dict() for r in self.rules],
                "entries": [e.to_dict() for e in self.entries],
                "unmatched_src": self.unmatched_src, "unmatched_dst": self.unmatched_dst,
                "skipped": self.skipped, "src": self.src_info, "dst": self.dst_info}

    def to_json(self, path: Union[str, os.PathLike, None] = None) -> str:
        """The plan as JSON (written to ``path`` too when given).  A callable
        rule is stored by its importable name; a lambda or a local function
        cannot be, and raises ``PlanError`` saying so."""
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    @classmethod
    def from_json(cls, text: Union[str, os.PathLike], src=None, dst=None) -> "TransferPlan":
        """A plan from ``to_json``'s text (or a file path).  With ``src`` and
        ``dst`` it is bound to them (see :meth:`bind`); without, it can be
        read and printed, and bound later."""
        if not str(text).lstrip().startswith("{"):
            with open(text, encoding="utf-8") as f:
                text = f.read()
        d = json.loads(text)
        if d.get("format") != "multiparam-transfer-plan":
            raise PlanError("not a multiparam transfer plan (no format 'multiparam-transfer-plan')")
        if int(d.get("format_version", 0)) > PLAN_FORMAT:
            raise PlanError(f"plan format {d['format_version']} is newer than this multiparam reads")
        plan_ = cls([PlanEntry.from_dict(e) for e in d["entries"]], d.get("unmatched_src", {}),
                    d.get("unmatched_dst", {}), [Rule.from_dict(r) for r in d.get("rules", [])],
                    tuple(d.get("match", ("name",))), d.get("skipped", []),
                    src_info=d.get("src", {}), dst_info=d.get("dst", {}))
        if src is not None or dst is not None:
            return plan_.bind(src, dst)
        return plan_

    def bind(self, src, dst) -> "TransferPlan":
        """This plan on ``src`` and ``dst``: planned again from its rules, and
        refused (``PlanError``) unless that gives the same entries, so a saved
        port runs only on the models it was reviewed for."""
        fresh = plan(src, dst, rules=self.rules, match=self.match)
        mine = [e.to_dict() for e in self.entries]
        theirs = [e.to_dict() for e in fresh.entries]
        if mine != theirs:
            diff = next(((a, b) for a, b in zip(mine, theirs) if a != b), None)
            what = (f"{diff[0]['dst']!r}: saved {diff[0]} but now {diff[1]}" if diff else
                    f"{len(mine)} saved entries but {len(theirs)} now")
            raise PlanError(f"the models differ from those this plan was made for: {what}")
        return fresh

    # -- running it ---------------------------------------------------------------------------
    def arrays(self, values: Optional[Mapping[str, np.ndarray]] = None) -> StateDict:
        """``{destination name: canonical array}`` the plan writes, from the
        source's values (or ``values``, by source name: gradients, say)."""
        if values is None:
            values = self._bound_source().values()
        return StateDict((e.dst, e.run([values[s] for s in e.sources])) for e in self.entries)

    def _writes(self) -> StateDict:
        """:meth:`arrays` as ``apply`` writes them: an entry whose source
        is read by a copy (a Keras or Gluon model, a sharded parameter) is
        a :class:`DeferredArray`, read and converted at its write, so a port
        holds one such value at a time (one per core into torch, whose
        writes run side by side) instead of a second model."""
        values = self._bound_source().streams()
        return StateDict((e.dst, _planned(e, [values[s] for s in e.sources])) for e in self.entries)

    def _bound_source(self) -> _Source:
        if self._src is None:
            raise PlanError("this plan is not bound to a source; use plan.bind(src, dst)")
        return self._src

    def check(self, inputs, grads: bool = False, loss=None) -> "CheckReport":
        """:func:`check` of the two models this plan joins, through its mapping."""
        if self._dst is None or self._src is None or self._src.model is None:
            raise PlanError("check needs a plan bound to two models (not a file or a state dict)")
        return check(self._src.model, self._dst, inputs, grads=grads, loss=loss, plan=self)

    def apply(self, strict: bool = True, progress: Optional[bool] = None):
        """Write every planned value into the destination, as one checked
        transaction (all or nothing).  ``strict`` refuses a plan that leaves
        destination parameters without a source, naming them and their
        closest source names.  ``progress``: a progress bar for long writes."""
        if self._dst is None:
            raise PlanError("this plan is not bound to models; use plan.bind(src, dst) first")
        if strict and self.unmatched_dst:
            raise PlanError(_unmatched_message(self.unmatched_dst, self.unmatched_src))
        src_model = self._src.model if self._src is not None else None
        if src_model is not None and src_model.native is self._dst.native:
            writes = self.arrays(dict(state_dict(src_model)))
        else:
            writes = self._writes()
        return load_state_dict(self._dst, writes, strict=False, progress=progress, description="port")


def _planned(entry: PlanEntry, inputs: list):
    """What ``apply`` writes for ``entry``: its array now, or, when a source
    is read by a copy, a :class:`DeferredArray` converted at its write."""
    if not any(isinstance(v, DeferredArray) for v in inputs):
        return entry.run(inputs)
    dtype = np.result_type(*[v.dtype for v in inputs])
    in_order = any(isinstance(v, DeferredArray) and v.in_order for v in inputs)   # a gather among them
    return DeferredArray(tuple(entry.dst_shape), dtype, functools.partial(_converted, entry, inputs),
                         in_order=in_order)


def _converted(entry: PlanEntry, inputs: list) -> np.ndarray:
    """``entry`` run on its inputs, deferred ones read now: memory nobody
    else holds (a result that is still a view of a model's own memory is
    copied), as a deferred write needs."""
    arrays = [v.read() if isinstance(v, DeferredArray) else v for v in inputs]
    out = entry.run(arrays)
    if any(not isinstance(v, DeferredArray) and np.shares_memory(out, v) for v in inputs):
        out = out.copy()
    return out


def _fmt(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _unmatched_message(dst: Dict[str, List[str]], src: Dict[str, List[str]]) -> str:
    parts = []
    for n, c in list(dst.items())[:5]:
        parts.append(f"{n!r}" + (f" (closest sources: {', '.join(map(repr, c))})" if c else ""))
    more = f" and {len(dst) - 5} more" if len(dst) > 5 else ""
    left = f"; unmatched sources: {', '.join(map(repr, list(src)[:5]))}" if src else ""
    return (f"{len(dst)} destination parameters have no source: {', '.join(parts)}{more}{left}. Add rules, "
            "match='order' or 'shape', or apply(strict=False) to leave them as they are")


class _PlanCheck(WritePlan):
    """A planned value checked as its write will be, worded for the plan."""

    __slots__ = ("entry", "rules")

    def __init__(self, entry: PlanEntry, rules: str):
        super().__init__()
        self.entry, self.rules = entry, rules

    def shape_message(self, param, shape, source) -> str:
        return (f"{param.name!r} of shape {param.shape} would get shape {shape} from "
                f"{', '.join(map(repr, self.entry.sources))} {self.rules}")

    def dtype_message(self, param, dtype, source) -> str:
        return f"{param.name!r} from {', '.join(map(repr, self.entry.sources))} {self.rules}: " + \
            super().dtype_message(param, dtype, source)


@dataclass
class _Item:
    src: _Tensor
    name: str
    ops: List[T.Transform]
    rules: List[int]
    part: Optional[Tuple[int, int, int]] = None   # (rule index, part, parts) of a merge


def _route(name: str, tensor: _Tensor, rules: List[Rule]) -> List[_Item]:
    items = [_Item(tensor, name, [], [])]
    for i, r in enumerate(rules):
        nxt = []
        for it in items:
            if r.fn is not None:
                new = r.fn(it.name)
                if new is None:
                    continue
                if new != it.name:
                    it.rules.append(i)
                it.name = new
                nxt.append(it)
                continue
            hit = next((j for j, p in enumerate(r.patterns) if re.search(p, it.name)), None)
            if hit is None:
                nxt.append(it)
                continue
            pattern = r.patterns[hit]
            if isinstance(r.to, tuple):
                for k, to in enumerate(r.to):
                    ops = [t.with_part(k) if t.op == "split" else t for t in r.transforms]
                    nxt.append(_Item(it.src, re.sub(pattern, to, it.name), it.ops + ops, it.rules + [i],
                                     it.part))
                continue
            it.name = re.sub(pattern, r.to, it.name)
            it.ops = it.ops + list(r.transforms)
            it.rules = it.rules + [i]
            if len(r.patterns) > 1:
                it.part = (i, hit, len(r.patterns))
            nxt.append(it)
        items = nxt
    return items


def _rules_text(rules: List[Rule], used: Sequence[int]) -> str:
    if not used:
        return "(matched by name, no rule)"
    return "by rule " + ", ".join(f"#{i} {rules[i]}" for i in sorted(set(used)))


def plan(src, dst, rules=None, match: Union[str, Sequence[str]] = "name") -> TransferPlan:
    """Plan a port of ``src`` into ``dst`` (see the module docstring).

    ``src`` is a Model handle, a native model (wrapped), a state dict or a
    safetensors path (a file, a Hugging Face index or its folder); ``dst`` a
    Model handle or a native model.  ``rules`` are applied to source names
    in order; ``match`` adds pairing by ``"order"`` or ``"shape"`` for what
    the names leave unmatched.  Every shape and dtype is checked now:
    ``PlanError`` names the destination parameter and the rule.  Nothing is
    written until ``apply()``."""
    rules = as_rules(rules)
    modes = (match,) if isinstance(match, str) else tuple(match)
    bad = [m for m in modes if m not in MATCH_MODES]
    if bad:
        raise ValueError(f"unknown match {bad[0]!r}; use one or more of {', '.join(MATCH_MODES)}")
    if "name" not in modes:
        modes = ("name",) + modes
    source = _Source(src)
    dmodel = dst if isinstance(dst, Model) else wrap(dst)
    index = dmodel.index()
    dparams = dmodel.named_parameters()
    primary_of = {a: p.name for p in dparams.values() for a in p.aliases}

    # 1. route every source tensor (each of its names) through the rules
    routed: Dict[str, List[_Item]] = {}     # destination primary name -> items
    leftovers: Dict[str, List[_Item]] = {}  # source primary -> items whose names matched nothing
    lost: Dict[str, str] = {}               # "source -> name" of split parts that matched nothing
    for t in source.tensors.values():
        hit_any = False
        misses = []
        for alias in t.aliases or (t.name,):
            for it in _route(alias, t, rules):
                d = primary_of.get(it.name)
                if d is None:
                    misses.append(it)
                    continue
                hit_any = True
                routed.setdefault(d, []).append(it)
        if not hit_any:
            leftovers[t.name] = misses
        else:       # a split's part that found no destination is not silently dropped
            lost.update({f"{t.name} -> {it.name}": it.name for it in misses
                         if any(o.op == "split" for o in it.ops)})

    # 2. group per destination; one source tensor, or a merge's parts
    entries: Dict[str, PlanEntry] = {}
    for d, items in routed.items():
        by_src: Dict[str, _Item] = {}
        for it in items:
            by_src.setdefault(it.src.name, it)          # an alias of one tensor: the same value
        chosen = list(by_src.values())
        used = [i for it in chosen for i in it.rules]
        merges = [it for it in chosen if it.part is not None]
        if len(chosen) > 1 and len(merges) != len(chosen):
            names = ", ".join(repr(it.src.name) for it in chosen)
            raise PlanError(f"{d!r} would get two sources ({names}) {_rules_text(rules, used)}; a rule "
                            "maps several sources onto one destination only with merge(axis) and one "
                            "pattern per part")
        if merges:
            rule_ids = {it.part[0] for it in merges}
            if len(rule_ids) > 1:
                raise PlanError(f"{d!r} gets parts from different merge rules {_rules_text(rules, used)}")
            n = merges[0].part[2]
            slots: Dict[int, _Item] = {}
            for it in merges:
                k = it.part[1]
                if k in slots:
                    raise PlanError(f"{d!r}: the merge's part {k} ({rules[it.part[0]].patterns[k]!r}) "
                                    f"matches two sources, {slots[k].src.name!r} and {it.src.name!r} "
                                    f"{_rules_text(rules, used)}: parts overlap")
                slots[k] = it
            missing = [rules[merges[0].part[0]].patterns[k] for k in range(n) if k not in slots]
            if missing:
                raise PlanError(f"{d!r}: the merge needs {n} parts, but no source matches "
                                f"{', '.join(map(repr, missing))} {_rules_text(rules, used)}")
            chosen = [slots[k] for k in range(n)]
            pre = [tuple(it.ops) for it in chosen]
            if len(set(pre)) > 1:
                raise PlanError(f"{d!r}: the merge's parts got different transforms {_rules_text(rules, used)}")
        entries[d] = PlanEntry(d, [it.src.name for it in chosen], list(chosen[0].ops),
                               [it.src.shape for it in chosen], tuple(dparams[d].shape), "name",
                               sorted(set(used)))

    # 3. what names left: pair by order or shape
    skipped = [n for n in leftovers if is_framework_only(n) and not any(
        is_framework_only(d) for d in dparams if d not in entries)]
    for n in skipped:
        leftovers.pop(n)
    free_dst = [d for d in dparams if d not in entries]
    for mode in modes[1:]:
        for s_name in list(leftovers):
            t = source.tensors[s_name]
            items = leftovers[s_name] or [_Item(t, s_name, [], [])]
            it = items[0]
            try:
                shape = T.shapes_through(it.ops, [t.shape])[0] if it.part is None else None
            except T.TransformError:
                shape = None
            for d in free_dst:
                p = dparams[d]
                if t.role is not None and p.role != t.role:
                    continue
                if mode == "order" and shape is not None and len(p.shape) != len(shape):
                    continue
                if mode == "shape" and tuple(p.shape) != shape:
                    continue
                entries[d] = PlanEntry(d, [s_name], list(it.ops), [t.shape], tuple(p.shape), mode,
                                       list(it.rules))
                free_dst.remove(d)
                leftovers.pop(s_name)
                break

    # 4. every shape and dtype, now
    ordered = [entries[d] for d in dparams if d in entries]
    for e in ordered:
        param = dparams[e.dst]
        text = _rules_text(rules, e.rules)
        try:
            out = T.shapes_through(e.ops, [tuple(s) for s in e.src_shapes])
        except T.TransformError as exc:
            raise PlanError(f"{e.dst!r} from {', '.join(map(repr, e.sources))} {text}: {exc}") from None
        if len(out) != 1:
            raise PlanError(f"{e.dst!r} from {', '.join(map(repr, e.sources))} {text}: the transforms "
                            f"leave {len(out)} tensors; merge them")
        try:
            _PlanCheck(e, text).check(param, out[0], source.tensors[e.sources[0]].dtype)
        except MultiparamError as exc:
            raise PlanError(str(exc) + (" (a transpose may be missing)" if sorted(out[0]) == sorted(param.shape)
                                        else "")) from None
        e.native_shape = tuple(param.native_shape) if param.native_shape is not None else None

    # 5. what stays unmatched, with the closest names on the other side
    free_dst = [d for d in dparams if d not in entries and not is_framework_only(d)]
    routed_names = {s: (items[0].name if items else s) for s, items in leftovers.items()}
    unmatched_src = {s: _closest(routed_names[s], free_dst) for s in leftovers}
    unmatched_src.update({s: _closest(name, free_dst or list(dparams)) for s, name in lost.items()})
    unmatched_dst = {d: _closest(d, list(routed_names.values()) or list(source.tensors)) for d in free_dst}
    return TransferPlan(ordered, unmatched_src, unmatched_dst, rules, modes, skipped, source, dmodel)


_plan = plan


def _closest(name: str, known: List[str]) -> List[str]:
    return UnknownNameError(name, known).suggestions if known else []


def transfer(src, dst, strict: bool = True, rules=None, match: Union[str, Sequence[str]] = "name",
             progress: Optional[bool] = None):
    """Copy every parameter of ``src`` into ``dst``, any backend to any
    backend.  Without ``rules`` (and ``match="name"``) the architectures
    must match by canonical name and shape; with them, this is
    ``plan(src, dst, rules, match).apply(strict)``.  ``progress``: a
    progress bar for long transfers (see ``multiparam.progress``)."""
    if rules is None and match == "name" and not isinstance(src, (Mapping, str, os.PathLike)):
        return _io.transfer(src, dst, strict=strict, progress=progress)
    return plan(src, dst, rules=rules, match=match).apply(strict=strict, progress=progress)


# -- check ----------------------------------------------------------------------------------------
@dataclass
class CheckReport:
    """What :func:`check` found: the largest output difference and, with
    ``grads=True``, the largest gradient difference per matched parameter."""

    output_diff: float
    output_rel: float
    output_shape: Tuple[int, ...]
    grad_diffs: Dict[str, float] = field(default_factory=dict)
    #: destination parameters whose gradient was not compared (no planned source)
    not_compared: List[str] = field(default_factory=list)
    src_backend: str = ""
    dst_backend: str = ""

    @property
    def max_grad_diff(self) -> float:
        return max(self.grad_diffs.values(), default=0.0)

    @property
    def worst_grad(self) -> Optional[str]:
        return max(self.grad_diffs, key=self.grad_diffs.get) if self.grad_diffs else None

    def ok(self, tolerance: float = 1e-5) -> bool:
        return self.output_diff <= tolerance and self.max_grad_diff <= tolerance

    def __repr__(self) -> str:
        lines = [f"CheckReport {self.src_backend} -> {self.dst_backend}: output {_fmt(self.output_shape)} "
                 f"max |diff| {self.output_diff:.3g} (relative {self.output_rel:.3g})"]
        if self.grad_diffs:
            lines.append(f"  gradients of {len(self.grad_diffs)} parameters: max |diff| "
                         f"{self.max_grad_diff:.3g} at {self.worst_grad!r}")
            w = max(len(n) for n in self.grad_diffs)
            lines += [f"    {n.ljust(w)}  {v:.3g}" for n, v in self.grad_diffs.items()]
        if self.not_compared:
            lines.append(f"  no gradient compared for {len(self.not_compared)} parameters without a planned "
                         f"source ({', '.join(self.not_compared[:3])}{', ...' if len(self.not_compared) > 3 else ''}); "
                         "pass rules= or plan=")
        return "\n".join(lines)

    __str__ = __repr__


def _native_inputs(m: Model, inputs):
    cl = m.channels_last
    if isinstance(inputs, dict):
        return (), {k: input_to_native(v, cl) for k, v in inputs.items()}
    if isinstance(inputs, tuple):
        return tuple(input_to_native(v, cl) for v in inputs), {}
    return (input_to_native(inputs, cl),), {}


def _grad_input(args, kwargs):
    if kwargs:
        return dict(kwargs)
    return args if len(args) != 1 else args[0]


def _maxdiff(a: np.ndarray, b: np.ndarray) -> Tuple[float, float]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise PlanError(f"the outputs have different shapes, {a.shape} and {b.shape}")
    d = float(np.max(np.abs(a - b), initial=0.0))
    scale = float(np.max(np.abs(a), initial=0.0))
    return d, (d / scale if scale else d)


def check(src, dst, inputs, grads: bool = False, rules=None, match: Union[str, Sequence[str]] = "name",
          loss=None, plan: Optional[TransferPlan] = None) -> CheckReport:
    """Run ``src`` and ``dst`` (Model handles or native models) on the same
    ``inputs`` and report the largest difference of their outputs (the
    primary output: the array, or a structured output's first floating
    array), in inference mode.  ``inputs`` are canonical (NCHW images, as
    ``compare`` takes them): a channels-last model gets them as NHWC
    (``layout.input_to_native``) and its 4-D outputs come back as NCHW; a
    tuple is positional inputs, a dict keyword inputs.

    ``grads=True`` also differentiates both (``loss``, default the sum of the
    output) and compares the gradient of every matched parameter: the
    source's gradients go through the plan's mapping and layout ops (the
    plan of ``rules``/``match``, or ``plan=``)."""
    plan_ = plan
    ms = src if isinstance(src, Model) else wrap(src)
    md = dst if isinstance(dst, Model) else wrap(dst)
    outs = []
    for m in (ms, md):
        args, kwargs = _native_inputs(m, inputs)
        y = m.adapter.primary_output(m(*args, train=False, **kwargs))
        outs.append(output_to_canonical(as_numpy(y), m.channels_last))
    diff, rel = _maxdiff(outs[0], outs[1])
    report = CheckReport(diff, rel, tuple(outs[1].shape), src_backend=ms.backend, dst_backend=md.backend)
    if grads:
        if plan_ is None:
            plan_ = _plan(ms, md, rules=rules, match=match)
        gs = ms.grad(_grad_input(*_native_inputs(ms, inputs)), loss=loss)
        gd = md.grad(_grad_input(*_native_inputs(md, inputs)), loss=loss)
        planned = {e.dst: e for e in plan_.entries}
        for name, g in gd.items():
            e = planned.get(name)
            if e is None or not all(s in gs for s in e.sources):
                report.not_compared.append(name)
                continue
            report.grad_diffs[name] = _maxdiff(e.run([gs[s] for s in e.sources]), g)[0]
    return report
