"""Dual numbers: a value and its tangent, as forward mode keeps them inside structures.

Forward-mode code keeps a number's or a tensor's tangent in a variable beside it. Where a
value goes into a list, a dict, an object's attribute or a closure cell, the tangent travels
with it as a ``Dual`` (so mutation, aliasing and dynamic reads need no bookkeeping); it is
taken apart again where generated code reads it back. ``Dual`` is also the user's dual number
of the seeds (``D(f, x) = f(Dual(x, 1)).tangent``): arithmetic and comparison work on it
directly; calls like ``math.sin`` need the forward transform (``tz.D``, ``tz.jvp``), and a Dual
that reaches code that would drop its tangent (``float(d)``) raises instead.
"""
from __future__ import annotations

import math
from typing import Any, Tuple

from .kinds import same_tuple


class Dual:
    """``primal + tangent·ε`` with ``ε² = 0``. ``tag``: the forward computation whose tangent this is
    (nested forward modes each have their own ε, so one never takes another's Dual apart); a
    user's Dual (tag None) belongs to the computation it is given to."""

    __slots__ = ("primal", "tangent", "tag")

    def __init__(self, primal, tangent=None, tag=None):
        self.primal = primal
        self.tangent = tangent
        self.tag = tag

    # (``ϵ`` as in the seeds' Julia)
    @property
    def ϵ(self):
        return self.tangent

    def __repr__(self) -> str:
        return f"Dual({self.primal!r}, {self.tangent!r})"

    # ------------------------------------------------------------ arithmetic
    def __add__(self, o):
        p, t = split(o)
        return Dual(self.primal + p, _add(self.tangent, t), self.tag)

    def __radd__(self, o):
        return Dual(o + self.primal, self.tangent, self.tag)

    def __sub__(self, o):
        p, t = split(o)
        return Dual(self.primal - p, _add(self.tangent, None if t is None else -t), self.tag)

    def __rsub__(self, o):
        return Dual(o - self.primal, None if self.tangent is None else -self.tangent, self.tag)

    def __mul__(self, o):
        p, t = split(o)
        return Dual(self.primal * p, _add(_scale(self.tangent, p), _scale(t, self.primal)), self.tag)

    def __rmul__(self, o):
        return Dual(o * self.primal, _scale(self.tangent, o), self.tag)

    def __truediv__(self, o):
        p, t = split(o)
        y = self.primal / p
        return Dual(y, _add(_scale(self.tangent, 1 / p), None if t is None else -t * y / p), self.tag)

    def __rtruediv__(self, o):
        y = o / self.primal
        return Dual(y, None if self.tangent is None else -self.tangent * y / self.primal, self.tag)

    def __pow__(self, o):
        p, t = split(o)
        y = self.primal ** p
        dx = None if self.tangent is None else self.tangent * p * self.primal ** (p - 1)
        if t is None:
            return Dual(y, dx, self.tag)
        return Dual(y, _add(dx, t * y * math.log(self.primal)), self.tag)

    def __neg__(self):
        return Dual(-self.primal, None if self.tangent is None else -self.tangent, self.tag)

    def __pos__(self):
        return self

    def __abs__(self):
        s = 1 if self.primal >= 0 else -1
        return Dual(abs(self.primal), _scale(self.tangent, s), self.tag)

    # ------------------------------------------------------------ comparison: on the primal part
    def __lt__(self, o):
        return self.primal < split(o)[0]

    def __le__(self, o):
        return self.primal <= split(o)[0]

    def __gt__(self, o):
        return self.primal > split(o)[0]

    def __ge__(self, o):
        return self.primal >= split(o)[0]

    def __eq__(self, o):
        return self.primal == split(o)[0]

    def __ne__(self, o):
        return self.primal != split(o)[0]

    def __hash__(self):
        return hash(self.primal)

    def __bool__(self):
        return bool(self.primal)

    def __len__(self):
        return len(self.primal)

    def __iter__(self):
        """Its items with their tangents' items (a tensor's rows): what ``list(x)``, ``zip`` and
        ``enumerate`` see in forward mode, as a ``for`` loop does (``Forward.titer``)."""
        if self.tangent is None:
            return iter(self.primal)
        return (Dual(p, t, self.tag) for p, t in zip(self.primal, self.tangent))

    def __float__(self):
        raise TypeError(
            "float() of a tz.Dual would drop its tangent: a function given a Dual directly may only use "
            "arithmetic on it; differentiate it with tz.D(f, x) or tz.jvp(f, (x,), (v,)), which "
            "transform calls such as math.sin")

    __complex__ = __int__ = __index__ = __float__


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _scale(t, k):
    return None if t is None else t * k


def split(v) -> Tuple[Any, Any]:
    """``(value, tangent)`` of a value that may be a Dual of any tag (the arithmetic above)."""
    if type(v) is Dual:
        return v.primal, v.tangent
    return v, None


class Tagged:
    """Taking apart and putting together the Duals of one forward computation (``self`` is their
    tag): what generated forward-mode code calls (``_ctx.up(v)``). Duals of other computations
    (nested ones) are values to it, as any object."""

    __slots__ = ()

    def owns(self, v) -> bool:
        """Whether ``v`` is a Dual of this computation (one being built, by code that is itself
        differentiated, has no tag yet and is no one's)."""
        return type(v) is Dual and getattr(v, "tag", self.owns) in (self, None)

    def up(self, v) -> Tuple[Any, Any]:
        """``(value, tangent)``: the tangent None where ``v`` is not this computation's Dual."""
        if type(v) is Dual and getattr(v, "tag", self.owns) in (self, None):
            return v.primal, v.tangent
        return v, None

    def pv(self, v):
        """The value without this computation's tangent."""
        if type(v) is Dual and getattr(v, "tag", self.owns) in (self, None):
            return v.primal
        return v

    def pk(self, v, t):
        """The value with its tangent attached (itself when the tangent is None)."""
        return v if t is None else Dual(v, t, self)

    def sp(self, v) -> Tuple[Any, Any]:
        """``(value, tangent)`` of a structure holding Duals: tuples, lists and dicts are rebuilt
        without them, and the tangent has the same structure (None where there is none; None as
        a whole where no item has one)."""
        t = type(v)
        if t is Dual:
            return self.up(v)
        if t is tuple or t is list:
            pairs = [self.sp(x) for x in v]
            ts = [p[1] for p in pairs]
            return t(p[0] for p in pairs), (None if all(x is None for x in ts) else t(ts))
        if t is dict:
            pairs = {k: self.sp(x) for k, x in v.items()}
            ts = {k: p[1] for k, p in pairs.items()}
            return {k: p[0] for k, p in pairs.items()}, (None if all(x is None for x in ts.values()) else ts)
        return v, None

    def pack_tree(self, v, t):
        """A structure with the tangents ``t`` (the same structure, None where none) attached to
        its leaves as Duals (a new structure: the user's own is never changed)."""
        if t is None:
            return v
        tv = type(v)
        if isinstance(v, (tuple, list)) and isinstance(t, (tuple, list)):
            if len(t) != len(v):
                raise ValueError(f"a tangent of {len(t)} items for a {tv.__name__} of {len(v)}")
            items = [self.pack_tree(x, y) for x, y in zip(v, t)]
            return same_tuple(v, items) if isinstance(v, tuple) else tv(items)
        if tv is dict and type(t) is dict:
            return {k: self.pack_tree(x, t.get(k)) for k, x in v.items()}
        return Dual(v, t, self)

    def vo(self, v):
        """A value for code that sees no tangents (a function without a gradient, a predicate):
        its Duals taken out, a structure's too (copied)."""
        if type(v) in (tuple, list, dict):
            return self.sp(v)[0]
        return self.pv(v)

    def has_tangent(self, args, kw) -> bool:
        return any(self.owns(a) for a in args) or any(self.owns(v) for v in kw.values()) or \
            any(self.sp(a)[1] is not None for a in (*args, *kw.values()) if type(a) in (tuple, list, dict))

    def titer(self, v, t) -> list:
        """Items of an iterable with their tangents: a tensor's rows with its tangent's rows; a
        container's items split (their tangents are inside). A list, not a generator: code that
        differentiates forward-mode code again (reverse over forward) lifts it."""
        if t is None:
            return [self.up(x) for x in v]
        return list(zip(v, t))
