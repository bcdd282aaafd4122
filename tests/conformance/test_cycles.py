"""A handle leaves no reference cycle of its own behind.

Whatever a look, a read or a write makes (a description, its records, the
Params, a plan) is freed by reference counting the moment it is dropped,
not whenever the garbage collector next happens to run.  Checked with the
collector itself: with automatic collection off, what a second run of an
operation leaves for ``gc.collect()`` must hold no multiparam object (the
first run may fill caches).  The frameworks' own cycles are theirs: MXNet
makes a ctypes array type per call, Flax NNX and TensorFlow's autodiff
close over themselves."""
import gc
import types

import pytest

import multiparam as mp


def _wrap(case):
    return mp.wrap(case.model, sample_input=case.x, **case.options)


def _look(m, case, tmp_path):
    m = m.refresh()          # a fresh description; the last one is dropped
    m.named_parameters()
    m.shapes()
    m.state_dict()           # every value read: the description's deferred work runs too


def _write(m, case, tmp_path):
    m.load_state_dict(m.state_dict())


def _file(m, case, tmp_path):
    path = tmp_path / "model.safetensors"
    mp.save(m, path, progress=False)
    mp.load(m, path, progress=False)


def _init(m, case, tmp_path):
    m.init(mp.init.normal(0.0, 0.1), seed=0)


def _grad(m, case, tmp_path):
    m.grad(case.x)


OPERATIONS = {"look": _look, "write": _write, "file": _file, "init": _init, "grad": _grad}


def _ours(obj) -> bool:
    if isinstance(obj, types.FunctionType):
        module = obj.__module__
    elif isinstance(obj, types.CellType):
        try:
            return _ours(obj.cell_contents)
        except ValueError:      # an empty cell
            return False
    else:
        module = type(obj).__module__
    return (module or "").partition(".")[0] == mp.__name__


def _cyclic_garbage(operation) -> list:
    """multiparam's objects in the reference cycles ``operation()`` made
    and dropped, as ``type: qualified name``."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        operation()
        gc.collect()
        return sorted({f"{type(o).__name__}: {getattr(o, '__qualname__', '')}" for o in gc.garbage if _ours(o)})
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
        gc.enable()


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=list(OPERATIONS))
def test_an_operation_leaves_no_reference_cycle_of_its_own(native_case, operation, tmp_path):
    if operation is _grad and native_case.x is None:
        pytest.skip("this case has no sample input to differentiate at")
    m = _wrap(native_case)
    run = lambda: operation(m, native_case, tmp_path)
    run()
    assert _cyclic_garbage(run) == []
