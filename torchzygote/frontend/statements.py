"""Statements: assignments, ``del``, exits (``return``/``break``/``continue``/``raise``) as
flags, imports resolved now, and ``if``/loops/``try``/``with`` as regions. What follows a
statement that may exit is guarded, so every region runs to its end."""
from __future__ import annotations

import ast
import copy
import importlib
import operator
from typing import Optional

import torch

from ..errors import LiftError
from ..ir import UNDEF, Const, Region, Try
from . import ops
from .control import ControlFlow, join_states, seq_state
from .expressions import BINOPS, UNSUPPORTED
from .names import ALWAYS, EXIT, MAYBE, NONE, RAISES, RET
from .scopes import assigned_names


class Statements(ControlFlow):
    def lift_stmts(self, stmts) -> str:
        """Lift a statement list; what follows a statement that may exit is guarded."""
        for i, s in enumerate(stmts):
            self.line = s.lineno
            st = self.lift_stmt(s)
            if st in (ALWAYS, RAISES):
                return st
            if st == MAYBE:
                rest = stmts[i + 1:]
                if rest:
                    live = self.emit(operator.eq, self.env[EXIT], 0, hint="live")
                    self.branch(live, lambda: self.lift_stmts(rest), lambda: NONE)
                return MAYBE
        return NONE

    def lift_stmt(self, s) -> str:
        for kind, what in UNSUPPORTED.items():
            if isinstance(s, kind):
                self.error(what, s, "rewrite it, or hide it behind a function with an @adjoint rule")
        meth = getattr(self, "stmt_" + type(s).__name__, None)
        if meth is None:
            self.error(f"a {type(s).__name__} statement", s)
        return meth(s) or NONE

    def stmt_Expr(self, s):
        if isinstance(s.value, ast.Constant):
            return  # docstring or bare constant
        self.expr(s.value)

    def stmt_Pass(self, s):
        pass

    # ------------------------------------------------------------ assignments
    def stmt_Assign(self, s):
        t = s.targets[0]
        if len(s.targets) == 1 and isinstance(t, (ast.Tuple, ast.List)) and isinstance(s.value, (ast.Tuple, ast.List)) \
                and len(t.elts) == len(s.value.elts) and \
                not any(isinstance(e, ast.Starred) for e in t.elts + s.value.elts):
            # ``a, b = x, y``: each name takes its value, with no tuple in between (as CPython does)
            vals = [self.expr(e) for e in s.value.elts]
            for te, v in zip(t.elts, vals):
                self.assign(te, v)
            return
        v = self.expr(s.value)
        for t in s.targets:
            self.assign(t, v)

    def stmt_AnnAssign(self, s):
        if s.value is not None:
            self.assign(s.target, self.expr(s.value))

    def stmt_AugAssign(self, s):
        op = BINOPS[type(s.op)]
        iop = getattr(operator, "i" + op.__name__.rstrip("_") if op.__name__ != "and_" else "iand")
        t = s.target
        if isinstance(t, ast.Name):
            old, v = self.load(t.id), self.expr(s.value)
            new = self.written_in_place(old, self.emit(iop, old, v, hint=t.id))
            self.write_back(old, new, (v,))
            self.store(t.id, new)
        elif isinstance(t, ast.Attribute):
            obj = self.expr(t.value)
            cur = self.emit(getattr, obj, t.attr)
            self.set_attr(obj, t.attr, self.emit(iop, cur, self.expr(s.value)))
        elif isinstance(t, ast.Subscript):
            obj, key = self.expr(t.value), self.subscript_key(t.slice)
            cur = self.emit(operator.getitem, obj, key)
            self.write_item(t, obj, key, self.emit(iop, cur, self.expr(s.value)))
        else:
            self.error("this augmented assignment target", s)

    def stmt_Delete(self, s):
        for t in s.targets:
            if isinstance(t, ast.Name):
                self.store(t.id, Const(UNDEF))
            elif isinstance(t, ast.Subscript):
                self.emit(operator.delitem, self.expr(t.value), self.subscript_key(t.slice))   # a list's old length
            elif isinstance(t, ast.Attribute):
                self.emit(delattr, self.expr(t.value), t.attr, out=False)
            else:
                self.error("this 'del' target", s)

    # ------------------------------------------------------------ exits
    def stmt_Return(self, s):
        self.env[RET] = self.expr(s.value) if s.value is not None else Const(None)
        self.env[EXIT] = Const(3)
        return ALWAYS

    def stmt_Break(self, s):
        self.env[EXIT] = Const(2)
        return ALWAYS

    def stmt_Continue(self, s):
        self.env[EXIT] = Const(1)
        return ALWAYS

    def stmt_Raise(self, s):
        exc = self.expr(s.exc) if s.exc is not None else Const(None)
        cause = self.expr(s.cause) if s.cause is not None else Const(None)
        self.emit(ops.raise_, exc, cause, out=False)
        return RAISES

    def stmt_Assert(self, s):
        cond = self.expr(s.test)
        if s.msg is None:
            self.emit(ops.assert_, cond, out=False)
        else:
            self.branch(cond, lambda: NONE,
                        lambda: (self.emit(ops.assert_, False, self.expr(s.msg), out=False), RAISES)[1])

    def stmt_Nonlocal(self, s):
        pass

    stmt_Global = stmt_Nonlocal

    # ------------------------------------------------------------ imports
    def stmt_Import(self, s):
        for a in s.names:
            self.store(a.asname or a.name.partition(".")[0], self.imported(ops.import_name, a.name, bool(a.asname)))

    def stmt_ImportFrom(self, s):
        module = "." * s.level + (s.module or "")
        for a in s.names:
            if a.name == "*":
                self.error("'import *'", s)
            self.store(a.asname or a.name, self.imported_name(module, a.name))

    def imported(self, op, *args):
        """The module or name an import binds, as a constant found now (so calls through it resolve to
        rules at transform time); an import that fails now happens when the statement runs, as in
        Python (``if "jax" in sys.modules: import jax`` must not raise on a machine without jax)."""
        try:
            return Const(op(*args))
        except ImportError:
            return self.emit(op, *args, hint="module")

    def imported_name(self, module: str, name: str):
        """``from module import name``: the module's attribute as ``module.name`` reads it (constants
        guarded, data read when the code runs: ``module_attr``), or a submodule."""
        package = self.globals.get("__package__")
        try:
            mod = importlib.import_module(module, package)
        except ImportError:
            return self.emit(ops.import_from, module, name, package, hint="module")
        return self.module_attr(mod, name) if hasattr(mod, name) else self.imported(ops.import_from, module, name,
                                                                                     package)

    # ------------------------------------------------------------ compound statements
    def stmt_If(self, s):
        cond = self.expr(s.test)
        return self.branch(cond, lambda: self.lift_stmts(s.body), lambda: self.lift_stmts(s.orelse))

    def stmt_While(self, s):
        return self.loop(s, None)

    def stmt_For(self, s):
        return self.loop(s, self.expr(s.iter))

    def stmt_Try(self, s):
        if s.finalbody:   # the finally block runs after the rest, also where an exception leaves it
            fin = f"$finally{id(s)}"
            self.local_names = self.local_names | {fin}
            self.env[fin] = Const(False)
            st = self.stmt_Try(_finally_on_raise(s, fin))
            return seq_state(st, self.branch(self.emit(operator.not_, self.load(fin)),
                                             lambda: self.lift_stmts(s.finalbody), lambda: NONE))
        if not s.handlers:
            return self.lift_stmts(s.body + s.orelse)
        if s.orelse:   # ``else`` runs where the body ran to its end, outside the handlers' reach
            ran = f"$else{id(s)}"
            self.local_names = self.local_names | {ran}
            self.env[ran] = Const(False)
            st = self.stmt_Try(_else_flagged(s, ran))
            return seq_state(st, self.branch(self.load(ran), lambda: self.lift_stmts(s.orelse), lambda: NONE))
        shadow = self._shadow(s.body)
        self.shadows.append(shadow)
        env0 = dict(self.env)
        regions, envs, states, handlers = [], [], [], []

        for h in [None] + s.handlers:
            self.env = dict(env0)
            r = Region()
            if h is None:
                st = self.in_region(r, lambda: self.lift_stmts(s.body))
            else:
                typ, exc = self._handler_head(h)
                st = self.in_region(r, lambda h=h, exc=exc: self._handler_body(h, exc, shadow, env0))
                handlers.append((typ, exc, r))
            regions.append(r)
            envs.append(self.env)
            states.append(st)
        self.shadows.pop()
        outs = self.merge(regions, envs, states, env0)
        self.region.nodes.append(Try(regions[0], handlers, outs, (self.file, s.lineno), getattr(s, "rethrows", False)))
        state = join_states(states)
        if s.finalbody:
            state = seq_state(state, self.lift_stmts(s.finalbody))
        return state

    def _handler_head(self, h: ast.ExceptHandler):
        """An ``except T as e`` clause's type (a constant) and the value bound to ``e``."""
        typ = self.expr(h.type) if h.type is not None else Const(BaseException)
        if not isinstance(typ, Const):
            self.error("an 'except' clause whose type is not a global name", h)
        return typ, self.var(h.name) if h.name else None

    def _shadow(self, body) -> dict:
        """Cells for the names ``body`` assigns, kept beside them (``Names.store``), so that what runs
        after an exception left ``body`` (a handler, the code after a ``with`` whose manager suppressed
        it) sees the values assigned before it, as Python's locals would show."""
        return {n: self.emit(ops.new_cell, self.env.get(n, Const(UNDEF)), hint=n)
                for n in assigned_names(body, rebinds=True) if n in self.local_names and n not in self.cells}

    def _shadowed(self, shadow, env0) -> None:
        """After an exception: the shadowed names take the values in their cells (a gradient through
        one is refused: ``ops.try_guard``)."""
        if shadow:
            self.emit(ops.try_guard, Const(self.loc), self.emit(ops.build_tuple, *shadow.values()),
                      self.emit(ops.build_tuple, *(env0.get(n, Const(UNDEF)) for n in shadow)))
        for n, cell in shadow.items():
            self.env[n] = self.emit(getattr, cell, "cell_contents", hint=n)

    def _handler_body(self, h: ast.ExceptHandler, exc, shadow, env0) -> str:
        """A handler sees the shadowed names' values as the body left them in their cells, and
        binds ``exc`` to its name there (where an enclosing ``try`` keeps that name in a cell
        too, the cell is written in the handler, after the exception that ``exc`` is)."""
        self._shadowed(shadow, env0)
        if h.name:
            self.store(h.name, exc)
        return self.lift_stmts(h.body)

    def stmt_With(self, s):
        """``with m as v: body``: ``v = m.__enter__()`` and ``m.__exit__()`` are differentiated (what
        ``__enter__`` returns may carry the gradient of what ``m`` holds, and ``__exit__`` may compute);
        an exception in the body still exits, and a manager that suppresses it leaves the values the
        body assigned before it. Under
        ``torch.no_grad()`` the body's statements carry the mode (``grad_mode``, ``Stmt.grad``)."""
        for k, item in enumerate(s.items):
            flag = self._mode_flag(item.context_expr)
            if flag is not None and not (isinstance(flag, ast.Constant) and isinstance(flag.value, bool)):
                return self.stmt_If(_per_mode(s, k, flag))
        mgrs = []
        grad = self.grad
        for item in s.items:
            if self._switch(item.context_expr) is not None:
                # torch's own switch is not entered: torchzygote runs with torch's grad mode off, and
                # follows the mode in the IR (entering ``inference_mode`` would only make tensors
                # without version counters; ``enable_grad`` would make torch record graphs)
                mode = self.grad_mode(item.context_expr)
                grad = grad if mode is None else mode
                if item.optional_vars is not None:
                    self.assign(item.optional_vars, Const(None))
                continue
            mgr = self.expr(item.context_expr)
            val = self.emit(ops.with_enter, mgr)
            if item.optional_vars is not None:
                self.assign(item.optional_vars, val)
            mgrs.append(mgr)
        # (a manager may suppress the exception: what follows sees the body's values, and the managers
        # have exited; torch's switches alone suppress nothing)
        shadow = self._shadow(s.body) if mgrs else {}
        held = f"$suppressed{id(s)}"
        if mgrs:
            self.local_names = self.local_names | {held}
            self.env[held] = Const(False)
        env0 = dict(self.env)
        r, hr = Region(), Region()
        outer, self.grad = self.grad, grad
        self.shadows.append(shadow)
        try:
            st = self.in_region(r, lambda: self.lift_stmts(s.body))
        finally:
            self.grad = outer
            self.shadows.pop()
        envs = [self.env]
        self.env = dict(env0)
        exc = self.var("exc")

        def suppressed():
            self.emit(ops.with_exit_raise, exc, *reversed(mgrs), out=False)   # (raises unless suppressed)
            if not mgrs:
                return RAISES
            self._shadowed(shadow, env0)
            self.env[held] = Const(True)
            return NONE
        hst = self.in_region(hr, suppressed)
        outs = self.merge([r, hr], envs + [self.env], [st, hst], env0)
        self.region.nodes.append(Try(r, [(Const(BaseException), exc, hr)], outs, self.loc))
        def exits():
            for m in reversed(mgrs):
                self.emit(ops.with_exit, m, out=False)
            return NONE
        if mgrs:   # (the body ran to its end, or left it by return, break or continue)
            self.branch(self.emit(operator.not_, self.load(held)), exits, lambda: NONE)
        return join_states([st, hst])

    def _switch(self, e):
        """The torch grad-mode switch a ``with`` item calls (``torch.no_grad``...), or None."""
        if not isinstance(e, ast.Call):
            return None
        try:
            fn = self.expr(e.func)
        except LiftError:
            return None
        return fn.value if isinstance(fn, Const) and fn.value in ops.GRAD_SWITCHES else None

    def _mode_flag(self, e):
        """The mode argument of ``set_grad_enabled(flag)`` or ``inference_mode(flag)`` (an AST
        expression; None for other items, and for ``inference_mode()``)."""
        if self._switch(e) not in (torch.set_grad_enabled, torch.inference_mode):
            return None
        return e.args[0] if e.args else next((k.value for k in e.keywords if k.arg == "mode"), None)

    def grad_mode(self, e) -> Optional[bool]:
        """The grad mode a ``with`` item sets, where it is one of torch's switches: False for
        ``torch.no_grad()``, ``torch.inference_mode()`` and ``torch.set_grad_enabled(False)``,
        True for ``torch.enable_grad()`` and ``set_grad_enabled(True)``; None for other managers
        (and ``inference_mode(False)``). As under torch autograd, what the block computes is then
        recorded or not. (A mode chosen when the code runs was made a literal: ``_per_mode``.)"""
        fn = self._switch(e)
        if fn is None or fn in (torch.no_grad, torch.enable_grad):
            return None if fn is None else fn is torch.enable_grad
        flag = self._mode_flag(e)
        if flag is None:   # inference_mode()
            return False
        return flag.value if fn is torch.set_grad_enabled else (False if flag.value else None)


def _per_mode(s: ast.With, k: int, flag: ast.expr) -> ast.If:
    """``with torch.set_grad_enabled(flag): body`` as ``if flag:`` the block with ``True``, else
    with ``False``: whether its operations are recorded decides its transform, so the block is
    lifted for each mode and the flag, evaluated once, chooses."""
    def variant(value: bool) -> ast.With:
        call = copy.copy(s.items[k].context_expr)
        call.args = [ast.copy_location(ast.Constant(value), flag)]
        call.keywords = [kw for kw in call.keywords if kw.arg != "mode"]
        items = list(s.items)
        items[k] = ast.withitem(call, s.items[k].optional_vars)
        return ast.copy_location(ast.With(items=items, body=s.body, type_comment=None), s)
    return ast.fix_missing_locations(ast.copy_location(ast.If(test=flag, body=[variant(True)],
                                                              orelse=[variant(False)]), s))


def _else_flagged(s: ast.Try, ran: str) -> ast.Try:
    """``try: B except...: H else: E`` without its ``else``, ``B`` ending in ``ran = True``: where
    ``B`` leaves early (``return``, ``break``, ``continue``) or raises, ``ran`` stays False and
    ``E`` does not run; ``E`` follows the statement, so the handlers do not catch what it raises
    (``stmt_Try``)."""
    mark = ast.copy_location(ast.Assign(targets=[ast.Name(ran, ast.Store())], value=ast.Constant(True)),
                             s.body[-1])
    ast.fix_missing_locations(mark)
    return ast.copy_location(ast.Try(body=list(s.body) + [mark], handlers=s.handlers, orelse=[], finalbody=[]), s)


def _finally_on_raise(s: ast.Try, fin: str) -> ast.Try:
    """``try: ... finally: F`` without its ``finally``, inside ``try: ... except BaseException:
    fin = True; F; raise``: where an exception leaves the statement, ``F`` runs before it goes on
    (an outer handler in the function may catch it, or ``F`` may leave with ``break``, ``continue``
    or ``return``); ``F`` follows the statement where ``fin`` is False, for the other ways out
    (``stmt_Try``)."""
    inner = [ast.Try(body=s.body, handlers=s.handlers, orelse=s.orelse, finalbody=[])] if s.handlers else \
        s.body + s.orelse
    mark = ast.Assign(targets=[ast.Name(fin, ast.Store())], value=ast.Constant(True))
    every = ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()), name=None,
                              body=[mark] + list(s.finalbody) + [ast.Raise(exc=None, cause=None)])
    out = ast.Try(body=inner, handlers=[every], orelse=[], finalbody=[])
    out.rethrows = True
    for node in (out, every, every.type, mark, *ast.walk(mark), every.body[-1], *(inner if s.handlers else ())):
        ast.copy_location(node, s)
    return out
