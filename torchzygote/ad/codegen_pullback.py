"""The pullback's text: statements differentiated in reverse, each operand's gradient
added to its adjoint. Adjoints have a static state (unset, set, maybe ``None``), so the
common case of straight accumulation needs no ``None`` checks; branches join their states,
loops iterate them to a fixed point (they only move towards ``MAYBE``)."""
from __future__ import annotations

import linecache
import re
from typing import Dict, List, Optional

from .. import ir
from ..frontend import ops
from ..ir import Const, If, Loop, Stmt, Try, Var
from ..rules.registry import ARRAY, COMPLEX, MIXED, OBJECT, REAL, TENSOR, Rule, value_params
from ..values.fields import read_field
from ..values.kinds import has_identity
from . import templates
from .analysis_scopes import unpacked_item
from .templates import basename, indent

UNSET, SET, MAYBE = 0, 1, 2
NUMERIC_KINDS = (REAL, COMPLEX, TENSOR, ARRAY, MIXED)


def grad_comment(loc) -> str:
    """``# grad of: <the statement's source>  (file:line)``, the line a pullback's lines
    come from (``GRAD_OF`` reads it back)."""
    src = linecache.getline(loc[0], loc[1]).strip() or "?"
    return f"# grad of: {src}  ({basename(loc[0])}:{loc[1]})"


GRAD_OF = re.compile(r"# grad of: .*  \((.*):(\d+)\)$")


def _ident(k: int) -> str:
    """An index as part of a Python name (``x[-1]`` -> ``m1``)."""
    return f"m{-k}" if k < 0 else str(k)


def _reads_ctx(op, expr: str) -> bool:
    """Whether a gradient expression for ``op`` that reads the context runs for its effect though
    ``op`` takes no gradient: a value, or an object constant (``C.W``: a Param is credited)."""
    holder = isinstance(op, Const) and (isinstance(op.value, type) or has_identity(op.value))
    return (isinstance(op, Var) or holder) and "ctx" in templates.expr_names(expr)


class Pullback:
    """The reverse half of ``Codegen`` (``codegen.py``): a mixin over its names and facts."""

    def contrib(self, target, expr: str, state: int, S: dict, out: List[str]):
        if not self.A.active(target) or state == UNSET:
            return
        gate = self._state_read(target)
        if gate is not None:
            # a tensor read from a global or a module's field may be data (``Context.wants_global``,
            # ``Context.wants_field``): its gradient is made only where something consumes it
            if S.get(target.id, UNSET) == UNSET:
                out.append(f"{self.d(target)} = None")
            S[target.id] = MAYBE
            inner: List[str] = []
            self._contrib(target, expr, state, S, inner)
            S[target.id] = MAYBE
            self.use(target)
            out.append(f"if {gate}:")
            out += indent(inner)
            return
        self._contrib(target, expr, state, S, out)

    def _state_read(self, v) -> Optional[str]:
        """The run-time test of whether a tensor read from state needs its gradient: one read from
        a global, unless it is one of the Params or differentiated code wrote that global; one read
        from a module's field, unless it is outside data (``values.outside``)."""
        d = self.A.defs.get(v.id) if isinstance(v, Var) else None
        if d is None or not isinstance(d.fn, Const):
            return None
        if d.fn.value is ops.get_global and isinstance(d.args[1], Const) and self.A.kind(v) in (TENSOR, ARRAY):
            self.use(d.args[0])
            return f"_ctx.wants_global({self.v(v)}, {self.v(d.args[0])}, {d.args[1].value!r})"
        r = self.A.rule.get(id(d))
        if r is not None and r.fn is read_field and self.A.kind(v) == TENSOR:   # (``analysis._stmt_kind``)
            return f"_ctx.wants_field({self.v(v)})"
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
            if id(node) in self.tests:   # a while loop's test: the trips its pullback runs took the branch
                lines += self.rev_branches(node, [(node.then, None)], S)
            elif isinstance(node, If):
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
                    self._value_reads.add(x.id)
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
        targets = [(f"[{i}]", a) for i, a in enumerate(s.args) if A.passes(s, a)] if not kw else \
            [(f"[0][{i}]", a) for i, a in enumerate(s.args) if A.passes(s, a)] + \
            [(f"[1].get({k!r})", a) for k, a in s.kwargs if A.passes(s, a)] + \
            ([("[0]", s.star)] if s.star is not None and A.passes(s, s.star) else [])
        if not targets and not (s.dstar is not None and isinstance(s.dstar, Var) and not A.cut(s)):
            lines.append(f"{bname}({dy})")
            return lines
        lines.append(f"_g = {bname}({dy})")
        for sel, a in targets:
            self.contrib(a, f"_g{sel}", MAYBE, S, lines)
        if s.dstar is not None and isinstance(s.dstar, Var):
            self.use(s.dstar)
            self.use(f"_kw{self.nid(s)}", s)
            lines.append(f"_acc_slots(_ctx, {self.v(s.dstar)}, _g[1], _kw{self.nid(s)})")
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
                targets += [(p, o, i) for i, o in enumerate(op) if A.passes(s, o)]
            elif op is not None and (A.passes(s, op) or effect or _reads_ctx(op, e)):
                targets.append((p, op, None))
        if not targets:
            return []
        wanted = {p for p, _, _ in targets}
        self._needs = "(" + "".join(f"{p in wanted}, " for p in r.params) + ")"   # the template name ``needs``
        if maybe and self._first_contributions(targets, S):
            return self._rev_first(s, r, bound, targets, dy, S)
        lines: List[str] = []
        body: List[str] = []
        if maybe:
            self.preinit([t for _, t, _ in targets], S, lines)
        pre_state = {t.id: S.get(t.id, UNSET) for _, t, _ in targets if isinstance(t, Var)}
        shared: Dict[str, str] = {}
        twice = self._same_operand(s, r, bound, targets, dy)
        for p, op, i in targets:
            if p == twice:
                continue
            code = self._grad_code(s, r, bound, p, op, i, dy, shared, body)
            if A.passes(s, op):
                self.contrib(op, f"({code}) * 2" if twice else code, SET if A.grad_given(s, r, p) else MAYBE, S, body)
            else:
                body.append(code)
        if not maybe:
            return lines + body
        lines.append(f"if {dy} is not None:")
        lines += indent(body)
        for _, t, _ in targets:   # the block may not run: what was None may stay None
            if isinstance(t, Var) and pre_state.get(t.id) == MAYBE:
                S[t.id] = MAYBE
        return lines

    def _same_operand(self, s: Stmt, r: Rule, bound: dict, targets, dy: str) -> Optional[str]:
        """For ``x * x``: of two parameters bound to one numeric operand whose gradients are
        the same expression, the second, whose contribution is the first's doubled (one
        product and one add, not two; the doubling is exact, so ``d + 2g`` rounds once where
        ``(d + g) + g`` rounds twice)."""
        if len(targets) != 2:
            return None
        (p, op, i), (q, op2, j) = targets
        A = self.A
        if not (i is None and j is None and isinstance(op, Var) and isinstance(op2, Var) and op.id == op2.id and
                A.passes(s, op) and A.grad_given(s, r, p) and A.grad_given(s, r, q) and
                A.K.get(op.id) in NUMERIC_KINDS):
            return None
        same = self._grad_code(s, r, bound, p, op, None, dy, {}, []) == self._grad_code(s, r, bound, q, op, None, dy, {}, [])
        return q if same else None

    def _first_contributions(self, targets, S: dict) -> bool:
        """Whether each target is a distinct adjoint that gets its first contribution here
        (nothing to add to, so no ``None`` to start from)."""
        seen = set()
        for _, op, i in targets:
            if i is not None or not self.A.active(op) or op.id in seen or S.get(op.id, UNSET) != UNSET or \
                    self._state_read(op) is not None:
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
        self._note_value_reads(s, r, bound, p, names)
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

    def _note_value_reads(self, s: Stmt, r: Rule, bound: dict, p: str, names) -> None:
        """The operands whose contents parameter ``p``'s expression reads (not only their shape,
        dtype or identity: ``registry.reads_value``), for the guards around calls."""
        for q in value_params(r, p):
            op = s.out if q == "y" else bound.get(q)
            for o in op if isinstance(op, list) else [op]:
                if isinstance(o, Var):
                    self._value_reads.add(o.id)

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
        if id(node) in self.tests:
            lines += results[0][0]
        elif isinstance(node, If):
            self.use(node.cond)
            if isinstance(node.cond, Var):
                self._value_reads.add(node.cond.id)
            lines.append(f"if {self.v(node.cond)}:")
            lines += indent(results[0][0])
            if results[1][0]:
                lines.append("else:")
                lines += indent(results[1][0])
        else:
            tk = f"_tk{self.nid(node)}"
            self.use(tk, node)
            for i, (L, _) in enumerate(results):
                lines.append(f"{'if' if i == 0 else 'elif'} {tk} == {i}:")
                lines += indent(L)
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
        zero: List[int] = []   # outer adjoints every trip adds to: summed from 0, None again if no trip ran
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
                if S.get(k, UNSET) == UNSET and Sb[k] == SET and A.K.get(k) in (REAL, COMPLEX):
                    zero.append(k)   # (no None test per trip)
                    S[k] = SET
                elif S.get(k, UNSET) == UNSET or k in zero:
                    if k in zero:
                        zero.remove(k)
                    pre.append(f"{self.d(k)} = None")
                    S[k] = MAYBE
                elif S[k] == SET and Sb[k] == MAYBE:
                    S[k] = MAYBE
                else:
                    continue
                changed = True
            if not changed:
                break
            self.saves = saved_saves
        pre += [f"{self.d(k)} = 0" for k in zero]
        if not any(ln.strip() for ln in body) or not (carried or item_active or body):
            return pre if pre else []
        lines = list(pre)
        for p, o, n, i in carried:
            if S.get(o.id, UNSET) != UNSET and A.active(o):
                lines.append(f"{self.d(('next', p.id))} = {self.d(o)}")
            elif entry[p.id] != UNSET:
                lines.append(f"{self.d(('next', p.id))} = None")
        head, trips = self._trip_head(L, body, item_active)
        gathered = id(L) in self._gathered
        if gathered:
            lines.append(f"_gl{self.nid(L)} = []")
        lines.append(head)
        lines += indent(body)
        if gathered:
            gl = f"_gl{self.nid(L)}"
            lines.append(f"_ig = _gather_back({self.v(L.iterable)}, tuple(range(len({gl}))), tuple(reversed({gl})))")
            self.contrib(L.iterable, "_ig", MAYBE, S, lines)
        for k in zero:
            lines.append(f"if not {trips}: {self.d(k)} = None")
            S[k] = MAYBE
        for p, o, n, i in carried:
            if entry[p.id] != UNSET:
                self.contrib(i, self.d(("next", p.id)), entry[p.id], S, lines)
        return lines

    def _trip_head(self, L: Loop, body: List[str], item_active: bool) -> tuple:
        """The pullback's loop header over ``L``'s trips, last first, and what is false if
        no trip ran. Where only the body
        itself saves values (no branch or inner loop in it does), the trips push them on a
        list of the loop's own (one item per trip) and the pullback iterates over it
        reversed: no trip counter, no index into the shared stack (``body``'s leading pop
        of it is dropped)."""
        k = self.nid(L)
        saves = self.saves.get(id(L.body))
        self.own.pop(id(L.body), None)
        inner = [id(sub) for node in ir.walk(L.body) for sub in ir.subregions(node)]
        if not saves or any(self.saves.get(r) and r not in self.own for r in inner):
            cnt = f"_n{k}"
            self.use(cnt, L)
            return (f"for _k{k} in range({cnt} - 1, -1, -1):" if item_active else f"for _ in range({cnt}):"), cnt
        own = self.own[id(L.body)] = f"_s{k}"
        self.use(own, L)
        del body[:2]   # _i -= 1; ... = _st[_i]
        names = ", ".join(saves)
        if item_active:
            body.insert(0, f"{names} = {own}[_k{k}]")
            return f"for _k{k} in range(len({own}) - 1, -1, -1):", own
        return f"for {names} in reversed({own}):", own

    def _rev_trip(self, L: Loop, carried, item_active, Sb, entry) -> List[str]:
        lines: List[str] = []
        for p, o, n, i in carried:
            if entry[p.id] != UNSET:
                self.contrib(n, self.d(("next", p.id)), entry[p.id], Sb, lines)
        inner = self.rev_region(L.body, Sb)
        pop = inner[:2] if inner and inner[0] == "_i -= 1" else []
        lines = pop + lines + inner[len(pop):]
        self._gathered.discard(id(L))
        if item_active and Sb.get(L.item.id, UNSET) != UNSET:
            self.use(L.item)
            self.use(L.iterable)
            self._value_reads.update(v.id for v in (L.item, L.iterable) if isinstance(v, Var))
            self.pure = False
            if isinstance(L.iterable, Var) and self.A.kind(L.iterable) == TENSOR:
                # a tensor's rows: their gradients joined once after the trips (``gather_back``: one
                # ``stack``), not a zero tensor of the whole and a sum per trip
                self._gathered.add(id(L))
                lines.append(f"_gl{self.nid(L)}.append({self.d(L.item)})")
            else:
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


_COPY = re.compile(r"( *)(d\w*) = (d\w*)")
_ADJ = re.compile(r"(?<![\w.])d\w*")
_LONE_EQ = re.compile(r"(?<![=!<>])=(?!=)")


def _adjoint_at(line: str, name: str):
    """The first place adjoint ``name`` stands in ``line`` (not as an attribute), or None."""
    return next((m for m in _ADJ.finditer(line) if m.group() == name), None)


def _may_assign(line: str, name: str) -> bool:
    """Whether ``line`` may bind ``name`` (conservatively: a ``for`` header naming it, or a
    lone ``=`` anywhere after it)."""
    m = _adjoint_at(line, name)
    return m is not None and (line.lstrip().startswith("for ") or _LONE_EQ.search(line, m.end()) is not None)


def drop_copies(lines: List[str]) -> List[str]:
    """The pullback's lines without the copies ``a = b`` between adjoints that only rename
    (a trip's carried adjoint, a branch's yield, a gradient passed on as it is): where ``a``
    is bound there alone and read only later in the same block, and ``b`` is not bound again
    before the statement of that block that reads ``a`` last, ``a``'s reads read ``b``."""
    n = len(lines)
    ind = [len(ln) - len(ln.lstrip(" ")) for ln in lines]
    ends, stack = [n] * n, []   # ends[i]: the first line after i indented less (where i's block ends)
    for i in range(n - 1, -1, -1):
        while stack and ind[stack[-1]] >= ind[i]:
            stack.pop()
        ends[i] = stack[-1] if stack else n
        stack.append(i)
    occ: Dict[str, List[int]] = {}
    for i, ln in enumerate(lines):
        if not ln.lstrip().startswith("#"):
            for name in dict.fromkeys(_ADJ.findall(ln)):
                occ.setdefault(name, []).append(i)
    out = list(lines)
    dropped = set()
    for i in range(n):
        m = _COPY.fullmatch(out[i])
        if m is None or m.group(2) == m.group(3):
            continue
        k, a, b = len(m.group(1)), m.group(2), m.group(3)
        uses = [j for j in occ.get(a, ()) if j != i]
        if not uses or uses[0] < i or uses[-1] >= ends[i] or \
                any("'" in out[j] or '"' in out[j] or _may_assign(out[j], a) for j in uses):
            continue
        last = end = uses[-1]
        while end + 1 < ends[i] and ind[end + 1] > k:
            end += 1
        simple = ind[last] == k and end == last and not out[last].rstrip().endswith(":")
        if any(i < j <= end and not (j == last and simple) and _may_assign(out[j], b) for j in occ.get(b, ())):
            continue
        if not any(not lines[j].lstrip().startswith("#") for j in range(i + 1, ends[i])) and \
                next((ind[j] for j in range(i - 1, -1, -1) if j not in dropped and
                      not lines[j].lstrip().startswith("#")), k) < k:   # the block's only statement: kept
            continue
        for j in uses:
            out[j] = _ADJ.sub(lambda m: b if m.group() == a else m.group(), out[j])
        occ[b] = sorted(set(occ.get(b, [])) | set(uses))
        dropped.add(i)
    return [ln for i, ln in enumerate(out) if i not in dropped]
