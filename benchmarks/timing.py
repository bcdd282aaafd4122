"""Timing shared by the benchmarks: alternate native and multiparam runs so
drift (other load on the machine, thermal) hits both alike; report the best
and the median per call, and the ratio of the bests."""
from __future__ import annotations

import gc
import statistics
import time
from typing import Callable, Dict


def _calibrate(fn: Callable[[], object], budget: float = 0.02) -> int:
    """Calls per timing loop so one loop takes about ``budget`` seconds."""
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, int(budget / once))


def compare_pair(native: Callable[[], object], ours: Callable[[], object],
                 repeat: int = 15) -> Dict[str, float]:
    """Best-of-``repeat`` seconds per call for each, and multiparam/native."""
    native(), ours()                      # warm caches and lazy compilation
    number = min(_calibrate(native), _calibrate(ours))
    times = {"native": [], "multiparam": []}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            for key, fn in (("native", native), ("multiparam", ours)):
                start = time.perf_counter()
                for _ in range(number):
                    fn()
                times[key].append((time.perf_counter() - start) / number)
    finally:
        if gc_was:
            gc.enable()
    best = {k: min(v) for k, v in times.items()}
    return {"native": best["native"], "multiparam": best["multiparam"],
            "native_median": statistics.median(times["native"]),
            "multiparam_median": statistics.median(times["multiparam"]),
            "ratio": best["multiparam"] / best["native"]}
