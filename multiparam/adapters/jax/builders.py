"""``mp.nn`` spec kind -> Flax linen module: the table the base adapter's
memoised ``build`` walks.  One spec object maps to one module object, which
Flax adopts once: the chapter's tied layer.

Input sizes are left to Flax (``init`` infers them); ``in_features`` of a
Dense spec is remembered on the module for shape hints and so ``prepare``
can initialise a built model at once.
"""
from __future__ import annotations

from flax import linen as nn

from .layers import IN_FEATURES_ATTR, NamedSequential, flatten


def _dense(spec, name):
    module = nn.Dense(spec.units, use_bias=spec.use_bias, name=name)
    if spec.in_features is not None:
        object.__setattr__(module, IN_FEATURES_ATTR, spec.in_features)  # linen modules are frozen
    return module


def _conv2d(spec, name):
    # NHWC, as Flax convolves; explicit (low, high) padding pairs per axis
    p = spec.padding
    return nn.Conv(spec.out_channels, (spec.kernel_size, spec.kernel_size),
                   strides=(spec.stride, spec.stride), padding=((p, p), (p, p)),
                   use_bias=spec.use_bias, name=name)


def _batch_norm(spec, name):
    # inference mode, fixed in the module as Flax does; Flax's momentum
    # weighs the old statistics: torch's 0.1 is 0.9
    return nn.BatchNorm(use_running_average=True, momentum=1.0 - spec.momentum,
                        epsilon=spec.eps, name=name)


def _sequential(spec, name, children):
    if spec.named:
        _rename_shared_namesakes(children)
        return NamedSequential(names=tuple(key for key, _ in children),
                               layers=tuple(native for _, native in children), name=name)
    return nn.Sequential([native for _, native in children], name=name)


def _rename_shared_namesakes(children) -> None:
    """Give a layer used twice a Flax name no sibling here has.

    Flax adopts a module held by two containers into the one that registers
    it first, the outermost, under the module's own ``name=`` (its first
    use's key, via ``NamedSequential.preserve_adopted_names``).  There that
    key may belong to another child (``{"block 0": Sequential({"block 0":
    shared}), "1": shared}``), and Flax raises NameInUseError.  The Flax name
    of a shared module is only where its variables sit in the pytree:
    canonical names come from the recorded calls, so renaming the unbound
    module (both containers hold the same object) changes nothing else."""
    keys = {key for key, _ in children}
    for key, native in children:
        own = getattr(native, "name", None) if isinstance(native, nn.Module) else None
        if own is None or own == key or own not in keys:
            continue
        taken = keys | {getattr(n, "name", None) for _, n in children}
        fresh = next(f"{own} (shared {i})" for i in range(1, len(taken) + 2) if f"{own} (shared {i})" not in taken)
        # a linen Module is a frozen dataclass; it is not yet bound (adopted),
        # so its name may still change
        object.__setattr__(native, "name", fresh)


BUILDERS = {
    "Dense": _dense,
    "ReLU": lambda spec, name: nn.relu,
    "Conv2d": _conv2d,
    "BatchNorm": _batch_norm,
    # exact two-pass variance, as torch computes it
    "LayerNorm": lambda spec, name: nn.LayerNorm(epsilon=spec.eps, use_fast_variance=False, name=name),
    "Embedding": lambda spec, name: nn.Embed(spec.num_embeddings, spec.features, name=name),
    # batch-first scan over the cell; returns the whole sequence
    "LSTM": lambda spec, name: nn.RNN(nn.OptimizedLSTMCell(spec.hidden_size), name=name),
    "Flatten": lambda spec, name: flatten,
    "Sequential": _sequential,
}
