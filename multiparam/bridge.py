"""Reaching a backend that lives in another Python environment.

MXNet 1.9 needs numpy<1.24, so it can never share a process with current
torch, JAX or TensorFlow.  Anything that shows "all backends" runs a worker
with that environment's interpreter (``python -m multiparam ...``) and
exchanges portable data: JSON on stdout here, safetensors files for weights.

The interpreter for backend ``NAME`` is ``$MULTIPARAM_<NAME>_PYTHON``
(``MULTIPARAM_MXNET_PYTHON``; tox sets it), else the tox environment
``.tox/<environment>-worker`` under the current directory when it exists,
``<environment>`` being the backend's ``environment`` in the registry.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import List, Optional

from .errors import BackendNotInstalledError
from .registry import all_backends, load_adapter


class WorkerError(RuntimeError):
    pass


def worker_python(backend: str) -> Optional[str]:
    """The interpreter of the environment that has ``backend``, or None."""
    env = os.environ.get(f"MULTIPARAM_{backend.upper()}_PYTHON")
    candidates = [env] if env else []
    environment = all_backends()[backend].environment or backend
    candidates.append(str(Path.cwd() / ".tox" / f"{environment}-worker" / "bin" / "python"))
    for c in candidates:
        if c and Path(c).exists():
            return c
    return None


def installed_here(backend: str) -> bool:
    """Whether ``backend``'s framework is installed in this environment,
    without importing it: each of its registry roots has a module spec
    (``importlib.util.find_spec``).  Fast; a broken install still says True."""
    return all(importlib.util.find_spec(root) is not None for root in all_backends()[backend].roots)


def importable_here(backend: str) -> bool:
    """Whether ``backend``'s framework imports in this process (imports it)."""
    try:
        load_adapter(backend)
        return True
    except BackendNotInstalledError:
        return False


def run_worker(backend: str, args: List[str], timeout: float = 900) -> str:
    """Run ``python -m multiparam ARGS`` in ``backend``'s environment; return stdout."""
    python = worker_python(backend)
    if python is None:
        spec = all_backends()[backend]
        raise WorkerError(f"backend {backend!r} is not importable here and no worker environment "
                          f"was found (set MULTIPARAM_{backend.upper()}_PYTHON). {spec.install}")
    env = dict(os.environ)
    # The worker must import this very multiparam and nothing else from this
    # environment: put only the package on its path, through a symlink in a
    # fresh folder (its parent may be a site-packages full of numpy 2 and
    # frameworks the worker's environment must not see).
    package = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory(prefix="multiparam-worker-path-") as shim:
        os.symlink(package, Path(shim) / "multiparam")
        env["PYTHONPATH"] = shim
        proc = subprocess.run([python, "-m", "multiparam", *args], capture_output=True, text=True,
                              env=env, timeout=timeout)
    if proc.returncode != 0:
        raise WorkerError(f"the {backend} worker ({python}) failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def run_worker_json(backend: str, args: List[str], timeout: float = 900):
    out = run_worker(backend, args, timeout=timeout)
    # the last line is the JSON document; frameworks may print banners before it
    return json.loads(out.strip().splitlines()[-1])
