"""The conformance suite: one set of tests, parametrised by backend.

Choose backends with ``--backend NAME`` (repeatable) or
``MULTIPARAM_TEST_BACKENDS=torch,jax``; with neither, every registered
backend is requested.  A requested backend whose framework cannot be
imported is an error, never a skip.  A backend that declares it cannot do
something (``Adapter.capabilities``) is skipped with that reason.

Each test compares multiparam with an independent truth: a NumPy reference,
the framework's own idiom (the backend's kit: :mod:`multiparam.testing` says
what a kit provides and how the suite finds it; ``--kit NAME=module``
chooses one), or a printed fact from the chapter.  Where frameworks differ,
a test reads the adapter's declared capability or a fact the kit states,
never a backend name.

Cases a kit hands out (its chapter models, its real models) are parameters
of the tests that take the ``native_case`` or ``real_model`` fixture, with
ids ``<backend>-<label>``; a case is built only when its test runs.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import multiparam as mp
from multiparam.registry import available_backends, load_adapter
from multiparam.testing import load_kit, parse_kit_choices

#: fixtures that stand for one case of a kit -> the kit member listing those cases by label
CASE_FIXTURES = {"native_case": "chapter_models", "real_model": "real_models",
                 "checkpoint_model": "checkpoint_models", "twin_model": "twin_models",
                 "port_case": "port_models", "shared_memory_case": "shared_memory_models"}


def pytest_addoption(parser):
    parser.addoption("--backend", action="append", default=[],
                     help="backend to run the conformance suite against (repeatable); "
                          f"known: {', '.join(available_backends())}")
    parser.addoption("--kit", action="append", default=[], metavar="NAME=MODULE",
                     help="the kit module of backend NAME (repeatable; default: the adapter "
                          "package's KIT, else tests.conformance.kits.native_NAME)")


def requested_backends(config) -> list:
    names = list(config.getoption("--backend"))
    env = os.environ.get("MULTIPARAM_TEST_BACKENDS", "")
    names += [n.strip() for n in env.split(",") if n.strip()]
    return names or available_backends()


_kits: dict = {}


def kit_for(config, backend: str):
    """The backend's kit module, imported once per session.  Importing it
    imports that backend's framework, and only that one."""
    if backend not in _kits:
        _kits[backend] = load_kit(backend, parse_kit_choices(config.getoption("--kit")))
    return _kits[backend]


def pytest_generate_tests(metafunc):
    if "backend" not in metafunc.fixturenames:
        return
    backends = requested_backends(metafunc.config)
    case_fixture = next((f for f in CASE_FIXTURES if f in metafunc.fixturenames), None)
    if case_fixture is None:
        metafunc.parametrize("backend", backends, scope="session")
        return
    # one test per (backend, case): the labels are cheap, the cases are built when the test runs
    hook = CASE_FIXTURES[case_fixture]
    params = []
    for backend in backends:
        kit = kit_for(metafunc.config, backend)
        labels = list(getattr(kit, hook)())
        params += [pytest.param(backend, label, id=f"{backend}-{label}") for label in labels]
        if not labels:
            # a kit with no such case says why (kit.ABSENT[hook]); one that does
            # not is a failure, never a silent empty parametrisation
            reason = getattr(kit, "ABSENT", {}).get(hook)
            marks = [pytest.mark.skip(reason=f"{backend}: {reason}")] if reason else []
            params.append(pytest.param(backend, None, id=f"{backend}-none", marks=marks))
    metafunc.parametrize(["backend", f"{case_fixture}_label"], params, scope="session")


@pytest.fixture(scope="session")
def adapter(backend):
    # No skip-on-import-failure here: asking for a backend that cannot import is an error.
    return load_adapter(backend)


@pytest.fixture(scope="session")
def kit(request, backend, adapter):
    """The framework's own idioms for this backend (independent of the adapter)."""
    return kit_for(request.config, backend)


def _case(kit, hook: str, label):
    """The kit's case ``label`` of ``hook``, built now; a kit that lists no
    case and does not say why in ``ABSENT`` fails here (see above)."""
    if label is None:
        pytest.fail(f"{kit.__name__}.{hook}() lists nothing, and {kit.__name__}.ABSENT does not say why")
    return getattr(kit, hook)()[label]()


@pytest.fixture
def native_case(kit, native_case_label):
    """One of the kit's chapter models, freshly built (a test may change it)."""
    return _case(kit, "chapter_models", native_case_label)


@pytest.fixture
def checkpoint_model(kit, checkpoint_model_label):
    """One of the kit's checkpoint models, freshly built (tests write to it)."""
    return _case(kit, "checkpoint_models", checkpoint_model_label)


@pytest.fixture
def twin_model(kit, twin_model_label):
    """Two instances of one of the kit's architectures, built apart, and an input."""
    return _case(kit, "twin_models", twin_model_label)


@pytest.fixture
def port_case(kit, port_case_label):
    """A natively written model with its own names, its reference spec and rules."""
    return _case(kit, "port_models", port_case_label)


@pytest.fixture
def shared_memory_case(kit, shared_memory_case_label):
    """Parameters sharing memory without a tie, and the framework's own load."""
    return _case(kit, "shared_memory_models", shared_memory_case_label)


@pytest.fixture(scope="session")
def real_model(kit, real_model_label):
    """One of the kit's real models, built once per session (MobileNetV2 takes
    seconds); tests wrap it and save from it, but never change it."""
    return _case(kit, "real_models", real_model_label)


@pytest.fixture(autouse=True)
def _backend_selected(backend):
    # use_backend restores on exit whatever the test does inside (set_backend included)
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


def needs_fact(kit, fact: str, otherwise: str):
    """Skip where the kit states ``fact`` False: the test is about something
    the framework itself does not have (``otherwise`` says what it does)."""
    if not getattr(kit, fact):
        pytest.skip(f"{kit.__name__}.{fact} is False: {otherwise}")


@pytest.fixture(params=["in turn", "every value ahead"])
def work_ahead(request, monkeypatch):
    """A load as it runs, or with every value large enough to be taken on
    by a worker beside the writing thread (the size bar at 0 bytes, three
    cores): converted, or written, one per core where the backend allows."""
    if request.param == "every value ahead":
        from tests.spies import every_value_ahead
        every_value_ahead(monkeypatch)
    return request.param
