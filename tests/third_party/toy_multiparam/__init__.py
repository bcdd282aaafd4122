"""multiparam's backend for ``toyframework``: the example of "Adding a backend".

- ``spec.py``: the backend described as data, imports no framework; the
  distribution's entry point names it
  (``[project.entry-points."multiparam.adapters"] toy = "toy_multiparam.spec:SPEC"``).
- ``adapter.py``: the adapter, imported by multiparam the first time a model
  of this backend is wrapped or built; it imports the framework.

This file stays empty of imports: importing ``toy_multiparam.spec`` runs it.
"""
