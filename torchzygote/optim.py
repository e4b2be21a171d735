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

import dataclasses
import numbers
import types

import torch

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

__all__ = ["update"]


def update(model, grads, lr):
    """One gradient descent step ``model - lr * grads`` over any structure; see the module docstring."""
    from .api import Grads, Params

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
    if isinstance(m, (str, bytes, type, types.ModuleType, range, slice)) or m is None:
        return m
    key = id(m)
    if key in memo:  # aliased or cyclic: step it once
        return memo[key]
    if isinstance(m, tuple):
        if hasattr(m, "_fields"):  # named tuple: gradient is a Record (or a plain tuple)
            parts = [_update(v, _field(g, f) if not isinstance(g, tuple) else g[i], lr, memo)
                     for i, (f, v) in enumerate(zip(m._fields, m))]
            out = type(m)(*parts)
        else:
            gs = tuple(g) if not isinstance(g, tuple) else g
            out = tuple(_update(v, gi, lr, memo) for v, gi in zip(m, gs)) + tuple(m[len(gs):])
        memo[key] = out
        return out
    memo[key] = m
    if isinstance(m, list):
        gs = list(g) if not isinstance(g, (list, tuple)) else g
        for i, gi in enumerate(gs[:len(m)]):
            m[i] = _update(m[i], gi, lr, memo)
        return m
    if isinstance(m, dict):
        items = g.items() if hasattr(g, "items") else ()
        for k, gk in items:
            if k in m:
                m[k] = _update(m[k], gk, lr, memo)
        return m
    if isinstance(m, types.FunctionType):
        cells = m.__closure__ or ()
        for name, cell in zip(m.__code__.co_freevars, cells):
            gi = _field(g, name)
            if gi is None:
                continue
            try:
                contents = cell.cell_contents
            except ValueError:
                continue
            new = _update(contents, gi, lr, memo)
            if new is not contents:
                cell.cell_contents = new
        return m
    if isinstance(m, types.CellType):
        try:
            contents = m.cell_contents
        except ValueError:
            return m
        new = _update(contents, g, lr, memo)
        if new is not contents:
            m.cell_contents = new
        return m
    if isinstance(m, types.MethodType):
        _update(m.__self__, _field(g, "__self__") if _field(g, "__self__") is not None else g, lr, memo)
        return m
    # an object with fields
    items = g.items() if hasattr(g, "items") else ()
    frozen = dataclasses.is_dataclass(m) and getattr(getattr(type(m), "__dataclass_params__", None), "frozen", False)
    changes = {}
    for name, gi in items:
        if gi is None:
            continue
        try:
            old = getattr(m, name)
        except AttributeError:
            continue
        new = _update(old, gi, lr, memo)
        if new is not old:
            changes[name] = new
    if not changes:
        return m
    if frozen:
        init = {f.name for f in dataclasses.fields(m) if f.init}
        if set(changes) <= init:
            out = dataclasses.replace(m, **changes)
        else:  # fields outside __init__: write them as the dataclass machinery does
            out = dataclasses.replace(m, **{k: v for k, v in changes.items() if k in init})
            for k, v in changes.items():
                if k not in init:
                    object.__setattr__(out, k, v)
        memo[key] = out
        return out
    for name, new in changes.items():
        if isinstance(m, torch.nn.Module) and isinstance(getattr(m, name), torch.nn.Parameter):
            with torch.no_grad():
                getattr(m, name).copy_(new)
        else:
            setattr(m, name, new)
    return m
