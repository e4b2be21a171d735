"""In-place tensor operations (``y[i] = v``, ``x.add_(y)``, ``x *= y``).

The forward really mutates the tensor, as Python would; the frontend gives the
mutated name a new SSA value, and codegen keeps a copy of the overwritten
value only when a pullback expression reads it (``self`` below is that old
value, ``y`` the new one). Torch autograd refuses some of these programs;
saving what is overwritten, as Tapenade does, makes them differentiable.
"""
import operator
import re

import torch

from ..values.algebra import unbroadcast
from ..values.kinds import may_carry
from .container_backs import write_back
from ..errors import GradientError
from ..frontend import ops
from . import tensor
from .registry import NONDIFF, OBJECT, REAL, TENSOR, grad, many, nondiff
from .tensor_tangent import copy_jvp, fill_jvp, put_at, to_shape, was

T0 = ("T", ...)
T0_NUM = ("T", many("T|R|N"))


def setitem_t(obj, key, v):
    obj[key] = v
    return obj


def setitem_c(obj, key, v):
    """``obj[key] = v`` on a list, a dict or an object."""
    obj[key] = check_splice(obj, key, v)
    return obj


def check_splice(obj, key, v):
    """``v``, for ``obj[key] = v``. A list's items are followed by position, and its slot keeps no
    record of the length it had: a slice assignment that changes the length (``l[1:1] = [v]``) of
    values that carry gradients is refused, not misplaced."""
    if isinstance(obj, list) and isinstance(key, slice) and key.step in (None, 1):
        v = list(v)
        if len(v) != len(range(*key.indices(len(obj)))) and (may_carry(obj) or may_carry(v)):
            raise GradientError(
                "a slice assignment that changes a list's length (`l[1:1] = [v]`, `l[0:2] = [v]`), of values "
                "that carry gradients: torchzygote follows a list's items by position. Write it with insert, "
                "del or a new list (`l = l[:1] + [v] + l[1:]`)")
    return v


def into(g, dtype):
    """The gradient of a value written into a tensor of ``dtype``: none where it holds integers or
    bools, which keep a rounded copy of the value (torch's: no gradient flows through it). The
    rules pass the written tensor's dtype, not the tensor: a pullback that reads only ``t.dtype``
    keeps no copy of ``t`` (``codegen_guards._read_set``), so ``x[i] = v`` in a loop copies nothing."""
    return g if dtype.is_floating_point or dtype.is_complex else None


def zero_at(dy, key):
    g = dy.clone()
    g[key] = 0
    return g


def in_range(x, lo, hi):
    m = torch.ones_like(x, dtype=torch.bool)
    if lo is not None:
        m = m & (x >= lo)
    if hi is not None:
        m = m & (x <= hi)
    return m


ns = dict(tensor.NS, setitem_t=setitem_t, setitem_c=setitem_c, zero_at=zero_at, into=into, ub=unbroadcast, torch=torch, in_range=in_range,
          write_back=write_back, to_shape=to_shape, put_at=put_at, fill_jvp=fill_jvp, copy_jvp=copy_jvp,
          was=was)
# tangent terms (rules/tangents.py): ``self`` (``a``) is the value before the write, ``y`` the written
# tensor; terms of the other arguments are expanded to ``y`` (they may broadcast, or be numbers); an
# argument that may be the written tensor itself is read as it was (``was``: ``x.mul_(x)``)
IP = dict(ns=ns, inplace=True, out=TENSOR, broadcast=False)

grad(ops.setitem_v, "obj, key, v", fwd="setitem_t(obj, key, v)", kinds=T0, obj="zero_at(dy, key)",
     v="into(ub(dy[key], v), obj.dtype)", jvp={"obj": "zero_at(dobj, key)", "v": "put_at(dv, key, y)"}, maybe_none=True, **IP)
grad(ops.setitem_v, "obj, key, v", fwd="setitem_c(obj, key, v)", kinds=("L|D|O", ...),
     out=lambda ks: ks[0], ns=ns, effect=True, broadcast=False, maybe_none=True, moves=True,
     v="write_back(ctx, obj, key, v)")

M = torch.Tensor
grad(M.add_, "self, other, *, alpha=1", fwd="self.add_(other, alpha=alpha)", kinds=T0_NUM,
     self="dy", other="ub(dy * _cn(alpha), other)", jvp={"self": "dself", "other": "to_shape(dother * alpha, y)"}, **IP)
grad(M.sub_, "self, other, *, alpha=1", fwd="self.sub_(other, alpha=alpha)", kinds=T0_NUM,
     self="dy", other="ub(-dy * _cn(alpha), other)", jvp={"self": "dself", "other": "to_shape(-dother * alpha, y)"}, **IP)
# (pullbacks as the out-of-place functions', conjugating for complex tensors: tensor_backward)
grad(M.mul_, "self, other", fwd="self.mul_(other)", kinds=T0_NUM,
     self="ub(mul_back(dy, other), self)", other="ub(mul_back(dy, self), other)",
     jvp={"self": "dself * was(other, y, self)", "other": "to_shape(self * dother, y)"}, **IP)
grad(M.div_, "self, other", fwd="self.div_(other)", kinds=T0_NUM,
     self="ub(div_back_a(dy, self, other), self)", other="ub(div_back_b(dy, self, other, y), other)",
     jvp={"self": "dself / was(other, y, self)", "other": "to_shape(-dother * y / was(other, y, self), y)"}, **IP)
grad(M.pow_, "self, exponent", fwd="self.pow_(exponent)", kinds=T0_NUM,
     self="pow_base_back(dy, self, exponent)", exponent="ub(pow_exp_back(dy, self, exponent, y), exponent)",
     jvp={"self": "dself * was(exponent, y, self) * self ** (was(exponent, y, self) - 1)",
          "exponent": "to_shape(dexponent * y * torch.log(self), y)"},
     **IP)
# x.sin_() and the like: the pullbacks of torch.sin and the like (``self`` the value before the write)
_UNARY_JVP = {"neg": "-dself", "sin": "dself * torch.cos(self)", "cos": "-dself * torch.sin(self)",
              "exp": "dself * y", "log": "dself / self", "sqrt": "dself / (2 * y)", "tanh": "dself * (1 - y * y)",
              "sigmoid": "dself * y * (1 - y)", "relu": "dself * (y > 0)"}
for _name, _jvp in _UNARY_JVP.items():
    grad(getattr(M, _name + "_"), "self", fwd=f"self.{_name}_()", kinds=T0,
         self=re.sub(r"\binput\b", "self", tensor.UNARY[_name]), jvp={"self": _jvp}, **IP)
grad(M.clamp_, "self, min=None, max=None", fwd="self.clamp_(min, max)", kinds=T0,
     self="clamp_back(dy, self, min, max)", min="ub(clamp_bound_back(dy, self, min, max, 'min'), min)",
     max="ub(clamp_bound_back(dy, self, min, max, 'max'), max)",
     jvp={"self": "dself * in_range(self, min, max)",
          "min": "clamp_bound_back(as_t(dmin, y), self, min, max, 'min')",
          "max": "clamp_bound_back(as_t(dmax, y), self, min, max, 'max')"}, **IP)
grad(M.copy_, "self, src", fwd="self.copy_(src)", kinds=T0, src="into(ub(dy, src), self.dtype)", jvp={"src": "copy_jvp(dsrc, y)"},
     maybe_none=True, **IP)
grad(M.zero_, "self", fwd="self.zero_()", kinds=T0, **IP)
grad(M.fill_, "self, value", fwd="self.fill_(value)", kinds=T0, value="into(ub(dy.sum(), value), self.dtype)",
     jvp={"value": "fill_jvp(dvalue, y)"}, maybe_none=True, **IP)

# augmented assignment on a tensor is in place (the terms: ``a`` before the write, ``y`` after)
grad(operator.iadd, "a, b", fwd="operator.iadd(a, b)", kinds=T0_NUM, elementwise=True, a="dy", b="ub(dy, b)",
     jvp={"a": "da", "b": "to_shape(db, y)"}, **dict(IP, ns=dict(ns, operator=operator)))
grad(operator.isub, "a, b", fwd="operator.isub(a, b)", kinds=T0_NUM, elementwise=True, a="dy", b="ub(-dy, b)",
     jvp={"a": "da", "b": "to_shape(-db, y)"}, **dict(IP, ns=dict(ns, operator=operator)))
grad(operator.imul, "a, b", fwd="operator.imul(a, b)", kinds=T0_NUM, elementwise=True, a="ub(mul_back(dy, b), a)",
     b="ub(mul_back(dy, a), b)",
     jvp={"a": "da * was(b, y, a)", "b": "to_shape(a * db, y)"}, **dict(IP, ns=dict(ns, operator=operator)))
grad(operator.itruediv, "a, b", fwd="operator.itruediv(a, b)", kinds=T0_NUM, elementwise=True,
     a="ub(div_back_a(dy, a, b), a)", b="ub(div_back_b(dy, a, b, y), b)", jvp={"a": "da / was(b, y, a)", "b": "to_shape(-db * y / was(b, y, a), y)"},
     **dict(IP, ns=dict(ns, operator=operator)))
# floor division and remainder are piecewise constant in ``a // b`` (zero gradient), as in torch
grad(operator.ifloordiv, "a, b", fwd="operator.ifloordiv(a, b)", kinds=T0_NUM,
     **dict(IP, ns=dict(ns, operator=operator)))

# ---------------------------------------------------------------- numpy arrays
# Writes into a NumPy array (``x[k] = v``, ``x += y``, ``x.fill(c)``, ``np.add.at``, ``np.copyto``)
# mutate it as Python does; codegen keeps a copy of an overwritten value a pullback reads, and
# arrays that may share the written memory are checked with np.shares_memory at run time
# (arrays have no version counters: see runtime.array_snapshots for values held by closures).
try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

if np is not None:
    from .numpy_rules import NATIVE, _holomorphic, np_cj, np_like, np_pow_a, np_pow_b, np_seq_back, np_sum_to_shape
    from .registry import ARRAY

    def _int_array_key(key) -> bool:
        """Whether ``key`` holds an integer array or list (a position may be named twice)."""
        parts = key if isinstance(key, tuple) else (key,)
        return any(isinstance(p, list) or isinstance(p, np.ndarray) and p.dtype.kind in "iu" for p in parts)

    def np_ip_mask(dy, key):
        """True at the positions ``x[key] = v`` writes (their old values get no gradient)."""
        m = np.zeros(np.shape(dy), dtype=bool)
        m[key] = True
        return m

    def np_ip_kept(dy, key):
        """1.0 for the written values that survive, 0.0 for the others: an integer-array key that
        names a position twice keeps one of them (numpy's last); the same assignment of value
        numbers tells which."""
        if not _int_array_key(key):
            return 1.0
        tag = np.full(np.shape(dy), -1)
        order = np.arange(np.size(tag[key])).reshape(np.shape(tag[key]))
        tag[key] = order
        return (tag[key] == order).astype(np.float64)

    def np_ip_setitem(obj, key, v):
        obj[key] = v
        return obj

    def np_ip_fill(obj, value):
        """``x.fill(c)`` as a value: the filled array (the frontend renames ``x`` to it)."""
        obj.fill(value)
        return obj

    def np_ip_copyto(dst, src):
        np.copyto(dst, src)
        return dst

    def np_ip_ufunc_at(ufunc, a, indices, b):
        """``np.add.at(a, indices, b)`` (and np.subtract.at) as a value: the written array."""
        if ufunc is not np.add and ufunc is not np.subtract:
            raise GradientError(f"torchzygote differentiates np.add.at and np.subtract.at, not np.{ufunc.__name__}.at: "
                                f"compute the new values out of place (np.{ufunc.__name__}(a[i], b) for distinct "
                                f"indices i) and write them with a[i] = ...")
        ufunc.at(a, indices, b)
        return a

    def np_ip_at_sign(ufunc):
        return -1.0 if ufunc is np.subtract else 1.0

    def np_ip_t_kept(da, key):
        """The written array's old tangent where the write leaves its values (a new array)."""
        t = np.array(da)
        t[key] = 0
        return t

    def np_ip_t_written(dv, key, y, write=np_ip_setitem):
        """The tangent of the values a write (``y[key] = v``, ``np.add.at``) leaves: ``dv`` written as
        they are, into zeros (none where the array holds integers)."""
        if np.asarray(y).dtype.kind not in "fc":
            return None
        out = np.zeros(np.shape(y), dtype=np.result_type(y, dv))
        res = write(out, key, dv)
        return out if res is None else res   # (``ufunc.at`` writes and returns None)

    NS_IP = dict(ns, np=np, np_like=np_like, np_cj=np_cj, np_seq_back=np_seq_back, np_sum_to_shape=np_sum_to_shape, np_pow_a=np_pow_a, np_pow_b=np_pow_b, np_ip_mask=np_ip_mask,
                 np_ip_kept=np_ip_kept, np_ip_setitem=np_ip_setitem, np_ip_fill=np_ip_fill,
                 np_ip_copyto=np_ip_copyto, np_ip_ufunc_at=np_ip_ufunc_at, np_ip_at_sign=np_ip_at_sign,
                 operator=operator, np_ip_t_kept=np_ip_t_kept, np_ip_t_written=np_ip_t_written)
    AIP = dict(ns=NS_IP, inplace=True, out=ARRAY, broadcast=False)
    A0_NUM = ("A", many("A|R|N"))

    # x[key] = v: the old values at key get no gradient, v the gradient of the values it left there
    grad(ops.setitem_v, "obj, key, v", fwd="np_ip_setitem(obj, key, v)", kinds=("A", "*", "A|R|N"),
         obj="np.where(np_ip_mask(dy, key), 0.0, dy)", v="np_like(dy[key] * np_ip_kept(dy, key), v)",
         jvp=dict(obj="np_ip_t_kept(dobj, key)", v="np_ip_t_written(dv, key, y)"), **AIP)
    # x[key] = [a, b]: a list or tuple (nested ones too) of numbers and arrays, as np.asarray makes it
    grad(ops.setitem_v, "obj, key, v", fwd="np_ip_setitem(obj, key, v)", kinds=("A", "*", "L|P|PT|PR"),
         obj="np.where(np_ip_mask(dy, key), 0.0, dy)",
         v="np_seq_back(ctx, np_sum_to_shape(dy[key] * np_ip_kept(dy, key), np.asarray(v)), v)",
         jvp=dict(obj="np_ip_t_kept(dobj, key)", v="np_ip_t_written(np.asarray(_tz(dv, v)), key, y)"),
         maybe_none=True, **AIP)
    # (an in-place result keeps ``a``'s shape: its gradient needs no summing)
    # (tangents: the old value ``a``'s and ``b``'s parts of the new value's)
    AUGMENTED = [
        (operator.iadd, "dy", "np_like(dy, b)", dict(a="da", b="db")),
        (operator.isub, "dy", "np_like(-dy, b)", dict(a="da", b="-db")),
        (operator.imul, "dy * b", "np_like(dy * a, b)", dict(a="da * b", b="a * db")),
        (operator.itruediv, "dy / b", "np_like(-dy * y / b, b)", dict(a="da / b", b="-db * y / b")),
        (operator.ipow, "np_pow_a(dy, a, b)", "np_like(np_pow_b(dy, a, b, y), b)",
         dict(a="np_pow_a(da, a, b)", b="np_pow_b(db, a, b, y)")),
    ]
    for f, ea, eb, jvp in AUGMENTED:   # (holomorphic: complex arrays conjugate, as the ufuncs' rules do)
        grad(f, "a, b", fwd=f"operator.{f.__name__}(a, b)", kinds=A0_NUM, elementwise=True, a=_holomorphic(ea),
             b=_holomorphic(eb), jvp=jvp, **AIP)
    # x.fill(c): the old values get no gradient
    grad(np.ndarray.fill, "self, value", fwd="np_ip_fill(self, value)", kinds=A0_NUM,
         value="np_like(dy, value)", jvp=dict(value="np.broadcast_to(dvalue, np.shape(y)) + 0.0"), **AIP)
    # np.copyto(dst, src): src broadcast into dst
    grad(np.copyto, "dst, src", fwd="np_ip_copyto(dst, src)", kinds=A0_NUM, src="np_like(dy, src)",
         jvp=dict(src="np.broadcast_to(dsrc, np.shape(y)) + 0.0"), **AIP)
    # np.add.at(a, indices, b) (a method of the ufunc np.add): a position named twice accumulates both
    # values. Dispatched at run time (codegen places its guards as for any write it sees by name).
    grad(np.ufunc.at, "ufunc, a, indices, b", fwd="np_ip_ufunc_at(ufunc, a, indices, b)",
         kinds=("*", "A", "*", "A|R|N"), a="dy",
         b="np_like(np_ip_at_sign(ufunc) * dy[indices], b)", ns=NS_IP, out=ARRAY, broadcast=False,
         jvp=dict(a="da", b="np_ip_t_written(db, indices, y, ufunc.at)"))
    # a copy: the gradient passes through (the copy is new memory, so later writes into it are its own)
    # (an array's copy has its shape: its gradient reads nothing of it, so no guard keeps it)
    grad(np.copy, "a", a="np_like(dy, a)", kinds=("A|R", ...), ns=NS_IP, out=ARRAY,
         broadcast=False, jvp=dict(a="np.copy(da)"))
    grad(np.ndarray.copy, "a", a="dy", kinds=("A", ...), ns=NS_IP, out=ARRAY, broadcast=False,
         jvp=dict(a="np.copy(da)"))
    grad(np.generic.copy, "a", a="dy", kinds=("A|R", ...), ns=NS_IP, out=REAL,
         broadcast=False, jvp=dict(a="da"))
    NATIVE.extend([np.copy, np.ndarray.copy, np.generic.copy])
    nondiff(np_ip_mask, np_ip_kept, np_ip_at_sign, np.shares_memory, np.may_share_memory)
    # the name a write returning None mutates takes the written array (the rules above return it)
    grad(ops.mutated, "obj, res", fwd="res", kinds=("*", "A", ...), res="dy", ns=NS_IP, out=ARRAY, broadcast=False,
         view=True, jvp=dict(res="dres"))
    grad(ops.mutated, "obj, res", fwd="obj", kinds=("*", "R|C|T|L|P|PT|PR|D|N|M", ...), obj="dy", ns=NS_IP, out=lambda ks: ks[0],
         broadcast=False, maybe_none=True, jvp=dict(obj="dobj"))
    # the name a torch-style in-place function's first argument had takes its result, where that is the same object
    grad(ops.returned, "obj, res, same", obj="None if same else dy", res="dy if same else None",
         out=lambda ks: ks[0] if ks[1] in (ks[0], NONDIFF) else OBJECT, broadcast=False, maybe_none=True,
         jvp=dict(obj="None if same else dobj", res="dres if same else None"))
