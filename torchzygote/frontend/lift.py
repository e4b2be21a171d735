"""Lift a Python function to structured SSA (``torchzygote.ir``).

SSA is built straight from the AST in one pass, with an environment from
names to values per region (the structured case of Braun et al. 2013): an
``if`` merges the two environments into outputs, a loop turns every name it
assigns into a loop parameter. ``return``/``break``/``continue`` inside
compound statements set an exit flag and guard what follows, so every region
runs to its end and the adjoint stays structured.

The lifter is composed of one mixin per kind of construct: ``names`` (its state,
emitting, names), ``control`` (branches, loops, merges), ``statements``,
``expressions``, ``functions`` (comprehensions and nested functions).
"""
from __future__ import annotations

import ast
import types

from .. import ir
from ..ir import Const, Loop, Stmt
from ..rules.registry import TABLE
from . import ops
from .expressions import Expressions
from .functions import Functions
from .names import EXIT, RET
from .scopes import declared, fixed_cells
from .statements import Statements


class Lifter(Statements, Expressions, Functions):
    def lift(self) -> ir.Function:
        node = self.node
        if isinstance(node, ast.AsyncFunctionDef):
            self.error("'async def' (coroutines)", node, "differentiate the synchronous code it awaits")
        a = node.args
        self.self_var = self.var("#self")
        params = [self.self_var]
        names = []
        for arg in a.posonlyargs + a.args + ([a.vararg] if a.vararg else []) + a.kwonlyargs + (
                [a.kwarg] if a.kwarg else []):
            p = self.var(arg.arg)
            params.append(p)
            names.append(arg.arg)
        body = node.body if isinstance(node.body, list) else [ast.Return(node.body, lineno=node.body.lineno)]
        # the names Python binds in this scope, as its compiler found them (a walk of the
        # body found the same, at a tenth of a transform's time on long functions)
        self.local_names = set(names) | set(self.code.co_varnames) | set(self.code.co_cellvars)
        self.nonlocals, self.declared_globals = declared(node, body, self.file)
        self.local_names -= self.nonlocals | self.declared_globals
        for n, p in zip(names, params[1:]):
            self.env[n] = p
        for name in self.code.co_cellvars:
            init = [self.env[name]] if name in self.env else []
            self.cells[name] = self.emit(ops.new_cell, *init, hint=name)
        self.fixed_cells = fixed_cells(names, self.code.co_cellvars, body)
        self.env[EXIT] = Const(0)
        self.env[RET] = Const(None)
        self.lift_stmts(body)
        self.region.yields = [self.env[RET]]
        fn = ir.Function(self.code.co_name, params, ["#self"] + names, self.region, self.file, node.lineno,
                         global_types=self.global_types, freevars=self.code.co_freevars)
        _simplify(fn)
        ir.verify(fn)
        return fn


def _simplify(fn: ir.Function) -> None:
    """Loop parameters nothing reads dropped, list displays read once at once built as tuples
    (each pass counts every value's uses: run only where there is a loop / a list display)."""
    loops = lists = False
    for n in ir.walk(fn.body):
        if isinstance(n, Loop):
            loops = True
        elif isinstance(n, Stmt) and isinstance(n.fn, Const) and n.fn.value is ops.build_list:
            lists = True
    if loops:
        ir.prune_loops(fn)
    if lists:
        ir.literal_tuples(fn, ops.build_list, ops.build_tuple, TABLE.sequence_readers)


def lift(fn: types.FunctionType):
    """Lift ``fn`` to IR; returns ``(ir.Function, guards)``: the globals (by name) and
    closure cells (by index) resolved as constants (``None`` for builtins, which must stay
    unshadowed)."""
    lifter = Lifter(fn)
    return lifter.lift(), lifter.guards
