"""Cross-framework tests: torch, jax and tensorflow in this process, MXNet
through its worker environment (MULTIPARAM_MXNET_PYTHON, set by tox).  A
missing worker is an error, not a skip: CI must prove all four."""
import pytest

from multiparam import bridge


@pytest.fixture(scope="session")
def mxnet_python():
    python = bridge.worker_python("mxnet")
    if python is None:
        pytest.fail("no MXNet worker environment: run `tox -e mxnet-worker` or set "
                    "MULTIPARAM_MXNET_PYTHON to a Python that has mxnet and multiparam")
    return python
