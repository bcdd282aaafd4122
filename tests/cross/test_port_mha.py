"""torch ``nn.MultiheadAttention`` (fused ``in_proj_weight``) ported into
Keras 3's ``MultiHeadAttention`` and Flax's ``MultiHeadDotProductAttention``
(per-head (E, H, D) kernels) with the shipped rules
(multiparam.ports.mha), and back; the truth is each framework's own forward
and torch's own ``state_dict``."""
import numpy as np
import pytest
import torch

import multiparam as mp
from multiparam.ports import mha

from ..ports import attention

WIDTH, HEADS, TOKENS = 8, 2, 5
X = np.random.default_rng(3).normal(size=(2, TOKENS, WIDTH)).astype(np.float32)


def _keras():
    return attention.keras_attention(WIDTH, HEADS, TOKENS), {}


def _flax():
    return attention.flax_attention(HEADS), {"sample_input": X}


def _keras_forward(m):
    return np.asarray(m.native(X, training=False))


def _flax_forward(m):
    return np.asarray(m.native.apply(m.flax.variables, X))


#: destination -> (its native model and wrap options, its own forward, rules there, rules back)
DESTINATIONS = {"keras": (_keras, _keras_forward, mha.TO_KERAS, mha.FROM_KERAS),
                "flax": (_flax, _flax_forward, mha.TO_FLAX, mha.FROM_FLAX)}


def _torch_forward(net):
    with torch.no_grad():
        return net(torch.as_tensor(X)).numpy()


@pytest.fixture(params=list(DESTINATIONS))
def ported(request):
    build, forward, there, back = DESTINATIONS[request.param]
    src = attention.torch_attention(WIDTH, HEADS)
    native, options = build()
    dst = mp.wrap(native, **options)
    plan = mp.plan(src, dst, rules=there)
    return src, dst, plan, forward, back


def test_the_plan_splits_the_fused_projection(ported):
    src, dst, plan, _, _ = ported
    assert plan.complete and not plan.unmatched_src
    assert sorted(str(o) for e in plan.entries for o in e.ops) == sorted(
        f"split(0, 3, part={k})" for k in range(3) for _ in range(2))


def test_outputs_equal_the_framework_forward(ported):
    src, dst, plan, forward, _ = ported
    assert np.max(np.abs(forward(dst) - _torch_forward(src))) > 1e-3
    plan.apply()
    np.testing.assert_allclose(forward(dst), _torch_forward(src), atol=1e-5, rtol=0)
    report = plan.check(X, grads=True)
    assert report.output_diff <= 1e-5 and report.max_grad_diff <= 1e-4
    assert set(report.grad_diffs) == set(dst.named_parameters())


def test_and_back_bit_for_bit(ported):
    src, dst, plan, _, back = ported
    plan.apply()
    fresh = attention.torch_attention(WIDTH, HEADS, seed=9)
    returned = mp.plan(dst, fresh, rules=back)
    assert returned.complete and not returned.unmatched_src
    returned.apply()
    for k, v in src.state_dict().items():
        assert torch.equal(v, fresh.state_dict()[k]), k
