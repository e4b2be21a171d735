"""Forward mode's run-time dispatch: ``y, ty = F(ctx, f, *args)`` for calls whose callee or
argument kinds are open when the code is made. Arguments come packed (a value with a tangent is a
``Dual``); the result comes back split. In order: a Python callee is forward-transformed (and
cached, as reverse mode's ``J`` does); methods, modules, ``functools.partial`` and constructors
are followed to their Python code; a rule's tangent form is used (``rules/tangents.py``; Taylor
mode: ``rules/taylor.py``); a function without a gradient runs on the values; a torch op without
a tangent rule runs under torch's own forward-mode AD; anything else given a tangent raises."""
from __future__ import annotations

import dataclasses
import functools
import types

import torch
import torch.autograd.forward_ad as fwAD

from ..errors import NoRuleError
from ..frontend import ops
from ..rules import containers, fallback, numpy_shape, pylib, tangents, taylor
from ..rules.taylor_rules import ENTRIES as TAYLOR_ENTRIES
from ..rules.registry import TABLE, moves, nondiff, select
from ..values.dual import Dual, Tagged
from ..values import dataclass_init
from ..values.kinds import kind_of, same_tuple
from .binding import bind_function, bind_rule
from .dispatch import (GRAD_DECORATED, computes, _has_hooks as dispatch_hooks, check_mutation, decorated_mode, own_code,
                       torch_internal)
from .handlers import OPERATORS, python_method

entry_for = None   # set by .cache: the transform cache (mode "jvp"/"taylor" entries)


class FwdContext(Tagged):
    """One forward-mode computation: its mode (``jvp``, or ``taylor``: a tangent is then the list of
    a value's higher Taylor coefficients, whose length is the order); the tag of its Duals."""

    __slots__ = ("mode", "no_grad")

    def __init__(self, mode: str = "jvp"):
        self.mode = mode
        self.no_grad: frozenset = frozenset()   # as ``Context.no_grad``

    def wrote_global(self, fn, name) -> None:
        """A global written in forward mode holds its tangent with its value (a Dual): nothing to
        note (``Context.wrote_global`` notes it for the pullback's reads)."""

    def titer(self, v, t) -> list:
        if t is not None and self.mode == "taylor":   # each row's series: the coefficients' rows
            return [(row, [c[i] for c in t]) for i, row in enumerate(v)]
        return Tagged.titer(self, v, t)


def F(ctx: FwdContext, f, *args):
    """``y, ty = f(*args)`` with tangents (packed in ``args``; ``y`` may hold Duals inside)."""
    if type(f) is types.FunctionType and not TABLE.has_entry(f) and not TABLE.jvp(f) and not torch_internal(f):
        code = f.__code__
        if code.co_argcount == len(args) and not code.co_flags & 0x0C and not code.co_kwonlyargcount:
            return call_lifted(ctx, f, args)
    return Fkw(ctx, f, args, {})


def Fkw(ctx: FwdContext, f, args, kw):
    kw = kw or {}
    if ctx.no_grad and computes(f):
        return ops.detached(f(*[ctx.vo(a) for a in args], **{k: ctx.vo(v) for k, v in kw.items()})), None
    handler = HANDLERS.get(f) if _hashable(f) else None
    if handler is not None:
        return handler(ctx, f, args, kw)
    own = TABLE.jvp(f)
    if own is not None:
        if ctx.mode == "taylor" and getattr(own, "first_order", False):
            raise NoRuleError(f"Taylor mode: {_name(f)} has a first-order forward rule (jvp_rule) only")
        return own(ctx, args, kw)
    rules = TABLE.lookup(f)
    if ctx.mode == "taylor" and (rules or _hashable(f) and f in TAYLOR_ENTRIES):
        prim = [ctx.pv(a) for a in args]
        rule = select(f, [kind_of(v) for v in prim], len(kw)) if rules else None
        if rule is None or not structural(rule, [not ctx.owns(a) and not _leaf(a) for p, a in
                                                 zip(rule.params, args) if p in rule.grads]):
            return taylor_call(ctx, f, rule, args, kw)
    if rules:
        prim = [ctx.pv(a) for a in args]
        rule = select(f, [kind_of(a) for a in prim], len(kw))
        if rule is not None:
            return rule_call(ctx, rule, f, args, kw)
    if TABLE.is_nondiff(f):
        return f(*[ctx.vo(a) for a in args], **{k: ctx.vo(v) for k, v in kw.items()}), None
    user = TABLE.adjoint(f)
    if user is not None and ctx.has_tangent(args, kw):
        raise NoRuleError(f"forward mode: {_name(f)} has a reverse-mode rule (@adjoint) but no tangent rule; "
                          f"give it one with tz.jvp_rule({_name(f)}) (a function of (primals, tangents) "
                          f"returning (y, tangent))")
    t = type(f)
    if t is types.FunctionType and f.__code__ is GRAD_DECORATED:   # (dispatch._decorated)
        func, mode = decorated_mode(f)
        was, ctx.no_grad = ctx.no_grad, ctx.no_grad if mode is None else mode
        try:
            return Fkw(ctx, func, args, kw)
        finally:
            ctx.no_grad = was
    if t is types.FunctionType and not torch_internal(f):
        flat, _ = bind_function(f, args, kw)
        return call_lifted(ctx, f, flat)
    if t is types.MethodType:
        return Fkw(ctx, f.__func__, (f.__self__, *args), kw)
    if t is functools.partial:
        return Fkw(ctx, f.func, (*f.args, *args), {**f.keywords, **kw})
    if isinstance(f, type):
        return construct(ctx, f, args, kw)
    if isinstance(f, torch.nn.Module):
        if dispatch_hooks(f):   # hooks run in Module.__call__: the module under torch's forward AD
            if ctx.mode != "jvp":
                raise NoRuleError(f"Taylor mode through {type(f).__name__}, a module with hooks, is not supported")
            return torch_jvp(ctx, f, args, kw)
        return Fkw(ctx, type(f).forward, (f, *args), kw)
    owner = getattr(f, "__self__", None)
    if t is types.BuiltinMethodType and owner is not None and not isinstance(owner, (types.ModuleType, type)):
        return call_method(ctx, ops.call_method, (owner, f.__name__, *args), kw)
    call = getattr(type(f), "__call__", None)
    if isinstance(call, types.FunctionType):
        return Fkw(ctx, call, (f, *args), kw)
    return foreign(ctx, f, args, kw)


def call_lifted(ctx: FwdContext, f: types.FunctionType, args):
    """A Python function's forward-mode transform, for these arguments' kinds."""
    pairs = [ctx.up(a) for a in args]
    prim = tuple(p for p, _ in pairs)
    consts = frozenset(i for i, (p, t) in enumerate(pairs) if t is None and _leaf(p))
    e = entry_for(f, prim, consts | ctx.no_grad, ctx.mode)
    if e.fwd is None:   # a function with an entry of its own (a rule): dispatched as such
        return Fkw(ctx, f, args, {})
    versions = [p._version for p in prim if type(p) is torch.Tensor]
    res = e.fwd(ctx, f, *prim, *[pairs[i][1] for i in e.fwd.reads])
    if versions and not own_code(f.__code__.co_filename):
        # (as reverse mode's J: a user function's hidden write into an argument would keep its old
        # tangent; torchzygote's code, a rule's closure form among it, writes as its rule says)
        check_mutation(f, prim, versions, res[0])
    return res


def rule_call(ctx: FwdContext, rule, f, args, kw):
    if ctx.no_grad and not moves(rule, kind_of(ctx.pv(args[0])) if args else None):   # (dispatch.apply_rule)
        return ops.detached(f(*[ctx.vo(a) for a in args], **{k: ctx.vo(v) for k, v in kw.items()})), None
    if structural(rule, [not ctx.owns(a) and not _leaf(a) for p, a in zip(rule.params, args)
                         if p in rule.grads]):
        return ctx.up(f(*args, **kw))
    prim = [ctx.up(a) for a in args]
    # (a structure passed by keyword, ``torch.cat(tensors=xs)``: its items' values and tangents)
    kprim = {k: ctx.sp(v) if type(v) in (tuple, list, dict) else ctx.up(v) for k, v in kw.items()}
    if not ctx.has_tangent(args, kw):
        return f(*[p for p, _ in prim], **{k: p for k, (p, _) in kprim.items()}), None
    vals = bind_rule(rule, tuple(p for p, _ in prim), {k: p for k, (p, _) in kprim.items()})
    if any(type(a) in (tuple, list, dict) for a in args):   # a structure's items' tangents (torch.stack([a, b]))
        seq = [ctx.sp(a) for a in args]
        prim = seq
        vals = bind_rule(rule, tuple(p for p, _ in seq), {k: p for k, (p, _) in kprim.items()})
    tans = _bind_tangents(rule, [t for _, t in prim], {k: t for k, (_, t) in kprim.items()})
    missing = not tangents.has_tangent(rule) and [
        p for p, t in zip(tangents.diff_params(rule), _diff_tangents(rule, tans)) if t is not None
        and tangents.term(rule, p) is None]
    if missing and (fallback.is_torch_op(f) or any(isinstance(v, torch.Tensor) for v in vals)):   # (jvp mode)
        return torch_jvp(ctx, f, args, kw)
    return _results(ctx, *tangents.tangent_form(rule)(ctx, tans, *vals))


def _results(ctx, y, ty):
    """Several results (``sort``, ``split``): each with its tangent inside, as structures hold them."""
    if ty is not None and isinstance(y, (tuple, list)):
        return ctx.pack_tree(y, ty), None
    return y, ty


def taylor_call(ctx, f, rule, args, kw):
    """Taylor mode: the call's truncated series from the arguments' (``rules/taylor.py``)."""
    pairs = [ctx.sp(a) if type(a) in (tuple, list) else ctx.up(a) for a in args]
    kpairs = {k: ctx.up(v) for k, v in kw.items()}
    return taylor.propagate(f, rule, [p for p, _ in pairs], {k: p for k, (p, _) in kpairs.items()},
                            [t for _, t in pairs], {k: t for k, (_, t) in kpairs.items()})


def _diff_tangents(rule, tans):
    ps = list(rule.params) + ([rule.vararg] if rule.vararg else [])
    by = dict(zip(ps, tans))
    return [by.get(p) for p in tangents.diff_params(rule)]


def _bind_tangents(rule, targs, tkw):
    """The tangents in the rule's parameter order (None for defaults), the vararg's as a tuple."""
    n = len(rule.params)
    out = list(targs[:n]) + [tkw.get(p) for p in rule.params[len(targs):]]
    if rule.vararg:
        rest = tuple(targs[n:])
        out.append(rest if any(t is not None for t in rest) else None)
    return tuple(out)


STRUCTURAL = {ops.build_tuple, ops.build_list, ops.build_dict, ops.build_set, ops.cat_tuple, ops.cat_list,
              ops.merge_dict, ops.unpack, ops.unpack_star, ops.new_cell, ops.closure_cell, ops.get_global,
              ops.make_function, getattr, setattr, tuple, list, dict}


def structural(rule, in_structures) -> bool:
    """Whether a rule only moves values (builds, reads or writes containers, attributes, cells):
    it is then called with the tangents inside (Duals) and its result split. Other rules given a
    structure (``torch.stack([a, b])``) take it apart: the items' tangents, beside them.
    ``in_structures``: for each differentiable argument with a tangent, whether it is a structure."""
    return rule.fn in STRUCTURAL or rule.ns is containers.ns and (rule.effect or any(in_structures)) or \
        rule.effect and not tangents.has_tangent(rule)


def _leaf(v) -> bool:
    return isinstance(v, (float, int, complex, torch.Tensor)) or type(v).__module__ == "numpy"


def _hashable(f) -> bool:
    try:
        hash(f)
        return True
    except TypeError:
        return False


def _name(f) -> str:
    return getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or type(f).__name__


# ----------------------------------------------------------------- dispatch cases

def call_method(ctx, _f, args, kw):
    """``obj.name(*args)``: the method found on the value's class (a rule, or Python code to
    transform); otherwise the attribute read from the instance, called."""
    obj, name, rest = args[0], args[1], args[2:]
    p = ctx.pv(obj)
    raw = _class_attr(type(p), name) if not isinstance(p, (type, types.ModuleType)) else None
    if raw in _MOVES_ONLY:   # an inner forward computation taking its Duals apart: values move as they are
        return ctx.up(raw(p, *rest, **kw))
    if raw is not None and (isinstance(raw, types.FunctionType) or _hashable(raw) and TABLE.has_entry(raw)):
        return Fkw(ctx, raw, (obj, *rest), kw)
    m = getattr(p, name)
    if type(m) is types.BuiltinMethodType and not isinstance(m.__self__, types.ModuleType):
        # a builtin method of a value, without a rule (the value's tangent stays out); a module's
        # builtin function (``math.cos`` read from a cell) is dispatched as itself below
        return foreign(ctx, m, rest, kw) if not (ctx.owns(obj) and fallback.is_torch_op(m)) else \
            torch_jvp(ctx, raw, (obj, *rest), kw)
    return Fkw(ctx, m, rest, kw)


_MOVES_ONLY = {Tagged.up, Tagged.pv, Tagged.pk, Tagged.sp, Tagged.vo, Tagged.owns, Tagged.pack_tree,
               Tagged.has_tangent, Tagged.titer}


def _class_attr(cls, name):
    """The attribute as the class defines it (a function, a staticmethod...), or None."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return None


_TENSOR_LINEAR_ATTRS = {"T", "mT", "H", "mH", "real", "imag"}
_METADATA = {"shape", "dtype", "device", "ndim", "layout", "is_cuda", "is_leaf", "requires_grad", "itemsize",
             "nbytes", "size", "strides", "data", "grad", "grad_fn", "names", "is_sparse", "is_quantized",
             "is_meta", "flags", "base", "_base", "_version"}


def getattr_(ctx, _f, args, kw):
    """An attribute: of a value with a tangent, the tangent's attribute where the attribute is
    linear (``x.T``, ``z.real``), none where it is metadata (``x.shape``); a property written in
    Python is transformed; of an object, the stored value (its tangent inside)."""
    obj, name = args[0], args[1]
    p, t = ctx.up(obj)
    if t is not None:
        if name in _TENSOR_LINEAR_ATTRS and ctx.no_grad:   # (computed: ``registry.moves``)
            return ops.detached(getattr(p, name)), None
        if name in _TENSOR_LINEAR_ATTRS:   # (a Taylor series: each coefficient's)
            return getattr(p, name), [getattr(c, name) for c in t] if ctx.mode == "taylor" else getattr(t, name)
        raw = _class_attr(type(p), name)
        if callable(raw) and not isinstance(raw, type):   # a method: bound to the value with its tangent
            return types.MethodType(raw, obj), None
        if name in _METADATA or name.startswith("__") or not hasattr(p, name):
            return getattr(p, name, *args[2:]), None
        raise NoRuleError(f"forward mode: no tangent rule for the attribute {name!r} of a {type(p).__name__} "
                          f"that has a tangent")
    prop = getattr(type(p), name, None)
    if isinstance(prop, property) and isinstance(prop.fget, types.FunctionType):
        return F(ctx, prop.fget, obj)
    return ctx.up(getattr(p, name, *args[2:]))


def setattr_(ctx, _f, args, kw):
    """``obj.name = v``: a property setter or descriptor ``__set__`` written in Python is
    transformed; a field stores the value with its tangent inside."""
    obj, name, v = args
    p = ctx.pv(obj)
    for klass in type(p).__mro__:
        if name in klass.__dict__:
            attr = klass.__dict__[name]
            if isinstance(attr, property) and isinstance(attr.fset, types.FunctionType):
                F(ctx, attr.fset, obj, v)
                return None, None
            setter = python_method(type(attr), "__set__")
            if setter is not None:
                F(ctx, setter, attr, obj, v)
                return None, None
            break
    setattr(p, name, v)
    return None, None


def operator_(ctx, f, args, kw):
    """An operator on an object whose class defines it in Python: that method, transformed."""
    for i, a in enumerate(args[:2]):
        p = ctx.pv(a)
        if not _leaf(p) and type(p).__module__ != "builtins":
            name = _DUNDER.get(f)
            if name is not None:
                m = python_method(type(p), name[i] if i < len(name) else name[0])
                if m is not None:
                    return F(ctx, m, a, *(args[1:] if i == 0 else args[:1]))
    rule = select(f, [kind_of(ctx.pv(a)) for a in args], len(kw))
    if ctx.mode == "taylor":
        return taylor_call(ctx, f, rule, args, kw)
    if rule is None:
        return foreign(ctx, f, args, kw)
    return rule_call(ctx, rule, f, args, kw)


_DUNDER = {f: (name,) if rname is None else (name, rname) for f, name, rname in OPERATORS}


def construct(ctx, cls, args, kw):
    """``cls(*args)``: a class whose ``__init__`` is Python code has it transformed (the object
    stores what it is given, tangents inside); other classes are called with the values packed."""
    init = getattr(cls, "__init__", None)
    if issubclass(cls, tuple) or cls is Dual or dataclasses.is_dataclass(cls) and not hasattr(cls, "__post_init__"):
        return cls(*args, **kw), None   # fields stored as given (a named tuple, a generated __init__)
    if dataclass_init.generated_init(cls):   # the generated __init__'s assignments, then __post_init__
        obj, initvals, _, _ = dataclass_init.assign_fields(cls, args, kw)
        Fkw(ctx, cls.__post_init__, (obj, *initvals), {})
        return obj, None
    if isinstance(init, types.FunctionType) and cls.__new__ is object.__new__:
        obj = object.__new__(cls)
        Fkw(ctx, init, (obj, *args), kw)
        return obj, None
    return ctx.up(cls(*args, **kw))


def foreign(ctx, f, args, kw):
    """A callable with no rule: a torch op runs under torch's forward-mode AD; anything else given
    a tangent is refused (its tangent would be lost), and runs as it is otherwise, and under
    ``torch.no_grad()``."""
    if ctx.no_grad:
        return ops.detached(f(*[ctx.vo(a) for a in args], **{k: ctx.vo(v) for k, v in kw.items()})), None
    if fallback.is_torch_op(f) and ctx.has_tangent(args, kw) and ctx.mode == "jvp":
        return torch_jvp(ctx, f, args, kw)
    if ctx.has_tangent(args, kw):
        raise NoRuleError(f"forward mode: no tangent rule for {_name(f)}, called with a value that has a "
                          f"tangent; give it one with tz.jvp_rule({_name(f)}) or write it in Python so it is "
                          f"transformed")
    return f(*args, **kw), None


def torch_jvp(ctx, f, args, kw):
    """A torch op without a tangent rule in the table, under torch's forward-mode AD (its own
    derivative formulas), as reverse mode runs such ops under torch autograd; under
    ``torch.no_grad()`` as it is (torch's forward AD would not stop there)."""
    if ctx.no_grad:
        return ops.detached(f(*[ctx.vo(a) for a in args], **{k: ctx.vo(v) for k, v in kw.items()})), None
    made = {}   # id of a dual made here -> (it, the primal it was made of)
    with torch.no_grad(), fwAD.dual_level():   # (forward AD needs no graph: none is recorded)
        def dualize(a):
            p, t = ctx.sp(a) if type(a) in (tuple, list) else ctx.up(a)
            if type(a) in (tuple, list):
                return type(a)(dualize(x) for x in a)
            if t is not None and isinstance(p, torch.Tensor):
                # (a copy: an in-place op writes into its argument's tangent, which other values may share)
                d = fwAD.make_dual(p, t.to(p.dtype, copy=True) if isinstance(t, torch.Tensor) else torch.full_like(p, t))
                made[id(d)] = (d, p)
                return d
            if t is not None:
                raise NoRuleError(f"forward mode: {_name(f)} got a tangent on a non-tensor argument")
            return p
        out = f(*[dualize(a) for a in args], **{k: dualize(v) for k, v in kw.items()})

        def undual(y):
            if isinstance(y, torch.Tensor):
                p, t = fwAD.unpack_dual(y)
                # an in-place op returns the dual it wrote: the caller's object is the result
                return made[id(y)][1] if id(y) in made else p, t
            if isinstance(y, tuple) or type(y) is list:   # (also torch.return_types: cummax, slogdet)
                pairs = [undual(x) for x in y]
                if type(y) is list:
                    return [a for a, _ in pairs], [b for _, b in pairs]
                return same_tuple(y, [a for a, _ in pairs]), tuple(b for _, b in pairs)
            if isinstance(y, dict) and any(isinstance(v, torch.Tensor) for v in y.values()):
                raise NoRuleError(f"forward mode: {_name(f)} returned a {type(y).__name__}, whose tensors' "
                                  f"tangents torchzygote cannot take out; give it a rule with tz.jvp_rule")
            return y, None
        return _results(ctx, *undual(out))


def user_rule(rule):
    """A user's forward rule ``rule(primals, tangents) -> (y, tangent)`` as a table handler."""
    def run(ctx, args, kw):
        if kw:
            raise NoRuleError(f"forward mode: the rule {_name(rule)} takes positional arguments only")
        pairs = [ctx.sp(a) for a in args]
        return rule(tuple(p for p, _ in pairs), tuple(t for _, t in pairs))
    run.first_order = True
    return run


def lifted(stand_in):
    """A forward rule that runs a Python stand-in, transformed (nested AD: ``gradient`` inside
    forward mode becomes the stand-in's generated code, differentiated in turn)."""
    def run(ctx, args, kw):
        return Fkw(ctx, stand_in, args, kw)
    run.stand_in = stand_in
    return run


def _stand_in(stand_in):
    """A builtin differentiated through a Python stand-in (``sum``, ``max``, ``sorted``...)."""
    return lambda ctx, f, args, kw: Fkw(ctx, stand_in, args, kw)


HANDLERS = {ops.call_method: call_method, getattr: getattr_, setattr: setattr_, **{f: operator_ for f in _DUNDER},
            **{b: _stand_in(s) for b, s in {**pylib.LIFT_AS, **numpy_shape.LIFT_AS}.items()}}


# questions dispatch asks carry no tangent: a transform of the dispatcher (nested AD) calls them as they are
nondiff(structural, _leaf, _hashable, _name, _class_attr, tangents.term, tangents.has_tangent,
        tangents.diff_params, tangents.tangent_form, Tagged.owns, Tagged.has_tangent)
