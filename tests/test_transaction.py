"""The write transaction, without a framework: every write is checked
before any is made, and each caller's refusals keep their wording.

Models here come from the toy framework of ``tests/third_party`` (NumPy
arrays in dicts), handled by its adapter directly, without the registry.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

import multiparam as mp
from multiparam.model import Model
from multiparam.transaction import WritePlan

sys.path.insert(0, str(Path(__file__).parent / "third_party"))
import toyframework  # noqa: E402
from toy_multiparam.adapter import ADAPTER  # noqa: E402


def toy_model() -> Model:
    net = toyframework.Chain(toyframework.Dense(4, 3), toyframework.Dense(3, 2))
    return Model(ADAPTER, net, ADAPTER.prepare(net))


def snapshot(m: Model) -> dict:
    return {name: p.numpy() for name, p in m.named_parameters().items()}


def assert_unchanged(m: Model, before: dict) -> None:
    for name, value in before.items():
        np.testing.assert_array_equal(m[name].value, value, err_msg=name)


def test_commit_writes_only_what_was_added_and_nothing_before():
    m = toy_model()
    before = snapshot(m)
    plan = WritePlan()
    plan.add(m["0.bias"], np.ones(3))              # float64 into float32: same kind
    plan.add(m["1.bias"], np.full(2, 2, np.int64))
    assert len(plan) == 2
    assert_unchanged(m, before)                     # nothing yet
    plan.commit()
    assert len(plan) == 0
    np.testing.assert_array_equal(m["0.bias"].value, 1)
    np.testing.assert_array_equal(m["1.bias"].value, 2)
    assert m["0.bias"].dtype == np.float32


def test_add_refuses_shape_and_dtype_and_keeps_nothing():
    m = toy_model()
    plan = WritePlan()
    with pytest.raises(mp.ShapeError, match=r"cannot set '0.weight' of shape \(3, 4\) from an array of shape \(4, 3\)"):
        plan.add(m["0.weight"], np.zeros((4, 3)))
    with pytest.raises(mp.DtypeError, match="cannot write complex128 values into '0.bias' of dtype float32"):
        plan.add(m["0.bias"], np.zeros(3, complex))
    assert len(plan) == 0


def test_load_state_dict_is_all_or_nothing_and_names_the_key():
    m = toy_model()
    before = snapshot(m)
    sd = {k: v + 1 for k, v in before.items()}
    sd["1.weight"] = np.zeros((3, 2), np.float32)                    # the last entry is bad
    with pytest.raises(mp.ShapeError, match=r"'1.weight' does not fit '1.weight': shape \(3, 2\) where the "):
        m.load_state_dict(sd)
    assert_unchanged(m, before)                     # the entries before it were not written
    sd["1.weight"] = np.zeros((2, 3), complex)
    with pytest.raises(mp.DtypeError, match="'1.weight' does not fit: cannot write complex128"):
        m.load_state_dict(sd)
    assert_unchanged(m, before)


def test_init_is_all_or_nothing_and_names_the_initializer():
    m = toy_model()
    before = snapshot(m)
    with pytest.raises(mp.ShapeError, match=r"returned shape \(4, 3\) for '0.weight'"):
        m.init(lambda shape, rng: np.ones(shape[::-1]))
    with pytest.raises(mp.DtypeError, match="returned dtype complex128 for '0.weight'; return real numbers"):
        m.init(lambda shape, rng: np.ones(shape, complex))
    assert_unchanged(m, before)
    m.init(mp.init.constant(3))
    np.testing.assert_array_equal(m["1.weight"].value, 3)
    np.testing.assert_array_equal(m["1.bias"].value, 0)


def test_indexed_and_in_place_writes_check_first():
    m = toy_model()
    p = m["0.weight"]
    before = snapshot(m)
    with pytest.raises(mp.DtypeError):
        p[0, 0] = 1 + 2j
    with pytest.raises(IndexError):
        p[5, 0] = 1.0
    with pytest.raises(mp.ShapeError, match=r"in-place update of '0.weight' would change its shape \(3, 4\) to \(2, 3, 4\)"):
        p += np.ones((2, 3, 4))
    assert_unchanged(m, before)
    p[0, 0] = 42
    p *= 2
    assert p.value[0, 0] == 84


def test_tie_checks_its_pairs_before_tying():
    m = toy_model()
    with pytest.raises(mp.ShapeError, match=r"cannot tie '1.weight' of shape \(2, 3\) to '0.weight' of shape \(3, 4\)"):
        m.tie("1.weight", "0.weight")
    with pytest.raises(mp.MultiparamError, match="itself"):
        m.tie("0.weight", "0.weight")


@pytest.fixture(params=["converts_values_in_parallel", "writes_in_parallel"])
def converting_beside(monkeypatch, request):
    """Every value is converted, or written, beside the others (the size
    bar at 0 bytes, three cores: each group is the writing thread's value
    and two workers'), each way an adapter can allow."""
    from tests.spies import every_value_ahead
    every_value_ahead(monkeypatch)
    monkeypatch.setattr(ADAPTER, request.param, True)


def test_writes_converted_beside_each_other_land_in_order(converting_beside):
    m = toy_model()
    plan = WritePlan()
    plan.add(m["0.weight"], np.full((3, 4), 1.0))
    plan.add(m["0.weight"], np.full((3, 4), 2.0))   # the same parameter again: the later value wins
    plan.add(m["0.bias"], np.full(3, 3.0))
    plan.add(m["1.weight"], np.full((2, 3), 4.0))
    plan.add(m["1.bias"], np.full(2, 5.0))
    plan.commit()
    assert {n: float(p.value.flat[0]) for n, p in m.named_parameters().items()} == {
        "0.weight": 2.0, "0.bias": 3.0, "1.weight": 4.0, "1.bias": 5.0}


@pytest.mark.parametrize("bias, bias_beside", [
    (lambda n, dtype: np.full(n, 3.0, dtype), False),             # a plain copy: the kernel's, every core
    (lambda n, dtype: np.full(2 * n, 3.0, dtype)[::2], True),     # strided: a gathering copy, one core
], ids=["contiguous", "strided"])
def test_plain_copies_are_written_in_turn_where_writes_run_beside(monkeypatch, bias, bias_beside):
    """Where writes run side by side, a copy the framework's kernel spreads
    over every core itself (same layout, contiguous, large enough) is
    written at its turn on the writing thread; a transposing copy (the
    toy's kernels are stored (in, out)) or a strided one goes to a worker."""
    import threading

    from multiparam import fastcopy, param
    from tests.spies import every_value_ahead
    every_value_ahead(monkeypatch)                      # groups of three: one value and two beside it
    monkeypatch.setattr(ADAPTER, "writes_in_parallel", True)
    monkeypatch.setattr(fastcopy, "KERNEL_COPY", 0)     # every plain copy large enough for the kernel
    on_thread, write_native = {}, param.Param.write_native

    def written(self, prepared):
        on_thread[self.name] = threading.current_thread().name
        return write_native(self, prepared)

    monkeypatch.setattr(param.Param, "write_native", written)
    m = toy_model()
    plan = WritePlan()
    plan.add(m["0.weight"], np.full((3, 4), 1.0))     # the group's first: the writing thread's
    plan.add(m["0.bias"], bias(3, m["0.bias"].dtype))  # beside it, unless a plain copy
    plan.add(m["1.weight"], np.full((2, 3), 4.0))     # beside it: transposed into (in, out)
    plan.commit()
    for name, value in {"0.weight": 1.0, "0.bias": 3.0, "1.weight": 4.0}.items():
        np.testing.assert_array_equal(m[name].value, np.full(m[name].shape, value), err_msg=name)
    here = threading.current_thread().name
    assert on_thread["0.weight"] == here
    assert on_thread["1.weight"].startswith("multiparam-write"), on_thread
    assert on_thread["0.bias"].startswith("multiparam-write") == bias_beside, on_thread


def test_a_failed_conversion_raises_and_no_worker_outlives_the_commit(converting_beside, monkeypatch):
    import time

    from multiparam import fastcopy
    m = toy_model()
    plain, running, failing = fastcopy.contiguous, [], np.full(3, 7.0, np.float32)

    def contiguous(native):
        running.append(1)
        try:
            if native is failing:
                raise MemoryError("no room for the converted value")
            time.sleep(0.05)            # the workers' values are still converting when it fails
            return plain(native)
        finally:
            running.pop()

    monkeypatch.setattr(fastcopy, "contiguous", contiguous)
    plan = WritePlan()
    plan.add(m["0.bias"], failing)                  # the writing thread's own value
    plan.add(m["1.weight"], np.ones((2, 3), np.float32))
    plan.add(m["1.bias"], np.ones(2, np.float32))
    with pytest.raises(MemoryError, match="no room"):
        plan.commit()
    assert running == []                            # every conversion ended before commit returned
