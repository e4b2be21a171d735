"""What generated forwards call around in-place writes, at run time: copies of values
about to be overwritten, and the checks that refuse a write whose old value a later read or
the gradient would need."""
from __future__ import annotations

import functools
import operator
import types

import numpy as np
import torch

from ..values import versions
from ..values.dual import Dual
from ..values.kinds import COMPLEX, KIND_OF_TYPE, NONDIFF, REAL, global_kind

from .. import errors
from ..rules.registry import nondiff

UNTRACKED = ("torchzygote cannot differentiate this write: it stores a value that depends on the inputs "
             "into a {what} that is not a local variable of this function (a global, an attribute, an "
             "item of a container), whose later reads would not carry the value's gradient. Write into "
             "a local copy and use that (`G = G.copy()` / `G = G.clone()`), return the new value, or store "
             "a value without gradient (`tz.dropgrad(v)`) if it is only recorded")


def keep_old(v, used_later: bool, loc):
    """A copy of tensor or array ``v`` about to be written in place (for the pullback), unless
    the code reads ``v`` again afterwards through the same name (then it is an error, as at
    transform time for known tensors); other objects are kept as they are (their writes are tracked)."""
    if not isinstance(v, (torch.Tensor, np.ndarray)):
        return v
    if used_later:
        raise errors.GradientError(
            f"torchzygote cannot differentiate this in-place write: it changes {_a(v)} that the code "
            "reads again afterwards through another name, and whose old value the gradient needs; "
            f"write into a copy ({_copy_hint(v)})", loc)
    return copy_tensor(v)


def _a(v) -> str:
    return "a tensor" if isinstance(v, torch.Tensor) else "an array"


def _copy_hint(v) -> str:
    return "`y = y.clone()`" if isinstance(v, torch.Tensor) else "`y = y.copy()` before writing into y"


def copy_tensor(v):
    return v.clone() if isinstance(v, torch.Tensor) else v.copy() if isinstance(v, np.ndarray) else v


def np_shared(a, b) -> bool:
    """Whether arrays ``a`` and ``b`` share memory (an overlap too hard to decide counts as shared)."""
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)) or not np.may_share_memory(a, b):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=100000))
    except np.exceptions.TooHardError:
        return True


def fresh_array(f) -> bool:
    """Whether ``f`` called without keywords (``out=``) always returns new memory: ufuncs,
    arithmetic, reductions, products, array makers."""
    try:
        return isinstance(f, np.ufunc) or f in _FRESH_ARRAY
    except TypeError:   # an unhashable callee
        return False


_FRESH_ARRAY = {operator.add, operator.sub, operator.mul, operator.truediv, operator.pow, operator.neg,
                operator.matmul, operator.mod, operator.floordiv, np.zeros, np.ones, np.full, np.empty, np.zeros_like,
                np.ones_like, np.full_like, np.empty_like, np.arange, np.linspace, np.eye, np.array, np.stack,
                np.concatenate, np.sum, np.mean, np.prod, np.max, np.min, np.amax, np.amin, np.dot, np.matmul,
                np.outer, np.where, np.copy, np.ndarray.copy, np.ndarray.sum, np.ndarray.mean, np.ndarray.prod,
                np.ndarray.max, np.ndarray.min, np.ndarray.dot, np.linalg.inv, np.linalg.solve, np.linalg.det,
                np.random.randn, np.random.rand, np.random.normal, np.cumsum, np.cumprod, np.diff, np.tile,
                np.repeat, np.kron}


def check_tracked_write(obj, loc) -> None:
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        raise errors.GradientError(UNTRACKED.format(
            what="tensor" if isinstance(obj, torch.Tensor) else "NumPy array"), loc)


def refuse_partial(loc) -> None:
    """In an ``except`` handler: the ``try`` body wrote a value that carries a gradient into a
    list, a dict, an object or a global before it raised; the handler's pullback runs in place of
    the body's, so that write's gradient would be lost (``Forward.fwd_try``)."""
    raise errors.GradientError(
        "torchzygote cannot differentiate this 'try' statement: its body (or a function it called) stored "
        "a value that carries a gradient (into a list, a dict, an attribute or a global) before it raised, "
        "and the gradient of a partly run body is not followed; make the store after the statement that "
        "may raise, or outside the 'try'", loc)


def refuse_tangent_in_place(held: bool, t, loc) -> None:
    """Forward mode: an in-place write with a tangent into a tensor read from outside state
    through a local name, which the state still ``held`` (``b = self.buf; b[:] = x * 2``,
    ``Names.write_back``)."""
    if held and t is not None:
        raise errors.GradientError(
            "forward mode cannot follow this in-place write: the tensor it changes was read from outside "
            "state (an attribute, an item, a global) through a local name, and that state's later reads "
            "would not see the tangent; store a new tensor there instead (`self.buf = x * 2`), or use "
            "reverse mode", loc)


def check_not_held(target, holders, loc) -> None:
    """Before an in-place write into ``target`` (a tensor or an array): none of ``holders`` (cells,
    lists, tuples, dicts this function made, read again later) may hold it."""
    if isinstance(target, np.ndarray):
        what, copy = "array", "y = y.copy()"
        shares = functools.partial(np_shared, b=target)
    elif isinstance(target, torch.Tensor):
        what, copy, p = "tensor", "y = y.clone()", target.untyped_storage().data_ptr()
        shares = lambda v: isinstance(v, torch.Tensor) and v.untyped_storage().data_ptr() == p  # noqa: E731
    else:
        return
    for h in holders:
        t = type(h)
        if t is types.CellType:
            try:
                items = (h.cell_contents,)
            except ValueError:
                continue
        elif t in (list, tuple) or isinstance(h, tuple) and not hasattr(h, "__dict__"):
            items = h
        elif isinstance(h, dict):
            items = h.values()
        else:   # (a value whose kind was known at run time only, not a container)
            continue
        if any(shares(v.primal if type(v) is Dual else v) for v in items):   # (forward mode: values with tangents)
            raise errors.GradientError(
                f"torchzygote cannot differentiate this in-place write: the {what} it changes is also held "
                f"by a closure cell, a list, a tuple or a dict, whose later reads torchzygote would give the old "
                f"value's gradient; write into a copy (`{copy}`) or store the new {what} again", loc)


def keep_if_shared(v, target, used_later: bool, loc, held: bool = False):
    """Before ``target`` is written in place: a copy of saved value ``v`` if it shares
    ``target``'s memory (so the pullback reads the value it had), else ``v`` itself. ``held``:
    ``v`` was read from a global, whose identity its gradient needs (``Params``): refused, as
    torch autograd refuses a write into a tensor a saved value's gradient reads."""
    if isinstance(target, np.ndarray):
        if not np_shared(v, target):
            return v
    elif not isinstance(target, torch.Tensor) or not isinstance(v, torch.Tensor) or \
            v.untyped_storage().data_ptr() != target.untyped_storage().data_ptr():
        return v
    if held:
        raise errors.GradientError(
            f"torchzygote cannot differentiate this in-place write: it changes {_a(v)} read from a global, "
            f"whose old value the gradient of an operation before it needs; make the change after the "
            f"gradient call, or read a copy of the global first ({_copy_hint(v)})", loc)
    if used_later:
        raise errors.GradientError(
            f"torchzygote cannot differentiate this in-place write: it changes {_a(v)} that is also "
            "reached another way (a view, a list, an object or an argument) and read again afterwards, and "
            f"whose old value the gradient needs; write into a copy ({_copy_hint(v)})", loc)
    return copy_tensor(v)


def copy_item(item, base, later, loc):
    """The copy ``base[key] += v`` (or ``base[key].mul_(v)``) computes on before writing it back
    (``analysis_order.dead_view``), checked by ``check_item_alone``."""
    check_item_alone(item, base, later, loc)
    return item.clone() if isinstance(item, torch.Tensor) else versions.copy_value(item)


def check_item_alone(item, base, later, loc) -> None:
    """Before ``base[key] += v`` writes ``item = base[key]``: where ``base`` is a list, a tuple or a
    dict, Python writes into the item itself, which generated code follows only through the slot
    written back: no other slot of ``base`` and none of ``later`` (values read afterwards) may
    hold it (``[z, z]``, or ``z`` read again); refused otherwise."""
    if isinstance(item, torch.Tensor) and not isinstance(base, (torch.Tensor, np.ndarray)):
        p = item.untyped_storage().data_ptr()
        shares = lambda v: isinstance(v, torch.Tensor) and v.untyped_storage().data_ptr() == p  # noqa: E731
        slots = base.values() if isinstance(base, dict) else base if isinstance(base, (list, tuple)) else ()
        # (forward mode: items with tangents are Duals)
        if sum(1 for v in slots if shares(v.primal if type(v) is Dual else v)) > 1 or any(shares(v) for v in later):
            raise errors.GradientError(
                "torchzygote cannot differentiate this in-place write into a container's item: the tensor it "
                "changes is also held by another slot or another name that the code reads again afterwards, "
                "whose value and gradient would stay the old ones; write into a copy (`y = y.clone()`) and "
                "store it", loc)


def check_apart(target, later, loc) -> None:
    """Forward mode, before ``target`` (a tensor or an array) is written in place: none of ``later`` (values
    made before and read after the write) may share its memory: their tangents would stay the
    old value's (an alias through a call, ``y = g()`` returning ``x``, or a view made there)."""
    if isinstance(target, np.ndarray):
        shares = functools.partial(np_shared, b=target)
    elif isinstance(target, torch.Tensor):
        p = target.untyped_storage().data_ptr()
        shares = lambda v: isinstance(v, torch.Tensor) and v.untyped_storage().data_ptr() == p  # noqa: E731
    else:
        return
    for v in later:
        if shares(v):   # (the same object too: ``y10 = g()`` returning the tensor written)
            raise errors.GradientError(
                f"forward mode cannot follow this in-place write: it changes {_a(v)} that a value read "
                f"afterwards also reaches (an alias, or a view made by indexing or by a call), whose tangent "
                f"would stay the old one's; write into a copy ({_copy_hint(v)})", loc)


def version_of(v):
    """A tensor's version counter (None for other values): what ``check_call_writes`` compares."""
    return v._version if isinstance(v, torch.Tensor) else None


def check_call_writes(f, before: tuple, args: tuple, how: tuple, out, loc) -> None:
    """After a call dispatched at run time: ``args``, tensors passed to it, must be unchanged
    where this function reads them again under their old names (``how[k]``: ``"later"`` in
    the forward, ``"back"`` in the pullback), or where their name takes the result only if it
    is the same object (``"returned"``); ``(why, others)``: also where none of ``others``, other
    names read again, holds the written memory. A callee's in-place write gives the caller a new value
    only through the call's result (``y = f(y)``); the old name would read the new contents
    with the old value's gradient."""
    for k, (a, v) in enumerate(zip(args, before)):
        if v is None or a._version == v:
            continue
        why = how[k]
        if type(why) is tuple:   # (also read under other names: the written tensor may be one of them)
            why, others = why
            p = a.untyped_storage().data_ptr()
            if any(isinstance(o, torch.Tensor) and o.untyped_storage().data_ptr() == p for o in others):
                why = "alias"
        if why is None or why == "returned" and out is a:
            continue
        name = getattr(f, "__qualname__", None) or type(f).__name__
        short = name.rsplit(".", 1)[-1]
        if why == "back":
            what, fix = "whose old value this function's gradient needs", f"pass a copy (`{short}(y.clone())`)"
        elif why == "alias":
            what, fix = ("that this function reads again afterwards under another name (a callee returned it, "
                         "or it is an item or an argument)"), f"pass a copy (`{short}(y.clone())`)"
        else:
            what, fix = "that this function reads again afterwards under the same name", \
                f"bind the result (`y = {short}(y)`) and read the new name, or pass a copy (`{short}(y.clone())`)"
        raise errors.GradientError(
            f"{name} writes in place into a tensor passed to it {what}; torchzygote follows a "
            f"callee's write only through the value the call returns: {fix}", loc)


def check_global_type(v, was: type, name: str, useful: bool, loc):
    """``v``, read from global ``name`` by code specialised on the type the global had when the
    call began (``kinds.global_kind``), where a function it called rebound the global since
    (``H = 1.0`` at first, then ``global H; H = x * 3``): a value of the same kind, None (``mode =
    None``), or a bool or a string where a number or such a value was, goes on; one of another kind
    would be handled as the old kind's and could lose a gradient or fail inside the generated
    code: refused. In forward mode a number written with a tangent is a Dual, read as a constant:
    refused where its tangent would reach the result (``useful``), else its value is read."""
    dual = type(v) is Dual
    now, kind = type(v.primal if dual else v), global_kind(was)
    new = KIND_OF_TYPE.get(now) or global_kind(now)
    # (a bool or a string where a tensor was read would reach its pullback; None fails where Python would)
    if new == kind or now is type(None) or new == NONDIFF and kind in (REAL, COMPLEX, NONDIFF):
        if not dual:
            return v
        if useful and kind in (REAL, COMPLEX):
            raise _lost_number(name, loc)
        return v.primal if kind in (REAL, COMPLEX, NONDIFF) else v
    raise errors.GradientError(
        f"the global {name!r} was rebound during this call, by a function the code called, to "
        f"{now.__name__!r}: this function was transformed for the value it held when the call began "
        f"(a {was.__name__!r}). Bind the global before the gradient call, or pass the value as an "
        f"argument or return it", loc)


def check_number_global(ctx, fn, name: str, loc) -> None:
    """A number read from a global is a constant to the function reading it (``Analysis._varies``:
    Params are tensors); where differentiated code wrote that global during this gradient call (a
    setter the function called) a number that may depend on the inputs (``note_number_write``),
    the read would lose its gradient."""
    w = ctx.numbers
    if w is not None and (id(fn.__globals__), name) in w:
        raise _lost_number(name, loc)


def _lost_number(name: str, loc) -> errors.GradientError:
    return errors.GradientError(
        f"the global {name!r} was written during this gradient call by differentiated code (a "
        f"function doing `global {name}; {name} = ...`), and is read here as a constant: a gradient "
        f"through its value would be lost. Pass the value as an argument or return it, or write and "
        f"read the global in one function", loc)


def note_number_write(ctx, fn, name: str, v, varied: bool) -> None:
    """After ``global name; name = v`` in differentiated code: whether the global now holds a number
    that may carry a gradient (``varied``: the writer's value depends on its inputs, not only on
    the global's earlier value and constants; an int, a counter, carries none), for
    ``check_number_global``."""
    key = (id(fn.__globals__), name)
    if varied and type(v) in (float, complex):
        if ctx.numbers is None:
            ctx.numbers = set()
        ctx.numbers.add(key)
    elif ctx.numbers is not None:
        ctx.numbers.discard(key)


nondiff(np_shared, check_apart, version_of, check_call_writes, check_number_global, note_number_write)   # a transform of generated code (nested AD) calls them as they are
