"""House rules, checked on the source text (framework-free: runs in ``core``).

1. Only the adapters name a framework.  Every module under ``multiparam/``
   except ``multiparam/adapters/**`` (one package per backend) and
   ``multiparam/tour/steps/**`` (the chapter's snippets, one per framework)
   must not name a backend or framework *in code*: no string literal equal
   to or starting with one (``"torch"``, ``"keras.layers"``, ``"jax_..."``),
   no import of one (``import torch``, ``from .adapters.torch import ...``).
   Docstrings and comments may name them: they explain, they do not decide.
   The names come from the registry (``multiparam.registry.all_backends()``:
   each backend's name, its root packages, its version modules and the
   parts of its display name, ``MXNet/Gluon`` -> ``mxnet``, ``gluon``), so a
   new backend is covered without editing this file.
2. Every built-in kit (``tests/conformance/kits/native_<backend>.py``)
   defines every member of :class:`multiparam.testing.NativeKit`, and the
   conformance suite uses no kit member the protocol does not document.
3. No nested function calls itself, directly or through another function
   nested beside it.  Such a closure holds the cell that holds it: a
   reference cycle, so whatever it captured (a description, and through
   it a model and its arrays) outlives the call until the garbage
   collector happens to run.  Recurse in a module-level function or a
   method, or loop over a stack.
"""
from __future__ import annotations

import ast
import pathlib
from typing import Iterator, List, Set, Tuple

import pytest

import multiparam
from multiparam.registry import BACKENDS, all_backends
from multiparam.testing import DEFAULT_KIT_MODULE, kit_members

PACKAGE = pathlib.Path(multiparam.__file__).resolve().parent
REPO = PACKAGE.parent
CONFORMANCE = REPO / "tests" / "conformance"
#: where naming a framework is the point (paths relative to the package)
MAY_NAME_FRAMEWORKS = ("adapters", "tour/steps")


# -- 1. only the adapters name a framework --------------------------------------------------
def framework_words() -> Set[str]:
    """Every name a backend or its framework goes by, lower case, from the registry."""
    words: Set[str] = set()
    for spec in all_backends().values():
        words.add(spec.name)
        words.update(spec.roots)
        words.update(getattr(spec, "versions", ()))
        words.update(part.strip() for part in getattr(spec, "display", "").split("/"))
    return {w.lower() for w in words if w.strip()}


def _docstring_nodes(tree: ast.AST) -> Set[int]:
    """ids of the string constants that are documentation: a string standing
    alone as a statement (module, class and function docstrings, and the
    attribute docstrings Sphinx reads after an assignment)."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)}


def _imported_paths(node: ast.AST) -> Iterator[List[str]]:
    """The dotted paths an import statement names, as lists of parts."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name.split(".")
    elif isinstance(node, ast.ImportFrom):
        base = node.module.split(".") if node.module else []
        for alias in node.names:
            yield base + [alias.name]


def framework_names_in_code(source: str, words: Set[str]) -> List[Tuple[int, str]]:
    """``[(line, what)]`` for each place ``source`` names a framework in code."""
    tree = ast.parse(source)
    docs = _docstring_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            text = node.value.lower()
            named = sorted(w for w in words if text.startswith(w))
            if named:
                found.append((node.lineno, f"string {node.value[:60]!r} names {named[-1]!r}"))
        for path in _imported_paths(node):
            named = sorted(w for w in words if w in (p.lower() for p in path))
            if named:
                found.append((node.lineno, f"imports {'.'.join(path)!r}, naming {named[0]!r}"))
    return sorted(found)


def _modules_that_must_not_name_frameworks() -> List[pathlib.Path]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if not any(relative == d or relative.startswith(d + "/") for d in MAY_NAME_FRAMEWORKS):
            out.append(path)
    return out


@pytest.mark.parametrize("path", _modules_that_must_not_name_frameworks(),
                         ids=lambda p: p.relative_to(REPO).as_posix())
def test_only_adapters_name_a_framework(path):
    found = framework_names_in_code(path.read_text(encoding="utf-8"), framework_words())
    where = path.relative_to(REPO).as_posix()
    assert not found, (f"{where} names a framework in code; read it from the registry "
                       "(multiparam.registry) or move the code into multiparam/adapters/:\n"
                       + "\n".join(f"  {where}:{line}: {what}" for line, what in found))


def test_framework_words_come_from_the_registry():
    words = framework_words()
    assert {"torch", "jax", "flax", "tensorflow", "keras", "mxnet", "gluon"} <= words


@pytest.mark.parametrize("source,expected", [
    ('"""torch, jax and keras in a docstring are fine."""\n', []),
    ("# import torch in a comment is fine\nx = 1\n", []),
    ("def f():\n    '''Gluon says so.'''\n    return 1\n", []),
    ("x = 1\n'''An attribute docstring naming MXNet.'''\n", []),
    ("name = 'torch'\n", [1]),
    ("root = 'keras.layers.Dense'\n", [1]),
    ("label = 'PyTorch'\n", [1]),
    ("label = f'jax {1}'\n", [1]),
    ("import torch\n", [1]),
    ("import jax.numpy as jnp\n", [1]),
    ("from flax import linen\n", [1]),
    ("from .adapters.mxnet import ADAPTER\n", [1]),
    ("from .adapters import tensorflow\n", [1]),
    ("import importlib\nimportlib.import_module('tensorflow')\n", [2]),
    ("kind = 'structure'\nmsg = 'install multiparam[torch]'\n", []),   # neither equals nor starts with one
])
def test_the_rule_sees_code_and_skips_documentation(source, expected):
    found = framework_names_in_code(source, framework_words())
    assert [line for line, _ in found] == expected, found


# -- 2. the kits and the protocol agree -----------------------------------------------------
def _kit_path(backend: str) -> pathlib.Path:
    return REPO.joinpath(*DEFAULT_KIT_MODULE.format(backend=backend).split(".")).with_suffix(".py")


def _top_level_definitions(tree: ast.Module) -> Tuple[Set[str], Set[str]]:
    """(functions, other names) a module defines at its top level."""
    functions, names = set(), set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return functions, names


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_every_built_in_kit_defines_the_protocol(backend):
    path = _kit_path(backend)
    assert path.exists(), f"the built-in backend {backend!r} has no kit at {path.relative_to(REPO)}"
    functions, names = _top_level_definitions(ast.parse(path.read_text(encoding="utf-8")))
    missing = [member for member, is_function in kit_members().items()
               if member not in (functions if is_function else names)]
    assert not missing, f"{path.relative_to(REPO)} lacks {missing} (see multiparam.testing.NativeKit)"


def test_the_suite_uses_only_documented_kit_members():
    documented = set(kit_members())
    used = {}
    for path in sorted(CONFORMANCE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "kit":
                used.setdefault(node.attr, path.name)
    undocumented = {name: where for name, where in used.items()
                    if name not in documented and not name.startswith("__")}
    assert not undocumented, f"kit members used but not in multiparam.testing.NativeKit: {undocumented}"
    assert len(used) >= 10          # the scan does see the suite's kit calls


# -- 3. no recursive closures -------------------------------------------------------------
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _own_nested_functions(outer: ast.AST) -> List[ast.AST]:
    """The functions defined in ``outer``'s own scope (not inside a
    function nested in it)."""
    found, todo = [], list(ast.iter_child_nodes(outer))
    while todo:
        node = todo.pop()
        if isinstance(node, _FUNCTIONS):
            found.append(node)
        elif not isinstance(node, (ast.Lambda, ast.ClassDef)):
            todo.extend(ast.iter_child_nodes(node))
    return found


def recursive_closures(source: str) -> List[Tuple[int, str]]:
    """``(line, name)`` of every nested function that calls itself,
    directly or through functions nested beside it (a cycle in the graph
    of which sibling each one calls)."""
    found = []
    for outer in ast.walk(ast.parse(source)):
        if not isinstance(outer, _FUNCTIONS):
            continue
        nested = {f.name: f for f in _own_nested_functions(outer)}
        calls = {name: {n.func.id for n in ast.walk(f)
                        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in nested}
                 for name, f in nested.items()}
        for name, f in nested.items():
            reached, todo = set(), list(calls[name])
            while todo:
                callee = todo.pop()
                if callee not in reached:
                    reached.add(callee)
                    todo.extend(calls[callee])
            if name in reached:
                found.append((f.lineno, name))
    return sorted(found)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_nested_function_calls_itself(path):
    found = recursive_closures(path.read_text(encoding="utf-8"))
    where = path.relative_to(REPO).as_posix()
    assert not found, (f"{where} has nested functions that call themselves (a reference cycle per call); "
                       "recurse in a module-level function or a method, or loop over a stack:\n"
                       + "\n".join(f"  {where}:{line}: {name}" for line, name in found))


@pytest.mark.parametrize("source,expected", [
    ("def f():\n    def walk(n):\n        return [walk(c) for c in n]\n    return walk\n", [(2, "walk")]),
    ("def f():\n    def a(n):\n        return b(n)\n    def b(n):\n        return a(n)\n", [(2, "a"), (4, "b")]),
    ("def f():\n    def a(n):\n        def inner():\n            return a(n)\n        return inner\n", [(2, "a")]),
    ("def walk(n):\n    return [walk(c) for c in n]\n", []),              # module level: no cell
    ("def f():\n    def g(n):\n        return h(n)\n    def h(n):\n        return n\n", []),
    ("def f():\n    def memo(x):\n        return (memo, x)\n    return memo\n", []),   # refers, never calls
    ("class C:\n    def walk(self, n):\n        return [self.walk(c) for c in n]\n", []),
])
def test_the_recursion_rule_sees_closures_only(source, expected):
    assert recursive_closures(source) == expected
