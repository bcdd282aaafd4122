"""Keras layers multiparam ships for tensorflow: what ``mp.nn`` specs need
that Keras 3 lacks.

* :class:`NamedSequential`: a sequential container that keeps its
  children's names (Keras' ``Sequential`` only numbers them);
* :class:`Dense`: ``keras.layers.Dense`` that can read another layer's
  Variable transposed as its kernel (transposed ties);
* :class:`PaddedConv2D`: ``keras.layers.Conv2D`` with torch's integer
  zero padding;
* :class:`StoragePolicy`: a dtype policy storing variables in float8 and
  computing in float32 (``m.astype("float8_e4m3fn")``).

Each is an ordinary Keras layer with ``get_config`` (and ``from_config``
where the constructor needs it), registered with Keras as
``multiparam>NamedSequential`` etc., so ``model.save`` and
``keras.saving.load_model`` round-trip models made of them once this module
is imported (``mp.set_backend("tensorflow")`` or any tensorflow ``mp.wrap``
imports it).  Untied and unpadded, they behave exactly as the Keras layers
they extend.
"""
from __future__ import annotations

import keras

# Keras 3 deserialises only classes it knows by name (it never imports the
# module a config names): register each under the "multiparam" package.
_registered = keras.saving.register_keras_serializable(package="multiparam")


@_registered
class NamedSequential(keras.Layer):
    """A Keras layer applying named children in order.

    Keras' ``Sequential`` only numbers its layers; this keeps the names of a
    named ``multiparam.nn.Sequential`` (``"block 0"``, ...) so the canonical
    names match the other backends.  Children are indexable by position
    (``seq[1]``) and by name (``seq["block 1"]``).  A layer given twice is one
    layer called twice, so its variables are shared.
    """

    def __init__(self, named_layers=(), **kwargs):
        super().__init__(**kwargs)
        pairs = list(named_layers.items()) if isinstance(named_layers, dict) else list(named_layers)
        self.child_names = [str(n) for n, _ in pairs]
        self.child_layers = [layer for _, layer in pairs]

    def call(self, inputs):
        # the training flag reaches the children through Keras' call context
        x = inputs
        for layer in self.child_layers:
            x = layer(x)
        return x

    def compute_output_shape(self, input_shape):
        # through the children, as Keras' Sequential does: the feature-order
        # tracker needs every layer's output shape, and Keras' default for a
        # subclassed layer (a symbolic trace of call()) raised for a
        # NamedSequential nested in another (a tox -e fuzz counterexample)
        shape = tuple(input_shape)
        for layer in self.child_layers:
            shape = tuple(layer.compute_output_shape(shape))
        return shape

    def __len__(self) -> int:
        return len(self.child_layers)

    def __getitem__(self, i):
        if isinstance(i, str):
            return self.child_layers[self.child_names.index(i)]
        return self.child_layers[i]

    def named_layers(self) -> list:
        """``[(name, layer)]`` in call order; a reused layer appears at each name."""
        return list(zip(self.child_names, self.child_layers))

    def get_config(self):
        config = super().get_config()
        config["named_layers"] = [[n, keras.saving.serialize_keras_object(layer)]
                                  for n, layer in self.named_layers()]
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        pairs = [(n, keras.saving.deserialize_keras_object(c)) for n, c in config.pop("named_layers")]
        return cls(pairs, **config)


@_registered
class Dense(keras.layers.Dense):
    """``keras.layers.Dense`` that can also use another layer's Variable,
    transposed, as its kernel: what a transposed tie needs (an output
    projection tied to an embedding ``(vocab, dim)`` wants the kernel
    ``(dim, vocab)``).  ``mp.nn.Dense`` builds this on tensorflow; untied,
    it is exactly a Keras Dense (same name, variables and call).

    The tensorflow adapter's ``tie`` sets the two class attributes below on
    the instance; ``describe`` reads them back."""

    _tied_kernel_t = None            # the shared Variable, when tied transposed
    _tied_canonical_t = False        # canonical relation of that tie (for describe)

    @property
    def kernel(self):
        if self._tied_kernel_t is not None:
            return keras.ops.transpose(self._tied_kernel_t)
        return super().kernel


@_registered
class PaddedConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` with torch's integer zero padding on each
    spatial side (Keras only knows "valid" and "same"); one layer, so the
    canonical numbering matches the other backends."""

    def __init__(self, *args, pad: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.pad = int(pad)

    def _padded(self, shape):
        """The NHWC input shape after padding (unknown dims stay None)."""
        return (shape[0], *(None if d is None else d + 2 * self.pad for d in shape[1:3]), *shape[3:])

    def build(self, input_shape):
        super().build(self._padded(tuple(input_shape)))

    def call(self, inputs):
        p = self.pad
        return super().call(keras.ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]]))

    def compute_output_shape(self, input_shape):
        return super().compute_output_shape(self._padded(tuple(input_shape)))

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}


@_registered
class StoragePolicy(keras.DTypePolicy):
    """A dtype policy that stores variables in a dtype Keras cannot compute
    in (float8) and computes in another: ``StoragePolicy("float8_e4m3fn",
    "float32")``, named ``"float8_e4m3fn:float32"``.  Keras' own policies
    only pair a float32 store with a float16/bfloat16 compute
    (``mixed_bfloat16``); with this one a layer reads each float8 variable
    cast to the compute dtype (Keras' autocast of mixed precision), so a
    model whose weights ``m.astype("float8_e4m3fn")`` made float8 still
    runs.  Registered, so ``model.save`` round-trips it."""

    def __init__(self, name=None, compute=None):
        super().__init__(name if compute is None else f"{name}:{compute}")

    def _parse_name(self, name):
        stored, sep, compute = str(name).partition(":")
        if not sep:
            raise ValueError(f"a StoragePolicy is named 'stored:compute' (e.g. 'float8_e4m3fn:float32'), "
                             f"not {name!r}")
        standardize = keras.backend.standardize_dtype
        return standardize(compute), standardize(stored)
