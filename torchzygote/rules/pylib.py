"""Builtins that iterate, written in Python so they are lifted and
differentiated like user code ("callee derives"): the gradient of ``sum``,
``max(xs, key=...)``, ``zip`` or ``sorted`` needs no rule of its own.

They return lists where the builtin returns an iterator; iterating the result
is the same.
"""
import builtins
import collections
import functools
import math
import weakref

from ..values.kinds import may_carry

_NO = object()


def _shortest(seqs):
    return builtins.min([len(s) for s in seqs]) if seqs else 0


def _argsort(keys, reverse):
    return builtins.sorted(range(len(keys)), key=keys.__getitem__, reverse=reverse)


# generator -> whether it was given values that may carry gradients (looked at once, at its first ``next``)
CARRYING: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def next_of(it, default):
    """``next`` of an iterator made by code that is not differentiated (``itertools.count``,
    ``m.parameters()``, a generator): its rule (``containers``) says where an item's gradient goes.
    A generator whose frame holds values that may carry gradients (``def scaled(v): yield v * 3``)
    is noted: what it yields cannot be followed, where a constant's (``yield 2.0``) is data."""
    frame = getattr(it, "gi_frame", None)
    if frame is not None and it not in CARRYING:
        CARRYING[it] = any(may_carry(v) for v in frame.f_locals.values())
    return builtins.next(it, *default)


NONDIFF_HELPERS = (_shortest, _argsort)


def py_sum(iterable, start=0):
    s = start
    for x in iterable:
        s = s + x
    return s


def py_fsum(iterable):
    s = 0.0
    for x in iterable:
        s = s + x
    return s


def py_prod(iterable, *, start=1):
    p = start
    for x in iterable:
        p = p * x
    return p


def _extreme(args, key, default, better):
    items = args[0] if len(args) == 1 else args
    best, bk = _NO, None
    for x in items:
        k = x if key is None else key(x)
        if best is _NO or better(k, bk):
            best, bk = x, k
    if best is _NO:
        if default is _NO:
            raise ValueError("arg is an empty sequence")
        return default
    return best


def _gt(a, b):
    return a > b


def _lt(a, b):
    return a < b


def py_max(*args, key=None, default=_NO):
    return _extreme(args, key, default, _gt)


def py_min(*args, key=None, default=_NO):
    return _extreme(args, key, default, _lt)


def py_zip(*iterables, strict=False):
    seqs = [list(it) for it in iterables]
    n = _shortest(seqs)
    return [tuple([s[i] for s in seqs]) for i in range(n)]


def py_enumerate(iterable, start=0):
    xs = list(iterable)
    return [(start + i, xs[i]) for i in range(len(xs))]


def py_reversed(seq):
    s = list(seq)
    return [s[i] for i in range(len(s) - 1, -1, -1)]


def py_map(fn, *iterables):
    if len(iterables) == 1:
        return [fn(x) for x in iterables[0]]
    return [fn(*xs) for xs in py_zip(*iterables)]


def py_filter(fn, iterable):
    if fn is None:
        return [x for x in iterable if x]
    return [x for x in iterable if fn(x)]


def py_sorted(iterable, *, key=None, reverse=False):
    xs = list(iterable)
    keys = xs if key is None else [key(x) for x in xs]
    order = _argsort(keys, reverse)
    return [xs[i] for i in order]


def py_reduce(fn, iterable, initial=_NO):
    it = list(iterable)
    if initial is _NO:
        if not it:
            raise TypeError("reduce() of empty iterable with no initial value")
        acc = it[0]
        rest = it[1:]
    else:
        acc = initial
        rest = it
    for x in rest:
        acc = fn(acc, x)
    return acc


def py_hypot(*coords):
    return math.sqrt(py_sum([c * c for c in coords]))


def py_dist(p, q):
    return math.sqrt(py_sum([(a - b) * (a - b) for a, b in py_zip(p, q)]))


def py_sumprod(p, q):
    return py_sum([a * b for a, b in py_zip(p, q)])


def py_dict_get(d, k, default=None):
    if k in d:
        return d[k]
    return default


def py_dict_setdefault(d, k, default=None):
    if k not in d:
        d[k] = default
    return d[k]


def py_dict_update(d, other=(), **kw):
    items = other.items() if isinstance(other, dict) else other
    for k, v in items:
        d[k] = v
    for k in kw:
        d[k] = kw[k]


def py_dict(other=(), **kw):
    d = {}
    py_dict_update(d, other, **kw)
    return d


def py_dict_pop(d, k, *default):
    if k in d:
        v = d[k]
        del d[k]
        return v
    if default:
        return default[0]
    raise KeyError(k)


def py_dict_popitem(d, last=True):
    """``dict.popitem()`` (the last key) and ``OrderedDict.popitem(last)``."""
    if not d:
        raise KeyError("popitem(): dictionary is empty")
    keys = list(d)
    k = keys[-1] if last else keys[0]
    v = d[k]
    del d[k]
    return k, v


def py_filled(cls, *args, **kw):
    """A list or dict subclass built with contents (``OrderedDict(a=x)``, ``defaultdict(float, d)``,
    a user's subclass without ``__init__``): built empty, then filled item by item with the builtin's
    own writes, as its ``__init__`` fills it (an override of ``__setitem__`` is not called)."""
    if issubclass(cls, list):
        c = cls()
        for x in (args[0] if args else ()):
            list.append(c, x)
        return c
    if issubclass(cls, collections.defaultdict):
        c = cls(args[0] if args else None)
        args = args[1:]
    else:
        c = cls()
    other = args[0] if args else ()
    for k, v in (py_dict_items(other) if isinstance(other, dict) else other):
        dict.__setitem__(c, k, v)
    for k in kw:
        dict.__setitem__(c, k, kw[k])
    return c


# the constructors of lists, dicts and their subclasses (a subclass without its own ``__init__`` has its base's)
_CONTAINER_INITS = (list.__init__, dict.__init__, collections.OrderedDict.__init__, collections.defaultdict.__init__)


def fills(cls, args, kw) -> bool:
    """Whether ``cls(*args, **kw)`` builds a list or dict subclass with contents (``py_filled`` builds
    it empty, then fills it); a ``defaultdict``'s first argument is its factory. (``list`` and ``dict``
    themselves have stand-ins or rules.)"""
    if cls is list or cls is dict or cls.__init__ not in _CONTAINER_INITS:
        return False
    return len(args) > (1 if issubclass(cls, collections.defaultdict) else 0) or bool(kw)


def py_list_remove(xs, x):
    del xs[xs.index(x)]


def py_list_reverse(xs):
    xs[:] = [xs[i] for i in range(len(xs) - 1, -1, -1)]


def py_list_sort(xs, *, key=None, reverse=False):
    xs[:] = py_sorted(xs, key=key, reverse=reverse)


def py_dict_values(d):
    return [d[k] for k in d]


def py_dict_items(d):
    return [(k, d[k]) for k in d]


def py_divmod(a, b):
    return a // b, a % b


def py_list_clear(xs):
    while xs:
        xs.pop()


def py_dict_clear(d):
    for k in list(d):
        del d[k]



def py_iter(x, *sentinel):
    """Iterators are lists here (see the module docstring): ``iter`` copies, ``next`` takes
    the first item off, so both see the items' gradients."""
    if sentinel:
        return builtins.iter(x, *sentinel)
    return list(x)


def py_next(it, *default):
    if isinstance(it, list):
        if it:
            return it.pop(0)
        if default:
            return default[0]
        raise StopIteration
    return next_of(it, default)


LIFT_AS = {
    builtins.iter: py_iter, builtins.next: py_next,
    dict.get: py_dict_get, dict.setdefault: py_dict_setdefault, dict.update: py_dict_update,
    dict: py_dict, dict.pop: py_dict_pop, dict.values: py_dict_values, dict.items: py_dict_items,
    dict.popitem: py_dict_popitem, collections.OrderedDict.popitem: py_dict_popitem,
    collections.OrderedDict.pop: py_dict_pop, collections.OrderedDict.setdefault: py_dict_setdefault,
    collections.OrderedDict.update: py_dict_update, list.remove: py_list_remove, dict.clear: py_dict_clear,
    collections.OrderedDict.values: py_dict_values,
    collections.OrderedDict.items: py_dict_items,
    builtins.divmod: py_divmod, list.reverse: py_list_reverse, list.clear: py_list_clear, list.sort: py_list_sort,
    builtins.sum: py_sum, builtins.max: py_max, builtins.min: py_min, builtins.zip: py_zip,
    builtins.enumerate: py_enumerate, builtins.reversed: py_reversed, builtins.map: py_map,
    builtins.filter: py_filter, builtins.sorted: py_sorted, functools.reduce: py_reduce,
    math.fsum: py_fsum, math.prod: py_prod, math.hypot: py_hypot, math.dist: py_dist,
}
if hasattr(math, "sumprod"):
    LIFT_AS[math.sumprod] = py_sumprod
