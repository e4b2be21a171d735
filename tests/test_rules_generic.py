"""One generic check of every registered rule against finite differences.

``SAMPLES`` maps every function in ``TABLE.rules`` to sample arguments (or to
small programs, for containers and the frontend's own operations). A rule
whose function has no entry FAILS ``test_rule`` -- add its domain here when
you add a rule. Each sample is run twice: through a call the transform sees
statically (the rule is inlined) and through a function fetched from a dict
at run time (``runtime.J`` dispatches to the rule's closure form).

Numbers (kinds R, C) are compared with central differences; torch tensors
(kind T) with ``torch.autograd.gradcheck`` in float64, wrapping torchzygote's
pullback in an ``autograd.Function``; numpy arrays (A) with elementwise
central differences.
"""
import cmath
import itertools
import linecache
import math
import operator
import sys
import types

import numpy as np

from torchzygote.rules.numpy_rules import NATIVE as NP_NATIVE, np_as_scalar, np_index_back, np_sum_to_shape
import pytest
import torch

import torchzygote as tz
from torchzygote.values.algebra import add_owned
from torchzygote.values.fields import read_field
from torchzygote.values.kinds import kind_of
from torchzygote.frontend import ops
from torchzygote.rules import pylib, tensor_backward
from torchzygote.rules.registry import TABLE, select

from conftest import close, fd_gradient

# ================================================================ sample builders

_GEN = torch.Generator().manual_seed(0)
_COUNTER = itertools.count()


def t(*shape, lo=-1.0, hi=1.0):
    """A deterministic float64 tensor with entries in (lo, hi), bounded away from 0 when lo>=0."""
    return lo + (hi - lo) * torch.rand(*shape, generator=_GEN, dtype=torch.float64)


def tp(*shape):
    return t(*shape, lo=0.3, hi=2.0)


def tu(*shape):
    return t(*shape, lo=-0.8, hi=0.8)


def tdistinct(*shape):
    """Entries well apart (so max/sort/etc. are differentiable under perturbation)."""
    n = math.prod(shape)
    perm = torch.randperm(n, generator=_GEN).to(torch.float64)
    return (perm * 0.37 + 0.11).reshape(shape)


def a(*shape, lo=-1.0, hi=1.0):
    return np.asarray(t(*shape, lo=lo, hi=hi).numpy(), dtype=np.float64)


def spd(n):
    m = t(n, n)
    return m @ m.T + n * torch.eye(n, dtype=torch.float64)


class Program:
    """A small program exercising a rule that needs a context (containers, frontend ops)."""

    def __init__(self, fn, *inputs):
        self.fn, self.inputs = fn, inputs or ((0.7, 1.9),)


# ================================================================ programs for containers / frontend ops

def p_build_tuple(x, y):
    tt = (x, y, x * y)
    return tt[0] * tt[2] + tt[1]


def p_build_list(x, y):
    lst = [x, y * y]
    return lst[0] * lst[1]


def p_build_dict(x, y):
    d = {"a": x, "b": x * y}
    return d["a"] * d["b"]


def p_cat_tuple(x, y):
    u = (x,)
    v = (*u, y, *(x * y,))
    return v[0] * v[1] + v[2]


def p_cat_list(x, y):
    u = [x]
    v = [*u, y, *[x * y]]
    return v[0] * v[1] + v[2]


def p_merge_dict(x, y):
    d1 = {"a": x}
    d = {**d1, "b": y, **{"c": x * y}}
    return d["a"] * d["b"] + d["c"]


def p_unpack(x, y):
    p, q = (x * y, y)
    return p * q


def p_unpack_star(x, y):
    p, *q, r = (x, y, x * y, y * y)
    return p * q[0] + q[1] * r


def p_tuple(x, y):
    tt = tuple([x, y])
    return tt[0] * tt[1]


def p_list(x, y):
    lst = list((x, y))
    return lst[0] * lst[1] + lst[1]


def p_new_cell(x, y):
    def g(v):
        return v * x
    return g(y) + g(x)


def p_closure_cell(x, y):
    k = x * y

    def g(v):
        return v * k
    h = g
    return h(x)


def p_make_function(x, y):
    def g(v, w=y):
        return v * w
    return g(x)


def p_get_global(x, y):
    return G_WEIGHT * x * y + math.pi * x


G_WEIGHT = 1.7
DATA = types.ModuleType("data")   # a module holding a tensor (``ops.module_data``: read when the code runs)
DATA.W = torch.tensor([0.4, -1.3], dtype=torch.float64)


def p_module_data(x, y):
    DATA.V = DATA.W * x   # a field written, then read back: its gradient through the module's slot
    return (DATA.V * y + DATA.W * x * x).sum()


def p_loop_flags(x, y):
    r = x
    for i in range(5):
        if i == 1:
            continue
        if i == 3:
            break
        r = r * y
    return r


def p_loop_return(x, y):
    for i in range(5):
        if i == 2:
            return x * y * i
    return x


def p_contains(x, y):
    d = {"a": x}
    r = x * y
    if "a" in d:
        r = r + d["a"]
    if "b" not in d:
        r = r * y
    return r


def p_getitem(x, y):
    tt = (x, y)
    lst = [x, y]
    d = {"k": y}
    return tt[0] * lst[1] + d["k"] * lst[0] + tt[-1]


class _Obj:
    def __init__(self, v):
        self.v = v


def p_getattr(x, y):
    o = _Obj(x)
    return o.v * y + getattr(o, "v") + getattr(o, "missing", y)


class _Buffered(torch.nn.Module):
    def __init__(self, b, k):
        super().__init__()
        self.register_buffer("b", b)
        self.k = k


def _read_fields(m, v):
    """``m`` is an argument: its transform reads ``m.b`` and ``m.k`` as the module's fields (read_field)."""
    return (m.b * v).sum() * m.k + m.b[0] * m.k


def p_module_field(x, y):
    m = _Buffered(torch.ones(2, dtype=torch.float64) * x, y)
    return _read_fields(m, torch.tensor([0.3, 1.2], dtype=torch.float64))


def p_bound_method(x, y):
    t = torch.sin(x * y)
    m = t.mul              # a method read from a tensor as a value
    return getattr(t, "sum")() * y + m(x).sum()


_GS = 1.0


def p_no_grad_block(x, y):   # (tests/test_no_grad.py checks the block's semantics against torch)
    t = torch.stack([x * y, x + y])
    with torch.no_grad():
        scale = t.sum() * 0.0 + 2.0   # computed there: a constant (ops.detached in generated code)
        t.add_(0.0)                   # an in-place write there: the gradient passes through (ops.through)
    return (scale * t * t).sum()


def p_set_global(x, y):
    global _GS
    _GS = x * y
    return _GS * x


_NT2 = __import__("collections").namedtuple("_NT2", "p q")


def p_tuple_new(x, y):
    t = _NT2(x, y)._replace(q=x * y)
    return t.p * t.q


def p_setattr(x, y):
    o = _Obj(x)
    o.v = o.v * y
    setattr(o, "w", x)
    return o.v * o.w


def p_delattr(x, y):
    o = _Obj(x)
    o.w = y
    del o.w
    o.w = x * y
    return o.v * o.w


class _Frozen:
    def __init__(self, v):
        object.__setattr__(self, "v", v)

    def __setattr__(self, name, value):
        raise AttributeError("frozen")


_HELD = torch.nn.Parameter(torch.full((), 1.5, dtype=torch.float64))


class _Holder(torch.nn.Module):
    """Registers what it is given: a buffer, a parameter and submodules, read back by name."""

    def __init__(self, x, y):
        super().__init__()
        self.register_buffer("b", x * y)
        self.register_parameter("p", _HELD)
        inner = torch.nn.Module()
        inner.register_buffer("c", x + y)
        self.add_module("inner", inner)
        self.register_module("again", inner)

    def forward(self):
        return self.b * self.inner.c * self.p + self.again.c


def p_full(x, y):
    return (torch.full((3,), x, dtype=torch.float64) * torch.full((2, 3), x * y, dtype=torch.float64)).sum()


def p_object_setattr(x, y):
    o = _Frozen(x)
    object.__setattr__(o, "w", o.v * y)
    return o.w * o.v


def p_returned(x, y):   # torch.sigmoid_(t): the name t takes the result, the same tensor
    t = torch.stack([x * y, x + y])
    torch.sigmoid_(t)
    u = t * 1.0
    torch.nn.functional.relu_(u)
    return (t * u).sum()


def p_items_of(x, y):   # torch.stack(xs) reads the list's items as they are at the call
    xs = [x * y, x + y]
    s = torch.stack(xs)
    xs[0] = x * 3.0
    return ((s * s).sum() + xs[0] * s[1] + sum(ops.items_of(xs)) + ops.items_of((x, y))[1]).sum()


class _Slots:
    pass


_RW = _Slots()
_RG = None


def p_rewrite(x, y):   # in-place writes through names read from an attribute, a list item, a global
    global _RG
    _RW.t, _RW.items, _RG = x * 1.0, [y * 1.0], x + y
    a = _RW.t
    a.mul_(y)
    b = _RW.items[0]
    b.add_(x * x)
    c = _RG
    c.mul_(x)
    return (_RW.t * _RW.items[0] + _RG).sum()


def p_module_registrations(x, y):
    return _Holder(torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64))()


def p_next_of(x, y):
    """``next`` of iterators made by code not differentiated: a module's buffers (their gradients
    credit the fields), a counter (data)."""
    b = next(_Holder(torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)).buffers())
    return b * next(itertools.count(2)) + x


def p_setitem(x, y):
    lst = [0.0, 0.0]
    lst[0] = x
    lst[1] = x * y
    d = {}
    d["a"] = y
    return lst[0] * lst[1] + d["a"]


def p_delitem(x, y):
    lst = [x, y, x * y]
    del lst[1]
    d = {"a": x, "b": y}
    del d["a"]
    return lst[0] * lst[1] + d["b"]


def p_list_add_mul(x, y):
    u = [x] + [y]
    v = [x] * 2
    w = 2 * (y,)
    z = (x,) + (y,)
    return u[0] * u[1] + v[1] * w[0] + z[0] * z[1]


def p_append(x, y):
    lst = []
    lst.append(x)
    lst.append(x * y)
    return lst[0] * lst[1]


def p_insert(x, y):
    lst = [x]
    lst.insert(0, y)
    return lst[0] * lst[1] * lst[1]


def p_extend(x, y):
    lst = [x]
    lst.extend([y, x * y])
    return lst[0] + lst[1] * lst[2]


def p_pop(x, y):
    lst = [x, y, x * y]
    last = lst.pop()
    first = lst.pop(0)
    return last * first + lst[0]


def p_list_copy(x, y):
    lst = [x, y]
    c = lst.copy()
    c[0] = c[0] * y
    return c[0] * lst[0]


def p_dict_copy(x, y):
    d = {"a": x}
    c = d.copy()
    c["a"] = c["a"] * y
    return c["a"] * d["a"]


def p_dict_pop(x, y):
    d = {"a": x, "b": y}
    v = d.pop("a")
    return v * d["b"]


def p_dict_get(x, y):
    d = {"a": x}
    return d.get("a") * d.get("b", y) + d.get("a", 0.0)


def p_dict_items(x, y):
    d = {"a": x, "b": y}
    r = 0.0
    for k, v in d.items():
        r = r + v * v
    return r


def p_dict_values(x, y):
    d = {"a": x, "b": x * y}
    r = 1.0
    for v in d.values():
        r = r * v
    return r


def p_try_raised(x, y):
    r = x * y
    try:
        z = 1.0 / (y - y)  # raises before the body assigns r: the guard lets its gradient through
        r = r * z
    except ZeroDivisionError:
        r = r + x * x
    return r


def p_try_ok(x, y):
    r = x * y
    try:
        r = r * y  # no exception: the guard is emitted (the handler reads r) but never runs
    except ZeroDivisionError:
        r = r + x
    return r


def p_tensor_getitem(x, y):
    v = torch.tensor([x, y, x * y], dtype=torch.float64)
    return float(v[0] * v[2] + v[1:].sum())


def p_augmented(x, y):
    r = x
    r += y
    r -= x * y
    r *= y
    r /= 2.0
    r **= 2
    r %= 5.0
    return r


def p_container_inplace(x, y):
    xs = [x]
    xs += [y * y, x * y]
    xs *= 2
    t = (x,)
    t += (y,)
    d = {"a": x}
    d |= {"b": y * 2.0, "a": x * y}
    e = {"a": x, "c": y * x} | {"b": y * 3.0}
    return xs[1] * xs[5] + t[0] * t[1] + d["a"] * d["b"] + e["a"] * e["b"] * e["c"]


# ================================================================ the sample table

SAMPLES = {}


def put(fns, spec, **opts):
    """Register sample arguments (a function returning a list of argument tuples) or a
    Program for ``fns``. Options: ``h``/``rtol``/``atol`` (finite differences, for
    float32 results), ``nograd=True`` (no gradient by design: checks it is None),
    ``pre`` (a source template applied to the first argument inside the call, e.g. to
    symmetrise a matrix), ``random=True`` (values are random: no value check)."""
    for f in fns if isinstance(fns, (tuple, list)) else (fns,):
        SAMPLES.setdefault(f, []).append(spec if isinstance(spec, Program) else (spec, opts))


R2 = [(1.3, -0.7), (0.45, 2.2)]
C2 = [(1.3 + 0.2j, 0.5 - 1.0j), (0.7 - 0.4j, 1.3)]
R1 = [(0.7,), (-1.3,)]

# operators on numbers (and their in-place forms)
for f in (operator.add, operator.iadd, operator.sub, operator.isub, operator.mul, operator.imul):
    put(f, lambda: R2 + C2)
for f in (operator.truediv, operator.itruediv):
    put(f, lambda: R2 + C2)
for f in (operator.pow, operator.ipow, pow):
    put(f, lambda: [(1.3, 2.5), (0.45, -1.5), (2.0, 3), (1.3 + 0.2j, 2.0), (0.7 - 0.4j, 1.5 + 0.5j)])
for f in (operator.mod, operator.imod):
    put(f, lambda: [(7.3, 2.1), (-2.5, 1.4)])
for f in (operator.floordiv, operator.ifloordiv):
    put(f, lambda: [(7.3, 2.1), (-2.5, 1.4)])
put((operator.neg, operator.pos), lambda: R1 + [(0.3 + 0.9j,)])
put(operator.not_, lambda: [(0.7,), (0.0,)])
for f in (operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne, operator.is_, operator.is_not):
    put(f, lambda: R2 + [(1.5, 1.5)])

# containers via programs (operator.add/mul list and tuple variants too)
put(operator.add, Program(p_list_add_mul))
put(operator.mul, Program(p_list_add_mul))
put(operator.iadd, Program(p_augmented))
put((operator.iadd, operator.imul, operator.ior, operator.or_), Program(p_container_inplace))
put(operator.getitem, Program(p_getitem))
put(operator.getitem, Program(p_tensor_getitem))
put(getattr, Program(p_getattr))
put(read_field, Program(p_module_field))
put(add_owned, lambda: [(t(3, 4), t(3, 4), False), (t(3, 4), t(4), False), (0.7, 1.3, False)])
put(ops.bound_method, Program(p_bound_method, (torch.tensor([0.7, -0.4], dtype=torch.float64), 1.9)))
put(setattr, Program(p_setattr))
put(ops.set_global, Program(p_set_global))
put(tuple.__new__, Program(p_tuple_new))
put(delattr, Program(p_delattr))
put(object.__setattr__, Program(p_object_setattr))
_TENSORS = (torch.tensor([0.7, -0.4], dtype=torch.float64), torch.tensor([1.9, 0.3], dtype=torch.float64))
put(ops.returned, Program(p_returned, _TENSORS))
put(ops.through, Program(p_no_grad_block, _TENSORS))
for _op in ops.REWRITES:
    put(_op, Program(p_rewrite, _TENSORS))
put(ops.detached, Program(p_no_grad_block, _TENSORS))
put(ops.items_of, Program(p_items_of, _TENSORS))
for f in (torch.nn.Module.register_buffer, torch.nn.Module.register_parameter, torch.nn.Module.add_module,
          torch.nn.Module.register_module):
    put(f, Program(p_module_registrations))
put(pylib.next_of, Program(p_next_of))
put(operator.setitem, Program(p_setitem))
put(operator.delitem, Program(p_delitem))
put(tuple, Program(p_tuple))
put(list, Program(p_list))
put(list.append, Program(p_append))
put(list.insert, Program(p_insert))
put(list.extend, Program(p_extend))
put(list.pop, Program(p_pop))
put(list.copy, Program(p_list_copy))
put(dict.copy, Program(p_dict_copy))
# dict.get/dict.pop run as lifted stand-ins (rules/pylib.py), not rules: their programs run with the
# dict-building rule's
put(ops.build_dict, Program(p_dict_pop))
put(ops.build_dict, Program(p_dict_get))
put(ops.build_dict, Program(p_dict_items))   # dict.items is lifted (pylib)
put(ops.build_dict, Program(p_dict_values))   # dict.values is lifted (pylib)
put(ops.build_tuple, Program(p_build_tuple))
put(ops.build_list, Program(p_build_list))
put(ops.build_dict, Program(p_build_dict))
put(ops.cat_tuple, Program(p_cat_tuple))
put(ops.cat_list, Program(p_cat_list))
put(ops.merge_dict, Program(p_merge_dict))
put(ops.unpack, Program(p_unpack))
put(ops.unpack_star, Program(p_unpack_star))
put(ops.new_cell, Program(p_new_cell))
put(ops.closure_cell, Program(p_closure_cell))
put(ops.make_function, Program(p_make_function))
put(ops.get_global, Program(p_get_global))
put(ops.module_data, Program(p_module_data))
put((ops.exit_reset, ops.break_reset, ops.loop_cont), Program(p_loop_flags))
put((ops.exit_reset, ops.break_reset, ops.loop_cont), Program(p_loop_return))
put((ops.contains, ops.not_contains), Program(p_contains))
put(ops.try_guard, Program(p_try_raised))
put(ops.try_guard, Program(p_try_ok))

# math
U = [(0.3,), (-0.55,)]
P = [(0.4,), (2.3,)]
for f in (math.sin, math.cos, math.atan, math.sinh, math.cosh, math.tanh, math.exp, math.degrees,
          math.radians, math.erf, math.erfc, math.asinh, math.fabs, math.expm1):
    put(f, lambda: R1)
for f in (math.tan, math.asin, math.acos, math.atanh, math.log1p):
    put(f, lambda: U)
for f in (math.log2, math.log10, math.sqrt):
    put(f, lambda: P)
put(math.log, lambda: P + [(0.4, 2.0), (2.3, 10.0)])
put(math.acosh, lambda: [(1.3,), (4.5,)])
put(math.pow, lambda: [(1.3, 2.5), (0.45, -1.5)])
put(math.atan2, lambda: [(0.4, 2.0), (-1.7, 0.5), (3.2, -1.5)])
put(math.copysign, lambda: [(0.4, -2.0), (-1.7, 0.5)])
put(math.fmod, lambda: [(7.4, 2.0), (-1.7, 0.5)])
put(math.ldexp, lambda: [(0.7, 3), (-1.3, -2)])
for name in ("cbrt", "exp2"):
    if hasattr(math, name):
        put(getattr(math, name), lambda: R1)

# cmath (holomorphic; complex inputs)
Z = [(0.6 + 0.8j,), (-1.2 + 0.3j,), (0.4 - 1.1j,)]
for f in (cmath.sin, cmath.cos, cmath.tan, cmath.sinh, cmath.cosh, cmath.tanh, cmath.exp, cmath.log,
          cmath.log10, cmath.sqrt, cmath.asin, cmath.acos, cmath.atan, cmath.asinh, cmath.acosh, cmath.atanh,
          cmath.phase):
    put(f, lambda: Z)
put(cmath.rect, lambda: [(0.7, 1.9), (1.3, -0.4)])

# numeric builtins
put(abs, lambda: R1 + Z)
put(float, lambda: R1 + [(3,)])
put(complex, lambda: [(0.7, 1.9), (1.3, -0.4), (0.5 + 0.5j, 0.2)])
put(complex.conjugate, lambda: [(0.5 + 0.5j,), (-1.2 + 0.3j,)])
put(operator.truth, lambda: [(0.7,), (0.0,)], nograd=True)

# ---------------------------------------------------------------- numpy
# Elementwise ufuncs: a domain per argument. Each is sampled on arrays (and broadcast ones), on
# Python floats, on NumPy scalars and on an array with a float (test_numpy_second_order also checks
# every numpy rule at second order, and that a gradient has its argument's type).
NP_WIDE, NP_UNIT, NP_POS = (-1.0, 1.0), (-0.8, 0.8), (0.3, 2.0)
NP_ELEMENTWISE = {
    **{f: [NP_WIDE] for f in (np.sin, np.cos, np.exp, np.exp2, np.expm1, np.tanh, np.sinh, np.cosh, np.arctan,
                              np.arcsinh, np.negative, np.positive, np.square, np.deg2rad, np.radians,
                              np.rad2deg, np.degrees)},
    **{f: [NP_UNIT] for f in (np.tan, np.arcsin, np.arccos, np.arctanh)},
    **{f: [NP_POS] for f in (np.log, np.log2, np.log10, np.log1p, np.sqrt, np.cbrt, np.reciprocal)},
    np.arccosh: [(1.2, 3.0)],
    **{f: [NP_WIDE, NP_WIDE] for f in (np.add, np.subtract, np.multiply, np.maximum, np.minimum, np.hypot,
                                       np.logaddexp, np.logaddexp2)},
    np.arctan2: [NP_WIDE, (0.5, 1.5)],
    np.divide: [NP_WIDE, (0.5, 2.0)],
    **{f: [(0.5, 2.0), NP_WIDE] for f in (np.power, np.float_power)},
    **{f: [(1.25, 1.55), (1.0, 1.1)] for f in (np.remainder, np.fmod)},  # 1 < a / b < 1.55: no jump
    np.copysign: [(0.2, 1.0), (0.3, 1.0)],
}


def np_samples(doms):
    """Arrays, broadcast arrays, floats, np.float64 scalars and mixes, inside ``doms``."""
    def make():
        arrays = tuple(a(3, 2, lo=lo, hi=hi) for lo, hi in doms)
        floats = tuple(lo + (0.37 + 0.34 * i) * (hi - lo) for i, (lo, hi) in enumerate(doms))
        out = [arrays, floats, tuple(np.float64(v) for v in floats)]
        if len(doms) == 2:
            (lo0, hi0), (lo1, hi1) = doms
            out += [(a(3, 2, lo=lo0, hi=hi0), a(2, lo=lo1, hi=hi1)), (a(3, lo=lo0, hi=hi0), floats[1]),
                    (floats[0], a(3, lo=lo1, hi=hi1)), (floats[0], np.float64(floats[1]))]
        return out
    return make


for f, doms in NP_ELEMENTWISE.items():
    put(f, np_samples(doms))
for f in (np.abs, np.fabs):  # away from the kink at 0, both signs
    put(f, lambda: [(a(3, 2, lo=0.2, hi=1.0) * np.array([1.0, -1.0]),), (-0.6,), (np.float64(0.45),)])
put(np.where, lambda: [(a(3, 2) > 0, a(3, 2), a(3, 2))])
put((np.trace, np.ndarray.trace), lambda: [(a(3, 3),)])
put((np.linalg.inv, np.linalg.det), lambda: [(spd(3).numpy(),)])
put(np.linalg.solve, lambda: [(spd(3).numpy(), a(3)), (spd(3).numpy(), a(3, 2))])
for f in (np.sum, np.ndarray.sum, np.mean, np.ndarray.mean, np.prod, np.ndarray.prod):
    put(f, lambda: [(a(3, 2),), (a(3, 2), 0), (a(3, 2), 1)])
for f in (np.sum, np.mean, np.prod):  # numbers, NumPy scalars, tuples and lists of them or of arrays
    put(f, lambda: [(0.7,), (np.float64(-1.3),), ((0.7, -1.3, 0.45),), ([0.7, np.float64(-1.3), 0.45],),
                    ([a(3), a(3)],), ([a(3), a(3)], 0), ((a(2), a(2)), 1)])
put(np.prod, lambda: [(np.array([0.7, 0.0, -1.3]),), (np.array([[0.7, 0.0], [0.0, 0.5]]), 0),
                      ([0.7, 0.0, -1.3],)])  # zero factors: the product of the others
for f in (np.max, np.amax, np.ndarray.max, np.min, np.amin, np.ndarray.min):
    put(f, lambda: [(tdistinct(3, 2).numpy(),), (tdistinct(3, 2).numpy(), 0)])
for f in (np.max, np.min):
    put(f, lambda: [(0.7,), ((0.7, -1.3, 0.45),), ([0.7, -1.3, 0.45],)])
put(np.array, lambda: [((0.7, -1.3),), ([0.7, np.float64(-1.3)],), ([[0.7, -1.3], [0.45, 2.0]],),
                       (a(3, 2),), (0.7,)])
put(np.asarray, lambda: [([0.7, -1.3],)])
put(np.stack, lambda: [([a(3), a(3)],), ((a(3, 2), a(3, 2)), 1)])
put(np.moveaxis, lambda: [(a(3, 2, 4), 0, 2)])
put(np.swapaxes, lambda: [(a(3, 2, 4), 0, 2)])
put((np.float64, np.float32), lambda: [(0.7,), (np.float64(-1.3),)], rtol=1e-3, h=1e-3)
put(np.float16, lambda: [(0.7,), (np.float64(-1.3),)], rtol=2e-2, atol=2e-2, h=2e-2)
for f in (np.dot, np.ndarray.dot):
    put(f, lambda: [(a(3), a(3)), (a(2, 3), a(3))])
put(np.matmul, lambda: [(a(2, 3), a(3, 2))])
put(np.outer, lambda: [(a(3), a(2))])
put((np.reshape,), lambda: [(a(3, 2), (2, 3))])
put((np.ndarray.reshape,), lambda: [(a(3, 2), 2, 3), (a(3, 2), (6,))])
put((np.transpose, np.ndarray.transpose), lambda: [(a(3, 2),)])
put(np.clip, lambda: [(a(3, 2), -0.5, 0.5)])
put(np.linalg.inv, lambda: [(np.stack([spd(3).numpy(), spd(3).numpy()]),)])
put(np.ndarray.astype, lambda: [(a(3, 2), np.float64)])
put(np.broadcast_to, lambda: [(a(3, 1), (3, 4)), (a(2), (3, 2))])
put(np.asarray, lambda: [(a(3, 2),), (0.7,)])
put(np.expand_dims, lambda: [(a(3, 2), 1)])
put((np.conj, np.conjugate, np.ndarray.conj, np.ndarray.conjugate), lambda: [(a(3, 2),)])
put((np.generic.conj, np.generic.conjugate), lambda: [(np.float64(0.7),)])
put(np_as_scalar, lambda: [(a(3, 2), 0.7), (a(3), np.float64(0.7))])
put(np_sum_to_shape, lambda: [(a(3, 2), a(2)), (a(3, 2), a(3, 1))])
put(np_index_back, lambda: [(a(3, 2), (1, 0), 0.7), (a(4), [0, 2, 0], a(3))])

# the NumPy rule modules' own samples, one file each (tests/samples_numpy_*.py)
import samples_numpy_inplace, samples_numpy_linalg, samples_numpy_reduce, samples_numpy_shape, samples_numpy_ufuncs  # noqa: E402,E501

for _m in (samples_numpy_ufuncs, samples_numpy_reduce, samples_numpy_shape, samples_numpy_linalg, samples_numpy_inplace):
    _m.register(put, sys.modules[__name__])

# ---------------------------------------------------------------- torch (function and method forms)


def tput(name, spec, fn_only=False, method_only=False, **opts):
    """Samples for ``torch.name`` and ``torch.Tensor.name`` (self first), for the forms that have rules."""
    fns = []
    if not method_only and hasattr(torch, name):
        fns.append(getattr(torch, name))
    if not fn_only and hasattr(torch.Tensor, name):
        fns.append(getattr(torch.Tensor, name))
    assert fns, name
    ruled = [f for f in fns if TABLE.lookup(f)]
    put(ruled or fns, spec, **opts)


for name in ("sin", "cos", "exp", "expm1", "exp2", "tanh", "sigmoid", "sinh", "cosh", "atan", "asinh", "erf",
             "erfc", "neg", "negative", "positive", "conj", "conj_physical", "deg2rad", "rad2deg", "clone",
             "square", "sgn", "frac", "relu", "abs", "absolute"):
    tput(name, lambda: [(t(3, 4),)])
for name in ("tan", "asin", "acos", "atanh"):
    tput(name, lambda: [(tu(3, 4),)])
for name in ("log", "log2", "log10", "log1p", "sqrt", "rsqrt", "reciprocal"):
    tput(name, lambda: [(tp(3, 4),)])
tput("acosh", lambda: [(t(3, 4, lo=1.2, hi=3.0),)])
tput("contiguous", lambda: [(t(3, 4),)], method_only=True)
for name in ("zeros_like", "ones_like"):
    tput(name, lambda: [(t(3, 4),)], fn_only=True)
for name in ("empty_like", "randn_like", "rand_like"):
    tput(name, lambda: [(t(3, 4),)], fn_only=True, random=True)
tput("detach", lambda: [(t(3, 4),)], nograd=True)
tput("full_like", lambda: [(t(3, 4), 2.5)], fn_only=True)
put(torch.full, Program(p_full))
put(torch.full, lambda: [((3, 4), 2.5)], h=1e-3, rtol=1e-3, atol=1e-3)   # (float32: the default dtype)
put(torch.Tensor.new_full, lambda: [(t(3), (3, 4), 2.5)])
for name in ("zeros", "ones"):
    tput(name, lambda: [(3, 4), ((2, 3),)], fn_only=True)
for name in ("empty", "randn", "rand"):
    tput(name, lambda: [(3, 4), ((2, 3),)], fn_only=True, random=True)
tput("arange", lambda: [(5,), (1, 4)], fn_only=True)
put((torch.Tensor.size,), lambda: [(t(3, 4),), (t(3, 4), 1)])
put((torch.Tensor.dim, torch.Tensor.numel), lambda: [(t(3, 4),)])
for name in ("argmax", "argmin"):
    tput(name, lambda: [(tdistinct(3, 4),), (tdistinct(3, 4), 1)])
tput("argsort", lambda: [(tdistinct(3, 4),), (tdistinct(3, 4), 0)])
for f in (torch.nn.functional.relu, torch.nn.functional.relu6, torch.nn.functional.gelu,
          torch.nn.functional.silu, torch.nn.functional.softplus, torch.nn.functional.elu,
          torch.nn.functional.leaky_relu, torch.nn.functional.logsigmoid, torch.nn.functional.tanh,
          torch.nn.functional.sigmoid, torch.nn.functional.hardtanh, torch.special.expit):
    put(f, lambda: [(t(3, 4) * 3,)])
for name in ("clamp", "clip"):
    tput(name, lambda: [(t(3, 4), -0.5, 0.5), (t(3, 4), t(3, 4, lo=-1, hi=-0.1), t(3, 4, lo=0.1, hi=1.0))])
tput("clamp_min", lambda: [(t(3, 4), -0.2), (t(3, 4), t(3, 4))])
tput("clamp_max", lambda: [(t(3, 4), 0.2), (t(3, 4), t(3, 4))])
put(torch.where, lambda: [(t(3, 4) > 0, t(3, 4), t(3, 4)), (t(3, 4) > 0, t(3, 4), 0.5)])
put(torch.Tensor.where, lambda: [(t(3, 4), t(3, 4) > 0, t(3, 4))])
for name in ("maximum", "minimum", "fmax", "fmin"):
    tput(name, lambda: [(t(3, 4), t(3, 4)), (t(3, 4), t(4))])
for name in ("pow", "float_power"):
    tput(name, lambda: [(tp(3, 4), t(3, 4)), (tp(3, 4), 2.0), (t(3, 4), 2)])
    tput(name, lambda: [(2.0, t(3, 4))], fn_only=True)
for name in ("add", "sub", "subtract", "rsub"):
    tput(name, lambda: [(t(3, 4), t(3, 4)), (t(3, 4), t(4)), (t(3, 4), 1.5)])
for name in ("mul", "multiply"):
    tput(name, lambda: [(t(3, 4), t(3, 4)), (t(3, 4), t(4, )), (t(3, 4), 1.5)])
for name in ("div", "divide", "true_divide"):
    tput(name, lambda: [(t(3, 4), tp(3, 4)), (t(3, 4), tp(4)), (t(3, 4), 1.5)])
for name in ("atan2", "arctan2", "hypot"):
    tput(name, lambda: [(tp(3, 4), t(3, 4)), (t(3, 4), tp(4))])
for name in ("remainder", "fmod"):
    tput(name, lambda: [(t(3, 4) * 5, tp(3, 4)), (t(3, 4) * 5, 1.3)])
put(torch.real, lambda: [(t(3, 4),), (torch.complex(t(3, 4), t(3, 4)),)])
tput("lerp", lambda: [(t(3, 4), t(3, 4), 0.3), (t(3, 4), t(3, 4), tp(3, 4))])
tput("addmm", lambda: [(t(2, 4), t(2, 3), t(3, 4)), (t(4), t(2, 3), t(3, 4))])
tput("masked_fill", lambda: [(t(3, 4), t(3, 4) > 0, 0.5), (t(3, 4), t(3, 4) > 0, torch.tensor(0.7, dtype=torch.float64))])
tput("xlogy", lambda: [(t(3, 4), tp(3, 4))])
put(torch.Tensor.item, lambda: [(t(1),), (t(()),)])
put(torch.Tensor.to, lambda: [(t(3, 4), torch.float64)])
put(torch.Tensor.to, lambda: [(t(3, 4), torch.float32)], h=1e-2, rtol=1e-2, atol=1e-2)
for m in (torch.Tensor.double, torch.Tensor.cpu):
    put(m, lambda: [(t(3, 4),)])
for m in (torch.Tensor.float, torch.Tensor.half):
    put(m, lambda: [(t(3, 4),)], h=5e-2, rtol=5e-2, atol=5e-2)
# bfloat16 keeps 8 significant bits (steps of 2**-8 near 0.5): a wider difference step keeps the
# rounding out of the finite differences
put(torch.Tensor.bfloat16, lambda: [(t(3, 4),)], h=0.25, rtol=5e-2, atol=5e-2)
put(torch.Tensor.cuda, Program(lambda x, y: x * y))  # no CUDA here: covered by its own GPU tests
put(torch.Tensor.type_as, lambda: [(t(3, 4), t(2))])
put(torch.Tensor.type_as, lambda: [(t(3, 4), t(2).float())], h=1e-2, rtol=1e-2, atol=1e-2)
for f in (torch.tensor, torch.as_tensor):
    put(f, lambda: [(1.5,), ([0.5, 1.5],)], h=1e-2, rtol=1e-3, atol=1e-3)
for name in ("sum", "nansum", "mean"):
    tput(name, lambda: [(t(3, 4),), (t(3, 4), 0), (t(3, 4), 1, True), (t(3, 4), (0, 1))])
tput("prod", lambda: [(tp(3, 4),), (tp(3, 4), 1), (t(3, 4), 0, True)])
for name in ("max", "min"):
    tput(name, lambda: [(tdistinct(3, 4),), (tdistinct(3, 4), 1), (tdistinct(3, 4), 0, True),
                        (tdistinct(3, 4), tdistinct(3, 4) + 0.05)])
for name in ("amax", "amin"):
    tput(name, lambda: [(tdistinct(3, 4),), (tdistinct(3, 4), 1), (tdistinct(3, 4), (0, 1), True)])
tput("norm", lambda: [(t(3, 4),), (t(3, 4), 1), (t(3, 4), 2, 1), (t(3, 4), "fro")])
put(torch.linalg.vector_norm, lambda: [(t(3, 4),), (t(3, 4), 1), (t(3, 4), 3, 1)])
put(torch.linalg.norm, lambda: [(t(3, 4),), (t(4),), (t(3, 4), "fro")])
tput("logsumexp", lambda: [(t(3, 4), 1), (t(3, 4), 0, True)])
tput("cumsum", lambda: [(t(3, 4), 1), (t(3, 4), 0)])
tput("cumprod", lambda: [(tp(3, 4), 1), (t(3, 4), 0)])
for name in ("var", "std"):
    tput(name, lambda: [(t(3, 4),), (t(3, 4), 1), (t(3, 4), 0, True)])
tput("trace", lambda: [(t(3, 3),), (t(3, 4),)])
tput("sort", lambda: [(tdistinct(3, 4),), (tdistinct(3, 4), 0, True)])
tput("topk", lambda: [(tdistinct(3, 4), 2), (tdistinct(3, 4), 2, 0)])
tput("matmul", lambda: [(t(2, 3), t(3, 4)), (t(3), t(3)), (t(2, 3), t(3)), (t(5, 2, 3), t(3, 4))])
put((operator.matmul, operator.imatmul), lambda: [(t(2, 3), t(3, 4)), (t(3), t(3)), (t(5, 2, 3), t(3))])
tput("mm", lambda: [(t(2, 3), t(3, 4))])
tput("bmm", lambda: [(t(5, 2, 3), t(5, 3, 4))])
tput("mv", lambda: [(t(2, 3), t(3))])
tput("dot", lambda: [(t(3), t(3))])
for name in ("outer", "ger"):
    tput(name, lambda: [(t(3), t(2))])
put(torch.einsum, lambda: [("ij,jk->ik", t(2, 3), t(3, 4)), ("ii", t(3, 3)), ("i,i->", t(3), t(3))])
put(torch.linalg.solve, lambda: [(spd(3), t(3, 2)), (spd(3), t(3))])
for f in (torch.linalg.inv, torch.inverse, torch.Tensor.inverse, torch.linalg.det, torch.det, torch.Tensor.det):
    put(f, lambda: [(spd(3),), (t(3, 3) + 3 * torch.eye(3, dtype=torch.float64),)])
put(torch.linalg.cholesky, lambda: [(spd(3),)], pre="(({0} + {0}.mT) * 0.5)")
put(torch.reshape, lambda: [(t(3, 4), (2, 6)), (t(3, 4), (-1,))])
put((torch.Tensor.reshape, torch.Tensor.view), lambda: [(t(3, 4), 2, 6), (t(3, 4), (12,)), (t(3, 4), -1)])
put((torch.Tensor.view_as, torch.Tensor.reshape_as), lambda: [(t(3, 4), t(2, 6))])
tput("squeeze", lambda: [(t(3, 1, 4),), (t(3, 1, 4), 1)])
tput("unsqueeze", lambda: [(t(3, 4), 0), (t(3, 4), -1)])
tput("flatten", lambda: [(t(2, 3, 4),), (t(2, 3, 4), 1)])
tput("ravel", lambda: [(t(3, 4),)])
tput("unflatten", lambda: [(t(3, 4), 1, (2, 2))])
for f in (torch.atleast_1d, torch.atleast_2d, torch.atleast_3d):
    put(f, lambda: [(t(3),), (t(()),)])
for name in ("transpose", "swapaxes", "swapdims"):
    tput(name, lambda: [(t(3, 4), 0, 1), (t(2, 3, 4), -1, 0)])
for name in ("t", "adjoint"):
    tput(name, lambda: [(t(3, 4),)])
put(torch.permute, lambda: [(t(2, 3, 4), (2, 0, 1))])
put(torch.Tensor.permute, lambda: [(t(2, 3, 4), 2, 0, 1), (t(2, 3, 4), (1, 2, 0))])
tput("movedim", lambda: [(t(2, 3, 4), 0, 2)])
put(torch.Tensor.expand, lambda: [(t(1, 4), 3, 4), (t(4), (2, 4))])
put(torch.Tensor.expand_as, lambda: [(t(1, 4), t(3, 4))])
tput("broadcast_to", lambda: [(t(1, 4), (3, 4))])
put(torch.flip, lambda: [(t(3, 4), (0,)), (t(3, 4), (0, 1))])
put(torch.Tensor.flip, lambda: [(t(3, 4), 0), (t(3, 4), (0, 1))])
tput("roll", lambda: [(t(3, 4), 1, 1), (t(3, 4), (1, 2), (0, 1))])
for name in ("tril", "triu"):
    tput(name, lambda: [(t(3, 4),), (t(3, 4), 1)])
tput("diagonal", lambda: [(t(3, 4),), (t(3, 4), 1)])
tput("diag", lambda: [(t(3, 4),), (t(3),)])
tput("diag_embed", lambda: [(t(2, 3),)])
tput("narrow", lambda: [(t(3, 4), 1, 1, 2)])
for f in (torch.cat, torch.concat, torch.concatenate):
    put(f, lambda: [([t(2, 3), t(1, 3)],), ((t(2, 3), t(2, 1)), 1)])
put(torch.stack, lambda: [([t(2, 3), t(2, 3)],), ((t(2, 3), t(2, 3)), 1)])
for f in (torch.split, torch.Tensor.split):
    put(f, lambda: [(t(5, 3), 2), (t(5, 3), [2, 3]), (t(3, 5), 2, 1)])
tput("chunk", lambda: [(t(5, 3), 2), (t(3, 5), 3, 1)])
tput("unbind", lambda: [(t(3, 4),), (t(3, 4), 1)])
tput("gather", lambda: [(t(3, 4), 1, torch.tensor([[0, 1], [2, 3], [1, 1]]))])
tput("take_along_dim", lambda: [(t(3, 4), torch.tensor([[0, 1], [2, 3], [1, 1]]), 1)])
tput("index_select", lambda: [(t(3, 4), 0, torch.tensor([0, 2, 2])), (t(3, 4), 1, torch.tensor([3, 0]))])
put(torch.nn.functional.linear, lambda: [(t(2, 3), t(4, 3), t(4)), (t(2, 3), t(4, 3))])
put(torch.conv1d, lambda: [(t(1, 2, 7), t(3, 2, 3), t(3)), (t(1, 2, 7), t(3, 2, 3), None, 2, 1)])
put(torch.conv2d, lambda: [(t(1, 1, 4, 4), t(2, 1, 2, 2), t(2)), (t(1, 2, 3, 3), t(1, 2, 2, 2), None, 1, 1)])
put(torch.conv3d, lambda: [(t(1, 1, 3, 3, 3), t(1, 1, 2, 2, 2), t(1))])
for f in (torch.nn.functional.softmax, torch.nn.functional.log_softmax, torch.softmax, torch.Tensor.softmax,
          torch.log_softmax, torch.Tensor.log_softmax):
    put(f, lambda: [(t(3, 4), 1), (t(3, 4), 0)])
# (fixed values, away from out's kink at 0; the shared generator's draws stay as the other samples expect)
put(tensor_backward.relu_back, lambda: [(torch.linspace(-1.0, 1.0, 12, dtype=torch.float64).reshape(3, 4),
                                         torch.linspace(-0.95, 1.05, 12, dtype=torch.float64).reshape(3, 4))])
put(torch.nn.functional.cross_entropy, lambda: [(t(3, 4), torch.tensor([0, 3, 1])), (t(3, 4), torch.softmax(t(3, 4), 1))])
put(torch.nn.functional.mse_loss, lambda: [(t(3, 4), t(3, 4))])
put(torch.nn.functional.layer_norm, lambda: [(t(3, 4), (4,), t(4), t(4)), (t(3, 4), (4,))])
put(torch.nn.functional.dropout, lambda: [(t(3, 4), 0.5, False)])
put(torch.dropout, lambda: [(t(3, 4), 0.5, False)])
# in-place methods: called on a clone of the first argument (the clone is part of the program)
CLONE = "{0}.clone()"
for name in ("add_", "sub_", "mul_"):
    put(getattr(torch.Tensor, name), lambda: [(t(3, 4), t(3, 4)), (t(3, 4), t(4)), (t(3, 4), 1.5)], pre=CLONE)
put(torch.Tensor.div_, lambda: [(t(3, 4), tp(3, 4)), (t(3, 4), 1.5)], pre=CLONE)
put(torch.Tensor.pow_, lambda: [(tp(3, 4), 2.0), (tp(3, 4), t(3, 4))], pre=CLONE)
for name in ("neg_", "sin_", "cos_", "exp_", "tanh_", "sigmoid_", "relu_"):
    put(getattr(torch.Tensor, name), lambda: [(t(3, 4),)], pre=CLONE)
for name in ("log_", "sqrt_"):
    put(getattr(torch.Tensor, name), lambda: [(tp(3, 4),)], pre=CLONE)
put(torch.Tensor.clamp_, lambda: [(t(3, 4), -0.5, 0.5)], pre=CLONE)
put(torch.Tensor.copy_, lambda: [(t(3, 4), t(3, 4)), (t(3, 4), t(4))], pre=CLONE)
put(torch.Tensor.zero_, lambda: [(t(3, 4),)], pre=CLONE)
put(torch.Tensor.fill_, lambda: [(t(3, 4), 2.5)], pre=CLONE)
if hasattr(ops, "setitem_v"):
    put(ops.setitem_v, Program(p_setitem))
    put(ops.setitem_v, Program(p_augmented))
put(torch.nn.functional.embedding, lambda: [(torch.tensor([0, 2, 2]), t(4, 3))])


# ================================================================ the checks

def _fn_id(fn):
    mod = getattr(fn, "__module__", None) or getattr(getattr(fn, "__objclass__", None), "__module__", "")
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
    return f"{mod}.{name}" if mod else name


def _is_float_tensor(v):
    return isinstance(v, torch.Tensor) and (v.dtype.is_floating_point or v.dtype.is_complex)


def _is_float_array(v):
    return isinstance(v, np.ndarray) and v.dtype.kind in "fc"


class _Weights:
    """Fixed weights that turn any output into a real scalar, with a source expression."""

    def __init__(self):
        self.env = {}

    def expr(self, v, path):
        if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
            return None
        if isinstance(v, float):
            return path
        if isinstance(v, complex):
            return f"(({path}).real + 0.37 * ({path}).imag)"
        if _is_float_tensor(v):
            if v.dtype.is_complex:
                return f"(torch.view_as_real({path}) * {self._w(torch.view_as_real(v).shape)}).sum()"
            w = self._w(v.shape).to(v.dtype)
            name = f"W{len(self.env)}"
            self.env[name] = w
            return f"({path} * {name}).sum()"
        if _is_float_array(v):
            name = f"W{len(self.env)}"
            self.env[name] = np.linspace(0.3, 1.1, v.size).reshape(v.shape) if v.shape else np.float64(0.7)
            return f"np.sum(np.multiply({path}, {name}))"
        if isinstance(v, (tuple, list)):
            parts = [self.expr(x, f"{path}[{i}]") for i, x in enumerate(v)]
            parts = [p for p in parts if p is not None]
            return " + ".join(parts) if parts else None
        return None

    def _w(self, shape):
        n = math.prod(shape)
        return torch.linspace(0.3, 1.1, n, dtype=torch.float64).reshape(shape) if n else torch.zeros(shape)


def _wrappers(fn, args, pre=None):
    """Two scalar functions of ``args`` calling ``fn``: statically and through a dict at run time."""
    params = [f"a{i}" for i in range(len(args))]
    call = list(params)
    if pre:
        call[0] = pre.format("a0")
        y = eval(f"lambda a0: {call[0]}")(args[0])
        y = fn(y, *args[1:])
    else:
        y = fn(*args)
    w = _Weights()
    out = w.expr(y, "y")
    ps, cs = ", ".join(params), ", ".join(call)
    env = dict(w.env, FN=fn, TBL={"f": fn}, torch=torch, np=np)
    body = f"    return {out}\n" if out is not None else "    return 0.0\n"
    src = (f"def static_call({ps}):\n    y = FN({cs})\n{body}"
           f"def dynamic_call({ps}):\n    y = TBL['f']({cs})\n{body}"
           f"def raw_call({ps}):\n    return FN({cs})\n")
    fname = f"<rule sample {_fn_id(fn)} #{next(_COUNTER)}>"
    linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
    exec(compile(src, fname, "exec"), env)
    return env["static_call"], env["dynamic_call"], env["raw_call"], out is not None


class _TZ(torch.autograd.Function):
    """Value and backward of a scalar function, both from torchzygote (for gradcheck)."""

    @staticmethod
    def forward(ctx, f, args, idx, *tensors):
        xs = list(args)
        for i, tv in zip(idx, tensors):
            xs[i] = tv.detach()
        yv, back = tz.pullback(f, *xs)
        ctx.back, ctx.idx, ctx.shapes = back, idx, [tv.shape for tv in tensors]
        ctx.like = tensors
        return torch.as_tensor(float(yv), dtype=torch.float64)

    @staticmethod
    def backward(ctx, dy):
        g = ctx.back(float(dy))
        out = []
        for i, tv in zip(ctx.idx, ctx.like):
            gi = g[i]
            out.append(torch.zeros_like(tv) if gi is None else torch.as_tensor(gi, dtype=tv.dtype).expand(tv.shape).clone())
        return (None, None, None) + tuple(out)


def _array_fd(f, args, i, h=1e-6):
    x = args[i]
    g = np.zeros_like(x)
    for j in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[j] += h
        xm[j] -= h
        ap, am = list(args), list(args)
        ap[i], am[i] = xp, xm
        g[j] = (f(*ap) - f(*am)) / (2 * h)
    return g


def _declared(fn, args):
    """Which argument positions the selected rule gives a derivative for."""
    rule = select(fn, [kind_of(v) for v in args])
    if rule is None:
        return set(range(len(args)))
    out = set()
    for i in range(len(args)):
        p = rule.params[i] if i < len(rule.params) else rule.vararg
        if p in rule.grads:
            out.add(i)
    return out


def _check_sample(fn, args, opts):
    static, dynamic, raw, has_out = _wrappers(fn, args, opts.get("pre"))
    h, rtol, atol = opts.get("h", 1e-6), opts.get("rtol", 1e-5), opts.get("atol", 1e-6)
    declared = _declared(fn, args)
    if not opts.get("random") and not opts.get("pre"):
        _same_value(tz.pullback(raw, *args)[0], fn(*args))
    g_static = None
    for f in (static, dynamic):
        g = tz.gradient(f, *args)
        if f is dynamic and g_static is not None:
            # the run-time path must agree with the inlined rule (checked numerically below)
            for i, (gd, gs) in enumerate(zip(g, g_static)):
                assert _same_grad(gd, gs), f"dynamic_call arg {i}: {gd!r} vs static_call {gs!r}"
            continue
        assert isinstance(g, tuple) and len(g) == len(args), g
        if not has_out or opts.get("nograd") or opts.get("random"):
            assert all(gi is None or _is_zero(gi) for gi in g), f"{f.__name__}: no gradient expected, got {g}"
            continue
        g_static = g
        fd = fd_gradient(f, args, h=h)
        for i, (gi, wi) in enumerate(zip(g, fd)):
            if wi is not None and i in declared:
                assert close(gi, wi, rtol, atol), \
                    f"{f.__name__} arg {i}: torchzygote {gi!r} vs finite difference {wi!r}"
        tidx = [i for i, v in enumerate(args) if isinstance(v, torch.Tensor) and v.dtype == torch.float64]
        if tidx:
            tensors = [args[i].clone().requires_grad_(True) for i in tidx]
            assert torch.autograd.gradcheck(lambda *ts: _TZ.apply(f, args, tidx, *ts), tensors,
                                            eps=h, atol=max(atol, 1e-5), rtol=max(rtol, 1e-4)), f.__name__
        for i, v in enumerate(args):
            if _is_float_array(v):
                want = _array_fd(f, args, i, h)
                assert np.allclose(want, 0.0, atol=atol) if g[i] is None else \
                    np.allclose(np.asarray(g[i], dtype=np.float64), want, rtol=rtol, atol=atol), \
                    f"{f.__name__} arg {i}: torchzygote {g[i]!r} vs finite difference {want!r}"


def _same_grad(a, b):
    if a is None or b is None:
        return (a is None or _is_zero(a)) and (b is None or _is_zero(b))
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.allclose(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64),
                              rtol=1e-9, atol=1e-12, equal_nan=True)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same_grad(x, y) for x, y in zip(a, b))
    try:
        if cmath.isnan(complex(a)) and cmath.isnan(complex(b)):
            return True
    except TypeError:
        pass
    return close(a, b, 1e-9, 1e-12)


def _same_value(got, want):
    if isinstance(want, torch.Tensor):
        assert isinstance(got, torch.Tensor) and torch.equal(got, want) or torch.allclose(got, want, equal_nan=True)
    elif isinstance(want, np.ndarray):
        assert np.allclose(got, want)
    elif isinstance(want, (tuple, list)):
        assert len(got) == len(want)
        for x, y in zip(got, want):
            _same_value(x, y)
    elif isinstance(want, (int, float, complex)) and not isinstance(want, bool):
        assert close(got, want, rtol=1e-12, atol=1e-12), (got, want)
    else:
        assert got == want


def _is_zero(g):
    if isinstance(g, torch.Tensor):
        return bool((g == 0).all())
    if isinstance(g, np.ndarray):
        return bool((g == 0).all())
    if isinstance(g, (tuple, list)):
        return all(x is None or _is_zero(x) for x in g)
    try:
        return g == 0
    except Exception:
        return False


def _check_program(prog):
    from conftest import check_fd
    for args in prog.inputs:
        check_fd(prog.fn, args)


def _all_fns():
    return list(TABLE.rules)


@pytest.mark.parametrize("fn", _all_fns(), ids=[_fn_id(f) for f in _all_fns()])
def test_rule(fn):
    assert fn in SAMPLES, (f"rule for {_fn_id(fn)} has no entry in tests/test_rules_generic.py SAMPLES: "
                           f"add its input domain (sample arguments) or a Program exercising it")
    rules = TABLE.rules[fn]
    samples, programs = [], []
    for spec in SAMPLES[fn]:
        if isinstance(spec, Program):
            programs.append(spec)
        else:
            make, opts = spec
            samples += [(args, opts) for args in make()]
    covered = [False] * len(rules)
    failures = []
    for args, opts in samples:
        # with ``pre``, the rule sees the first argument as ``pre`` makes it (a list built from an array)
        called = args if not opts.get("pre") else (eval(f"lambda a0: {opts['pre'].format('a0')}")(args[0]),) + args[1:]
        kinds = [kind_of(v) for v in called]
        hit = [i for i, r in enumerate(rules) if r.applies(kinds)]
        if not hit:
            continue
        for i in hit:
            covered[i] = True
        try:
            _check_sample(fn, args, opts)
        except Exception as e:  # collect all failing samples of this rule
            failures.append(f"{_fn_id(fn)}{_short(args)} kinds {kinds}: {type(e).__name__}: {str(e)[:400]}")
    for prog in programs:
        try:
            _check_program(prog)
        except Exception as e:
            failures.append(f"program {prog.fn.__name__}: {type(e).__name__}: {str(e)[:400]}")
    assert not failures, "\n".join(failures)
    assert programs or any(covered), f"no sample of {_fn_id(fn)} matches any of its rules' kinds: add one"


def _short(args):
    return "(" + ", ".join(f"T{tuple(v.shape)}" if isinstance(v, torch.Tensor) else
                           f"A{v.shape}" if isinstance(v, np.ndarray) else repr(v) for v in args) + ")"


def test_every_sample_entry_has_a_rule():
    # entries for functions that lost their rule are stale (likely renamed): keep the table honest
    stale = [_fn_id(f) for f in SAMPLES if f not in TABLE.rules and not TABLE.is_nondiff(f)]
    assert not stale, f"SAMPLES entries without a rule: {stale}"


# ================================================================ numpy at second order

NP_SECOND = [f for f in dict.fromkeys(NP_NATIVE + [np_as_scalar, np_sum_to_shape]) if f in SAMPLES]


def _is_float_value(v):
    return isinstance(v, float) or _is_float_array(v)


def _gradient_sum(static, idx, vs):
    """``x -> <gradient of static at x, vs>``: a function of ``x`` differentiated again."""
    def gsum(*xs):
        g = tz.gradient(static, *xs)
        s = 0.0
        for i in idx:
            gi = g[i]
            if gi is not None:
                s = s + np.sum(gi * vs[i])
        return s
    return gsum


@pytest.mark.parametrize("fn", NP_SECOND, ids=[_fn_id(f) for f in NP_SECOND])
def test_numpy_second_order(fn):
    """Every numpy rule on every sample: a gradient has its argument's type (a float for a Python
    float, np.float64 for np.float64, an array of the argument's shape for an array), and the gradient
    of the gradient (a Hessian-vector product) matches central differences of the gradient."""
    failures = []
    for spec in SAMPLES[fn]:
        if isinstance(spec, Program):
            continue
        make, opts = spec
        for args in make():
            if any(isinstance(v, complex) for v in args):
                continue
            try:
                static = _wrappers(fn, args, opts.get("pre"))[0]
                declared = _declared(fn, args)
                g = tz.gradient(static, *args)
                for i, (v, gi) in enumerate(zip(args, g)):
                    if gi is None or i not in declared or not _is_float_value(v):
                        continue
                    if isinstance(v, np.ndarray):
                        assert isinstance(gi, np.ndarray) and gi.shape == v.shape, (i, type(gi), np.shape(gi))
                    else:
                        assert type(gi) is type(v), f"arg {i}: gradient {gi!r} of {type(v).__name__} {v!r}"
                idx = [i for i, v in enumerate(args) if _is_float_value(v) and i in declared]
                vs = {i: (np.linspace(0.4, 1.2, args[i].size).reshape(args[i].shape)
                          if isinstance(args[i], np.ndarray) else 0.7) for i in idx}
                gsum = _gradient_sum(static, idx, vs)
                h2 = opts.get("h", 1e-5) * 10
                rtol, atol = max(opts.get("rtol", 1e-5), 1e-4), max(opts.get("atol", 1e-6), 1e-5)
                hv = tz.gradient(gsum, *args)
                fd = fd_gradient(gsum, args, h=h2)
                for i, v in enumerate(args):
                    if isinstance(v, np.ndarray) and _is_float_array(v):
                        want = _array_fd(gsum, args, i, h2)
                        got = 0.0 if hv[i] is None else np.asarray(hv[i], dtype=np.float64)
                        assert np.allclose(got, want, rtol=rtol, atol=atol), (i, hv[i], want)
                    elif fd[i] is not None and i in declared:
                        assert close(hv[i], fd[i], rtol, atol), (i, hv[i], fd[i])
            except Exception as e:
                failures.append(f"{_fn_id(fn)}{_short(args)}: {type(e).__name__}: {str(e)[:300]}")
    assert not failures, "\n".join(failures)
