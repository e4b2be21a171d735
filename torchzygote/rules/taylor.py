"""Taylor mode: truncated Taylor series pushed through one primitive call (issue 13, item 4).

A value ``x(t) = x0 + x1 t + ... + xk t^k`` travels as its primal ``x0`` and its normalised
coefficients ``[x1..xk]`` (``xj = x^(j)(0) / j!``), so the k-th derivative of a scalar function
costs one pass instead of k nested transforms. ``propagate`` gives a call's result series from
its arguments', by the function's entry in ``rules/taylor_rules.py`` (the recurrences of
Griewank & Walther, "Evaluating Derivatives", ch. 13, in ``rules/taylor_series.py``), or, for a
rule of the table marked ``linear``, by its call applied to each coefficient. Functions without a
derivative (comparisons, ``floor``, casts to integers) give constants. Any other function with a
series raises NoRuleError: a dropped or guessed coefficient would be a wrong number.
"""
from __future__ import annotations

import cmath
import linecache
import math
import numbers
from typing import Optional, Sequence

import numpy as np
import torch

from ..errors import NoRuleError
from ..values.versions import copy_value
from . import taylor_series as ts
from .registry import TABLE, Rule, call_leaving_defaults
from .tangents import bcast, call_expr, tz, zero_like
from .taylor_rules import ENTRIES, INPLACE, Call, Entry, fn_name


def propagate(fn, rule: Optional[Rule], args: Sequence, kw: Optional[dict], series: Sequence,
              kw_series: Optional[dict] = None):
    """``(y0, [y1..yk])`` of ``fn(*args, **kw)`` where argument ``i`` has the coefficients
    ``series[i]`` (None: a constant); ``[y1..yk]`` is None when no argument has a series.
    ``rule`` is the call's selected rule (None if none): a ``linear`` rule without an entry here
    applies its call to each coefficient. Keyword arguments are constants unless ``kw_series``
    gives a series by name. Raises NoRuleError for a function with a series and no rule."""
    kw, kw_series = dict(kw or {}), {n: s for n, s in (kw_series or {}).items() if s is not None}
    if all(s is None for s in series) and not kw_series:
        return fn(*args, **kw), None
    orders = {len(s) for s in [*series, *kw_series.values()] if s is not None}
    if len(orders) != 1:
        raise ValueError(f"Taylor series of different orders in one call of {fn_name(fn)}: {sorted(orders)}")
    k = orders.pop()
    entry = _entry(fn, rule)
    if entry is None:   # no derivative (a comparison, floor, argmax, zeros_like): a constant result
        return fn(*args, **kw), None
    if kw.get("out") is not None or kw.get("inplace") is True or kw.get("where", True) is not True \
            or kw.get("initial") is not None:
        raise NoRuleError(f"no Taylor rule for {fn_name(fn)} with out=, inplace=, where= or initial= (it writes "
                          f"into an existing value, or adds one)")
    # an in-place operator writes into its first argument, which the others may be (a *= a) or view
    x0s = [copy_value(a) for a in args] if fn in INPLACE else list(args)
    S = [None if s is None else [a, *s] for a, s in zip(x0s, series)] + [None] * (len(args) - len(series))
    if entry.positions is not None:
        if kw_series:
            raise NoRuleError(f"no Taylor rule for {fn_name(fn)} with a series in a keyword argument")
        y0, coefs = _coefficientwise(fn, entry, args, kw, x0s, S, k)
    else:
        if not all(isinstance(v, _NUMERIC) for v, s in zip(x0s, S) if s is not None):
            raise NoRuleError(f"no Taylor rule for {fn_name(fn)} on {[type(v).__name__ for v in x0s]} (numbers, "
                              f"tensors and arrays only: containers travel item by item)")
        bound = _bind(fn, entry, x0s, kw, S, kw_series, k)
        y0 = fn(*args, **kw)
        coefs = entry.impl(Call(fn, y0, k, _lib([y0, *x0s], entry.lib)), **bound)[1:]
    if _integer_valued(y0):   # a cast to integers (x.to(torch.long)): piecewise constant
        return y0, None
    return y0, [_shaped(c, y0) for c in coefs]


_NUMERIC = (numbers.Number, torch.Tensor, np.ndarray, np.generic)


def _integer_valued(y) -> bool:
    if isinstance(y, torch.Tensor):
        return not (y.is_floating_point() or y.is_complex())
    return isinstance(y, np.ndarray) and y.dtype.kind not in "fc"


def _entry(fn, rule: Optional[Rule]) -> Optional[Entry]:
    try:
        e = ENTRIES.get(fn)
    except TypeError:   # an unhashable callable
        e = None
    if e is not None:
        return e
    if rule is not None and rule.linear and not rule.inplace:
        return _linear_rule_entry(rule)
    variants = [rule] if rule is not None else TABLE.lookup(fn) or []
    if variants and all(not r.grads and not r.effect for r in variants) or TABLE.is_nondiff(fn):
        return None   # the table gives the result no derivative (floor division, argmax, zeros_like)
    raise NoRuleError(f"no Taylor rule for {fn_name(fn)} (Taylor mode needs a series rule for each "
                      f"function a series passes through: rules/taylor_rules.py)")


def _bind(fn, entry: Entry, x0s, kw, S, kw_series, k) -> dict:
    """The entry's parameters bound to series; NoRuleError for an argument it cannot take or a
    series where it takes none."""
    names, defaults, vararg = entry.spec
    out = {}
    for i, (v, s) in enumerate(zip(x0s, S)):
        if i < len(names):
            out[names[i]] = (v, s)
        elif vararg:
            out.setdefault(vararg, []).append((v, s))
        else:
            raise NoRuleError(f"no Taylor rule for {fn_name(fn)} with {len(x0s)} positional arguments")
    for n, v in kw.items():
        if n not in names or n in out:
            raise NoRuleError(f"no Taylor rule for {fn_name(fn)} with the keyword argument {n}=")
        out[n] = (v, None if n not in kw_series else [v, *kw_series[n]])
    for n in names:
        if n not in out:
            if n not in defaults:
                raise NoRuleError(f"no Taylor rule for {fn_name(fn)} without its argument {n!r}")
            out[n] = (defaults[n], None)
    if out.get("inplace", (False,))[0] is True:
        raise NoRuleError(f"no Taylor rule for {fn_name(fn)} with inplace=True (it writes into its argument)")
    for n, b in out.items():
        items = b if n == vararg else [b]
        if n not in entry.active and any(s is not None for _, s in items):
            raise NoRuleError(f"no Taylor rule for {fn_name(fn)} with a series in its argument {n!r}")
    full = {n: ts.const(v, k) if s is None else s for n, (v, s) in out.items() if n != vararg}
    if vararg:
        full[vararg] = [ts.const(v, k) if s is None else s for v, s in out.get(vararg, [])]
    return full


def _compositions(j: int, n: int):
    """The tuples of ``n`` non-negative integers summing to ``j``."""
    if n == 1:
        yield (j,)
        return
    for i in range(j + 1):
        for rest in _compositions(j - i, n - 1):
            yield (i, *rest)


def _coefficientwise(fn, entry: Entry, args, kw, x0s, S, k):
    """``Y_j = sum_{i_1 + ... + i_n = j} f(.., X^(p)_{i_p}, ..)`` over the arguments ``p`` with a
    series among ``positions``, for ``f`` linear in each of them; for a ``joint`` entry (the items
    of one vararg) ``Y_j = f(.., X^(p)_j, ..)``, the items without a series being zeros."""
    pos = range(len(args))[entry.positions]
    active = [p for p in range(len(args)) if S[p] is not None]
    if any(p not in pos for p in active):
        raise NoRuleError(f"no Taylor rule for {fn_name(fn)} with a series in its argument {active[-1]}")
    sl = entry.positions
    multilinear = not entry.joint and (sl.stop is None or sl.stop - (sl.start or 0) > 1)
    if multilinear and any(isinstance(x0s[p], (list, tuple)) for p in active):
        # (einsum(eq, [a, b]): the items of a list are separate factors, not one linear argument)
        raise NoRuleError(f"no Taylor rule for {fn_name(fn)} with a series in a list or tuple argument")
    f = entry.f or fn
    y0 = fn(*args, **kw)
    coefs = []
    for j in range(1, k + 1):
        if entry.joint:
            vals = list(x0s)
            for p in pos:
                vals[p] = tz(None if S[p] is None else S[p][j], x0s[p])
            terms = [vals] if any(S[p][j] is not None for p in active) else []
        else:
            terms = [_factors(x0s, S, active, idx) for idx in _compositions(j, len(active))]
        coefs.append(ts.total(f(*vals, **kw) for vals in terms if vals is not None))
    return y0, coefs


def _factors(x0s, S, active, idx):
    """The arguments with coefficient ``idx[n]`` of the ``n``-th active one (None if one is zero)."""
    vals = list(x0s)
    for p, i in zip(active, idx):
        if i and S[p][i] is None:
            return None
        vals[p] = tz(S[p][i], x0s[p]) if i else x0s[p]
    return vals


_LINEAR_FORMS: dict = {}


def _linear_rule_entry(rule: Rule) -> Entry:
    """A ``linear`` rule: its call (``tangents.call_expr``, as its tangent is built) applied to the
    coefficients of its one differentiable parameter."""
    hit = _LINEAR_FORMS.get(id(rule))
    if hit is not None and hit[0] is rule:
        return hit[1]
    (p,) = rule.grads
    head = ", ".join(f"{q}=_D[{q!r}]" if q in rule.defaults else q for q in rule.params)
    if rule.vararg:
        head += (", " if head else "") + f"*{rule.vararg}"
    src = f"def L_({head}):\n    return {call_expr(rule)}\n"
    env = dict(rule.ns, _fn=rule.fn, _D=rule.defaults, _names=tuple(rule.params), _call=call_leaving_defaults)
    fname = f"<torchzygote taylor {rule.name}>"
    linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
    exec(compile(src, fname, "exec"), env)
    i = len(rule.params) if p == rule.vararg else rule.params.index(p)
    entry = Entry(None, positions=slice(i, None if p == rule.vararg else i + 1), f=env["L_"],
                  joint=p == rule.vararg)
    _LINEAR_FORMS[id(rule)] = (rule, entry)
    return entry


def _lib(vals, forced=None):
    """The module of elementary functions for these values (math, cmath, numpy or torch)."""
    if forced is not None:
        return forced
    if any(isinstance(v, torch.Tensor) for v in vals):
        return torch
    if any(isinstance(v, (np.ndarray, np.generic)) for v in vals):
        return np
    return cmath if any(isinstance(v, complex) for v in vals) else math


def _shaped(c, y0):
    """Coefficient ``c`` of a result ``y0`` in its type and shape (None: a zero)."""
    if c is None:
        return zero_like(y0)
    if isinstance(y0, torch.Tensor):
        c = bcast(c, y0)
        return c.to(y0.dtype) if c.dtype != y0.dtype and c.is_complex() == y0.is_complex() else c
    if isinstance(y0, np.ndarray):
        c = bcast(c, y0)
        return c.astype(y0.dtype) if c.dtype != y0.dtype and np.iscomplexobj(c) == np.iscomplexobj(y0) else c
    if isinstance(c, np.ndarray) and c.ndim == 0:
        return c[()]
    return c
