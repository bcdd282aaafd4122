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


def test_the_core_imports_multiparam_modules_at_module_level():
    """The core's own imports show its real dependency edges: none hides
    inside a function (only frameworks and optional dependencies may, and
    type-only imports under ``if TYPE_CHECKING``).  The core is what
    ``import multiparam`` loads; tools (cli, tour) may defer their imports
    to start fast."""
    import ast

    listing = "import sys, multiparam; print('\\n'.join(m.__file__ for n, m in sys.modules.items() " \
              "if n.split('.')[0] == 'multiparam'))"
    out = subprocess.run([sys.executable, "-c", listing], capture_output=True, text=True, check=True)
    hidden = []
    for path in sorted(out.stdout.split()):
        tree = ast.parse(open(path).read())
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("multiparam")):
                    hidden.append(f"{path}:{node.lineno} in {func.name}")
                elif isinstance(node, ast.Import) and any(a.name.startswith("multiparam") for a in node.names):
                    hidden.append(f"{path}:{node.lineno} in {func.name}")
    assert hidden == []
