"""A user's own layer class: its parameters are shown, read, written and
moved as they are; init refuses to guess what they mean until the class is
declared with mp.register_layer, and then treats them as declared."""
import numpy as np
import pytest
import torch
from torch import nn

import multiparam as mp


class ScaleNorm(nn.Module):
    """A norm with a learned 1-D gain and a projection stored (in, out)."""

    def __init__(self, d_in=4, d_out=3):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(d_in))
        self.proj = nn.Parameter(torch.randn(d_in, d_out))

    def forward(self, x):
        return (x / x.norm(dim=-1, keepdim=True) * self.gain) @ self.proj


@pytest.fixture(autouse=True)
def _forget():
    yield
    mp.unregister_layer(ScaleNorm)


def test_unknown_parameters_are_shown_read_written_and_saved(tmp_path):
    m = mp.wrap(ScaleNorm())
    assert list(m.named_parameters()) == ["gain", "proj"]
    m["proj"][0, 0] = 7.0
    assert m.native.proj[0, 0].item() == 7.0
    mp.save(m, tmp_path / "w.safetensors")
    other = mp.wrap(ScaleNorm())
    mp.load(other, tmp_path / "w.safetensors")
    np.testing.assert_array_equal(other["proj"].value, m["proj"].value)


def test_init_refuses_to_guess_and_names_the_class():
    m = mp.wrap(ScaleNorm())
    before = {n: p.numpy() for n, p in m.named_parameters().items()}
    with pytest.raises(mp.init.InitError, match="ScaleNorm.*register_layer"):
        m.init(mp.init.normal(0, 0.02))
    with pytest.raises(mp.init.InitError, match="fans"):
        m.init(mp.init.xavier_uniform(), where=ScaleNorm)
    for n, p in m.named_parameters().items():
        np.testing.assert_array_equal(p.value, before[n])
    m.init(mp.init.constant(0.5), where="gain")              # a name regex selects it as it is
    assert np.all(m["gain"].value == 0.5)


def test_a_declared_class_initialises_by_role_and_true_fans():
    mp.register_layer(ScaleNorm, gain="scale", proj="dense_in_out")
    m = mp.wrap(ScaleNorm(d_in=64, d_out=8))
    m.init(mp.init.xavier_uniform(), seed=0)
    assert np.all(m["gain"].value == 1)
    bound = np.sqrt(6 / (64 + 8))
    assert np.abs(m["proj"].value).max() <= bound
    m.init(mp.init.kaiming_uniform(a=0), seed=0)             # fan_in is the stored rows: 64
    assert 0.9 * np.sqrt(6 / 64) < np.abs(m["proj"].value).max() <= np.sqrt(6 / 64)
