"""Backward helpers of the torch.nn.functional rules (rules/tensor.py): softmax, losses, layer norm,
convolutions, dropout, embeddings."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .tensor_backward import _c, _cast, _fl, _st, real_part, vjp_all

# ---------------------------------------------------------------- nn.functional

_MEMO = [None]
_TAKEN = object()


def memo(keys, compute, which: int):
    """Result ``which`` of ``compute()``, one computation shared by a rule's several pullback
    expressions. ``keys`` are every input of the computation: tensors compared by identity and
    version, everything else by value. Each result is handed out once (a second pullback run, or
    a caller writing into a gradient it got, recomputes rather than sharing a tensor)."""
    vers = tuple(k._version if isinstance(k, torch.Tensor) else None for k in keys)
    m = _MEMO[0]
    if m is not None and m[2] == vers and len(m[0]) == len(keys) and all(_same(a, b) for a, b in zip(m[0], keys)) \
            and m[1][which] is not _TAKEN:
        r = m[1][which]
    else:
        m = (keys, list(compute()), vers)
        _MEMO[0] = m
        r = m[1][which]
    m[1][which] = _TAKEN
    if all(v is _TAKEN or v is None for v in m[1]):
        _MEMO[0] = None   # (nothing left to share: hold no tensors)
    return r


def _same(a, b) -> bool:
    if a is b:
        return True
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor) or type(a) is not type(b):
        return False
    return a == b   # (numbers, strings, tuples and lists of numbers: stride, padding, needs)


def linear_back(dy, x, w, which):
    if w.dim() == 1:   # (a 1-D weight: y = x @ w, one output per row)
        if which == 0:
            return dy.unsqueeze(-1) * _c(w) if _fl(x) else None
        return (dy.unsqueeze(-1) * _c(x)).reshape(-1, x.shape[-1]).sum(0) if which == 1 else None
    if which == 0:
        return dy @ _c(w) if _fl(x) else None
    if which == 1:
        x = _c(x)
        if x.dim() == 2 and dy.dim() == 2:   # (a batch of rows: one mm, no reshapes)
            return dy.t().mm(x)
        if x.dim() == 1:
            return torch.outer(dy, x) if dy.dim() == 1 else dy.unsqueeze(-1) * x
        return dy.reshape(-1, dy.shape[-1]).mT @ x.reshape(-1, x.shape[-1])
    return None


def bias_back(dy, b):
    if b is None:
        return None
    return dy.sum(0) if dy.dim() == 2 and b.dim() == 1 and dy.shape[1] == b.shape[0] else _st(dy, b.shape)


def softmax_dim(x, dim):
    if dim is None:
        return 0 if x.dim() in (0, 1, 3) else 1
    return dim


def softmax_back(dy, y, dim, x):
    return _softmax_like_back(dy, y, dim, x, False)


def log_softmax_back(dy, y, dim, x):
    return _softmax_like_back(dy, y, dim, x, True)


def _softmax_like_back(dy, y, dim, x, log):
    """softmax and log_softmax share their edge cases: no gradient for integer inputs, zero
    for a 0-d input (its softmax is the constant 1)."""
    if not _fl(x):
        return None
    if not y.is_complex():   # (a complex x made real by dtype=: a real result's dy is real)
        dy = real_part(dy)
    d = softmax_dim(x, dim)
    if x.dim() == 0:
        return _cast(dy * 0, x)
    if log:
        return _cast(dy - torch.exp(y) * dy.sum(d, keepdim=True), x)
    return _cast(y * (dy - (dy * y).sum(d, keepdim=True)), x)


def _reduction(reduction, reduce_, size_average):
    """torch's legacy ``reduce``/``size_average`` flags, as a ``reduction`` string."""
    if reduce_ is not None or size_average is not None:
        return "none" if reduce_ is False else ("sum" if size_average is False else "mean")
    return reduction


def _ce_parts(x, reduction, reduce_, size_average):
    """What both cross-entropy gradients start from: the reduction, the class dimension, the
    number of classes and the log-softmax over them."""
    cd = 1 if x.dim() >= 2 else 0
    return _reduction(reduction, reduce_, size_average), cd, x.shape[cd], torch.log_softmax(x, cd)


def cross_entropy_back(dy, x, target, weight, ignore_index, reduction, label_smoothing, reduce_, size_average):
    if not _fl(x):
        return None
    reduction, cd, C, lsm = _ce_parts(x, reduction, reduce_, size_average)
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
    reduction, cd, C, lsm = _ce_parts(x, reduction, reduce_, size_average)
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
    return memo((dy, x, weight, bias, "ln", normalized_shape, eps), compute, which)


def _tup(v, n):
    return list(v) if isinstance(v, (tuple, list)) else [v] * n


def conv_back(dy, x, w, b, stride, padding, dilation, groups, which, needs):
    """One of a convolution's three gradients (``which``: input, weight, bias). The ones the
    pullback computes (``needs``) come from one ``convolution_backward`` call, shared by the
    three expressions; the input of a first layer is usually a constant batch, and its gradient
    costs more than the weight's, so it is computed only where needed."""
    nd = w.dim() - 2
    if isinstance(padding, str) or x.is_complex() or w.is_complex():  # (no complex backward kernel)
        return memo((dy, x, w, b, "conv", stride, padding, dilation, groups), lambda: vjp_all(
            lambda a, c, d: _CONV[nd](a, c, d, stride, padding, dilation, groups), (x, w, b), dy), which)
    return memo((dy, x, w, b, "conv", stride, padding, dilation, groups, needs),
                lambda: _conv_grads(dy, x, w, b, stride, padding, dilation, groups, needs), which)


def _conv_grads(dy, x, w, b, stride, padding, dilation, groups, needs):
    nd = w.dim() - 2
    unbatched = x.dim() == nd + 1
    xb, gy = (x.unsqueeze(0), dy.unsqueeze(0)) if unbatched else (x, dy)
    g = torch.ops.aten.convolution_backward(
        gy, xb, w, [w.shape[0]] if b is not None else None, _tup(stride, nd), _tup(padding, nd),
        _tup(dilation, nd), False, [0] * nd, groups, [needs[0], needs[1], needs[2] and b is not None])
    return (g[0].squeeze(0) if unbatched and g[0] is not None else g[0]), g[1], g[2]


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
