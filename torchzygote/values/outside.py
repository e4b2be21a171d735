"""Tensors the differentiated function reads from outside that need no gradient (run-time activity).

``gradient(() -> loss(model(x), y), ps)`` reads its data ``x`` from a closure or a global. The
transform cannot know that ``x`` is data (it could be one of the Params), so every callee it is
passed to would compute its gradient (a convolution's input gradient is a third of a small CNN's
backward) only for it to be dropped. At the start of a top-level gradient call the tensors the
function's closure cells and global names hold (in tuples too, and a module's parameters, buffers
and tensor fields) are looked at once: one that is not an implicit parameter and not reachable
from the explicit arguments is *outside data*. Its gradient has no consumer: what is read from a
closure, a global or a module's field gives its gradient back to that cell, global or module,
which the top-level call drops (a Param is credited instead, so Params are never data). As long
as such a tensor is the same object, not written in place since (its version), dispatch calls a
lifted callee given it through the transform that treats that position as a constant
(``dispatch.data_consts``), and a pullback skips a module field's gradient where the field holds
it (``Context.wants_field``).
"""
from __future__ import annotations

import types
from typing import Dict, Optional, Tuple

import torch

_Tensor = torch.Tensor
_Module = torch.nn.Module
_PLAIN = (int, float, complex, bool, str, type(None))


def outside_data(f, args, params) -> Optional[Dict[int, Tuple[torch.Tensor, int]]]:
    """``{id: (tensor, version)}`` of ``f``'s outside data (see the module), or None: also where
    an argument is something whose tensors cannot all be found (then none is data)."""
    if type(f) is not types.FunctionType:
        return None
    found: list = []
    for cell in f.__closure__ or ():
        try:
            _tensors_in(cell.cell_contents, found, 1)
        except ValueError:   # an empty cell
            continue
    names = f.__code__.co_names
    if names:
        g = f.__globals__
        for n in names:
            v = g.get(n)
            if v is not None and (isinstance(v, (_Tensor, _Module)) or type(v) is tuple):
                _tensors_in(v, found, 1)
    if not found:
        return None
    taken = set() if params is None else set(params)
    for a in args:
        if not _reachable(a, taken, 3):
            return None
    data = {id(t): (t, t._version) for t in found if t is not None and id(t) not in taken}
    return data or None


def _tensors_in(v, out: list, depth: int) -> None:
    """The tensors ``v`` is, or a tuple holds (nested ``depth`` deep), or a module holds (its
    parameters, buffers and tensor fields, and its submodules')."""
    if isinstance(v, _Tensor):
        out.append(v)
    elif type(v) is tuple and depth >= 0:
        for x in v:
            _tensors_in(x, out, depth - 1)
    elif isinstance(v, _Module):
        for m in v.modules():
            out.extend(m._parameters.values())
            out.extend(m._buffers.values())
            out.extend(x for x in m.__dict__.values() if isinstance(x, _Tensor))


def _reachable(a, ids: set, depth: int) -> bool:
    """Add to ``ids`` the tensors an explicit argument holds; False where it may hold more than is
    walked here (a module, an object, a deep container): its gradient could reach any of them."""
    if isinstance(a, _Tensor):
        ids.add(id(a))
        return True
    if isinstance(a, _PLAIN):
        return True
    if depth > 0 and type(a) in (tuple, list):
        return all(_reachable(x, ids, depth - 1) for x in a)
    if depth > 0 and type(a) is dict:
        return all(_reachable(x, ids, depth - 1) for x in a.values())
    return False
