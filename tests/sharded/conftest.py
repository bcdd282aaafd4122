"""The sharded suite (``tox -e sharded``): JAX on 8 CPU devices, torch.distributed
on gloo with 2 processes spawned by the tests.

JAX reads ``XLA_FLAGS`` once, at import: tox sets it in ``set_env``; this
sets it too (before anything imports JAX) for a plain ``pytest tests/sharded``."""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
