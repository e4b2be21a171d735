"""What the AST says about a function's scope, before anything is lifted: the names a
statement list binds, the names declared ``nonlocal``/``global``, private names as the
compiler mangles them, whether a loop body jumps out, and which calls write in place."""
from __future__ import annotations

import ast
import linecache
import types
from typing import Dict, List

from . import ops


def owner_class(qualname: str, code=None):
    """The class whose body defines the function (``C.m``, ``C.m.<locals>.g``), if any:
    Python spells its private names ``__x`` as ``_C__x`` there. None where ``code`` (the
    function's) still spells one of them ``__x``: it was compiled outside a class body, whatever
    its qualname says (generated code, ``fwd[C.m]``, lifted again by nested AD)."""
    if code is not None and _unmangled(code):
        return None
    parts = qualname.split(".")[:-1]
    while parts:
        if parts[-1] == "<locals>":
            parts = parts[:-2]   # the enclosing function
            continue
        return parts[-1]
    return None


def _unmangled(code) -> bool:
    names = code.co_names + code.co_varnames + code.co_cellvars + code.co_freevars
    return any(n.startswith("__") and not n.endswith("__") for n in names) or \
        any(_unmangled(c) for c in code.co_consts if isinstance(c, types.CodeType))


def mangle_private(node, cls) -> None:
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


def inplace_name(name: str) -> bool:
    """torch's naming convention for in-place methods (``add_``, not ``__add__``)."""
    return name.endswith("_") and not name.endswith("__")


def mutated_name(call: ast.Call):
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


class _Binder(ast.NodeVisitor):
    """Collects the names statements bind in the current scope (see ``assigned_names``)."""

    def __init__(self, rebinds: bool):
        self.rebinds = rebinds
        self.out: Dict[str, None] = {}

    def target(self, t):
        if isinstance(t, ast.Name):
            self.out[t.id] = None
        elif isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and self.rebinds:
            self.out[t.value.id] = None  # item writes give the name a new value (see Names.write_item)
        elif isinstance(t, (ast.Tuple, ast.List)):
            for e in t.elts:
                self.target(e)
        elif isinstance(t, ast.Starred):
            self.target(t.value)

    def visit_Assign(self, n):
        for t in n.targets:
            self.target(t)
        self.generic_visit(n)

    def visit_AugAssign(self, n):
        self.target(n.target)
        self.generic_visit(n)

    visit_AnnAssign = visit_NamedExpr = visit_For = visit_AugAssign

    def visit_With(self, n):
        for item in n.items:
            if item.optional_vars is not None:
                self.target(item.optional_vars)
        self.generic_visit(n)

    def visit_ExceptHandler(self, n):
        if n.name:
            self.out[n.name] = None
        self.generic_visit(n)

    def visit_FunctionDef(self, n):
        self.out[n.name] = None
        for d in n.decorator_list + n.args.defaults + [d for d in n.args.kw_defaults if d]:
            self.visit(d)

    def visit_Import(self, n):
        for a in n.names:
            self.out[(a.asname or a.name).split(".")[0]] = None

    visit_ImportFrom = visit_Import

    def visit_Delete(self, n):
        for t in n.targets:
            self.target(t)

    def visit_Lambda(self, n):
        pass

    def visit_Call(self, n):
        f = n.func
        if self.rebinds and isinstance(f, ast.Attribute) and inplace_name(f.attr):
            recv = f.value.value if isinstance(f.value, ast.Subscript) else f.value
            if isinstance(recv, ast.Name):
                self.out[recv.id] = None  # in-place tensor method
        if self.rebinds and mutated_name(n) is not None:
            self.out[mutated_name(n).id] = None  # numpy's writes that return None (x.fill(c))
        self.generic_visit(n)

    def _comp(self, n):
        # only walrus targets escape a comprehension
        for w in ast.walk(n):
            if isinstance(w, ast.NamedExpr):
                self.target(w.target)

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comp


def assigned_names(stmts, rebinds: bool = False) -> List[str]:
    """Names bound by a statement list in the current scope (not in nested ones);
    with ``rebinds``, also names given a new value by item writes and in-place
    methods (``y[i] = v``, ``y.add_(x)``), which loops must carry."""
    v = _Binder(rebinds)
    for s in stmts:
        v.visit(s)
    return list(v.out)


def fixed_cells(params, cellvars, body) -> set:
    """Parameters kept in cells (a nested function or comprehension reads them) that nothing
    rebinds: not this function (assignments, item writes, in-place methods, ``del``) and no
    nested function (``nonlocal``). This function's own reads of them are the parameter's value,
    as for any local, so their kinds stay known (``dt`` read by a comprehension in an ODE solver)."""
    fixed = set(params) & set(cellvars)
    if not fixed:
        return fixed
    fixed -= set(assigned_names(body, rebinds=True))
    for s in body:
        for n in ast.walk(s):
            if isinstance(n, ast.Nonlocal):
                fixed -= set(n.names)
    return fixed


def _scope_nodes(node):
    """All nodes under ``node`` that belong to its function scope."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if n is not node and isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        stack.extend(ast.iter_child_nodes(n))


def declared(node, body, file):
    """The names a function declares ``nonlocal`` and ``global`` (in its own scope): one walk
    of its statements, none where neither word is in its source lines."""
    nonlocals, globals_ = set(), set()
    lines = _source_lines(node, file)
    if lines is not None and not any("nonlocal" in ln or "global" in ln for ln in lines):
        return nonlocals, globals_
    for s in body:
        for w in _scope_nodes(s):
            if isinstance(w, ast.Nonlocal):
                nonlocals.update(w.names)
            elif isinstance(w, ast.Global):
                globals_.update(w.names)
    return nonlocals, globals_


def _source_lines(node, file):
    """The source lines a function node spans (None where they are not at hand)."""
    lines = linecache.getlines(file)
    end = getattr(node, "end_lineno", None)
    if not lines or end is None or end > len(lines):
        return None
    return lines[node.lineno - 1:end]


def has_jump(stmts) -> bool:
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
