"""The adapter interface: what one backend must provide to multiparam.

An adapter is the only place a framework is imported.  It does the native
work and nothing else; validation, canonical layout, names, error messages
and suggestions live once in the framework-free handles (``multiparam.model``
and ``multiparam.param``), the template-method split of Keras' ``Variable``.

An adapter describes a native model as a tree of :class:`LayerNode` with
:class:`ParamSlot` leaves.  The handles turn that tree into canonical names,
shapes and tie groups, and call the hooks below with the slot's ``ref`` (a
locator only the adapter understands) to read and write values.

Arrays cross the interface as NumPy arrays in the framework's *native*
layout; the handles convert to and from canonical layout (PyTorch's) using
the slot's ``layout`` tag, so the per-framework code never transposes.

Each backend module defines one subclass of :class:`Adapter` and exposes an
instance as ``ADAPTER``.  ``multiparam.registry`` maps backend names to those
modules; third-party adapters register through the ``multiparam.adapters``
entry point group and run the same conformance suite
(``pytest tests/conformance --backend NAME``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Hashable, Optional, Sequence

import numpy as np

# Layout tags: how a native array differs from the canonical (PyTorch) layout.
SAME = "same"                  # native == canonical
DENSE_IN_OUT = "dense_in_out"  # native (in, out), canonical (out, in): Keras, Flax kernels
CHANNELS_LAST_KERNEL = "channels_last_kernel"  # native (*k, in, out), canonical (out, in, *k)
LAYOUTS = (SAME, DENSE_IN_OUT, CHANNELS_LAST_KERNEL)


@dataclass(frozen=True)
class DenseAfterFlatten:
    """Layout of a dense kernel whose input is a *channels-last* feature map
    flattened (Keras ``Flatten``, Flax ``x.reshape``): native ``(H*W*C, out)``
    with rows in (H, W, C) order; canonical ``(out, C*H*W)`` with columns in
    torch's (C, H, W) order.  Carries the feature map's shape because the
    permutation depends on it.  Not a pure transpose, so reading it copies."""

    channels: int
    height: int
    width: int

    @property
    def chw(self) -> tuple:
        return (self.channels, self.height, self.width)


@dataclass
class ParamSlot:
    """One parameter (or non-trainable state array) of one layer.

    role:         canonical role: ``weight``, ``bias``, ``scale``,
                  ``running_mean``, ``running_var``, ``embedding``, or a
                  framework-specific name kept as the framework spells it.
    native_name:  the framework's own name for it (torch ``0.weight``,
                  Gluon ``dense0_weight``, Keras ``sequential/dense/kernel``,
                  Flax ``params/layers_0/kernel``).
    ref:          adapter-private locator passed back to the hooks.
    layout:       one of ``LAYOUTS``, or a :class:`DenseAfterFlatten`.
    trainable:    False for BatchNorm running statistics and frozen weights.
    ident:        hashable identity of the underlying storage; slots with
                  equal ``ident`` are one parameter (a tie).
    shape_hint:   canonical shape known from the layer's configuration
                  before the framework has materialised the parameter,
                  with ``None`` for unknown dims (e.g. ``(8, None)`` for a
                  lazy dense layer of 8 units).  Ignored once materialised.
    transposed:   True when this slot is tied to another slot (same
                  ``ident``) and its canonical value is that slot's
                  canonical value transposed (``m.tie(..., transpose=True)``).
    """

    role: str
    native_name: str
    ref: Any
    layout: str = SAME
    trainable: bool = True
    ident: Hashable = None
    shape_hint: Optional[tuple] = None
    transposed: bool = False


@dataclass
class LayerNode:
    """One layer (module, block, sub-model) of a native model.

    key:      the child key under its parent: the position for sequential
              containers (``"0"``), the attribute/child name otherwise
              (``"block 1"``); ``""`` for the root.
    kind:     the neutral kind when recognised (``Dense``, ``ReLU``,
              ``Sequential``, ...), else the native class name.
    native:   the framework's own layer object (or Flax module).
    params:   the layer's own parameters, in the framework's order.
    children: child layers, in the framework's order.  The same native
              layer may appear under two keys (a layer reused twice).
    """

    key: str
    kind: str
    native: Any
    params: list = field(default_factory=list)
    children: list = field(default_factory=list)

    @property
    def native_type(self) -> str:
        cls = type(self.native)
        return f"{cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True)
class Capability:
    """Whether a backend can do one thing, and why not when it cannot."""

    supported: bool
    reason: str = ""


class Adapter:
    """Base class of every backend adapter.  Each hook documents its contract.

    ``state`` below is the object returned by :meth:`prepare`; it is whatever
    the adapter needs to find the parameters again: the native model itself
    for frameworks that keep parameters inside the model (torch, Keras,
    Gluon), or a holder of the variables pytree for Flax linen.
    """

    #: registry name of the backend ("torch", "jax", ...)
    name: str = ""
    #: capability name -> Capability; absent means supported
    capabilities: dict = {}
    #: True when the framework's images are NHWC (Keras, Flax): ``m(x)``
    #: takes that layout, and ``multiparam.layout.input_to_native`` turns a
    #: canonical NCHW input into it (the worker and compare do).
    channels_last: bool = False

    # -- recognising and preparing models ---------------------------------
    def is_model(self, obj: Any) -> bool:
        """True if ``obj`` is a native model this adapter can wrap."""
        raise NotImplementedError

    def prepare(self, native: Any, sample_input: Any = None, **options) -> Any:
        """Make the model usable and return its ``state``.

        Runs one forward on ``sample_input`` when given, so lazy or deferred
        parameters get their shapes.  Flax: initialise (or take
        ``options['variables']``) and keep the variables pytree.
        """
        raise NotImplementedError

    def describe(self, state: Any) -> LayerNode:
        """The model's layer tree.  Must not change the model."""
        raise NotImplementedError

    def is_materialized(self, state: Any) -> bool:
        """False while some parameter's shape is still unknown."""
        raise NotImplementedError

    def is_materialized_tree(self, state: Any, root: LayerNode) -> bool:
        """``is_materialized`` given the tree ``describe`` just returned, for
        adapters that would otherwise describe the model again."""
        return self.is_materialized(state)

    def storage_key(self, state: Any, ref: Any) -> Any:
        """An object that stays the same (``is``) exactly as long as the
        parameter's storage and values do, so the handle may hand out the
        same read-only view again; None (default) reads every time.  Only
        for zero-copy reads of immutable storage (JAX arrays)."""
        return None

    # -- forward -----------------------------------------------------------
    def forward(self, state: Any, x: Any, train: Optional[bool] = None) -> Any:
        """Run the native forward; return the framework's array type.

        ``x`` may be a NumPy array or the framework's own array, in the
        framework's native layout (NHWC images when ``channels_last``).
        ``train`` None follows the framework's current mode (torch
        ``module.training``; Keras and Gluon inference outside a training
        call / ``autograd.record``); False forces inference (BatchNorm uses
        its running statistics and leaves them alone), True training mode.
        Flax linen fixes the mode in the module (``use_running_average``),
        so the jax adapter ignores ``train``."""
        raise NotImplementedError

    def to_numpy(self, array: Any) -> np.ndarray:
        """A framework array (or tensor, or variable) as a NumPy array."""
        raise NotImplementedError

    # -- parameter storage (native layout) ---------------------------------
    def read(self, state: Any, ref: Any) -> np.ndarray:
        """The parameter's value as a NumPy array in native layout.

        Zero-copy where the framework allows it (torch, JAX on CPU); the
        handle marks the result read-only.  Only called once materialised.

        A slot may be *composite*: its ``ref`` names several native arrays
        (Flax's per-gate LSTM kernels) or a share of one (the single LSTM
        bias of Keras and Flax split into ``bias_ih``/``bias_hh``).  Then
        ``read`` assembles the array, ``write`` splits it, and ``native_shape``
        and ``dtype`` describe the assembled array; the slot's layout tells
        how the assembled array differs from canonical (often SAME)."""
        raise NotImplementedError

    def native_shape(self, state: Any, ref: Any) -> Optional[tuple]:
        """The native shape, with None for dims not known yet, or None when
        the parameter does not exist yet (an unbuilt Keras layer)."""
        raise NotImplementedError

    def dtype(self, state: Any, ref: Any) -> Optional[np.dtype]:
        """The NumPy dtype of the parameter (None if not known yet)."""
        raise NotImplementedError

    def write(self, state: Any, ref: Any, value: np.ndarray) -> None:
        """Replace the whole value in place, so the native model sees it.

        ``value`` is already validated, cast, C-contiguous and in native
        layout.  When it is writable it is a fresh array the adapter may keep
        as the parameter's storage; when it is read-only it is someone
        else's memory (the caller's array, another model's value during a
        transfer) and must be copied, never kept.  Must keep
        the parameter object's identity (torch ``Parameter``, Keras
        ``Variable``, Gluon ``Parameter``); Flax: update the pytree in
        ``state``, keeping every tied path pointing at the new leaf."""
        raise NotImplementedError

    def native_param(self, state: Any, ref: Any) -> Any:
        """The framework's own parameter object (or pytree leaf)."""
        raise NotImplementedError

    def native_grad(self, state: Any, ref: Any) -> Optional[np.ndarray]:
        """The gradient the framework itself holds for this parameter, in
        native layout, or None when it holds none (never computed, or the
        framework keeps no gradient on parameters: JAX, Keras)."""
        raise NotImplementedError

    # -- gradients -------------------------------------------------------------
    def grad(self, state: Any, x: Any, loss: Any = None, target: Any = None,
             train: bool = False) -> dict:
        """Fresh gradients of a scalar loss w.r.t. every trainable parameter.

        ``train`` False (the default) differentiates the inference-mode
        forward: BatchNorm uses its running statistics, which stay as they
        are, so gradients compare across frameworks; True uses training
        mode (batch statistics), as a training step would, and still leaves
        the running statistics unchanged.  Flax linen: the module's own mode.

        ``loss`` is None (sum of all outputs, the chapter's ``y.sum()``), a
        string (``"sum"``, ``"mean"``, ``"mse"``: mean squared error against
        ``target``) or a callable ``loss(output, target)`` written in the
        framework's own ops returning a scalar.  Returns ``{slot.ident: grad}``
        with each grad a NumPy array in native layout; a parameter used twice
        appears once with the sum of its contributions.  A composite slot
        (one canonical parameter assembled from several native arrays, e.g.
        an LSTM's ``weight_ih`` on Flax) gets its own entry, assembled the
        same way.  Must not touch the
        gradients the framework itself accumulates (torch ``.grad``, Gluon
        ``grad()``): a native training loop the user keeps is unaffected.
        Raise ``ValueError`` when the loss is not a scalar."""
        raise NotImplementedError

    # -- the loss: one rule on every backend (a template method) -------------------
    def loss_value(self, out: Any, loss: Any, target: Any) -> Any:
        """The scalar ``grad`` differentiates, by the same rule everywhere:
        None or ``"sum"``: the sum of every output; ``"mean"``: the mean of
        the output; ``"mse"``: the mean of ``(output - target) ** 2``; a
        callable: ``loss(output, target)``, the target in the framework's
        own array type.  The framework's ops come from :meth:`reduce_sum`,
        :meth:`reduce_mean` and :meth:`as_target`; ``model_grad`` has
        already checked the name and that ``"mse"`` has a target.  Raises
        ``ValueError`` when the result is not a scalar."""
        if isinstance(out, (tuple, list)) and not (loss is None or loss == "sum" or callable(loss)):
            raise ValueError(f"loss {loss!r} needs a single output; the model returns {len(out)}")
        native_target = None if target is None else self.as_target(target, out)
        if callable(loss):
            value = loss(out, native_target)
        elif loss is None or loss == "sum":
            value = self.reduce_sum(out)
        elif loss == "mean":
            value = self.reduce_mean(out)
        else:
            diff = out - native_target
            value = self.reduce_mean(diff * diff)
        shape = tuple(value.shape)
        if int(np.prod(shape, dtype=np.int64)) != 1:
            raise ValueError(f"the loss must be a scalar, got shape {shape}")
        return value

    def reduce_sum(self, out: Any) -> Any:
        """The sum of every element of the output (of each, for several)."""
        raise NotImplementedError

    def reduce_mean(self, out: Any) -> Any:
        """The mean of the output's elements."""
        raise NotImplementedError

    def as_target(self, target: Any, out: Any) -> Any:
        """``target`` (NumPy or native) as the framework's array, in the
        output's floating dtype."""
        raise NotImplementedError

    # -- tying after construction ------------------------------------------------
    def tie(self, state: Any, dst: ParamSlot, dst_layer: Any, src: ParamSlot,
            native_transpose: bool) -> None:
        """Make the framework itself use ``src``'s parameter where ``dst``'s
        was, so its native forward, autograd and optimizers see one
        parameter.  ``dst_layer`` is the native layer that owns ``dst``.
        ``native_transpose`` says the dst's native value must be the
        transpose of src's native value (layouts differ, or the user asked
        for a transposed tie); a framework that cannot express that raises
        ``CapabilityError``.  The handle has already checked names, shapes
        and dtypes; after this, ``describe`` must give ``dst`` the ident of
        ``src`` (and ``transposed=True`` when the canonical values are
        transposes of each other)."""
        from ..errors import CapabilityError

        raise CapabilityError(self.name, "tie parameters after construction", "not implemented")

    # -- building from the neutral spec -------------------------------------
    def build(self, spec: Any) -> Any:
        """Build the native model for a ``multiparam.nn`` spec.

        A spec object used twice must become one native layer used twice (or
        the framework's own sharing idiom), so its parameters are tied."""
        raise NotImplementedError

    #: backend extensions on the handle: attribute name -> class taking the
    #: Model handle (``m.flax`` on the jax backend: the Flax variables
    #: pytree and its de-duplicated form).  API that only one framework can
    #: have lives there, not on every handle.
    extensions: dict = {}

    def summary_idiom(self, state: Any) -> list:
        """Native (name, shape) pairs exactly as the framework's own
        collect-all idiom lists them (torch ``named_parameters``, Gluon
        ``collect_params``, Keras ``weights``, Flax ``tree_map`` over the
        pytree).  Used by the tour and by the conformance suite."""
        raise NotImplementedError

    def native_count(self, state: Any) -> int:
        """The number of *trainable* scalars, counted the framework's own way
        over its own collection (torch ``parameters()`` with requires_grad,
        Keras ``trainable_weights``, Gluon ``collect_params()`` without
        ``grad_req='null'``, the Flax ``params`` collection), de-duplicated
        as the framework does.  Compared with ``num_parameters(trainable=True)``
        by the conformance suite."""
        raise NotImplementedError

    def capability(self, what: str) -> Capability:
        return self.capabilities.get(what, Capability(True))

    # -- initialisation (native mode) --
    def native_init(self, state: Any, ref: Any, initializer: Any, seed: int) -> bool:
        """Initialise one parameter in place with the framework's own random
        ops (``m.init(..., mode="native")``); return False, having changed
        nothing, when this adapter cannot, and the core draws the values
        portably instead.

        ``initializer`` is already resolved against the parameter's canonical
        shape, so it is one of the primitives of ``multiparam.initializers``:
        ``Constant(value)``, ``Uniform(low, high)``, ``Normal(mean, std)``,
        ``TruncatedNormal(mean, std, a, b)`` (absolute bounds) or
        ``Orthogonal(gain)``; fan-based initializers (xavier, kaiming,
        lecun) arrive as Uniform/Normal/TruncatedNormal with their bounds
        computed, so no adapter computes fans.  Anything else (a user's
        initializer) must return False.  ``seed`` is a per-parameter 32-bit
        int.  Must keep the parameter object (torch ``Parameter``, Keras
        ``Variable``, Gluon ``Parameter``; Flax: the handle's pytree, tied
        paths included), as :meth:`write` does.  The default does nothing."""
        return False

    def framework_default(self, state: Any, layer_node: LayerNode, slot: ParamSlot):
        """The ``multiparam.init`` initializer that reproduces the framework's
        documented default for this layer type and parameter role
        (``mp.init.framework_default()``), or None when unknown (the core
        then raises, naming the parameter).  Fans are computed by the core
        from the canonical shape."""
        return None
