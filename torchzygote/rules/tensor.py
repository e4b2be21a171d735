"""Rules for torch: functions, ``Tensor`` methods, ``torch.nn.functional``,
``torch.linalg`` and the Python operators on tensors.

Each rule is registered for the function (``torch.sum``) and, where torch has
one, the method (``torch.Tensor.sum``, first parameter ``self``). Pullbacks
call torch ops directly; long formulas live in tensor_backward.py,
tensor_shape_backward.py and nn_backward.py. Gradients of
integer and boolean tensors are ``None``; dtype and device follow the input.
Ops without a rule go through ``rules/fallback.py`` (local torch autograd).
"""
from __future__ import annotations

import math
import operator
import re

import torch
import torch.nn.functional as F

from ..values.algebra import accum, unbroadcast
from . import nn_backward, tensor_backward, tensor_shape_backward, tensor_tangent
from .container_backs import index_back
from ..errors import GradientError
from .registry import ANY, NONDIFF, OBJECT, REAL, TENSOR, base, grad, nondiff, register_dispatch, some


# ====================================================================== registration

NS = {k: v for m in (tensor_backward, tensor_shape_backward, nn_backward, tensor_tangent) for k, v in vars(m).items()
      if callable(v) and not k.startswith("__")}
NS.update(tanh_backward=torch.ops.aten.tanh_backward, sigmoid_backward=torch.ops.aten.sigmoid_backward)
NS.update(torch=torch, F=F, math=math, ub=unbroadcast, index_back=index_back, accum=accum,
          LN2=math.log(2.0), LN10=math.log(10.0), TWO_OVER_SQRT_PI=tensor_backward._TWO_OVER_SQRT_PI)

_WORD = re.compile(r"\binput\b")
NATIVE = []  # the callables with native rules registered here


def _opts(kw):
    o = dict(ns=NS, kinds=ANY, out=TENSOR, omit_defaults=True)
    o.update(kw)
    return o


def rule(fns, sig, **kw):
    """The rule for each of ``fns`` (torch's: called leaving defaults out, see ``grad``)."""
    for f in fns:
        if f is None:
            continue
        grad(f, sig, **_opts(kw))
        NATIVE.append(f)


_DWORD = re.compile(r"\b(d?)input\b")   # ``input`` and its tangent ``dinput`` in tangent terms


def _method_kw(kw):
    out = {}
    for k, v in kw.items():
        k2 = "self" if k == "input" else k
        out[k2] = _WORD.sub("self", v) if isinstance(v, str) and k not in ("out",) else v
    if "jvp" in kw:
        out["jvp"] = {("self" if k == "input" else k): _DWORD.sub(r"\1self", v) for k, v in kw["jvp"].items()}
    return out


def tm(name, sig, *, method=True, function=True, msig=None, extra=(), **kw):
    """A rule for ``torch.name`` (and ``extra`` callables) and the method ``Tensor.name``."""
    fns = []
    if function and hasattr(torch, name):
        fns.append(getattr(torch, name))
    fns += list(extra)
    rule(fns, sig, **kw)
    if method and hasattr(torch.Tensor, name):
        rule([getattr(torch.Tensor, name)], _WORD.sub("self", msig or sig), **_method_kw(kw))


EW = dict(broadcast=True)
VIEW = dict(view=True)                 # the result may share memory with the first argument
# a tensor result has the broadcast shape of the tensor arguments, and is floating-point or complex where they are
ELEMENTWISE = dict(elementwise=True, keeps_float=True)
NB = dict(broadcast=False)
LIN = dict(linear=True)                # linear in its one differentiable parameter: the tangent is the same call


def by_weights(pullback: str, p: str = "input") -> dict:
    """The tangent term of a reduction over ``dim`` from its own pullback: the pullback of ones holds
    each entry's weight in its slice's result (``tensor_tangent.reduce_jvp``)."""
    w = re.sub(r"\bdy\b", "torch.ones_like(y)", pullback)
    return dict(jvp={p: f"reduce_jvp({w}, d{p}, {p}, dim, keepdim, y)"})
MN = dict(maybe_none=True)
TUPLE_ARG = ("P|PT|PR", ...)


# ---------------------------------------------------------------- elementwise, one argument
UNARY = dict([
    ("sin", "dy * torch.cos(input).conj()"), ("cos", "-dy * torch.sin(input).conj()"),
    ("tan", "dy * (1 + y * y).conj()"), ("exp", "dy * y.conj()"), ("expm1", "dy * (y + 1).conj()"),
    ("exp2", "dy * (y * LN2).conj()"),
    ("log", "dy / input.conj()"), ("log2", "dy / (input.conj() * LN2)"), ("log10", "dy / (input.conj() * LN10)"),
    ("log1p", "dy / (1 + input.conj())"), ("sqrt", "dy / (2 * y.conj())"), ("rsqrt", "-0.5 * dy * (y ** 3).conj()"),
    ("tanh", "tanh_backward(dy, y)"), ("sigmoid", "sigmoid_backward(dy, y)"),  # torch's fused kernels
    ("sinh", "dy * torch.cosh(input).conj()"), ("cosh", "dy * torch.sinh(input).conj()"),
    # complex inputs: torch's convention is dy * conj(f'(z))
    ("asin", "dy * torch.rsqrt(1 - input * input).conj()"),
    ("acos", "-dy * torch.rsqrt(1 - input * input).conj()"),
    ("atan", "dy / (1 + input * input).conj()"), ("asinh", "dy * torch.rsqrt(input * input + 1).conj()"),
    # (acosh' is 1 / (sqrt(z - 1) sqrt(z + 1)): rsqrt(z * z - 1) is its negative where Re z < 0)
    ("acosh", "dy * (torch.rsqrt(input - 1) * torch.rsqrt(input + 1)).conj()"),
    ("atanh", "dy / (1 - input * input).conj()"),
    ("erf", "dy * TWO_OVER_SQRT_PI * torch.exp(-input * input)"),
    ("erfc", "-dy * TWO_OVER_SQRT_PI * torch.exp(-input * input)"),
    ("reciprocal", "-dy * (y * y).conj()"), ("square", "2 * dy * input.conj()"),
    ("neg", "-dy"), ("negative", "-dy"), ("positive", "dy"),
    ("abs", "real_part(dy) * torch.sgn(input)"), ("absolute", "real_part(dy) * torch.sgn(input)"),
    ("relu", "relu_back(dy, y)"), ("conj", "dy.conj()"), ("conj_physical", "dy.conj()"),
    ("deg2rad", "dy * (math.pi / 180)"), ("rad2deg", "dy * (180 / math.pi)"),
])   # (the in-place methods' pullbacks too: rules/inplace.py)
# the same functions elsewhere in torch: one rule each
_TWINS = {"tanh": [F.tanh], "sigmoid": [F.sigmoid, torch.special.expit]}
for _name, _expr in UNARY.items():
    # (abs is not holomorphic: its own term; conj is linear over the reals)
    _t = dict(jvp={"input": "abs_jvp(dinput, input)"}) if _name in ("abs", "absolute") else \
        LIN if _name in ("conj", "conj_physical") else {}
    tm(_name, "input", input=_expr, extra=_TWINS.get(_name, ()), **_t, **NB, **ELEMENTWISE)
tm("clone", "input, *, memory_format=None", input="dy", **NB, **ELEMENTWISE)
tm("contiguous", "input, memory_format=None", function=False, input="dy", **NB, **ELEMENTWISE)
tm("sgn", "input", input="vjp(torch.sgn, (input,), dy, 0) if input.is_complex() else dy * 0",
   jvp={"input": "sgn_jvp(dinput, input, y)"}, **NB, **ELEMENTWISE)
for _name in ("sign", "floor", "ceil", "round", "trunc", "frac", "signbit", "isnan", "isinf", "isfinite",
              "argmax", "argmin", "argsort", "eq", "ne", "lt", "le", "gt", "ge", "greater", "less",
              "logical_and", "logical_or", "logical_not", "logical_xor", "isclose", "allclose", "equal",
              "nonzero", "count_nonzero", "bucketize", "searchsorted", "bincount", "histc", "unique",
              "zeros_like", "ones_like", "empty_like", "rand_like", "randn_like", "randint_like", "full_like",
              "is_floating_point", "is_complex", "is_tensor", "numel", "result_type", "broadcast_shapes",
              "any", "all", "floor_divide", "bitwise_and", "bitwise_or", "bitwise_not"):
    for _f in (getattr(torch, _name, None), getattr(torch.Tensor, _name, None)):
        if _f is not None:
            nondiff(_f)
# frac has a gradient of 1: a rule overrides the nondiff mark where both exist
tm("frac", "input", input="dy", **NB, **ELEMENTWISE)
nondiff(torch.zeros, torch.ones, torch.empty, torch.arange, torch.linspace, torch.logspace,
        torch.eye, torch.randn, torch.rand, torch.randint, torch.randperm, torch.manual_seed, torch.normal,
        torch.tril_indices, torch.triu_indices, torch.Size, torch.get_default_dtype, torch.is_grad_enabled,
        torch.Tensor.size, torch.Tensor.dim, torch.Tensor.numel, torch.Tensor.nelement, torch.Tensor.ndimension,
        torch.Tensor.is_contiguous, torch.Tensor.stride, torch.Tensor.data_ptr, torch.Tensor.element_size,
        torch.Tensor.tolist, torch.Tensor.long, torch.Tensor.int, torch.Tensor.bool, torch.Tensor.byte,
        torch.Tensor.short, torch.Tensor.char, torch.Tensor.numpy,
        torch.Tensor.get_device, torch.Tensor.is_floating_point, torch.Tensor.requires_grad_,
        torch.Tensor.fill_, torch.Tensor.zero_, torch.Tensor.normal_, torch.Tensor.uniform_, torch.no_grad,
        torch.enable_grad, torch.device, torch.finfo, torch.iinfo,
        torch.nn.Parameter)   # (``nn.Parameter(w)`` is a new leaf, as in torch: no gradient reaches ``w``)
nondiff(torch.Tensor.new_zeros, torch.Tensor.new_ones, torch.Tensor.new_empty, torch.Tensor.new_full,
        torch.Tensor.new_tensor, out=TENSOR)   # (constants whose kind callers specialise on)
# creation functions (torch.zeros, arange, randn...) are nondiff, marked above; the *_like
# ones and shape queries are grad-less rules: their results keep a known kind
for _f in (torch.zeros_like, torch.ones_like, torch.empty_like, torch.randn_like, torch.rand_like):
    grad(_f, "input, *, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None",
         ns=NS, kinds=ANY, omit_defaults=True, out=TENSOR)
# the fill value reaches every element: its gradient is their sum (a number for a number)
_FILL = dict(ns=NS, kinds=ANY, omit_defaults=True, out=TENSOR, fill_value="ub(dy.sum(), fill_value)",
             jvp={"fill_value": "fill_jvp(dfill_value, y)"})
grad(torch.full_like, "input, fill_value, *, dtype=None, layout=None, device=None, requires_grad=False, "
     "memory_format=None", **_FILL)
grad(torch.full, "size, fill_value, *, dtype=None, layout=None, device=None, pin_memory=False, "
     "requires_grad=False", **_FILL)
grad(torch.Tensor.new_full, "self, size, fill_value, *, dtype=None, device=None, requires_grad=False, "
     "layout=None, pin_memory=False", **_FILL)
grad(torch.Tensor.size, "self, dim=None", ns=NS, kinds=ANY, omit_defaults=True, out=OBJECT)
grad(torch.Tensor.dim, "self", ns=NS, kinds=ANY, omit_defaults=True, out=NONDIFF)
grad(torch.Tensor.numel, "self", ns=NS, kinds=ANY, omit_defaults=True, out=NONDIFF)
grad(torch.Tensor.detach, "self", ns=NS, kinds=ANY, omit_defaults=True, out=TENSOR, **VIEW)
grad(torch.detach, "input", ns=NS, kinds=ANY, omit_defaults=True, out=TENSOR, **VIEW)
for _name in ("argmax", "argmin"):
    tm(_name, "input, dim=None, keepdim=False", out=TENSOR)
tm("argsort", "input, dim=-1, descending=False, *, stable=False", out=TENSOR)

# ---------------------------------------------------------------- activations (torch, F)
rule([F.relu], "input, inplace=False", input="relu_back(dy, y)", **NB, **ELEMENTWISE)
rule([tensor_backward.relu_back], "g, out", g="relu_back(dy, out)", **LIN, **NB)
rule([F.relu6], "input, inplace=False", input="dy * ((input > 0) & (input < 6))", **NB, **ELEMENTWISE)
rule([F.gelu], "input, approximate='none'", input="gelu_back(dy, input, approximate)", **NB, **ELEMENTWISE)
rule([F.silu], "input, inplace=False", input="silu_back(dy, input)", **NB, **ELEMENTWISE)
rule([F.softplus], "input, beta=1.0, threshold=20.0", input="softplus_back(dy, input, beta, threshold)", **NB, **ELEMENTWISE)
rule([F.elu], "input, alpha=1.0, inplace=False", input="elu_back(dy, input, alpha, y)", **NB, **ELEMENTWISE)
rule([F.leaky_relu], "input, negative_slope=0.01, inplace=False",
     input="torch.where(input > 0, dy, dy * negative_slope)", **NB, **ELEMENTWISE)
rule([F.logsigmoid], "input", input="dy * torch.sigmoid(-input)", **NB, **ELEMENTWISE)
rule([torch.nn.functional.hardtanh], "input, min_val=-1.0, max_val=1.0, inplace=False",
     input="dy * ((input > min_val) & (input < max_val))", **NB, **ELEMENTWISE)

# ---------------------------------------------------------------- elementwise, several arguments
# (a bound or a branch may be a Python number, whose tangent is a number: as_t makes it a tensor)
_CLAMP_JVP = {"min": "clamp_bound_back(as_t(dmin, y), input, min, max, 'min')",
              "max": "clamp_bound_back(as_t(dmax, y), input, min, max, 'max')"}
tm("clamp", "input, min=None, max=None", input="clamp_back(dy, input, min, max)",
   min="clamp_bound_back(dy, input, min, max, 'min')", max="clamp_bound_back(dy, input, min, max, 'max')",
   jvp=_CLAMP_JVP, extra=[torch.clip], **EW, **MN, **ELEMENTWISE)
rule([torch.Tensor.clip], "self, min=None, max=None", self="clamp_back(dy, self, min, max)",
     min="clamp_bound_back(dy, self, min, max, 'min')", max="clamp_bound_back(dy, self, min, max, 'max')",
     jvp={k: _WORD.sub("self", v) for k, v in _CLAMP_JVP.items()}, **EW, **MN, **ELEMENTWISE)
tm("clamp_min", "input, min", input="clamp_back(dy, input, min, None)",
   min="clamp_bound_back(dy, input, min, None, 'min')",
   jvp={"min": "clamp_bound_back(as_t(dmin, y), input, min, None, 'min')"}, **EW, **MN, **ELEMENTWISE)
tm("clamp_max", "input, max", input="clamp_back(dy, input, None, max)",
   max="clamp_bound_back(dy, input, None, max, 'max')",
   jvp={"max": "clamp_bound_back(as_t(dmax, y), input, None, max, 'max')"}, **EW, **MN, **ELEMENTWISE)
tm("where", "condition, input, other", method=False, input="where_back(dy, condition, input, True)",
   other="where_back(dy, condition, other, False)",
   jvp={"input": "where_jvp(dinput, condition, True, y)", "other": "where_jvp(dother, condition, False, y)"},
   **EW, **MN, **ELEMENTWISE)
rule([torch.Tensor.where], "self, condition, other", self="where_back(dy, condition, self, True)",
     other="where_back(dy, condition, other, False)",
     jvp={"self": "where_jvp(dself, condition, True, y)", "other": "where_jvp(dother, condition, False, y)"},
     **EW, **MN, **ELEMENTWISE)
tm("maximum", "input, other", input="ext2_back(dy, input, other, True)",
   other="ext2_back(dy, other, input, True)", extra=[torch.fmax], **EW, **MN, **ELEMENTWISE)
tm("minimum", "input, other", input="ext2_back(dy, input, other, False)",
   other="ext2_back(dy, other, input, False)", extra=[torch.fmin], **EW, **MN, **ELEMENTWISE)
tm("pow", "input, exponent", input="pow_base_back(dy, input, exponent)",
   exponent="pow_exp_back(dy, input, exponent, y)", given_for_floats="input", **EW, **MN, **ELEMENTWISE)
tm("float_power", "input, exponent", input="pow_base_back(dy, input, exponent)",
   exponent="pow_exp_back(dy, input, exponent, y)", given_for_floats="input", **EW, **MN, **ELEMENTWISE)
tm("add", "input, other, *, alpha=1", input="dy", other="dy * _cn(alpha)", **EW, **ELEMENTWISE)
tm("sub", "input, other, *, alpha=1", input="dy", other="-dy * _cn(alpha)", extra=[torch.subtract], **EW, **ELEMENTWISE)
tm("rsub", "input, other, *, alpha=1", method=False, input="-dy * _cn(alpha)", other="dy", **EW, **ELEMENTWISE)
tm("mul", "input, other", input="mul_back(dy, other)", other="mul_back(dy, input)", extra=[torch.multiply], **EW, **ELEMENTWISE)
tm("div", "input, other, *, rounding_mode=None", input="div_back_a(dy, input, other, rounding_mode)",
   other="div_back_b(dy, input, other, y, rounding_mode)", extra=[torch.divide, torch.true_divide], **EW, **MN, **ELEMENTWISE)
tm("atan2", "input, other", input="dy * other / (input * input + other * other)",
   other="-dy * input / (input * input + other * other)", extra=[torch.arctan2], **EW, **ELEMENTWISE)
tm("remainder", "input, other", input="dy", other="mod_other_back(dy, input, other)", **EW, **MN, **ELEMENTWISE)
tm("fmod", "input, other", input="dy", other="fmod_other_back(dy, input, other)", **EW, **MN, **ELEMENTWISE)
rule([torch.real], "input", input="real_back(dy, input)", **LIN, **NB, **VIEW)
tm("hypot", "input, other", input="dy * input / y", other="dy * other / y", **EW, **ELEMENTWISE)
tm("lerp", "input, end, weight", input="lerp_back(dy, input, end, weight, 0)",
   end="lerp_back(dy, input, end, weight, 1)", weight="lerp_back(dy, input, end, weight, 2)", **EW, **MN, **ELEMENTWISE)
tm("addmm", "input, mat1, mat2, *, beta=1, alpha=1", input="dy * _cn(beta)", mat1="_cn(alpha) * dy @ _H(mat2)",
   mat2="_cn(alpha) * _H(mat1) @ dy",
   jvp={"input": "to_shape(beta * dinput, y)", "mat1": "alpha * (dmat1 @ mat2)", "mat2": "alpha * (mat1 @ dmat2)"},
   **EW)
tm("masked_fill", "input, mask, value", input="dy.masked_fill(mask, 0)",
   value="masked_fill_value_back(dy, mask, value)", jvp={"value": "where_jvp(dvalue, mask, True, y)"},
   **EW, **MN, **ELEMENTWISE)
tm("xlogy", "input, other", input="dy * torch.where(input == 0, torch.zeros_like(y), torch.log(other))",
   other="dy * input / other", **EW, **ELEMENTWISE)

# ---------------------------------------------------------------- operators on tensors
_TK = some("T")   # a tensor among the operands


for _op, _sym in ((operator.pow, "**"), (operator.ipow, "**")):
    grad(_op, "a, b", fwd=f"a {_sym} b", kinds=_TK, ns=NS, out=TENSOR, maybe_none=True, elementwise=True,
         keeps_float=True, given_for_floats="a", a="pow_base_back(dy, a, b)", b="pow_exp_back(dy, a, b, y)")
for _op, _sym in ((operator.matmul, "@"), (operator.imatmul, "@")):
    grad(_op, "a, b", fwd=f"a {_sym} b", kinds=_TK, ns=NS, out=TENSOR, broadcast=False, maybe_none=True,
         keeps_float=True, given_for_floats="a, b", a="matmul_back(dy, a, b, 0)", b="matmul_back(dy, a, b, 1)",
         jvp={"a": "da @ b", "b": "a @ db"})
    NATIVE.append(_op)
# augmented assignment with a number on the left and a tensor on the right makes a new tensor, as
# Python does (``s = 0.0; s += t``). With a tensor on the left it writes into that tensor, which
# other names, lists and views may hold: rules/inplace.py, whose guards see them (evaluating it out
# of place gave those holders the old values: silently wrong results and gradients)
_NUMBER_FIRST = ("R|N", "T")
_IN_PLACE = [(operator.iadd, "+", "dy", "dy"), (operator.isub, "-", "dy", "-dy"),
             (operator.imul, "*", "mul_back(dy, b)", "mul_back(dy, a)"),
             (operator.itruediv, "/", "div_back_a(dy, a, b)", "div_back_b(dy, a, b, y)")]
for _op, _sym, _da, _db in _IN_PLACE:
    grad(_op, "a, b", fwd=f"a {_sym} b", kinds=_NUMBER_FIRST, ns=NS, out=TENSOR, elementwise=True, keeps_float=True,
         a=_da, b=_db)
    NATIVE.append(_op)
NATIVE += [operator.add, operator.sub, operator.mul, operator.truediv, operator.neg, operator.pow, operator.ipow]
grad(float, "x", x="item_back(dy, x)", kinds=("T", ...), ns=NS, out=REAL, broadcast=False,
     maybe_none=True, **LIN)
grad(torch.Tensor.item, "self", self="item_back(dy, self)", kinds=ANY, omit_defaults=True, ns=NS, out=REAL, broadcast=False,
     maybe_none=True, **LIN)
NATIVE.append(torch.Tensor.item)

# ---------------------------------------------------------------- conversions
# torch's first overload, so a positional dtype, device or tensor lands in ``device`` and is passed
# on by position (``call_rule``); keyword-only parameters must not follow a vararg (the binder
# fills parameters from positional arguments in order)
rule([torch.Tensor.to], "self, device=None, dtype=None, non_blocking=False, copy=False, *, memory_format=None",
     self="to_back(dy, self, y)", **LIN, **NB, **MN)
for _name in ("float", "double", "half", "bfloat16", "cpu", "cuda", "type_as"):
    _sig = "self, other" if _name == "type_as" else "self, memory_format=None" if _name in (
        "float", "double", "half", "bfloat16") else "self, device=None, non_blocking=False, memory_format=None" \
        if _name == "cuda" else "self, memory_format=None"
    rule([getattr(torch.Tensor, _name)], _sig, self="to_back(dy, self, y)", **LIN, **NB, **MN)
# (torch.tensor takes its options by keyword only: the closure form must pass them so)
rule([torch.tensor], "data, *, dtype=None, device=None, requires_grad=False, pin_memory=False",
     data="tensor_back(ctx, data, dy)", **LIN, **NB, **MN)
rule([torch.as_tensor], "data, dtype=None, device=None", data="tensor_back(ctx, data, dy)", **LIN, **NB, **MN)

# ---------------------------------------------------------------- reductions
# (a dtype argument is no number: the analysis does not take the result for floating-point then)
tm("sum", "input, dim=None, keepdim=False, *, dtype=None", input="sum_back(dy, input, dim, keepdim)",
   given_for_floats="input", keeps_float=True, **LIN, **NB, **MN)
_NANSUM = "sum_back(dy, input, dim, keepdim) * ~torch.isnan(input)"
tm("nansum", "input, dim=None, keepdim=False, *, dtype=None", input=_NANSUM, **by_weights(_NANSUM), **NB)
tm("mean", "input, dim=None, keepdim=False, *, dtype=None", input="mean_back(dy, input, dim, keepdim)",
   given_for_floats="input", keeps_float=True, **LIN, **NB, **MN)
tm("prod", "input, dim=None, keepdim=False, *, dtype=None", input="prod_back(dy, input, dim, keepdim)",
   **by_weights("prod_back(dy, input, dim, keepdim)"), **NB, **MN)
_EXT_OUT = lambda ks: TENSOR if len(ks) == 1 or ks[1] == TENSOR else OBJECT  # noqa: E731
for _name, _larger in (("max", True), ("min", False)):
    tm(_name, "input, dim=None, keepdim=False", out=_EXT_OUT,
       input=f"extreme_back(dy, input, dim, keepdim, y) if not isinstance(dim, torch.Tensor) else "
             f"ext2_back(dy, input, dim, {_larger})",
       dim=f"extreme_other_back(dy, input, dim, y, {_larger})",
       jvp={"input": f"extreme_jvp(dinput, input, dim, keepdim, y, {_larger})",
            "dim": f"to_shape(other_extreme_jvp(ddim, dim, input, {_larger}), y)"}, **EW, **MN)
for _name in ("amax", "amin"):
    tm(_name, "input, dim=(), keepdim=False", input="amax_back(dy, input, dim, keepdim, y)",
       **by_weights("amax_back(dy, input, dim, keepdim, y)"), **NB, **MN)
tm("norm", "input, p='fro', dim=None, keepdim=False, out=None, dtype=None",
   msig="input, p='fro', dim=None, keepdim=False, dtype=None", input="norm_back(dy, input, p, dim, keepdim, y)",
   **by_weights("norm_back(dy, input, p, dim, keepdim, y)"), **NB, **MN)
rule([torch.linalg.vector_norm], "x, ord=2, dim=None, keepdim=False, *, dtype=None, out=None",
     x="norm_back(dy, x, ord, dim, keepdim, y)", **by_weights("norm_back(dy, x, ord, dim, keepdim, y)", "x"),
     **NB, **MN)
rule([torch.linalg.norm], "A, ord=None, dim=None, keepdim=False, *, out=None, dtype=None",
     A="linalg_norm_back(dy, A, ord, dim, keepdim, y)",
     **by_weights("linalg_norm_back(dy, A, ord, dim, keepdim, y)", "A"), **NB, **MN)
tm("logsumexp", "input, dim, keepdim=False", input="logsumexp_back(dy, input, dim, keepdim, y)",
   **by_weights("logsumexp_back(dy, input, dim, keepdim, y)"), **NB, **MN)
tm("cumsum", "input, dim, *, dtype=None", input="cumsum_back(dy, input, dim)", **LIN, **NB, **MN)
tm("cumprod", "input, dim, *, dtype=None", input="cumprod_back(dy, input, dim, y)",
   jvp={"input": "cumprod_jvp(dinput, input, dim, y)"}, **NB, **MN)
tm("var", "input, dim=None, unbiased=None, keepdim=False, *, correction=None",
   input="var_back(dy, input, dim, unbiased, keepdim, correction)",
   **by_weights("var_back(dy, input, dim, unbiased, keepdim, correction)"), **NB, **MN)
tm("std", "input, dim=None, unbiased=None, keepdim=False, *, correction=None",
   input="std_back(dy, input, dim, unbiased, keepdim, correction, y)",
   **by_weights("std_back(dy, input, dim, unbiased, keepdim, correction, y)"), **NB, **MN)
tm("trace", "input", input="trace_back(dy, input)", **LIN, **NB)
# (torch.sort takes ``stable`` only with ``dim`` and ``descending`` by keyword)
tm("sort", "input, dim=-1, descending=False, *, stable=False", out=OBJECT,
   fwd="torch.sort(input, dim=dim, descending=descending, stable=stable)", input="sort_back(dy, input, dim, y)",
   jvp={"input": "select_jvp(dinput, dim, y)"}, **NB, **MN)
tm("topk", "input, k, dim=-1, largest=True, sorted=True", out=OBJECT,
   input="topk_back(dy, input, dim, None, y)", jvp={"input": "select_jvp(dinput, dim, y)"}, **NB, **MN)

# ---------------------------------------------------------------- products
# (bilinear: the product of one factor's tangent with the other factor, for each factor)
tm("matmul", "input, other", input="matmul_back(dy, input, other, 0)", other="matmul_back(dy, input, other, 1)",
   jvp={"input": "torch.matmul(dinput, other)", "other": "torch.matmul(input, dother)"},
   given_for_floats="input, other", keeps_float=True, **NB, **MN)
tm("mm", "input, mat2", input="dy @ _H(mat2)", mat2="_H(input) @ dy",
   jvp={"input": "torch.mm(dinput, mat2)", "mat2": "torch.mm(input, dmat2)"}, **NB)
tm("bmm", "input, mat2", input="dy @ _H(mat2)", mat2="_H(input) @ dy",
   jvp={"input": "torch.bmm(dinput, mat2)", "mat2": "torch.bmm(input, dmat2)"}, **NB)
tm("mv", "input, vec", input="mv_back(dy, input, vec, 0)", vec="mv_back(dy, input, vec, 1)",
   jvp={"input": "torch.mv(dinput, vec)", "vec": "torch.mv(input, dvec)"}, **NB)
tm("dot", "input, other", input="dy * other.conj()", other="dy * input.conj()",
   jvp={"input": "torch.dot(dinput, other)", "other": "torch.dot(input, dother)"}, **NB)
tm("outer", "input, vec2", input="dy @ _c(vec2)", vec2="dy.mT @ _c(input)",
   jvp={"input": "torch.outer(dinput, vec2)", "vec2": "torch.outer(input, dvec2)"}, extra=[torch.ger], **NB)
rule([torch.einsum], "equation, *operands", operands="einsum_backs(ctx, dy, equation, operands)",
     jvp={"operands": "einsum_jvp(equation, operands, doperands)"}, **NB, **MN)

# ---------------------------------------------------------------- linalg
rule([torch.linalg.solve], "A, B, *, left=True, out=None", A="solve_back(dy, A, B, y, left, 0)",
     B="solve_back(dy, A, B, y, left, 1)",
     jvp={"A": "solve_jvp_a(A, dA, y, left)", "B": "torch.linalg.solve(A, dB, left=left)"}, **NB)
rule([torch.linalg.inv, torch.inverse, torch.Tensor.inverse], "A", A="inv_back(dy, y)", jvp={"A": "-(y @ dA @ y)"},
     **NB)
rule([torch.linalg.det, torch.det, torch.Tensor.det], "A", A="det_back(dy, A, y)", jvp={"A": "det_jvp(dA, A, y)"},
     **NB)
rule([torch.linalg.cholesky], "A, *, upper=False, out=None", A="cholesky_back(dy, y, upper)",
     jvp={"A": "cholesky_jvp(dA, y, upper)"}, **NB)

# ---------------------------------------------------------------- shapes
tm("reshape", "input, shape", msig="input, *shape", input="reshape_back(dy, input)", **LIN, **NB, **MN, **VIEW)
rule([torch.Tensor.view], "self, *shape", self="reshape_back(dy, self)", **LIN, **NB, **MN, **VIEW)
rule([torch.Tensor.view_as, torch.Tensor.reshape_as], "self, other", self="reshape_back(dy, self)", **LIN, **NB, **MN,
     **VIEW)
tm("squeeze", "input, dim=None", input="reshape_back(dy, input)", **LIN, **NB, **MN, **VIEW)
tm("unsqueeze", "input, dim", input="reshape_back(dy, input)", **LIN, **NB, **MN, **VIEW)
tm("flatten", "input, start_dim=0, end_dim=-1", input="reshape_back(dy, input)", **LIN, **NB, **MN, **VIEW)
tm("ravel", "input", input="reshape_back(dy, input)", **LIN, **NB, **MN)
tm("unflatten", "input, dim, sizes", input="reshape_back(dy, input)", **LIN, **NB, **MN, **VIEW)
for _n in ("atleast_1d", "atleast_2d", "atleast_3d"):
    tm(_n, "input", method=False, input="atleast_back(ctx, dy, input)",
       out=lambda ks: TENSOR if ks and base(ks[0]) == TENSOR else OBJECT, **LIN, **NB, **MN)
tm("transpose", "input, dim0, dim1", input="dy.transpose(dim0, dim1)", extra=[torch.swapaxes, torch.swapdims],
   **LIN, **NB, **VIEW)
rule([torch.Tensor.swapaxes, torch.Tensor.swapdims], "self, dim0, dim1", self="dy.transpose(dim0, dim1)",
     **LIN, **NB, **VIEW)
tm("t", "input", input="dy.t()", **LIN, **NB, **VIEW)
tm("adjoint", "input", input="dy.mH", **LIN, **NB)
tm("permute", "input, dims", method=False, input="permute_back(dy, dims)", **LIN, **NB, **VIEW)
rule([torch.Tensor.permute], "self, *dims", self="permute_back(dy, dims)", **LIN, **NB, **VIEW)
tm("movedim", "input, source, destination", input="torch.movedim(dy, destination, source)", **LIN, **NB, **VIEW)
rule([torch.Tensor.expand], "self, *sizes", self="expand_back(dy, self)", **LIN, **NB, **MN, **VIEW)
rule([torch.Tensor.expand_as], "self, other", self="expand_back(dy, self)", **LIN, **NB, **MN, **VIEW)
tm("broadcast_to", "input, size", input="expand_back(dy, input)", **LIN, **NB, **MN)
tm("flip", "input, dims", method=False, input="flip_back(dy, dims)", **LIN, **NB)
rule([torch.Tensor.flip], "self, *dims", self="flip_back(dy, dims)", **LIN, **NB)
tm("roll", "input, shifts, dims=None", input="roll_back(dy, shifts, dims)", **LIN, **NB)
tm("tril", "input, diagonal=0", input="dy.tril(diagonal)", **LIN, **NB)
tm("triu", "input, diagonal=0", input="dy.triu(diagonal)", **LIN, **NB)
tm("diagonal", "input, offset=0, dim1=0, dim2=1", input="diagonal_back(dy, input, offset, dim1, dim2)",
   **LIN, **NB, **VIEW)
tm("diag", "input, diagonal=0", input="diag_back(dy, input, diagonal)", **LIN, **NB)
tm("diag_embed", "input, offset=0, dim1=-2, dim2=-1", input="dy.diagonal(offset, dim1, dim2)", **LIN, **NB)
tm("narrow", "input, dim, start, length",
   input="torch.zeros_like(input).narrow_copy(dim, 0, input.shape[dim]).index_add(dim, "
         "torch.arange(start % input.shape[dim], start % input.shape[dim] + length, device=input.device), "
         "dy)", **LIN, **NB, **VIEW)
# a tuple of tensors (list displays passed straight in are built as tuples) needs no context; the
# tangent joins the items' tangents (zeros of the result's dtype for items without one)
CAT_JVP = dict(jvp={"tensors": "torch.cat(seq_tz(dtensors, tensors, y), dim)"})
STACK_JVP = dict(jvp={"tensors": "torch.stack(seq_tz(dtensors, tensors, y), dim)"})
rule([torch.cat, torch.concat, torch.concatenate], "tensors, dim=0, *, out=None",
     tensors="cat_pieces(dy, tensors, dim)", kinds=TUPLE_ARG, **CAT_JVP, **NB)
rule([torch.stack], "tensors, dim=0, *, out=None", tensors="stack_pieces(dy, tensors, dim)", kinds=TUPLE_ARG,
     **STACK_JVP, **NB)
rule([torch.cat, torch.concat, torch.concatenate], "tensors, dim=0, *, out=None",
     tensors="cat_back(ctx, dy, tensors, dim)", reads_sequence=True, **CAT_JVP, **NB, **MN)
rule([torch.stack], "tensors, dim=0, *, out=None", tensors="stack_back(ctx, dy, tensors, dim)",
     reads_sequence=True, **STACK_JVP, **NB, **MN)
rule([torch.split, torch.Tensor.split], "tensor, split_size_or_sections, dim=0", out=OBJECT,
     tensor="pieces_back(dy, tensor, dim, y)", **LIN, **NB, **MN, **VIEW)
tm("chunk", "input, chunks, dim=0", out="PT", input="pieces_back(dy, input, dim, y)", **LIN, **NB, **MN, **VIEW)
tm("unbind", "input, dim=0", out="PT", input="unbind_back(dy, input, dim, y)", **LIN, **NB, **MN, **VIEW)
tm("gather", "input, dim, index, *, sparse_grad=False", input="gather_back(dy, input, dim, index)", **LIN, **NB)
tm("take_along_dim", "input, indices, dim=None", input="vjp(torch.take_along_dim, (input, indices, dim), dy, 0)",
   **LIN, **NB)
tm("index_select", "input, dim, index", input="index_select_back(dy, input, dim, index)", **LIN, **NB)

# torch.nn.init's fills (under torch.no_grad) set values that do not depend on the tensor's old
# ones: constants, in both modes (torch autograd instead passes a gradient through the write)
nondiff(*[f for n, f in vars(torch.nn.init).items() if n.endswith("_") and not n.startswith("_") and callable(f)])

# ---------------------------------------------------------------- torch.nn.functional
rule([F.linear], "input, weight, bias=None", input="linear_back(dy, input, weight, 0)",
     weight="linear_back(dy, input, weight, 1)", bias="bias_back(dy, bias)",
     jvp={"input": "F.linear(dinput, weight)", "weight": "F.linear(input, dweight)", "bias": "to_shape(dbias, y)"},
     keeps_float=True, **NB, **MN)
for _nd, _f in ((1, F.conv1d), (2, F.conv2d), (3, F.conv3d)):
    rule([_f], "input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1",
         input="conv_back(dy, input, weight, bias, stride, padding, dilation, groups, 0, needs)",
         weight="conv_back(dy, input, weight, bias, stride, padding, dilation, groups, 1, needs)",
         bias="conv_back(dy, input, weight, bias, stride, padding, dilation, groups, 2, needs)",
         jvp={"input": "conv_jvp(dinput, weight, stride, padding, dilation, groups)",
              "weight": "conv_jvp(input, dweight, stride, padding, dilation, groups)",
              "bias": "conv_bias_jvp(dbias, weight, y)"}, **NB, **MN)
_SOFTMAX_JVP = dict(jvp={"input": "softmax_jvp(dinput, y, dim, input, False)"})
_LOG_SOFTMAX_JVP = dict(jvp={"input": "softmax_jvp(dinput, y, dim, input, True)"})
rule([F.softmax], "input, dim=None, _stacklevel=3, dtype=None", input="softmax_back(dy, y, dim, input)",
     **_SOFTMAX_JVP, **NB, **MN)
rule([F.log_softmax], "input, dim=None, _stacklevel=3, dtype=None", input="log_softmax_back(dy, y, dim, input)",
     **_LOG_SOFTMAX_JVP, **NB, **MN)
tm("softmax", "input, dim, dtype=None", input="softmax_back(dy, y, dim, input)", **_SOFTMAX_JVP, **NB, **MN)
tm("log_softmax", "input, dim, dtype=None", input="log_softmax_back(dy, y, dim, input)", **_LOG_SOFTMAX_JVP,
   **NB, **MN)
rule([F.cross_entropy], "input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, "
     "reduction='mean', label_smoothing=0.0",
     input="cross_entropy_back(dy, input, target, weight, ignore_index, reduction, label_smoothing, reduce, "
           "size_average)",
     target="cross_entropy_target_back(dy, input, target, weight, reduction, label_smoothing, reduce, size_average)",
     jvp={"input": "ce_jvp(cross_entropy_back(torch.ones_like(y), input, target, weight, ignore_index, reduction, "
                   "label_smoothing, reduce, size_average), dinput, input, y)",
          "target": "ce_jvp(cross_entropy_target_back(torch.ones_like(y), input, target, weight, reduction, "
                    "label_smoothing, reduce, size_average), dtarget, input, y)"},
     **NB, **MN)
rule([F.mse_loss], "input, target, size_average=None, reduce=None, reduction='mean', weight=None",
     input="mse_back(dy, input, target, reduction, reduce, size_average, 0)",
     target="mse_back(dy, input, target, reduction, reduce, size_average, 1)",
     jvp={"input": "loss_jvp(mse_back(torch.ones_like(y), input, target, reduction, reduce, size_average, 0), "
                   "dinput, y)",
          "target": "loss_jvp(mse_back(torch.ones_like(y), input, target, reduction, reduce, size_average, 1), "
                    "dtarget, y)"}, **EW)
rule([F.layer_norm], "input, normalized_shape, weight=None, bias=None, eps=1e-05",
     input="layer_norm_back(dy, input, normalized_shape, weight, bias, eps, 0)",
     weight="layer_norm_back(dy, input, normalized_shape, weight, bias, eps, 1)",
     bias="layer_norm_back(dy, input, normalized_shape, weight, bias, eps, 2)",
     jvp={"input": "layer_norm_jvp(dinput, input, normalized_shape, weight, eps)",
          "weight": "ln_hat(input, normalized_shape, eps) * dweight", "bias": "to_shape(dbias, y)"}, **NB, **MN)
rule([F.dropout], "input, p=0.5, training=True, inplace=False", fwd="dropout_fwd(input, p, training)",
     input="dropout_back(dy, y, training, p)", jvp={"input": "dropout_back(dinput, y, training, p)"}, **NB)
rule([torch.dropout], "input, p, train", fwd="dropout_fwd(input, p, train)",
     input="dropout_back(dy, y, train, p)", jvp={"input": "dropout_back(dinput, y, train, p)"}, **NB)
rule([F.embedding], "input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, "
     "sparse=False", weight="embedding_back(dy, input, weight, padding_idx)",
     jvp={"weight": "embedding_jvp(input, dweight, padding_idx, max_norm)"}, **NB)


def _refuse_autograd_hook(ctx, args, kw, kwargs):
    """torch autograd's hooks and retained gradients act on torch's graph, which differentiated
    code does not build: the hook would never run (a wrong gradient, silently)."""
    raise GradientError(
        "Tensor.register_hook, register_post_accumulate_grad_hook and retain_grad act on torch "
        "autograd's graph, which torchzygote does not build: the hook would never run. Pass the value "
        "through tz.hook instead, y = tz.hook(fn, y), so its gradient goes through fn")


for _f in (torch.Tensor.register_hook, torch.Tensor.register_post_accumulate_grad_hook, torch.Tensor.retain_grad):
    register_dispatch(_f, _refuse_autograd_hook)
