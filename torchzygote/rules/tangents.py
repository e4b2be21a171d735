"""Forward mode from the rule table: each rule's tangent, from the same entry as its pullback.

A rule's output tangent is the sum of one term per differentiable parameter whose tangent is
given (``d<param>``), as its pullback is one expression per parameter. A term is, in order:

- the entry's own ``jvp`` term (``grad(..., jvp={"a": "da * b"})``);
- for a ``linear`` rule, the same call with the parameter replaced by its tangent (JAX's
  ``deflinear``): ``sum(x, dim)`` gives ``sum(dx, dim)``;
- for an ``elementwise`` rule, its pullback expression with ``dy`` replaced by the tangent: the
  Jacobian of an elementwise function (or of one of Python numbers) is diagonal, so it is its own
  transpose. A holomorphic
  complex function pulls ``dy`` back as ``dy * conj(f'(z))``, so the term is conjugated on both
  sides (``_cj``, the identity on real values); the rules for functions that are not holomorphic
  (``abs``, ``angle``, ``real``, ...) give their own terms.

A parameter with no term has no tangent rule: a call that gives it a tangent raises, never
drops it. ``tangent_form(rule)`` is the run-time form ``F(ctx, tangents, *args) -> (y, ty)``;
forward-mode codegen inlines the same terms.
"""
from __future__ import annotations

import ast
import itertools
import linecache
import re
from typing import Callable, Optional

import numpy as np
import torch

from ..errors import NoRuleError
from ..values.versions import copy_value
from .registry import Rule, call_leaving_defaults, reads_value


def _sub(expr: str, name: str, code: str) -> str:
    return re.sub(rf"(?<![\w.]){re.escape(name)}\b", lambda _: code, expr)


def call_expr(rule: Rule) -> str:
    """The rule's forward call as an expression of its parameters (``y = <call>``)."""
    if rule.fwd is None and rule.omit_defaults:
        return (f"_call(_fn, _names, {len(rule.params) - len(rule.kwonly)}, _D, "
                f"({', '.join(rule.params)}{',' if rule.params else ''}), {rule.vararg or '()'})")
    return rule.fwd or "_fn({})".format(", ".join([p for p in rule.params if p not in rule.kwonly] + (
        [f"*{rule.vararg}"] if rule.vararg else []) + [f"{k}={k}" for k in rule.kwonly]))


def _is_expression(src: str) -> bool:
    try:
        ast.parse(src, mode="eval")
        return True
    except SyntaxError:
        return False


_SUMS_TO_SHAPE = re.compile(r"\b(ub|_ub|unbroadcast|np_like|np_sum_to_shape|sum_to_shape)\(")


def tname(rule: Rule, p: str) -> str:
    """The name of parameter ``p``'s tangent in terms: ``d<p>``, or ``d_<p>`` where a parameter
    has that name (``np.trapezoid(ys, x, dx)``: x's tangent is ``d_x``)."""
    return f"d_{p}" if "d" + p in rule.params or "d" + p == rule.vararg else "d" + p


def term(rule: Rule, p: str, complex_ok: bool = True) -> Optional[str]:
    """Parameter ``p``'s tangent term, or None where the entry gives none. ``complex_ok=False``:
    the arguments are known to be real (no conjugation needed). (Kept on the rule: run-time
    dispatch asks on every call.)"""
    key = (p, complex_ok)
    if key not in rule._terms:
        rule._terms[key] = _term(rule, p, complex_ok)
    return rule._terms[key]


def _term(rule: Rule, p: str, complex_ok: bool) -> Optional[str]:
    if p in rule.jvp:
        return rule.jvp[p]
    if p not in rule.grads:
        return None
    dp = tname(rule, p)
    if rule.linear:
        call = call_expr(rule)
        return _sub(call, p, f"_tz({dp}, {p})") if _is_expression(call) else None
    if (rule.elementwise or numbers_only(rule)) and p != rule.vararg:
        e = rule.grads[p]
        if _SUMS_TO_SHAPE.search(e):   # summed back to a broadcast argument's shape: not a diagonal
            return None
        if not complex_ok:
            return _sub(e, "dy", dp)
        return f"_cj({_sub(e, 'dy', f'_cj({dp})')})"
    return None


_NUMBERS = frozenset("RCN")


def numbers_only(rule: Rule) -> bool:
    """Whether the variant takes Python numbers only (its Jacobian is a scalar per argument)."""
    return rule.kinds is not None and all(
        all(s <= _NUMBERS for s in pt.items) and (pt.rest is None or pt.rest <= _NUMBERS)
        for pt in rule.kinds)


def reads_old(expr: str, p0: str, rule: Rule) -> bool:
    """Whether an in-place rule's term reads the value its call overwrites (then it is kept)."""
    return reads_value(expr, p0, rule.ns)


def diff_params(rule: Rule):
    """The parameters with a gradient (the others carry no tangent)."""
    return [p for p in [*rule.params, rule.vararg] if p and p in rule.grads]


def has_tangent(rule: Rule) -> bool:
    """Whether every differentiable parameter has a tangent term."""
    if "all" not in rule._terms:
        rule._terms["all"] = all(term(rule, p) is not None for p in diff_params(rule))
    return rule._terms["all"]


# ----------------------------------------------------------------- run-time helpers

def tadd(a, b):
    """The sum of two tangents, None being zero (structures add item by item)."""
    if a is None:
        return b
    if b is None:
        return a
    if type(a) in (tuple, list) and type(b) in (tuple, list):
        return type(a)(tadd(x, y) for x, y in zip(a, b))
    return a + b


def zero_like(v):
    """A zero tangent shaped like the value ``v`` (None where ``v`` has no tangent space)."""
    if isinstance(v, torch.Tensor):
        return torch.zeros_like(v) if v.is_floating_point() or v.is_complex() else None
    if isinstance(v, np.ndarray):
        return np.zeros(v.shape, dtype=v.dtype if v.dtype.kind in "fc" else np.float64)
    if isinstance(v, complex):
        return 0j
    if isinstance(v, (float, int, np.number)):
        return 0.0 * v if isinstance(v, np.floating) else 0.0
    if type(v) in (tuple, list):
        return type(v)(zero_like(x) for x in v)
    if type(v) is dict:
        return {k: zero_like(x) for k, x in v.items()}
    return None


def tz(d, v):
    """The tangent ``d`` of value ``v`` with None (a zero) made explicit: a linear call needs one
    for every item of a sequence (``cat``)."""
    if d is None:
        return zero_like(v)
    if type(d) in (tuple, list) and type(v) in (tuple, list):
        return type(v)(tz(x, y) for x, y in zip(d, v))
    if type(d) is dict and type(v) is dict:
        return {k: tz(d.get(k), x) for k, x in v.items()}
    if isinstance(v, np.generic) and type(d) in (float, int, complex):   # a NumPy scalar's: of its type
        return type(v)(d) if np.iscomplexobj(v) or not isinstance(d, complex) else d
    return d


def cj(v):
    """The conjugate of a complex value; real values (and None) as they are."""
    t = type(v)
    if t is float or v is None:
        return v
    if t is complex:
        return v.conjugate()
    if isinstance(v, torch.Tensor):
        return v.conj() if v.is_complex() else v
    if isinstance(v, (np.ndarray, np.complexfloating)):
        return np.conj(v) if np.iscomplexobj(v) else v
    return v


def bcast(t, y):
    """An elementwise result's tangent shaped like the result: a term of an argument that was
    broadcast (or a number beside a tensor) is expanded to ``y``."""
    if t is None:
        return None
    if isinstance(y, torch.Tensor):
        if not isinstance(t, torch.Tensor):
            t = torch.as_tensor(t, dtype=y.dtype if y.is_floating_point() or y.is_complex() else None,
                                device=y.device)
        return t if t.shape == y.shape else t.expand(y.shape)
    if isinstance(y, np.ndarray):
        t = np.asarray(t)
        return t if t.shape == y.shape else np.broadcast_to(t, y.shape)
    return t


def missing(rule_name: str, p: str):
    raise NoRuleError(f"forward mode: {rule_name} has no tangent rule for its argument {p!r} "
                      f"(give the rule a jvp term in its table entry)")


HELPERS = dict(_tadd=tadd, _tz=tz, _cj=cj, _bcast=bcast, _missing=missing, _copy=copy_value,
               _call=call_leaving_defaults)

# ----------------------------------------------------------------- closure form

_counter = itertools.count()


def tangent_form(rule: Rule) -> Callable:
    """``F(ctx, tangents, *args) -> (y, ty)`` for a rule: ``tangents`` holds one tangent (or None)
    per parameter, the vararg's as a tuple, in the rule's parameter order."""
    if rule._tangent is not None:
        return rule._tangent
    ps = list(rule.params) + ([rule.vararg] if rule.vararg else [])
    env = dict(rule.ns)
    env.update(HELPERS)
    env.update({"_fn": rule.fn, "_D": rule.defaults, "_names": tuple(rule.params)})
    head = ", ".join(f"{p}=_D[{p!r}]" if p in rule.defaults else p for p in rule.params)
    if rule.vararg:
        head += (", " if head else "") + f"*{rule.vararg}"
    call = call_expr(rule)
    lines = []
    if rule.inplace:   # the terms read the value the call overwrites
        p0 = rule.params[0]
        call = _sub(call, p0, "_obj")
        lines += [f"_obj = {p0}", f"{p0} = _copy(_obj)"]
        # ``y.mul_(y)``: an argument that is the written tensor itself is read as its old value too
        lines += [f"if {q} is _obj: {q} = {p0}" for q in rule.params[1:] if q not in rule.kwonly]
    lines.append(f"y = {call}")
    lines.append("ty = None")
    for i, p in enumerate(ps):
        if p not in rule.grads:
            continue
        dp = tname(rule, p)
        lines.append(f"{dp} = _t[{i}]")
        e = term(rule, p)
        body = f"ty = _tadd(ty, {e})" if e is not None else f"_missing({rule.name!r}, {p!r})"
        lines.append(f"if {dp} is not None: {body}")
    lines.append("return y, _bcast(ty, y)" if rule.elementwise else "return y, ty")
    name = "".join(c if c.isalnum() else "_" for c in rule.name)
    src = f"def F_{name}(ctx, _t, {head}):\n" + "".join(f"    {ln}\n" for ln in lines)
    fname = f"<torchzygote tangent {rule.name} #{next(_counter)}>"
    linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
    exec(compile(src, fname, "exec"), env)
    rule._tangent = env[f"F_{name}"]
    return rule._tangent
