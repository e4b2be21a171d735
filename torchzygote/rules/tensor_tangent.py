"""Tangent helpers of the torch rules (rules/tensor.py, rules/inplace.py): the forward-mode terms
too long for a table line, as tensor_backward.py holds the pullbacks.

A helper takes one parameter's tangent and returns its term of the result's tangent. None writes
into a tangent (tangents may be shared by several values). Reductions reuse their pullbacks: an
entry of a reduction's result depends on its own slice of the input only, so the pullback of ones
holds each input entry's weight, and the tangent is the slice sum of the conjugated weights times
the input's tangent (the real part where the result is real).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import GradientError
from .nn_backward import _CONV, softmax_dim
from .tensor_backward import _H, _c, _dims, _fl


def as_t(d, y):
    """A number's tangent as a 0-d tensor of ``y``'s dtype (tensors as they are)."""
    if isinstance(d, torch.Tensor):
        return d
    dtype = y.dtype if y.is_floating_point() or y.is_complex() else None
    return torch.tensor(d, dtype=torch.complex128 if isinstance(d, complex) and dtype is not None
                        and not dtype.is_complex else dtype, device=y.device)


def to_shape(d, y):
    """A term of an argument that was broadcast (or a number) expanded to the result's shape."""
    d = as_t(d, y)
    return d if d.shape == y.shape else d.expand(y.shape)


def _real_to(t, y):
    """``t`` as a tangent of ``y``: its real part where ``y`` is real, in ``y``'s dtype."""
    if t.is_complex() and not y.is_complex():
        t = t.real
    return t.to(y.dtype) if t.dtype != y.dtype and (y.is_floating_point() or y.is_complex()) else t


def reduce_jvp(w, d, x, dim, keepdim, y):
    """The tangent of a reduction of ``x`` over ``dim`` (None, ``()``: all) whose pullback of ones
    is ``w``: per result entry, the sum over its slice of ``conj(w) * d``."""
    if isinstance(dim, bool):   # ``var(x, True)``: the flag given by position, a reduction over all
        dim = None
    t = _c(w) * d
    if x.dim() == 0:
        return _real_to(t.reshape(y.shape), y)
    if dim is None or isinstance(dim, (tuple, list)) and len(dim) == 0:
        t = t.sum()
        return _real_to(t.reshape(y.shape) if keepdim else t, y)
    return _real_to(t.sum(_dims(dim, x.dim()), keepdim=bool(keepdim)), y)


# ---------------------------------------------------------------- elementwise

def abs_jvp(d, x):
    """``|x|``: ``sgn(x) d`` for real ``x``, ``Re(conj(sgn(x)) d)`` for complex (not holomorphic)."""
    if x.is_complex():
        return (torch.sgn(x).conj() * d).real
    return torch.sgn(x) * d


def sgn_jvp(d, x, y):
    """``x / |x|``: zero for real ``x``; ``(d - y Re(conj(y) d)) / |x|`` for complex (0 at 0)."""
    if not x.is_complex():
        return torch.zeros_like(y)
    a = x.abs()
    t = (d - y * (y.conj() * d).real) / torch.where(a == 0, torch.ones_like(a), a)
    return torch.where(a == 0, torch.zeros_like(t), t)


def where_jvp(d, cond, which, y):
    """``where(cond, a, b)``: the tangent of ``a`` (``which``) or ``b`` where it is chosen."""
    d = as_t(d, y)
    z = torch.zeros((), dtype=d.dtype, device=d.device)
    return torch.where(cond, d, z) if which else torch.where(cond, z, d)


# ---------------------------------------------------------------- reductions and scans

def extreme_jvp(d, x, dim, keepdim, y, larger):
    """``max``/``min``: over all (ties share), along a dim (values and indices), or elementwise."""
    if isinstance(dim, torch.Tensor):   # torch.max(a, b)
        return to_shape(other_extreme_jvp(d, x, dim, larger), y)
    if dim is None:
        m = (x == y).to(d.dtype)
        return (m * d).sum() / m.sum()
    return select_jvp(d, dim, y, keepdim)


def other_extreme_jvp(d, x, other, larger):
    """``maximum(x, other)`` along ``x``'s tangent ``d``: where ``x`` wins, half at ties."""
    win = (x > other) if larger else (x < other)
    return d * (win.to(d.dtype) + 0.5 * (x == other).to(d.dtype))


def select_jvp(d, dim, y, keepdim=True):
    """``sort``/``topk``/``max(dim)``: the values' tangent gathered at the indices; none for them."""
    idx = y[1]
    if d.dim() == 0:
        return d.reshape(y[0].shape), None
    if not keepdim:
        idx = idx.unsqueeze(dim)
    t = d.gather(dim, idx)
    return (t if keepdim else t.squeeze(dim)), None


def cumprod_jvp(d, x, dim, y):
    """``cumprod``: entry k's tangent is the sum over j <= k of ``d_j`` times the others' product
    (``y * cumsum(d / x)`` where no entry is zero)."""
    if x.dim() == 0:
        return d
    if not bool((x == 0).any()):
        return y * (d / x).cumsum(dim)
    n = x.shape[dim]
    xs, ds = x.unbind(dim), d.unbind(dim)
    out, acc, tan = [], None, None
    for k in range(n):   # (product rule along the scan: t_k = t_{k-1} x_k + y_{k-1} d_k)
        tan = ds[k] if k == 0 else tan * xs[k] + acc * ds[k]
        acc = xs[k] if k == 0 else acc * xs[k]
        out.append(tan)
    return torch.stack(out, dim)


# ---------------------------------------------------------------- products and linear algebra

def einsum_jvp(equation, operands, doperands):
    """``einsum`` is linear in each operand: the sum over operands of the call with that operand's
    tangent in its place (operands may come as one list)."""
    ops_ = operands
    ds = doperands
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        ops_, ds = operands[0], doperands[0] if doperands[0] is not None else (None,) * len(operands[0])
    total = None
    for i, di in enumerate(ds):
        if di is None:
            continue
        t = torch.einsum(equation, *[di if j == i else o for j, o in enumerate(ops_)])
        total = t if total is None else total + t
    return total


def _vector_rhs(A, B):
    return B.dim() == 1 or (B.dim() == A.dim() - 1 and B.shape == A.shape[:-1])


def solve_jvp_a(A, dA, y, left):
    """``X = solve(A, B)``: ``dX = -A^{-1} dA X`` (``-X dA A^{-1}`` with ``left=False``)."""
    if not left:
        return torch.linalg.solve(A, -(y @ dA), left=False)
    if _vector_rhs(A, y):
        return torch.linalg.solve(A, -(dA @ y.unsqueeze(-1)).squeeze(-1))
    return torch.linalg.solve(A, -(dA @ y))


def det_jvp(dA, A, y):
    """``det(A)``: ``det(A) tr(A^{-1} dA)``."""
    return y * torch.linalg.solve(A, dA).diagonal(0, -2, -1).sum(-1)


def cholesky_jvp(dA, L, upper):
    """``A = L L^H``: ``dL = L Φ(L^{-1} S L^{-H})``, Φ the lower triangle with half its diagonal and
    S the Hermitian part of ``dA`` (the pullback's convention)."""
    if upper:
        L = _H(L)
    S = 0.5 * (dA + _H(dA))
    m = torch.linalg.solve_triangular(L, S, upper=False, left=True)
    m = torch.linalg.solve_triangular(_H(L), m, upper=True, left=False)
    phi = m.tril(-1) + 0.5 * torch.diag_embed(m.diagonal(0, -2, -1))
    dL = L @ phi
    return _H(dL) if upper else dL


# ---------------------------------------------------------------- shapes

def seq_tz(ds, ts, y):
    """The tangents of ``cat``/``stack``'s inputs, zeros of the result's dtype for missing ones."""
    ds = (None,) * len(ts) if ds is None else ds
    return [d if d is not None else torch.zeros(t.shape, dtype=y.dtype, device=y.device) for d, t in zip(ds, ts)]


# ---------------------------------------------------------------- in place

def was(v, y, old):
    """An argument of an in-place write as it was before: the copy ``old`` of the written tensor
    where ``v`` is that tensor itself (``x.mul_(x)``), else ``v``. (The run-time tangent form
    passes the written tensor there, overwritten, where the closure form passes the copy.)"""
    return old if v is y else v


def put_at(dv, key, y):
    """``x[key] = v``: ``v``'s tangent where it was written, zero elsewhere (everywhere in an
    integer or bool tensor, which keeps a rounded copy: ``inplace.into``)."""
    z = torch.zeros_like(y)
    if _fl(y):
        z[key] = dv
    return z


def fill_jvp(dv, y):
    """``x.fill_(v)``: ``v``'s tangent everywhere (nowhere in an integer or bool tensor)."""
    return torch.zeros_like(y) + as_t(dv, y) if _fl(y) else torch.zeros_like(y)


def copy_jvp(d, y):
    """``x.copy_(src)``: ``src``'s tangent broadcast and cast as the copy casts (none into an
    integer or bool tensor)."""
    return _real_to(to_shape(d, y), y) if _fl(y) else torch.zeros_like(y)


# ---------------------------------------------------------------- torch.nn.functional

def softmax_jvp(d, y, dim, x, log):
    """``softmax``: ``y (d - sum(y d))``; ``log_softmax``: ``d - sum(softmax d)``."""
    if x.dim() == 0:
        return torch.zeros_like(y)
    k = softmax_dim(x, dim)
    d = d.to(y.dtype)
    if log:
        return d - (torch.exp(y) * d).sum(k, keepdim=True)
    return y * (d - (y * d).sum(k, keepdim=True))


def loss_jvp(w, d, y):
    """A loss whose pullback of ones is ``w`` (elementwise terms): summed for a reduced loss."""
    t = w * d
    return t.sum() if y.dim() == 0 else t.expand(y.shape)


def ce_jvp(w, d, x, y):
    """``cross_entropy``: the weights times the tangent, summed over classes (over all, reduced)."""
    t = w * d
    return t.sum() if y.dim() == 0 else t.sum(1 if x.dim() >= 2 else 0)


def _ln_parts(x, normalized_shape, eps):
    """``layer_norm``'s normalised input, its reciprocal standard deviation and its dims."""
    k = len(normalized_shape) if not isinstance(normalized_shape, int) else 1
    dims = tuple(range(x.dim() - k, x.dim()))
    var, mu = torch.var_mean(x, dims, unbiased=False, keepdim=True)
    rstd = torch.rsqrt(var + eps)
    return (x - mu) * rstd, rstd, dims


def ln_hat(x, normalized_shape, eps):
    """``layer_norm``'s normalised input (before weight and bias): its weight's tangent's factor."""
    return _ln_parts(x, normalized_shape, eps)[0]


def layer_norm_jvp(d, x, normalized_shape, weight, eps):
    """``layer_norm`` along the input: ``rstd (d - mean(d) - xhat mean(xhat d))``, times weight."""
    xhat, rstd, dims = _ln_parts(x, normalized_shape, eps)
    t = rstd * (d - d.mean(dims, keepdim=True) - xhat * (xhat * d).mean(dims, keepdim=True))
    return t * weight if weight is not None else t


def conv_jvp(x, w, stride, padding, dilation, groups):
    """A convolution is linear in its input and in its weight: the same call on a tangent."""
    return _CONV[w.dim() - 2](x, w, None, stride, padding, dilation, groups)


def conv_bias_jvp(db, w, y):
    """A convolution's bias tangent, along the channel dimension of the result (batched or not)."""
    return db.reshape(db.shape + (1,) * (w.dim() - 2)).expand(y.shape)


def embedding_jvp(idx, dw, padding_idx, max_norm):
    """``embedding`` is linear in its table (rows at ``padding_idx`` included, as torch's forward
    mode has it: only the pullback leaves that row out)."""
    if max_norm is not None:
        raise GradientError("forward mode: F.embedding with max_norm renormalises the table in place; "
                            "its tangent is not implemented (renormalise the table outside the call)")
    return F.embedding(idx, dw)
