"""In-place tensor operations (``y[i] = v``, ``x.add_(y)``, ``x *= y``).

The forward really mutates the tensor, as Python would; the frontend gives the
mutated name a new SSA value, and codegen keeps a copy of the overwritten
value only when a pullback expression reads it (``self`` below is that old
value, ``y`` the new one). Torch autograd refuses some of these programs;
saving what is overwritten, as Tapenade does, makes them differentiable.
"""
import operator

import torch

from ..ad.runtime import unbroadcast, write_back
from ..frontend import ops
from .registry import DICT, LIST, NONDIFF, OBJECT, REAL, TENSOR, grad

T0 = lambda ks: ks[0] == TENSOR  # noqa: E731
T0_NUM = lambda ks: ks[0] == TENSOR and all(k in (TENSOR, REAL, NONDIFF) for k in ks[1:])  # noqa: E731


def setitem_t(obj, key, v):
    obj[key] = v
    return obj


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


ns = dict(setitem_t=setitem_t, zero_at=zero_at, ub=unbroadcast, torch=torch, in_range=in_range,
          write_back=write_back)
IP = dict(ns=ns, inplace=True, out=TENSOR, broadcast=False)

grad(ops.setitem_v, "obj, key, v", fwd="setitem_t(obj, key, v)", kinds=T0, obj="zero_at(dy, key)",
     v="ub(dy[key], v)", **IP)
grad(ops.setitem_v, "obj, key, v", fwd="setitem_t(obj, key, v)", kinds=lambda ks: ks[0] in (LIST, DICT, OBJECT),
     out=lambda ks: ks[0], ns=ns, effect=True, broadcast=False, maybe_none=True,
     v="write_back(ctx, obj, key, v)")

M = torch.Tensor
grad(M.add_, "self, other, *, alpha=1", fwd="self.add_(other, alpha=alpha)", kinds=T0_NUM,
     self="dy", other="ub(dy * alpha, other)", **IP)
grad(M.sub_, "self, other, *, alpha=1", fwd="self.sub_(other, alpha=alpha)", kinds=T0_NUM,
     self="dy", other="ub(-dy * alpha, other)", **IP)
grad(M.mul_, "self, other", fwd="self.mul_(other)", kinds=T0_NUM,
     self="ub(dy * other, self)", other="ub(dy * self, other)", **IP)
grad(M.div_, "self, other", fwd="self.div_(other)", kinds=T0_NUM,
     self="ub(dy / other, self)", other="ub(-dy * y / other, other)", **IP)
grad(M.pow_, "self, exponent", fwd="self.pow_(exponent)", kinds=T0_NUM,
     self="dy * exponent * self ** (exponent - 1)", exponent="ub(dy * y * torch.log(self), exponent)", **IP)
grad(M.neg_, "self", fwd="self.neg_()", kinds=T0, self="-dy", **IP)
grad(M.sin_, "self", fwd="self.sin_()", kinds=T0, self="dy * torch.cos(self)", **IP)
grad(M.cos_, "self", fwd="self.cos_()", kinds=T0, self="-dy * torch.sin(self)", **IP)
grad(M.exp_, "self", fwd="self.exp_()", kinds=T0, self="dy * y", **IP)
grad(M.log_, "self", fwd="self.log_()", kinds=T0, self="dy / self", **IP)
grad(M.sqrt_, "self", fwd="self.sqrt_()", kinds=T0, self="dy / (2 * y)", **IP)
grad(M.tanh_, "self", fwd="self.tanh_()", kinds=T0, self="dy * (1 - y * y)", **IP)
grad(M.sigmoid_, "self", fwd="self.sigmoid_()", kinds=T0, self="dy * y * (1 - y)", **IP)
grad(M.relu_, "self", fwd="self.relu_()", kinds=T0, self="dy * (y > 0)", **IP)
grad(M.clamp_, "self, min=None, max=None", fwd="self.clamp_(min, max)", kinds=T0,
     self="dy * in_range(self, min, max)", **IP)
grad(M.copy_, "self, src", fwd="self.copy_(src)", kinds=T0, src="ub(dy, src)", **IP)
grad(M.zero_, "self", fwd="self.zero_()", kinds=T0, **IP)
grad(M.fill_, "self, value", fwd="self.fill_(value)", kinds=T0, value="ub(dy.sum(), value)", **IP)

# augmented assignment on a tensor is in place
grad(operator.iadd, "a, b", fwd="operator.iadd(a, b)", kinds=T0_NUM, a="dy", b="ub(dy, b)",
     **dict(IP, ns=dict(ns, operator=operator)))
grad(operator.isub, "a, b", fwd="operator.isub(a, b)", kinds=T0_NUM, a="dy", b="ub(-dy, b)",
     **dict(IP, ns=dict(ns, operator=operator)))
grad(operator.imul, "a, b", fwd="operator.imul(a, b)", kinds=T0_NUM, a="ub(dy * b, a)", b="ub(dy * a, b)",
     **dict(IP, ns=dict(ns, operator=operator)))
grad(operator.itruediv, "a, b", fwd="operator.itruediv(a, b)", kinds=T0_NUM, a="ub(dy / b, a)",
     b="ub(-dy * y / b, b)", **dict(IP, ns=dict(ns, operator=operator)))
# floor division and remainder are piecewise constant in ``a // b`` (zero gradient), as in torch
grad(operator.ifloordiv, "a, b", fwd="operator.ifloordiv(a, b)", kinds=T0_NUM,
     **dict(IP, ns=dict(ns, operator=operator)))
