"""NumPy rules: reductions, cumulative functions, statistics, sorting and selection.

Each rule applies to arrays and, where NumPy does, to Python numbers and NumPy scalars; a gradient has
its argument's type (``np_like``). Every backward helper uses only functions with rules (or gets a
rule of its own, ``np_red_permute``), so each rule is differentiable again.

Conventions where a function has kinks:
  * max/min, nanmax/nanmin and ptp share the gradient equally among the entries equal to the result
    (torch's ``amax`` convention; ``np.max``'s rule in numpy_rules does the same).
  * sort/partition and the quantiles (median, percentile, quantile and their nan forms) rank tied
    entries in a stable sort's order (as JAX's sort does): with method='linear' the gradient goes to
    the two entries at the ranks it interpolates between; the stepwise methods ('lower', 'higher',
    'nearest', 'inverted_cdf', 'closest_observation') pick an entry equal to the result, shared
    equally among ties. At a knot the gradient in ``q`` is the slope to the right (to the left at q=1).
  * std/nanstd at a zero deviation give 0 (torch's convention: the kink of a square root of a sum of
    squares).
  * np.interp at a sample point takes the slope to its right (the last interval at ``xp[-1]``); outside
    ``xp``'s range the value is constant (``fp[0]``/``fp[-1]``, or ``left``/``right``).
NaN-ignoring forms give NaN entries a zero gradient. A condition of np.where that may be a NumPy bool
scalar is made a 0-d array (np.asarray): np.where's rule takes arrays and numbers. The argument
combinations that cannot be differentiated (``overwrite_input=True``, ``period=`` in interp, weights in
cov, ``returned=True`` in average) raise GradientError; keywords a rule does not take (``initial=``
of nanprod, ``mean=``/``correction=`` of var) are a NoRuleError naming them.
"""
from __future__ import annotations

import re

import numpy as np

from ..errors import GradientError
from . import numpy_rules as _nr
from .numpy_rules import _expand, _out, np_cj, np_like, np_mean_back, np_prod_back
from .numpy_tangent import np_t_axes as np_red_axes, np_t_weighted   # (the axes a reduction names)
from .registry import ARRAY, NONDIFF, REAL, given, grad, many, nondiff

A, R, N = ARRAY, REAL, NONDIFF


# ------------------------------------------------------------------ shapes and reordering

def np_red_others(ndim, axis):
    """The axes other than ``axis`` (an int)."""
    return tuple(i for i in range(ndim) if i != axis % ndim) if ndim else ()


nondiff(np_red_axes, np_red_others)


def np_red_reshape(g, shape):
    """``g`` reshaped; to the 0-d shape, its one entry (np.sum: np.reshape's rule takes no empty shape)."""
    return np.reshape(g, shape) if len(shape) else np.sum(g)


def np_red_slice(g, axis, start, stop):
    """``g[start:stop]`` along ``axis``."""
    return np.moveaxis(np.moveaxis(g, axis, -1)[..., start:stop], -1, axis)


def np_red_revcumsum(g, axis):
    """Sums from the end along ``axis``: the adjoint of ``np.cumsum``."""
    flip = np.moveaxis(g, axis, -1)[..., ::-1]
    return np.moveaxis(np.cumsum(flip, axis=-1)[..., ::-1], -1, axis)


def np_red_permute(g, perm, axis):
    """``g`` reordered along ``axis``: entry ``i`` is ``g[perm[i]]``. A rule of its own (its adjoint
    reorders by the inverse permutation), so sort's gradient is differentiable again."""
    return np.take_along_axis(np.asarray(g), perm, axis)


# ------------------------------------------------------------------ cumulative functions

def np_red_cumsum_back(dy, a, axis, first):
    """``y = cumsum(a, axis)`` (None: of the flattened ``a``); ``dy``'s ``first`` leading entries
    belong to the initial value (cumulative_sum's include_initial)."""
    dy = np.asarray(dy)
    if first:
        dy = np_red_slice(dy, -1 if axis is None else axis, first, None)
    if axis is None:
        return np_red_reshape(np_red_revcumsum(np.reshape(dy, (-1,)), 0), np.shape(a))
    return np_red_revcumsum(dy, axis)


def np_red_cumprod_back(dy, a, axis, y, first):
    """``y = cumprod(a, axis)``: sums from the end of ``dy * y``, over ``a``, where no factor is 0; at
    zeros each entry's exact sum of products of the other factors (n^2 memory along the axis); complex
    arrays at the conjugated point (torch's convention, as np_prod_back)."""
    dy, y, x = np.asarray(dy), np_cj(np.asarray(y)), np_cj(np.asarray(a))
    ax = -1 if axis is None else axis
    if first:
        dy, y = np_red_slice(dy, ax, first, None), np_red_slice(y, ax, first, None)
    if axis is None:
        x, dy, y = np.reshape(x, (-1,)), np.reshape(dy, (-1,)), np.reshape(y, (-1,))
    if np.all(x != 0):
        return np_red_reshape(np_red_revcumsum(dy * y, ax) / x, np.shape(a))
    xm = np.moveaxis(x, ax, -1)
    k = np.arange(xm.shape[-1])
    own, later = np.expand_dims(k, -1) == k, np.expand_dims(k, -1) <= k
    # others[..., j, i]: the product of the factors up to i but factor j
    others = np.cumprod(np.where(own, 1.0, np.expand_dims(xm, -2)), axis=-1)
    g = np.sum(np.where(later, others * np.expand_dims(np.moveaxis(dy, ax, -1), -2), 0.0), axis=-1)
    return np_red_reshape(np.moveaxis(g, -1, ax), np.shape(a))


def np_red_diff_back(dy, a, n, axis, prepend, append, which):
    """``y = diff(concatenate([prepend, a, append], axis), n, axis)``: ``n`` times the adjoint of one
    difference (minus the differences of ``dy`` padded with zeros), then the part of ``a``
    (``which`` 0), ``prepend`` (1) or ``append`` (2)."""
    g = dy
    for _ in range(n):
        g = -np.diff(g, axis=axis, prepend=0.0, append=0.0)
    kp = 0 if prepend is np._NoValue else (1 if np.ndim(prepend) == 0 else np.shape(prepend)[axis])
    m = np.shape(a)[axis]
    if which == 0:
        return np_red_slice(g, axis, kp, kp + m)
    if which == 1:
        return None if prepend is np._NoValue else np_red_slice(g, axis, 0, kp)
    return None if append is np._NoValue else np_red_slice(g, axis, kp + m, None)


def np_red_ediff1d_back(dy, ary, to_end, to_begin, which):
    """``y = concatenate([to_begin, diff(ravel(ary)), to_end])``: the part of ``ary`` (``which`` 0),
    ``to_end`` (1) or ``to_begin`` (2)."""
    kb = 0 if to_begin is None else np.size(to_begin)
    m = np.size(ary)
    if which == 0:
        return np_red_reshape(-np.diff(dy[kb:kb + m - 1], prepend=0.0, append=0.0), np.shape(ary))
    if which == 1:
        return None if to_end is None else np_red_reshape(dy[kb + m - 1:], np.shape(to_end))
    return None if to_begin is None else np_red_reshape(dy[:kb], np.shape(to_begin))


# ------------------------------------------------------------------ statistics

def np_red_keep(x, where, nan):
    """1.0 where an entry takes part (``where``, and not NaN for the nan* forms), else 0.0."""
    keep = np.broadcast_to(where, np.shape(x))
    if nan:
        keep = np.where(np.isnan(x), False, keep)
    return np.where(keep, 1.0, 0.0)


def np_red_sum_back(dy, a, axis, keepdims, where, nan, mean):
    """nansum (``mean`` False) and nanmean: ``dy`` spread over the entries that take part."""
    x = np.asarray(a)
    w = np_red_keep(x, where, nan)
    g = _expand(dy, x, axis, keepdims) * w
    return g / np.sum(w, axis=axis, keepdims=True) if mean else g


def np_red_var_back(dy, a, axis, ddof, keepdims, where, nan):
    """``y = var(a)``: ``2 (a - mean) / (n - ddof)`` over the entries that take part."""
    dy, x = _nr.np_re(dy), np.asarray(a)
    w = np_red_keep(x, where, nan)
    xz = np.where(np.asarray(w > 0), x, 0.0)
    n = np.sum(w, axis=axis, keepdims=True)
    mean = np.sum(xz, axis=axis, keepdims=True) / n
    return _expand(dy, x, axis, keepdims) * w * (2.0 / (n - ddof)) * (xz - mean)


def np_red_sqrt_back(dy, y):
    """``dy / (2 y)`` for ``y = sqrt(v)``, 0 where ``y`` is 0 (std of constant entries)."""
    zero = np.asarray(y == 0)
    return np.where(zero, 0.0, dy / np.where(zero, 1.0, 2.0 * y))


def np_red_max_back(dy, a, axis, keepdims, y, where):
    """max/min ignoring NaNs: ``dy`` shared equally among the entries equal to the result."""
    x = np.asarray(a)
    hit = np.where(np_red_keep(x, where, False) > 0, x == _expand(y, x, axis, keepdims), False)
    w = np.where(hit, 1.0, 0.0)
    return _expand(dy, x, axis, keepdims) * w / np.maximum(np.sum(w, axis=axis, keepdims=True), 1.0)


def np_red_ptp_back(dy, a, axis, keepdims):
    """``y = max(a) - min(a)``."""
    hi = np_red_max_back(dy, a, axis, keepdims, np.max(a, axis=axis, keepdims=keepdims), True)
    return hi - np_red_max_back(dy, a, axis, keepdims, np.min(a, axis=axis, keepdims=keepdims), True)


def np_red_average_back(dy, a, axis, weights, returned, keepdims, which):
    """``y = sum(a w) / sum(w)`` along ``axis``; 1-D weights lie along ``axis`` (``which`` 0: a,
    1: weights)."""
    if returned:
        raise GradientError("torchzygote differentiates np.average(..., returned=False) only: compute the sum "
                            "of the weights separately (np.sum(weights)) if you need it")
    x = np.asarray(a)
    if weights is None:
        return np_mean_back(dy, x, axis, keepdims) if which == 0 else None
    w = np.asarray(weights)
    along = np.shape(w) != np.shape(x)
    wb = np.reshape(w, tuple(-1 if i == axis % x.ndim else 1 for i in range(x.ndim))) if along else w
    sw = np.sum(np.broadcast_to(wb, x.shape), axis=axis, keepdims=True)
    e = _expand(dy, x, axis, keepdims)
    if which == 0:
        return e * wb / sw
    g = e * (x - np.sum(x * wb, axis=axis, keepdims=True) / sw) / sw
    return np.sum(g, axis=np_red_others(x.ndim, axis)) if along else g


STEP_METHODS = ("lower", "higher", "nearest", "inverted_cdf", "closest_observation")


def np_red_quantile_back(dy, a, q, scale, axis, method, keepdims, y, overwrite, which):
    """``y = quantile(a, q / scale, axis)``, NaNs ignored (as the nan* forms do): the gradient of ``a``
    (``which`` 0) goes to the entries at the ranks the result interpolates between (stable order
    at ties), that of ``q`` (1) is the slope between them."""
    if overwrite:
        raise GradientError("np.median/percentile/quantile with overwrite_input=True reorder their input, "
                            "so its gradient cannot be placed: leave overwrite_input False")
    if method != "linear" and method not in STEP_METHODS:
        raise GradientError(f"torchzygote differentiates np.quantile/percentile/median with method 'linear' "
                            f"or one of {STEP_METHODS}, not {method!r}")
    x = np.reshape(a, (1,)) if np.ndim(a) == 0 else np.asarray(a)
    ax = np_red_axes(x.ndim, axis)
    last = tuple(range(x.ndim - len(ax), x.ndim))
    moved = np.moveaxis(x, ax, last)
    front = moved.shape[:x.ndim - len(ax)]
    xm = np.reshape(moved, front + (-1,))          # the reduced axes merged into the last one
    qs = np.shape(q)
    d = np.reshape(dy, qs + front + (1,))
    rank = np.argsort(np.argsort(xm, axis=-1, kind="stable"), axis=-1, kind="stable")
    n = np.sum(np.where(np.isnan(xm), 0, 1), axis=-1, keepdims=True)
    if method != "linear":   # the result is one of the entries
        if which == 1:
            return None
        hit = np.where(xm == np.reshape(y, qs + front + (1,)), 1.0, 0.0)
        wts = hit / np.maximum(np.sum(hit, axis=-1, keepdims=True), 1.0)
    else:
        v = np.reshape(np.asarray(q), qs + (1,) * (len(front) + 1)) / scale * (n - 1)
        lo = np.minimum(np.floor(v), np.maximum(n - 2, 0))
        hi = np.minimum(lo + 1, n - 1)
        if which == 1:
            step = np.sum(np.where(rank == hi, xm, 0.0) - np.where(rank == lo, xm, 0.0), axis=-1, keepdims=True)
            g = d * step * (n - 1) / scale
            return np_red_reshape(np.sum(g, axis=tuple(range(len(qs), g.ndim))), qs)
        t = v - lo
        wts = (1 - t) * np.where(rank == lo, 1.0, 0.0) + t * np.where(rank == hi, 1.0, 0.0)
    g = d * wts
    if qs:
        g = np.sum(g, axis=tuple(range(len(qs))))
    return np_red_reshape(np.moveaxis(np.reshape(g, moved.shape), last, ax), np.shape(a))


def np_red_cov_rows(v, rowvar):
    """``v`` as cov sees it: a matrix whose rows are the variables."""
    m = np.reshape(v, (1, -1)) if np.ndim(v) < 2 else np.asarray(v)
    return m if rowvar or m.shape[0] == 1 else np.transpose(m)


def np_red_cov_back(dc, m, y, rowvar, bias, ddof, fweights, aweights, which):
    """``c = cov([m; y])`` (variables in rows): ``(dc + dc^T) (x - mean) / (N - ddof)``, the rows of
    ``m`` (``which`` 0) or ``y`` (1)."""
    _cov_plain(fweights, aweights)
    if which == 1 and y is None:
        return None
    xs = np_red_cov_rows(m, rowvar)
    ys = None if y is None else np_red_cov_rows(y, rowvar)
    p = xs.shape[0]
    pt = p if ys is None else p + ys.shape[0]
    if ddof is None:
        ddof = 0 if bias else 1
    s = np.reshape(dc, (pt, pt))
    s = (s + np.conj(np.transpose(s))) / (xs.shape[1] - ddof)   # (complex: cov conjugates its second factor)
    rows = s[:p] if which == 0 else s[p:]
    g = rows[:, :p] @ (xs - np.mean(xs, axis=1, keepdims=True))
    if ys is not None:
        g = g + rows[:, p:] @ (ys - np.mean(ys, axis=1, keepdims=True))
    v = m if which == 0 else y
    flip = np.ndim(v) == 2 and not rowvar and np.shape(v)[0] != 1
    return np_red_reshape(np.transpose(g) if flip else g, np.shape(v))


def np_red_corrcoef_back(dr, x, y, rowvar, which):
    """``r = c / (s s^T)`` with ``c = cov(x, y)``, ``s = sqrt(diag(c))``: back to ``c``, then cov's rule."""
    c = np.cov(x, y, rowvar)
    pt = int(np.sqrt(np.size(c)))
    c, dr = np.reshape(c, (pt, pt)), np.reshape(dr, (pt, pt))
    eye = np.eye(pt)
    var = np.sum(c * eye, axis=1)
    sd = np.sqrt(var)
    outer = np.expand_dims(sd, 1) * np.expand_dims(sd, 0)
    r = c / outer
    dvr = np.real(np.conj(dr) * r)   # (the variances are real)
    dvar = (np.sum(dvr, axis=1) + np.sum(dvr, axis=0)) / (2.0 * var)
    return np_red_cov_back(dr / outer - eye * np.expand_dims(dvar, 1), x, y, rowvar, False, None, None, None, which)


def np_red_trapezoid_back(dy, y, x, dx, axis, which):
    """``s = sum((x[1:] - x[:-1]) (y[1:] + y[:-1]) / 2)`` along ``axis``: the gradient of ``y``
    (``which`` 0), ``x`` (1) or ``dx`` (2); complex arrays at the conjugated point."""
    y, x, dx = np_cj(y), np_cj(x), np_cj(dx)
    if which == 2:
        return None if x is not None else np.sum(dy * np.trapezoid(y, None, 1.0, axis))
    ym = np.moveaxis(np.asarray(y), axis, -1)
    e = np.reshape(dy, np.shape(dy) + (1,))
    if which == 0:
        xm = np.arange(ym.shape[-1]) * dx if x is None else \
            (np.asarray(x) if np.ndim(x) == 1 else np.moveaxis(np.asarray(x), axis, -1))
        gaps = np.diff(xm, axis=-1, prepend=xm[..., :1], append=xm[..., -1:])   # 0, steps, 0
        g = np.broadcast_to(e * (gaps[..., 1:] + gaps[..., :-1]) / 2, ym.shape)
        return np.moveaxis(g, -1, axis)
    if x is None:
        return None
    means = (ym[..., 1:] + ym[..., :-1]) / 2
    g = -np.diff(means, axis=-1, prepend=0.0, append=0.0) * e
    if np.ndim(x) == 1:
        return np.sum(np.reshape(g, (-1, ym.shape[-1])), axis=0)
    return np.moveaxis(g, -1, axis)


def np_red_interp_back(dy, x, xp, fp, left, right, period, which):
    """``y = interp(x, xp, fp)``: on ``[xp[j], xp[j+1]]`` ``y = fp[j] + t (fp[j+1] - fp[j])`` with
    ``t = (x - xp[j]) / (xp[j+1] - xp[j])``; ``which``: 0 x, 1 xp, 2 fp, 3 left, 4 right."""
    if period is not None:
        raise GradientError("torchzygote does not differentiate np.interp with period=: map x into one "
                            "period first (np.mod) and pass xp/fp extended by one point on each side")
    if np.size(xp) < 2:
        raise GradientError("np.interp with fewer than two sample points is constant: use fp[0] directly")
    xv, xpv, fpv = np.reshape(x, (-1,)), np.asarray(xp), np.asarray(fp)
    d = np.reshape(dy, (-1,))
    m = np.size(xp)
    j = np.clip(np.searchsorted(xpv, xv, side="right") - 1, 0, m - 2)
    below, above = xv < xpv[0], xv > xpv[m - 1]
    step = xpv[j + 1] - xpv[j]
    t = (xv - xpv[j]) / step
    slope = (fpv[j + 1] - fpv[j]) / step
    inside = np.where(below, 0.0, np.where(above, 0.0, d))
    if which == 0:
        return np_red_reshape(inside * slope, np.shape(x))
    if which == 1:
        return np.bincount(j, inside * slope * (t - 1), m) - np.bincount(j + 1, inside * slope * t, m)
    if which == 2:
        w0 = np.where(below, d if left is None else 0.0, inside * (1 - t))
        w1 = np.where(above, d if right is None else 0.0, inside * t)
        return np.bincount(j, w0, m) + np.bincount(j + 1, w1, m)
    out, side = (below, left) if which == 3 else (above, right)
    return None if side is None else np.sum(np.where(out, d, 0.0))


def np_red_permuted_back(dy, a, y, axis):
    """``y`` is ``a`` reordered along ``axis`` (None: flattened), as sort and partition return it: the
    reordering is read off the values (a stable sort of each), so it matches NumPy's at distinct
    values and is one valid choice at ties."""
    x = np.asarray(a)
    ax = axis
    if axis is None:
        x, ax = np.reshape(x, (-1,)), 0
    src = np.argsort(x, axis=ax, kind="stable")
    dst = np.argsort(y, axis=ax, kind="stable")
    g = np_red_permute(np_red_permute(dy, dst, ax), np.argsort(src, axis=ax, kind="stable"), ax)
    return np_red_reshape(g, np.shape(a))


def np_red_like(ctx, g, v):
    """``np_like``, and for a list or tuple of numbers (quantiles ``q``) each item's part."""
    return _nr.np_seq_back(ctx, g, v) if isinstance(v, (list, tuple)) else np_like(g, v)


# ------------------------------------------------------------------ tangents (forward mode)

def np_red_cumprod_t(d, a, axis, y, first):
    """``y = cumprod(a, axis)``: ``t[i] = t[i - 1] a[i] + y[i - 1] da[i]`` (exact at zeros); ``first``
    leading entries of ``y`` are the initial value (cumulative_prod's include_initial)."""
    x, d = np.asarray(a), np.broadcast_to(d, np.shape(a))
    if axis is None:
        x, d = np.reshape(x, (-1,)), np.reshape(d, (-1,))
    ax = 0 if axis is None else axis
    xm, dm = np.moveaxis(x, ax, 0), np.moveaxis(d, ax, 0)
    ts, prev, t = [], np.ones(xm.shape[1:]), np.zeros(xm.shape[1:])
    for i in range(xm.shape[0]):
        t = t * xm[i] + prev * dm[i]
        prev = prev * xm[i]
        ts.append(t)
    ts = [np.zeros(xm.shape[1:])] * first + ts
    return np.moveaxis(np.stack(ts), 0, ax) if ts else np.zeros(np.shape(y))


def np_red_diff_t(d, a, n, axis, prepend, append, which):
    """``diff`` is linear in ``[prepend, a, append]``: the tangent of part ``which`` (0 a, 1 prepend,
    2 append) with the other parts' zero."""
    parts = [np.zeros(np.shape(v)) if v is not np._NoValue else v for v in (a, prepend, append)]
    parts[which] = d
    return np.diff(parts[0], n, axis, prepend=parts[1], append=parts[2])


def np_red_ediff1d_t(d, ary, to_end, to_begin, which):
    """``ediff1d`` is linear in ``[to_begin, ary, to_end]`` (0 ary, 1 to_end, 2 to_begin)."""
    parts = [None if v is None else np.zeros(np.shape(v)) for v in (ary, to_end, to_begin)]
    parts[which] = d
    return np.ediff1d(parts[0], to_end=parts[1], to_begin=parts[2])


def np_red_average_t(d, a, axis, weights, returned, keepdims):
    """``y = sum(a w) / sum(w)``: the tangent of the weights, ``sum(dw (a - y)) / sum(w)``."""
    np_red_average_back(None, a, axis, None, returned, keepdims, 1)   # (its error for returned=True)
    x, w = np.asarray(a), np.asarray(weights)
    if np.shape(w) != np.shape(x):   # 1-D weights along ``axis``
        along = tuple(-1 if i == axis % x.ndim else 1 for i in range(x.ndim))
        w, d = np.reshape(w, along), np.reshape(d, along)
    sw = np.sum(np.broadcast_to(w, x.shape), axis=axis, keepdims=True)
    mean = np.sum(x * w, axis=axis, keepdims=True) / sw
    return np.sum(d * (x - mean) / sw, axis=axis, keepdims=keepdims)


def np_red_quantile_t(d, a, q, scale, axis, method, keepdims, y, overwrite):
    """The quantiles' tangent in ``a``: each quantile's weights (its pullback of ones) times ``da``."""
    qs = np.reshape(q, (-1,))
    ys = np.reshape(y, (len(qs),) + np.shape(y)[np.ndim(q):])
    ts = [np_t_weighted(np_red_quantile_back(np.ones(np.shape(yk)), a, qk, scale, axis, method, keepdims, yk,
                                             overwrite, 0), d, axis, keepdims, yk) for qk, yk in zip(qs, ys)]
    return np.reshape(np.stack(ts), np.shape(y))


def np_red_quantile_q_t(dq, a, q, scale, axis, method, keepdims, y):
    """The quantiles' tangent in ``q``: the slope between the entries a quantile interpolates (none
    for the stepwise methods, constant between knots)."""
    if method != "linear":
        return None
    x = np.reshape(a, (1,)) if np.ndim(a) == 0 else np.asarray(a)
    ax = np_red_axes(x.ndim, axis)
    moved = np.moveaxis(x, ax, tuple(range(x.ndim - len(ax), x.ndim)))
    xm = np.sort(np.reshape(moved, moved.shape[:x.ndim - len(ax)] + (-1,)), axis=-1)   # NaNs last
    n = np.sum(np.where(np.isnan(xm), 0, 1), axis=-1, keepdims=True)
    v = np.reshape(np.asarray(q, dtype=float), np.shape(q) + (1,) * xm.ndim) / scale * (n - 1)
    lo = np.minimum(np.floor(v), np.maximum(n - 2, 0)).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    xb = np.broadcast_to(xm, np.shape(lo)[:np.ndim(q)] + xm.shape)
    step = np.take_along_axis(xb, hi, -1) - np.take_along_axis(xb, lo, -1)
    dqb = np.reshape(dq, np.shape(q) + (1,) * xm.ndim)
    return np.reshape(dqb * step * (n - 1) / scale, np.shape(y))


def _cov_plain(fweights, aweights):
    if fweights is not None or aweights is not None:
        raise GradientError("torchzygote does not differentiate np.cov with fweights/aweights: write the "
                            "weighted covariance with np.sum (xc = x - np.average(x, 1, w); (xc * w) @ xc.T / ...)")


def np_red_cov_t(d, m, ys, rowvar, bias, ddof, fweights, aweights, which):
    """``c = cov([m; ys])``: ``(dXc Xc^T + Xc dXc^T) / (N - ddof)`` with ``dX`` the tangent of the
    rows of ``m`` (``which`` 0) or ``ys`` (1), the other's zero."""
    _cov_plain(fweights, aweights)
    rows = [np_red_cov_rows(v, rowvar) for v in (m, ys) if v is not None]
    x = np.concatenate(rows)
    dr = [np.zeros(r.shape) for r in rows]
    dr[which] = np_red_cov_rows(d, rowvar)
    dx = np.concatenate(dr)
    xc, dxc = x - np.mean(x, axis=1, keepdims=True), dx - np.mean(dx, axis=1, keepdims=True)
    if ddof is None:
        ddof = 0 if bias else 1
    dc = (dxc @ xc.T + xc @ dxc.T) / (x.shape[1] - ddof)
    return np_red_reshape(dc, np.shape(np.cov(m, ys, rowvar, bias, ddof)))


def np_red_corrcoef_t(d, x, ys, rowvar, which):
    """``r = c / (s s^T)``: ``dc / (s s^T) - r (dv_i / 2v_i + dv_j / 2v_j)`` with ``dc`` cov's tangent."""
    c = np.cov(x, ys, rowvar)
    pt = int(np.sqrt(np.size(c)))
    c = np.reshape(c, (pt, pt))
    dc = np.reshape(np_red_cov_t(d, x, ys, rowvar, False, None, None, None, which), (pt, pt))
    var = np.diagonal(c)
    sd = np.sqrt(var)
    r = c / np.outer(sd, sd)
    h = np.diagonal(dc) / (2.0 * var)
    return np_red_reshape(dc / np.outer(sd, sd) - r * (h[:, None] + h[None, :]), np.shape(np.corrcoef(x, ys, rowvar)))


def np_red_interp_t(d, x, xp, fp, left, right, period, which):
    """``y = interp(x, xp, fp)``'s tangent in ``x`` (0), ``xp`` (1), ``fp`` (2), ``left`` (3) or
    ``right`` (4); the pullback's conventions (the slope to the right at a sample point)."""
    np_red_interp_back(np.zeros(np.shape(x)), x, xp, fp, left, right, period, 4)   # (its errors)
    xv, xpv, fpv = np.reshape(x, (-1,)), np.asarray(xp), np.asarray(fp)
    m = np.size(xp)
    j = np.clip(np.searchsorted(xpv, xv, side="right") - 1, 0, m - 2)
    below, above = xv < xpv[0], xv > xpv[m - 1]
    inside = ~(below | above)
    step = xpv[j + 1] - xpv[j]
    t = (xv - xpv[j]) / step
    slope = (fpv[j + 1] - fpv[j]) / step
    dv = np.reshape(np.broadcast_to(d, np.shape(x)), (-1,)) if which == 0 else np.asarray(d)
    if which == 0:
        out = np.where(inside, slope * dv, 0.0)
    elif which == 1:
        out = np.where(inside, slope * ((t - 1) * dv[j] - t * dv[j + 1]), 0.0)
    elif which == 2:
        out = np.where(below, 0.0 if left is not None else dv[0],
                       np.where(above, 0.0 if right is not None else dv[m - 1], dv[j] + t * (dv[j + 1] - dv[j])))
    else:
        out = np.where(below if which == 3 else above, dv, 0.0)
    return np_red_reshape(out, np.shape(x))


def np_red_sort_t(d, a, y, axis):
    """``y``, a reordering of ``a`` along ``axis`` (None: flattened), as its pullback reads it off the
    values: ``y = a[P]`` with ``P[argsort(y)] = argsort(a)``; the tangent is ``da[P]``."""
    x, d = np.asarray(a), np.broadcast_to(d, np.shape(a))
    ax = axis
    if axis is None:
        x, d, ax = np.reshape(x, (-1,)), np.reshape(d, (-1,)), 0
    src = np.argsort(x, axis=ax, kind="stable")
    dst = np.argsort(y, axis=ax, kind="stable")
    return np.take_along_axis(d, np.take_along_axis(src, np.argsort(dst, axis=ax, kind="stable"), ax), ax)


# ------------------------------------------------------------------ the table

NS = dict(_nr.ns)
NS.update({f.__name__: f for f in (
    np_red_slice, np_red_permute, np_red_cumsum_back, np_red_cumprod_back, np_red_diff_back,
    np_red_ediff1d_back, np_red_sum_back, np_red_var_back, np_red_sqrt_back, np_red_max_back, np_red_ptp_back,
    np_red_average_back, np_red_quantile_back, np_red_cov_back, np_red_corrcoef_back, np_red_trapezoid_back,
    np_red_interp_back, np_red_permuted_back, np_red_like, np_red_cumprod_t, np_red_diff_t,
    np_red_ediff1d_t, np_red_average_t, np_red_quantile_t, np_red_quantile_q_t, np_red_cov_t, np_red_corrcoef_t,
    np_red_interp_t, np_red_sort_t)}, np_like=np_like, np_prod_back=np_prod_back)


# the first argument an array (or a number); the others numbers, arrays, constants, or lists and
# tuples (of quantiles, axes, kth)
NUM, ARR = ("A|R", many("A|R|N|L|P|PT|PR")), ("A", many("A|R|N|L|P|PT|PR"))


def _reg(fns, sig, **kw):
    """One rule per function (a default ``np._NoValue`` is NumPy's 'not given' marker)."""
    o = dict(kinds=NUM, ns=NS, out=_out, broadcast=False)
    o.update(kw)
    for f in fns:
        _nr.tangent_afresh(grad(f, sig, **o))
        _nr.NATIVE.append(f)


def _weighted(e, p="a"):
    """The tangent term of a reduction from its pullback ``e`` (see ``np_t_weighted``)."""
    return f"np_t_weighted({e.replace('dy', 'np.ones(np.shape(y))')}, d{p}, axis, keepdims, y)"


CUM = "a, axis=None, dtype=None, out=None"
_reg([np.cumsum, np.ndarray.cumsum], CUM, out=A, a="np_like(np_red_cumsum_back(dy, a, axis, 0), a)", linear=True)
_reg([np.cumprod, np.ndarray.cumprod], CUM, out=A, a="np_like(np_red_cumprod_back(dy, a, axis, y, 0), a)",
     jvp=dict(a="np_red_cumprod_t(da, a, axis, y, 0)"))
_NAN = "np.asarray(np.isnan(a))"
_reg([np.nancumsum], CUM, out=A, a=f"np_like(np.where({_NAN}, 0.0, np_red_cumsum_back(dy, a, axis, 0)), a)",
     jvp=dict(a=f"np.cumsum(np.where({_NAN}, 0.0, da), axis)"))
_reg([np.nancumprod], CUM, out=A, a=f"np_like(np.where({_NAN}, 0.0, "
                                    f"np_red_cumprod_back(dy, np.where({_NAN}, 1.0, a), axis, y, 0)), a)",
     jvp=dict(a=f"np_red_cumprod_t(np.where({_NAN}, 0.0, da), np.where({_NAN}, 1.0, a), axis, y, 0)"))
_CUMUL = "x, axis=None, dtype=None, include_initial=False"
_reg([np.cumulative_sum], _CUMUL, out=A, kinds=ARR,
     fwd="np.cumulative_sum(x, axis=axis, dtype=dtype, include_initial=include_initial)",
     x="np_like(np_red_cumsum_back(dy, x, axis, int(include_initial)), x)", linear=True)
_reg([np.cumulative_prod], _CUMUL, out=A, kinds=ARR,
     fwd="np.cumulative_prod(x, axis=axis, dtype=dtype, include_initial=include_initial)",
     x="np_like(np_red_cumprod_back(dy, x, axis, y, int(include_initial)), x)",
     jvp=dict(x="np_red_cumprod_t(dx, x, axis, y, int(include_initial))"))
_reg([np.diff], "a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue", out=A, kinds=ARR,
     maybe_none=True, **{p: f"np_like(np_red_diff_back(dy, a, n, axis, prepend, append, {i}), {p})"
                         for i, p in enumerate(("a", "prepend", "append"))},
     jvp={p: f"np_red_diff_t(d{p}, a, n, axis, prepend, append, {i})" for i, p in enumerate(("a", "prepend", "append"))})
_reg([np.ediff1d], "ary, to_end=None, to_begin=None", out=A, maybe_none=True,
     **{p: f"np_like(np_red_ediff1d_back(dy, ary, to_end, to_begin, {i}), {p})"
        for i, p in enumerate(("ary", "to_end", "to_begin"))},
     jvp={p: f"np_red_ediff1d_t(d{p}, ary, to_end, to_begin, {i})" for i, p in enumerate(("ary", "to_end", "to_begin"))})

# variance and standard deviation; the nan* forms ignore NaNs
VAR = "a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, where=True"
for fns, nan in (([np.var, np.ndarray.var], False), ([np.nanvar], True)):
    name = fns[0].__name__
    fwd = f"np.{name}(a, axis, dtype, out, ddof, keepdims, where=where)"
    e = f"np_red_var_back(dy, a, axis, ddof, keepdims, where, {nan})"
    _reg(fns, VAR, fwd=fwd, a=f"np_like({e}, a)", jvp=dict(a=_weighted(e)))
    std = getattr(np, name.replace("var", "std"))
    e = f"np_red_var_back(np_red_sqrt_back(dy, y), a, axis, ddof, keepdims, where, {nan})"
    _reg([std] + ([np.ndarray.std] if not nan else []), VAR, fwd=fwd.replace("var", "std"),
         a=f"np_like({e}, a)", jvp=dict(a=_weighted(e)))
_reg([np.ptp], "a, axis=None, out=None, keepdims=False", a="np_like(np_red_ptp_back(dy, a, axis, keepdims), a)",
     jvp=dict(a=_weighted("np_red_ptp_back(dy, a, axis, keepdims)")))
_AVG = "np_red_average_back(dy, a, axis, weights, returned, keepdims, 0)"
_reg([np.average], "a, axis=None, weights=None, returned=False, keepdims=False", maybe_none=True,
     fwd="np.average(a, axis, weights, returned, keepdims=keepdims)",
     a=f"np_like({_AVG}, a)",
     weights="np_like(np_red_average_back(dy, a, axis, weights, returned, keepdims, 1), weights)",
     jvp=dict(a=_weighted(_AVG), weights="np_red_average_t(dweights, a, axis, weights, returned, keepdims)"))
# NaN-ignoring sums, means, products, maxima and minima
_reg([np.nansum], "a, axis=None, dtype=None, out=None, keepdims=False, initial=np._NoValue, where=True",
     a="np_like(np_red_sum_back(dy, a, axis, keepdims, where, True, False), a)",
     jvp=dict(a=_weighted("np_red_sum_back(dy, a, axis, keepdims, where, True, False)")))
_reg([np.nanmean], "a, axis=None, dtype=None, out=None, keepdims=False, where=True",
     fwd="np.nanmean(a, axis, dtype, out, keepdims, where=where)",
     a="np_like(np_red_sum_back(dy, a, axis, keepdims, where, True, True), a)",
     jvp=dict(a=_weighted("np_red_sum_back(dy, a, axis, keepdims, where, True, True)")))
_reg([np.nanmax, np.nanmin], "a, axis=None, out=None, keepdims=False, initial=np._NoValue, where=True",
     a="np_like(np_red_max_back(dy, a, axis, keepdims, y, where), a)",
     jvp=dict(a=_weighted("np_red_max_back(dy, a, axis, keepdims, y, where)")))
_NANPROD = f"np.where({_NAN}, 0.0, np_prod_back(dy, np.where({_NAN}, 1.0, a), axis, keepdims, y))"
_reg([np.nanprod], "a, axis=None, dtype=None, out=None, keepdims=False",
     a=f"np_like({_NANPROD}, a)", jvp=dict(a=_weighted(_NANPROD)))
# medians and quantiles (q in [0, 1]; percentiles: q / 100)
_Q = "np_red_quantile_back(dy, a, q, {s}, axis, method, keepdims, y, overwrite_input, {w})"
for fns, scale in (([np.quantile, np.nanquantile], 1), ([np.percentile, np.nanpercentile], 100)):
    for f in fns:
        _reg([f], "a, q, axis=None, out=None, overwrite_input=False, method='linear', keepdims=False, weights=None",
             fwd=f"np.{f.__name__}(a, q, axis, out, overwrite_input, method, keepdims, weights=weights)",
             maybe_none=True, a=f"np_like({_Q.format(s=scale, w=0)}, a)",
             q=f"np_red_like(ctx, {_Q.format(s=scale, w=1)}, q)",
             jvp=dict(a=f"np_red_quantile_t(da, a, q, {scale}, axis, method, keepdims, y, overwrite_input)",
                      q=f"np_red_quantile_q_t(np.asarray(_tz(dq, q)), a, q, {scale}, axis, method, keepdims, y)"))
_reg([np.median, np.nanmedian], "a, axis=None, out=None, overwrite_input=False, keepdims=False",
     a="np_like(np_red_quantile_back(dy, a, 0.5, 1, axis, 'linear', keepdims, y, overwrite_input, 0), a)",
     jvp=dict(a="np_red_quantile_t(da, a, 0.5, 1, axis, 'linear', keepdims, y, overwrite_input)"))
# NumPy's parameter ``y`` is ``ys`` here (``y`` names the result in a rule): pass it by position
_reg([np.cov], "m, ys=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None", out=A, kinds=ARR,
     maybe_none=True, **{p: f"np_red_cov_back(dy, m, ys, rowvar, bias, ddof, fweights, aweights, {i})"
                         for i, p in enumerate(("m", "ys"))},
     jvp={p: f"np_red_cov_t(d{p}, m, ys, rowvar, bias, ddof, fweights, aweights, {i})" for i, p in enumerate(("m", "ys"))})
_reg([np.corrcoef], "x, ys=None, rowvar=True", out=A, kinds=ARR, maybe_none=True,
     **{p: f"np_red_corrcoef_back(dy, x, ys, rowvar, {i})" for i, p in enumerate(("x", "ys"))},
     jvp={p: f"np_red_corrcoef_t(d{p}, x, ys, rowvar, {i})" for i, p in enumerate(("x", "ys"))})
_reg([np.trapezoid], "ys, x=None, dx=1.0, axis=-1", kinds=ARR, maybe_none=True,
     # linear in ys, in x's differences (the spacing) and in dx (x's tangent is d_x, dx's ddx)
     jvp=dict(ys="np.trapezoid(dys, x, dx, axis)", x="np.trapezoid(ys, d_x, 1.0, axis)",
              dx="np.trapezoid(ys, None, ddx, axis) if x is None else 0.0 * ddx"),
     **{p: f"np_like(np_red_trapezoid_back(dy, ys, x, dx, axis, {i}), {p})" for i, p in enumerate(("ys", "x", "dx"))})
_reg([np.interp], "x, xp, fp, left=None, right=None, period=None", maybe_none=True,
     **{p: f"np_like(np_red_interp_back(dy, x, xp, fp, left, right, period, {i}), {p})"
        for i, p in enumerate(("x", "xp", "fp", "left", "right"))},
     jvp={p: f"np_red_interp_t(d{p}, x, xp, fp, left, right, period, {i})"
          for i, p in enumerate(("x", "xp", "fp", "left", "right"))})
_reg([np.bincount], "x, weights=None, minlength=0", out=A, maybe_none=True,
     kinds=("A|L|P|PT|PR", ...),
     weights="None if weights is None else np_like(dy[x], weights)", linear=True)
# sorting and selection: the result is a reordering of the input
_reg([np.sort], "a, axis=-1, kind=None, order=None, stable=None", out=A, kinds=ARR,
     fwd="np.sort(a, axis, kind, order, stable=stable)", a="np_red_permuted_back(dy, a, y, axis)",
     jvp=dict(a="np_red_sort_t(da, a, y, axis)"))
_reg([np.partition], "a, kth, axis=-1, kind='introselect', order=None", out=A, kinds=ARR,
     a="np_red_permuted_back(dy, a, y, axis)", jvp=dict(a="np_red_sort_t(da, a, y, axis)"))
_reg([np_red_permute], "g, perm, axis", out=A, kinds=ARR, g="np_red_permute(dy, np.argsort(perm, axis=axis), axis)",
     linear=True)
# a NumPy scalar's own reductions (np.float64(0.7).sum()): the identity, or 0 for its spread
for names, sig in ((("sum", "mean", "prod"), "a, axis=None, dtype=None, out=None, keepdims=False"),
                   (("max", "min"), "a, axis=None, out=None, keepdims=False"),
                   (("cumsum", "cumprod"), CUM)):
    _reg([getattr(np.generic, n) for n in names], sig, kinds=("R", ...), a="np_like(dy, a)",
         out=A if "cumsum" in names else R, jvp=dict(a="np.broadcast_to(da, np.shape(y)) + 0.0"))
_reg([np.generic.var, np.generic.std], "a, axis=None, dtype=None, out=None, ddof=0, keepdims=False",
     kinds=("R", ...), out=R, a="np_like(0.0 * dy, a)", jvp=dict(a="0.0 * da"))
nondiff(np.argpartition, np.nanargmax, np.nanargmin, np.searchsorted, np.count_nonzero, np.lexsort)


# ------------------------------------------------------------------ random draws
# Draws are constants: seeding, generators and the draws that take only a size are nondiff (arrays: later
# writes into them use the array rules). The location-scale draws (normal, uniform, exponential...) are
# the parameters applied to a standard draw, exactly as NumPy computes them (y = loc + scale * z, checked
# bit for bit): their parameters get the pathwise gradient, z being recovered from the draw as
# (y - loc) / scale. Draws whose parameters enter otherwise (gamma's shape, poisson, beta...) and those
# that move the values of an array argument (choice, permutation, shuffle of a float array) have no rule;
# choice and permutation of a count (``rng.permutation(n)``) are draws of indices, with no gradient.

def np_red_draw_std(y, loc, scale, what):
    """The standard draw ``(y - loc) / scale`` behind a location-scale draw ``y``."""
    if np.any(np.asarray(scale) == 0):
        raise GradientError(f"torchzygote cannot differentiate {what} in its scale where the scale is 0 (the "
                            "standard draw is lost): draw standard values and scale them yourself "
                            "(loc + scale * rng.standard_normal(size))")
    return (y - loc) / scale


def np_red_draw_out(ks):
    """An array where an argument is one; else a float or an array by ``size`` (which kinds cannot tell)."""
    return A if A in ks else "O"


NS.update(np_red_draw_std=np_red_draw_std)
_G, _RS = np.random.Generator, np.random.RandomState
_LOC_SCALE = {   # name: (parameters with NumPy's defaults, their pullbacks)
    "normal": ("loc=0.0, scale=1.0", dict(loc="np_like(dy, loc)",
                                          scale="np_like(dy * np_red_draw_std(y, loc, scale, 'normal'), scale)")),
    "uniform": ("low=0.0, high=1.0", dict(
        low="np_like(dy * (1.0 - np_red_draw_std(y, low, high - low, 'uniform')), low)",
        high="np_like(dy * np_red_draw_std(y, low, high - low, 'uniform'), high)")),
    "exponential": ("scale=1.0", dict(scale="np_like(dy * np_red_draw_std(y, 0.0, scale, 'exponential'), scale)")),
    "rayleigh": ("scale=1.0", dict(scale="np_like(dy * np_red_draw_std(y, 0.0, scale, 'rayleigh'), scale)")),
    "lognormal": ("mean=0.0, sigma=1.0", dict(mean="np_like(dy * y, mean)", sigma="np_like(dy * y * "
                                              "np_red_draw_std(np.log(y), mean, sigma, 'lognormal'), sigma)")),
}
for _n in ("laplace", "logistic", "gumbel"):
    _LOC_SCALE[_n] = ("loc=0.0, scale=1.0", dict(loc="np_like(dy, loc)", scale="np_like(dy * np_red_draw_std("
                                                 f"y, loc, scale, {_n!r}), scale)"))
# the parameters are arrays or numbers (not lists); ``size``, after them, anything
def _params(i, n):
    """``i`` arguments of any kind (self), then ``n`` arrays or numbers (those given by position)."""
    return given(*["*"] * i, *["A|R|N"] * n, ...)


def _draw_tangent(p, e):
    """A parameter's tangent term from its pullback ``np_like(dy * w, p)``: ``dp * w``, as large as the draw."""
    inner = re.fullmatch(rf"np_like\((.*), {p}\)", e).group(1)
    term = re.sub(r"\bdy\b", "d" + p, inner)
    return f"np.broadcast_to({term}, np.shape(y)) + 0.0"


for _n, (_sig, _pb) in _LOC_SCALE.items():
    for _owner, _i in ((_G, 1), (_RS, 1), (np.random, 0)):   # _i: the first parameter's position (after self)
        _reg([getattr(_owner, _n)], "self, " * _i + f"{_sig}, size=None", out=np_red_draw_out, maybe_none=True,
             kinds=_params(_i, len(_pb)), jvp={p: _draw_tangent(p, e) for p, e in _pb.items()}, **_pb)
nondiff(np.random.default_rng, np.random.seed, np.random.get_state, np.random.set_state, _G, _RS,
        _G.spawn, _G.bytes, _RS.seed, _RS.get_state, _RS.set_state, _RS.bytes)
nondiff(_G.standard_normal, _G.random, _G.integers, _G.standard_exponential, _RS.standard_normal, _RS.rand,
        _RS.randn, _RS.randint, _RS.random_sample, _RS.random, _RS.standard_exponential, np.random.standard_normal,
        np.random.random, np.random.random_sample, np.random.randint, np.random.standard_exponential,
        np.random.rand, np.random.randn, out=A)
def _count(i):
    """``i`` arguments of any kind (self), then a count, then arrays or numbers."""
    return (*["*"] * i, "R|N", many("A|R|N"))


for _owner, _i in ((_G, 1), (_RS, 1), (np.random, 0)):   # _i: the count's position (after self)
    _self, _gen = "self, " * _i, _owner is _G
    _reg([_owner.permutation], _self + ("x, axis=0" if _gen else "x"), out=A, kinds=_count(_i))
    _reg([_owner.choice], _self + "a, size=None, replace=True, p=None" + (", axis=0, shuffle=True" if _gen else ""),
         out="O", kinds=_count(_i))
