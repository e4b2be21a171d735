"""The table of Taylor-mode rules (``rules/taylor.py`` propagates series with it).

One entry per function: ``impl(call, **series)`` gives the result's series from the bound
arguments' (``rules/taylor_series.py`` arithmetic), or, for a function linear in some arguments,
the call itself applied to coefficients (a Cauchy product where it is multilinear). Piecewise
functions take the branch the primal takes at ``t = 0`` with the first-order rules' conventions
at ties (``maximum``: the mean; ``clamp``: ``x`` at a bound; ``relu`` and ``abs``: 0 at 0).
"""
from __future__ import annotations

import cmath
import math
import numbers
import operator
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import NoRuleError
from . import taylor_series as ts
from .registry import _signature
from .tangents import cj

# ====================================================================== values

def _is_complex(v) -> bool:
    if isinstance(v, torch.Tensor):
        return v.is_complex()
    return isinstance(v, complex) or np.iscomplexobj(v)


def _sel(cond, a, b):
    """``a`` where ``cond`` holds, else ``b`` (None: zero), for a bool, a bool tensor or array."""
    if a is None and b is None:
        return None
    if isinstance(cond, torch.Tensor):
        return torch.where(cond, 0.0 if a is None else a, 0.0 if b is None else b)
    if isinstance(cond, np.ndarray):
        return np.where(cond, 0.0 if a is None else a, 0.0 if b is None else b)
    return a if cond else b


def _not(c):
    return not c if isinstance(c, (bool, np.bool_)) else ~c


def _sign(v):
    if isinstance(v, torch.Tensor):
        return torch.sign(v)
    if isinstance(v, (np.ndarray, np.generic)):
        return np.sign(v)
    return float((v > 0) - (v < 0))


def _log_of_base(a, lib):
    """``log(a)`` for the constant base of ``a ** b(t)``: 0 at ``a = 0`` (the result's coefficients
    are then 0, as the first-order rules say) and NaN for a negative real number."""
    if isinstance(a, torch.Tensor):
        a = a if a.is_floating_point() or a.is_complex() else a.double()
        return torch.where(a == 0, torch.zeros_like(a), torch.log(a))
    if isinstance(a, (np.ndarray, np.generic)):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a == 0, 0.0, np.log(a))
    if a == 0:
        return 0.0
    if isinstance(a, complex):
        return cmath.log(a)
    return math.log(a) if a > 0 else math.nan


def _integral_power(r) -> bool:
    if isinstance(r, bool) or not isinstance(r, (numbers.Integral, float)):
        return False
    return isinstance(r, numbers.Integral) or r.is_integer()


def fn_name(fn) -> str:
    """``torch.sin``, ``torch.Tensor.sum``, ``math.exp``, ``abs``: the function as messages name it."""
    name = getattr(fn, "__name__", None) or repr(fn)
    qual = getattr(fn, "__qualname__", None) or name
    mod = getattr(fn, "__module__", None) or ""
    if qual.startswith(("TensorBase.", "Tensor.")):
        return f"torch.Tensor.{name}"
    for prefix, home in (("linalg_", "torch.linalg"), ("special_", "torch.special"), ("", "torch")):
        if (qual.startswith("_VariableFunctionsClass.") or mod.startswith("torch._C")) and name.startswith(prefix):
            return f"{'torch.nn.functional' if mod == 'torch._C._nn' else home}.{name.removeprefix(prefix)}"
    mod = {"_operator": "operator", "builtins": ""}.get(mod, mod)
    return f"{mod}.{qual}" if mod else qual


# ====================================================================== the table

@dataclass
class Call:
    """One call: the function, its primal result, the order, the library of its values."""
    fn: Callable
    y0: object
    k: int
    lib: object


@dataclass
class Entry:
    """How a function's result series follows from its arguments'. ``impl`` gets the bound
    parameters as series (constants padded with zeros) or, for ``cw`` entries (coefficient-wise
    calls of a function linear in each argument at ``positions``), the call itself."""
    impl: Callable
    spec: Optional[tuple] = None             # (names, defaults, vararg) of the parameters
    active: frozenset = frozenset()          # parameters that may carry a series
    lib: object = None                       # math/cmath for their own functions, else by value
    positions: Optional[slice] = None        # cw entries: the (multi)linear arguments
    f: Optional[Callable] = None             # cw entries: the function applied to coefficients
    joint: bool = False                      # cw entries: ``positions`` are the items of ONE linear argument


ENTRIES: dict = {}
# the in-place operators write into a tensor or array first argument: the series read its copy
INPLACE = {operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.ipow, operator.imatmul,
           operator.imod}


def _def(fns, spec: str, impl: Callable, active: str = "x", lib=None) -> None:
    sig = _signature(spec, {})
    for f in fns:
        if f is not None:
            ENTRIES[f] = Entry(impl, sig, frozenset(active.replace(" ", "").split(",")), lib)


def _cw(fns, positions: slice = slice(0, 1), f: Optional[Callable] = None) -> None:
    """Functions linear in the argument at ``positions`` (multilinear in several): each result
    coefficient is the function applied to argument coefficients (a Cauchy product for several)."""
    for fn in fns:
        if fn is not None:
            ENTRIES[fn] = Entry(None, positions=positions, f=f)


def _fns(name: str, *mods) -> list:
    """``mod.name`` for each module that has it as a function (``torch.float`` is a dtype)."""
    return [f for m in mods if callable(f := getattr(m, name, None)) and not isinstance(f, type)]


T, TT = torch, torch.Tensor


# ====================================================================== the rules
# (each ``impl(c, **series)`` returns the result's series; its value at index 0 is replaced by the
# primal result)

LN2, LN10 = math.log(2.0), math.log(10.0)


def _unary(name: str, impl: Callable, mods=(T, TT, np)) -> None:
    """``torch.name``, ``Tensor.name`` and ``numpy.name``, where they exist."""
    _def(_fns(name, *mods), "x, /", impl)


def _log(c, x, base=None):
    L = ts.log(x, c.y0)
    if base is None or base[0] is None:
        return L
    if ts.is_const(base):
        return ts.lin(L, c=1 / c.lib.log(base[0]))
    return ts.div(ts.log(x, c.lib.log(x[0])), ts.log(base, c.lib.log(base[0])), c.y0)


def _inverse_trig(kind: str):
    """asin, acos, atan, asinh, acosh, atanh: the integral of their derivative series."""
    def impl(c, x):
        sq = ts.mul(x, x)
        root = lambda S: ts.sqrt(S, c.lib.sqrt(S[0]))  # noqa: E731
        if kind in ("asin", "acos"):
            d = ts.recip(root(ts.lin(sq, 1.0, -1.0)))
            d = ts.lin(d, c=-1.0) if kind == "acos" else d
        elif kind == "acosh":   # sqrt(x - 1) sqrt(x + 1): the principal branch for complex x too
            d = ts.recip(ts.mul(root(ts.lin(x, -1.0)), root(ts.lin(x, 1.0))))
        else:
            d = ts.recip({"atan": lambda: ts.lin(sq, 1.0), "asinh": lambda: root(ts.lin(sq, 1.0)),
                          "atanh": lambda: ts.lin(sq, 1.0, -1.0)}[kind]())
        return ts.integral(c.y0, (x, d))
    return impl


def _abs(c, x):
    if _is_complex(x[0]):   # |z(t)| = sqrt(z(t) conj(z(t))) along real t
        zz = ts.mul(x, [cj(v) for v in x])
        return ts.sqrt([None if v is None else v.real for v in zz], c.y0)
    return ts.lin(x, c=_sign(x[0]))   # (sign 0 at 0: the first-order rules' convention)


_unary("exp", lambda c, x: ts.exp(x, c.y0))
_def([math.exp, cmath.exp], "x, /", ENTRIES[T.exp].impl)
_unary("expm1", lambda c, x: ts.ode(c.y0, x, lambda Y, m: ts.acc(Y[m], 1.0 if m == 0 else None)))
_def([math.expm1, T.special.expm1], "x, /", ENTRIES[T.expm1].impl)
_unary("exp2", lambda c, x: ts.exp(ts.lin(x, c=LN2), c.y0))
_def([getattr(math, "exp2", None), T.special.exp2], "x, /", ENTRIES[T.exp2].impl)
_unary("log", _log)
_def([math.log], "x, base=None, /", _log, "x, base", lib=math)
_def([cmath.log], "x, base=None, /", _log, "x, base", lib=cmath)
for _n, _c in (("log2", LN2), ("log10", LN10)):
    _unary(_n, lambda c, x, _c=_c: ts.lin(ts.log(x, c.y0), c=1 / _c))
    _def([getattr(math, _n), getattr(cmath, _n, None)], "x, /", ENTRIES[getattr(T, _n)].impl)
_unary("log1p", lambda c, x: ts.integral(c.y0, (x, ts.recip(ts.lin(x, 1.0)))))
_def([math.log1p, T.special.log1p], "x, /", ENTRIES[T.log1p].impl)
_unary("sqrt", lambda c, x: ts.sqrt(x, c.y0))
_def([math.sqrt, cmath.sqrt], "x, /", lambda c, x: ts.sqrt(x, c.y0))
_unary("rsqrt", lambda c, x: ts.rpow(x, -0.5, c.y0), (T, TT))
_def([np.cbrt, getattr(math, "cbrt", None)], "x, /", lambda c, x: ts.rpow(x, 1 / 3, c.y0))
for _mod, _lb in ((T, None), (TT, None), (np, None), (math, math), (cmath, cmath)):
    _def(_fns("sin", _mod), "x, /", lambda c, x: ts.sincos(x, c.y0, c.lib.cos(x[0]))[0], lib=_lb)
    _def(_fns("cos", _mod), "x, /", lambda c, x: ts.sincos(x, c.lib.sin(x[0]), c.y0)[1], lib=_lb)
    _def(_fns("sinh", _mod), "x, /", lambda c, x: ts.sincos(x, c.y0, c.lib.cosh(x[0]), 1.0)[0], lib=_lb)
    _def(_fns("cosh", _mod), "x, /", lambda c, x: ts.sincos(x, c.lib.sinh(x[0]), c.y0, 1.0)[1], lib=_lb)
    _def(_fns("tan", _mod), "x, /", lambda c, x: ts.tanh(x, c.y0, 1.0), lib=_lb)
    _def(_fns("tanh", _mod), "x, /", lambda c, x: ts.tanh(x, c.y0), lib=_lb)
    for _n in ("asin", "acos", "atan", "asinh", "acosh", "atanh"):
        _def(_fns(_n, _mod) + _fns("arc" + _n[1:], _mod), "x, /", _inverse_trig(_n), lib=_lb)
_def([F.tanh], "x, /", ENTRIES[T.tanh].impl)
_def([T.sigmoid, TT.sigmoid, F.sigmoid, T.special.expit], "x, /", lambda c, x: ts.sigmoid(x, c.y0))
for _mod, _lb in ((T, None), (TT, None), (T.special, None), (math, math)):
    _def(_fns("erf", _mod), "x, /", lambda c, x: ts.erf(x, c.y0, c.lib), lib=_lb)
    _def(_fns("erfc", _mod), "x, /", lambda c, x: ts.erf(x, c.y0, c.lib, -1.0), lib=_lb)
_def([abs, operator.abs, math.fabs, T.abs, T.absolute, TT.abs, TT.absolute, np.abs, np.fabs], "x, /", _abs)
_unary("square", lambda c, x: ts.mul(x, x))
_unary("reciprocal", lambda c, x: ts.recip(x, c.y0))

# ---------------------------------------------------------------- activations (torch.nn.functional)


def _masked(mask, x, other=None):
    """``x``'s coefficients where ``mask`` holds, else ``other``'s (zero if None)."""
    return [None] + [_sel(mask, a, None if other is None else b) for a, b in zip(x[1:], (other or x)[1:])]


def _gelu(c, x, approximate):
    if approximate[0] == "tanh":   # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        u = ts.lin(ts.add(x, ts.lin(ts.mul(x, ts.mul(x, x)), c=0.044715)), c=math.sqrt(2 / math.pi))
        return ts.mul(ts.lin(x, c=0.5), ts.lin(ts.tanh(u, torch.tanh(u[0])), 1.0))
    u = ts.lin(x, c=1 / math.sqrt(2.0))   # x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2
    return ts.mul(x, ts.lin(ts.erf(u, torch.erf(u[0]), torch), 0.5, 0.5))


def _softplus(c, x, beta, threshold):
    z = ts.lin(x, c=beta[0])
    smooth = ts.integral(c.y0, (x, ts.sigmoid(z, torch.sigmoid(z[0]))))
    return _masked(z[0] > threshold[0], x, smooth)


_def([T.relu, TT.relu, F.relu], "x, inplace=False", lambda c, x, inplace: _masked(x[0] > 0, x))
_def([F.relu6], "x, inplace=False", lambda c, x, inplace: _masked((x[0] > 0) & (x[0] < 6), x))
_def([F.hardtanh], "x, min_val=-1.0, max_val=1.0, inplace=False",
     lambda c, x, min_val, max_val, inplace: _masked((x[0] > min_val[0]) & (x[0] < max_val[0]), x))
_def([F.leaky_relu], "x, negative_slope=0.01, inplace=False",
     lambda c, x, negative_slope, inplace: _masked(x[0] > 0, x, ts.lin(x, c=negative_slope[0])))
_def([F.elu], "x, alpha=1.0, inplace=False", lambda c, x, alpha, inplace: _masked(
    x[0] > 0, x, ts.lin(ts.exp(x, torch.exp(x[0])), c=alpha[0])))
_def([F.silu], "x, inplace=False", lambda c, x, inplace: ts.mul(x, ts.sigmoid(x, torch.sigmoid(x[0]))))
_def([F.gelu], "x, approximate='none'", _gelu)
_def([F.softplus], "x, beta=1.0, threshold=20.0", _softplus)
_def([F.logsigmoid], "x, /", lambda c, x: ts.integral(c.y0, (x, ts.sigmoid(ts.lin(x, c=-1.0), torch.sigmoid(-x[0])))))

# ---------------------------------------------------------------- two arguments


def _add_impl(sign: float, swap: bool = False):
    """``a + sign * alpha * b`` (``rsub``: ``b - alpha * a``)."""
    def impl(c, a, b, alpha):
        s = sign * alpha[0]
        a, b = (b, a) if swap else (a, b)
        return [None] + [ts.acc(u, v if s == 1 else ts.scale(v, s)) for u, v in zip(a[1:], b[1:])]
    return impl


def _truediv(c, a, b, rounding_mode=None):
    if rounding_mode is not None and rounding_mode[0] is not None:
        raise NoRuleError(f"no Taylor rule for {fn_name(c.fn)} with rounding_mode={rounding_mode[0]!r}")
    return ts.div(a, b, c.y0)


def _pow(c, a, b, modulo=None):
    if modulo is not None and modulo[0] is not None:
        raise NoRuleError("no Taylor rule for pow with a modulus")
    if ts.is_const(b):
        r = b[0]
        return ts.ipow(a, int(r), c.y0) if _integral_power(r) else ts.rpow(a, r, c.y0)
    log_a = ts.const(_log_of_base(a[0], c.lib), len(a) - 1) if ts.is_const(a) else ts.log(a, c.lib.log(a[0]))
    return ts.exp(ts.mul(b, log_a), c.y0)   # a ** b = exp(b log a)


def _atan2(c, a, b):
    den = ts.add(ts.mul(a, a), ts.mul(b, b))
    return ts.integral(c.y0, (a, ts.div(b, den)), (b, ts.lin(ts.div(a, den), c=-1.0)))


def _hypot(c, *xs):
    return ts.sqrt(ts.add_all([ts.mul(x, x) for x in xs]), c.y0)


def _mod(c, a, b):
    """``a - q b`` with the primal's integer quotient ``q`` (floor for ``%``, truncated for fmod):
    piecewise linear, as the first-order rules."""
    q = (a[0] - c.y0) / b[0]
    q = torch.round(q) if isinstance(q, torch.Tensor) else np.round(q) if isinstance(q, np.ndarray) else round(q)
    return [None] + [ts.acc(u, ts.scale(v, -q)) for u, v in zip(a[1:], b[1:])]


def _extremum(larger: bool):
    """maximum/minimum: the winner's series; at a tie the mean of both (half the gradient each, as
    the first-order rules)."""
    def impl(c, a, b):
        win = a[0] > b[0] if larger else a[0] < b[0]
        tie = a[0] == b[0]
        return [None] + [_sel(win, u, _sel(tie, ts.scale(ts.acc(u, v), 0.5), v)) for u, v in zip(a[1:], b[1:])]
    return impl


def _clamp(c, x, lo, hi):
    """The bound the result is (``hi`` where ``lo > hi``), else ``x``: the first-order rules'
    convention, ``x`` at the bounds."""
    lo = None if lo[0] is None else lo
    hi = None if hi[0] is None else hi
    crossed = False if lo is None or hi is None else lo[0] > hi[0]
    below = False if lo is None else (x[0] < lo[0]) & _not(crossed)
    above = crossed if hi is None else (x[0] > hi[0]) | crossed
    out = [None] + x[1:]
    if lo is not None:
        out = [None] + [_sel(below, v, u) for u, v in zip(out[1:], lo[1:])]
    if hi is not None:
        out = [None] + [_sel(above, v, u) for u, v in zip(out[1:], hi[1:])]
    return out


def _where(c, cond, x, y):
    return [None] + [_sel(cond[0], u, v) for u, v in zip(x[1:], y[1:])]


def _affine_bilinear(c, x, weight, bias=None, **const):
    """``f(x, w) + b`` for ``f`` bilinear (``F.linear``, the convolutions): a Cauchy product."""
    rest = {n: v[0] for n, v in const.items()}
    coefs = [None]
    for j in range(1, len(x)):
        s = ts.total(c.fn(u, w, None, **rest) for i in range(j + 1)
                 if (u := x[i]) is not None and (w := weight[j - i]) is not None)
        b = None if bias is None else bias[j]   # (broadcast as ``f`` does: f(0, 0, b))
        coefs.append(ts.acc(s, None if b is None else c.fn(0 * x[0], 0 * weight[0], b, **rest)))
    return coefs


def _inv(c, x):
    """``Y = X^-1``: ``sum_i X_i Y_{j-i} = 0``, so ``Y_j = -Y_0 sum_{i>=1} X_i Y_{j-i}``."""
    Y = [c.y0]
    for j in range(1, len(x)):
        s = ts.total(x[i] @ Y[j - i] for i in range(1, j + 1) if x[i] is not None and Y[j - i] is not None)
        Y.append(None if s is None else -(c.y0 @ s))
    return Y


def _solve(c, a, b, left=None):
    """``Z = solve(A, B)``: ``Z_j = solve(A_0, B_j - sum_{i>=1} A_i Z_{j-i})``."""
    if left is not None and left[0] is not True:
        raise NoRuleError(f"no Taylor rule for {fn_name(c.fn)} with left=False")
    vec = c.y0.ndim == a[0].ndim - 1   # B a vector (or a stack of them), as the primal took it
    Z = [c.y0]
    for j in range(1, len(a)):
        s = ts.total((a[i] @ Z[j - i][..., None])[..., 0] if vec else a[i] @ Z[j - i]
                     for i in range(1, j + 1) if a[i] is not None and Z[j - i] is not None)
        r = ts.acc(b[j], ts.scale(s, -1))
        Z.append(None if r is None else c.fn(a[0], r))
    return Z


def _lse(x, dim, keepdim):
    """``log(sum(exp(x), dim))``: the log of the sum of the exp series, shifted by the maximum."""
    m = torch.amax(x[0], dim=dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = ts.exp(ts.lin(x, -m), torch.exp(x[0] - m))
    return ts.log([None if v is None else v.sum(dim, keepdim=keepdim) for v in e], None)


def _softmax(log: bool):
    def impl(c, x, dim, dtype=None, _stacklevel=None):
        if dim[0] is None:
            raise NoRuleError(f"no Taylor rule for {fn_name(c.fn)} without dim")
        if dtype[0] is not None:
            x = [None if v is None else v.to(dtype[0]) for v in x]
        z = ts.add(x, ts.lin(_lse(x, dim[0], True), c=-1.0))   # x - logsumexp(x)
        return z if log else ts.exp(z, c.y0)
    return impl


AB = "a, b, /"
_def(_fns("add", T, TT, np) + [operator.add, operator.iadd], "a, b, *, alpha=1", _add_impl(1.0), "a, b")
_def(_fns("sub", T, TT) + _fns("subtract", T, TT, np) + [operator.sub, operator.isub], "a, b, *, alpha=1",
     _add_impl(-1.0), "a, b")
_def([T.rsub], "a, b, *, alpha=1", _add_impl(-1.0, swap=True), "a, b")
_def([operator.truediv, operator.itruediv, np.divide, np.true_divide] + _fns("div", T, TT)
     + _fns("divide", T, TT) + _fns("true_divide", T, TT), "a, b, *, rounding_mode=None", _truediv, "a, b")
_def([operator.pow, operator.ipow, pow, np.power, np.float_power, T.float_power, TT.float_power],
     "a, b, modulo=None", _pow, "a, b")
_def([math.pow], AB, _pow, "a, b", lib=math)
_def([complex], "real=0.0, imag=0.0", lambda c, real, imag: ts.add(real, ts.lin(imag, c=1j)), "real, imag")
_def(_fns("pow", T, TT), "a, b", _pow, "a, b")
_def([math.atan2, np.arctan2] + _fns("atan2", T, TT) + _fns("arctan2", T, TT), AB, _atan2, "a, b")
_def([T.hypot, TT.hypot, np.hypot], AB, lambda c, a, b: _hypot(c, a, b), "a, b")
_def([math.hypot], "*xs", lambda c, xs: _hypot(c, *xs), "xs", lib=math)
_def(_fns("maximum", T, TT, np) + _fns("fmax", T, TT, np), AB, _extremum(True), "a, b")
_def(_fns("minimum", T, TT, np) + _fns("fmin", T, TT, np), AB, _extremum(False), "a, b")
_def([operator.mod, operator.imod, math.fmod, np.remainder, np.fmod] + _fns("remainder", T, TT)
     + _fns("fmod", T, TT), AB, _mod, "a, b")
_def(_fns("logsumexp", T, TT), "x, dim, keepdim=False", lambda c, x, dim, keepdim: _lse(x, dim[0], keepdim[0]))
for _log in (False, True):
    _n = "log_softmax" if _log else "softmax"
    _def(_fns(_n, T, TT), "x, dim, dtype=None", _softmax(_log))
    _def([getattr(F, _n)], "x, dim=None, _stacklevel=3, dtype=None", _softmax(_log))
_def([T.linalg.inv, T.inverse, TT.inverse, np.linalg.inv], "x, /", _inv)
_def([T.linalg.solve], "a, b, *, left=True", _solve, "a, b")
_def([np.linalg.solve], "a, b, /", _solve, "a, b")
_def([T.where, np.where], "cond, x, y, /", _where, "x, y")
_def([TT.where], "x, cond, y, /", _where, "x, y")
_def(_fns("clamp", T, TT) + _fns("clip", T, TT), "x, min=None, max=None",
     lambda c, x, min, max: _clamp(c, x, min, max), "x, min, max")
_def(_fns("clamp_min", T, TT), "x, min", lambda c, x, min: _clamp(c, x, min, [None]), "x, min")
_def(_fns("clamp_max", T, TT), "x, max", lambda c, x, max: _clamp(c, x, [None], max), "x, max")
_def([np.clip], "x, a_min=None, a_max=None", lambda c, x, a_min, a_max: _clamp(c, x, a_min, a_max), "x, a_min, a_max")
_def([F.linear], "x, weight, bias=None", _affine_bilinear, "x, weight, bias")
for _f in (F.conv1d, F.conv2d, F.conv3d):
    _def([_f], "x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1", _affine_bilinear,
         "x, weight, bias")

# ---------------------------------------------------------------- linear and multilinear functions
# (each coefficient is the call itself on coefficients: ``sum(x)_j = sum(x_j)``; a function
# ``L(x) + c`` with a constant part, as ``diff(x, prepend=c)`` or ``pad(x, value=c)``, is not here)
_LINEAR_TORCH = ["sum", "mean", "cumsum", "trace", "reshape", "view", "view_as", "reshape_as", "squeeze",
                 "unsqueeze", "flatten", "ravel", "unflatten", "transpose", "swapaxes", "swapdims", "t",
                 "adjoint", "permute", "movedim", "moveaxis", "expand", "expand_as", "broadcast_to", "flip",
                 "fliplr", "flipud", "roll", "rot90", "tril", "triu", "diagonal", "diag", "diag_embed",
                 "narrow", "select", "gather", "index_select", "take_along_dim", "take", "clone",
                 "contiguous", "conj", "conj_physical", "resolve_conj", "resolve_neg", "real", "imag", "neg",
                 "negative", "positive", "deg2rad", "rad2deg", "split", "chunk", "unbind", "tensor_split",
                 "repeat", "tile", "to", "double", "float", "type_as", "item"]
_LINEAR_NUMPY = ["sum", "mean", "cumsum", "trace", "reshape", "ravel", "transpose", "swapaxes", "moveaxis",
                 "squeeze", "expand_dims", "flip", "fliplr", "flipud", "roll", "rot90", "diagonal", "diag",
                 "tril", "triu", "real", "imag", "conj", "conjugate", "negative", "positive", "broadcast_to",
                 "take", "take_along_axis", "copy", "deg2rad", "rad2deg", "degrees", "radians", "asarray",
                 "array"]
_SEQUENCES = ["cat", "concat", "concatenate", "stack", "hstack", "vstack"]
_cw([f for n in _LINEAR_TORCH for f in _fns(n, T, TT)] + [getattr(np, n) for n in _LINEAR_NUMPY]
    + [f for n in _SEQUENCES for f in _fns(n, T, np)]
    + [operator.neg, operator.pos, operator.getitem, float, math.degrees, math.radians, math.fsum, T.tensor,
       T.as_tensor])
_BILINEAR = ["matmul", "mm", "bmm", "mv", "dot", "vdot", "inner", "outer", "ger", "kron", "tensordot", "cross"]
_cw([f for n in _BILINEAR for f in _fns(n, T, TT, np)] + _fns("mul", T, TT) + _fns("multiply", T, TT, np),
    slice(0, 2))
for _op, _f in ((operator.mul, operator.mul), (operator.imul, operator.mul), (operator.matmul, operator.matmul),
                (operator.imatmul, operator.matmul)):
    _cw([_op], slice(0, 2), _f)
_cw([T.einsum, np.einsum], slice(1, None))
