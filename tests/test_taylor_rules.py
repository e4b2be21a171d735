"""Taylor mode's series rules (rules/taylor.py) against known coefficients.

Each rule's result series is compared, in float64, with the Taylor coefficients of the same torch
function along the argument series, computed by repeated torch.autograd derivatives
(``y_j = y^(j)(0) / j!``), up to order 8: for Python numbers (math, cmath, operators), tensors
(functions and methods) and numpy arrays. The composition exp(sin(x)) and powers are also checked
against sympy's series.
"""
import cmath
import math
import operator

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F

from torchzygote.errors import NoRuleError
from torchzygote.rules.registry import Rule
from torchzygote.rules.taylor import ENTRIES, propagate

T, TT = torch, torch.Tensor
K = 8
F64 = torch.float64


# ================================================================ the references

def _t(v):
    return v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))


def _curve(args, series, t):
    """The arguments along ``x0 + sum_j x_j t^j`` for a scalar ``t`` (complex: every floating-point
    tensor made complex, as torch's products need)."""
    xs = []
    for a, s in zip(args, series):
        x = torch.as_tensor(a) if isinstance(a, np.ndarray) else a
        if isinstance(x, torch.Tensor) and t.is_complex() and x.is_floating_point():
            x = x.to(torch.complex128)
        if s is not None:
            x = _t(x).to(torch.complex128 if _t(x).is_complex() or t.is_complex() else F64)
            x = x + sum(_t(c) * t ** j for j, c in enumerate(s, 1))
        xs.append(x)
    return xs


def _coefficients(s, t, k):
    """Taylor coefficients 1..k at ``t = 0`` of the real scalar ``s(t)``, by repeated autograd."""
    out, cur = [], s
    for j in range(1, k + 1):
        if not cur.requires_grad:
            out.append(0.0)
            cur = torch.zeros((), dtype=F64)
            continue
        (cur,) = torch.autograd.grad(cur, t, create_graph=True, allow_unused=True, materialize_grads=True)
        out.append(cur.item() / math.factorial(j))
    return out


def autograd_reference(ref, args, series, k, w):
    """Coefficients 1..k of ``sum(w * ref(*args(t)))``, real and imaginary parts."""
    t = torch.zeros((), dtype=F64, requires_grad=True)
    p = (torch.as_tensor(w) * torch.as_tensor(ref(*_curve(args, series, t)))).sum()
    re = _coefficients(p.real if p.is_complex() else p, t, k)
    im = _coefficients(p.imag, t, k) if p.is_complex() else [0.0] * k
    return [complex(a, b) if p.is_complex() else a for a, b in zip(re, im)]


def cauchy_reference(ref, args, series, k, w, r=0.25, n=64):
    """The same coefficients of a holomorphic ``ref`` by Cauchy's integral formula: the discrete
    Fourier transform of its values on the circle ``|t| = r`` (the arguments' singularities are
    at least 0.4 away, so the aliased terms are below ``(r / 0.4) ** n``); for a polynomial of
    degree below ``n`` (multilinear functions), ``r = 1`` makes it exact."""
    t = r * torch.exp(2j * math.pi * torch.arange(n, dtype=F64) / n)
    p = torch.stack([(torch.as_tensor(w) * torch.as_tensor(ref(*_curve(args, series, tn)))).sum() for tn in t])
    return [complex((p * t ** -j).mean()) for j in range(1, k + 1)]


# torch functions of complex arguments, holomorphic where the tests evaluate them
HOLOMORPHIC = {torch.exp, torch.expm1, torch.exp2, torch.log, torch.log2, torch.log10, torch.log1p, torch.sqrt,
               torch.rsqrt, torch.sin, torch.cos, torch.tan, torch.sinh, torch.cosh, torch.tanh, torch.asin,
               torch.acos, torch.atan, torch.asinh, torch.acosh, torch.atanh, torch.sigmoid, torch.reciprocal,
               torch.square, torch.neg, torch.add, torch.sub, torch.mul, torch.div, torch.pow, torch.rsub}


# ================================================================ the driver

_RNG = np.random.default_rng(0)


def _like(x0, j=2):
    """A random coefficient ``j`` of ``x0``'s type and shape: near +-1 for the first, so that the
    k-th derivatives of the functions weigh in every coefficient, smaller for the others."""
    shape = tuple(np.shape(_as_np(x0)))
    def draw():
        if j == 1:
            return _RNG.choice([-1.0, 1.0], size=shape) * _RNG.uniform(0.7, 1.0, size=shape)
        return _RNG.normal(size=shape) * 0.3
    c = (draw() + 1j * draw()) / math.sqrt(2) if np.iscomplexobj(_as_np(x0)) else draw()
    if isinstance(x0, torch.Tensor):
        return torch.as_tensor(c).to(x0.dtype)
    if isinstance(x0, np.ndarray):
        return np.asarray(c)
    return complex(c) if isinstance(x0, complex) else float(c)


def _as_np(v):
    return v.detach().resolve_conj().resolve_neg().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)


def polynomial_reference(ref, args, series, k, w):
    return cauchy_reference(ref, args, series, k, w, r=1.0)


def check(fn, ref, args, active=(0,), k=K, kw=None, ref_kw=None, tol=1e-9, exact=None):
    """``propagate``'s series of ``fn(*args, **kw)`` (random series on the ``active`` arguments)
    against the coefficients of ``ref`` (Cauchy's formula for a holomorphic one, else repeated
    autograd), coefficient by coefficient, and truncated to lower orders against its own first
    coefficients; the coefficients have the result's type and shape. Returns ``(series, coefficients)``."""
    series = [[_like(a, j) for j in range(1, k + 1)] if i in active else None for i, a in enumerate(args)]
    ys = _propagated(fn, args, series, kw)
    w = _RNG.normal(size=np.shape(_as_np(ys[0])))
    exact = exact or (cauchy_reference if ref in HOLOMORPHIC else autograd_reference)
    want = exact(lambda *xs: ref(*xs, **(ref_kw if ref_kw is not None else kw or {})), args, series, k, w)
    got = [complex(np.sum(w * _as_np(c))) for c in ys]
    scale = max(1.0, max(abs(v) for v in want))
    for j, (g, r) in enumerate(zip(got, want), 1):
        assert abs(g - r) <= tol * (abs(r) + 0.1 * scale), f"{fn} order {j}: {g} != {r}"
    for low in (1, 3):
        if low < k:
            short = _propagated(fn, args, [s if s is None else s[:low] for s in series], kw)
            _same(short, ys[:low], 1e-12)
    return series, ys


def _propagated(fn, args, series, kw=None):
    """The coefficients, after checking the primal and their types and shapes."""
    y0, ys = propagate(fn, None, args, kw or {}, series)
    assert len(ys) == len(next(s for s in series if s is not None))
    np.testing.assert_allclose(_as_np(y0), _as_np(fn(*args, **(kw or {}))), rtol=1e-12, atol=1e-12)
    for c in ys:
        if isinstance(y0, (torch.Tensor, np.ndarray)):
            assert type(c) is type(y0) and tuple(c.shape) == tuple(y0.shape) and c.dtype == y0.dtype
        else:
            assert isinstance(c, (float, complex)), type(c)
    return ys


def _same(got, want, tol=1e-11):
    for j, (g, w) in enumerate(zip(got, want), 1):
        np.testing.assert_allclose(_as_np(g), _as_np(w), rtol=tol, atol=tol, err_msg=f"order {j}")


def _variant(fn, args, series, ys, kw=None):
    """``fn`` (a number, method or numpy variant) on the same values gives the same coefficients."""
    conv = _converter(fn, args)
    got = _propagated(fn, [conv(a) for a in args], [s if s is None else [conv(c) for c in s] for s in series], kw)
    _same([conv(c) for c in got], [conv(c) for c in ys])


def _converter(fn, args):
    """Values in ``fn``'s type: the first entry as a Python number for math, cmath and the
    operators, an array for numpy, a tensor for torch."""
    mod = getattr(fn, "__module__", "") or ""
    if fn in (abs, pow) or mod in ("math", "cmath", "_operator", "operator"):
        number = complex if mod == "cmath" else float
        return lambda v: v if isinstance(v, (str, int)) else number(np.ravel(_as_np(v))[0])
    if isinstance(fn, np.ufunc) or mod.startswith("numpy"):
        return lambda v: v if isinstance(v, (str, int, float)) else _as_np(v)
    return lambda v: v if not isinstance(v, np.ndarray) else torch.as_tensor(v)


def _tensor(vals, dtype=F64):
    return torch.tensor(vals, dtype=dtype)


ANY = [0.3, -0.45, 0.7]
POS = [0.4, 1.3, 2.1]
UNIT = [0.3, -0.45, 0.6]
ABOVE1 = [1.5, 2.0, 3.1]
FAR0 = [0.9, -1.3, 1.7]
DOMAIN = dict(any=ANY, pos=POS, unit=UNIT, above1=ABOVE1, far0=FAR0)


UNARY = [
    ("exp", [T.exp, TT.exp, math.exp, cmath.exp, np.exp], torch.exp, "any"),
    ("expm1", [T.expm1, TT.expm1, math.expm1, np.expm1, T.special.expm1], torch.expm1, "any"),
    ("exp2", [T.exp2, TT.exp2, T.special.exp2, np.exp2, math.exp2], torch.exp2, "any"),
    ("log", [T.log, TT.log, math.log, cmath.log, np.log], torch.log, "pos"),
    ("log2", [T.log2, TT.log2, math.log2, np.log2], torch.log2, "pos"),
    ("log10", [T.log10, TT.log10, math.log10, cmath.log10, np.log10], torch.log10, "pos"),
    ("log1p", [T.log1p, TT.log1p, T.special.log1p, math.log1p, np.log1p], torch.log1p, "pos"),
    ("sqrt", [T.sqrt, TT.sqrt, math.sqrt, cmath.sqrt, np.sqrt], torch.sqrt, "pos"),
    ("rsqrt", [T.rsqrt, TT.rsqrt], torch.rsqrt, "pos"),
    ("cbrt", [np.cbrt, math.cbrt], lambda x: torch.where(x.real > 0, x ** (1 / 3), -(-x) ** (1 / 3)), "far0"),
    ("sin", [T.sin, TT.sin, math.sin, cmath.sin, np.sin], torch.sin, "any"),
    ("cos", [T.cos, TT.cos, math.cos, cmath.cos, np.cos], torch.cos, "any"),
    ("tan", [T.tan, TT.tan, math.tan, cmath.tan, np.tan], torch.tan, "any"),
    ("sinh", [T.sinh, TT.sinh, math.sinh, cmath.sinh, np.sinh], torch.sinh, "any"),
    ("cosh", [T.cosh, TT.cosh, math.cosh, cmath.cosh, np.cosh], torch.cosh, "any"),
    ("tanh", [T.tanh, TT.tanh, F.tanh, math.tanh, cmath.tanh, np.tanh], torch.tanh, "any"),
    ("asin", [T.asin, T.arcsin, TT.asin, TT.arcsin, math.asin, cmath.asin, np.arcsin], torch.asin, "unit"),
    ("acos", [T.acos, T.arccos, TT.acos, TT.arccos, math.acos, cmath.acos, np.arccos], torch.acos, "unit"),
    ("atan", [T.atan, T.arctan, TT.atan, TT.arctan, math.atan, cmath.atan, np.arctan], torch.atan, "any"),
    ("asinh", [T.asinh, T.arcsinh, TT.asinh, TT.arcsinh, math.asinh, cmath.asinh, np.arcsinh], torch.asinh, "any"),
    ("acosh", [T.acosh, T.arccosh, TT.acosh, TT.arccosh, math.acosh, cmath.acosh, np.arccosh], torch.acosh, "above1"),
    ("atanh", [T.atanh, T.arctanh, TT.atanh, TT.arctanh, math.atanh, cmath.atanh, np.arctanh], torch.atanh, "unit"),
    ("sigmoid", [T.sigmoid, TT.sigmoid, F.sigmoid, T.special.expit], torch.sigmoid, "any"),
    ("erf", [T.erf, TT.erf, T.special.erf, math.erf], torch.erf, "any"),
    ("erfc", [T.erfc, TT.erfc, T.special.erfc, math.erfc], torch.erfc, "any"),
    ("abs", [T.abs, abs, math.fabs, TT.abs, np.abs, np.fabs], torch.abs, "any"),
    ("square", [T.square, TT.square, np.square], torch.square, "any"),
    ("reciprocal", [T.reciprocal, TT.reciprocal, np.reciprocal], torch.reciprocal, "pos"),
    ("neg", [T.neg, operator.neg, TT.neg, np.negative], torch.neg, "any"),
    ("relu", [T.relu, TT.relu, F.relu], torch.relu, "any"),
    ("silu", [F.silu], F.silu, "any"),
    ("logsigmoid", [F.logsigmoid], F.logsigmoid, "any"),
    ("elu", [F.elu], F.elu, "any"),
    ("relu6", [F.relu6], F.relu6, "any"),
    ("gelu", [F.gelu], F.gelu, "any"),
    ("softplus", [F.softplus], F.softplus, "any"),
]


@pytest.mark.parametrize("name, fns, ref, dom", UNARY, ids=[u[0] for u in UNARY])
def test_unary(name, fns, ref, dom):
    """The first variant on a tensor against autograd; the others (math, numpy, methods) against it."""
    x = _converter(fns[0], None)(_tensor(DOMAIN[dom]))
    series, ys = check(fns[0], ref, [x], exact=cauchy_reference if name == "cbrt" else None)
    for fn in fns[1:]:
        if getattr(fn, "__module__", "") == "cmath":   # a complex number against a complex tensor
            z = torch.tensor([DOMAIN[dom][0] + 0.2j], dtype=torch.complex128)
            zs = [[_like(z, j) for j in range(1, K + 1)]]
            _variant(fn, [z], zs, _propagated(fns[0], [z], zs))
        else:
            _variant(fn, [x], series, ys)


# torch's autograd has these functions of complex tensors: the rules' complex arithmetic
# (at points at least 0.4 from their singularities and branch cuts)
COMPLEX = [T.exp, T.exp2, T.log, T.log10, T.sqrt, T.rsqrt, T.sin, T.cos, T.tan, T.tanh, T.sinh, T.cosh, T.asin,
           T.acos, T.atan, T.asinh, T.acosh, T.atanh, T.reciprocal, T.square, T.abs, T.sigmoid, T.expm1, T.log1p]


@pytest.mark.parametrize("fn", COMPLEX, ids=lambda f: f.__name__)
def test_unary_complex_tensors(fn):
    z = torch.tensor([0.4 + 0.9j, -0.5 + 0.8j, 1.2 - 0.7j], dtype=torch.complex128)
    check(fn, fn, [z], tol=1e-8)


def test_activations_with_arguments():
    x = _tensor([0.3, -0.45, 0.7, 2.5, -3.0])
    check(F.gelu, F.gelu, [x], kw=dict(approximate="tanh"))
    check(F.softplus, F.softplus, [x], kw=dict(beta=2.0, threshold=1.0))   # both branches
    check(F.leaky_relu, F.leaky_relu, [x, 0.2])
    check(F.elu, F.elu, [x], kw=dict(alpha=0.7))
    check(F.hardtanh, F.hardtanh, [x], kw=dict(min_val=-0.5, max_val=0.5))


# ================================================================ two arguments

BINARY = [
    ("add", [operator.add, T.add, TT.add, np.add], torch.add, ANY, POS),
    ("sub", [operator.sub, T.sub, T.subtract, TT.sub, np.subtract], torch.sub, ANY, POS),
    ("mul", [operator.mul, T.mul, TT.mul, T.multiply, np.multiply], torch.mul, ANY, POS),
    ("div", [operator.truediv, T.div, TT.div, T.true_divide, np.divide], torch.div, ANY, POS),
    ("pow", [operator.pow, pow, math.pow, T.pow, TT.pow, np.power, np.float_power], torch.pow, POS, ANY),
    # (their holomorphic forms where b > 0)
    ("atan2", [T.atan2, math.atan2, np.arctan2, T.arctan2], lambda a, b: torch.atan(a / b), ANY, POS),
    ("hypot", [T.hypot, math.hypot, np.hypot], lambda a, b: torch.sqrt(a * a + b * b), ANY, POS),
    ("maximum", [T.maximum, TT.maximum, np.maximum, T.fmax], torch.maximum, ANY, [0.1, -0.3, 0.9]),
    ("minimum", [T.minimum, np.minimum, T.fmin], torch.minimum, ANY, [0.1, -0.3, 0.9]),
]


@pytest.mark.parametrize("name, fns, ref, a, b", BINARY, ids=[b[0] for b in BINARY])
def test_binary(name, fns, ref, a, b):
    """The first variant on tensors against autograd, the others against it."""
    args = [_tensor(a), _tensor(b)]
    exact = cauchy_reference if name in ("atan2", "hypot") else None
    for active in ((0,), (1,), (0, 1)):
        series, ys = check(fns[0], ref, args, active, exact=exact)
        for fn in fns[1:]:
            _variant(fn, args, series, ys)
    if name in ("add", "sub", "mul", "div", "pow"):
        check(fns[0], ref, [_tensor(a), b[0]], (0,))           # a tensor and a number
        check(fns[0], ref, [a[0], _tensor(b)], (0,))           # a number's series broadcast to a tensor


def test_operators_with_alpha_and_rsub():
    a, b = _tensor(ANY), _tensor(POS)
    check(T.add, T.add, [a, b], (0, 1), kw=dict(alpha=2.5))
    check(T.sub, T.sub, [a, b], (0, 1), kw=dict(alpha=-1.5))
    check(T.rsub, T.rsub, [a, b], (0, 1), kw=dict(alpha=3.0))


def test_pow_exponents():
    x = _tensor([0.4, 1.3, 2.1])
    for r in (0, 1, 3, 7, -3, 2.0, 0.5, -1.5, 1 / 3):
        series, ys = check(operator.pow, torch.pow, [x, r])
        for fn in (math.pow, np.power, TT.pow):
            _variant(fn, [x, r], series, ys)
    check(T.pow, T.pow, [x, _tensor([2.0, 0.5, -1.0])])           # a constant tensor exponent
    check(operator.pow, torch.pow, [2.0, x], (1,))                   # a constant base
    check(operator.pow, torch.pow, [_tensor([0.5, 2.0, 3.0]), x], (0, 1))
    check(operator.pow, torch.pow, [1.5 + 0.5j, 2.5 - 0.3j], (0, 1), tol=1e-8)


def test_pow_at_zero_base():
    """Integer powers are exact at 0; a constant base 0 gives the first-order rules' zero."""
    x = _tensor([0.0, 1.3, -2.1])
    for n in (1, 2, 5, 2.0):
        series, ys = check(operator.pow, torch.pow, [x, n])
        _variant(operator.pow, [x, n], series, ys)
    y0, ys = propagate(operator.pow, None, (0.0, 1.5), {}, [None, [1.0, 0.5]])
    assert y0 == 0.0 and ys == [0.0, 0.0]
    y0, ys = propagate(operator.pow, None, (_tensor([0.0, 2.0]), 1.5), {}, [None, [_tensor([1.0, 1.0])]])
    assert ys[0][0] == 0 and abs(ys[0][1] - 2.0 ** 1.5 * math.log(2.0)) < 1e-12


def test_power_by_repeated_multiplication():
    """``x ** n`` through the pow rule equals ``x * x * ... * x`` through the mul rule (the seeds'
    pow loop: r = 1; for _ in range(n): r *= x), and both equal sympy's series."""
    t = sp.symbols("t")
    for x0, xs in ((0.7, [1.0] + [0.0] * (K - 1)), (-1.2, [0.3, -0.5, 0.2, 0.0, 0.1, 0.0, 0.0, 0.4]),
                   (0.0, [1.0, 0.5] + [0.0] * (K - 2))):
        xt = sp.nsimplify(x0) + sum(sp.nsimplify(c) * t ** j for j, c in enumerate(xs, 1))
        for n in range(0, 7):
            r, rs = 1.0, None
            for _ in range(n):
                r, rs = propagate(operator.imul, None, (r, x0), {}, [rs, xs])
            y0, ys = propagate(operator.pow, None, (x0, n), {}, [xs, None])
            want = sp.Poly(sp.expand(xt ** n), t).all_coeffs()[::-1] + [0] * (K + 1)
            assert abs(y0 - r) < 1e-12
            for j in range(1, K + 1):
                assert abs(ys[j - 1] - float(want[j])) < 1e-10
                assert abs((rs[j - 1] if rs else 0.0) - float(want[j])) < 1e-10
            if x0 != 0.0 and n:   # x ** -n against 1 / (x * ... * x) through the division rule
                _, inv = propagate(operator.truediv, None, (1.0, r), {}, [None, rs])
                _, ys = propagate(operator.pow, None, (x0, -n), {}, [xs, None])
                assert max(abs(u - v) for u, v in zip(ys, inv)) < 1e-9 * max(1.0, *map(abs, inv))


def test_maximum_minimum_ties_take_the_mean():
    a, b = _tensor([0.5, 1.0]), _tensor([0.5, 0.0])
    sa, sb = [_tensor([1.0, 2.0])], [_tensor([3.0, 5.0])]
    _, ys = propagate(T.maximum, None, (a, b), {}, [sa, sb])
    assert ys[0].tolist() == [2.0, 2.0]
    _, ys = propagate(np.minimum, None, (np.array([0.5]), np.array([0.5])), {}, [[np.array([1.0])], [np.array([3.0])]])
    assert ys[0].tolist() == [2.0]


def test_where_and_clamp():
    x, y = _tensor([0.3, -0.45, 0.7, 1.2]), _tensor(POS + [0.1])
    cond = torch.tensor([True, False, True, False])
    for active in ((1,), (2,), (1, 2)):
        check(T.where, T.where, [cond, x, y], active)
        check(np.where, T.where, [cond.numpy(), x.numpy(), y.numpy()], active)
    check(TT.where, lambda a, c, b: a.where(c, b), [x, cond, y], (0, 2))
    lo, hi = _tensor([0.0, 0.0, 1.0, 0.0]), _tensor([0.5, 0.5, 0.5, 2.0])   # crossed bounds at 2
    for active in ((0,), (1,), (2,), (0, 1, 2)):
        check(T.clamp, T.clamp, [x, lo, hi], active)
    check(T.clamp, T.clamp, [x], kw=dict(min=-0.4, max=0.5))
    check(TT.clip, TT.clip, [x, -0.4], (0,))
    check(T.clamp_min, T.clamp_min, [x, lo], (0, 1))
    check(T.clamp_max, T.clamp_max, [x, hi], (0, 1))
    check(np.clip, T.clamp, [x.numpy(), -0.4, 0.5])
    # at a bound the result follows x (the reverse rule's convention)
    _, ys = propagate(T.clamp, None, (_tensor([0.0]),), dict(min=0.0), [[_tensor([-1.0])]])
    assert ys[0].item() == -1.0
    # a bound given by keyword with its own series
    lo_s = [_tensor([0.0, 0.0, 7.0, 0.0])]
    _, ys = propagate(T.clamp, None, (x,), dict(min=lo), [[_tensor([1.0] * 4)]], kw_series=dict(min=lo_s))
    assert ys[0].tolist() == [1.0, 0.0, 7.0, 1.0]   # x, the bound 0 (no series), the bound 1, x


# ================================================================ linear and multilinear functions

def test_linear_functions():
    x = torch.tensor(_RNG.normal(size=(2, 3)), dtype=F64)
    a = x.numpy().copy()
    check(T.sum, T.sum, [x])
    check(T.sum, T.sum, [x, 1])
    check(TT.mean, TT.mean, [x], kw=dict(dim=0, keepdim=True))
    check(TT.reshape, TT.reshape, [x, 3, 2])
    check(T.transpose, T.transpose, [x, 0, 1])
    check(TT.t, TT.t, [x])
    check(operator.getitem, operator.getitem, [x, (slice(None), 1)])
    check(T.cumsum, T.cumsum, [x, 1])
    check(np.sum, T.sum, [a], kw=dict(axis=0), ref_kw=dict(dim=0))
    check(np.mean, T.mean, [a])
    check(np.transpose, lambda v: v.T, [a])
    check(float, lambda v: v, [0.3])
    check(TT.item, lambda v: v, [_tensor(0.3)])
    check(operator.neg, operator.neg, [0.3])
    check(math.degrees, T.rad2deg, [0.3])
    _, ys = propagate(math.fsum, None, ([0.3, 0.5],), {}, [[[1.0, None], [None, 2.0]]])
    assert ys == [1.0, 2.0]
    for make in (T.tensor, T.as_tensor, np.array, np.asarray):   # numbers gathered into a tensor or array
        y0, ys = propagate(make, None, ([0.3, 0.5],), {}, [[[1.0, None], [None, 2.0]]])
        assert [v.tolist() for v in ys] == [[1.0, 0.0], [0.0, 2.0]] and type(ys[0]) is type(y0)
    assert propagate(T.tensor, None, ([0.3, 0.5],), dict(dtype=torch.int64), [[[1.0, None]]])[1] is None
    with pytest.raises(NoRuleError, match="initial"):   # sum(x) + 5: not linear
        propagate(np.sum, None, (a,), dict(initial=5.0), [[a]])


def test_log_with_a_base():
    series, ys = check(math.log, lambda x, b: torch.log(x) / torch.log(b), [1.3, 2.5], (0, 1),
                       exact=cauchy_reference)
    series, ys = check(math.log, lambda x, b: torch.log(x) / math.log(2.5), [1.3, 2.5], (0,), exact=cauchy_reference)
    check(cmath.log, lambda x, b: torch.log(x) / torch.log(b), [1.3 + 0.2j, 2.5], (0, 1), exact=cauchy_reference)


def test_sequences():
    a, b = _tensor([0.3, 0.5]), _tensor([1.0, -2.0])
    sa = [_tensor([1.0, 2.0]), _tensor([3.0, 4.0])]
    _, ys = propagate(T.cat, None, ((a, b),), {}, [[(sa[0], None), (sa[1], None)]])
    assert [v.tolist() for v in ys] == [[1.0, 2.0, 0.0, 0.0], [3.0, 4.0, 0.0, 0.0]]
    _, ys = propagate(T.stack, None, ((a, b),), dict(dim=1), [[(None, sa[0]), (None, sa[1])]])
    assert ys[1].tolist() == [[0.0, 3.0], [0.0, 4.0]]
    _, ys = propagate(np.concatenate, None, ((a.numpy(), b.numpy()),), {}, [[(None, sa[0].numpy())]])
    assert ys[0].tolist() == [0.0, 0.0, 1.0, 2.0]
    _, ys = propagate(np.vstack, None, ([a.numpy(), b.numpy()],), {}, [[[sa[0].numpy(), None]]])
    assert ys[0].tolist() == [[1.0, 2.0], [0.0, 0.0]]
    for split in (T.split, TT.split, T.tensor_split, TT.tensor_split, T.chunk, TT.chunk):
        y0, ys = propagate(split, None, (_tensor([1.0, 2.0, 3.0]), 2), {}, [[_tensor([4.0, 5.0, 6.0])], None])
        assert [v.tolist() for v in ys[0]] == [[4.0, 5.0], [6.0]]
    for unbind in (T.unbind, TT.unbind):
        y0, ys = propagate(unbind, None, (_tensor([1.0, 2.0]),), {}, [[_tensor([4.0, 5.0])]])
        assert [v.item() for v in ys[0]] == [4.0, 5.0]
    for join, want in ((T.concat, [1.0, 2.0, 0.0, 0.0]), (T.concatenate, [1.0, 2.0, 0.0, 0.0]),
                       (T.hstack, [1.0, 2.0, 0.0, 0.0]), (T.vstack, [[1.0, 2.0], [0.0, 0.0]]),
                       (np.hstack, [1.0, 2.0, 0.0, 0.0]), (np.stack, [[1.0, 2.0], [0.0, 0.0]])):
        to = (lambda v: v.numpy()) if join in (np.hstack, np.stack) else (lambda v: v)
        _, ys = propagate(join, None, ((to(a), to(b)),), {}, [[(to(sa[0]), None)]])
        assert ys[0].tolist() == want


def test_multilinear_functions():
    """Polynomials of t: Cauchy's formula on the unit circle is exact."""
    A = torch.tensor(_RNG.normal(size=(2, 3)), dtype=F64)
    B = torch.tensor(_RNG.normal(size=(3, 4)), dtype=F64)
    v = torch.tensor(_RNG.normal(size=3), dtype=F64)
    u = _tensor([0.5, 1.0, -1.0, 2.0])
    P = polynomial_reference
    for active in ((0,), (1,), (0, 1)):
        series, ys = check(operator.matmul, operator.matmul, [A, B], active, exact=P)
        for fn in (T.matmul, TT.matmul, T.mm, np.dot, np.matmul):
            _variant(fn, [A, B], series, ys)
        _same(_propagated(operator.imatmul, [A.clone(), B], series), ys)
        series, ys = check(T.mv, T.mv, [A, v], active, exact=P)
        _variant(np.dot, [A, v], series, ys)
    check(T.dot, T.dot, [v, v.flip(0)], (0, 1), exact=P)
    series, ys = check(T.outer, T.outer, [v, v], (0, 1), exact=P)
    _variant(np.outer, [v, v], series, ys)
    series, ys = check(T.einsum, T.einsum, ["ij,jk,k->i", A, B, u], (1, 2, 3), exact=P)
    _variant(np.einsum, ["ij,jk,k->i", A, B, u], series, ys)
    check(T.einsum, T.einsum, ["ij,jk->ik", A, B], (2,), exact=P)


def test_linear_layers():
    x = torch.tensor(_RNG.normal(size=(2, 3)), dtype=F64)
    W = torch.tensor(_RNG.normal(size=(4, 3)), dtype=F64)
    b = torch.tensor(_RNG.normal(size=4), dtype=F64)
    for active in ((0,), (1,), (2,), (0, 1, 2)):
        check(F.linear, F.linear, [x, W, b], active, exact=polynomial_reference)
    xi = torch.tensor(_RNG.normal(size=(1, 2, 6)), dtype=F64)
    Wc = torch.tensor(_RNG.normal(size=(3, 2, 3)), dtype=F64)
    bc = torch.tensor(_RNG.normal(size=3), dtype=F64)
    check(F.conv1d, F.conv1d, [xi, Wc, bc], (0, 1, 2), kw=dict(padding=1), exact=polynomial_reference)
    x2 = torch.tensor(_RNG.normal(size=(1, 2, 4, 4)), dtype=F64)
    W2 = torch.tensor(_RNG.normal(size=(3, 2, 2, 2)), dtype=F64)
    check(F.conv2d, F.conv2d, [x2, W2, bc], (0, 1), exact=polynomial_reference)
    x3, W3 = x2[:, :, None], W2[:, :, None]
    check(F.conv3d, F.conv3d, [x3, W3], (0, 1), exact=polynomial_reference)


def test_inverse_and_solve():
    A = torch.tensor(_RNG.normal(size=(3, 3)), dtype=F64) + 3 * torch.eye(3, dtype=F64)
    B = torch.tensor(_RNG.normal(size=(3, 2)), dtype=F64)
    v = torch.tensor(_RNG.normal(size=3), dtype=F64)
    series, ys = check(T.linalg.inv, T.linalg.inv, [A], exact=cauchy_reference)
    for fn in (T.inverse, TT.inverse, np.linalg.inv):
        _variant(fn, [A], series, ys)
    for rhs in (B, v):
        for active in ((0,), (1,), (0, 1)):
            series, ys = check(T.linalg.solve, T.linalg.solve, [A, rhs], active, exact=cauchy_reference)
            _variant(np.linalg.solve, [A, rhs], series, ys)
    with pytest.raises(NoRuleError, match="left=False"):
        propagate(T.linalg.solve, None, (A, B.T), dict(left=False), [[A], None])


def test_in_place_operators_read_the_old_value():
    a, b = _tensor([0.3, 0.5]), _tensor([2.0, -1.0])
    sa, sb = [_tensor([1.0, 1.0]), _tensor([0.5, 0.0])], [_tensor([0.0, 1.0]), _tensor([1.0, 1.0])]
    _, want = propagate(operator.mul, None, (a.clone(), b), {}, [sa, sb])
    y0, ys = propagate(operator.imul, None, (a, b), {}, [sa, sb])
    assert y0 is a and torch.equal(a, _tensor([0.6, -0.5]))
    assert all(torch.equal(u, v) for u, v in zip(ys, want))
    _, want = propagate(operator.mul, None, (b.clone(), b.clone()), {}, [sb, sb])
    _, ys = propagate(operator.imul, None, (b, b), {}, [sb, sb])          # b *= b reads b before the write
    assert all(torch.allclose(u, v) for u, v in zip(ys, want))
    for iop, op in ((operator.iadd, operator.add), (operator.isub, operator.sub), (operator.itruediv, operator.truediv),
                    (operator.imod, operator.mod)):
        a, b = _tensor([0.3, 0.5]), _tensor([2.0, -1.0])
        _, want = propagate(op, None, (a.clone(), b), {}, [sa, sb])
        y0, ys = propagate(iop, None, (a, b), {}, [sa, sb])
        assert y0 is a and all(torch.allclose(u, v) for u, v in zip(ys, want))
    b = _tensor([2.0, -1.0])
    _, want = propagate(operator.pow, None, (b.clone(), 3), {}, [sb, None])
    _, ys = propagate(operator.ipow, None, (b, 3), {}, [sb, None])
    assert all(torch.allclose(u, v) for u, v in zip(ys, want))


def test_linear_rule_from_the_table():
    """A rule marked ``linear`` and without an entry here applies its call to each coefficient."""
    def scaled(x, c=3.0):
        return c * x

    def joined(sep, *parts):
        return torch.cat(parts) * sep

    rule = Rule(scaled, ["x", "c"], {"c": 3.0}, None, {"x": "dy * c"}, {}, linear=True, name="scaled")
    y0, ys = propagate(scaled, rule, (2.0,), {}, [[1.0, -0.5]])
    assert y0 == 6.0 and ys == [3.0, -1.5]
    y0, ys = propagate(scaled, rule, (2.0,), dict(c=-1.0), [[1.0, -0.5]])
    assert ys == [-1.0, 0.5]
    rule = Rule(joined, ["sep"], {}, "parts", {"parts": "dy"}, {}, linear=True, name="joined")
    a, b = _tensor([1.0]), _tensor([2.0])
    y0, ys = propagate(joined, rule, (2.0, a, b), {}, [None, None, [_tensor([5.0])]])
    assert ys[0].tolist() == [0.0, 10.0]
    with pytest.raises(NoRuleError, match="joined"):
        propagate(joined, rule, (2.0, a, b), {}, [[1.0], None, None])
    # torch's style: called leaving defaults out, keyword-only parameters by keyword
    def total(input, dim=None, keepdim=False, *, dtype=None):
        return torch.sum(input, dim, keepdim, dtype=dtype) if dim is not None else torch.sum(input, dtype=dtype)

    rule = Rule(total, ["input", "dim", "keepdim", "dtype"], {"dim": None, "keepdim": False, "dtype": None}, None,
                {"input": "dy"}, {}, linear=True, kwonly=("dtype",), omit_defaults=True, name="total")
    x = _tensor([[1.0, 2.0], [3.0, 4.0]])
    y0, ys = propagate(total, rule, (x, 1), dict(keepdim=True), [[x, 2 * x], None])
    assert ys[0].tolist() == [[3.0], [7.0]] and ys[1].tolist() == [[6.0], [14.0]]


# ================================================================ compositions and known series

_X = sp.symbols("x")


def _sympy_coefficients(expr, x0, k=K):
    """``f^(j)(x0) / j!`` for ``j = 1..k`` (the series of ``f(x0 + t)``)."""
    out, d = [], expr
    for j in range(1, k + 1):
        d = sp.diff(d, _X)
        out.append(float(d.subs(_X, x0)) / math.factorial(j))
    return out


def _chain(x0, xs, *fns):
    y, ys = x0, xs
    for f in fns:
        y, ys = propagate(f, None, (y,), {}, [ys])
    return y, ys


def test_exp_of_sin_order_8():
    want = _sympy_coefficients(sp.exp(sp.sin(_X)), sp.Rational(7, 10))
    unit = [1.0] + [0.0] * (K - 1)
    for sin, exp, x0, one, zero in ((math.sin, math.exp, 0.7, 1.0, 0.0),
                                    (T.sin, T.exp, _tensor([0.7, 0.7]), _tensor([1.0, 1.0]), _tensor([0.0, 0.0])),
                                    (np.sin, np.exp, np.array([0.7]), np.array([1.0]), np.array([0.0])),
                                    (cmath.sin, cmath.exp, 0.7 + 0j, 1.0 + 0j, 0j)):
        y, ys = _chain(x0, [one] + [zero] * (K - 1), sin, exp)
        got = [complex(np.ravel(_as_np(c))[0]) for c in ys]
        assert max(abs(g - w) for g, w in zip(got, want)) < 1e-13
    # at x0 = 0, exp(sin(t)) = 1 + t + t^2/2 - t^4/8 - t^5/15 - t^6/240 + t^7/90 + 31 t^8/5760
    _, ys = _chain(0.0, unit, math.sin, math.exp)
    known = [1, 1 / 2, 0, -1 / 8, -1 / 15, -1 / 240, 1 / 90, 31 / 5760]
    assert max(abs(g - w) for g, w in zip(ys, known)) < 1e-15


def test_known_series():
    unit = [1.0] + [0.0] * (K - 1)
    _, ys = propagate(math.log1p, None, (0.0,), {}, [unit])          # log(1 + t)
    assert max(abs(g - (-1) ** (j + 1) / j) for j, g in enumerate(ys, 1)) < 1e-15
    _, ys = propagate(math.atan, None, (0.0,), {}, [unit])           # t - t^3/3 + t^5/5 - ...
    assert max(abs(g - (0 if j % 2 == 0 else (-1) ** (j // 2) / j)) for j, g in enumerate(ys, 1)) < 1e-15
    _, ys = propagate(operator.truediv, None, (1.0, 1.0), {}, [None, [-1.0] + [0.0] * (K - 1)])   # 1/(1-t)
    assert ys == [1.0] * K
    _, ys = propagate(math.tan, None, (0.0,), {}, [unit])            # t + t^3/3 + 2t^5/15 + 17t^7/315
    assert max(abs(g - w) for g, w in zip(ys, [1, 0, 1 / 3, 0, 2 / 15, 0, 17 / 315, 0])) < 1e-15


# ================================================================ what has no rule

def test_no_rule_raises():
    x = _tensor([0.3, 0.5])
    with pytest.raises(NoRuleError, match="no Taylor rule for .*prod"):
        propagate(T.prod, None, (x, 0), {}, [[x], None])
    with pytest.raises(NoRuleError, match="no Taylor rule"):
        propagate(lambda v: v, None, (x,), {}, [[x]])
    with pytest.raises(NoRuleError, match="rounding_mode"):
        propagate(T.div, None, (x, x), dict(rounding_mode="floor"), [[x], None])
    with pytest.raises(NoRuleError, match="out="):
        propagate(T.sin, None, (x,), dict(out=torch.empty(2, dtype=F64)), [[x]])
    with pytest.raises(NoRuleError, match="inplace"):
        propagate(F.relu, None, (x,), dict(inplace=True), [[x]])
    with pytest.raises(NoRuleError, match="argument 'cond'"):
        propagate(T.where, None, (x > 0.4, x, x), {}, [[x], None, None])
    with pytest.raises(NoRuleError, match="keyword argument dim"):
        propagate(T.exp, None, (x,), dict(dim=0), [[x]])
    with pytest.raises(NoRuleError, match="modulus"):
        propagate(pow, None, (3, 2, 5), {}, [[1.0], None, None])
    with pytest.raises(NoRuleError, match="list or tuple"):   # the operands' items are separate factors
        propagate(T.einsum, None, ("i,i->", [x, x]), {}, [None, [[x, x]]])
    with pytest.raises(ValueError, match="different orders"):
        propagate(operator.add, None, (1.0, 2.0), {}, [[1.0], [1.0, 2.0]])


def test_constants_and_functions_without_derivatives():
    x = _tensor([0.3, 0.5])
    assert propagate(T.prod, None, (x, 0), {}, [None, None])[1] is None   # no series: no rule needed
    y0, ys = propagate(math.floor, None, (2.5,), {}, [[1.0]])                  # nondiff: a constant
    assert y0 == 2 and ys is None
    y0, ys = propagate(operator.floordiv, None, (2.5, 2.0), {}, [[1.0], None])  # a rule without gradients
    assert y0 == 1.0 and ys is None
    assert propagate(T.argmax, None, (x,), {}, [[x]])[1] is None


def test_every_entry_is_a_callable_and_tested_families_are_in():
    assert all(callable(f) for f in ENTRIES)
    for f in (operator.add, operator.mul, operator.truediv, operator.pow, math.exp, cmath.exp, np.exp, T.exp,
              TT.exp, F.relu, T.sum, T.matmul, np.einsum, T.where, T.clamp, F.softplus):
        assert f in ENTRIES


def test_containers_integer_results_and_in_place_activations():
    with pytest.raises(NoRuleError, match="containers"):   # list concatenation is not addition
        propagate(operator.add, None, ([1.0], [2.0, 3.0]), {}, [[[1.0]], None])
    x = _tensor([0.3, 1.7])
    y0, ys = propagate(TT.to, None, (x, torch.int64), {}, [[x], None])
    assert y0.dtype == torch.int64 and ys is None                    # a cast to integers: a constant
    with pytest.raises(NoRuleError, match="inplace"):
        propagate(F.relu, None, (x, True), {}, [[x], None])
    y0, ys = propagate(complex, None, (0.3, 0.5), {}, [[1.0, 2.0], [3.0, 4.0]])
    assert y0 == 0.3 + 0.5j and ys == [1 + 3j, 2 + 4j]


@pytest.mark.filterwarnings("ignore:Implicit dimension choice")
def test_remainders_and_softmax():
    a, b = _tensor([2.3, -1.7, 0.4]), _tensor([0.7, 0.9, -1.1])
    for active in ((0,), (1,), (0, 1)):
        series, ys = check(operator.mod, torch.remainder, [a, b], active)
        for fn in (T.remainder, TT.remainder, np.remainder, np.mod):
            _variant(fn, [a, b], series, ys)
        series, ys = check(T.fmod, torch.fmod, [a, b], active)
        _variant(math.fmod, [a, b], series, ys)
        _variant(np.fmod, [a, b], series, ys)
    x = torch.tensor(_RNG.normal(size=(2, 3)), dtype=F64)
    lse = lambda v, d, keepdim=False: torch.log(torch.exp(v).sum(d, keepdim=keepdim))  # noqa: E731
    check(T.logsumexp, lse, [x, 1], exact=cauchy_reference)
    check(TT.logsumexp, lse, [x, (0, 1)], kw=dict(keepdim=True), exact=cauchy_reference)
    check(F.softmax, lambda v, dim: torch.exp(v - lse(v, dim, True)), [x], kw=dict(dim=0), exact=cauchy_reference)
    check(TT.softmax, lambda v, d: torch.exp(v - lse(v, d, True)), [x, -1], exact=cauchy_reference)
    check(F.log_softmax, lambda v, dim: v - lse(v, dim, True), [x], kw=dict(dim=1), exact=cauchy_reference)
    check(T.log_softmax, lambda v, d: v - lse(v, d, True), [x, 0], exact=cauchy_reference)
    with pytest.raises(NoRuleError, match="without dim"):
        propagate(F.softmax, None, (x,), {}, [[x]])


# ================================================================ every other entry, once

_M = torch.tensor(_RNG.normal(size=(2, 3)), dtype=F64)
_S = torch.tensor(_RNG.normal(size=(3, 3)), dtype=F64)
_V = torch.tensor(_RNG.normal(size=3), dtype=F64)
_C = torch.tensor(_RNG.normal(size=(2, 3)) + 1j * _RNG.normal(size=(2, 3)), dtype=torch.complex128)
_I = torch.tensor([[0, 2], [1, 0]])
_P = _tensor([0.4, 1.3, 2.1])
_A = _M.numpy()
_SN = _S.numpy()
_SF = np.flipud(_SN).copy()

# (function, arguments, active arguments): linear, multilinear and elementwise entries not above,
# each against the polynomial or autograd reference of the same function
SWEEP = [
    (TT.adjoint, [_M], (0,)), (T.adjoint, [_M], (0,)), (TT.broadcast_to, [_V, (2, 3)], (0,)),
    (T.broadcast_to, [_V, (2, 3)], (0,)), (TT.clone, [_M], (0,)), (T.clone, [_M], (0,)), (TT.conj, [_C], (0,)),
    (T.conj, [_C], (0,)), (T.conj_physical, [_C], (0,)), (TT.conj_physical, [_C], (0,)), (TT.contiguous, [_M], (0,)),
    (TT.cumsum, [_M, 1], (0,)), (T.diag, [_V], (0,)), (TT.diag, [_S], (0,)), (T.diag_embed, [_M], (0,)),
    (TT.diag_embed, [_M], (0,)), (T.diagonal, [_S], (0,)), (TT.diagonal, [_S, 1], (0,)),
    (TT.expand, [_V, 2, 3], (0,)), (TT.expand_as, [_V, _M], (0,)), (T.flatten, [_M], (0,)), (TT.flatten, [_M], (0,)),
    (T.flip, [_M, (0,)], (0,)), (TT.flip, [_M, 1], (0,)), (T.fliplr, [_M], (0,)), (TT.fliplr, [_M], (0,)),
    (T.flipud, [_M], (0,)), (TT.flipud, [_M], (0,)), (T.gather, [_M, 1, _I], (0,)), (TT.gather, [_M, 1, _I], (0,)),
    (T.index_select, [_M, 1, _I[0]], (0,)), (TT.index_select, [_M, 1, _I[0]], (0,)), (T.mean, [_M, 0], (0,)),
    (T.movedim, [_M, 0, 1], (0,)), (TT.movedim, [_M, 0, 1], (0,)), (T.moveaxis, [_M, 0, 1], (0,)),
    (TT.moveaxis, [_M, 0, 1], (0,)), (T.narrow, [_M, 1, 1, 2], (0,)), (TT.narrow, [_M, 1, 1, 2], (0,)),
    (T.negative, [_M], (0,)), (TT.negative, [_M], (0,)), (T.positive, [_M], (0,)), (TT.positive, [_M], (0,)),
    (T.permute, [_M, (1, 0)], (0,)), (TT.permute, [_M, 1, 0], (0,)), (T.ravel, [_M], (0,)), (TT.ravel, [_M], (0,)),
    (T.real, [_C], (0,)), (T.imag, [_C], (0,)), (T.reshape, [_M, (3, 2)], (0,)), (TT.reshape_as, [_M, _M.T], (0,)),
    (TT.view, [_M, 3, 2], (0,)), (TT.view_as, [_M, _M.T], (0,)), (T.resolve_conj, [_C], (0,)),
    (TT.resolve_conj, [_C], (0,)), (T.resolve_neg, [_M], (0,)), (TT.resolve_neg, [_M], (0,)),
    (T.roll, [_M, 1, 1], (0,)), (TT.roll, [_M, 1, 1], (0,)), (T.rot90, [_M], (0,)), (TT.rot90, [_M], (0,)),
    (T.select, [_M, 1, 2], (0,)), (TT.select, [_M, 1, 2], (0,)), (T.squeeze, [_M[None]], (0,)),
    (TT.squeeze, [_M[None], 0], (0,)), (T.unsqueeze, [_M, 1], (0,)), (TT.unsqueeze, [_M, 1], (0,)),
    (T.swapaxes, [_M, 0, 1], (0,)), (TT.swapaxes, [_M, 0, 1], (0,)), (T.swapdims, [_M, 0, 1], (0,)),
    (TT.swapdims, [_M, 0, 1], (0,)), (T.t, [_M], (0,)), (TT.transpose, [_M, 0, 1], (0,)),
    (T.take, [_M, _I], (0,)), (TT.take, [_M, _I], (0,)), (T.take_along_dim, [_M, _I, 1], (0,)),
    (TT.take_along_dim, [_M, _I, 1], (0,)), (T.tile, [_M, (2,)], (0,)), (TT.tile, [_M, (2,)], (0,)),
    (TT.repeat, [_M, 2, 1], (0,)), (T.trace, [_S], (0,)), (TT.trace, [_S], (0,)), (T.tril, [_S], (0,)),
    (TT.tril, [_S], (0,)), (T.triu, [_S, 1], (0,)), (TT.triu, [_S], (0,)), (T.unflatten, [_V, 0, (1, 3)], (0,)),
    (TT.unflatten, [_V, 0, (1, 3)], (0,)), (TT.sum, [_M], (0,)), (T.deg2rad, [_M], (0,)), (TT.deg2rad, [_M], (0,)),
    (T.rad2deg, [_M], (0,)), (TT.rad2deg, [_M], (0,)),
    (T.bmm, [_M[None], _S[None]], (0, 1)), (TT.bmm, [_M[None], _S[None]], (0, 1)), (TT.mm, [_M, _S], (0, 1)),
    (TT.mv, [_M, _V], (0, 1)), (TT.dot, [_V, _V], (0, 1)), (T.vdot, [_V, _V], (0, 1)), (TT.vdot, [_V, _V], (0, 1)),
    (T.inner, [_M, _M], (0, 1)), (TT.inner, [_M, _M], (0, 1)), (TT.outer, [_V, _V], (0, 1)),
    (T.ger, [_V, _V], (0, 1)), (TT.ger, [_V, _V], (0, 1)), (T.kron, [_M, _S], (0, 1)), (TT.kron, [_M, _S], (0, 1)),
    (T.cross, [_S, _S.flip(0), 0], (0, 1)), (TT.cross, [_S, _S.flip(0), 0], (0, 1)), (TT.multiply, [_M, _M], (0, 1)),
    (T.tensordot, [_M, _S, 1], (0, 1)), (np.tensordot, [_A, _SN, 1], (0, 1)), (np.inner, [_A, _A], (0, 1)),
    (np.kron, [_A, _A], (0, 1)), (np.cross, [_SN, _SF], (0, 1)),
    (np.vdot, [_A, _A], (0, 1), lambda a, b: T.vdot(a.flatten(), b.flatten())),
    (np.cumsum, [_A, 1], (0,)), (np.diag, [_V.numpy()], (0,)), (np.diagonal, [_SN], (0,)),
    (np.expand_dims, [_A, 0], (0,)), (np.flip, [_A, 0], (0,)), (np.fliplr, [_A], (0,)), (np.flipud, [_A], (0,)),
    (np.moveaxis, [_A, 0, 1], (0,)), (np.ravel, [_A], (0,)), (np.reshape, [_A, (3, 2)], (0,)),
    (np.roll, [_A, 1], (0,)), (np.rot90, [_A], (0,)), (np.squeeze, [_A[None]], (0,)), (np.swapaxes, [_A, 0, 1], (0,)),
    (np.take, [_A, _I.numpy()], (0,)), (np.take_along_axis, [_A, _I.numpy(), 1], (0,)), (np.trace, [_SN], (0,)),
    (np.tril, [_SN], (0,)), (np.triu, [_SN], (0,)), (np.broadcast_to, [_V.numpy(), (2, 3)], (0,)),
    (np.copy, [_A], (0,)), (np.array, [_A], (0,)), (np.asarray, [_A], (0,)), (np.positive, [_A], (0,)),
    (np.deg2rad, [_A], (0,), T.deg2rad), (np.rad2deg, [_A], (0,), T.rad2deg), (np.degrees, [_A], (0,), T.rad2deg),
    (np.radians, [_A], (0,), T.deg2rad),
    (np.real, [_C.numpy()], (0,), T.real), (np.imag, [_C.numpy()], (0,), T.imag),
    (np.conjugate, [_C.numpy()], (0,), T.conj),
    (math.radians, [0.3], (0,), T.deg2rad), (operator.pos, [0.3], (0,), lambda v: v),
    (operator.abs, [-0.3], (0,), T.abs),
    (TT.absolute, [_M], (0,)), (T.absolute, [_M], (0,)), (TT.divide, [_M, _P], (0, 1)),
    (T.divide, [_M, _P], (0, 1)), (TT.true_divide, [_M, _P], (0, 1)), (TT.subtract, [_M, _P], (0, 1)),
    (TT.float_power, [_P, 2.5], (0,)), (T.float_power, [_P, _M], (0, 1)), (TT.hypot, [_M, _P], (0, 1)),
    (TT.atan2, [_M, _P], (0, 1)), (TT.arctan2, [_M, _P], (0, 1)), (TT.fmax, [_M, _P - 1], (0, 1)),
    (TT.fmin, [_M, _P - 1], (0, 1)), (np.fmax, [_SN, _SF + 0.05], (0, 1), T.fmax),
    (np.fmin, [_SN, _SF + 0.05], (0, 1), T.fmin),
    (TT.minimum, [_M, _P - 1], (0, 1)), (TT.fmod, [_M, _P], (0, 1)), (TT.clamp, [_M, -0.5, 0.5], (0,)),
    (T.clip, [_M, -0.5, 0.5], (0,)), (TT.clamp_min, [_M, 0.1], (0,)), (TT.clamp_max, [_M, 0.1], (0,)),
    (TT.log_softmax, [_M, 1], (0,)), (T.softmax, [_M, 1], (0,)), (TT.double, [_M.float()], (0,)),
    (TT.float, [_M], (0,)), (TT.type_as, [_M, _M.float()], (0,)),
]


# not complex-linear (conjugations, real parts, casts that drop an imaginary part): checked along real t
REAL_LINEAR = {TT.adjoint, T.adjoint, TT.conj, T.conj, T.conj_physical, TT.conj_physical, T.real, T.imag, T.vdot,
               TT.vdot, T.deg2rad, TT.deg2rad, T.rad2deg, TT.rad2deg, np.vdot, np.real, np.imag, np.conjugate,
               np.deg2rad, np.rad2deg, np.degrees, np.radians, math.radians, TT.double, TT.float, TT.type_as}


def _torch_valued(fn):
    """``fn`` of tensors (a numpy function gets arrays)."""
    if not (isinstance(fn, np.ufunc) or (getattr(fn, "__module__", "") or "").startswith("numpy")):
        return fn
    return lambda *a, **k: torch.as_tensor(np.array(fn(*[v.numpy() if isinstance(v, torch.Tensor) else v
                                                           for v in a], **k)))


@pytest.mark.parametrize("case", SWEEP, ids=[f"{i}" for i in range(len(SWEEP))])
def test_sweep(case):
    """The linear and multilinear entries against the exact polynomial of the same function, the
    others against autograd."""
    fn, args, active, ref = (*case, None)[:4]
    ref = ref or _torch_valued(fn)
    # (a polynomial in complex t only where the function is complex-linear: not conj, real, vdot)
    poly = ENTRIES[fn].positions is not None and fn not in REAL_LINEAR
    tol = 1e-6 if fn in (TT.float, TT.double, TT.type_as) else 1e-9   # (float32 on one side)
    check(fn, ref, args, active, k=4, exact=polynomial_reference if poly else autograd_reference, tol=tol)
