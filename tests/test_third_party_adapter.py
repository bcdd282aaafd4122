"""A third-party backend, installed as a real distribution with an entry
point, is listed, dispatched and handled exactly like a built-in one.

The toy framework and its adapter live in ``tests/third_party/`` (the
example of README "Adding a backend").  Each test installs them into a
temporary directory with a ``.dist-info`` whose ``entry_points.txt`` names
the backend's spec, and runs Python there in a subprocess, so the registry
discovers them through ``importlib.metadata`` as it would after a
``pip install``.  No network, no framework.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import multiparam

TOY = Path(__file__).parent / "third_party"
REPO = Path(multiparam.__file__).resolve().parent.parent
FRAMEWORKS = ("torch", "jax", "jaxlib", "flax", "tensorflow", "keras", "mxnet")


def install(tmp_path: Path, entry_point: str = "toy = toy_multiparam.spec:SPEC") -> Path:
    """The toy framework and adapter as an installed distribution in a
    fresh site directory; returns that directory (for sys.path)."""
    site = tmp_path / "site"
    for package in ("toyframework", "toy_multiparam"):
        shutil.copytree(TOY / package, site / package)
    info = site / "toy_multiparam-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-multiparam\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[multiparam.adapters]\n{entry_point}\n")
    return site


def run(site: Path, code: str) -> dict:
    """Run ``code`` with ``site`` on sys.path; it prints one JSON object."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]))
    env.pop("MULTIPARAM_BACKEND", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=str(site))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_listed_from_its_spec_without_importing_it(tmp_path):
    got = run(install(tmp_path), f"""
import json, sys
import multiparam as mp
names = mp.available_backends()
mp.set_backend("toy")
loaded = sorted(m for m in sys.modules
                if m.split('.')[0] in {FRAMEWORKS!r} + ('toyframework',) or m == 'toy_multiparam.adapter')
print(json.dumps(dict(names=names, backend=mp.get_backend(), loaded=loaded)))
""")
    assert got["names"][:4] == ["torch", "jax", "tensorflow", "mxnet"]
    assert got["names"][4:] == ["toy"]
    assert got["backend"] == "toy"
    assert got["loaded"] == []      # neither its framework nor its adapter, nor any other


def test_wrap_dispatches_to_it_and_every_handle_works(tmp_path):
    got = run(install(tmp_path), """
import json
import numpy as np
import multiparam as mp
import toyframework as tf0

shared = tf0.Dense(3, 3)
net = tf0.Chain(tf0.Dense(4, 3), shared, shared)
m = mp.wrap(net)
out = {"backend": m.backend, "adapter": type(m.adapter).__module__,
       "names": list(m.named_parameters()), "shapes": {k: list(v) for k, v in m.shapes().items()},
       "ties": [list(g) for g in m.ties()]}

# set: canonical (out, in) in, the framework's (in, out) kernel changed in place
kernel = net.layers[0].params["kernel"]
m["0.weight"].set(np.arange(12).reshape(3, 4))
out["set_in_place"] = bool(net.layers[0].params["kernel"] is kernel)
out["kernel"] = kernel.tolist()
try:
    m["0.weight"].set(np.zeros((4, 3)))
except mp.ShapeError as e:
    out["shape_error"] = str(e)
m["0.bias"][1] = 5
m["0.bias"] += 1
out["bias"] = m["0.bias"].value.tolist()
m["2.bias"].set(np.full(3, 7.0))
out["tied_bias"] = net.layers[1].params["bias"].tolist()

# as_numpy converts the framework's own array through this adapter's to_numpy
y = m(np.ones((2, 4), np.float32))
out["output_type"] = type(y).__name__
out["output"] = mp.param.as_numpy(y).shape

# state dicts, init and transfer go through the same write transaction
sd = m.state_dict()
other = mp.wrap(tf0.Chain(tf0.Dense(4, 3), tf0.Dense(3, 3), tf0.Dense(3, 3)))
other.load_state_dict(sd)
out["loaded"] = all(np.array_equal(other[k].value, v) for k, v in sd.items())
other.init(mp.init.constant(0.5))
mp.transfer(other, m)
out["after_transfer"] = [m["0.weight"].value[0, 0].item(), m["0.bias"].value[0].item()]
print(json.dumps(out))
""")
    assert got["backend"] == "toy"
    assert got["adapter"] == "toy_multiparam.adapter"
    assert got["names"] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert got["shapes"] == {"0.weight": [3, 4], "0.bias": [3], "1.weight": [3, 3], "1.bias": [3]}
    assert got["ties"] == [["1.weight", "2.weight"], ["1.bias", "2.bias"]]
    assert got["set_in_place"] and got["kernel"] == [[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]
    assert "cannot set '0.weight' of shape (3, 4) from an array of shape (4, 3)" in got["shape_error"]
    assert got["bias"] == [1.0, 6.0, 1.0]
    assert got["tied_bias"] == [7.0, 7.0, 7.0]
    assert got["output_type"] == "Tensor" and got["output"] == [2, 3]
    assert got["loaded"]
    assert got["after_transfer"] == [0.5, 0.0]   # init: weights 0.5, biases 0


def test_a_class_from_its_roots_is_recognised_only_once_imported(tmp_path):
    got = run(install(tmp_path), """
import json, sys
import multiparam as mp
class LooksLikeToy: pass
LooksLikeToy.__module__ = "toyframework.models"
try:
    mp.wrap(LooksLikeToy())
    result = "wrapped"
except mp.UnsupportedModelError as e:
    result = str(e)
print(json.dumps(dict(result=result, imported="toyframework" in sys.modules)))
""")
    assert "a toyframework Chain" in got["result"]        # listed among what multiparam wraps
    assert not got["imported"]


def test_a_broken_entry_point_is_skipped_with_a_warning(tmp_path):
    site = install(tmp_path, entry_point="toy = toy_multiparam.spec")   # a module, not a spec
    got = run(site, """
import json, warnings
import multiparam as mp
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    names = mp.available_backends()
print(json.dumps(dict(names=names, warnings=[str(w.message) for w in caught])))
""")
    assert got["names"] == ["torch", "jax", "tensorflow", "mxnet"]
    assert len(got["warnings"]) == 1
    assert "toy = toy_multiparam.spec" in got["warnings"][0]
    assert "not a BackendSpec" in got["warnings"][0]


def test_a_spec_may_be_a_plain_mapping():
    """A spec module that does not import multiparam may hold a dict."""
    spec = multiparam.BackendSpec.from_mapping(dict(
        name="toy", module="toy_multiparam.adapter", roots=["toyframework"],
        requires="toyframework", install="pip install toy-multiparam"))
    assert spec.roots == ("toyframework",) and spec.module == "toy_multiparam.adapter"
    with pytest.raises(TypeError, match="unknown BackendSpec fields"):
        multiparam.BackendSpec.from_mapping(dict(name="toy", module="m", roots=(), requires="", install="",
                                                 adapter="m:ADAPTER"))
    with pytest.raises(TypeError, match="roots must be a sequence of strings"):
        multiparam.BackendSpec("toy", "m", "toyframework", "", "")
