"""The lifter's core: the region being built, statements emitted into it, and Python's names
read and written (locals as SSA values in an environment, cells for names nested functions
share, closure cells, globals and builtins resolved at transform time as guarded constants).

Each construct's lifting is a mixin on ``Names`` (``control``, ``statements``,
``expressions``, ``functions``), composed into ``lift.Lifter``.
"""
from __future__ import annotations

import ast
import builtins
import operator
import types
from typing import Callable, Dict, List, Optional

from .. import ir
from ..errors import LiftError
from ..ir import UNDEF, Const, Region, Stmt, Var
from . import bound, ops
from .scopes import mangle_private, owner_class
from .source import find_ast

# how a statement list may leave: not, maybe, always (return/break/continue), by raising
NONE, MAYBE, ALWAYS, RAISES = "none", "maybe", "always", "raises"
EXIT, RET = "$exit", "$ret"   # the exit flag and the return value, as names in the environment

BOOL_OPS = {operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne, operator.is_,
            operator.is_not, operator.not_, operator.truth, ops.contains, ops.not_contains, ops.loop_cont,
            isinstance, callable, hasattr}


def _is_constant_global(value) -> bool:
    """Globals bound at transform time (guarded): code, not data."""
    return isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type,
                              types.MethodType)) or callable(value) and not hasattr(value, "__dict__")


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


def fixed_cell_values(fn: types.FunctionType) -> tuple:
    """The values of ``fn``'s closure cells that its transform binds as constants (None for the
    others): closures of one code with other such values have other transforms."""
    return tuple(v if _is_fixed_cell(v) else None
                 for v in (_cell_value(fn, i) for i in range(len(fn.__code__.co_freevars))))


class Names:
    def __init__(self, fn: types.FunctionType):
        self.fn = fn
        self.code = fn.__code__
        self.node, self.file = find_ast(fn)
        mangle_private(self.node, owner_class(fn.__qualname__))
        self.var = ir.VarFactory()
        self.globals = fn.__globals__
        self.guards: Dict[object, object] = {}   # global name, closure index or (module, attribute) -> value
        self.global_types: Dict[str, type] = {}
        self.region = Region()
        self.env: Dict[str, object] = {}
        self.line = self.node.lineno
        self.cells: Dict[str, Var] = {}
        self.fixed_cells: set = set()   # parameters in cells that nothing rebinds (scopes.fixed_cells)
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

    # ------------------------------------------------------------ names
    def load(self, name: str):
        if name in self.cells:
            if name in self.fixed_cells:   # never rebound: its cell holds the parameter's value
                return self.env[name]
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
            self.guards[name] = bound.ABSENT  # must stay unbound in the module globals
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
            self.set_attr(self.expr(t.value), t.attr, v)
        elif isinstance(t, ast.Subscript):
            self.write_item(t, self.expr(t.value), self.subscript_key(t.slice), v)
        else:
            self.error(f"assignment to {type(t).__name__}", t)

    def set_attr(self, obj, name: str, v) -> None:
        if isinstance(obj, Const) and isinstance(obj.value, types.ModuleType):   # (see ``bound``)
            self.emit(ops.check_module_write, obj, name, v, out=False)
        self.emit(setattr, obj, name, v, out=False)

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
