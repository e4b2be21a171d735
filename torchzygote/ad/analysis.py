"""Static facts the transform specialises on.

* kinds: what each SSA value is (real number, tensor, ...), inferred forward
  from the argument kinds of a call, so rules can be inlined without checks;
* activity: a value needs an adjoint only if it is *varied* (depends on an
  input or on state) and *useful* (reaches the result, or state, through
  differentiable operations). Integer counters and comparisons drop out here.

The analysis stage (``pipeline.analyse``) is this class; what code generation needs
besides comes from its own modules, computed here so codegen only reads facts: program
order and liveness (``analysis_order``), scopes, gathered reads and purity
(``analysis_scopes``), the item kinds of private dicts (``analysis_items``).
"""
from __future__ import annotations

import functools
import operator
from typing import Callable, Dict, List, Optional, Sequence, Set

import torch
import torch.nn.functional as F

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

from .. import ir
from ..frontend import ops
from ..ir import Const, If, Loop, Stmt, Try, Var
from ..rules.registry import (COMPLEX, CONTAINERS, MIXED, NONDIFF, base, OBJECT, REAL, TABLE, TENSOR, UNDEFINED,
                              Rule, moves, select)
from .analysis_calls import Callees, method_rule
from .analysis_items import DictItems
from .analysis_modules import ModuleFacts
from .analysis_order import Order
from .analysis_scopes import Scopes, find_gathers, pure_pullback
from ..values.fields import read_field
from ..values.kinds import global_kind, kind_of


SCALAR = "()"   # the shape class of 0-d tensors
_MATMULS = (operator.matmul, operator.imatmul, torch.matmul, torch.Tensor.matmul)


def global_key(s: Stmt):
    """For a read of a global or a module's data: its key in ``ir.Function.global_types``."""
    if not isinstance(s.args[1], Const):
        return None
    return s.args[1].value if s.fn.value is ops.get_global else (s.args[0].value, s.args[1].value)


def const_kind(v) -> str:
    if v is ir.UNDEF:
        return UNDEFINED
    k = kind_of(v)
    return NONDIFF if k == OBJECT and not isinstance(v, (list, dict, tuple)) else k


def join(a: str, b: str) -> str:
    if a == b or b == UNDEFINED:
        return a
    if a == UNDEFINED:
        return b
    if {a, b} <= {REAL, COMPLEX}:
        return COMPLEX
    if {a, b} <= {REAL, NONDIFF}:
        return REAL
    if {a, b} <= {REAL, TENSOR, MIXED}:
        return MIXED  # a number that becomes a tensor (a sum started at 0.0)
    if a[0] == b[0] == "P":
        return "P"  # tuples with different items
    return OBJECT


VALUE_CLASS = {TENSOR: torch.Tensor, REAL: float, COMPLEX: complex}


class Analysis(Callees):
    def __init__(self, fn: ir.Function, arg_kinds: Sequence[str], consts: frozenset = frozenset(),
                 ranks: Optional[Sequence[Optional[int]]] = None, return_kind: Optional[Callable] = None,
                 floats: Sequence[Optional[bool]] = (), examples: Optional[Sequence] = None):
        self.fn = fn
        # (f, kinds, ranks, floats, examples) -> the kind and rank a Python callee returns: the transform
        # cache, which transforms it (given by the pipeline, which sits above this module); None: unknown
        self.return_kind = return_kind
        # the module arguments' fields and calls (``examples``: the arguments this transform is for)
        self.mods = ModuleFacts(fn, examples, arg_kinds)
        self.consts = consts
        self.no_grad = ir.NO_GRAD in consts   # called under torch.no_grad() (``cut``)
        self.K: Dict[int, str] = {fn.params[0].id: OBJECT}
        for p, k in zip(fn.params[1:], arg_kinds):
            self.K[p.id] = k
        self.R: Dict[int, int] = {}          # tensor value -> its rank, where known
        for p, r in zip(fn.params[1:], ranks or ()):
            if r is not None:
                self.R[p.id] = r
        # tensor values known to be floating-point or complex (the arguments the cache's key says,
        # results of rules that keep it): rules give them gradients where integer tensors get None
        self.floats: Set[int] = {p.id for p, fl in zip(fn.params[1:], floats) if fl}
        self.defs: Dict[int, Stmt] = {}       # value -> the statement that computes it
        self._ret_rank: Dict[int, Optional[int]] = {}   # id(call) -> the rank a Python callee returns
        self._ret_float: Set[int] = set()   # id(call): a Python callee returns a floating-point tensor
        self.rule: Dict[int, Rule] = {}      # id(stmt) -> inlinable rule
        self.root: Dict[int, int] = {}       # tensor value -> the value whose memory it may share
        self._bound: Dict[int, tuple] = {}       # id(stmt) -> (rule, bind(stmt, rule))
        self._diff_args: Dict[int, tuple] = {}   # id(stmt) -> (rule, diff_args(stmt))
        self.items = DictItems(fn)
        self._mwrites: Optional[set] = None
        self._kinds(fn.body)
        self.mods.forget()   # (the cache keeps analyses: no user module stays alive through it)
        self.shape: Dict[int, object] = {}   # tensor value -> its shape class (default: its own)
        self._shapes()
        self.varied: Set[int] = set()
        self.useful: Set[int] = set()
        self._activity()
        # what code generation needs besides: program order and liveness, scopes, pullback shapes
        self.order = Order(fn, self.defs)
        self.scopes = Scopes(fn)
        self.gathers = find_gathers(fn, self.kind)
        self.pure = pure_pullback(fn, self)

    def root_of(self, v: Var) -> int:
        return self.root.get(v.id, v.id)

    def kind(self, op) -> str:
        if isinstance(op, Const):
            return const_kind(op.value)
        return self.K.get(op.id, UNDEFINED)

    # -------------------------------------------------------------- kinds
    def stmt_rule(self, s: Stmt):
        """The rule to inline for a statement, or None for a run-time ``J`` call."""
        if not isinstance(s.fn, Const) or s.star is not None or s.dstar is not None:
            return None
        f = s.fn.value
        kinds = [self.kind(a) for a in s.args]
        if f is ops.call_method and len(s.args) >= 2:
            target = method_rule(kinds[0], s.args[1].value)
            if target is None:
                return None
            f, kinds = target, [kinds[0]] + kinds[2:]
        elif f is getattr and len(s.args) == 2 and isinstance(s.args[1], Const) and \
                kinds[0] in VALUE_CLASS and ops.is_method_of(VALUE_CLASS[kinds[0]], s.args[1].value):
            f = ops.bound_method   # ``m = x.sum``: the calls of m give x a gradient
        try:
            if f in TABLE.adjoints or f in TABLE.dispatchers and (OBJECT in kinds or UNDEFINED in kinds):
                return None  # user rules, and dunder/property dispatch for objects, run at run time
        except TypeError:
            return None
        r = select(f, kinds, len(s.kwargs))
        if r is None or r.kinds is None and (OBJECT in kinds or UNDEFINED in kinds or MIXED in kinds):
            return None
        if any(k for k, _ in s.kwargs if k not in r.params):
            return None
        return r

    def _module_writes(self) -> set:
        """The module fields this function writes (``cfg.W = x * 2``): reads not specialised."""
        if self._mwrites is None:
            self._mwrites = {(n.args[0].value, n.args[1].value) for n in ir.walk(self.fn.body)
                             if isinstance(n, Stmt) and isinstance(n.fn, Const) and n.fn.value is setattr and
                             isinstance(n.args[0], Const) and isinstance(n.args[1], Const)}
        return self._mwrites

    def _stmt_kind(self, s: Stmt) -> str:
        f = self.mods.field(s)
        if f is not None:   # a module's field: read as the run-time dispatcher reads it, its kind known
            self.rule[id(s)] = select(read_field, (OBJECT, NONDIFF))
            self._ret_rank[id(s)] = f[1] if f[0] == TENSOR else None
            return f[0]
        if isinstance(s.fn, Const) and s.fn.value in (ops.get_global, ops.module_data):
            self.rule[id(s)] = self.stmt_rule(s)
            key = global_key(s)
            return OBJECT if s.fn.value is ops.module_data and key in self._module_writes() else \
                global_kind(self.fn.global_types.get(key))
        r = self.stmt_rule(s)
        if r is None:
            if isinstance(s.fn, Const) and TABLE.is_nondiff(s.fn.value):
                return TABLE.nondiff_kinds.get(s.fn.value, NONDIFF)
            return self._callee_kind(s)
        self.rule[id(s)] = r
        kinds = [self.kind(a) for a in s.args]
        if s.fn.value is ops.call_method:
            kinds = [kinds[0]] + kinds[2:]
        kinds += [self.kind(v) for _, v in s.kwargs]
        return r.out_kind(kinds)

    def _kinds(self, region: ir.Region):
        for node in region.nodes:
            if isinstance(node, Stmt):
                if node.out is not None:
                    self.defs[node.out.id] = node
                    self.K[node.out.id] = self._stmt_kind(node)
                    item = self.items.see(node, self.kind)
                    if item is not None:
                        self.K[node.out.id] = item   # an item of a dict only this function sees
                    self._set_rank(node.out, self._stmt_rank(node))
                    self._set_float(node.out, self._float_result(node))
                    r = self.rule.get(id(node))
                    if r is not None and (r.view or r.inplace) and node.args and isinstance(node.args[0], Var):
                        self.root[node.out.id] = self.root_of(node.args[0])
                else:
                    self._stmt_kind(node)
            elif isinstance(node, (If, Try)):
                for v in ir.scoped_vars(node):
                    self.K[v.id] = NONDIFF   # a caught exception
                for sub in ir.subregions(node):
                    self._kinds(sub)
                for o, srcs in ir.merges(node):
                    self.K[o.id] = functools.reduce(join, [self.kind(x) for x in srcs], UNDEFINED)
                    self._set_float(o, all(self.is_float(x) for x in srcs))
                    if isinstance(node, If):
                        self._branch_rank_root(o, *srcs)
            elif isinstance(node, Loop):
                if node.item is not None:
                    self.mods.iterate(node)
                    ik = self.kind(node.iterable)
                    d = self.defs.get(node.iterable.id) if isinstance(node.iterable, Var) else None
                    counts = d is not None and isinstance(d.fn, Const) and d.fn.value is range
                    self.K[node.item.id] = REAL if counts else TENSOR if ik == TENSOR else \
                        NONDIFF if ik == NONDIFF else OBJECT
                    if ik == TENSOR:   # the slices along the first dimension
                        r = self.rank(node.iterable)
                        self._set_rank(node.item, r - 1 if r else None)
                        self._set_float(node.item, self.is_float(node.iterable))
                for p, init in zip(node.params, node.inits):
                    self.K[p.id] = self.kind(init)
                    self._set_rank(p, self.rank(init))
                    if isinstance(init, Var):
                        self.root[p.id] = self.root_of(init)
                for _ in range(8):
                    self._kinds(node.body)
                    changed = False
                    for p, nxt in zip(node.params, node.body.yields):
                        k = join(self.K[p.id], self.kind(nxt))
                        if k != self.K[p.id]:
                            self.K[p.id] = k
                            changed = True
                        if p.id in self.R and self.rank(nxt) != self.R[p.id]:
                            del self.R[p.id]  # the rank changes from trip to trip
                            changed = True
                    if not changed:
                        break
                else:
                    for p in node.params:
                        self.K[p.id] = OBJECT
                        self.R.pop(p.id, None)
                    self._kinds(node.body)
                for o, p in zip(node.outs, node.params):
                    self.K[o.id] = self.K[p.id]
                    self._set_rank(o, self.R.get(p.id))

    def _branch_rank_root(self, o: Var, a, b) -> None:
        """A branch result has the branches' rank where they agree, and their memory where
        both hold the same."""
        self._set_rank(o, self.rank(a) if self.rank(a) == self.rank(b) else None)
        if isinstance(a, Var) and isinstance(b, Var) and self.root_of(a) == self.root_of(b):
            self.root[o.id] = self.root_of(a)

    # -------------------------------------------------------------- ranks
    def rank(self, op) -> Optional[int]:
        """A tensor value's number of dimensions, where the argument ranks decide it."""
        return self.R.get(op.id) if isinstance(op, Var) else None

    def _set_rank(self, v: Var, r: Optional[int]) -> None:
        if r is None:
            self.R.pop(v.id, None)
        else:
            self.R[v.id] = r

    # -------------------------------------------------------------- floating-point tensors
    # (loop-carried values are not followed: a trip may change them)
    def is_float(self, op) -> bool:
        """Whether ``op`` is known to be a floating-point or complex tensor."""
        return isinstance(op, Var) and op.id in self.floats

    def _set_float(self, v: Var, known: bool) -> None:
        if known:
            self.floats.add(v.id)
        else:
            self.floats.discard(v.id)

    def _float_result(self, s: Stmt) -> bool:
        """Whether ``s`` makes a floating-point or complex tensor: a rule that keeps them,
        applied to such tensors and numbers only."""
        f = self.mods.checked.get(id(s))
        if f is not None or id(s) in self._ret_float:
            return f is None or bool(f[2])
        r = self.rule.get(id(s))
        if r is None or not r.keeps_float or self.K.get(s.out.id) != TENSOR:
            return False
        return all(self.is_float(a) or self.kind(a) in (REAL, COMPLEX) or isinstance(a, Const) and a.value is None
                   for a in self._operands(s))

    def grad_given(self, s: Stmt, r: Rule, p: str) -> bool:
        """Whether rule ``r`` surely gives parameter ``p`` a gradient at ``s`` (for a ``dy`` that
        is not None): its pullback never gives None, or only for integer and bool tensors
        (``given_for_floats``) and the arguments are known floating-point or complex here."""
        if not r.maybe_none:
            return True
        bound = self.bind(s, r)
        return p in r.given_for_floats and all(self.is_float(bound.get(q)) for q in r.given_for_floats)

    def _operands(self, s: Stmt) -> list:
        args = [s.args[0], *s.args[2:]] if s.fn.value is ops.call_method else list(s.args)
        return args + [v for _, v in s.kwargs]

    def _stmt_rank(self, s: Stmt) -> Optional[int]:
        if self.K.get(s.out.id) != TENSOR:
            return None
        if id(s) in self._ret_rank:
            return self._ret_rank[id(s)]
        if not isinstance(s.fn, Const):
            return None
        r = self.rule.get(id(s))
        if r is None:
            return None
        args = self._operands(s)
        if r.fn is operator.getitem:
            x = self.rank(args[0])
            return x - 1 if x and self._int_index(args[1]) else None
        if r.inplace:
            return self.rank(args[0])
        if r.elementwise:
            ranks = [self.rank(t) for t in self._tensor_operands(args) or ()]
            return max(ranks) if ranks and None not in ranks else None
        if r.fn is F.linear and len(args) >= 2 and self.rank(args[1]) == 2:
            return self.rank(args[0])
        if r.fn in _MATMULS and len(args) == 2:
            a, b = self.rank(args[0]), self.rank(args[1])
            if a is None or b is None or not a or not b:
                return None
            return a + b - 2 if a == 1 or b == 1 else max(a, b)
        if r.fn is torch.stack and args and isinstance(args[0], Var) and args[0].id in self.defs:
            d = self.defs[args[0].id]
            if isinstance(d.fn, Const) and d.fn.value is ops.build_tuple and d.args:
                items = {self.rank(a) if self.kind(a) == TENSOR else None for a in d.args}
                if len(items) == 1 and None not in items:
                    return items.pop() + 1
        return None

    def _int_index(self, op) -> bool:
        return self.kind(op) == REAL if isinstance(op, Var) else type(op.value) is int

    # -------------------------------------------------------------- shapes
    def shape_of(self, v: Var):
        return self.shape.get(v.id, v.id)

    def same_shape(self, a, b) -> bool:
        """Whether tensors ``a`` and ``b`` are known to have the same shape."""
        return isinstance(a, Var) and isinstance(b, Var) and self.K.get(a.id) == TENSOR == self.K.get(b.id) \
            and self.shape_of(a) == self.shape_of(b)

    def _shapes(self):
        """Classes of tensors known to share a shape, without knowing the shapes: every
        0-d tensor is in one (``SCALAR``); an elementwise result shares its tensor
        arguments' class when they all share one (numbers and 0-d tensors broadcast
        nothing), an in-place result its target's, and ``x[i]`` for an int ``i`` the class
        of every other ``x[j]``. A method that may change a shape in place
        (``unsqueeze_``) and has no rule voids them all."""
        body = list(ir.walk(self.fn.body))
        if any(self._may_reshape(node) for node in body if isinstance(node, Stmt)):
            self.R = {}
            self.floats = set()   # (``x.data = ...`` may change a dtype as well)
            return
        for v, r in self.R.items():
            if r == 0:
                self.shape[v] = SCALAR
        for node in body:
            if not isinstance(node, Stmt) or node.out is None or self.K.get(node.out.id) != TENSOR or \
                    node.out.id in self.shape:
                continue
            r = self.rule.get(id(node))
            if r is None:
                continue
            args = self._operands(node)
            cls = None
            if r.fn is operator.getitem and len(args) == 2 and isinstance(args[0], Var) and \
                    self.kind(args[0]) == TENSOR and self._int_index(args[1]):
                cls = ("item", self.shape_of(args[0]))
            elif r.inplace and args and isinstance(args[0], Var) and self.kind(args[0]) == TENSOR:
                cls = self.shape_of(args[0])
            elif r.elementwise:
                cls = self._common_shape(args)
            if cls is not None:
                self.shape[node.out.id] = cls

    def _may_reshape(self, s: Stmt) -> bool:
        """Whether a statement may change a tensor's shape in place: an in-place method or
        function without a rule (``x.unsqueeze_(0)``, ``torch.as_strided_``), such a method
        taken as a value (``m = x.unsqueeze_``), or an attribute write on a tensor (``x.data =``)."""
        if not isinstance(s.fn, Const):
            return False
        f = s.fn.value
        if f is ops.call_method or f is getattr:
            name = s.args[1].value if len(s.args) > 1 and isinstance(s.args[1], Const) else ""
            return str(name).endswith("_") and (f is getattr or id(s) not in self.rule)
        if f is setattr:
            return len(s.args) > 1 and isinstance(s.args[1], Const) and s.args[1].value == "data"
        return id(s) not in self.rule and str(getattr(f, "__name__", "")).endswith("_") and \
            not str(getattr(f, "__name__", "")).endswith("__")

    def _tensor_operands(self, operands) -> Optional[list]:
        """An elementwise call's tensor operands; None if one may be a tensor unknown here."""
        out = []
        for op in operands:
            k = self.kind(op)
            if k in (REAL, COMPLEX) or isinstance(op, Const) and k == NONDIFF:
                continue  # numbers (and None, strings) broadcast nothing
            if k != TENSOR or not isinstance(op, Var):
                return None
            out.append(op)
        return out

    def _common_shape(self, operands):
        tensors = self._tensor_operands(operands)
        if tensors is None:
            return None
        classes = {self.shape_of(t) for t in tensors}
        if len(classes) > 1:
            classes.discard(SCALAR)  # a 0-d tensor takes the other's shape
        return classes.pop() if len(classes) == 1 else None

    # -------------------------------------------------------------- activity
    def diff_args(self, s: Stmt) -> List:
        """Operands of a statement that can receive a gradient (the activity passes ask
        again on every round: kept per statement and rule)."""
        r = self.rule.get(id(s))
        hit = self._diff_args.get(id(s))
        if hit is not None and hit[0] is r:
            return hit[1]
        if self.cut(s):
            out = []
        elif r is None:
            if isinstance(s.fn, Const) and TABLE.is_nondiff(s.fn.value):
                out = []
            else:
                out = s.operands()
        else:
            bound = self.bind(s, r)
            out = [bound[p] for p in r.grads if p in bound and not isinstance(bound[p], list)] + \
                [o for p in r.grads if isinstance(bound.get(p), list) for o in bound[p]]
        self._diff_args[id(s)] = (r, out)
        return out

    def bind(self, s: Stmt, r: Rule) -> Dict[str, object]:
        """Map a rule's parameters to the statement's operands (varargs to a list); kept
        per statement and rule (the activity passes and codegen ask several times). The
        mapping returned is shared: read it, do not change it."""
        hit = self._bound.get(id(s))
        if hit is not None and hit[0] is r:
            return hit[1]
        out = self._bind(s, r)
        self._bound[id(s)] = (r, out)
        return out

    def _bind(self, s: Stmt, r: Rule) -> Dict[str, object]:
        args = list(s.args)
        if s.fn.value is ops.call_method:
            args = [args[0]] + args[2:]
        out: Dict[str, object] = {}
        for p, a in zip(r.params, args):
            out[p] = a
        if r.vararg:
            out[r.vararg] = args[len(r.params):]
        for k, v in s.kwargs:
            out[k] = v
        for p in r.params:
            if p not in out and p in r.defaults:
                out[p] = Const(r.defaults[p])
        return out

    def effectful(self, s: Stmt) -> bool:
        """Whether a statement's pullback must run even without an output gradient (a ``cut`` one's
        only to keep identity objects' slots in step)."""
        r = self.rule.get(id(s))
        if r is not None:
            return r.effect
        return not (isinstance(s.fn, Const) and TABLE.is_nondiff(s.fn.value))

    def _activity(self):
        """``varied``: values that depend on an input or on state (forward to a fixed point);
        ``useful``: values the result or state depends on through differentiable operations
        (backward to a fixed point). Region merges (``ir.merges``) carry both across ``If``,
        ``Loop`` and ``Try``."""
        fn = self.fn
        self._merges: Dict[int, list] = {}
        self.varied.update(p.id for i, p in enumerate(fn.params) if i - 1 not in self.consts)
        while self._vary(fn.body):
            pass
        self._mark(fn.ret)
        while self._use_back(fn.body):
            pass

    def _is_varied(self, op) -> bool:
        return isinstance(op, Var) and op.id in self.varied

    def _varies(self, s: Stmt) -> bool:
        """Whether statement ``s``'s result depends on an input or on state."""
        k = self.K.get(s.out.id)
        if k == NONDIFF or self.cut(s) or id(s) not in self.rule and isinstance(s.fn, Const) and TABLE.is_nondiff(s.fn.value):
            return False
        if isinstance(s.fn, Const) and s.fn.value is ops.get_global and k in (REAL, COMPLEX):
            return False  # a number in a global is a constant (Params are tensors)
        if isinstance(s.fn, Const) and s.fn.value is ops.module_data:
            return True   # state: one of the Params, or a field written in the call
        if k == TENSOR and isinstance(s.fn, Const) and s.fn.value in (getattr, operator.getitem) and \
                s.args and isinstance(s.args[0], Const):
            return True   # a tensor a constant holds (a class attribute, ``C.W``): it may be one of the Params
        # objects may be mutated later, so containers and unknowns count as varied
        return id(s) not in self.rule or base(k or OBJECT) in (OBJECT, UNDEFINED) + CONTAINERS or \
            any(self._is_varied(o) for o in self.diff_args(s))

    def _vary(self, region: ir.Region) -> bool:
        ch = False
        for node in region.nodes:
            if isinstance(node, Stmt):
                if node.out is not None and node.out.id not in self.varied and self._varies(node):
                    self.varied.add(node.out.id)
                    ch = True
                continue
            for sub in ir.subregions(node):
                ch |= self._vary(sub)
            for o, srcs in self._merges_of(node):
                if o.id not in self.varied and any(self._is_varied(x) for x in srcs):
                    self.varied.add(o.id)
                    ch = True
        return ch

    def _mark(self, op) -> bool:
        if isinstance(op, Var) and op.id not in self.useful:
            self.useful.add(op.id)
            return True
        return False

    def _merges_of(self, node) -> list:
        """``ir.merges(node)``, made once for the passes to a fixed point."""
        m = self._merges.get(id(node))
        if m is None:
            m = self._merges[id(node)] = ir.merges(node)
        return m

    def _mark_merges(self, node) -> bool:
        ch = False
        for o, srcs in self._merges_of(node):
            if o.id in self.useful:
                for x in srcs:
                    ch |= self._mark(x)
        return ch

    def _use_back(self, region: ir.Region) -> bool:
        ch = False
        for node in reversed(region.nodes):
            if isinstance(node, Stmt):
                if (node.out is not None and node.out.id in self.useful) or self.effectful(node):
                    for o in self.diff_args(node):
                        ch |= self._mark(o)
                continue
            ch |= self._mark_merges(node)
            for sub in ir.subregions(node):
                ch |= self._use_back(sub)
            ch |= self._mark_merges(node)   # what the body made useful reaches a loop's initial values
        return ch

    def active(self, op) -> bool:
        return isinstance(op, Var) and op.id in self.varied and op.id in self.useful and \
            self.K.get(op.id) != NONDIFF

    def off(self, s: Stmt) -> bool:
        """Whether ``s`` runs under ``torch.no_grad()``: a ``with`` block's, or the caller's where
        the function is called from one (``no_grad``)."""
        return s.grad is False or s.grad is None and self.no_grad

    def cut(self, s: Stmt) -> bool:
        """Whether ``s`` runs under ``torch.no_grad()`` (``off``) and its rule computes (does not
        only move values: ``registry.moves``): then it takes in and passes on no gradient, as
        torch autograd records no operation there. A call dispatched at run time is decided
        there (``dispatch.apply_rule``; a Python callee runs its ``no_grad`` transform)."""
        r = self.rule.get(id(s)) if self.off(s) else None
        return r is not None and not moves(r, self.K.get(getattr(s.args[0], "id", None)) if s.args else None)

    def passes(self, s: Stmt, op) -> bool:
        """Whether statement ``s`` passes a gradient to operand ``op`` (none of a ``cut`` one)."""
        return self.active(op) and not self.cut(s)

    def varied_in(self, s: Stmt, op) -> bool:
        """Whether ``op`` may carry a gradient into ``s`` (none into a ``cut`` statement)."""
        return isinstance(op, Var) and op.id in self.varied and not self.cut(s)
