"""Globals a transform bound as constants (functions, modules, classes, builtins), and the check
that running code does not rebind them under a transform that is still running.

The lift resolves such a global once (``names.load_global``) and the cache guards it at each
call. A callee that rebinds it (``global act; act = other``) while a function that bound it is
running leaves that function on the old value with no guard to see it; its later uses would
compute the old function's value and gradient. The rebinding is rare, so it pays for the check:
it walks the stack for generated code bound to that name."""
from __future__ import annotations

import sys
from typing import Dict, Tuple

from .. import errors

ABSENT = object()   # a guard's value for a name that must stay unbound (a module ``__getattr__``'s attribute)

# a generated forward's file name (its code's co_filename) -> {id(namespace): (namespace, {name: value bound})},
# the namespaces being module globals and the ``__dict__`` of modules whose attributes it bound
_BOUND: Dict[str, Dict[int, Tuple[dict, dict]]] = {}
_NAMES: set = set()   # (id(namespace), name) bound by any of them: most writes are of other names
_BY_VALUE = (int, float, complex, bool, str)   # what ``same`` compares by value


def same(a, b) -> bool:
    """Whether a module attribute's value ``a`` stands for constant ``b``: the same object, or an
    equal number or string (``cfg.dt = float(conf["dt"])`` makes a new float); floats by their
    text, which tells -0.0 from 0.0 and matches nan."""
    if a is b:
        return True
    t = type(b)
    if type(a) is not t or t not in _BY_VALUE:
        return False
    return repr(a) == repr(b) if t is float or t is complex else a == b


def note(filename: str, g: dict, guards: dict, source: str = "") -> None:
    """Generated code in ``filename`` bound the ``guards`` the lift resolved as constants (global
    names of ``g``, ``(module, attribute)`` pairs; closure cells need no check). Code made from
    generated code in ``source`` (nested AD) stands for that code too: it binds what it bound."""
    by: Dict[int, Tuple[dict, dict]] = {i: (d, dict(names)) for i, (d, names) in _BOUND.get(source, {}).items()}
    for k, v in guards.items():
        d, name = (g, k) if isinstance(k, str) else (k[0].__dict__, k[1]) if type(k) is tuple else (None, None)
        if d is not None:
            by.setdefault(id(d), (d, {}))[1][name] = v
            _NAMES.add((id(d), name))
    if by:
        _BOUND[filename] = by


def forget(filename: str) -> None:
    _BOUND.pop(filename, None)


def check_rebind(g: dict, name: str, v, what: str = "global") -> None:
    """Before ``g[name] = v`` (``g``: module globals, or a module's ``__dict__``): refused where
    generated code still running bound ``name`` to another value."""
    if (id(g), name) not in _NAMES or same(v, g.get(name, ABSENT)):
        return
    f = sys._getframe(1)
    while f is not None:
        b = _BOUND.get(f.f_code.co_filename)
        b = b.get(id(g)) if b is not None else None
        if b is not None and b[0] is g and not same(v, b[1].get(name, v)):
            file, lines = errors.GENERATED.get(f.f_code.co_filename, (None, {}))
            at = lines.get(f.f_lineno)
            raise errors.GradientError(
                f"the {what} {name!r} is rebound while a function that uses it is being differentiated "
                f"({f.f_code.co_filename.split(' ')[1]}): that function was transformed for the value it held "
                f"when its call began and would go on using it. Rebind {name!r} before the gradient call, or "
                f"pass the value as an argument", (file, at) if at is not None else None)
        f = f.f_back
