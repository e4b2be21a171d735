"""A corpus of small programs over containers, objects and mutation.

Each program is registered with ``@case(args, ...)``: one or more tuples of
arguments (templates: every run gets a deep copy, since programs may mutate
their arguments) and, for programs whose state lives outside (globals,
closures), a ``reset`` that puts that state back and a ``state`` that returns a
snapshot of it. test_corpus_structures.py checks, for each argument tuple:

* torchzygote's gradient against central finite differences in float64, leaf
  by leaf through nested tuples, lists, dicts, objects and tensors;
* that after the gradient the arguments and the outside state are what running
  the program once leaves them;
* that the value torchzygote's forward computes is the program's value.

The helpers for structures (``float_leaves``, ``fd_struct``, ``grad_at``,
``snapshot``) live here too; test_stdlib.py uses them.
"""
import copy
import dataclasses
import functools
import math
import operator
from collections import namedtuple
from typing import NamedTuple

import torch

CORPUS = []


class Case:
    def __init__(self, fn, argsets, reset=None, state=None):
        self.fn, self.argsets, self.reset, self.state = fn, argsets, reset, state

    @property
    def name(self):
        return self.fn.__name__


def case(*argsets, reset=None, state=None):
    def reg(fn):
        CORPUS.append(Case(fn, [a if type(a) is tuple else (a,) for a in argsets], reset, state))
        return fn
    return reg


# ================================================================ structure helpers

def _is_nt(x):
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _fields(obj):
    names = list(vars(obj)) if hasattr(obj, "__dict__") else []
    for cls in type(obj).__mro__:
        for s in getattr(cls, "__slots__", ()):
            if s not in ("__dict__", "__weakref__") and s not in names and hasattr(obj, s):
                names.append(s)
    return names


def float_leaves(x, path=(), seen=None):
    """Paths to every float (and float tensor element) inside ``x``."""
    seen = set() if seen is None else seen
    if isinstance(x, bool):
        return []
    if isinstance(x, float):
        return [path]
    if isinstance(x, torch.Tensor):
        if not x.dtype.is_floating_point:
            return []
        return [path + (("t", idx),) for idx in _tensor_indices(x)]
    if isinstance(x, (int, str, bytes, complex, type(None))) or callable(x) and not hasattr(x, "__dict__"):
        return []
    if id(x) in seen:
        return []
    if not isinstance(x, tuple):
        seen.add(id(x))
    if _is_nt(x):
        return [p for f, v in zip(x._fields, x) for p in float_leaves(v, path + (("a", f),), seen)]
    if isinstance(x, (tuple, list)):
        return [p for i, v in enumerate(x) for p in float_leaves(v, path + (("i", i),), seen)]
    if isinstance(x, dict):
        return [p for k, v in x.items() for p in float_leaves(v, path + (("k", k),), seen)]
    if hasattr(x, "__dict__") or hasattr(type(x), "__slots__"):
        return [p for f in _fields(x) for p in float_leaves(getattr(x, f), path + (("a", f),), seen)]
    return []


def _tensor_indices(t):
    import itertools
    return list(itertools.product(*[range(n) for n in t.shape]))


def get_path(x, path):
    for kind, k in path:
        if kind == "i":
            x = x[k]
        elif kind == "k":
            x = x[k]
        elif kind == "a":
            x = getattr(x, k)
        else:
            x = x[k].item()
    return x


def set_path(x, path, v):
    """``x`` with the leaf at ``path`` replaced by ``v``: mutable parents are
    changed in place, immutable ones rebuilt."""
    if not path:
        return v
    (kind, k), rest = path[0], path[1:]
    if kind == "t":
        x[k] = v
        return x
    if kind == "a":
        if _is_nt(x):
            return x._replace(**{k: set_path(getattr(x, k), rest, v)})
        object.__setattr__(x, k, set_path(getattr(x, k), rest, v))
        return x
    if isinstance(x, tuple):
        xs = list(x)
        xs[k] = set_path(xs[k], rest, v)
        return tuple(xs)
    x[k] = set_path(x[k], rest, v)
    return x


def fd_struct(f, args, reset=None, h=1e-6):
    """Central differences of real-valued ``f(*args)`` at each float leaf of ``args``:
    a list of (argument index, path, derivative)."""
    def run(a):
        if reset is not None:
            reset()
        y = f(*a)
        return float(y)

    out = []
    for i, a in enumerate(args):
        for path in float_leaves(a):
            x0 = get_path(a, path)

            def at(v):
                new = copy.deepcopy(args)
                new = list(new)
                new[i] = set_path(new[i], path, v)
                return run(new)

            out.append((i, path, (at(x0 + h) - at(x0 - h)) / (2 * h)))
    return out


def grad_at(g, path):
    """The gradient's entry at a value path; ``None`` for missing parts (zero)."""
    for kind, k in path:
        if g is None:
            return None
        if kind == "t":
            if not isinstance(g, torch.Tensor):
                raise AssertionError(f"expected a tensor gradient, got {g!r}")
            return g[k].item()
        if kind == "a":
            if isinstance(g, dict):
                g = g.get(k)
            else:
                g = getattr(g, k, None)
        elif kind == "k":
            if not isinstance(g, dict):
                raise AssertionError(f"expected a dict gradient, got {type(g).__name__}: {g!r}")
            g = g.get(k)
        else:
            if not isinstance(g, (tuple, list)):
                raise AssertionError(f"expected a tuple/list gradient, got {type(g).__name__}: {g!r}")
            g = g[k] if k < len(g) else None
    return g


def check_shape(value, g, where="arg"):
    """The gradient mirrors the value: tuple for tuple, list for list, dict for
    dict, Record for objects and named tuples."""
    import torchzygote as tz
    if g is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, torch.Tensor):
        assert isinstance(g, torch.Tensor), f"{where}: tensor gradient expected, got {g!r}"
        assert g.shape == value.shape, f"{where}: shape {tuple(g.shape)} vs {tuple(value.shape)}"
        return
    if _is_nt(value):
        assert isinstance(g, tz.Record), f"{where}: Record expected for a named tuple, got {g!r}"
        for f, v in zip(value._fields, value):
            check_shape(v, getattr(g, f, None), f"{where}.{f}")
        return
    if isinstance(value, tuple):
        assert type(g) is tuple and len(g) == len(value), f"{where}: tuple expected, got {g!r}"
        for i, (v, gi) in enumerate(zip(value, g)):
            check_shape(v, gi, f"{where}[{i}]")
        return
    if isinstance(value, list):
        assert type(g) is list and len(g) == len(value), f"{where}: list expected, got {g!r}"
        for i, (v, gi) in enumerate(zip(value, g)):
            check_shape(v, gi, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        assert type(g) is dict and set(g) <= set(value), f"{where}: dict expected, got {g!r}"
        for k, gi in g.items():
            check_shape(value[k], gi, f"{where}[{k!r}]")
        return
    if hasattr(value, "__dict__") or hasattr(type(value), "__slots__"):
        assert isinstance(g, tz.Record), f"{where}: Record expected for {type(value).__name__}, got {g!r}"


def snapshot(x, seen=None):
    """A comparable plain copy of a structure (objects become (type, fields))."""
    seen = set() if seen is None else seen
    if isinstance(x, torch.Tensor):
        return ("tensor", x.tolist())
    if isinstance(x, (int, float, str, bool, complex, type(None), bytes)):
        return x
    if id(x) in seen:
        return ("cycle",)
    seen = seen | {id(x)}
    if _is_nt(x):
        return (type(x).__name__, tuple(snapshot(v, seen) for v in x))
    if isinstance(x, tuple):
        return tuple(snapshot(v, seen) for v in x)
    if isinstance(x, list):
        return [snapshot(v, seen) for v in x]
    if isinstance(x, dict):
        return {k: snapshot(v, seen) for k, v in x.items()}
    if callable(x) and not hasattr(type(x), "__slots__") and not hasattr(x, "__dict__"):
        return repr(x)
    if hasattr(x, "__dict__") or hasattr(type(x), "__slots__"):
        return (type(x).__name__, {f: snapshot(getattr(x, f), seen) for f in _fields(x)})
    return repr(x)


def same(a, b, rel=1e-12):
    """Snapshots equal, floats to ``rel``."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-300) or a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], rel) for k in a)
    return a == b


# ================================================================ classes used by the programs

class P:
    def __init__(self, x, y):
        self.x = x
        self.y = y

    def norm2(self):
        return self.x * self.x + self.y * self.y

    def scale(self, k):
        return P(self.x * k, self.y * k)

    def shift(self, d):
        self.x = self.x + d
        self.y += d
        return self

    @property
    def r(self):
        return math.sqrt(self.x ** 2 + self.y ** 2)

    @staticmethod
    def dot(a, b):
        return a.x * b.x + a.y * b.y

    @classmethod
    def polar(cls, r, t):
        return cls(r * math.cos(t), r * math.sin(t))


class Vec:
    def __init__(self, *xs):
        self.xs = list(xs)

    def __add__(self, o):
        if isinstance(o, Vec):
            return Vec(*[a + b for a, b in zip(self.xs, o.xs)])
        return Vec(*[a + o for a in self.xs])

    def __radd__(self, o):
        return self + o

    def __sub__(self, o):
        return self + (-o)

    def __neg__(self):
        return Vec(*[-a for a in self.xs])

    def __mul__(self, k):
        return Vec(*[a * k for a in self.xs])

    def __rmul__(self, k):
        return self * k

    def __matmul__(self, o):
        return sum(a * b for a, b in zip(self.xs, o.xs))

    def __getitem__(self, i):
        return self.xs[i]

    def __setitem__(self, i, v):
        self.xs[i] = v

    def __len__(self):
        return len(self.xs)

    def __iter__(self):
        return iter(self.xs)

    def __truediv__(self, k):
        return Vec(*[a / k for a in self.xs])

    def __abs__(self):
        return math.sqrt(self @ self)


class Poly:
    def __init__(self, coeffs):
        self.coeffs = coeffs

    def __call__(self, x):
        acc = 0.0
        for c in reversed(self.coeffs):
            acc = acc * x + c
        return acc


class Shape:
    def __init__(self, scale):
        self.scale = scale

    def area(self):
        return 0.0

    def describe(self):
        return self.area() * self.scale


class Square(Shape):
    def __init__(self, side, scale=1.0):
        super().__init__(scale)
        self.side = side

    def area(self):
        return self.side * self.side


class Circle(Shape):
    def __init__(self, radius, scale=1.0):
        Shape.__init__(self, scale)
        self.radius = radius

    def area(self):
        return math.pi * self.radius ** 2

    def describe(self):
        return super().describe() + self.radius


class Counter:
    def __init__(self):
        self.n = 0
        self.total = 0.0

    def add(self, v):
        self.n += 1
        self.total += v


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a, b):
        self.a = a
        self.b = b


class Dyn:
    def __init__(self, base):
        self.base = base

    def __getattr__(self, name):
        if name.startswith("times_"):
            return self.base * int(name[6:])
        raise AttributeError(name)


class Node:
    def __init__(self, val, nxt=None):
        self.val = val
        self.next = nxt


@dataclasses.dataclass
class DC:
    a: float
    b: float = 2.0

    def mix(self):
        return self.a * self.b


@dataclasses.dataclass(frozen=True)
class FDC:
    u: float
    v: float

    def norm(self):
        return math.hypot(self.u, self.v)


NT = namedtuple("NT", ["p", "q"])


class TNT(NamedTuple):
    lo: float
    hi: float

    def width(self):
        return self.hi - self.lo


# ================================================================ attributes, properties, methods

@case(P(1.2, 0.7), P(-0.4, 2.5))
def attr_read(p):
    return p.x * p.y + p.x


@case(P(1.2, 0.7))
def attr_property(p):
    return p.r * p.x


@case(P(1.2, 0.7))
def method_bound(p):
    return p.norm2() + 1.0


@case(P(1.2, 0.7))
def method_unbound(p):
    return P.norm2(p) * 2.0


@case(P(1.2, 0.7))
def method_bound_stored(p):
    m = p.norm2
    return m() + m()


@case((P(1.2, 0.7), P(0.3, -1.1)))
def method_static(p, q):
    return P.dot(p, q) + p.dot(q, q)


@case((1.3, 0.4))
def method_classmethod(r, t):
    p = P.polar(r, t)
    return p.x + 2 * p.y


@case((1.3, 0.6))
def method_returns_new(x, k):
    return P(x, x * x).scale(k).norm2()


@case(P(1.2, 0.7))
def method_mutates_self(p):
    q = p.shift(0.5)
    return q.x * p.y


@case((0.9, 1.4))
def getattr_setattr_builtin(x, y):
    p = P(x, y)
    setattr(p, "x", getattr(p, "y") * x)
    return getattr(p, "x") + p.y


@case((0.9, 1.4))
def getattr_default(x, y):
    p = P(x, y)
    z = getattr(p, "z", x * 3)
    return z + getattr(p, "y", 0.0)


@case(1.7)
def getattr_dunder(x):
    d = Dyn(x)
    return d.times_3 + d.base


@case((0.8, 1.9))
def hasattr_branch(x, y):
    p = P(x, y)
    if hasattr(p, "x"):
        return p.x * y
    return y


@case(1.3)
def inherit_override(s):
    return Square(s).describe()


@case((1.3, 0.5))
def inherit_super_init(s, k):
    sq = Square(s, k)
    return sq.scale * sq.side


@case((0.8, 1.5))
def inherit_super_method(r, k):
    return Circle(r, k).describe()


@case((0.8, 1.5))
def inherit_polymorphic_list(r, s):
    shapes = [Circle(r), Square(s), Circle(s, r)]
    return sum(sh.describe() for sh in shapes)


@case((0.8, 1.5))
def isinstance_dispatch(r, s):
    total = 0.0
    for sh in [Circle(r), Square(s)]:
        if isinstance(sh, Square):
            total += sh.side * 3
        else:
            total += sh.area()
    return total


# ================================================================ operator overloading

@case((1.1, 0.4, -0.3, 2.0))
def op_add(a, b, c, d):
    v = Vec(a, b) + Vec(c, d)
    return v[0] * v[1]


@case((1.1, 0.4, -0.3, 2.0))
def op_sub_neg(a, b, c, d):
    v = Vec(a, b) - Vec(c, d)
    w = -v
    return w[0] + 3 * w[1]


@case((1.1, 0.4, 1.7))
def op_mul_rmul(a, b, k):
    v = Vec(a, b) * k
    w = k * Vec(b, a)
    return v[0] * w[1] + v[1]


@case((1.1, 0.4, -0.3, 2.0))
def op_matmul(a, b, c, d):
    return Vec(a, b) @ Vec(c, d)


@case((1.1, 0.4, 2.2))
def op_radd_scalar(a, b, s):
    v = s + Vec(a, b)
    return v[0] * v[1]


@case((1.1, 0.4, -0.3, 2.0))
def op_radd_sum(a, b, c, d):
    v = sum([Vec(a, b), Vec(c, d), Vec(a, d)])
    return v[0] + v[1] * v[1]


@case((1.1, 0.4, 2.2))
def op_truediv(a, b, k):
    v = Vec(a, b) / k
    return v[0] - v[1]


@case((1.1, 0.4))
def op_abs(a, b):
    return abs(Vec(a, b))


@case((1.1, 0.4, 0.9))
def op_getitem_slice(a, b, c):
    v = Vec(a, b, c)
    return sum(v[1:]) * v[0]


@case((1.1, 0.4, 0.9))
def op_setitem(a, b, c):
    v = Vec(a, b, c)
    v[1] = v[0] * c
    v[2] = v[1] + v[2]
    return v[1] * v[2]


def op_iter_len(a, b):
    v = Vec(a, b, a * b)
    acc = 0.0
    for x in v:
        acc += x / len(v)
    return acc


@case((0.5, 1.5, -0.7, 1.3))
def op_call(c0, c1, c2, x):
    return Poly([c0, c1, c2])(x)


@case((0.5, 1.5, 1.3))
def op_call_twice(c0, c1, x):
    p = Poly([c0, c1])
    return p(p(x))


# ================================================================ tuples, lists, strings: indexing and slicing

@case(((1.2, 0.5, -0.8),))
def tuple_index(t):
    return t[0] * t[-1] + t[1]


@case(((1.2, 0.5, -0.8, 2.0),))
def tuple_slice(t):
    a = t[1:3]
    b = t[::2]
    return a[0] * b[1] + sum(t[-2:])


@case(((1.2, 0.5, -0.8, 2.0),))
def tuple_unpack_star(t):
    first, *mid, last = t
    return first * last + sum(mid)


@case(((1.2, 0.5), (-0.8, 2.0)))
def tuple_concat_repeat(a, b):
    c = a + b
    d = a * 2
    return c[2] * c[1] + d[2] * d[3]


@case((((1.2, 0.5), (0.3, -0.8)),))
def tuple_nested(t):
    (a, b), (c, d) = t
    return a * d - b * c


@case(([1.2, 0.5, -0.8, 2.0],))
def list_index_slice(xs):
    ys = xs[1:]
    return xs[0] * ys[-1] + sum(xs[:2]) + xs[::3][1]


@case(([1.2, 0.5, -0.8],))
def list_comprehension(xs):
    return sum([x * x for x in xs if x > 0]) + len(xs)


@case(([1.2, 0.5], [-0.8, 2.0]))
def list_concat(a, b):
    c = a + b
    return c[0] * c[3] + c[1] * c[2]


@case(([1.2, 0.5],))
def list_repeat(a):
    c = a * 3
    return sum(c) + c[4] * c[1]


@case(([[1.2, 0.5], [0.3, -0.8]],))
def list_of_lists_det(m):
    return m[0][0] * m[1][1] - m[0][1] * m[1][0]


@case(([[1.2, 0.5], [0.3, -0.8]],))
def list_transpose(m):
    t = [list(col) for col in zip(*m)]
    return t[0][1] * 2 + t[1][0]


@case((1.3, 0.7))
def string_index_dispatch(x, y):
    ops = "+*-"
    acc = x
    for ch in ops[:2]:
        if ch == "+":
            acc = acc + y
        elif ch == "*":
            acc = acc * y
    return acc


@case((1.3, 0.7))
def string_slice_keys(x, y):
    d = {"alpha": x, "beta": y}
    name = "alphabet"
    return d[name[:5]] * d[name[5:] + "a"]


@case(1.3)
def string_format_key(x):
    d = {}
    for i in range(3):
        d[f"k{i}"] = x ** (i + 1)
    return d["k2"] - d["k0"]


# ================================================================ dicts: reading

@case({"a": 1.2, "b": 0.4})
def dict_read(d):
    return d["a"] * d["b"] + d["a"]


@case({"a": 1.2, "b": 0.4})
def dict_get(d):
    return d.get("a") * d.get("b", 5.0) + d.get("c", 1.0)


@case(({"a": 1.2}, 0.7))
def dict_get_default_diff(d, x):
    return d.get("zz", x) * d.get("a", x)


@case({"a": 1.2, "b": 0.4, "c": -0.3})
def dict_items(d):
    s = 0.0
    for k, v in d.items():
        if k != "b":
            s += v * v
    return s


@case({"a": 1.2, "b": 0.4, "c": -0.3})
def dict_values(d):
    return sum(d.values()) * max(d.values())


@case({"a": 1.2, "b": 0.4, "c": -0.3})
def dict_keys(d):
    s = 0.0
    for k in d.keys():
        s += d[k] * len(k)
    return s


@case({"a": 1.2, "b": 0.4})
def dict_iter(d):
    return sum(d[k] ** 2 for k in d)


@case({"a": 1.2, "b": 0.4})
def dict_contains(d):
    r = d["a"]
    if "b" in d:
        r = r * d["b"]
    if "c" not in d:
        r = r + 1.0
    return r


@case(({(0, 1): 1.2, (1, 0): 0.4},))
def dict_tuple_keys(d):
    return d[(0, 1)] * d[1, 0]


@case(([1.2, 0.4, 0.9],))
def dict_comprehension(xs):
    d = {i: x * x for i, x in enumerate(xs)}
    return d[0] + d[2] * d[1]


@case((["a", "b"], [1.2, 0.4]))
def dict_from_zip(ks, vs):
    d = dict(zip(ks, vs))
    return d["a"] / d["b"]


@case(({"a": 1.2, "b": 0.4}, {"b": 2.0, "c": 0.5}))
def dict_merge_unpack(a, b):
    m = {**a, **b}
    return m["a"] * m["b"] * m["c"]


@case({"a": 1.2, "b": 0.4})
def dict_copy_mutate(d):
    e = dict(d)
    e["a"] = e["a"] * 3
    f = d.copy()
    f["b"] = 0.0
    return e["a"] + d["a"] * f["a"] + e["b"]


# ================================================================ iteration builtins

@case(([1.2, 0.4, 0.9], [0.3, -1.1, 2.0]))
def iter_zip(xs, ys):
    return sum(x * y for x, y in zip(xs, ys))


@case(([1.2, 0.4, 0.9],))
def iter_enumerate(xs):
    s = 0.0
    for i, x in enumerate(xs, 1):
        s += i * x * x
    return s


@case(([1.2, 0.4, 0.9],))
def iter_reversed(xs):
    acc = 0.0
    for x in reversed(xs):
        acc = acc * 0.5 + x
    return acc


@case(([1.2, -0.4, 0.9, 0.1],))
def iter_sorted(xs):
    s = sorted(xs)
    return s[0] * 3 + s[-1] * s[1]


@case(([1.2, -0.4, 0.9, 0.1],))
def iter_sorted_key_reverse(xs):
    s = sorted(xs, key=lambda v: v * v, reverse=True)
    return s[0] - 2 * s[1] + s[3] ** 2


@case(([P(1.2, 0.3), P(-0.4, 0.8), P(0.9, -0.2)],))
def iter_sorted_objects(ps):
    s = sorted(ps, key=lambda p: p.x)
    return s[0].y * s[2].x + s[1].x


@case(([1.2, 0.4, 0.9],))
def iter_map(xs):
    return sum(map(lambda v: v ** 3, xs))


@case(([1.2, 0.4, 0.9], [0.3, -1.1, 2.0]))
def iter_map_two(xs, ys):
    return sum(map(operator.mul, xs, ys))


@case(([1.2, -0.4, 0.9, -0.1],))
def iter_filter(xs):
    return sum(filter(lambda v: v > 0, xs)) * 2


@case(([1.2, 0.4, 0.9],))
def iter_reduce(xs):
    return functools.reduce(lambda a, b: a * b + 1, xs)


@case(([1.2, 0.4, 0.9], 0.5))
def iter_reduce_initial(xs, x0):
    return functools.reduce(lambda a, b: a * b, xs, x0)


@case(([1.2, -1.4, 0.9],))
def iter_max_key(xs):
    return max(xs, key=abs) * min(xs, key=lambda v: (v - 1) ** 2)


@case((1.2, -0.4, 0.9))
def iter_max_args(a, b, c):
    return max(a, b, c) + min(a * b, c)


@case(([P(1.2, 0.3), P(-0.4, 0.8)],))
def iter_max_objects(ps):
    best = max(ps, key=lambda p: p.norm2())
    return best.x + best.y


@case(([1.2, 0.4, 0.9],))
def iter_any_all(xs):
    if all(x > 0 for x in xs) and any(x > 1 for x in xs):
        return sum(xs)
    return 0.0


@case(([1.2, 0.4, 0.9],))
def iter_nested_builtins(xs):
    return sum(a * b for a, b in zip(sorted(xs), reversed(xs)))


@case(([1.2, 0.4, 0.9],))
def iter_while_index(xs):
    i, acc = 0, 1.0
    while i < len(xs):
        acc *= xs[i] + 1
        i += 1
    return acc


# ================================================================ mutation of lists

@case(([1.2, 0.4, 0.9], 0.7))
def list_setitem(xs, y):
    xs[1] = y * xs[0]
    return xs[1] * xs[2]


@case(([1.2, 0.4, 0.9], 0.7))
def list_setitem_overwrite(xs, y):
    xs[0] = y
    xs[0] = xs[0] * xs[1]
    xs[0] = math.sin(xs[0]) + xs[2]
    return xs[0] * xs[0]


@case(([1.2, 0.4], 0.7))
def list_append(xs, y):
    xs.append(y * y)
    xs.append(xs[0] + y)
    return xs[-1] * xs[-2]


@case((0.7, 1.3))
def list_append_loop_local(x, y):
    acc = []
    for i in range(4):
        acc.append(x ** i * y)
    return sum(acc)


@case(([1.2, 0.4], [0.7, 0.3]))
def list_extend(xs, ys):
    xs.extend(ys)
    xs.extend([ys[0] * 2])
    return xs[2] * xs[4] + xs[3]


@case(([1.2, 0.4], 0.7))
def list_insert(xs, y):
    xs.insert(0, y)
    xs.insert(2, y * y)
    return xs[0] * xs[1] + xs[2] * xs[3]


@case(([1.2, 0.4, 0.9],))
def list_pop(xs):
    a = xs.pop()
    b = xs.pop(0)
    return a * b + xs[0]


@case(([1.2, 0.4, 0.9],))
def list_pop_push(xs):
    a = xs.pop(1)
    xs.append(a * 2)
    return xs[-1] * xs[0]


@case(([1.2, 0.4, 0.9],))
def list_del(xs):
    del xs[1]
    return xs[0] * xs[1]


@case(([1.2, 0.4, 0.9], 0.7))
def list_augassign(xs, y):
    xs[0] += y
    xs[1] *= y
    xs[2] -= xs[0]
    xs[1] /= 2.0
    return xs[0] * xs[1] * xs[2]


@case(([1.2, 0.4, 0.9, 0.6],))
def list_swap(xs):
    xs[0], xs[3] = xs[3], xs[0]
    return xs[0] * 2 + xs[3]


@case(([1.2, 0.4, 0.9, 0.6], 0.7))
def list_slice_assign(xs, y):
    xs[1:3] = [y, y * y]
    return xs[1] + xs[2] * xs[0] + xs[3]


@case(([1.2, 0.4, 0.9],))
def list_reverse_inplace(xs):
    xs.reverse()
    return xs[0] * 2 + xs[2]


@case(([1.2, -0.4, 0.9],))
def list_sort_inplace(xs):
    xs.sort()
    return xs[0] * 3 + xs[2]


@case(([1.2, 0.4, 0.9],))
def list_clear_reuse(xs):
    s = xs[0] * xs[1]
    xs.clear()
    xs.append(s)
    return xs[0] + s


@case((0.7, 1.3))
def list_stack_algorithm(x, y):
    stack = [x, y]
    while len(stack) > 1:
        a = stack.pop()
        b = stack.pop()
        stack.append(a * b + a)
    return stack[0]


@case((0.7, 1.3))
def list_queue_algorithm(x, y):
    q = [x, y, x * y]
    out = 0.0
    while q:
        v = q.pop(0)
        out = out * 0.5 + v
    return out


@case((0.7,))
def list_accumulate_modulo(x):
    acc = [0.0, 0.0]
    for i in range(5):
        acc[i % 2] += x ** i
    return acc[0] * acc[1]


@case(([0.3, 1.2, 0.5],))
def list_inplace_prefix_sum(xs):
    for i in range(1, len(xs)):
        xs[i] = xs[i] + xs[i - 1]
    return xs[-1] * xs[1]


@case((0.7, 1.3))
def list_aliasing(x, y):
    a = [x, y]
    b = a
    b[0] = b[0] * y
    return a[0] + b[1]


@case((0.7, 1.3))
def list_copy_independent(x, y):
    a = [x, y]
    b = list(a)
    b[0] = 10.0
    c = a[:]
    c[1] = c[1] * 2
    return a[0] * b[1] + c[1]


# ================================================================ mutation of dicts

@case(({"a": 1.2}, 0.7))
def dict_setitem(d, x):
    d["b"] = x * d["a"]
    return d["a"] + d["b"] * d["b"]


@case(({"a": 1.2, "b": 0.4}, 0.7))
def dict_overwrite(d, x):
    d["a"] = x
    d["a"] = d["a"] * d["b"]
    return d["a"] ** 2


@case(({"a": 1.2, "b": 0.4},))
def dict_del(d):
    v = d["a"] * 2
    del d["a"]
    return v * d["b"] + len(d)


@case(({"a": 1.2, "b": 0.4},))
def dict_pop(d):
    v = d.pop("a")
    return v * d["b"]


@case(({"a": 1.2, "b": 0.4}, 0.7))
def dict_augassign(d, x):
    d["a"] -= x
    d["b"] *= d["a"]
    d["a"] += d["b"]
    return d["a"] * d["b"]


@case(({"a": 1.2}, {"b": 0.4, "a": 0.5}))
def dict_update(d, e):
    d.update(e)
    return d["a"] * d["b"]


@case(({"a": 1.2}, 0.7))
def dict_setdefault(d, x):
    v = d.setdefault("b", x * 2)
    w = d.setdefault("a", x)
    return v * w


@case((0.7, 1.3))
def dict_memo_fib(x, y):
    memo = {0: x, 1: y}

    def fib(n):
        if n not in memo:
            memo[n] = fib(n - 1) + fib(n - 2) * 0.5
        return memo[n]
    return fib(5)


@case((0.7, 1.3))
def dict_counter_loop(x, y):
    counts = {}
    for k, v in [("a", x), ("b", y), ("a", y), ("a", x * y)]:
        counts[k] = counts.get(k, 0.0) + v
    return counts["a"] * counts["b"]


# ================================================================ mutation of objects

@case((P(1.2, 0.7), 0.5))
def obj_setattr(p, k):
    p.x = p.y * k
    return p.x + p.y


@case((P(1.2, 0.7), 0.5))
def obj_augassign(p, k):
    p.x *= k
    p.y += p.x
    p.x -= 0.1
    p.y /= 2
    return p.x * p.y


@case((0.6, 1.4))
def obj_created_mutated(x, y):
    p = P(x, y)
    p.x = p.x * p.y
    p.y = p.x + 1
    p.x = math.exp(p.x)
    return p.x + p.y


@case((0.6, 1.4))
def obj_new_field(x, y):
    p = P(x, y)
    p.z = p.x * p.y
    p.z = p.z * p.z
    return p.z + p.x


@case((0.6,))
def obj_counter_methods(x):
    c = Counter()
    for i in range(4):
        c.add(x * i)
    return c.total / c.n


@case((0.6, 1.4))
def obj_delattr(x, y):
    p = P(x, y)
    p.z = x * y
    w = p.z
    del p.z
    return w + getattr(p, "z", 0.0)


@case((Slotted(1.2, 0.4),))
def slots_read(s):
    return s.a * s.b


@case((Slotted(1.2, 0.4), 0.7))
def slots_write(s, x):
    s.a = x * s.b
    s.b *= s.a
    return s.a + s.b


@case((0.6, 1.4))
def slots_created(x, y):
    s = Slotted(x, y)
    s.a, s.b = s.b, s.a
    return s.a * 2 + s.b


@case(DC(1.2, 0.4))
def dataclass_arg(c):
    return c.mix() + c.a


@case((1.2, 0.4))
def dataclass_created(a, b):
    c = DC(a, b)
    return c.a * c.b + DC(b).mix()


@case((1.2, 0.4))
def dataclass_mutated(a, b):
    c = DC(a)
    c.b = b * a
    c.a += c.b
    return c.mix()


@case((DC(1.2, 0.4), 0.7))
def dataclass_arg_mutated(c, x):
    c.a = c.a * x
    return c.mix()


@case(FDC(1.2, 0.4))
def frozen_dataclass_arg(c):
    return c.norm() + c.u * c.v


@case((1.2, 0.4))
def frozen_dataclass_replace(u, v):
    c = FDC(u, v)
    d = dataclasses.replace(c, v=u * v)
    return d.u * d.v + c.v


@case((1.2, 0.4))
def dataclass_astuple(a, b):
    t = dataclasses.astuple(DC(a, b))
    return t[0] * t[1]


@case(NT(1.2, 0.4))
def namedtuple_arg(t):
    return t.p * t.q + t[0]


@case((1.2, 0.4))
def namedtuple_created(a, b):
    t = NT(a, q=b)
    p, q = t
    return p * q + t.p


@case(NT(1.2, 0.4))
def namedtuple_replace(t):
    u = t._replace(q=t.p * 2)
    return u.q * u.p + t.q


@case(TNT(0.3, 1.7))
def typed_namedtuple_method(t):
    return t.width() * t.hi


@case(([NT(1.2, 0.4), NT(0.3, 0.9)],))
def namedtuple_list(ts):
    return sum(t.p * t.q for t in ts)


# ================================================================ state outside the program

G = {"calls": 0, "last": 0.0}
GLIST = []


class _Box:
    pass


GOBJ = _Box()
GOBJ.acc = 0.0
GSCALE = 1.0


def _reset_globals():
    global GSCALE
    G.clear()
    G.update(calls=0, last=0.0)
    GLIST.clear()
    GOBJ.acc = 0.0
    GSCALE = 1.0


def _globals_state():
    return {"G": dict(G), "GLIST": list(GLIST), "GOBJ": GOBJ.acc, "GSCALE": GSCALE}


@case(0.7, 1.3, reset=_reset_globals, state=_globals_state)
def global_dict_state(x):
    G["calls"] += 1
    G["last"] = x * x
    return G["last"] * 3 + x


@case(0.7, reset=_reset_globals, state=_globals_state)
def global_list_append(x):
    GLIST.append(x)
    GLIST.append(x * x)
    return GLIST[-1] + GLIST[-2] * 2


@case(0.7, reset=_reset_globals, state=_globals_state)
def global_object_field(x):
    GOBJ.acc = GOBJ.acc + x
    GOBJ.acc *= x
    return GOBJ.acc


@case(0.7, reset=_reset_globals, state=_globals_state)
def global_statement(x):
    global GSCALE
    GSCALE = GSCALE * x + 1
    return GSCALE * x


def _make_accum():
    total = 0.0

    def add(v):
        nonlocal total
        total = total + v
        return total
    return add


ACC = [_make_accum()]


def _reset_acc():
    ACC[0] = _make_accum()


def _acc_state():
    return ACC[0].__closure__[0].cell_contents


@case(0.7, reset=_reset_acc, state=_acc_state)
def closure_nonlocal_outside(x):
    add = ACC[0]
    add(x)
    return add(x * x) * 2


@case((0.7, 1.2))
def closure_nonlocal_inside(x, y):
    state = x

    def step(k):
        nonlocal state
        state = state * k + y
        return state

    step(2.0)
    step(y)
    return state


@case((0.7, 1.2))
def closure_captures_list(x, y):
    buf = [x]

    def push(v):
        buf.append(buf[-1] * v)

    push(y)
    push(y)
    return buf[-1] + buf[0]


@case((0.7, 1.2))
def closure_list_of_lambdas(x, y):
    fs = [lambda v, k=k: v * k + y for k in range(3)]
    acc = x
    for f in fs:
        acc = f(acc)
    return acc


# ================================================================ nested structures

@case(([{"w": P(1.2, 0.4), "b": 0.5}, {"w": P(0.3, -0.7), "b": -0.2}],))
def nested_list_dict_obj(layers):
    s = 0.0
    for layer in layers:
        s += layer["w"].x * layer["w"].y + layer["b"]
    return s


@case(([{"w": P(1.2, 0.4), "b": 0.5}, {"w": P(0.3, -0.7), "b": -0.2}], 0.3))
def nested_mutate_deep(layers, lr):
    for layer in layers:
        layer["w"].x -= lr * layer["w"].y
        layer["b"] = layer["b"] * layer["w"].x
    return layers[0]["b"] + layers[1]["b"] * layers[0]["w"].x


@case(({"xs": [1.2, 0.4], "meta": (0.5, "tag")},))
def nested_dict_list_tuple(d):
    return d["xs"][0] * d["meta"][0] + d["xs"][1]


@case((0.6, 1.1, 0.4))
def nested_linked_list(a, b, c):
    head = Node(a, Node(b, Node(c)))
    acc, n = 0.0, head
    while n is not None:
        acc = acc * n.val + n.val
        n = n.next
    return acc


@case((0.6, 1.1))
def nested_linked_list_mutate(a, b):
    head = Node(a, Node(b))
    head.next.val = head.val * head.next.val
    head.val = head.next.val + 1
    return head.val * head.next.val


def _tree_sum(node):
    if node is None:
        return 0.0
    return node.val + 0.5 * _tree_sum(node.next)


@case((0.6, 1.1, 0.4))
def nested_recursive_walk(a, b, c):
    return _tree_sum(Node(a, Node(b, Node(c))))


@case((0.6, 1.1))
def nested_shared_object(a, b):
    p = P(a, b)
    pair = [p, p]
    pair[0].x = pair[1].y * a
    return pair[0].x + p.x * pair[1].y


@case(([P(1.2, 0.4), P(0.3, -0.7)],))
def nested_list_of_objects_mutated(ps):
    for p in ps:
        p.x, p.y = p.y, p.x * p.y
    return ps[0].x * ps[1].y + ps[1].x


@case((P(1.2, 0.4),))
def nested_object_holding_list(p):
    p.hist = [p.x]
    for _ in range(3):
        p.hist.append(p.hist[-1] * p.y)
    return sum(p.hist)


@case(((P(1.2, 0.4), [0.5, 0.6]),))
def nested_tuple_of_obj_list(t):
    p, xs = t
    xs[0] = p.x * xs[1]
    return xs[0] + p.y


@case((0.6, 1.1))
def nested_grid(a, b):
    grid = [[0.0] * 3 for _ in range(2)]
    for i in range(2):
        for j in range(3):
            grid[i][j] = a ** i * b ** j
    return sum(sum(row) for row in grid)


@case((0.6, 1.1))
def nested_dict_of_lists_append(a, b):
    d = {"u": [], "v": []}
    for i in range(3):
        d["u"].append(a * i)
        d["v"].append(b + d["u"][-1])
    return sum(d["u"]) * d["v"][-1]


@case((Vec(1.2, 0.4, 0.9),))
def vec_arg_fields(v):
    return v.xs[0] * v[1] + abs(v)


@case((Poly([0.5, 1.5, -0.7]), 1.3))
def callable_object_arg(p, x):
    return p(x) * x


@case(([1.2, 0.4, 0.9], 2))
def int_index_arg(xs, i):
    return xs[i] * xs[i - 1]


@case(((1.2, "name", None, 0.4),))
def tuple_mixed_leaves(t):
    if t[2] is None and t[1] == "name":
        return t[0] * t[3]
    return t[0]


@case((torch.tensor([1.2, 0.4], dtype=torch.float64), {"w": torch.tensor([0.5, -0.3], dtype=torch.float64)}))
def tensor_in_dict(x, d):
    d["h"] = torch.tanh(d["w"] * x)
    return (d["h"] * x).sum()


@case(([torch.tensor([1.2, 0.4], dtype=torch.float64), torch.tensor([0.5, -0.3], dtype=torch.float64)],))
def tensor_list_append_stack(ts):
    ts.append(ts[0] * ts[1])
    return torch.stack(ts).pow(2).sum()
