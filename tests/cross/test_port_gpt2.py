"""Hugging Face GPT-2 (torch, Conv1D weights, fused c_attn, tied head) ported
into a GPT-2 written apart in Flax linen (tests/ports/flax_gpt2.py) with the
shipped rules (multiparam.ports.gpt2_flax), and back; the truth is each
framework's own forward (``model(ids).logits``, ``module.apply``) and
torch's own ``state_dict``."""
import inspect

import numpy as np
import pytest

import multiparam as mp
from multiparam import cli
from multiparam.ports import gpt2_flax

import torch  # noqa: E402  (torch before tensorflow and jax, as the registry asks)
import transformers  # noqa: E402,F401  (a cross-env dependency, backends/torch.txt: missing is an error)

from ..ports import factories  # noqa: E402


def _torch_logits(model, ids):
    with torch.no_grad():
        return model(torch.as_tensor(ids)).logits.numpy()


def _flax_logits(m, ids):
    return np.asarray(m.native.apply(m.flax.variables, ids))


@pytest.fixture
def ported():
    hf = factories.hf_gpt2()
    module, ids = factories.flax_gpt2()
    dst = mp.wrap(module, sample_input=ids)
    plan = mp.plan(hf, dst, rules=gpt2_flax)
    plan.apply()
    return hf, dst, plan, ids


def test_the_plan_lists_every_parameter_and_the_rules_fit_one_screen(ported):
    hf, dst, plan, _ = ported
    assert plan.complete and not plan.unmatched_src
    assert [e.dst for e in plan.entries] == list(dst.named_parameters())
    assert "split(1, 3, part=0) | transpose()" in str(plan)
    assert len(inspect.getsource(gpt2_flax).split("RULES = [")[1].split("]\n")[0].splitlines()) <= 25


def test_logits_equal_the_framework_forward(ported):
    hf, dst, plan, ids = ported
    np.testing.assert_allclose(_flax_logits(dst, ids), _torch_logits(hf, ids), atol=1e-5, rtol=0)
    report = mp.check(hf, dst, ids, grads=True, plan=plan)
    assert report.output_diff <= 1e-5
    assert set(report.grad_diffs) == set(dst.named_parameters())
    assert report.max_grad_diff <= 1e-4


def test_and_back_bit_for_bit(ported):
    hf, dst, _, ids = ported
    fresh = factories.hf_gpt2(seed=5)
    back = mp.plan(dst, fresh, rules=gpt2_flax.REVERSE)
    assert back.complete and not back.unmatched_src
    back.apply()
    want, got = hf.state_dict(), fresh.state_dict()
    assert list(want) == list(got)
    for k in want:
        assert torch.equal(want[k], got[k]), k
    np.testing.assert_array_equal(_torch_logits(fresh, ids), _torch_logits(hf, ids))


def test_a_saved_plan_runs_on_other_instances(ported, tmp_path):
    hf, dst, plan, ids = ported
    path = tmp_path / "plan.json"
    plan.to_json(path)
    other = mp.wrap(factories.flax_gpt2(seed=3)[0], sample_input=ids)
    mp.TransferPlan.from_json(path, hf, other).apply()
    np.testing.assert_array_equal(_flax_logits(other, ids), _flax_logits(dst, ids))


def test_the_cli_ports_checks_saves_and_inspects(tmp_path, capsys):
    plan, out = tmp_path / "plan.json", tmp_path / "flax.safetensors"
    argv = ["port", "tests.ports.factories:hf_gpt2", "tests.ports.factories:flax_gpt2",
            "--rules", "multiparam.ports.gpt2_flax", "--check", "--inputs", "tests.ports.factories:gpt2_ids",
            "--save-plan", str(plan), "--out", str(out)]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "TransferPlan: 36 destination parameters" in text and "CheckReport" in text
    assert len(mp.TransferPlan.from_json(plan)) == 36
    assert cli.main(["inspect", str(out)]) == 0
    assert "block_0.attn.query.weight" in capsys.readouterr().out
    assert cli.main(["diff", str(out), "tests.ports.factories:flax_gpt2"]) == 1     # other weights
    assert "FAILED: " in capsys.readouterr().out
