"""The engines' own checkpoint formats multiparam reads and writes, as
plain data (nothing imported): the module holding each engine's code, the
files that mark its checkpoint folder, and what it needs installed.
``multiparam.engine_io`` dispatches through this table."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple


@dataclass(frozen=True)
class Engine:
    module: str                 # open_checkpoint(path, model, strict) -> StateDict, save_checkpoint(model, path) -> Path
    marks: Tuple[str, ...]      # a folder holding one of these files is such a checkpoint
    requires: str
    #: the module also has save_native(model, path): the framework's own tree, keyed by native paths
    native_names: bool = False


ENGINES = {
    "dcp": Engine("multiparam.adapters.torch.dcp", (".metadata",), "torch (torch.distributed.checkpoint)"),
    "orbax": Engine("multiparam.adapters.jax.orbax", ("_CHECKPOINT_METADATA", "_METADATA"), "orbax-checkpoint",
                    native_names=True),
}
