"""Scopes and pullback shapes: which region binds each value (values bound inside a loop are
saved once per trip), the reads of one tensor's items whose gradients are joined at once,
the items of an unpacked tuple, and whether the pullback is pure (no run-time dispatch, no
context): a pure pullback returns at once on a zero gradient."""
from __future__ import annotations

import operator
from typing import Dict, List, Optional, Set, Tuple

from .. import ir
from ..frontend import ops
from ..ir import Const, If, Loop, Stmt, Try, Var
from ..rules.registry import TABLE, TENSOR
from . import templates


class Scopes:
    """``value_region``: value -> id of the region that binds it; ``node_region``: id(node)
    -> id of the region holding it; ``in_loop``: ids of the regions inside a loop."""

    def __init__(self, fn: ir.Function):
        self.value_region: Dict[int, int] = {p.id: id(fn.body) for p in fn.params}
        self.node_region: Dict[int, int] = {}
        self.in_loop: Set[int] = set()
        self._scan(fn.body, False)

    def _scan(self, r: ir.Region, in_loop: bool) -> None:
        if in_loop:
            self.in_loop.add(id(r))
        for node in r.nodes:
            self.node_region[id(node)] = id(r)
            for v in ir.defined_vars(node):
                self.value_region[v.id] = id(r)
            for v, sub in ir.scoped_bindings(node):
                self.value_region[v.id] = id(sub)
            for sub in ir.subregions(node):
                self._scan(sub, in_loop or isinstance(node, Loop))


def find_gathers(fn: ir.Function, kind) -> Dict[int, tuple]:
    """Reads ``x[0]``, ``x[1]``... of one tensor in one region: their gradients are kept
    apart and joined by one ``stack`` (or one scatter), not a zeros-and-add per read.
    ``id(stmt) -> (tensor, index, keys of its group, first?, group name)``."""
    out: Dict[int, tuple] = {}
    for r in [fn.body] + [sub for node in ir.walk(fn.body) for sub in ir.subregions(node)]:
        groups: Dict[int, List[Stmt]] = {}
        for node in r.nodes:
            if isinstance(node, Stmt) and isinstance(node.fn, Const) and node.fn.value is operator.getitem \
                    and len(node.args) == 2 and isinstance(node.args[0], Var) \
                    and isinstance(node.args[1], Const) and type(node.args[1].value) is int \
                    and kind(node.args[0]) == TENSOR and node.out is not None:
                groups.setdefault(node.args[0].id, []).append(node)
        for reads in groups.values():
            if len(reads) > 1:
                keys = tuple(dict.fromkeys(st.args[1].value for st in reads))
                group = f"{reads[0].args[0].id}_{reads[0].out.id}"   # names of this group only
                for j, st in enumerate(reads):
                    out[id(st)] = (st.args[0], st.args[1].value, keys, j == 0, group)
    return out


def unpacked_item(s: Stmt, defs: Dict[int, Stmt], node_region: Dict[int, int]) -> Optional[Tuple[Var, int]]:
    """``(t, i)`` if ``s`` is ``t[i]`` right after ``t = unpack(seq, n)`` (tuple
    unpacking): such items' gradients are kept apart, then joined at the unpack."""
    if not (isinstance(s.fn, Const) and s.fn.value is operator.getitem and len(s.args) == 2):
        return None
    t, i = s.args
    d = defs.get(t.id) if isinstance(t, Var) else None
    if d is None or not (isinstance(d.fn, Const) and d.fn.value is ops.unpack) or \
            not (isinstance(i, Const) and type(i.value) is int) or \
            node_region.get(id(d)) != node_region.get(id(s)):
        return None
    return t, i.value


def pure_pullback(fn: ir.Function, A) -> bool:
    """Whether the pullback will be pure: no statement it differentiates is dispatched at
    run time, reads the context in a gradient it makes, or walks an iterable's items back
    (codegen checks it and makes a second pass where this was wrong)."""
    for node in ir.walk(fn.body):
        if isinstance(node, Loop) and node.item is not None and A.active(node.item):
            return False
        if not isinstance(node, Stmt) or not (node.out is not None and A.active(node.out) or A.effectful(node)):
            continue
        if id(node) in A.gathers or unpacked_item(node, A.defs, A.scopes.node_region) is not None:
            continue
        r = A.rule.get(id(node))
        if r is None:
            if not (isinstance(node.fn, Const) and TABLE.is_nondiff(node.fn.value)):
                return False
            continue
        bound = A.bind(node, r)
        for p, e in r.grads.items():
            if "ctx" not in templates.expr_names(e):
                continue
            op = bound.get(p)
            if isinstance(op, list) and any(A.active(o) for o in op) or \
                    op is not None and not isinstance(op, list) and (A.active(op) or A.effectful(node) or isinstance(op, Var)):
                return False
    return True


def branch_values(node) -> List[int]:
    """Ids of the values an ``If``/``Try`` defines inside its branches (not in loops: their
    trips' values are saved on the stack)."""
    out: List[int] = []
    for sub in ir.subregions(node):
        for n in sub.nodes:
            out += [v.id for v in ir.defined_vars(n)]
            if isinstance(n, (If, Try)):
                out += branch_values(n)
    return out
