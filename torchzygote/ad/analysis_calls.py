"""What Python callees return, for the analysis (``Analysis`` mixes this in): a call to a known
function, or of a module it holds (``analysis_modules``), transforms the callee now for the
call's argument kinds, ranks and floats, and reads the kind of its result."""
from __future__ import annotations

import numpy as np
import torch

from ..frontend import ops
from ..ir import Const, Stmt
from ..rules.registry import ARRAY, OBJECT, TABLE, TENSOR, UNDEFINED
from ..values.kinds import KIND_OF_TYPE, kind_of
from .analysis_modules import lifted_callee


def method_rule(obj_kind: str, name: str):
    """The rule for ``obj.name(...)`` when the object's kind pins down its type."""
    if obj_kind == TENSOR:
        return getattr(torch.Tensor, name, None)
    if obj_kind == ARRAY and name in _ARRAY_METHODS:
        return getattr(np.ndarray, name)
    return None


# array methods inlined where the object is known to be an array: the writes (their guards are
# placed at transform time) and the copy that usually comes before them
_ARRAY_METHODS = ("fill", "copy")


class Callees:
    """A mixin of ``Analysis``: it uses the analysis' ``kind``, ``rank``, ``is_float``,
    ``return_kind``, ``mods`` and the ``_ret_rank``/``_ret_float`` facts it fills."""

    def _callee_kind(self, s: Stmt) -> str:
        """What a call to a known Python function (or a held module: ``analysis_modules``)
        returns: transform the callee now for these argument kinds (the run-time call will
        find it cached)."""
        mod = self.mods.calls(s)
        if mod is not None:
            kind, rank = self.mods.call_kind(s, *mod, self._returns)   # (its floats: mods.checked)
            if rank is not None:
                self._ret_rank[id(s)] = rank
            return kind
        f = s.fn.value if isinstance(s.fn, Const) else None
        if f is ops.call_method and len(s.args) >= 2 and isinstance(s.args[1], Const) and type(s.args[1].value) is str:
            made = TABLE.nondiff_kinds.get(method_rule(self.kind(s.args[0]), s.args[1].value))
            if made is not None:   # (``x.new_zeros(n, m)``: a constant of a known kind)
                return made
        if s.kwargs or s.star is not None or s.dstar is not None or not lifted_callee(f, len(s.args)):
            return OBJECT   # (a function with rules: the run-time kinds may select one)
        kind, self._ret_rank[id(s)], floating, _ = self._returns(f, None, s.args, None)
        if floating:
            self._ret_float.add(id(s))
        return kind

    def _returns(self, f, self_module, args, self_at) -> tuple:
        """The kind, rank and floating-point-ness callee ``f`` returns for these operands (after
        ``self_module``, a module it is a method of, held at path ``self_at``), and the callee's
        entry; ``(OBJECT, None, False, None)`` where unknown. What the callee assumed of the modules
        and functions passed to it becomes this entry's guards (another structure there may return
        another kind); where one of them has no path from this function's arguments (a global
        module), the result is unknown."""
        if self.return_kind is None:
            return OBJECT, None, False, None

        kinds, ranks, floats, examples = zip(*[self._passed(a) for a in args]) if args else ((),) * 4
        if self_module is not None:
            kinds, ranks, floats, examples = (OBJECT,) + kinds, (None,) + ranks, (None,) + floats, \
                (self_module,) + examples
        try:
            kind, rank, floating, guards, e = self.return_kind(
                f, kinds, ranks, floats, examples if any(x is not None for x in examples) else None)
        except Exception:  # the callee cannot be lifted: that error belongs to the call, at run time
            return OBJECT, None, False, None
        paths = ([self_at] if self_module is not None else []) + [self.mods.at(a) for a in args]
        return (kind, rank, floating, e) if self.mods.lift(guards, paths) else (OBJECT, None, False, None)

    def _passed(self, a) -> tuple:
        """What the callee's key says of operand ``a``: its kind, rank and floats, and the module or
        function it holds. A constant is described as the run-time call will see it (an object
        constant is an object there, a tensor has its rank), so the entry made now is the one that
        call finds."""
        if isinstance(a, Const):
            v = a.value
            t = isinstance(v, torch.Tensor)
            return (KIND_OF_TYPE.get(type(v)) or kind_of(v), v.dim() if t else None,
                    True if t and (v.is_floating_point() or v.is_complex()) else None, self.mods.example(a))
        k = self.kind(a)
        return (OBJECT if k == UNDEFINED else k, self.rank(a), True if self.is_float(a) else None,
                self.mods.example(a))
