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
  another entry (``compile_guards``);
* generated code checks each assumed fact where the value appears (``check``), so a field
  rebound to a value of another kind during the call is a clear error, never a wrong gradient.
"""
from __future__ import annotations

import types
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from ..errors import GradientError
from ..frontend.names import fixed_cell_values
from ..values.fields import read_field
from ..values.kinds import NONDIFF, OBJECT, REAL, TENSOR

_Module = torch.nn.Module
_Tensor, _Parameter = torch.Tensor, torch.nn.Parameter
ITEMS = "*"
CHECKED = (TENSOR, REAL, NONDIFF, "P", "PT", "PR")   # the kinds ``check`` can check a call's result as
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


def iterated(m) -> Optional[list]:
    """The modules iterating over ``m`` yields, where that is torch's own ``__iter__`` over its
    submodules (``nn.Sequential``, ``nn.ModuleList``); else None."""
    it = type(m).__iter__ if isinstance(m, _Module) else None
    if it is None or it not in (torch.nn.Sequential.__iter__, torch.nn.ModuleList.__iter__):
        return None
    items = list(m)
    return items if all(isinstance(x, _Module) for x in items) else None


def compile_guards(guards: Tuple[tuple, ...]) -> Callable[[tuple], bool]:
    """The check that arguments satisfy an entry's guards ``(argument position, path, fact)``
    (the classes, tensor ranks and kinds its transform assumed), as one generated function run at
    every call of the entry: each path's prefix is read once, in the order the guards were found
    (a path's modules are checked before their fields are read), and each fact is tested inline."""
    ns = {"_field": read_field, "_fact": fact, "_T": _Tensor, "_P": _Parameter}
    names: dict = {}
    lines: List[str] = []

    def value(i: int, path: tuple) -> str:
        name = names.get((i, path))
        if name is None:
            if not path:
                expr = f"args[{i}]"
            elif path[-1] == ITEMS:
                expr = f"tuple([type(x) for x in {value(i, path[:-1])}])"
            else:
                expr = f"_field({value(i, path[:-1])}, {path[-1]!r})"
            name = names[(i, path)] = f"x{len(names)}"
            lines.append(f"{name} = {expr}")
        return name

    for k, (i, path, expected) in enumerate(guards):
        x, c = value(i, path), f"c{k}"
        ns[c] = expected
        lines.append(f"if {_violates(x, path, expected, c, ns)}: return False")
    src = "def fits(args):\n    try:\n" + "".join(f"        {ln}\n" for ln in lines) + \
        "    except Exception:   # a field gone, a module iterated differently: not this entry's\n" \
        "        return False\n    return True\n"
    exec(compile(src, "<torchzygote guards>", "exec"), ns)  # noqa: S102 - generated from the guards
    return ns["fits"]


def _violates(x: str, path: tuple, expected, c: str, ns: dict) -> str:
    """The test that value ``x`` does not have the fact ``expected`` (``fact``'s result)."""
    if path and path[-1] == ITEMS:
        return f"{x} != {c}"
    kind, detail, flag = expected
    if kind == TENSOR:
        return (f"type({x}) is not _T and type({x}) is not _P or {x}.dim() != {detail!r} or "
                f"({x}.dtype.is_floating_point or {x}.dtype.is_complex) != {flag!r}")
    if kind == REAL:
        return f"type({x}) is not float and type({x}) is not int"
    if kind == NONDIFF:
        return f"not ({x} is None or type({x}) is bool or type({x}) is str)"
    if isinstance(detail, type) and issubclass(detail, _Module):   # a module of exactly that class
        ns[c + "k"] = detail
        return f"type({x}) is not {c}k"
    return f"_fact({x}) != {c}"


def check(v, kind: str, rank, floating: Optional[bool], where):
    """``v``, after checking the fact the generated code assumed about it (see the module
    docstring; for a submodule, ``rank`` is its class): a field rebound to another kind during the
    call is an error, not a wrong number."""
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
    elif kind == OBJECT:   # a submodule, whose fields were read as its class defines them
        if t is rank:
            return v
        what = f"a module of class {rank.__name__}"
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
