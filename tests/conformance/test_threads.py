"""What is thread-safe: a handle serialises its writes (``set``, indexed and
in-place writes, ``init``, loads), its consistent copies (``p.numpy()``,
``state_dict``) and ``m.grad`` with one lock per handle.  Under a bounded
load of threads, a copy never holds half of a write, and ``m.grad`` never
runs while a parameter changes under it."""
import threading

import numpy as np

import multiparam as mp

ROUNDS = 60
#: large enough that copies release the GIL mid-way (NumPy, torch and XLA do),
#: so an unlocked copy would catch a write half done
WIDTH = 2048


def _run(*targets, timeout=120.0):
    errors = []

    def guarded(fn):
        def run():
            try:
                fn()
            except Exception as exc:     # reported to the test, not lost in a thread
                errors.append(exc)
        return run

    threads = [threading.Thread(target=guarded(t), daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a thread did not finish within the bound"
    assert not errors, errors


def test_copies_never_see_half_a_write_and_grad_never_sees_one():
    X = np.random.default_rng(0).uniform(size=(2, WIDTH)).astype(np.float32)
    m = mp.wrap(mp.nn.Sequential(mp.nn.Dense(WIDTH), mp.nn.ReLU(), mp.nn.Dense(3)), sample_input=X)
    p = m["0.weight"]
    shape, dtype = p.shape, p.dtype
    fills = [np.full(shape, v, dtype) for v in (1.0, -2.0)]
    p.set(fills[0])     # uniform from the start: a reader may run before the first write
    torn = []

    def writer():
        for i in range(ROUNDS):
            p.set(fills[i % 2])

    def adder():
        nonlocal p               # p += 0 rebinds p (to itself: __iadd__ returns the handle)
        for _ in range(ROUNDS // 3):
            p += 0               # read, change, write: one step for other threads
            p[0:2]               # a slice: a copy of one write, never of two

    def reader():
        for _ in range(ROUNDS):
            v = p.numpy()
            if not (np.all(v == v.flat[0])):
                torn.append(v)

    def grads():
        for _ in range(ROUNDS // 10):
            g = m.grad(X)
            assert np.all(np.isfinite(g["0.weight"]))

    _run(writer, adder, reader, grads)
    assert not torn, f"{len(torn)} copies held parts of two writes"


def test_threads_asking_for_a_parameter_first_together_get_one_handle():
    """Params are made at their first access; threads making the same one
    at once all get the one handle every later access returns."""
    m = mp.wrap(mp.nn.Sequential(mp.nn.Dense(4), mp.nn.ReLU(), mp.nn.Dense(3)),
                sample_input=np.zeros((1, 5), np.float32))
    names = list(m.named_parameters())
    for _ in range(ROUNDS // 6):
        m.refresh()
        m.index()       # one description; only its Params are made concurrently
        start = threading.Barrier(4)
        seen = []

        def ask():
            start.wait()
            seen.append([m[name] for name in names])

        _run(*[ask] * 4)
        # Params compare by identity: every thread holds the handles m[name] gives now
        assert all(got == [m[name] for name in names] for got in seen)
