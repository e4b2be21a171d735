"""Names of adjoints in generated pullbacks, after the user's variables: ``x`` gets ``dx``,
a temporary the operation that made it (``dmatmul``); a name taken already gets a suffix
(``dr_1``), in the order the pullback asks for them, so the text is deterministic. Every
adjoint name starts with ``d``: the other names of generated code are primal values
(``v5``), pullbacks (``B3``) and ``_``-prefixed globals and temporaries."""
from __future__ import annotations

import builtins
import keyword
import re
from typing import Dict, Hashable, Set

from .. import ir
from ..frontend import ops

_RESERVED = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | {"back", "fwd"}


class Names:
    """``adjoint(key)``: the pullback's name for the adjoint of value ``key`` (an int, a
    value's id) or of a piece the pullback keeps apart (a str: an item, a group of reads;
    ``("next", id)``: a loop parameter's adjoint carried to the previous trip)."""

    def __init__(self, fn: ir.Function):
        self._fn = fn
        self._vars: Dict[int, object] = {}   # value id -> its Var, or the statement computing it
        self._names: Dict[Hashable, str] = {}
        self._used: Set[str] = set()
        self._suffix: Dict[str, int] = {}   # base -> the last suffix given to it (all below are taken)

    def _base(self, vid: int) -> str:
        """The user's name of a value, or the operation that made it (looked up when the
        pullback first asks: most values get no adjoint)."""
        if not self._vars:
            self._vars = {v.id: v for v in ir.all_vars(self._fn)}
            self._vars.update((n.out.id, n) for n in ir.walk(self._fn.body)
                              if isinstance(n, ir.Stmt) and n.out is not None and not n.out.hint)
        x = self._vars.get(vid)
        if isinstance(x, ir.Stmt):
            return _ident(_op_name(x)) or "t"
        return (_ident(x.hint) if x is not None else "") or "t"

    def adjoint(self, key: Hashable) -> str:
        name = self._names.get(key)
        if name is None:
            if isinstance(key, int):
                base = "d" + self._base(key)
            elif isinstance(key, tuple):
                base = self.adjoint(key[1]) + "_" + key[0]
            else:
                base = f"d{key}"
            name, k = base, self._suffix.get(base, 0)
            if k:
                name = f"{base}_{k}"
            while name in self._used or name in _RESERVED:
                k += 1
                name = f"{base}_{k}"
            self._suffix[base] = k
            self._used.add(name)
            self._names[key] = name
        return name


_WORD = re.compile(r"\w+")


def words(text: str) -> Set[str]:
    """The names (and numbers) in generated text: ``name in words(t)`` is ``\\bname\\b``
    found in ``t``, without compiling a pattern per name (that was most of a long function's
    transform time)."""
    return set(_WORD.findall(text))


def _op_name(s: ir.Stmt) -> str:
    if not isinstance(s.fn, ir.Const):
        return ""
    if s.fn.value is ops.call_method and len(s.args) > 1 and isinstance(s.args[1], ir.Const):
        return str(s.args[1].value)
    return str(getattr(s.fn.value, "__name__", "") or "")


def _ident(hint: str) -> str:
    """A hint as part of a Python name (letters, digits and underscores, not leading)."""
    return re.sub(r"\W", "_", hint).strip("_")[:24]
