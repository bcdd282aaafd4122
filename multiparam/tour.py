"""The tour: the chapter's steps in four frameworks, side by side, live.

``run_backend`` executes every step's snippets (tour_steps.STEPS) for one
backend in this process and records what they printed.  ``collect`` does it
for many backends, running the ones that are not importable here in their
own environment through ``multiparam.bridge`` (MXNet), so one command shows
all four.  ``render_text`` lays the results out for a terminal.
"""
from __future__ import annotations

import ast
import contextlib
import io
import platform
import textwrap
import time
import traceback
from typing import Dict, Iterable, List, Optional

from .backend import use_backend
from .tour_steps import BACKEND_ORDER, STEP_IDS, STEPS, Step

MAX_LINES = 14


def run_snippet(code: str, ns: dict) -> str:
    """Execute ``code`` in ``ns`` like a notebook cell: what it prints, then
    the repr of its last expression, if any."""
    tree = ast.parse(code)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(tree, "<tour>", "exec"), ns)
        if last is not None:
            value = eval(compile(last, "<tour>", "eval"), ns)
            if value is not None:
                print(repr(value))
    return buf.getvalue().rstrip("\n")


def _versions(backend: str) -> Dict[str, str]:
    import importlib

    mods = {"torch": ["torch"], "jax": ["jax", "flax"], "tensorflow": ["tensorflow", "keras"],
            "mxnet": ["mxnet"]}.get(backend, [])
    out = {"python": platform.python_version()}
    for name in mods + ["numpy"]:
        try:
            out[name] = importlib.import_module(name).__version__
        except Exception:  # pragma: no cover - a broken install is shown, not fatal
            out[name] = "?"
    return out


def run_backend(backend: str, step_ids: Optional[Iterable[str]] = None) -> dict:
    """Run the selected steps for one backend here; JSON-able result."""
    wanted = set(step_ids or STEP_IDS)
    ns: dict = {"__name__": "__tour__"}
    steps: List[dict] = []
    started = time.perf_counter()
    with use_backend(backend):
        # steps build on each other (one notebook tab), so earlier ones always run
        last_wanted = max(i for i, s in enumerate(STEPS) if s.id in wanted)
        for step in STEPS[:last_wanted + 1]:
            record = {"id": step.id, "title": step.title, "note": step.note.get(backend, ""),
                      "native_code": step.native[backend], "mp_code": step.multiparam_code(backend)}
            for key, code in (("native_output", record["native_code"]), ("mp_output", record["mp_code"])):
                try:
                    record[key] = run_snippet(code, ns)
                except Exception:
                    record[key] = traceback.format_exc(limit=3)
                    record["error"] = True
            if step.id in wanted:
                steps.append(record)
    names = {}
    m = ns.get("same") or ns.get("m")
    if m is not None:
        names = {n: [p.native_name, list(p.native_shape or ())] for n, p in m.named_parameters().items()}
    return {"backend": backend, "ok": not any(s.get("error") for s in steps), "steps": steps,
            "names": names, "versions": _versions(backend),
            "seconds": round(time.perf_counter() - started, 2)}


def collect(backends: Iterable[str], step_ids: Optional[Iterable[str]] = None) -> Dict[str, dict]:
    """Results per backend: here when importable, else from its worker
    environment, else a column that says how to install it."""
    from . import bridge

    step_ids = list(step_ids or STEP_IDS)
    results = {}
    for backend in backends:
        if bridge.importable_here(backend):
            results[backend] = run_backend(backend, step_ids)
            continue
        try:
            results[backend] = bridge.run_worker_json(
                backend, ["tour", "--json", "--backend", backend, "--step", ",".join(step_ids)])
            results[backend]["via"] = bridge.worker_python(backend)
        except bridge.WorkerError as exc:
            results[backend] = {"backend": backend, "ok": False, "missing": str(exc), "steps": [],
                                "names": {}}
    return results


def order(backends: Iterable[str]) -> List[str]:
    """Registry order, torch first: torch must be imported before tensorflow."""
    backends = list(backends)
    return [b for b in BACKEND_ORDER if b in backends] + [b for b in backends if b not in BACKEND_ORDER]


# -- terminal rendering ---------------------------------------------------------
def _clip(text: str, width: int, max_lines: int = MAX_LINES) -> List[str]:
    lines = []
    for raw in text.splitlines() or [""]:
        lines.extend(textwrap.wrap(raw, width, replace_whitespace=False, drop_whitespace=False,
                                   subsequent_indent="  ") or [""])
    if len(lines) > max_lines:
        lines = lines[:max_lines - 1] + [f"... ({len(lines) - max_lines + 1} more lines)"]
    return lines


def render_text(results: Dict[str, dict], width: int = 100,
                step_ids: Optional[List[str]] = None) -> str:
    """Each step, then each backend: its idiom and output, the multiparam
    call and output; closing with the canonical-name table.  A backend that
    could not run says so, with how to install it, in its place."""
    out: List[str] = []
    rule = "=" * width
    if step_ids is None:
        step_ids = []
        for r in results.values():
            for s in r.get("steps", []):
                if s["id"] not in step_ids:
                    step_ids.append(s["id"])
        step_ids = step_ids or list(STEP_IDS)
    titles = {s.id: s.title for s in STEPS}
    for sid in step_ids:
        out += [rule, f"Step {sid}: {titles.get(sid, sid)}", rule]
        for backend, r in results.items():
            out.append(f"--- {backend} " + "-" * (width - 5 - len(backend)))
            if r.get("missing"):
                out += _clip("not available: " + r["missing"], width)
                continue
            s = next((s for s in r["steps"] if s["id"] == sid), None)
            if s is None:
                continue
            if s.get("note"):
                out += _clip("note: " + s["note"], width)
            out += ["  " + l for l in _clip(s["native_code"], width - 2, 30)]
            out += ["  | " + l for l in _clip(s["native_output"], width - 4)]
            out += ["  multiparam:"] + ["  " + l for l in _clip(s["mp_code"], width - 2, 30)]
            out += ["  | " + l for l in _clip(s["mp_output"], width - 4)]
        out.append("")
    out += names_table(results, width)
    return "\n".join(out)


def names_table(results: Dict[str, dict], width: int = 100) -> List[str]:
    """One row per canonical name, one column per backend's native name."""
    backends = [b for b, r in results.items() if r.get("names")]
    if not backends:
        return []
    canon = []
    for b in backends:
        for n in results[b]["names"]:
            if n not in canon:
                canon.append(n)
    header = ["canonical"] + backends
    rows = [[n] + [results[b]["names"].get(n, ["-"])[0] for b in backends] for n in canon]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return ["Same spec in every framework: canonical names and each framework's own names",
            fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
