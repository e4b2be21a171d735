"""Checking gradients against central differences: ``gradcheck`` and the debugging switch.

``gradcheck(f, *args)`` compares torchzygote's gradient (or, for a non-scalar output, its
pullback of a random cotangent ``dy``) with central differences of ``f`` along a few
random directions ``v`` through all the arguments' numbers at once: ``<grad, v>`` against
``(f(x + hv) - f(x - hv)) / 2h``, evaluated in float64, at two step sizes (``h`` and
``10h``) so that a function that is not smooth at ``x`` is told apart from a wrong
gradient. On disagreement it raises ``GradientMismatchError`` with both numbers, and the
same comparison for each argument (or each number, tensor or array inside a structure)
alone, so the report says where they differ.

The switch (``TORCHZYGOTE_CHECK=1`` in the environment when torchzygote is imported, or
``set_check(True)``) makes every top-level ``gradient``, ``withgradient`` and ``pullback``
check itself this way (a pullback when it is called, with the given ``dy``); gradients
taken inside differentiated code, and inside the functions a check evaluates, are not
checked again. When the switch is off, ``gradient`` pays one global test.
"""
from __future__ import annotations

import math
import numbers
import os
import random
import threading
import warnings
from typing import Any, Callable, Optional

import torch

from . import api
from .values.algebra import seed as _seed
from .values.record import Record
from .errors import GradientError, GradientMismatchError

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

__all__ = ["gradcheck", "set_check", "GradientCheckWarning"]


class GradientCheckWarning(UserWarning):
    """A gradient check could not decide: ``f`` is not smooth (or raised) near ``x``."""


def set_check(on: bool = True) -> None:
    """Make every top-level ``gradient``/``withgradient``/``pullback`` call check its result
    against central differences (raising ``GradientMismatchError``), or stop doing so.
    ``TORCHZYGOTE_CHECK=1`` in the environment turns it on at import. Slow: a debugging aid."""
    api.CHECK = checked if on else None   # api calls it (api does not import this module)


def _env_on() -> bool:
    return os.environ.get("TORCHZYGOTE_CHECK", "").strip().lower() not in ("", "0", "false", "no", "off")


_state = threading.local()   # .busy: a check (or the gradient it checks) is running in this thread


def _busy() -> bool:
    return getattr(_state, "busy", False)


# ---------------------------------------------------------------- public entry point

def gradcheck(f: Callable, *args, kwargs: Optional[dict] = None, dy: Any = None, directions: int = 3,
              rtol: Optional[float] = None, atol: float = 1e-8, seed: int = 0,
              raise_exception: bool = True) -> bool:
    """Check torchzygote's gradient of ``f`` at ``args`` against central differences.

    ``args`` may be numbers, tensors, numpy arrays, and tuples, lists and dicts of them
    (other objects are passed as they are, and not checked); ``kwargs`` are ``f``'s keyword
    arguments (constants). For a scalar output the gradient is checked; otherwise the
    pullback of ``dy`` (random when not given). Compares ``<grad, v>`` with
    ``(f(x+hv) - f(x-hv)) / 2h`` in float64 along ``directions`` random unit directions
    ``v`` (from ``seed``), at steps ``h`` and ``10h``. ``rtol`` defaults to 1e-5 for float64
    arguments, 1e-3 for float32 and 5e-2 for half precision. Returns True, or raises
    ``GradientMismatchError`` with a report (returns False if ``raise_exception=False``).
    A direction along which ``f`` is not smooth (or raises) is skipped with a
    ``GradientCheckWarning``."""
    if any(type(a) is api.Params for a in args):
        code = getattr(f, "__code__", None)
        raise GradientError("gradcheck checks gradients with respect to arguments, not Params: "
                            "pass the tensors as arguments",
                            (code.co_filename, code.co_firstlineno) if code is not None else None)
    kwargs = kwargs or {}
    prev = _busy()
    _state.busy = True
    try:
        snap, rng0 = _snapshot(args), _rng_state()
        y, back = api.pullback(f, *args, **kwargs)
        if dy is None:
            try:
                dy = _seed(y)
            except GradientError:
                dy = _random_like(y, random.Random(seed + 7919))
        g = back(dy)
        checker = _Checker(f, snap, kwargs, rng0, "gradcheck", directions, rtol, atol, seed)
        try:
            checker.check(dy, g)
        except GradientMismatchError:
            if raise_exception:
                raise
            return False
        return True
    finally:
        _state.busy = prev


# ---------------------------------------------------------------- the switch (called from api.py)

def checked(which: Callable, f: Callable, args: tuple, kwargs: dict):
    """``gradient`` or ``pullback`` (``which``) of ``f`` at ``args``, checked; plain when
    called while a check runs in this thread (nested use)."""
    key = api._key(f)
    if which is api.gradient:
        if _busy():
            return api._quiet(key, api._gradient, f, args, kwargs)
        _state.busy = True
        try:
            snap, rng0 = _snapshot(args), _rng_state()
            ctx = api.Context()
            y, back = api._quiet(key, api._call, ctx, f, args, kwargs)
            dy = 1.0 if type(y) is float else _seed(y)
            g = api._quiet(key, api._run_back, ctx, back, dy, args)
            _Checker(f, snap, kwargs, rng0, "gradient").check(dy, g)
            return g
        finally:
            _state.busy = False
    ctx = api.Context()
    if _busy():
        y, back = api._quiet(key, api._call, ctx, f, args, kwargs)
        return y, lambda dy: api._quiet(key, api._run_back, ctx, back, dy, args, y)
    _state.busy = True
    try:
        checker = _Checker(f, _snapshot(args), kwargs, _rng_state(), "pullback")
        y, back = api._quiet(key, api._call, ctx, f, args, kwargs)
    finally:
        _state.busy = False

    def checked_back(dy):
        if _busy():
            return api._quiet(key, api._run_back, ctx, back, dy, args, y)
        _state.busy = True
        try:
            g = api._quiet(key, api._run_back, ctx, back, dy, args, y)
            checker.check(dy, g)
            return g
        finally:
            _state.busy = False
    return y, checked_back


# ---------------------------------------------------------------- structures

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


# ---------------------------------------------------------------- the comparison

class _Checker:
    """Central differences of ``f`` around the argument snapshot ``args``, compared with
    gradients. Function values along each direction are computed once (on the first
    check) and reused for later cotangents of the same pullback."""

    def __init__(self, f, args, kwargs, rng, who, directions=3, rtol=None, atol=1e-8, seed=0):
        self.f, self.args, self.kwargs, self.rng = f, args, kwargs or {}, rng
        self.who, self.directions, self.rtol, self.atol, self.seed = who, directions, rtol, atol, seed
        self.plan = None     # (leaves, directions [(deltas, v-by-leaf)], h, eps_out)
        self.values = {}     # (direction index or leaf path, sign, step) -> f's value

    # -- evaluating f
    def _eval(self, deltas, h):
        _set_rng_state(self.rng)   # random numbers f draws are the same in every evaluation
        return self.f(*_at(self.args, deltas, h), **self.kwargs)

    def _value(self, key, deltas, h, sign):
        k = (key, sign, h)
        if k not in self.values:
            self.values[k] = self._eval(deltas, sign * h)
        return self.values[k]

    def _prepare(self, g):
        leaves = []
        try:
            for i, a in enumerate(self.args):
                _leaves(a, g[i] if g is not None and i < len(g) else None, (i,), leaves)
        except _StructureError as e:
            self._fail_structure(str(e))
        rng = random.Random(self.seed)
        dirs = []
        for _ in range(self.directions):
            v = {p: _random_like(x, rng) for p, x, _ in leaves}
            n = math.sqrt(sum(_norm2(d) for d in v.values())) or 1.0
            dirs.append({p: _scale(d, 1.0 / n) for p, d in v.items()})
        s = max([1.0] + [_maxabs(x) for _, x, _ in leaves])
        y0 = self._eval({p: 0.0 for p, _, _ in leaves}, 0.0)   # float64 where f keeps it: sets the step
        eps = _eps_of(y0)
        self.plan = (leaves, dirs, s, eps)

    def check(self, dy, g) -> None:
        now = _rng_state()
        try:
            self._check(dy, g)
        finally:
            _set_rng_state(now)

    def _check(self, dy, g):
        if self.plan is None:
            self._prepare(g)
        leaves, dirs, s, eps = self.plan
        if not leaves:
            return
        if not isinstance(g, (tuple, list)) or len(g) != len(self.args):
            self._fail_structure(f"{type(g).__name__} of length {len(g) if hasattr(g, '__len__') else '?'} "
                                 f"for {len(self.args)} arguments")
        grads = self._leaf_grads(g, leaves)
        eps_g = max([2.2e-16] + [_eps_of(x) for _, x, _ in leaves])
        rtol = self.rtol if self.rtol is not None else \
            1e-5 if eps_g < 1e-10 else 1e-3 if eps_g < 1e-6 else 5e-2
        h = eps ** (1 / 3) * s
        undecided = []
        for j, deltas in enumerate(dirs):
            res = self._compare(("dir", j), deltas, grads, dy, h, rtol, eps, eps_g)
            if res is None:
                continue
            if res[0] == "undecided":
                undecided.append((j, res[1]))
                continue
            self._fail(j, deltas, res[1], dy, grads, h, rtol, eps, eps_g)
        for j, why in undecided:
            warnings.warn(f"torchzygote {self.who} of {self._name()}: could not check direction {j + 1} of "
                          f"{len(dirs)}: {why}", GradientCheckWarning, stacklevel=4)

    def _leaf_grads(self, g, leaves):
        out = []
        try:
            for i, a in enumerate(self.args):
                _leaves(a, g[i], (i,), out)
        except _StructureError as e:
            self._fail_structure(str(e))
        by_path = {p: gl for p, _, gl in out}
        return {p: by_path.get(p) for p, _, _ in leaves}

    def _compare(self, key, deltas, grads, dy, h, rtol, eps, eps_g):
        """None (they agree), ('undecided', why) or ('differ', numbers)."""
        ad = mag = 0.0
        for p, d in deltas.items():
            try:
                ad += _dot(grads[p], d)
                mag += _dot(grads[p], d, absolute=True)
            except _StructureError as e:
                self._fail_structure(f"{self._argname(p)}: {e}")
        fds, noise, vals = [], [], []
        for step in (h, 10 * h):
            try:
                yp = self._value(key, deltas, step, 1)
                ym = self._value(key, deltas, step, -1)
            except Exception as e:   # f is not defined there (a domain edge): no verdict
                return "undecided", f"f raised {type(e).__name__}: {e} at x +- {step:.3g} v"
            if dy is None:
                vp, vm, ap, am = _dot(1.0, yp), _dot(1.0, ym), _maxabs(yp), _maxabs(ym)
            else:
                vp, vm = _dot(dy, yp), _dot(dy, ym)
                ap, am = _dot(dy, yp, absolute=True), _dot(dy, ym, absolute=True)
            fds.append((vp - vm) / (2 * step))
            vals.append((vp, vm))
            noise.append(50 * eps * (ap + am) / (2 * step))
        fd, fd10 = fds
        spread = abs(fd10 - fd)
        tol = rtol * max(abs(ad), abs(fd)) + self.atol + noise[0] + spread / 99 + 100 * eps_g * mag
        numbers_ = dict(ad=ad, fd=fd, fd10=fd10, h=h, tol=tol)
        if not (abs(ad - fd) <= tol):   # also NaN
            smooth = spread <= rtol * max(abs(fd), abs(fd10)) + self.atol + noise[0] + noise[1] + \
                1e-3 * max(abs(fd), abs(fd10))
            if smooth and all(map(math.isfinite, fds)):   # a kink at x itself: one-sided slopes differ
                try:
                    y0 = self._value(("zero",), {p: 0.0 for p in deltas}, 0.0, 1)
                except Exception:
                    y0 = None
                if y0 is not None:
                    v0 = _dot(1.0 if dy is None else dy, y0)
                    sides = [abs((vp - v0) / step - (v0 - vm) / step) for (vp, vm), step in zip(vals, (h, 10 * h))]
                    smooth = not (sides[0] > 0.5 * sides[1] and sides[0] > tol)
            if not smooth or not all(map(math.isfinite, fds)):
                return "undecided", (f"f is not smooth there (central differences {_fmt(fd)} with step "
                                     f"{h:.3g} and {_fmt(fd10)} with step {10 * h:.3g}; torchzygote "
                                     f"{_fmt(ad)})")
            return "differ", numbers_
        return None

    # -- reports
    def _name(self) -> str:
        name = getattr(self.f, "__qualname__", None) or type(self.f).__name__
        code = getattr(self.f, "__code__", None)
        where = f" ({code.co_filename}:{code.co_firstlineno})" if code is not None else ""
        return f"{name!r}{where}"

    def _argname(self, path) -> str:
        code = getattr(self.f, "__code__", None)
        i = path[0]
        name = ""
        if code is not None and i < code.co_argcount:
            name = f" {code.co_varnames[i]!r}"
        return f"argument {i}{name}" + "".join(f"[{k!r}]" for k in path[1:])

    def _what(self):
        return ("what to do: if f (or a function it calls) has a custom rule (tz.adjoint), check that "
                "rule's pullback. Code that changes gradients on purpose (tz.hook, tz.dropgrad, tz.nograd, "
                "tz.ignore, `with torch.no_grad():`, .detach()) differs from central differences by design. "
                "Otherwise this is a torchzygote bug: please report it with this message and f")

    def _fail(self, j, deltas, nums, dy, grads, h, rtol, eps, eps_g):
        leaves = self.plan[0]
        if dy is None or self.who == "gradient" or self.who == "gradcheck" and _is_seed(dy):
            lhs, rhs = "<gradient, v>", "(f(x + h v) - f(x - h v)) / 2h"
        else:
            lhs, rhs = "<pullback(dy), v>", "<dy, f(x + h v) - f(x - h v)> / 2h"
        lines = [f"torchzygote's {self.who} of {self._name()} disagrees with central differences",
                 f"along random direction {j + 1} of {len(self.plan[1])} (unit length, seed {self.seed}):",
                 f"  {lhs:<40} = {_fmt(nums['ad'])}",
                 f"  {rhs:<40} = {_fmt(nums['fd'])}   (h = {nums['h']:.3g})",
                 f"  {'the same with step 10h':<40} = {_fmt(nums['fd10'])}",
                 f"  difference {abs(nums['ad'] - nums['fd']):.3g}, tolerance {nums['tol']:.3g} (rtol {rtol:g})",
                 "each argument alone (a number: its partial derivative; a tensor or array: along its part of v):"]
        groups = [(p, {p: deltas[p]}) for p, _, _ in leaves] if len(leaves) <= 32 else \
            [((i,), {p: d for p, d in deltas.items() if p[0] == i}) for i in sorted({p[0] for p in deltas})]
        rng = random.Random(self.seed + 1)
        for path, part in groups:
            if len(part) == 1:   # a leaf: numbers along 1, tensors along a fresh unit direction
                (p, d), = part.items()
                x = next(x for q, x, _ in leaves if q == p)
                if isinstance(x, numbers.Number):
                    d = 1.0 if not isinstance(x, complex) else d / abs(d)
                else:
                    d = d / math.sqrt(_norm2(d) or 1.0)
                part = {p: d}
                desc = _describe(x)
            else:
                desc = _describe(self.args[path[0]])
                n = math.sqrt(sum(_norm2(d) for d in part.values())) or 1.0
                part = {p: d / n for p, d in part.items()}
            res = self._compare(("part", path), part, grads, dy, h, rtol, eps, eps_g)
            if res is None:
                verdict = "agree"
                r = self._numbers_of(("part", path), part, grads, dy, h)
            elif res[0] == "undecided":
                verdict, r = "undecided: " + res[1], None
            else:
                verdict, r = "DIFFER", res[1]
            nums_txt = f": torchzygote {_fmt(r['ad'])}, central difference {_fmt(r['fd'])}" if r else ""
            lines.append(f"  {self._argname(path)} ({desc}){nums_txt}   <- {verdict}")
        lines.append(self._what())
        raise GradientMismatchError("\n".join(lines))

    def _numbers_of(self, key, part, grads, dy, h):
        ad = sum(_dot(grads[p], d) for p, d in part.items())
        yp, ym = self._value(key, part, h, 1), self._value(key, part, h, -1)
        a = 1.0 if dy is None else dy
        return dict(ad=ad, fd=(_dot(a, yp) - _dot(a, ym)) / (2 * h))

    def _fail_structure(self, what):
        raise GradientMismatchError(
            f"torchzygote's {self.who} of {self._name()} does not have the structure of its arguments: "
            f"{what}\n{self._what()}")


def _is_seed(dy) -> bool:
    try:
        return isinstance(dy, numbers.Number) and dy == 1 or isinstance(dy, torch.Tensor) and \
            dy.numel() == 1 and float(dy) == 1.0
    except Exception:
        return False


if _env_on():
    set_check(True)
