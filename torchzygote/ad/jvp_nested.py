"""Nested AD through forward mode's dispatcher, without lifting the dispatchers themselves:

- forward over reverse: ``J``'s forward rule transforms the callee's generated reverse code;
- forward over forward: ``F``'s forward rule transforms the inner level's generated code (and an
  inner rule's tangent form) again, the outer level's tangents inside the inner level's values;
- reverse over forward: ``F``'s reverse dispatcher differentiates the forward level's generated
  code with ``J``, the gradients of its Duals going to their fields;
- forward over a pullback torch autograd computes (the fallback) is refused, as reverse over it is.
"""
from __future__ import annotations

import types

from ..errors import NoRuleError
from ..frontend import ops
from ..rules import fallback, tangents
from ..rules.registry import TABLE, nondiff, register_dispatch, register_jvp, select
from ..values.algebra import accum
from ..values.kinds import kind_of
from ..values.versions import guard_reads
from . import dispatch, jvp_dispatch as jd
from .binding import bind_function, bind_rule
from .dispatch import torch_internal
from .jvp_dispatch import F, Fkw, HANDLERS, _bind_tangents, _hashable, _leaf, _name, call_lifted, structural


def reverse_dispatch(ctx, args, kw):
    """Forward mode through reverse mode's ``J(rctx, f, *args)`` (forward over reverse): for a
    Python callee, its generated forward (and so its pullback) transformed in turn, without
    lifting the dispatcher itself; other callees through the dispatcher, lifted."""
    f = ctx.pv(args[1])
    if type(f) is types.FunctionType and not kw:
        code, rest = f.__code__, args[2:]
        if code.co_argcount == len(rest) and not code.co_flags & 0x0C and not code.co_kwonlyargcount and \
                ctx.mode == "jvp":
            fwd = dispatch.forward(f, [ctx.pv(a) for a in rest], ctx.pv(args[0]).no_grad)
            if fwd is not None:
                res = F(ctx, fwd, *args)
                return res if not fwd.reads else F(ctx, guard_reads, f, fwd.reads, rest, res[0])
    return call_lifted(ctx, dispatch.J, bind_function(dispatch.J, args, kw)[0])


register_jvp(dispatch.J, reverse_dispatch)
# the forms of J that generated code also calls, as the J call each stands for
register_jvp(dispatch.call_consts, lambda ctx, args, kw: reverse_dispatch(ctx, (args[0], *args[2:]), kw))
register_jvp(dispatch.call_pinned, lambda ctx, args, kw: reverse_dispatch(ctx, (args[0], *args[2:]), kw))
register_jvp(dispatch.call_pinned_method,
             lambda ctx, args, kw: reverse_dispatch(ctx, (args[0], ops.call_method, *args[2:]), kw))


def _torch_autograd_inside(fn):
    """Forward mode over a pullback torch autograd computes (the fallback for torch ops without a
    rule): refused, as reverse over it is, rather than a silently missing tangent."""
    def rule(ctx, args, kw):
        if ctx.has_tangent(args, kw):
            op = ctx.pv(args[0])
            raise NoRuleError(
                f"no gradient rule for {_name(op)}: its gradient came from torch autograd, which "
                f"torchzygote cannot differentiate again (second order). Define a rule with "
                f"@torchzygote.adjoint({_name(op)}) whose pullback uses ops that have rules, or compute "
                f"this higher derivative with torch.autograd (hessian(..., method='torch'))")
        return fn(*args, **kw), None
    return rule


for _fn in fallback.RULES:
    register_jvp(_fn, _torch_autograd_inside(_fn))


def nested_dispatch(octx, args, kw):
    """Forward mode over forward mode's ``F(ictx, f, *args)`` (nested forward modes): for a Python
    callee, the inner level's generated code transformed again by the outer level, without
    lifting the dispatcher; other callees through the dispatcher, lifted."""
    ictx, f = args[0], octx.pv(args[1])
    rest = args[2:]
    if type(f) is types.FunctionType and not kw and not TABLE.has_entry(f) and not TABLE.jvp(f) and \
            not torch_internal(f):
        code = f.__code__
        if code.co_argcount == len(rest) and not code.co_flags & 0x0C and not code.co_kwonlyargcount:
            pairs = [ictx.up(a) for a in rest]   # the inner level's Duals; the outer's stay packed
            values = tuple(octx.pv(p) for p, _ in pairs)
            consts = frozenset(i for i, (p, t) in enumerate(pairs) if t is None and _leaf(values[i]))
            e = jd.entry_for(f, values, consts, ictx.mode)
            if e.fwd is not None:
                return F(octx, e.fwd, ictx, f, *[p for p, _ in pairs], *[pairs[i][1] for i in e.fwd.reads])
    rule = _inner_rule(octx, ictx, f, rest, kw) if _hashable(f) and f not in HANDLERS and not TABLE.jvp(f) else None
    if rule is not None:   # the inner level's rule: its tangent form (generated code) transformed again
        pairs = [ictx.up(a) for a in rest]
        tans = _bind_tangents(rule, [t for _, t in pairs], {})
        return F(octx, tangents.tangent_form(rule), ictx, tans, *bind_rule(rule, tuple(p for p, _ in pairs), {}))
    return call_lifted(octx, F, bind_function(F, args, kw)[0])


def _inner_rule(octx, ictx, f, rest, kw):
    """The rule an inner forward level would apply to ``f(*rest)`` where it would use its tangent
    form (leaf values, every term given)."""
    if kw or not TABLE.lookup(f) or ictx.mode != "jvp":
        return None
    values = [octx.pv(ictx.pv(a)) for a in rest]
    if not all(_leaf(v) for v in values):
        return None
    rule = select(f, [kind_of(v) for v in values], 0)
    if rule is None or structural(rule, [False]) or not tangents.has_tangent(rule):
        return None
    return rule


register_jvp(F, nested_dispatch)


def reverse_over_forward(rctx, args, kw, kwargs):
    """Reverse mode over forward mode's ``F(ictx, f, *args)``: for a Python callee, the forward
    level's generated code differentiated by reverse mode (``J``), without lifting the
    dispatcher; the gradients of the forward level's Duals go to their fields (their slots)."""
    ictx, f, rest = args[0], args[1], args[2:]
    g = getattr(TABLE.jvp(f), "stand_in", f)   # (``gradient`` inside forward mode: its stand-in)
    if type(g) is types.FunctionType and g.__code__.co_argcount == len(rest) and not g.__code__.co_flags & 0x0C \
            and not g.__code__.co_kwonlyargcount:
        f = g
    if type(f) is not types.FunctionType or kw or TABLE.has_entry(f) or TABLE.jvp(f) or torch_internal(f) or \
            f.__code__.co_argcount != len(rest) or f.__code__.co_flags & 0x0C or f.__code__.co_kwonlyargcount:
        # the forward level's dispatch itself, differentiated (Fkw has no entry of its own)
        y, back = dispatch.J(rctx, Fkw, ictx, f, tuple(rest), dict(kw))

        def b_open(dy):
            g = back(dy)
            out = (None, g[1], *(g[2] or (None,) * len(rest)))
            return out if kwargs is None else (out, {})
        return y, b_open
    pairs = [ictx.up(a) for a in rest]
    values = tuple(p for p, _ in pairs)
    consts = frozenset(i for i, (p, t) in enumerate(pairs) if t is None and _leaf(p))
    e = jd.entry_for(f, values, consts, ictx.mode)
    tans = [pairs[i][1] for i in e.fwd.reads]
    y, back = dispatch.J(rctx, e.fwd, ictx, f, *values, *tans)
    n = len(values)

    def b(dy):
        g = back(dy)
        gt = dict(zip(e.fwd.reads, g[2 + n:]))
        out = [None, g[1]]
        for i, a in enumerate(rest):
            if ictx.owns(a):
                slot = rctx.slot(a)
                slot["primal"] = accum(slot.get("primal"), g[2 + i])
                slot["tangent"] = accum(slot.get("tangent"), gt.get(i))
                out.append(None)
            else:
                out.append(g[2 + i])
        return tuple(out) if kwargs is None else (tuple(out), {})
    return y, b


register_dispatch(F, reverse_over_forward)
nondiff(_inner_rule)   # (a question: a transform of the dispatcher calls it as it is)
