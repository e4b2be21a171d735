"""Dispatch cases: calls whose meaning depends on run-time values (operators on objects of
unknown kind, attribute reads and writes, item writes, ``functools.partial``, builtins lifted
as Python stand-ins), registered in the rule table (``registry.register_dispatch``)."""
from __future__ import annotations

import collections
import functools
import operator
import types

import torch

from ..errors import LiftError
from ..frontend import ops
from ..rules import numpy_shape, pylib
from ..rules.container_backs import attr_back, del_back, delete_item, method_self_back, read_back, seq_back, write_back
from ..rules.inplace import check_splice
from ..rules.registry import TABLE, closure_form, register_dispatch, select
from ..values.fields import plain, read_field
from ..values.kinds import has_identity, kind_of
from ..values.module_tensors import ModuleTensors
from .binding import bind_rule, rebind_back
from .dispatch import J, Jkw, _split_back, apply_rule, call_method, foreign, nothing, torch_internal


def partial_rule(ctx, args, kw, kwargs):
    """``functools.partial(f, *args, **kw)``: the stored arguments get the gradients
    the partial's calls gave them."""
    y = functools.partial(*args, **kw)

    def back(dy):
        slot = ctx.peek(y) or {}
        da = (None,) + tuple(slot.get("args") or (None,) * (len(args) - 1))
        if kwargs is None:
            return da
        return da, dict(slot.get("keywords") or {})
    return y, back


def python_method(cls, name):
    """``cls.name`` if it is defined in Python and can be lifted, else None: torch's own
    Python methods (``Tensor.__matmul__`` wraps the op) are left to the rules."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            m = klass.__dict__[name]
            return m if isinstance(m, types.FunctionType) and not torch_internal(m) else None
    return None


def operator_dispatch(op, name, rname=None):
    """``a + b`` and friends on objects of unknown kind: a Python-level dunder
    (``__add__``, then the other operand's ``__radd__``) is differentiated;
    otherwise the operator's rules apply by the operands' actual kinds."""
    def run(ctx, args, kw, kwargs):
        m = python_method(type(args[0]), name)
        if m is not None:
            y, back = J(ctx, m, *args)
            if y is not NotImplemented:
                return y, back
        if rname is not None and len(args) == 2:
            m = python_method(type(args[1]), rname)
            if m is not None:
                y, back = J(ctx, m, args[1], args[0])
                if y is not NotImplemented:
                    return y, lambda dy: back(dy)[::-1]
        return by_rule(ctx, op, args, kw, kwargs)

    def by_kinds(args):
        """The rule ``run`` applies to positional ``args`` when neither operand has a Python dunder."""
        if python_method(type(args[0]), name) is not None or \
                rname is not None and len(args) == 2 and python_method(type(args[1]), rname) is not None:
            return None
        return select(op, [kind_of(a) for a in args])
    run.by_kinds = by_kinds
    return run


_MISSING = object()


def getattr_dispatch(ctx, args, kw, kwargs):
    """Attribute reads: properties and ``__getattr__`` written in Python are
    differentiated; plain fields are read with the generic rule."""
    obj, name = args[0], args[1]
    cls = type(obj)
    if len(args) == 2 and plain(obj, name):  # a module's parameter or submodule: no dispatch
        y = read_field(obj, name)
        return y, lambda dy: (attr_back(ctx, obj, name, y, dy), None)
    if name == "__dict__" and len(args) == 2:
        return instance_dict(ctx, obj)
    attr = _class_attr(cls, name)
    if attr is not _MISSING:
        if _python_property(attr):
            y, back = J(ctx, attr.fget, obj)
            return y, lambda dy: back(dy) + (None,) * (len(args) - 1)
        getter = python_method(type(attr), "__get__")
        if getter is not None and len(args) == 2:
            y, back = J(ctx, getter, attr, obj, cls)
            return y, lambda dy: (back(dy)[1], None)
    else:
        inst = getattr(obj, "__dict__", None)
        ga = python_method(cls, "__getattr__")
        module = isinstance(obj, torch.nn.Module)
        if ga is not None and (inst is None or name not in inst) and not (module and _module_field(obj, name, ga)):
            try:
                object.__getattribute__(obj, name)
            except AttributeError:   # (a module's own __getattr__: ``alias`` computed from its fields)
                y, back = J(ctx, ga, obj, name)
                return y, lambda dy: back(dy) + (None,) * (len(args) - 2)
    if len(args) == 2 and not has_identity(obj) and ops.is_method_of(cls, name):
        m = getattr(obj, name)   # ``m = x.sum``: a bound method, whose calls fill its slot
        return m, lambda dy: (method_self_back(ctx, m), None)
    return by_rule(ctx, getattr, args, kw, kwargs)


def instance_dict(ctx, obj, back=lambda dy: (None, None)):
    """``obj.__dict__`` (``vars(obj)``): the dict whose items are the object's fields, so its
    gradients live in the object's slot (``Context.share``): a field written through the dict
    is what ``obj.k`` reads afterwards, and the other way round."""
    if not hasattr(obj, "__dict__"):   # (``__slots__``: as Python says it)
        raise TypeError("vars() argument must have __dict__ attribute")
    d = obj.__dict__   # (nested AD: this read is itself the getattr case above)
    if type(d) is dict:
        ctx.share(d, obj)
    return d, back


def vars_dispatch(ctx, args, kw, kwargs):
    """``vars(obj)``: ``obj.__dict__``, one slot with the object (``instance_dict``)."""
    if len(args) != 1 or kw:
        raise LiftError("vars() without an object (the local names) cannot be differentiated; read the "
                        "names themselves, or pass the object (vars(obj))")
    return instance_dict(ctx, args[0], lambda dy: (None,) if kwargs is None else ((None,), {}))


def _getattr_by_kinds(args):
    """The rule ``getattr_dispatch`` applies to ``getattr(obj, name)`` with no case of its own: a
    name the class defines natively (a slot, a getset descriptor such as a cell's
    ``cell_contents``), not a method of a value; else None."""
    if len(args) != 2 or args[1] == "__dict__":
        return None
    obj, name = args
    attr = _class_attr(type(obj), name)
    if attr is _MISSING or _python_property(attr) or python_method(type(attr), "__get__") is not None or \
            not has_identity(obj) and ops.is_method_of(type(obj), name):
        return None
    return select(getattr, [kind_of(a) for a in args])


getattr_dispatch.by_kinds = _getattr_by_kinds


def _class_attr(cls, name: str):
    """``name`` as the first class of ``cls``'s MRO defines it, or ``_MISSING``."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return _MISSING


def _python_property(attr, accessor: str = "fget") -> bool:
    """Whether ``attr`` is a property whose getter (or ``fset``: setter) is written in Python."""
    return isinstance(attr, property) and isinstance(getattr(attr, accessor), types.FunctionType)


def _module_field(m, name: str, ga) -> bool:
    """Whether ``m.name`` is read by torch's own lookup of a module's registries (its
    parameters, buffers and submodules), rather than by a ``__getattr__`` of the class's own."""
    return ga is torch.nn.Module.__getattr__ or any(
        name in (m.__dict__.get(reg) or ()) for reg in ("_parameters", "_buffers", "_modules"))


def setitem_dispatch(ctx, args, kw, kwargs):
    """``obj[key] = v`` on an object of unknown kind: a Python ``__setitem__`` is
    differentiated, builtin containers and tensors use their rules."""
    m = python_method(type(args[0]), "__setitem__")
    if m is not None:
        _, back = J(ctx, m, *args)
        return args[0], back
    return by_rule(ctx, ops.setitem_v, args, kw, kwargs)


def delitem_dispatch(ctx, args, kw, kwargs):
    """``del obj[key]`` on an object of unknown kind: a Python ``__delitem__`` is differentiated; a
    list or dict subclass that deletes as the builtin does (``OrderedDict``) has the builtin's
    pullback (its slot gives the deleted item back its place)."""
    obj, key = args[0], args[1]
    m = python_method(type(obj), "__delitem__")
    if m is not None:
        _, back = J(ctx, m, obj, key)
        return None, _split_back(back, 2, kwargs)
    if isinstance(obj, (list, dict)):
        n = delete_item(obj, key)
        return None, _split_back(lambda dy: (None, del_back(ctx, obj, key, n)), 2, kwargs)
    return by_rule(ctx, operator.delitem, args, kw, kwargs)


def frozenset_dispatch(ctx, args, kw, kwargs):
    """``frozenset(items)``: the gradients of its items, by the order it iterates them (``read_back``),
    go back to the items it kept (of equal ones, the first)."""
    items = list(args[0]) if args else []
    fs = frozenset(items)

    def back(dy):
        if dy is None or not args:
            return (None,) * len(args)
        first = {}
        for i, x in enumerate(items):
            first.setdefault(x, i)
        g = [None] * len(items)
        for v, d in zip(fs, dy):
            g[first[v]] = d
        return (seq_back(ctx, args[0], tuple(g)),)
    return fs, _split_back(back, len(args), kwargs)


def _builtin(obj, name: str):
    """``type(obj)``'s method ``name`` as a builtin class defines it (``OrderedDict``'s, ``dict``'s):
    the first in its MRO that is not a Python override."""
    for klass in type(obj).__mro__:
        m = klass.__dict__.get(name)
        if m is not None and not isinstance(m, types.FunctionType):
            return m
    raise TypeError(f"{type(obj).__name__} has no builtin {name}")


def base_getitem(ctx, args, kw, kwargs):
    """``dict.__getitem__(d, k)``, ``list.__getitem__`` (``super().__getitem__(k)`` in a subclass's
    override): the builtin's read, not the override again, with a read's pullback."""
    obj, key = args
    y = _builtin(obj, "__getitem__")(obj, key)
    return y, _split_back(lambda dy: (read_back(ctx, obj, key, y, dy), None), 2, kwargs)


def base_setitem(ctx, args, kw, kwargs):
    """``dict.__setitem__(d, k, v)``, ``list.__setitem__`` (``super().__setitem__(k, v)``): the
    builtin's write, with a write's pullback."""
    obj, key, v = args
    _builtin(obj, "__setitem__")(obj, key, check_splice(obj, key, v))
    return None, _split_back(lambda dy: (None, None, write_back(ctx, obj, key, v)), 3, kwargs)


def setattr_dispatch(ctx, args, kw, kwargs):
    """``obj.name = v``: a property setter or a descriptor's ``__set__`` written in
    Python is differentiated; a plain field is written with the generic rule."""
    obj, name = args[0], args[1]
    if isinstance(obj, types.ModuleType):
        ops.check_module_write(obj, name, args[2])
    attr = _class_attr(type(obj), name)
    if _python_property(attr, "fset"):
        _, back = J(ctx, attr.fset, obj, args[2])
        return None, lambda dy: (None, None, back(None)[1])
    setter = python_method(type(attr), "__set__") if attr is not _MISSING else None
    if setter is not None:
        _, back = J(ctx, setter, attr, obj, args[2])
        return None, lambda dy: (None, None, back(None)[2])
    return by_rule(ctx, setattr, args, kw, kwargs)


def _setattr_by_kinds(args):
    """The rule ``setattr_dispatch`` applies where the class has no Python setter for the name."""
    attr = _class_attr(type(args[0]), args[1]) if len(args) == 3 and not isinstance(args[0], types.ModuleType) \
        else None
    if attr is None or _python_property(attr, "fset") or \
            attr is not _MISSING and python_method(type(attr), "__set__") is not None:
        return None
    return select(setattr, [kind_of(a) for a in args])


setattr_dispatch.by_kinds = _setattr_by_kinds


def by_rule(ctx, f, args, kw, kwargs):
    """``f``'s rule for the arguments' actual kinds (no dunder dispatch)."""
    rule = select(f, [kind_of(a) for a in args], len(kw))
    if rule is None:
        if TABLE.is_nondiff(f):
            return f(*args, **kw), nothing(len(args), kwargs)
        return foreign(ctx, f, args, kw, kwargs)
    return apply_rule(ctx, rule, args, kw, kwargs)


def lift_as(stand_in):
    """Differentiate calls to a builtin by lifting a Python stand-in."""
    def run(ctx, args, kw, kwargs):
        return Jkw(ctx, stand_in, args, kwargs)
    run.stand_in = stand_in
    return run


def module_tensors(method):
    """``m.parameters()`` and friends: torch's generator, its items crediting their fields."""
    def run(ctx, args, kw, kwargs):
        n = len(args)
        return ModuleTensors(method(*args, **kw), args[0]), \
            lambda dy: (None,) * n if kwargs is None else ((None,) * n, {})
    return run


def _register() -> None:
    """The dispatch cases, in the rule table (``register_dispatch``)."""
    register_dispatch(ops.call_method, call_method)
    for builtin, stand_in in {**pylib.LIFT_AS, **numpy_shape.LIFT_AS}.items():
        register_dispatch(builtin, lift_as(stand_in))
    for f, name, rname in OPERATORS:
        register_dispatch(f, operator_dispatch(f, name, rname))
    register_dispatch(getattr, getattr_dispatch)
    register_dispatch(vars, vars_dispatch)
    register_dispatch(setattr, setattr_dispatch)
    register_dispatch(ops.setitem_v, setitem_dispatch)
    register_dispatch(operator.delitem, delitem_dispatch)
    register_dispatch(frozenset, frozenset_dispatch)
    for base in (dict, list, collections.OrderedDict):
        for name, handler in (("__getitem__", base_getitem), ("__setitem__", base_setitem)):
            if name in base.__dict__:
                register_dispatch(base.__dict__[name], handler)
    register_dispatch(functools.partial, partial_rule)
    for method in (torch.nn.Module.parameters, torch.nn.Module.named_parameters, torch.nn.Module.buffers,
                   torch.nn.Module.named_buffers):
        register_dispatch(method, module_tensors(method))


OPERATORS = ((operator.add, "__add__", "__radd__"), (operator.sub, "__sub__", "__rsub__"),
             (operator.mul, "__mul__", "__rmul__"), (operator.truediv, "__truediv__", "__rtruediv__"),
             (operator.floordiv, "__floordiv__", "__rfloordiv__"), (operator.mod, "__mod__", "__rmod__"),
             (operator.pow, "__pow__", "__rpow__"), (operator.matmul, "__matmul__", "__rmatmul__"),
             (operator.neg, "__neg__", None), (operator.pos, "__pos__", None), (abs, "__abs__", None),
             (operator.getitem, "__getitem__", None), (operator.setitem, "__setitem__", None),
             (operator.iadd, "__iadd__", "__radd__"), (operator.isub, "__isub__", "__rsub__"),
             (operator.imul, "__imul__", "__rmul__"), (operator.itruediv, "__itruediv__", "__rtruediv__"))
_register()
