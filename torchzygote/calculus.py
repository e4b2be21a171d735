"""``jacobian``, ``hessian``, ``diaghessian`` (Zygote's) and ``hvp``.

``jacobian`` in reverse mode runs the forward pass once and calls the pullback once per output
element (a row each); in forward mode it runs one forward-mode pass per input element (a column
each); ``mode="auto"`` picks the one with fewer passes. ``hessian`` is the jacobian of the
gradient, by default forward over reverse (Zygote's method): forward mode applied to
torchzygote's generated gradient code, one pass per input element; ``method="reverse"`` is
reverse over reverse. A failure raises: the method changes only when the caller asks, so a
result never depends on which path ran.
"""
from __future__ import annotations

import numbers
from typing import Any, Callable, Tuple

import torch

from .api import gradient, pullback
from .errors import TorchZygoteError
from .forward import jvp

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

__all__ = ["jacobian", "hessian", "diaghessian", "hvp"]


def _shape(v) -> Tuple[int, ...]:
    if isinstance(v, torch.Tensor):
        return tuple(v.shape)
    if np is not None and isinstance(v, np.ndarray):
        return tuple(v.shape)
    if isinstance(v, numbers.Number):
        return ()
    raise TorchZygoteError(f"jacobian needs numbers, tensors or numpy arrays, got {type(v).__name__}")


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _seed(y, i):
    """The i-th unit cotangent for output ``y``."""
    if isinstance(y, torch.Tensor):
        e = torch.zeros(y.numel(), dtype=y.dtype, device=y.device)
        e[i] = 1
        return e.reshape(y.shape)
    if np is not None and isinstance(y, np.ndarray):
        e = np.zeros(y.size, dtype=y.dtype if y.dtype.kind in "fc" else np.float64)
        e[i] = 1
        return e.reshape(y.shape)
    return type(y)(1) if not isinstance(y, bool) else 1.0


def _ref(x, y):
    """dtype and device of a jacobian block for input ``x``, output ``y``."""
    for v in (x, y):
        if isinstance(v, torch.Tensor) and (v.dtype.is_floating_point or v.dtype.is_complex):
            return v.dtype, v.device
    if isinstance(x, torch.Tensor):
        return torch.get_default_dtype(), x.device
    if isinstance(y, torch.Tensor):
        return torch.get_default_dtype(), y.device
    return torch.float64, torch.device("cpu")


def _as_tensor(g, dtype, device):
    if g is None:
        return None
    if isinstance(g, torch.Tensor):
        return g.to(dtype=dtype, device=device)
    return torch.as_tensor(g, dtype=dtype, device=device)


def jacobian(f: Callable, *args, mode: str = "reverse") -> Tuple[Any, ...]:
    """The jacobian of ``f`` at ``args``: one block per argument, shaped
    ``output.shape + arg.shape`` (like ``torch.autograd.functional.jacobian``);
    ``None`` for arguments that are not numbers, tensors or arrays (a tuple, list or dict
    holding some is refused: pass them as arguments); for a tuple or list of outputs, one
    such tuple per output. Blocks are
    tensors, or numpy arrays when both the output and the argument are arrays
    (numbers when both are numbers).

    ``mode``: ``"reverse"`` (a pullback call per output element), ``"forward"`` (a forward-mode
    pass per input element), or ``"auto"``: forward where the inputs have fewer elements than the
    output (a plain call of ``f`` first tells the output's size)."""
    for a in args:
        _is_value(a)   # (a structure holding values is refused before anything runs)
    if mode == "auto":
        y = f(*args)
        ys = y if isinstance(y, (tuple, list)) else (y,)
        n_out = sum(_numel(_shape(v)) for v in ys)
        n_in = sum(_numel(_shape(a)) for a in args if _is_value(a))
        mode = "forward" if n_in < n_out and not any(_is_complex(a) for a in args) else "reverse"
    if mode == "forward":
        if any(_is_complex(a) for a in args):
            raise TorchZygoteError(
                "jacobian(mode='forward') of a complex argument: one tangent per element finds only a "
                "holomorphic function's derivative (it would drop the rest, as for z.imag or abs(z)). Use "
                "mode='reverse', whose blocks are torch.autograd.functional.jacobian's, or differentiate "
                "with respect to the real and imaginary parts as real arguments")
        return _forward_jacobian(f, args)
    if mode != "reverse":
        raise TorchZygoteError(f"jacobian: unknown mode {mode!r}; use 'forward', 'reverse' or 'auto'")
    y, back = pullback(f, *args)
    if isinstance(y, (tuple, list)):  # several outputs: one tuple of blocks each, from one forward pass
        def seed_for(j):
            def seed(i):
                dy = [None] * len(y)
                dy[j] = _seed(y[j], i)
                return type(y)(dy)
            return seed
        return tuple(_blocks(y[j], args, back, seed_for(j)) for j in range(len(y)))
    return _blocks(y, args, back, lambda i: _seed(y, i))


def _blocks(y, args, back, seed):
    yshape = _shape(y)
    m = _numel(yshape)
    rows = [[] for _ in args]
    for i in range(m):
        g = back(seed(i))
        for k, (a, gk) in enumerate(zip(args, g)):
            rows[k].append(gk)
    out = []
    for a, rs in zip(args, rows):
        out.append(_assemble(y, a, yshape, _shape(a), rs) if _is_value(a) else None)
    return tuple(out)


def _assemble(y, a, yshape, ashape, rs):
    numpy_out = np is not None and isinstance(y, np.ndarray) and isinstance(a, np.ndarray) or \
        np is not None and isinstance(y, np.ndarray) and isinstance(a, numbers.Number) or \
        np is not None and isinstance(a, np.ndarray) and isinstance(y, numbers.Number)
    if isinstance(y, numbers.Number) and isinstance(a, numbers.Number):
        g = rs[0]
        return 0.0 if g is None else (g.item() if isinstance(g, torch.Tensor) else g)
    if numpy_out:
        blocks = [np.zeros(ashape) if g is None else np.asarray(
            g.detach().cpu().numpy() if isinstance(g, torch.Tensor) else g, dtype=float).reshape(ashape) for g in rs]
        return np.stack(blocks).reshape(yshape + ashape) if blocks else np.zeros(yshape + ashape)
    dtype, device = _ref(a, y)
    blocks = []
    for g in rs:
        if g is None:
            blocks.append(torch.zeros(ashape, dtype=dtype, device=device))
        else:
            blocks.append(_as_tensor(g, dtype, device).reshape(ashape))
    if not blocks:
        return torch.zeros(yshape + ashape, dtype=dtype, device=device)
    return torch.stack(blocks).reshape(yshape + ashape)


def _is_value(a) -> bool:
    """Whether ``a`` gets a jacobian block: a number, tensor or array. A structure holding such
    values is refused (Zygote gives it ``nothing``, which reads as "no dependence"); anything
    else (a string, a function, a module) gets None."""
    try:
        _shape(a)
        return True
    except TorchZygoteError:
        if _holds_values(a):
            raise TorchZygoteError(
                f"jacobian and hessian take numbers, tensors or arrays as the arguments they differentiate; "
                f"got a {type(a).__name__} holding some. Pass its values as arguments of their own: "
                f"jacobian(lambda a, b: f((a, b)), a, b)") from None
        return False


def _is_complex(a) -> bool:
    return isinstance(a, complex) or isinstance(a, torch.Tensor) and a.is_complex() or \
        np is not None and isinstance(a, (np.ndarray, np.complexfloating)) and np.iscomplexobj(a)


def _holds_values(a) -> bool:
    """Whether a tuple, list or dict holds a value a jacobian would differentiate (not an int or a
    bool: a shape, a count, a flag)."""
    items = a if isinstance(a, (tuple, list)) else a.values() if isinstance(a, dict) else ()
    return any(_holds_values(v) if isinstance(v, (tuple, list, dict)) else
               _is_value(v) and not isinstance(v, (int, bool)) for v in items)


def _unit(a, i):
    """The i-th unit tangent for argument ``a``."""
    if isinstance(a, numbers.Number):
        return type(a)(1) if isinstance(a, (float, complex)) else 1.0
    return _seed(a, i)


def _forward_jacobian(f, args):
    """Columns by forward mode: one pass per element of each argument (a number: one pass)."""
    cols = [[] for _ in args]
    y = None
    for k, a in enumerate(args):
        if not _is_value(a):
            continue
        for i in range(_numel(_shape(a))):
            tangents = [None] * len(args)
            tangents[k] = _unit(a, i)
            y, t = jvp(f, args, tangents)
            cols[k].append(t)
    if y is None:
        y = f(*args)
    if isinstance(y, (tuple, list)):
        return tuple(_forward_blocks(y[j], args, [[c[j] for c in ck] for ck in cols]) for j in range(len(y)))
    return _forward_blocks(y, args, cols)


def _forward_blocks(y, args, cols):
    """Blocks ``y.shape + a.shape`` from each argument's columns (a column per input element)."""
    out = []
    yshape = _shape(y)
    for a, cs in zip(args, cols):
        if not _is_value(a):
            out.append(None)
            continue
        ashape = _shape(a)
        if isinstance(y, numbers.Number) and isinstance(a, numbers.Number):
            c = cs[0]
            out.append(c.item() if isinstance(c, torch.Tensor) else c)
            continue
        if np is not None and (isinstance(y, np.ndarray) or isinstance(a, np.ndarray)) and \
                not isinstance(y, torch.Tensor) and not isinstance(a, torch.Tensor):
            J = np.stack([np.asarray(c, dtype=float).reshape(yshape) for c in cs], axis=-1) if cs else \
                np.zeros(yshape + (0,))
            out.append(J.reshape(yshape + ashape))
            continue
        dtype, device = _ref(a, y)
        cs = [_as_tensor(c, dtype, device).reshape(yshape) for c in cs]
        J = torch.stack(cs, dim=-1) if cs else torch.zeros(yshape + (0,), dtype=dtype, device=device)
        out.append(J.reshape(yshape + ashape))
    return tuple(out)


def _grad_of(f):
    def g(x):
        return gradient(f, x)[0]
    return g


def hvp(f: Callable, x, v) -> Any:
    """The hessian of a scalar ``f`` at ``x`` times ``v``, by forward mode over torchzygote's
    gradient: the cost of a few gradient evaluations, without forming the hessian."""
    return jvp(_grad_of(f), (x,), (v,))[1]


def hessian(f: Callable, x, method: str = "forward") -> Any:
    """The hessian of a scalar ``f`` at ``x`` (shape ``x.shape + x.shape``).

    ``method="forward"`` (the default) is forward over reverse (Zygote's): forward mode applied to
    the generated gradient code, one pass per element of ``x``. ``method="reverse"`` is reverse
    over reverse: the generated gradient code is differentiated again in reverse mode. Where the
    chosen method is not possible it raises (it never switches method by itself).
    ``method="torch"`` asks ``torch.autograd.functional.hessian`` instead (``f`` must then be
    torch-traceable)."""
    if _is_complex(x) and method in ("forward", "reverse"):
        raise TorchZygoteError(
            "hessian of a complex argument: the second derivative of a real function of z is a real "
            "matrix of four blocks (real and imaginary parts), not one complex block; differentiate with "
            "respect to z.real and z.imag as real tensors (hessian(lambda v: f(torch.complex(v[0], v[1])), "
            "torch.stack([z.real, z.imag])))")
    if method == "forward":
        (H,) = jacobian(_grad_of(f), x, mode="forward")
        return H
    if method == "reverse":
        (H,) = jacobian(_grad_of(f), x)
        return H
    if method == "torch":
        if not isinstance(x, torch.Tensor):
            raise TorchZygoteError("hessian(..., method='torch') needs a tensor argument")
        return torch.autograd.functional.hessian(lambda t: _as_scalar(f(t)), x.detach()).detach()
    raise TorchZygoteError(f"hessian: unknown method {method!r}; use 'forward', 'reverse' or 'torch'")


def _as_scalar(v):
    return v if isinstance(v, torch.Tensor) else torch.as_tensor(v)


def diaghessian(f: Callable, *args, method: str = "forward") -> Tuple[Any, ...]:
    """The diagonal of the hessian of a scalar ``f`` for each argument, shaped
    like the argument (Zygote's ``diaghessian``); ``method`` as for ``hessian``."""
    out = []
    for k, a in enumerate(args):
        def fk(x, k=k):
            full = list(args)
            full[k] = x
            return f(*full)
        H = hessian(fk, a, method=method)
        if isinstance(a, numbers.Number):
            out.append(H if not isinstance(H, torch.Tensor) else H.item())
            continue
        n = _numel(_shape(a))
        if np is not None and isinstance(H, np.ndarray):
            out.append(np.diagonal(H.reshape(n, n)).reshape(_shape(a)).copy())
        else:
            out.append(H.reshape(n, n).diagonal().reshape(_shape(a)).clone())
    return tuple(out)
