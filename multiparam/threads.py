"""The package's worker threads: one pool per purpose, made at first use
and kept for the process (reads from files, layout conversions), each as
large as the cores it can use."""
from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Dict

#: more threads than this gain nothing on the memory-bound copies they run
MAX_CORES = 4

_pools: Dict[str, ThreadPoolExecutor] = {}
_making = threading.Lock()


@functools.lru_cache(maxsize=None)
def cores() -> int:
    """How many cores the package's parallel copies use (asked once: it
    is asked per write, and ``os.cpu_count`` reads the system each time)."""
    return min(os.cpu_count() or 1, MAX_CORES)


def pool(purpose: str, workers: int) -> ThreadPoolExecutor:
    """The pool of ``purpose`` (its threads are named ``multiparam-<purpose>``),
    made with ``workers`` threads at the first ask."""
    with _making:       # two threads asking first make one pool
        made = _pools.get(purpose)
        if made is None:
            made = _pools[purpose] = ThreadPoolExecutor(max(1, workers), thread_name_prefix=f"multiparam-{purpose}")
    return made
