"""Truncated Taylor series arithmetic for Taylor mode (``rules/taylor.py``).

A series is a list ``[x0, x1, ..., xk]`` of normalised coefficients (``xj = x^(j)(0) / j!``), None
standing for an exact zero so that constants cost nothing. The recurrences are the standard ones
(Griewank & Walther, "Evaluating Derivatives", ch. 13) written with the values' own arithmetic,
so they serve Python numbers, tensors and arrays alike; where one needs the function's value at
``x0`` (exp, sin, ...) the caller passes it.
"""
from __future__ import annotations

import math
from typing import Callable, List

Series = List   # [x0, x1, ..., xk]: the value, then its coefficients (None: an exact zero)


def acc(a, b):
    return b if a is None else a if b is None else a + b


def total(vs):
    out = None
    for v in vs:
        out = acc(out, v)
    return out


def times(a, b):
    return None if a is None or b is None else a * b


def scale(v, c):
    return None if v is None else v * c


def conv(A: Series, B: Series, j: int, lo: int = 0):
    """``sum_{i=lo..j-lo} A_i B_{j-i}``: the coefficient ``j`` of a Cauchy product."""
    return total(times(A[i], B[j - i]) for i in range(lo, j + 1 - lo))


def const(v, k: int) -> Series:
    return [v] + [None] * k


def is_const(S: Series) -> bool:
    return all(s is None for s in S[1:])


def lin(S: Series, c0=None, c=1.0) -> Series:
    """``c0 + c * S`` as a series."""
    return [acc(c0, scale(S[0], c))] + [scale(s, c) for s in S[1:]]


def add(A: Series, B: Series) -> Series:
    return [acc(a, b) for a, b in zip(A, B)]


def mul(A: Series, B: Series) -> Series:
    return [conv(A, B, j) for j in range(len(A))]


def div(A: Series, B: Series, z0=None) -> Series:
    """``A / B``: ``Z_j = (A_j - sum_{i=1..j} B_i Z_{j-i}) / B_0``."""
    Z = [A[0] / B[0] if z0 is None else z0]
    for j in range(1, len(A)):
        r = acc(A[j], scale(total(times(B[i], Z[j - i]) for i in range(1, j + 1)), -1))
        Z.append(None if r is None else r / B[0])
    return Z


def recip(X: Series, y0=None) -> Series:
    return div(const(1.0, len(X) - 1), X, 1 / X[0] if y0 is None else y0)


def _step(terms, j: int):
    """Coefficient ``j`` of the integral of ``sum D X'`` over the pairs ``(X, D)``:
    ``1/j sum_{i=1..j} i X_i D_{j-i}``."""
    return total(scale(times(X[i], D[j - i]), i / j) for X, D in terms for i in range(1, j + 1))


def integral(y0, *terms) -> Series:
    """``Y`` with ``Y' = sum D X'`` for precomputed derivative series ``D``."""
    k = len(terms[0][0]) - 1
    return [y0] + [_step(terms, j) for j in range(1, k + 1)]


def ode(y0, X: Series, w: Callable) -> Series:
    """``Y`` with ``Y' = W X'``, where ``W_m = w(Y, m)`` is known once ``Y_0..Y_m`` are (exp, tan,
    tanh, sigmoid: the derivative is a function of the result)."""
    Y, W = [y0], []
    for j in range(1, len(X)):
        W.append(w(Y, j - 1))
        Y.append(_step([(X, W)], j))
    return Y


def exp(X: Series, y0) -> Series:
    return ode(y0, X, lambda Y, m: Y[m])


def tanh(X: Series, y0, sign: float = -1.0) -> Series:
    """tanh (``y' = 1 - y^2``) or, with ``sign=1``, tan (``y' = 1 + y^2``)."""
    return ode(y0, X, lambda Y, m: acc(1.0 if m == 0 else None, scale(conv(Y, Y, m), sign)))


def sigmoid(X: Series, y0) -> Series:
    return ode(y0, X, lambda Y, m: acc(Y[m], scale(conv(Y, Y, m), -1)))


def sincos(X: Series, s0, c0, sign: float = -1.0):
    """sin and cos (``sign=-1``), or sinh and cosh (``sign=1``), together: ``s' = c x'``,
    ``c' = sign s x'``."""
    S, C = [s0], [c0]
    for j in range(1, len(X)):
        S.append(_step([(X, C)], j))
        C.append(scale(_step([(X, S)], j), sign))
    return S, C


def sqrt(X: Series, y0) -> Series:
    """``Y_j = (X_j - sum_{i=1..j-1} Y_i Y_{j-i}) / (2 Y_0)``."""
    Y = [y0]
    for j in range(1, len(X)):
        r = acc(X[j], scale(conv(Y, Y, j, lo=1), -1))
        Y.append(None if r is None else r / (2 * y0))
    return Y


def log(X: Series, y0) -> Series:
    return integral(y0, (X, recip(X)))


def rpow(X: Series, r, y0) -> Series:
    """``x^r`` for a constant ``r`` (``x y' = r y x'``):
    ``Y_j = sum_{i=1..j} ((r + 1) i - j) X_i Y_{j-i} / (j x_0)``."""
    Y = [y0]
    for j in range(1, len(X)):
        s = total(scale(times(X[i], Y[j - i]), (r + 1) * i - j) for i in range(1, j + 1))
        Y.append(None if s is None else s / (j * X[0]))
    return Y


def ipow(X: Series, n: int, y0) -> Series:
    """``x^n`` for an integer ``n`` by repeated squaring (exact at ``x_0 = 0`` too)."""
    if n < 0:
        return recip(ipow(X, -n, None), y0)
    out, base = const(1.0, len(X) - 1), X
    while n:
        if n & 1:
            out = mul(out, base)
        n >>= 1
        if n:
            base = mul(base, base)
    return out if y0 is None else [y0] + out[1:]


def erf(X: Series, y0, lib, sign: float = 1.0) -> Series:
    """erf (``y' = 2/sqrt(pi) exp(-x^2) x'``), or erfc with ``sign=-1``."""
    U = lin(mul(X, X), c=-1.0)
    return integral(y0, (X, lin(exp(U, lib.exp(U[0])), c=sign * 2 / math.sqrt(math.pi))))


def add_all(Ss):
    out = Ss[0]
    for S in Ss[1:]:
        out = add(out, S)
    return out
