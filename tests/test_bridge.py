"""The worker bridge gives the other environment this multiparam and nothing
else from this one (not the site-packages an installed multiparam sits in)."""
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

import multiparam
from multiparam import bridge, registry


def test_worker_path_holds_only_the_package(monkeypatch):
    seen = {}

    def fake_run(cmd, **kw):
        path = kw["env"]["PYTHONPATH"]
        seen["cmd"] = cmd
        seen["entries"] = sorted(os.listdir(path))
        seen["target"] = os.path.realpath(os.path.join(path, "multiparam"))
        return subprocess.CompletedProcess(cmd, 0, stdout="{}\n", stderr="")

    monkeypatch.setattr(bridge.subprocess, "run", fake_run)
    monkeypatch.setenv("MULTIPARAM_MXNET_PYTHON", sys.executable)
    assert bridge.run_worker_json("mxnet", ["backends"]) == {}
    assert seen["cmd"][:3] == [sys.executable, "-m", "multiparam"]
    assert seen["entries"] == ["multiparam"]
    assert seen["target"] == str(Path(multiparam.__file__).resolve().parent)


def test_missing_worker_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("MULTIPARAM_MXNET_PYTHON", str(tmp_path / "no-python"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(bridge.WorkerError, match="tox -e mxnet"):
        bridge.run_worker("mxnet", ["backends"])


def test_worker_environment_folder_comes_from_the_registry(monkeypatch, tmp_path):
    """Without $MULTIPARAM_<NAME>_PYTHON the worker is .tox/<environment>-worker,
    ``environment`` being the backend's in the registry (not its name)."""
    specs = registry.all_backends()
    legacy = {**specs, "mxnet": dataclasses.replace(specs["mxnet"], environment="legacy")}
    monkeypatch.setattr(bridge, "all_backends", lambda: legacy)
    monkeypatch.delenv("MULTIPARAM_MXNET_PYTHON", raising=False)
    monkeypatch.chdir(tmp_path)
    python = tmp_path / ".tox" / "legacy-worker" / "bin" / "python"
    assert bridge.worker_python("mxnet") is None
    python.parent.mkdir(parents=True)
    python.touch()
    assert bridge.worker_python("mxnet") == str(python)
