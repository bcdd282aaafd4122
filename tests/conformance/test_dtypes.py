"""Every dtype real checkpoints use, bit for bit: float16, bfloat16, float8
(e4m3fn, e5m2) through ``ml_dtypes``, and float32/float64.

For each dtype a backend's framework can hold, a model converted with
``m.astype`` computes in it (the framework's own forward runs), and values
written as raw bit patterns read back, save, load and move as the same
bits.  A dtype the framework cannot hold is a declared capability
(``dtype:<name>``) and a ``CapabilityError`` naming it, with the model
unchanged.
"""
import numpy as np
import pytest

import multiparam as mp
from multiparam import dtypes

DTYPES = ["float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "float32", "float64"]


def _model(x):
    return mp.wrap(mp.nn.Sequential(mp.nn.Dense(5), mp.nn.ReLU(), mp.nn.Dense(3)), sample_input=x)


def _bits(dtype: np.dtype, shape: tuple, seed: int) -> np.ndarray:
    """Finite values of ``dtype`` from random bit patterns (every bit used)."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 2 ** (8 * dtype.itemsize), size=shape, dtype=np.uint64)
    carrier = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[dtype.itemsize]
    values = raw.astype(carrier).view(dtype)
    finite = np.isfinite(values.astype(np.float64))
    return np.where(finite, values, np.zeros((), dtype)).astype(dtype)


def _as_bits(a: np.ndarray) -> np.ndarray:
    carrier = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    return np.ascontiguousarray(a).view(carrier)


class _Named(str):
    """A dtype's name; ``.name`` and the ml_dtypes dtype on demand (a backend
    without ml_dtypes must still be asked about bfloat16 by name)."""

    @property
    def name(self) -> str:
        return str(self)

    @property
    def np(self) -> np.dtype:
        return dtypes.dtype(str(self))


@pytest.fixture(params=DTYPES)
def dtype(request):
    return _Named(request.param)


def test_astype_then_every_write_and_read_is_bit_exact(backend, adapter, kit, X, dtype, tmp_path):
    m = _model(X)
    cap = adapter.capability(f"dtype:{dtype}")
    if not cap.supported:
        before = {n: p.numpy() for n, p in m.named_parameters().items()}
        with pytest.raises(mp.CapabilityError, match=dtype.name):
            m.astype(dtype)
        for n, p in m.named_parameters().items():
            np.testing.assert_array_equal(p.value, before[n])
        pytest.skip(f"{backend} declares it cannot hold {dtype.name}: {cap.reason}")
    m.astype(dtype)
    dt = dtype.np
    assert {p.dtype for p in m.parameters()} == {dt}
    if dtype.name in kit.FORWARD_DTYPES:
        # the framework computes in it (float8 is storage only everywhere; MXNet's
        # CPU float16 kernels need CuDNN): a NumPy float input takes the model's dtype
        y = kit.to_numpy(m(X))
        assert y.shape == (2, 3) and np.all(np.isfinite(y.astype(np.float64)))
    written = {n: _bits(dt, p.shape, i) for i, (n, p) in enumerate(m.named_parameters().items())}
    for n, v in written.items():
        m[n].set(v)
    for n, v in written.items():
        assert m[n].value.dtype == dt
        np.testing.assert_array_equal(_as_bits(m[n].value), _as_bits(v), err_msg=n)
        np.testing.assert_array_equal(_as_bits(m.state_dict()[n]), _as_bits(v), err_msg=n)
    path = tmp_path / "w.safetensors"
    mp.save(m, path)
    fresh = _model(X).astype(dtype)
    mp.load(fresh, path)
    for n, v in written.items():
        np.testing.assert_array_equal(_as_bits(fresh[n].value), _as_bits(v), err_msg=n)


def test_a_load_reads_every_dtype_the_way_it_reads_float32(adapter, X, dtype, tmp_path, monkeypatch):
    """A load takes the same path at every dtype the framework holds: where
    a float32 tensor is read straight into the parameter's own memory, a
    bfloat16 or float8 one is too (as its bits), not read into fresh
    memory and copied a second time."""
    from tests.spies import record_reads
    cap = adapter.capability(f"dtype:{dtype}")
    if not cap.supported:
        pytest.skip(f"{adapter.name} declares it cannot hold {dtype.name}: {cap.reason}")
    calls = record_reads(monkeypatch)

    def reads_of_a_load(dt) -> dict:
        m = _model(X).astype(dt)
        path = tmp_path / f"{dt}.safetensors"
        mp.save(m, path)
        calls.clear()
        mp.load(m, path, verify=False)
        return {name: [how for how, n in calls if n == name] for name in m.named_parameters()}

    assert reads_of_a_load(dtype.np) == reads_of_a_load(np.dtype("float32"))


#: (the file's dtype, the model's): the checkpoints people hold are mostly
#: bfloat16 and the models they load them into often float32; and back
CASTS = [("bfloat16", "float32"), ("float16", "float32"), ("float32", "bfloat16")]


@pytest.mark.parametrize("stored, held", CASTS, ids=[f"{a}-into-{b}" for a, b in CASTS])
def test_a_load_that_casts_converts_each_tensor_from_the_file_in_one_pass(adapter, X, tmp_path, monkeypatch,
                                                                           stored, held):
    """A checkpoint of another dtype than the model's is converted as the
    frameworks' own loads convert it (round to nearest even: every value
    is NumPy's cast of the file's tensor, bit for bit) and straight from
    the file's mapping: each tensor is read once, as a view handed to the
    conversion, never into fresh memory first and cast after."""
    from tests.spies import record_reads
    stored, held = dtypes.dtype(stored), dtypes.dtype(held)
    cap = adapter.capability(f"dtype:{held.name}")
    if not cap.supported:
        pytest.skip(f"{adapter.name} declares it cannot hold {held.name}: {cap.reason}")
    m = _model(X).astype(held)
    # values every dtype here holds, beside ones the downcast must round
    rng = np.random.default_rng(0)
    values = {n: rng.standard_normal(p.shape).astype(stored) for n, p in m.named_parameters().items()}
    path = tmp_path / f"{stored.name}.safetensors"
    mp.io.save_state(values, path)
    calls = record_reads(monkeypatch)
    mp.load(m, path, verify=False)
    for n, v in values.items():
        assert m[n].value.dtype == held
        np.testing.assert_array_equal(_as_bits(m[n].value), _as_bits(v.astype(held)), err_msg=n)
        assert [how for how, name in calls if name == n] == ["with_tensor"], (n, calls)


def test_a_transfer_that_casts_makes_each_cast_at_its_write(adapter, X):
    """A transfer between models of two dtypes (a float16 model into a
    float32 one) casts as NumPy does, bit for bit, and makes each cast at
    that value's write: the casts of a whole model are never held at once.
    NumPy's allocations are traced: at their peak, beyond what the
    destination keeps as its new memory (JAX may keep a NumPy array's),
    they stay below half the cast model (16 kernels of 16 KiB, a few in
    flight at a time)."""
    import tracemalloc
    stored, held = dtypes.dtype("float16"), dtypes.dtype("float32")
    for dt in (stored, held):
        cap = adapter.capability(f"dtype:{dt.name}")
        if not cap.supported:
            pytest.skip(f"{adapter.name} declares it cannot hold {dt.name}: {cap.reason}")

    def model():
        return mp.wrap(mp.nn.Sequential(*[mp.nn.Dense(64, use_bias=False) for _ in range(16)]),
                       sample_input=np.zeros((2, 64), np.float32))
    src, dst = model().astype(stored), model()
    rng = np.random.default_rng(0)
    for n, p in src.named_parameters().items():
        p.set(rng.standard_normal(p.shape).astype(stored))
    cast_model = sum(p.value.size * held.itemsize for p in dst.parameters())
    tracemalloc.start()
    try:
        mp.transfer(src, dst)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    for n, p in src.named_parameters().items():
        assert dst[n].value.dtype == held
        np.testing.assert_array_equal(dst[n].value, p.value.astype(held), err_msg=n)
    assert peak - kept < cast_model / 2, (peak, kept, cast_model)


def test_a_cast_that_loses_kind_is_refused(X):
    m = _model(X)
    before = m["0.weight"].numpy()
    with pytest.raises(mp.DtypeError):
        m["0.weight"].set(before.astype(np.complex64))
    np.testing.assert_array_equal(m["0.weight"].value, before)


def test_astype_refuses_non_floating_dtypes(X):
    m = _model(X)
    with pytest.raises(mp.DtypeError, match="int8"):
        m.astype("int8")
