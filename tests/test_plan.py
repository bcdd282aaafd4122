"""Porting plans without a framework: transforms against NumPy, rule
semantics, and plans as plain data (JSON round trip)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import multiparam as mp
from multiparam.porting import PlanEntry, TransferPlan, _route, _Tensor, as_rules
from multiparam.transforms import Transform, TransformError, run, shapes_through

A = np.arange(2 * 6 * 4, dtype=np.float32).reshape(2, 6, 4)


def module_level_rule(name):
    """A callable rule importable by its qualified name."""
    return name.replace("old", "new")


@pytest.mark.parametrize("ops,numpy", [
    ([mp.transpose()], lambda a: [a.T]),
    ([mp.transpose((1, 0, 2))], lambda a: [a.transpose(1, 0, 2)]),
    ([mp.reshape((12, -1))], lambda a: [a.reshape(12, 4)]),
    ([mp.split(1, 3)], lambda a: np.split(a, 3, axis=1)),
    ([mp.split(1, [1, 5])], lambda a: np.split(a, [1], axis=1)),
    ([mp.split(1, 3).with_part(2)], lambda a: [np.split(a, 3, axis=1)[2]]),
    ([mp.split(1, 2), mp.merge(1)], lambda a: [a]),
    ([mp.heads(3, axis=1)], lambda a: [a.reshape(2, 3, 2, 4)]),
    ([mp.heads(3, axis=1), mp.merge_heads(1)], lambda a: [a]),
    ([mp.reorder(1, (2, 0, 1))], lambda a: [np.concatenate([a[:, 4:], a[:, :2], a[:, 2:4]], axis=1)]),
], ids=lambda v: "" if callable(v) else " ".join(str(o) for o in v))
def test_transforms_against_numpy(ops, numpy):
    got = run(ops, [A])
    want = numpy(A)
    assert [g.shape for g in got] == [w.shape for w in want]
    assert shapes_through(ops, [A.shape]) == [w.shape for w in want]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("op,words", [
    (mp.split(1, 4), "does not divide"),
    (mp.split(1, [2, 2]), "add up to"),
    (mp.reshape((5, -1)), "cannot reshape"),
    (mp.transpose((0, 1)), "not a permutation"),
    (mp.heads(4, axis=1), "do not divide"),
    (mp.reorder(1, (0, 0, 1)), "not a permutation"),
])
def test_transforms_refuse_shapes_they_cannot_act_on(op, words):
    with pytest.raises(TransformError, match=words):
        op.shapes([A.shape])


def test_merge_refuses_shapes_that_differ_off_its_axis():
    with pytest.raises(TransformError, match="differ off that axis"):
        mp.merge(0).shapes([(2, 3), (2, 4)])


@pytest.mark.parametrize("op", [mp.split(1, [1, 5]), mp.merge(0), mp.reshape((3, -1)), mp.transpose(),
                                mp.heads(2, 0), mp.merge_heads(1), mp.reorder(0, (1, 0))], ids=str)
def test_a_transform_is_plain_data(op):
    again = Transform.from_dict(json.loads(json.dumps(op.to_dict())))
    assert again == op


@pytest.mark.parametrize("rules,name,want", [
    ([(r"^h\.(\d+)\.", r"blocks_\1.")], "h.3.attn.weight", [("blocks_3.attn.weight", [])]),
    ([(r"^h\.", "x."), (r"^x\.", "y.")], "h.0", [("y.0", [])]),               # renames chain, in order
    ([(r"nomatch", "z")], "a.b", [("a.b", [])]),
    ([module_level_rule], "old.w", [("new.w", [])]),
    ([mp.rule(r"qkv\.weight$", ["q.weight", "k.weight", "v.weight"], mp.split(0, 3))], "a.qkv.weight",
     [("a.q.weight", ["split(0, 3, part=0)"]), ("a.k.weight", ["split(0, 3, part=1)"]),
      ("a.v.weight", ["split(0, 3, part=2)"])]),
    ([mp.rule(r"c\.weight$", "d.weight", mp.transpose())], "l.c.weight", [("l.d.weight", ["transpose()"])]),
], ids=["rename", "chain", "no-match", "callable", "split", "transform"])
def test_rule_semantics(rules, name, want):
    items = _route(name, _Tensor(name, (6, 4), np.dtype("float32")), as_rules(rules))
    assert [(it.name, [str(o) for o in it.ops]) for it in items] == want


def test_a_merge_rule_numbers_its_parts_by_pattern():
    rules = as_rules([mp.rule([r"\.q$", r"\.k$"], ".qk", mp.merge(0))])
    parts = {n: _route(n, _Tensor(n, (2,), np.dtype("float32")), rules)[0] for n in ("a.k", "a.q")}
    assert {n: (it.name, it.part[1]) for n, it in parts.items()} == {"a.k": ("a.qk", 1), "a.q": ("a.qk", 0)}


@pytest.mark.parametrize("make,words", [
    (lambda: mp.rule("a", ["b", "c"]), "needs one split into 2 parts"),
    (lambda: mp.rule("a", ["b", "c"], mp.split(0, 3)), "needs one split into 2 parts"),
    (lambda: mp.rule("a", "b", mp.split(0, 2)), "one destination per part"),
    (lambda: mp.rule(["a", "b"], "c"), "needs one merge"),
    (lambda: mp.rule("a", "b", mp.merge(0)), "one pattern per part"),
])
def test_malformed_rules_are_refused_when_written(make, words):
    with pytest.raises(mp.PlanError, match=words):
        make()


def test_rules_from_a_module_with_RULES():
    from multiparam.ports import gpt2_flax
    assert len(as_rules(gpt2_flax)) == len(gpt2_flax.RULES)


def _plan(rules):
    entries = [PlanEntry("q.weight", ["c_attn.weight"], [mp.split(1, 3).with_part(0), mp.transpose()],
                         [(4, 12)], (4, 4), "name", [0], (4, 2, 2)),
               PlanEntry("ln.weight", ["t3"], [], [(4,)], (4,), "order", [])]
    return TransferPlan(entries, {"extra": ["ln.bias"]}, {"ln.bias": ["extra"]}, as_rules(rules), ("name", "order"),
                        src_info={"kind": "state dict", "tensors": {}}, dst_info={"kind": "model", "tensors": {}})


def test_a_plan_round_trips_through_json():
    plan = _plan([mp.rule(r"c_attn\.weight$", ["q.weight", "k.weight", "v.weight"], mp.split(1, 3),
                          mp.transpose()), module_level_rule])
    again = TransferPlan.from_json(plan.to_json())
    assert again.to_dict() == plan.to_dict()
    assert again.rules[1].fn is module_level_rule
    text = str(again)
    assert "q.weight" in text and "split(1, 3, part=0) | transpose()" in text and "[by order]" in text
    assert "unmatched destination parameters (1)" in text and "ln.bias  ~ extra" in text


def test_a_plan_with_a_lambda_refuses_to_be_saved():
    with pytest.raises(mp.PlanError, match="lambda"):
        _plan([lambda n: n]).to_json()


def test_an_unbound_plan_says_how_to_bind_it():
    plan = TransferPlan.from_json(_plan([]).to_json())
    with pytest.raises(mp.PlanError, match="bind"):
        plan.apply()
