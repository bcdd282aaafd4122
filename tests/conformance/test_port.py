"""Porting between models written apart, on every backend: ``mp.plan`` with
rules (renames, match by order or shape, split/merge/transpose/reshape/
per-head transforms), ``plan.apply`` and ``mp.check``.

Truth: the NumPy values written (read back the framework's own way,
``kit.read``), the reference spec's NumPy forward against the framework's
own forward (``kit.forward``), and the framework's own listing before and
after a refused plan (``kit.native_arrays``).  The natively written model
and the rules from the reference's names to its names are kit data
(``kit.port_models()``)."""
from __future__ import annotations

import re

import numpy as np
import pytest

import multiparam as mp
from multiparam.layout import input_to_native

from ..architectures import random_values, reference_forward, reference_state, unique


def _wrap(case, adapter):
    return mp.wrap(case.model, sample_input=input_to_native(case.x, adapter.channels_last), **case.options)


def _reference(case):
    """Random reference values by the spec's canonical names (NumPy)."""
    return random_values(reference_state(case.spec, case.x.shape), seed=3)


def _names(case, m):
    """The spec's canonical name -> the model's, by the kit's rules."""
    plan = mp.plan(_reference(case), m, rules=case.rules)
    return {e.sources[0]: e.dst for e in plan.entries}


def _listing(kit, m):
    return [(n, np.array(a, copy=True)) for n, a in kit.native_arrays(m)]


def _assert_unchanged(before, after):
    assert [n for n, _ in before] == [n for n, _ in after]
    for (n, a), (_, b) in zip(before, after):
        assert np.array_equal(a, b), f"{n} changed although the plan was refused"


def test_rules_port_reference_values(port_case, kit, adapter):
    m = _wrap(port_case, adapter)
    values = _reference(port_case)
    plan = mp.plan(values, m, rules=port_case.rules)
    assert plan.complete and not plan.unmatched_src
    assert [e.dst for e in plan.entries] == list(m.named_parameters())
    plan.apply()
    for e in plan.entries:
        np.testing.assert_array_equal(kit.read(m, e.dst), values[e.sources[0]])
    want = reference_forward(port_case.spec, values, port_case.x)
    got = kit.forward(m, input_to_native(port_case.x, adapter.channels_last))
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("match", ["order", "shape"])
def test_match_when_names_say_nothing(port_case, kit, adapter, match):
    m = _wrap(port_case, adapter)
    values = _reference(port_case)
    anonymous = {f"t{i}": v for i, v in enumerate(values.values())}
    plan = mp.plan(anonymous, m, match=match)
    assert plan.complete and {e.how for e in plan.entries} == {match}
    plan.apply()
    names = _names(port_case, m)
    for (ref, v), t in zip(values.items(), anonymous):
        assert plan[names[ref]].sources == [t]
        np.testing.assert_array_equal(kit.read(m, names[ref]), v)


def test_transforms_reach_the_model(port_case, kit, adapter):
    """The source keeps every 2-D weight transposed, every vector as (1, n),
    the first weight as two halves, and all vectors packed in one; the rules
    undo it (transpose, reshape, merge, split) and the framework reads the
    reference values."""
    m = _wrap(port_case, adapter)
    values = _reference(port_case)
    names = _names(port_case, m)
    matrices = [n for n, v in values.items() if v.ndim == 2]
    vectors = [n for n, v in values.items() if v.ndim == 1]
    first, rest = matrices[0], matrices[1:]
    src, rules = {}, []
    top, bottom = np.split(values[first], 2, axis=0)
    src["fused.top"], src["fused.bottom"] = top, bottom
    rules.append(mp.rule([r"^fused\.top$", r"^fused\.bottom$"], names[first], mp.merge(0)))
    for i, n in enumerate(rest):
        src[f"stored_t.{i}"] = values[n].T
        rules.append(mp.rule(rf"^stored_t\.{i}$", names[n], mp.transpose()))
    src["packed"] = np.concatenate([values[n][None] for n in vectors], axis=1)
    rules.append(mp.rule(r"^packed$", [names[n] for n in vectors], mp.reshape((-1,)),
                         mp.split(0, [values[n].size for n in vectors])))
    plan = mp.plan(src, m, rules=rules)
    assert plan.complete and not plan.unmatched_src
    plan.apply()
    for n, v in values.items():
        np.testing.assert_array_equal(kit.read(m, names[n]), v)


def test_per_head_layouts_round_trip(port_case, kit, adapter):
    """A weight kept per head, (H, D, in), and back: heads then merge_heads."""
    m = _wrap(port_case, adapter)
    values = _reference(port_case)
    names = _names(port_case, m)
    w = next(n for n, v in values.items() if v.ndim == 2 and v.shape[0] % 2 == 0)
    src = dict(values)
    src[w] = values[w].reshape(2, values[w].shape[0] // 2, values[w].shape[1])
    plan = mp.plan(src, m, rules=list(port_case.rules) + [mp.rule(re.escape(names[w]) + "$", names[w],
                                                                  mp.merge_heads(0))])
    assert [str(o) for o in plan[names[w]].ops] == ["merge_heads(0)"]
    plan.apply()
    np.testing.assert_array_equal(kit.read(m, names[w]), values[w])


def test_check_reports_outputs_and_gradients(port_case, kit, adapter, backend):
    m = _wrap(port_case, adapter)
    xn = input_to_native(port_case.x, adapter.channels_last)
    ref = mp.wrap(port_case.spec, backend=backend, sample_input=xn)
    before = mp.check(ref, m, port_case.x)
    assert before.output_diff > 1e-3          # written apart, initialised apart
    mp.transfer(ref, m, rules=port_case.rules)
    report = mp.check(ref, m, port_case.x, grads=True, rules=port_case.rules)
    assert report.output_diff <= 1e-5
    assert set(report.grad_diffs) == set(m.named_parameters()) and not report.not_compared
    assert report.max_grad_diff <= 1e-4
    truth = reference_forward(port_case.spec, dict(ref.state_dict()), port_case.x)
    np.testing.assert_allclose(kit.forward(m, xn), truth, atol=1e-5, rtol=1e-5)
    assert "max |diff|" in repr(report)


def _bad_split(values, names):
    w = next(n for n, v in values.items() if v.ndim == 2 and v.shape[0] % 3)
    others = [names[n] for n in values if n != w][:2]
    return {"fused": values[w]}, [mp.rule(r"^fused$", [names[w]] + others, mp.split(0, 3))], names[w]


def _bad_shape(values, names):
    w = next(n for n, v in values.items() if v.ndim == 2 and v.shape[0] != v.shape[1])
    src = dict(values)
    src[w] = values[w].T
    return src, [(re.escape(n) + "$", names[n]) for n in values], names[w]


def _two_sources(values, names):
    w = next(n for n, v in values.items() if v.ndim == 2)
    src = dict(values)
    src["copy"] = values[w]
    return src, [(re.escape(n) + "$", names[n]) for n in values] + [(r"^copy$", names[w])], names[w]


def _overlapping_merge(values, names):
    w = next(n for n, v in values.items() if v.ndim == 2)
    top, bottom = np.split(values[w], 2, axis=0)
    src = {k: v for k, v in values.items() if k != w}
    src.update({"top.a": top, "top.b": top, "bottom": bottom})
    rules = [(re.escape(n) + "$", names[n]) for n in src if n in names]
    rules.append(mp.rule([r"^top\.\w+$", r"^bottom$"], names[w], mp.merge(0)))
    return src, rules, names[w]


BAD_PLANS = {"split-does-not-divide": (_bad_split, "does not divide"),
             "shape-does-not-fit": (_bad_shape, "would get shape"),
             "two-sources-one-destination": (_two_sources, "two sources"),
             "overlapping-merge": (_overlapping_merge, "overlap")}


@pytest.mark.parametrize("bad", list(BAD_PLANS))
def test_a_bad_plan_is_refused_before_any_write(port_case, kit, adapter, bad):
    m = _wrap(port_case, adapter)
    values = _reference(port_case)
    make, words = BAD_PLANS[bad]
    src, rules, dst = make(values, _names(port_case, m))
    before = _listing(kit, m)
    with pytest.raises(mp.PlanError) as info:
        mp.transfer(src, m, rules=rules)
    message = str(info.value)
    assert words in message and repr(dst) in message
    assert "rule #" in message
    _assert_unchanged(before, _listing(kit, m))


def test_unmatched_names_are_listed_with_suggestions(port_case, kit, adapter):
    m = _wrap(port_case, adapter)
    values = _reference(port_case)
    names = _names(port_case, m)
    ref = next(iter(values))
    src = {names[n] + ("_typo" if n == ref else ""): v for n, v in values.items()}
    plan = mp.plan(src, m)
    assert plan.unmatched_dst == {names[ref]: [names[ref] + "_typo"]}
    assert plan.unmatched_src == {names[ref] + "_typo": [names[ref]]}
    assert "unmatched destination parameters" in str(plan)
    before = _listing(kit, m)
    with pytest.raises(mp.PlanError, match=re.escape(repr(names[ref]))):
        plan.apply()
    _assert_unchanged(before, _listing(kit, m))
    plan.apply(strict=False)           # everything else is written
    other = next(n for n in values if n != ref)
    np.testing.assert_array_equal(kit.read(m, names[other]), values[other])


def test_a_plan_is_plain_data(port_case, kit, adapter, tmp_path):
    m = _wrap(port_case, adapter)
    values = _reference(port_case)
    src = mp.wrap(port_case.spec, backend=adapter.name,
                  sample_input=input_to_native(port_case.x, adapter.channels_last))
    src.load_state_dict(values)
    plan = mp.plan(src, m, rules=port_case.rules)
    path = tmp_path / "plan.json"
    plan.to_json(path)
    again = mp.TransferPlan.from_json(path, src, m)
    assert again.to_dict()["entries"] == plan.to_dict()["entries"]
    again.apply()
    for e in plan.entries:
        np.testing.assert_array_equal(kit.read(m, e.dst), values[e.sources[0]])
    with pytest.raises(mp.PlanError, match="lambda"):
        mp.plan(src, m, rules=[lambda name: name]).to_json()


def test_a_split_part_without_a_destination_is_listed(port_case, adapter):
    m = _wrap(port_case, adapter)
    values = _reference(port_case)
    names = _names(port_case, m)
    vectors = [n for n, v in values.items() if v.ndim == 1]
    src = {n: v for n, v in values.items() if v.ndim != 1}
    src["packed"] = np.concatenate([values[n] for n in vectors])
    targets = [names[n] for n in vectors]
    targets[0] += "_typo"
    rules = [(re.escape(n) + "$", names[n]) for n in src if n in names]
    rules.append(mp.rule(r"^packed$", targets, mp.split(0, [values[n].size for n in vectors])))
    plan = mp.plan(src, m, rules=rules)
    assert plan.unmatched_src == {f"packed -> {targets[0]}": [names[vectors[0]]]}
    assert list(plan.unmatched_dst) == [names[vectors[0]]]
