"""Regenerate ``init_reference.json``: sha256 digests of the float32 bytes
that portable mode must produce, per initializer, at a fixed seed, for the
parameters of ``Sequential(Dense(8, in_features=4), ReLU(), Dense(1))``.

Drawn here with NumPy alone (multiparam.init's own sampling path); every
backend's conformance run compares ``m.init(...)`` on a real model against
it, and the MXNet environment (numpy 1.23) against the same file written
under numpy 2.x, which proves bit-identity across frameworks *and* NumPy
versions.  Run: ``python tests/conformance/data/make_init_reference.py``.
"""
import hashlib
import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

import multiparam as mp  # noqa: E402
from multiparam.init import portable_values  # noqa: E402

SEED = 20240607
#: canonical parameter name -> (shape, role)
PARAMS = {"0.weight": ((8, 4), "weight"), "0.bias": ((8,), "bias"),
          "2.weight": ((1, 8), "weight"), "2.bias": ((1,), "bias")}


def chapter_custom(shape, rng):
    """The chapter's U[5,10] (1/4), 0 (1/2), U[-10,-5] (1/4), as fn(shape, rng)."""
    w = rng.uniform(-10, 10, size=shape)
    return w * (np.abs(w) >= 5)


CASES = {
    "normal(0, 0.01)": lambda: mp.init.normal(0, 0.01),
    "uniform(-1, 1)": lambda: mp.init.uniform(-1, 1),
    "constant(42)": lambda: mp.init.constant(42),
    "zeros()": lambda: mp.init.zeros(),
    "ones()": lambda: mp.init.ones(),
    "xavier_uniform()": lambda: mp.init.xavier_uniform(),
    "xavier_normal(2)": lambda: mp.init.xavier_normal(2.0),
    "kaiming_uniform(sqrt5)": lambda: mp.init.kaiming_uniform(a=math.sqrt(5)),
    "kaiming_normal(fan_out, relu)": lambda: mp.init.kaiming_normal(mode="fan_out", nonlinearity="relu"),
    "truncated_normal(0, 1, -2, 2)": lambda: mp.init.truncated_normal(0, 1, -2, 2),
    "orthogonal()": lambda: mp.init.orthogonal(),
    "lecun_normal()": lambda: mp.init.lecun_normal(),
    "custom fn": lambda: chapter_custom,
}


#: a parameter of several draw blocks (multiparam.init.DRAW_BLOCK values each; the
#: last one partial): Dense(300, in_features=500)'s weight, canonical (300, 500)
BIG = ("0.weight", (300, 500))
#: the elementwise initializers drawn block by block, for BIG
BIG_CASES = ("normal(0, 0.01)", "uniform(-1, 1)", "truncated_normal(0, 1, -2, 2)", "xavier_uniform()",
             "lecun_normal()")


def digest(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()


def expected(case: str) -> dict:
    """What m.init(CASES[case](), seed=SEED) writes, by name: weights get the
    initializer, biases 0 (the weight/neutral split)."""
    init = mp.init.as_initializer(CASES[case]())
    out = {}
    for name, (shape, role) in PARAMS.items():
        if role == "weight":
            values = np.asarray(portable_values(init.resolve(shape), shape, SEED, name))
        else:
            values = np.zeros(shape)
        out[name] = {"shape": list(shape), "sha256": digest(np.asarray(values).astype(np.float32))}
    return out


def expected_big(case: str) -> str:
    """The digest of BIG's weight after m.init(CASES[case](), seed=SEED)."""
    name, shape = BIG
    init = mp.init.as_initializer(CASES[case]()).resolve(shape)
    return digest(np.asarray(portable_values(init, shape, SEED, name)).astype(np.float32))


def main():
    ref = {"seed": SEED, "numpy": np.__version__, "cases": {c: expected(c) for c in CASES},
           "blocks": {"name": BIG[0], "shape": list(BIG[1]), "cases": {c: expected_big(c) for c in BIG_CASES}}}
    path = os.path.join(HERE, "init_reference.json")
    with open(path, "w") as f:
        json.dump(ref, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {path} ({len(CASES)} initializers, numpy {np.__version__})")


if __name__ == "__main__":
    main()
