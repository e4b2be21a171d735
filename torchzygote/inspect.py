"""Looking at what the transform made: the primal IR and the generated adjoint."""
from __future__ import annotations

import types
from typing import Callable

from . import ir
from .ad import cache, pipeline
from .frontend.lift import lift


class Code:
    """Printable IR or source; ``str()`` gives the text, ``.ir``/``.graph`` the objects."""

    def __init__(self, text: str, fn_ir: ir.Function, source: str = ""):
        self.text, self.ir, self.source = text, fn_ir, source

    @property
    def graph(self):
        """The control-flow graph (networkx DiGraph) of the block view."""
        return ir.cfg(self.ir)

    def __str__(self):
        return self.text

    __repr__ = __str__


def code_ir(f: Callable, *args) -> Code:
    """The primal SSA IR of ``f`` as basic blocks with block arguments."""
    fn_ir, _ = lift(_function(f))
    return Code(ir.format_blocks(fn_ir), fn_ir)


def code_adjoint(f: Callable, *args) -> Code:
    """The adjoint IR of ``f`` for arguments like ``args``: its generated pullback,
    lifted back to IR (``@v5`` is primal value ``%5`` it reads; the adjoint of a loop
    is a loop over saved values). ``.source`` is the generated Python, forward and
    pullback; nothing is run."""
    f = _function(f)
    e = cache.entry(f, args)
    backs = [c for c in e.fwd.__code__.co_consts if isinstance(c, types.CodeType) and c.co_name == "back"]
    if not backs:
        return Code("(no pullback: nothing in f needs a gradient)", lift(f)[0], e.src)
    code = backs[0]
    back = types.FunctionType(code, e.fwd.__globals__, "back", None,
                              tuple(types.CellType() for _ in code.co_freevars))
    back.__qualname__ = f"adjoint of {f.__qualname__}"
    back_ir, _ = lift(back)
    return Code(ir.format_blocks(back_ir), back_ir, e.src)


def code_analysis(f: Callable, *args) -> Code:
    """The analysis facts of ``f`` for arguments like ``args``: one line per SSA value, in
    program order, with its kind, ``float`` where it is known to be a floating-point or complex
    tensor, its rank where known and its activity (``active``: it
    gets an adjoint; ``varied``/``useful``: one half of that)."""
    f = _function(f)
    if cache.entry(f, args).ret is None:
        return Code("(not lifted: f has a rule or runs under torch autograd)", lift(f)[0])
    # the cache keeps no analysis (``cache.Entry``): the same transform, made again
    t = pipeline.transform(f, cache.kinds_of(args), ranks=cache.ranks_of(args), return_kind=cache.return_kind,
                           floats=cache.floats_of(args), examples=args)
    return Code("\n".join(_fact_line(t.analysis, v) for v in ir.all_vars(t.ir)), t.ir)


def _fact_line(A, v: ir.Var) -> str:
    rank = A.rank(v)
    act = "active" if A.active(v) else "varied" if v.id in A.varied else \
        "useful" if v.id in A.useful else "-"
    name = f" ({v.hint})" if v.hint else ""
    fl = " float" if A.is_float(v) else ""
    return f"%{v.id}{name}: {A.kind(v)}{fl}{'' if rank is None else f' rank {rank}'} {act}"


def _function(f):
    if isinstance(f, types.MethodType):
        f = f.__func__
    if not isinstance(f, types.FunctionType):
        raise TypeError(f"code_ir needs a Python function, got {type(f).__name__}")
    return f
