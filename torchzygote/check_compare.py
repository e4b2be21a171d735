"""The comparison of a gradient with central differences along random directions, and the
report that says, argument by argument, where they differ."""
from __future__ import annotations

import math
import numbers
import random
import warnings

import torch

from .check_leaves import (_StructureError, _at, _describe, _dot, _eps_of, _fmt, _leaves, _maxabs, _norm2,
                           _random_like, _rng_state, _scale, _set_rng_state)
from .errors import GradientMismatchError


class GradientCheckWarning(UserWarning):
    """A gradient check could not decide: ``f`` is not smooth (or raised) near ``x``."""


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
