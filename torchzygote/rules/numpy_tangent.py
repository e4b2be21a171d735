"""Tangent (forward-mode) helpers of the NumPy rules that need more than one expression.

Each takes the argument's tangent first (``d<param>`` in a rule's ``jvp`` term) and returns the
result's tangent; none writes into a tangent (tangents may be shared). Conventions at kinks are
the pullbacks' (ties of max share equally, ``|z|`` at 0 gives 0).
"""
from __future__ import annotations

import numpy as np


def np_t_abs(dx, x):
    """``|x|``: ``sign(x) dx`` for real ``x``; ``Re(conj(z) dz) / |z|`` for complex ``z`` (0 at 0)."""
    if np.iscomplexobj(x):
        r = np.abs(x)
        return np.real(np.conj(x) * dx) / np.where(r == 0, 1.0, r)
    return dx * np.sign(x)


def np_t_axes(ndim, axis):
    """The axes ``axis`` names (None: all), non-negative and sorted (a 0-d array: none)."""
    if axis is None:
        return tuple(range(ndim))
    ax = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    return tuple(sorted(int(a) % ndim for a in ax)) if ndim else ()


def np_t_kept(v, a, axis, keepdims):
    """A reduction's result ``v`` with the reduced axes of ``a`` back as axes of size 1."""
    v = np.asarray(v)
    if keepdims or not np.ndim(a):
        return v
    return np.reshape(v, [1 if i in np_t_axes(np.ndim(a), axis) else n for i, n in enumerate(np.shape(a))])


def np_t_others(a, axis):
    """For each entry, the product of the other entries over ``axis`` (exact at zeros: the products
    before and after it)."""
    a = np.asarray(a)
    ax = np_t_axes(a.ndim, axis)
    rest = [i for i in range(a.ndim) if i not in ax]
    m = np.transpose(a, rest + list(ax))
    flat = np.reshape(m, m.shape[:len(rest)] + (-1,))
    ones = np.ones(flat.shape[:-1] + (1,), dtype=flat.dtype)
    before = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    after = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    others = np.reshape(before * after, m.shape)
    return np.transpose(others, np.argsort(rest + list(ax)))


def np_t_prod(da, a, axis, keepdims):
    """``prod(a, axis)``: the sum over ``axis`` of each tangent entry times the others' product."""
    return np.sum(np.asarray(da) * np_t_others(a, axis), axis=axis, keepdims=keepdims)


def np_t_max(da, a, axis, keepdims, y):
    """``max(a, axis)`` (and min): the mean tangent of the entries equal to the result."""
    a = np.asarray(a)
    mask = (a == np_t_kept(y, a, axis, keepdims)).astype(np.float64)
    cnt = np.sum(mask, axis=axis, keepdims=keepdims)
    return np.sum(np.asarray(da) * mask, axis=axis, keepdims=keepdims) / cnt


def np_t_cast(d, dtype, convert=np.asarray):
    """A tangent converted as its value is (``astype``, ``asarray(x, dtype)``): none for an integer
    or bool dtype (a constant)."""
    if dtype is not None and np.dtype(dtype).kind not in "fc":
        return None
    return convert(d, dtype)


def np_t_solve_a(da, a, b, y):
    """``y = solve(a, b)`` (``b`` a vector where 1-D): ``-solve(a, da y)``."""
    if np.ndim(b) == 1:
        return -np.linalg.solve(a, (da @ y[..., None]))[..., 0]
    return -np.linalg.solve(a, da @ y)


def np_t_det(da, a, y):
    """``det(a)``: ``det(a) tr(a^-1 da)``."""
    return y * np.trace(np.linalg.solve(a, da), axis1=-2, axis2=-1)


def np_t_weighted(w, d, axis, keepdims, y):
    """The tangent of a reduction each of whose outputs reads its own slice of the argument, from
    ``w``, its pullback of a ``dy`` of ones (torch's convention: ``conj(f')`` for a holomorphic ``f``,
    ``df/dRe + i df/dIm`` for a real ``f`` of complex values): ``sum(conj(w) da)`` over ``axis``, its
    real part for a real result."""
    t = np.sum(np.conj(w) * d, axis=axis, keepdims=keepdims)
    return t if np.iscomplexobj(y) else np.real(t)


def np_t_part(fn, args, which, d, parts):
    """The tangent of ``fn(*args)``, linear in the arguments at ``parts`` together (``np.append``,
    ``np.select``): the call with argument ``which`` replaced by its tangent ``d``, the others' zero."""
    args = list(args)
    for i in parts:
        args[i] = d if i == which else np.zeros(np.shape(args[i]))
    return fn(*args)


TANGENT_NS = {f.__name__: f for f in (np_t_abs, np_t_kept, np_t_others, np_t_prod, np_t_max, np_t_cast,
                                      np_t_solve_a, np_t_det, np_t_axes, np_t_part, np_t_weighted)}
