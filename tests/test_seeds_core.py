"""The seed documents' examples that need only the core (numbers from the seeds)."""
import io
import math
from fractions import Fraction

import pytest

import torchzygote as tz
from torchzygote import adjoint, derivative, gradient, hook, nestlevel, pullback


# ---------------------------------------------------------------- f(x) = 5x + 3

def test_linear_5x_plus_3():
    def f(x):
        return 5 * x + 3

    assert f(10) == 53
    assert derivative(f)(10) == 5
    assert gradient(f, 10) == (5,)


# ---------------------------------------------------------------- pow (while, for), recursion

def pow_while(x, n):
    r = 1
    while n > 0:
        n -= 1
        r *= x
    return r


def pow_for(x, n):
    r = 1
    for i in range(n):
        r *= x
    return r


def pow2(x, n):
    return 1 if n <= 0 else x * pow2(x, n - 1)


def test_pow_while():
    assert pow_while(5, 3) == 125
    assert gradient(lambda x: pow_while(x, 3), 5) == (75,)


def test_pow_for():
    assert gradient(lambda x: pow_for(x, 3), 5) == (75,)


def test_pow_while_g_prime_2():
    def g(x):
        return pow_while(x, 5)

    assert derivative(g)(2) == 80


def test_gradient_pow_2_5():
    assert gradient(pow_while, 2, 5) == (80, None)


def test_pullback_pow_5_3():
    y, back = pullback(pow_while, 5, 3)
    assert y == 125
    assert back(1) == (75, None)


def test_recursive_pow2():
    assert gradient(lambda x: pow2(x, 3), 5) == (75,)


# ---------------------------------------------------------------- 5 sin(log x), first and second derivative

def f_sinlog(x):
    return 5 * math.sin(math.log(x))


def test_sinlog_first_derivative():
    df = derivative(f_sinlog)
    assert df(3.0) == pytest.approx(5 * math.cos(math.log(3.0)) / 3.0, rel=1e-12)


def test_sinlog_second_derivative():
    def ddf(x):
        return -(5 * (math.sin(math.log(x)) + math.cos(math.log(x)))) / x ** 2

    assert derivative(derivative(f_sinlog))(3.0) == pytest.approx(ddf(3.0), rel=1e-10)


def test_dual_number_forward_mode_matches():
    # The talk's dual numbers: D(f, 3.) == df(3.); reverse mode must agree.
    class Dual:
        def __init__(self, x, e):
            self.x, self.e = x, e

        def __rmul__(self, k):
            return Dual(k * self.x, k * self.e)

    def dsin(d):
        return Dual(math.sin(d.x), d.e * math.cos(d.x))

    def dlog(d):
        return Dual(math.log(d.x), d.e / d.x)

    forward = (5 * dsin(dlog(Dual(3.0, 1.0)))).e
    assert derivative(f_sinlog)(3.0) == pytest.approx(forward, rel=1e-12)


# ---------------------------------------------------------------- docs: 3x^2 + 2x + 1

def poly(x):
    return 3 * x ** 2 + 2 * x + 1


def test_poly_at_5():
    assert gradient(poly, 5) == (32,)
    assert gradient(poly, 5.0) == (32.0,)


def test_poly_at_fraction_exact():
    g = gradient(poly, Fraction(1, 4))
    assert g == (Fraction(7, 2),)
    assert isinstance(g[0], Fraction)


def test_two_args_product():
    assert gradient(lambda a, b: a * b, 2, 3) == (3, 2)


def test_star_three_args():
    assert gradient(lambda a, b, c: a * b * c, 2.0, 3.0, 5.0) == (15.0, 10.0, 6.0)


# ---------------------------------------------------------------- dynamic dispatch through a dict

def test_dynamic_dispatch_readline():
    fs = {"sin": math.sin, "cos": math.cos, "tan": math.tan}
    stream = io.StringIO("sin\n")
    f = lambda x: fs[stream.readline().strip()](x)  # noqa: E731
    assert gradient(f, 1.0) == (pytest.approx(math.cos(1.0)),)


@pytest.mark.parametrize("name,d", [("sin", math.cos), ("cos", lambda x: -math.sin(x)),
                                    ("tan", lambda x: 1 / math.cos(x) ** 2)])
def test_dynamic_dispatch_each(name, d):
    fs = {"sin": math.sin, "cos": math.cos, "tan": math.tan}
    stream = io.StringIO(name + "\n")

    def f(x):
        return fs[stream.readline().strip()](x)

    assert gradient(f, 1.0)[0] == pytest.approx(d(1.0), rel=1e-12)


def test_dynamic_dispatch_integer_input():
    fs = {"sin": math.sin}
    stream = io.StringIO("sin\n")
    assert gradient(lambda x: fs[stream.readline().strip()](x), 1)[0] == pytest.approx(0.5403023058681398)


# ---------------------------------------------------------------- the hand-written adjoint of pow

def grad_pow(x, n):
    """The talk's hand-written adjoint of ``pow``: save (r, x) per trip, walk back."""
    r = 1
    bs = []
    while n > 0:
        bs.append((r, x))
        r *= x
        n -= 1
    dx = 0
    dr = 1
    for i in range(len(bs) - 1, -1, -1):
        r, x = bs[i]
        dx += dr * r
        dr = dr * x
    return dx


@pytest.mark.parametrize("x,n", [(5, 3), (2, 5), (2.5, 4), (-1.5, 3), (3.0, 0), (7, 1)])
def test_grad_pow_matches_handwritten(x, n):
    # no gradient flowing (n == 0) may be reported as None, Zygote's `nothing`
    want = grad_pow(x, n)
    assert (gradient(pow_while, x, n)[0] or 0) == pytest.approx(want, rel=1e-12)
    assert (gradient(pow_for, x, n)[0] or 0) == pytest.approx(want, rel=1e-12)


def test_generated_adjoint_is_a_loop():
    # The adjoint of a loop is a loop over saved values, not an unrolled trace:
    # the same generated code serves every trip count.
    import networkx as nx
    adjoint = tz.code_adjoint(pow_while, 2.0, 3)
    assert list(nx.simple_cycles(adjoint.graph)), str(adjoint)   # a back edge: the adjoint loops
    assert "in reversed(_s" in adjoint.source   # over the values its trips saved, last first
    assert gradient(pow_while, 2.0, 10)[0] == pytest.approx(10 * 2.0 ** 9)
    assert gradient(pow_while, 2.0, 30)[0] == pytest.approx(30 * 2.0 ** 29)


# ---------------------------------------------------------------- custom adjoints

def add(a, b):
    return a + b


def test_custom_adjoint_add():
    calls = []

    def add_rule(a, b):
        def back(dy):
            calls.append(dy)
            return dy, dy
        return add(a, b), back

    adjoint(add)(add_rule)
    try:
        assert gradient(add, 2.0, 3.0) == (1.0, 1.0)
        assert gradient(lambda x: add(x, x) * x, 3.0) == (12.0,)
        assert calls, "the custom adjoint was not used"
    finally:
        tz.ad.dispatch.USER_RULES.pop(add, None)


def test_custom_adjoint_is_used_over_source():
    def double(x):
        return 2 * x

    @adjoint(double)
    def _(x):
        return double(x), lambda dy: (100 * dy,)

    try:
        assert gradient(lambda x: double(x) + x, 1.0) == (101.0,)
    finally:
        tz.ad.dispatch.USER_RULES.pop(double, None)


# ---------------------------------------------------------------- hook

def test_hook_product():
    assert gradient(lambda a, b: a * b, 2, 3) == (3, 2)
    assert gradient(lambda a, b: hook(lambda g: -g, a) * b, 2, 3) == (-3, 2)


def test_hook_show():
    seen = []

    def show(g):
        seen.append(g)
        return g

    assert gradient(lambda a, b: hook(show, a) * b, 2, 3) == (3, 2)
    assert seen == [3]


# ---------------------------------------------------------------- nestlevel

def test_nestlevel_outside():
    levels = []

    def f(x):
        levels.append(nestlevel())
        return x

    f(1)
    assert levels == [0]


def test_nestlevel_one():
    levels = []

    def f(x):
        levels.append(nestlevel())
        return x

    gradient(f, 1)
    assert levels == [1]


def test_nestlevel_two():
    levels = []

    def f(x):
        levels.append(nestlevel())
        return x

    gradient(lambda x: x * gradient(f, x)[0], 1)
    assert levels == [2]


# ---------------------------------------------------------------- nested gradients

def test_nested_gradient_simple():
    # d/dx (x * d/dx(x^2)) = d/dx (2 x^2) = 4x
    assert gradient(lambda x: x * gradient(lambda y: y * y, x)[0], 3.0) == (12.0,)


def test_third_derivative():
    d3 = derivative(derivative(derivative(lambda x: x ** 4)))
    assert d3(2.0) == pytest.approx(24 * 2.0)
