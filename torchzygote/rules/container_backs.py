"""The pullbacks of container rules: reading and writing items and attributes, building,
unpacking, concatenating and mutating lists and dicts, and seeding an output's identity objects.

Tuples are values: their gradient is a tuple. Lists, dicts, objects and cells have identity:
their gradient lives in the context (``ctx.slot(obj)``) and is kept in step with the object as
the pullback walks back through mutations, so an overwritten slot's gradient is dropped at the
write and a popped element's gradient is restored at the pop.
"""
from __future__ import annotations

import collections.abc
import dis
import types

import numpy as np
import torch

from ..errors import GradientError, LiftError
from ..frontend import ops
from ..values.algebra import accum
from ..values.context import Context
from ..values.kinds import has_identity
from ..values.module_tensors import ModuleTensors
from ..values.structures import structure_of
from .pylib import CARRYING
from .registry import reads_metadata


def read_back(ctx: Context, obj, key, y, dy):
    """Pullback of ``y = obj[key]`` / ``getattr(obj, key)``: a gradient for ``obj``
    if it is a value, else accumulated into its slot in the context."""
    if isinstance(key, slice) and isinstance(obj, list):
        # a slice of a list is a new list: its elements' gradients live in its slot
        g = ctx.peek(y)
        dy = tuple(g) if g is not None else dy
    dy = ctx.credit(y, dy)
    if dy is None:
        return None
    if type(obj) is tuple or (isinstance(obj, tuple) and not has_identity(obj)) or \
            type(obj) is frozenset and type(key) is int:   # (a frozenset's items by the order they were iterated)
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
    if isinstance(obj, np.ndarray):
        z = np.zeros_like(obj, dtype=np.result_type(obj.dtype, np.float64) if obj.dtype.kind in "iub" else obj.dtype)
        np.add.at(z, key, dy)
        return z
    if isinstance(obj, (str, bytes, range)):
        return None
    if type(obj) is ModuleTensors:
        return obj.credit(ctx, y, dy)
    if isinstance(obj, (types.GeneratorType, collections.abc.Iterator)):
        if dy is None:
            return None
        code = getattr(obj, "gi_code", None)
        where = None
        if code is not None:
            lines = [i.positions.lineno for i in dis.get_instructions(code) if i.opname == "YIELD_VALUE"]
            where = (code.co_filename, lines[0] if lines else code.co_firstlineno)
        raise LiftError(f"torchzygote cannot differentiate 'yield' (generators): a gradient flows into values "
                        f"produced by {getattr(code, 'co_name', type(obj).__name__)!r}; build a list instead",
                        where)
    if has_identity(obj) and not isinstance(obj, (list, dict)) and type(key) is int:
        _not_iterable(obj)
    if has_identity(obj) or isinstance(obj, (types.ModuleType, type)):   # (modules and classes are values, but
        # their fields are written: ``K.n = s * 3`` then ``K.n``)
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


def next_back(ctx: Context, it, y, dy):
    """Pullback of ``next(it)`` on an iterator that code not differentiated made: a module's
    parameters credit their fields; a floating-point tensor from any other iterator, and anything
    from a generator given values that may carry gradients (``pylib.next_of``), cannot be followed
    (``read_back`` says so, rather than dropping its gradient); other items are data."""
    if type(it) is ModuleTensors:
        it.credit(ctx, y, dy)
    elif dy is not None and (type(it) is types.GeneratorType and CARRYING.get(it, False) or  # (given values
                             # that may carry gradients: ``pylib.next_of``)
                             isinstance(y, torch.Tensor) and (y.is_floating_point() or y.is_complex())):
        read_back(ctx, it, None, y, dy)
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
        # (out of place: differentiated again, for a second derivative, in either mode)
        idx = torch.arange(x.numel(), device=x.device).reshape(x.shape)[key]
        return g.view(-1).index_add(0, idx.reshape(-1), dy.reshape(-1).to(g.dtype)).view(x.shape)
    g[key] = dy
    return g


reads_metadata(index_back, 0)  # the shape, dtype and device of x


def seed_slots(ctx: Context, y, dy) -> None:
    """Put an output gradient given by the user (``back(dy)``) into the slots of the
    identity objects in the output (a list, a dict, an object, nested in tuples)."""
    if dy is None or y is None:
        return
    if type(y) is tuple and isinstance(dy, (tuple, list)):
        for yi, di in zip(y, dy):
            seed_slots(ctx, yi, di)
        return
    ds = structure_of(dy)
    if not has_identity(y) or isinstance(y, types.FunctionType) or ds is None:
        return
    children, grads = structure_of(y).flatten(y)[0], ds.flatten(dy)[0]
    named = type(children) is dict
    if named != (type(grads) is dict):   # by name (objects, dicts) or by position (lists) alike
        return
    slot = ctx.slot(y)
    for k, di in grads.items() if named else enumerate(grads[:len(children)]):
        v = children.get(k) if named else children[k]
        if has_identity(v):
            seed_slots(ctx, v, di)
        else:
            slot[k] = accum(slot[k] if type(slot) is list else slot.get(k), di)


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


def method_self_back(ctx, m):
    """Pullback of ``m = x.name`` for a value ``x``: what the calls of ``m`` gave ``x``."""
    g = ctx.peek(m)
    return None if g is None else g.get("__self__")



def items_back(ctx, seq, y, dy):
    """Pullback of ``ops.items_of(seq)`` for a list: the items' gradients to the list's slot,
    except those of implicit parameters among the items as they were at the call (``y``),
    which are credited here (a list of Params made outside the differentiated code and used
    whole, ``torch.stack(lst)``, has no other read that would credit them)."""
    if dy is None:
        return None
    dy = ctx.credit(y, dy)
    return None if dy is None else seq_back(ctx, seq, dy)


def list_back(ctx, y, n):
    slot = ctx.peek(y)
    return tuple(slot[:n]) + (None,) * (n - len(slot)) if slot is not None else (None,) * n


def dict_back(ctx, y, kvs):
    slot = ctx.peek(y) or {}
    out = []
    for k in kvs[::2]:
        out += [None, slot.get(k)]
    return tuple(out)


def seq_back(ctx, seq, dy, items=None):
    """Route a tuple/list gradient of ``tuple(seq)`` back to ``seq``; ``items``: what was read
    from a list then (``a, b = params``, ``f(*params)``), whose Params are credited here (the
    rest goes to the list's slot, where a list kept outside would keep it)."""
    if dy is None:
        return None
    if type(seq) is ModuleTensors:
        return seq.credit_rest(ctx, dy)
    if isinstance(seq, collections.abc.Iterator) and any(d is not None for d in dy):
        item_back(ctx, seq, 0, None, next(d for d in dy if d is not None))  # raises: not differentiated
    if isinstance(seq, tuple):
        return tuple(dy)
    if isinstance(seq, list):
        if items is not None:
            dy = ctx.credit(tuple(items), tuple(dy)) or ()
        slot = ctx.slot(seq)
        for i, d in enumerate(dy):
            if d is not None and i < len(slot):
                slot[i] = accum(slot[i], d)
        return None
    if isinstance(seq, torch.Tensor):
        rows = [d if d is not None else torch.zeros_like(seq[0]) for d in dy]
        return torch.stack(rows) if rows else None
    if isinstance(seq, np.ndarray):   # ``a, b = p``: the rows' gradients stacked (zeros for unused rows)
        if seq.dtype.kind not in "fc" or not len(dy):
            return None
        return np.stack([np.zeros(seq.shape[1:], seq.dtype) if d is None else d for d in dy])
    if any(d is not None for d in dy):
        raise GradientError(f"torchzygote cannot send a gradient back through iterating or unpacking a "
                            f"{type(seq).__name__}; convert it to a list first (list(x)) or index it")
    return None


def cat_back(ctx, dy, parts, y=None):
    if dy is None:
        return (None,) * len(parts)
    out, i = [], 0
    for p in parts:
        n = len(p)
        out.append(seq_back(ctx, p, tuple(dy[i:i + n]), None if y is None else y[i:i + n]))
        i += n
    return tuple(out)


def cat_list_back(ctx, y, parts):
    slot = ctx.peek(y)
    return cat_back(ctx, tuple(slot) if slot is not None else None, parts)


def merge_back(ctx, y, ds):
    slot = ctx.peek(y)
    if slot:
        for k, g in slot.items():
            for d in reversed(ds):
                if k in d:
                    s = ctx.slot(d)
                    s[k] = accum(s.get(k), g)
                    break
    return (None,) * len(ds)


def star_back(ctx, seq, y, dy, before):
    if dy is None:
        dy = (None,) * len(y)
    mid = ctx.peek(y[before])
    mid = tuple(mid) if mid is not None else (None,) * len(y[before])
    return seq_back(ctx, seq, tuple(dy[:before]) + mid + tuple(dy[before + 1:]),
                    tuple(y[:before]) + tuple(y[before]) + tuple(y[before + 1:]))


def attr_back(ctx, obj, name, y, dy):
    """Pullback of ``getattr``; numbers and tensors have attributes that are views of them."""
    if dy is None:
        return None
    if isinstance(obj, torch.nn.Module):   # (read_back's case for an object, without its tests)
        dy = ctx.credit(y, dy)
        if dy is not None:
            slot = ctx.slot(obj)
            slot[name] = accum(slot.get(name), dy)
        return None
    fields = getattr(type(obj), "_fields", None) or getattr(type(obj), "__match_args__", ())
    if isinstance(obj, tuple) and name in fields:  # named tuples, torch.return_types
        return read_back(ctx, obj, fields.index(name), y, dy)
    if name == "__self__" and isinstance(obj, (types.MethodType, types.BuiltinMethodType)):
        slot = ctx.slot(obj)   # a bound method's slot holds its object's gradient (``method_self_back``)
        slot["__self__"] = accum(slot.get("__self__"), dy)
        return None
    if _is_value(obj):  # a view (x.T, z.real) or metadata (x.shape, x.dtype: no gradient)
        back = VALUE_ATTRS.get(name)
        return back(obj, dy) if back is not None else None
    return read_back(ctx, _attr_owner(obj, name), name, y, dy)


def _attr_owner(obj, name):
    """Where ``obj.name`` was read from: ``obj``, or the class that holds ``name`` where ``obj`` (an
    instance, or a subclass) does not (``K.n = s * 3``, then ``K().n`` or ``Sub.n``: the gradient goes
    where the write will find it)."""
    d = getattr(obj, "__dict__", None)
    if d is None or name in d:
        return obj
    for klass in (obj.__mro__[1:] if isinstance(obj, type) else type(obj).__mro__ if type(d) is dict else ()):
        if name in klass.__dict__:   # (a plain value there; a descriptor, ``f.__defaults__``, is the object's)
            return obj if hasattr(type(klass.__dict__[name]), "__get__") else klass
    return obj


reads_metadata(attr_back, 1)  # tensors' attributes (x.T, x.real) are views: their gradients need only dy


def _is_value(x):
    return isinstance(x, (int, float, complex, torch.Tensor, np.ndarray))


def _T_back(x, dy):
    return dy.T


def _re(dy):
    """The real part of a complex ``dy`` of a real value (``z.real``, ``z.imag``): a real value's
    gradient is real, though a complex factor after it (``z.real * w``) made ``dy`` complex."""
    if isinstance(dy, torch.Tensor):
        return dy.real if dy.is_complex() else dy
    return dy.real if isinstance(dy, complex) or np.iscomplexobj(dy) else dy


VALUE_ATTRS = {
    "real": lambda x, dy: _re(dy) if hasattr(dy, "shape") else complex(_re(dy), 0) if isinstance(dy, complex) else dy,
    "imag": lambda x, dy: complex(0, _re(dy)) if not hasattr(dy, "shape") else 1j * _re(dy),
    "T": _T_back, "mT": lambda x, dy: dy.mT, "H": lambda x, dy: dy.mH, "mH": lambda x, dy: dy.mH,
    "data": lambda x, dy: None,
}


def through_back(old, dy):
    """``ops.through``'s gradient for an old value of a kind known at run time only."""
    return dy if isinstance(old, (torch.Tensor, np.ndarray)) else None


def global_read_back(ctx, fn, name, y, dy):
    """A global's gradient: to the implicit parameters, and to the module's slot for
    the name (so a ``global`` write in differentiated code passes it on)."""
    dy = ctx.credit(y, dy)
    if dy is not None:
        slot = ctx.slot(fn.__globals__)
        slot[name] = accum(slot.get(name), dy)
    return None


def set_global(ctx, fn, name, v):
    """``global name; name = v``, noted in the context: reads of the global then get gradients."""
    ctx.wrote_global(fn, name)
    ops.set_global(fn, name, v)


def rewrite_global_noted(ctx, fn, name, v) -> bool:
    """``ops.rewrite_global``, noted in the context as a write of the global (``set_global``)."""
    same = ops.rewrite_global(fn, name, v)
    if same:
        ctx.wrote_global(fn, name)
    return same


def global_write_back(ctx, fn, name):
    slot = ctx.peek(fn.__globals__)
    return slot.pop(name, None) if slot else None


def append_back(ctx, lst):
    # undoing a change makes the slot from the list's final state if it has none yet, so that
    # reads earlier in the code (``xs[-1]``) find the items where they were then
    slot = ctx.slot(lst)
    return slot.pop() if slot else None


def insert_back(ctx, lst, i):
    slot = ctx.slot(lst)
    if not slot:
        return None
    n = len(slot)
    i = max(min(i if i >= 0 else n - 1 + i, n - 1), 0)
    return slot.pop(i)


def extend_back(ctx, lst, it):
    slot = ctx.slot(lst)
    n = len(it) if hasattr(it, "__len__") else 0
    if n == 0:
        return None
    tail = [slot.pop() for _ in range(min(n, len(slot)))][::-1]   # pops: a nested transform undoes them exactly
    return seq_back(ctx, it, tuple(tail))


def pop_back(ctx, lst, i, dy):
    slot = ctx.slot(lst)
    if isinstance(lst, list):
        if i == -1:
            slot.append(dy)
        else:
            slot.insert(i if i >= 0 else len(slot) + 1 + i, dy)
    return None


def delete_item(obj, key):
    """``del obj[key]``; returns the length a list had before, which its pullback needs to
    re-open the gap a slice leaves."""
    n = len(obj) if isinstance(obj, list) else None
    del obj[key]
    return n


def del_back(ctx, obj, key, n=None):
    """Undo ``del obj[key]`` in the slot: the deleted items get empty gradients again, so
    reads before the deletion find theirs (``n``: the list's length before it)."""
    slot = ctx.slot(obj) if isinstance(obj, list) else ctx.peek(obj)
    if slot is not None and isinstance(slot, list):
        if isinstance(key, slice):
            for i in sorted(range(*key.indices(n))):
                slot.insert(i, None)
        else:
            slot.insert(key if key >= 0 else len(slot) + 1 + key, None)
    return None


def copy_back(ctx, src, y):
    slot = ctx.peek(y)
    if slot is None:
        return None
    if isinstance(slot, list):
        return seq_back(ctx, src, tuple(slot))
    s = ctx.slot(src)
    for k, g in slot.items():
        s[k] = accum(s.get(k), g)
    return None


def repeat_back(ctx, a, y, dy):
    """``a * n``: each copy's gradient adds up in ``a``."""
    g = tuple(ctx.peek(y) or ()) if isinstance(y, list) else dy
    if not g or not len(a):
        return None
    n = len(a)
    total = [None] * n
    for i, gi in enumerate(g):
        total[i % n] = accum(total[i % n], gi)
    return seq_back(ctx, a, tuple(total))


def irepeat_back(ctx, a, n):
    """``a *= n`` on a list: the copies' gradients fold back onto the original items."""
    slot = ctx.slot(a)
    if not slot or n <= 0:
        return None
    m = len(slot) // n
    total = [None] * m
    for i, gi in enumerate(slot[:m * n]):
        total[i % m] = accum(total[i % m], gi)
    slot[:] = total
    return None


def ior_back(ctx, a, b):
    """``a |= b`` on a dict: the keys ``b`` wrote take their gradients back from ``a``."""
    slot = ctx.peek(a)
    if slot:
        for k in b:
            if k in slot:
                sb = ctx.slot(b)
                sb[k] = accum(sb.get(k), slot.pop(k))
    return None


def or_back(ctx, a, b, y):
    """``a | b`` on dicts: the new dict's gradients go back by key, to ``b`` where it gave the key, else
    to ``a`` (Params among the values credited, as a read of them)."""
    slot = ctx.peek(y)
    for k, g in (slot or {}).items():
        src = b if k in b else a
        g = ctx.credit(y.get(k), g)   # (y's value: ``a`` may have changed since, ``d.clear()``)
        if g is not None:
            s = ctx.slot(src)
            s[k] = accum(s.get(k), g)
    return None


def defaults_back(ctx, fn):
    """Defaults evaluated at ``def`` time get the gradients calls gave them."""
    slot = ctx.peek(fn)
    return slot.get("__defaults__") if slot else None


def try_guard_back(ctx, loc, cells, unchanged):
    """The gradient of values a ``try`` body computed before it raised is not tracked:
    say so rather than return a wrong gradient."""
    for c, same in zip(cells, unchanged):
        slot = ctx.peek(c)
        if not same and slot and slot.get("cell_contents") is not None:
            raise GradientError(
                "torchzygote cannot differentiate through values computed in a 'try' block that then "
                "raised an exception (the 'except' block uses them); compute them before the 'try', "
                "or avoid raising on this path", loc)
    return None


def cell_back(ctx, cell):
    slot = ctx.peek(cell)
    return (slot.pop("cell_contents", None),) if slot else (None,)


