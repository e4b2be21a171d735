"""The transform as four stages, each callable and testable on its own:

    lift      f -> structured SSA IR (and the globals/cells it resolved, the cache's guards)
    analyse   IR + argument kinds/ranks/floats -> facts (kinds, ranks, floating-point tensors,
              activity, liveness, scopes)
    generate  IR + facts -> Python source of ``fwd(ctx, *args) -> (y, back)``
    compile   source -> the function, registered with linecache and the error mapping

``transform`` runs them in order; ``ad/cache.py`` keeps what it makes and guards it."""
from __future__ import annotations

import builtins
import itertools
import linecache
import os
import types
import weakref
from typing import Callable, NamedTuple, Optional, Sequence, Tuple

from .. import errors, ir
from ..frontend import bound
from ..frontend.lift import lift as _lift
from . import collector
from .analysis import Analysis
from .analysis_modules import closed_forward
from .codegen import generate as _generate
from .codegen_pullback import GRAD_OF
from . import jvp_codegen

_counter = itertools.count()


class Transform(NamedTuple):
    ir: ir.Function
    guards: dict        # global name or closure index -> the value resolved as a constant
    analysis: Analysis
    fwd: Callable
    src: str


def lift(f: types.FunctionType) -> Tuple[ir.Function, dict]:
    """Stage 1: ``f``'s IR and the globals and closure cells it resolved."""
    return _lift(f)


def analyse(fn: ir.Function, kinds: Sequence[str], consts: frozenset = frozenset(),
            ranks: Optional[Sequence[Optional[int]]] = None, return_kind: Optional[Callable] = None,
            floats: Sequence[Optional[bool]] = (), examples: Optional[Sequence] = None) -> Analysis:
    """Stage 2: the facts code generation specialises on, for arguments of these kinds, tensor
    ranks and floats (True: a floating-point or complex tensor); ``return_kind(f, kinds, ranks,
    floats, examples)`` tells what a Python callee returns; ``examples``: argument values whose
    modules' fields it may specialise on (``analysis_modules``)."""
    return Analysis(fn, kinds, consts, ranks, return_kind, floats, examples)


def generate(fn: ir.Function, A: Analysis, qualname: str, mode: str = "reverse") -> Tuple[str, dict, tuple]:
    """Stage 3: the forward's source, its globals, and the arguments its pullback reads; in forward
    mode (``mode="jvp"`` or ``"taylor"``) ``jvp(ctx, f, *args, *tangents) -> (y, ty)`` and the
    positions of the arguments whose tangents it takes."""
    if mode == "reverse":
        return _generate(fn, A, qualname)
    return jvp_codegen.generate(fn, A, qualname, taylor=mode == "taylor")


def compile(fn: ir.Function, src: str, glb: dict, reads: tuple, qualname: str) -> Callable:
    """Stage 4: the compiled forward, its lines registered with linecache (tracebacks show
    them) and mapped to the user's lines (``errors.GENERATED``)."""
    fname = f"<torchzygote {qualname} at {os.path.basename(fn.file)}:{fn.line} #{next(_counter)}>"
    lines = src.splitlines(True)
    linecache.cache[fname] = (len(src), None, lines, fname)
    errors.GENERATED[fname] = (fn.file, _user_lines(lines, os.path.basename(fn.file)))
    glb["__name__"] = "torchzygote.generated"
    exec(builtins.compile(src, fname, "exec"), glb)
    f = glb["fwd"]
    f.__qualname__ = f"fwd[{qualname}]"
    f.reads = reads
    f.closed = False   # (``transform`` says where it is: ``analysis_modules.closed_forward``)
    f.origin = (qualname, (fn.file, fn.line))   # what errors about it name (nested AD runs it as a callee)
    weakref.finalize(f, _forget, fname)
    return f


def _forget(fname: str) -> None:
    """What was registered for a compiled forward, dropped with it (an entry the cache let go,
    such as one made for a module attribute's earlier value)."""
    linecache.cache.pop(fname, None)
    errors.GENERATED.pop(fname, None)
    bound.forget(fname)


def _user_lines(lines, base: str) -> dict:
    """Generated line -> the user's line: a forward line's ``# file:line`` tag, or, in the
    pullback, the ``# grad of: ...  (file:line)`` comment its block of lines sits under."""
    tag, out, scope = f"  # {base}:", {}, []   # scope: (indent, user line) of the comments above
    for i, ln in enumerate(lines):
        body = ln.lstrip()
        indent = len(ln) - len(body)
        while scope and scope[-1][0] > indent:
            scope.pop()
        m = GRAD_OF.match(body.rstrip("\n"))
        if m is not None:
            if scope and scope[-1][0] == indent:
                scope.pop()
            scope.append((indent, int(m.group(2))))
        elif tag in ln and ln.rsplit(":", 1)[1].strip().isdigit():
            out[i + 1] = int(ln.rsplit(":", 1)[1])
        elif scope and body:
            out[i + 1] = scope[-1][1]
    return out


def transform(f: types.FunctionType, kinds: Sequence[str], consts: frozenset = frozenset(),
              ranks: Optional[Sequence[Optional[int]]] = None, return_kind: Optional[Callable] = None,
              floats: Sequence[Optional[bool]] = (), mode: str = "reverse",
              examples: Optional[Sequence] = None) -> Transform:
    """The four stages in order (``mode``: reverse, or forward as ``jvp``/``taylor``)."""
    # a transform makes many objects and few cycles: the collector's passes over them
    # (and over the rest of the heap, as they survive) were a fifth of its time. Held off
    # as for long gradient calls (the first threshold only: gc.disable() and gc.enable()
    # of user code and other threads keep their effect)
    collector.hold()
    try:
        fn_ir, guards = lift(f)
        A = analyse(fn_ir, kinds, consts, ranks, return_kind, floats, examples)
        A.mods.closed = mode == "reverse" and closed_forward(fn_ir, A)
        src, glb, reads = generate(fn_ir, A, f.__qualname__, mode)
        fwd = compile(fn_ir, src, glb, reads, f.__qualname__)
        fwd.closed = A.mods.closed
        bound.note(fwd.__code__.co_filename, f.__globals__, guards, f.__code__.co_filename)
        return Transform(fn_ir, guards, A, fwd, src)
    finally:
        collector.release()
