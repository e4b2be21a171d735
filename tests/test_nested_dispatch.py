"""Reverse over reverse through the dispatcher (``ad/nested_reverse.py``): generated code that is
differentiated again calls ``J``; the outer level differentiates the code J would run (a
function's compiled forward, a rule's closure form, a stand-in's forward) instead of lifting J.
Each case J distinguishes is checked against exact derivatives or torch autograd, and J's checks
(a callee writing into its argument, an argument written after the call) still hold."""
import math

import pytest
import torch

import torchzygote as tz
from torchzygote.ad import cache, dispatch


def xsin(x):
    return x * math.sin(x)


def apply(op, x):
    return op(x)   # ``op`` known only at run time: a dispatched call


def star(f, xs):
    return f(*xs)


def scaled(x, scale=1.0):
    return scale * x * x


class Poly:
    def __init__(self, c):
        self.c = c

    def __call__(self, x):
        return self.c * x ** 3

    def value(self, x):
        return self.c * x ** 4


def test_triple_derivative_exact():
    d3 = tz.derivative(tz.derivative(tz.derivative(xsin)))
    for x in (0.7, -1.3, 2.0):
        exact = -3 * math.sin(x) - x * math.cos(x)
        assert d3(x) == pytest.approx(exact, rel=1e-12)


def test_the_dispatcher_is_not_lifted():
    tz.derivative(tz.derivative(tz.derivative(xsin)))(0.4)
    lifted = [k for k, es in cache._cache.items() if k[0] is dispatch.J.__code__ and k[-1] not in ("jvp", "taylor")
              for e in es if e.fwd is not None]   # (forward over reverse lifts J in forward mode: jvp_nested)
    assert not lifted


def test_closure_gradient_through_nested_forward():
    # the inner function closes over x: its gradient flows through the callee's cells
    h = lambda x: tz.gradient(lambda y: x * y ** 2, 3.0)[0]   # 6x
    assert tz.derivative(h)(1.5) == pytest.approx(6.0)
    assert tz.derivative(tz.derivative(lambda x: h(x) * x))(0.5) == pytest.approx(12.0)


@pytest.mark.parametrize("op, d2", [(math.sin, lambda x: -math.sin(x)), (math.exp, math.exp),
                                    (math.tanh, lambda x: -2 * math.tanh(x) * (1 - math.tanh(x) ** 2))])
def test_rule_callee_known_at_run_time(op, d2):
    f = tz.derivative(tz.derivative(lambda x: apply(op, x)))
    for x in (0.3, 1.7):
        assert f(x) == pytest.approx(d2(x), rel=1e-12, abs=1e-12)


def test_star_call_without_keywords():
    f = tz.derivative(tz.derivative(lambda x: star(lambda a, b: a * a * b, (x, 3.0))))
    assert f(0.9) == pytest.approx(6.0)


def test_keyword_call_and_callable_object_and_method():
    p = Poly(2.0)
    cases = [(lambda x: scaled(x, scale=3.0), lambda x: 6.0),
             (lambda x: apply(p, x), lambda x: 12.0 * x),
             (lambda x: p.value(x), lambda x: 24.0 * x * x)]
    for f, d2 in cases:
        assert tz.derivative(tz.derivative(f))(1.1) == pytest.approx(d2(1.1), rel=1e-12)


def test_reverse_over_reverse_hessian_matches_torch():
    def f(x):
        return (torch.sin(x) * x).sum() + (x @ x) ** 2
    x = torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64)
    h = tz.hessian(f, x, method="reverse")
    assert torch.allclose(h, torch.autograd.functional.hessian(f, x), atol=1e-10)


def sq_sum(x):
    return (x * x).sum()


def pullback_then_write(x):
    x = x * 1.0
    y, pb = tz.pullback(sq_sum, x)
    x.mul_(2.0)   # the inner pullback reads the old x
    return pb(1.0)[0].sum()


def test_nested_pullback_checks_its_reads():
    with pytest.raises(tz.GradientError, match=r"argument 1 of sq_sum .* was written in place after the call"):
        tz.gradient(pullback_then_write, torch.ones(3, dtype=torch.float64))


def double_in_place(t):
    t.mul_(2.0)
    return t.sum()


def gradient_of_writer(x):
    return tz.gradient(double_in_place, x * 1.0)[0].sum()


def test_nested_callee_writing_its_argument_is_refused():
    with pytest.raises(tz.GradientError, match=r"double_in_place writes into a tensor argument in place"):
        tz.gradient(gradient_of_writer, torch.ones(3, dtype=torch.float64))
