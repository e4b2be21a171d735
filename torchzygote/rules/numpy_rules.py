"""Rules for numpy: ufuncs, reductions and products on arrays (kind "A").

Gradients of arrays are numpy arrays. The arithmetic operators on arrays use
the number rules in ``scalar.py`` (their ``real`` kinds accept arrays); the
power operator gets an array rule here (the number rule tests ``b == 0``).
"""
from __future__ import annotations

import operator

from .registry import ARRAY, NONDIFF, REAL, TABLE, grad, nondiff

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

NATIVE = []

if np is not None:
    def _arr(ks):
        return ARRAY in ks and all(k in (ARRAY, REAL, NONDIFF, "PR") for k in ks)  # "PR": a shape tuple

    def _num(ks):
        """numpy functions take numbers as well as arrays (``np.sin(0.5)``)."""
        return (ARRAY in ks or REAL in ks) and all(k in (ARRAY, REAL, NONDIFF, "PR") for k in ks)

    def _expand(dy, x, axis, keepdims):
        dy = np.asarray(dy)
        x = np.asarray(x)
        if axis is None:
            return np.broadcast_to(dy, x.shape).astype(_ftype(x), copy=True)
        if not keepdims:
            ax = (axis,) if isinstance(axis, int) else tuple(axis)
            ax = sorted(a % x.ndim for a in ax)
            for a in ax:
                dy = np.expand_dims(dy, a)
        return np.broadcast_to(dy, x.shape).astype(_ftype(x), copy=True)

    def _ftype(x):
        return x.dtype if x.dtype.kind in "fc" else np.float64

    def np_sum_back(dy, x, axis, keepdims):
        return _expand(dy, x, axis, keepdims)

    def np_mean_back(dy, x, axis, keepdims):
        x = np.asarray(x)
        n = x.size if axis is None else int(np.prod([x.shape[a] for a in ((axis,) if isinstance(axis, int) else axis)]))
        return _expand(dy, x, axis, keepdims) / n

    def np_dot_back(dy, a, b, which):
        a, b = np.asarray(a), np.asarray(b)
        if a.ndim == 0 or b.ndim == 0:
            g = dy * (b if which == 0 else a)
            return np.sum(g) if (a if which == 0 else b).ndim == 0 else g
        if a.ndim == 1 and b.ndim == 1:
            return dy * (b if which == 0 else a)
        if b.ndim == 1:
            return np.multiply.outer(dy, b) if which == 0 else np.tensordot(dy, a, axes=(range(dy.ndim), range(dy.ndim)))
        if a.ndim == 1:
            return (b @ dy) if which == 0 else np.outer(a, dy)
        if which == 0:
            return dy @ np.swapaxes(b, -1, -2)
        return np.swapaxes(a, -1, -2) @ dy

    def np_matmul_back(dy, a, b, which):
        a, b = np.asarray(a), np.asarray(b)
        if a.ndim <= 2 and b.ndim <= 2:
            return np_dot_back(dy, a, b, which)
        from ..ad.runtime import _np_sum_to
        if which == 0:
            return _np_sum_to(dy @ np.swapaxes(b, -1, -2), a.shape)
        return _np_sum_to(np.swapaxes(a, -1, -2) @ dy, b.shape)

    def np_pow_a(dy, a, b):
        b_arr = np.asarray(b)
        g = b_arr * np.power(a, b_arr - 1.0)
        return dy * np.where(b_arr == 0, 0.0, g)

    def np_pow_b(dy, a, b, y):
        a_arr = np.asarray(a, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = y * np.log(a_arr)
        g = np.where((a_arr == 0) & (np.asarray(b) >= 0), 0.0, g)
        return dy * g

    def np_max_back(dy, x, axis, keepdims, y):
        ye = _expand(y, x, axis, keepdims)
        mask = (np.asarray(x) == ye).astype(_ftype(np.asarray(x)))
        cnt = mask.sum(axis=axis, keepdims=True) if axis is not None else mask.sum()
        return _expand(dy, x, axis, keepdims) * mask / cnt

    def np_index_back(x, key, g):
        """The gradient of ``x[key]`` for an array ``x``: ``g`` added at the positions read
        (integer-array keys may repeat one). A function with a rule of its own (its adjoint
        reads the same positions), so the gradient is differentiable again."""
        z = np.zeros_like(x, dtype=_ftype(np.asarray(x)))
        np.add.at(z, key, g)
        return z

    def _swap(a):
        return np.swapaxes(a, -1, -2)

    def np_inv_back(dy, y):
        yt = _swap(y)
        return -(yt @ dy @ yt)

    def np_det_back(dy, a, y):
        return (np.asarray(dy) * y)[..., None, None] * _swap(np.linalg.inv(a))

    def np_solve_back(dy, a, b, y, which):
        """``y = solve(a, b)``: ``b`` is a vector (or a stack of vectors) when it is 1-D,
        else a stack of matrices (numpy 2's rule)."""
        vec = np.ndim(b) == 1
        at = _swap(a)
        gb = np.linalg.solve(at, dy[..., None])[..., 0] if vec else np.linalg.solve(at, dy)
        if which == 1:
            return np.sum(gb, axis=tuple(range(gb.ndim - 1))) if vec and gb.ndim > 1 else gb
        ga = -(gb[..., :, None] * y[..., None, :]) if vec else -(gb @ _swap(y))
        from ..ad.runtime import _np_sum_to
        return _np_sum_to(ga, np.shape(a))

    ns = dict(np=np, np_sum_back=np_sum_back, np_inv_back=np_inv_back, np_det_back=np_det_back,
              np_solve_back=np_solve_back, np_mean_back=np_mean_back, np_dot_back=np_dot_back,
              np_matmul_back=np_matmul_back, np_pow_a=np_pow_a, np_pow_b=np_pow_b, np_max_back=np_max_back,
              _expand=_expand)
    U = dict(kinds=_num, ns=ns, out=ARRAY, broadcast=False)

    def _r(fns, sig, **kw):
        o = dict(U)
        o.update(kw)
        for f in fns:
            grad(f, sig, **o)
            NATIVE.append(f)

    for f, e in [(np.sin, "dy * np.cos(x)"), (np.cos, "-dy * np.sin(x)"), (np.tan, "dy * (1 + y * y)"),
                 (np.exp, "dy * y"), (np.log, "dy / x"), (np.tanh, "dy * (1 - y * y)"),
                 (np.sqrt, "dy / (2 * y)"), (np.abs, "dy * np.sign(x)"), (np.negative, "-dy"),
                 (np.log1p, "dy / (1 + x)"), (np.expm1, "dy * (y + 1)"), (np.square, "2 * dy * x"),
                 (np.sinh, "dy * np.cosh(x)"), (np.cosh, "dy * np.sinh(x)"), (np.arctan, "dy / (1 + x * x)")]:
        _r([f], "x", x=e)
    _r([np.add], "a, b", broadcast=True, a="dy", b="dy")
    _r([np.subtract], "a, b", broadcast=True, a="dy", b="-dy")
    _r([np.multiply], "a, b", broadcast=True, a="dy * b", b="dy * a")
    _r([np.divide, np.true_divide], "a, b", broadcast=True, a="dy / b", b="-dy * y / b")
    _r([np.power], "a, b", broadcast=True, a="np_pow_a(dy, a, b)", b="np_pow_b(dy, a, b, y)")
    _r([np.maximum], "a, b", broadcast=True, a="dy * (a >= b)", b="dy * (a < b)")
    _r([np.minimum], "a, b", broadcast=True, a="dy * (a <= b)", b="dy * (a > b)")
    _r([np.sum, np.ndarray.sum], "a, axis=None, dtype=None, out=None, keepdims=False",
       a="np_sum_back(dy, a, axis, keepdims)")
    _r([np.mean, np.ndarray.mean], "a, axis=None, dtype=None, out=None, keepdims=False",
       a="np_mean_back(dy, a, axis, keepdims)")
    _r([np.max, np.amax, np.ndarray.max], "a, axis=None, out=None, keepdims=False",
       a="np_max_back(dy, a, axis, keepdims, y)")
    _r([np.min, np.amin, np.ndarray.min], "a, axis=None, out=None, keepdims=False",
       a="np_max_back(dy, a, axis, keepdims, y)")
    _r([np.dot, np.ndarray.dot], "a, b", a="np_dot_back(dy, a, b, 0)", b="np_dot_back(dy, a, b, 1)")
    _r([np.matmul], "a, b", a="np_matmul_back(dy, a, b, 0)", b="np_matmul_back(dy, a, b, 1)")
    _r([np.reshape, np.ndarray.reshape], "a, *shape", a="dy.reshape(np.shape(a))")
    _r([np.transpose, np.ndarray.transpose], "a, *axes",
       a="np.transpose(dy, np.argsort(axes[0] if len(axes) == 1 and axes[0] is not None and "
         "not isinstance(axes[0], int) else axes) if axes and axes[0] is not None else None)")
    _r([np.outer], "a, b", a="dy @ b", b="dy.T @ a")
    _r([np.clip], "a, a_min, a_max", a="dy * ((a >= a_min if a_min is not None else True) & "
       "(a <= a_max if a_max is not None else True))")
    for f, e in [(np.log10, "dy / (x * np.log(10.0))"), (np.log2, "dy / (x * np.log(2.0))"),
                 (np.exp2, "dy * y * np.log(2.0)"), (np.arcsin, "dy / np.sqrt(1 - x * x)"),
                 (np.arccos, "-dy / np.sqrt(1 - x * x)")]:
        _r([f], "x", x=e)
    _r([np.arctan2], "a, b", broadcast=True, a="dy * b / (a * a + b * b)", b="-dy * a / (a * a + b * b)")
    _r([np.hypot], "a, b", broadcast=True, a="dy * a / y", b="dy * b / y")
    _r([np.where], "c, a, b", broadcast=True, a="np.where(c, dy, 0.0)", b="np.where(c, 0.0, dy)")
    _r([np.trace, np.ndarray.trace], "a", a="dy * np.eye(*np.shape(a))")
    # linear algebra on stacks of matrices: the last two axes are the matrix
    _r([np.linalg.inv], "a", a="np_inv_back(dy, y)")
    _r([np.linalg.det], "a", a="np_det_back(dy, a, y)")
    _r([np.linalg.solve], "a, b", a="np_solve_back(dy, a, b, y, 0)", b="np_solve_back(dy, a, b, y, 1)")
    def np_astype_back(dy, a):
        if not isinstance(a, np.ndarray):  # a number made an array: its gradient is a number
            return np.sum(dy)
        return np.asarray(dy).astype(a.dtype) if a.dtype.kind in "fc" else None

    def np_sum_to_shape(dy, a):
        from ..ad.runtime import _np_sum_to
        return _np_sum_to(np.asarray(dy), np.shape(a))

    ns.update(np_astype_back=np_astype_back, np_sum_to_shape=np_sum_to_shape)
    A0 = lambda ks: ks[0] == ARRAY  # noqa: E731  (other arguments are dtypes, shapes, axes)
    _r([np.ndarray.astype], "a, dtype, order='K', casting='unsafe', subok=True, copy=True",
       a="np_astype_back(dy, a)", kinds=A0)
    _r([np.conj, np.conjugate, np.ndarray.conj, np.ndarray.conjugate, np.generic.conj, np.generic.conjugate],
       "x", x="np.conj(dy)", kinds=lambda ks: ks[0] in (ARRAY, REAL))
    _r([np.broadcast_to], "array, shape, subok=False", array="np_sum_to_shape(dy, array)", kinds=A0)
    _r([np.asarray], "a, dtype=None", a="np_astype_back(dy, a)", kinds=lambda ks: ks[0] in (ARRAY, REAL))
    _r([np.expand_dims], "a, axis", a="np.reshape(dy, np.shape(a))", kinds=A0)
    grad(np_index_back, "x, key, g", kinds=lambda ks: ks[0] == ARRAY, ns=ns, out=ARRAY, broadcast=False,
         g="dy[key]")
    # operators with an array: matmul, and pow ahead of the number rule (it tests ``b == 0``)
    grad(operator.matmul, "a, b", fwd="a @ b", a="np_matmul_back(dy, a, b, 0)", b="np_matmul_back(dy, a, b, 1)",
         **dict(U, kinds=_arr))
    _pw = grad(operator.pow, "a, b", fwd="a ** b", kinds=_arr, ns=ns, out=ARRAY,
               a="np_pow_a(dy, a, b)", b="np_pow_b(dy, a, b, y)")
    TABLE.rules[operator.pow].remove(_pw)
    TABLE.rules[operator.pow].insert(0, _pw)
    TABLE.version += 1
    NATIVE += [operator.matmul, operator.pow]
    nondiff(np.zeros, np.ones, np.zeros_like, np.ones_like, np.arange, np.linspace, np.eye, np.shape,
            np.argmax, np.argmin, np.argsort, np.sign, np.floor, np.ceil, np.round, np.isnan, np.isfinite,
            np.random.randn, np.random.rand, np.random.normal)
