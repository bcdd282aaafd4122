"""Models written natively, as the chapter writes each framework: wrap sees
the names, shapes, values, ties and counts the framework itself has."""
import numpy as np
import pytest

import multiparam as mp


def _cases(kit):
    return {c.label: c for c in kit.chapter_models()}


def test_chapter_models(kit, backend):
    for case in kit.chapter_models():
        m = mp.wrap(case.model, sample_input=case.x, **case.options)
        assert m.backend == backend
        assert m.shapes() == case.shapes, case.label
        assert list(m.shapes()) == list(case.shapes), case.label
        assert m.ties() == case.ties, case.label
        assert m.num_parameters(trainable=True) == kit.count(m), case.label
        for name in case.shapes:
            np.testing.assert_array_equal(m[name].value, kit.read(m, name), err_msg=case.label)
        for group in case.ties:
            assert all(m[n] is m[group[0]] for n in group)


def test_framework_listing_matches_native_names(adapter, kit):
    """The framework's own collect-all idiom (named_parameters, weights,
    collect_params, the pytree) lists exactly the native names and native
    shapes the handles report."""
    for case in kit.chapter_models():
        m = mp.wrap(case.model, sample_input=case.x, **case.options)
        idiom = {name: tuple(shape) for name, shape in adapter.summary_idiom(m._state)}
        ours = {p.native_name: tuple(p.native_shape) for p in m.named_parameters().values()}
        assert idiom == ours, case.label
