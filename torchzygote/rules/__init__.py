"""The rule tables, one module per domain; importing this package registers them all."""
from . import containers, inplace, pylib, scalar, tensor, numpy_rules  # noqa: F401
from . import numpy_ufuncs, numpy_reduce, numpy_shape, numpy_linalg  # noqa: F401
from ..ad import runtime as _rt
from ..frontend import ops as _ops
from .registry import nondiff as _nondiff
from .registry import register_dispatch as _dispatch

_dispatch(_ops.call_method, _rt.call_method)
_rt._register_fallback_rule()
for _builtin, _stand_in in {**pylib.LIFT_AS, **numpy_shape.LIFT_AS}.items():
    _dispatch(_builtin, _rt.lift_as(_stand_in))
_nondiff(*pylib.NONDIFF_HELPERS)

import operator as _op

for _f, _name, _rname in ((_op.add, "__add__", "__radd__"), (_op.sub, "__sub__", "__rsub__"),
                          (_op.mul, "__mul__", "__rmul__"), (_op.truediv, "__truediv__", "__rtruediv__"),
                          (_op.floordiv, "__floordiv__", "__rfloordiv__"), (_op.mod, "__mod__", "__rmod__"),
                          (_op.pow, "__pow__", "__rpow__"), (_op.matmul, "__matmul__", "__rmatmul__"),
                          (_op.neg, "__neg__", None), (_op.pos, "__pos__", None), (abs, "__abs__", None),
                          (_op.getitem, "__getitem__", None), (_op.setitem, "__setitem__", None),
                          (_op.iadd, "__iadd__", "__radd__"), (_op.isub, "__isub__", "__rsub__"),
                          (_op.imul, "__imul__", "__rmul__"), (_op.itruediv, "__itruediv__", "__rtruediv__")):
    _dispatch(_f, _rt.operator_dispatch(_f, _name, _rname))
_dispatch(getattr, _rt.getattr_dispatch)
_dispatch(setattr, _rt.setattr_dispatch)
_dispatch(_ops.setitem_v, _rt.setitem_dispatch)

import functools as _functools

import torch as _torch

from .registry import TABLE as _TABLE

_dispatch(_functools.partial, _rt.partial_rule)

# tensor factories: constant tensors (no gradient), which code may still write into
_makers = [getattr(_torch, _n) for _n in ("zeros", "ones", "empty", "full", "zeros_like", "ones_like",
                                          "empty_like", "full_like", "arange", "linspace", "logspace", "eye",
                                          "rand", "randn", "randint", "rand_like", "randn_like", "tensor",
                                          "as_tensor", "from_numpy")]
_nondiff(*[_f for _f in _makers if not _TABLE.lookup(_f)], out="T")

from .registry import end_batch as _end_batch

_end_batch()   # the tables are in: order every rule's variants, most specific first, and check them
