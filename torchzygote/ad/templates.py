"""Rule expressions as templates: a rule's source cut at its names once, so inlining it
is a join of strings, and the names it reads are known (``ctx``: an impure pullback); and
the small text helpers of generated code."""
from __future__ import annotations

import ast
import functools
import os
import re
from typing import Dict, List

_expr_cache: Dict[str, ast.AST] = {}


def parse(expr: str) -> ast.AST:
    """A rule's expression (``ast.Expression``), or statement (``ast.Module``)."""
    t = _expr_cache.get(expr)
    if t is None:
        try:
            t = ast.parse(expr, mode="eval")
        except SyntaxError:
            t = ast.parse(expr, mode="exec")
        _expr_cache[expr] = t
    return t


class Template:
    """A rule's source cut at its names, built once per rule string: substituting the
    operands joins strings (a copy and unparse of the AST per use made the transform
    cost about 1 ms per source line). ``slots`` are ``(name, next piece, beside is)``."""

    __slots__ = ("head", "slots", "names")

    def __init__(self, expr: str):
        tree = parse(expr)
        if any(isinstance(n, ast.JoinedStr) for n in ast.walk(tree)):
            raise ValueError(f"rule {expr!r}: f-strings in rule expressions are not supported")
        near_is = {id(o) for c in ast.walk(tree) if isinstance(c, ast.Compare)
                   and any(isinstance(op, (ast.Is, ast.IsNot)) for op in c.ops) for o in [c.left, *c.comparators]}
        starts = [0]
        for line in expr.splitlines(keepends=True):
            starts.append(starts[-1] + len(line))
        found = sorted(((starts[n.lineno - 1] + n.col_offset, starts[n.end_lineno - 1] + n.end_col_offset,
                         n.id, id(n) in near_is) for n in ast.walk(tree) if isinstance(n, ast.Name)))
        self.names = frozenset(f[2] for f in found)
        ends = [b for _, b, _, _ in found]
        nexts = [a for a, _, _, _ in found[1:]] + [len(expr)]
        self.head = expr[:found[0][0]] if found else expr
        self.slots = [(name, expr[end:nxt], is_) for (_, _, name, is_), end, nxt in zip(found, ends, nexts)]


_TEMPLATES: Dict[str, Template] = {}


def template(expr: str) -> Template:
    t = _TEMPLATES.get(expr)
    if t is None:
        t = _TEMPLATES[expr] = Template(expr)
    return t


def expr_names(expr: str) -> frozenset:
    """The names a rule expression reads or writes."""
    return template(expr).names


_ATOM = re.compile(r"[A-Za-z_][\w.]*|\d+(\.\d*)?([eE][+-]?\d+)?")


def atomic(code: str) -> bool:
    """Whether ``code`` binds tighter than any operator (a name, a call, a subscript, a
    parenthesised tuple), so it can stand in for a name without parentheses."""
    if _ATOM.fullmatch(code):
        return True
    if code[-1:] not in ")]":
        return False
    i = 0
    while i < len(code) and (code[i].isalnum() or code[i] in "_."):
        i += 1
    if i == len(code) or code[i] not in "([" or (i > 0 and not (code[0].isalpha() or code[0] == "_")):
        return False
    depth = 0
    for j in range(i, len(code)):
        ch = code[j]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0 and j != len(code) - 1:
                return code[j + 1] in "([" and atomic(code[j + 1:])  # f(a)(b), x[0][1]
        elif ch in "'\"":
            return False  # strings may hold brackets: not worth scanning
    return True


def is_literal(code: str) -> bool:
    """A literal number or string (``is`` must not compare literals; None/True/False may)."""
    try:
        value = ast.literal_eval(code)
    except (ValueError, SyntaxError):
        return False
    return not (value is None or value is True or value is False)


@functools.lru_cache(maxsize=256)
def basename(path: str) -> str:
    return os.path.basename(path)   # once per file, not per line of generated code


def indent(lines: List[str]) -> List[str]:
    return ["    " + ln for ln in lines] or ["    pass"]
