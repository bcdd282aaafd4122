"""Keeping the frameworks' own C++ log lines out of the tour's terminal.

TensorFlow writes lines such as "WARNING: All log messages before
absl::InitializeLog() is called are written to STDERR" and "I0000 ...
port.cc:153] oneDNN custom operations are on" straight to file descriptor
2, from C++, when it is imported and again at its first operation.  No
environment variable silences them (``TF_CPP_MIN_LOG_LEVEL`` does not reach
the ones logged before absl's logging is set up), so the tour runs framework
code with descriptor 2 pointed at a temporary file and afterwards passes on
everything written there except those log lines: Python warnings and
tracebacks still reach the terminal.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from typing import Iterator

#: a line in absl's (glog's) format, ``I0000 00:00:1795700442.760299  5379
#: port.cc:153] ...`` (severity, date, time, thread, file:line), or absl's
#: banner written before its logging is set up
NATIVE_LOG_LINE = re.compile(
    r"[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\s\]]+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called")


@contextlib.contextmanager
def native_logs_filtered() -> Iterator[None]:
    """Run the body with descriptor 2 captured; then write to stderr what
    it wrote there, less the native log lines (:data:`NATIVE_LOG_LINE`)."""
    sys.stderr.flush()
    terminal = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(terminal, 2)
            os.close(terminal)
            captured.seek(0)
            lines = captured.read().decode("utf-8", errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not NATIVE_LOG_LINE.match(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()
