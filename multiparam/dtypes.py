"""Dtypes: NumPy's, extended by ``ml_dtypes`` for what checkpoints use.

Real checkpoints are bfloat16, float16 and float8 as often as float32.  NumPy
has no bfloat16 or float8, so multiparam uses the ``ml_dtypes`` package
(JAX depends on it, so it is already there wherever JAX is) to give those
dtypes a NumPy face: ``np.dtype(ml_dtypes.bfloat16)``.  A bfloat16 array is
then read, written, saved and moved bit for bit like any other.

``ml_dtypes`` is optional: it is imported the first time one of its dtypes is
named, and a clear error says how to get it when it is missing.
"""
from __future__ import annotations

import importlib
from typing import Dict, Optional, Union

import numpy as np

from .errors import DtypeError

#: dtypes that need ml_dtypes, by the names NumPy users and checkpoints use
EXTENDED = ("bfloat16", "float8_e4m3fn", "float8_e5m2")

#: safetensors' dtype codes (the header's "dtype" field) -> dtype name
SAFETENSORS_CODES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
}
_CODE_OF = {name: code for code, name in SAFETENSORS_CODES.items()}


#: the unsigned integer of each item size: a value viewed as its bits
#: (compared bit for bit, or crossing an API whose dtypes it lacks)
UNSIGNED_OF_SIZE = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _ml_dtypes():
    try:
        return importlib.import_module("ml_dtypes")
    except ImportError:
        raise DtypeError("bfloat16 and float8 arrays need the ml_dtypes package "
                         "(`pip install ml_dtypes`; JAX installs it)") from None


#: dtype name -> dtype, once resolved: a load asks for every tensor's
#: dtype by name several times, and resolving an ml_dtypes name through
#: importlib cost more than the rest of the check
_NAMED: Dict[str, np.dtype] = {}


def dtype(spec: Union[str, np.dtype, type]) -> np.dtype:
    """A NumPy dtype from a name (``"bfloat16"``, ``"float32"``), a NumPy
    dtype or a scalar type; the ml_dtypes names resolve through ml_dtypes."""
    if isinstance(spec, np.dtype):
        return spec
    if isinstance(spec, str):
        found = _NAMED.get(spec)
        if found is None:
            found = _NAMED[spec] = _resolve(spec)
        return found
    return _resolve(spec)


def _resolve(spec: Union[str, type]) -> np.dtype:
    if isinstance(spec, str) and spec in EXTENDED:
        return np.dtype(getattr(_ml_dtypes(), spec))
    try:
        return np.dtype(spec)
    except TypeError:
        raise DtypeError(f"unknown dtype {spec!r}; use a NumPy dtype name or one of {', '.join(EXTENDED)}") \
            from None


def name(dt: np.dtype) -> str:
    """The dtype's name (``bfloat16`` for ml_dtypes' type, not NumPy's ``V2``)."""
    return np.dtype(dt).name


def is_floating(dt: Optional[np.dtype]) -> bool:
    """True for float16/32/64 and ml_dtypes' floats (their ``kind`` is 'V')."""
    if dt is None:
        return False
    dt = np.dtype(dt)
    return dt.kind == "f" or dt.name in EXTENDED


def from_safetensors(code: str) -> np.dtype:
    """The dtype of a safetensors header code (``"BF16"``)."""
    if code not in SAFETENSORS_CODES:
        raise DtypeError(f"safetensors dtype {code!r} is not supported; known: {', '.join(SAFETENSORS_CODES)}")
    return dtype(SAFETENSORS_CODES[code])


def to_safetensors(dt: np.dtype) -> str:
    """The safetensors header code of a dtype."""
    code = _CODE_OF.get(name(dt))
    if code is None:
        raise DtypeError(f"dtype {name(dt)} cannot be stored in a safetensors file")
    return code
