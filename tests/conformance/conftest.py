"""The conformance suite: one set of tests, parametrised by backend.

Choose backends with ``--backend NAME`` (repeatable) or
``MULTIPARAM_TEST_BACKENDS=torch,jax``; with neither, every registered
backend is requested.  A requested backend whose framework cannot be
imported is an error, never a skip.  A backend that declares it cannot do
something (``Adapter.capabilities``) is skipped with that reason.

Each test compares multiparam with an independent truth: a NumPy reference,
the framework's own idiom (``kits/native_<backend>.py``, written the way the
chapter writes each framework), or a printed fact from the chapter.
"""
from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

import multiparam as mp
from multiparam.registry import available_backends, load_adapter


def pytest_addoption(parser):
    parser.addoption("--backend", action="append", default=[],
                     help="backend to run the conformance suite against (repeatable); "
                          f"known: {', '.join(available_backends())}")


def requested_backends(config) -> list:
    names = list(config.getoption("--backend"))
    env = os.environ.get("MULTIPARAM_TEST_BACKENDS", "")
    names += [n.strip() for n in env.split(",") if n.strip()]
    return names or available_backends()


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", requested_backends(metafunc.config), scope="session")


@pytest.fixture(scope="session")
def adapter(backend):
    # No skip-on-import-failure here: asking for a backend that cannot import is an error.
    return load_adapter(backend)


@pytest.fixture(scope="session")
def kit(backend, adapter):
    """The framework's own idioms for this backend (independent of the adapter)."""
    return importlib.import_module(f"tests.conformance.kits.native_{backend}")


@pytest.fixture(autouse=True)
def _backend_selected(backend):
    with mp.use_backend(backend):
        yield


@pytest.fixture
def X():
    """The chapter's input: torch.rand(size=(2, 4)), here from a fixed seed."""
    return np.random.default_rng(0).uniform(size=(2, 4)).astype(np.float32)


def needs(adapter, capability: str):
    """Skip, with the backend's declared reason, where it cannot do this."""
    cap = adapter.capability(capability)
    if not cap.supported:
        pytest.skip(f"{adapter.name} declares it cannot {capability}: {cap.reason}")
