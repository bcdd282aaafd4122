"""The backend switch: registry, set/get/use_backend, MULTIPARAM_BACKEND.

``set_backend`` changes the backend for the rest of the process (its
context), so a test that calls it must give the backend back: it takes the
``scratch_backend`` fixture, and every test here is checked to leave the
backend as it found it (``backend_left_as_found``).
"""
import os
import subprocess
import sys
import threading

import pytest

import multiparam as mp
from multiparam.backend import ENV_VAR
from multiparam.registry import BACKENDS


def explicit_backend():
    """The backend set_backend() left in force in this context, or None when
    get_backend() still follows $MULTIPARAM_BACKEND: asked with the variable
    naming two different backends in turn (public API only)."""
    saved = os.environ.get(ENV_VAR)
    probes = mp.available_backends()[:2]
    seen = []
    try:
        for name in probes:
            os.environ[ENV_VAR] = name
            seen.append(mp.get_backend())
    finally:
        if saved is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = saved
    return None if seen == probes else seen[0]


@pytest.fixture(autouse=True)
def backend_left_as_found():
    """No test here leaves a backend set that was not set before it."""
    before = explicit_backend()
    yield
    assert explicit_backend() == before, "the test left a changed backend behind"


@pytest.fixture
def scratch_backend():
    """A test may call set_backend: the backend it found is restored after
    (use_backend resets to the state before it, whatever was set inside)."""
    with mp.use_backend(mp.get_backend()):
        yield


def test_registry_lists_the_four_in_order():
    assert mp.available_backends()[:4] == ["torch", "jax", "tensorflow", "mxnet"]
    assert list(BACKENDS) == mp.available_backends()[:len(BACKENDS)]


def test_default_is_torch(monkeypatch):
    monkeypatch.delenv("MULTIPARAM_BACKEND", raising=False)
    assert mp.get_backend() == "torch"


def test_use_backend_restores_on_exit_and_on_error(scratch_backend):
    mp.set_backend("jax")
    with mp.use_backend("mxnet"):
        assert mp.get_backend() == "mxnet"
        with mp.use_backend("tensorflow"):
            assert mp.get_backend() == "tensorflow"
        assert mp.get_backend() == "mxnet"
    assert mp.get_backend() == "jax"
    with pytest.raises(RuntimeError):
        with mp.use_backend("torch"):
            raise RuntimeError("boom")
    assert mp.get_backend() == "jax"


def test_use_backend_is_context_local():
    seen = {}

    def worker():
        seen["thread"] = mp.get_backend()

    with mp.use_backend("mxnet"):
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    assert seen["thread"] != "mxnet"


def test_a_changed_backend_is_seen_and_given_back(monkeypatch):
    """The leak check is not blind: it sees set_backend, even to the backend
    that was already current, and scratch_backend gives the backend back."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert explicit_backend() is None
    default = mp.get_backend()
    with mp.use_backend(default):             # what scratch_backend does around a test
        mp.set_backend(default)               # the same name, yet now fixed for the process
        assert explicit_backend() == default
        mp.set_backend("mxnet")
        assert explicit_backend() == "mxnet"
    assert explicit_backend() is None
    assert mp.get_backend() == default


def test_unknown_backend_lists_known_ones():
    with pytest.raises(mp.UnknownBackendError) as err:
        mp.set_backend("pytorch")
    msg = str(err.value)
    for name in mp.available_backends():
        assert name in msg
    assert "did you mean 'torch'" in msg
    with pytest.raises(mp.UnknownBackendError):
        with mp.use_backend("tf"):
            pass


@pytest.mark.parametrize("value,expected", [("jax", "jax"), ("mxnet", "mxnet")])
def test_environment_variable_sets_default(value, expected):
    env = dict(os.environ, MULTIPARAM_BACKEND=value)
    out = subprocess.run([sys.executable, "-c", "import multiparam as mp; print(mp.get_backend())"],
                         capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == expected


def test_bad_environment_variable_is_an_error():
    env = dict(os.environ, MULTIPARAM_BACKEND="caffe")
    out = subprocess.run([sys.executable, "-c", "import multiparam as mp; mp.get_backend()"],
                         capture_output=True, text=True, env=env)
    assert out.returncode != 0
    assert "unknown backend 'caffe'" in out.stderr and "torch" in out.stderr


@pytest.mark.parametrize("name", list(BACKENDS))
def test_missing_framework_says_how_to_install(name):
    # sys.modules[root] = None makes `import root` fail, as if not installed
    code = f"""
import sys
for root in {BACKENDS[name].roots!r}:
    sys.modules[root] = None
import multiparam as mp
try:
    mp.nn.Sequential(mp.nn.Dense(1), backend={name!r})
except mp.BackendNotInstalledError as e:
    print(e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert f"backend {name!r} needs" in out.stdout
    assert "tox -e" in out.stdout
