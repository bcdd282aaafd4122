"""The chapter's steps: what each one is called and says, and where its code is.

Each step has a folder ``<NN>_<id>`` beside this file holding real Python
files: ``native_<backend>.py``, the framework's own idiom, and
``with_multiparam.py``, the one multiparam call (``with_multiparam_<backend>.py``
where a backend needs its own, as Flax does to pass its variables).  The tour
executes exactly those files and shows what they printed: nothing is a
hand-written output, and linters and tests read the same files.

Each backend's snippets share one namespace, step after step, as the cells
of one notebook tab do; the multiparam snippet of a step runs in the same
namespace right after the native one.  A step without native files is done
with multiparam alone (the exercise).  The native code builds the same
architecture in each framework (the chapter's MXNet and Keras tabs fuse the
ReLU into the Dense layer or add a Flatten; here the layers are kept apart
so canonical names line up), and a step's ``note`` says where frameworks
genuinely differ.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from typing import TYPE_CHECKING, Dict, Optional

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


@dataclass(frozen=True)
class Step:
    """One step of the chapter; its code is read from its folder."""

    id: str
    title: str
    #: backend -> one line on a real difference between the frameworks
    note: Dict[str, str] = field(default_factory=dict)
    #: one line on the step, the same for every backend
    about: str = ""
    #: its place in the chapter, from 1 (set from the order of STEPS)
    number: int = 0

    @property
    def folder(self) -> Traversable:
        return resources.files(__name__) / f"{self.number:02d}_{self.id}"

    def native_file(self, backend: str) -> Optional[Traversable]:
        """The file of ``backend``'s own idiom, or None when the step is
        done with multiparam alone."""
        path = self.folder / f"native_{backend}.py"
        return path if path.is_file() else None

    def multiparam_file(self, backend: str) -> Traversable:
        """The multiparam file ``backend`` runs: its own when the step has
        one, else the one every backend shares."""
        own = self.folder / f"with_multiparam_{backend}.py"
        return own if own.is_file() else self.folder / "with_multiparam.py"

    def native_code(self, backend: str) -> str:
        """The code of ``backend``'s own idiom, as shown and run ("" if none)."""
        path = self.native_file(backend)
        return snippet(path) if path is not None else ""

    def multiparam_code(self, backend: str) -> str:
        """The multiparam code ``backend`` runs, as shown."""
        return snippet(self.multiparam_file(backend))


def snippet(path: Traversable) -> str:
    """A snippet file's text as shown and run: without the newline that ends the file."""
    return path.read_text(encoding="utf-8").removesuffix("\n")


_CHAPTER = (
    Step("build", "Build the chapter's MLP and run it once",
         note={"mxnet": "The chapter's Gluon code fuses ReLU into Dense(8, activation='relu'); "
                        "kept apart here so layer 2 is the output layer everywhere."}),
    Step("access", "One layer's parameters",
         note={"jax": "Flax names Sequential children layers_<i>; only layers with parameters appear.",
               "tensorflow": "Keras stores the kernel as (in, out); multiparam shows (out, in)."}),
    Step("targeted", "A targeted parameter: its type and its value"),
    Step("grad", "The gradient before any backward",
         note={"jax": "JAX keeps no gradient on parameters: jax.grad computes them on demand.",
               "tensorflow": "Keras variables keep no gradient: GradientTape returns them.",
               "mxnet": "Gluon allocates gradient buffers at initialisation: zeros, not None."}),
    Step("all", "All parameters at once",
         note={"mxnet": "Gluon's names carry global counters (dense0_weight); canonical names do not."}),
    Step("summary", "Canonical and native names side by side"),
    Step("regex", "Selecting parameters with a regular expression",
         note={"mxnet": "Gluon's collect_params(regex) is the idiom multiparam follows (re.match)."}),
    Step("nested", "Nested blocks: rgnet, and rgnet[0][1][0].bias",
         note={"torch": "Only torch names the blocks ('block 1'); the others number them, "
                        "so canonical paths follow each model's own structure."}),
    Step("spec", "One neutral spec, built natively: identical canonical names"),
    Step("deferred", "Deferred initialisation: shapes before and after the first forward",
         note={"jax": "Flax has no parameters at all before init; multiparam shows the shapes it "
                      "will have, None where the input decides.",
               "mxnet": "Gluon marks unknown dims 0 (-1 in the numpy interface) until the first forward."}),
    Step("init_normal", "Built-in initialisation: normal(0, 0.01) weights, zero biases",
         note={"jax": "Flax initialisers are chosen when the layer is built (kernel_init=); "
                      "multiparam re-initialises the existing pytree instead.",
               "mxnet": "Gluon re-initialises with initialize(..., force_reinit=True); "
                        "multiparam always does."}),
    Step("init_constant", "Built-in initialisation: constant 1",
         note={"mxnet": "Gluon initializers dispatch on the name: *_bias gets zeros whatever "
                        "the initializer, as multiparam's bias-like roles do."}),
    Step("init_layers", "Different initialisers per layer: xavier on layer 0, 42 on layer 2",
         note={"tensorflow": "Keras kernels are (in, out): layer 2's 42s print as a column; "
                             "multiparam shows (out, in) everywhere."}),
    Step("init_custom", "A custom initializer: U(-10, 10), zeroing |w| < 5",
         note={"mxnet": "Gluon's Initializer sees its global names (dense0_weight); "
                        "a multiparam initializer sees canonical ones."}),
    Step("edit", "Setting parameters directly",
         note={"tensorflow": "Keras variables change through assign(); w[0, 0] reads but cannot be assigned.",
               "jax": "Flax: multiparam's handle keeps its own pytree, so the edit above is not "
                      "seen by m, nor m's by params."}),
    Step("tied", "Tied parameters: one shared layer used twice",
         note={"tensorflow": "Keras 3 keeps a reused layer twice in layers (7) but once in weights.",
               "jax": "Flax stores a shared module's parameters once (under its first name); "
                      "multiparam names both uses.",
               "mxnet": "Gluon ties by handing one block's params to another (params=shared.params)."}),
    Step("tied_grad", "A tied Linear(1, 1) set to 3: y = 9 and the summed gradient 6",
         note={"jax": "Flax keeps no gradient on the parameter: jax.grad returns a pytree of them.",
               "tensorflow": "Keras keeps no gradient on the variable: GradientTape returns them."}),
    Step("custom_param", "Registering a parameter of your own",
         note={"mxnet": "Gluon's parameter names carry the block's counter prefix (mymodel0_).",
               "tensorflow": "Keras paths carry the model's generated name (my_model/weight1)."}),
    Step("init_hist", "Each initializer's values, per framework (the histograms)",
         about="mode='native' draws with each framework's own random ops: the same "
               "distributions, different numbers; the defaults differ for real."),
    Step("exercise", "Exercise: train an MLP with a shared layer; parameter and gradient norms per layer",
         about="One multiparam loop trains on every backend (no native code): m.grad is the "
               "framework's own autograd; the shared layer's gradient sums its two uses."),
)

STEPS = tuple(replace(step, number=n) for n, step in enumerate(_CHAPTER, 1))
STEP_IDS = tuple(step.id for step in STEPS)
