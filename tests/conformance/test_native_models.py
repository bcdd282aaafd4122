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


def test_summary_idiom_matches_handle(adapter, kit):
    """The adapter's rendering of the framework's own collect-all idiom
    lists as many entries as the framework keeps (the tour shows it)."""
    for case in kit.chapter_models():
        m = mp.wrap(case.model, sample_input=case.x, **case.options)
        idiom = adapter.summary_idiom(m._state)
        assert len(idiom) >= len(m.named_parameters()), case.label
