"""Rules for numpy: ufuncs, reductions and products on arrays (kind "A").

Gradients of arrays are numpy arrays. The arithmetic operators on arrays use
the number rules in ``scalar.py`` (their ``real`` kinds accept arrays); the
power operator gets an array rule here (the number rule tests ``b == 0``).

Forward mode: each entry gives its tangent too (``linear``, or ``jvp`` terms; helpers in
``numpy_tangent.py``). The ufunc tables' terms are their formulas with ``dy`` read as the argument's
tangent, before the conjugation and the summing to an argument's shape the pullbacks add.
"""
from __future__ import annotations

import operator
import re

from ..errors import GradientError
from ..values.algebra import np_sum_to
from .container_backs import seq_back
from .numpy_tangent import TANGENT_NS
from .tangents import call_expr
from .registry import (ANY, ARRAY, REAL, grad, many, nondiff, reads_metadata, some)

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

NATIVE = []

if np is not None:
    A0 = ("A", ...)    # an array first (other arguments are dtypes, shapes, axes)
    V0 = ("A|R", ...)  # an array or a number first
    _arr = some("A", among="A|R|N|PR")   # "PR": a shape tuple
    _num = some("A|R", among="A|R|N|PR")  # numpy functions take numbers as well as arrays (``np.sin(0.5)``)

    def _expand(dy, x, axis, keepdims):
        dy = np.asarray(dy)
        x = np.asarray(x)
        if not x.ndim:   # a number reduced (over axis 0 or -1, keepdims or not): one entry
            return np.reshape(dy, ()).astype(_ftype(x), copy=True)
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

    # The products' and linear algebra's helpers below are written for real arrays; complex ones take
    # torch's convention (``dy`` times the conjugate derivative: the formula at the conjugated point,
    # as these functions have real coefficients).

    def np_dot_back(dy, a, b, which):
        a, b = np_cj(np.asarray(a)), np_cj(np.asarray(b))
        if a.ndim == 0 or b.ndim == 0:
            g = dy * (b if which == 0 else a)
            return np.sum(g) if (a if which == 0 else b).ndim == 0 else g
        if a.ndim == 1 and b.ndim == 1:
            return dy * (b if which == 0 else a)
        if b.ndim == 1:
            return np.expand_dims(dy, -1) * b if which == 0 else np.reshape(dy, (-1,)) @ np.reshape(a, (-1, a.shape[-1]))
        if a.ndim == 1:
            return (b @ dy) if which == 0 else np.outer(a, dy)
        if which == 0:
            return dy @ np.swapaxes(b, -1, -2)
        return np.swapaxes(a, -1, -2) @ dy

    def np_matmul_back(dy, a, b, which):
        a, b = np.asarray(a), np.asarray(b)
        if a.ndim <= 2 and b.ndim <= 2:
            return np_dot_back(dy, a, b, which)
        a, b = np_cj(a), np_cj(b)
        if which == 0:
            return np_sum_to(dy @ np.swapaxes(b, -1, -2), a.shape)
        return np_sum_to(np.swapaxes(a, -1, -2) @ dy, b.shape)

    def np_pow_a(dy, a, b):
        b_arr = np.asarray(b)
        g = b_arr * np.power(a, b_arr - 1.0)
        return dy * np.where(b_arr == 0, 0.0, g)

    def np_pow_b(dy, a, b, y):
        a_arr = np.asarray(a)
        a_arr = a_arr if np.iscomplexobj(a_arr) else a_arr.astype(float)   # (a complex base keeps its phase)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = y * np.log(a_arr)
        g = np.where((a_arr == 0) & (np.asarray(b) >= 0), 0.0, g)
        return dy * g

    def np_max_back(dy, x, axis, keepdims, y):
        ye = _expand(y, x, axis, keepdims)
        mask = (np.asarray(x) == ye).astype(_ftype(np.asarray(x)))
        cnt = np.sum(mask, axis=axis, keepdims=True) if axis is not None else np.sum(mask)
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
        yt = _swap(np_cj(y))
        return -(yt @ dy @ yt)

    def np_det_back(dy, a, y):
        return np.asarray(np.asarray(dy) * np_cj(y))[..., None, None] * _swap(np.linalg.inv(np_cj(a)))

    def np_solve_back(dy, a, b, y, which):
        """``y = solve(a, b)``: ``b`` is a vector (or a stack of vectors) when it is 1-D,
        else a stack of matrices (numpy 2's rule)."""
        vec = np.ndim(b) == 1
        a, y = np_cj(a), np_cj(y)
        at = _swap(a)
        gb = np.linalg.solve(at, dy[..., None])[..., 0] if vec else np.linalg.solve(at, dy)
        if which == 1:
            return np.sum(gb, axis=tuple(range(gb.ndim - 1))) if vec and gb.ndim > 1 else gb
        ga = -(gb[..., :, None] * y[..., None, :]) if vec else -(gb @ _swap(y))
        return np_sum_to(ga, np.shape(a))

    ns = dict(np=np, np_sum_back=np_sum_back, np_inv_back=np_inv_back, np_det_back=np_det_back,
              np_solve_back=np_solve_back, np_mean_back=np_mean_back, np_dot_back=np_dot_back,
              np_matmul_back=np_matmul_back, np_pow_a=np_pow_a, np_pow_b=np_pow_b, np_max_back=np_max_back,
              _expand=_expand, **TANGENT_NS)
    U = dict(kinds=_num, ns=ns, out=ARRAY, broadcast=False)

    def _r(fns, sig, **kw):
        o = dict(U)
        o.update(kw)
        for f in dict.fromkeys(fns):   # (np.conj is np.conjugate)
            tangent_afresh(grad(f, sig, **o))
            NATIVE.append(f)

    def tangent_afresh(rule):
        """A linear rule with ``out=`` or ``dtype=`` gets its call as an explicit tangent term that never
        writes into the caller's ``out`` array (the value's: the tangent is a new array) and gives no
        tangent for an integer ``dtype`` (np_t_cast)."""
        if not rule.linear or not {"out", "dtype"} & set(rule.params):
            return
        p = next(iter(rule.grads))
        term = re.sub(rf"(?<![\w.]){p}\b(?!=)", f"_tz(d{p}, {p})", call_expr(rule))
        term = re.sub(r"(?<![\w.])out\b(?!=)", "None", term)
        rule.jvp = {p: f"np_t_cast({term}, dtype)" if "dtype" in rule.params else term}

    # ------------------------------------------------ elementwise ufuncs: one table, one declaration each
    # Each applies to arrays, Python numbers and NumPy scalars (np.float64): a gradient has the type of
    # its argument (np_like: summed over broadcast axes for an array, a float for a Python number, the
    # same scalar type for a NumPy scalar). A result is a number (kind R) when no argument is an array.
    # maximum/minimum at a tie split the gradient in halves (torch's convention); abs/fabs at 0 give 0.
    LN2, LN10, DEG = 0.6931471805599453, 2.302585092994046, 57.29577951308232
    UNARY = [
        (np.sin, "dy * np.cos(x)"), (np.cos, "-dy * np.sin(x)"), (np.tan, "dy * (1 + y * y)"),
        (np.arcsin, "dy / np.sqrt(1 - x * x)"), (np.arccos, "-dy / np.sqrt(1 - x * x)"),
        (np.arctan, "dy / (1 + x * x)"), (np.sinh, "dy * np.cosh(x)"), (np.cosh, "dy * np.sinh(x)"),
        (np.tanh, "dy * (1 - y * y)"), (np.arcsinh, "dy / np.sqrt(x * x + 1)"),
        # (arccosh' is 1 / (sqrt(x - 1) sqrt(x + 1)): 1 / sqrt(x * x - 1) is its negative where Re x < 0)
        (np.arccosh, "dy / (np.sqrt(x - 1) * np.sqrt(x + 1))"), (np.arctanh, "dy / (1 - x * x)"),
        (np.exp, "dy * y"), (np.exp2, f"dy * y * {LN2}"), (np.expm1, "dy * (y + 1)"),
        (np.log, "dy / x"), (np.log2, f"dy / (x * {LN2})"), (np.log10, f"dy / (x * {LN10})"),
        (np.log1p, "dy / (1 + x)"), (np.sqrt, "dy / (2 * y)"), (np.cbrt, "dy / (3 * y * y)"),
        (np.square, "2 * dy * x"), (np.reciprocal, "-dy * y * y"), (np.abs, "dy * np.sign(x)"),
        (np.fabs, "dy * np.sign(x)"), (np.negative, "-dy"), (np.positive, "dy"),
        (np.deg2rad, f"dy / {DEG}"), (np.radians, f"dy / {DEG}"), (np.rad2deg, f"dy * {DEG}"),
        (np.degrees, f"dy * {DEG}"),
    ]
    BINARY = [
        (np.add, "dy", "dy"), (np.subtract, "dy", "-dy"), (np.multiply, "dy * b", "dy * a"),
        (np.divide, "dy / b", "-dy * y / b"),
        (np.power, "np_pow_a(dy, a, b)", "np_pow_b(dy, a, b, y)"),
        (np.float_power, "np_pow_a(dy, a, b)", "np_pow_b(dy, a, b, y)"),
        (np.maximum, "dy * np_wins(a, b)", "dy * np_wins(b, a)"),
        (np.minimum, "dy * np_wins(b, a)", "dy * np_wins(a, b)"),
        (np.remainder, "dy", "-dy * np.floor(a / b)"), (np.fmod, "dy", "-dy * np.trunc(a / b)"),
        (np.arctan2, "dy * b / (a * a + b * b)", "-dy * a / (a * a + b * b)"),
        (np.hypot, "dy * a / y", "dy * b / y"),
        (np.logaddexp, "dy * np.exp(a - y)", "dy * np.exp(b - y)"),
        (np.logaddexp2, "dy * np.exp2(a - y)", "dy * np.exp2(b - y)"),
        (np.copysign, "dy * np.sign(a) * np.sign(np.copysign(1.0, b))", None),
    ]

    def np_wins(a, b):
        """The share of ``maximum(a, b)``'s gradient that goes to ``a``: 1 where it is larger,
        a half at a tie."""
        return np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))

    def np_as_scalar(g, x):
        """``g`` (a number or array) summed to a scalar of ``x``'s type: a float for a Python number."""
        s = np.sum(g)
        return type(x)(s) if isinstance(x, np.floating) else float(s)

    def np_sum_to_shape(g, a):
        """``g`` summed over the axes it was broadcast along to ``a``'s shape."""
        return np.asarray(np_sum_to(np.asarray(g), np.shape(a)))

    def np_like(g, x):
        """The gradient ``g`` given the type and shape of the value ``x`` it belongs to. Plain code
        over functions with rules, so it is differentiated again at higher orders."""
        if g is None:
            return None
        if np.iscomplexobj(g) and not np.iscomplexobj(x):
            g = np.real(g)   # a real argument's gradient is real (torch's convention)
        if isinstance(x, np.ndarray):
            if isinstance(g, np.ndarray) and g.shape == x.shape:
                return g
            return np_sum_to_shape(g, x)
        if isinstance(x, (int, float, np.floating)) and not isinstance(x, bool):
            return np_as_scalar(g, x)
        return g

    def _out(ks):
        return ARRAY if ARRAY in ks else REAL

    ns.update(np_like=np_like, np_wins=np_wins, np_sum_to_shape=np_sum_to_shape)
    ELEMENTWISE = []
    def np_cj(v):
        """The complex conjugate of a complex value, a real one as it is."""
        return np.conj(v) if np.iscomplexobj(v) else v

    def np_re(dy):
        """The real part of a real result's ``dy`` (a real value's gradient is real), which a complex
        factor after it (``np.var(z) * w``) made complex."""
        return np.real(dy) if np.iscomplexobj(dy) else dy

    def _holomorphic(e):
        """A table formula ``L(dy)`` (written for real numbers: ``dy * f'(x)``) made right for complex
        ones too: torch's convention gives ``dy * conj(f'(z))``, which is ``conj(L(conj(dy)))``."""
        return "np_cj(" + re.sub(r"\bdy\b", "np_cj(dy)", e) + ")"

    def _dy_is(e, d):
        return re.sub(r"\bdy\b", d, e)

    ns.update(np_cj=np_cj)
    NOT_HOLOMORPHIC = (np.abs, np.fabs)   # |z|'s gradient is dy * z / |z| as written
    # tangents: a table formula with ``dy`` the argument's tangent is ``f'(x) dx``, right for complex
    # values too where f is holomorphic; |z| has its own
    RAW_BINARY = list(BINARY)   # (the ufunc methods' tangents read them: numpy_ufuncs)
    TANGENT = {f: {"x": _dy_is(e, "dx")} for f, e in UNARY}
    TANGENT.update({f: {"a": _dy_is(ea, "da"), **({"b": _dy_is(eb, "db")} if eb else {})} for f, ea, eb in BINARY})
    TANGENT.update({np.abs: {"x": "np_t_abs(dx, x)"}, np.fabs: {"x": "np_t_abs(dx, x)"}})
    HOLOMORPHIC = (np.add, np.subtract, np.multiply, np.divide, np.power, np.float_power)  # of BINARY
    UNARY = [(f, e if f in NOT_HOLOMORPHIC else _holomorphic(e)) for f, e in UNARY]
    BINARY = [(f, _holomorphic(ea), eb and _holomorphic(eb)) if f in HOLOMORPHIC else (f, ea, eb)
              for f, ea, eb in BINARY]

    # ---------------------------------------------------------------- ufunc keyword arguments
    # numpy ufuncs take out=, where=, casting=, order=, dtype=, subok=. Only out=None and where=True
    # leave the result a function of the arguments alone; the others do not change the derivative.
    UFKW = "*, out=None, where=True, casting='same_kind', order='K', dtype=None, subok=True"

    def np_uf_plain(g, out, where):
        """``g``, for a ufunc call whose result is computed afresh: an ``out=`` array is written in
        place and a ``where=`` mask keeps ``out``'s old entries, neither of which is differentiated."""
        if out is not None:
            raise GradientError("torchzygote cannot differentiate a numpy ufunc called with out=: it writes "
                                "into an existing array. Use the result instead (y = np.sin(x), not "
                                "np.sin(x, out=y))")
        if not (where is True or np.all(where)):
            raise GradientError("torchzygote cannot differentiate a numpy ufunc called with a where= mask: "
                                "the masked entries keep out='s old values. Write np.where(mask, np.sin(x), "
                                "old) instead")
        return g

    grad(np_uf_plain, "g, out, where", g="dy", kinds=ANY, ns=ns, out=lambda ks: ks[0],
         broadcast=False, maybe_none=True, linear=True)

    ns.update(np_uf_plain=np_uf_plain)

    def _ufunc(fns, params, **kw):
        """A rule of the ufunc table with the ufunc keywords (out= by keyword too: numpy 2 deprecates
        a third positional for maximum)."""
        names = params.split(", ")
        grads = {p: f"np_uf_plain({e}, out, where)" for p, e in kw.items() if p in names}
        jvp = {p: f"np_uf_plain({e}, out, where)" for p, e in kw.pop("jvp", {}).items()}
        _r(fns, f"{params}, {UFKW}", **{k: v for k, v in kw.items() if k not in names}, elementwise=True,
           jvp=jvp, **grads)

    # arrays and numbers (no tuple here is a shape: a ufunc's tuple is data, taken below)
    _values = some("A|R", among="A|R|N")

    for f, e in UNARY:
        _ufunc([f], "x", x=f"np_like({e}, x)", out=_out, kinds=_values, jvp=TANGENT[f])
        ELEMENTWISE.append(f)
    for f, ea, eb in BINARY:
        gb = {} if eb is None else dict(b=f"np_like({eb}, b)")
        _ufunc([f], "a, b", a=f"np_like({ea}, a)", out=_out, kinds=_values, jvp=TANGENT[f], **gb)
        ELEMENTWISE.append(f)
    # the helpers' own rules (a gradient's type changes back the other way)
    grad(np_as_scalar, "g, x", g="np_like(np.broadcast_to(dy, np.shape(g)) + 0.0, g)", kinds=ANY, ns=ns, out=REAL,
         broadcast=False, linear=True)
    grad(np_sum_to_shape, "g, a", g="np.broadcast_to(dy, np.shape(g)) + 0.0",
         kinds=ANY, ns=ns, out=ARRAY, broadcast=False, linear=True)
    reads_metadata(np_as_scalar, 1)
    reads_metadata(np_sum_to_shape, 1)
    reads_metadata(np_like, 1)
    nondiff(np_wins, np.trunc)
    # reductions: an array, a number, or a list or tuple of numbers or arrays (np.sum([a, b * b]))
    def np_prod_back(dy, x, axis, keepdims, y):
        """``y = prod(x)``: ``y / x`` where no factor is 0, else the product of the others."""
        x, y = np_cj(np.asarray(x)), np_cj(y)
        if np.all(x != 0):
            return _expand(dy * y, x, axis, keepdims) / x
        return _expand(dy, x, axis, keepdims) * np_prod_others(x, axis)

    def np_prod_others(x, axis):
        """For each entry, the product of the others along ``axis`` (None: all): each row of a
        square stack has a 1 in place of its own entry (exact at zeros; n^2 memory, used at zeros)."""
        if axis is None or not x.ndim:
            flat = np.reshape(x, (-1,))
            m = np.where(np.eye(flat.size, dtype=bool), 1.0, flat)
            return np.reshape(np.prod(m, axis=1), np.shape(x))
        if not isinstance(axis, int):
            raise GradientError("torchzygote cannot differentiate np.prod over a tuple of axes where a "
                                "factor is zero; reduce one axis at a time (np.prod(np.prod(x, axis=a), axis=b))")
        k = axis % x.ndim
        n = x.shape[k]
        eye = np.reshape(np.eye(n, dtype=bool), (1,) * k + (n, n) + (1,) * (x.ndim - k - 1))
        return np.prod(np.where(eye, 1.0, np.expand_dims(x, k)), axis=k + 1)

    def np_seq_back(ctx, g, seq):
        """The gradient ``g`` of ``np.asarray(seq)`` routed to the items of a list or tuple
        (nested ones too); each item's gradient has its type."""
        # g's rows are the items at the call; a list appended to since is longer now (its pullbacks
        # have rewound its gradient slots to the call's positions, so row i belongs to slot i)
        pieces = tuple([np_seq_back(ctx, g[i], seq[i]) if isinstance(seq[i], (list, tuple))
                        else np_like(g[i], seq[i]) for i in range(min(len(seq), len(g)))])
        return seq_back(ctx, seq, pieces)

    def np_arg_back(ctx, g, x):
        """The gradient ``g`` of an argument a ufunc used as an array: a list or tuple of numbers or
        arrays (``np.exp([a, b])``) gets it routed to its items, a number or an array in its type."""
        if isinstance(x, (list, tuple)):
            return np_seq_back(ctx, np_sum_to_shape(g, np.asarray(x)), x)
        return np_like(g, x)

    ns.update(np_prod_back=np_prod_back, np_seq_back=np_seq_back, np_arg_back=np_arg_back)
    # the ufunc tables again, for lists and tuples of values among the arguments (an array results)
    SEQ_ARGS = some("L|P|PT|PR", among="L|P|PT|PR|A|R|N")

    def _as_arrays(e, params):
        for p in params:
            e = re.sub(rf"\b{p}\b", f"np.asarray({p})", e)
        return e

    def _seq_tangents(f, params):
        """The table's tangent terms with lists and tuples read as arrays (their tangents item by item)."""
        return {p: re.sub(rf"\bd{p}\b", f"np.asarray(_tz(d{p}, {p}))", _as_arrays(e, params))
                for p, e in TANGENT[f].items()}

    for f, e in UNARY:
        _ufunc([f], "x", x=f"np_arg_back(ctx, {_as_arrays(e, ('x',))}, x)", kinds=SEQ_ARGS, maybe_none=True,
               jvp=_seq_tangents(f, ("x",)))
    for f, ea, eb in BINARY:
        gb = {} if eb is None else dict(b=f"np_arg_back(ctx, {_as_arrays(eb, ('a', 'b'))}, b)")
        _ufunc([f], "a, b", a=f"np_arg_back(ctx, {_as_arrays(ea, ('a', 'b'))}, a)", kinds=SEQ_ARGS, maybe_none=True,
               jvp=_seq_tangents(f, ("a", "b")), **gb)
    SEQ = ("L|P|PT|PR", many("R|N"))
    # (a tuple of numbers with a number after it is taken by the value rule of the reductions)
    SEQ_DATA = [("L|P|PT", many("R|N")), ("PR", many("N"))]
    # (functions, signature, pullback, tangent: None where the reduction is linear)
    REDUCTIONS = [
        ([np.sum, np.ndarray.sum], "a, axis=None, dtype=None, out=None, keepdims=False",
         "np_sum_back(dy, a, axis, keepdims)", None),
        ([np.mean, np.ndarray.mean], "a, axis=None, dtype=None, out=None, keepdims=False",
         "np_mean_back(dy, a, axis, keepdims)", None),
        ([np.prod, np.ndarray.prod], "a, axis=None, dtype=None, out=None, keepdims=False",
         "np_prod_back(dy, a, axis, keepdims, y)", "np_t_prod(da, a, axis, keepdims)"),
        ([np.max, np.ndarray.max], "a, axis=None, out=None, keepdims=False", "np_max_back(dy, a, axis, keepdims, y)",
         "np_t_max(da, a, axis, keepdims, y)"),
        ([np.min, np.ndarray.min], "a, axis=None, out=None, keepdims=False", "np_max_back(dy, a, axis, keepdims, y)",
         "np_t_max(da, a, axis, keepdims, y)"),
    ]

    def _seq_term(t):
        """A term of an array argument ``a`` for a list or tuple ``a`` (its tangent item by item)."""
        return re.sub(r"\bda\b", "np.asarray(_tz(da, a))", re.sub(r"\ba\b", "np.asarray(a)", t))

    for fns, sig, e, t in REDUCTIONS:
        fns = [f for i, f in enumerate(fns) if all(f is not g for g in fns[:i])]  # np.amax is np.max (numpy 2)
        tangent = dict(linear=True) if t is None else dict(jvp=dict(a=t))
        _r(fns, sig, a=f"np_like({e}, a)", out=_out, **tangent)
        # a list or tuple: the gradient of np.asarray(a), routed to its items
        _r(fns[:1], sig, a="np_seq_back(ctx, {}, a)".format(re.sub(r"\ba\b", "np.asarray(a)", e)),
           kinds=SEQ_DATA, out=_out, maybe_none=True, reads_sequence=True,
           **(tangent if t is None else dict(jvp=dict(a=_seq_term(t)))))
    for f in (np.amax, np.amin):
        if all(f is not g for fns, _, _, _ in REDUCTIONS for g in fns):
            _r([f], "a, axis=None, out=None, keepdims=False", out=_out, reads_sequence=True,
               a="np_like(np_max_back(dy, a, axis, keepdims, y), a)", jvp=dict(a="np_t_max(da, a, axis, keepdims, y)"))
    # building an array from a list or tuple (nested ones too), a number or an array
    # (a tangent cast as its value is: none where the dtype is an integer one)
    _r([np.array], "object, dtype=None", object="np_seq_back(ctx, dy, object)", kinds=SEQ, maybe_none=True,
       reads_sequence=True, jvp=dict(object="np_t_cast(_tz(dobject, object), dtype, np.array)"))
    _r([np.asarray], "a, dtype=None", a="np_seq_back(ctx, dy, a)", kinds=SEQ, maybe_none=True,
       reads_sequence=True, jvp=dict(a="np_t_cast(_tz(da, a), dtype)"))
    _r([np.stack], "arrays, axis=0", arrays="np_seq_back(ctx, np.moveaxis(dy, axis, 0), arrays)",
       kinds=SEQ, maybe_none=True, reads_sequence=True, linear=True)
    _r([np.moveaxis], "a, source, destination", a="np.moveaxis(dy, destination, source)",
       kinds=A0, linear=True)
    _r([np.swapaxes], "a, axis1, axis2", a="np.swapaxes(dy, axis1, axis2)", kinds=A0, linear=True)
    _r([np.array], "object, dtype=None", object="np_like(dy, object)", kinds=V0,
       jvp=dict(object="np_t_cast(dobject, dtype, np.array)"))
    _r([np.float64, np.float32, np.float16], "x", x="np_like(dy, x)", out=REAL,
       kinds=V0, linear=True)
    # integer scalars truncate: no gradient (a number, kind R, as np.int64 counters are)
    nondiff(np.int64, np.int32, np.int16, np.int8, np.uint64, np.uint32, np.uint16, np.uint8, out=REAL)
    _r([np.dot, np.ndarray.dot], "a, b", a="np_dot_back(dy, a, b, 0)", b="np_dot_back(dy, a, b, 1)",
       jvp=dict(a="np.dot(da, b)", b="np.dot(a, db)"))
    _r([np.matmul], "a, b", a="np_matmul_back(dy, a, b, 0)", b="np_matmul_back(dy, a, b, 1)",
       jvp=dict(a="np.matmul(da, b)", b="np.matmul(a, db)"))
    # np.reshape / ndarray.reshape (with their ``order``): numpy_shape.py
    _r([np.transpose, np.ndarray.transpose], "a, *axes",
       a="np_like(np.transpose(dy, np.argsort(axes[0] if len(axes) == 1 and axes[0] is not None and "
         "not isinstance(axes[0], int) else axes) if axes and axes[0] is not None else None), a)", linear=True,
       kinds=V0)   # (the axes may be a list: ``np.transpose(a, order)``)
    _r([np.outer], "a, b", a="np_like(np.reshape(dy @ np_cj(np.ravel(b)), np.shape(a)), a)",
       b="np_like(np.reshape(np.transpose(dy) @ np_cj(np.ravel(a)), np.shape(b)), b)",
       jvp=dict(a="np.outer(da, b)", b="np.outer(a, db)"))
    _CLIP = "((a >= a_min if a_min is not None else True) & (a <= a_max if a_max is not None else True))"
    _r([np.clip], "a, a_min, a_max", a=f"dy * {_CLIP}", jvp=dict(a=f"da * {_CLIP}"))
    # (np.where takes no keywords: a single argument is np.where(condition), numpy_shape.py)
    _r([np.where], "c, a, b", broadcast=True, a="np.where(c, dy, 0.0)", b="np.where(c, 0.0, dy)",
       kinds=some("A|R", among=("A|R|N|PR", "A|R|N|PR", many("A|R|N|PR"))),
       jvp=dict(a="np.where(c, da, 0.0)", b="np.where(c, 0.0, db)"))
    _r([np.trace, np.ndarray.trace], "a", a="dy * np.eye(*np.shape(a))", linear=True)
    # linear algebra on stacks of matrices: the last two axes are the matrix
    _r([np.linalg.inv], "a", a="np_inv_back(dy, y)", jvp=dict(a="-(y @ da @ y)"))
    _r([np.linalg.det], "a", a="np_det_back(dy, a, y)", jvp=dict(a="np_t_det(da, a, y)"))
    _r([np.linalg.solve], "a, b", a="np_solve_back(dy, a, b, y, 0)", b="np_solve_back(dy, a, b, y, 1)",
       jvp=dict(a="np_t_solve_a(da, a, b, y)", b="np.linalg.solve(a, db)"))
    def np_astype_back(dy, a):
        if not isinstance(a, np.ndarray):  # a number made an array: its gradient is a number
            return np_like(dy, a)
        if a.dtype.kind not in "fc":
            return None
        return np_like(np.asarray(dy), a).astype(a.dtype)   # a real array's gradient is real

    ns.update(np_astype_back=np_astype_back)
    _r([np.ndarray.astype], "a, dtype, order='K', casting='unsafe', subok=True, copy=True",
       a="np_astype_back(dy, a)", kinds=A0, jvp=dict(a="np_t_cast(da, dtype)"))
    _r([np.conj, np.conjugate, np.ndarray.conj, np.ndarray.conjugate, np.generic.conj, np.generic.conjugate],
       "x", x="np.conj(dy)", kinds=V0, linear=True)
    _r([np.broadcast_to], "array, shape, subok=False", array="np_like(dy, array)",
       kinds=V0, linear=True)
    _r([np.asarray], "a, dtype=None", a="np_astype_back(dy, a)", kinds=V0, jvp=dict(a="np_t_cast(da, dtype)"))
    _r([np.expand_dims], "a, axis", a="np.reshape(dy, np.shape(a))", kinds=A0, linear=True)
    grad(np_index_back, "x, key, g", kinds=A0, ns=ns, out=ARRAY, broadcast=False,
         g="dy[key]", linear=True)
    # operators with an array: matmul, and pow ahead of the number rule (it tests ``b == 0``)
    grad(operator.matmul, "a, b", fwd="a @ b", a="np_matmul_back(dy, a, b, 0)", b="np_matmul_back(dy, a, b, 1)",
         jvp=dict(a="da @ b", b="a @ db"), **dict(U, kinds=_arr))
    grad(operator.pow, "a, b", fwd="a ** b", kinds=_arr, ns=ns, out=ARRAY, elementwise=True,
         a=_holomorphic("np_pow_a(dy, a, b)"), b=_holomorphic("np_pow_b(dy, a, b, y)"),
         jvp=dict(a="np_pow_a(da, a, b)", b="np_pow_b(db, a, b, y)"))   # (np.power's pullbacks)
    NATIVE += [operator.matmul, operator.pow]
    nondiff(np.shape, np.argmax, np.argmin, np.argsort, np.sign, np.floor, np.ceil, np.round, np.isnan,
            np.isfinite, np.all, np.any)
    # constant arrays, which code may still write into (kind A: their writes use the array rules)
    nondiff(np.zeros, np.ones, np.empty, np.full, np.zeros_like, np.ones_like, np.empty_like, np.full_like,
            np.arange, np.linspace, np.eye, np.random.randn, np.random.rand, out=ARRAY)
