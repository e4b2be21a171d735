"""Rules for torch: functions, ``Tensor`` methods, ``torch.nn.functional``,
``torch.linalg`` and the Python operators on tensors.

Each rule is registered for the function (``torch.sum``) and, where torch has
one, the method (``torch.Tensor.sum``, first parameter ``self``). Pullbacks
call torch ops directly; long formulas live in the helpers below. Gradients of
integer and boolean tensors are ``None``; dtype and device follow the input.
Ops without a rule go through ``rules/fallback.py`` (local torch autograd).
"""
from __future__ import annotations

import math
import operator
import re

import torch
import torch.nn.functional as F

from ..ad.runtime import accum, index_back, unbroadcast
from ..errors import GradientError
from .containers import seq_back
from .registry import (ANY, NONDIFF, OBJECT, REAL, TENSOR, base, grad, nondiff, reads_metadata, reads_sequence,
                       some)


# ====================================================================== helpers

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


def norm_back(dy, x, p, dim, keepdim, y):
    """Vector p-norms (and the Frobenius norm) of ``x`` over ``dim``."""
    if not _fl(x):
        return None
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
    return dy * s * (1 + x * (1 - s))


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
    """``lerp(x, end, w) = x + w * (end - x)``; a Python number ``w`` gets a float gradient."""
    if which == 0:
        return mul_back(dy, 1 - w) if _fl(x) else None
    if which == 1:
        return mul_back(dy, w) if _fl(end) else None
    if isinstance(w, torch.Tensor) and not _fl(w) or not isinstance(w, torch.Tensor) and not _real_number(w):
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
    elif not isinstance(b, (float, int)) or isinstance(b, bool):
        return None
    if isinstance(a, torch.Tensor):
        la = torch.log(a) if a.is_complex() else torch.log(a.to(y.dtype) if not _fl(a) else a)
        g = y * la
        bt = torch.as_tensor(b)
        bt = bt.real if bt.is_complex() else bt
        g = torch.where((a == 0) & (bt >= 0).to(a.device), torch.zeros_like(g), g)
    else:
        if a == 0:
            return dy * 0
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
    return dy / (b.conj() if isinstance(b, torch.Tensor) and b.is_complex() else b)


def div_back_b(dy, a, b, y, rounding_mode=None):
    if rounding_mode is not None:
        return None
    g = y / b
    if isinstance(g, torch.Tensor) and g.is_complex():
        g = g.conj()
    return -dy * g


def mul_back(dy, other):
    if isinstance(other, torch.Tensor) and other.is_complex():
        other = other.conj()
    return dy * other


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


# ---------------------------------------------------------------- shapes

def reshape_back(dy, x):
    if not _fl(x):
        return None
    return dy.reshape(x.shape)


def atleast_back(ctx, dy, x):
    """``atleast_nd``: of a tensor, or of a list/tuple of them (a tuple out)."""
    if isinstance(x, (list, tuple)):
        dys = _tuple_dy(dy, len(x))
        return seq_back(ctx, x, tuple(None if d is None else reshape_back(d, t) for d, t in zip(dys, x)))
    return reshape_back(dy, x)


def _dim_list(dims):
    """``dims`` of ``permute``/``flip``: ints given one by one (``t.permute(1, 0)``),
    or one sequence (``t.permute((1, 0))``, ``torch.flip(t, [0])``), or a single int."""
    if isinstance(dims, int):
        return (dims,)
    dims = tuple(dims)
    if len(dims) == 1 and isinstance(dims[0], (tuple, list, torch.Size)):
        dims = tuple(dims[0])
    return dims


def permute_back(dy, dims):
    dims = _dim_list(dims)
    nd = len(dims)
    inv = [0] * nd
    for i, d in enumerate(dims):
        inv[(d + nd) % nd] = i
    return dy.permute(inv)


def flip_back(dy, dims):
    return dy.flip(_dim_list(dims))


def roll_back(dy, shifts, dims):
    if isinstance(shifts, int):
        return dy.roll(-shifts, dims)
    return dy.roll(tuple(-s for s in shifts), dims)


def expand_back(dy, x):
    if not _fl(x):
        return None
    return _st(dy, x.shape)


def cat_pieces(dy, tensors, dim):
    """The gradients of ``torch.cat``'s inputs: ``dy`` split back (None for non-float ones)."""
    ts = list(tensors)
    sizes = []
    ref = next((t for t in ts if isinstance(t, torch.Tensor) and not (t.dim() == 1 and t.numel() == 0)), None)
    d = dim if ref is None else (dim + ref.dim()) % max(ref.dim(), 1)
    for t in ts:
        sizes.append(0 if t.dim() == 1 and t.numel() == 0 and (ref is None or ref.dim() != 1) else t.shape[d])
    if sum(sizes) != dy.shape[d]:  # a list appended to after the call: its first items were joined
        n = next((k for k in range(len(sizes) + 1) if sum(sizes[:k]) == dy.shape[d]), None)
        if n is None:
            raise GradientError("the list passed to torch.cat was changed after the call, so its gradient "
                                "cannot be split back; pass a tuple or a copy (`torch.cat(list(xs))`)")
        ts, sizes = ts[:n], sizes[:n]
    parts = dy.split(sizes, d)
    return tuple(p if _fl(t) and not (t.dim() == 1 and t.numel() == 0 and sizes[k] == 0) else None
                 for k, (t, p) in enumerate(zip(ts, parts)))


def cat_back(ctx, dy, tensors, dim):
    return seq_back(ctx, tensors, cat_pieces(dy, tensors, dim))


def stack_pieces(dy, tensors, dim):
    """The gradients of ``torch.stack``'s inputs: ``dy`` unbound (None for non-float ones)."""
    return tuple(g if _fl(t) else None for t, g in zip(tensors, dy.unbind(dim if dim >= 0 else dim + dy.dim())))


def stack_back(ctx, dy, tensors, dim):
    return seq_back(ctx, tensors, stack_pieces(dy, tensors, dim))


def pieces_back(dy, x, dim, ys, join=torch.cat):
    """``split``/``chunk`` (``unbind``: stack): join the pieces' gradients (zeros where none)."""
    if not _fl(x):
        return None
    dys = _tuple_dy(dy, len(ys))
    if all(d is None for d in dys):
        return None
    return join([d if d is not None else torch.zeros_like(y) for d, y in zip(dys, ys)], dim)


def unbind_back(dy, x, dim, ys):
    return pieces_back(dy, x, dim, ys, torch.stack)


def gather_back(dy, x, dim, index):
    return torch.zeros_like(x).scatter_add(dim, index, dy)


def index_select_back(dy, x, dim, index):
    return torch.zeros_like(x).index_add(dim, index, dy)


def masked_fill_value_back(dy, mask, value):
    if not isinstance(value, (torch.Tensor, float, int)) or isinstance(value, bool):
        return None
    return torch.where(mask, dy, torch.zeros_like(dy)).sum()


def diagonal_back(dy, x, offset, dim1, dim2):
    g = torch.zeros_like(x)
    g.diagonal(offset, dim1, dim2).copy_(dy)
    return g


def diag_back(dy, x, diagonal):
    if x.dim() == 1:
        return dy.diagonal(diagonal)
    return diagonal_back(dy, x, diagonal, 0, 1)


def trace_back(dy, x):
    g = torch.zeros_like(x)
    g.diagonal().fill_(1)
    return g * dy


def sort_back(dy, x, dim, y):
    dv, _ = _tuple_dy(dy)
    if dv is None or not _fl(x):
        return None
    if x.dim() == 0:
        return dv
    return torch.zeros_like(x).scatter(dim, y[1], dv)


def topk_back(dy, x, dim, keepdim_unused, y):
    dv, _ = _tuple_dy(dy)
    if dv is None or not _fl(x):
        return None
    if x.dim() == 0:
        return dv
    return torch.zeros_like(x).scatter(dim, y[1], dv)


def to_back(dy, x):
    if not _fl(x) or dy is None:
        return None
    if not isinstance(dy, torch.Tensor):
        return torch.full_like(x, dy)
    g = dy
    if g.is_complex() and not x.is_complex():
        g = g.real
    if g.dtype != x.dtype or g.device != x.device:
        g = g.to(dtype=x.dtype, device=x.device)
    return g


def item_back(dy, x):
    if not _fl(x):
        return None
    return torch.full_like(x, dy) if not isinstance(dy, torch.Tensor) else dy.to(x.dtype).reshape(x.shape)


def tensor_back(ctx, data, dy):
    """``torch.tensor(data)``: route the gradient into numbers, tuples and lists."""
    if dy is None:
        return None
    if isinstance(data, torch.Tensor):
        return to_back(dy, data)
    if isinstance(data, bool):
        return None
    if isinstance(data, (int, float)):
        return float(dy)
    if isinstance(data, complex):
        return complex(dy)
    if isinstance(data, (list, tuple)):
        gs = tuple(tensor_back(ctx, e, dy[i]) if not isinstance(e, list) else _route_list(ctx, e, dy[i])
                   for i, e in enumerate(data))
        return seq_back(ctx, data, gs)
    return None


def _route_list(ctx, lst, dy):
    tensor_back(ctx, lst, dy)
    return None


# ---------------------------------------------------------------- nn.functional

_MEMO = [None]


def memo(keys, compute):
    """Share one computation among a rule's several pullback expressions."""
    vers = tuple(k._version if isinstance(k, torch.Tensor) else None for k in keys)
    m = _MEMO[0]
    if m is not None and len(m[0]) == len(keys) and m[2] == vers and all(a is b for a, b in zip(m[0], keys)):
        return m[1]
    r = compute()
    _MEMO[0] = (keys, r, vers)
    return r


def linear_back(dy, x, w, which):
    if which == 0:
        return dy @ _c(w) if _fl(x) else None
    if which == 1:
        x = _c(x)
        if x.dim() == 1:
            return torch.outer(dy, x) if dy.dim() == 1 else dy.unsqueeze(-1) * x
        return dy.reshape(-1, dy.shape[-1]).mT @ x.reshape(-1, x.shape[-1])
    return None


def bias_back(dy, b):
    if b is None:
        return None
    return _st(dy, b.shape)


def softmax_dim(x, dim):
    if dim is None:
        return 0 if x.dim() in (0, 1, 3) else 1
    return dim


def softmax_back(dy, y, dim, x):
    if not _fl(x):
        return None
    d = softmax_dim(x, dim)
    if x.dim() == 0:
        return _cast(dy * 0, x)
    g = y * (dy - (dy * y).sum(d, keepdim=True))
    return _cast(g, x)


def log_softmax_back(dy, y, dim, x):
    if not _fl(x):
        return None
    d = softmax_dim(x, dim)
    if x.dim() == 0:
        return _cast(dy * 0, x)
    g = dy - torch.exp(y) * dy.sum(d, keepdim=True)
    return _cast(g, x)


def _reduction(reduction, reduce_, size_average):
    """torch's legacy ``reduce``/``size_average`` flags, as a ``reduction`` string."""
    if reduce_ is not None or size_average is not None:
        return "none" if reduce_ is False else ("sum" if size_average is False else "mean")
    return reduction


def cross_entropy_back(dy, x, target, weight, ignore_index, reduction, label_smoothing, reduce_, size_average):
    if not _fl(x):
        return None
    reduction = _reduction(reduction, reduce_, size_average)
    cd = 1 if x.dim() >= 2 else 0
    C = x.shape[cd]
    lsm = torch.log_softmax(x, cd)
    shape_c = [1] * x.dim()
    shape_c[cd] = C
    w = weight.reshape(shape_c) if weight is not None else None
    if _fl(target):  # class probabilities
        t = target
        if label_smoothing > 0:
            t = t * (1 - label_smoothing) + label_smoothing / C
        coeff = -(t * w if w is not None else t)
        if reduction == "mean":
            g = dy / (x.numel() / C)
        else:
            g = dy
        gl = g.unsqueeze(cd) if reduction == "none" else g
        dlsm = coeff * gl
    else:
        valid = target != ignore_index
        tgt = torch.where(valid, target, torch.zeros_like(target))
        onehot = torch.zeros_like(x).scatter(cd, tgt.unsqueeze(cd), 1.0)
        wt = weight[tgt] if weight is not None else torch.ones_like(tgt, dtype=x.dtype)
        wt = wt * valid.to(x.dtype)
        if reduction == "mean":
            g = dy / wt.sum()
        else:
            g = dy
        gl = g.unsqueeze(cd) if reduction == "none" else g
        dlsm = -(1 - label_smoothing) * wt.unsqueeze(cd) * onehot
        if label_smoothing > 0:
            ws = w if w is not None else torch.ones(shape_c, dtype=x.dtype, device=x.device)
            dlsm = dlsm - label_smoothing / C * ws * valid.unsqueeze(cd).to(x.dtype)
        dlsm = dlsm * gl
    return dlsm - torch.exp(lsm) * dlsm.sum(cd, keepdim=True)


def cross_entropy_target_back(dy, x, target, weight, reduction, label_smoothing, reduce_, size_average):
    if not _fl(target):
        return None
    reduction = _reduction(reduction, reduce_, size_average)
    cd = 1 if x.dim() >= 2 else 0
    C = x.shape[cd]
    lsm = torch.log_softmax(x, cd)
    if weight is not None:
        shape_c = [1] * x.dim()
        shape_c[cd] = C
        lsm = lsm * weight.reshape(shape_c)
    g = dy / (x.numel() / C) if reduction == "mean" else dy
    gl = g.unsqueeze(cd) if reduction == "none" else g
    return -(1 - label_smoothing) * lsm * gl


def mse_back(dy, x, t, reduction, reduce_, size_average, which):
    reduction = _reduction(reduction, reduce_, size_average)
    d = x - t
    n = torch.broadcast_shapes(x.shape, t.shape) if isinstance(t, torch.Tensor) else x.shape
    cnt = 1
    for s in n:
        cnt *= s
    g = 2 * d * dy
    if reduction == "mean":
        g = g / cnt
    return g if which == 0 else -g


def layer_norm_back(dy, x, normalized_shape, weight, bias, eps, which):
    def compute():
        k = len(normalized_shape) if not isinstance(normalized_shape, int) else 1
        dims = tuple(range(x.dim() - k, x.dim()))
        mu = x.mean(dims, keepdim=True)
        var = x.var(dims, unbiased=False, keepdim=True)
        rstd = torch.rsqrt(var + eps)
        xhat = (x - mu) * rstd
        lead = tuple(range(x.dim() - k))
        # (a sum over no dims must not be torch's sum over all: x.shape == normalized_shape)
        gw = ((dy * xhat).sum(lead) if lead else dy * xhat) if weight is not None else None
        gb = (dy.sum(lead) if lead else dy) if bias is not None else None
        dxhat = dy * weight if weight is not None else dy
        gx = rstd * (dxhat - dxhat.mean(dims, keepdim=True) - xhat * (dxhat * xhat).mean(dims, keepdim=True))
        return gx, gw, gb
    return memo((dy, x, weight, bias, "ln"), compute)[which]


def _tup(v, n):
    return list(v) if isinstance(v, (tuple, list)) else [v] * n


def conv_back(dy, x, w, b, stride, padding, dilation, groups, which):
    """One of a convolution's three gradients (``which``: input, weight, bias). Only the one
    asked for is computed: the input of a first layer is usually a constant batch, and its
    gradient costs more than the weight's."""
    nd = w.dim() - 2
    if isinstance(padding, str) or x.is_complex() or w.is_complex():  # (no complex backward kernel)
        return memo((dy, x, w, b, "conv"), lambda: vjp_all(
            lambda a, c, d: _CONV[nd](a, c, d, stride, padding, dilation, groups), (x, w, b), dy))[which]
    unbatched = x.dim() == nd + 1
    xb, gy = (x.unsqueeze(0), dy.unsqueeze(0)) if unbatched else (x, dy)
    g = torch.ops.aten.convolution_backward(
        gy, xb, w, [w.shape[0]] if b is not None else None, _tup(stride, nd), _tup(padding, nd),
        _tup(dilation, nd), False, [0] * nd, groups, [which == 0, which == 1, which == 2])[which]
    return g.squeeze(0) if unbatched and which == 0 and g is not None else g


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def dropout_fwd(x, p, training):
    if not training or p == 0:
        return x
    if p == 1:
        y = x * 0
        y._tz_scale = torch.zeros_like(x)
        return y
    scale = torch.empty_like(x).bernoulli_(1 - p) / (1 - p)
    y = x * scale
    y._tz_scale = scale
    return y


def dropout_back(dy, y, training, p):
    if not training or p == 0:
        return dy
    return dy * y._tz_scale


def embedding_back(dy, idx, weight, padding_idx):
    D = weight.shape[-1]
    g = torch.zeros_like(weight).index_add(0, idx.reshape(-1), dy.reshape(-1, D))
    if padding_idx is not None:
        g[padding_idx] = 0
    return g


# ---------------------------------------------------------------- local autograd for the hard cases

def vjp_all(fn, args, dy):
    """One vector-Jacobian product per argument of ``fn(*args)`` by local torch autograd."""
    from .fallback import torch_fallback
    _, back = torch_fallback(fn, tuple(args), {}, None)
    return back(dy)


def vjp(fn, args, dy, i):
    return vjp_all(fn, args, dy)[i]


# ====================================================================== registration

NS = {k: v for k, v in globals().items() if callable(v) and not k.startswith("__")}
NS.update(tanh_backward=torch.ops.aten.tanh_backward, sigmoid_backward=torch.ops.aten.sigmoid_backward)
NS.update(torch=torch, F=F, math=math, ub=unbroadcast, index_back=index_back, accum=accum,
          LN2=math.log(2.0), LN10=math.log(10.0), TWO_OVER_SQRT_PI=_TWO_OVER_SQRT_PI)

_WORD = re.compile(r"\binput\b")
NATIVE = []  # the callables with native rules registered here


def _opts(kw):
    o = dict(ns=NS, kinds=ANY, out=TENSOR)
    o.update(kw)
    return o


def _npos(sig):
    """How many of a signature's parameters may be passed by position."""
    import ast
    a = ast.parse(f"lambda {sig}: 0", mode="eval").body.args
    return len(a.posonlyargs + a.args)


def call_rule(fn, names, npos, defaults, vals, var):
    """Call ``fn`` with a rule's bound values as the user could have: values equal
    to their defaults are left out, and what follows a left-out one, or a
    keyword-only parameter, goes by keyword."""
    args, kw, skipped = [], {}, False
    for i, (n, v) in enumerate(zip(names, vals)):
        if n in defaults:
            d = defaults[n]
            if v is d or (not isinstance(v, torch.Tensor) and type(v) is type(d) and v == d):
                skipped = True
                continue
        if i < npos and not skipped:
            args.append(v)
        else:
            kw[n] = v
    if var and not kw and not skipped:
        args += list(var)
    elif var:
        kw = {**kw}
        args += list(var)
    return fn(*args, **kw)


def _closure(r, sig):
    """Build the run-time form of a rule (``registry.closure_form``) with a call that
    leaves defaults out, so keyword-only parameters are not passed by position."""
    from .registry import closure_form
    if r.fwd is not None:
        return
    ps = ", ".join(r.params)
    var = r.vararg or "()"
    saved_ns = r.ns
    r.ns = dict(r.ns, call_rule=call_rule, _R_names=tuple(r.params), _R_npos=_npos(sig), _R_def=r.defaults)
    r.fwd = f"call_rule(_fn, _R_names, _R_npos, _R_def, ({ps}{',' if r.params else ''}), {var})"
    try:
        closure_form(r)
    finally:
        r.fwd, r.ns = None, saved_ns


def rule(fns, sig, **kw):
    for f in fns:
        if f is None:
            continue
        r = grad(f, sig, **_opts(kw))
        _closure(r, sig)
        NATIVE.append(f)


def _method_kw(kw):
    out = {}
    for k, v in kw.items():
        k2 = "self" if k == "input" else k
        out[k2] = _WORD.sub("self", v) if isinstance(v, str) and k not in ("out",) else v
    return out


def tm(name, sig, *, method=True, function=True, msig=None, extra=(), **kw):
    """A rule for ``torch.name`` (and ``extra`` callables) and the method ``Tensor.name``."""
    fns = []
    if function and hasattr(torch, name):
        fns.append(getattr(torch, name))
    fns += list(extra)
    rule(fns, sig, **kw)
    if method and hasattr(torch.Tensor, name):
        rule([getattr(torch.Tensor, name)], _WORD.sub("self", msig or sig), **_method_kw(kw))


EW = dict(broadcast=True)
VIEW = dict(view=True)                 # the result may share memory with the first argument
ELEMENTWISE = dict(elementwise=True)   # a tensor result has the broadcast shape of the tensor arguments
NB = dict(broadcast=False)
MN = dict(maybe_none=True)
TUPLE_ARG = ("P|PT|PR", ...)

def grad_c(f, sig, **kw):
    r = grad(f, sig, **kw)
    _closure(r, sig)
    return r


# ---------------------------------------------------------------- elementwise, one argument
for _name, _expr in [
    ("sin", "dy * torch.cos(input).conj()"), ("cos", "-dy * torch.sin(input).conj()"),
    ("tan", "dy * (1 + y * y).conj()"), ("exp", "dy * y.conj()"), ("expm1", "dy * (y + 1).conj()"),
    ("exp2", "dy * (y * LN2).conj()"),
    ("log", "dy / input.conj()"), ("log2", "dy / (input.conj() * LN2)"), ("log10", "dy / (input.conj() * LN10)"),
    ("log1p", "dy / (1 + input.conj())"), ("sqrt", "dy / (2 * y.conj())"), ("rsqrt", "-0.5 * dy * (y ** 3).conj()"),
    ("tanh", "tanh_backward(dy, y)"), ("sigmoid", "sigmoid_backward(dy, y)"),  # torch's fused kernels
    ("sinh", "dy * torch.cosh(input).conj()"), ("cosh", "dy * torch.sinh(input).conj()"),
    # complex inputs: torch's convention is dy * conj(f'(z))
    ("asin", "dy * torch.rsqrt(1 - input * input).conj()"),
    ("acos", "-dy * torch.rsqrt(1 - input * input).conj()"),
    ("atan", "dy / (1 + input * input).conj()"), ("asinh", "dy * torch.rsqrt(input * input + 1).conj()"),
    ("acosh", "dy * torch.rsqrt(input * input - 1).conj()"), ("atanh", "dy / (1 - input * input).conj()"),
    ("erf", "dy * TWO_OVER_SQRT_PI * torch.exp(-input * input)"),
    ("erfc", "-dy * TWO_OVER_SQRT_PI * torch.exp(-input * input)"),
    ("reciprocal", "-dy * (y * y).conj()"), ("square", "2 * dy * input.conj()"),
    ("neg", "-dy"), ("negative", "-dy"), ("positive", "dy"),
    ("abs", "dy * torch.sgn(input)"), ("absolute", "dy * torch.sgn(input)"),
    ("relu", "dy * (y > 0)"), ("conj", "dy.conj()"), ("conj_physical", "dy.conj()"),
    ("deg2rad", "dy * (math.pi / 180)"), ("rad2deg", "dy * (180 / math.pi)"),
]:
    tm(_name, "input", input=_expr, **NB, **ELEMENTWISE)
tm("clone", "input, *, memory_format=None", input="dy", **NB, **ELEMENTWISE)
tm("contiguous", "input, memory_format=None", function=False, input="dy", **NB, **ELEMENTWISE)
tm("sgn", "input", input="vjp(torch.sgn, (input,), dy, 0) if input.is_complex() else dy * 0", **NB, **ELEMENTWISE)
for _name in ("sign", "floor", "ceil", "round", "trunc", "frac", "signbit", "isnan", "isinf", "isfinite",
              "argmax", "argmin", "argsort", "eq", "ne", "lt", "le", "gt", "ge", "greater", "less",
              "logical_and", "logical_or", "logical_not", "logical_xor", "isclose", "allclose", "equal",
              "nonzero", "count_nonzero", "bucketize", "searchsorted", "bincount", "histc", "unique",
              "zeros_like", "ones_like", "empty_like", "rand_like", "randn_like", "randint_like", "full_like",
              "is_floating_point", "is_complex", "is_tensor", "numel", "result_type", "broadcast_shapes",
              "any", "all", "floor_divide", "bitwise_and", "bitwise_or", "bitwise_not"):
    for _f in (getattr(torch, _name, None), getattr(torch.Tensor, _name, None)):
        if _f is not None:
            nondiff(_f)
# frac has a gradient of 1: a rule overrides the nondiff mark where both exist
tm("frac", "input", input="dy", **NB, **ELEMENTWISE)
nondiff(torch.zeros, torch.ones, torch.full, torch.empty, torch.arange, torch.linspace, torch.logspace,
        torch.eye, torch.randn, torch.rand, torch.randint, torch.randperm, torch.manual_seed, torch.normal,
        torch.tril_indices, torch.triu_indices, torch.Size, torch.get_default_dtype, torch.is_grad_enabled,
        torch.Tensor.size, torch.Tensor.dim, torch.Tensor.numel, torch.Tensor.nelement, torch.Tensor.ndimension,
        torch.Tensor.is_contiguous, torch.Tensor.stride, torch.Tensor.data_ptr, torch.Tensor.element_size,
        torch.Tensor.tolist, torch.Tensor.long, torch.Tensor.int, torch.Tensor.bool, torch.Tensor.byte,
        torch.Tensor.short, torch.Tensor.char, torch.Tensor.new_zeros, torch.Tensor.new_ones,
        torch.Tensor.new_full, torch.Tensor.new_empty, torch.Tensor.new_tensor, torch.Tensor.numpy,
        torch.Tensor.get_device, torch.Tensor.is_floating_point, torch.Tensor.requires_grad_,
        torch.Tensor.fill_, torch.Tensor.zero_, torch.Tensor.normal_, torch.Tensor.uniform_, torch.no_grad,
        torch.enable_grad, torch.device, torch.finfo, torch.iinfo)
# creation functions (torch.zeros, arange, randn...) are nondiff, marked above; the *_like
# ones and shape queries are grad-less rules: their results keep a known kind
for _f in (torch.zeros_like, torch.ones_like, torch.empty_like, torch.randn_like, torch.rand_like):
    grad_c(_f, "input, *, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None",
         ns=NS, kinds=ANY, out=TENSOR)
grad_c(torch.full_like, "input, fill_value, *, dtype=None, layout=None, device=None, requires_grad=False, "
     "memory_format=None", ns=NS, kinds=ANY, out=TENSOR)
grad_c(torch.Tensor.size, "self, dim=None", ns=NS, kinds=ANY, out=OBJECT)
grad_c(torch.Tensor.dim, "self", ns=NS, kinds=ANY, out=NONDIFF)
grad_c(torch.Tensor.numel, "self", ns=NS, kinds=ANY, out=NONDIFF)
grad_c(torch.Tensor.detach, "self", ns=NS, kinds=ANY, out=TENSOR, **VIEW)
grad_c(torch.detach, "input", ns=NS, kinds=ANY, out=TENSOR, **VIEW)
for _name in ("argmax", "argmin"):
    tm(_name, "input, dim=None, keepdim=False", out=TENSOR)
tm("argsort", "input, dim=-1, descending=False, *, stable=False", out=TENSOR)

# ---------------------------------------------------------------- activations (torch, F)
rule([F.relu], "input, inplace=False", input="dy * (y > 0)", **NB, **ELEMENTWISE)
rule([F.relu6], "input, inplace=False", input="dy * ((input > 0) & (input < 6))", **NB, **ELEMENTWISE)
rule([F.gelu], "input, approximate='none'", input="gelu_back(dy, input, approximate)", **NB, **ELEMENTWISE)
rule([F.silu], "input, inplace=False", input="silu_back(dy, input)", **NB, **ELEMENTWISE)
rule([F.softplus], "input, beta=1.0, threshold=20.0", input="softplus_back(dy, input, beta, threshold)", **NB, **ELEMENTWISE)
rule([F.elu], "input, alpha=1.0, inplace=False", input="elu_back(dy, input, alpha, y)", **NB, **ELEMENTWISE)
rule([F.leaky_relu], "input, negative_slope=0.01, inplace=False",
     input="torch.where(input > 0, dy, dy * negative_slope)", **NB, **ELEMENTWISE)
rule([F.logsigmoid], "input", input="dy * torch.sigmoid(-input)", **NB, **ELEMENTWISE)
rule([F.tanh], "input", input="dy * (1 - y * y)", **NB, **ELEMENTWISE)
rule([F.sigmoid], "input", input="dy * y * (1 - y)", **NB, **ELEMENTWISE)
rule([torch.nn.functional.hardtanh], "input, min_val=-1.0, max_val=1.0, inplace=False",
     input="dy * ((input > min_val) & (input < max_val))", **NB, **ELEMENTWISE)
rule([torch.special.expit], "input", input="dy * y * (1 - y)", **NB, **ELEMENTWISE)

# ---------------------------------------------------------------- elementwise, several arguments
tm("clamp", "input, min=None, max=None", input="clamp_back(dy, input, min, max)",
   min="clamp_bound_back(dy, input, min, max, 'min')", max="clamp_bound_back(dy, input, min, max, 'max')",
   extra=[torch.clip], **EW, **MN, **ELEMENTWISE)
rule([torch.Tensor.clip], "self, min=None, max=None", self="clamp_back(dy, self, min, max)",
     min="clamp_bound_back(dy, self, min, max, 'min')", max="clamp_bound_back(dy, self, min, max, 'max')",
     **EW, **MN, **ELEMENTWISE)
tm("clamp_min", "input, min", input="clamp_back(dy, input, min, None)",
   min="clamp_bound_back(dy, input, min, None, 'min')", **EW, **MN, **ELEMENTWISE)
tm("clamp_max", "input, max", input="clamp_back(dy, input, None, max)",
   max="clamp_bound_back(dy, input, None, max, 'max')", **EW, **MN, **ELEMENTWISE)
tm("where", "condition, input, other", method=False, input="where_back(dy, condition, input, True)",
   other="where_back(dy, condition, other, False)", **EW, **MN, **ELEMENTWISE)
rule([torch.Tensor.where], "self, condition, other", self="where_back(dy, condition, self, True)",
     other="where_back(dy, condition, other, False)", **EW, **MN, **ELEMENTWISE)
tm("maximum", "input, other", input="ext2_back(dy, input, other, True)",
   other="ext2_back(dy, other, input, True)", extra=[torch.fmax], **EW, **MN, **ELEMENTWISE)
tm("minimum", "input, other", input="ext2_back(dy, input, other, False)",
   other="ext2_back(dy, other, input, False)", extra=[torch.fmin], **EW, **MN, **ELEMENTWISE)
tm("pow", "input, exponent", input="pow_base_back(dy, input, exponent)",
   exponent="pow_exp_back(dy, input, exponent, y)", **EW, **MN, **ELEMENTWISE)
tm("float_power", "input, exponent", input="pow_base_back(dy, input, exponent)",
   exponent="pow_exp_back(dy, input, exponent, y)", **EW, **MN, **ELEMENTWISE)
tm("add", "input, other, *, alpha=1", input="dy", other="dy * alpha", **EW, **ELEMENTWISE)
tm("sub", "input, other, *, alpha=1", input="dy", other="-dy * alpha", extra=[torch.subtract], **EW, **ELEMENTWISE)
tm("rsub", "input, other, *, alpha=1", method=False, input="-dy * alpha", other="dy", **EW, **ELEMENTWISE)
tm("mul", "input, other", input="mul_back(dy, other)", other="mul_back(dy, input)", extra=[torch.multiply], **EW, **ELEMENTWISE)
tm("div", "input, other, *, rounding_mode=None", input="div_back_a(dy, input, other, rounding_mode)",
   other="div_back_b(dy, input, other, y, rounding_mode)", extra=[torch.divide, torch.true_divide], **EW, **MN, **ELEMENTWISE)
tm("atan2", "input, other", input="dy * other / (input * input + other * other)",
   other="-dy * input / (input * input + other * other)", extra=[torch.arctan2], **EW, **ELEMENTWISE)
tm("remainder", "input, other", input="dy", other="mod_other_back(dy, input, other)", **EW, **MN, **ELEMENTWISE)
tm("fmod", "input, other", input="dy", other="fmod_other_back(dy, input, other)", **EW, **MN, **ELEMENTWISE)
rule([torch.real], "input", input="real_back(dy, input)", **NB, **VIEW)
tm("hypot", "input, other", input="dy * input / y", other="dy * other / y", **EW, **ELEMENTWISE)
tm("lerp", "input, end, weight", input="lerp_back(dy, input, end, weight, 0)",
   end="lerp_back(dy, input, end, weight, 1)", weight="lerp_back(dy, input, end, weight, 2)", **EW, **MN, **ELEMENTWISE)
tm("addmm", "input, mat1, mat2, *, beta=1, alpha=1", input="dy * _cn(beta)", mat1="_cn(alpha) * dy @ _H(mat2)",
   mat2="_cn(alpha) * _H(mat1) @ dy", **EW)
tm("masked_fill", "input, mask, value", input="dy.masked_fill(mask, 0)",
   value="masked_fill_value_back(dy, mask, value)", **EW, **MN, **ELEMENTWISE)
tm("xlogy", "input, other", input="dy * torch.where(input == 0, torch.zeros_like(y), torch.log(other))",
   other="dy * input / other", **EW, **ELEMENTWISE)

# ---------------------------------------------------------------- operators on tensors
_TK = some("T")   # a tensor among the operands


for _op, _sym in ((operator.pow, "**"), (operator.ipow, "**")):
    grad(_op, "a, b", fwd=f"a {_sym} b", kinds=_TK, ns=NS, out=TENSOR, maybe_none=True, elementwise=True,
         a="pow_base_back(dy, a, b)", b="pow_exp_back(dy, a, b, y)")
for _op, _sym in ((operator.matmul, "@"), (operator.imatmul, "@")):
    grad(_op, "a, b", fwd=f"a {_sym} b", kinds=_TK, ns=NS, out=TENSOR, broadcast=False, maybe_none=True,
         a="matmul_back(dy, a, b, 0)", b="matmul_back(dy, a, b, 1)")
    NATIVE.append(_op)
# augmented assignment with a number on the left and a tensor on the right makes a new tensor, as
# Python does (``s = 0.0; s += t``). With a tensor on the left it writes into that tensor, which
# other names, lists and views may hold: rules/inplace.py, whose guards see them (evaluating it out
# of place gave those holders the old values: silently wrong results and gradients)
_NUMBER_FIRST = ("R|N", "T")
_IN_PLACE = [(operator.iadd, "+", "dy", "dy"), (operator.isub, "-", "dy", "-dy"),
             (operator.imul, "*", "mul_back(dy, b)", "mul_back(dy, a)"),
             (operator.itruediv, "/", "div_back_a(dy, a, b)", "div_back_b(dy, a, b, y)")]
for _op, _sym, _da, _db in _IN_PLACE:
    grad(_op, "a, b", fwd=f"a {_sym} b", kinds=_NUMBER_FIRST, ns=NS, out=TENSOR, elementwise=True, a=_da, b=_db)
    NATIVE.append(_op)
NATIVE += [operator.add, operator.sub, operator.mul, operator.truediv, operator.neg, operator.pow, operator.ipow]
grad(float, "x", x="item_back(dy, x)", kinds=("T", ...), ns=NS, out=REAL, broadcast=False,
     maybe_none=True)
grad_c(torch.Tensor.item, "self", self="item_back(dy, self)", kinds=ANY, ns=NS, out=REAL, broadcast=False,
     maybe_none=True)
NATIVE.append(torch.Tensor.item)

# ---------------------------------------------------------------- conversions
# torch's first overload, so a positional dtype, device or tensor lands in ``device`` and is passed
# on by position (``call_rule``); keyword-only parameters must not follow a vararg (the binder
# fills parameters from positional arguments in order)
rule([torch.Tensor.to], "self, device=None, dtype=None, non_blocking=False, copy=False, *, memory_format=None",
     self="to_back(dy, self)", **NB, **MN)
for _name in ("float", "double", "half", "bfloat16", "cpu", "cuda", "type_as"):
    _sig = "self, other" if _name == "type_as" else "self, memory_format=None" if _name in (
        "float", "double", "half", "bfloat16") else "self, device=None, non_blocking=False, memory_format=None" \
        if _name == "cuda" else "self, memory_format=None"
    rule([getattr(torch.Tensor, _name)], _sig, self="to_back(dy, self)", **NB, **MN)
rule([torch.tensor, torch.as_tensor], "data, dtype=None, device=None, requires_grad=False, pin_memory=False",
     data="tensor_back(ctx, data, dy)", **NB, **MN)

# ---------------------------------------------------------------- reductions
tm("sum", "input, dim=None, keepdim=False, *, dtype=None", input="sum_back(dy, input, dim, keepdim)", **NB, **MN)
tm("nansum", "input, dim=None, keepdim=False, *, dtype=None",
   input="sum_back(dy, input, dim, keepdim) * ~torch.isnan(input)", **NB)
tm("mean", "input, dim=None, keepdim=False, *, dtype=None", input="mean_back(dy, input, dim, keepdim)", **NB, **MN)
tm("prod", "input, dim=None, keepdim=False, *, dtype=None", input="prod_back(dy, input, dim, keepdim)", **NB, **MN)
_EXT_OUT = lambda ks: TENSOR if len(ks) == 1 or ks[1] == TENSOR else OBJECT  # noqa: E731
for _name, _larger in (("max", True), ("min", False)):
    tm(_name, "input, dim=None, keepdim=False", out=_EXT_OUT,
       input=f"extreme_back(dy, input, dim, keepdim, y) if not isinstance(dim, torch.Tensor) else "
             f"ext2_back(dy, input, dim, {_larger})",
       dim=f"extreme_other_back(dy, input, dim, y, {_larger})", **EW, **MN)
for _name in ("amax", "amin"):
    tm(_name, "input, dim=(), keepdim=False", input="amax_back(dy, input, dim, keepdim, y)", **NB, **MN)
tm("norm", "input, p='fro', dim=None, keepdim=False, out=None, dtype=None",
   msig="input, p='fro', dim=None, keepdim=False, dtype=None", input="norm_back(dy, input, p, dim, keepdim, y)",
   **NB, **MN)
rule([torch.linalg.vector_norm], "x, ord=2, dim=None, keepdim=False, *, dtype=None, out=None",
     x="norm_back(dy, x, ord, dim, keepdim, y)", **NB, **MN)
rule([torch.linalg.norm], "A, ord=None, dim=None, keepdim=False, *, out=None, dtype=None",
     A="linalg_norm_back(dy, A, ord, dim, keepdim, y)", **NB, **MN)
tm("logsumexp", "input, dim, keepdim=False", input="logsumexp_back(dy, input, dim, keepdim, y)", **NB, **MN)
tm("cumsum", "input, dim, *, dtype=None", input="cumsum_back(dy, input, dim)", **NB, **MN)
tm("cumprod", "input, dim, *, dtype=None", input="cumprod_back(dy, input, dim, y)", **NB, **MN)
tm("var", "input, dim=None, unbiased=None, keepdim=False, *, correction=None",
   input="var_back(dy, input, dim, unbiased, keepdim, correction)", **NB, **MN)
tm("std", "input, dim=None, unbiased=None, keepdim=False, *, correction=None",
   input="std_back(dy, input, dim, unbiased, keepdim, correction, y)", **NB, **MN)
tm("trace", "input", input="trace_back(dy, input)", **NB)
tm("sort", "input, dim=-1, descending=False, *, stable=False", out=OBJECT,
   input="sort_back(dy, input, dim, y)", **NB, **MN)
tm("topk", "input, k, dim=-1, largest=True, sorted=True", out=OBJECT,
   input="topk_back(dy, input, dim, None, y)", **NB, **MN)

# ---------------------------------------------------------------- products
tm("matmul", "input, other", input="matmul_back(dy, input, other, 0)", other="matmul_back(dy, input, other, 1)",
   **NB, **MN)
tm("mm", "input, mat2", input="dy @ _H(mat2)", mat2="_H(input) @ dy", **NB)
tm("bmm", "input, mat2", input="dy @ _H(mat2)", mat2="_H(input) @ dy", **NB)
tm("mv", "input, vec", input="mv_back(dy, input, vec, 0)", vec="mv_back(dy, input, vec, 1)", **NB)
tm("dot", "input, other", input="dy * other.conj()", other="dy * input.conj()", **NB)
tm("outer", "input, vec2", input="dy @ _c(vec2)", vec2="dy.mT @ _c(input)", extra=[torch.ger], **NB)
rule([torch.einsum], "equation, *operands", operands="tuple(einsum_back(dy, equation, operands, i) "
     "for i in range(len(operands)))", **NB, **MN)

# ---------------------------------------------------------------- linalg
rule([torch.linalg.solve], "A, B, *, left=True, out=None", A="solve_back(dy, A, B, y, left, 0)",
     B="solve_back(dy, A, B, y, left, 1)", **NB)
rule([torch.linalg.inv, torch.inverse, torch.Tensor.inverse], "A", A="inv_back(dy, y)", **NB)
rule([torch.linalg.det, torch.det, torch.Tensor.det], "A", A="det_back(dy, A, y)", **NB)
rule([torch.linalg.cholesky], "A, *, upper=False, out=None", A="cholesky_back(dy, y, upper)", **NB)

# ---------------------------------------------------------------- shapes
tm("reshape", "input, shape", msig="input, *shape", input="reshape_back(dy, input)", **NB, **MN, **VIEW)
rule([torch.Tensor.view], "self, *shape", self="reshape_back(dy, self)", **NB, **MN, **VIEW)
rule([torch.Tensor.view_as, torch.Tensor.reshape_as], "self, other", self="reshape_back(dy, self)", **NB, **MN, **VIEW)
tm("squeeze", "input, dim=None", input="reshape_back(dy, input)", **NB, **MN, **VIEW)
tm("unsqueeze", "input, dim", input="reshape_back(dy, input)", **NB, **MN, **VIEW)
tm("flatten", "input, start_dim=0, end_dim=-1", input="reshape_back(dy, input)", **NB, **MN, **VIEW)
tm("ravel", "input", input="reshape_back(dy, input)", **NB, **MN)
tm("unflatten", "input, dim, sizes", input="reshape_back(dy, input)", **NB, **MN, **VIEW)
for _n in ("atleast_1d", "atleast_2d", "atleast_3d"):
    tm(_n, "input", method=False, input="atleast_back(ctx, dy, input)",
       out=lambda ks: TENSOR if ks and base(ks[0]) == TENSOR else OBJECT, **NB, **MN)
tm("transpose", "input, dim0, dim1", input="dy.transpose(dim0, dim1)", extra=[torch.swapaxes, torch.swapdims], **NB, **VIEW)
rule([torch.Tensor.swapaxes, torch.Tensor.swapdims], "self, dim0, dim1", self="dy.transpose(dim0, dim1)", **NB, **VIEW)
tm("t", "input", input="dy.t()", **NB, **VIEW)
tm("adjoint", "input", input="dy.mH", **NB)
tm("permute", "input, dims", method=False, input="permute_back(dy, dims)", **NB, **VIEW)
rule([torch.Tensor.permute], "self, *dims", self="permute_back(dy, dims)", **NB, **VIEW)
tm("movedim", "input, source, destination", input="torch.movedim(dy, destination, source)", **NB, **VIEW)
rule([torch.Tensor.expand], "self, *sizes", self="expand_back(dy, self)", **NB, **MN, **VIEW)
rule([torch.Tensor.expand_as], "self, other", self="expand_back(dy, self)", **NB, **MN, **VIEW)
tm("broadcast_to", "input, size", input="expand_back(dy, input)", **NB, **MN)
tm("flip", "input, dims", method=False, input="flip_back(dy, dims)", **NB)
rule([torch.Tensor.flip], "self, *dims", self="flip_back(dy, dims)", **NB)
tm("roll", "input, shifts, dims=None", input="roll_back(dy, shifts, dims)", **NB)
tm("tril", "input, diagonal=0", input="dy.tril(diagonal)", **NB)
tm("triu", "input, diagonal=0", input="dy.triu(diagonal)", **NB)
tm("diagonal", "input, offset=0, dim1=0, dim2=1", input="diagonal_back(dy, input, offset, dim1, dim2)", **NB, **VIEW)
tm("diag", "input, diagonal=0", input="diag_back(dy, input, diagonal)", **NB)
tm("diag_embed", "input, offset=0, dim1=-2, dim2=-1", input="dy.diagonal(offset, dim1, dim2)", **NB)
tm("narrow", "input, dim, start, length",
   input="torch.zeros_like(input).narrow_copy(dim, 0, input.shape[dim]).index_add(dim, "
         "torch.arange(start % input.shape[dim], start % input.shape[dim] + length, device=input.device), "
         "dy)", **NB, **VIEW)
# a tuple of tensors (list displays passed straight in are built as tuples) needs no context
rule([torch.cat, torch.concat, torch.concatenate], "tensors, dim=0, *, out=None",
     tensors="cat_pieces(dy, tensors, dim)", kinds=TUPLE_ARG, **NB)
rule([torch.stack], "tensors, dim=0, *, out=None", tensors="stack_pieces(dy, tensors, dim)", kinds=TUPLE_ARG, **NB)
rule([torch.cat, torch.concat, torch.concatenate], "tensors, dim=0, *, out=None",
     tensors="cat_back(ctx, dy, tensors, dim)", **NB, **MN)
rule([torch.stack], "tensors, dim=0, *, out=None", tensors="stack_back(ctx, dy, tensors, dim)", **NB, **MN)
reads_sequence(torch.cat, torch.concat, torch.concatenate, torch.stack)
rule([torch.split, torch.Tensor.split], "tensor, split_size_or_sections, dim=0", out=OBJECT,
     tensor="pieces_back(dy, tensor, dim, y)", **NB, **MN, **VIEW)
tm("chunk", "input, chunks, dim=0", out="PT", input="pieces_back(dy, input, dim, y)", **NB, **MN, **VIEW)
tm("unbind", "input, dim=0", out="PT", input="unbind_back(dy, input, dim, y)", **NB, **MN, **VIEW)
tm("gather", "input, dim, index, *, sparse_grad=False", input="gather_back(dy, input, dim, index)", **NB)
tm("take_along_dim", "input, indices, dim=None", input="vjp(torch.take_along_dim, (input, indices, dim), dy, 0)",
   **NB)
tm("index_select", "input, dim, index", input="index_select_back(dy, input, dim, index)", **NB)

# ---------------------------------------------------------------- torch.nn.functional
rule([F.linear], "input, weight, bias=None", input="linear_back(dy, input, weight, 0)",
     weight="linear_back(dy, input, weight, 1)", bias="bias_back(dy, bias)", **NB, **MN)
for _nd, _f in ((1, F.conv1d), (2, F.conv2d), (3, F.conv3d)):
    rule([_f], "input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1",
         input="conv_back(dy, input, weight, bias, stride, padding, dilation, groups, 0)",
         weight="conv_back(dy, input, weight, bias, stride, padding, dilation, groups, 1)",
         bias="conv_back(dy, input, weight, bias, stride, padding, dilation, groups, 2)", **NB, **MN)
rule([F.softmax], "input, dim=None, _stacklevel=3, dtype=None", input="softmax_back(dy, y, dim, input)", **NB, **MN)
rule([F.log_softmax], "input, dim=None, _stacklevel=3, dtype=None", input="log_softmax_back(dy, y, dim, input)",
     **NB, **MN)
tm("softmax", "input, dim, dtype=None", input="softmax_back(dy, y, dim, input)", **NB, **MN)
tm("log_softmax", "input, dim, dtype=None", input="log_softmax_back(dy, y, dim, input)", **NB, **MN)
rule([F.cross_entropy], "input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, "
     "reduction='mean', label_smoothing=0.0",
     input="cross_entropy_back(dy, input, target, weight, ignore_index, reduction, label_smoothing, reduce, "
           "size_average)",
     target="cross_entropy_target_back(dy, input, target, weight, reduction, label_smoothing, reduce, size_average)",
     **NB, **MN)
rule([F.mse_loss], "input, target, size_average=None, reduce=None, reduction='mean', weight=None",
     input="mse_back(dy, input, target, reduction, reduce, size_average, 0)",
     target="mse_back(dy, input, target, reduction, reduce, size_average, 1)", **EW)
rule([F.layer_norm], "input, normalized_shape, weight=None, bias=None, eps=1e-05",
     input="layer_norm_back(dy, input, normalized_shape, weight, bias, eps, 0)",
     weight="layer_norm_back(dy, input, normalized_shape, weight, bias, eps, 1)",
     bias="layer_norm_back(dy, input, normalized_shape, weight, bias, eps, 2)", **NB, **MN)
rule([F.dropout], "input, p=0.5, training=True, inplace=False", fwd="dropout_fwd(input, p, training)",
     input="dropout_back(dy, y, training, p)", **NB)
rule([torch.dropout], "input, p, train", fwd="dropout_fwd(input, p, train)",
     input="dropout_back(dy, y, train, p)", **NB)
rule([F.embedding], "input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, "
     "sparse=False", weight="embedding_back(dy, input, weight, padding_idx)", **NB)
