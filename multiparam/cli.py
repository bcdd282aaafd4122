"""The ``multiparam`` command: ``tour`` and ``backends``.

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
