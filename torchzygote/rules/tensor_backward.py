"""Backward helpers of the torch rules (rules/tensor.py): reductions, elementwise functions, matrix
products and linalg, and local torch autograd for the hard cases. The rule table names them in its
pullback expressions, as derivatives.yaml names FunctionsManual.cpp; the shape and nn.functional
helpers are in tensor_shape_backward.py and nn_backward.py."""
from __future__ import annotations

import cmath
import math

import torch

from .fallback import torch_fallback
from .registry import reads_metadata

def _fl(x):
    return isinstance(x, torch.Tensor) and (x.dtype.is_floating_point or x.dtype.is_complex)


def _dims(dim, nd):
    """A reduction's dims as a sorted list of non-negative ints (None: all)."""
    if dim is None:
        return list(range(nd))
    if isinstance(dim, int):
        dim = [dim]
    out = sorted({(d + nd) % nd if nd else 0 for d in dim})
    return out if nd else []


def _expand_back(dy, x, dim, keepdim):
    """``dy`` of a reduction over ``dim`` broadcast back to ``x``'s shape."""
    if not isinstance(dy, torch.Tensor):
        dy = torch.as_tensor(dy, dtype=x.dtype, device=x.device)
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0 and dy.dim() == 0):
        return dy.reshape(()).expand(x.shape) if x.dim() else dy.reshape(())
    if not keepdim and x.dim():
        for d in _dims(dim, x.dim()):
            dy = dy.unsqueeze(d)
    return dy.expand(x.shape)


def _cast(g, x):
    if g is None or not _fl(x):
        return None
    if g.dtype != x.dtype and not (g.is_complex() and not x.is_complex()):
        g = g.to(x.dtype)
    elif g.is_complex() and not x.is_complex():
        g = g.real.to(x.dtype)
    return g


def sum_back(dy, x, dim, keepdim):
    if not _fl(x):
        return None
    return _cast(_expand_back(dy, x, dim, keepdim), x)


def _count(x, dim):
    if dim is None:
        return x.numel()
    n = 1
    for d in _dims(dim, x.dim()):
        n *= x.shape[d]
    return n


def mean_back(dy, x, dim, keepdim):
    if not _fl(x):
        return None
    return _cast(_expand_back(dy, x, dim, keepdim) / _count(x, dim), x)


reads_metadata(sum_back, 1)
reads_metadata(mean_back, 1)


def _prod_others(x, d):
    n = x.shape[d]
    if n == 0:
        return x
    ones = torch.ones_like(x.narrow(d, 0, 1))
    left = torch.cat([ones, x.narrow(d, 0, n - 1)], d).cumprod(d)
    right = torch.cat([x.narrow(d, 1, n - 1), ones], d).flip(d).cumprod(d).flip(d)
    return left * right


def prod_back(dy, x, dim, keepdim):
    if not _fl(x):
        return None
    if x.dim() == 0:
        return dy * torch.ones_like(x)
    if dim is None:
        others = _prod_others(x.reshape(-1), 0).reshape(x.shape)
        return _expand_back(dy, x, None, False) * others.conj()
    return _expand_back(dy, x, dim, keepdim) * _prod_others(x, _dims(dim, x.dim())[0]).conj()


def _tuple_dy(dy, n=2):
    if dy is None:
        return (None,) * n
    if isinstance(dy, torch.Tensor):
        return (dy,) + (None,) * (n - 1)
    if hasattr(dy, "values") and not isinstance(dy, (tuple, list)):
        dy = tuple(dy.values())
    return tuple(dy) + (None,) * (n - len(dy))


def _distribute(dy, x, y, dim, keepdim):
    """Gradient of an extremum spread evenly over ties (torch's amax/max() rule)."""
    ye = _expand_back(y, x, dim, keepdim)
    mask = (x == ye).to(x.dtype)
    cnt = mask.sum(dim=_dims(dim, x.dim()) if x.dim() else None, keepdim=True) if x.dim() else mask
    return _expand_back(dy, x, dim, keepdim) * mask / cnt


def extreme_back(dy, x, dim, keepdim, y):
    """``max``/``min``: all-reduce (ties share), along a dim (values, indices), or elementwise."""
    if isinstance(dim, torch.Tensor):  # torch.max(a, b) elementwise
        return None
    if not _fl(x):
        return None
    if dim is None:
        return _distribute(dy, x, y, None, False)
    dv, _ = _tuple_dy(dy)
    if dv is None:
        return None
    idx = y[1]
    if not keepdim and x.dim():
        dv, idx = dv.unsqueeze(dim), idx.unsqueeze(dim)
    if x.dim() == 0:
        return dv.reshape(())
    return torch.zeros_like(x).scatter(dim, idx, dv)


def extreme_other_back(dy, x, other, y, larger):
    if not isinstance(other, torch.Tensor):
        return None
    return ext2_back(dy, other, x, larger)


def ext2_back(dy, x, other, larger):
    """``maximum(x, other)`` w.r.t. ``x``: dy where x wins, half at ties (torch's convention)."""
    if not _fl(x):
        return None
    win = (x > other) if larger else (x < other)
    w = win.to(dy.dtype) + 0.5 * (x == other).to(dy.dtype)
    return dy * w


def amax_back(dy, x, dim, keepdim, y):
    if not _fl(x):
        return None
    if isinstance(dim, (tuple, list)) and len(dim) == 0:
        dim = None
    return _distribute(dy, x, y, dim, keepdim)


def _norm_p(p, dim, x):
    if p is None or p == "fro":
        return 2.0
    return p


def real_part(g):
    """The real part of a complex ``dy`` of a real result, a real one as it is: a real value's gradient
    is real (torch's convention), though a complex factor after it (``abs(z) * w``) made ``dy`` complex."""
    return torch.real(g) if isinstance(g, torch.Tensor) and g.is_complex() else g


def norm_back(dy, x, p, dim, keepdim, y):
    """Vector p-norms (and the Frobenius norm) of ``x`` over ``dim``."""
    if not _fl(x):
        return None
    dy = real_part(dy)
    if isinstance(dim, (tuple, list)) and len(dim) == 0:
        dim = None
    if p == "nuc":  # the nuclear norm: a matrix norm (U V^H), by local torch autograd
        return vjp(torch.norm, (x, p, dim, keepdim), dy, 0)
    p = _norm_p(p, dim, x)
    g = _expand_back(dy, x, dim, keepdim)
    ye = _expand_back(y, x, dim, keepdim)
    if p == 0:
        return torch.zeros_like(x)
    if p == 1:
        return g * torch.sgn(x)
    if p == 2:
        return g * torch.where(ye == 0, torch.zeros_like(ye), x / ye)
    if math.isinf(p):
        mask = (x.abs() == ye).to(x.dtype)
        cnt = mask.sum(dim=_dims(dim, x.dim()), keepdim=True) if x.dim() else mask
        return g * torch.sgn(x) * mask / cnt
    ax = x.abs()
    r = torch.sgn(x) * ax.pow(p - 1) / ye.pow(p - 1)
    return g * torch.where(ye == 0, torch.zeros_like(r), r)


def linalg_norm_back(dy, x, ord, dim, keepdim, y):
    dy = real_part(dy)
    matrix = (dim is None and x.dim() == 2 and ord is not None) or \
        (isinstance(dim, (tuple, list)) and len(dim) == 2)
    if matrix:
        if ord in (None, "fro"):
            return norm_back(dy, x, 2, dim if dim is not None else (0, 1), keepdim, y)
        return vjp(torch.linalg.norm, (x, ord, dim, keepdim), dy, 0)
    return norm_back(dy, x, 2 if ord is None else ord, dim, keepdim, y)


def logsumexp_back(dy, x, dim, keepdim, y):
    if not _fl(x):
        return None
    return _expand_back(dy, x, dim, keepdim) * _c(torch.exp(x - _expand_back(y, x, dim, keepdim)))


def cumsum_back(dy, x, dim):
    if not _fl(x):
        return None
    if x.dim() == 0:
        return _cast(dy, x)
    return _cast(dy.flip(dim).cumsum(dim).flip(dim), x)


def cumprod_back(dy, x, dim, y):
    if not _fl(x):
        return None
    if x.dim() == 0:
        return dy
    if bool((x == 0).any()):
        return vjp(torch.cumprod, (x, dim), dy, 0)
    return (dy * _c(y)).flip(dim).cumsum(dim).flip(dim) / _c(x)


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    return 0 if unbiased is False else 1


def var_back(dy, x, dim, unbiased, keepdim, correction):
    if not _fl(x):
        return None
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    dy = real_part(dy)
    c = _correction(unbiased, correction)
    n = _count(x, dim)
    dims = _dims(dim, x.dim())
    mu = x.mean(dim=dims, keepdim=True) if x.dim() else x
    return _expand_back(dy, x, dim, keepdim) * 2 * (x - mu) / max(n - c, 0)


def std_back(dy, x, dim, unbiased, keepdim, correction, y):
    """std = sqrt(var): d std = d var / (2 std)."""
    return var_back(dy / (2 * y), x, dim, unbiased, keepdim, correction)


# ---------------------------------------------------------------- elementwise

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def gelu_back(dy, x, approximate="none"):
    if approximate == "tanh":
        k = math.sqrt(2.0 / math.pi)
        inner = k * (x + 0.044715 * x * x * x)
        t = torch.tanh(inner)
        d = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)
        return dy * d
    cdf = 0.5 * (1 + torch.erf(x / _SQRT2))
    pdf = torch.exp(-0.5 * x * x) * _INV_SQRT_2PI
    return dy * (cdf + x * pdf)


def softplus_back(dy, x, beta, threshold):
    z = x * beta
    return torch.where(z > threshold, dy, dy * torch.sigmoid(z))


def silu_back(dy, x):
    s = torch.sigmoid(x)
    return dy * _c(s * (1 + x * (1 - s)))


def relu_back(g, out):
    """``g`` where ``out = relu(x)`` is positive, else 0: torch's one kernel (``threshold_backward``)
    where ``g`` is a float tensor of ``out``'s shape and dtype; ``g * (out > 0)`` makes a mask and
    a copy. Linear in ``g`` (its own rule, so every order differentiates it)."""
    if type(g) is torch.Tensor and type(out) is torch.Tensor and g.dtype == out.dtype and \
            g.dtype.is_floating_point and g.shape == out.shape:
        return torch.ops.aten.threshold_backward(g, out, 0)
    return g * (out > 0)


def elu_back(dy, x, alpha, y):
    return torch.where(x > 0, dy, dy * (y + alpha))


def clamp_back(dy, x, lo, hi):
    if not _fl(x):
        return None
    m = torch.ones_like(x, dtype=torch.bool)
    if lo is not None:
        m = m & (x >= lo)
    if hi is not None:
        m = m & (x <= hi)
    if isinstance(lo, torch.Tensor) and isinstance(hi, torch.Tensor):
        m = m & ~(lo > hi)
    return torch.where(m, dy, torch.zeros_like(dy))


def _real_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def clamp_bound_back(dy, x, lo, hi, which):
    """Gradient of ``clamp(x, lo, hi)`` w.r.t. a bound: ``dy`` where the bound is the
    result (``hi`` wins when ``lo > hi``, as in torch). A Python number bound gets
    the sum (``unbroadcast`` turns it into a float)."""
    b = lo if which == "min" else hi
    if isinstance(b, torch.Tensor):
        if not _fl(b):
            return None
    elif not _real_number(b):
        return None
    if which == "min":
        m = x < lo
        if hi is not None:
            m = m & (lo <= hi)
    else:
        m = x > hi
        if lo is not None:
            m = m | (lo > hi)
    return torch.where(m, dy, torch.zeros_like(dy))


def lerp_back(dy, x, end, w, which):
    """``lerp(x, end, w) = x + w * (end - x)``; a Python number ``w`` gets a number gradient."""
    if which == 0:
        return mul_back(dy, 1 - w) if _fl(x) else None
    if which == 1:
        return mul_back(dy, w) if _fl(end) else None
    if isinstance(w, torch.Tensor) and not _fl(w) or \
            not isinstance(w, (torch.Tensor, complex)) and not _real_number(w):
        return None
    return mul_back(dy, end - x)


def where_back(dy, cond, x, which):
    if not (_fl(x) or isinstance(x, (float, int, complex)) and not isinstance(x, bool)):
        return None
    z = torch.zeros((), dtype=dy.dtype, device=dy.device)
    return torch.where(cond, dy, z) if which else torch.where(cond, z, dy)


def pow_base_back(dy, a, b):
    if isinstance(a, torch.Tensor) and not _fl(a):
        return None
    if isinstance(b, torch.Tensor):
        g = b * a ** (b - 1)
        g = torch.where(b == 0, torch.zeros_like(g), g)
        return dy * (g.conj() if g.is_complex() else g)
    if b == 0:
        return dy * 0
    if b == 2 and isinstance(a, torch.Tensor) and not a.is_complex():
        return dy * (a + a)  # the common square: no pow kernel, no number to wrap (a + a == 2a exactly)
    g = b * a ** (b - 1)
    if isinstance(g, torch.Tensor) and g.is_complex():
        g = g.conj()
    return dy * g


def pow_exp_back(dy, a, b, y):
    if isinstance(b, torch.Tensor):
        if not _fl(b):
            return None
    elif not isinstance(b, (float, int, complex)) or isinstance(b, bool):
        return None
    if isinstance(a, torch.Tensor):
        la = torch.log(a.to(y.dtype) if not _fl(a) or y.is_complex() else a)   # (complex: a complex log)
        g = y * la
        bt = torch.as_tensor(b)
        bt = bt.real if bt.is_complex() else bt
        g = torch.where((a == 0) & (bt >= 0).to(a.device), torch.zeros_like(g), g)
    else:
        if a == 0:
            return dy * 0
        if isinstance(a, complex) or y.is_complex():   # (a negative base has a complex logarithm)
            g = y * cmath.log(a)
        else:
            g = y * math.log(a) if a > 0 else y * math.nan
    if isinstance(g, torch.Tensor) and g.is_complex():
        g = g.conj()
    return dy * g


def mod_other_back(dy, a, b):
    if not isinstance(b, torch.Tensor) or not _fl(b):
        return None if isinstance(b, torch.Tensor) else -(dy * torch.div(a, b, rounding_mode="floor"))
    return -dy * torch.div(a, b, rounding_mode="floor")


def fmod_other_back(dy, a, b):
    if isinstance(b, torch.Tensor) and not _fl(b):
        return None
    return -dy * torch.div(a, b, rounding_mode="trunc")


def div_back_a(dy, a, b, rounding_mode=None):
    if rounding_mode is not None:
        return None
    return dy / _cn(b)


def div_back_b(dy, a, b, y, rounding_mode=None):
    if rounding_mode is not None:
        return None
    g = y / b
    if isinstance(g, torch.Tensor) and g.is_complex():
        g = g.conj()
    return -dy * g


def mul_back(dy, other):
    return dy * _cn(other)


# ---------------------------------------------------------------- matrix products

def _sum_to(g, shape):
    if tuple(g.shape) == tuple(shape):
        return g
    return _st(g, shape)


def _st(g, shape):
    lead = g.dim() - len(shape)
    if lead:
        g = g.sum(dim=tuple(range(lead)))
    dims = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if dims:
        g = g.sum(dim=dims, keepdim=True)
    return g


def _H(t):
    return t.mH if t.is_complex() else t.mT


def _c(t):
    return t.conj() if t.is_complex() else t


def _cn(v):
    """The conjugate of a number or tensor (a no-op for real ones)."""
    if isinstance(v, complex) or isinstance(v, torch.Tensor) and v.is_complex():
        return v.conjugate() if isinstance(v, complex) else v.conj()
    return v


def real_back(dy, x):
    """``torch.real``: the real cotangent, as a complex gradient for a complex input."""
    if dy.is_complex():
        dy = dy.real
    return dy.to(x.dtype) if x.is_complex() else dy


def matmul_back(dy, a, b, which):
    """``a @ b`` with numpy's 1-D and batched broadcasting rules."""
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        return None
    if which == 0 and not _fl(a) or which == 1 and not _fl(b):
        return None
    if a.dim() == 1 and b.dim() == 1:
        return dy * _c(b) if which == 0 else dy * _c(a)
    if b.dim() == 1 and a.dim() == 2:  # matrix @ vector: one kernel each way
        return torch.outer(dy, _c(b)) if which == 0 else dy @ _c(a)
    if b.dim() == 1:  # (..., m, n) @ (n,) -> (..., m)
        if which == 0:
            return dy.unsqueeze(-1) * _c(b)
        return (_c(a) * dy.unsqueeze(-1)).reshape(-1, a.shape[-1]).sum(0)
    if a.dim() == 1:  # (n,) @ (..., n, p) -> (..., p)
        if which == 0:
            return (_c(b) @ dy.unsqueeze(-1)).squeeze(-1).reshape(-1, a.shape[0]).sum(0)
        return _c(a).unsqueeze(-1) * dy.unsqueeze(-2)
    if which == 0:
        return _st(dy @ _H(b), a.shape)
    return _st(_H(a) @ dy, b.shape)


def mv_back(dy, a, v, which):
    return torch.outer(dy, _c(v)) if which == 0 else _H(a) @ dy


def einsum_back(dy, equation, operands, i):
    ops_ = operands[0] if len(operands) == 1 and isinstance(operands[0], (list, tuple)) else operands
    x = ops_[i]
    if not _fl(x):
        return None
    eq = equation.replace(" ", "")
    if "..." not in eq and "->" in eq and not any(o.is_complex() for o in ops_ if isinstance(o, torch.Tensor)):
        ins, out = eq.split("->")
        subs = ins.split(",")
        s = subs[i]
        others = [subs[j] for j in range(len(subs)) if j != i]
        avail = set(out) | set("".join(others))
        if len(set(s)) == len(s) and set(s) <= avail:
            return torch.einsum(",".join([out] + others) + "->" + s, dy, *[ops_[j] for j in range(len(subs)) if j != i])
    g = vjp_all(torch.einsum, (equation, *ops_), dy)
    return g[1 + i]


# ---------------------------------------------------------------- linalg

def solve_back(dy, A, B, y, left, which):
    if not left:
        return vjp_all(lambda A_, B_: torch.linalg.solve(A_, B_, left=False), (A, B), dy)[which]
    vec = B.dim() == 1 or (B.dim() == A.dim() - 1 and B.shape == A.shape[:-1])
    if vec:
        gB = torch.linalg.solve(_H(A), dy)
        if which == 1:
            return _st(gB, B.shape)
        return _st(-gB.unsqueeze(-1) * _c(y).unsqueeze(-2), A.shape)
    gB = torch.linalg.solve(_H(A), dy)
    if which == 1:
        return _st(gB, B.shape)
    return _st(-gB @ _H(y), A.shape)


def inv_back(dy, y):
    yh = _H(y)
    return -(yh @ dy @ yh)


def det_back(dy, A, y):
    g = (dy * _c(y)).unsqueeze(-1).unsqueeze(-1) if y.dim() else dy * _c(y)
    return g * _H(torch.linalg.inv(A))


def cholesky_back(dy, L, upper):
    if upper:
        L, dy = _H(L), _H(dy)
    gA = (_H(L) @ dy).tril()
    gA = 0.5 * (gA + _H(gA.tril(-1)))
    gA = torch.linalg.solve_triangular(_H(L), gA, upper=True, left=True)
    gA = torch.linalg.solve_triangular(L, gA, upper=False, left=False)
    return gA


# ---------------------------------------------------------------- local autograd for the hard cases

def vjp_all(fn, args, dy):
    """One vector-Jacobian product per argument of ``fn(*args)`` by local torch autograd."""
    _, back = torch_fallback(fn, tuple(args), {}, None)
    return back(dy)


def vjp(fn, args, dy, i):
    return vjp_all(fn, args, dy)[i]
