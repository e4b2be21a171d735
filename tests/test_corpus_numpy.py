"""Every NumPy corpus program: its value, its gradient against central differences (float64,
array arguments entry by entry) with the type and shape of each argument, and for a sample a
Hessian-vector product against central differences of the gradient.

A program whose ``needs`` names a function without a rule is a strict xfail (it must fail, and
the mark lapses once the rule lands); ``bug`` is a known non-rule failure, also strict.
"""
import math
import operator

import numpy as np
import pytest
import scipy.linalg  # noqa: F401  (for names in ``needs``)
import scipy.special

import torchzygote as tz
from corpus_numpy import CORPUS
from torchzygote.rules.registry import TABLE

_NAMES = dict(np=np, scipy=scipy, math=math, operator=operator)


def _has_rule(need):
    """Whether ``need`` ("np.cumsum", or "operator.iadd[A,A]" for given argument kinds) has a rule."""
    name, _, kinds = need.partition("[")
    fn = eval(name, _NAMES)
    if TABLE.is_nondiff(fn):
        return True
    rules = TABLE.lookup(fn) or []
    if not kinds:
        return bool(rules)
    ks = [k.strip() for k in kinds.rstrip("]").split(",")]
    return any(r.applies(ks) for r in rules)


def _marks(c):
    missing = [n for n in c.needs if not _has_rule(n)]
    if missing:
        return [pytest.mark.xfail(strict=True, reason="no rule yet: " + ", ".join(missing))]
    if c.bug:
        return [pytest.mark.xfail(strict=True, reason=c.bug)]
    return []


def _params(cases):
    return [pytest.param(c, id=c.name, marks=_marks(c)) for c in cases]


def _fd(f, args, h):
    """Central differences of a real-valued ``f``: one entry per argument, arrays entry by entry."""
    out = []
    for i, a in enumerate(args):
        def at(v, i=i):
            xs = list(args)
            xs[i] = v
            return float(f(*xs))

        if isinstance(a, np.ndarray):
            g = np.zeros(a.shape)
            for k in np.ndindex(a.shape):
                up, dn = a.copy(), a.copy()
                up[k] += h
                dn[k] -= h
                g[k] = (at(up) - at(dn)) / (2 * h)
            out.append(g)
        elif isinstance(a, float):   # np.float64 included: a + h keeps its type
            out.append((at(a + h) - at(a - h)) / (2 * h))
        else:
            out.append(None)
    return out


def _check_type(g, a, what):
    """An array's gradient is an array of its dtype (the shape is _check_close's); a float's is a
    float, an np.float64's an np.float64."""
    if isinstance(a, np.ndarray):
        assert isinstance(g, np.ndarray) and g.dtype == a.dtype, f"{what}: gradient {g!r}, want an array of {a.dtype}"
    elif isinstance(a, float):
        assert type(g) is type(a), f"{what}: gradient of a {type(a).__name__} is a {type(g).__name__}"


def _check_close(got, want, rtol, atol, what):
    """Numbers and shape (None is a zero gradient); the type is _check_type's."""
    assert got is not None or not np.any(want), f"{what}: torchzygote None, finite differences {want!r}"
    got = np.zeros_like(np.asarray(want)) if got is None else np.asarray(got, dtype=float)
    assert got.shape == np.shape(want), f"{what}: gradient of shape {got.shape}, want {np.shape(want)}: {got!r}"
    ok = np.allclose(got, want, rtol=rtol, atol=atol)
    assert ok, f"{what}: torchzygote\n{got!r}\nfinite differences\n{np.asarray(want)!r}"


def test_corpus_size():
    names = [c.name for c in CORPUS]
    assert len(CORPUS) >= 100
    assert len(set(names)) == len(names), "duplicate program names"
    assert sum(c.order2 for c in CORPUS) >= 20


@pytest.mark.parametrize("c", _params(CORPUS))
def test_corpus(c):
    for k in range(len(c.argsets)):
        # the transformed forward pass computes what the program computes...
        y, _ = tz.pullback(c.fn, *c.args(k))
        y0 = c.fn(*c.args(k))
        assert float(y) == pytest.approx(float(y0), rel=1e-12, abs=1e-12), "forward value differs"
        # ...the gradient has each argument's type and shape, and matches central differences
        args = c.args(k)
        g = tz.gradient(c.fn, *args)
        assert isinstance(g, tuple) and len(g) == len(args), f"gradient returned {g!r}"
        want = _fd(c.fn, c.args(k), c.h)
        where = f"{c.name}{' point %d' % k if k else ''}"
        for i, (gi, wi) in enumerate(zip(g, want)):
            if wi is not None:
                _check_close(gi, wi, c.rtol, c.atol, f"{where} argument {i}")
        for i, (gi, a) in enumerate(zip(g, args)):
            _check_type(gi, a, f"{where} argument {i}")


def _directions(args):
    rng = np.random.default_rng(5)
    return [rng.uniform(-1, 1, a.shape) if isinstance(a, np.ndarray) else float(rng.uniform(-1, 1))
            for a in args]


@pytest.mark.parametrize("c", _params([c for c in CORPUS if c.order2]))
def test_corpus_second_order(c):
    """The gradient of ``sum(gradient * v)`` (a Hessian-vector product) against central differences."""
    f = c.fn
    for k in range(len(c.argsets)):
        vs = _directions(c.args(k))

        def hvp_objective(*xs):
            g = tz.gradient(f, *xs)
            s = 0.0
            for gi, vi in zip(g, vs):
                if gi is not None:   # None: no gradient (the first-order check says whether it should be)
                    s = s + (np.sum(gi * vi) if isinstance(vi, np.ndarray) else gi * vi)
            return s

        args = c.args(k)
        hv = tz.gradient(hvp_objective, *args)
        want = _fd(hvp_objective, c.args(k), 1e-5)
        where = f"{c.name}{' point %d' % k if k else ''} second order"
        for i, (gi, wi) in enumerate(zip(hv, want)):
            _check_close(gi, wi, 1e-4, 1e-5, f"{where}, argument {i}")
        for i, (gi, a) in enumerate(zip(hv, args)):
            _check_type(gi, a, f"{where}, argument {i}")
