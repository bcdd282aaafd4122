"""``multiparam.sharding.canonical_blocks``: a stored native-layout array
read block by block, seen in canonical layout, against hand-written NumPy
(the canonical array each native layout means), and reading only the
native block each canonical block covers."""
import numpy as np
import pytest

from multiparam.adapters.base import CHANNELS_LAST_KERNEL, DENSE_IN_OUT, SAME, Permuted, channels_last_flatten
from multiparam.sharding import Blocks, canonical_blocks, sliced

C, H, W, OUT = 3, 2, 4, 5
RNG = np.random.default_rng(0)
#: (layout, native array, the canonical array written out by hand)
DENSE = RNG.standard_normal((6, 10)).astype(np.float32)                       # (in, out)
KERNEL = RNG.standard_normal((3, 5, 2, 7)).astype(np.float32)                 # (kh, kw, in, out)
FLAT = RNG.standard_normal((H * W * C, OUT)).astype(np.float32)               # (h*w*c, out) after an NHWC flatten
CASES = {
    "same": (SAME, DENSE, DENSE),
    "dense (in, out)": (DENSE_IN_OUT, DENSE, DENSE.T),
    "conv (kh, kw, in, out)": (CHANNELS_LAST_KERNEL, KERNEL, KERNEL.transpose(3, 2, 0, 1)),
    "dense after a channels-last flatten": (
        Permuted(DENSE_IN_OUT, channels_last_flatten(C, H, W)), FLAT,
        FLAT.reshape(H, W, C, OUT).transpose(3, 2, 0, 1).reshape(OUT, C * H * W)),
}


def blocks_of(shape):
    """Two blocks along each dim (a 2x2... grid), as a sharded parameter asks."""
    grid = [(slice(0, n // 2), slice(n // 2, n)) for n in shape]
    out = [()]
    for choices in grid:
        out = [index + (s,) for index in out for s in choices]
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_canonical_blocks_equal_the_canonical_array(case):
    layout, native, canonical = CASES[case]
    got = canonical_blocks(sliced(native), layout)
    assert got.shape == canonical.shape and got.dtype == canonical.dtype
    for index in blocks_of(canonical.shape):
        np.testing.assert_array_equal(got.block(index), canonical[index])


@pytest.mark.parametrize("case", ["dense (in, out)", "conv (kh, kw, in, out)"])
def test_a_permuted_layout_reads_only_the_native_block_it_covers(case):
    layout, native, canonical = CASES[case]
    asked = []

    def read(index):
        asked.append(index)
        return native[index]
    got = canonical_blocks(Blocks(native.shape, native.dtype, read), layout)
    index = blocks_of(canonical.shape)[-1]
    block = got.block(index)
    assert len(asked) == 1 and block.size == native[asked[0]].size < native.size
    assert np.shares_memory(block, native)          # a transposed view of the native block, no copy
    np.testing.assert_array_equal(block, canonical[index])
