"""The tour runs every snippet on every backend, MXNet in its own environment,
and its three forms (terminal, HTML page, notebooks) show exactly that."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from multiparam import tour
from multiparam.registry import all_backends, available_backends, import_order
from multiparam.tour import STEP_IDS, STEPS
from multiparam.tour.results import display_name

BACKEND_ORDER = tuple(import_order(available_backends()))


@pytest.fixture(scope="module")
def results(mxnet_python):
    res = tour.collect(BACKEND_ORDER)
    # the browser environment renders the page from these (tox sets the path)
    path = os.environ.get("MULTIPARAM_TOUR_RESULTS")
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(res), encoding="utf-8")
    return res


def _step(results, backend, sid):
    return next(s for s in results[backend]["steps"] if s["id"] == sid)


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
        assert shown["native_code"] == step.native_code(backend)
        assert shown["mp_code"] == step.multiparam_code(backend)


def test_each_step_is_a_folder_of_snippet_files():
    """Every step has its folder, with its own idiom for every backend (or
    for none: done with multiparam alone) and a multiparam file; no file is
    there that the tour does not run, and none is named after a framework
    (a script's folder comes first on sys.path: it would shadow it)."""
    folder = Path(tour.steps.__file__).parent
    assert sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name[0].isdigit()) == \
        [f"{n:02d}_{sid}" for n, sid in enumerate(STEP_IDS, 1)]
    specs = all_backends()
    frameworks = {name for b in BACKEND_ORDER for name in (b, *specs[b].roots, *specs[b].versions)}
    for step in STEPS:
        natives = [step.native_file(b) for b in BACKEND_ORDER]
        assert all(natives) or not any(natives), step.id
        expected = {"with_multiparam.py"} | {f"native_{b}.py" for b in BACKEND_ORDER if step.native_file(b)}
        expected |= {f"with_multiparam_{b}.py" for b in BACKEND_ORDER
                     if step.multiparam_file(b).name != "with_multiparam.py"}
        files = {p.name for p in step.folder.iterdir() if p.name.endswith(".py")}
        assert files == expected, step.id
        assert not {p.rsplit(".", 1)[0] for p in files} & frameworks
        for b in BACKEND_ORDER:
            compile(step.native_code(b) + "\n" + step.multiparam_code(b), f"{step.id}/{b}", "exec")


# steps whose multiparam output must read the same on all four backends
# (portable initialisation with a seed gives bit-identical values everywhere)
SAME = ("grad", "all", "regex", "deferred", "init_normal", "init_constant", "init_layers",
        "init_custom", "edit", "tied", "tied_grad", "custom_param")


@pytest.mark.parametrize("sid", SAME)
def test_multiparam_view_reads_the_same_everywhere(results, sid):
    outputs = {b: _step(results, b, sid)["mp_output"] for b in BACKEND_ORDER}
    assert len(set(outputs.values())) == 1, outputs
    assert outputs["torch"]
    assert tour.same_everywhere(results, sid) == list(BACKEND_ORDER)


# the chapter's facts, in the multiparam output (the same everywhere) ...
MP_FACTS = {
    "grad": "True",
    "deferred": "{'0.weight': (8, None), '0.bias': (8,), '2.weight': (1, None), '2.bias': (1,)}\n"
                "{'0.weight': (8, 4), '0.bias': (8,), '2.weight': (1, 8), '2.bias': (1,)}",
    "init_normal": " 0.0",                                     # zero biases
    "init_constant": "[1. 1. 1. 1.] 0.0",
    "init_layers": "[[42. 42. 42. 42. 42. 42. 42. 42.]]",
    "init_custom": "Init 0.weight (8, 4)\nInit 2.weight (1, 8)\n",
    "edit": "[42.  2.  2.  2.]",
    "tied": "[('2.weight', '4.weight'), ('2.bias', '4.bias')]\nTrue 100.0",
    "tied_grad": "[('0.weight', '1.weight')] True\n9.0 {'0.weight': array([[6.]], dtype=float32)}",
    "custom_param": "{'weight1': (20, 20)}",
    "exercise": "([('2.weight', '4.weight'), ('2.bias', '4.bias')], True)",
}
# ... and in each framework's own output, so a change of behaviour fails here
NATIVE_FACTS = {
    "torch": {"grad": "True", "deferred": "<UninitializedParameter>", "init_constant": "tensor([1., 1., 1., 1.])",
              "init_layers": "[[42., 42., 42., 42., 42., 42., 42., 42.]]",
              "init_custom": "Init weight torch.Size([8, 4])\nInit weight torch.Size([1, 8])",
              "edit": "tensor([42.0000,", "tied_grad": "tensor(9., grad_fn=<SumBackward0>) tensor([[6.]])",
              "custom_param": "['weight1']"},
    "jax": {"grad": "False", "init_constant": "Array([1., 1., 1., 1.], dtype=float32)",
            "init_custom": "Init (4, 8)\nInit (8, 1)", "tied": "['layers_0', 'layers_2', 'layers_6']",
            "tied_grad": "9.0 {'layers_0': {'kernel': Array([[6.]], dtype=float32)}}",
            "custom_param": "['weight1']"},
    "tensorflow": {"grad": "False", "deferred": "[]\n", "tied": "7 6 True",
                   "init_custom": "Init (4, 8)\nInit (8, 1)",
                   "tied_grad": "True 1\ntf.Tensor(9.0, shape=(), dtype=float32) "
                                "[<tf.Tensor: shape=(1, 1), dtype=float32, numpy=array([[6.]], dtype=float32)>]",
                   "custom_param": "['my_model/weight1']"},
    "mxnet": {"grad": "array([[0., 0., 0., 0., 0., 0., 0., 0.]])", "deferred": "shape=(8, -1)",
              "init_constant": "(array([1., 1., 1., 1.]), array(0.))", "init_custom": "Init dense",
              "tied": "[ True  True  True  True  True  True  True  True]",
              "tied_grad": "True\n9.0 [[6.]]", "custom_param": "_weight1']"},
}


@pytest.mark.parametrize("backend", BACKEND_ORDER)
def test_chapter_facts(results, backend):
    for sid, fact in MP_FACTS.items():
        assert fact in _step(results, backend, sid)["mp_output"], (sid, fact)
    for sid, fact in NATIVE_FACTS[backend].items():
        assert fact in _step(results, backend, sid)["native_output"], (sid, fact)
    hist = results[backend]["hist"]
    assert set(hist) == {"framework default", "normal(0, 0.01)", "xavier_uniform()", "my_init (custom)"}
    assert all(sum(counts) > 0.99 * 256 * 64 for _r, counts in hist.values())


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
    assert "(the multiparam output reads the same on torch, jax, tensorflow, mxnet)" in text


@pytest.fixture(scope="module")
def written(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("tour-out")
    return tour.write_all(results, out)


def test_html_page_has_a_tab_per_framework_per_step(results, written):
    page = Path(written["html"]).read_text(encoding="utf-8")
    for sid in STEP_IDS:
        assert f'id="step-{sid}"' in page
    for backend in BACKEND_ORDER:
        assert page.count(f'<div class="panel" data-backend="{backend}">') + \
            page.count(f'<div class="panel active" data-backend="{backend}">') == len(STEP_IDS)
    assert page.count('<div class="panels">') == len(STEP_IDS)
    assert page.count('<h3 class="column-head"') == len(STEP_IDS) * len(BACKEND_ORDER)
    assert 'id="layout-toggle"' in page and f"--columns:{len(BACKEND_ORDER)}" in page
    assert page.count("data:image/png;base64,") == 1 + len(BACKEND_ORDER)
    assert "http://" not in page and "https://" not in page       # nothing from the network
    for name in ["init_histograms.png"] + [f"init_hist_{b}.png" for b in BACKEND_ORDER]:
        assert Path(written["html"]).with_name(name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("backend", BACKEND_ORDER)
def test_notebook_per_backend_holds_the_code_that_ran(results, written, backend):
    path = Path(written["html"]).with_name(f"tour_{backend}.ipynb")
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    expected = []
    for step in STEPS:
        expected += [c for c in (step.native_code(backend), step.multiparam_code(backend)) if c]
    assert code == expected
    outputs = ["".join(o["text"]) for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert any("9.0 {'0.weight': array([[6.]], dtype=float32)}" in o for o in outputs)


def test_cli_one_step_one_backend(tmp_path):
    out = subprocess.run([sys.executable, "-m", "multiparam", "tour", "--backend", "torch",
                          "--step", "tied_grad", "--out", str(tmp_path / "t")],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    # the tour itself fits 100 columns; only the closing lines name (long) paths
    assert max(len(line) for line in out.stdout.splitlines() if not line.startswith("[tour]")) <= 100
    assert "Step tied_grad" in out.stdout and "Step build" not in out.stdout
    page = tmp_path / "t" / "index.html"
    assert f"HTML page (a tab per framework per step, or side by side): {page}" in out.stdout
    assert (tmp_path / "t" / "tour_torch.ipynb").exists()


def test_cli_rejects_unknown_step_and_backend():
    for args, valid in ((["--step", "bogus"], "build"), (["--backend", "caffe"], "mxnet")):
        out = subprocess.run([sys.executable, "-m", "multiparam", "tour", *args],
                             capture_output=True, text=True)
        assert out.returncode == 2 and valid in out.stderr and "valid:" in out.stderr


def test_missing_worker_is_reported_in_its_column(monkeypatch, tmp_path, results):
    monkeypatch.setenv("MULTIPARAM_MXNET_PYTHON", str(tmp_path / "nope"))
    monkeypatch.chdir(tmp_path)
    r = tour.collect(["mxnet"], ["build"])
    assert r["mxnet"]["ok"] is False and "tox -e mxnet" in r["mxnet"]["missing"]
    text = tour.render_text(r)
    assert "not available" in text
    # in the page too, while the other columns still render
    both = {"torch": results["torch"], "mxnet": r["mxnet"]}
    page = tour.render_html(both, pictures={})
    assert f"{display_name('mxnet')} is not available here" in page and "tox -e mxnet" in page
    assert f"{display_name('torch')}, its own idiom" in page
