"""What a transform may assume about the ``nn.Module`` objects it is specialised on, and the
checks that keep those assumptions true.

A module's fields (parameters, buffers, submodules, plain attributes such as ``self.eps``) and
what a function passed as an argument returns (an ODE solver's right-hand side) are known at run time, so their kinds are unknown to the analysis, and every computation on them
would be dispatched at run time. A transform made for particular module arguments (the first
call's, ``cache.entry_for(..., examples=args)``) reads their fields' *facts* instead (a tensor's
rank and whether it is floating-point, a number, None, a submodule's class) and specialises on
them. Two checks keep that sound:

* the entry records each fact as a guard on a path from one of its arguments
  (``(0, ("net", "0"), fact)``); a call whose arguments do not satisfy every guard gets
  another entry (``fits``);
* generated code checks each assumed fact where the value appears (``check``), so a field
  rebound to a value of another kind during the call is a clear error, never a wrong gradient.
"""
from __future__ import annotations

import types
from typing import Optional, Sequence, Tuple

import torch

from ..errors import GradientError
from ..frontend.names import fixed_cell_values
from ..values.kinds import NONDIFF, OBJECT, REAL, TENSOR

_Module = torch.nn.Module
_Tensor, _Parameter = torch.Tensor, torch.nn.Parameter
ITEMS = "*"
CHECKED = (TENSOR, REAL, NONDIFF, "P", "PT", "PR")   # the kinds ``check`` can check
TUPLE_ITEMS = {"PT": (_Tensor, _Parameter), "PR": (float, int)}   # a path step: the classes of the modules a Sequential or ModuleList iterates over


def fact(v) -> Optional[tuple]:
    """What a specialised transform may assume about value ``v``: ``(kind, rank, floating)``
    for a tensor (exactly ``Tensor`` or ``Parameter``), a number or None/bool/str; a module's
    class; a function's code and constant cells; None for anything else (not specialised on)."""
    t = type(v)
    if t is _Tensor or t is _Parameter:
        return TENSOR, v.dim(), v.dtype.is_floating_point or v.dtype.is_complex
    if t is float or t is int:
        return REAL, None, None
    if v is None or t is bool or t is str:
        return NONDIFF, None, None
    if isinstance(v, _Module):
        return OBJECT, t, None
    if t is types.FunctionType:   # a function passed in (an ODE's right-hand side): its code and the
        return OBJECT, v.__code__, fixed_cell_values(v)   # cells its transform binds (``torch.sum`` or ``torch.exp``)
    return None


def plain_field(m, name: str) -> bool:
    """Whether ``m.name`` reads a field of module ``m`` as the run-time dispatcher reads it
    (``handlers.getattr_dispatch``): no class in its MRO defines ``name`` (a property,
    descriptor or method) and attribute lookup is ``nn.Module``'s own."""
    cls = type(m)
    if not isinstance(m, _Module) or cls.__getattribute__ is not object.__getattribute__ or \
            cls.__getattr__ is not _Module.__getattr__:
        return False
    return not any(name in k.__dict__ for k in cls.__mro__)


def iterated(m) -> Optional[list]:
    """The modules iterating over ``m`` yields, where that is torch's own ``__iter__`` over its
    submodules (``nn.Sequential``, ``nn.ModuleList``); else None."""
    it = type(m).__iter__ if isinstance(m, _Module) else None
    if it is None or it not in (torch.nn.Sequential.__iter__, torch.nn.ModuleList.__iter__):
        return None
    items = list(m)
    return items if all(isinstance(x, _Module) for x in items) else None


def _at(v, path: Sequence[str]):
    for step in path:
        if step == ITEMS:
            return tuple(type(x) for x in v)
        v = getattr(v, step)
    return fact(v)


def fits(guards: Tuple[tuple, ...], args) -> bool:
    """Whether ``args`` satisfy an entry's guards ``(argument position, path, fact)``: the
    classes, tensor ranks and kinds its transform assumed (checked in the order they were
    found, so each path's modules are checked before their fields are read)."""
    try:
        for i, path, expected in guards:
            if _at(args[i], path) != expected:
                return False
    except Exception:   # a field gone, a module iterated differently: not this entry's
        return False
    return True


def check(v, kind: str, rank: Optional[int], floating: Optional[bool], where):
    """``v``, after checking the fact the generated code assumed about it (see the module
    docstring): a field rebound to another kind during the call is an error, not a wrong number."""
    t = type(v)
    if kind == TENSOR:
        if (t is _Tensor or t is _Parameter) and (rank is None or v.dim() == rank) and \
                (not floating or v.dtype.is_floating_point or v.dtype.is_complex):
            return v
        what = f"a {'floating-point ' if floating else ''}tensor" + (f" of rank {rank}" if rank is not None else "")
    elif kind == REAL:
        if t is float or t is int:
            return v
        what = "a number"
    elif kind == NONDIFF:   # (the analysis' N: no gradient, such as a comparison's bool or bool tensor)
        if not (t is float or t is complex or isinstance(v, torch.Tensor) and
                (v.dtype.is_floating_point or v.dtype.is_complex)):
            return v
        what = "a value without a gradient (None, a bool, a comparison's result)"
    else:   # a tuple (of tensors: PT, of numbers: PR)
        item = TUPLE_ITEMS.get(kind)
        if t is tuple and (item is None or all(type(x) in item for x in v)):
            return v
        what = "a tuple" + {"PT": " of tensors", "PR": " of numbers"}.get(kind, "")
    raise GradientError(
        f"this value was {what} when torchzygote specialised the function on its module arguments, "
        f"and is now {_describe(v)}: a module's field was rebound to a value of another kind during "
        f"the gradient call, by code the function calls (a method doing `self.w = ...`). Keep each field's "
        f"kind (tensor rank, number, None) while a gradient runs, or rebind it in the function that reads it "
        f"(torchzygote does not specialise on a field the function itself assigns)",
        where)


def _describe(v) -> str:
    if isinstance(v, torch.Tensor):
        return f"a {v.dtype} tensor of rank {v.dim()}"
    return f"a {type(v).__name__}"
