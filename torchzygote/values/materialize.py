"""The gradients as the user sees them: an input's adjoint combined with what the context holds
for the identity objects inside it, shaped like the input."""
from __future__ import annotations

import fractions
import numbers
import types

import torch

from .algebra import accum
from .context import Context
from .kinds import has_identity
from .record import Record

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

PLAIN = {float, int, fractions.Fraction, type(None), str}  # their gradient is the adjoint as is


def materialize(ctx: Context, value, g, memo=None):
    """The gradient of ``value`` as the user sees it: its adjoint ``g`` combined
    with what the context holds for identity objects, shaped like ``value``."""
    if type(value) in PLAIN and type(g) is not complex:
        # a float's gradient is a float, also where NumPy scalars made it (``s * x[0]``, x an array)
        return float(g) if type(value) is float and type(g) is not float and isinstance(g, numbers.Real) else g
    if memo is None:
        memo = {}
    key = id(value)
    if has_identity(value):
        if key in memo:
            return memo[key]
        memo[key] = None
        slot = ctx.peek(value)
        # after the pullback a container's slot mirrors its state on entry (mutations were
        # undone), while the object itself is in its final state: the slot gives the shape
        if isinstance(value, list):
            n = len(slot) if slot is not None else len(value)
            out = [materialize(ctx, value[i] if i < len(value) else None,
                               slot[i] if slot is not None else None, memo) for i in range(n)]
            res = out if any(o is not None for o in out) else None
        elif isinstance(value, dict):
            keys = list(value) + [k for k in (slot or ()) if k not in value]
            out = {k: materialize(ctx, value.get(k), slot.get(k) if slot else None, memo) for k in keys}
            res = {k: v for k, v in out.items() if v is not None} or None
        elif isinstance(value, types.FunctionType):
            cells = value.__closure__ or ()
            fields = {}
            for name, cell in zip(value.__code__.co_freevars, cells):
                try:
                    contents = cell.cell_contents
                except ValueError:
                    continue
                cs = ctx.peek(cell)
                fields[name] = materialize(ctx, contents, cs.get("cell_contents") if cs else None, memo)
            res = Record(**fields) if any(v is not None for v in fields.values()) else None
        elif isinstance(value, types.CellType):
            cs = ctx.peek(value)
            res = materialize(ctx, value.cell_contents, cs.get("cell_contents") if cs else None, memo)
        elif isinstance(value, (torch.nn.Sequential, torch.nn.ModuleList)):
            out = [materialize(ctx, m, None, memo) for m in value]   # g.net[0].weight, like net[0].weight
            res = out if any(o is not None for o in out) else None
        elif isinstance(value, torch.nn.Module):
            res = _materialize_fields(ctx, value, slot, _module_fields(value), memo)
        else:
            res = _materialize_fields(ctx, value, slot, _object_fields(value), memo)
        res = accum(g, res) if g is not None and not isinstance(g, (dict, Record)) else (res if g is None else accum(res, g))
        memo[key] = res
        return res
    if isinstance(value, torch.Tensor):
        if not (value.dtype.is_floating_point or value.dtype.is_complex):
            return None  # integer and bool tensors carry no gradient
        if isinstance(g, torch.Tensor) and g.is_complex() and not value.is_complex():
            return g.real  # a real input's gradient is real (the complex convention's projection)
    if np is not None and isinstance(value, np.ndarray) and isinstance(g, np.ndarray) and g.dtype.kind == "c" \
            and value.dtype.kind != "c":
        return np.real(g)
    if isinstance(g, complex) and isinstance(value, (int, float, fractions.Fraction)):
        return g.real
    if isinstance(value, tuple):
        gs = tuple(g) if isinstance(g, (tuple, list)) else (None,) * len(value)
        if len(gs) != len(value):
            gs = (None,) * len(value)
        out = [materialize(ctx, v, gi, memo) for v, gi in zip(value, gs)]
        if all(o is None for o in out):
            return None
        if hasattr(value, "_fields"):
            return Record(**dict(zip(value._fields, out)))
        return tuple(out)
    return g


def _object_fields(obj):
    names = []
    if hasattr(obj, "__dict__"):
        names += list(vars(obj))
    for cls in type(obj).__mro__:
        for s in getattr(cls, "__slots__", ()):
            if s not in ("__dict__", "__weakref__") and s not in names:
                names.append(s)
    return names


def _module_fields(m):
    return list(m._parameters) + list(m._buffers) + list(m._modules) + \
        [k for k in vars(m) if not k.startswith("_") and k != "training"]


def _materialize_fields(ctx, obj, slot, names, memo):
    fields = {}
    for n in names:
        try:
            v = getattr(obj, n)
        except AttributeError:
            continue
        fields[n] = materialize(ctx, v, slot.get(n) if slot else None, memo)
        if isinstance(v, torch.nn.Parameter) and id(v) in ctx.tensor_grads:
            fields[n] = accum(fields[n], ctx.tensor_grads[id(v)])
    return Record(**fields) if any(v is not None for v in fields.values()) else None
