"""Hypothesis profiles of the property suites (tests/conformance/test_properties.py,
tests/cross/test_properties_cross.py).

- ``ci``, the default: a fixed budget, derandomised (the same examples on
  every run, so CI is reproducible and a red build is never luck), no
  deadline (a first forward compiles), no example database.
  ``max_examples`` is per property test: four properties per backend make
  about 100 architectures per backend.
- ``fuzz`` (``--hypothesis-profile=fuzz``; ``tox -e fuzz`` runs it for a
  time budget): random, a large budget per test
  (``MULTIPARAM_FUZZ_EXAMPLES``, default 1000), failures kept in the
  example database (``.hypothesis/``) and replayed first on the next run.
"""
import os

from hypothesis import settings

settings.register_profile("ci", max_examples=25, derandomize=True, deadline=None, database=None,
                          print_blob=True)
settings.register_profile("fuzz", max_examples=int(os.environ.get("MULTIPARAM_FUZZ_EXAMPLES", "1000")),
                          deadline=None, print_blob=True)
settings.load_profile("ci")
