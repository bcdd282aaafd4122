"""The Model handle, and ``wrap``.

A Model handle holds the native model, its adapter and the adapter's state,
and an index built from the adapter's layer tree: canonical layer paths,
canonical parameter names, and tie groups (names whose slots share one
``ident``).  The index is cached once every shape is known; while a model
is still lazy it is rebuilt on each access, so shapes appear after the first
forward whichever way that forward was run.  Call ``refresh()`` after you
change the native model's structure yourself.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any, Callable, Dict, Hashable, Iterator, List, Optional, Tuple, Union

import numpy as np

from . import dtypes
from . import layout as _layout
from .adapters.base import Composite, Inputs
from .backend import get_backend
from .errors import (
    CapabilityError, DtypeError, MultiparamError, NotMaterializedError, ShapeError, UnknownNameError,
    UnsupportedModelError,
)
from .gradients import model_grad
from .init import init_model
from .layer import Layer
from .param import Param, TransposedParam, canonical_shape
from .registry import backend_of, load_adapter, supported_text
from .spec import Spec
from .state import IncompatibleKeys, StateDict, load_state_dict, state_dict
from .summary import Summary
from .transaction import WritePlan


class ParamTable(Mapping):
    """An ordered, read-only ``{canonical name: Param}`` over a model's
    index, each Param made at its first access (``ModelIndex.param``): a
    first look lists names without making a handle per parameter, and the
    handle a user holds is the one every later access returns."""

    __slots__ = ("_params", "_names")

    def __init__(self, params: "_Params", names: Dict[str, Any]):
        # the index's Params, not the index itself: the index holds its
        # tables, and a table holding the index would be a reference cycle
        self._params = params
        self._names = names     # the table's names, in order (a dict: membership in O(1))

    def __getitem__(self, name: str) -> Param:
        if name not in self._names:
            raise KeyError(name)
        return self._params.param(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class _Params:
    """The Params of one index, made at their first ask (what the index's
    tables look names up in)."""

    __slots__ = ("model", "slots", "owner", "aliases", "made")

    def __init__(self, model: "Model", slots: Dict[str, tuple], owner: Dict[Hashable, str],
                 aliases: Dict[str, tuple], made: Dict[str, Param]):
        self.model, self.slots, self.owner, self.aliases, self.made = model, slots, owner, aliases, made

    def param(self, name: str) -> Param:
        param = self.made.get(name)
        if param is not None:
            return param
        slot = self.slots[name][0]
        owner = self.owner[slot.ident if slot.ident is not None else id(slot)]
        if owner == name:
            param = Param(self.model, slot, name)
            param.aliases = self.aliases.get(name, (name,))
        else:
            primary = self.param(owner)
            param = TransposedParam(primary, name) if slot.transposed else primary
        return self.made.setdefault(name, param)


class ModelIndex:
    """Canonical view of one description of the native model (what
    ``Model.index()`` returns; package-internal).

    Built in one pass over the layer tree that records names only: every
    canonical name's slot and layer node, the first plain name of each
    storage (``ident``: it owns the Param, later names alias it) and the
    names of ties.  Param handles are made at their first access
    (:meth:`param`), so listing names costs a record per name, not an
    object."""

    def __init__(self, model: "Model", root):
        self.model = model
        self.nodes: Dict[str, Any] = {}         #: every layer node by canonical path ("" the root)
        #: every canonical name -> (slot, layer node), in the framework's order
        self.slots: Dict[str, tuple] = {}
        self._unique: Dict[str, Any] = {}       # each parameter's first name -> its slot
        self._owner: Dict[Hashable, str] = {}   # storage ident -> the name owning its Param
        self._aliases: Dict[str, tuple] = {}    # owning name -> all its names, for ties only
        self.made: Dict[str, Param] = {}        #: the Params made so far, by name
        self._layers: Optional[Dict[str, Layer]] = None
        nodes, slots, unique, owner, aliases = self.nodes, self.slots, self._unique, self._owner, self._aliases
        late = []    # a name tied transposed before its parameter's first plain name

        # depth first, each layer before its children, in the framework's
        # order (a loop, not a nested function calling itself: that is a
        # reference cycle, which would keep these records, and the layers
        # they point to, alive after the index is dropped until the garbage
        # collector runs)
        stack = [(root, "")]
        while stack:
            node, path = stack.pop()
            nodes[path] = node
            prefix = path + "." if path else ""
            for slot in node.params:
                name = prefix + (slot.key or slot.role)
                slots[name] = (slot, node)
                key = slot.ident
                if key is None:
                    key = id(slot)
                first = owner.get(key)
                if first is None:
                    if slot.transposed:
                        late.append(name)
                        continue
                    owner[key] = name
                    unique[name] = slot
                else:
                    aliases[first] = aliases.get(first, (first,)) + (name,)
            children = node.children
            if children:
                stack.extend([(child, prefix + child.key) for child in reversed(children)])
        if late:   # rare: redo the owners and aliases in the framework's order
            self._alias_in_order()
        self._params = _Params(model, slots, owner, self._aliases, self.made)
        #: every canonical name, aliases included
        self.params = ParamTable(self._params, slots)
        #: each parameter once, by its first name
        self.unique = ParamTable(self._params, unique)

    def param(self, name: str) -> Param:
        """The Param of canonical ``name`` (any of a tie's names), made at
        the first ask and the same object from then on (made once even when
        threads ask together: the first stored wins).  KeyError for an
        unknown name."""
        return self._params.param(name)

    def aliases(self, name: str) -> tuple:
        """Every canonical name of the parameter whose first name is
        ``name`` (``Param.aliases``, without making the Param)."""
        return self._aliases.get(name, (name,))

    @property
    def layers(self) -> Dict[str, Layer]:
        """Every layer handle by canonical path ("" the root), made at the
        first look at a layer (listing parameters needs none)."""
        layers = self._layers
        if layers is None:
            model = self.model
            layers = self._layers = {path: Layer(model, node, path) for path, node in self.nodes.items()}
        return layers

    @property
    def root(self) -> Layer:
        return self.layers[""]

    def unique_slots(self) -> Dict[str, Any]:
        """Each parameter's first name -> its slot, in order (what
        ``shapes()`` reads, making no Param)."""
        return self._unique

    def _alias_in_order(self) -> None:
        """The records when a name tied transposed comes before its
        parameter's first plain name: owners are the first plain names,
        and every name again in order."""
        owner, unique, aliases = self._owner, self._unique, self._aliases
        owner.clear()
        unique.clear()
        aliases.clear()
        order = [(name, slot, slot.ident if slot.ident is not None else id(slot))
                 for name, (slot, _) in self.slots.items()]
        for name, slot, key in order:
            if key not in owner and not slot.transposed:
                owner[key] = name
        for name, slot, key in order:
            first = owner[key]
            if first == name:
                unique[name] = slot
            else:
                aliases[first] = aliases.get(first, (first,)) + (name,)


class Model:
    """A native model of any backend, seen through one interface."""

    #: True when every parameter's shape was known at the last look at the
    #: model (``index()``); stays True until ``refresh()``.  Set by the handle.
    materialized = False

    def __init__(self, adapter, native: Any, state: Any):
        self.adapter = adapter
        self.native = native          #: the framework's own model object
        #: what the adapter's hooks take as ``state`` (package-internal; see
        #: ``Adapter.prepare``): the native model, or the Flax variables' holder
        self.adapter_state = state
        self._cache: Optional[ModelIndex] = None
        self._cache_key: Hashable = None   # the adapter's description_key of the cache
        self._grads: dict = {}        # ident -> last gradient from m.grad (native layout)
        #: serialises this handle's writes, consistent copies and ``grad``
        #: (see "Threads" in the README); re-entrant, as ``grad`` may write
        self.lock = threading.RLock()

    # -- basics -----------------------------------------------------------------
    @property
    def backend(self) -> str:
        return self.adapter.name

    def __getattr__(self, name: str) -> Any:
        # only reached for names the class does not define: a backend
        # extension (``m.flax``), else a clear AttributeError naming them
        if name.startswith("_"):
            raise AttributeError(name)
        extensions = type(self.adapter).extensions
        if name in extensions:
            return extensions[name](self)
        have = f"; this backend's extensions: {', '.join(extensions)}" if extensions else ""
        raise AttributeError(f"{type(self).__name__} of backend {self.backend!r} has no attribute {name!r}{have}")

    @property
    def channels_last(self) -> bool:
        """True when this backend's images are NHWC (Keras, Flax); see
        ``multiparam.layout.input_to_native``."""
        return bool(getattr(self.adapter, "channels_last", False))

    def __call__(self, *args: Any, train: Optional[bool] = None, **kwargs: Any) -> Any:
        """Forward through the native model with any signature
        (``m(x)``, ``m(input_ids=ids, attention_mask=mask)``); returns what
        the native model returns.

        Inputs are in the framework's native layout (NHWC images on
        channels-last backends).  ``train`` None follows the framework's
        current mode; False forces inference (BatchNorm running statistics),
        True training mode (see ``Adapter.call``)."""
        out = self.adapter.call(self.adapter_state, Inputs(args, kwargs), train)
        # a forward may materialise lazy shapes, or record the sample input
        # (a changed description_key: only a call through the handle does)
        if self._cache is not None and (not self.materialized or self._cache_key != self.adapter.description_key(
                self.adapter_state)):
            self._cache = None
        return out

    def refresh(self) -> "Model":
        """Forget the cached index (after changing the native structure)."""
        self._cache = None
        self.materialized = False
        return self

    def index(self) -> ModelIndex:
        """The canonical index of the native model (package-internal):
        cached once every shape is known, rebuilt on each call before.
        The adapter's ``description_key`` changes only in a forward, which
        ``__call__`` checks, so the cached index is answered without asking."""
        if self._cache is not None and self.materialized:
            return self._cache          # the hot path: every m["name"] comes here
        key = self.adapter.description_key(self.adapter_state)
        root = self.adapter.describe(self.adapter_state)
        self.materialized = bool(self.adapter.is_materialized_tree(self.adapter_state, root))
        self._cache, self._cache_key = ModelIndex(self, root), key
        return self._cache

    @property
    def _state(self) -> Any:
        # the name adapters and test kits used before ``adapter_state``
        return self.adapter_state

    def last_grad(self, ident: Hashable) -> Any:
        """The gradient of the parameter with storage ``ident`` from the last
        ``grad()`` call (native layout), or None (package-internal)."""
        return self._grads.get(ident)

    # -- access -----------------------------------------------------------------
    def __getitem__(self, key: Union[int, str]) -> Union[Layer, Param]:
        """``m[2]`` a layer; ``m["2.bias"]`` a parameter; ``m["0.block 1"]`` a layer."""
        index = self._cache
        if index is None or not self.materialized:
            index = self.index()
        if key.__class__ is str or isinstance(key, str):
            param = index.made.get(key)     # the hot path: a Param asked for before
            if param is not None:
                return param
            if key in index.slots:
                return index.param(key)
            if key in index.layers and key:
                return index.layers[key]
            known = list(index.params) + [k for k in index.layers if k]
            raise UnknownNameError(key, known, what="parameter or layer")
        return index.root[key]

    def __setitem__(self, name: str, value: Any) -> None:
        """``m["0.weight"] = array`` sets; ``m["0.weight"] += 1`` updates in place."""
        param = self[name]
        if not isinstance(param, Param):
            raise TypeError(f"{name!r} is a layer; assign to one of its parameters")
        if value is not param:
            param.set(value)

    def __len__(self) -> int:
        return len(self.index().root)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.index().root)

    def __contains__(self, name: str) -> bool:
        return name in self.index().params

    @property
    def root(self) -> Layer:
        return self.index().root

    def params(self) -> Dict[str, Param]:
        return self.index().root.params()

    def named_layers(self) -> Dict[str, Layer]:
        """Every layer by canonical path (the root is ``""``)."""
        return dict(self.index().layers)

    def named_parameters(self, pattern: Optional[str] = None) -> Dict[str, Param]:
        """Ordered ``{canonical name: Param}``, each tied parameter once (a
        read-only mapping whose Params are made as they are first asked for;
        ``dict(...)`` copies it).

        ``pattern`` selects with a regular expression matched at the start
        of the name, as Gluon's ``collect_params(select)`` does
        (``".*weight"``, ``"0\\..*"``).  A tied parameter is listed under its
        first name, or under the first of its names that matches."""
        index = self.index()
        if pattern is None:
            return index.unique     # read-only; its Params are made as they are asked for
        rx = re.compile(pattern)
        out = {}
        for first in index.unique:
            for name in index.aliases(first):
                if rx.match(name):
                    out[name] = index.param(first)
                    break
        return out

    def parameters(self) -> List[Param]:
        return list(self.index().unique.values())

    def shapes(self) -> Dict[str, Optional[tuple]]:
        """``{canonical name: canonical shape}``; None for a dim not known yet."""
        unique = self.index().unique_slots()     # slots, not Params: a first look makes none
        slots = unique.values()
        shapes = self.adapter.native_shapes(self.adapter_state, [slot.ref for slot in slots])
        return {name: canonical_shape(slot, shape) for name, slot, shape in zip(unique, slots, shapes)}

    def num_parameters(self, trainable: Optional[bool] = None) -> int:
        """Number of scalars, each tied parameter once, as the framework
        counts its own: ``trainable=True`` counts only trainable ones
        (torch's ``parameters()``); the default counts everything in the
        state (Keras' ``count_params``, Gluon's ``collect_params``), running
        statistics included.  Torch's names may split what the framework
        holds as one array (an LSTM's ``bias_ih`` and ``bias_hh``, whose sum
        Keras and Flax keep): that array counts once."""
        total = 0
        for name, p in self.index().unique.items():
            if trainable is not None and p.trainable != trainable:
                continue
            shape = p.shape
            if shape is None or any(d is None for d in shape):
                raise NotMaterializedError(name, shape)
            size = int(np.prod(shape, dtype=np.int64))
            ref = p.slot.ref
            total += ref.native_size(size) if isinstance(ref, Composite) else size
        return total

    def ties(self) -> List[Tuple[str, ...]]:
        """Groups of canonical names that are one parameter."""
        index = self.index()
        return [aliases for aliases in map(index.aliases, index.unique) if len(aliases) > 1]

    def tie(self, dst: str, src: str, transpose: bool = False) -> "Model":
        """Make ``dst`` use ``src``'s parameters from now on, in the
        framework itself: its forward, autograd and optimizers then see one
        parameter, and ``dst`` takes ``src``'s current values.

        ``dst`` and ``src`` are both layer paths (``m.tie("4", "2")``: every
        parameter of layer 4 by role) or both parameter names
        (``m.tie("out.weight", "embed.weight")``).  ``transpose=True`` ties a
        2-D parameter to the transpose of another (tied autoencoder weights).
        Everything is checked before anything is tied."""
        index = self.index()
        pairs = self._tie_pairs(index, dst, src)
        plans = []
        for d, s in pairs:
            pd, ps = index.params[d], index.params[s]
            if pd is ps or pd.primary is ps:
                raise MultiparamError(f"{d!r} and {s!r} are already one parameter"
                                      if d != s else f"cannot tie {d!r} to itself")
            if pd.trainable != ps.trainable or (pd.role == "counter") != (ps.role == "counter"):
                # a running statistic tied to a trainable weight breaks the
                # forward (torch) and means nothing: only like with like
                kind = lambda p: "a counter" if p.role == "counter" else (
                    "trainable" if p.trainable else f"state ({p.role})")
                raise MultiparamError(f"cannot tie {d!r} ({kind(pd)}) to {s!r} ({kind(ps)}): ties join "
                                      "trainable parameters with trainable ones, statistics with statistics")
            check = _TieCheck(d, s, transpose)
            for p in (pd, ps):
                check.require_materialized(p)
            if transpose and len(ps.shape) != 2:
                raise ShapeError(f"transpose=True ties 2-D parameters; {s!r} has shape {ps.shape}")
            want = tuple(reversed(ps.shape)) if transpose else tuple(ps.shape)
            check.check(pd, want, ps.dtype, source=ps)
            dslot, dnode = index.slots[d]
            sslot, _ = index.slots[s]
            native_transpose = _needs_native_transpose(sslot, dslot, tuple(ps.shape), transpose)
            plans.append((dslot, dnode, sslot, native_transpose))
        if any(t for *_, t in plans):
            cap = self.adapter.capability("tie_transposed")
            if not cap.supported:
                raise CapabilityError(self.backend, "tie a parameter to a transposed one", cap.reason)
        for dslot, dnode, sslot, native_transpose in plans:
            self.adapter.tie(self.adapter_state, dslot, dnode.native, sslot, native_transpose)
        self.refresh()
        return self

    @staticmethod
    def _tie_pairs(index: ModelIndex, dst: str, src: str) -> List[Tuple[str, str]]:
        if not isinstance(dst, str) or not isinstance(src, str):
            raise TypeError("tie() takes two layer paths or two parameter names as strings")
        def known(name):
            if name not in index.params and name not in index.layers:
                raise UnknownNameError(name, list(index.params) + [k for k in index.layers if k],
                                       what="parameter or layer")
        known(dst)
        known(src)
        if dst in index.params and src in index.params:
            return [(dst, src)]
        if dst in index.layers and src in index.layers and dst and src:
            if dst == src:
                raise MultiparamError(f"cannot tie layer {dst!r} to itself")
            droles = [s.leaf for s in index.layers[dst].node.params]
            sroles = [s.leaf for s in index.layers[src].node.params]
            if sorted(droles) != sorted(sroles) or not droles:
                raise ShapeError(f"cannot tie layer {dst!r} (parameters {droles}) to layer {src!r} "
                                 f"(parameters {sroles}): they must have the same parameters")
            return [(f"{dst}.{r}", f"{src}.{r}") for r in droles]
        raise TypeError(f"tie() needs two layers or two parameters; got {dst!r} and {src!r}")

    # -- state ----------------------------------------------------------------------
    def state_dict(self) -> StateDict:
        """``{canonical name: array}`` copies in canonical layout, each tied
        parameter once, running statistics included; ``.ties`` lists groups."""
        return state_dict(self)

    def load_state_dict(self, d, strict: bool = True) -> IncompatibleKeys:
        """Load a state dict from any backend; all entries are checked
        (names, shapes, dtypes) before any is written."""
        return load_state_dict(self, d, strict=strict)

    # -- summary ------------------------------------------------------------------
    def summary(self) -> Summary:
        """A table of every parameter: canonical and native name and shape,
        dtype, trainable, ties.  Prints as text; renders as HTML in notebooks."""
        return Summary(self)

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def __repr__(self) -> str:
        index = self.index()
        try:
            count = f"{self.num_parameters():,} values"
        except NotMaterializedError:
            count = "shapes not known yet"
        return (f"<multiparam.Model backend={self.backend!r} native={type(self.native).__name__} "
                f"{len(index.unique)} parameters, {count}>")

    # -- gradients and initialisation (multiparam.gradients, multiparam.init) ------
    def grad(self, x: Any, loss: Any = None, target: Any = None,
             train: bool = False, gather: bool = True) -> Dict[str, Any]:
        """Fresh gradients ``{canonical name: array}`` (canonical layout) of
        ``loss(output, target)``.

        ``x`` is the model's input: one array, a tuple of positional inputs,
        a dict of keyword inputs (``dict(input_ids=ids, labels=y)``) or an
        ``Inputs``.  ``loss`` is None or ``"sum"`` (the sum of the primary
        output: the output, or the first floating array of a structured one
        such as a ``ModelOutput``), ``"mean"``, ``"mse"`` (with ``target=``),
        ``"model"`` (the model's own ``.loss``) or a callable
        ``loss(output, target)``; an integer target stays integer.
        A tied parameter appears once, holding the sum of its uses'
        contributions.  Native accumulated gradients are left untouched.

        ``train=False`` (default) differentiates the inference-mode forward
        (BatchNorm uses running statistics), so gradients mean the same on
        every backend; ``train=True`` uses training mode.  Running
        statistics are never changed by ``grad``.

        Sharded parameters (JAX ``NamedSharding``, torch ``DTensor``) get
        the framework's own sharded gradient.  ``gather=True`` (default)
        gathers each into a global NumPy array, bounded by
        ``MULTIPARAM_MAX_GATHER`` (torch: a collective, so every process
        calls ``grad``).  ``gather=False`` gathers nothing: each name maps to
        ``[(global index, local NumPy block)]``, the blocks of the gradient
        this process holds in canonical layout, as ``p.shards()`` gives a
        parameter's (an unsharded gradient is one block, the whole); a
        backend that cannot shard raises ``CapabilityError``.  Under FSDP2
        the gradient is FSDP's own: each process differentiates its ``x``,
        reduce-scattered over the data-parallel ranks."""
        with self.lock:     # no write may change a parameter under autograd's feet
            out, self._grads = model_grad(self, x, loss=loss, target=target, train=train, gather=gather)
        return out

    def astype(self, dtype) -> "Model":
        """Convert the model's floating parameters and state to ``dtype``
        (``"bfloat16"``, ``"float16"``, ``np.float32``, ...) in place, the
        framework's own way, so it then computes in that dtype.  A dtype the
        framework cannot hold raises ``CapabilityError`` naming it, with the
        model unchanged."""
        # the capability first: a backend that cannot hold bfloat16 may not
        # have ml_dtypes either, and should say the former
        wanted = dtype if isinstance(dtype, str) else np.dtype(dtype).name
        cap = self.adapter.capability(f"dtype:{wanted}")
        if not cap.supported:
            raise CapabilityError(self.backend, f"hold {wanted} parameters", cap.reason)
        target = dtypes.dtype(dtype)
        if not dtypes.is_floating(target):
            raise DtypeError(f"astype converts floating parameters; {dtypes.name(target)} is not a "
                             "floating dtype")
        self.adapter.astype(self.adapter_state, target)
        return self.refresh()

    def init(self, initializer, where=None, seed: Optional[int] = None, **kw):
        """Initialise parameters; see ``multiparam.init``."""
        return init_model(self, initializer, where=where, seed=seed, **kw)

    def apply(self, fn: Callable[[Layer], Any]) -> "Model":
        """Call ``fn(layer)`` on every layer, children before parents, as
        torch's ``Module.apply`` does; a layer reused twice is visited once."""
        _apply_children_first(self.index().root, fn, set())
        return self


def _apply_children_first(layer: Layer, fn: Callable[[Layer], Any], seen: set) -> None:
    """:meth:`Model.apply` on ``layer``'s subtree; ``seen``: the native
    layers visited so far."""
    for child in layer.children():
        _apply_children_first(child, fn, seen)
    if id(layer.native) in seen and layer.path:
        return
    seen.add(id(layer.native))
    fn(layer)


def wrap(obj: Any, sample_input: Any = None, backend: Optional[str] = None, **options) -> Model:
    """A Model handle for ``obj``: a native model of any registered backend,
    or a ``multiparam.nn`` spec (built for ``backend``, default the current
    one).  ``sample_input`` runs one forward so lazy shapes become known.
    Flax: pass ``variables=`` to use existing variables instead of
    initialising, ``seed=`` to choose the init key."""
    if isinstance(obj, Model):
        if sample_input is not None:
            obj(sample_input)
        return obj
    if isinstance(obj, Spec):
        adapter = load_adapter(backend or get_backend())
        native = adapter.build(obj)
    else:
        name = backend_of(obj)
        if backend is not None and backend != name:
            raise UnsupportedModelError(obj, f"models of backend {backend!r}, but this one is {name!r}")
        adapter = load_adapter(name)
        if not adapter.is_model(obj):
            raise UnsupportedModelError(obj, supported_text())
        native = obj
    adapter = adapter.specialise(native)   # one backend, several model kinds (Flax linen, NNX)
    state = adapter.prepare(native, sample_input, **options)
    return Model(adapter, native, state)


def _needs_native_transpose(src_slot, dst_slot, src_shape: tuple, transpose: bool) -> bool:
    """Whether the dst's native array is the transpose of the src's native
    array (as opposed to the same array), given both slots' layouts and the
    canonical relation the user asked for.  Layouts that differ by more than
    a transpose cannot be tied."""
    probe = np.arange(int(np.prod(src_shape))).reshape(src_shape)     # canonical src
    try:
        src_native = _layout.to_native(probe, src_slot.layout)
        dst_native = _layout.to_native(probe.T if transpose else probe, dst_slot.layout)
    except ValueError:      # a layout that regroups axes (Keras depthwise, EinsumDense)
        raise CapabilityError("multiparam", "tie parameters whose native layouts regroup axes",
                              f"{dst_slot.native_name} and {src_slot.native_name}") from None
    if dst_native.shape == src_native.shape and np.array_equal(dst_native, src_native):
        return False
    if dst_native.ndim == 2 and np.array_equal(dst_native, src_native.T):
        return True
    raise CapabilityError("multiparam", "tie parameters whose native layouts differ by more than a transpose",
                          f"{dst_slot.native_name} and {src_slot.native_name}")


class _TieCheck(WritePlan):
    """``tie`` writes no values (the framework shares one storage from then
    on), but ``dst`` takes ``src``'s values, so each pair is checked as that
    write would be, worded as a tie; and a tie cannot cast, so the dtypes
    must be equal."""

    __slots__ = ("dst", "src", "transpose")

    def __init__(self, dst: str, src: str, transpose: bool):
        super().__init__()
        self.dst, self.src, self.transpose = dst, src, transpose

    def shape_message(self, param: Param, shape: tuple, source: Param) -> str:
        hint = ""
        if not self.transpose and len(source.shape) == 2 and tuple(param.shape) == tuple(reversed(source.shape)):
            hint = "; pass transpose=True to tie it to the transpose"
        return (f"cannot tie {self.dst!r} of shape {param.shape} to {self.src!r} of shape {source.shape}"
                + (" transposed" if self.transpose else "") + hint)

    def check_dtype(self, param: Param, dtype: np.dtype, source: Any = None) -> np.dtype:
        if param.dtype != dtype:
            raise DtypeError(f"cannot tie {self.dst!r} ({param.dtype}) to {self.src!r} ({dtype})")
        return dtype
