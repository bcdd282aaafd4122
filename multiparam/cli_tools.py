"""What ``multiparam inspect``, ``diff`` and ``port`` do, apart from argument
parsing: loading a file or a ``module:factory`` target, the tables they
print, and the exit codes."""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import io as _io
from .model import Model, wrap
from .porting import as_rules, plan as make_plan
from .state import state_dict


class CliError(Exception):
    """A problem with what the command line asked for, said in one sentence."""


# -- loading things named on the command line ------------------------------------------------
def _import_object(ref: str, default_attr: Optional[str] = None) -> Any:
    """``module:attr``, ``path/to/file.py:attr``, or (with ``default_attr``)
    ``module`` / ``file.py`` alone."""
    where, sep, attr = ref.rpartition(":") if ":" in ref else (ref, "", "")
    if not sep:
        where, attr = ref, default_attr
    if not attr:
        raise CliError(f"{ref!r} names no object; write module:factory or file.py:factory")
    if where.endswith(".py") or os.sep in where:
        path = Path(where)
        if not path.exists():
            raise CliError(f"no file {where}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules.setdefault(path.stem, module)
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise CliError(f"cannot import {where!r}: {exc}") from None
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise CliError(f"{where} has no {attr!r}") from None
    return obj


def is_file(ref: str) -> bool:
    return Path(ref).exists() and (Path(ref).is_dir() or not ref.endswith(".py"))


def load_model(ref: str) -> Model:
    """``module:factory`` (or ``file.py:factory``): the factory returns a
    native model, a Model handle, or ``(model, sample_input)``."""
    obj = _import_object(ref)
    built = obj() if callable(obj) and not _looks_like_model(obj) else obj
    sample = None
    if isinstance(built, tuple) and len(built) == 2:
        built, sample = built
    return wrap(built, sample_input=sample)


def _looks_like_model(obj: Any) -> bool:
    # a model instance is callable too: a class or a function is a factory
    return not (isinstance(obj, type) or getattr(obj, "__code__", None) is not None)


def load_state(ref: str, verify: bool = True) -> Tuple[Dict[str, np.ndarray], List[tuple], str]:
    """(state, ties, what) of a safetensors file / sharded set or a target."""
    if is_file(ref):
        sd = _io.read_state(ref, verify=verify)
        return sd, list(sd.ties), f"file {ref}"
    m = load_model(ref)
    return state_dict(m), m.ties(), f"{m.backend} model {ref}"


def load_rules(ref: str):
    return as_rules(_import_object(ref, default_attr="RULES"))


def load_inputs(ref: str):
    """``.npy`` (one input), ``.npz`` (keyword inputs by name) or a
    ``module:function`` returning the inputs."""
    if ref.endswith(".npy"):
        return np.load(ref)
    if ref.endswith(".npz"):
        with np.load(ref) as z:
            return {k: z[k] for k in z.files}
    obj = _import_object(ref)
    return obj() if callable(obj) else obj


# -- the commands ----------------------------------------------------------------------------
def _shape(s) -> str:
    return "(" + ", ".join(str(d) for d in s) + ("," if len(s) == 1 else "") + ")"


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def inspect(ref: str, out=print) -> int:
    sd, ties, what = load_state(ref, verify=False)
    rows = [("name", "shape", "dtype", "bytes")]
    total, values = 0, 0
    for name, a in sd.items():
        nbytes = int(a.nbytes)
        total += nbytes
        values += int(a.size)
        rows.append((name, _shape(a.shape), str(a.dtype), str(nbytes)))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    out(what)
    for r in rows:
        out("  ".join(r[c].ljust(widths[c]) if c < 3 else r[c].rjust(widths[c]) for c in range(4)))
    out(f"{len(sd)} tensors, {values:,} values, {_bytes(total)}")
    out("ties: " + ("; ".join(" = ".join(g) for g in ties) if ties else "none"))
    return 0


def diff(a: str, b: str, tolerance: float, out=print) -> int:
    sa, _, wa = load_state(a)
    sb, _, wb = load_state(b)
    missing = [n for n in sa if n not in sb]
    extra = [n for n in sb if n not in sa]
    rows = [("name", "max |a - b|", "relative", "")]
    worst: Tuple[float, str] = (0.0, "")
    exceeded = []
    for name in sa:
        if name not in sb:
            continue
        x, y = np.asarray(sa[name]), np.asarray(sb[name])
        if x.shape != y.shape:
            rows.append((name, "-", "-", f"shape {_shape(x.shape)} vs {_shape(y.shape)}"))
            exceeded.append(name)
            continue
        d = float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)), initial=0.0))
        scale = float(np.max(np.abs(x.astype(np.float64)), initial=0.0))
        rel = d / scale if scale else d
        flag = "exceeds" if d > tolerance else ""
        if d > tolerance:
            exceeded.append(name)
        worst = max(worst, (d, name))
        rows.append((name, f"{d:.3g}", f"{rel:.3g}", flag))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    out(f"A: {wa}\nB: {wb}")
    for r in rows:
        out("  ".join(r[c].ljust(widths[c]) for c in range(4)).rstrip())
    if missing:
        out(f"missing in B ({len(missing)}): {', '.join(missing)}")
    if extra:
        out(f"extra in B ({len(extra)}): {', '.join(extra)}")
    if exceeded or missing or extra:
        parts = []
        if exceeded:
            parts.append(f"{len(exceeded)} tensors differ by more than --tolerance {tolerance:g} "
                         f"(largest {worst[0]:.3g} in {worst[1]!r})" if worst[1] else
                         f"{len(exceeded)} tensors differ in shape")
        if missing or extra:
            parts.append(f"{len(missing)} missing and {len(extra)} extra names")
        out("FAILED: " + "; ".join(parts))
        return 1
    out(f"OK: {len(sa)} tensors within --tolerance {tolerance:g} (largest {worst[0]:.3g})")
    return 0


def port(src: str, dst: str, rules: Optional[str], match: str, check: bool, inputs: Optional[str],
         save_plan: Optional[str], out_path: Optional[str], tolerance: float, strict: bool, out=print) -> int:
    source = src if is_file(src) else load_model(src)
    dest = load_model(dst)
    plan = make_plan(source, dest, rules=load_rules(rules) if rules else None, match=match)
    out(plan.table())
    if save_plan:
        plan.to_json(save_plan)
        out(f"plan written to {save_plan}")
    plan.apply(strict=strict)
    out(f"ported {len(plan)} parameters into {dst}")
    status = 0
    if check:
        if inputs is None:
            raise CliError("--check needs --inputs (a .npy, a .npz of keyword inputs, or module:function)")
        if not isinstance(source, Model):
            raise CliError("--check runs both models: SRC must be a module:factory target, not a file")
        report = plan.check(load_inputs(inputs), grads=True)
        out(repr(report))
        if not report.ok(tolerance):
            out(f"FAILED: the ported model differs by more than --tolerance {tolerance:g} (output "
                f"{report.output_diff:.3g}, largest gradient {report.max_grad_diff:.3g})")
            status = 1
    if out_path:
        written = _io.save(dest, out_path)
        out(f"destination weights written to {written}")
    return status
