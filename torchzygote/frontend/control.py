"""Structured control flow: branches and loops as ``If``/``Loop`` regions whose merges are
explicit outputs (the structured case of Braun et al. 2013: an ``if`` merges its two
environments, a loop turns every name it assigns into a loop parameter), and the exit
states that guard what follows a ``return``/``break``/``continue``."""
from __future__ import annotations

import ast
import operator
from typing import Callable, List

from ..ir import UNDEF, Const, If, Loop, Region, Var
from . import ops
from .names import ALWAYS, EXIT, MAYBE, NONE, RAISES, RET, Names
from .scopes import assigned_names, has_jump


def seq_state(a: str, b: str) -> str:
    """The exit state of ``a`` then ``b``."""
    if a in (ALWAYS, RAISES):
        return a
    if a == MAYBE:
        return MAYBE
    return b


def join_states(states) -> str:
    """The exit state after alternatives (branches, handlers) with these states."""
    live = [s for s in states if s != RAISES]
    if not live:
        return RAISES
    if all(s == ALWAYS for s in live):
        return ALWAYS
    if all(s == NONE for s in live):
        return NONE
    return MAYBE


class ControlFlow(Names):
    def truth(self, cond):
        """A branch condition as a bool taken now: the pullback must see the branch the
        forward took, even if the value's truthiness changes later (``while lst: lst.pop()``)."""
        if isinstance(cond, Const) or cond.id in self.bools:
            return cond
        return self.emit(operator.truth, cond, hint="cond")

    def branch(self, cond, then: Callable[[], str], orelse: Callable[[], str]) -> str:
        cond = self.truth(cond)
        env0 = dict(self.env)
        regions, envs, states = [], [], []
        for body in (then, orelse):
            self.env = dict(env0)
            r = Region()
            states.append(self.in_region(r, body))
            regions.append(r)
            envs.append(self.env)
        outs = self.merge(regions, envs, states, env0)
        self.region.nodes.append(If(cond, regions[0], regions[1], outs, self.loc))
        return join_states(states)

    def merge(self, regions, envs, states, env0) -> List[Var]:
        """Give names that differ between branches an output each; set self.env."""
        live = [e for e, st in zip(envs, states) if st != RAISES] or envs
        names = list(dict.fromkeys(k for e in envs for k in e))
        merged, outs = {}, []
        for n in names:
            vals = [e.get(n, Const(UNDEF)) for e in live]
            if all(v == vals[0] for v in vals) and (isinstance(vals[0], Const) or vals[0] == env0.get(n)):
                merged[n] = vals[0]  # unchanged, or the same constant: no merge needed
                continue
            out = self.var(n)
            outs.append(out)
            merged[n] = out
            self.join_place(out, vals)
            for r, e, st in zip(regions, envs, states):
                r.yields.append(e.get(n, Const(UNDEF)) if st != RAISES or e in live else Const(UNDEF))
        self.env = merged
        return outs

    def loop(self, s, iterable) -> str:
        body = s.body
        jumps = has_jump(body)
        scanned = body + ([ast.Expr(s.test)] if isinstance(s, ast.While) else [])  # walrus in the test
        carried = [n for n in assigned_names(scanned, rebinds=True) if n in self.local_names and n not in self.cells]
        if isinstance(s, ast.For):
            carried += [n for n in assigned_names([ast.Assign([s.target], ast.Constant(0))])
                        if n in self.local_names and n not in self.cells and n not in carried]
        if jumps:
            carried += [EXIT, RET]
        params = [self.var(n) for n in carried]
        inits = [self.env.get(n, Const(UNDEF)) for n in carried]
        env0 = dict(self.env)
        for n, p in zip(carried, params):
            self.env[n] = p
        for p, i in zip(params, inits):   # (a write in the body into a value read before: ``write_back``)
            self.join_place(p, [i])
        item = self.var("item") if iterable is not None else None
        if item is not None and isinstance(iterable, Var) and (iterable.id in self.places or
                                                              iterable.id in self.methods or iterable.id in self.derived):
            self.places[item.id] = None   # an item of outside state, or of what a method returned
        r = Region()

        def trip():
            if item is not None:
                self.assign(s.target, item)
                test = Const(True)
                st = self.lift_stmts(body)
            else:
                test = self.expr(s.test)
                st = self.branch(test, lambda: self.lift_stmts(body), lambda: NONE)
            if jumps:
                e = self.emit(ops.exit_reset, self.env[EXIT])
                self.env[EXIT] = e
                cont = self.emit(ops.loop_cont, test, e) if st != NONE else test
            else:
                cont = test
            r.yields = [self.env.get(n, Const(UNDEF)) for n in carried] + [cont]
            return st

        self.in_region(r, trip)
        outs = [self.var(n) for n in carried]
        self.region.nodes.append(Loop(params, inits, r, outs, iterable, item, (self.file, s.lineno)))
        self.env = dict(env0)
        for n, p, o in zip(carried, params, outs):
            self.env[n] = o
            self.join_place(o, [p])
        return self._after_loop(s, jumps)

    def _after_loop(self, s, jumps: bool) -> str:
        """A loop's ``else`` (run unless it broke out), and its exit flag reset for what follows."""
        state = NONE
        if s.orelse:
            if jumps:
                normal = self.emit(operator.eq, self.env[EXIT], 0)
                state = self.branch(normal, lambda: self.lift_stmts(s.orelse), lambda: NONE)
            else:
                state = self.lift_stmts(s.orelse)
        if jumps:
            self.env[EXIT] = self.emit(ops.break_reset, self.env[EXIT])
            return MAYBE
        return state
