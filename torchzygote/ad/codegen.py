"""Generate the forward pass and its pullback as Python source.

For a function ``f`` this emits ``fwd(ctx, f, *args) -> (y, back)``. Rules
are inlined as expressions (no closure or tuple per operation); other calls
go through ``J`` at run time. Values the pullback needs are captured by the
closure, or, inside loops, pushed once per region execution as one tuple on a
single stack: regions run to their end (the frontend lowered early exits), so
the pullback pops in exactly the reverse order. Loops stay loops: a loop's
adjoint runs its body's adjoint as many times as the forward loop ran.

Adjoint variables have a static state (unset, set, maybe ``None``) so the
common case of straight accumulation needs no ``None`` checks.
"""
from __future__ import annotations

import ast
import functools
import itertools
import operator
import re
import types
import linecache
import math
import os
from typing import Dict, List, Optional, Set, Tuple

import numpy as np
import torch

from .. import errors, ir
from ..frontend import ops
from ..ir import Const, If, Loop, Stmt, Try, Var
from ..rules.registry import ARRAY, COMPLEX, DICT, LIST, MIXED, NONDIFF, OBJECT, REAL, TABLE, TENSOR, Rule, nondiff
from . import runtime
from . import templates
from .analysis_scopes import branch_values, unpacked_item
from .naming import Names
from .analysis import Analysis

UNSET, SET, MAYBE = 0, 1, 2
NUMERIC_KINDS = (REAL, COMPLEX, TENSOR, ARRAY, MIXED)
@functools.lru_cache(maxsize=256)
def _basename(path: str) -> str:
    return os.path.basename(path)   # once per file, not per line of generated code


def grad_comment(loc) -> str:
    """``# grad of: <the statement's source>  (file:line)``, the line a pullback's lines
    come from (``GRAD_OF`` reads it back)."""
    src = linecache.getline(loc[0], loc[1]).strip() or "?"
    return f"# grad of: {src}  ({_basename(loc[0])}:{loc[1]})"


GRAD_OF = re.compile(r"# grad of: .*  \((.*):(\d+)\)$")


def _indent(lines: List[str]) -> List[str]:
    return ["    " + ln for ln in lines] or ["    pass"]


class Codegen:
    def __init__(self, fn: ir.Function, A: Analysis):
        self.fn, self.A = fn, A
        self.glb: dict = {"_J": runtime.J, "_Jkw": runtime.Jkw, "_accum": runtime.accum,
                          "_ub": runtime.unbroadcast, "_UNDEF": ir.UNDEF, "_item_back": runtime.item_back,
                          "_gather_back": runtime.gather_back,
                          "_acc_slots": _acc_slots, "_kt": runtime.number_tensor}
        self._gnames: Dict[int, str] = {}
        self.saves: Dict[int, Dict[str, None]] = {}
        self.pure = True
        self._live: List[int] = [p.id for p in fn.params]   # values that may be tensors, defined so far, in scope
        self._in_branch: Set[int] = set()   # of those, values a branch defines (unbound if it did not run)
        self._init_none: Set[int] = set()   # branch values a write guard reads: bound to None first
        self.order, self.scopes = A.order, A.scopes
        self.names = Names(fn)

    # ------------------------------------------------------------ names
    def glob(self, value, hint="k") -> str:
        name = self._gnames.get(id(value))
        if name is None:
            base = "".join(c if c.isalnum() else "_" for c in hint)[:24]
            name = self._gnames[id(value)] = f"_{base}_{len(self._gnames)}"
            self.glb[name] = value
        return name

    def lit(self, value) -> str:
        t = type(value)
        if t in (int, bool, str) or value is None:
            return repr(value)
        if t is float and math.isfinite(value):
            return repr(value)
        if value is ir.UNDEF:
            return "_UNDEF"
        return self.glob(value, getattr(value, "__name__", None) or t.__name__)

    def v(self, op) -> str:
        return f"v{op.id}" if isinstance(op, Var) else self.lit(op.value)

    def nid(self, node) -> int:
        """A stable number for a node (names of counters and pullbacks): its place in program order."""
        return self.order.pos[id(node)]

    def d(self, key) -> str:
        """The adjoint's name of a value (a Var, or a key of the pullback's states)."""
        return self.names.adjoint(key.id if isinstance(key, Var) else key)

    def use(self, op, node=None):
        """The pullback reads primal value ``op`` (or, given ``node``, the name ``op`` that
        node binds: its pullback, its trip counter, its taken branch): inside a loop, it is
        saved once per trip."""
        if isinstance(op, str):
            name, reg = op, self.scopes.node_region.get(id(node))
        elif isinstance(op, Var):
            name, reg = f"v{op.id}", self.scopes.value_region.get(op.id)
        else:
            return
        if reg in self.scopes.in_loop:
            self.saves.setdefault(reg, {})[name] = None

    # ------------------------------------------------------------ expressions
    def subst(self, expr: str, mapping: Dict[str, str], ns: dict) -> str:
        """``expr`` with its operand names replaced by code and its namespace's names by
        globals of the generated module."""
        t = templates.template(expr)
        out = [t.head]
        for name, rest, near_is in t.slots:
            code = mapping.get(name)
            if code is None:
                code = self.glob(ns[name], name) if name in ns else name
            elif near_is and templates.is_literal(code):  # `-0.5 is not None` is a SyntaxWarning
                code = self.glob(ast.literal_eval(code), "k")
            elif not templates.atomic(code) or rest[:1] == "." and code[0].isdigit():  # (2).conj()
                code = f"({code})"
            out.append(code)
            out.append(rest)
        return "".join(out).strip()

    def rule_mapping(self, s: Stmt, r: Rule, bound: dict, dy: Optional[str], names: set) -> Dict[str, str]:
        m = {}
        for p, op in bound.items():
            if isinstance(op, list):
                m[p] = "(" + "".join(self.v(o) + ", " for o in op) + ")"
                if p in names:
                    for o in op:
                        self.use(o)
            else:
                m[p] = self.v(op)
                if p in names:
                    self.use(op)
        if dy is not None:
            m["dy"] = dy
        if s.out is not None:
            m["y"] = self.v(s.out)
            if "y" in names:
                self.use(s.out)
        m["ctx"] = "_ctx"
        for p, (num, ten) in self._number_operands(s, r, bound).items():
            m[p] = f"_kt({self.v(num)}, {self.v(ten)})"
            if p in names:
                self.use(ten)
        return m

    def _number_operands(self, s: Stmt, r: Rule, bound: dict) -> dict:
        """``{param: (number, tensor)}`` for arithmetic between a tensor and a constant
        number (a literal or a global): the number is used as a cached 0-d tensor."""
        if r.fn not in _TENSOR_NUMBER_OPS or r.fwd is None:
            return {}
        a, b = bound.get("a"), bound.get("b")
        if a is None or b is None or isinstance(a, list) or isinstance(b, list):
            return {}
        ka, kb = self.A.kind(a), self.A.kind(b)
        if ka == TENSOR and kb == REAL and self._constant_number(b):
            return {"b": (b, a)}
        if kb == TENSOR and ka == REAL and self._constant_number(a) and r.fn is not operator.truediv:
            return {"a": (a, b)}   # not ``c / x``: torch computes it as ``x.reciprocal() * c``
        return {}

    def _constant_number(self, op) -> bool:
        if isinstance(op, Const):
            return type(op.value) in (int, float)
        d = self.A.defs.get(op.id)
        return d is not None and isinstance(d.fn, Const) and d.fn.value is ops.get_global and \
            self.fn.global_types.get(d.args[1].value) in (int, float)

    # ------------------------------------------------------------ accumulation
    def contrib(self, target, expr: str, state: int, S: dict, out: List[str]):
        if not self.A.active(target) or state == UNSET:
            return
        read = self._global_tensor_read(target)
        if read is not None:
            # a tensor read from a global is data unless it is one of the Params or was written
            # by differentiated code: its gradient is made only then
            if S.get(target.id, UNSET) == UNSET:
                out.append(f"{self.d(target)} = None")
            S[target.id] = MAYBE
            inner: List[str] = []
            self._contrib(target, expr, state, S, inner)
            S[target.id] = MAYBE
            self.use(target)
            self.use(read.args[0])
            out.append(f"if _ctx.wants_global({self.v(target)}, {self.v(read.args[0])}, {read.args[1].value!r}):")
            out += _indent(inner)
            return
        self._contrib(target, expr, state, S, out)

    def _global_tensor_read(self, v) -> Optional[Stmt]:
        d = self.A.defs.get(v.id) if isinstance(v, Var) else None
        if d is not None and isinstance(d.fn, Const) and d.fn.value is ops.get_global and \
                self.A.kind(v) in (TENSOR, ARRAY):
            return d
        return None

    def _contrib(self, target, expr: str, state: int, S: dict, out: List[str]):
        d, st = self.d(target), S.get(target.id, UNSET)
        is_num = self.A.K.get(target.id) in NUMERIC_KINDS
        numeric = is_num and state == SET
        if st == UNSET:
            out.append(f"{d} = {expr}")
            S[target.id] = state
        elif st == SET and numeric:
            out.append(f"{d} = {d} + {expr}")
        elif numeric:
            out.append(f"_t = {expr}")
            out.append(f"{d} = _t if {d} is None else {d} + _t")
            S[target.id] = SET
        elif is_num:  # a number or tensor that may be None on either side: no call to _accum
            out.append(f"_t = {expr}")
            out.append(f"if _t is not None: {d} = _t if {d} is None else {d} + _t")
            S[target.id] = SET if st == SET else MAYBE
        else:
            out.append(f"{d} = _accum({d}, {expr})")
            S[target.id] = SET if SET in (st, state) else MAYBE

    def preinit(self, targets, S, out):
        for t in targets:
            if self.A.active(t) and S.get(t.id, UNSET) == UNSET:
                out.append(f"{self.d(t)} = None")
                S[t.id] = MAYBE

    # ------------------------------------------------------------ reverse
    def rev_region(self, r: ir.Region, S: dict) -> List[str]:
        lines: List[str] = []
        last = None   # the source line of the statement differentiated last here
        for node in reversed(r.nodes):
            if isinstance(node, Stmt):
                body = self.rev_stmt(node, S)
                if body and node.loc and node.loc != last:
                    # names the statement: errors in the lines below it point there (pipeline.compile)
                    lines.append(grad_comment(node.loc))
                    last = node.loc
                lines += body
                continue
            last = None
            if isinstance(node, If):
                lines += self.rev_branches(node, [(node.then, None), (node.orelse, None)], S)
            elif isinstance(node, Try):
                regs = [(node.body, 0)] + [(h, i + 1) for i, (_, _, h) in enumerate(node.handlers)]
                lines += self.rev_branches(node, regs, S)
            else:
                lines += self.rev_loop(node, S)
        save = self.saves.get(id(r))
        if save and id(r) in self.scopes.in_loop:
            names = list(save)
            lines[0:0] = ["_i -= 1", f"{', '.join(names)}, = _st[_i]"]
        return lines

    def rev_stmt(self, s: Stmt, S: dict) -> List[str]:
        A = self.A
        out_live = s.out is not None and A.active(s.out) and S.get(s.out.id, UNSET) != UNSET
        gather = self.A.gathers.get(id(s))
        if gather is not None:
            x, k, keys, first, group = gather
            lines: List[str] = []
            key = f"g{group}_{_ident(k)}"
            if out_live:
                before, now = S.get(key, UNSET), S[s.out.id]
                if before == UNSET:
                    lines.append(f"{self.d(key)} = {self.d(s.out)}")
                else:  # the same item read twice (x[2] * x[2])
                    lines.append(f"{self.d(key)} = _accum({self.d(key)}, {self.d(s.out)})")
                S[key] = SET if SET in (before, now) else MAYBE
            if first:  # the last of the group in the pullback: join the pieces once
                parts = [self.d(f"g{group}_{_ident(j)}") if S.pop(f"g{group}_{_ident(j)}", UNSET) != UNSET else "None"
                         for j in keys]
                if any(p != "None" for p in parts) and self.A.active(x):
                    self.use(x)
                    self.contrib(x, f"_gather_back({self.v(x)}, {keys!r}, ({', '.join(parts)},))", MAYBE, S,
                                 lines)
            return lines
        item = unpacked_item(s, self.A.defs, self.scopes.node_region)
        if item is not None:
            if not out_live:
                return []
            t, i = item
            key, dy = f"e{t.id}_{i}", self.d(s.out)
            st = S.get(key, UNSET)
            if st == UNSET:
                S[key] = S[s.out.id]
                return [f"{self.d(key)} = {dy}"]
            S[key] = SET if SET in (st, S[s.out.id]) else MAYBE
            return [f"{self.d(key)} = _accum({self.d(key)}, {dy})"]
        lines_items: List[str] = []
        if s.out is not None and isinstance(s.fn, Const) and s.fn.value is ops.unpack and \
                any(isinstance(k, str) and k.startswith(f"e{s.out.id}_") for k in S):
            n = s.args[1].value
            parts = [self.d(f"e{s.out.id}_{i}") if S.pop(f"e{s.out.id}_{i}", UNSET) != UNSET else "None"
                     for i in range(n)]
            lines_items = [f"{self.d(s.out)} = ({', '.join(parts)},)"]
            S[s.out.id] = SET
            out_live = True
        return lines_items + self._rev_stmt(s, S, out_live)

    def _rev_stmt(self, s: Stmt, S: dict, out_live: bool) -> List[str]:
        A = self.A
        effect = A.effectful(s)
        if not out_live and not effect:
            return []
        dy = self.d(s.out) if out_live else "None"
        r = A.rule.get(id(s))
        maybe = out_live and S[s.out.id] == MAYBE and not (r is not None and r.effect)
        lines: List[str] = []
        if r is not None:
            return self._rev_rule(s, r, dy, maybe, effect, S)
        # a run-time J call
        self.pure = False
        bname = f"B{self.nid(s)}"
        self.use(bname, s)
        kw = bool(s.kwargs) or s.star is not None or s.dstar is not None
        targets = [(f"[{i}]", a) for i, a in enumerate(s.args) if A.active(a)] if not kw else \
            [(f"[0][{i}]", a) for i, a in enumerate(s.args) if A.active(a)] + \
            [(f"[1].get({k!r})", a) for k, a in s.kwargs if A.active(a)] + \
            ([("[0]", s.star)] if s.star is not None and A.active(s.star) else [])
        if not targets and not (s.dstar is not None and isinstance(s.dstar, Var)):
            lines.append(f"{bname}({dy})")
            return lines
        lines.append(f"_g = {bname}({dy})")
        for sel, a in targets:
            self.contrib(a, f"_g{sel}", MAYBE, S, lines)
        if s.dstar is not None and isinstance(s.dstar, Var):
            self.use(s.dstar)
            lines.append(f"_acc_slots(_ctx, {self.v(s.dstar)}, _g[1])")
        return lines

    def _rev_rule(self, s: Stmt, r: Rule, dy: str, maybe: bool, effect: bool, S: dict) -> List[str]:
        """The pullback of a statement with an inlined rule: each operand's gradient
        expression, added to its adjoint; only where ``dy`` is not None if it may be."""
        A = self.A
        bound = A.bind(s, r)
        targets = []
        for p, e in r.grads.items():
            op = bound.get(p)
            if isinstance(op, list):
                targets += [(p, o, i) for i, o in enumerate(op) if A.active(o)]
            elif op is not None and (A.active(op) or effect or isinstance(op, Var) and "ctx" in templates.expr_names(e)):
                targets.append((p, op, None))
        if not targets:
            return []
        if maybe and self._first_contributions(targets, S):
            return self._rev_first(s, r, bound, targets, dy, S)
        lines: List[str] = []
        body: List[str] = []
        if maybe:
            self.preinit([t for _, t, _ in targets], S, lines)
        pre_state = {t.id: S.get(t.id, UNSET) for _, t, _ in targets if isinstance(t, Var)}
        shared: Dict[str, str] = {}
        for p, op, i in targets:
            code = self._grad_code(s, r, bound, p, op, i, dy, shared, body)
            if A.active(op):
                self.contrib(op, code, MAYBE if r.maybe_none else SET, S, body)
            else:
                body.append(code)
        if not maybe:
            return lines + body
        lines.append(f"if {dy} is not None:")
        lines += _indent(body)
        for _, t, _ in targets:   # the block may not run: what was None may stay None
            if isinstance(t, Var) and pre_state.get(t.id) == MAYBE:
                S[t.id] = MAYBE
        return lines

    def _first_contributions(self, targets, S: dict) -> bool:
        """Whether each target is a distinct adjoint that gets its first contribution here
        (nothing to add to, so no ``None`` to start from)."""
        seen = set()
        for _, op, i in targets:
            if i is not None or not self.A.active(op) or op.id in seen or S.get(op.id, UNSET) != UNSET or \
                    self._global_tensor_read(op) is not None:
                return False
            seen.add(op.id)
        return True

    def _rev_first(self, s: Stmt, r: Rule, bound: dict, targets, dy: str, S: dict) -> List[str]:
        """First contributions under a ``dy`` that may be None: one line per adjoint."""
        lines = []
        for p, op, _ in targets:
            code = self._grad_code(s, r, bound, p, op, None, dy, {}, lines)
            if code != dy:   # (the gradient passed on as it is: None stays None)
                code = f"({code}) if {dy} is not None else None" if " if " in code or "lambda" in code else \
                    f"{code} if {dy} is not None else None"
            lines.append(f"{self.d(op)} = {code}")
            S[op.id] = MAYBE
        return lines

    def _grad_code(self, s: Stmt, r: Rule, bound: dict, p: str, op, i, dy: str, shared: dict, body: list) -> str:
        """The gradient expression of parameter ``p`` (item ``i`` of a vararg: the items'
        gradients are computed once, in ``shared``), summed to ``op``'s shape if it broadcast."""
        expr = r.grads[p]
        names = templates.expr_names(expr)
        if "ctx" in names:
            self.pure = False
        if i is not None and p in shared:
            code = f"{shared[p]}[{i}]"
        else:
            code = self.subst(expr, self.rule_mapping(s, r, bound, dy, names), r.ns)
            if i is not None:
                shared[p] = f"_gv{len(shared)}"
                body.append(f"{shared[p]} = {code}")
                code = f"{shared[p]}[{i}]"
        if r.broadcast and self._needs_ub(op, s, bound):
            code = f"_ub({code}, {self.v(op)})"
            self.use(op)
        return code

    def _needs_ub(self, op, s: Stmt, bound) -> bool:
        k = self.A.kind(op)
        ops_ = [o for o in bound.values() if not isinstance(o, list)]
        kinds = {self.A.kind(o) for o in ops_}
        out_k = self.A.kind(s.out) if s.out is not None else k
        if k == TENSOR and self.A.same_shape(op, s.out):
            return False  # the gradient has the result's shape, known to be this one's
        if k in (TENSOR, ARRAY):  # a Python number cannot broadcast this one to a larger shape
            return len([o for o in ops_ if self.A.kind(o) not in (REAL, COMPLEX)]) > 1
        if k in (REAL, COMPLEX):
            return out_k in (TENSOR, ARRAY, MIXED) or bool(kinds & {TENSOR, ARRAY, MIXED})
        return k in (OBJECT, MIXED)

    def rev_branches(self, node, regions, S: dict) -> List[str]:
        outs = node.outs
        results = []
        for reg, _ in regions:
            Sb = dict(S)
            L: List[str] = []
            for o, y in zip(outs, reg.yields):
                if self.A.active(o) and S.get(o.id, UNSET) != UNSET:
                    self.contrib(y, self.d(o), S[o.id], Sb, L)
            L += self.rev_region(reg, Sb)
            results.append((L, Sb))
        if not any(L for L, _ in results):
            return []
        local = {v for reg, _ in regions for v in ir.defs_in(reg)}
        keys = set().union(*(set(Sb) for _, Sb in results)) - local
        for k in keys:
            states = [Sb.get(k, UNSET) for _, Sb in results]
            if len(set(states)) == 1:
                S[k] = states[0]
                continue
            for (L, Sb), st in zip(results, states):
                if st == UNSET:
                    L.append(f"{self.d(k)} = None")
            S[k] = SET if all(st == SET for st in states) else MAYBE
        lines: List[str] = []
        if isinstance(node, If):
            self.use(node.cond)
            lines.append(f"if {self.v(node.cond)}:")
            lines += _indent(results[0][0])
            if results[1][0]:
                lines.append("else:")
                lines += _indent(results[1][0])
        else:
            tk = f"_tk{self.nid(node)}"
            self.use(tk, node)
            for i, (L, _) in enumerate(results):
                lines.append(f"{'if' if i == 0 else 'elif'} {tk} == {i}:")
                lines += _indent(L)
        return lines

    def rev_loop(self, L: Loop, S: dict) -> List[str]:
        A = self.A
        carried = [(p, o, n, i) for p, o, n, i in zip(L.params, L.outs, L.body.yields, L.inits) if A.active(p)]
        item_active = L.item is not None and A.active(L.item)
        body_defs = set(ir.defs_in(L.body)) | {p.id for p in L.params} | ({L.item.id} if L.item else set())
        if item_active:
            self.use(L.item)
        entry = {p.id: S.get(o.id, UNSET) if A.active(o) else UNSET for p, o, _, _ in carried}
        pre: List[str] = []
        while True:  # states only move towards MAYBE, so this ends
            saved_saves = {k: dict(v) for k, v in self.saves.items()}
            Sb = dict(S)
            body, after_states = self._rev_trip(L, carried, item_active, Sb, entry)
            changed = False
            for p, o, n, i in carried:
                if after_states[p.id] != entry[p.id] and entry[p.id] != MAYBE:
                    entry[p.id] = MAYBE
                    changed = True
            outer = [k for k in Sb if k not in body_defs and isinstance(k, int) and Sb[k] != S.get(k, UNSET)]
            for k in outer:
                if S.get(k, UNSET) == UNSET:
                    pre.append(f"{self.d(k)} = None")
                    S[k] = MAYBE
                    changed = True
                elif S[k] == SET and Sb[k] == MAYBE:
                    S[k] = MAYBE
                    changed = True
            if not changed:
                break
            self.saves = saved_saves
        if not any(ln.strip() for ln in body) or not (carried or item_active or body):
            return pre if pre else []
        lines = list(pre)
        for p, o, n, i in carried:
            if S.get(o.id, UNSET) != UNSET and A.active(o):
                lines.append(f"{self.d(('next', p.id))} = {self.d(o)}")
            elif entry[p.id] != UNSET:
                lines.append(f"{self.d(('next', p.id))} = None")
        cnt = f"_n{self.nid(L)}"
        self.use(cnt, L)
        head = f"for _k{self.nid(L)} in range({cnt} - 1, -1, -1):" if item_active else f"for _ in range({cnt}):"
        lines.append(head)
        lines += _indent(body)
        for p, o, n, i in carried:
            if entry[p.id] != UNSET:
                self.contrib(i, self.d(("next", p.id)), entry[p.id], S, lines)
        return lines

    def _rev_trip(self, L: Loop, carried, item_active, Sb, entry) -> List[str]:
        lines: List[str] = []
        for p, o, n, i in carried:
            if entry[p.id] != UNSET:
                self.contrib(n, self.d(("next", p.id)), entry[p.id], Sb, lines)
        inner = self.rev_region(L.body, Sb)
        pop = inner[:2] if inner and inner[0] == "_i -= 1" else []
        lines = pop + lines + inner[len(pop):]
        if item_active and Sb.get(L.item.id, UNSET) != UNSET:
            self.use(L.item)
            self.use(L.iterable)
            self.pure = False
            lines.append(f"_ig = _item_back(_ctx, {self.v(L.iterable)}, _k{self.nid(L)}, {self.v(L.item)}, "
                         f"{self.d(L.item)})")
            self.contrib(L.iterable, "_ig", MAYBE, Sb, lines)
        after = {}
        for p, o, n, i in carried:
            st = after[p.id] = Sb.get(p.id, UNSET)
            if entry[p.id] == UNSET and st == UNSET:
                continue
            lines.append(f"{self.d(('next', p.id))} = {self.d(p) if st != UNSET else 'None'}")
            Sb.pop(p.id, None)
        return lines, after

    # ------------------------------------------------------------ forward
    def _check_unused_after(self, vid: int, s: Stmt) -> None:
        """The old value of a tensor written in place is kept for the pullback by giving
        its name a copy: only right if the forward does not read that name again."""
        if self.order.used_after(vid, s):
            if self.A.K.get(vid) == ARRAY:
                raise errors.LiftError(
                    "torchzygote cannot differentiate this in-place write: it changes an array (through "
                    "another name or a view) that the code reads again afterwards under its old value; "
                    "write into a copy (`y = y.copy()` before writing into y) or write through the "
                    "array's own name", s.loc)
            raise errors.LiftError(
                "torchzygote cannot differentiate this in-place write: it changes a tensor (through "
                "another name or a view) that the code reads again afterwards, and whose old value the "
                "gradient needs; modify a copy (`y = y.clone()`) or write through the tensor's own name",
                s.loc)

    def _holder_check(self, s: Stmt, target: Var) -> List[str]:
        """Before an in-place write: the cells, lists and dicts this function made (at its top
        level, before ``s``) and its list and dict arguments, if they are read afterwards, must
        not hold the tensor written: a later read would give the new value the old one's gradient."""
        d = self.A.defs.get(target.id)
        own = d.args[0].id if d is not None and isinstance(d.fn, Const) and d.fn.value is getattr and \
            d.args and isinstance(d.args[0], Var) else None   # the name's own cell is written back
        holders = [n.out for n in self.fn.body.nodes
                   if self.order.before(n, s) and isinstance(n, Stmt) and n.out is not None
                   and isinstance(n.fn, Const) and n.fn.value in (ops.new_cell, ops.build_list, ops.build_dict)
                   and n.out.id != own]
        holders += [p for p in self.fn.params[1:] if self.A.K.get(p.id) in (LIST, DICT)]
        holders = [h for h in holders if self.order.used_after(h.id, s)]  # read again
        if not holders:
            return []
        hs = "".join(self.v(h) + ", " for h in holders)
        return [f"{self.glob(_check_not_held, 'held')}({self.v(target)}, ({hs}), {s.loc!r})"]

    def _may_alias(self, vid: int) -> bool:
        """Whether tensor value ``vid`` may share memory with a tensor of another root: its
        root is an argument, or was read from a container, an object or a global, or came
        from a call the analysis does not see into (ops with rules make new tensors)."""
        root = self.A.root.get(vid, vid)
        d = self.A.defs.get(root)
        if d is None:
            return True   # an argument or a loop or branch value
        r = self.A.rule.get(id(d))
        if self.A.K.get(root) == ARRAY or self.A.K.get(vid) == ARRAY:
            # numpy returns views from many functions (np.ravel, np.asarray, x.T, astype(copy=False)):
            # only results known to be new memory are apart from other roots
            f = r.fn if r is not None else d.fn.value if isinstance(d.fn, Const) else None
            return not (f is not None and not d.kwargs and _fresh_array(f))
        return r is None or r.fn in (operator.getitem, getattr) or r.effect

    def _apart(self, vid: int, target: int) -> bool:
        """Whether array ``vid`` cannot share the memory of array ``target``: the target's root is
        new memory (a fresh result) made after ``vid``'s root (an argument, or an earlier value)."""
        rt, rv = self.A.root.get(target, target), self.A.root.get(vid, vid)
        d, dv = self.A.defs.get(rt), self.A.defs.get(rv)
        if rt == rv or self.A.K.get(rt) != ARRAY or d is None or self._may_alias(target):
            return False
        if dv is None:
            return any(p.id == rv for p in self.fn.params)
        return id(dv) in self.order.pos and id(d) in self.order.pos and self.order.before(dv, d)

    def reads_params(self) -> tuple:
        """Positions of the arguments whose memory the pullback reads (directly or through a
        view): a caller that writes into one of them afterwards would change the gradient."""
        roots = {self.A.root.get(v, v) for v in self._read_set()}
        reads = tuple(i for i, p in enumerate(self.fn.params[1:]) if p.id in roots)
        ret = self.fn.ret
        if isinstance(ret, Var) and self.A.root_of(ret) in roots:
            reads += (-1,)   # the result itself (``return torch.exp(x)``: its pullback reads it)
        return reads

    def _read_back(self, vid: int) -> bool:
        """Whether the pullback reads primal value ``vid``."""
        return vid in self._read_set()

    def _read_set(self) -> set:
        """The primal values the pullback reads: one scan of its text (a search, and a new
        pattern, per value was most of a nested transform's time)."""
        if self._read_ids is None:
            self._read_ids = {int(m) for m in re.findall(r"\bv(\d+)\b", self._used_top)}
        return self._read_ids

    def fwd_region(self, r: ir.Region) -> List[str]:
        lines: List[str] = []
        mark = len(self._live)
        for node in r.nodes:
            if isinstance(node, Stmt):
                lines += self.fwd_stmt(node)
            elif isinstance(node, If):
                lines.append(f"if {self.v(node.cond)}:")
                lines += _indent(self.fwd_region(node.then) + self._assign(node.outs, node.then.yields))
                els = self.fwd_region(node.orelse) + self._assign(node.outs, node.orelse.yields)
                if els:
                    lines.append("else:")
                    lines += _indent(els)
            elif isinstance(node, Loop):
                lines += self.fwd_loop(node)
            else:
                lines += self.fwd_try(node)
            self._live.extend(v.id for v in ir.defined_vars(node) if self.A.K.get(v.id) in _MAY_BE_TENSOR)
            if isinstance(node, (If, Try)):   # the pullback reads a branch's values by name too
                inner = [v for v in branch_values(node) if self.A.K.get(v) in _MAY_BE_TENSOR]
                self._live.extend(inner)
                self._in_branch.update(inner)
        del self._live[mark:]
        save = self.saves.get(id(r))
        if save and id(r) in self.scopes.in_loop:
            written = self._written_roots(r)
            save = [f"{self.glob(_copy_tensor, 'copy')}({n})" if self._saved_root(n) in written or
                    (None in written or written and self._array_may_alias(n)) and re.fullmatch(r"v\d+", n)
                    else n for n in save]
            lines.append(f"_st.append(({', '.join(save)},))")
        return lines

    def _array_may_alias(self, name: str) -> bool:
        """Whether saved value ``name`` is an array that may share memory with one a loop writes."""
        m = re.fullmatch(r"v(\d+)", name)
        return m is not None and self.A.K.get(int(m.group(1))) == ARRAY and self._may_alias(int(m.group(1)))

    def _saved_root(self, name: str):
        m = re.fullmatch(r"v(\d+)", name)
        return self.A.root.get(int(m.group(1)), int(m.group(1))) if m else False

    def _written_roots(self, r: ir.Region) -> set:
        """Roots of the tensors a loop body writes in place (None: a write whose target is
        known at run time only): a value saved for the pullback in one trip and written in
        a later trip is saved as a copy."""
        out = set()
        for node in ir.walk(r):
            if not isinstance(node, Stmt) or not node.args or not isinstance(node.args[0], Var):
                continue
            rule = self.A.rule.get(id(node))
            if rule is not None and rule.inplace:
                out.add(self.A.root_of(node.args[0]))
            elif rule is None and self._written(node) is not None:
                out.add(None)
        return out

    def _assign(self, outs, vals) -> List[str]:
        pairs = [(o, v) for o, v in zip(outs, vals) if not (isinstance(v, Var) and v.id == o.id)]
        if not pairs:
            return []
        return [f"{', '.join(self.v(o) for o, _ in pairs)} = {', '.join(self.v(v) for _, v in pairs)}"
                + ("," if len(pairs) == 1 and False else "")]

    def fwd_loop(self, L: Loop) -> List[str]:
        lines = self._assign(L.params, L.inits)
        cnt = f"_n{self.nid(L)}"
        counted = re.search(rf"\b{cnt}\b", self._used_top) is not None
        if counted:
            lines.append(f"{cnt} = 0")
        head = f"for {self.v(L.item)} in {self.v(L.iterable)}:" if L.iterable is not None else "while True:"
        lines.append(head)
        mark = len(self._live)
        self._live.extend(v.id for v in L.params + ([L.item] if L.item else []) if self.A.K.get(v.id) in _MAY_BE_TENSOR)
        body = self.fwd_region(L.body)
        del self._live[mark:]
        if counted:
            body.append(f"{cnt} += 1")
        *nexts, cont = L.body.yields
        body += self._assign(L.params, nexts)
        if not (isinstance(cont, Const) and cont.value is True):
            body.append(f"if not {self.v(cont)}: break")
        lines += _indent(body)
        lines += self._assign(L.outs, L.params)
        return lines

    def fwd_try(self, T: Try) -> List[str]:
        tk = f"_tk{self.nid(T)}"
        lines = ["_sl = len(_st)"] if self.has_stack else []
        lines.append("try:")
        lines += _indent(self.fwd_region(T.body) + self._assign(T.outs, T.body.yields) + [f"{tk} = 0"])
        for i, (typ, exc, h) in enumerate(T.handlers):
            lines.append(f"except {self.v(typ)} as _e:")
            body = ["del _st[_sl:]"] if self.has_stack else []
            if exc is not None:
                body.append(f"{self.v(exc)} = _e")
            body += self.fwd_region(h) + self._assign(T.outs, h.yields) + [f"{tk} = {i + 1}"]
            lines += _indent(body)
        return lines

    def fwd_stmt(self, s: Stmt) -> List[str]:
        if isinstance(s.fn, Const) and s.fn.value is operator.setitem and len(s.args) == 3:
            return self._untracked_write(s, s.args[0], s.args[2:]) + self._fwd_stmt(s)
        if isinstance(s.fn, Const) and s.fn.value is ops.untracked_write:
            return self._untracked_write(s, s.args[0], s.args[1:])
        return self._fwd_stmt(s)

    _UNTRACKED = ("torchzygote cannot differentiate this write: it stores a value that depends on the inputs "
                  "into a {what} that is not a local variable of this function (a global, an attribute, an "
                  "item of a container), whose later reads would not carry the value's gradient. Write into "
                  "a local copy and use that (`G = G.copy()` / `G = G.clone()`), return the new value, or store "
                  "a value without gradient (`tz.dropgrad(v)`) if it is only recorded")

    def _untracked_write(self, s: Stmt, obj, values) -> List[str]:
        """A write of ``values`` into ``obj``, an object reached other than by a local name
        (``G[k] = v``, ``G.mul_(v)``, ``np.copyto(self.buf, v)``): list and dict items are followed
        by identity, but a tensor's or an array's new contents only through the names the write
        renews, so a varied value written there would lose its gradient: refused (at run time
        where the kind is open)."""
        if not any(isinstance(v, Var) and v.id in self.A.varied and self.A.kind(v) != NONDIFF for v in values):
            return []
        k = self.A.kind(obj)
        if k in (TENSOR, ARRAY):
            raise errors.LiftError(self._UNTRACKED.format(what="tensor" if k == TENSOR else "NumPy array"), s.loc)
        if k in (LIST, DICT):
            return []
        return [f"{self.glob(_check_tracked_write, 'tracked')}({self.v(obj)}, {s.loc!r})"]

    def _fwd_stmt(self, s: Stmt) -> List[str]:
        r = self.A.rule.get(id(s))
        where = f"  # {_basename(s.loc[0])}:{s.loc[1]}" if s.loc else ""
        out = self.v(s.out) if s.out is not None else None
        if r is not None and r.fwd is not None:
            bound = self.A.bind(s, r)
            m = self.rule_mapping(s, r, bound, None, set())
            pre = []
            first = bound.get(r.params[0]) if r.params else None
            if r.inplace and isinstance(first, Var) and self.A.K.get(first.id) in (ARRAY, TENSOR) and \
                    self.order.dead_view(s, first):
                pre.append(f"_ip = {self.v(first)}.clone()" if self.A.K.get(first.id) == TENSOR else
                           f"_ip = {self.glob(runtime.copy_value, 'copy')}({self.v(first)})")
                m[r.params[0]] = "_ip"
            elif r.inplace and isinstance(first, Var):
                # keep what the pullback reads of the memory this op overwrites (Tapenade's
                # rule): views of the same tensor first, then the tensor itself
                root = self.A.root_of(first)
                for vid in self._live:
                    if vid == first.id or self.A.K.get(vid) not in _MAY_BE_TENSOR:
                        continue
                    read, later = self._read_back(vid), self.order.used_after(vid, s)
                    same = self.A.root.get(vid, vid) == root
                    if same and self.A.K.get(vid) == TENSOR:
                        if read:
                            self._check_unused_after(vid, s)
                            pre.append(self._bound(vid, f"v{vid} = v{vid}.clone()"))
                    elif (read or later) and (same or self._may_alias(vid) or self._may_alias(first.id)) and \
                            not self._apart(vid, first.id):
                        # (an array read from the one written, ``a = y[0]``, is a view or a copy:
                        # known at run time)
                        # memory shared by other means (a list, an object, an argument, a callee's
                        # result): known at run time. A value read again afterwards would be stale.
                        pre.append(self._bound(vid, f"v{vid} = {self.glob(_keep_if_shared, 'keep')}(v{vid}, "
                                                    f"{self.v(first)}, {later!r}, {s.loc!r})"))
                pre += self._holder_check(s, first)
                if self._read_back(first.id) or self.A.K.get(first.id) == ARRAY:
                    self._check_unused_after(first.id, s)
                if self._read_back(first.id):
                    copy = "_ip.clone()" if self.A.K.get(first.id) == TENSOR else \
                        f"{self.glob(runtime.copy_value, 'copy')}(_ip)"   # a tensor or an array: known at run time
                    pre += [f"_ip = {self.v(first)}", f"{self.v(first)} = {copy}"]
                    m[r.params[0]] = "_ip"
            code = self.subst(r.fwd, m, r.ns)
            if pre:
                return pre + [f"{out} = {code}{where}"]
            if isinstance(templates.parse(r.fwd), ast.Module) or out is None:
                return [code + where] if out is None else [code + where, f"{out} = None"]
            return [f"{out} = {code}{where}"]
        call = self._call_args(s)
        if r is not None or self.A.effectful(s) is False:
            fn = self.v(s.fn)
            if r is not None and isinstance(s.fn, Const) and s.fn.value is ops.call_method:
                obj, name, rest = self.v(s.args[0]), s.args[1].value, self._call_args(s, skip=2)
                code = f"{obj}.{name}({rest})"
            else:
                code = f"{fn}({call})"
            return [f"{out} = {code}{where}" if out else code + where]
        bname = f"B{self.nid(s)}"
        tgt = f"{out or '_'}, {bname}"
        written = self._written(s)   # also for y.sub_(x, alpha=2): keywords or not
        argv = [self.v(a) for a in s.args]
        guards = None
        if written is not None and written[1] is not None and self.order.dead_view(s, written[0]):
            argv[written[1]] = f"{self.glob(runtime.copy_value, 'copy')}({argv[written[1]]})"   # as when known
            written = None
        elif written is not None:
            guards = self._runtime_write_guards(s, written[0])
        if written is not None and self._read_back(written[0].id):
            # the pullback reads the value this write overwrites: it keeps a copy of a tensor,
            # the write goes to the object itself (as Python does; a tuple built for the
            # dispatcher already holds the object)
            first, pos = written
            later = self.order.used_after(first.id, s)
            guards += [f"_ip = {self.v(first)}",
                       f"{self.v(first)} = {self.glob(_keep_old, 'old')}(_ip, {later!r}, {s.loc!r})"]
            if pos is not None:
                argv[pos] = "_ip"
        if s.kwargs or s.star is not None or s.dstar is not None:
            pos = self.v(s.star) if s.star is not None else "(" + "".join(a + ", " for a in argv) + ")"
            kw = "{" + ", ".join(f"{k!r}: {self.v(v)}" for k, v in s.kwargs) + "}"
            if s.dstar is not None:
                kw = f"{{**{kw}, **{self.v(s.dstar)}}}"
            return (guards or []) + [f"{tgt} = _Jkw(_ctx, {self.v(s.fn)}, {pos}, {kw}){where}"]
        return (guards or []) + [f"{tgt} = _J(_ctx, {self.v(s.fn)}{''.join(', ' + a for a in argv)}){where}"]

    def _written(self, s: Stmt) -> Optional[Tuple[Var, Optional[int]]]:
        """For a write by name dispatched at run time (``y -= x``, ``y[k] = v``, ``y.mul_(2)``,
        whatever kind ``y`` turns out to have): the value written and its position among the
        statement's arguments (None: inside a tuple built before). Generated code that is
        differentiated again makes its writes through the dispatcher (``J(ctx, f, *args)``,
        ``Jkw(ctx, f, args, kwargs)``), so the dispatch is looked through."""
        fn, args, pos = s.fn, s.args, 0
        while isinstance(fn, Const) and fn.value in (runtime.J, runtime.Jkw) and len(args) >= 3:
            if fn.value is runtime.J:
                fn, args, pos = args[1], args[2:], None if pos is None else pos + 2
                continue
            d = self.A.defs.get(args[2].id) if isinstance(args[2], Var) else None
            if d is None or not (isinstance(d.fn, Const) and d.fn.value is ops.build_tuple):
                return None
            fn, args, pos = args[1], d.args, None
        if isinstance(fn, Const) and fn.value is ops.call_method and len(args) > 2 and \
                isinstance(args[1], Const) and args[1].value in ops.MUTATING_FUNCTIONS and isinstance(args[2], Var):
            return args[2], None if pos is None else pos + 2   # np.add.at(x, i, v)
        if not args or not isinstance(args[0], Var) or not isinstance(fn, Const):
            return None
        f = fn.value
        if f in _INPLACE_OPS or f is ops.setitem_v or f is ops.call_method and len(args) > 1 and \
                isinstance(args[1], Const) and isinstance(args[1].value, str) and \
                (args[1].value.endswith("_") and not args[1].value.endswith("__") or
                 args[1].value in ops.MUTATING_METHODS):
            return args[0], pos
        if f in _WRITES_FIRST:
            return args[0], pos
        return None

    def _runtime_write_guards(self, s: Stmt, first: Var) -> List[str]:
        """Before an in-place write of ``first`` dispatched at run time: tensors that may
        share its memory and are read again afterwards would be stale values, so they are
        checked as for a known write."""
        lines = self._holder_check(s, first)
        for vid in self._live:
            if vid != first.id and self.A.K.get(vid) in _MAY_BE_TENSOR and \
                    (self._read_back(vid) or self.order.used_after(vid, s)):
                later = self.order.used_after(vid, s)
                lines.append(self._bound(vid, f"v{vid} = {self.glob(_keep_if_shared, 'keep')}(v{vid}, "
                                                f"{self.v(first)}, {later!r}, {s.loc!r})"))
        return lines

    def _bound(self, vid: int, line: str) -> str:
        """A guard line for value ``vid``; a branch's value may be unbound (the branch did not
        run): it starts as None, and the guard runs only if the branch set it."""
        if vid not in self._in_branch:
            return line
        self._init_none.add(vid)
        return f"if v{vid} is not None: {line}"

    def _call_args(self, s: Stmt, skip=0) -> str:
        parts = [self.v(a) for a in s.args[skip:]]
        if s.star is not None:
            parts.append("*" + self.v(s.star))
        parts += [f"{k}={self.v(v)}" for k, v in s.kwargs]
        if s.dstar is not None:
            parts.append("**" + self.v(s.dstar))
        return ", ".join(parts)

    # ------------------------------------------------------------ whole function
    def generate(self, qualname: str, loc) -> str:
        fn = self.fn
        S: dict = {}
        ret = fn.ret
        rev: List[str] = []
        ret_active = self.A.active(ret)
        # a pure pullback can return early on a zero gradient: then the output's adjoint is
        # set, else it may be None. Whether it is pure is known after a pass; the pass made
        # first is the one the statements' rules predict (a wrong guess costs a second pass)
        first = SET if ret_active and self.A.pure else MAYBE
        if ret_active:
            S[ret.id] = first
        rev = self.rev_region(fn.body, S)   # effects (mutation) may need a pullback even so
        if ret_active and self.pure != (first == SET):
            S = {ret.id: SET if self.pure else MAYBE}
            self.saves = {}
            rev = self.rev_region(fn.body, S)
        self._used_top = "\n".join(ln for ln in rev if not ln.lstrip().startswith("#"))
        self._read_ids = None
        self.has_stack = bool(self.saves)
        params = [self.v(p) for p in fn.params]
        nres = len(fn.params) - 1
        lines = [f"def fwd(_ctx, {', '.join(params)}):"]
        body: List[str] = []
        if self.has_stack:
            body.append("_st = []")
        region = self.fwd_region(fn.body)
        body += [f"v{vid} = None" for vid in sorted(self._init_none)] + region
        grads = [self.d(p) if S.get(p.id, UNSET) != UNSET else "None" for p in fn.params[1:]]
        if self.pure and (not ret_active or all(g == "None" for g in grads)):
            body.append(f"return {self.v(ret)}, _nothing{nres}")
            self.glb[f"_nothing{nres}"] = _nothing(nres)
        else:
            dret = self.d(ret) if isinstance(ret, Var) else "_dy"
            back = [f"def back({dret}):"]
            bb = []
            if self.pure:
                bb += [f"if {dret} is None:", f"    return {(None,) * nres!r}"]
            if self.has_stack:
                bb.append("_i = len(_st)")
            bb += rev
            bb.append(f"return ({''.join(g + ', ' for g in grads)})")
            back += _indent(bb)
            body += back
            body.append(f"return {self.v(ret)}, back")
            if len(body) > _LONG_BODY:
                # CPython (3.11) inserts one MAKE_CELL per value the pullback reads into the
                # function's first basic block, moving the whole block each time: for
                # straight-line code compile time grew with (cells x lines). A branch first
                # ends that block (compile of a 4,000-line function's forward 540 -> 220 ms).
                body.insert(0, "if _ctx is None: pass")
        lines += _indent(body)
        return "\n".join(lines) + "\n"


_LONG_BODY = 200   # forward lines past which the first basic block is ended early (see generate)
_TENSOR_NUMBER_OPS = (operator.add, operator.sub, operator.mul, operator.truediv)


def _ident(k: int) -> str:
    """An index as part of a Python name (``x[-1]`` -> ``m1``)."""
    return f"m{-k}" if k < 0 else str(k)


_WRITES_FIRST = (np.copyto,)   # functions that write into their first argument
_MAY_BE_TENSOR = (TENSOR, OBJECT, ARRAY)   # kinds whose values in-place writes may share memory with
_INPLACE_OPS = (operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.ipow, operator.imod,
                operator.ifloordiv, operator.imatmul)


def _keep_old(v, used_later: bool, loc):
    """A copy of tensor or array ``v`` about to be written in place (for the pullback), unless
    the code reads ``v`` again afterwards through the same name (then it is an error, as at
    transform time for known tensors); other objects are kept as they are (their writes are tracked)."""
    if not isinstance(v, (torch.Tensor, np.ndarray)):
        return v
    if used_later:
        raise errors.GradientError(
            f"torchzygote cannot differentiate this in-place write: it changes {_a(v)} that the code "
            "reads again afterwards through another name, and whose old value the gradient needs; "
            f"write into a copy ({_copy_hint(v)})", loc)
    return _copy_tensor(v)


def _a(v) -> str:
    return "a tensor" if isinstance(v, torch.Tensor) else "an array"


def _copy_hint(v) -> str:
    return "`y = y.clone()`" if isinstance(v, torch.Tensor) else "`y = y.copy()` before writing into y"


def _copy_tensor(v):
    return v.clone() if isinstance(v, torch.Tensor) else v.copy() if isinstance(v, np.ndarray) else v


def _np_shared(a, b) -> bool:
    """Whether arrays ``a`` and ``b`` share memory (an overlap too hard to decide counts as shared)."""
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)) or not np.may_share_memory(a, b):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=100000))
    except np.exceptions.TooHardError:
        return True


def _fresh_array(f) -> bool:
    """Whether ``f`` called without keywords (``out=``) always returns new memory: ufuncs,
    arithmetic, reductions, products, array makers."""
    try:
        return isinstance(f, np.ufunc) or f in _FRESH_ARRAY
    except TypeError:   # an unhashable callee
        return False


_FRESH_ARRAY = {operator.add, operator.sub, operator.mul, operator.truediv, operator.pow, operator.neg,
                operator.matmul, operator.mod, operator.floordiv, np.zeros, np.ones, np.full, np.empty, np.zeros_like,
                np.ones_like, np.full_like, np.empty_like, np.arange, np.linspace, np.eye, np.array, np.stack,
                np.concatenate, np.sum, np.mean, np.prod, np.max, np.min, np.amax, np.amin, np.dot, np.matmul,
                np.outer, np.where, np.copy, np.ndarray.copy, np.ndarray.sum, np.ndarray.mean, np.ndarray.prod,
                np.ndarray.max, np.ndarray.min, np.ndarray.dot, np.linalg.inv, np.linalg.solve, np.linalg.det,
                np.random.randn, np.random.rand, np.random.normal, np.cumsum, np.cumprod, np.diff, np.tile,
                np.repeat, np.kron}


def _check_tracked_write(obj, loc) -> None:
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        raise errors.GradientError(Codegen._UNTRACKED.format(
            what="tensor" if isinstance(obj, torch.Tensor) else "NumPy array"), loc)


def _check_not_held(target, holders, loc) -> None:
    """Before an in-place write into ``target`` (a tensor or an array): none of ``holders`` (cells,
    lists, dicts this function made, read again later) may hold it."""
    if isinstance(target, np.ndarray):
        what, copy = "array", "y = y.copy()"
        shares = functools.partial(_np_shared, b=target)
    elif isinstance(target, torch.Tensor):
        what, copy, p = "tensor", "y = y.clone()", target.untyped_storage().data_ptr()
        shares = lambda v: isinstance(v, torch.Tensor) and v.untyped_storage().data_ptr() == p  # noqa: E731
    else:
        return
    for h in holders:
        if isinstance(h, types.CellType):
            try:
                items = (h.cell_contents,)
            except ValueError:
                continue
        else:
            items = h.values() if isinstance(h, dict) else h
        if any(shares(v) for v in items):
            raise errors.GradientError(
                f"torchzygote cannot differentiate this in-place write: the {what} it changes is also held "
                f"by a closure cell, a list or a dict, whose later reads torchzygote would give the old "
                f"value's gradient; write into a copy (`{copy}`) or store the new {what} again", loc)


def _keep_if_shared(v, target, used_later: bool, loc):
    """Before ``target`` is written in place: a copy of saved value ``v`` if it shares
    ``target``'s memory (so the pullback reads the value it had), else ``v`` itself."""
    if isinstance(target, np.ndarray):
        if not _np_shared(v, target):
            return v
    elif not isinstance(target, torch.Tensor) or not isinstance(v, torch.Tensor) or \
            v.untyped_storage().data_ptr() != target.untyped_storage().data_ptr():
        return v
    if used_later:
        raise errors.GradientError(
            f"torchzygote cannot differentiate this in-place write: it changes {_a(v)} that is also "
            "reached another way (a view, a list, an object or an argument) and read again afterwards, and "
            f"whose old value the gradient needs; write into a copy ({_copy_hint(v)})", loc)
    return _copy_tensor(v)


def _nothing(n):
    none = (None,) * n
    return lambda dy: none


def _acc_slots(ctx, d, g):
    if isinstance(g, dict):
        slot = ctx.slot(d)
        for k, v in g.items():
            slot[k] = runtime.accum(slot.get(k), v)


def generate(fn: ir.Function, A: Analysis, qualname: str) -> Tuple[str, dict, tuple]:
    """The forward's source, the globals it runs with, and the positions of the arguments
    whose memory its pullback reads."""
    cg = Codegen(fn, A)
    src = cg.generate(qualname, (fn.file, fn.line))
    return src, cg.glb, cg.reads_params()


nondiff(_np_shared)   # a transform of generated code (nested AD) calls it as it is
