"""The rule table: variants declare kind patterns, the most specific applicable one wins whatever the
registration order, and a variant that could never be chosen or that overlaps another ambiguously
is refused when it is registered."""
import itertools

import pytest

from torchzygote.rules import registry
from torchzygote.rules.registry import ANY, TABLE, RuleConflict, given, grad, many, pattern, select, some


class _Fresh:
    """A callable of its own per test, so test variants never meet the package's rules."""

    def __call__(self, *args):
        return args[0]


@pytest.fixture
def fn():
    f = _Fresh()
    yield f
    TABLE.rules.pop(f, None)
    TABLE.version += 1


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_most_specific_wins_in_any_registration_order(fn, order):
    decls = [(("T", "R"), "dy * 1"), (("T", "R|N"), "dy * 2"), (("T", ...), "dy * 3")]
    for i in order:
        kinds, expr = decls[i]
        grad(fn, "a, b", kinds=kinds, a=expr)
    assert select(fn, ["T", "R"]).grads["a"] == "dy * 1"
    assert select(fn, ["T", "N"]).grads["a"] == "dy * 2"
    assert select(fn, ["T", "T"]).grads["a"] == "dy * 3"
    assert select(fn, ["T"], 1).grads["a"] == "dy * 3"
    assert select(fn, ["R", "R"]) is None


def test_equal_patterns_are_refused(fn):
    grad(fn, "x", kinds=("T",), x="dy")
    with pytest.raises(RuleConflict, match="accepts the same argument kinds"):
        grad(fn, "x", kinds=("T",), x="2 * dy")


def test_ambiguous_overlap_is_refused(fn):
    grad(fn, "a, b", kinds=("T", ...), a="dy")
    with pytest.raises(RuleConflict, match=r"both accept kinds \('T', 'T'\) and neither is more specific"):
        grad(fn, "a, b", kinds=("*", "T"), a="2 * dy")


def test_a_variant_covered_by_more_specific_ones_is_refused(fn):
    grad(fn, "x", kinds=("T",), x="dy")
    grad(fn, "x", kinds=("R|N",), x="dy")
    with pytest.raises(RuleConflict, match="is never chosen"):
        grad(fn, "x", kinds=("T|R|N",), x="2 * dy")


def test_a_general_variant_with_more_parameters_is_chosen_for_them(fn):
    grad(fn, "x", kinds=("T",), x="dy")
    grad(fn, "x, y2=1", kinds=ANY, x="2 * dy")    # chosen for two arguments and for other kinds
    assert select(fn, ["T"]).grads["x"] == "dy"
    assert select(fn, ["T", "R"]).grads["x"] == "2 * dy"


def test_predicates_are_refused(fn):
    with pytest.raises(TypeError, match="not a predicate"):
        grad(fn, "x", kinds=lambda ks: True, x="dy")


def test_pattern_forms():
    assert pattern(("T", "R|N")).matches(["T", "N"]) and not pattern(("T", "R|N")).matches(["T"])
    assert pattern(("A", many("A|R"))).matches(["A", "R", "A"]) and not pattern(("A", many("A|R"))).matches(["A", "T"])
    assert some("A|R", among="A|R|N").matches(["N", "A"]) and not some("A|R", among="A|R|N").matches(["N", "N"])
    assert pattern(("~A|R",)).matches(["T"]) and not pattern(("~A|R",)).matches(["A"])
    assert [len(p) for p in given("*", "A|R|N", ...)] == [0, 1, 3]
    with pytest.raises(ValueError, match="unknown kinds"):
        pattern(("Q",))


def test_every_registered_rule_has_a_pattern():
    for f, variants in list(TABLE.rules.items()):
        for r in variants:
            assert all(isinstance(p, registry.Pattern) for p in r.patterns), r.name
            assert r.kinds is None or isinstance(r.kinds, tuple), r.name


def test_every_function_with_variants_is_ordered_most_specific_first():
    for f, variants in list(TABLE.rules.items()):
        if len(variants) > 1:
            assert registry.order(f, list(variants)) == variants


def _swapdims_then_write(x):
    z = x * 1.0
    y = z.swapdims(0, 1)
    z.mul_(2.0)
    return (y * x).sum()


def test_swapdims_is_a_view_as_transpose_is():
    """Its result shares memory with its argument: a later in-place write to the argument is refused as
    for transpose (the view names were a list patched in after registration, which left swapdims out:
    the gradient was silently wrong)."""
    import torch

    import torchzygote as tz
    from torchzygote.errors import LiftError
    for f in (torch.swapdims, torch.Tensor.swapdims, torch.transpose, torch.Tensor.swapaxes):
        assert all(r.view for r in TABLE.lookup(f)), f
    with pytest.raises(LiftError, match="in-place write"):
        tz.gradient(_swapdims_then_write, torch.randn(3, 3, dtype=torch.float64))


def test_the_pattern_alphabet_is_the_registry_kinds():
    from torchzygote.rules import patterns
    assert set(patterns.KINDS) == {registry.REAL, registry.COMPLEX, registry.TENSOR, registry.ARRAY, registry.LIST,
                                   registry.TUPLE, registry.DICT, registry.NONDIFF, registry.OBJECT,
                                   registry.UNDEFINED, registry.MIXED, *registry.TUPLE_OF.values()}
