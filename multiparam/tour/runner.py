"""Running the tour: every step's snippet files, per backend, recording what they printed.

``run_backend`` executes the steps for one backend in this process, like
the cells of one notebook.  ``collect`` does it for many backends, running
the ones that are not importable here in their own environment through
``multiparam.bridge`` (MXNet), so one command shows all four.
"""
from __future__ import annotations

import ast
import contextlib
import io
import platform
import time
import traceback
from typing import Dict, Iterable, List, Optional

import numpy

from .. import bridge, registry
from ..backend import use_backend
from .quiet import native_logs_filtered
from .steps import STEP_IDS, STEPS, snippet


def run_snippet(code: str, ns: dict, filename: str = "<tour>") -> str:
    """Execute ``code`` in ``ns`` like a notebook cell: what it prints, then
    the repr of its last expression, if any.  ``filename`` is the file the
    code came from, so a traceback shows its lines."""
    tree = ast.parse(code, filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(tree, filename, "exec"), ns)
        if last is not None:
            value = eval(compile(last, filename, "eval"), ns)
            if value is not None:
                print(repr(value))
    return buf.getvalue().rstrip("\n")


def _versions(backend: str) -> Dict[str, str]:
    return {"python": platform.python_version(), **registry.versions(backend),
            "numpy": numpy.__version__}


def run_backend(backend: str, step_ids: Optional[Iterable[str]] = None) -> dict:
    """Run the selected steps for one backend here; JSON-able result."""
    wanted = set(step_ids or STEP_IDS)
    ns: dict = {"__name__": "__tour__"}
    steps: List[dict] = []
    started = time.perf_counter()
    with use_backend(backend), native_logs_filtered():
        # steps build on each other (one notebook tab), so earlier ones always run
        last_wanted = max(i for i, s in enumerate(STEPS) if s.id in wanted)
        for step in STEPS[:last_wanted + 1]:
            step_started = time.perf_counter()
            native, multiparam = step.native_file(backend), step.multiparam_file(backend)
            record = {"id": step.id, "title": step.title, "note": step.note.get(backend, ""),
                      "about": step.about,
                      "native_code": snippet(native) if native else "", "mp_code": snippet(multiparam)}
            for key, code, path in (("native_output", record["native_code"], native),
                                    ("mp_output", record["mp_code"], multiparam)):
                if not code:                  # a step done with multiparam alone
                    record[key] = ""
                    continue
                try:
                    record[key] = run_snippet(code, ns, str(path))
                except Exception:
                    record[key] = traceback.format_exc(limit=3)
                    record["error"] = True
            record["seconds"] = round(time.perf_counter() - step_started, 2)
            if step.id in wanted:
                steps.append(record)
    names = {}
    m = ns.get("same") or ns.get("m")
    if m is not None:
        names = {n: [p.native_name, list(p.native_shape or ())] for n, p in m.named_parameters().items()}
    hist = ns.get("hist") if "init_hist" in wanted else None
    return {"backend": backend, "ok": not any(s.get("error") for s in steps), "steps": steps,
            "names": names, "versions": _versions(backend),
            "hist": hist if isinstance(hist, dict) else {},
            "seconds": round(time.perf_counter() - started, 2)}


def collect(backends: Iterable[str], step_ids: Optional[Iterable[str]] = None) -> Dict[str, dict]:
    """Results per backend: here when importable, else from its worker
    environment, else a column that says how to install it."""
    step_ids = list(step_ids or STEP_IDS)
    results = {}
    for backend in backends:
        with native_logs_filtered():          # importing a framework logs too
            here = bridge.importable_here(backend)
        if here:
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
