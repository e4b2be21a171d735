"""Kind patterns: which argument kinds a rule variant is for, and the most-specific order.

A variant declares exact patterns (``("T", "R|N")``, ``("A", ...)``, ``some("A|R", among="A|R|N")``,
or a list of them); of the variants that take a call, the one whose set of accepted kind tuples lies
inside every other's wins. ``order`` sorts a function's variants so, and refuses (RuleConflict) a
variant with the same kinds as another, one that overlaps another with neither more specific, and
one that can never be chosen.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import FrozenSet, List, Optional, Sequence, Tuple

# every kind a value may have (``?`` stands for a kind not listed, which only ``*`` accepts)
# (the kind constants of registry.py; tests/test_rule_table.py checks that they agree)
KINDS = ("R", "C", "T", "A", "L", "P", "PT", "PR", "D", "N", "O", "U", "M")
_UNIVERSE = frozenset(KINDS) | {"?"}


def _kind_set(spec) -> FrozenSet[str]:
    """``"R|N"`` as a set of kinds; ``"*"``: any kind; ``"~A|R"``: any kind but these."""
    if isinstance(spec, frozenset):
        return spec
    if spec.startswith("~"):
        return _UNIVERSE - _kind_set(spec[1:])
    ks = frozenset(spec.split("|"))
    if ks == {"*"}:
        return _UNIVERSE
    unknown = ks - _UNIVERSE
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)} in kind pattern {spec!r} (kinds: {', '.join(KINDS)})")
    return ks


@dataclass(frozen=True)
class Pattern:
    """Argument kinds a variant accepts: ``items`` position by position, then any number of further
    positions of a kind in ``rest`` (None: no more), with at least one position of a kind in
    ``need`` when given. Written in declarations as ``("T", "R|N")``, ``("A", ...)``,
    ``("T", many("T|R|N"))`` or ``some("A|R", among="A|R|N")``."""
    items: Tuple[FrozenSet[str], ...]
    rest: Optional[FrozenSet[str]] = None
    need: Optional[FrozenSet[str]] = None

    def matches(self, ks: Sequence[str]) -> bool:
        n = len(self.items)
        if len(ks) < n or len(ks) > n and self.rest is None:
            return False
        if not all(k in s for k, s in zip(ks, self.items)):
            return False
        if len(ks) > n and not all(k in self.rest for k in ks[n:]):
            return False
        return self.need is None or any(k in self.need for k in ks)

    def at(self, i: int) -> Optional[FrozenSet[str]]:
        """The kinds accepted at position ``i`` (None: no argument may be there)."""
        return self.items[i] if i < len(self.items) else self.rest

    def __str__(self) -> str:
        def show(s):
            return "*" if s == _UNIVERSE else "|".join(sorted(s))
        parts = [show(s) for s in self.items]
        if self.rest is not None:
            parts.append("..." if self.rest == _UNIVERSE else f"many({show(self.rest)})")
        text = "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
        return text if self.need is None else f"{text} with one of {show(self.need)}"


class _Many:
    def __init__(self, spec):
        self.kinds = _kind_set(spec)


def many(spec: str) -> _Many:
    """The last element of a kind pattern: any number of further arguments of these kinds."""
    return _Many(spec)


def some(need: str, among="*") -> Pattern:
    """Arguments of kinds ``among`` (kinds for any number of them, or a pattern tuple), at least one
    of them of a kind in ``need``."""
    base = pattern(among if isinstance(among, tuple) else (many(among),))
    return Pattern(base.items, base.rest, _kind_set(need))


ANY = (...,)   # any arguments


def given(*specs) -> list:
    """A pattern whose positions constrain only the arguments passed by position (the others may
    come by keyword or default): the union of its prefixes."""
    *items, last = specs if specs and (specs[-1] is ... or isinstance(specs[-1], _Many)) else (*specs, None)
    return [tuple(items[:n]) for n in range(len(items))] + [tuple(items) + ((last,) if last is not None else ())]


def pattern(spec) -> Pattern:
    """One kind pattern from its declaration (a tuple, or a ``some(...)``)."""
    if isinstance(spec, Pattern):
        return spec
    if not isinstance(spec, tuple):
        raise TypeError(f"a kind pattern is a tuple of kinds such as ('T', 'R|N', ...), not {spec!r}")
    items, rest = list(spec), None
    if items and (items[-1] is ... or isinstance(items[-1], _Many)):
        last = items.pop()
        rest = _UNIVERSE if last is ... else last.kinds
    return Pattern(tuple(_kind_set(k) for k in items), rest)


def patterns(spec) -> Tuple[Pattern, ...]:
    """The patterns of a declaration: one pattern, or a list of them (a union)."""
    return tuple(pattern(p) for p in spec) if isinstance(spec, list) else (pattern(spec),)


class RuleConflict(ValueError):
    """Two variants of a rule that the most-specific order cannot tell apart, or one never chosen."""


def _points(variants: Sequence):
    """Kind tuples standing for every case the variants tell apart: per position, one kind of each
    class of kinds that every pattern treats alike; lengths up to one past the longest signature.
    Positions past every pattern's items are alike for all patterns: their kinds are taken as
    multisets, not sequences."""
    pats = [p for v in variants for p in v.patterns]
    finite = [v.max_positional for v in variants if v.max_positional != float("inf")]
    head = max(len(p.items) for p in pats)
    longest = max([head] + finite) + 1
    needs = [p.need for p in pats if p.need is not None]

    def classes(i):
        sets = [s for s in (p.at(i) for p in pats) if s is not None] + needs
        reps = {}
        for k in sorted(_UNIVERSE):
            reps.setdefault(tuple(k in s for s in sets), k)
        return list(reps.values())
    heads = [classes(i) for i in range(head)]
    tail = classes(head)
    for n in range(longest + 1):
        for pre in itertools.product(*heads[:n]):
            if n <= head:
                yield pre
            else:
                for rest in itertools.combinations_with_replacement(tail, n - head):
                    yield pre + rest


_ranks: dict = {}   # variants' patterns and arities -> their order (the tables repeat a few shapes many times)


def order(fn, variants: List) -> List:
    """The variants most specific first; raises RuleConflict for variants with the same kinds,
    overlapping kinds neither of which is more specific, or a variant that can never be chosen."""
    key = tuple((v.patterns, v.max_positional, v.required) for v in variants)
    if key not in _ranks:
        _ranks[key] = _rank(variants)
    return [variants[n] for n in _ranks[key]]


def _rank(variants: List) -> List[int]:
    points = list(_points(variants))

    def accepted(v):
        top, pats = v.max_positional, v.patterns
        return frozenset(i for i, t in enumerate(points) if len(t) <= top and any(p.matches(t) for p in pats))
    sets = [accepted(v) for v in variants]
    for (a, sa), (b, sb) in itertools.combinations(zip(variants, sets), 2):
        if sa == sb:
            raise RuleConflict(f"rule for {a.name}: {b.describe()} accepts the same argument kinds as "
                               f"{a.describe()}; give one of them other kinds or remove it")
        if sa & sb and not (sa <= sb or sb <= sa):
            t = points[min(sa & sb)]
            raise RuleConflict(f"rule for {a.name}: {a.describe()} and {b.describe()} both accept kinds "
                               f"{t} and neither is more specific; split one of the patterns")
    ranked = sorted(range(len(variants)), key=lambda n: len(sets[n]))
    required = [variants[n].required for n in ranked]
    chosen = set()
    for i, t in enumerate(points):   # the variant chosen for each call: the first one that takes it
        takers = [r for r, n in enumerate(ranked) if i in sets[n]]
        for nkw in range(max(required) + 1):
            chosen.update(next(([r] for r in takers if len(t) + nkw >= required[r]), ()))
    for r, n in enumerate(ranked):
        if r not in chosen:
            v = variants[n]
            raise RuleConflict(f"rule for {v.name}: {v.describe()} is never chosen: more specific variants "
                               f"cover every call it accepts")
    return ranked
