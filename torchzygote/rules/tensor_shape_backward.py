"""Backward helpers of the torch shape, indexing and conversion rules (rules/tensor.py)."""
from __future__ import annotations

import torch

from .container_backs import seq_back
from .tensor_backward import _fl, _st, _tuple_dy, einsum_back

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
    """The gradients of ``torch.cat``'s inputs: ``dy`` split back (None for non-float ones). A
    list's items come as they were at the call (``ops.items_of``)."""
    ts = list(tensors)
    sizes = []
    ref = next((t for t in ts if isinstance(t, torch.Tensor) and not (t.dim() == 1 and t.numel() == 0)), None)
    d = dim if ref is None else (dim + ref.dim()) % max(ref.dim(), 1)
    for t in ts:
        sizes.append(0 if t.dim() == 1 and t.numel() == 0 and (ref is None or ref.dim() != 1) else t.shape[d])
    parts = dy.split(sizes, d)
    return tuple(p if _fl(t) and not (t.dim() == 1 and t.numel() == 0 and sizes[k] == 0) else None
                 for k, (t, p) in enumerate(zip(ts, parts)))


def cat_back(ctx, dy, tensors, dim):
    return seq_back(ctx, tensors, cat_pieces(dy, tensors, dim))


def einsum_backs(ctx, dy, equation, operands):
    """The gradients of ``torch.einsum``'s operands; operands given as one list or tuple
    (``einsum(eq, [a, b])``) get theirs routed to its items."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        seq = operands[0]
        return (seq_back(ctx, seq, tuple(einsum_back(dy, equation, operands, i) for i in range(len(seq)))),)
    return tuple(einsum_back(dy, equation, operands, i) for i in range(len(operands)))


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
    if not isinstance(value, (torch.Tensor, float, int, complex)) or isinstance(value, bool):
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
    return sort_back(dy, x, dim, y)   # both scatter the values' gradients back to their indices


def to_back(dy, x, y=None):
    """A conversion's gradient in ``x``'s dtype and device; real where ``x`` or the result ``y`` is real
    (a complex ``x`` made real keeps its real part: its ``dy`` is the real part of one)."""
    if not _fl(x) or dy is None:
        return None
    if not isinstance(dy, torch.Tensor):
        return torch.full_like(x, dy)
    g = dy
    if g.is_complex() and (not x.is_complex() or isinstance(y, torch.Tensor) and not y.is_complex()):
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
