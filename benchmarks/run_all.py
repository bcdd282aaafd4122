#!/usr/bin/env python
"""Run bench_access.py for every backend and print one markdown table.

    python benchmarks/run_all.py [--repeat 30] [--backends torch,jax] [--json all.json]

Backends come from the registry.  Those that share the main environment run
with this interpreter, each in its own subprocess so the frameworks never
share a process; one that lives in its own environment (MXNet) runs with
that environment's worker interpreter (``$MULTIPARAM_MXNET_PYTHON``, as tox
sets it, else ``.tox/mxnet-worker/bin/python``); a backend whose framework
or interpreter is missing is reported and skipped.  The table is
README-ready: times are best-of-N per call, the ratio is multiparam / native.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BENCH = os.path.join(HERE, "bench_access.py")

sys.path.insert(0, HERE)
sys.path.insert(0, REPO)
from bench_access import fmt_ratio, fmt_time  # noqa: E402  (imports no framework)

from multiparam import bridge  # noqa: E402  (imports no framework)
from multiparam.registry import all_backends, available_backends, import_order  # noqa: E402

ORDER = import_order(available_backends())


def interpreter(backend: str) -> str:
    """This interpreter, or the worker environment's for a backend that
    lives in its own (the registry says which: MXNet)."""
    if not all_backends()[backend].own_environment:
        return sys.executable
    return bridge.worker_python(backend) or os.path.join(
        REPO, ".tox", f"{all_backends()[backend].environment}-worker", "bin", "python")


def run_one(backend: str, repeat: int, timeout: float):
    """(result dict or None, message)."""
    python = interpreter(backend)
    if not os.path.exists(python):
        return None, (f"no interpreter at {python} (set MULTIPARAM_{backend.upper()}_PYTHON or run "
                      f"`tox -e {all_backends()[backend].environment}-worker`)")
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, f"{backend}.json")
        cmd = [python, BENCH, "--backend", backend, "--repeat", str(repeat), "--json", out]
        try:
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, f"timed out after {timeout:.0f} s"
        if proc.returncode != 0 or not os.path.exists(out):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return None, f"failed (exit {proc.returncode}): " + " | ".join(tail)
        with open(out) as f:
            return json.load(f), proc.stdout


def markdown(results: list) -> str:
    lines = ["| backend | measurement | native | multiparam | ratio | target |",
             "| --- | --- | --- | --- | --- | --- |"]
    for res in results:
        for r in res["rows"]:
            target = "-" if r["target"] is None else f"<= {r['target']}x: {r['status']}"
            lines.append(f"| {res['backend']} | {r['measurement']} | {fmt_time(r['native_min'])} "
                         f"| {fmt_time(r['multiparam_min'])} | {fmt_ratio(r['ratio'])} ({fmt_ratio(r['ratio_median'])}) "
                         f"| {target} |")
    notes = []
    for res in results:
        zc = "zero-copy" if res["multiparam_zero_copy"] else "a copy"
        why = "" if res["native_zero_copy"] else " (so is the native read)"
        notes.append(f"{res['backend']}: value is {zc}{why}; {res['framework']}")
    lines.append("")
    lines.append("Times are best of N per call; ratio = multiparam / native, best of N "
                 "(median of paired loops). Native idioms: " + "; ".join(
        f"{res['backend']} `{res['rows'][0]['native_idiom']}`, `{res['rows'][-1]['native_idiom']}`"
        for res in results) + ".")
    lines.append("")
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=60)
    ap.add_argument("--backends", default=",".join(ORDER), help="comma-separated subset")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per backend")
    ap.add_argument("--json", metavar="PATH", help="write every backend's results as JSON")
    ap.add_argument("--verbose", action="store_true", help="also print each backend's own table")
    args = ap.parse_args(argv)
    results, failed = [], []
    for backend in [b for b in ORDER if b in args.backends.split(",")]:
        print(f"running {backend} ...", file=sys.stderr, flush=True)
        res, msg = run_one(backend, args.repeat, args.timeout)
        if res is None:
            print(f"  {backend}: {msg}", file=sys.stderr)
            failed.append(backend)
            continue
        if args.verbose:
            print(msg, file=sys.stderr)
        results.append(res)
    if results:
        print(markdown(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    missed = [f"{res['backend']}: {r['measurement']}" for res in results for r in res["rows"]
              if r["status"] == "MISSED"]
    if missed:
        print("\nMISSED: " + "; ".join(missed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
