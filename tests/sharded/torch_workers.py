"""torch.distributed workers for the sharded suite: ``launch`` starts
``world`` processes of this module (RANK and WORLD_SIZE as torchrun sets
them) on the gloo backend, each with a timeout, and returns what each rank
reported.  The ranks meet through a ``FileStore`` in the launch's folder,
not a TCP port: a port picked free by the parent and released could be
taken by any process on the machine before rank 0 binds it (seconds later,
after its imports), and rank 0's TCPStore then fails to listen.

A worker runs every check of one *scenario* on a sharded model and reports
``{check: [ok, detail]}``: truth is torch's own (``DTensor.full_tensor()``,
``placements``) and NumPy.  The tests (``test_distributed.py``) assert on
the reports, one check per test."""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
import traceback
import uuid
from pathlib import Path

import numpy as np

WORLD = 2
#: seconds a whole launch may take (a rank left alone in a collective waits for gloo's timeout)
LAUNCH_TIMEOUT = 300
IN, HIDDEN, OUT = 8, 16, 4
X = np.random.default_rng(0).standard_normal((2, IN)).astype(np.float32)
WRITES = ("set", "setitem", "init", "load_state_dict", "load", "transfer")
#: environment variable: the file where rank 0 writes its TCPStore's port for the others
STORE_ENV = "MULTIPARAM_TEST_STORE"


def launch(scenario: str, out: Path, world: int = WORLD, **args) -> list:
    """Run ``scenario`` on ``world`` ranks; the reports, by rank."""
    out.mkdir(parents=True, exist_ok=True)
    store = out / f".store-{scenario}-{uuid.uuid4().hex}"    # a fresh file: where rank 0 writes its port
    repo = str(Path(__file__).resolve().parents[2])
    procs = []
    for rank in range(world):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                   **{STORE_ENV: str(store)},
                   PYTHONPATH=os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tests.sharded.torch_workers", scenario, str(out), json.dumps(args)],
            env=env, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=LAUNCH_TIMEOUT)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for rank, p in enumerate(procs):
        if p.returncode != 0:
            raise RuntimeError(f"rank {rank} of {scenario!r} failed ({p.returncode}):\n{logs[rank][-4000:]}")
    return [json.loads((out / f"{scenario}.rank{r}.json").read_text()) for r in range(world)]


def assert_loads_on_ranks(path, truth: dict, out: Path, kind: str) -> None:
    """A sharded torch model (``kind``: 'tp' or 'fsdp') on every rank loads
    ``path``: torch's own gather is the truth's bits, placements kept."""
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "expected.npz", **truth)
    reports = launch("load_tp", out, path=str(path), expected=str(out / "expected.npz"), kind=kind)
    assert all(r["values"][0] and r["placements"][0] for r in reports), reports


# -- the sharded models ------------------------------------------------------------------------
def mlp(hidden: int = HIDDEN, out: int = OUT):
    import torch
    from torch import nn
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(IN, hidden), nn.ReLU(), nn.Linear(hidden, out))


def sharded_mlp(kind: str, world: int, hidden: int = HIDDEN, out: int = OUT):
    """An MLP under FSDP2 (``fully_shard``, mesh axis 'fsdp') or tensor
    parallelism (Colwise then Rowwise, mesh axis 'tp')."""
    from torch.distributed.device_mesh import init_device_mesh
    net = mlp(hidden, out)
    if kind == "fsdp":
        from torch.distributed.fsdp import fully_shard
        fully_shard(net, mesh=init_device_mesh("cpu", (world,), mesh_dim_names=("fsdp",)))
    elif kind == "tp":
        from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module
        parallelize_module(net, init_device_mesh("cpu", (world,), mesh_dim_names=("tp",)),
                           {"0": ColwiseParallel(), "2": RowwiseParallel()})
    else:
        raise ValueError(kind)
    return net


def full(t) -> np.ndarray:
    """torch's own gather of a DTensor (a plain tensor as it is)."""
    t = t.full_tensor() if hasattr(t, "full_tensor") else t
    return t.detach().numpy()


def numpy_mlp(values: dict, x: np.ndarray) -> np.ndarray:
    return np.maximum(x @ values["0.weight"].T + values["0.bias"], 0) @ values["2.weight"].T + values["2.bias"]


def numpy_mlp_grads(values: dict, x: np.ndarray) -> dict:
    """d sum(MLP(x)) / d each parameter, in NumPy."""
    z = x @ values["0.weight"].T + values["0.bias"]
    h = np.maximum(z, 0)
    g_out = np.ones((x.shape[0], OUT), np.float32)
    dz = (g_out @ values["2.weight"]) * (z > 0)
    return {"0.weight": dz.T @ x, "0.bias": dz.sum(0), "2.weight": g_out.T @ h, "2.bias": g_out.sum(0)}


def native_grads(kind: str, world: int) -> dict:
    """torch's own gradient of sum(net(X)) on a fresh sharded MLP (the same
    init): ``{name: (p.grad.full_tensor(), this rank's block index of p.grad)}``."""
    import torch
    from torch.distributed.tensor._utils import _compute_local_shape_and_global_offset
    net = sharded_mlp(kind, world)
    net(torch.as_tensor(X)).sum().backward()
    out = {}
    for n, p in net.named_parameters():
        g = p.grad
        shape, offset = _compute_local_shape_and_global_offset(g.shape, g.device_mesh.shape,
                                                               g.device_mesh.get_coordinate(), g.placements)
        out[n] = (full(g), tuple((int(o), int(o) + int(k)) for o, k in zip(offset, shape)))
    return out


def forward(net, x) -> np.ndarray:
    import torch
    with torch.no_grad():
        return full(net(torch.as_tensor(x)))


# -- scenarios ----------------------------------------------------------------------------------
def scenario_handles(out: Path, rank: int, world: int, kind: str) -> dict:
    """What a handle sees of a sharded model, and every write."""
    import torch
    import multiparam as mp
    from multiparam.io import save_state
    from multiparam.sharding import GatherError
    report = {}

    def check(name, fn):
        try:
            ok = fn()
            report[name] = [bool(ok), "" if ok else "check returned False"]
        except Exception:
            report[name] = [False, traceback.format_exc()]

    net = sharded_mlp(kind, world)
    net(torch.as_tensor(X))      # FSDP2 leaves the root unsharded after a forward: the handle reshards
    m = mp.wrap(net)
    natives = dict(net.named_parameters())
    for name, p in m.named_parameters().items():
        t = natives[name]
        check(f"see:{name}:shape", lambda: p.shape == tuple(t.shape))
        check(f"see:{name}:value", lambda: np.array_equal(p.value, full(t)))
        check(f"see:{name}:shards", lambda: all(np.array_equal(b, full(t)[i]) for i, b in p.shards())
              and sum(b.size for _, b in p.shards()) == t.to_local().numel())
        check(f"see:{name}:sharding", lambda: p.is_sharded == any(type(pl).__name__ == "Shard"
                                                                 for pl in t.placements))
    check("see:summary", lambda: "sharding" in str(m.summary()) and f"over '{kind}'=2" in str(m.summary()))

    def gather_refused():
        os.environ["MULTIPARAM_MAX_GATHER"] = "16"
        try:
            m["0.weight"].value
        except GatherError:
            return True
        finally:
            del os.environ["MULTIPARAM_MAX_GATHER"]
        return False
    check("see:gather_limit", gather_refused)

    def wrong_shape_refused():
        before = full(natives["0.weight"])
        try:
            m["0.weight"].set(np.zeros((HIDDEN + 1, IN), np.float32))
        except mp.ShapeError:
            return np.array_equal(full(natives["0.weight"]), before)
        return False
    check("bad:wrong_shape", wrong_shape_refused)

    truth = native_grads(kind, world)
    values = {n: full(t) for n, t in natives.items()}
    reference = numpy_mlp_grads(values, X)
    gathered = m.grad(X)
    sharded = m.grad(X, gather=False)
    for name in natives:
        check(f"grad:{name}:gathered", lambda: np.allclose(gathered[name], truth[name][0], rtol=1e-6, atol=1e-6)
              and np.allclose(gathered[name], reference[name], rtol=1e-5, atol=1e-5))
        check(f"grad:{name}:shards", lambda: [tuple((s.start, s.stop) for s in i) for i, _ in sharded[name]]
              == [truth[name][1]] and all(np.allclose(b, truth[name][0][i], rtol=1e-6, atol=1e-6)
                                          for i, b in sharded[name]))

    def native_grads_untouched():
        # a training loop's own .grad (here: twice the loss's) stays as it was
        (2 * net(torch.as_tensor(X)).sum()).backward()
        before = {n: full(t.grad) for n, t in natives.items()}
        m.grad(X)
        m.grad(X, gather=False)
        return all(np.array_equal(full(natives[n].grad), v) for n, v in before.items())
    check("grad:native_untouched", native_grads_untouched)

    def grad_gather_refused():
        os.environ["MULTIPARAM_MAX_GATHER"] = "16"
        try:
            m.grad(X)
        except GatherError:
            return sum(b.size for rows in m.grad(X, gather=False).values() for _, b in rows) > 0
        finally:
            del os.environ["MULTIPARAM_MAX_GATHER"]
        return False
    check("grad:gather_limit", grad_gather_refused)

    def write(how):
        target = sharded_mlp(kind, world)
        tm = mp.wrap(target)
        placements = {n: t.placements for n, t in target.named_parameters()}
        rng = np.random.default_rng(5)
        values = {n: rng.standard_normal(p.shape).astype(np.float32) for n, p in tm.named_parameters().items()}
        if how == "set":
            for n, v in values.items():
                tm[n].set(v)
        elif how == "setitem":
            for n, v in values.items():
                tm[n][...] = v
        elif how == "init":
            tm.init(mp.init.normal(0, 0.5), seed=3)
            plain = mp.wrap(mlp()).init(mp.init.normal(0, 0.5), seed=3)
            values = {n: p.numpy() for n, p in plain.named_parameters().items()}
        elif how == "load_state_dict":
            tm.load_state_dict(values)
        elif how == "load":
            path = out / f"plain.{kind}.rank{rank}.safetensors"
            save_state(values, path)
            mp.load(tm, path)
        elif how == "transfer":
            src = mp.wrap(mlp())
            src.load_state_dict(values)
            mp.transfer(src, tm)
        after = dict(target.named_parameters())
        same = all(type(after[n]).__name__ in ("DTensor", "Parameter") and hasattr(after[n], "placements")
                   and after[n].placements == placements[n] for n in placements)
        equal = all(np.array_equal(full(after[n]), v) for n, v in values.items())
        close = np.allclose(forward(target, X), numpy_mlp(values, X), rtol=1e-5, atol=1e-5)
        return same and equal and close
    for how in WRITES:
        check(f"write:{how}", lambda: write(how))
        # every value large enough for a worker, three cores: in order on every rank
        check(f"write_ahead:{how}", lambda: _with_every_value_ahead(lambda: write(how)))
    return report


def _with_every_value_ahead(fn):
    # the suites' setting (tests.spies), undone after fn in this worker
    import pytest

    from tests.spies import every_value_ahead
    with pytest.MonkeyPatch.context() as patch:
        every_value_ahead(patch)
        return fn()


def scenario_save_fsdp(out: Path, rank: int, world: int, path: str) -> dict:
    """FSDP2 saves its shards (portable init, seed 11); rank 0 keeps torch's own gather as truth."""
    import multiparam as mp
    net = sharded_mlp("fsdp", world)
    m = mp.wrap(net).init(mp.init.normal(0, 0.5), seed=11)
    m.init(mp.init.normal(0, 0.5), where=r".*bias", seed=12)
    truth = {n: full(t) for n, t in net.named_parameters()}
    mp.save(m, path)
    if rank == 0:
        np.savez(out / "truth.npz", **truth)
    mine = Path(path) / f"shards-{rank + 1:05d}-of-{world:05d}.safetensors"
    from multiparam.checkpoint import read_header
    entries = read_header(mine)[0]
    return {"saved_bytes": [True, sum(e.nbytes for e in entries.values())]}


def scenario_save_dcp(out: Path, rank: int, world: int, native: str, ours: str) -> dict:
    """FSDP2 saves a DCP checkpoint itself (``dcp.save(net.state_dict())``,
    the user's idiom) and through ``mp.save(format="dcp")``; rank 0 keeps
    torch's own gather as truth."""
    import torch.distributed.checkpoint as dcp
    import multiparam as mp
    net = sharded_mlp("fsdp", world)
    m = mp.wrap(net).init(mp.init.normal(0, 0.5), seed=21)
    m.init(mp.init.normal(0, 0.5), where=r".*bias", seed=22)
    truth = {n: full(t) for n, t in net.named_parameters()}
    dcp.save(net.state_dict(), checkpoint_id=native)
    mp.save(m, ours, format="dcp")
    if rank == 0:
        np.savez(out / "truth.npz", **truth)
    return {"saved": [True, ""]}


def scenario_load_tp(out: Path, rank: int, world: int, path: str, expected: str, kind: str = "tp") -> dict:
    """A sharded torch model (tensor parallelism, or FSDP2 with ``kind``)
    loads a checkpoint another mesh saved: values and placements."""
    import multiparam as mp
    net = sharded_mlp(kind, world)
    placements = {n: t.placements for n, t in net.named_parameters()}
    mp.load(mp.wrap(net), path)
    want = np.load(expected)
    values = all(np.array_equal(full(t), want[n]) for n, t in net.named_parameters())
    same = all(t.placements == placements[n] for n, t in net.named_parameters())
    return {"values": [values, ""], "placements": [same, ""]}


def scenario_uneven(out: Path, rank: int, world: int, folder: str) -> dict:
    """Dims the world size does not divide (5 hidden features and 3
    outputs over 2 ranks): FSDP2 pads its shards, tensor parallelism splits
    by ``torch.chunk``'s rule, and multiparam writes each rank's uneven
    block.  FSDP2 saves in multiparam's sharded format and with DCP; each
    loads into tensor parallelism: values (``full_tensor()``) and placements."""
    import multiparam as mp
    hidden, outputs = 5, 3
    m = mp.wrap(sharded_mlp("fsdp", world, hidden, outputs))
    rng = np.random.default_rng(7)
    values = {n: rng.standard_normal(p.shape).astype(np.float32) for n, p in m.named_parameters().items()}
    m.load_state_dict(values)
    report = {}
    for fmt in ("multiparam", "dcp"):
        path = Path(folder) / fmt
        mp.save(m, path, **({"format": "dcp"} if fmt == "dcp" else {}))
        target = sharded_mlp("tp", world, hidden, outputs)
        placements = {n: t.placements for n, t in target.named_parameters()}
        mp.load(mp.wrap(target), path)
        natives = dict(target.named_parameters())
        report[f"{fmt}:values"] = [all(np.array_equal(full(natives[n]), v) for n, v in values.items()), ""]
        report[f"{fmt}:placements"] = [all(natives[n].placements == pl for n, pl in placements.items()), ""]
    return report


def _vm_hwm() -> int:
    """This process's peak resident set (bytes), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _reset_hwm() -> None:
    Path("/proc/self/clear_refs").write_text("5")     # the peak starts again from here


def scenario_peaks(out: Path, rank: int, world: int, size: int, folder: str) -> dict:
    """A (size, size) float32 weight under FSDP2: the extra memory portable
    init takes on each rank (NumPy's allocations, tracemalloc), its values
    against the unsharded draw, and the resident-set growth of a DCP save
    and load of it."""
    import tracemalloc
    import torch
    from torch import nn
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    import multiparam as mp
    from multiparam.init import portable_values
    net = nn.Sequential(nn.Linear(size, size, bias=False))
    fully_shard(net, mesh=init_device_mesh("cpu", (world,), mesh_dim_names=("fsdp",)))
    m = mp.wrap(net)
    init = mp.init.normal(0, 0.02)
    tracemalloc.start()
    tracemalloc.reset_peak()
    m.init(init, seed=5)
    init_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    (index, block), = list(m["0.weight"].shards())
    whole = np.asarray(portable_values(init.resolve((size, size)), (size, size), 5, "0.weight")).astype(np.float32)
    identical = np.array_equal(block, whole[index])
    del whole
    _reset_hwm()
    base = _vm_hwm()
    mp.save(m, folder, format="dcp")
    save_growth = _vm_hwm() - base
    target = nn.Sequential(nn.Linear(size, size, bias=False))
    fully_shard(target, mesh=init_device_mesh("cpu", (world,), mesh_dim_names=("fsdp",)))
    tm = mp.wrap(target)
    _reset_hwm()
    base = _vm_hwm()
    mp.load(tm, folder)
    load_growth = _vm_hwm() - base
    loaded = np.array_equal(list(tm["0.weight"].shards())[0][1], block)
    # multiparam's own sharded format: NumPy's allocations while saving and
    # loading (each rank writes and reads only its own blocks)
    own = str(Path(folder).parent / "multiparam")
    tm.init(mp.init.zeros())
    tracemalloc.start()
    tracemalloc.reset_peak()
    mp.save(m, own)
    own_save_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    mp.load(tm, own)
    own_load_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    own_loaded = np.array_equal(list(tm["0.weight"].shards())[0][1], block)
    return {"init_peak": [True, init_peak], "shard_bytes": [True, block.nbytes],
            "identical": [bool(identical), ""], "dcp_save_growth": [True, save_growth],
            "dcp_load_growth": [True, load_growth], "dcp_loaded": [bool(loaded), ""],
            "own_save_peak": [True, own_save_peak], "own_load_peak": [True, own_load_peak],
            "own_loaded": [bool(own_loaded), ""]}


SCENARIOS = {"fsdp": lambda out, r, w: scenario_handles(out, r, w, "fsdp"),
             "tp": lambda out, r, w: scenario_handles(out, r, w, "tp"),
             "save_fsdp": scenario_save_fsdp, "load_tp": scenario_load_tp, "save_dcp": scenario_save_dcp,
             "peaks": scenario_peaks, "uneven": scenario_uneven}


def main(argv) -> None:
    import torch.distributed as dist
    scenario, out, args = argv[0], Path(argv[1]), json.loads(argv[2]) if len(argv) > 2 else {}
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    timeout = datetime.timedelta(seconds=60)
    meeting = os.environ.get(STORE_ENV)     # unset under torchrun: its MASTER_ADDR and MASTER_PORT
    if meeting:
        dist.init_process_group("gloo", store=_meet(Path(meeting), rank, world, timeout), rank=rank,
                                world_size=world, timeout=timeout)
    else:
        dist.init_process_group("gloo", init_method="env://", rank=rank, world_size=world, timeout=timeout)
    try:
        report = SCENARIOS[scenario](out, rank, world, **args)
        (out / f"{scenario}.rank{rank}.json").write_text(json.dumps(report))
        dist.barrier()      # no rank tears gloo down while another still talks to it
    finally:
        dist.destroy_process_group()
    # The report is written: leave without the interpreter's teardown.  A
    # torch-only script (tensor parallelism, full_tensor(), barrier,
    # destroy_process_group) aborts at exit now and then on this torch
    # ("terminate called without an active exception": a C++ thread still
    # joinable when torch's statics are destroyed), 1 in 12 runs here;
    # with os._exit, 0 in 24.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _meet(meeting: Path, rank: int, world: int, timeout: datetime.timedelta):
    """The ranks' TCPStore: rank 0 listens on a port the OS picks (no
    port chosen in advance that another process could take meanwhile) and
    writes it to ``meeting``; the others read it there.  (A FileStore
    aborted a rank at exit now and then: "terminate called without an
    active exception".)"""
    import torch.distributed as dist
    if rank == 0:
        store = dist.TCPStore("127.0.0.1", 0, world, is_master=True, timeout=timeout, wait_for_workers=False)
        partial = meeting.with_suffix(".partial")
        partial.write_text(str(store.port))
        partial.replace(meeting)        # the others never read half a number
        return store
    deadline = time.monotonic() + timeout.total_seconds()
    while not meeting.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"rank 0 never wrote its store's port to {meeting}")
        time.sleep(0.05)
    return dist.TCPStore("127.0.0.1", int(meeting.read_text()), world, is_master=False, timeout=timeout)


if __name__ == "__main__":
    main(sys.argv[1:])
