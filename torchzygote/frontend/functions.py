"""Comprehensions and nested functions. A comprehension is a loop appending to a new
container, in a scope of its own (only ``:=`` targets escape it); a nested ``def`` or
``lambda`` is made at run time from the code object the compiler made for it
(``ops.make_function``), with its defaults and the cells it shares."""
from __future__ import annotations

import ast
import operator
import types

from ..errors import LiftError
from ..ir import UNDEF, Const, Loop, Region, Var
from . import ops
from .control import ControlFlow
from .names import NONE
from .scopes import assigned_names
from .source import code_column


class Functions(ControlFlow):
    # ------------------------------------------------------------ comprehensions
    def genexp_arg(self, a):
        if isinstance(a, ast.GeneratorExp):
            return self.comprehension(a, "list")
        return self.expr(a)

    def expr_ListComp(self, e):
        return self.comprehension(e, "list")

    def expr_SetComp(self, e):
        return self.comprehension(e, "set")

    def expr_GeneratorExp(self, e):
        return self.comprehension(e, "list")

    def expr_DictComp(self, e):
        return self.comprehension(e, "dict")

    def comprehension(self, e, kind) -> Var:
        acc = self.emit({"list": list, "set": set, "dict": dict}[kind])
        saved = dict(self.env)
        targets = set()
        for g in e.generators:
            targets |= set(assigned_names([ast.Assign([g.target], ast.Constant(0))]))
        walrus = [n for n in assigned_names([ast.Expr(e)]) if n in self.local_names]
        shadow_local = self.local_names
        self.local_names = self.local_names | targets
        self._generator(e, kind, acc, walrus, 0)
        self.local_names = shadow_local
        escaped = {n: self.env[n] for n in walrus if n in self.env}
        self.env = saved
        self.env.update(escaped)
        return acc

    def _generator(self, e, kind, acc, walrus, i) -> None:
        """The loop of the comprehension's ``i``-th ``for``, carrying its ``:=`` targets."""
        g = e.generators[i]
        it = self.expr(g.iter)
        carried = list(walrus)
        params = [self.var(n) for n in carried]
        inits = [self.env.get(n, Const(UNDEF)) for n in carried]
        env0 = dict(self.env)
        for n, p in zip(carried, params):
            self.env[n] = p
        item = self.var("item")
        r = Region()

        def trip():
            self.assign(g.target, item)
            self._conditions(e, kind, acc, walrus, i, 0)
            r.yields = [self.env.get(n, Const(UNDEF)) for n in carried] + [Const(True)]
            return NONE

        self.in_region(r, trip)
        outs = [self.var(n) for n in carried]
        self.region.nodes.append(Loop(params, inits, r, outs, it, item, self.loc))
        self.env = env0
        for n, o in zip(carried, outs):
            self.env[n] = o

    def _conditions(self, e, kind, acc, walrus, i, j) -> str:
        """The ``i``-th ``for``'s ``if`` clauses from the ``j``-th on, then the next ``for``
        or the element added to the accumulator."""
        g = e.generators[i]
        if j == len(g.ifs):
            if i + 1 < len(e.generators):
                self._generator(e, kind, acc, walrus, i + 1)
            elif kind == "dict":
                self.emit(operator.setitem, acc, self.expr(e.key), self.expr(e.value), out=False)
            else:
                self.emit(ops.call_method, acc, Const("append" if kind == "list" else "add"),
                          self.expr(e.elt), out=False)
            return NONE
        c = self.expr(g.ifs[j])
        return self.branch(c, lambda: self._conditions(e, kind, acc, walrus, i, j + 1), lambda: NONE)

    # ------------------------------------------------------------ nested functions
    def stmt_FunctionDef(self, s):
        f = self.make_function(s, s.name)
        for d in reversed(s.decorator_list):
            f = self.emit(self.expr(d), f)
        self.store(s.name, f)

    def expr_Lambda(self, e):
        return self.make_function(e, "<lambda>")

    def make_function(self, node, name) -> Var:
        code = _find_code(self.code, node, name)
        a = node.args
        defaults = [self.expr(d) for d in a.defaults]
        kwdefs = []
        for k, d in zip(a.kwonlyargs, a.kw_defaults):
            if d is not None:
                kwdefs += [Const(k.arg), self.expr(d)]
        cells = []
        for fv in code.co_freevars:
            if fv in self.cells:
                cells.append(self.cells[fv])
            elif fv in self.code.co_freevars:
                cells.append(self.emit(ops.closure_cell, self.self_var, self.code.co_freevars.index(fv)))
            else:
                self.error(f"a closure over {fv!r}", node)
        qual = f"{self.fn.__qualname__}.<locals>.{name}"
        return self.emit(ops.make_function, Const(code), self.self_var,
                         self.emit(ops.build_tuple, *defaults) if defaults else Const(None),
                         self.emit(ops.build_dict, *kwdefs) if kwdefs else Const(None),
                         self.emit(ops.build_tuple, *cells) if cells else Const(None),
                         Const(qual), hint=name)


def _find_code(parent, node, name):
    """The code object the compiler made for a nested def or lambda."""
    found = []

    def walk(code):
        for c in code.co_consts:
            if isinstance(c, types.CodeType):
                if c.co_name == name and c.co_firstlineno in _first_lines(node):
                    found.append(c)
                walk(c)

    walk(parent)
    if len(found) > 1 and isinstance(node, ast.Lambda):
        col = node.body.col_offset
        exact = [c for c in found if code_column(c) is not None and code_column(c) >= col]
        found = sorted(exact, key=code_column)[:1] or found[:1]
    if not found:
        raise LiftError(f"cannot find the code object of nested function {name!r}", (parent.co_filename, node.lineno))
    return found[0]


def _first_lines(node):
    lines = {node.lineno}
    for d in getattr(node, "decorator_list", []):
        lines.add(d.lineno)
    return lines
