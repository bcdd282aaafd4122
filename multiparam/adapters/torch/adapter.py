"""PyTorch adapter: ``nn.Module``, ``named_parameters``, ``.data``, autograd.

Parameters live inside the modules, so the state is the module itself and a
slot's ref is ``(module, attribute)``: it stays valid when a Lazy module
materialises (torch swaps the ``UninitializedParameter``'s class in place)
and when a tie assigns another ``Parameter`` to the attribute.  Canonical
layout is torch's own, so no slot needs a layout conversion.
"""
from __future__ import annotations

import contextlib
import math
import sys
from typing import Any, Optional

import numpy as np
import torch
from torch import nn
from torch.nn.parameter import is_lazy
from torch.nn.utils import parametrize

from ... import initializers as I
from ...errors import CapabilityError, DtypeError
from ... import dtypes, layer_registry
from ..base import DENSE_IN_OUT, SAME, Adapter, Inputs, LayerNode, ParamSlot
from . import tensors
from .builders import BUILDERS

_CLASS_CACHE = layer_registry.CLASS_CACHE
_PARAMETER = nn.Parameter

# canonical role of a torch attribute, per layer family (else the attribute name)
_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)
_KINDS = (
    (nn.Sequential, "Sequential"),
    (nn.Linear, "Dense"),
    (nn.LazyLinear, "Dense"),
    (nn.ReLU, "ReLU"),
    (nn.Conv2d, "Conv2d"),
    (nn.modules.batchnorm._NormBase, "BatchNorm"),
    (nn.LayerNorm, "LayerNorm"),
    (nn.Embedding, "Embedding"),
    (nn.LSTM, "LSTM"),
    (nn.Flatten, "Flatten"),
)
def _is_tied_transposed(module: nn.Module, attr: str) -> bool:
    plist = getattr(module, "parametrizations", None)
    return plist is not None and attr in plist and any(isinstance(p, _Transpose) for p in plist[attr])




@layer_registry.per_class
def _kind(cls: type) -> str:
    """The neutral kind of a torch module class, else its class name."""
    for base, kind in _KINDS:
        if issubclass(cls, base):
            return kind
    return cls.__name__


@layer_registry.per_class
def _kind_of_param(cls: type, attr: str, is_buffer: bool):
    """(role, fans layout, declared) of attribute ``attr`` of a module of
    class ``cls``: registered layer classes first (``mp.register_layer``;
    Hugging Face's ``Conv1D`` and RMSNorms are registered below), then
    torch's own layers, else the attribute's own name, undeclared unless the
    class is torch's.  A torch model's canonical layout is its own storage
    (its ``state_dict``), so a registered layout only tells fans and
    portable draws how to read it.  Memoised per class until the registry
    changes."""
    kinds = layer_registry.lookup(cls)
    if kinds is not None and attr in kinds:
        layout = kinds[attr].layout
        return kinds[attr].role, (None if layout == SAME else layout), True
    if issubclass(cls, _NORM_TYPES) and attr == "weight":
        return "scale", None, True
    if issubclass(cls, (nn.Embedding, nn.EmbeddingBag)) and attr == "weight":
        return "embedding", None, True
    if issubclass(cls, nn.modules.rnn.RNNBase):
        return ("weight" if attr.startswith("weight") else "bias"), None, True
    if attr == "num_batches_tracked":
        return "counter", None, True
    declared = cls.__module__.startswith("torch.") or is_buffer
    return attr, None, declared


# layers of libraries people load checkpoints from, by qualified name so
# that the library is not imported: their parameters then mean what they
# mean (a norm's weight is a scale; Conv1D stores (in, out))
for _cls in ("transformers.pytorch_utils.Conv1D",):
    layer_registry.register_layer(_cls, weight=DENSE_IN_OUT, bias="bias")
for _cls in ("transformers.models.llama.modeling_llama.LlamaRMSNorm",
             "transformers.models.mistral.modeling_mistral.MistralRMSNorm",
             "transformers.models.qwen2.modeling_qwen2.Qwen2RMSNorm",
             "transformers.models.t5.modeling_t5.T5LayerNorm"):
    layer_registry.register_layer(_cls, weight="scale")


@contextlib.contextmanager
def _mode(module: nn.Module, train: Optional[bool]):
    """Run with every submodule in train (True) or eval (False) mode, then
    put each one's own flag back; None changes nothing."""
    if train is None:
        yield
        return
    flags = [(m, m.training) for m in module.modules()]
    module.train(train)
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def _shape_hint(module: nn.Module, attr: str) -> Optional[tuple]:
    """Canonical shape of a lazy parameter, as far as the config tells."""
    if isinstance(module, (nn.modules.batchnorm._NormBase, nn.LayerNorm)):
        return (None,)
    if isinstance(module, nn.LSTM) and attr == "weight_ih_l0":
        return (4 * module.hidden_size, None)
    out = getattr(module, "out_features", None) or getattr(module, "out_channels", None)
    if out is None:
        return None
    if attr == "bias":
        return (out,)
    if attr == "weight":
        kernel = tuple(getattr(module, "kernel_size", ()))
        return (out, None) + kernel
    return None


class _Transpose(nn.Module):
    """The parametrization of a transposed tie: the dst reads src.T."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.T


_SHARDING = None


def _dtensors():
    """``multiparam.adapters.torch.sharding`` once ``torch.distributed.tensor``
    is imported, else None: no tensor can be a DTensor before its module
    is, so an unsharded model never pays for importing it.  Asked on every
    read and write: kept once found."""
    global _SHARDING
    if _SHARDING is None:
        if "torch.distributed.tensor" not in sys.modules:
            return None
        from . import sharding
        _SHARDING = sharding
    return _SHARDING


def _grad_array(g: torch.Tensor) -> Any:
    """A gradient as NumPy, or a DTensor's as a ``ShardedArray`` (its local
    blocks; gathered only when asked)."""
    found = _dtensor(g)
    return tensors.to_numpy(g) if found is None else found.sharded_grad(g)


def _dtensor(t) -> Any:
    """The sharding helpers when ``t`` is a DTensor, else None."""
    found = _dtensors()
    return found if found is not None and found.is_dtensor(t) else None


def _settled(state: nn.Module, ref) -> torch.Tensor:
    """The tensor at ``ref`` once every FSDP2 module is resharded: a plain
    tensor there may be FSDP's all-gathered copy, which a write would miss
    and which ``.numpy()`` would pin (FSDP then cannot free it)."""
    t = _tensor(ref)
    found = _dtensors()
    if found is not None and not found.is_dtensor(t) and found.settle(state):
        t = _tensor(ref)
    return t


def _tensor(ref) -> torch.Tensor:
    module, attr = ref
    parameters = module._parameters
    t = parameters.get(attr)
    if t is not None:
        return t
    if attr not in parameters and _is_tied_transposed(module, attr):
        return module.parametrizations[attr].original
    t = module._buffers.get(attr)
    if t is None:
        raise LookupError(f"{type(module).__name__} has no parameter {attr!r} any more; "
                          "call m.refresh() after changing the model")
    return t




class TorchAdapter(Adapter):
    """Adapter for ``torch.nn.Module`` (Lazy modules included)."""

    name = "torch"
    capabilities = {}   # everything, transposed ties included (parametrizations)
    channels_last = False   # NCHW, the canonical layout
    # torch's copy kernel makes the (out, in) -> (in, out) copies of a
    # transfer into Keras or Flax whenever torch is imported
    copy_kernel = staticmethod(tensors.copy_kernel)
    # a load that casts (a bfloat16 checkpoint into a float32 model)
    # converts with copy_, as load_state_dict does, on every core
    cast_kernel = staticmethod(tensors.cast_kernel)
    # a write is copy_ into the parameter's own memory; the transposing one
    # (out of Flax or Keras) runs on one core, so two at once use both
    writes_in_parallel = True

    def transposed_array(self, source: np.ndarray) -> Any:
        """A transposed view of ``source`` (no copy): :meth:`write_array`'s
        ``copy_`` transposes it straight into the parameter's own memory
        with torch's kernel, one copy in all, as ``load_state_dict`` does."""
        return tensors.transposed_view(source)

    def is_model(self, obj: Any) -> bool:
        return isinstance(obj, nn.Module)

    def prepare(self, native: nn.Module, sample_input: Any = None, **options) -> nn.Module:
        if options:
            raise TypeError(f"unexpected options for a torch model: {sorted(options)}")
        if _dtensors() is not None:
            _dtensors().settle(native)    # FSDP2 modules a forward left unsharded
        if sample_input is not None:
            # eval mode: materialising shapes must not move BatchNorm statistics
            with torch.no_grad(), _mode(native, False):
                self.call(native, Inputs.of(sample_input))
        return native

    # -- description -----------------------------------------------------------
    def describe(self, state: nn.Module) -> LayerNode:
        lazy = []
        root = self._node(state, "", "", lazy)
        root.materialized = not lazy
        return root

    def _node(self, module: nn.Module, key: str, native_prefix: str, lazy: list) -> LayerNode:
        cls = type(module)
        kinds = _CLASS_CACHE
        node = LayerNode(key, kinds.get((_kind, cls)) or _kind(cls), module)
        slots = node.params
        # what torch's state_dict holds: parameters, then persistent buffers
        parameters, children = module._parameters, module._modules
        for attr, t in parameters.items():
            if t is None:
                continue
            role, fans_layout, declared = kinds.get((_kind_of_param, cls, attr, False)) or \
                _kind_of_param(cls, attr, False)
            if type(t) is _PARAMETER:      # the common case: a plain, materialised Parameter
                slots.append(ParamSlot(role, native_prefix + attr, (module, attr), SAME, t.requires_grad, id(t),
                                       None, False, attr, declared, fans_layout))
            else:
                slots.append(self._slot(module, attr, t, role, fans_layout, declared, native_prefix, False, lazy))
        if module._buffers:
            skip = module._non_persistent_buffers_set
            for attr, t in module._buffers.items():
                if t is None:
                    continue
                if attr in skip:
                    if is_lazy(t):
                        lazy.append(t)
                    continue
                role, fans_layout, declared = kinds.get((_kind_of_param, cls, attr, True)) or \
                    _kind_of_param(cls, attr, True)
                slots.append(self._slot(module, attr, t, role, fans_layout, declared, native_prefix, False, lazy))
        tied_t = ()
        if children.get("parametrizations") is not None:
            tied_t = [a for a in module.parametrizations if _is_tied_transposed(module, a)]
            for attr in tied_t:
                t = module.parametrizations[attr].original
                role, fans_layout, declared = _kind_of_param(cls, attr, True)
                slots.append(self._slot(module, attr, t, role, fans_layout, declared, native_prefix, True, lazy))
        # _modules, not named_children(): a module used twice must appear at both keys
        for child_key, child in children.items():
            if child is not None and not (tied_t and child_key == "parametrizations"):
                # (a transposed tie's parametrizations are shown as the tied parameter, above)
                node.children.append(self._node(child, child_key, native_prefix + child_key + ".", lazy))
        return node

    @staticmethod
    def _slot(module: nn.Module, attr: str, t: torch.Tensor, role: str, fans_layout, declared: bool,
              native_prefix: str, transposed: bool, lazy: list) -> ParamSlot:
        """The slot of any tensor but a plain Parameter: a buffer, a lazy
        parameter (its shape hint from the config), a transposed tie's
        original."""
        if is_lazy(t):
            lazy.append(t)
            hint = _shape_hint(module, attr)
        else:
            hint = None     # the shape is the tensor's own (hints are for lazy ones)
        return ParamSlot(
            role, native_prefix + ("parametrizations." + attr + ".original" if transposed else attr),
            (module, attr), SAME, isinstance(t, nn.Parameter) and t.requires_grad, id(t), hint, transposed,
            attr, declared, fans_layout)

    def is_materialized(self, state: nn.Module) -> bool:
        stack, seen = [state], set()
        while stack:
            module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            for t in module._parameters.values():
                if t is not None and is_lazy(t):
                    return False
            for t in module._buffers.values():
                if t is not None and is_lazy(t):
                    return False
            stack.extend(c for c in module._modules.values() if c is not None)
        return True

    # -- forward ---------------------------------------------------------------
    def _tensor_in(self, x: Any, state: nn.Module) -> Any:
        """An input as the model takes it: tensors and non-array values
        (``None``, flags, strings) as they are, NumPy arrays and lists of
        numbers as tensors; floats take the model's floating dtype (a
        bfloat16 model gets bfloat16 inputs; NumPy's float64 default would
        clash with float32 weights)."""
        if isinstance(x, torch.Tensor) or not isinstance(x, (np.ndarray, np.generic, list)):
            return x
        arr = np.asarray(x)
        if dtypes.is_floating(arr.dtype):
            target = next((p.dtype for p in state.parameters() if p.is_floating_point()),
                          torch.get_default_dtype())
            if arr.dtype.name in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):
                return tensors.from_numpy(np.ascontiguousarray(arr)).to(target)
            return torch.as_tensor(arr).to(target)
        return torch.as_tensor(arr)

    def call(self, state: nn.Module, inputs: Inputs, train: Optional[bool] = None) -> Any:
        """``module(*args, **kwargs)`` in the module's own mode, or in
        ``train`` mode for this call only (each submodule's flag is restored
        after)."""
        args = [self._tensor_in(a, state) for a in inputs.args]
        kwargs = {k: self._tensor_in(v, state) for k, v in inputs.kwargs.items()}
        with _mode(state, train):
            return state(*args, **kwargs)

    def to_numpy(self, array: Any) -> np.ndarray:
        return tensors.to_numpy(array)

    # -- storage primitives ------------------------------------------------------
    def array_shape(self, state, ref) -> Optional[tuple]:
        t = ref[0]._parameters.get(ref[1])
        if type(t) is nn.Parameter:     # the common case, never lazy (shapes() asks every parameter)
            return tuple(t.shape)
        t = _tensor(ref)
        return None if is_lazy(t) else tuple(t.shape)

    def array_shapes(self, state, refs: list) -> list:
        # shapes() of a whole model: plain Parameters read in one loop
        out = []
        for ref in refs:
            t = ref[0]._parameters.get(ref[1])
            out.append(tuple(t.shape) if type(t) is nn.Parameter else self.array_shape(state, ref))
        return out

    def array_dtype(self, state, ref) -> Optional[np.dtype]:
        t = _tensor(ref)
        try:
            return tensors.numpy_dtype(t.dtype)
        except DtypeError as exc:
            raise CapabilityError("torch", f"show {t.dtype} as NumPy", str(exc)) from None

    def read_array(self, state, ref) -> np.ndarray:
        # detach().numpy() shares memory with the parameter on CPU: no copy.
        # The ndarray is a fresh object, so mark it read-only here and the
        # handle need not make a read-only view of it; .cpu() only off the
        # CPU (it costs ~1 us even on CPU).
        t = (_tensor(ref) if "torch.distributed.tensor" not in sys.modules else _settled(state, ref)).detach()
        if t.dtype in tensors.BITS and type(t) is torch.Tensor and t.is_cpu:
            # bfloat16/float8 as their bits, asked first: numpy() refuses
            # them, and the exception cost a bfloat16 transfer ~10 us a read
            a = tensors.to_numpy(t)
        else:
            try:    # the hot read path: a CPU tensor of a dtype NumPy has
                a = t.numpy()
            except (TypeError, RuntimeError):   # off the CPU, a DTensor
                dtensor = _dtensor(t)
                if dtensor is not None:     # a gather (collective), bounded by MULTIPARAM_MAX_GATHER
                    return dtensor.gathered(t, f"{type(ref[0]).__name__}.{ref[1]}")
                a = tensors.to_numpy(t)
        a.setflags(write=False)
        return a

    def write_array(self, state, ref, value) -> None:
        if _dtensors() is not None:
            t = _settled(state, ref)
            if _dtensor(t) is not None:   # each rank writes its own block: placements kept
                whole = tensors.to_numpy(value) if isinstance(value, torch.Tensor) else value
                self.write_shards(state, ref, lambda index: whole[index])
                return
        t = _tensor(ref)
        # a read-only (borrowed) array is only read here: copy_ copies it
        source = value if isinstance(value, torch.Tensor) else tensors.borrowed(value, tensors.from_numpy)
        with torch.no_grad():   # an in-place edit, as torch's .data idiom
            t.copy_(source)

    def fill_array(self, state, ref, fill) -> bool:
        return tensors.fill_in_place(_tensor(ref), fill)

    def memory_of(self, state, ref):
        # views share their base's storage; a DTensor's local shard is
        # its own and is written block by block, in order, anyway
        t = _tensor(ref).detach()
        return t.untyped_storage().data_ptr() if type(t) is torch.Tensor else None

    def array_object(self, state, ref) -> torch.Tensor:
        return _tensor(ref)

    # -- sharded arrays (DTensor; multiparam.sharding, the base's templates) -----
    def array_sharding(self, state, ref):
        found = _dtensors()
        if found is None:
            return None
        t = _settled(state, ref)
        return found.describe(t) if found.is_dtensor(t) else None

    def local_shards(self, state, ref) -> list:
        return _dtensors().local_shards(_tensor(ref))

    def write_shards(self, state, ref, block) -> None:
        _dtensors().write_local(_tensor(ref), block)

    def fill_shard_arrays(self, state, ref, fill) -> bool:
        return _dtensors().fill_local(_tensor(ref), fill)

    def shard_owners(self, state, ref) -> list:
        t = _tensor(ref)
        return _dtensor(t).owners(t) if _dtensor(t) is not None else super().shard_owners(state, ref)

    def process_index(self) -> int:
        return _dtensors().process_index() if _dtensors() is not None else 0

    def process_count(self) -> int:
        return _dtensors().process_count() if _dtensors() is not None else 1

    def barrier(self) -> None:
        if _dtensors() is not None and _dtensors().process_count() > 1:
            _dtensors().dist.barrier()

    def array_grad(self, state, ref) -> Optional[np.ndarray]:
        g = _tensor(ref).grad
        return None if g is None else _grad_array(g)

    def grad_key(self, state, ref):
        return id(_tensor(ref))

    # -- gradients -----------------------------------------------------------------
    def native_grads(self, state: nn.Module, inputs: Inputs, loss: Any = None, target: Any = None,
                     train: bool = False) -> dict:
        """``torch.autograd.grad`` of the loss, the module in eval mode (or
        train mode with ``train=True``) for this call; buffers such as
        BatchNorm running statistics are put back as they were."""
        saved = [(b, b.detach().clone()) for b in state.buffers() if not is_lazy(b)]
        try:
            found = _dtensors()
            fsdp = found is not None and found.settle(state)
            # listed before the forward: FSDP2 swaps its unsharded copies in
            # there, and the handle knows the sharded parameters
            params = [p for p in state.parameters() if p.requires_grad]  # de-duplicated by torch
            out = self.call(state, inputs, train)
            value = self.loss_value(out, loss, target)
            if fsdp:
                # FSDP2 differentiates its unsharded copies and reduce-scatters
                # into the sharded parameters' .grad in backward hooks; autograd.grad
                # sees none of it.  Its own backward, every .grad put back after
                grads = found.fsdp_grads(value.reshape(()), params)
            else:
                # autograd.grad leaves every .grad untouched: a native training loop is unaffected
                grads = torch.autograd.grad(value.reshape(()), params, allow_unused=True)
        finally:
            with torch.no_grad():   # after backward: the graph may read these buffers
                for b, old in saved:
                    if b.shape == old.shape:
                        b.copy_(old)
        return {id(p): (np.zeros(tuple(p.shape), dtype=tensors.numpy_dtype(p.dtype)) if g is None
                        else _grad_array(g)) for p, g in zip(params, grads)}

    def is_floating_array(self, x) -> bool:
        return isinstance(x, torch.Tensor) and x.is_floating_point()

    def reduce_sum(self, out):
        return out.sum()

    def reduce_mean(self, out):
        return out.mean()

    def as_target(self, target, out):
        t = torch.as_tensor(target) if not isinstance(target, torch.Tensor) else target
        return t if not t.is_floating_point() else t.to(out.dtype)

    # -- tying after construction --------------------------------------------------------
    def tie(self, state, dst, dst_layer, src, native_transpose: bool) -> None:
        """torch: assign the src ``Parameter`` to the dst module's attribute
        (what ``nn.Sequential(shared, shared)`` amounts to), so
        ``parameters()``, autograd and any optimizer built afterwards see one
        parameter.  A transposed tie registers a parametrization on the dst
        module whose ``original`` *is* the src Parameter, so the dst reads
        ``src.T`` on every forward and gradients flow into the src."""
        module, attr = dst.ref
        shared = _tensor(src.ref)
        if not native_transpose:
            if attr in module._parameters:
                setattr(module, attr, shared)
            else:
                module._buffers[attr] = shared
            return
        parametrize.register_parametrization(module, attr, _Transpose(), unsafe=True)
        module.parametrizations[attr].original = shared

    builders = BUILDERS

    # -- the framework's own views ------------------------------------------------------------
    def summary_idiom(self, state: nn.Module) -> list:
        out = []
        for name, p in state.named_parameters():
            out.append((name, None if is_lazy(p) else tuple(p.shape)))
        return out

    def native_count(self, state: nn.Module) -> int:
        return sum(p.numel() for p in state.parameters() if p.requires_grad)

    def astype(self, state: nn.Module, dtype: np.dtype) -> None:
        """``module.to(dtype)``: every floating parameter and buffer, the
        ``Parameter`` objects kept (torch swaps their data)."""
        state.to(tensors.torch_dtype(dtype))

    # -- initialisation (native mode) --
    def draw(self, kind: str, shape: tuple, dtype: np.dtype, seed: int, **params):
        """``torch.nn.init`` into a fresh tensor with a seeded ``torch.Generator``."""
        t = torch.empty(shape, dtype=tensors.torch_dtype(dtype))
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            if kind == "uniform":
                nn.init.uniform_(t, params["low"], params["high"], generator=gen)
            elif kind == "normal":
                nn.init.normal_(t, params["mean"], params["std"], generator=gen)
            elif kind == "truncated_normal":
                nn.init.trunc_normal_(t, params["mean"], params["std"], params["a"], params["b"],
                                      generator=gen)
            else:
                nn.init.orthogonal_(t, params["gain"], generator=gen)
        return t

    def framework_default(self, state, layer_node, slot):
        """What each module's ``reset_parameters`` does (torch 2.13 source):
        Linear/Conv kaiming_uniform(a=sqrt(5)) weight, U(+-1/sqrt(fan_in))
        bias; norms ones/zeros and running stats 0/1; Embedding N(0, 1)
        with the padding row 0; RNN/LSTM/GRU U(+-1/sqrt(hidden)) for all."""
        module, attr = slot.ref
        if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd, nn.Bilinear)):
            if attr == "weight":
                return I.kaiming_uniform(a=math.sqrt(5))
            if attr == "bias":
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(module.weight)
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                return I.uniform(-bound, bound)
        if isinstance(module, _NORM_TYPES):
            return {"weight": I.ones(), "bias": I.zeros(), "running_mean": I.zeros(),
                    "running_var": I.ones()}.get(attr)
        if isinstance(module, (nn.Embedding, nn.EmbeddingBag)) and attr == "weight":
            pad = getattr(module, "padding_idx", None)
            return I.normal(0, 1) if pad is None else I.ZeroRows(I.normal(0, 1), [pad])
        if isinstance(module, nn.modules.rnn.RNNBase):
            stdv = 1.0 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0.0
            return I.uniform(-stdv, stdv)
        return None


ADAPTER = TorchAdapter()
