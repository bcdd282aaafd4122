"""The adapter for ``toyframework``: a minimal but complete ``Adapter``.

It describes a model as a tree of ``LayerNode``/``ParamSlot`` and provides
the per-array primitives (read, write, shape, dtype, object); multiparam's
handles do the rest: canonical names and layout, validation, ties, init,
state dicts, files, transfer.  This framework has no autograd, so ``m.grad``
is not available here.
"""
from typing import Any, Optional

import numpy as np
import toyframework

from multiparam.adapters.base import DENSE_IN_OUT, SAME, Adapter, Inputs, LayerNode, ParamSlot


class ToyAdapter(Adapter):
    name = "toy"   # the registry name, as in spec.py

    # -- recognising and preparing models -----------------------------------
    def is_model(self, obj: Any) -> bool:
        return isinstance(obj, toyframework.Chain)

    def prepare(self, native: toyframework.Chain, sample_input: Any = None, **options) -> Any:
        if sample_input is not None:
            native(sample_input)
        return native            # the parameters live in the model: it is the state

    def describe(self, chain: toyframework.Chain) -> LayerNode:
        root = LayerNode("", "Sequential", chain)
        for i, layer in enumerate(chain.layers):
            node = LayerNode(str(i), "Dense", layer)
            for role, key, layout in (("weight", "kernel", DENSE_IN_OUT), ("bias", "bias", SAME)):
                array = layer.params[key]
                # a layer used twice shares its arrays: the same ident ties them
                node.params.append(ParamSlot(role, f"layers.{i}.{key}", ref=(layer, key),
                                             layout=layout, ident=id(array)))
            root.children.append(node)
        return root

    def is_materialized(self, state: Any) -> bool:
        return True              # shapes are known from construction

    def call(self, state: toyframework.Chain, inputs: Inputs, train: Optional[bool] = None) -> Any:
        return state(*inputs.args, **inputs.kwargs)

    def to_numpy(self, array: Any) -> np.ndarray:
        if isinstance(array, toyframework.Tensor):
            return array.numpy()
        return np.asarray(array)

    # -- one native array each: ref is (layer, key) -----------------------------
    def read_array(self, state: Any, ref: tuple) -> np.ndarray:
        layer, key = ref
        return layer.params[key]          # zero-copy; the handle shows it read-only

    def array_shape(self, state: Any, ref: tuple) -> Optional[tuple]:
        layer, key = ref
        return layer.params[key].shape

    def array_dtype(self, state: Any, ref: tuple) -> Optional[np.dtype]:
        layer, key = ref
        return layer.params[key].dtype

    def write_array(self, state: Any, ref: tuple, value: np.ndarray) -> None:
        layer, key = ref
        layer.params[key][...] = value    # in place: the framework keeps its array object

    def array_object(self, state: Any, ref: tuple) -> Any:
        layer, key = ref
        return layer.params[key]

    def grad_key(self, state: Any, ref: tuple) -> Any:
        layer, key = ref
        return id(layer.params[key])


ADAPTER = ToyAdapter()
