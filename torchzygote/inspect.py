"""Looking at what the transform made: the primal IR and the generated adjoint."""
from __future__ import annotations

from typing import Callable

from . import ir
from .ad import cache


class Code:
    """Printable IR or source; ``str()`` gives the text, ``.ir``/``.graph`` the objects."""

    def __init__(self, text: str, fn_ir: ir.Function):
        self.text, self.ir = text, fn_ir

    @property
    def graph(self):
        """The control-flow graph (networkx DiGraph) of the block view."""
        return ir.cfg(self.ir)

    def __str__(self):
        return self.text

    __repr__ = __str__


def code_ir(f: Callable, *args) -> Code:
    """The primal SSA IR of ``f`` as basic blocks with block arguments."""
    from .frontend.lift import lift
    fn_ir, _ = lift(_function(f))
    return Code(ir.format_blocks(fn_ir), fn_ir)


def code_adjoint(f: Callable, *args) -> Code:
    """The generated forward pass and pullback of ``f`` for arguments like ``args``
    (Python source: the adjoint of a loop is a loop over saved values)."""
    e = cache.entry(_function(f), args)
    return Code(e.src, e.ir)


def _function(f):
    import types
    if isinstance(f, types.MethodType):
        f = f.__func__
    if not isinstance(f, types.FunctionType):
        raise TypeError(f"code_ir needs a Python function, got {type(f).__name__}")
    return f
