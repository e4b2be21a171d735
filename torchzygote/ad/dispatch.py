"""Run-time dispatch: ``y, back = J(ctx, f, *args)`` for calls whose callee or argument kinds
are known only at run time. In order: a user rule (``@adjoint``), a dispatch case
(``handlers.py``; both entries of the rule table), a table rule's closure form, a lifted Python callee, and for torch
ops without a rule the torch-autograd fallback (``rules/fallback.py``)."""
from __future__ import annotations

import dataclasses
import functools
import operator
import os
import sys
import types

import torch

from ..errors import GradientError, NoRuleError
from ..frontend import ops
from ..rules import fallback, pylib
from ..rules.registry import TABLE, Rule, closure_form, moves, nondiff, register_adjoint, select
from ..values import dataclass_init
from ..values.algebra import accum
from ..values.context import NO_GRAD_MODE, Context
from ..values.fields import plain, read_field
from ..values.kinds import has_identity, kind_of, may_carry
from ..values.record import Record
from ..values.versions import guard_reads
from .binding import bind_function, bind_rule, rebind_back

_MISSING = object()
VARFLAGS = 0x04 | 0x08  # CO_VARARGS | CO_VARKEYWORDS
PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # torchzygote's own files


def own_code(file: str) -> bool:
    """Whether code is torchzygote's (generated code, or the runtime that nested AD differentiates
    again): its calls write nothing a caller reads, and the user calls it makes are checked
    where they were generated."""
    return file.startswith("<torchzygote") or file.startswith(PACKAGE)


def J(ctx: Context, f, *args):
    """``y, back = J(f, args...)``; ``back(dy)`` returns one gradient per argument."""
    if type(f) is types.FunctionType:
        code = f.__code__
        if code.co_argcount == len(args) and not (code.co_flags & VARFLAGS) and not code.co_kwonlyargcount:
            fwd = forward(f, args, data_consts(ctx, args, ctx.no_grad) if ctx.data else ctx.no_grad)
            if fwd is not None:   # (None for functions that are not lifted: rules, torch's own)
                return run_forward(ctx, f, fwd, args)
    elif type(f) in _PLAIN_MODULES and not _has_hooks(f) and not _registered(f):
        return _drop_self_call(ctx, type(f).forward, f, args)
    return Jkw(ctx, f, args, None)


_PLAIN_MODULES: set = set()   # nn.Module classes called the standard way (Module.__call__)
# functions whose dispatchers compute outside the rule table (torch autograd inside ``call_torch``,
# ``checkpoint``'s re-run, user rules): under ``torch.no_grad()`` they run as they are (``Context.no_grad``)
COMPUTES: set = set()


def computes(f) -> bool:
    """Whether ``f`` is in ``COMPUTES`` (an object without a hash is not)."""
    try:
        return f in COMPUTES
    except TypeError:
        return False


def call_consts(ctx: Context, consts: frozenset, f, *args):
    """``J(ctx, f, *args)`` where the caller knows that the arguments at positions ``consts``
    carry no gradient (a literal ``dt``, a number not varied there): a lifted callee is
    transformed without computing their gradients (the caller reads none of them)."""
    if type(f) is types.FunctionType:
        code = f.__code__
        if code.co_argcount == len(args) and not (code.co_flags & VARFLAGS) and not code.co_kwonlyargcount:
            fwd = forward(f, args, data_consts(ctx, args, consts | ctx.no_grad) if ctx.data else consts | ctx.no_grad)
            if fwd is not None:
                return run_forward(ctx, f, fwd, args)
    return J(ctx, f, *args)


def data_consts(ctx: Context, args, consts: frozenset, shift: int = 0) -> frozenset:
    """``consts`` and the positions (plus ``shift``) of ``args`` that are outside data: tensors
    read from outside that need no gradient, unchanged since (``values.outside``)."""
    data = ctx.data
    more = [i + shift for i, a in enumerate(args) if id(a) in data and _unchanged(data[id(a)], a)]
    return consts.union(more) if more else consts


def _unchanged(entry, a) -> bool:
    return entry[0] is a and entry[1] == a._version


def run_forward(ctx: Context, f: types.FunctionType, fwd, args):
    """A lifted callee's compiled forward, checked: the callee may not hide an in-place write
    into a tensor argument (``check_mutation``; a closed one writes nothing it did not make:
    ``analysis_modules.closed_forward``), and its pullback refuses arguments the caller
    wrote into after the call (``guard_reads``)."""
    if fwd.closed and not _modes():
        res = fwd(ctx, f, *args)
    else:
        versions = [a._version for a in args if type(a) is torch.Tensor]
        res = fwd(ctx, f, *args)
        if versions:
            check_mutation(f, args, versions, res[0])
    return guard_reads(f, fwd.reads, args, res) if fwd.reads else res


def _registered(f) -> bool:
    """Whether an object has its own entry in a rule table (then ``Jkw`` dispatches it)."""
    return TABLE.has_entry(f)


def Jkw(ctx: Context, f, args, kwargs):
    """``J`` for a call with keywords; ``back(dy)`` returns ``(dargs, dkwargs)`` when
    ``kwargs`` is a dict, else a tuple like ``J``."""
    kw = kwargs or {}
    if ctx.no_grad and computes(f):
        return ops.detached(f(*args, **kw)), nothing(len(args), kwargs)
    special = _special(f)
    if special is not None:
        return special(ctx, args, kw, kwargs)
    user = _user_rule(f)
    if user is not None:
        y, pb = user(*args, **kw)
        return y, _split_back(pb, len(args), kwargs)
    if TABLE.lookup(f):
        if f in TABLE.sequence_readers and (args and type(args[0]) is list or
                                            not args and type(kw.get(TABLE.sequence_readers[f])) is list):
            return _items_now(ctx, f, args, kw, kwargs)
        rule = select(f, [kind_of(a) for a in args], len(kw))
        if rule is not None:
            return apply_rule(ctx, rule, args, kw, kwargs)
    if TABLE.is_nondiff(f):
        return f(*args, **kw), nothing(len(args), kwargs)
    t = type(f)
    if t is types.FunctionType and f.__code__ is GRAD_DECORATED:
        return _decorated(ctx, f, args, kwargs)
    if t is types.FunctionType and not torch_internal(f):
        flat, unbind = bind_function(f, args, kw)
        y, back = run_forward(ctx, f, forward(f, flat, data_consts(ctx, flat, ctx.no_grad) if ctx.data else
                                               ctx.no_grad), flat)
        return y, lambda dy: unbind(ctx, flat, back(dy), len(args), kwargs)
    if t is types.MethodType:
        y, back = Jkw(ctx, f.__func__, (f.__self__, *args), kwargs)
        return y, _self_to_slot(ctx, f, back, kwargs)
    if t is functools.partial:
        stored = (f.args, dict(f.keywords))   # (as called: its keywords may change before the pullback)
        y, back = Jkw(ctx, f.func, (*f.args, *args), {**f.keywords, **kw})
        return y, lambda dy: _partial_back(ctx, f, stored, back(dy), kwargs)
    if isinstance(f, type):
        return construct(ctx, f, args, kw, kwargs)
    if isinstance(f, torch.nn.Module) and not _has_hooks(f):
        if t.__call__ is torch.nn.Module.__call__:
            _PLAIN_MODULES.add(t)
        if kwargs is None:
            return _drop_self_call(ctx, t.forward, f, args)
        y, back = Jkw(ctx, t.forward, (f, *args), kwargs)   # (the module's gradient is in its slot)
        return y, _drop_first(back, kwargs)
    if isinstance(f, torch.nn.Module) and t.__call__ is torch.nn.Module.__call__:
        # hooks: the call, hooks included, under torch autograd (bridges/torch_call.py), rather
        # than lifting Module.__call__'s machinery
        y, back = Jkw(ctx, ops.under_torch, (f, *args), kwargs)
        return y, _drop_first(back, kwargs)
    owner = getattr(f, "__self__", None)
    if t is types.BuiltinMethodType and owner is not None and not isinstance(owner, (types.ModuleType, type)):
        # a builtin method taken from its object (``d.pop`` passed to ``map``): dispatch as a method call
        y, back = call_method(ctx, (owner, f.__name__, *args), kw, kwargs)
        return y, _self_to_slot(ctx, f, back, kwargs, skip=1)
    call = getattr(type(f), "__call__", None)
    if isinstance(call, types.FunctionType):
        return _drop_self_call(ctx, call, f, args) if kwargs is None else \
            _drop_first_kw(Jkw(ctx, call, (f, *args), kwargs))
    return foreign(ctx, f, args, kw, kwargs)


# the wrapper ``@torch.no_grad()`` (and torch's other switches) put around a function
GRAD_DECORATED = torch.no_grad()(lambda: None).__code__


def decorated_mode(f) -> tuple:
    """For a function ``@torch.no_grad()`` (``enable_grad``, ``set_grad_enabled(m)``,
    ``inference_mode(m)``) decorated: the function, and the ``Context.no_grad`` it runs under
    (None where the switch leaves the mode as it is)."""
    cells = dict(zip(f.__code__.co_freevars, (c.cell_contents for c in f.__closure__)))
    mgr = getattr(cells["ctx_factory"], "__self__", None)   # (its clone: making one would switch torch's mode)
    on = {torch.no_grad: False, torch.enable_grad: True}.get(type(mgr))
    if isinstance(mgr, torch.set_grad_enabled):
        on = mgr.mode
    elif isinstance(mgr, torch.inference_mode):
        on = False if mgr.mode else None
    return cells["func"], None if on is None else frozenset() if on else NO_GRAD_MODE


def _decorated(ctx: Context, f, args, kwargs):
    """A call of a function under one of torch's grad-mode decorators: the function, run as
    if called in that ``with`` block (``Analysis.cut``)."""
    func, mode = decorated_mode(f)
    if mode is None:
        return Jkw(ctx, func, args, kwargs)
    was, ctx.no_grad = ctx.no_grad, mode
    try:
        return Jkw(ctx, func, args, kwargs)
    finally:
        ctx.no_grad = was


def apply_rule(ctx: Context, rule: Rule, args, kw: dict, kwargs):
    """A rule chosen at run time, applied; under ``torch.no_grad()`` (``Context.no_grad``) one
    that computes (``registry.moves``) gives no gradient, as ``Analysis.cut`` decides for the
    rules a transform inlines."""
    y, back = closure_form(rule)(ctx, *bind_rule(rule, args, kw))
    if ctx.no_grad and not moves(rule, kind_of(args[0]) if args else None):
        return ops.detached(y), nothing(len(args), kwargs)
    return y, rebind_back(back, rule, args, kwargs)


def check_mutation(f, args, versions, y):
    """A callee wrote into a tensor argument in place. Returning it (``nn.ReLU(inplace=True)``,
    ``x = f(x)``) gives the caller a new value; a hidden write would be missed."""
    if not versions or versions == [a._version for a in args if type(a) is torch.Tensor]:
        return
    mutated = [a for a in args if type(a) is torch.Tensor]
    mutated = [a for a, v in zip(mutated, versions) if a._version != v]
    if all(a is y for a in mutated):
        return
    code = f.__code__
    name, loc = getattr(f, "origin", None) or (f.__qualname__, (code.co_filename, code.co_firstlineno))
    raise GradientError(
        f"{name} writes into a tensor argument in place; torchzygote follows in-place "
        f"writes within a function, so the caller's gradient would miss it: return the new tensor "
        f"(`y = f(y)`) or write to a copy", loc)


def _items_now(ctx: Context, f, args, kw, kwargs):
    """A function that reads a list's items (``torch.cat(xs)``, its callee known only at run
    time) called on the items as they are now (``ops.items_of``), as the frontend calls it
    where the callee is known: a write into the list after the call cannot change its gradient."""
    name = TABLE.sequence_readers[f] if not args else None
    t, items_back = J(ctx, ops.items_of, args[0] if args else kw[name])
    if args:
        y, back = Jkw(ctx, f, (t, *args[1:]), kwargs)
    else:
        y, back = Jkw(ctx, f, (), {**kw, name: t})

    def b(dy):
        g = back(dy)
        da, dk = g if kwargs is not None else (g, None)
        if args:
            da = (items_back(da[0])[0], *da[1:])
        else:
            dk = {**dk, name: items_back(dk[name])[0]}
        return da if kwargs is None else (da, dk)
    return y, b


def _modes() -> bool:
    """Whether a torch function or dispatch mode is active: it runs user code at every torch call,
    so a closed forward is not closed under it (``Pins``, ``run_forward``)."""
    return bool(_function_modes() or _dispatch_modes())


_function_modes = getattr(torch._C, "_len_torch_function_stack", lambda: 1)
_dispatch_modes = getattr(torch._C, "_len_torch_dispatch_stack", lambda: 1)


class Pins(dict):
    """A call site's pinned entries (module class -> (forward, entry)), and whether the caller is
    closed (``analysis_modules.closed_forward``): then nothing the caller ran since its own
    entry's guards were checked, when it began, can have rebound a field or a global, and the
    callee's guards and validity, which are among the caller's (``ModuleFacts.lift``, its
    ``deps``), still hold. A call that leaves for ``J`` may run any code: from then on, for the rest
    of the gradient call, pinned calls check (``Context.opened``). ``consts``: the positions
    (the module's first) of arguments without a gradient there, as ``call_consts``'."""

    __slots__ = ("trusted", "consts")

    def __init__(self, pinned: dict, trusted: bool, consts: frozenset = frozenset()):
        super().__init__(pinned)
        self.trusted = trusted
        self.consts = consts


def call_pinned(ctx, pinned: Pins, m, *args):
    """``J(ctx, m, *args)`` for a call of a module the caller's transform is specialised on:
    ``pinned`` maps a module class to the forward and the entry the caller's analysis chose for
    it (``ModuleFacts.pins``), run without the cache's lookup where the class still has that
    forward and the module still fits the entry's guards (a field rebound since the caller
    began gets the entry ``J`` finds; a closed caller's could not have been: ``Pins``)."""
    got = pinned.get(type(m))
    if got is not None and not _has_hooks(m) and not _registered(m):
        fn, e = got
        full = (m, *args)
        consts = data_consts(ctx, args, pinned.consts | ctx.no_grad, 1) if ctx.data else pinned.consts
        if consts and type(m).forward is fn:   # constants or outside data among the arguments: that transform
            y, back = run_forward(ctx, fn, forward(fn, full, consts), full)
            return y, lambda dy: back(dy)[1:]
        if type(m).forward is fn and (pinned.trusted and not ctx.opened and not _modes() or
                                      e.valid(fn) and e.fits(full)):
            y, back = run_forward(ctx, fn, e.fwd, full)
            return y, lambda dy: back(dy)[1:]
    ctx.opened = True
    return J(ctx, m, *args)


def call_pinned_method(ctx, pinned: dict, obj, name: str, *args):
    """``obj.name(*args)`` where ``obj.name`` is a module the caller is specialised on (``call_pinned``)."""
    if not plain(obj, name):
        ctx.opened = True
        return J(ctx, ops.call_method, obj, name, *args)
    y, back = call_pinned(ctx, pinned, read_field(obj, name), *args)
    return y, lambda dy: (None, None, *back(dy))


def _drop_self_call(ctx, fn, obj, args):
    y, back = J(ctx, fn, obj, *args)
    return y, lambda dy: back(dy)[1:]


def _drop_first_kw(res):
    y, back = res
    return y, _drop_first(back, {})


def _drop_first(back, kwargs):
    if kwargs is None:
        return lambda dy: back(dy)[1:]

    def b(dy):
        da, dk = back(dy)
        return da[1:], dk
    return b


def _self_to_slot(ctx, m, back, kwargs, skip=0):
    """The pullback of a call of bound method ``m``: the gradient of a value ``m.__self__``
    (a tensor: ``m = x.sum``) goes to ``m``'s slot, where the read of ``m`` finds it
    (``method_self_back``); an object's lives in its own slot already. The rest (after
    ``skip`` more, the method's name) is the arguments'."""
    def b(dy):
        g = back(dy)
        da, dk = (g, None) if kwargs is None else g
        if da[0] is not None and not has_identity(m.__self__):
            slot = ctx.slot(m)
            slot["__self__"] = accum(slot.get("__self__"), da[0])
        return da[1 + skip:] if kwargs is None else (da[1 + skip:], dk)
    return b


def _split_back(pb, nargs, kwargs):
    """Adapt a user pullback (one gradient per argument, keywords last) to ``J``'s shape."""
    def back(dy):
        g = pb(dy)
        g = (g,) if not isinstance(g, tuple) else g
        if kwargs is None:
            return tuple(g[:nargs]) + (None,) * (nargs - len(g))
        return tuple(g[:nargs]), dict(zip(kwargs, g[nargs:]))
    return back


def nothing(n, kwargs):
    if kwargs is None:
        none = (None,) * n
        return lambda dy: none
    return lambda dy: ((None,) * n, {})


def _partial_back(ctx, p, stored, g, kwargs):
    """Split a partial's gradients: its ``stored`` arguments' (as the call had them) go to its slot
    (but those of Params, credited), the call's back."""
    da, dk = g
    args, keywords = stored
    n = len(args)
    slot = ctx.slot(p)
    slot["args"] = accum(slot.get("args"), ctx.credit(args, tuple(da[:n])))
    slot["keywords"] = accum(slot.get("keywords"), {k: ctx.credit(keywords[k], v) for k, v in dk.items()
                                                    if k in keywords})
    if kwargs is None:
        return tuple(da[n:])
    return tuple(da[n:]), {k: v for k, v in dk.items() if k in kwargs}


def _has_hooks(m) -> bool:
    """Whether ``Module.__call__`` on ``m`` does more than ``type(m).forward``: hooks (its own or
    global), or a forward of the instance's own (``m.forward = fn``, which it calls instead)."""
    return bool("forward" in m.__dict__ or m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
                or getattr(m, "_backward_pre_hooks", None)
                or torch.nn.modules.module._global_forward_hooks
                or torch.nn.modules.module._global_forward_pre_hooks)


USER_RULES = TABLE.adjoints   # (the rule table's user rules; tests remove theirs from it)
forward = None  # set by .cache: (function, args) -> compiled forward


def _special(f):
    return TABLE.dispatcher(f)


def call_method(ctx, args, kw, kwargs):
    """``obj.name(*args)``: a method found on the class is called with ``obj`` as
    its first argument (so rules and lifting see it); otherwise the attribute
    is read from the instance and called."""
    obj, name, rest = args[0], args[1], args[2:]
    attr = _MISSING
    # on a class (``cls.__new__(cls)``) Python looks in the class itself first: getattr does
    for klass in type(obj).__mro__ if type(obj) is not super and not isinstance(obj, type) else ():
        if name in klass.__dict__:
            attr = klass.__dict__[name]
            break
    if type(obj) is super:
        obj, attr = _from_super(obj, name)
    inst = getattr(obj, "__dict__", None)
    if attr is not _MISSING and not (inst is not None and name in inst) and not isinstance(attr, property):
        if isinstance(attr, staticmethod):
            y, back = Jkw(ctx, attr.__func__, rest, kwargs)
            return y, _prefix_back(back, 2, kwargs)
        if isinstance(attr, classmethod):
            y, back = Jkw(ctx, attr.__func__, (type(obj), *rest), kwargs)
            return y, _prefix_back(_drop_first(back, kwargs), 2, kwargs)
        if callable(attr):
            y, back = Jkw(ctx, attr, (obj, *rest), kwargs)
            return y, _prefix_back(back, 1, kwargs, at=1)
    y, back = Jkw(ctx, getattr(obj, name), rest, kwargs)
    return y, _prefix_back(back, 2, kwargs)


def _from_super(sup: super, name: str):
    """``super().name`` where the class found defines ``name`` as a slot wrapper (``object.__setattr__``):
    ``(the instance, the wrapper)``, so it is called with the instance first and its rule applies
    (the bound method-wrapper ``getattr`` gives has none); else ``(sup, _MISSING)``, read as it is."""
    this, inst = sup.__thisclass__, sup.__self__
    mro = (inst if isinstance(inst, type) else type(inst)).__mro__
    for klass in mro[mro.index(this) + 1:] if this in mro else ():
        if name in klass.__dict__:
            attr = klass.__dict__[name]
            # (a builtin's method too, ``dict.__getitem__``: read from the instance, it would be the override)
            return (inst, attr) if type(attr) in (types.WrapperDescriptorType, types.MethodDescriptorType) \
                else (sup, _MISSING)
    return sup, _MISSING


def _prefix_back(back, n, kwargs, at=0):
    """Insert ``n`` empty gradients at position ``at`` of a pullback's result."""
    pad = (None,) * n

    def b(dy):
        g = back(dy)
        if kwargs is None:
            return g[:at] + pad + g[at:]
        da, dk = g
        return da[:at] + pad + da[at:], dk
    return b


def _user_rule(f):
    return TABLE.adjoint(f)


def construct(ctx, cls, args, kw, kwargs):
    """``cls(*args)``: named tuples and dataclasses have exact rules; other
    classes run ``__new__`` and differentiate their Python ``__init__``."""
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        y = cls(*args, **kw)
        fields = cls._fields

        def back(dy):
            d = tuple(dy) if dy is not None else (None,) * len(fields)
            by_name = dict(zip(fields, d)) if not isinstance(dy, Record) else dict(dy.items())
            da = tuple(by_name.get(fields[i]) for i in range(len(args)))
            return da if kwargs is None else (da, {k: by_name.get(k) for k in kw})
        return y, back
    if dataclasses.is_dataclass(cls) and "__init__" in cls.__dict__ and not hasattr(cls, "__post_init__"):
        y = cls(*args, **kw)
        names = [f.name for f in dataclasses.fields(cls) if f.init]

        def back(dy):
            slot = ctx.peek(y) or {}
            da = tuple(slot.get(names[i]) for i in range(len(args)))
            return da if kwargs is None else (da, {k: slot.get(k) for k in kw})
        return y, back
    init = cls.__init__
    if dataclass_init.generated_init(cls):   # the generated __init__'s assignments, then __post_init__ lifted
        obj, initvals, names, initvars = dataclass_init.assign_fields(cls, args, kw)
        _, post = Jkw(ctx, cls.__post_init__, (obj, *initvals), None)

        def back_post(dy):
            ginit = post(None)[1:]   # (first: __post_init__'s reads of the fields add to their slots)
            by_name = {**(ctx.peek(obj) or {}), **dict(zip(initvars, ginit))}
            da = tuple(by_name.get(names[i]) for i in range(len(args)))
            return da if kwargs is None else (da, {k: by_name.get(k) for k in kw})
        return obj, back_post
    if pylib.fills(cls, args, kw):   # OrderedDict(a=x), defaultdict(float, d)
        y, back = Jkw(ctx, pylib.py_filled, (cls, *args), kwargs)
        return y, _drop_first(back, kwargs)
    # (torch's own classes, nn.Linear and the rest, are built as they are: their constructors are
    # no part of a gradient, and lifting their machinery would only risk it)
    if isinstance(init, types.FunctionType) and not fallback.torch_built(init.__module__ or "") and \
            (cls.__new__ is object.__new__ or cls.__new__ in (dict.__new__, list.__new__) and
             (init.__module__ or "").partition(".")[0] not in sys.stdlib_module_names):   # (a user's dict subclass)
        obj = cls.__new__(cls)
        _, back = Jkw(ctx, init, (obj, *args), kwargs)
        return obj, _drop_first(back, kwargs)
    return foreign(ctx, cls, args, kw, kwargs)


# what the user wrote, for the operations the frontend makes of syntax (errors name these, not the op)
_SYNTAX = {ops.setitem_v: "the item assignment `obj[key] = value`", operator.iadd: "`a += b`",
           operator.isub: "`a -= b`", operator.imul: "`a *= b`", operator.itruediv: "`a /= b`",
           operator.ipow: "`a **= b`"}


def _typename(v) -> str:
    t = type(v)
    return f"a {t.__module__ + '.' if t.__module__ not in ('builtins',) else ''}{t.__qualname__}"


def foreign(ctx, f, args, kw, kwargs):
    """A callable with no source and no rule: torch ops go through torch autograd;
    anything else runs as is, and its pullback errors only if a gradient must
    pass through it. Under ``torch.no_grad()`` it runs as is."""
    if ctx.no_grad:
        return ops.detached(f(*args, **kw)), nothing(len(args), kwargs)
    if fallback.is_torch_op(f) and getattr(f, "__module__", None) != "torch.nn.modules.module" and \
            any(isinstance(a, torch.nn.Module) and "_parameters" in a.__dict__ for a in args + tuple(kw.values())):
        # torch code given a module (a parametrization's property): its parameters' gradients come
        # from torch autograd, through the bridge (the module's own methods run as they are, and so
        # does torch code given a module still being built: its __init__, as torch.compile patches it)
        y, back = Jkw(ctx, ops.under_torch, (f, *args), kwargs)
        return y, _drop_first(back, kwargs)
    if fallback.is_torch_op(f) and any(fallback.has_tensor(a) for a in args + tuple(kw.values())):
        return fallback.fallback_call(ctx, f, args, kw, kwargs)
    held = [(a, _contents(a)) for a in args if isinstance(a, (list, dict)) and may_carry(a)]
    y = f(*args, **kw)
    for a, before in held:
        if _contents(a) != before:
            name = getattr(f, "__qualname__", None) or getattr(f, "__name__", repr(f))
            raise NoRuleError(f"no gradient rule for {name}, which changed a {type(a).__name__} of values that "
                              f"carry gradients in place: their gradients cannot be followed. Write the change "
                              f"with operations torchzygote differentiates (indexing, append, extend, +=), or "
                              f"give {name} a rule with @torchzygote.adjoint")
    diff = any(may_carry(a) for a in (*args, *kw.values()))

    def back(dy):
        if dy is None and diff and isinstance(y, (list, dict)):   # (made here: its items' gradients in its slot)
            g = ctx.peek(y)
            dy = next((v for v in (g.values() if isinstance(g, dict) else g or ()) if v is not None), None)
        if dy is not None and diff and f in _SYNTAX:
            raise NoRuleError(f"torchzygote cannot differentiate {_SYNTAX[f]} on {_typename(args[0])} with "
                              f"{_typename(args[-1])}: write numbers, NumPy scalars, arrays (or lists of them) into "
                              f"an array, tensors into a tensor, or build the new value out of place")
        if dy is not None and diff:
            name = getattr(f, "__qualname__", None) or getattr(f, "__name__", repr(f))
            mod = getattr(f, "__module__", None)
            why = "it is built as it is (a class of torch or of Python's library): its constructor is not " \
                  "differentiated" if isinstance(f, type) else "it has no Python source to differentiate"
            raise NoRuleError(f"no gradient rule for {mod + '.' if mod else ''}{name}: {why}. Define one with "
                              f"@torchzygote.adjoint({name}) or mark it torchzygote.nograd if it carries no gradient")
        return (None,) * len(args) if kwargs is None else ((None,) * len(args), {})
    return y, back


def _contents(c) -> list:
    """What a list or dict holds, by identity (to see whether a call changed it; a dict's gradients
    are kept by key, so its order does not count: ``move_to_end``)."""
    return [id(v) for v in c] if isinstance(c, list) else {k: id(v) for k, v in c.items()}




CO_GENERATOR_LIKE = 0x20 | 0x80 | 0x100 | 0x200   # generator, coroutine, iterable coroutine, async gen


# nn.Module's methods that move, cast or switch the mode of its state in place (``m.double()``):
# run as they are (lifted, their in-place swaps of parameter data would meet the write checks);
# the methods that store values (register_buffer, __setattr__) stay lifted, so gradients follow them
_MODULE_STATE_METHODS = frozenset({"to", "double", "float", "half", "bfloat16", "cuda", "cpu", "xpu", "type",
                                   "_apply", "train", "eval", "requires_grad_", "zero_grad", "share_memory",
                                   "apply", "to_empty"})


def torch_internal(f) -> bool:
    """torch's own Python functions run under torch autograd (``foreign``) rather than
    being lifted; module ``forward`` methods are lifted, to reach their parameters."""
    if f.__code__.co_flags & CO_GENERATOR_LIKE:
        return True  # calling a generator function only makes the generator: run it as is
    mod = f.__module__
    if mod == "torch.nn.modules.module" and f.__name__ in _MODULE_STATE_METHODS:
        return True
    return mod is not None and mod.startswith("torch.") and f.__name__ != "forward" and \
        not mod.startswith(fallback.LIFTED_TORCH)


for _f, _rule in fallback.RULES.items():
    register_adjoint(_f, _rule)
# Predicates of the dispatcher: their results are bools, ids and rule-table entries, which
# carry no gradient at any order. A nested transform (derivative of a derivative) calls them
# as they are instead of lifting each of them (and their pullbacks) from this file.
nondiff(_has_hooks, _registered, _special, torch_internal, may_carry, _contents, ops.is_method_of,
        dataclasses.is_dataclass)
