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

# a generated forward's file name (its code's co_filename) -> {id(namespace): (namespace, names bound in it)},
# the namespaces being module globals and the ``__dict__`` of modules whose attributes it bound
_BOUND: Dict[str, Dict[int, Tuple[dict, frozenset]]] = {}


def note(filename: str, g: dict, guards: dict) -> None:
    """Generated code in ``filename`` bound the ``guards`` the lift resolved as constants (global
    names of ``g``, ``(module, attribute)`` pairs; closure cells need no check)."""
    by: Dict[int, Tuple[dict, set]] = {}
    for k in guards:
        d, name = (g, k) if isinstance(k, str) else (k[0].__dict__, k[1]) if type(k) is tuple else (None, None)
        if d is not None:
            by.setdefault(id(d), (d, set()))[1].add(name)
    if by:
        _BOUND[filename] = {i: (d, frozenset(names)) for i, (d, names) in by.items()}


def check_rebind(g: dict, name: str, v, what: str = "global") -> None:
    """Before ``g[name] = v`` (``g``: module globals, or a module's ``__dict__``): refused where
    generated code still running bound ``name`` to another value."""
    if g.get(name, ABSENT) is v or not _BOUND:
        return
    f = sys._getframe(1)
    while f is not None:
        b = _BOUND.get(f.f_code.co_filename)
        b = b.get(id(g)) if b is not None else None
        if b is not None and b[0] is g and name in b[1]:
            file, lines = errors.GENERATED.get(f.f_code.co_filename, (None, {}))
            at = lines.get(f.f_lineno)
            raise errors.GradientError(
                f"the {what} {name!r} is rebound while a function that uses it is being differentiated "
                f"({f.f_code.co_filename.split(' ')[1]}): that function was transformed for the value it held "
                f"when its call began and would go on using it. Rebind {name!r} before the gradient call, or "
                f"pass the value as an argument", (file, at) if at is not None else None)
        f = f.f_back
