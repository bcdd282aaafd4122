"""The contract a backend's *native kit* fulfils for the conformance suite.

The conformance suite (``tests/conformance``, run with ``pytest
tests/conformance --backend NAME``) checks an adapter against truth that
does not come from the adapter: a NumPy reference, the chapter's printed
facts, and the framework's own idioms.  The framework's idioms come from a
*kit*: one module per backend, written the way that framework's own
documentation writes things (``net[2].bias.data``, ``jax.grad``,
``GradientTape``, ``collect_params()``).  A kit never uses multiparam to
reach a parameter; from a handle it only takes the native model
(``m.native``) and, on backends that keep parameters outside the model,
what the backend's extension exposes (``m.flax.variables``).

Writing a kit for a new backend
-------------------------------
Write a module (by convention ``native_<backend>.py``) that provides every
name of :class:`NativeKit`, and check it with :func:`kit_problems` (the
suite does, before any test uses it).  Cases are handed out as
``{label: builder}`` mappings (:meth:`NativeKit.chapter_models`,
:meth:`NativeKit.real_models`): labels are cheap, so collecting the suite
builds nothing, and each builder runs only when its test does.  Labels
become part of the test ids (``test_counts_match_the_framework[torch-LSTM]``),
so keep them short and free of spaces.

Where the suite finds a backend's kit
-------------------------------------
:func:`kit_module_name` applies this rule, first match wins:

1. an explicit choice, ``pytest tests/conformance --kit NAME=package.module``;
2. the ``KIT`` attribute (a module path) of the backend's adapter package,
   the module its registry entry names: a third-party adapter ships its kit
   and says where it is;
3. ``tests.conformance.kits.native_<backend>``, where the built-in kits live.

Frameworks differ; tests do not branch on their names
-----------------------------------------------------
Where frameworks genuinely differ, a test reads a fact instead of a backend
name.  What *multiparam* can or cannot do on a backend is the adapter's
declared capability (``adapter.capability("tie_transposed")``).  What the
*framework itself* does is a constant or a function of its kit
(``KEEPS_NATIVE_GRAD``, ``KEEPS_PARAMETER_OBJECTS``,
``BN_MOMENTUM_WEIGHS_OLD``, :meth:`NativeKit.dense_default`).
"""
from __future__ import annotations

import importlib
import inspect
import itertools
import math
from dataclasses import dataclass, field
from typing import (Any, Callable, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple,
                    runtime_checkable)

import numpy as np

from .registry import all_backends, load_adapter

#: where the built-in kits live (rule 3 of :func:`kit_module_name`)
DEFAULT_KIT_MODULE = "tests.conformance.kits.native_{backend}"
#: the adapter-package attribute that names a kit module (rule 2)
KIT_ATTRIBUTE = "KIT"


# -- the records a kit hands out -------------------------------------------------------------
@dataclass
class NativeCase:
    """A model written natively, as the chapter writes it in that framework,
    with what multiparam must report for it."""

    model: Any
    #: sample input in the framework's own array type; None when ``options``
    #: already carry everything (Flax ``variables``)
    x: Any
    #: expected canonical names and shapes, in the order they must be listed
    shapes: Dict[str, Tuple[int, ...]]
    #: groups of canonical names that are one parameter, as ``m.ties()`` lists them
    ties: List[Tuple[str, ...]] = field(default_factory=list)
    #: extra ``mp.wrap`` options (Flax ``variables``)
    options: dict = field(default_factory=dict)


@dataclass
class CheckpointModel:
    """A model as checkpoints are loaded into, with the framework's own ways
    to save, load and differentiate it (the truth the checkpoint tests
    compare with)."""

    model: Any
    #: keyword inputs of the forward, labels included (``input_ids``, ``labels``)
    inputs: dict
    #: seed -> another instance of the architecture (same dtype)
    fresh: Callable[[int], Any]
    #: ``(model, folder, max_shard_size or None)``: the ecosystem's own
    #: safetensors writer (``save_pretrained``)
    save_native: Callable[[Any, Any, Any], None]
    #: ``(model, file) -> (missing keys, unexpected keys)``: the framework's
    #: own loading of a plain safetensors file (``load_state_dict(load_file(f),
    #: strict=False)``), ties restored the framework's way
    load_native: Callable[[Any, Any], Tuple[List[str], List[str]]]
    #: ``(model, inputs) -> {canonical name: gradient}`` of the model's own
    #: loss, by the framework's own autograd (``loss.backward()``)
    loss_grads: Callable[[Any, dict], Dict[str, Any]]
    #: the state as the framework lists it: ``{name: NumPy array}`` (bit views
    #: for bfloat16), every tied alias included
    state: Callable[[Any], Dict[str, Any]]
    #: gradient tolerance (bfloat16 sums round)
    atol: float = 1e-6


@dataclass
class RealModel:
    """A model written by the framework's own authors (torch
    ``TransformerEncoderLayer``, ``keras.applications.MobileNetV2``, Gluon's
    ``model_zoo``), built without downloading anything, with the
    framework's own view of it, computed by the framework's own idioms when
    it was built."""

    model: Any
    #: sample input in the framework's own array type
    x: Any
    #: trainable scalars (torch ``parameters()``, Keras ``trainable_weights``, ...)
    trainable: int
    #: every scalar the framework counts (``count_params``, ``collect_params``, ...)
    total: int
    #: :func:`exact_sum` of every value in that same collection
    value_sum: float
    #: native names, as the framework's collect-all lists them
    names: List[str]
    #: seed -> (a second instance of the architecture, its ``mp.wrap`` options)
    fresh: Callable[[int], Tuple[Any, dict]]
    #: extra ``mp.wrap`` options (Flax ``variables``)
    options: dict = field(default_factory=dict)
    #: state the framework keeps beside the parameters that deliberately is not
    #: one (torch BatchNorm's ``num_batches_tracked`` step counter), as the
    #: framework names it; empty where the model keeps none
    not_parameters: List[str] = field(default_factory=list)


@dataclass
class NativeCNN:
    """Conv -> Flatten -> Dense written natively, in the framework's own image
    layout (NCHW or NHWC), for the flatten-permutation check."""

    model: Any
    #: sample input in the framework's own array type and image layout
    x: Any
    #: canonical path of the convolution and of the dense layer after the flatten
    conv: str
    dense: str
    #: extra ``mp.wrap`` options
    options: dict = field(default_factory=dict)


@dataclass
class PortCase:
    """A model written natively with its own names, and the reference it is
    ported from: ``spec`` (a ``multiparam.nn`` spec, whose canonical names
    are torch's numbered ones and whose NumPy forward is the truth) and the
    ``rules`` that map the spec's names onto the model's."""

    model: Any
    #: canonical input (NCHW images; a channels-last kit's forward takes it
    #: through ``layout.input_to_native``)
    x: Any
    #: the reference architecture, a ``multiparam.nn`` spec
    spec: Any
    #: porting rules from the spec's canonical names to the model's
    rules: List[Any]
    #: extra ``mp.wrap`` options
    options: dict = field(default_factory=dict)


@dataclass
class SharedMemoryCase:
    """Parameters the framework lets share one block of memory without a
    tie (two parameters made over one tensor, one viewing part of the
    other), and the framework's own load, which writes one value at a time
    in order: where they overlap, the later value is what stays."""

    #: builds the native model, fresh at each call
    make: Callable[[], Any]
    #: ``load(net, {canonical name: NumPy array})``: the framework's own load
    load: Callable[[Any, Dict[str, np.ndarray]], None]


@dataclass(frozen=True)
class Distribution:
    """A documented initial distribution, as plain numbers (what a
    framework's docs say its default initializer draws)."""

    #: "uniform" (low, high), "truncated_normal" (mean, std cut to [low, high])
    #: or "constant" (value)
    kind: str
    low: float = 0.0
    high: float = 0.0
    mean: float = 0.0
    std: float = 0.0
    value: float = 0.0

    @classmethod
    def uniform(cls, low: float, high: float) -> "Distribution":
        return cls("uniform", low=low, high=high)

    @classmethod
    def truncated_normal(cls, mean: float, std: float, low: float, high: float) -> "Distribution":
        return cls("truncated_normal", low=low, high=high, mean=mean, std=std)

    @classmethod
    def constant(cls, value: float) -> "Distribution":
        return cls("constant", low=value, high=value, value=value)


def exact_sum(arrays) -> float:
    """The correctly rounded float64 sum of every element (``math.fsum``), so
    two listings of the same values agree exactly whatever their order or
    memory layout (a transposed view sums in another order)."""
    return math.fsum(itertools.chain.from_iterable(
        np.asarray(a, dtype=np.float64).ravel().tolist() for a in arrays))


# -- the protocol ------------------------------------------------------------------------------
@runtime_checkable
class NativeKit(Protocol):
    """What a backend's kit module provides.  ``m`` is a multiparam model
    handle; names are canonical (torch ``state_dict`` keys), values NumPy
    arrays in canonical layout unless a member says otherwise."""

    #: the framework's model base classes: every model the adapter wraps is an
    #: instance of one (torch ``nn.Module``; Flax linen and NNX ``Module``, ...)
    MODEL_TYPES: Tuple[type, ...]
    #: True when the framework keeps gradients on parameters after its own
    #: backward (torch ``.grad``, Gluon ``grad()``); False when gradients are
    #: only returned (``jax.grad``, ``GradientTape.gradient``)
    KEEPS_NATIVE_GRAD: bool
    #: True when writing a value keeps the framework's parameter object (torch
    #: ``Parameter``, Keras ``Variable``, Gluon ``Parameter``); False when
    #: parameters are immutable arrays, replaced on write (Flax linen leaves).
    #: Said of the models ``multiparam.nn`` builds on this backend.
    KEEPS_PARAMETER_OBJECTS: bool
    #: kinds of case (``checkpoint_models``, ``twin_models``, ...) this kit
    #: has none of, each with the reason; the suite skips with it, and fails
    #: a kind that lists nothing without one
    ABSENT: Dict[str, str]
    #: floating dtypes the framework computes in on a CPU (by name); the dtype
    #: tests run a forward only in these (float8 is storage only everywhere)
    FORWARD_DTYPES: Tuple[str, ...]
    #: True when BatchNorm's momentum weighs the old running statistic
    #: (Keras, Flax, Gluon: ``momentum * running + (1 - momentum) * batch``);
    #: False when it weighs the batch (torch)
    BN_MOMENTUM_WEIGHS_OLD: bool

    # -- reading, running and counting, the framework's own way --
    def read(self, m: Any, name: str) -> np.ndarray:
        """The value of canonical ``name`` as the framework's own access idiom
        gives it (``net[2].bias.data``, ``params['params']['layers_2']['bias']``,
        ``net.layers[2].weights[1]``, ``net[1].bias.data()``), converted to
        canonical layout by hand.  A copy."""

    def forward(self, m: Any, x: Any) -> np.ndarray:
        """The native forward (``net(X)``, ``net.apply(params, X)``) as NumPy."""

    def infer(self, m: Any, x: Any) -> List[np.ndarray]:
        """The native forward in inference mode, every output as NumPy."""

    def to_numpy(self, value: Any) -> np.ndarray:
        """A framework array or parameter object as NumPy, the framework's own
        way (``.detach().numpy()``, ``np.asarray``, ``.numpy()``,
        ``.asnumpy()`` / ``.data().asnumpy()``); NumPy arrays unchanged."""

    def count(self, m: Any) -> int:
        """Trainable scalars, counted the framework's own way (what its
        summary prints as trainable), each shared parameter once."""

    def native_arrays(self, m: Any) -> List[Tuple[str, np.ndarray]]:
        """The framework's own collect-all listing, ``[(native name, array)]``
        in the framework's order and native layout (``named_parameters`` plus
        running statistics, ``weights``, ``collect_params()``, the flattened
        variables pytree)."""

    # -- gradients and training --
    def grads(self, m: Any, x: Any) -> Dict[str, np.ndarray]:
        """Gradients of ``sum(net(x))`` by the framework's own autograd, for
        every canonical name of ``m.named_parameters()``, leaving no gradient
        behind on the parameters."""

    def backward(self, m: Any, x: Any) -> None:
        """The framework's own backward of ``sum(net(x))`` as a training loop
        runs it, leaving the gradients where the framework keeps them.  Only
        called when ``KEEPS_NATIVE_GRAD``."""

    def native_grads(self, m: Any) -> Dict[str, Optional[np.ndarray]]:
        """The gradient the framework holds on each parameter now (None where
        it holds none), by canonical name.  Only called when
        ``KEEPS_NATIVE_GRAD``."""

    def sgd_step(self, m: Any, x: Any, lr: float) -> None:
        """One step of the framework's own SGD optimizer on ``sum(net(x))``,
        the optimizer built now (after any tie)."""

    # -- cases --
    def chapter_models(self) -> Mapping[str, Callable[[], NativeCase]]:
        """Models written as the chapter writes them in this framework, by
        label; a builder runs only when its test does."""

    def real_models(self) -> Mapping[str, Callable[[], RealModel]]:
        """Models written by the framework's authors, by label (at least one)."""

    def checkpoint_models(self) -> Mapping[str, Callable[[], "CheckpointModel"]]:
        """Models as people load checkpoints into (Hugging Face ``transformers``
        built from tiny configs, in each dtype the framework holds), by
        label; empty where the framework has no checkpoint ecosystem the
        suite can build offline (``ABSENT["checkpoint_models"]`` says why)."""

    def checkpoint_loss(self, label: str) -> Any:
        """The loss ``m.grad`` must take for checkpoint model ``label``:
        ``"model"`` (the model's own), or a callable for a model without one
        (the same function its ``loss_grads`` differentiates)."""

    def twin_models(self) -> Mapping[str, Callable[[], Tuple[Any, Any, Any]]]:
        """Architectures the framework's users build more than once, by
        label: each builder returns two instances built apart (other seeds,
        the framework's global name counters moved on) and an input."""

    def port_models(self) -> Mapping[str, Callable[[], "PortCase"]]:
        """Models written natively whose names differ from a reference
        spec's, with the rules that map them (the porting tests), by label."""

    def shared_memory_models(self) -> Mapping[str, Callable[[], "SharedMemoryCase"]]:
        """Models whose parameters share memory without a tie, by label;
        empty where the framework gives parameters no shared memory
        (``ABSENT["shared_memory_models"]`` says why)."""

    def native_cnn(self) -> NativeCNN:
        """Conv -> Flatten -> Dense in the framework's own image layout."""

    # -- documented facts --
    def dense_default(self, fan_in: int, fan_out: int) -> Tuple[Distribution, Distribution]:
        """(weight, bias) distributions a fresh dense layer of these fans draws
        by the framework's documented default."""

    def bn_momentum(self, layer: Any) -> float:
        """The momentum a native BatchNorm layer was configured with."""

    def bn_train_step(self, m: Any, x: Any) -> np.ndarray:
        """One training-mode step of ``Sequential(BatchNorm)`` the framework's
        own way; the new running mean."""


def kit_members() -> Dict[str, bool]:
    """``{name: callable?}`` for every member :class:`NativeKit` requires."""
    members = {name: False for name in NativeKit.__annotations__}
    for name, value in vars(NativeKit).items():
        if inspect.isfunction(value) and not name.startswith("_"):
            members[name] = True
    return members


#: what a constant of each annotated type must be: (check, said in words)
_CONSTANT_KINDS = {
    "bool": (lambda v: isinstance(v, bool), "True or False"),
    "Tuple[type, ...]": (lambda v: isinstance(v, tuple) and bool(v) and all(isinstance(t, type) for t in v),
                         "a non-empty tuple of classes"),
    "Tuple[str, ...]": (lambda v: isinstance(v, tuple) and all(isinstance(n, str) for n in v),
                        "a tuple of dtype names"),
    "Dict[str, str]": (lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(r, str)
                                                             for k, r in v.items()),
                       "a dict of case kind -> reason"),
}


def kit_problems(kit: Any) -> List[str]:
    """What ``kit`` (a module or any object) lacks to satisfy
    :class:`NativeKit`, one sentence each; empty when it satisfies it."""
    problems = []
    for name, is_function in kit_members().items():
        if not hasattr(kit, name):
            problems.append(f"{name} is missing")
            continue
        value = getattr(kit, name)
        if is_function:
            if not callable(value):
                problems.append(f"{name} must be callable, not {type(value).__name__}")
            continue
        check, what = _CONSTANT_KINDS[NativeKit.__annotations__[name]]
        if not check(value):
            problems.append(f"{name} must be {what}, not {value!r}")
    return problems


class KitError(TypeError):
    """A kit module does not satisfy :class:`NativeKit`."""


def kit_module_name(backend: str, chosen: Optional[Mapping[str, str]] = None) -> str:
    """The module path of ``backend``'s kit, by the rule in this module's
    docstring: ``chosen[backend]``, else the adapter package's ``KIT``, else
    :data:`DEFAULT_KIT_MODULE`.  Loads the adapter (and so its framework)
    when it has to look at the adapter package."""
    if chosen and backend in chosen:
        return chosen[backend]
    load_adapter(backend)      # a clear error when the framework cannot be imported
    package = importlib.import_module(all_backends()[backend].module)
    return getattr(package, KIT_ATTRIBUTE, None) or DEFAULT_KIT_MODULE.format(backend=backend)


def load_kit(backend: str, chosen: Optional[Mapping[str, str]] = None) -> Any:
    """Import ``backend``'s kit and check it satisfies :class:`NativeKit`."""
    name = kit_module_name(backend, chosen)
    kit = importlib.import_module(name)
    problems = kit_problems(kit)
    if problems:
        raise KitError(f"the {backend} kit {name} does not satisfy multiparam.testing.NativeKit: "
                       + "; ".join(problems))
    return kit


def parse_kit_choices(values: Sequence[str]) -> Dict[str, str]:
    """``["NAME=package.module", ...]`` (the ``--kit`` option) as a mapping."""
    out = {}
    for value in values:
        backend, sep, module = value.partition("=")
        if not sep or not backend.strip() or not module.strip():
            raise ValueError(f"--kit takes NAME=package.module, not {value!r}")
        out[backend.strip()] = module.strip()
    return out
