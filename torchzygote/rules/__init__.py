"""The rule tables, one module per domain; importing this package registers them all."""
from . import containers, inplace, pylib, scalar, tensor, numpy_rules  # noqa: F401
from . import numpy_ufuncs, numpy_reduce, numpy_shape, numpy_linalg  # noqa: F401
from ..ad import runtime as _rt
from ..frontend import ops as _ops
from .registry import nondiff as _nondiff

_rt.SPECIAL[_ops.call_method] = _rt.call_method
_rt._register_fallback_rule()
for _builtin, _stand_in in {**pylib.LIFT_AS, **numpy_shape.LIFT_AS}.items():
    _rt.SPECIAL[_builtin] = _rt.lift_as(_stand_in)
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
    _rt.SPECIAL[_f] = _rt.operator_dispatch(_f, _name, _rname)
_rt.SPECIAL[getattr] = _rt.getattr_dispatch
_rt.SPECIAL[setattr] = _rt.setattr_dispatch
_rt.SPECIAL[_ops.setitem_v] = _rt.setitem_dispatch

# results that may share memory with their first argument (in-place writes must keep their old values)
import torch as _torch

from .registry import TABLE as _TABLE

for _name in ("__getitem__", "view", "view_as", "reshape", "reshape_as", "transpose", "permute", "squeeze",
              "unsqueeze", "expand", "expand_as", "narrow", "select", "flatten", "unflatten", "t", "T", "mT",
              "split", "chunk", "unbind", "movedim", "diagonal", "as_strided", "real", "imag", "detach",
              "swapaxes", "unfold"):
    for _f in (getattr(_torch.Tensor, _name, None), getattr(_torch, _name, None)):
        for _r in _TABLE.lookup(_f) or ():
            _r.view = True
# results with the broadcast shape of their tensor arguments (codegen skips summing a gradient
# back to an argument known to have the result's shape)
_ELEMENTWISE = (
    "sin", "cos", "tan", "exp", "expm1", "exp2", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "tanh",
    "sigmoid", "sinh", "cosh", "asin", "acos", "atan", "asinh", "acosh", "atanh", "erf", "erfc", "reciprocal",
    "square", "neg", "negative", "positive", "abs", "absolute", "relu", "conj", "conj_physical", "deg2rad",
    "rad2deg", "clone", "contiguous", "frac", "sgn", "relu6", "gelu", "silu", "softplus", "elu", "leaky_relu",
    "logsigmoid", "hardtanh", "expit", "clamp", "clip", "clamp_min", "clamp_max", "where", "maximum", "minimum",
    "fmax", "fmin", "pow", "float_power", "add", "sub", "subtract", "rsub", "mul", "multiply", "div", "divide",
    "true_divide", "atan2", "arctan2", "remainder", "fmod", "hypot", "lerp", "masked_fill", "xlogy")
import torch.nn.functional as _F

for _name in _ELEMENTWISE:
    for _ns in (_torch, _torch.Tensor, _F, _torch.special):
        for _r in _TABLE.lookup(getattr(_ns, _name, None)) or ():
            _r.elementwise = True
for _f in (_op.add, _op.sub, _op.mul, _op.truediv, _op.pow, _op.mod, _op.neg, _op.pos, _op.iadd, _op.isub,
           _op.imul, _op.itruediv, _op.ipow, _op.imod):
    for _r in _TABLE.lookup(_f) or ():
        _r.elementwise = True
import functools as _functools

_rt.SPECIAL[_functools.partial] = _rt.partial_rule

# tensor factories: constant tensors (no gradient), which code may still write into
_makers = [getattr(_torch, _n) for _n in ("zeros", "ones", "empty", "full", "zeros_like", "ones_like",
                                          "empty_like", "full_like", "arange", "linspace", "logspace", "eye",
                                          "rand", "randn", "randint", "rand_like", "randn_like", "tensor",
                                          "as_tensor", "from_numpy")]
_nondiff(*[_f for _f in _makers if not _TABLE.lookup(_f)], out="T")

from .registry import end_batch as _end_batch

_end_batch()   # the tables are in: order every rule's variants, most specific first, and check them
