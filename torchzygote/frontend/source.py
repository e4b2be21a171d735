"""Finding the AST of a function object from its code object."""
import ast
import inspect
import linecache
import textwrap
import threading

from ..errors import LiftError

_lock = threading.Lock()
_trees: dict = {}   # (file, length, first and last line hashes) -> index of its function nodes


def _module_index(filename: str):
    """The file's functions and lambdas by (name, line): parsed and walked once per file
    version (nested transforms lift many functions of one file)."""
    linecache.checkcache(filename)  # the file may have been edited since it was cached
    lines = linecache.getlines(filename)
    if not lines:
        return None
    key = (filename, len(lines), hash(lines[0]), hash(lines[-1]))
    with _lock:
        index = _trees.get(key)
    if index is None:
        try:
            tree = ast.parse("".join(lines), filename)
        except SyntaxError:
            return None
        index = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Lambda):
                index.setdefault(("<lambda>", node.lineno), []).append(node)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                for line in {node.lineno, first}:
                    index.setdefault((node.name, line), []).append(node)
        with _lock:
            _trees[key] = index
    return index


def _candidates(index, code):
    return index.get((code.co_name, code.co_firstlineno), ())


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
            return cands[0], code.co_filename
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
