"""What both bridges follow in the values torch sees: differentiable tensors, and the fields of
plain objects (user dataclasses and simple objects) that may hold them."""
from __future__ import annotations

import dataclasses
import types

import torch


def _diff(t) -> bool:
    return isinstance(t, torch.Tensor) and (t.dtype.is_floating_point or t.dtype.is_complex)


def _is_plain_object(x) -> bool:
    """An object whose fields may hold tensors that are worth following (user dataclasses and
    simple objects; not torch's, not classes, modules or functions)."""
    if isinstance(x, (type, types.ModuleType, types.BuiltinFunctionType, torch.dtype, torch.device)):
        return False
    if dataclasses.is_dataclass(x):
        return True
    mod = getattr(type(x), "__module__", "") or ""
    return hasattr(x, "__dict__") and not mod.startswith(("torch", "builtins", "numpy", "torchzygote"))


def _fields(x):
    if dataclasses.is_dataclass(x):
        return [f.name for f in dataclasses.fields(x)]
    return list(vars(x))
