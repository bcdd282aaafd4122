"""Progress bars for long work: ``save``, ``load``, ``transfer``, ``compare``.

A bar (tqdm's) counts bytes and tensors with their rate.  It appears only
when the work has run for a second (tqdm's ``delay``) and standard error is a
terminal, so short calls, scripts piped to files and test runs stay quiet.
``progress=False`` turns it off for one call, ``progress=True`` shows it even
when standard error is not a terminal, and ``MULTIPARAM_PROGRESS=0`` turns
it off everywhere.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator, Optional

from tqdm.auto import tqdm

#: seconds of work before a bar appears
DELAY = 1.0


def enabled(progress: Optional[bool]) -> bool:
    """Whether a call given ``progress`` shows a bar (see the module docstring)."""
    if progress is not None:
        return bool(progress)
    if os.environ.get("MULTIPARAM_PROGRESS", "").strip().lower() in ("0", "false", "no", "off"):
        return False
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class Bar:
    """Bytes and tensors done, for one operation; ``update(nbytes)`` after
    each tensor.  A disabled bar does nothing."""

    def __init__(self, bar: Optional[tqdm], tensors: int):
        self._bar = bar
        self._tensors = tensors
        self._done = 0

    def update(self, nbytes: int) -> None:
        if self._bar is None:
            return
        self._done += 1
        self._bar.set_postfix_str(f"{self._done}/{self._tensors}", refresh=False)
        self._bar.update(nbytes)


@contextlib.contextmanager
def bar(description: str, total_bytes: int, tensors: int, progress: Optional[bool] = None) -> Iterator[Bar]:
    """A progress bar over ``total_bytes`` in ``tensors`` tensors."""
    if not enabled(progress):
        yield Bar(None, tensors)
        return
    with tqdm(total=total_bytes, desc=f"{description} ({tensors} tensors)", unit="B", unit_scale=True, unit_divisor=1024,
              delay=0.0 if progress else DELAY, leave=False, dynamic_ncols=True,
              disable=False, file=sys.stderr) as t:
        yield Bar(t, tensors)


def steps(description: str, items, unit: str, progress: Optional[bool] = None):
    """``items`` with a bar of them (``compare``'s backends), under the same
    rules as :func:`bar`."""
    items = list(items)
    if not enabled(progress):
        return items
    return tqdm(items, desc=description, unit=f" {unit}", delay=0.0 if progress else DELAY, leave=False,
                dynamic_ncols=True, file=sys.stderr)
