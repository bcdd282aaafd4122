"""Two instances of one architecture, built apart: the same canonical names
on every backend (never the framework's global counters: Keras' ``dense_2``,
Gluon's ``dense3_``), and ``mp.transfer`` between them leaves the second
with the first's values (by the framework's own listing) and outputs, as
the framework's own copy would (``load_state_dict``, ``set_weights``)."""
import numpy as np

import multiparam as mp


def test_two_instances_get_the_same_names(twin_model):
    a, b, x = twin_model
    ma, mb = mp.wrap(a, sample_input=x), mp.wrap(b, sample_input=x)
    assert list(ma.named_parameters()) == list(mb.named_parameters())
    assert ma.shapes() == mb.shapes()


def test_transfer_between_them_copies_everything(twin_model, kit):
    a, b, x = twin_model
    ma, mb = mp.wrap(a, sample_input=x), mp.wrap(b, sample_input=x)
    assert not np.allclose(kit.infer(ma, x)[0], kit.infer(mb, x)[0])
    mp.transfer(ma, mb)
    listed_a, listed_b = kit.native_arrays(ma), kit.native_arrays(mb)
    assert len(listed_a) == len(listed_b)
    for (_, va), (_, vb) in zip(listed_a, listed_b):
        np.testing.assert_array_equal(va, vb)
    for ya, yb in zip(kit.infer(ma, x), kit.infer(mb, x)):
        np.testing.assert_array_equal(ya, yb)
