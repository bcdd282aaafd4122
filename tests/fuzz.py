"""``tox -e fuzz``: the property suites with a long, random budget.

    python -m tests.fuzz [--minutes M] [--round-minutes R] [-- pytest args]

Runs rounds of pytest over the property tests (the conformance properties
against every backend importable here, and the cross-framework properties,
MXNet through its worker) with the hypothesis profile ``fuzz``, each round
with a fresh seed, until ``--minutes`` (default ``$MULTIPARAM_FUZZ_MINUTES``
or 15) are spent.  Hypothesis has no time budget of its own, so the rounds
give it one: the first is small and measures the pace, the next are sized
to take about ``--round-minutes`` (or what is left).

A round that finds a counterexample stops the run with pytest's exit
status.  Its output shows the architecture as the code that builds it,
and the seed that replays the round (``--hypothesis-seed``); the example is
also kept in ``.hypothesis/`` and tried first by the next run.  Paste it
into a ``test_regression_*`` test.

MXNet's conformance properties run in MXNet's own environment:
``tox -e mxnet -- --hypothesis-profile=fuzz -k test_properties``
(``MULTIPARAM_FUZZ_EXAMPLES`` examples per property, default 1000).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import random
import subprocess
import sys
import time

from multiparam.registry import all_backends, import_order

PROPERTIES = ("tests/conformance/test_properties.py", "tests/cross/test_properties_cross.py")
#: examples per property test in the first round, which measures the pace
FIRST_ROUND = 10


def installed_backends() -> list:
    """Backends whose framework is installed here (looked up, not imported:
    the rounds import them in their own processes)."""
    return import_order(name for name, spec in all_backends().items()
                        if all(importlib.util.find_spec(root) for root in spec.roots))


def run_round(examples: int, seed: int, backends: list, pytest_args: list) -> int:
    env = dict(os.environ, MULTIPARAM_FUZZ_EXAMPLES=str(examples), MULTIPARAM_TEST_BACKENDS=",".join(backends))
    cmd = [sys.executable, "-m", "pytest", *PROPERTIES, "--hypothesis-profile=fuzz",
           f"--hypothesis-seed={seed}", "-p", "no:cacheprovider", *(pytest_args or ["-q"])]
    return subprocess.call(cmd, env=env)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("MULTIPARAM_FUZZ_MINUTES", "15")),
                        help="time budget of the whole run (default: $MULTIPARAM_FUZZ_MINUTES or 15)")
    parser.add_argument("--round-minutes", type=float, default=5.0,
                        help="about how long one round takes after the first (default 5)")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    backends = installed_backends()
    start = time.monotonic()
    deadline = start + args.minutes * 60
    examples, rounds, total = FIRST_ROUND, 0, 0
    while time.monotonic() < deadline:
        seed = random.SystemRandom().randrange(2 ** 32)
        rounds += 1
        print(f"fuzz round {rounds}: {examples} examples per property test, --hypothesis-seed={seed}, "
              f"backends here: {', '.join(backends)}", flush=True)
        began = time.monotonic()
        status = run_round(examples, seed, backends, args.pytest_args)
        took = time.monotonic() - began
        if status != 0:
            print(f"fuzz: round {rounds} failed (seed {seed}); its counterexamples are above", flush=True)
            return status
        total += examples
        left = deadline - time.monotonic()
        examples = max(1, int(examples * min(args.round_minutes * 60, left) / took))
    print(f"fuzz: nothing found in {rounds} rounds, {total} examples per property test, "
          f"{(time.monotonic() - start) / 60:.1f} minutes", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
