"""The command line without a framework: inspect and diff on files, help
text, backends without importing frameworks, compare skipping a backend it
cannot reach, tolerance failures that say what exceeded."""
from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import pytest

from multiparam import bridge, cli
from multiparam.io import save_state
from multiparam.registry import all_backends


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    a = {"0.weight": rng.normal(size=(3, 2)).astype(np.float32), "0.bias": np.zeros(3, np.float32),
         "2.weight": rng.normal(size=(3, 2)).astype(np.float32)}
    b = dict(a)
    b["0.bias"] = a["0.bias"] + np.float32(1e-3)
    c = {k: v for k, v in a.items() if k != "2.weight"}
    c["extra"] = np.ones(1, np.float32)
    paths = {}
    for name, sd in (("a", a), ("b", b), ("c", c)):
        paths[name] = tmp_path / f"{name}.safetensors"
        save_state(sd, paths[name], ties=[("0.weight", "2.weight")] if name == "a" else ())
    return paths


def test_inspect_a_file(files, capsys):
    assert cli.main(["inspect", str(files["a"])]) == 0
    out = capsys.readouterr().out
    assert "0.weight" in out and "(3, 2)" in out and "float32" in out and "24" in out
    assert "ties: 0.weight = 2.weight" in out


def test_diff_of_a_file_with_itself_is_ok(files, capsys):
    assert cli.main(["diff", str(files["a"]), str(files["a"])]) == 0
    assert "OK: 3 tensors" in capsys.readouterr().out


@pytest.mark.parametrize("other,tolerance,words", [
    ("b", "1e-6", "tensors differ by more than --tolerance 1e-06 (largest 0.001 in '0.bias')"),
    ("c", "1", "1 missing and 1 extra names"),
])
def test_diff_past_tolerance_exits_1_saying_what(files, capsys, other, tolerance, words):
    assert cli.main(["diff", str(files["a"]), str(files[other]), "--tolerance", tolerance]) == 1
    out = capsys.readouterr().out
    assert "FAILED: " in out and words in out


def test_diff_within_tolerance(files):
    assert cli.main(["diff", str(files["a"]), str(files["b"]), "--tolerance", "1e-2"]) == 0


def test_a_missing_file_is_one_line(capsys, tmp_path):
    assert cli.main(["inspect", str(tmp_path / "nothing.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("multiparam inspect: error:") and "Traceback" not in err


def _subparsers():
    parser = cli._parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, action.choices


@pytest.mark.parametrize("command", list(_subparsers()[1]))
def test_every_argument_has_help(command):
    sub = _subparsers()[1][command]
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"multiparam {command}: {action.dest} has no help text"
    assert "``" not in sub.format_help()


def test_help_is_not_raw_restructuredtext():
    text = _subparsers()[0].format_help()
    assert "``" not in text and ":func:" not in text
    for command in _subparsers()[1]:
        assert command in text


def test_backends_imports_no_framework():
    roots = sorted({r for spec in all_backends().values() for r in spec.roots})
    code = ("import sys, io, contextlib\nfrom multiparam.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    main(['backends'])\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {roots!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_compare_skips_a_backend_it_cannot_reach(monkeypatch, capsys):
    name = list(all_backends())[-1]
    monkeypatch.setattr(bridge, "importable_here", lambda b: False)
    monkeypatch.setattr(bridge, "worker_python", lambda b: None)
    assert cli.main(["compare", "mlp", "--backend", name]) == 1
    err = capsys.readouterr().err
    assert f"[compare] skipping {name}: not installed here and no worker environment" in err
    assert "Traceback" not in err
