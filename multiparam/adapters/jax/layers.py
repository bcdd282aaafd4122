"""What multiparam ships for Flax linen: a Sequential whose children keep
their names, and the flatten function ``mp.nn.Flatten`` builds.

Both are plain linen; a model built from them is an ordinary Flax model
whose variables pytree any Flax code can use.
"""
from __future__ import annotations

from flax import linen as nn

#: set by the builders on an ``nn.Dense`` whose spec gave ``in_features``:
#: it gives the kernel's shape before ``init`` and lets ``prepare``
#: initialise a built model at once (Flax itself infers the input size)
IN_FEATURES_ATTR = "_multiparam_in_features"


class NamedSequential(nn.Module):
    """``nn.Sequential`` whose children keep names (``"block 0"``).

    The layers are ordinary dataclass-field submodules; because the class
    sets ``preserve_adopted_names``, Flax names each adopted layer by its own
    ``name=`` (given by ``build``) instead of ``layers_<i>``, so the params
    live at ``params/.../block 0/...``.  ``names[i]`` is the key of
    ``layers[i]``; ``m[i]`` and ``m["block 0"]`` both index it.
    """

    names: tuple
    layers: tuple
    preserve_adopted_names = True  # read by Module._register_submodules

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, i):
        if isinstance(i, str):
            return self.layers[self.names.index(i)]
        return self.layers[i]

    def __len__(self):
        return len(self.layers)


#: the linen containers whose ``layers`` are the children, in order
SEQUENTIAL_TYPES = (nn.Sequential, NamedSequential)


def child_keys(container) -> list:
    """The keys of a Sequential container's children: their names in a
    :class:`NamedSequential`, else their positions."""
    if isinstance(container, NamedSequential):
        return [str(k) for k in container.names]
    return [str(i) for i in range(len(container.layers))]


def flatten(x):
    """Flatten every axis after the first: what ``mp.nn.Flatten`` builds on
    Flax (linen has no Flatten module).  On an NHWC feature map the order
    is (H, W, C); the next Dense's kernel gets a ``DenseAfterFlatten`` layout."""
    return x.reshape((x.shape[0], -1))
