"""Kinds of values: the one-letter names the analysis specialises on, and a value's kind at run time.

   R real Python number, C complex number, T torch tensor, A numpy array,
   L list, P tuple, D dict (exactly those types: containers with known semantics),
   N never differentiable (None, str, bool results of comparisons, types),
   O anything else (decided at run time), U undefined (no value yet),
   M a real number or a tensor (``loss = 0.0`` before a loop that adds tensors to it).
A tuple's kind may name its items' kind (``PT``, ``PR``).
"""
from __future__ import annotations

import fractions
import types
from typing import Sequence

import torch

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

REAL, COMPLEX, TENSOR, ARRAY, NONDIFF, OBJECT, UNDEFINED = "R", "C", "T", "A", "N", "O", "U"
MIXED = "M"
LIST, TUPLE, DICT = "L", "P", "D"
CONTAINERS = (LIST, TUPLE, DICT)
# tuples whose items are all tensors, or all real numbers (``x, v = state.unbind(-1)``)
TUPLE_OF = {TENSOR: "PT", REAL: "PR"}
NUMERIC = (REAL, COMPLEX)


def base(k: str) -> str:
    """The kind without its item kind (``PT`` is a tuple)."""
    return k[0]


def item_kind(k: str) -> str:
    """The kind of a tuple kind's items (``OBJECT`` when mixed or unknown)."""
    return k[1] if len(k) > 1 and k[0] == TUPLE else OBJECT


def tuple_kind(items) -> str:
    """A tuple's kind from its items' kinds; ``()`` is a tuple of numbers (an empty shape)."""
    kinds = set(items)
    return TUPLE_OF.get(kinds.pop(), TUPLE) if len(kinds) == 1 else TUPLE if kinds else TUPLE_OF[REAL]


def promote(kinds: Sequence[str]) -> str:
    ks = set(kinds) - {NONDIFF}
    if not ks:
        return REAL if NONDIFF in kinds else OBJECT
    if OBJECT in ks or UNDEFINED in ks or {base(k) for k in ks} & set(CONTAINERS):
        return OBJECT
    if TENSOR in ks:
        return TENSOR if ARRAY not in ks else OBJECT
    if ARRAY in ks:
        return ARRAY if MIXED not in ks else OBJECT
    if MIXED in ks:
        return MIXED if COMPLEX not in ks else OBJECT
    return COMPLEX if COMPLEX in ks else REAL


KIND_OF_TYPE = {float: REAL, int: REAL, fractions.Fraction: REAL, complex: COMPLEX,
                bool: NONDIFF, str: NONDIFF, type(None): NONDIFF, bytes: NONDIFF,
                torch.Tensor: TENSOR, torch.nn.Parameter: TENSOR, list: LIST, dict: DICT}
if np is not None:
    KIND_OF_TYPE.update({np.ndarray: ARRAY, np.bool_: NONDIFF, np.complex128: COMPLEX, np.complex64: COMPLEX})
    # NumPy's real scalars are numbers as Python's are (np.int64 counters, np.float32 data)
    KIND_OF_TYPE.update({t: REAL for t in (np.float64, np.float32, np.float16, np.int64, np.int32, np.int16,
                                           np.int8, np.uint64, np.uint32, np.uint16, np.uint8)})


def global_kind(t) -> str:
    """The kind a data global read is specialised on, from the type it had when the function was
    transformed (guarded at the call; ``write_checks.check_global_type`` checks it where a callee may
    have rebound it since). A global holding None is a placeholder, often bound during the call
    (``_cache = None``): its reads are dispatched at run time."""
    if t is None or t is type(None):
        return OBJECT
    k = KIND_OF_TYPE.get(t)
    if k is not None:
        return k
    return TENSOR if issubclass(t, torch.Tensor) else OBJECT


def may_carry(a) -> bool:
    """Whether a value may carry a gradient: not an int, a bool, or a list, tuple or dict (or one of
    their subclasses) of only such (a shape, a count, a flag)."""
    if type(a) is int or type(a) is bool:
        return False
    if isinstance(a, (list, tuple)):
        return any(may_carry(v) for v in a)
    if isinstance(a, dict):
        return any(may_carry(v) for v in a.values())
    return kind_of(a) not in (NONDIFF, OBJECT)


def same_tuple(like: tuple, items) -> tuple:
    """A tuple of ``like``'s type holding ``items``: a named tuple takes them as its fields, a
    structseq (``torch.return_types``) and other tuple subclasses as one sequence."""
    t = type(like)
    if t is tuple:
        return tuple(items)
    return t(*items) if hasattr(t, "_fields") else t(list(items))


def kind_of(x) -> str:
    k = KIND_OF_TYPE.get(type(x))
    if k is not None:
        return k
    if type(x) is tuple:  # a tuple's kind says what its items are, if a short look tells
        if len(x) <= 16:
            return tuple_kind([kind_of(e) for e in x])
        t = type(x[0]) if x else None
        if len(x) <= 4096 and KIND_OF_TYPE.get(t) in (REAL, TENSOR) and all(type(e) is t for e in x):
            return tuple_kind([KIND_OF_TYPE[t]])   # a long tuple of data (observations)
        return TUPLE
    if isinstance(x, torch.Tensor):
        return TENSOR
    return OBJECT


VALUE_TYPES = (int, float, complex, bool, str, bytes, type(None), tuple, frozenset, range, slice,
               fractions.Fraction, torch.Tensor, type, types.ModuleType, types.BuiltinFunctionType,
               torch.dtype, torch.device)
if np is not None:
    VALUE_TYPES += (np.ndarray, np.generic)


def has_identity(x) -> bool:
    """Objects whose gradient lives in the context (mutable or aliasable)."""
    if isinstance(x, VALUE_TYPES):
        return False
    if isinstance(x, types.FunctionType):   # its cells and its defaults hold values: their gradients live in its slot
        return x.__closure__ is not None or x.__defaults__ is not None or x.__kwdefaults__ is not None
    return True
