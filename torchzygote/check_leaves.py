"""The arguments of a gradient check as leaves: walking tuples, lists and dicts to the numbers,
tensors and arrays inside them, copying and perturbing them, random directions through them,
inner products of gradients with directions, and the precision and random state a check needs."""
from __future__ import annotations

import numbers
import random

import torch

from .values.record import Record

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None


def _is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, numbers.Integral)


def _float_tensor(x) -> bool:
    return isinstance(x, torch.Tensor) and (x.dtype.is_floating_point or x.dtype.is_complex)


def _float_array(x) -> bool:
    return np is not None and isinstance(x, np.ndarray) and x.dtype.kind in "fc"


def _children(x):
    """``(key, child)`` pairs of a tuple, list or dict, else None."""
    if isinstance(x, tuple):
        fields = getattr(type(x), "_fields", None)
        return [(fields[i] if fields and i < len(fields) else i, v) for i, v in enumerate(x)]
    if isinstance(x, list):
        return list(enumerate(x))
    if isinstance(x, dict):
        return list(x.items())
    return None


def _rebuild(x, kids):
    """``x``'s structure with new children (in ``_children`` order)."""
    if isinstance(x, tuple):
        return type(x)(*kids) if hasattr(type(x), "_fields") else type(x)(kids)
    if isinstance(x, list):
        return list(kids)
    out = dict(zip(x.keys(), kids))
    if type(x) is not dict:
        try:
            d = x.copy()
            d.update(out)
            return d
        except Exception:
            pass
    return out


def _sub(g, key, index):
    """The gradient of a structure's child (``key``: index, field name or dict key)."""
    if g is None:
        return None
    if isinstance(g, Record):
        return g._fields.get(key) if isinstance(key, str) else list(g.values())[index] \
            if index < len(g) else None
    if isinstance(g, dict):
        return g.get(key)
    if isinstance(g, (tuple, list)):
        return g[index] if index < len(g) else None
    raise _StructureError(f"a {type(g).__name__} where the gradient of a structure was expected")


class _StructureError(Exception):
    pass


def _leaves(x, g, path, out):
    """``(path, value, gradient)`` of every number, float tensor and float array in ``x``."""
    kids = _children(x)
    if kids is not None:
        for i, (k, v) in enumerate(kids):
            _leaves(v, _sub(g, k, i), path + (k,), out)
    elif _is_real(x) or isinstance(x, complex) or _float_tensor(x) or _float_array(x) or \
            (isinstance(x, numbers.Integral) and not isinstance(x, bool) and g is not None):
        out.append((path, x, g))


def _snapshot(args):
    """A copy of the arguments as they are now (``f`` may mutate them): new containers,
    tensors and arrays copied; other objects shared."""
    def copy(x):
        kids = _children(x)
        if kids is not None:
            return _rebuild(x, [copy(v) for _, v in kids])
        if isinstance(x, torch.Tensor):
            return x.detach().clone()
        if np is not None and isinstance(x, np.ndarray):
            return x.copy()
        return x
    return tuple(copy(a) for a in args)


def _at(args, deltas: dict, h: float):
    """The arguments (fresh copies) with each leaf at ``path`` moved by ``h * deltas[path]``,
    perturbed leaves in float64 (complex128)."""
    def go(x, path):
        kids = _children(x)
        if kids is not None:
            return _rebuild(x, [go(v, path + (k,)) for k, v in kids])
        d = deltas.get(path)
        if isinstance(x, torch.Tensor):
            if d is None:
                return x.clone()
            t = x.to(torch.complex128 if x.dtype.is_complex else torch.float64)
            return t + h * d
        if np is not None and isinstance(x, np.ndarray):
            if d is None:
                return x.copy()
            return x.astype(np.complex128 if x.dtype.kind == "c" else np.float64) + h * d
        if d is None:
            return x
        return (complex(x) if isinstance(x, complex) else float(x)) + h * d
    return tuple(go(a, (i,)) for i, a in enumerate(args))


def _random_like(x, rng: random.Random, unit=False):
    """A random direction shaped like leaf ``x`` (float64 / complex128)."""
    if isinstance(x, torch.Tensor):
        gen = torch.Generator().manual_seed(rng.getrandbits(62))
        dt = torch.complex128 if x.dtype.is_complex else torch.float64
        return torch.randn(tuple(x.shape), generator=gen, dtype=dt).to(x.device)
    if np is not None and isinstance(x, np.ndarray):
        gen = torch.Generator().manual_seed(rng.getrandbits(62))
        dt = torch.complex128 if x.dtype.kind == "c" else torch.float64
        return torch.randn(x.shape, generator=gen, dtype=dt).numpy()
    if isinstance(x, complex):
        return complex(rng.gauss(0, 1), rng.gauss(0, 1))
    if isinstance(x, numbers.Number) and not isinstance(x, bool):
        return 1.0 if unit else rng.gauss(0, 1)
    kids = _children(x)
    if kids is not None:
        return _rebuild(x, [_random_like(v, rng) for _, v in kids])
    return None


def _norm2(d) -> float:
    if isinstance(d, torch.Tensor):
        return float(d.abs().pow(2).sum())
    if np is not None and isinstance(d, np.ndarray):
        return float((np.abs(d) ** 2).sum())
    return abs(d) ** 2


def _scale(d, c):
    return d * c


def _maxabs(x) -> float:
    if isinstance(x, torch.Tensor):
        return float(x.detach().abs().max()) if x.numel() else 0.0
    if np is not None and isinstance(x, np.ndarray):
        return float(np.abs(x).max()) if x.size else 0.0
    try:
        return abs(complex(x))
    except (TypeError, ValueError, OverflowError):
        return 0.0


def _num(v):
    """A tensor, array or number as a float64 / complex128 tensor (for inner products)."""
    if isinstance(v, torch.Tensor):
        return v.detach().to(torch.complex128 if v.dtype.is_complex else torch.float64).cpu()
    if np is not None and isinstance(v, (np.ndarray, np.generic)):
        return torch.from_numpy(np.asarray(v, dtype=np.complex128 if np.iscomplexobj(v) else np.float64))
    if isinstance(v, complex):
        return torch.tensor(v, dtype=torch.complex128)
    return torch.tensor(float(v), dtype=torch.float64)


def _dot(a, b, absolute=False) -> float:
    """``Re sum conj(a) * b`` over matching leaves of two structures (``None``: zero);
    with ``absolute``, ``sum |a| |b|``."""
    if a is None or b is None:
        return 0.0
    if isinstance(a, Record):
        return sum(_dot(v, _field(b, k), absolute) for k, v in a.items())
    ka = _children(a)
    if ka is not None:
        if isinstance(a, dict):
            if not isinstance(b, dict):
                return 0.0
            return sum(_dot(v, b.get(k), absolute) for k, v in a.items())
        kb = _children(b)
        if kb is None:
            return 0.0
        return sum(_dot(v, w, absolute) for (_, v), (_, w) in zip(ka, kb))
    if isinstance(a, (bool, str, bytes)) or isinstance(b, (bool, str, bytes)):
        return 0.0
    try:
        ta, tb = _num(a), _num(b)
    except (TypeError, ValueError, RuntimeError):
        return 0.0
    if ta.shape != tb.shape and ta.numel() != tb.numel():
        raise _StructureError(f"a gradient of shape {tuple(ta.shape)} for a value of shape {tuple(tb.shape)}")
    ta, tb = ta.reshape(-1), tb.reshape(-1)
    if absolute:
        return float((ta.abs() * tb.abs()).sum())
    return float(torch.real(ta.conj() * tb).sum())


def _field(x, k):
    if isinstance(x, Record):
        return x._fields.get(k)
    if isinstance(x, dict):
        return x.get(k)
    return getattr(x, k, None)


_EPS = {torch.float64: 2.2e-16, torch.complex128: 2.2e-16, torch.float32: 1.2e-7, torch.complex64: 1.2e-7,
        torch.float16: 9.8e-4, torch.bfloat16: 7.8e-3}


def _eps_of(x) -> float:
    """The machine epsilon of the least precise float in a structure."""
    eps = 2.2e-16
    kids = _children(x)
    if kids is not None:
        for _, v in kids:
            eps = max(eps, _eps_of(v))
    elif isinstance(x, torch.Tensor):
        eps = _EPS.get(x.dtype, 2.2e-16)
    elif np is not None and isinstance(x, (np.ndarray, np.generic)):
        eps = {4: 1.2e-7, 2: 9.8e-4}.get(x.dtype.itemsize if x.dtype.kind == "f" else
                                          x.dtype.itemsize // 2 if x.dtype.kind == "c" else 8, 2.2e-16)
    return eps


def _rng_state():
    st = [random.getstate(), torch.random.get_rng_state()]
    st.append(np.random.get_state() if np is not None else None)
    st.append(torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized()
              else None)
    return st


def _set_rng_state(st) -> None:
    random.setstate(st[0])
    torch.random.set_rng_state(st[1])
    if st[2] is not None:
        np.random.set_state(st[2])
    if st[3] is not None:
        torch.cuda.set_rng_state_all(st[3])


def _fmt(x) -> str:
    return f"{x:.12g}"


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"tensor of shape {tuple(x.shape)}, {str(x.dtype).replace('torch.', '')}"
    if np is not None and isinstance(x, np.ndarray):
        return f"numpy array of shape {x.shape}, {x.dtype}"
    return f"{type(x).__name__} {x!r}"
