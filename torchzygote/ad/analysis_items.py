"""Kinds of the items of dicts a function builds and keeps to itself: ``d = {"a": x}``,
``d["b"] = x * y``, then ``d["a"] * d["b"]`` multiplies two known numbers, inlined like
any arithmetic instead of dispatched at run time.

Only dicts no one else can see or change: every use of the dict (and of each new SSA name
a write gives it) reads or writes one item under a constant key; a dict that is passed on,
returned, merged at a branch or a loop, or read any other way keeps no item kinds."""
from __future__ import annotations

import operator
from typing import Callable, Dict, Optional, Set

from .. import ir
from ..frontend import ops
from ..ir import Const, Stmt, Var


class DictItems:
    def __init__(self, fn: ir.Function):
        self._private = _private_dicts(fn)
        self._items: Dict[int, Dict[object, str]] = {}   # private dict value -> key -> item kind

    def see(self, s: Stmt, kind: Callable) -> Optional[str]:
        """Note what ``s`` does to a private dict; the kind of the item it reads, if known."""
        f = s.fn.value if isinstance(s.fn, Const) else None
        if s.out is None or not (f is ops.build_dict or f is ops.setitem_v or f is operator.getitem):
            return None
        if f is ops.build_dict:
            if s.out.id in self._private:
                self._items[s.out.id] = {k.value: kind(v) for k, v in zip(s.args[::2], s.args[1::2])}
            return None
        obj = self._items.get(s.args[0].id) if s.args and isinstance(s.args[0], Var) else None
        if obj is None:
            return None
        if f is ops.setitem_v:
            self._items[s.out.id] = {**obj, s.args[1].value: kind(s.args[2])}
            return None
        return obj.get(s.args[1].value)


def _private_dicts(fn: ir.Function) -> Set[int]:
    """Dict values (built here) each of whose uses is an item read or write under a constant
    key, where a write's result is such a dict too."""
    reads: Dict[int, list] = {}   # value -> the statements that use it, None for a use elsewhere
    for node in ir.walk(fn.body):
        for op in ir.used_operands(node):
            if isinstance(op, Var):
                reads.setdefault(op.id, []).append(node if isinstance(node, Stmt) else None)
        for sub in ir.subregions(node):
            for op in sub.yields:
                if isinstance(op, Var):
                    reads.setdefault(op.id, []).append(None)
    for op in fn.body.yields:
        if isinstance(op, Var):
            reads.setdefault(op.id, []).append(None)
    built = [n.out.id for n in ir.walk(fn.body) if isinstance(n, Stmt) and n.out is not None
             and isinstance(n.fn, Const) and n.fn.value is ops.build_dict
             and all(_key(k) for k in n.args[::2])]
    private: Set[int] = set()

    def keeps(vid: int) -> bool:
        for s in reads.get(vid, ()):
            if s is None or not isinstance(s.fn, Const) or s.out is None or s.kwargs or s.star is not None \
                    or s.dstar is not None or not s.args or not isinstance(s.args[0], Var) \
                    or s.args[0].id != vid or any(isinstance(a, Var) and a.id == vid for a in s.args[1:]):
                return False
            if s.fn.value is operator.getitem and len(s.args) == 2 and _key(s.args[1]):
                continue
            if s.fn.value is ops.setitem_v and len(s.args) == 3 and _key(s.args[1]) and keeps(s.out.id):
                private.add(s.out.id)
                continue
            return False
        return True

    for vid in built:
        if keeps(vid):
            private.add(vid)
    return private


def _key(op) -> bool:
    """A constant key of a plain type (its hash and equality are Python's own)."""
    return isinstance(op, Const) and type(op.value) in (str, int, bool, float, type(None))
