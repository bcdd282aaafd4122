"""The ``multiparam`` command: ``tour``, ``compare``, ``backends``,
``inspect``, ``diff``, ``port`` (and ``worker``).

Lists of backends and steps in the help come from the registry and from
the tour's step table, never from literals here.  ``backends`` imports no
framework (it asks ``importlib.util.find_spec``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import List, Optional

from . import bridge, cli_tools, tour
from .compare import ARCHITECTURES
from .compare import main as compare_main
from .errors import MultiparamError
from .registry import available_backends, import_order
from .tour.steps import STEP_IDS
from .worker import run_job


def _names(value: str, known, what: str) -> List[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in known]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(map(repr, bad))}; valid: {', '.join(known)}")
    return names


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="multiparam", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    t = sub.add_parser("tour", help="the chapter side by side in every backend")
    t.add_argument("--backend", default=",".join(available_backends()),
                   type=lambda v: _names(v, available_backends(), "backend"),
                   help=f"comma-separated backends (default: all: {', '.join(available_backends())})")
    t.add_argument("--step", default=",".join(STEP_IDS),
                   type=lambda v: _names(v, STEP_IDS, "step"),
                   help=f"comma-separated steps (default: all: {', '.join(STEP_IDS)})")
    t.add_argument("--json", action="store_true", help="print the results as JSON (used by workers)")
    t.add_argument("--width", type=int, default=100, help="terminal width (default 100)")
    t.add_argument("--out", metavar="DIR", default="multiparam-tour",
                   help="where the page, its PNG histograms, the notebooks and results.json go "
                        "(default: ./multiparam-tour)")
    t.add_argument("--html", action=argparse.BooleanOptionalAction, default=True,
                   help="write DIR/index.html, one page with a tab per framework per step, or all "
                        "side by side (default: on)")
    t.add_argument("--notebooks", action=argparse.BooleanOptionalAction, default=True,
                   help="write DIR/tour_<backend>.ipynb, one notebook per backend (default: on)")
    t.add_argument("--text", action=argparse.BooleanOptionalAction, default=True,
                   help="print the tour in the terminal (default: on)")
    t.add_argument("--from-json", metavar="PATH",
                   help="render a recorded DIR/results.json instead of running the snippets")
    sub.add_parser("backends", help="registered backends and whether each is installed here "
                                    "(imports no framework)")
    c = sub.add_parser("compare", help="one architecture, the same weights, every backend: differences")
    c.add_argument("arch", nargs="?", default="mlp", choices=sorted(ARCHITECTURES),
                   help=f"the architecture (default mlp; one of {', '.join(sorted(ARCHITECTURES))})")
    c.add_argument("--backend", default=",".join(available_backends()),
                   type=lambda v: _names(v, available_backends(), "backend"),
                   help="comma-separated backends (default: all; one not installed here and without a "
                        "worker environment is skipped with a note)")
    c.add_argument("--seed", type=int, default=0, help="seed of the weights and the input (default 0)")
    c.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    c.add_argument("--html", metavar="PATH", help="also write the result as an HTML page")
    c.add_argument("--tolerance", type=float, default=1e-4,
                   help="exit 1 when a difference exceeds this (default 1e-4)")
    i = sub.add_parser("inspect", help="names, shapes, dtypes, bytes and ties of a checkpoint or a model")
    i.add_argument("target", metavar="PATH_OR_TARGET",
                   help="a .safetensors file, a sharded index or its folder, or module:factory "
                        "(file.py:factory) returning a model, a Model or (model, sample_input)")
    d = sub.add_parser("diff", help="two checkpoints or models tensor by tensor: max abs and relative "
                                    "difference, missing, extra")
    d.add_argument("a", metavar="A", help="a safetensors file / sharded set, or module:factory")
    d.add_argument("b", metavar="B", help="the same kinds as A")
    d.add_argument("--tolerance", type=float, default=0.0,
                   help="exit 1, saying what exceeded it, when a difference is larger (default 0: equal)")
    o = sub.add_parser("port", help="plan and run a port from SRC into DST with rules; optionally check it")
    o.add_argument("src", metavar="SRC", help="a safetensors file / sharded set, or module:factory")
    o.add_argument("dst", metavar="DST", help="module:factory (file.py:factory) building the destination")
    o.add_argument("--rules", metavar="RULES",
                   help="rules.py (its RULES list), rules.py:NAME, or a module such as "
                        "multiparam.ports.gpt2_flax (default: names must match)")
    o.add_argument("--match", default="name", choices=["name", "order", "shape"],
                   help="how names the rules leave unmatched are paired (default name: not at all)")
    o.add_argument("--check", action="store_true",
                   help="run both models on --inputs and compare outputs and gradients")
    o.add_argument("--inputs", metavar="INPUTS",
                   help="inputs for --check: a .npy, a .npz of keyword inputs, or module:function")
    o.add_argument("--tolerance", type=float, default=1e-4,
                   help="--check fails (exit 1, saying what exceeded it) past this (default 1e-4)")
    o.add_argument("--save-plan", metavar="PLAN.json", help="also write the plan, rules included, as JSON")
    o.add_argument("--out", metavar="FILE", help="save the ported destination's weights (safetensors)")
    o.add_argument("--partial", action="store_true",
                   help="write what the plan matched even when destination parameters have no source")
    w = sub.add_parser("worker", help="run one JSON job here (used across environments)")
    w.add_argument("job", help="the job as JSON")
    return p


DESCRIPTION = ("multiparam: model parameters across deep-learning frameworks, from the command line:\n"
               "compare backends, run the tour, inspect and diff checkpoints, port weights.")
EPILOG = ("examples:\n"
          "  multiparam backends\n"
          "  multiparam inspect model.safetensors\n"
          "  multiparam diff a.safetensors b.safetensors --tolerance 1e-6\n"
          "  multiparam port hf.safetensors mymodels.py:build --rules rules.py --save-plan plan.json")


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "backends":
        for name in available_backends():
            here = bridge.installed_here(name)
            worker = None if here else bridge.worker_python(name)
            where = "installed here" if here else (f"through worker {worker}" if worker else "not installed")
            print(f"{name:12s} {where}")
        return 0
    if args.command in ("inspect", "diff", "port"):
        try:
            if args.command == "inspect":
                return cli_tools.inspect(args.target)
            if args.command == "diff":
                return cli_tools.diff(args.a, args.b, args.tolerance)
            return cli_tools.port(args.src, args.dst, args.rules, args.match, args.check, args.inputs,
                                  args.save_plan, args.out, args.tolerance, strict=not args.partial)
        except (cli_tools.CliError, MultiparamError, FileNotFoundError, OSError) as exc:
            print(f"multiparam {args.command}: error: {exc}", file=sys.stderr)
            return 2
    if args.command == "compare":
        return compare_main(args)
    if args.command == "worker":
        print(json.dumps(run_job(json.loads(args.job))))
        return 0
    if args.command == "tour":
        started = time.perf_counter()
        backends = import_order(args.backend)
        if args.json:
            # a worker: one backend, here, as one JSON line
            results = [tour.run_backend(b, args.step) for b in backends]
            print(json.dumps(results[0] if len(results) == 1 else results))
            return 0
        if args.from_json:
            with open(args.from_json, encoding="utf-8") as f:
                recorded = json.load(f)
            results = {b: recorded[b] for b in backends if b in recorded}
        else:
            results = {}
            for b in backends:
                print(f"[tour] running {b} ...", file=sys.stderr, flush=True)
                results.update(tour.collect([b], args.step))
        seconds = time.perf_counter() - started
        if args.text:
            print(tour.render_text(results, width=args.width, step_ids=args.step))
        written = tour.write_all(results, args.out, step_ids=args.step, html=args.html,
                                 notebooks=args.notebooks, seconds=None if args.from_json else seconds)
        bad = [b for b, r in results.items() if not r.get("ok")]
        print(f"\n[tour] {len(results)} backends in {seconds:.1f}s"
              + (f"; not OK: {', '.join(bad)}" if bad else "; all OK"))
        if written.get("html"):
            print("[tour] HTML page (a tab per framework per step, or side by side): "
                  f"{os.path.abspath(written['html'])}")
            if "init_hist" in args.step and not written.get("pictures"):
                print(f"[tour] no histograms: install {tour.MATPLOTLIB_PIN}")
        for path in written.get("notebooks") or ():
            print(f"[tour] notebook: {os.path.abspath(path)}")
        return 1 if bad else 0
    return 2
