"""The analysis' view of the ``nn.Module`` arguments a transform is specialised on
(``module_facts`` says what may be assumed and how it is checked): which values hold which
example modules, the kinds of their fields, and the Python functions their calls run."""
from __future__ import annotations

import operator
import types
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..frontend import ops
from .. import ir
from ..ir import Const, If, Loop, Stmt, Var
from ..rules.registry import OBJECT, TABLE, TENSOR
from ..values.kinds import ARRAY, COMPLEX, NONDIFF, REAL
from .dispatch import VARFLAGS, _has_hooks, torch_internal
from ..values.fields import plain_field, read_field
from .module_facts import CHECKED, ITEMS, fact, iterated


class ModuleFacts:
    """Per analysis: ``ex`` (value -> the example modules it holds: one, or a Sequential's
    items for its loop variable), ``guards`` (the entry's: ``(position, path) -> fact``, in
    the order found) and ``checked`` (``id(stmt) -> (kind, rank, floating)``: facts generated
    code checks where the value appears)."""

    def __init__(self, fn: ir.Function, examples: Optional[Sequence], kinds: Sequence[str]):
        params = fn.params[1:]
        # names this function assigns on any object: their kinds may change during the call
        self.written = {s.args[1].value for s in ir.walk(fn.body) if isinstance(s, Stmt) and
                        isinstance(s.fn, Const) and s.fn.value in (setattr, delattr) and len(s.args) > 1 and
                        isinstance(s.args[1], Const)} if examples else set()
        self.ex: Dict[int, list] = {}
        self.path: Dict[int, Tuple[int, tuple]] = {}
        self.item_paths: Dict[int, list] = {}   # a loop variable over a Sequential: its items' paths
        self.guards: Dict[Tuple[int, tuple], object] = {}
        self.checked: Dict[int, tuple] = {}
        self.pins: Dict[int, dict] = {}   # id(stmt) -> {module class: (forward, entry)}: dispatch.call_pinned
        self.closed = False   # after the analysis: ``closed_forward``
        self.held: frozenset = frozenset()   # after ``forget``: the values that hold a module or a function
        for i, (p, x, k) in enumerate(zip(params, examples or (), kinds)):
            if k == OBJECT and (isinstance(x, torch.nn.Module) or type(x) is types.FunctionType):
                self._hold(p, x, (i, ()))

    def _hold(self, v: Var, m, at) -> None:
        self.ex[v.id] = [m]
        self.path[v.id] = at
        self.guards.setdefault(at, fact(m))

    def _single(self, op) -> Optional[tuple]:
        """The one example module value ``op`` holds and its path, if it holds one."""
        if not isinstance(op, Var) or op.id not in self.path:
            return None
        return self.ex[op.id][0], self.path[op.id]

    def field(self, s: Stmt) -> Optional[tuple]:
        """``s = m.name`` reading a plain field of a held module: the field's fact (a held
        submodule's is ``(OBJECT, class, None)``), recorded as a guard; None otherwise."""
        if not (isinstance(s.fn, Const) and s.fn.value is getattr and len(s.args) == 2 and
                isinstance(s.args[1], Const) and type(s.args[1].value) is str) or s.kwargs:
            return None
        found = self._read(s.args[0], s.args[1].value)
        if found is None:
            return None
        value, f, at = found
        if f[0] == OBJECT:
            self._hold(s.out, value, at)
        if f[0] != OBJECT or isinstance(f[1], type):   # (a submodule: its class, whose fields are read)
            self.checked[id(s)] = f
        return f

    def _read(self, obj, name: str):
        held = self._single(obj)
        if held is None or name in self.written or not plain_field(held[0], name):
            return None
        value = _stable_field(held[0], name)
        f = fact(value) if value is not _NO else None
        if f is None:
            return None
        at = (held[1][0], held[1][1] + (name,))
        self.guards.setdefault(at, f)
        return value, f, at

    def calls(self, s: Stmt) -> Optional[Tuple[List[tuple], list]]:
        """A call of held modules (``m(x)``, ``self.net(x)``, a loop variable over a Sequential):
        ``([(forward, module), ...], argument operands)``; None for any other call, or one
        the dispatcher would not run as ``type(m).forward`` (hooks, ``__call__`` overridden,
        rules, keywords)."""
        if s.kwargs or s.star is not None or s.dstar is not None:
            return None
        if isinstance(s.fn, Var):
            mods, args = self.ex.get(s.fn.id), list(s.args)
            paths = [self.path[s.fn.id]] if s.fn.id in self.path else self.item_paths.get(s.fn.id)
        elif isinstance(s.fn, Const) and s.fn.value is ops.call_method and len(s.args) >= 2 and \
                isinstance(s.args[1], Const) and type(s.args[1].value) is str:
            found = self._read(s.args[0], s.args[1].value)
            mods = [found[0]] if found is not None and found[1][0] == OBJECT else None
            paths = [found[2]] if mods else None
            args = list(s.args[2:])
        else:
            return None
        if not mods:
            return None
        callees = [(m, None, at) if type(m) is types.FunctionType else (type(m).forward, m, at)
                   for m, at in zip(mods, paths)]
        if not all(lifted_callee(f, len(args) + (m is not None)) and (m is None or _plain_module(m))
                   for f, m, _ in callees):
            return None
        return callees, args

    def call_kind(self, s: Stmt, callees: list, args: list, returns) -> tuple:
        """The kind and rank a call of held modules returns (``returns(forward, module, args,
        module's path)`` for each candidate), where all candidates agree on the kind; recorded in
        ``checked`` with its floating-point-ness, since generated code checks it where it appears
        (the run-time call may go another way: a hook added since)."""
        self.checked.pop(id(s), None)   # (a loop's analysis runs again: the last run decides)
        results = [returns(f, m, args, at) for f, m, at in callees]
        self._pin(s, callees, [e for _, _, _, e in results])
        kinds, ranks = {k for k, _, _, _ in results}, {r for _, r, _, _ in results}
        if len(kinds) != 1 or next(iter(kinds)) not in CHECKED:
            return OBJECT, None
        kind, rank = kinds.pop(), ranks.pop() if len(ranks) == 1 else None
        floating = kind == TENSOR and all(fl for _, _, fl, _ in results)
        self.checked[id(s)] = (kind, rank, floating or None)
        return kind, rank

    def _pin(self, s: Stmt, callees: list, entries: list) -> None:
        """The transforms a call of held modules runs, by the module's class (``dispatch.call_pinned``):
        the entry each candidate's analysis chose, where its guards became this entry's (``lift``)
        and the class has one; none for calls of held functions."""
        self.pins.pop(id(s), None)
        by_class: dict = {}
        for (f, m, _), e in zip(callees, entries):
            if m is None:
                return
            prev = by_class.get(type(m), (f, e))   # (None: two entries for one class)
            by_class[type(m)] = (f, e) if e is not None and prev is not None and prev[1] is e else None
        pinned = {cls: got for cls, got in by_class.items() if got is not None}
        if pinned:
            self.pins[id(s)] = pinned

    def at(self, op) -> Optional[Tuple[int, tuple]]:
        """The path from this function's arguments to the one module or function ``op`` holds."""
        held = self._single(op)
        return None if held is None else held[1]

    def lift(self, guards: Sequence[tuple], paths: Sequence[Optional[tuple]]) -> bool:
        """Take a callee's guards ``(its parameter, path, fact)`` as this entry's, its parameters
        being at ``paths`` here (what the callee returned holds while they do); False, recording
        none, where a guarded parameter has no path here."""
        lifted = []
        for i, path, f in guards:
            at = paths[i] if i < len(paths) else None
            if at is None:
                return False
            lifted.append(((at[0], at[1] + path), f))
        for key, f in lifted:
            self.guards.setdefault(key, f)
        return True

    def example(self, op):
        """The example module or function an argument passes to a callee, if it holds one."""
        if isinstance(op, Const):
            v = op.value
            return v if isinstance(v, torch.nn.Module) or type(v) is types.FunctionType else None
        held = self._single(op)
        return None if held is None else held[0]

    def iterate(self, loop: Loop) -> None:
        """``for m in seq`` over a held Sequential or ModuleList: ``m`` holds its items (their
        classes are a guard)."""
        held = self._single(loop.iterable)
        items = iterated(held[0]) if held is not None else None
        if items:
            i, path = held[1]
            self.guards.setdefault((i, path + (ITEMS,)), tuple(type(x) for x in items))
            self.ex[loop.item.id] = items
            self.item_paths[loop.item.id] = [(i, path + (name,)) for name in held[0]._modules]

    def forget(self) -> None:
        """Drop the example objects once the kinds are known (guards and checks stay, and which
        values hold the modules and functions the guards pin)."""
        self.held = frozenset(self.path) | frozenset(self.item_paths)
        self.ex.clear()
        self.path.clear()
        self.item_paths.clear()

    def entry_guards(self) -> tuple:
        return tuple((i, path, f) for (i, path), f in self.guards.items())


_NO = object()


def _stable_field(m, name: str):
    """The value of ``m.name`` where its kind is expected to stay put: a parameter, buffer or
    submodule (torch keeps each in its registry, as a tensor, module or None), or a plain
    attribute holding a number or a bool (``self.eps``, ``self.training``); ``_NO`` for others
    (``self.h = None``, a placeholder for a tensor to come, is left to run time)."""
    inst = m.__dict__
    if name in inst:   # (found before the registries, as Python's attribute lookup finds it)
        v = inst[name]
        return v if type(v) in (bool, float, int) else _NO
    for reg in ("_parameters", "_buffers", "_modules"):
        d = inst.get(reg)
        if d is not None and name in d:
            return d[name]
    return _NO


def _plain_module(m) -> bool:
    """Whether calling module ``m`` runs ``type(m).forward`` (what ``dispatch.J`` does for a
    module without hooks or rules of its own)."""
    return type(m).__call__ is torch.nn.Module.__call__ and not _has_hooks(m) and not TABLE.has_entry(m)


def lifted_callee(f, nargs: int) -> bool:
    """Whether a call of ``f`` with ``nargs`` positional arguments runs its lifted transform
    (a Python function without rules of its own, called with exactly its parameters)."""
    if type(f) is not types.FunctionType:
        return False
    code = f.__code__
    if code.co_argcount != nargs or code.co_flags & VARFLAGS or code.co_kwonlyargcount:
        return False
    return not (f in TABLE.adjoints or f in TABLE.dispatchers or torch_internal(f) or TABLE.lookup(f))


# rules whose pullback must run without an output gradient (``Rule.effect``) that write nothing:
# they build, copy, split or read containers and closures. Every other such rule writes (an
# attribute, an item, a global, a list in place, a module's registries);
# tests/test_module_specialisation.py checks that each rule with an effect is on one side
EFFECT_READS = frozenset({
    ops.build_list, ops.build_dict, ops.cat_list, ops.merge_dict, ops.unpack_star, ops.new_cell,
    ops.make_function, ops.bound_method, ops.module_data, ops.try_guard, list, list.copy, dict.copy,
    operator.getitem, operator.add, operator.mul, operator.or_, np.split, np.array_split, np.hsplit, np.vsplit, np.dsplit})


def closed_forward(fn: ir.Function, A) -> bool:
    """Whether nothing ``fn``'s forward runs can rebind a field of a module, add a hook, rebind a
    global or write into a value it did not make: every call is an inlined rule that writes
    nothing (nor is called with ``inplace=True``), a pure builtin or torch function without a rule
    (no ``out=``, no in-place ``_`` name), or a call of held modules whose entries are closed too;
    and no user code runs on the way (torch's function and dispatch modes aside: ``dispatch.Pins``), since
    every operand, branch condition and iterable is a tensor, an array, a number, None, a bool, a
    string or a tuple of tensors or numbers (a held module only where its field is read, or
    torch's own iteration over a ``Sequential`` yields it). Such a function's calls of held
    modules skip the checks that its own entry made when it began (``dispatch.Pins``), and nothing
    it passes a tensor to can write into it (``dispatch.run_forward``)."""
    for node in ir.walk(fn.body):
        if isinstance(node, If) and not _plain(A, node.cond):
            return False
        if isinstance(node, Loop) and not (
                node.iterable is None and _plain(A, node.body.yields[-1]) or node.iterable is not None and
                (_plain(A, node.iterable) or node.item is not None and node.item.id in A.mods.held)):
            return False
        if isinstance(node, Stmt) and not _closed_stmt(node, A):
            return False
    return True


_PLAIN_KINDS = frozenset({TENSOR, REAL, COMPLEX, NONDIFF, ARRAY, "PT", "PR"})
_PLAIN_CONSTS = (int, float, complex, bool, str, type(None))


def _plain(A, op) -> bool:
    """Whether Python runs no user code on ``op`` (its truth, its items, an operator on it)."""
    return type(op.value) in _PLAIN_CONSTS if isinstance(op, Const) else A.kind(op) in _PLAIN_KINDS


def _closed_stmt(s: Stmt, A) -> bool:
    r = A.rule.get(id(s))
    args = [*s.args, *(v for _, v in s.kwargs), *(o for o in (s.star, s.dstar) if o is not None)]
    if r is not None:
        if r.inplace or r.effect and not _in(r.fn, EFFECT_READS) or _writes_inplace(s, r):
            return False
        if r.fn is read_field or r.fn is ops.get_global:   # (a held module's plain field, a global: read from dicts)
            return True
        return all(_plain(A, a) for a in args)
    pinned = A.mods.pins.get(id(s))
    if pinned is not None and not A.off(s):
        return all(e.fwd is not None and getattr(e.fwd, "closed", False) for _, e in pinned.values())
    f = s.fn.value if isinstance(s.fn, Const) else None
    # (otherwise a call dispatched at run time, where any code may run)
    return f is not None and (_in(f, _PURE_BUILTINS) or getattr(f, "__module__", None) in _TORCH_MODULES) and \
        TABLE.is_nondiff(f) and not getattr(f, "__name__", "_").endswith("_") and \
        all(k != "out" for k, _ in s.kwargs) and all(_plain(A, a) for a in args)


# builtins that run no user code on plain operands (``print`` writes to ``sys.stdout``, which may be anything)
_PURE_BUILTINS = frozenset({len, range, int, float, bool, complex, abs, round, min, max, isinstance, type,
                            divmod, pow, tuple, str, hash})
_TORCH_MODULES = frozenset({"torch", "torch.functional", "torch.nn.functional", "torch._C._nn", "torch._C",
                            "torch._C._linalg", "torch._C._special", "torch._C._fft", "torch._C._VariableFunctions"})


def _writes_inplace(s: Stmt, r) -> bool:
    """A rule called with its ``inplace`` flag not known to be False (``F.relu(x, inplace=True)``,
    ``F.leaky_relu(x, 0.1, True)``): it writes into its argument."""
    if "inplace" not in r.params:
        return False
    pos = [s.args[0], *s.args[2:]] if isinstance(s.fn, Const) and s.fn.value is ops.call_method else list(s.args)
    i = r.params.index("inplace")
    flag = dict(s.kwargs).get("inplace", pos[i] if i < len(pos) else None)
    return flag is not None and not (isinstance(flag, Const) and flag.value is False)


def _in(f, group: frozenset) -> bool:
    try:
        return f in group
    except TypeError:   # (an unhashable callable)
        return False
