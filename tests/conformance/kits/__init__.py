"""The built-in kits: the chapter's code in each framework's own idiom.

``native_<backend>.py`` is the independent truth the conformance suite
compares multiparam with, one module per built-in backend.  What a kit must
provide, how a third-party backend writes one and how the suite finds it:
:mod:`multiparam.testing`.  The records are re-exported here so a kit reads
``from . import NativeCase``.
"""
from multiparam.testing import (CheckpointModel, Distribution, NativeCase, NativeCNN, NativeKit, PortCase,  # noqa: F401
                                RealModel, SharedMemoryCase, exact_sum)
