"""Timing shared by the benchmarks (timeit-style): each side is calibrated
to loops of ``batch`` seconds, native and multiparam loops alternate (order
flipped every round) so load drift hits both alike, and results are per-call
min and median plus the ratio multiparam / native."""
from __future__ import annotations

import gc
import statistics
import time


def _loop(fn, number: int) -> float:
    """Seconds per call of ``fn`` over ``number`` calls (GC off, as timeit)."""
    gc_was = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - t0) / number
    finally:
        if gc_was:
            gc.enable()


def _calibrate(fn, batch: float) -> int:
    """Calls per timed loop so one loop takes about ``batch`` seconds."""
    number = 1
    while True:
        per = _loop(fn, number)
        if per * number >= batch / 4 or number >= 1 << 20:
            return max(1, int(batch / max(per, 1e-9)))
        number *= 4


def compare(native, multi, repeat: int, budget: float, batch: float = 0.005) -> dict:
    """Alternate native and multiparam loops ``repeat`` times (fewer if the
    time budget runs out after at least 5); per-call min and median."""
    native(), multi()  # warm-up (first-call caches, lazy imports)
    n_nat, n_mp = _calibrate(native, batch), _calibrate(multi, batch)
    t_nat, t_mp = [], []
    start = time.perf_counter()
    for r in range(repeat):
        pair = [(native, n_nat, t_nat), (multi, n_mp, t_mp)]
        for fn, number, out in (pair if r % 2 == 0 else pair[::-1]):
            out.append(_loop(fn, number))
        if r >= 4 and time.perf_counter() - start > budget:
            break
    nat_min, mp_min = min(t_nat), min(t_mp)
    nat_med, mp_med = statistics.median(t_nat), statistics.median(t_mp)
    return {
        "native_min": nat_min, "native_median": nat_med,
        "multiparam_min": mp_min, "multiparam_median": mp_med,
        # best-of-N ratio, and the median of ratios of adjacent loops (robust to load drift)
        "ratio": mp_min / nat_min,
        "ratio_median": statistics.median(m / n for m, n in zip(t_mp, t_nat)),
        "repeats": len(t_nat), "number_native": n_nat, "number_multiparam": n_mp,
    }


