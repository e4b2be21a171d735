"""Rules for containers, attributes, mutation and the frontend's own operations.

Tuples are values: their gradient is a tuple. Lists, dicts, objects and cells
have identity: their gradient lives in the context (``ctx.slot(obj)``) and is
kept in step with the object as the pullback walks back through mutations, so
an overwritten slot's gradient is dropped at the write and a popped element's
gradient is restored at the pop. Rules marked ``effect`` run in the pullback
even when their output has no gradient, to keep those slots in step.
"""
import operator
import types

import collections.abc

from ..ad.runtime import accum, index_back, item_back, method_self_back, read_back, unbroadcast, write_back
from ..errors import GradientError
from ..frontend import ops
from .numpy_rules import np_index_back
from .registry import (ANY, ARRAY, DICT, LIST, NONDIFF, OBJECT, REAL, TENSOR, TUPLE, base, grad, item_kind,
                       nondiff, reads_metadata, tuple_kind)

KNOWN = ("R|C|T|A|L|P|PT|PR|D|N|M", ...)   # (objects dispatch at run time)
READABLE = ("L|P|PT|PR|D|N", ...)
SEQUENCE = "L|P|PT|PR"
TUPLES = "P|PT|PR"


def item_out(ks):
    """``t[i]`` of a tuple of tensors is a tensor; a slice of it is such a tuple."""
    if base(ks[0]) == TUPLE:
        return item_kind(ks[0]) if ks[1] == REAL else ks[0] if ks[1] == NONDIFF else OBJECT
    return OBJECT


def unpacked(ks):
    return ks[0] if base(ks[0]) == TUPLE else "PT" if ks[0] == TENSOR else TUPLE
WRITABLE = ("L|D", ...)


def list_back(ctx, y, n):
    slot = ctx.peek(y)
    return tuple(slot[:n]) + (None,) * (n - len(slot)) if slot is not None else (None,) * n


def dict_back(ctx, y, kvs):
    slot = ctx.peek(y) or {}
    out = []
    for k in kvs[::2]:
        out += [None, slot.get(k)]
    return tuple(out)


def seq_back(ctx, seq, dy):
    """Route a tuple/list gradient of ``tuple(seq)`` back to ``seq``."""
    if dy is None:
        return None
    if isinstance(seq, collections.abc.Iterator) and any(d is not None for d in dy):
        item_back(ctx, seq, 0, None, next(d for d in dy if d is not None))  # raises: not differentiated
    if isinstance(seq, tuple):
        return tuple(dy)
    if isinstance(seq, list):
        slot = ctx.slot(seq)
        for i, d in enumerate(dy):
            if d is not None and i < len(slot):
                slot[i] = accum(slot[i], d)
        return None
    import torch
    if isinstance(seq, torch.Tensor):
        rows = [d if d is not None else torch.zeros_like(seq[0]) for d in dy]
        return torch.stack(rows) if rows else None
    import numpy as np
    if isinstance(seq, np.ndarray):   # ``a, b = p``: the rows' gradients stacked (zeros for unused rows)
        if seq.dtype.kind not in "fc" or not len(dy):
            return None
        return np.stack([np.zeros(seq.shape[1:], seq.dtype) if d is None else d for d in dy])
    if any(d is not None for d in dy):
        raise GradientError(f"torchzygote cannot send a gradient back through iterating or unpacking a "
                            f"{type(seq).__name__}; convert it to a list first (list(x)) or index it")
    return None


def cat_back(ctx, dy, parts):
    if dy is None:
        return (None,) * len(parts)
    out, i = [], 0
    for p in parts:
        n = len(p)
        out.append(seq_back(ctx, p, tuple(dy[i:i + n])))
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
    return seq_back(ctx, seq, tuple(dy[:before]) + mid + tuple(dy[before + 1:]))


def attr_back(ctx, obj, name, y, dy):
    """Pullback of ``getattr``; numbers and tensors have attributes that are views of them."""
    if dy is None:
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
    return read_back(ctx, obj, name, y, dy)


reads_metadata(attr_back, 1)  # tensors' attributes (x.T, x.real) are views: their gradients need only dy


def _is_value(x):
    import numpy as np
    import torch
    return isinstance(x, (int, float, complex, torch.Tensor, np.ndarray))


def _T_back(x, dy):
    return dy.T


VALUE_ATTRS = {
    "real": lambda x, dy: dy if not isinstance(dy, complex) else complex(dy.real, 0),
    "imag": lambda x, dy: complex(0, dy.real if isinstance(dy, complex) else dy) if not hasattr(dy, "shape") else 1j * dy,
    "T": _T_back, "mT": lambda x, dy: dy.mT, "H": lambda x, dy: dy.mH, "mH": lambda x, dy: dy.mH,
    "data": lambda x, dy: None,
}


def global_read_back(ctx, fn, name, y, dy):
    """A global's gradient: to the implicit parameters, and to the module's slot for
    the name (so a ``global`` write in differentiated code passes it on)."""
    if dy is not None:
        ctx.param(y, dy)
        slot = ctx.slot(fn.__globals__)
        slot[name] = accum(slot.get(name), dy)
    return None


def set_global(ctx, fn, name, v):
    """``global name; name = v``, noted in the context: reads of the global then get gradients."""
    ctx.wrote_global(fn, name)
    ops.set_global(fn, name, v)


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


ns = {n: f for n, f in globals().items() if n.endswith("_back")}
ns.update(delete_item=delete_item, read_back=read_back, write_back=write_back, index_back=index_back, ub=unbroadcast, set_global=set_global)
C = dict(ns=ns, broadcast=False, maybe_none=True)

# ---------------------------------------------------------------- building
grad(ops.build_tuple, "*xs", fwd="xs", kinds=ANY, out=tuple_kind, xs="dy", **C)
grad(ops.build_list, "*xs", fwd="list(xs)", kinds=ANY, out=LIST, effect=True, xs="list_back(ctx, y, len(xs))", **C)
grad(ops.build_dict, "*kvs", kinds=ANY, out=DICT, effect=True, kvs="dict_back(ctx, y, kvs)", **C)
grad(ops.cat_tuple, "*parts", kinds=ANY, out=TUPLE, parts="cat_back(ctx, dy, parts)", **C)
grad(ops.cat_list, "*parts", kinds=ANY, out=LIST, effect=True, parts="cat_list_back(ctx, y, parts)", **C)
grad(ops.merge_dict, "*ds", kinds=ANY, out=DICT, effect=True, ds="merge_back(ctx, y, ds)", **C)
grad(ops.unpack, "seq, n", kinds=ANY, out=unpacked, seq="seq_back(ctx, seq, dy)", **C)
grad(ops.unpack_star, "seq, before, after", kinds=ANY, out=TUPLE, effect=True,
     seq="star_back(ctx, seq, y, dy, before)", **C)
grad(tuple, "seq=()", kinds=ANY, out=TUPLE, seq="seq_back(ctx, seq, dy)", **C)
grad(list, "seq=()", kinds=ANY, out=LIST, effect=True, seq="copy_back(ctx, seq, y)", **C)
grad(ops.new_cell, "*value", kinds=ANY, out=OBJECT, effect=True, value="cell_back(ctx, y)", **C)

grad(ops.try_guard, "loc, cells, befores", kinds=ANY, out=NONDIFF, effect=True,
     cells="try_guard_back(ctx, loc, cells, y)", **C)
grad(complex.conjugate, "self", fwd="self.conjugate()", kinds=ANY, out=lambda ks: ks[0], broadcast=False,
     self="dy.conjugate()")

grad(ops.stop_gradient, "x", fwd="x", kinds=ANY, out=lambda ks: ks[0])

# identity objects with no gradient of their own (theirs lives in their cells)
grad(ops.make_function, "code, fn, defaults, kwdefaults, closure, qualname", kinds=ANY, out=OBJECT,
     effect=True, defaults="defaults_back(ctx, y)", **C)
grad(ops.closure_cell, "fn, i", fwd="fn.__closure__[i]", kinds=ANY, out=OBJECT)

# ---------------------------------------------------------------- reading
grad(operator.getitem, "obj, key", fwd="obj[key]", kinds=("A", ...), out=ARRAY,
     ns=dict(ns, np_index_back=np_index_back), broadcast=False, obj="np_index_back(obj, key, dy)")
grad(operator.getitem, "obj, key", fwd="obj[key]", kinds=("T", ...), out=TENSOR, view=True,
     ns=ns, broadcast=False, obj="index_back(obj, key, dy)")
grad(operator.getitem, "obj, key", fwd="obj[key]", kinds=("L", ...), out=OBJECT, effect=True,
     obj="read_back(ctx, obj, key, y, dy)", **C)
grad(operator.getitem, "obj, key", fwd="obj[key]", kinds=READABLE, out=item_out,
     obj="read_back(ctx, obj, key, y, dy)", **C)
grad(getattr, "obj, name", fwd="getattr(obj, name)", kinds=KNOWN, out=OBJECT,
     obj="attr_back(ctx, obj, name, y, dy)", **C)
grad(ops.get_global, "fn, name", kinds=ANY, out=OBJECT, fn="global_read_back(ctx, fn, name, y, dy)", **C)
grad(ops.set_global, "fn, name, v", fwd="set_global(ctx, fn, name, v)", kinds=ANY, out=NONDIFF, effect=True,
     v="global_write_back(ctx, fn, name)", **C)
grad(tuple.__new__, "cls, seq=()", kinds=ANY, out=OBJECT, seq="seq_back(ctx, seq, tuple(dy))", **C)

# generic reads on objects of unknown kind (after dunder dispatch found nothing to lift)
grad(operator.getitem, "obj, key", fwd="obj[key]", kinds=("O", ...), out=OBJECT, effect=True,
     obj="read_back(ctx, obj, key, y, dy)", **C)
grad(getattr, "obj, name", fwd="getattr(obj, name)", kinds=ANY, out=OBJECT,
     obj="attr_back(ctx, obj, name, y, dy)", **C)
# a method read from a tensor or number as a value (``m = x.sum``): its calls fill its slot
grad(ops.bound_method, "obj, name", fwd="getattr(obj, name)", kinds=ANY, out=OBJECT, effect=True,
     obj="method_self_back(ctx, y)", **C)
grad(getattr, "obj, name, default", fwd="getattr(obj, name, default)", kinds=ANY, out=OBJECT,
     obj="attr_back(ctx, obj, name, y, dy) if hasattr(obj, name) else None",
     default="dy if not hasattr(obj, name) else None", **C)

# ---------------------------------------------------------------- concatenation and repetition
# both operands are lists, whose gradients live in their slots: one expression fills both
grad(operator.add, "a, b", fwd="a + b", kinds=("L", "L"), out=LIST, effect=True,
     a="cat_list_back(ctx, y, (a, b))[0]", **C)
grad(operator.add, "a, b", fwd="a + b", kinds=(TUPLES, TUPLES), out=TUPLE,
     a="cat_back(ctx, dy, (a, b))[0]", b="cat_back(ctx, dy, (a, b))[1]", **C)
# ``xs += ys`` on a list extends it in place (the items' gradients move back from its slot)
grad(operator.iadd, "a, b", fwd="operator.iadd(a, b)", kinds=("L", SEQUENCE, ...),
     out=LIST, effect=True, b="extend_back(ctx, a, b)", **dict(C, ns=dict(C["ns"], operator=operator)))
grad(operator.imul, "a, n", fwd="operator.imul(a, n)", kinds=("L", "R|N", ...),
     out=LIST, effect=True, a="irepeat_back(ctx, a, n)", **dict(C, ns=dict(C["ns"], operator=operator)))
grad(operator.ior, "a, b", fwd="operator.ior(a, b)", kinds=("D", "D"), out=DICT, effect=True,
     b="ior_back(ctx, a, b)", **dict(C, ns=dict(C["ns"], operator=operator)))
grad(operator.iadd, "a, b", fwd="a + b", kinds=(TUPLES, TUPLES), out=TUPLE,
     a="cat_back(ctx, dy, (a, b))[0]", b="cat_back(ctx, dy, (a, b))[1]", **C)
grad(operator.mul, "a, n", fwd="a * n", kinds=(SEQUENCE, "R|N", ...),
     out=lambda ks: ks[0], effect=True, a="repeat_back(ctx, a, y, dy)", **C)
grad(operator.mul, "n, a", fwd="n * a", kinds=("R|N", SEQUENCE, ...),
     out=lambda ks: ks[1], effect=True, a="repeat_back(ctx, a, y, dy)", **C)

# ---------------------------------------------------------------- writing
grad(operator.setitem, "obj, key, v", fwd="obj[key] = v", kinds=WRITABLE, out=NONDIFF, effect=True,
     v="write_back(ctx, obj, key, v)", **C)
# objects of unknown kind reach this rule after setattr_dispatch found no Python setter
grad(setattr, "obj, name, v", fwd="setattr(obj, name, v)", kinds=ANY, out=NONDIFF, effect=True,
     v="write_back(ctx, obj, name, v)", **C)
grad(operator.delitem, "obj, key", fwd="delete_item(obj, key)", kinds=WRITABLE, out=NONDIFF, effect=True,
     key="del_back(ctx, obj, key, y)", **C)
grad(delattr, "obj, name", fwd="delattr(obj, name)", kinds=ANY, out=NONDIFF, effect=True,
     name="del_back(ctx, obj, name)", **C)

# ---------------------------------------------------------------- methods
grad(list.append, "self, x", kinds=ANY, out=NONDIFF, effect=True, x="append_back(ctx, self)", **C)
grad(list.insert, "self, i, x", kinds=ANY, out=NONDIFF, effect=True, x="insert_back(ctx, self, i)", **C)
grad(list.extend, "self, it", kinds=ANY, out=NONDIFF, effect=True, it="extend_back(ctx, self, it)", **C)
grad(list.pop, "self, i=-1", kinds=ANY, out=OBJECT, effect=True, self="pop_back(ctx, self, i, dy)", **C)
grad(list.copy, "self", kinds=ANY, out=LIST, effect=True, self="copy_back(ctx, self, y)", **C)
grad(dict.copy, "self", kinds=ANY, out=DICT, effect=True, self="copy_back(ctx, self, y)", **C)
nondiff(dict.keys, list.index, list.count, tuple.index, tuple.count, str.format, str.join, str.split,
        str.upper, str.lower, str.strip, str.startswith, str.endswith, str.replace, set.add,
        super, ops.with_enter, ops.with_exit, ops.with_exit_raise, ops.format_value, ops.join_str, ops.build_set,
        ops.raise_, ops.assert_, ops.contains, ops.not_contains, ops.import_name, ops.import_from,
        ops.untracked_write)

# ---------------------------------------------------------------- frontend bookkeeping (inlined)
grad(ops.exit_reset, "e", fwd="(0 if e == 1 else e)", kinds=ANY, out=NONDIFF)
grad(ops.break_reset, "e", fwd="(0 if e == 2 else e)", kinds=ANY, out=NONDIFF)
grad(ops.loop_cont, "t, e", fwd="(e == 0 and bool(t))", kinds=ANY, out=NONDIFF)
grad(ops.contains, "c, x", fwd="x in c", kinds=ANY, out=NONDIFF)
grad(ops.not_contains, "c, x", fwd="x not in c", kinds=ANY, out=NONDIFF)
