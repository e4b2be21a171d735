"""Lift a Python function to structured SSA (``torchzygote.ir``).

SSA is built straight from the AST in one pass, with an environment from
names to values per region (the structured case of Braun et al. 2013): an
``if`` merges the two environments into outputs, a loop turns every name it
assigns into a loop parameter. ``return``/``break``/``continue`` inside
compound statements set an exit flag and guard what follows, so every region
runs to its end and the adjoint stays structured.
"""
from __future__ import annotations

import ast
import builtins
import linecache
import operator
import types
from typing import Callable, Dict, List, Optional

from .. import ir
from ..errors import LiftError
from ..rules.registry import TABLE
from ..ir import UNDEF, Const, If, Loop, Region, Stmt, Try, Var
from . import ops
from .source import code_column, find_ast

NONE, MAYBE, ALWAYS, RAISES = "none", "maybe", "always", "raises"
EXIT, RET = "$exit", "$ret"

BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.MatMult: operator.matmul, ast.LShift: operator.lshift, ast.RShift: operator.rshift,
    ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.BitXor: operator.xor,
}
FOLDABLE = (operator.add, operator.sub, operator.mul, operator.truediv)  # literal operands fold
UNOPS = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert, ast.Not: operator.not_}
CMPOPS = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Is: operator.is_, ast.IsNot: operator.is_not,
    ast.In: ops.contains, ast.NotIn: ops.not_contains,
}
UNSUPPORTED = {
    ast.Yield: "'yield' (generators)", ast.YieldFrom: "'yield from' (generators)",
    ast.Await: "'await'", ast.AsyncFor: "'async for'", ast.AsyncWith: "'async with'",
    ast.ClassDef: "a class definition inside a differentiated function",
    ast.Match: "'match' statements",
}


def _is_constant_global(value) -> bool:
    """Globals bound at transform time (guarded): code, not data."""
    return isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type,
                              types.MethodType)) or callable(value) and not hasattr(value, "__dict__")


def _owner_class(qualname: str):
    """The class whose body defines the function (``C.m``, ``C.m.<locals>.g``), if any:
    Python spells its private names ``__x`` as ``_C__x`` there."""
    parts = qualname.split(".")[:-1]
    while parts:
        if parts[-1] == "<locals>":
            parts = parts[:-2]   # the enclosing function
            continue
        return parts[-1]
    return None


def _mangle_private(node, cls) -> None:
    """Rewrite private names as the compiler did (idempotent: a mangled name is not private)."""
    prefix = "_" + cls.lstrip("_") if cls and cls.strip("_") else None
    if prefix is None:
        return
    private = lambda n: n.startswith("__") and not n.endswith("__")  # noqa: E731
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute) and private(n.attr):
            n.attr = prefix + n.attr
        elif isinstance(n, ast.Name) and private(n.id):
            n.id = prefix + n.id


_NO_VALUE = object()


def _cell_value(fn: types.FunctionType, i: int):
    try:
        return fn.__closure__[i].cell_contents
    except ValueError:  # an empty cell (assigned later in the enclosing function)
        return _NO_VALUE


def _is_fixed_cell(value) -> bool:
    """Closure cells bound at transform time (guarded): modules, classes and builtins, whose
    identity lasts (a module imported inside the enclosing function is the module itself).
    Python functions are not: a factory makes a new one per call, which would re-transform."""
    return isinstance(value, (types.ModuleType, type, types.BuiltinFunctionType))


def _foldable_attr(value) -> bool:
    return isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type,
                              int, float, complex, str, bool, type(None))) or callable(value)


def assigned_names(stmts, rebinds: bool = False) -> List[str]:
    """Names bound by a statement list in the current scope (not in nested ones);
    with ``rebinds``, also names given a new value by item writes and in-place
    methods (``y[i] = v``, ``y.add_(x)``), which loops must carry."""
    out: Dict[str, None] = {}

    def target(t):
        if isinstance(t, ast.Name):
            out[t.id] = None
        elif isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and rebinds:
            out[t.value.id] = None  # item writes give the name a new value (see Lifter.write_item)
        elif isinstance(t, (ast.Tuple, ast.List)):
            for e in t.elts:
                target(e)
        elif isinstance(t, ast.Starred):
            target(t.value)

    class V(ast.NodeVisitor):
        def visit_Assign(self, n):
            for t in n.targets:
                target(t)
            self.generic_visit(n)

        def visit_AugAssign(self, n):
            target(n.target)
            self.generic_visit(n)

        def visit_AnnAssign(self, n):
            target(n.target)
            self.generic_visit(n)

        def visit_NamedExpr(self, n):
            target(n.target)
            self.generic_visit(n)

        def visit_For(self, n):
            target(n.target)
            self.generic_visit(n)

        def visit_With(self, n):
            for item in n.items:
                if item.optional_vars is not None:
                    target(item.optional_vars)
            self.generic_visit(n)

        def visit_ExceptHandler(self, n):
            if n.name:
                out[n.name] = None
            self.generic_visit(n)

        def visit_FunctionDef(self, n):
            out[n.name] = None
            for d in n.decorator_list + n.args.defaults + [d for d in n.args.kw_defaults if d]:
                self.visit(d)

        def visit_Import(self, n):
            for a in n.names:
                out[(a.asname or a.name).split(".")[0]] = None

        visit_ImportFrom = visit_Import

        def visit_Delete(self, n):
            for t in n.targets:
                target(t)

        def visit_Lambda(self, n):
            pass

        def visit_Call(self, n):
            f = n.func
            if rebinds and isinstance(f, ast.Attribute) and _inplace_name(f.attr):
                recv = f.value.value if isinstance(f.value, ast.Subscript) else f.value
                if isinstance(recv, ast.Name):
                    out[recv.id] = None  # in-place tensor method
            if rebinds and _mutated_name(n) is not None:
                out[_mutated_name(n).id] = None  # numpy's writes that return None (x.fill(c))
            self.generic_visit(n)

        def _comp(self, n):
            # only walrus targets escape a comprehension
            for w in ast.walk(n):
                if isinstance(w, ast.NamedExpr):
                    target(w.target)

        visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comp

    v = V()
    for s in stmts:
        v.visit(s)
    return list(out)


BOOL_OPS = {operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne, operator.is_,
            operator.is_not, operator.not_, operator.truth, ops.contains, ops.not_contains, ops.loop_cont,
            isinstance, callable, hasattr}


def _mutated_name(call: ast.Call):
    """The name a numpy-style write returning None mutates (``x`` in ``x.fill(c)``,
    ``np.copyto(x, y)``, ``np.add.at(x, i, v)``), or None."""
    f = call.func
    if not isinstance(f, ast.Attribute):
        return None
    if f.attr in ops.MUTATING_METHODS and isinstance(f.value, ast.Name):
        return f.value
    if f.attr in ops.MUTATING_FUNCTIONS and call.args and isinstance(call.args[0], ast.Name):
        return call.args[0]
    return None


def _inplace_name(name: str) -> bool:
    """torch's naming convention for in-place methods (``add_``, not ``__add__``)."""
    return name.endswith("_") and not name.endswith("__")


def _scope_nodes(node):
    """All nodes under ``node`` that belong to its function scope."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if n is not node and isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        stack.extend(ast.iter_child_nodes(n))


def _declared(node, body, file):
    """The names a function declares ``nonlocal`` and ``global`` (in its own scope): one walk
    of its statements, none where neither word is in its source lines."""
    nonlocals, declared = set(), set()
    lines = _source_lines(node, file)
    if lines is not None and not any("nonlocal" in ln or "global" in ln for ln in lines):
        return nonlocals, declared
    for s in body:
        for w in _scope_nodes(s):
            if isinstance(w, ast.Nonlocal):
                nonlocals.update(w.names)
            elif isinstance(w, ast.Global):
                declared.update(w.names)
    return nonlocals, declared


def _source_lines(node, file):
    """The source lines a function node spans (None where they are not at hand)."""
    lines = linecache.getlines(file)
    end = getattr(node, "end_lineno", None)
    if not lines or end is None or end > len(lines):
        return None
    return lines[node.lineno - 1:end]


def _has_jump(stmts) -> bool:
    """Whether a loop body returns, or breaks/continues this loop (not an inner one)."""
    def visit(n, inner):
        if isinstance(n, ast.Return) or isinstance(n, (ast.Break, ast.Continue)) and not inner:
            return True
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return False
        if isinstance(n, (ast.For, ast.While)):
            return any(visit(c, True) for c in n.body) or any(visit(c, inner) for c in n.orelse)
        return any(visit(c, inner) for c in ast.iter_child_nodes(n))
    return any(visit(s, False) for s in stmts)


class Lifter:
    def __init__(self, fn: types.FunctionType):
        self.fn = fn
        self.code = fn.__code__
        self.node, self.file = find_ast(fn)
        _mangle_private(self.node, _owner_class(fn.__qualname__))
        self.var = ir.VarFactory()
        self.globals = fn.__globals__
        self.guards: Dict[str, object] = {}
        self.global_types: Dict[str, type] = {}
        self.region = Region()
        self.env: Dict[str, object] = {}
        self.line = self.node.lineno
        self.cells: Dict[str, Var] = {}
        self.bools: set = set()   # values known to be bools (comparisons...)
        self.shadows: List[Dict[str, Var]] = []   # per enclosing try: names also kept in cells

    # ------------------------------------------------------------ helpers
    @property
    def loc(self):
        return (self.file, self.line)

    def error(self, what: str, node=None, hint: str = ""):
        line = getattr(node, "lineno", self.line)
        raise LiftError(f"torchzygote cannot differentiate {what} in {self.code.co_name!r}"
                        + (f"; {hint}" if hint else ""), (self.file, line))

    def emit(self, fn, *args, kwargs=(), star=None, dstar=None, hint="", out=True) -> Optional[Var]:
        v = self.var(hint) if out else None
        if v is not None and not isinstance(fn, (Var, Const)) and fn in BOOL_OPS:
            self.bools.add(v.id)
        fn = fn if isinstance(fn, (Var, Const)) else Const(fn)
        args = [a if isinstance(a, (Var, Const)) else Const(a) for a in args]
        self.region.nodes.append(Stmt(v, fn, args, list(kwargs), star, dstar, self.loc))
        return v

    def bind(self, name: str, value: Callable[[], object]) -> str:
        """Bind a temporary name to a value computed now (which may branch and
        replace ``self.env``); a branch body for expression-level control flow."""
        v = value()
        self.env[name] = v
        return NONE

    def in_region(self, region: Region, body: Callable[[], str]) -> str:
        saved = self.region
        self.region = region
        try:
            return body()
        finally:
            self.region = saved

    # ------------------------------------------------------------ entry
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
        self.nonlocals, self.declared_globals = _declared(node, body, self.file)
        self.local_names -= self.nonlocals | self.declared_globals
        for n, p in zip(names, params[1:]):
            self.env[n] = p
        for name in self.code.co_cellvars:
            init = [self.env[name]] if name in self.env else []
            self.cells[name] = self.emit(ops.new_cell, *init, hint=name)
        self.env[EXIT] = Const(0)
        self.env[RET] = Const(None)
        self.lift_stmts(body)
        self.region.yields = [self.env[RET]]
        fn = ir.Function(self.code.co_name, params, ["#self"] + names, self.region, self.file, node.lineno,
                         global_types=self.global_types, freevars=self.code.co_freevars)
        # each pass counts every value's uses: only where there is a loop / a list display
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
        ir.verify(fn)
        return fn

    # ------------------------------------------------------------ statements
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
            self.store(t.id, self.emit(iop, self.load(t.id), self.expr(s.value), hint=t.id))
        elif isinstance(t, ast.Attribute):
            obj = self.expr(t.value)
            cur = self.emit(getattr, obj, t.attr)
            self.emit(setattr, obj, t.attr, self.emit(iop, cur, self.expr(s.value)), out=False)
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

    def stmt_Import(self, s):
        for a in s.names:
            self.store(a.asname or a.name.partition(".")[0], self.imported(ops.import_name, a.name, bool(a.asname)))

    def stmt_ImportFrom(self, s):
        module = "." * s.level + (s.module or "")
        for a in s.names:
            if a.name == "*":
                self.error("'import *'", s)
            self.store(a.asname or a.name, self.imported(ops.import_from, module, a.name, self.globals.get("__package__")))

    def imported(self, op, *args):
        """The module or name an import binds, as a constant found now (so calls through it resolve to
        rules at transform time); an import that fails now happens when the statement runs, as in
        Python (``if "jax" in sys.modules: import jax`` must not raise on a machine without jax)."""
        try:
            return Const(op(*args))
        except ImportError:
            return self.emit(op, *args, hint="module")

    def stmt_If(self, s):
        cond = self.expr(s.test)
        return self.branch(cond, lambda: self.lift_stmts(s.body), lambda: self.lift_stmts(s.orelse))

    def stmt_FunctionDef(self, s):
        f = self.make_function(s, s.name)
        for d in reversed(s.decorator_list):
            f = self.emit(self.expr(d), f)
        self.store(s.name, f)

    def stmt_Try(self, s):
        if not s.handlers:  # try/finally: the finally block runs after the body
            st = self.lift_stmts(s.body + s.orelse)
            return _seq_state(st, self.lift_stmts(s.finalbody)) if s.finalbody else st
        # names the body assigns are kept in cells too, so a handler and the code after it
        # see the values assigned before the exception, as Python's locals would show
        shadow = {n: self.emit(ops.new_cell, self.env.get(n, Const(UNDEF)), hint=n)
                  for n in assigned_names(s.body, rebinds=True)
                  if n in self.local_names and n not in self.cells}
        self.shadows.append(shadow)
        env0 = dict(self.env)
        regions, envs, states, handlers = [], [], [], []

        def body():
            st = self.lift_stmts(s.body)
            return _seq_state(st, self.lift_stmts(s.orelse)) if st == NONE else st

        for h in [None] + s.handlers:
            self.env = dict(env0)
            r = Region()
            if h is None:
                st = self.in_region(r, body)
            else:
                typ = self.expr(h.type) if h.type is not None else Const(BaseException)
                if not isinstance(typ, Const):
                    self.error("an 'except' clause whose type is not a global name", h)
                exc = self.var(h.name) if h.name else None
                if h.name:
                    self.store(h.name, exc)

                def handler(h=h):
                    if shadow:
                        self.emit(ops.try_guard, Const(self.loc), self.emit(ops.build_tuple, *shadow.values()),
                                  self.emit(ops.build_tuple, *(env0.get(n, Const(UNDEF)) for n in shadow)))
                    for n, cell in shadow.items():
                        self.env[n] = self.emit(getattr, cell, "cell_contents", hint=n)
                    return self.lift_stmts(h.body)
                st = self.in_region(r, handler)
                handlers.append((typ, exc, r))
            regions.append(r)
            envs.append(self.env)
            states.append(st)
        self.shadows.pop()
        outs = self.merge(regions, envs, states, env0)
        self.region.nodes.append(Try(regions[0], handlers, outs, self.loc))
        state = _join_states(states)
        if s.finalbody:
            state = _seq_state(state, self.lift_stmts(s.finalbody))
        return state

    def stmt_With(self, s):
        """``with m as v: body`` runs ``m.__enter__()``/``m.__exit__()`` as they are (not
        differentiated); the body is differentiated, and an exception in it still exits."""
        mgrs = []
        for item in s.items:
            mgr = self.expr(item.context_expr)
            val = self.emit(ops.with_enter, mgr)
            if item.optional_vars is not None:
                self.assign(item.optional_vars, val)
            mgrs.append(mgr)
        env0 = dict(self.env)
        r, hr = Region(), Region()
        st = self.in_region(r, lambda: self.lift_stmts(s.body))
        envs = [self.env]
        self.env = dict(env0)
        exc = self.var("exc")
        self.in_region(hr, lambda: self.emit(ops.with_exit_raise, exc, *reversed(mgrs), out=False))
        outs = self.merge([r, hr], envs + [self.env], [st, RAISES], env0)
        self.region.nodes.append(Try(r, [(Const(BaseException), exc, hr)], outs, self.loc))
        for mgr in reversed(mgrs):
            self.emit(ops.with_exit, mgr, out=False)
        if any(self._no_grad_block(item.context_expr) for item in s.items):
            # as with torch autograd, values computed under no_grad are constants
            for n in assigned_names(s.body):
                if n in self.local_names and n not in self.cells and n in self.env:
                    self.env[n] = self.emit(ops.stop_gradient, self.env[n], hint=n)
        return st

    def _no_grad_block(self, e) -> bool:
        """``with torch.no_grad():`` (or ``torch.inference_mode()``)."""
        import torch
        if not isinstance(e, ast.Call):
            return False
        try:
            fn = self.expr(e.func)
        except LiftError:
            return False
        return isinstance(fn, Const) and fn.value in (torch.no_grad, torch.inference_mode)

    def stmt_While(self, s):
        return self.loop(s, None)

    def stmt_For(self, s):
        return self.loop(s, self.expr(s.iter))

    # ------------------------------------------------------------ control flow
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
        return _join_states(states)

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
            for r, e, st in zip(regions, envs, states):
                r.yields.append(e.get(n, Const(UNDEF)) if st != RAISES or e in live else Const(UNDEF))
        self.env = merged
        return outs

    def loop(self, s, iterable) -> str:
        body = s.body
        jumps = _has_jump(body)
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
        item = self.var("item") if iterable is not None else None
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
        for n, o in zip(carried, outs):
            self.env[n] = o
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

    # ------------------------------------------------------------ names
    def load(self, name: str):
        if name in self.cells:
            return self.emit(getattr, self.cells[name], "cell_contents", hint=name)
        if name in self.local_names:
            v = self.env.get(name, Const(UNDEF))
            return v
        if name in self.code.co_freevars:
            i = self.code.co_freevars.index(name)
            val = _cell_value(self.fn, i)
            if name not in self.nonlocals and _is_fixed_cell(val):
                self.guards[i] = val  # like a module-level import: bound now, guarded by identity
                return Const(val)
            cell = self.emit(ops.closure_cell, self.self_var, i)
            return self.emit(getattr, cell, "cell_contents", hint=name)
        return self.load_global(name)

    def load_global(self, name: str):
        g = self.globals
        if name in self.declared_globals:  # written here: always read at run time
            return self.emit(ops.get_global, self.self_var, name, hint=name)
        if name in g:
            val = g[name]
            if _is_constant_global(val):
                self.guards[name] = val
                return Const(val)
            self.global_types[name] = type(val)  # data: specialised on its type (guarded)
            return self.emit(ops.get_global, self.self_var, name, hint=name)
        b = g.get("__builtins__", builtins)
        b = b if isinstance(b, dict) else b.__dict__
        if name in b:
            self.guards[name] = None  # must stay unbound in the module globals
            return Const(b[name])
        return self.emit(ops.get_global, self.self_var, name, hint=name)

    def store(self, name: str, v):
        if name in self.cells:
            self.emit(setattr, self.cells[name], "cell_contents", v, out=False)
        elif name in self.nonlocals:
            cell = self.emit(ops.closure_cell, self.self_var, self.code.co_freevars.index(name))
            self.emit(setattr, cell, "cell_contents", v, out=False)
        elif name in self.declared_globals:
            self.emit(ops.set_global, self.self_var, name, v, out=False)
        else:
            self.env[name] = v
            if isinstance(v, Var) and not v.hint:
                v.hint = name   # generated code names its adjoint after it (dx, dW)
            for shadow in self.shadows:
                if name in shadow:
                    self.emit(setattr, shadow[name], "cell_contents", v, out=False)

    def assign(self, t, v):
        if isinstance(t, ast.Name):
            self.store(t.id, v)
        elif isinstance(t, (ast.Tuple, ast.List)):
            stars = [i for i, e in enumerate(t.elts) if isinstance(e, ast.Starred)]
            if stars:
                i = stars[0]
                parts = self.emit(ops.unpack_star, v, i, len(t.elts) - i - 1)
                elts = [e.value if isinstance(e, ast.Starred) else e for e in t.elts]
            else:
                parts = self.emit(ops.unpack, v, len(t.elts))
                elts = t.elts
            for k, e in enumerate(elts):
                self.assign(e, self.emit(operator.getitem, parts, k))
        elif isinstance(t, ast.Attribute):
            self.emit(setattr, self.expr(t.value), t.attr, v, out=False)
        elif isinstance(t, ast.Subscript):
            self.write_item(t, self.expr(t.value), self.subscript_key(t.slice), v)
        else:
            self.error(f"assignment to {type(t).__name__}", t)

    def _local(self, e) -> bool:
        """Whether ``e`` is a name of this function (a plain local, or one kept in a cell
        because a nested function reads it, or a nonlocal): mutations give it a new value."""
        return isinstance(e, ast.Name) and (e.id in self.local_names or e.id in self.cells or
                                            e.id in self.nonlocals)

    def write_item(self, t: ast.Subscript, obj, key, v):
        """``obj[key] = v``; through a name, the name and its aliases take the mutated
        object as a new value (so a tensor's old value stays a value)."""
        if self._local(t.value):
            self.renew(t.value.id, obj, self.emit(ops.setitem_v, obj, key, v, hint=t.value.id))
        else:
            self.emit(operator.setitem, obj, key, v, out=False)

    def renew(self, name: str, old, new):
        """``name`` (and the local names bound to the same value) now hold ``new``; a name
        kept in a cell gets it written to its cell, so nested functions read it too."""
        if name in self.cells or name in self.nonlocals:
            self.store(name, new)
        self.rebind(old, new)

    def rebind(self, old, new):
        for name, val in list(self.env.items()):
            if val == old and not name.startswith("$"):
                self.env[name] = new

    # ------------------------------------------------------------ expressions
    def expr(self, e):
        meth = getattr(self, "expr_" + type(e).__name__, None)
        if meth is None:
            for kind, what in UNSUPPORTED.items():
                if isinstance(e, kind):
                    self.error(what, e)
            self.error(f"the expression {type(e).__name__}", e)
        if hasattr(e, "lineno"):
            self.line = e.lineno
        return meth(e)

    def expr_Constant(self, e):
        return Const(e.value)

    def expr_Name(self, e):
        return self.load(e.id)

    def expr_NamedExpr(self, e):
        v = self.expr(e.value)
        self.assign(e.target, v)
        return v

    def expr_BinOp(self, e):
        a, b = self.expr(e.left), self.expr(e.right)
        op = BINOPS[type(e.op)]
        if isinstance(a, Const) and isinstance(b, Const) and type(a.value) in (int, float) and \
                type(b.value) in (int, float) and op in FOLDABLE:
            try:  # ``4.0 / 3.0`` is one number, as CPython folds it
                v = op(a.value, b.value)
            except ArithmeticError:
                v = None  # the error belongs to run time, at this line
            if type(v) is float or type(v) is int and v.bit_length() < 64:
                return Const(v)
        return self.emit(op, a, b)

    def expr_UnaryOp(self, e):
        v = self.expr(e.operand)
        if isinstance(v, Const) and isinstance(v.value, (int, float, complex)) and not isinstance(e.op, ast.Not):
            return Const(UNOPS[type(e.op)](v.value))
        return self.emit(UNOPS[type(e.op)], v)

    def expr_BoolOp(self, e):
        is_and = isinstance(e.op, ast.And)

        def chain(values):
            first = self.expr(values[0])
            if len(values) == 1:
                return first
            keep = lambda: self.bind("$bool", lambda: first)
            rest = lambda: self.bind("$bool", lambda: chain(values[1:]))
            self.branch(first, rest if is_and else keep, keep if is_and else rest)
            return self.env.pop("$bool")

        return chain(e.values)

    def expr_Compare(self, e):
        left = self.expr(e.left)
        if len(e.ops) == 1:
            return self.cmp(e.ops[0], left, self.expr(e.comparators[0]))

        def chain(left, i):
            right = self.expr(e.comparators[i])
            r = self.cmp(e.ops[i], left, right)
            if i + 1 == len(e.ops):
                return r
            keep = lambda: self.bind("$bool", lambda: r)
            rest = lambda: self.bind("$bool", lambda: chain(right, i + 1))
            self.branch(r, rest, keep)
            return self.env.pop("$bool")

        return chain(left, 0)

    def cmp(self, op, a, b):
        f = CMPOPS[type(op)]
        if f in (ops.contains, ops.not_contains):
            return self.emit(f, b, a)
        return self.emit(f, a, b)

    def expr_IfExp(self, e):
        cond = self.expr(e.test)
        self.branch(cond, lambda: self.bind("$if", lambda: self.expr(e.body)),
                    lambda: self.bind("$if", lambda: self.expr(e.orelse)))
        return self.env.pop("$if")

    def expr_Attribute(self, e):
        obj = self.expr(e.value)
        if isinstance(obj, Const) and isinstance(obj.value, types.ModuleType):
            try:
                val = getattr(obj.value, e.attr)
            except AttributeError:
                val = None
            else:
                if _foldable_attr(val):
                    return Const(val)
        return self.emit(getattr, obj, e.attr, hint=e.attr)

    def subscript_key(self, s):
        if isinstance(s, ast.Slice):
            parts = [self.expr(p) if p is not None else Const(None) for p in (s.lower, s.upper, s.step)]
            if all(isinstance(p, Const) for p in parts):
                return Const(slice(*(p.value for p in parts)))
            return self.emit(slice, *parts)
        return self.expr(s)

    def expr_Subscript(self, e):
        obj = self.expr(e.value)
        return self.emit(operator.getitem, obj, self.subscript_key(e.slice))

    def expr_Slice(self, e):
        return self.subscript_key(e)

    def seq_parts(self, elts, build, cat):
        if not any(isinstance(x, ast.Starred) for x in elts):
            vals = [self.expr(x) for x in elts]
            if build is ops.build_tuple and all(isinstance(v, Const) for v in vals):
                return Const(tuple(v.value for v in vals))
            return self.emit(build, *vals)
        parts, run = [], []
        for x in elts:
            if isinstance(x, ast.Starred):
                if run:
                    parts.append(self.emit(ops.build_tuple, *run))
                    run = []
                parts.append(self.expr(x.value))
            else:
                run.append(self.expr(x))
        if run:
            parts.append(self.emit(ops.build_tuple, *run))
        return self.emit(cat, *parts)

    def expr_Tuple(self, e):
        return self.seq_parts(e.elts, ops.build_tuple, ops.cat_tuple)

    def expr_List(self, e):
        return self.seq_parts(e.elts, ops.build_list, ops.cat_list)

    def expr_Set(self, e):
        return self.emit(ops.build_set, *[self.expr(x) for x in e.elts])

    def expr_Dict(self, e):
        if any(k is None for k in e.keys):
            parts = []
            for k, v in zip(e.keys, e.values):
                parts.append(self.expr(v) if k is None else self.emit(ops.build_dict, self.expr(k), self.expr(v)))
            return self.emit(ops.merge_dict, *parts)
        args = []
        for k, v in zip(e.keys, e.values):
            args += [self.expr(k), self.expr(v)]
        return self.emit(ops.build_dict, *args)

    def expr_JoinedStr(self, e):
        parts = []
        for v in e.values:
            if isinstance(v, ast.FormattedValue):
                spec = self.expr(v.format_spec) if v.format_spec is not None else Const("")
                parts.append(self.emit(ops.format_value, self.expr(v.value), v.conversion, spec))
            else:
                parts.append(self.expr(v))
        return self.emit(ops.join_str, *parts)

    def expr_Call(self, e):
        if isinstance(e.func, ast.Name) and e.func.id == "super" and not e.args and "__class__" in self.code.co_freevars:
            first = self.env[self.node.args.args[0].arg] if self.node.args.args else None
            return self.emit(super, self.load("__class__"), first)
        is_method = isinstance(e.func, ast.Attribute)
        item_of = None  # (base, key) for an in-place method on an item: ``y[k].mul_(3)``
        if is_method and _inplace_name(e.func.attr) and isinstance(e.func.value, ast.Subscript) and \
                self._local(e.func.value.value):
            base, key = self.expr(e.func.value.value), self.subscript_key(e.func.value.slice)
            obj, item_of = self.emit(operator.getitem, base, key), (base, key)
        elif is_method:
            obj = self.expr(e.func.value)
            if isinstance(obj, Const) and isinstance(obj.value, types.ModuleType):
                fn, is_method = self.expr_Attribute(e.func), False
        else:
            fn = self.expr(e.func)
        args = [self.genexp_arg(a) for a in e.args if not isinstance(a, ast.Starred)]
        star = None
        if any(isinstance(a, ast.Starred) for a in e.args):
            star = self.seq_parts(e.args, ops.build_tuple, ops.cat_tuple)
            args = []
        kwargs, dstar = [], None
        if any(k.arg is None for k in e.keywords):
            parts = []
            for k in e.keywords:
                parts.append(self.expr(k.value) if k.arg is None else
                             self.emit(ops.build_dict, Const(k.arg), self.expr(k.value)))
            dstar = self.emit(ops.merge_dict, *parts)
        else:
            kwargs = [(k.arg, self.expr(k.value)) for k in e.keywords]
        self.line = e.lineno
        if is_method:
            head = (obj, Const(e.func.attr))
            if star is not None:  # the star tuple holds every positional argument: the object and name too
                star, head = self.emit(ops.cat_tuple, self.emit(ops.build_tuple, *head), star), ()
            if item_of is None and star is None:
                self._mark_untracked(e, obj, args, kwargs)
            out = self.emit(ops.call_method, *head, *args, kwargs=kwargs, star=star, dstar=dstar,
                            hint=e.func.attr)
            if item_of is not None:  # the item is a view: write it back, so the base gets a new value
                self.renew(e.func.value.value.id, item_of[0],
                           self.emit(ops.setitem_v, item_of[0], item_of[1], out))
            elif _inplace_name(e.func.attr) and self._local(e.func.value):
                self.renew(e.func.value.id, obj, out)  # torch's in-place methods return the mutated tensor
            else:
                self._renew_mutated(e, obj, args, star, out)
            return out
        if star is None:
            self._mark_untracked(e, None, args, kwargs)
        out = self.emit(fn, *args, kwargs=kwargs, star=star, dstar=dstar)
        self._renew_mutated(e, None, args, star, out)
        return out

    def _mark_untracked(self, e, obj, args, kwargs):
        """An in-place write into an object that no local name holds (``G.mul_(x)`` on a global,
        ``np.copyto(self.buf, y)``): its new contents cannot be followed, so codegen refuses it
        where the written values carry gradients (``ops.untracked_write``)."""
        f = e.func
        if not isinstance(f, ast.Attribute):
            return
        if obj is not None and (_inplace_name(f.attr) or f.attr in ops.MUTATING_METHODS):
            node, target = f.value, obj
        elif f.attr in ops.MUTATING_FUNCTIONS and args:
            node, target = e.args[0], args[0]
        else:
            return
        if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)) and not self._local(node):
            self.emit(ops.untracked_write, target, *args, *(v for _, v in kwargs), out=False)

    def _renew_mutated(self, e, obj, args, star, out):
        """After ``x.fill(c)``, ``np.copyto(x, y)``, ``np.add.at(x, i, v)``: ``x`` (a local name)
        takes the written object as a new value."""
        name = _mutated_name(e)
        if name is None or star is not None or not self._local(name):
            return
        old = obj if name is e.func.value else args[0]
        self.renew(name.id, old, self.emit(ops.mutated, old, out))

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

        def level(i):
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

                def conds(j):
                    if j == len(g.ifs):
                        if i + 1 < len(e.generators):
                            level(i + 1)
                        elif kind == "dict":
                            self.emit(operator.setitem, acc, self.expr(e.key), self.expr(e.value), out=False)
                        else:
                            self.emit(ops.call_method, acc, Const("append" if kind == "list" else "add"),
                                      self.expr(e.elt), out=False)
                        return NONE
                    c = self.expr(g.ifs[j])
                    return self.branch(c, lambda: conds(j + 1), lambda: NONE)

                conds(0)
                r.yields = [self.env.get(n, Const(UNDEF)) for n in carried] + [Const(True)]
                return NONE

            self.in_region(r, trip)
            outs = [self.var(n) for n in carried]
            self.region.nodes.append(Loop(params, inits, r, outs, it, item, self.loc))
            self.env = env0
            for n, o in zip(carried, outs):
                self.env[n] = o

        level(0)
        self.local_names = shadow_local
        escaped = {n: self.env[n] for n in walrus if n in self.env}
        self.env = saved
        self.env.update(escaped)
        return acc

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


def _seq_state(a: str, b: str) -> str:
    if a in (ALWAYS, RAISES):
        return a
    if a == MAYBE:
        return MAYBE
    return b


def _join_states(states) -> str:
    live = [s for s in states if s != RAISES]
    if not live:
        return RAISES
    if all(s == ALWAYS for s in live):
        return ALWAYS
    if all(s == NONE for s in live):
        return NONE
    return MAYBE


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


def lift(fn: types.FunctionType):
    """Lift ``fn`` to IR; returns ``(ir.Function, guards)``: the globals (by name) and
    closure cells (by index) resolved as constants (``None`` for builtins, which must stay
    unshadowed)."""
    lifter = Lifter(fn)
    return lifter.lift(), lifter.guards
