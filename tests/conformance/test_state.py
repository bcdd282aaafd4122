"""Canonical state and portable files, per backend."""
import functools
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import multiparam as mp

from .models import block1, mlp, numpy_forward, shared_net


@pytest.fixture
def m(X):
    return mp.wrap(mlp(), sample_input=X)


def _snapshot(m, kit):
    return {n: kit.read(m, n) for n in m.named_parameters()}


def _same(m, kit, snap):
    for n, v in snap.items():
        np.testing.assert_array_equal(kit.read(m, n), v)


def test_state_dict_is_canonical_copies(m, kit):
    sd = m.state_dict()
    assert list(sd) == list(m.named_parameters())
    for name, arr in sd.items():
        np.testing.assert_array_equal(arr, kit.read(m, name))
        assert arr.shape == m[name].shape
    sd["0.bias"][:] = 123               # a copy: the model is not touched
    assert kit.read(m, "0.bias")[0] != 123


def test_load_state_dict_round_trip(m, kit, X):
    other = mp.wrap(mlp(), sample_input=X)
    other.load_state_dict(m.state_dict())
    for name in m.named_parameters():
        np.testing.assert_array_equal(kit.read(other, name), kit.read(m, name))
    np.testing.assert_allclose(kit.forward(other, X), kit.forward(m, X), rtol=1e-6)


@pytest.fixture
def conversion_threads(monkeypatch):
    """Every value of a write is large enough to convert beside the others
    (the size bar at 0 bytes, three cores); returns the names of the
    threads the conversions ran on."""
    from multiparam import param
    from tests.spies import every_value_ahead
    every_value_ahead(monkeypatch)
    seen = []
    plain = param.Param.native_conversion

    def recorded(self, canonical, owned=False):
        convert = plain(self, canonical, owned)
        if convert is None:
            return None

        def run():
            seen.append(threading.current_thread().name)
            return convert()
        return run

    monkeypatch.setattr(param.Param, "native_conversion", recorded)
    return seen


def _random_state(m):
    rng = np.random.default_rng(7)
    return {name: rng.standard_normal(p.shape).astype(p.dtype) for name, p in m.named_parameters().items()}


def test_load_state_dict_converting_beside_the_writes(m, kit, conversion_threads, monkeypatch):
    monkeypatch.setattr(type(m.adapter), "converts_values_in_parallel", True)   # on every backend here,
    monkeypatch.setattr(type(m.adapter), "writes_in_parallel", False)           # converting, not writing
    truth = _random_state(m)
    m.load_state_dict(truth)
    for name, value in truth.items():       # read back through the framework's own API
        np.testing.assert_array_equal(kit.read(m, name), value, err_msg=name)
    assert any(t.startswith("multiparam-convert") for t in conversion_threads), conversion_threads
    assert threading.current_thread().name in conversion_threads     # and the writing thread converts its share


def test_a_load_converts_kernels_from_the_file_beside_the_writes(m, kit, X, tmp_path, conversion_threads,
                                                                monkeypatch):
    """A load's tensors kept in another layout (a Flax or Keras kernel) are
    converted from the file's mapping one per core, as a transfer's values
    are: the writing thread converts one while workers convert the next,
    and the values land exactly, in order."""
    from tests.spies import record_reads
    monkeypatch.setattr(type(m.adapter), "converts_values_in_parallel", True)   # on every backend here,
    monkeypatch.setattr(type(m.adapter), "writes_in_parallel", False)           # converting, not writing
    path = tmp_path / "w.safetensors"
    mp.save(m, path)
    other = mp.wrap(mlp(), sample_input=X)
    calls = record_reads(monkeypatch)
    mp.load(other, path, verify=False)
    for name in m.named_parameters():
        np.testing.assert_array_equal(kit.read(other, name), kit.read(m, name), err_msg=name)
    # converted from the mapping: read as a view of it and nothing else
    reads = {}
    for how, name in calls:
        reads.setdefault(name, set()).add(how)
    from_mapping = [name for name, hows in reads.items() if hows == {"array"}]
    on_workers = [t for t in conversion_threads if t.startswith("multiparam-convert")]
    if len(from_mapping) >= 2:      # two in a group at least: one of them on a worker
        assert on_workers, (from_mapping, conversion_threads)
    if not from_mapping:            # every value read into place or into fresh memory, in order
        assert not on_workers, conversion_threads


def test_values_convert_on_workers_only_where_the_backend_allows(m, conversion_threads):
    # the memory promise: one converted value per core only where the
    # adapter says so, else one at a time on the writing thread
    m.load_state_dict(_random_state(m))
    on_workers = any(t.startswith("multiparam-convert") for t in conversion_threads)
    assert on_workers == m.adapter.converts_values_in_parallel, conversion_threads


@pytest.fixture
def write_threads(monkeypatch):
    """Every value of a write is large enough to be taken on by a worker
    (the size bar at 0 bytes, three cores); returns the names of the
    threads each parameter's value landed on (a write of a value made
    ready, or a fill of the parameter's own memory)."""
    from multiparam import param
    from tests.spies import every_value_ahead
    every_value_ahead(monkeypatch)
    seen = []
    write_native, fill_validated = param.Param.write_native, param.Param.fill_validated

    def written(self, prepared):
        seen.append(threading.current_thread().name)
        return write_native(self, prepared)

    def filled(self, fill, *shape):
        done = fill_validated(self, fill, *shape)
        if done:
            seen.append(threading.current_thread().name)
        return done

    monkeypatch.setattr(param.Param, "write_native", written)
    monkeypatch.setattr(param.Param, "fill_validated", filled)
    return seen


def test_values_are_written_on_workers_only_where_the_backend_allows(m, kit, write_threads):
    """Writes run beside each other, one per core, only into a backend
    whose writes are copies into each parameter's own memory; every value
    lands exactly, read back through the framework's own API."""
    truth = _random_state(m)
    m.load_state_dict(truth)
    for name, value in truth.items():
        np.testing.assert_array_equal(kit.read(m, name), value, err_msg=name)
    on_workers = [t for t in write_threads if t.startswith("multiparam-write")]
    assert bool(on_workers) == m.adapter.writes_in_parallel, write_threads
    if on_workers:      # and the writing thread writes its share
        assert threading.current_thread().name in write_threads


@pytest.mark.parametrize("verify", [True, False], ids=["checked", "unchecked"])
def test_a_load_writes_on_workers_where_the_backend_allows(m, kit, X, tmp_path, write_threads, verify):
    """A load's tensors go the same way: into a backend whose writes may
    run side by side, read from the file on the workers too, and every
    value lands exactly."""
    path = tmp_path / "w.safetensors"
    mp.save(m, path)
    other = mp.wrap(mlp(), sample_input=X)
    write_threads.clear()
    mp.load(other, path, verify=verify)
    for name in m.named_parameters():
        np.testing.assert_array_equal(kit.read(other, name), kit.read(m, name), err_msg=name)
    on_workers = [t for t in write_threads if t.startswith("multiparam-write")]
    assert bool(on_workers) == other.adapter.writes_in_parallel, write_threads


@pytest.mark.parametrize("verify", [True, False], ids=["checked", "unchecked"])
@pytest.mark.parametrize("stored", [None, "float16"], ids=["same-dtype", "float16-file"])
def test_a_load_makes_its_plain_copies_on_the_writing_thread(m, kit, X, tmp_path, monkeypatch, verify, stored):
    """A file's tensor read straight into a parameter's own memory (same
    layout) is one plain copy, which the framework's kernel spreads over
    every core itself once it is large enough; so is a cast by the
    framework's own conversion (a float16 file into a float32 torch
    model).  With every value large enough to go to a worker and every
    copy large enough for the kernel, each such tensor is still read in
    at its turn on the writing thread, on every backend (a worker beside
    it would only contend), and every value lands exactly."""
    from multiparam import fastcopy, param
    from multiparam.layout import is_identity
    from tests.spies import every_value_ahead
    every_value_ahead(monkeypatch)
    monkeypatch.setattr(fastcopy, "KERNEL_COPY", 0)
    written_on, fill_validated, write_native = {}, param.Param.fill_validated, param.Param.write_native

    def filled(self, fill, *shape):       # read straight into the parameter's memory
        done = fill_validated(self, fill, *shape)
        if done:
            written_on[self.name] = threading.current_thread().name
        return done

    def written(self, prepared):  # or written from a value made ready
        written_on[self.name] = threading.current_thread().name
        return write_native(self, prepared)

    monkeypatch.setattr(param.Param, "fill_validated", filled)
    monkeypatch.setattr(param.Param, "write_native", written)
    path = tmp_path / "w.safetensors"
    if stored is None:
        mp.save(m, path)
    else:       # the model's values, stored in another dtype
        mp.io.save_state({n: p.numpy().astype(stored) for n, p in m.named_parameters().items()}, path)
    other = mp.wrap(mlp(), sample_input=X)
    mp.load(other, path, verify=verify)
    for name in m.named_parameters():
        want = kit.read(m, name)
        if stored is not None:
            want = want.astype(stored).astype(want.dtype)
        np.testing.assert_array_equal(kit.read(other, name), want, err_msg=name)
    plain = [n for n, p in other.named_parameters().items() if is_identity(p.slot.layout, len(p.shape))]
    here = threading.current_thread().name
    assert plain and {n: written_on[n] for n in plain} == {n: here for n in plain}, written_on


def test_writes_into_one_memory_land_in_order(shared_memory_case, kit, monkeypatch):
    """Parameters over one block of memory (not a tie) are written in order
    even where writes run side by side: where they overlap, the later
    value stays, as the framework's own load leaves it.  The writing
    thread's first write is slowed, so a write beside it would land first."""
    import time

    from multiparam import param
    from tests.spies import every_value_ahead
    rng = np.random.default_rng(0)
    m = mp.wrap(shared_memory_case.make())
    state = {name: rng.standard_normal(p.shape).astype(p.dtype) for name, p in m.named_parameters().items()}
    truth = shared_memory_case.make()
    shared_memory_case.load(truth, state)      # one value at a time, in order
    every_value_ahead(monkeypatch)
    writing_thread, write_native = threading.current_thread(), param.Param.write_native

    def slowed(self, prepared):
        if threading.current_thread() is writing_thread:
            time.sleep(0.2)
        return write_native(self, prepared)

    monkeypatch.setattr(param.Param, "write_native", slowed)
    m.load_state_dict(state)
    expected = mp.wrap(truth)
    for name in state:
        np.testing.assert_array_equal(kit.read(m, name), kit.read(expected, name), err_msg=name)


def _kernel_calls(monkeypatch, adapter, primitive: str, took=lambda result: result is not None):
    """Record, at every call of the adapter's ``primitive`` (a framework's
    own kernel, None where it declines), whether the kernel ``took`` the
    array; returns that list and whether the adapter offers its own."""
    from multiparam.adapters.base import Adapter
    adapter_type = type(adapter)
    own = getattr(adapter_type, primitive)
    made = []

    def recorded(self, *args):
        result = own(self, *args)
        made.append(took(result))
        return result

    monkeypatch.setattr(adapter_type, primitive, recorded)
    return made, own is not getattr(Adapter, primitive)


def test_transposed_writes_use_the_frameworks_own_transpose(X, kit, monkeypatch):
    # a value whose native layout is its transpose is made by the
    # framework's own transpose where the adapter offers one (every size
    # here: the size bar at 0), from read-only values that stay as they
    # were.  One kernel comes C-contiguous and one as a transposed view (a
    # value read from a framework of the other layout), so on every backend
    # one of them is stored transposed
    from multiparam import fastcopy
    m = mp.wrap(block1(), sample_input=X)
    monkeypatch.setattr(fastcopy, "SMALL", 0)
    made, offered = _kernel_calls(monkeypatch, m.adapter, "transposed_array")
    # aligned, as a framework's own tensors are, and read-only
    truth = {name: fastcopy.aligned_copy(value) for name, value in _random_state(m).items()}
    truth["2.weight"] = fastcopy.aligned_copy(truth["2.weight"].T).T
    for value in truth.values():
        value.flags.writeable = False
    kept = {name: value.copy() for name, value in truth.items()}
    m.load_state_dict(truth)
    for name, value in kept.items():        # read back through the framework's own API
        np.testing.assert_array_equal(kit.read(m, name), value, err_msg=name)
        np.testing.assert_array_equal(truth[name], value, err_msg=name)
    assert made == [offered], made


def test_value_reads_copy_as_the_adapter_says(m):
    # the fact whole-model reads rely on, against what the framework does
    p = m["0.weight"]
    assert np.shares_memory(p.value, p.value) != m.adapter.value_reads_copy


@pytest.mark.parametrize("contiguous", [False, True], ids=["as-read", "contiguous"])
def test_read_copy_is_the_value_in_fresh_memory(X, monkeypatch, contiguous):
    # what a whole-model read takes where reads copy: the value, bit for
    # bit, in memory nobody else holds; C-contiguous when asked (a file's
    # bytes), a kernel stored transposed then coming from the framework's
    # own transpose where the adapter has one
    from multiparam import fastcopy
    monkeypatch.setattr(fastcopy, "SMALL", 0)
    m = mp.wrap(block1(), sample_input=X)
    made, offered = _kernel_calls(monkeypatch, m.adapter, "read_transposed",
                                  took=lambda result: result is not None and result.flags.c_contiguous)
    for name, p in m.named_parameters().items():
        first, second = p.read_copy(contiguous), p.read_copy(contiguous)
        np.testing.assert_array_equal(first, p.value, err_msg=name)
        assert first.flags.c_contiguous or not contiguous, name
        if m.adapter.value_reads_copy:
            assert not np.shares_memory(first, second), name
    assert any(made) == (contiguous and offered), made


def test_read_into_fills_the_value(X, monkeypatch):
    from multiparam import fastcopy
    monkeypatch.setattr(fastcopy, "SMALL", 0)
    m = mp.wrap(block1(), sample_input=X)
    for name, p in m.named_parameters().items():
        out = fastcopy.empty_aligned(p.shape, p.dtype)
        p.read_into(out)
        np.testing.assert_array_equal(out, p.value, err_msg=name)


@pytest.fixture
def source_reads(m, monkeypatch):
    """What was true at each read ``m``'s adapter made out of ``m``, a copy
    or a view of its memory lent for a while (``lend_array``): how many
    arrays of earlier reads were still alive, and how many values had been
    written (anywhere) before it."""
    import contextlib
    import weakref

    from tests.spies import count_writes
    reads, arrays = [], []
    adapter_type = type(m.adapter)
    plain_read, plain_lend = adapter_type.read_array, adapter_type.lend_array

    def record(array):
        reads.append({"alive": sum(1 for earlier in arrays if earlier() is not None), "written": writes[0]})
        arrays.append(weakref.ref(array))

    def read(self, state, ref):
        array = plain_read(self, state, ref)
        if state is m.adapter_state:
            record(array)
        return array

    @contextlib.contextmanager
    def recorded(lent):
        with lent as view:
            record(view)
            yield view

    def lend(self, state, ref):
        lent = plain_lend(self, state, ref)
        return recorded(lent) if lent is not None and state is m.adapter_state else lent

    monkeypatch.setattr(adapter_type, "read_array", read)
    monkeypatch.setattr(adapter_type, "lend_array", lend)
    writes = count_writes(monkeypatch)
    return reads


def _save(m, X, path):
    mp.save(m, path)
    return mp.io.read_state(path)


def _transfer(m, X, path):
    other = mp.wrap(mlp(), sample_input=X)
    mp.transfer(m, other)
    return other.state_dict()


def _port(m, X, path):
    # the plan path (mp.plan(...).apply(), what mp.transfer takes with rules)
    other = mp.wrap(mlp(), sample_input=X)
    mp.plan(m, other).apply()
    return other.state_dict()


def _no_earlier_read_alive(reads):
    # the file writer drops each tensor before it fetches the next
    return all(r["alive"] == 0 for r in reads)


def _each_read_after_the_write_before(reads):
    # the destination may keep a read as its own storage (Keras adopts a
    # fresh array), so what counts is that each value is read at its write
    return [r["written"] for r in reads] == list(range(len(reads)))


@pytest.mark.parametrize("whole_model_read, one_at_a_time", [(_save, _no_earlier_read_alive),
                                                             (_transfer, _each_read_after_the_write_before),
                                                             (_port, _each_read_after_the_write_before)],
                         ids=["save", "transfer", "port"])
def test_whole_model_reads_hold_one_copy_at_a_time(m, X, tmp_path, source_reads, whole_model_read,
                                                   one_at_a_time):
    # where reads copy, save, transfer and a planned port read each value
    # when they write it out, so they never hold a second model; views cost
    # nothing and may all be taken at once
    truth = m.state_dict()
    source_reads.clear()
    result = whole_model_read(m, X, tmp_path / "m.safetensors")
    for name, value in truth.items():
        np.testing.assert_array_equal(np.asarray(result[name]), value, err_msg=name)
    if m.adapter.value_reads_copy:
        assert len(source_reads) == len(truth)
        assert one_at_a_time(source_reads), source_reads


def test_load_state_dict_checks_everything_first(m, kit):
    snap = _snapshot(m, kit)
    good = m.state_dict()
    good_plus = dict(good, **{"0.bias": np.ones(8, np.float32)})
    bad_shape = dict(good_plus, **{"2.weight": np.zeros((8, 1), np.float32)})
    with pytest.raises(mp.ShapeError, match="2.weight"):
        m.load_state_dict(bad_shape)
    bad_dtype = dict(good_plus, **{"2.bias": np.zeros(1, np.complex64)})
    with pytest.raises(mp.DtypeError):
        m.load_state_dict(bad_dtype)
    missing = {k: v for k, v in good_plus.items() if k != "2.bias"}
    with pytest.raises(mp.LoadError, match="missing keys"):
        m.load_state_dict(missing)
    extra = dict(good_plus, **{"2.bais": np.zeros(1, np.float32)})
    with pytest.raises(mp.LoadError, match="did you mean '2.bias'"):
        m.load_state_dict(extra)
    _same(m, kit, snap)                 # the good entries were not written either
    res = m.load_state_dict(missing, strict=False)
    assert res.missing_keys == ["2.bias"] and res.unexpected_keys == []


def test_save_load_file_bit_identical(m, kit, X, tmp_path):
    path = tmp_path / "w.safetensors"
    mp.save(m, path)
    other = mp.wrap(mlp(), sample_input=X)
    mp.load(other, path)
    for name in m.named_parameters():
        np.testing.assert_array_equal(kit.read(other, name), kit.read(m, name))
    np.testing.assert_array_equal(kit.forward(other, X), kit.forward(m, X))
    from safetensors import safe_open
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
    assert meta["origin_backend"] == m.backend and meta["format"] == "multiparam"


def test_a_load_converts_a_kernel_in_another_layout_straight_from_the_file(m, kit, X, tmp_path, monkeypatch):
    """A tensor whose parameter the framework stores in another layout (a
    Keras or Flax kernel: its native shape is the transpose) is converted
    from the file's mapping into the layout it is kept in: one copy, with
    no fresh read of it first; except where the framework's own transpose
    takes only aligned memory (``transposes_aligned_only``) and the
    tensor's place in the file is not aligned. Any other tensor is read
    once, into the parameter's memory or into memory the framework keeps."""
    from multiparam import checkpoint, fastcopy
    from tests.spies import record_reads
    path = tmp_path / "w.safetensors"
    mp.save(m, path)
    entries = checkpoint.open_checkpoint(path).entries
    aligned_only = m.adapter.transposes_aligned_only
    other = mp.wrap(mlp(), sample_input=X)
    calls = record_reads(monkeypatch)
    mp.load(other, path, verify=False)
    for name in m.named_parameters():
        np.testing.assert_array_equal(kit.read(other, name), kit.read(m, name))
        reads = [how for how, n in calls if n == name]
        # a mapping starts on a page: a tensor's alignment is its offset's
        aligned = entries[name].offset % fastcopy.ALIGNMENT == 0
        if other[name].native_shape != other[name].shape and (aligned or not aligned_only):
            assert reads == ["array"]
        elif other[name].native_shape != other[name].shape:
            assert reads == ["array", "read", "read_into"]
        else:
            # a fresh read fills its new array by read_into
            assert reads in (["read", "read_into"], ["read_into"])


def test_ties_survive_a_round_trip(kit, X, tmp_path):
    m = mp.wrap(shared_net(), sample_input=X)
    m["2.weight"][0, 0] = 5
    path = tmp_path / "tied.safetensors"
    mp.save(m, path)
    sd = mp.io.read_state(path)
    assert sd.ties == [("2.weight", "4.weight"), ("2.bias", "4.bias")]
    assert "4.weight" not in sd                       # stored once
    fresh = mp.wrap(shared_net(), sample_input=X)
    mp.load(fresh, path)
    assert fresh.ties() == sd.ties
    assert kit.read(fresh, "4.weight")[0, 0] == 5



def _ties_unnamed(path):
    """``path`` rewritten with its tie metadata emptied and every byte kept
    where it was (the header padded to its length), so each tensor's
    offset, and so its alignment, is unchanged."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    said = json.dumps(json.loads(data[8:8 + n])["__metadata__"]["ties"]).encode()
    unsaid = json.dumps("[]" + " " * (len(said) - 4)).encode()
    assert data.count(said) == 1 and len(unsaid) == len(said)
    path.write_bytes(data.replace(said, unsaid))


def test_a_tied_checkpoint_reads_its_tensor_once(kit, X, tmp_path, monkeypatch):
    # the file stores a tied group once and names the group in its metadata;
    # the load must read each tensor as it reads the same file that does
    # not name the group, never again to compare the group with itself
    from tests.spies import record_reads
    m = mp.wrap(shared_net(), sample_input=X)
    tied = tmp_path / "tied.safetensors"
    mp.save(m, tied)
    plain = tmp_path / "plain.safetensors"
    plain.write_bytes(tied.read_bytes())
    _ties_unnamed(plain)
    assert mp.io.read_state(plain, verify=False).ties == []
    reads = {}
    for path in (tied, plain):
        calls = record_reads(monkeypatch)
        mp.load(mp.wrap(shared_net(), sample_input=X), path, verify=False)
        reads[path] = sorted(calls)
    assert reads[tied] == reads[plain]



#: run in a fresh process: a framework may warn once per process (torch, of
#: a read-only array: a file's mapping, another model's value), so only a
#: process that has done nothing yet shows whether the first load warns
_FIRST_LOAD = """
import json, sys, warnings
import multiparam as mp
backend, path = sys.argv[1], sys.argv[2]
def model():
    return mp.wrap(mp.nn.Sequential(mp.nn.Dense(4, in_features=4), mp.nn.Dense(2, in_features=4)),
                   backend=backend)
src, dst = model(), model()
with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter("always")
    for _ in range(2):
        mp.save(src, path)
        mp.load(dst, path)
        mp.transfer(src, dst)
# a framework's deprecations of its own calls are its own to fix
print(json.dumps([f"{w.category.__name__}: {w.message}" for w in seen
                  if not issubclass(w.category, DeprecationWarning)]))
"""


def test_saves_loads_and_transfers_show_no_warning(backend, tmp_path):
    # the multiparam this process imported, wherever the child starts
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(mp.__file__)))
    done = subprocess.run([sys.executable, "-c", _FIRST_LOAD, backend, str(tmp_path / "w.safetensors")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []

def _nan_first(v):
    v = v.copy()
    v.flat[0] = np.nan
    return v


TIED_ENTRIES = {        # the values a state dict gives both names of a tie
    "an equal copy": (lambda v: v, np.copy, True),
    "the same NaN": (_nan_first, np.copy, True),
    "another value": (lambda v: v, lambda v: v + 1, False),
}


@pytest.mark.parametrize("given", list(TIED_ENTRIES))
def test_both_names_of_a_tie_must_agree(given, kit, X):
    make_first, make_second, agrees = TIED_ENTRIES[given]
    sd = mp.wrap(shared_net(), sample_input=X).state_dict()
    first = sd["2.weight"] = make_first(sd["2.weight"])
    sd["4.weight"] = make_second(first)
    fresh = mp.wrap(shared_net(), sample_input=X)
    snap = _snapshot(fresh, kit)
    if agrees:
        fresh.load_state_dict(sd)
        np.testing.assert_array_equal(kit.read(fresh, "4.weight"), first)
    else:
        with pytest.raises(mp.LoadError, match="one parameter"):
            fresh.load_state_dict(sd)
        _same(fresh, kit, snap)


def _damage(data: bytes, how: str) -> bytes:
    if how == "truncated":
        return data[: len(data) - 7]
    if how == "altered":                       # one byte of the last tensor flipped
        return data[:-3] + bytes([data[-3] ^ 0xFF]) + data[-2:]
    if how == "not safetensors":
        return b"PK\x03\x04 this is a zip, or a pickle, not safetensors"
    if how == "empty":
        return b""
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["truncated", "altered", "not safetensors", "empty"])
def test_damaged_files_are_rejected_and_change_nothing(how, m, kit, tmp_path):
    path = tmp_path / "w.safetensors"
    mp.save(m, path)
    snap = _snapshot(m, kit)
    bad = tmp_path / "damaged.safetensors"
    bad.write_bytes(_damage(path.read_bytes(), how))
    with pytest.raises(mp.FileFormatError):
        mp.load(m, bad)
    _same(m, kit, snap)


def _with_metadata(path, drop=(), **changes):
    """Rewrite a safetensors file's header metadata in place (the format: an
    8-byte little-endian header length, the JSON header, then the tensors),
    leaving every tensor byte, and so the file's integrity digest, as it was."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header["__metadata__"].update(changes)
    for key in drop:
        del header["__metadata__"][key]
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)            # keep the tensor data 8-byte aligned
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + n:])


def test_a_plain_safetensors_file_loads_by_canonical_name(m, kit, tmp_path):
    """Any safetensors file whose names are canonical (PyTorch's keys)
    loads: multiparam's metadata is optional when reading."""
    from safetensors.numpy import save_file
    want = {n: np.full(a.shape, 0.25, a.dtype) for n, a in m.state_dict().items()}
    plain = tmp_path / "plain.safetensors"
    save_file(want, str(plain))
    mp.load(m, plain)
    for name, value in want.items():
        np.testing.assert_array_equal(kit.read(m, name), value)


def test_a_file_whose_names_match_nothing_shows_both_sides(m, kit, tmp_path):
    from safetensors.numpy import save_file
    snap = _snapshot(m, kit)
    other = tmp_path / "other.safetensors"
    save_file({"encoder." + n: a for n, a in m.state_dict().items()}, str(other))
    with pytest.raises(mp.LoadError) as err:
        mp.load(m, other)
    text = str(err.value)
    assert "missing keys" in text and "unexpected keys" in text and "did you mean" in text
    _same(m, kit, snap)


def test_newer_format_is_rejected(m, kit, tmp_path):
    snap = _snapshot(m, kit)
    newer = tmp_path / "newer.safetensors"
    mp.save(m, newer)
    _with_metadata(newer, format_version="99")
    with pytest.raises(mp.FileFormatError, match="newer"):
        mp.load(m, newer)
    _same(m, kit, snap)


def test_write_is_atomic(m, tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    mp.save(m, path)
    before = path.read_bytes()

    def crash(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(mp.io.os, "replace", crash)
    m["0.bias"][:] = 9
    with pytest.raises(OSError):
        mp.save(m, path)
    assert path.read_bytes() == before          # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]   # no temp left behind


MALFORMED_METADATA = {
    "ties-a-number": dict(ties="5"),
    "ties-null": dict(ties="null"),
    "ties-list-of-numbers": dict(ties="[5]"),
    "ties-not-json": dict(ties="[["),
    "ties-naming-tensors-the-file-lacks": dict(ties='[["ghost.weight", "phantom.weight"]]'),
    "format-version-negative": dict(format_version="-1"),
    "format-version-zero": dict(format_version="0"),
    "format-version-not-a-number": dict(format_version="two"),
    "checksums-not-json": dict(crc32="{"),
    "checksums-for-other-tensors": dict(crc32='{"ghost.weight": "00000000"}'),
    "xxh3-checksums-not-json": dict(xxh3_64="{"),
    "xxh3-checksums-for-other-tensors": dict(xxh3_64='{"ghost.weight": "0000000000000000"}'),
    "xxh3-checksums-not-strings": dict(xxh3_64='{"0.weight": 5}'),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_METADATA))
def test_every_malformed_metadata_field_is_a_file_format_error(m, kit, tmp_path, case):
    snap = _snapshot(m, kit)
    path = tmp_path / "w.safetensors"
    mp.save(m, path)
    _with_metadata(path, **MALFORMED_METADATA[case])
    with pytest.raises(mp.FileFormatError):
        mp.load(m, path)
    _same(m, kit, snap)


def _tensor_bytes(path):
    """Every tensor's bytes, read by safetensors itself."""
    from safetensors.numpy import load_file
    return {n: np.ascontiguousarray(a).tobytes() for n, a in load_file(str(path)).items()}


def test_checksums_are_xxh3_64_of_each_tensor(m, tmp_path):
    """Format 3 stores XXH3-64 of every tensor's bytes (the reference digest,
    computed here by xxhash over the bytes safetensors reads)."""
    import xxhash
    path = tmp_path / "w.safetensors"
    mp.save(m, path)
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        meta = json.loads(f.read(n))["__metadata__"]
    assert meta["format_version"] == "3"
    want = {name: xxhash.xxh3_64_hexdigest(raw) for name, raw in _tensor_bytes(path).items()}
    assert json.loads(meta["xxh3_64"]) == want


@pytest.mark.parametrize("damaged", [False, True])
def test_format_2_files_with_crc32_still_load(m, kit, tmp_path, damaged):
    """A file from multiparam's format 2 (a zlib CRC-32 per tensor) loads,
    and its checksums are still checked."""
    import zlib
    path = tmp_path / "w.safetensors"
    mp.save(m, path)
    crc = {name: f"{zlib.crc32(raw) & 0xFFFFFFFF:08x}" for name, raw in _tensor_bytes(path).items()}
    _with_metadata(path, drop=("xxh3_64",), format_version="2", crc32=json.dumps(crc))
    if damaged:
        data = bytearray(path.read_bytes())
        data[-1] ^= 0x01                      # the last byte of the last tensor
        path.write_bytes(bytes(data))
    before = _snapshot(m, kit)
    target = mp.wrap(mlp(), sample_input=np.zeros((2, 4), np.float32)) if not damaged else m
    if damaged:
        with pytest.raises(mp.FileFormatError, match="damaged"):
            mp.load(m, path)
        _same(m, kit, before)
    else:
        mp.load(target, path)
        _same(target, kit, before)


@pytest.mark.parametrize("where", ["first tensor", "last tensor"])
def test_a_damaged_tensor_anywhere_in_the_stream_changes_nothing(m, kit, tmp_path, where):
    """Checksums are checked before the first write, so a tensor damaged late
    in the file leaves even the tensors before it unwritten."""
    path = tmp_path / "w.safetensors"
    mp.save(m, path)
    data = bytearray(path.read_bytes())
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    spans = sorted(v["data_offsets"] for k, v in header.items() if k != "__metadata__" and v["data_offsets"][1])
    start, _ = spans[0] if where == "first tensor" else spans[-1]
    data[8 + n + start] ^= 0x40
    path.write_bytes(bytes(data))
    m.load_state_dict({k: v + 1 for k, v in m.state_dict().items()})
    snap = _snapshot(m, kit)
    with pytest.raises(mp.FileFormatError, match="damaged"):
        mp.load(m, path)
    _same(m, kit, snap)


OPERATIONS = {
    "save": lambda m, other, path: mp.save(m, path, progress=PROGRESS),
    "load": lambda m, other, path: (mp.save(m, path, progress=False), mp.load(other, path, progress=PROGRESS)),
    "transfer": lambda m, other, path: mp.transfer(m, other, progress=PROGRESS),
}
PROGRESS = None


@pytest.mark.parametrize("op", sorted(OPERATIONS))
@pytest.mark.parametrize("progress", [True, False, None])
def test_progress_bar_only_on_request_or_in_a_terminal(m, X, tmp_path, capfd, monkeypatch, op, progress):
    """``progress=True`` draws a bar of bytes and tensors; ``False`` never
    does; the default draws one only in a terminal (here stderr is not one)."""
    monkeypatch.setattr(__import__(__name__, fromlist=["x"]), "PROGRESS", progress)
    other = mp.wrap(mlp(), sample_input=X)
    capfd.readouterr()
    OPERATIONS[op](m, other, tmp_path / "w.safetensors")
    err = capfd.readouterr().err
    if progress:
        assert f"{op} ({len(m.state_dict())} tensors)" in err and "B/s" in err
    else:
        assert err == ""


def _python_calls(fn) -> int:
    """The Python function calls ``fn()`` makes (a count, not a time), with
    the garbage collector held off: its callbacks (JAX registers one) run
    at collections, which come with allocations, not with the work."""
    import gc
    import sys
    calls = [0]

    def count(frame, event, arg):
        if event == "call":
            calls[0] += 1
    collecting = gc.isenabled()
    gc.disable()
    sys.setprofile(count)
    try:
        fn()
    finally:
        sys.setprofile(None)
        if collecting:
            gc.enable()
    return calls[0]


def _deep_model(layers: int):
    return mp.wrap(mp.nn.Sequential(*[mp.nn.Dense(4, in_features=4) for _ in range(layers)]),
                   sample_input=np.zeros((2, 4), np.float32))


#: whole-model operations, each a function of a model and a folder giving
#: the call to count
WHOLE_MODEL = {
    "load_state_dict": lambda m, d: functools.partial(m.load_state_dict, m.state_dict()),
    "load": lambda m, d: (mp.save(m, d / "w.safetensors"),
                          functools.partial(mp.load, m, d / "w.safetensors", verify=False, progress=False))[1],
    "transfer": lambda m, d: functools.partial(mp.transfer, _deep_model(len(m.named_parameters()) // 2), m,
                                               progress=False),
    "state_dict": lambda m, d: m.state_dict,
    "save": lambda m, d: functools.partial(mp.save, m, d / "s.safetensors", progress=False),
    "init": lambda m, d: functools.partial(m.init, "xavier_uniform", seed=1),
}


@pytest.fixture
def real_client_imported(kit):
    """A real client of the framework built once (a checkpoint model where
    the kit has one, else a real model), so whatever it imports is
    imported (transformers imports torch.distributed.tensor, after which
    multiparam asks of every torch tensor whether it is FSDP's)."""
    builders = list(kit.checkpoint_models().values()) or list(kit.real_models().values())
    builders[0]()


@pytest.mark.parametrize("how", WHOLE_MODEL.values(), ids=list(WHOLE_MODEL))
def test_work_on_every_parameter_grows_with_the_model_not_its_square(how, tmp_path, real_client_imported):
    """A whole-model operation on a model twice as deep makes about twice
    the Python calls, not four times: nothing done per parameter walks the
    whole model.  Each Flax write used to walk the whole pytree (a load of
    1000 leaves took 660 ms), and, once a real client had imported
    torch.distributed.tensor, each torch read and write walked every
    module looking for FSDP's."""
    def calls(layers: int) -> int:
        folder = tmp_path / str(layers)
        folder.mkdir()
        run = how(_deep_model(layers), folder)
        run()     # once first: what is made once per model or per class is not counted
        return _python_calls(run)
    small, large = calls(60), calls(120)
    assert large < 2.1 * small, (small, large)
