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

import os
import random
import threading
from typing import Any, Callable, Optional

from . import api
from .values.algebra import seed as _seed
from .check_compare import GradientCheckWarning, _Checker
from .check_leaves import _random_like, _rng_state, _snapshot
from .errors import GradientError, GradientMismatchError

__all__ = ["gradcheck", "set_check", "GradientCheckWarning"]


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


if _env_on():
    set_check(True)
