"""Models written natively, as the chapter writes each framework: wrap sees
the names, shapes, values, ties and counts the framework itself has.  One
test per model of the kit's ``chapter_models()``."""
import numpy as np

import multiparam as mp


def _wrap(case):
    return mp.wrap(case.model, sample_input=case.x, **case.options)


def test_names_and_shapes_are_the_expected_ones(native_case, backend):
    m = _wrap(native_case)
    assert m.backend == backend
    assert list(m.shapes().items()) == list(native_case.shapes.items())


def test_values_are_what_the_framework_reads(native_case, kit):
    m = _wrap(native_case)
    for name in native_case.shapes:
        np.testing.assert_array_equal(m[name].value, kit.read(m, name), err_msg=name)


def test_ties_are_the_frameworks(native_case, kit):
    m = _wrap(native_case)
    assert m.ties() == native_case.ties
    for group in native_case.ties:
        assert all(m[n] is m[group[0]] for n in group)
        # one parameter, as the framework sees it: a write through one name reaches the others
        m[group[-1]][(0,) * len(m[group[0]].shape)] = 7.0
        for n in group:
            assert kit.read(m, n).flat[0] == 7.0, n


def test_trainable_count_is_the_frameworks(native_case, kit):
    m = _wrap(native_case)
    assert m.num_parameters(trainable=True) == kit.count(m)


def test_framework_listing_matches_native_names(native_case, kit):
    """The framework's own collect-all idiom (named_parameters, weights,
    collect_params, the pytree) lists exactly the native names, native
    shapes and values the handles report."""
    m = _wrap(native_case)
    listing = {name: np.asarray(array) for name, array in kit.native_arrays(m)}
    ours = {p.native_name: p for p in m.named_parameters().values()}
    assert sorted(ours) == sorted(listing)
    for native_name, p in ours.items():
        assert tuple(p.native_shape) == tuple(listing[native_name].shape), native_name
        np.testing.assert_array_equal(kit.to_numpy(p.native), listing[native_name], err_msg=native_name)
