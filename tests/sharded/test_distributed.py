"""Sharded parameters under torch.distributed (gloo, 2 processes the tests
start): an MLP under FSDP2 and under tensor parallelism, seen and written
through the handles.  Each scenario runs once per session in its workers
(:mod:`tests.sharded.torch_workers`); each test asserts one of its checks
on every rank."""
import pytest

from .torch_workers import WRITES, launch

KINDS = ("fsdp", "tp")
PARAMS = ("0.weight", "0.bias", "2.weight", "2.bias")
SEE = [f"see:{n}:{what}" for n in PARAMS for what in ("shape", "value", "shards", "sharding")]
GRADS = [f"grad:{n}:{what}" for n in PARAMS for what in ("gathered", "shards")]
CHECKS = SEE + GRADS + ["see:summary", "see:gather_limit", "bad:wrong_shape", "grad:native_untouched",
                        "grad:gather_limit"] + [f"write:{w}" for w in WRITES] + [f"write_ahead:{w}" for w in WRITES]

_reports: dict = {}


@pytest.fixture(scope="session")
def reports(tmp_path_factory):
    def get(kind):
        if kind not in _reports:
            _reports[kind] = launch(kind, tmp_path_factory.mktemp(kind))
        return _reports[kind]
    return get


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_rank_passes(reports, kind, check):
    per_rank = reports(kind)
    failed = {rank: r[check][1] for rank, r in enumerate(per_rank) if not r[check][0]}
    assert not failed, f"{kind} {check}: " + "\n".join(f"rank {k}: {v}" for k, v in failed.items())
