"""Reverse over reverse without lifting the dispatcher: generated code that is differentiated
again calls ``J(ictx, f, *args)`` for its run-time dispatch (and nested AD's stand-ins call it
for the inner function). Lifting ``J`` itself transformed the whole dispatcher, every case of
it, at each level (a triple derivative's first call took seconds). In its place ``nested_J``
is lifted: it calls the generated code ``J`` would run (``f``'s compiled forward, a table
rule's closure form, a ``lift_as`` stand-in's forward), so the outer level differentiates that
code alone; any other callee goes through ``J``'s other cases, lifted as before."""
from __future__ import annotations

import types

import torch

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

from ..frontend.ops import detached
from ..rules.registry import TABLE, closure_form, moves, nondiff, register_dispatch, select
from ..values.kinds import kind_of
from ..values.versions import check_reads, guard_reads, saved_reads
from .binding import bind_function
from .cache import entry_for, floats_of, kinds_of, ranks_of
from ..frontend.ops import call_method as call_method_op
from .dispatch import J, Jkw, VARFLAGS, call_consts, call_pinned, call_pinned_method, check_mutation, forward, nothing
from .handlers import lift_as


def plan(f, args, no_grad: frozenset = frozenset()) -> tuple:
    """``(how, extra)``: the generated code ``J(ictx, f, *args)`` would run, as ``how(extra, ictx,
    f, args)``, one small function per case (the outer level lifts only the case a call takes;
    the level above differentiates that generated code again, so each branch here would cost at
    every level). ``extra`` is a plain tuple (no attribute reads to dispatch). ``no_grad``: the
    context's (``Context.no_grad``)."""
    if type(f) is types.FunctionType and _exact(f.__code__, len(args)):
        fwd = forward(f, args, no_grad)
        if fwd is not None:
            versions = [a._version for a in args if type(a) is torch.Tensor]
            if any(i < 0 or isinstance(args[i], _READ_CHECKED) for i in fwd.reads):
                return _forward_guarded, (fwd, versions, fwd.reads)
            return _forward, (fwd, versions)
    special = TABLE.dispatcher(f)
    stand_in = getattr(special, "stand_in", None)
    if type(stand_in) is types.FunctionType and stand_in.__closure__ is None:
        code = stand_in.__code__
        n = code.co_argcount
        if code.co_flags & VARFLAGS == 0x04 and not code.co_kwonlyargcount and not stand_in.__defaults__ \
                and len(args) >= n:
            fwd = forward(stand_in, (*args[:n], tuple(args[n:])))
            if fwd is not None:   # (J's keyword path runs it: no checks)
                return _stand_in, (fwd, stand_in, n)
        return _dispatcher, ()
    if special is not None:
        rule = special.by_kinds(args) if hasattr(special, "by_kinds") else None
    else:
        rule = select(f, [kind_of(a) for a in args]) if TABLE.adjoint(f) is None and TABLE.lookup(f) else None
    if rule is not None and (rule.vararg or len(rule.params) == len(args)):
        if no_grad and not moves(rule, kind_of(args[0]) if args else None):
            return _computed, (closure_form(rule),)
        return _rule, (closure_form(rule),)
    return _dispatcher, ()


_READ_CHECKED = (torch.Tensor, np.ndarray) if np is not None else (torch.Tensor,)


def _exact(code, nargs: int) -> bool:
    """Whether a call with ``nargs`` positional arguments passes exactly ``code``'s parameters."""
    return code.co_argcount == nargs and not code.co_flags & VARFLAGS and not code.co_kwonlyargcount


def nested_J(ictx, f, *args):
    """``J(ictx, f, *args)``, lifted in J's place (the module's docstring says why)."""
    how, extra = plan(f, args, ictx.no_grad)
    return how(extra, ictx, f, args)


def _forward(extra, ictx, f, args):
    run, versions = extra
    res = run(ictx, f, *args)
    check_mutation(f, args, versions, res[0])
    return res


def _forward_guarded(extra, ictx, f, args):
    run, versions, reads = extra
    res = run(ictx, f, *args)
    check_mutation(f, args, versions, res[0])
    return guard_reads(f, reads, args, res)


def _rule(extra, ictx, f, args):
    return extra[0](ictx, *args)


def _computed(extra, ictx, f, args):
    """A rule that computes, under ``torch.no_grad()`` (``dispatch.apply_rule``)."""
    return detached(extra[0](ictx, *args)[0]), nothing(len(args), None)


def _stand_in(extra, ictx, f, args):
    """A ``lift_as`` stand-in with ``*args``: its pullback's tuple spread over them."""
    run, fn, star = extra
    y, back = run(ictx, fn, *args[:star], args[star:])
    return y, lambda dy: _spread(back(dy), star, len(args))


def _dispatcher(extra, ictx, f, args):
    return Jkw(ictx, f, args, None)


def _spread(g, star: int, nargs: int) -> tuple:
    rest = g[star]
    return tuple(g[:star]) + (tuple(rest) if rest is not None else (None,) * (nargs - star))


def nested_Jkw(octx, args, kw, kwargs):
    """``Jkw(ictx, f, a, k)`` in differentiated code: without keywords (a star call), ``J(ictx, f,
    *a)`` as ``nested_J`` runs it, its pullback shaped as Jkw's; else ``Jkw`` lifted, as any
    callee of J's other cases (``_dispatcher``)."""
    if not kw and kwargs is None and len(args) == 4 and not args[3] and \
            plan(args[1], args[2], args[0].no_grad)[0] is not _dispatcher:
        return J(octx, _keywordless, *args)
    flat, unbind = bind_function(Jkw, args, kw)
    fwd = entry_for(Jkw, kinds_of(flat), ranks=ranks_of(flat), floats=floats_of(flat), registered=True).fwd
    y, back = fwd(octx, Jkw, *flat)
    return y, lambda dy: unbind(octx, flat, back(dy), len(args), kwargs)


def _keywordless(ictx, f, a, k):
    """``Jkw(ictx, f, a, k)`` for a call without keywords (``k`` None or empty), as ``J``."""
    y, back = J(ictx, f, *a)
    return (y, back) if k is None else (y, lambda dy: (back(dy), {}))


def nested_consts(ictx, consts, f, *args):
    """``call_consts`` in differentiated code: as ``J`` (a constant of the level below may be
    varied at this one)."""
    return nested_J(ictx, f, *args)


def nested_pinned(ictx, pinned, m, *args):
    """``call_pinned`` in differentiated code: as ``J``."""
    return nested_J(ictx, m, *args)


def nested_pinned_method(ictx, pinned, obj, name, *args):
    """``call_pinned_method`` in differentiated code: as ``J`` on ``ops.call_method``."""
    return nested_J(ictx, call_method_op, obj, name, *args)


register_dispatch(J, lift_as(nested_J))
register_dispatch(Jkw, nested_Jkw)
register_dispatch(call_consts, lift_as(nested_consts))
register_dispatch(call_pinned, lift_as(nested_pinned))
register_dispatch(call_pinned_method, lift_as(nested_pinned_method))
nondiff(plan, check_mutation, saved_reads, check_reads)
