"""The tour runs every snippet on every backend, MXNet in its own environment."""
import json
import subprocess
import sys

import pytest

from multiparam import tour
from multiparam.tour_steps import BACKEND_ORDER, STEP_IDS, STEPS


@pytest.fixture(scope="module")
def results(mxnet_python):
    return tour.collect(tour.order(BACKEND_ORDER))


@pytest.mark.parametrize("backend", BACKEND_ORDER)
def test_every_snippet_runs(results, backend):
    r = results[backend]
    assert not r.get("missing"), r.get("missing")
    failed = {s["id"]: s["native_output"] + s["mp_output"] for s in r["steps"] if s.get("error")}
    assert not failed
    assert [s["id"] for s in r["steps"]] == list(STEP_IDS)


@pytest.mark.parametrize("backend", BACKEND_ORDER)
def test_shown_code_is_the_code_that_ran(results, backend):
    for step, shown in zip(STEPS, results[backend]["steps"]):
        assert shown["native_code"] == step.native[backend]
        assert shown["mp_code"] == step.multiparam_code(backend)


def test_multiparam_view_reads_the_same_everywhere(results):
    for sid in ("all", "regex", "grad"):
        outputs = {b: next(s["mp_output"] for s in results[b]["steps"] if s["id"] == sid)
                   for b in BACKEND_ORDER}
        assert len(set(outputs.values())) == 1, outputs
    assert outputs["torch"]


def test_same_spec_gives_same_canonical_names(results):
    names = {b: list(results[b]["names"]) for b in BACKEND_ORDER}
    assert all(n == ["0.weight", "0.bias", "2.weight", "2.bias"] for n in names.values()), names
    native = {b: results[b]["names"]["0.weight"][0] for b in BACKEND_ORDER}
    assert len(set(native.values())) == 4     # the frameworks' own names all differ


def test_text_rendering_fits_100_columns(results):
    text = tour.render_text(results, width=100)
    assert max(len(line) for line in text.splitlines()) <= 100
    for backend in BACKEND_ORDER:
        assert f"--- {backend} " in text


def test_cli_rejects_unknown_step_and_backend():
    for args, valid in ((["--step", "bogus"], "build"), (["--backend", "caffe"], "mxnet")):
        out = subprocess.run([sys.executable, "-m", "multiparam", "tour", *args],
                             capture_output=True, text=True)
        assert out.returncode == 2 and valid in out.stderr and "valid:" in out.stderr


def test_missing_worker_is_reported_in_its_column(monkeypatch, tmp_path):
    monkeypatch.setenv("MULTIPARAM_MXNET_PYTHON", str(tmp_path / "nope"))
    monkeypatch.chdir(tmp_path)
    r = tour.collect(["mxnet"], ["build"])
    assert r["mxnet"]["ok"] is False and "tox -e mxnet" in r["mxnet"]["missing"]
    text = tour.render_text(r)
    assert "not available" in text
