"""Rules for Python numbers: operators, ``math``, ``cmath`` and numeric builtins.

Complex convention (Zygote's, and torch's): the gradient of a real output with
respect to ``z = x + iy`` is ``df/dx + i df/dy``; a holomorphic ``g`` pulls back
``dy`` as ``dy * conj(g'(z))``. ``abs(z)`` gives ``dy * z / abs(z)``.
"""
import cmath
import math
import operator
from fractions import Fraction

import numpy as np

from .. import frontend  # noqa: F401
from ..frontend import ops
from .numpy_tangent import np_t_abs
from .registry import ANY, COMPLEX, NONDIFF, REAL, grad, many, nondiff, some

real = (many("R|T|A|N"),)              # real numbers, tensors and arrays
cplx = some("C", among="R|C|N")        # a complex number among numbers
num = (many("R|N"),)                   # real numbers only


def _sign(x):
    if hasattr(x, "sgn"):   # tensors (complex ones too)
        return x.sgn()
    if hasattr(x, "dtype"):  # numpy scalars and arrays
        return np.sign(x)
    return (x > 0) - (x < 0)


def _re(dy):
    """The real part of a real result's ``dy`` (torch's convention: a real value's gradient is real),
    which a complex factor after it (``abs(z) * w``) made complex."""
    return dy.real


def _pow_da(dy, a, b):
    if b == 0:
        return dy * 0 * a
    return dy * b * a ** (b - 1)


def _pow_db(dy, a, y):
    if isinstance(a, (int, float, Fraction)) and a <= 0:
        # no real derivative in the exponent at a <= 0 (zero at 0, undefined below)
        return dy * 0.0 if a == 0 else dy * math.nan
    return dy * y * _log(a)


def _log(a):
    if hasattr(a, "log"):
        return a.log()
    if hasattr(a, "dtype"):   # NumPy arrays and scalars (pow(x, b) with an array x)
        return np.log(a)
    return math.log(a)


def _cpow_da(dy, a, b):
    return dy * (b * a ** (b - 1)).conjugate() if b != 0 else 0j * dy


def _cpow_db(dy, a, y):
    return dy * (y * cmath.log(a)).conjugate() if a != 0 else 0j * dy


def _conj(x):
    """Conjugate (complex tensors need it; for real numbers and tensors it is the identity)."""
    t = type(x)
    if t is float or t is int:
        return x
    return x.conj() if hasattr(x, "conj") else x.conjugate()


ns = dict(math=math, cmath=cmath, cos=math.cos, sin=math.sin, tan=math.tan, cosh=math.cosh,
          sinh=math.sinh, tanh=math.tanh, exp=math.exp, sqrt=math.sqrt, log=math.log, pi=math.pi,
          sign=_sign, re=_re, pow_da=_pow_da, pow_db=_pow_db, cpow_da=_cpow_da, cpow_db=_cpow_db, conj=_conj,
          copysign=math.copysign, floor=math.floor, erf=math.erf, lgamma=math.lgamma, gamma=math.gamma,
          abs=abs, ccos=cmath.cos, csin=cmath.sin, cexp=cmath.exp, csqrt=cmath.sqrt,
          ccosh=cmath.cosh, csinh=cmath.sinh, ctan=cmath.tan, ctanh=cmath.tanh)

# ---------------------------------------------------------------- operators
# (operator, its in-place form, pullbacks for reals (and tensors), for complex numbers).
# The in-place forms on tensors mutate and have their own rules (rules/inplace.py).
OPERATORS = [
    (operator.add, operator.iadd, dict(a="dy", b="dy"), dict(a="dy", b="dy")),
    (operator.sub, operator.isub, dict(a="dy", b="-dy"), dict(a="dy", b="-dy")),
    (operator.mul, operator.imul, dict(a="dy * b", b="dy * a"), dict(a="dy * conj(b)", b="dy * conj(a)")),
    (operator.truediv, operator.itruediv, dict(a="dy / b", b="-dy * y / b"),
     dict(a="dy / conj(b)", b="-dy * conj(y / b)")),
    (operator.pow, operator.ipow, dict(a="pow_da(dy, a, b)", b="pow_db(dy, a, y)"),
     dict(a="cpow_da(dy, a, b)", b="cpow_db(dy, a, y)")),
    (operator.mod, operator.imod, dict(a="dy", b="-dy * ((a - y) / b)"), None),
    (operator.floordiv, operator.ifloordiv, {}, None),
]
# tensors conjugate with their own method (no Python call when they are real)
TENSOR_GRADS = {operator.mul: dict(a="dy * b.conj()", b="dy * a.conj()"),
                operator.truediv: dict(a="dy / b.conj()", b="-dy * (y / b).conj()")}
# a tensor with a Python number: only the tensor may be complex (no conj of the number)
TENSOR_NUMBER = {operator.mul: (dict(a="dy * b", b="dy * a.conj()"), dict(a="dy * b.conj()", b="dy * a")),
         operator.truediv: (dict(a="dy / b", b="-dy * (y / b).conj()"), None)}
TN = ("T|A", "R|N")
NT = ("R|N", "T|A")
# powers of tensors and arrays have rules of their own (tensor.py, numpy_rules.py)
OWN_TENSOR_RULE = (operator.pow,)

for f, iop, real_grads, complex_grads in OPERATORS:
    # (a tensor result has the operands' broadcast shape; floor division, with no gradient, is not marked)
    o = dict(fwd=f"a {ops.OP_SYMBOLS[f]} b", ns=ns, elementwise=f is not operator.floordiv, keeps_float=True)
    for fn, k_real in ((f, real), (iop, num)):
        grad(fn, "a, b", kinds=num, **o, **real_grads)
        if f in TENSOR_NUMBER and k_real is real:
            tensor_number, number_tensor = TENSOR_NUMBER[f]
            grad(fn, "a, b", kinds=TN, **o, **tensor_number)
            if number_tensor is not None:
                grad(fn, "a, b", kinds=NT, **o, **number_tensor)
        if complex_grads is not None:
            grad(fn, "a, b", kinds=cplx, **o, **complex_grads)
            if k_real is real and f not in OWN_TENSOR_RULE:  # tensors may be complex: the conjugating form
                grad(fn, "a, b", kinds=real, **o, **TENSOR_GRADS.get(f, complex_grads))
        elif k_real is real:
            grad(fn, "a, b", kinds=real, **o, **real_grads)
# a number or a tensor (kind M, known only at run time), or a complex number with a tensor or array:
# the conjugating helper serves both
MIX = [some("M", among="R|C|T|A|N|M"), ("T|A", "C"), ("C", "T|A")]
for f, _, _, complex_grads in OPERATORS[:4]:
    grad(f, "a, b", fwd=f"a {ops.OP_SYMBOLS[f]} b", kinds=MIX, ns=ns, elementwise=True, keeps_float=True,
         **complex_grads)
grad(operator.neg, "a", fwd="-a", kinds=MIX, elementwise=True, keeps_float=True, a="-dy")
grad(operator.neg, "a", fwd="-a", kinds=[real, cplx], elementwise=True, keeps_float=True, a="-dy")
grad(operator.pos, "a", fwd="+a", kinds=[real, cplx], elementwise=True, keeps_float=True, a="dy")

nondiff(operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne, operator.is_,
        operator.is_not, operator.not_, operator.truth, operator.contains, operator.index,
        operator.and_, operator.or_, operator.xor, operator.invert, operator.lshift, operator.rshift,
        operator.iand, operator.ior, operator.ixor, operator.ilshift, operator.irshift)
grad(operator.not_, "a", fwd="not a", out=NONDIFF, kinds=ANY)
grad(operator.truth, "a", fwd="bool(a)", out=NONDIFF, kinds=ANY)
for f in (operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne, operator.is_,
          operator.is_not):
    grad(f, "a, b", fwd=f"a {ops.OP_SYMBOLS[f]} b", out=NONDIFF, kinds=ANY)

# ---------------------------------------------------------------- math (real)
R1 = dict(kinds=num, ns=ns, out=REAL)
grad(math.sin, "x", x="dy * cos(x)", **R1)
grad(math.cos, "x", x="-dy * sin(x)", **R1)
grad(math.tan, "x", x="dy * (1 + y * y)", **R1)
grad(math.asin, "x", x="dy / sqrt(1 - x * x)", **R1)
grad(math.acos, "x", x="-dy / sqrt(1 - x * x)", **R1)
grad(math.atan, "x", x="dy / (1 + x * x)", **R1)
grad(math.sinh, "x", x="dy * cosh(x)", **R1)
grad(math.cosh, "x", x="dy * sinh(x)", **R1)
grad(math.tanh, "x", x="dy * (1 - y * y)", **R1)
grad(math.asinh, "x", x="dy / sqrt(x * x + 1)", **R1)
grad(math.acosh, "x", x="dy / sqrt(x * x - 1)", **R1)
grad(math.atanh, "x", x="dy / (1 - x * x)", **R1)
grad(math.exp, "x", x="dy * y", **R1)
grad(math.expm1, "x", x="dy * (y + 1)", **R1)
grad(math.log, "x", x="dy / x", **R1)
grad(math.log, "x, base", x="dy / (x * log(base))", base="-dy * y / (base * log(base))", **R1)
grad(math.log2, "x", x="dy / (x * 0.6931471805599453)", **R1)
grad(math.log10, "x", x="dy / (x * 2.302585092994046)", **R1)
grad(math.log1p, "x", x="dy / (1 + x)", **R1)
grad(math.sqrt, "x", x="dy / (2 * y)", **R1)
grad(math.pow, "x, p", x="pow_da(dy, x, p)", p="pow_db(dy, x, y)", **R1)
grad(math.fabs, "x", x="dy * sign(x)", **R1)
grad(math.atan2, "a, b", a="dy * b / (a * a + b * b)", b="-dy * a / (a * a + b * b)", **R1)
grad(math.erf, "x", x="dy * 1.1283791670955126 * exp(-x * x)", **R1)
grad(math.erfc, "x", x="-dy * 1.1283791670955126 * exp(-x * x)", **R1)
grad(math.copysign, "x, s", x="dy * sign(x) * copysign(1.0, s)", **R1)
grad(math.fmod, "a, b", a="dy", b="-dy * math.trunc(a / b)", **R1)
grad(math.degrees, "x", x="dy * 57.29577951308232", **R1)
grad(math.radians, "x", x="dy * 0.017453292519943295", **R1)
grad(math.ldexp, "x, i", x="dy * 2.0 ** i", **R1)
if hasattr(math, "cbrt"):
    grad(math.cbrt, "x", x="dy / (3 * y * y)", **R1)
if hasattr(math, "exp2"):
    grad(math.exp2, "x", x="dy * y * 0.6931471805599453", **R1)
nondiff(math.floor, math.ceil, math.trunc, math.isfinite, math.isnan, math.isinf, math.isclose,
        math.factorial, math.comb, math.perm, math.gcd, math.isqrt, math.frexp, math.modf)

# ---------------------------------------------------------------- cmath (holomorphic: dy * conj(g'))
C1 = dict(kinds=(many("R|C|N"),), ns=ns, out=COMPLEX)
grad(cmath.sin, "z", z="dy * conj(ccos(z))", **C1)
grad(cmath.cos, "z", z="-dy * conj(csin(z))", **C1)
grad(cmath.tan, "z", z="dy * conj(1 + y * y)", **C1)
grad(cmath.sinh, "z", z="dy * conj(ccosh(z))", **C1)
grad(cmath.cosh, "z", z="dy * conj(csinh(z))", **C1)
grad(cmath.tanh, "z", z="dy * conj(1 - y * y)", **C1)
grad(cmath.exp, "z", z="dy * conj(y)", **C1)
grad(cmath.log, "z", z="dy / conj(z)", **C1)
grad(cmath.log10, "z", z="dy / conj(z * 2.302585092994046)", **C1)
grad(cmath.sqrt, "z", z="dy / conj(2 * y)", **C1)
grad(cmath.asin, "z", z="dy / conj(csqrt(1 - z * z))", **C1)
grad(cmath.acos, "z", z="-dy / conj(csqrt(1 - z * z))", **C1)
grad(cmath.atan, "z", z="dy / conj(1 + z * z)", **C1)
grad(cmath.asinh, "z", z="dy / conj(csqrt(z * z + 1))", **C1)
grad(cmath.acosh, "z", z="dy / conj(csqrt(z - 1) * csqrt(z + 1))", **C1)
grad(cmath.atanh, "z", z="dy / conj(1 - z * z)", **C1)
# (not holomorphic: their tangents are their own)
grad(cmath.phase, "z", z="re(dy) * 1j * z / (z * conj(z))", kinds=C1["kinds"], ns=ns, out=REAL,
     jvp=dict(z="(dz / z).imag"))
grad(cmath.rect, "r, phi", r="(dy * conj(cexp(1j * phi))).real", phi="(dy * conj(1j * y)).real",
     kinds=C1["kinds"], ns=ns, out=COMPLEX, jvp=dict(r="dr * cexp(1j * phi)", phi="1j * y * dphi"))
nondiff(cmath.isfinite, cmath.isnan, cmath.isinf, cmath.isclose, cmath.polar)

# ---------------------------------------------------------------- numeric builtins
def _abs_t(dx, x):
    """The tangent of ``abs(x)``: ``sign(x) dx`` for real values, ``Re(conj(z) dz) / |z|`` for complex
    ones (numbers, arrays, tensors; 0 at 0)."""
    if isinstance(x, (int, float)):
        return dx * _sign(x)
    if isinstance(x, complex):
        r = abs(x)
        return (x.conjugate() * dx).real / r if r else 0.0 * abs(dx)
    if hasattr(x, "is_complex"):   # a tensor
        if not x.is_complex():
            return dx * x.sign()
        r = x.abs()
        return (x.conj() * dx).real / r.masked_fill(r == 0, 1.0)
    return np_t_abs(dx, x)


ns.update(abs_t=_abs_t)
grad(abs, "x", x="re(dy) * sign(x)", kinds=real, ns=ns, out=lambda ks: ks[0], jvp=dict(x="abs_t(dx, x)"))
grad(abs, "x", x="re(dy) * x / abs(x)", kinds=cplx, ns=ns, out=REAL, jvp=dict(x="abs_t(dx, x)"))
grad(pow, "a, b", fwd="a ** b", kinds=real, ns=ns, a="pow_da(dy, a, b)", b="pow_db(dy, a, y)",
     jvp=dict(a="pow_da(da, a, b)", b="pow_db(db, a, y)"))
grad(pow, "a, b", fwd="a ** b", kinds=cplx, ns=ns, a="cpow_da(dy, a, b)", b="cpow_db(dy, a, y)")
def _of_type(g, x):
    """A NumPy scalar's gradient in its own type (``float(np.float64(x))``); others as they are."""
    return type(x)(g) if isinstance(x, np.floating) else g


ns.update(of_type=_of_type)
grad(float, "x", x="of_type(dy, x)", kinds=num, ns=ns, out=REAL,
     broadcast=False)
grad(complex, "re, im=0.0", re="dy if isinstance(re, complex) else dy.real",
     im="-1j * dy if isinstance(im, complex) else dy.imag", kinds=(many("R|C|N"),),
     out=COMPLEX, broadcast=False, jvp=dict(re="complex(dre)", im="1j * dim"))
nondiff(int, round, bool, len, range, isinstance, issubclass, type, id, hash, print, repr, str, format,
        callable, hasattr, ord, chr, bin, hex, oct, any, all, slice, object)
