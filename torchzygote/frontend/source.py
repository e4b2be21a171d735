"""Finding the AST of a function object from its code object."""
import __future__
import ast
import bisect
import collections
import functools
import inspect
import linecache
import operator
import textwrap
import threading
import types

from ..errors import LiftError

_lock = threading.Lock()
# (file, hash of its lines) -> _Index of its function nodes: every file's, but of code made at run time
# (generated code, registered sources: names in <>) only the last few lifted. Each holds its syntax
# tree, and generated code is a new file per transform (kept, they were half the objects a triple
# derivative left behind, and made Python's full collections run)
_trees: dict = {}
_made: "collections.OrderedDict" = collections.OrderedDict()   # those keys of code made at run time, oldest first
_MADE_KEPT = 16
_FUTURE_FLAGS = functools.reduce(operator.or_, (getattr(__future__, n).compiler_flag
                                                for n in __future__.all_feature_names))


class _Index:
    """One version of a file: its functions and lambdas by (name, line), the top-level
    statement holding each, and those statements compiled (to check the code that runs)."""

    def __init__(self, tree: ast.Module):
        self.nodes: dict = {}
        self.top: dict = {}        # id(function node) -> its top-level statement
        self.compiled: dict = {}   # (id(top-level statement), future flags) -> code object
        # the module's imports: CPython compiles `math.sin(x)` differently when `math` is
        # a module-level import, so each statement is compiled after them
        self.imports = [n for stmt in tree.body for n in _module_level(stmt)
                        if isinstance(n, ast.Import) or isinstance(n, ast.ImportFrom) and n.module != "__future__"]
        # top-level statements by the lines they span; each is walked for its functions and
        # lambdas when a code object first starts in it (a file's other functions never are)
        self._spans = sorted((_first_line(stmt), stmt.end_lineno or stmt.lineno, i) for i, stmt in enumerate(tree.body))
        self._starts = [a for a, _, _ in self._spans]
        self._body = tree.body
        self._walked: set = set()

    def candidates(self, name: str, line: int):
        i = bisect.bisect_right(self._starts, line) - 1
        holding = []   # the statements spanning the line: more than one where they share it
        while i >= 0 and self._spans[i][1] >= line:
            holding.append(self._spans[i][2])
            i -= 1
        if len(holding) == 1:
            stmt = self._body[holding[0]]
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == name and \
                    line in (stmt.lineno, _first_line(stmt)):
                # a module-level def: nothing nested in it starts on its first line with its name
                self.top[id(stmt)] = stmt
                return [stmt]
        for k in holding:
            if k not in self._walked:
                self._walk(self._body[k])
                self._walked.add(k)
        return self.nodes.get((name, line), ())

    def _walk(self, stmt):
        for node in ast.walk(stmt):
            if isinstance(node, ast.Lambda):
                self.nodes.setdefault(("<lambda>", node.lineno), []).append(node)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = _first_line(node)
                for line in {node.lineno, first}:
                    self.nodes.setdefault((node.name, line), []).append(node)
            else:
                continue
            self.top[id(node)] = stmt


def _first_line(node) -> int:
    """A statement's first line: its first decorator's, for a decorated definition."""
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", ())])


def _module_level(node):
    """The nodes of a module-level statement outside any function or class body."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
        return
    yield node
    for child in ast.iter_child_nodes(node):
        yield from _module_level(child)


def _module_index(filename: str):
    """The file's function index, parsed and walked once per file version (nested
    transforms lift many functions of one file)."""
    linecache.checkcache(filename)  # the file may have been edited since it was cached
    lines = linecache.getlines(filename)
    if not lines:
        return None
    key = (filename, hash(tuple(lines)))   # strings keep their hashes: cheap after the first
    with _lock:
        index = _trees.get(key)
        if index is not None and key in _made:
            _made.move_to_end(key)
    if index is None:
        try:
            index = _Index(ast.parse("".join(lines), filename))
        except SyntaxError:
            return None
        with _lock:
            _trees[key] = index
            if filename.startswith("<"):
                _made[key] = None
                if len(_made) > _MADE_KEPT:
                    _trees.pop(_made.popitem(last=False)[0], None)
    return index


def _candidates(index, code):
    with _lock:
        return index.candidates(code.co_name, code.co_firstlineno)


def _same_code(a, b) -> bool:
    """Whether two code objects are the same program (bytecode, names, constants)."""
    if (a.co_code, a.co_names, a.co_varnames, a.co_freevars, a.co_cellvars, a.co_argcount,
            a.co_posonlyargcount, a.co_kwonlyargcount, len(a.co_consts)) != \
            (b.co_code, b.co_names, b.co_varnames, b.co_freevars, b.co_cellvars, b.co_argcount,
             b.co_posonlyargcount, b.co_kwonlyargcount, len(b.co_consts)):
        return False
    for x, y in zip(a.co_consts, b.co_consts):
        if isinstance(x, types.CodeType):
            if not (isinstance(y, types.CodeType) and _same_code(x, y)):
                return False
        elif type(x) is not type(y) or repr(x) != repr(y):   # -0.0 and 0.0, nan
            return False
    return True


def _codes(code):
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from _codes(c)


def _check_current(index: _Index, node, fn) -> None:
    """The source found must be the source of the code that runs: a file edited after it
    was imported would otherwise be differentiated as it reads now (a silently wrong
    gradient). Its top-level statement is compiled and the function's code compared."""
    code = fn.__code__
    if "@py_builtins" in getattr(fn, "__globals__", {}) and \
            any(isinstance(n, ast.Assert) for n in ast.walk(node)):
        return  # pytest rewrote this module's asserts: its bytecode is not the source's
    top = index.top[id(node)]
    flags = code.co_flags & _FUTURE_FLAGS
    with _lock:
        compiled = index.compiled.get((id(top), flags))
    if compiled is None:
        try:
            compiled = compile(ast.Module(index.imports + [top], type_ignores=[]), code.co_filename, "exec",
                               flags=flags, dont_inherit=True)
        except (SyntaxError, ValueError):
            return
        with _lock:
            index.compiled[(id(top), flags)] = compiled
    if not any(c.co_name == code.co_name and c.co_firstlineno == code.co_firstlineno and
               _same_code(c, code) for c in _codes(compiled)):
        raise _changed(fn)


def _changed(fn) -> LiftError:
    code = fn.__code__
    return LiftError(f"the source of {fn.__qualname__!r} in {code.co_filename} is not the code that "
                     f"runs: the file changed after it was imported (or the function was made from "
                     f"other source); reload the module (importlib.reload) or restart Python",
                     (code.co_filename, code.co_firstlineno))


def code_column(code):
    """The column of the first positioned instruction (tells lambdas on one line apart)."""
    try:
        for _, _, col, end in code.co_positions():
            if col is not None and end:
                return col
    except AttributeError:
        pass
    return None


def find_ast(fn):
    """Return ``(node, filename)``: the FunctionDef/Lambda that made ``fn``."""
    code = fn.__code__
    index = _module_index(code.co_filename)
    if index is not None:
        cands = list(_candidates(index, code))
        if len(cands) > 1:
            col = code_column(code)
            inside = [c for c in cands if col is not None and
                      (c.body.col_offset if isinstance(c, ast.Lambda) else c.col_offset) <= col
                      and (c.end_lineno > c.lineno or col <= (c.end_col_offset or 10**9))]
            if inside:
                cands = [max(inside, key=lambda c: c.body.col_offset if isinstance(c, ast.Lambda) else c.col_offset)]
        if len(cands) == 1:
            _check_current(index, cands[0], fn)
            return cands[0], code.co_filename
        if not cands:   # the file has no such function where the code says it starts
            raise _changed(fn)
    try:
        src = textwrap.dedent(inspect.getsource(fn))
        node = ast.parse(src).body[0]
        ast.increment_lineno(node, code.co_firstlineno - 1)
    except (OSError, TypeError, SyntaxError, IndexError) as e:
        raise LiftError(f"cannot find the source of {fn.__qualname__!r}; torchzygote needs Python source "
                        f"to differentiate a function (define it in a file, or register exec'd source "
                        f"with linecache), or give it a rule with @torchzygote.adjoint",
                        (code.co_filename, code.co_firstlineno)) from e
    if isinstance(node, (ast.Assign, ast.Expr)):
        lams = [n for n in ast.walk(node) if isinstance(n, ast.Lambda)]
        if len(lams) == 1:
            return lams[0], code.co_filename
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        return node, code.co_filename
    raise LiftError(f"cannot locate the definition of {fn.__qualname__!r} in its source",
                    (code.co_filename, code.co_firstlineno))
