"""The ``multiparam`` command: ``tour``, ``compare``, ``backends`` (and ``worker``).

Lists of backends and steps in the help come from the registry and from
tour_steps, never from literals here.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import List, Optional

from .registry import available_backends
from .tour_steps import STEP_IDS


def _names(value: str, known, what: str) -> List[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in known]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(map(repr, bad))}; valid: {', '.join(known)}")
    return names


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="multiparam", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("tour", help="the chapter side by side in every backend")
    t.add_argument("--backend", default=",".join(available_backends()),
                   type=lambda v: _names(v, available_backends(), "backend"),
                   help=f"comma-separated backends (default: all: {', '.join(available_backends())})")
    t.add_argument("--step", default=",".join(STEP_IDS),
                   type=lambda v: _names(v, STEP_IDS, "step"),
                   help=f"comma-separated steps (default: all: {', '.join(STEP_IDS)})")
    t.add_argument("--json", action="store_true", help="print the results as JSON (used by workers)")
    t.add_argument("--width", type=int, default=100)
    sub.add_parser("backends", help="registered backends and whether each imports here")
    from .compare import ARCHITECTURES

    c = sub.add_parser("compare", help="one architecture, the same weights, every backend: differences")
    c.add_argument("arch", nargs="?", default="mlp", choices=sorted(ARCHITECTURES))
    c.add_argument("--backend", default=",".join(available_backends()),
                   type=lambda v: _names(v, available_backends(), "backend"))
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    c.add_argument("--html", metavar="PATH", help="also write the result as an HTML page")
    c.add_argument("--tolerance", type=float, default=1e-4,
                   help="exit 1 when a difference exceeds this (default 1e-4)")
    w = sub.add_parser("worker", help="run one JSON job here (used across environments)")
    w.add_argument("job", help="the job as JSON")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "backends":
        from . import bridge

        for name in available_backends():
            here = bridge.importable_here(name)
            worker = None if here else bridge.worker_python(name)
            where = "importable here" if here else (f"through worker {worker}" if worker else "not installed")
            print(f"{name:12s} {where}")
        return 0
    if args.command == "compare":
        from .compare import main as compare_main

        return compare_main(args)
    if args.command == "worker":
        from .worker import run_job

        print(json.dumps(run_job(json.loads(args.job))))
        return 0
    if args.command == "tour":
        from . import tour

        started = time.perf_counter()
        backends = tour.order(args.backend)
        if args.json:
            # a worker: one backend, here, as one JSON line
            results = [tour.run_backend(b, args.step) for b in backends]
            print(json.dumps(results[0] if len(results) == 1 else results))
            return 0
        results = {}
        for b in backends:
            print(f"[tour] running {b} ...", file=sys.stderr, flush=True)
            results.update(tour.collect([b], args.step))
        print(tour.render_text(results, width=args.width, step_ids=args.step))
        bad = [b for b, r in results.items() if not r.get("ok")]
        print(f"\n[tour] {len(results)} backends in {time.perf_counter() - started:.1f}s"
              + (f"; not OK: {', '.join(bad)}" if bad else "; all OK"))
        return 1 if bad else 0
    return 2
