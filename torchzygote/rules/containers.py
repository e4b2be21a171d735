"""Rules for containers, attributes, mutation and the frontend's own operations.

Their pullbacks are in ``container_backs``. Rules marked ``effect`` run in the pullback even
when their output has no gradient, to keep the slots of identity objects in step.
"""
import operator

import torch

from ..frontend import ops
from ..values.algebra import add_owned, unbroadcast
from ..values.fields import read_field
from ..values.kinds import has_identity, kind_of
from . import container_backs, pylib
from .container_backs import delete_item, set_global
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


ns = {n: f for n, f in vars(container_backs).items() if n.endswith("_back")}
ns.update(delete_item=delete_item, ub=unbroadcast, set_global=set_global)
C = dict(ns=ns, broadcast=False, maybe_none=True, moves=True)

# ---------------------------------------------------------------- building
grad(ops.build_tuple, "*xs", fwd="xs", kinds=ANY, out=tuple_kind, xs="dy", **C)
grad(ops.build_list, "*xs", fwd="list(xs)", kinds=ANY, out=LIST, effect=True, xs="list_back(ctx, y, len(xs))", **C)
grad(ops.build_dict, "*kvs", kinds=ANY, out=DICT, effect=True, kvs="dict_back(ctx, y, kvs)", **C)
grad(ops.cat_tuple, "*parts", kinds=ANY, out=TUPLE, parts="cat_back(ctx, dy, parts, y)", **C)
grad(ops.cat_list, "*parts", kinds=ANY, out=LIST, effect=True, parts="cat_list_back(ctx, y, parts)", **C)
grad(ops.merge_dict, "*ds", kinds=ANY, out=DICT, effect=True, ds="merge_back(ctx, y, ds)", **C)
grad(pylib.next_of, "it, default", kinds=ANY, out=OBJECT, it="next_back(ctx, it, y, dy)", **C)
grad(ops.unpack, "seq, n", kinds=ANY, out=unpacked, seq="seq_back(ctx, seq, dy, y)", **C)
grad(ops.unpack_star, "seq, before, after", kinds=ANY, out=TUPLE, effect=True,
     seq="star_back(ctx, seq, y, dy, before)", **C)
grad(tuple, "seq=()", kinds=ANY, out=TUPLE, seq="seq_back(ctx, seq, dy, y)", **C)
grad(list, "seq=()", kinds=ANY, out=LIST, effect=True, seq="copy_back(ctx, seq, y)", **C)
grad(ops.items_of, "seq", kinds=("L",), out=TUPLE, seq="items_back(ctx, seq, y, dy)", **C)
grad(ops.items_of, "seq", fwd="seq", kinds=("R|C|T|A|P|PT|PR|D|N|M",), out=lambda ks: ks[0], seq="dy",
     jvp=dict(seq="dseq"), **C)
grad(ops.new_cell, "*value", kinds=ANY, out=OBJECT, effect=True, value="cell_back(ctx, y)", **C)

grad(ops.try_guard, "loc, cells, befores", kinds=ANY, out=NONDIFF, effect=True,
     cells="try_guard_back(ctx, loc, cells, y)", **C)
grad(complex.conjugate, "self", fwd="self.conjugate()", kinds=ANY, out=lambda ks: ks[0], broadcast=False,
     self="dy.conjugate()", linear=True)

# no_grad blocks: calls, not inlined, so that generated code differentiated again says the same
grad(ops.through, "old, new", kinds=("T|A", "T|A"), out=lambda ks: ks[1], old="dy", jvp=dict(old="dold"),
     broadcast=False)
# (of a kind known at run time only: a tensor's or an array's gradient passes; a number's, which
# ``n += 1`` made anew, does not, as a value computed under no_grad)
grad(ops.through, "old, new", kinds=ANY, out=lambda ks: ks[1], old="through_back(old, dy)", ns=ns, maybe_none=True,
     jvp=dict(old="through_back(old, dold)"))
grad(ops.detached, "x", kinds=ANY, out=lambda ks: ks[0])

# identity objects with no gradient of their own (theirs lives in their cells)
grad(ops.make_function, "code, fn, defaults, kwdefaults, closure, qualname", kinds=ANY, out=OBJECT,
     effect=True, defaults="defaults_back(ctx, y)", **C)
grad(ops.closure_cell, "fn, i", fwd="fn.__closure__[i]", kinds=ANY, out=OBJECT, moves=True)

# ---------------------------------------------------------------- reading
grad(operator.getitem, "obj, key", fwd="obj[key]", kinds=("A", ...), out=ARRAY,
     ns=dict(ns, np_index_back=np_index_back), broadcast=False, obj="np_index_back(obj, key, dy)", linear=True)
grad(operator.getitem, "obj, key", fwd="obj[key]", kinds=("T", ...), out=TENSOR, view=True,
     ns=ns, broadcast=False, obj="index_back(obj, key, dy)", linear=True)
grad(operator.getitem, "obj, key", fwd="obj[key]", kinds=("L", ...), out=OBJECT, effect=True,
     obj="read_back(ctx, obj, key, y, dy)", **C)
grad(operator.getitem, "obj, key", fwd="obj[key]", kinds=READABLE, out=item_out,
     obj="read_back(ctx, obj, key, y, dy)", **C)
grad(getattr, "obj, name", fwd="getattr(obj, name)", kinds=KNOWN, out=OBJECT,
     obj="attr_back(ctx, obj, name, y, dy)", **C)
# a parameter's gradient summed in place where the context owns the sum (values.algebra):
# differentiated again, a sum like any other
grad(add_owned, "a, b, owned", fwd="a + b", a="dy", b="dy", elementwise=True, keeps_float=True)
# a plain field of an nn.Module the transform is specialised on (``analysis_modules``)
grad(read_field, "obj, name", fwd="read_field(obj, name)", kinds=ANY, out=OBJECT,
     obj="attr_back(ctx, obj, name, y, dy)", **dict(C, ns=dict(ns, read_field=read_field)))
# a module's data read by name (``params.W``): its gradient to the Params or to the module's field slot
grad(ops.module_data, "mod, name", fwd="module_data(mod, name)", kinds=ANY, out=OBJECT, effect=True,
     mod="attr_back(ctx, mod, name, y, dy)", **dict(C, ns=dict(ns, module_data=ops.module_data)))
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
grad(operator.or_, "a, b", fwd="a | b", kinds=("D", "D"), out=DICT, effect=True, b="or_back(ctx, a, b, y)", **C)
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
# the default write, past a class's own __setattr__ (``super().__setattr__``, frozen dataclasses)
grad(object.__setattr__, "obj, name, v", fwd="object.__setattr__(obj, name, v)", kinds=ANY, out=NONDIFF,
     effect=True, v="write_back(ctx, obj, name, v)", **C)
# nn.Module's registrations are named writes, as ``self.name = v`` is (torch stores them in its
# registries, where the module's reads find them by name: both meet in the module's slot)
for _register, _params in ((torch.nn.Module.register_buffer, "self, name, tensor, persistent=True"),
                           (torch.nn.Module.register_parameter, "self, name, param"),
                           (torch.nn.Module.add_module, "self, name, module"),
                           (torch.nn.Module.register_module, "self, name, module")):
    _v = _params.split(", ")[2]
    grad(_register, _params, kinds=ANY, out=NONDIFF, effect=True, **{_v: f"write_back(ctx, self, name, {_v})"}, **C)
grad(operator.delitem, "obj, key", fwd="delete_item(obj, key)", kinds=WRITABLE, out=NONDIFF, effect=True,
     key="del_back(ctx, obj, key, y)", **C)
grad(delattr, "obj, name", fwd="delattr(obj, name)", kinds=ANY, out=NONDIFF, effect=True,
     name="del_back(ctx, obj, name)", **C)

# a tensor read from a field, an item or a global, then written in place through a local name: the
# new value written back there (``Names.write_back``), where the place still holds it (``y``)
grad(ops.rewrite_attr, "obj, name, v", kinds=ANY, out=NONDIFF, effect=True,
     v="write_back(ctx, obj, name, v) if y else None", **C)
grad(ops.rewrite_item, "obj, key, v", kinds=ANY, out=NONDIFF, effect=True,
     v="write_back(ctx, obj, key, v) if y else None", **C)
grad(ops.rewrite_global, "fn, name, v", fwd="rewrite_global_noted(ctx, fn, name, v)", kinds=ANY, out=NONDIFF,
     effect=True, v="global_write_back(ctx, fn, name) if y else None",
     **dict(C, ns=dict(ns, rewrite_global_noted=container_backs.rewrite_global_noted)))

# ---------------------------------------------------------------- methods
grad(list.append, "self, x", kinds=ANY, out=NONDIFF, effect=True, x="append_back(ctx, self)", **C)
grad(list.insert, "self, i, x", kinds=ANY, out=NONDIFF, effect=True, x="insert_back(ctx, self, i)", **C)
grad(list.extend, "self, it", kinds=ANY, out=NONDIFF, effect=True, it="extend_back(ctx, self, it)", **C)
grad(list.pop, "self, i=-1", kinds=ANY, out=OBJECT, effect=True, self="pop_back(ctx, self, i, dy)", **C)
grad(list.copy, "self", kinds=ANY, out=LIST, effect=True, self="copy_back(ctx, self, y)", **C)
grad(dict.copy, "self", kinds=ANY, out=DICT, effect=True, self="copy_back(ctx, self, y)", **C)
nondiff(dict.keys, list.index, list.count, tuple.index, tuple.count, str.format, str.join, str.split,
        str.upper, str.lower, str.strip, str.startswith, str.endswith, str.replace, set.add,
        super, ops.with_exit_raise, ops.format_value, ops.join_str, ops.build_set,
        ops.raise_, ops.assert_, ops.contains, ops.not_contains, ops.import_name, ops.import_from,
        ops.untracked_write, ops.check_module_write)
# a kind is a name and an identity a bool: a transform of the runtime (nested AD) calls these as they are
nondiff(kind_of, has_identity)
nondiff(ops.globals_of, out=DICT)
reads_metadata(unbroadcast, 1)  # the shape and kind of x

# ---------------------------------------------------------------- frontend bookkeeping (inlined)
grad(ops.exit_reset, "e", fwd="(0 if e == 1 else e)", kinds=ANY, out=NONDIFF)
grad(ops.break_reset, "e", fwd="(0 if e == 2 else e)", kinds=ANY, out=NONDIFF)
grad(ops.loop_cont, "t, e", fwd="(e == 0 and bool(t))", kinds=ANY, out=NONDIFF)
grad(ops.contains, "c, x", fwd="x in c", kinds=ANY, out=NONDIFF)
grad(ops.not_contains, "c, x", fwd="x not in c", kinds=ANY, out=NONDIFF)
