"""What generated code calls at run time: ``J`` dispatch, ``accum``, the
gradient context, gradients of mutable objects, and turning them into the
structures the user sees.

Values (numbers, tensors, tuples) carry their gradient in the generated code's
adjoint variables. Objects with identity (lists, dicts, instances, closures,
cells) may be aliased and mutated, so their gradient lives in the context,
keyed by identity, and mirrors their state as the pullback walks back in time
(Zygote keeps mutable state's gradient the same way).
"""
from __future__ import annotations

import collections
import collections.abc
import dataclasses
import fractions
import functools
import numbers
import operator
import types
from typing import Any, Dict, Optional

import torch

from ..errors import GradientError, LiftError, NoRuleError
from ..frontend import ops
from ..rules.registry import (ARRAY, COMPLEX, DICT, LIST, NONDIFF, OBJECT, REAL, TABLE, TENSOR, TUPLE,
                              closure_form, nondiff, reads_metadata, register_adjoint, select, tuple_kind)

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

KIND_OF_TYPE = {float: REAL, int: REAL, fractions.Fraction: REAL, complex: COMPLEX,
                bool: NONDIFF, str: NONDIFF, type(None): NONDIFF, bytes: NONDIFF,
                torch.Tensor: TENSOR, torch.nn.Parameter: TENSOR, list: LIST, dict: DICT}
if np is not None:
    KIND_OF_TYPE.update({np.ndarray: ARRAY, np.bool_: NONDIFF, np.complex128: COMPLEX, np.complex64: COMPLEX})
    # NumPy's real scalars are numbers as Python's are (np.int64 counters, np.float32 data)
    KIND_OF_TYPE.update({t: REAL for t in (np.float64, np.float32, np.float16, np.int64, np.int32, np.int16,
                                           np.int8, np.uint64, np.uint32, np.uint16, np.uint8)})


def kind_of(x) -> str:
    k = KIND_OF_TYPE.get(type(x))
    if k is not None:
        return k
    if type(x) is tuple:  # a tuple's kind says what its items are, if a short look tells
        if len(x) <= 16:
            return tuple_kind([kind_of(e) for e in x])
        t = type(x[0]) if x else None
        if len(x) <= 4096 and KIND_OF_TYPE.get(t) in (REAL, TENSOR) and all(type(e) is t for e in x):
            return tuple_kind([KIND_OF_TYPE[t]])   # a long tuple of data (observations)
        return TUPLE
    if isinstance(x, torch.Tensor):
        return TENSOR
    return OBJECT


nondiff(kind_of)  # a kind is a name: a transform of the runtime (nested AD) calls it as it is


VALUE_TYPES = (int, float, complex, bool, str, bytes, type(None), tuple, frozenset, range, slice,
               fractions.Fraction, torch.Tensor, type, types.ModuleType, types.BuiltinFunctionType,
               torch.dtype, torch.device)
if np is not None:
    VALUE_TYPES += (np.ndarray, np.generic)


def has_identity(x) -> bool:
    """Objects whose gradient lives in the context (mutable or aliasable)."""
    if isinstance(x, VALUE_TYPES):
        return False
    if isinstance(x, types.FunctionType):
        return x.__closure__ is not None
    return True


# ------------------------------------------------------------------ context

class Context:
    """State of one gradient computation: gradients of identity objects and
    of implicit parameters."""

    __slots__ = ("grads", "params", "pgrads", "tensor_grads", "written")

    def __init__(self, params=None):
        self.grads: Dict[int, list] = {}      # id(obj) -> [obj, gradient container]
        self.params = None if params is None else {id(p) for p in params}
        self.pgrads: Dict[int, Any] = {}
        self.tensor_grads: Dict[int, Any] = {}   # module parameters reached through lists (RNNs' weights)
        self.written: Optional[set] = None     # (id(module globals), name) of globals written so far

    def wants_global(self, value, fn, name) -> bool:
        """Whether a tensor read from a global needs a gradient: it is one of the Params, or
        differentiated code wrote that global (its gradient flows back to the write)."""
        return self.params is not None and id(value) in self.params or \
            self.written is not None and (id(fn.__globals__), name) in self.written

    def wrote_global(self, fn, name) -> None:
        if self.written is None:
            self.written = set()
        self.written.add((id(fn.__globals__), name))

    def slot(self, obj):
        """The gradient container of an identity object (dict by key/field; list for lists)."""
        e = self.grads.get(id(obj))
        if e is None:
            g = [None] * len(obj) if isinstance(obj, list) else {}
            e = self.grads[id(obj)] = [obj, g]
        return e[1]

    def peek(self, obj):
        e = self.grads.get(id(obj))
        return None if e is None else e[1]

    def param(self, value, dy):
        if self.params is not None and id(value) in self.params and dy is not None:
            self.pgrads[id(value)] = accum(self.pgrads.get(id(value)), dy)


# ------------------------------------------------------------------ gradient values

class Record:
    """The gradient of an object, named tuple or closure: one attribute per field."""

    __slots__ = ("_fields",)

    def __init__(self, **fields):
        object.__setattr__(self, "_fields", fields)

    def __getattr__(self, name):
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name):
        return self._fields[name]

    def keys(self):
        return self._fields.keys()

    def items(self):
        return self._fields.items()

    def values(self):
        return self._fields.values()

    def __iter__(self):
        return iter(self._fields.values())

    def __len__(self):
        return len(self._fields)

    def __eq__(self, other):
        return isinstance(other, Record) and self._fields == other._fields

    def __repr__(self):
        return "(" + ", ".join(f"{k} = {v!r}" for k, v in self._fields.items()) + ")"

    def __setattr__(self, name, value):
        raise AttributeError("Record is immutable")


def accum(a, b):
    """Add two gradients of any structure; ``None`` is zero."""
    if a is None:
        return b
    if b is None:
        return a
    if type(a) is tuple and type(b) is tuple:
        return tuple(accum(x, y) for x, y in zip(a, b))
    if type(a) is list and type(b) is list:
        return [accum(x, y) for x, y in zip(a, b)]
    if type(a) is dict and type(b) is dict:
        out = dict(a)
        for k, v in b.items():
            out[k] = accum(out.get(k), v)
        return out
    if type(a) is Record and type(b) is Record:
        keys = list(dict.fromkeys([*a.keys(), *b.keys()]))
        return Record(**{k: accum(a._fields.get(k), b._fields.get(k)) for k in keys})
    return a + b


_NUMBER_TENSORS: Dict[tuple, Any] = {}
_NUMBER_DTYPES = frozenset({torch.float32, torch.float64, torch.complex64, torch.complex128})
_modes_active = getattr(torch._C, "_len_torch_function_stack", lambda: 0)
_dispatch_modes_active = getattr(torch._C, "_len_torch_dispatch_stack", lambda: 0)


def number_tensor(c, like: torch.Tensor):
    """The constant number ``c`` (an int or float) as a cached 0-d CPU tensor of ``like``'s
    dtype, for ``+``, ``-``, ``*`` with ``like`` and for ``like / c``. torch wraps a Python
    number in a new tensor on every op (about 2 us on a small tensor); a 0-d tensor of the
    same dtype takes the same kernel path (a CPU scalar, also beside CUDA tensors) with the
    same type promotion, so results are identical. Other dtypes (integers, half precision,
    where the number is rounded differently) and tensor subclasses get ``c`` itself."""
    t = _NUMBER_TENSORS.get((c, like.dtype, type(like)))
    if t is None:
        t = _new_number_tensor(c, like)
    return t


def _new_number_tensor(c, like):
    dtype = like.dtype
    # zeros stay numbers (-0.0 == 0.0 would share an entry); nan never finds its entry; no
    # tensors are made under a mode (a fake-tensor or device mode would make its own kind)
    if c != c or c == 0 or abs(c) >= 2 ** 53 or type(like) not in (torch.Tensor, torch.nn.Parameter) \
            or _modes_active() or _dispatch_modes_active():
        return c
    t = torch.tensor(c, dtype=dtype, device="cpu") if dtype in _NUMBER_DTYPES else c
    if len(_NUMBER_TENSORS) < 4096:   # numbers that change every call (a schedule) fill it once
        _NUMBER_TENSORS[(c, dtype, type(like))] = t
    return t


def unbroadcast(g, x):
    """Sum a gradient back to the shape (and kind) of the value it belongs to."""
    if g is None:
        return None
    if isinstance(g, torch.Tensor):
        if isinstance(x, torch.Tensor):
            if g.shape == x.shape:
                return g
            return _sum_to(g, x.shape)
        if isinstance(x, (int, float, complex, fractions.Fraction)):
            s = g.sum()
            return complex(s) if isinstance(x, complex) or s.is_complex() else float(s)
        if np is not None and isinstance(x, np.ndarray):
            return _sum_to(g, x.shape).detach().cpu().numpy()
        return g
    if np is not None and isinstance(g, np.ndarray):
        if g.dtype.kind == "c" and not np.iscomplexobj(x):
            g = np.real(g)   # a real value's gradient is real (torch's convention)
        if isinstance(x, np.ndarray):
            if g.shape == x.shape:
                return g
            return _np_sum_to(g, x.shape)
        if isinstance(x, (int, float, np.floating)):   # a gradient of the number's own type
            return (type(x) if isinstance(x, np.floating) else float)(np.sum(g))
    return g


reads_metadata(unbroadcast, 1)  # the shape and kind of x


def _sum_to(g, shape):
    lead = g.dim() - len(shape)
    dims = list(range(lead)) + [i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1]
    if dims:
        g = g.sum(dim=dims, keepdim=True)
    return g.reshape(shape) if lead or g.shape != shape else g


def _np_sum_to(g, shape):
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    dims = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=dims, keepdims=True) if dims else g


def seed(y):
    """The gradient of a scalar output with respect to itself (Zygote's ``sensitivity``)."""
    if type(y) is float:
        return 1.0
    if isinstance(y, torch.Tensor):
        if y.numel() != 1:
            raise GradientError(f"gradient needs a scalar output, got a tensor of shape {tuple(y.shape)}; "
                                f"use torchzygote.jacobian, or pullback with your own output gradient")
        return torch.ones_like(y)
    if isinstance(y, bool) or not isinstance(y, numbers.Number):
        if np is not None and isinstance(y, np.ndarray) and y.size == 1:
            return np.ones_like(y)
        raise GradientError(f"gradient needs a real number as output, got {type(y).__name__}; "
                            f"use torchzygote.jacobian for vector outputs, or pullback for any output")
    if isinstance(y, complex):
        raise GradientError("gradient needs a real output, got a complex number; take abs, real or imag "
                            "of it, or use pullback with your own output gradient")
    return type(y)(1)


# ------------------------------------------------------------------ reading and writing objects

def read_back(ctx: Context, obj, key, y, dy):
    """Pullback of ``y = obj[key]`` / ``getattr(obj, key)``: a gradient for ``obj``
    if it is a value, else accumulated into its slot in the context."""
    if isinstance(key, slice) and isinstance(obj, list):
        # a slice of a list is a new list: its elements' gradients live in its slot
        g = ctx.peek(y)
        dy = tuple(g) if g is not None else dy
    if dy is None:
        return None
    ctx.param(y, dy)
    if type(obj) is tuple or (isinstance(obj, tuple) and not has_identity(obj)):
        n = len(obj)
        if isinstance(key, slice):
            g = [None] * n
            for i, d in zip(range(*key.indices(n)), dy):
                g[i] = d
            return tuple(g)
        g = [None] * n
        g[key] = dy
        return tuple(g)
    if isinstance(obj, torch.Tensor):
        return index_back(obj, key, dy)
    if np is not None and isinstance(obj, np.ndarray):
        z = np.zeros_like(obj, dtype=np.result_type(obj.dtype, np.float64) if obj.dtype.kind in "iub" else obj.dtype)
        np.add.at(z, key, dy)
        return z
    if isinstance(obj, (str, bytes, range)):
        return None
    if isinstance(obj, (types.GeneratorType, collections.abc.Iterator)):
        if dy is None:
            return None
        code = getattr(obj, "gi_code", None)
        where = None
        if code is not None:
            import dis
            lines = [i.positions.lineno for i in dis.get_instructions(code) if i.opname == "YIELD_VALUE"]
            where = (code.co_filename, lines[0] if lines else code.co_firstlineno)
        raise LiftError(f"torchzygote cannot differentiate 'yield' (generators): a gradient flows into values "
                        f"produced by {getattr(code, 'co_name', type(obj).__name__)!r}; build a list instead",
                        where)
    if has_identity(obj) and not isinstance(obj, (list, dict)) and type(key) is int:
        _not_iterable(obj)
    if has_identity(obj):
        slot = ctx.slot(obj)
        if isinstance(key, slice) and isinstance(obj, list):
            for i, d in zip(range(*key.indices(len(slot))), dy):
                slot[i] = accum(slot[i], d)
        elif isinstance(slot, list):
            slot[key] = accum(slot[key], dy)
        else:
            slot[key] = accum(slot.get(key), dy)
        return None
    return None


def _not_iterable(obj):
    raise GradientError(f"a gradient flows into the items of a {type(obj).__name__} iterated with __iter__; "
                        f"torchzygote differentiates iteration over lists, tuples, dicts and tensors: "
                        f"iterate over a list of the items instead")


def item_back(ctx: Context, it, k, y, dy):
    """Pullback of the ``k``-th item of a ``for`` loop over ``it``."""
    if dy is not None and has_identity(it) and not isinstance(it, (list, dict)) and \
            not isinstance(it, (types.GeneratorType, collections.abc.Iterator)):
        _not_iterable(it)
    return read_back(ctx, it, k, y, dy)


def gather_back(x: torch.Tensor, keys, grads):
    """The gradient of ``x`` from reads ``x[k]`` for each of ``keys``: one ``stack`` when
    they cover ``x``'s first dimension in order, else one tensor filled in place."""
    if all(g is None for g in grads) or not (x.dtype.is_floating_point or x.dtype.is_complex):
        return None
    if x.dim() and keys == tuple(range(x.shape[0])) and all(g is not None for g in grads):
        return torch.stack([g if torch.is_tensor(g) else torch.as_tensor(g, dtype=x.dtype, device=x.device)
                            for g in grads])
    out = torch.zeros_like(x)
    for k, g in zip(keys, grads):  # distinct keys, but x[-1] and x[n - 1] are one item
        if g is not None:
            out[k] += g
    return out


def index_back(x: torch.Tensor, key, dy):
    if not torch.is_tensor(dy):
        dy = torch.as_tensor(dy, dtype=x.dtype, device=x.device)
    g = torch.zeros_like(x) if x.dtype.is_floating_point or x.dtype.is_complex else None
    if g is None:
        return None
    if isinstance(key, (torch.Tensor, list)) or isinstance(key, tuple) and \
            any(isinstance(k, (torch.Tensor, list)) for k in key):
        # advanced indexing may repeat entries: scatter-add through the positions it selects
        idx = torch.arange(x.numel(), device=x.device).reshape(x.shape)[key]
        return g.view(-1).index_add_(0, idx.reshape(-1), dy.reshape(-1)).view(x.shape)
    g[key] = dy
    return g


reads_metadata(index_back, 0)  # the shape, dtype and device of x


def seed_slots(ctx: Context, y, dy, memo=None) -> None:
    """Put an output gradient given by the user (``back(dy)``) into the slots of the
    identity objects in the output (a list, a dict, an object, nested in tuples)."""
    if dy is None or y is None:
        return
    if type(y) is tuple and isinstance(dy, (tuple, list)):
        for yi, di in zip(y, dy):
            seed_slots(ctx, yi, di)
        return
    if not has_identity(y) or isinstance(y, types.FunctionType):
        return
    if isinstance(y, list) and isinstance(dy, (list, tuple)):
        slot = ctx.slot(y)
        for i, (yi, di) in enumerate(zip(y, dy)):
            if has_identity(yi):
                seed_slots(ctx, yi, di)
            else:
                slot[i] = accum(slot[i], di)
    elif isinstance(y, dict) and isinstance(dy, dict):
        slot = ctx.slot(y)
        for k, di in dy.items():
            if k in y and has_identity(y[k]):
                seed_slots(ctx, y[k], di)
            else:
                slot[k] = accum(slot.get(k), di)
    elif isinstance(dy, (Record, dict)):
        slot = ctx.slot(y)
        for k, di in dy.items():
            v = getattr(y, k, None)
            if has_identity(v):
                seed_slots(ctx, v, di)
            else:
                slot[k] = accum(slot.get(k), di)


def write_back(ctx: Context, obj, key, v=None):
    """Pullback of ``obj[key] = v`` / ``setattr``: the gradient of ``v`` is what the
    slot held; before the write, the slot had no gradient from later reads."""
    slot = ctx.peek(obj)
    if slot is None:
        return None
    if isinstance(slot, list):
        g = slot[key]
        if isinstance(key, slice):
            slot[key] = [None] * len(g)
            g = tuple(g) if any(x is not None for x in g) else None
        else:
            slot[key] = None
    else:
        g = slot.pop(key, None)
    if g is not None and has_identity(v):
        _merge_into(ctx, v, g)
        return None
    return g


def _merge_into(ctx, v, g):
    """Add a structural gradient ``g`` into the context slot of identity object ``v``."""
    slot = ctx.slot(v)
    items = enumerate(g) if isinstance(slot, list) else (g.items() if isinstance(g, dict) else ())
    for k, gi in items:
        if isinstance(slot, list) and k >= len(slot):
            break
        slot[k] = accum(slot[k] if isinstance(slot, list) else slot.get(k), gi)


# ------------------------------------------------------------------ J: run-time dispatch

_MISSING = object()
VARFLAGS = 0x04 | 0x08  # CO_VARARGS | CO_VARKEYWORDS


def J(ctx: Context, f, *args):
    """``y, back = J(f, args...)``; ``back(dy)`` returns one gradient per argument."""
    if type(f) is types.FunctionType:
        code = f.__code__
        if code.co_argcount == len(args) and not (code.co_flags & VARFLAGS) and not code.co_kwonlyargcount:
            fwd = forward(f, args)  # None for functions that are not lifted (rules, torch's own)
            if fwd is not None:
                versions = [a._version for a in args if type(a) is torch.Tensor]
                res = fwd(ctx, f, *args)
                if versions and versions != [a._version for a in args if type(a) is torch.Tensor]:
                    _check_mutation(f, args, versions, res[0])
                return guard_reads(f, fwd.reads, args, res) if fwd.reads else res
    elif type(f) in _PLAIN_MODULES and not _has_hooks(f) and not _registered(f):
        return _drop_self_call(ctx, type(f).forward, f, args)
    return Jkw(ctx, f, args, None)


_PLAIN_MODULES: set = set()   # nn.Module classes called the standard way (Module.__call__)


def _registered(f) -> bool:
    """Whether an object has its own entry in a rule table (then ``Jkw`` dispatches it)."""
    return TABLE.has_entry(f)


def Jkw(ctx: Context, f, args, kwargs):
    """``J`` for a call with keywords; ``back(dy)`` returns ``(dargs, dkwargs)`` when
    ``kwargs`` is a dict, else a tuple like ``J``."""
    kw = kwargs or {}
    special = _special(f)
    if special is not None:
        return special(ctx, args, kw, kwargs)
    user = _user_rule(f)
    if user is not None:
        y, pb = user(*args, **kw)
        return y, _split_back(pb, len(args), kwargs)
    if TABLE.lookup(f):
        rule = select(f, [kind_of(a) for a in args], len(kw))
        if rule is not None:
            y, back = closure_form(rule)(ctx, *bind_rule(rule, args, kw))
            return y, _rebind_back(back, rule, args, kwargs)
    if TABLE.is_nondiff(f):
        return f(*args, **kw), _nothing(len(args), kwargs)
    t = type(f)
    if t is types.FunctionType and not torch_internal(f):
        flat, unbind = bind_function(f, args, kw)
        y, back = forward(f, flat)(ctx, f, *flat)
        return y, lambda dy: unbind(ctx, flat, back(dy), len(args), kwargs)
    if t is types.MethodType:
        y, back = Jkw(ctx, f.__func__, (f.__self__, *args), kwargs)
        return y, _self_to_slot(ctx, f, back, kwargs)
    if t is functools.partial:
        y, back = Jkw(ctx, f.func, (*f.args, *args), {**f.keywords, **kw})
        return y, lambda dy: _partial_back(ctx, f, back(dy), kwargs)
    if isinstance(f, type):
        return construct(ctx, f, args, kw, kwargs)
    if isinstance(f, torch.nn.Module) and not _has_hooks(f):
        if t.__call__ is torch.nn.Module.__call__:
            _PLAIN_MODULES.add(t)
        return Jkw(ctx, t.forward, (f, *args), kwargs) if kwargs is not None else \
            _drop_self_call(ctx, t.forward, f, args)
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


def saved_versions(values) -> tuple:
    """A rule's saved inputs, each with what tells its value at pullback time: a tensor's
    version counter, a copy of a NumPy array (arrays have no version counter), else None."""
    return tuple([(v, v._version) if isinstance(v, torch.Tensor) else
                  (v, v.copy()) if np is not None and isinstance(v, np.ndarray) else (v, None) for v in values])


def check_versions(saved, name) -> tuple:
    """The saved inputs as the rule saw them: a tensor written in place since is an error (its
    old value is gone), an array's copy stands in for it (whatever was written into it since)."""
    out = []
    for v, ver in saved:
        if isinstance(v, torch.Tensor):
            if v._version != ver:
                raise GradientError(
                    f"a tensor (shape {tuple(v.shape)}) that the gradient of {name} reads was written in place "
                    f"after {name} used it (through another name, a view, a list or an object), so its old "
                    f"value is gone: write into a copy (`y = y.clone()` before the in-place write)")
            out.append(v)
        else:
            out.append(v if ver is None else ver)
    return tuple(out)


def changed(v, saved) -> bool:
    """Whether tensor or array ``v`` was written in place since ``saved`` (a version or a copy)."""
    if isinstance(v, torch.Tensor):
        return v._version != saved
    return not np.array_equal(v, saved, equal_nan=v.dtype.kind in "fc")


def _what(v) -> str:
    return f"a tensor (shape {tuple(v.shape)})" if isinstance(v, torch.Tensor) else f"an array (shape {v.shape})"


def _copy_hint(v) -> str:
    return "`y = y.clone()`" if isinstance(v, torch.Tensor) else "`y = y.copy()`"


def copy_value(v):
    """A copy of a tensor or an array (the old value of an in-place write); other values as they are."""
    if isinstance(v, torch.Tensor):
        return v.clone()
    return v.copy() if np is not None and isinstance(v, np.ndarray) else v


def guard_reads(f, reads, args, res):
    """``res = (y, back)`` with a pullback that first checks that the tensor and array arguments
    it reads were not written in place after the call (torch's version counters, which views
    share with their base; a copy of an array): otherwise it would silently compute with the
    new values."""
    y, back = res
    saved = [(i, a, a._version if isinstance(a, torch.Tensor) else a.copy()) for i in reads
             if isinstance(a := (args[i] if i >= 0 else y), torch.Tensor) or
             np is not None and isinstance(a, np.ndarray)]
    if not saved:
        return res

    def checked(dy):
        for i, a, v in saved:
            if changed(a, v):
                code = getattr(f, "__code__", None)
                name = getattr(f, "__qualname__", repr(f))
                what = f"argument {i + 1} of {name}" if i >= 0 else f"the result of {name}"
                raise GradientError(
                    f"{what} ({_what(a)}) was written in place "
                    f"after the call, and {name}'s gradient reads its old value: write into a copy "
                    f"({_copy_hint(a)} before the in-place write) or pass a copy to {name}",
                    (code.co_filename, code.co_firstlineno) if code else None)
        return back(dy)
    return y, checked


def _check_mutation(f, args, versions, y):
    """A callee wrote into a tensor argument in place. Returning it (``nn.ReLU(inplace=True)``,
    ``x = f(x)``) gives the caller a new value; a hidden write would be missed."""
    mutated = [a for a in args if type(a) is torch.Tensor]
    mutated = [a for a, v in zip(mutated, versions) if a._version != v]
    if all(a is y for a in mutated):
        return
    code = f.__code__
    raise GradientError(
        f"{f.__qualname__} writes into a tensor argument in place; torchzygote follows in-place "
        f"writes within a function, so the caller's gradient would miss it: return the new tensor "
        f"(`y = f(y)`) or write to a copy", (code.co_filename, code.co_firstlineno))


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


def method_self_back(ctx, m):
    """Pullback of ``m = x.name`` for a value ``x``: what the calls of ``m`` gave ``x``."""
    g = ctx.peek(m)
    return None if g is None else g.get("__self__")


def _split_back(pb, nargs, kwargs):
    """Adapt a user pullback (one gradient per argument, keywords last) to ``J``'s shape."""
    def back(dy):
        g = pb(dy)
        g = (g,) if not isinstance(g, tuple) else g
        if kwargs is None:
            return tuple(g[:nargs]) + (None,) * (nargs - len(g))
        return tuple(g[:nargs]), dict(zip(kwargs, g[nargs:]))
    return back


def _nothing(n, kwargs):
    if kwargs is None:
        none = (None,) * n
        return lambda dy: none
    return lambda dy: ((None,) * n, {})


def _partial_back(ctx, p, g, kwargs):
    """Split a partial's gradients: its stored arguments' go to its slot, the call's back."""
    da, dk = g
    n = len(p.args)
    slot = ctx.slot(p)
    slot["args"] = accum(slot.get("args"), tuple(da[:n]))
    slot["keywords"] = accum(slot.get("keywords"), {k: v for k, v in dk.items() if k in p.keywords})
    if kwargs is None:
        return tuple(da[n:])
    return tuple(da[n:]), {k: v for k, v in dk.items() if k in kwargs}


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


def _has_hooks(m) -> bool:
    return bool(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
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
    return run


_PLAIN_ATTRS: set = set()   # (class, name) pairs known to be plain fields of nn.Modules


def getattr_dispatch(ctx, args, kw, kwargs):
    """Attribute reads: properties and ``__getattr__`` written in Python are
    differentiated; plain fields are read with the generic rule."""
    obj, name = args[0], args[1]
    cls = type(obj)
    if len(args) == 2 and (cls, name) in _PLAIN_ATTRS:  # a module's parameter or submodule: no dispatch
        y = getattr(obj, name)
        return y, lambda dy: (_attr_back(ctx, obj, name, y, dy), None)
    for klass in cls.__mro__:
        if name in klass.__dict__:
            attr = klass.__dict__[name]
            if isinstance(attr, property) and isinstance(attr.fget, types.FunctionType):
                y, back = J(ctx, attr.fget, obj)
                return y, lambda dy: back(dy) + (None,) * (len(args) - 1)
            getter = python_method(type(attr), "__get__")
            if getter is not None and len(args) == 2:
                y, back = J(ctx, getter, attr, obj, cls)
                return y, lambda dy: (back(dy)[1], None)
            break
    else:
        inst = getattr(obj, "__dict__", None)
        ga = python_method(cls, "__getattr__")
        if ga is not None and not isinstance(obj, torch.nn.Module) and (inst is None or name not in inst):
            try:
                object.__getattribute__(obj, name)
            except AttributeError:
                y, back = J(ctx, ga, obj, name)
                return y, lambda dy: back(dy) + (None,) * (len(args) - 2)
        if isinstance(obj, torch.nn.Module) and len(args) == 2:
            _PLAIN_ATTRS.add((cls, name))
    if len(args) == 2 and not has_identity(obj) and ops.is_method_of(cls, name):
        m = getattr(obj, name)   # ``m = x.sum``: a bound method, whose calls fill its slot
        return m, lambda dy: (method_self_back(ctx, m), None)
    return by_rule(ctx, getattr, args, kw, kwargs)


def _attr_back(ctx, obj, name, y, dy):
    from ..rules.containers import attr_back
    return attr_back(ctx, obj, name, y, dy)


def setitem_dispatch(ctx, args, kw, kwargs):
    """``obj[key] = v`` on an object of unknown kind: a Python ``__setitem__`` is
    differentiated, builtin containers and tensors use their rules."""
    m = python_method(type(args[0]), "__setitem__")
    if m is not None:
        _, back = J(ctx, m, *args)
        return args[0], back
    return by_rule(ctx, ops.setitem_v, args, kw, kwargs)


def setattr_dispatch(ctx, args, kw, kwargs):
    """``obj.name = v``: a property setter or a descriptor's ``__set__`` written in
    Python is differentiated; a plain field is written with the generic rule."""
    obj, name = args[0], args[1]
    for klass in type(obj).__mro__:
        if name in klass.__dict__:
            attr = klass.__dict__[name]
            if isinstance(attr, property) and isinstance(attr.fset, types.FunctionType):
                _, back = J(ctx, attr.fset, obj, args[2])
                return None, lambda dy: (None, None, back(None)[1])
            setter = python_method(type(attr), "__set__")
            if setter is not None:
                _, back = J(ctx, setter, attr, obj, args[2])
                return None, lambda dy: (None, None, back(None)[2])
            break
    return by_rule(ctx, setattr, args, kw, kwargs)


def by_rule(ctx, f, args, kw, kwargs):
    """``f``'s rule for the arguments' actual kinds (no dunder dispatch)."""
    rule = select(f, [kind_of(a) for a in args], len(kw))
    if rule is None:
        if TABLE.is_nondiff(f):
            return f(*args, **kw), _nothing(len(args), kwargs)
        return foreign(ctx, f, args, kw, kwargs)
    y, back = closure_form(rule)(ctx, *bind_rule(rule, args, kw))
    return y, _rebind_back(back, rule, args, kwargs)


def lift_as(stand_in):
    """Differentiate calls to a builtin by lifting a Python stand-in."""
    def run(ctx, args, kw, kwargs):
        return Jkw(ctx, stand_in, args, kwargs)
    return run


def _user_rule(f):
    return TABLE.adjoint(f)


def bind_rule(rule, args, kw):
    if not kw and (len(args) == len(rule.params) or rule.vararg):
        return args
    out = list(args[:len(rule.params)])
    for p in rule.params[len(out):]:
        if p in kw:
            out.append(kw[p])
        elif p in rule.defaults:
            out.append(rule.defaults[p])
        else:
            raise TypeError(f"{rule.name}() missing argument {p!r}")
    extra = set(kw) - set(rule.params)
    if extra:
        raise NoRuleError(f"torchzygote's rule for {rule.name} takes ({', '.join(rule.params)}): it has no "
                          f"gradient for a call with keyword arguments {sorted(extra)}; leave them out, or give "
                          f"the call a rule with @torchzygote.adjoint")
    return tuple(out) + tuple(args[len(rule.params):])


def _rebind_back(back, rule, args, kwargs):
    n = len(args)
    if kwargs is None:
        if rule.vararg or len(rule.params) == n:
            return back
        return lambda dy: back(dy)[:n]

    def b(dy):
        g = back(dy)
        dk = {k: g[rule.params.index(k)] for k in kwargs if k in rule.params}
        return tuple(g[:n]), dk
    return b


def bind_function(f, args, kw):
    """Bind a call to ``f``'s parameters as the flat list generated code takes,
    and return how to route the flat gradients back to the call."""
    code = f.__code__
    na, nk = code.co_argcount, code.co_kwonlyargcount
    names = code.co_varnames[:na + nk]
    has_var, has_kw = bool(code.co_flags & 0x04), bool(code.co_flags & 0x08)
    defaults = f.__defaults__ or ()
    kwdefaults = f.__kwdefaults__ or {}
    pos = list(args[:na])
    src = [("a", i) for i in range(len(pos))]
    for i in range(len(pos), na):
        name = names[i]
        if name in kw:
            pos.append(kw[name])
            src.append(("k", name))
        elif i >= na - len(defaults):
            pos.append(defaults[i - (na - len(defaults))])
            src.append(("d", None))
        else:
            raise TypeError(f"{f.__qualname__}() missing required argument {name!r}")
    flat = pos
    if has_var:
        flat.append(tuple(args[na:]))
        src.append(("v", len(args) - na))
    elif len(args) > na:
        raise TypeError(f"{f.__qualname__}() takes {na} positional arguments but {len(args)} were given")
    for name in names[na:]:
        if name in kw:
            flat.append(kw[name])
            src.append(("k", name))
        elif name in kwdefaults:
            flat.append(kwdefaults[name])
            src.append(("d", None))
        else:
            raise TypeError(f"{f.__qualname__}() missing keyword-only argument {name!r}")
    used = set(names[:na + nk])
    if has_kw:
        extra = {k: v for k, v in kw.items() if k not in used}
        flat.append(extra)
        src.append(("x", list(extra)))
    else:
        bad = [k for k in kw if k not in used]
        if bad:
            raise TypeError(f"{f.__qualname__}() got an unexpected keyword argument {bad[0]!r}")

    def unbind(ctx, flat, g, nargs, kwargs):
        da = [None] * nargs
        dk = {}
        for i, ((kind, where), gi) in enumerate(zip(src, g)):
            if kind == "x":  # **kwargs: a dict made for the call; its gradient is in its slot
                gi = accum(gi, ctx.peek(flat[i]))
            elif kind == "d" and gi is not None:  # a default: the function object holds it
                slot = ctx.slot(f)
                d = list(slot.get("__defaults__") or [None] * len(defaults))
                j = i - (na - len(defaults))
                if 0 <= j < len(d):
                    d[j] = accum(d[j], gi)
                    slot["__defaults__"] = tuple(d)
                continue
            if gi is None:
                continue
            if kind == "a":
                da[where] = gi
            elif kind == "k":
                dk[where] = gi
            elif kind == "v" and isinstance(gi, tuple):
                da = da[:na] + list(gi) + da[na + where:]
            elif kind == "x" and isinstance(gi, dict):
                dk.update(gi)
        return tuple(da) if kwargs is None else (tuple(da), dk)

    unbind.sources = src
    return flat, unbind


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
    if isinstance(init, types.FunctionType) and cls.__new__ is object.__new__:
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
    pass through it."""
    if _is_torch_op(f) and any(_has_tensor(a) for a in args + tuple(kw.values())):
        from ..rules.fallback import torch_fallback
        y, back = torch_fallback(f, args, kw, kwargs)
        back = functools.partial(torch_pullback, f, back)
        if not any(type(a) is list for a in args):
            return y, back

        def back_lists(dy):  # lists' gradients live in their slots
            g = back(dy)
            da = g if kwargs is None else g[0]
            da = tuple(_list_grad(ctx, a, d) for a, d in zip(args, da))
            return da if kwargs is None else (da, g[1])
        return y, back_lists
    own = getattr(f, "__objclass__", None) in (list, dict)   # the containers' own methods have rules or stand-ins
    held = [] if own else [(a, _contents(a)) for a in args if type(a) in (list, dict) and _holds_diff(a)]
    y = f(*args, **kw)
    for a, before in held:
        if _contents(a) != before:
            name = getattr(f, "__qualname__", None) or getattr(f, "__name__", repr(f))
            raise NoRuleError(f"no gradient rule for {name}, which changed a {type(a).__name__} of values that "
                              f"carry gradients in place: their gradients cannot be followed. Write the change "
                              f"with operations torchzygote differentiates (indexing, append, extend, +=), or "
                              f"give {name} a rule with @torchzygote.adjoint")
    diff = any(kind_of(a) not in (NONDIFF, OBJECT) for a in args)

    def back(dy):
        if dy is not None and diff and f in _SYNTAX:
            raise NoRuleError(f"torchzygote cannot differentiate {_SYNTAX[f]} on {_typename(args[0])} with "
                              f"{_typename(args[-1])}: write numbers, NumPy scalars, arrays (or lists of them) into "
                              f"an array, tensors into a tensor, or build the new value out of place")
        if dy is not None and diff:
            name = getattr(f, "__qualname__", None) or getattr(f, "__name__", repr(f))
            mod = getattr(f, "__module__", None)
            raise NoRuleError(f"no gradient rule for {mod + '.' if mod else ''}{name}: it has no Python source "
                              f"to differentiate. Define one with @torchzygote.adjoint({name}) or mark it "
                              f"torchzygote.nograd if it carries no gradient")
        return (None,) * len(args) if kwargs is None else ((None,) * len(args), {})
    return y, back


def _contents(c) -> list:
    """What a list or dict holds, by identity (to see whether a call changed it)."""
    return [id(v) for v in c] if type(c) is list else [(k, id(v)) for k, v in c.items()]


def _holds_diff(c) -> bool:
    return any(kind_of(v) not in (NONDIFF, OBJECT) for v in (c if type(c) is list else c.values()))


def torch_pullback(f, back, dy):
    """The pullback of torch op ``f`` computed by torch autograd (``back``). Differentiated
    code that differentiates it again (second order) gets a clear error from its rule below,
    never a silent zero."""
    return back(dy)


def _torch_pullback_rule(f, back, dy):
    def pb(d):
        if d is not None and any(g is not None for g in (d if type(d) is tuple else (d,))):
            name = getattr(f, "__qualname__", None) or getattr(f, "__name__", repr(f))
            mod = getattr(f, "__module__", None)
            raise NoRuleError(
                f"no gradient rule for {mod + '.' if mod else ''}{name}: its gradient came from torch "
                f"autograd, which torchzygote cannot differentiate again (second order). Define a rule "
                f"with @torchzygote.adjoint({name}) whose pullback uses ops that have rules, or compute "
                f"this higher derivative with torch.autograd (hessian(..., method='torch'))")
        return None, None, None
    return back(dy), pb


def _torch_fallback_rule(f, args, kw, kwargs):
    """Differentiated code that calls the fallback (the runtime differentiated again, for a
    second derivative) treats it as a primitive: its value's gradient is its own pullback."""
    from ..rules.fallback import torch_fallback
    y, back = torch_fallback(f, args, kw, kwargs)

    def pb(d):
        dy = d[0] if type(d) is tuple else None
        if dy is None:
            return None, None, None, None
        g = back(dy)
        if kwargs is None:
            return None, g, None, None
        return None, g[0], g[1], None
    return (y, back), pb


register_adjoint(torch_pullback, _torch_pullback_rule)


def _register_fallback_rule():
    from ..rules.fallback import torch_fallback
    register_adjoint(torch_fallback, _torch_fallback_rule)


CO_GENERATOR_LIKE = 0x20 | 0x80 | 0x100 | 0x200   # generator, coroutine, iterable coroutine, async gen


def torch_internal(f) -> bool:
    """torch's own Python functions run under torch autograd (``foreign``) rather than
    being lifted; module ``forward`` methods are lifted, to reach their parameters."""
    if f.__code__.co_flags & CO_GENERATOR_LIKE:
        return True  # calling a generator function only makes the generator: run it as is
    mod = f.__module__
    return mod is not None and mod.startswith("torch.") and f.__name__ != "forward" and \
        not mod.startswith("torch.nn.modules")


def _list_grad(ctx, a, d):
    if type(a) is list and d is not None:
        slot = ctx.slot(a)
        for i, (ai, di) in enumerate(zip(a, d)):
            slot[i] = accum(slot[i], di)
            if isinstance(ai, torch.nn.Parameter) and di is not None:
                ctx.param(ai, di)
                ctx.tensor_grads[id(ai)] = accum(ctx.tensor_grads.get(id(ai)), di)
        return None
    return d


def _has_tensor(x) -> bool:
    return isinstance(x, torch.Tensor) or isinstance(x, (list, tuple)) and any(_has_tensor(e) for e in x)


def _is_torch_op(f) -> bool:
    mod = getattr(f, "__module__", None) or ""
    return mod.startswith("torch") or getattr(f, "__objclass__", None) in (torch._C.TensorBase, torch.Tensor) \
        or "torch" in repr(getattr(f, "__self__", ""))


# ------------------------------------------------------------------ results

PLAIN = {float, int, fractions.Fraction, type(None), str}  # their gradient is the adjoint as is


def materialize(ctx: Context, value, g, memo=None):
    """The gradient of ``value`` as the user sees it: its adjoint ``g`` combined
    with what the context holds for identity objects, shaped like ``value``."""
    if type(value) in PLAIN and type(g) is not complex:
        # a float's gradient is a float, also where NumPy scalars made it (``s * x[0]``, x an array)
        return float(g) if type(value) is float and type(g) is not float and isinstance(g, numbers.Real) else g
    if memo is None:
        memo = {}
    key = id(value)
    if has_identity(value):
        if key in memo:
            return memo[key]
        memo[key] = None
        slot = ctx.peek(value)
        # after the pullback a container's slot mirrors its state on entry (mutations were
        # undone), while the object itself is in its final state: the slot gives the shape
        if isinstance(value, list):
            n = len(slot) if slot is not None else len(value)
            out = [materialize(ctx, value[i] if i < len(value) else None,
                               slot[i] if slot is not None else None, memo) for i in range(n)]
            res = out if any(o is not None for o in out) else None
        elif isinstance(value, dict):
            keys = list(value) + [k for k in (slot or ()) if k not in value]
            out = {k: materialize(ctx, value.get(k), slot.get(k) if slot else None, memo) for k in keys}
            res = {k: v for k, v in out.items() if v is not None} or None
        elif isinstance(value, types.FunctionType):
            cells = value.__closure__ or ()
            fields = {}
            for name, cell in zip(value.__code__.co_freevars, cells):
                try:
                    contents = cell.cell_contents
                except ValueError:
                    continue
                cs = ctx.peek(cell)
                fields[name] = materialize(ctx, contents, cs.get("cell_contents") if cs else None, memo)
            res = Record(**fields) if any(v is not None for v in fields.values()) else None
        elif isinstance(value, types.CellType):
            cs = ctx.peek(value)
            res = materialize(ctx, value.cell_contents, cs.get("cell_contents") if cs else None, memo)
        elif isinstance(value, (torch.nn.Sequential, torch.nn.ModuleList)):
            out = [materialize(ctx, m, None, memo) for m in value]   # g.net[0].weight, like net[0].weight
            res = out if any(o is not None for o in out) else None
        elif isinstance(value, torch.nn.Module):
            res = _materialize_fields(ctx, value, slot, _module_fields(value), memo)
        else:
            res = _materialize_fields(ctx, value, slot, _object_fields(value), memo)
        res = accum(g, res) if g is not None and not isinstance(g, (dict, Record)) else (res if g is None else accum(res, g))
        memo[key] = res
        return res
    if isinstance(value, torch.Tensor):
        if not (value.dtype.is_floating_point or value.dtype.is_complex):
            return None  # integer and bool tensors carry no gradient
        if isinstance(g, torch.Tensor) and g.is_complex() and not value.is_complex():
            return g.real  # a real input's gradient is real (the complex convention's projection)
    if np is not None and isinstance(value, np.ndarray) and isinstance(g, np.ndarray) and g.dtype.kind == "c" \
            and value.dtype.kind != "c":
        return np.real(g)
    if isinstance(g, complex) and isinstance(value, (int, float, fractions.Fraction)):
        return g.real
    if isinstance(value, tuple):
        gs = tuple(g) if isinstance(g, (tuple, list)) else (None,) * len(value)
        if len(gs) != len(value):
            gs = (None,) * len(value)
        out = [materialize(ctx, v, gi, memo) for v, gi in zip(value, gs)]
        if all(o is None for o in out):
            return None
        if hasattr(value, "_fields"):
            return Record(**dict(zip(value._fields, out)))
        return tuple(out)
    return g


def _object_fields(obj):
    names = []
    if hasattr(obj, "__dict__"):
        names += list(vars(obj))
    for cls in type(obj).__mro__:
        for s in getattr(cls, "__slots__", ()):
            if s not in ("__dict__", "__weakref__") and s not in names:
                names.append(s)
    return names


def _module_fields(m):
    return list(m._parameters) + list(m._buffers) + list(m._modules) + \
        [k for k in vars(m) if not k.startswith("_") and k != "training"]


def _materialize_fields(ctx, obj, slot, names, memo):
    fields = {}
    for n in names:
        try:
            v = getattr(obj, n)
        except AttributeError:
            continue
        fields[n] = materialize(ctx, v, slot.get(n) if slot else None, memo)
        if isinstance(v, torch.nn.Parameter) and id(v) in ctx.tensor_grads:
            fields[n] = accum(fields[n], ctx.tensor_grads[id(v)])
    return Record(**fields) if any(v is not None for v in fields.values()) else None


# Predicates of the dispatcher: their results are bools, ids and rule-table entries, which
# carry no gradient at any order. A nested transform (derivative of a derivative) calls them
# as they are instead of lifting each of them (and their pullbacks) from this file.
nondiff(has_identity, _has_hooks, _registered, _special, torch_internal, _is_torch_op, _has_tensor,
        _holds_diff, _contents, ops.is_method_of, dataclasses.is_dataclass)
