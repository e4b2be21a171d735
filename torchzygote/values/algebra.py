"""Gradient algebra: adding gradients of any structure (``None`` is zero), summing a gradient
back to its value's shape, a scalar output's seed, and cached number tensors."""
from __future__ import annotations

import fractions
import numbers
from typing import Any, Dict

import torch

from ..errors import GradientError
from .structures import STRUCTURES, join

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None


def accum(a, b):
    """Add two gradients of any structure (``values.structures``); ``None`` is zero."""
    if a is None:
        return b
    if b is None:
        return a
    s = STRUCTURES.get(type(a))
    if s is None or type(b) is not type(a):
        return a + b
    return join(s, a, b, accum)


def add_owned(a, b, owned: bool):
    """``accum(a, b)``, written into ``a`` where ``a`` is a sum the caller made and alone holds
    (``owned``) and adding ``b`` keeps its type, shape, dtype and device (outside torch autograd's
    graphs and torch.func's transforms): a parameter's gradient accumulated over a loop's steps reuses one buffer, as torch
    autograd's does, instead of a new sum per step. Its rule is ``a + b``'s: differentiated
    again (nested AD), it adds out of place."""
    if owned and type(a) is torch.Tensor and type(b) is torch.Tensor and a.shape == b.shape and \
            a.dtype == b.dtype and a.device == b.device and not (a.requires_grad or b.requires_grad) and \
            not (_wrapped(a) or _wrapped(b)):
        return a.add_(b)
    return accum(a, b)


# a tensor of torch.func's transforms (vmap's batched tensors have Tensor's type and one sample's shape)
_wrapped = getattr(getattr(torch._C, "_functorch", None), "is_functorch_wrapped_tensor", lambda t: True)


_NUMBER_TENSORS: Dict[tuple, Any] = {}
_NUMBER_DTYPES = frozenset({torch.float32, torch.float64, torch.complex64, torch.complex128})
_modes_active = getattr(torch._C, "_len_torch_function_stack", lambda: 0)
_dispatch_modes_active = getattr(torch._C, "_len_torch_dispatch_stack", lambda: 0)


def number_tensor(c, like: torch.Tensor):
    """The constant number ``c`` (an int or float) as a cached 0-d CPU tensor of ``like``'s
    dtype, for ``+``, ``-``, ``*`` with ``like`` and for ``like / c``. torch wraps a Python
    number in a new tensor on every op (about 2 us on a small tensor); a 0-d tensor of the
    same dtype takes the same kernel path (a CPU scalar, also beside CUDA tensors) with the
    same type promotion, so results are identical. Other dtypes (integers, half precision,
    where the number is rounded differently) and tensor subclasses get ``c`` itself."""
    t = _NUMBER_TENSORS.get((c, like.dtype, type(like)))
    if t is None:
        t = _new_number_tensor(c, like)
    return t


def _new_number_tensor(c, like):
    dtype = like.dtype
    # zeros stay numbers (-0.0 == 0.0 would share an entry); nan never finds its entry; no
    # tensors are made under a mode (a fake-tensor or device mode would make its own kind)
    if c != c or c == 0 or abs(c) >= 2 ** 53 or type(like) not in (torch.Tensor, torch.nn.Parameter) \
            or _modes_active() or _dispatch_modes_active():
        return c
    t = torch.tensor(c, dtype=dtype, device="cpu") if dtype in _NUMBER_DTYPES else c
    if len(_NUMBER_TENSORS) < 4096:   # numbers that change every call (a schedule) fill it once
        _NUMBER_TENSORS[(c, dtype, type(like))] = t
    return t


def unbroadcast(g, x):
    """Sum a gradient back to the shape (and kind) of the value it belongs to."""
    if g is None:
        return None
    if isinstance(g, torch.Tensor):
        if isinstance(x, torch.Tensor):
            if g.shape == x.shape:
                return g
            return sum_to(g, x.shape)
        if isinstance(x, (int, float, complex, fractions.Fraction)):
            s = g.sum()
            return complex(s) if isinstance(x, complex) or s.is_complex() else float(s)
        if np is not None and isinstance(x, np.ndarray):
            return sum_to(g, x.shape).detach().cpu().numpy()
        return g
    if np is not None and isinstance(g, np.ndarray):
        if g.dtype.kind == "c" and not np.iscomplexobj(x):
            g = np.real(g)   # a real value's gradient is real (torch's convention)
        if isinstance(x, np.ndarray):
            if g.shape == x.shape:
                return g
            return np_sum_to(g, x.shape)
        if isinstance(x, (int, float, np.floating)):   # a gradient of the number's own type
            return (type(x) if isinstance(x, np.floating) else float)(np.sum(g))
    return g


def sum_to(g, shape):
    lead = g.dim() - len(shape)
    dims = list(range(lead)) + [i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1]
    if dims:
        g = g.sum(dim=dims, keepdim=True)
    return g.reshape(shape) if lead or g.shape != shape else g


def np_sum_to(g, shape):
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    dims = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=dims, keepdims=True) if dims else g


def seed(y):
    """The gradient of a scalar output with respect to itself (Zygote's ``sensitivity``)."""
    if type(y) is float:
        return 1.0
    if isinstance(y, torch.Tensor):
        if y.numel() != 1:
            raise GradientError(f"gradient needs a scalar output, got a tensor of shape {tuple(y.shape)}; "
                                f"use torchzygote.jacobian, or pullback with your own output gradient")
        return torch.ones_like(y)
    if isinstance(y, bool) or not isinstance(y, numbers.Number):
        if np is not None and isinstance(y, np.ndarray) and y.size == 1:
            return np.ones_like(y)
        raise GradientError(f"gradient needs a real number as output, got {type(y).__name__}; "
                            f"use torchzygote.jacobian for vector outputs, or pullback for any output")
    if isinstance(y, complex):
        raise GradientError("gradient needs a real output, got a complex number; take abs, real or imag "
                            "of it, or use pullback with your own output gradient")
    return type(y)(1)
