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
# reads of outside state, and what writes a value back to the place read (``Names.write_back``)
_PLACES = ((getattr, ops.rewrite_attr), (ops.module_data, ops.rewrite_attr), (operator.getitem, ops.rewrite_item),
           (ops.get_global, ops.rewrite_global))
_VIEW_ATTRS = ("T", "mT", "H", "mH", "real", "imag", "data")   # a tensor's views: not a place
_ITERS = (iter, enumerate, zip, reversed, list, tuple, sorted, filter, map)   # what holds an outside container's items
_NOTED = {id(f) for f in (*(g for g, _ in _PLACES), *_ITERS, next, ops.unpack, ops.unpack_star)}


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
        mangle_private(self.node, owner_class(fn.__qualname__, fn.__code__))
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
        self.grad: Optional[bool] = None   # the grad mode ``with`` blocks set here (``Stmt.grad``)
        # value -> (rewrite op, the read's operands) where it was read from outside state, None for an
        # unknown place there (``write_back``); values methods returned (``outside``)
        self.places: Dict[int, Optional[tuple]] = {}
        self.methods: set = set()
        self.derived: set = set()   # iterators, copies and zips of outside containers (``_note_place``)

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
        mode = None if isinstance(fn, Const) and fn.value is ops.make_function else self.grad   # (its body runs later)
        self.region.nodes.append(Stmt(v, fn, args, list(kwargs), star, dstar, self.loc, mode))
        if v is not None and isinstance(fn, Const):
            self._note_place(v, fn.value, args)
        return v

    def _note_place(self, v: Var, f, args) -> None:
        """``places``: a read of outside state (an attribute, a global, an item of a container read
        there), where it was read; an item of something read there (unpacked, iterated) or of a
        method's result (``self.buffers()``), an unknown place. Not a tensor's view attributes
        (``x.T``), nor an item of a container made here (its reads are checked at run time)."""
        if f is ops.call_method:
            self.methods.add(v.id)
        if id(f) not in _NOTED:   # (most statements: a quick way out)
            return
        first = args[0] if args and isinstance(args[0], Var) else None
        outside = first is not None and first.id in self.places
        rewrite = next((r for g, r in _PLACES if g is f), None) if len(args) == 2 else None
        view = f is getattr and len(args) == 2 and isinstance(args[1], Const) and args[1].value in _VIEW_ATTRS
        if first is not None and (self.places.get(first.id, ()) is None or first.id in self.derived and
                                  (f is operator.getitem or f is next)) or \
                (f is ops.unpack or f is ops.unpack_star or view or f is next) and outside:
            self.places[v.id] = None
        elif rewrite is not None and (f is not operator.getitem or outside) and not view:
            self.places[v.id] = (rewrite, args)
        elif any(f is g for g in _ITERS) and any(isinstance(a, Var) and (a.id in self.places or a.id in self.derived)
                                                 for a in args):
            self.derived.add(v.id)   # (``enumerate(self.bufs)``: its items are outside state's)

    def written_in_place(self, old, new):
        """What a local name holds after an in-place write of ``new`` into ``old``: under
        ``torch.no_grad()`` the write is not differentiated but the gradient passes through it to
        the old value, as torch autograd's does (``w.clamp_(0, 1)`` there)."""
        if self.grad is not False or not isinstance(old, Var):
            return new
        self.grad = True
        try:
            return self.emit(ops.through, old, new)
        finally:
            self.grad = False

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
            self.renew(t.value.id, obj, self.emit(ops.setitem_v, obj, key, v, hint=t.value.id), (v,))
        else:
            self.emit(operator.setitem, obj, key, v, out=False)

    def renew(self, name: str, old, new, values=()):
        """``name`` (and the local names bound to the same value) now hold ``new``, what an
        in-place write of ``values`` made of ``old``; a name kept in a cell gets it written to its
        cell, so nested functions read it too."""
        new = self.written_in_place(old, new)
        self.write_back(old, new, values)
        if name in self.cells or name in self.nonlocals:
            self.store(name, new)
        self.rebind(old, new)

    def join_place(self, out: Var, vals) -> None:
        """``places`` for a value merged from ``vals`` (a branch's, a loop's): where they all were
        read, or an unknown place where some were read from outside state elsewhere or not at all."""
        found = [self.places.get(v.id, ()) if isinstance(v, Var) else () for v in vals]
        if any(f != () for f in found):
            self.places[out.id] = found[0] if all(f is found[0] for f in found) else None

    def write_back(self, old, new, values=()) -> None:
        """An in-place write through a local name into a tensor read from outside state (``b =
        self.buf``, ``b = bufs[0]``, ``b = G``; ``places``) changes what the state holds too: the
        write's new value is also written there, so the state's later reads get its gradient
        (``ops.rewrite_attr`` checks that the place still holds that tensor; otherwise, a property
        that computed it, nothing is written). Where the place is unknown (``for b in
        self.bufs``), a write of values that carry gradients is refused (``ops.untracked_write``)."""
        if not isinstance(old, Var) or old.id not in self.places:
            return
        place = self.places[old.id]
        if place is None:
            self.emit(ops.untracked_write, new, *values, out=False)   # (new: old is not read after the write)
            self.places[new.id] = None
            return
        rewrite, args = place
        if rewrite is ops.rewrite_attr and isinstance(args[1], Const) and args[1].value == "cell_contents":
            return
        self.emit(rewrite, *args[:2], new, hint="same")
        self.places[new.id] = place

    def rebind(self, old, new):
        for name, val in list(self.env.items()):
            if val == old and not name.startswith("$"):
                self.env[name] = new
