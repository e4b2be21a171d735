"""The gradients as the user sees them: an input's adjoint combined with what the context holds
for the identity objects inside it, shaped like the input (its structure's ``gradient`` form:
a tuple for a tuple, a ``Record`` for a named tuple or an object, a registered type as itself)."""
from __future__ import annotations

import fractions
import numbers

import torch

from .algebra import accum
from .context import Context
from .kinds import has_identity
from .record import Record
from .structures import Structure, structure_of

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
    if has_identity(value):
        return _identity(ctx, value, g, memo)
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
    if isinstance(value, tuple):   # a value: its adjoint is a tuple of its items' adjoints
        n = len(value)
        gs = tuple(g) if isinstance(g, (tuple, list)) else (None,) * n
        st = structure_of(value)
        children, aux = st.flatten(value)
        return _build(ctx, st, children, aux, gs if len(gs) == n else (None,) * n, memo)
    return g


def _identity(ctx, value, g, memo):
    """An object with identity (aliased or cyclic ones once): its children's gradients from its
    slot in the context. After the pullback a list's or dict's slot mirrors its state on entry
    (mutations were undone) while the object is in its final state: the slot gives the keys."""
    key = id(value)
    if key in memo:
        return memo[key]
    memo[key] = None
    s = structure_of(value)
    slot = ctx.peek(value)
    children, aux = s.flatten(value)
    if type(children) is dict:
        keys = list(children) + ([k for k in slot if k not in children] if s.mirrors_slot and slot else [])
        grads = [slot.get(k) if type(slot) is dict else None for k in keys]
    elif s.mirrors_slot and slot is not None:
        keys, grads = range(len(slot)), slot
    else:
        keys, grads = range(len(children)), (None,) * len(children)
    res = _build(ctx, s, children, aux, grads, memo, keys)
    res = accum(g, res) if g is not None and not isinstance(g, (dict, Record)) else (res if g is None else accum(res, g))
    memo[key] = res
    return res


def _build(ctx, s: Structure, children, aux, grads, memo, keys=None):
    """The gradient of a structure (``s.flatten`` gave ``children, aux``) from its children's
    adjoints ``grads`` (by ``keys``, default all): None when no child has one."""
    named = type(children) is dict
    keys = (list(children) if named else range(len(children))) if keys is None else keys
    out = []
    for k, gk in zip(keys, grads):
        v = (children.get(k) if named else children[k] if k < len(children) else None)
        d = materialize(ctx, v, gk, memo)
        if named and isinstance(v, torch.nn.Parameter) and id(v) in ctx.tensor_grads:
            d = accum(d, ctx.tensor_grads[id(v)])   # what the torch fallback gave it through a list
        out.append(d)
    if all(d is None for d in out):
        return None
    return s.gradient(aux, dict(zip(keys, out)) if named else tuple(out))
