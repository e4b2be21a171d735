"""Primitive operations the frontend lowers Python syntax to.

Each is an ordinary Python function, so unoptimised IR can always be run as is;
rules (``torchzygote/rules``) give them derivatives and codegen inlines them.
"""
import importlib
import inspect
import operator
import sys
import types

import torch

from ..errors import GradientError
from . import bound

try:
    import numpy as np
    _ARRAYS: tuple = (torch.Tensor, np.ndarray)
except ImportError:  # pragma: no cover
    _ARRAYS = (torch.Tensor,)

OP_SYMBOLS = {
    operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/",
    operator.floordiv: "//", operator.mod: "%", operator.pow: "**", operator.matmul: "@",
    operator.lshift: "<<", operator.rshift: ">>", operator.and_: "&", operator.or_: "|",
    operator.xor: "^", operator.lt: "<", operator.le: "<=", operator.gt: ">",
    operator.ge: ">=", operator.eq: "==", operator.ne: "!=", operator.is_: "is",
    operator.is_not: "is not", operator.neg: "-", operator.pos: "+", operator.invert: "~",
    operator.not_: "not ",
}


def build_tuple(*xs):
    return xs


def build_list(*xs):
    return list(xs)


def build_dict(*kvs):
    """``{k0: v0, k1: v1}`` as ``build_dict(k0, v0, k1, v1)``."""
    return dict(zip(kvs[::2], kvs[1::2]))


def build_set(*xs):
    return set(xs)


def cat_tuple(*parts):
    """Concatenate sequences into a tuple (``f(a, *b)``, ``(*a, b)``)."""
    out = ()
    for p in parts:
        out += tuple(p)
    return out


def cat_list(*parts):
    return list(cat_tuple(*parts))


def merge_dict(*ds):
    out = {}
    for d in ds:
        out.update(d)
    return out


def unpack(seq, n):
    """``a, b = seq``: a tuple of exactly n items, with Python's error otherwise."""
    t = tuple(seq)
    if len(t) != n:
        raise ValueError(f"expected {n} values to unpack, got {len(t)}")
    return t


def unpack_star(seq, before, after):
    """``a, *b, c = seq``: returns (a, [b...], c) flattened to a tuple."""
    t = tuple(seq)
    if len(t) < before + after:
        raise ValueError(f"expected at least {before + after} values to unpack, got {len(t)}")
    return t[:before] + (list(t[before:len(t) - after]),) + t[len(t) - after:]


def setitem_v(obj, key, v):
    """``obj[key] = v`` as a value: the mutated object, so the frontend can give the
    name holding it a new SSA value (in-place tensor writes need one)."""
    if isinstance(obj, tuple):   # (also the write-back after ``t[0].add_(1)``, which Python allows)
        raise TypeError(f"'{type(obj).__name__}' object does not support item assignment (torchzygote follows "
                        f"an in-place method on an item, `t[0].add_(1)`, by writing the item back into its "
                        f"container: keep such items in a list)")
    obj[key] = v
    return obj


def mutated(obj, res):
    """``obj`` after a call that writes into it and returns None (numpy's ``x.fill(c)``,
    ``np.copyto(x, y)``, ``np.add.at(x, i, v)``): a new value for the name holding it. ``res``
    is the call's result, which the rules of these writes make the written array."""
    return obj


def returned(obj, res, same):
    """``obj`` after a call named in torch's in-place style whose first argument it is
    (``torch.relu_(y)``, ``nn.init.normal_(w)``): the call's result where that is ``obj`` itself
    (``same``, decided in the forward: torch's in-place functions return the tensor they write),
    else ``obj`` (a write the call hides is refused by the guards around it,
    ``write_checks.check_call_writes``)."""
    return res if same else obj


def items_of(seq):
    """The items of a list as they are now, for a function that reads them (``torch.cat(xs)``,
    ``np.linalg.multi_dot(xs)``, whose rules' pullbacks read them again): a tuple, which a write
    into the list after the call (``xs[0] = ...``) cannot change. Other values are passed as they are."""
    return tuple(seq) if type(seq) is list else seq


def untracked_write(obj, *values):
    """Marks an in-place write into ``obj``, an object no local name holds, of ``values``: codegen
    refuses it where a value carries a gradient and ``obj`` is a tensor or an array."""


MUTATING_METHODS = ("fill",)          # ``x.fill(c)``
MUTATING_FUNCTIONS = ("copyto", "at")  # ``np.copyto(x, y)``, ``np.add.at(x, i, v)``: their first argument


def contains(container, item):
    """``item in container`` (operator.contains has the arguments the other way)."""
    return item in container


def not_contains(container, item):
    return item not in container


def exit_reset(e):
    """At the end of a loop trip, ``continue`` (1) is consumed."""
    return 0 if e == 1 else e


def loop_cont(test, e):
    return bool(test) and e == 0


def break_reset(e):
    """After a loop, ``break`` (2) is consumed; ``return`` (3) propagates."""
    return 0 if e == 2 else e


def closure_cell(fn, i):
    return fn.__closure__[i]


def new_cell(*value):
    return types.CellType(*value)


def get_global(fn, name):
    g = fn.__globals__
    if name in g:
        return g[name]
    b = g.get("__builtins__", __builtins__)
    b = b if isinstance(b, dict) else b.__dict__
    if name in b:
        return b[name]
    raise NameError(f"name {name!r} is not defined")


def set_global(fn, name, v):
    bound.check_rebind(fn.__globals__, name, v)
    fn.__globals__[name] = v


def module_data(mod, name):
    """``mod.name`` for a tensor or an array in a module's namespace (``expressions.module_attr``)."""
    return getattr(mod, name)


def globals_of(fn):
    """``globals()`` in a lifted function: its own module's namespace (the generated code runs in another)."""
    return fn.__globals__


def check_module_write(mod, name, v):
    """Before ``mod.name = v`` on a module the lift found (``config.dt = ...``): see ``bound``."""
    bound.check_rebind(mod.__dict__, name, v, "module attribute")


def make_function(code, fn, defaults, kwdefaults, closure, qualname):
    f = types.FunctionType(code, fn.__globals__, code.co_name, defaults or None, closure or None)
    f.__kwdefaults__ = kwdefaults or None
    f.__qualname__ = qualname
    return f


def import_name(name, bound):
    """``import a.b`` binds ``a`` (``bound=False``); ``import a.b as c`` binds the module ``a.b``."""
    mod = importlib.import_module(name)
    return mod if bound else importlib.import_module(name.partition(".")[0])


def import_from(module, name, package):
    """``from module import name`` (``module`` may be relative to ``package``)."""
    mod = importlib.import_module(module, package)
    return getattr(mod, name) if hasattr(mod, name) else importlib.import_module(f"{mod.__name__}.{name}")


def call_method(obj, name, *args, **kwargs):
    return getattr(obj, name)(*args, **kwargs)


def under_torch(fn, *args, **kwargs):
    """``fn(*args)`` run by the torch bridge under torch autograd: run-time dispatch sends here a
    module with hooks (its hooks included) and torch code given a module (a parametrization's
    property), whose parameters torch autograd then reaches."""
    return fn(*args, **kwargs)


def bound_method(obj, name):
    """``obj.name`` read as a value from a tensor, array or number (``m = x.sum``): the
    method's calls leave the object's gradient in the method's slot, which this read's
    pullback hands on to ``obj``."""
    return getattr(obj, name)


def is_method_of(cls, name) -> bool:
    """Whether ``cls.name`` is a method (so reading it from an instance binds it)."""
    a = inspect.getattr_static(cls, name, None) if isinstance(name, str) else None
    return callable(a) and not isinstance(a, (property, types.GetSetDescriptorType, types.MemberDescriptorType))


def raise_(exc=None, cause=None):
    """``raise exc from cause``; a bare ``raise`` (None) re-raises the exception being handled,
    as generated code runs a handler inside Python's own ``except``."""
    if exc is None:
        exc = sys.exc_info()[1]
        if exc is None:
            raise RuntimeError("No active exception to reraise")
        raise exc
    if cause is not None:
        raise exc from cause
    raise exc


def assert_(cond, msg=None):
    if not cond:
        raise AssertionError(msg) if msg is not None else AssertionError


def format_value(value, conversion, spec):
    if conversion == 115:
        value = str(value)
    elif conversion == 114:
        value = repr(value)
    elif conversion == 97:
        value = ascii(value)
    return format(value, spec)


def join_str(*parts):
    return "".join(parts)


def try_guard(loc, cells, befores):
    """At the start of an ``except`` block that reads names the ``try`` body assigns:
    which of them still hold their value from before the ``try``."""
    return tuple(c.cell_contents is b for c, b in zip(cells, befores))


def through(old, new):
    """``new``, what an in-place write under ``torch.no_grad()`` made of ``old``: its gradient
    passes to ``old`` unchanged, as torch autograd's passes through a write it did not record."""
    return new


def _still(cur, new) -> bool:
    """Whether ``cur``, what a place holds now, is ``new``, the tensor or array an in-place write
    through a local name changed (a list or a dict written in place keeps its gradients in its
    slot). The place is not written: it holds that object already."""
    return isinstance(cur, _ARRAYS) and cur is new


def rewrite_attr(obj, name, new) -> bool:
    """After ``b = obj.name; b.mul_(x)``: whether ``obj.name`` still holds the tensor written, so
    the write is one into the field too (``Names.write_back``): a later read of the field gets its
    gradient to ``new`` (the rule's pullback), not to the old contents."""
    return _still(getattr(obj, name, None), new)


def rewrite_item(obj, key, new) -> bool:
    """``rewrite_attr`` for ``b = xs[k]`` (a list's or a dict's item)."""
    if type(obj) not in (list, dict):
        return False
    try:
        return _still(obj[key], new)
    except (IndexError, KeyError):
        return False


def rewrite_global(fn, name, new) -> bool:
    """``rewrite_attr`` for ``b = G`` (a global of ``fn``'s module)."""
    return _still(fn.__globals__.get(name), new)


REWRITES = (rewrite_attr, rewrite_item, rewrite_global)


def detached(x):
    """``x``, computed under ``torch.no_grad()``: a constant (so generated code says, where it is
    differentiated again, as ``Analysis.cut`` decided for the code it came from)."""
    return x


GRAD_SWITCHES = (torch.no_grad, torch.enable_grad, torch.set_grad_enabled, torch.inference_mode)   # torch's grad modes


def with_enter(mgr):
    """``mgr.__enter__()``, differentiated (lifted, as its callee is: ``with Holding(x) as k`` gives
    ``k`` the gradient of what ``mgr`` holds). One of torch's grad-mode switches reaches here only
    where the ``with`` statement does not name it (``ng = torch.no_grad(); with ng:``): its mode
    would be missed."""
    if isinstance(mgr, GRAD_SWITCHES):
        raise GradientError(f"torchzygote follows torch.{type(mgr).__name__} where a 'with' statement calls it "
                            f"(`with torch.{type(mgr).__name__}(...):`); this one was made elsewhere, so whether "
                            f"the block is recorded cannot be told when the code is transformed. Write the call "
                            f"in the 'with' statement", None)
    return type(mgr).__enter__(mgr)


def with_exit(mgr):
    type(mgr).__exit__(mgr, None, None, None)


def with_exit_raise(exc, *mgrs):
    """An exception left a ``with`` body: exit the managers (innermost first), then
    re-raise unless one of them suppresses it."""
    for mgr in mgrs:
        if type(mgr).__exit__(mgr, type(exc), exc, exc.__traceback__):
            return
    raise exc


