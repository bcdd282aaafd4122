"""`import multiparam` imports no framework; dispatch needs none either."""
import subprocess
import sys

FRAMEWORKS = ("torch", "jax", "jaxlib", "flax", "tensorflow", "keras", "mxnet")

PROBE = f"""
import sys
import multiparam as mp
mp.available_backends(); mp.set_backend('jax'); mp.get_backend()
with mp.use_backend('mxnet'):
    pass
spec = mp.nn.Sequential(mp.nn.Dense(8), mp.nn.ReLU(), mp.nn.Dense(1))
repr(spec)
try:
    mp.wrap(object())
except mp.UnsupportedModelError:
    pass
loaded = sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r})
print(','.join(loaded))
"""


def test_import_and_dispatch_import_no_framework():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_dispatch_reads_class_modules_only():
    """A class that merely *looks* like a framework's (module name 'torch...')
    is only recognised when that framework is really imported."""
    code = """
import sys, multiparam as mp
class Fake: pass
Fake.__module__ = 'mxnet.gluon.nn'
try:
    mp.wrap(Fake())
except mp.UnsupportedModelError as e:
    print('unsupported', 'mxnet' in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "unsupported False"
