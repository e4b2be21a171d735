"""A gradient descent step over any structure: ``update(model, grads, lr)``.

``model`` may be a number, tensor, NumPy array, tuple, named tuple, list,
dict, object with fields (``__dict__`` or ``__slots__``, dataclasses frozen or
not), ``torch.nn.Module``, or a closure; ``grads`` is the gradient
``torchzygote.gradient`` returned for it (same shape; ``None`` where a part has
no gradient; a ``Record`` for objects, named tuples and closures). Each
differentiable leaf ``m`` becomes ``m - lr * m̄``.

Mutable containers (lists, dicts, objects, closure cells) are updated in
place, and so are floating point tensors and arrays (so parameters shared by
several parts of a model, or held by a closure, see the step); immutable values
(numbers, tuples, named tuples, frozen dataclasses) are rebuilt and the new
value is returned. ``update`` always returns the (possibly new) model:
``model = update(model, grads, lr)`` works for every kind.

With implicit parameters, ``update(params, grads, lr)`` takes a
``torchzygote.Params`` and the ``Grads`` from ``gradient(loss, params)`` and
updates each parameter tensor in place.
"""
from __future__ import annotations

import numbers

import torch

from .api import Grads, Params
from .values.structures import CELL, METHOD, structure_of

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

__all__ = ["update"]


def update(model, grads, lr):
    """One gradient descent step ``model - lr * grads`` over any structure; see the module docstring."""
    if isinstance(grads, Grads):
        params = model if isinstance(model, Params) else grads.params
        for p in params:
            g = grads[p] if p in grads else None
            if g is not None:
                _leaf(p, g, lr)
        return model
    return _update(model, grads, lr, {})


def _field(g, name):
    """The gradient of field ``name`` from a Record, dict or tuple-like gradient."""
    if g is None:
        return None
    if isinstance(g, dict):
        return g.get(name)
    try:
        return getattr(g, name)
    except AttributeError:
        pass
    try:
        return g[name]
    except (KeyError, IndexError, TypeError):
        return None


def _leaf(m, g, lr):
    if isinstance(m, torch.Tensor):
        if not (m.dtype.is_floating_point or m.dtype.is_complex):
            return m
        step = g if isinstance(g, torch.Tensor) else torch.as_tensor(g, dtype=m.dtype, device=m.device)
        with torch.no_grad():
            m.sub_(lr * step.to(device=m.device, dtype=m.dtype))
        return m
    if np is not None and isinstance(m, np.ndarray):
        if m.dtype.kind not in "fc":
            return m
        if isinstance(g, torch.Tensor):
            g = g.detach().cpu().numpy()
        if m.flags.writeable:
            m -= lr * np.asarray(g, dtype=m.dtype)
            return m
        return m - lr * g
    if isinstance(m, bool):
        return m
    if isinstance(m, numbers.Number):
        if isinstance(g, torch.Tensor):
            g = g.item()
        return m - lr * g
    raise TypeError(f"update: don't know how to step a {type(m).__name__} with a gradient "
                    f"of type {type(g).__name__}")


def _update(m, g, lr, memo):
    if g is None:
        return m
    if isinstance(m, (torch.Tensor, numbers.Number)) or (np is not None and isinstance(m, (np.ndarray, np.generic))):
        return _leaf(m, g, lr)
    s = structure_of(m)
    if s is None:   # strings, types, modules, None: nothing to step
        return m
    key = id(m)
    if key in memo:  # aliased or cyclic: step it once
        return memo[key]
    memo[key] = m
    memo[key] = out = _step_children(s, m, g, lr, memo)
    return out


def _step_children(s, m, g, lr, memo):
    """Step each child of structure ``m`` that ``g`` has a gradient for: mutable structures are
    changed in place, immutable ones rebuilt when a child is a new value."""
    children, aux = s.flatten(m)
    if s is CELL or s is METHOD and _field(g, "__self__") is None:
        g = dict(zip(children, (g,)))   # the gradient of a cell or bound method is its content's
    gs = _children(g)
    named = type(children) is dict
    if isinstance(m, tuple) and (type(gs) is dict) != named:   # a named tuple stepped by position, or back
        gs = (dict(zip(children, gs)) if named else tuple(gs.values())) if gs is not None else None
    if gs is None or (type(gs) is dict) != named:
        return m
    changes = {}
    for k, gk in gs.items() if named else enumerate(gs[:len(children)]):
        if gk is None or (named and k not in children):
            continue
        old = children[k]
        new = _update(old, gk, lr, memo)
        if new is not old:
            changes[k] = new
    if not changes:
        return m
    if s.setter is not None:
        for k, v in changes.items():
            s.setter(m, k, v)
        return m
    if named:
        return s.unflatten(aux, {**children, **changes})
    return s.unflatten(aux, tuple(changes.get(i, c) for i, c in enumerate(children)))


def _children(g):
    """A gradient's children: a tuple by position, a dict by name, None for a leaf."""
    s = structure_of(g)
    return None if s is None else s.flatten(g)[0]
