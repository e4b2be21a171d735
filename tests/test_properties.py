"""Property tests: random points in safe domains, random loop counts, against closed forms
and finite differences."""
import math

from hypothesis import given, settings
from hypothesis import strategies as st

import torchzygote as tz
from conftest import close, fd_gradient

S = settings(max_examples=30, deadline=None)
real = st.floats(min_value=-3.0, max_value=3.0, allow_nan=False)
pos = st.floats(min_value=0.1, max_value=5.0)
unit = st.floats(min_value=-0.9, max_value=0.9)
count = st.integers(min_value=0, max_value=12)


def pow_while(x, n):
    r = 1.0
    while n > 0:
        n -= 1
        r *= x
    return r


def pow_for(x, n):
    r = 1.0
    for _ in range(n):
        r = r * x
    return r


def pow_rec(x, n):
    return 1.0 if n <= 0 else x * pow_rec(x, n - 1)


@S
@given(real, count)
def test_pow_loops_closed_form(x, n):
    want = n * x ** (n - 1) if n > 0 else 0.0
    for f in (pow_while, pow_for, pow_rec):
        g = tz.gradient(f, x, n)
        assert g[1] is None
        assert close(g[0] or 0.0, want, rtol=1e-9, atol=1e-9), (f.__name__, x, n, g, want)


@S
@given(pos)
def test_sin_log_closed_form(x):
    g = tz.gradient(lambda v: 5 * math.sin(math.log(v)), x)[0]
    assert close(g, 5 * math.cos(math.log(x)) / x, rtol=1e-12, atol=1e-12)


@S
@given(real, real)
def test_product_rule(x, y):
    assert tz.gradient(lambda a, b: a * b, x, y) == (y, x)


@S
@given(real, count)
def test_loop_with_break_and_continue(x, n):
    def f(v, k):
        r = 0.0
        for i in range(20):
            if i >= k:
                break
            if i % 3 == 1:
                continue
            r = r + math.sin(v * i)
        return r
    want = sum(i * math.cos(x * i) for i in range(min(n, 20)) if i % 3 != 1)
    g = tz.gradient(f, x, n)
    assert close(g[0] or 0.0, want, rtol=1e-9, atol=1e-9)


@S
@given(unit, unit)
def test_composition_vs_finite_differences(x, y):
    def f(a, b):
        u = math.exp(a * b) + math.atan(a - b)
        v = math.sqrt(1 + a * a) * math.tanh(b)
        return u * v if u > v else u - v
    got = tz.gradient(f, x, y)
    want = fd_gradient(f, (x, y))
    assert close(got, want), (got, want)


@S
@given(st.lists(st.floats(min_value=-2, max_value=2), min_size=1, max_size=6))
def test_sum_of_squares_over_a_list(xs):
    def f(*vs):
        return sum(v * v for v in vs)
    got = tz.gradient(f, *xs)
    assert close(got, tuple(2 * v for v in xs), rtol=1e-12, atol=1e-12)


@S
@given(real, st.integers(min_value=1, max_value=6))
def test_while_on_value_closed_form(x, k):
    # doubles r until it passes a threshold: d/dx of x * 2^m with m fixed locally
    def f(v, t):
        r = v
        i = 0
        while i < t:
            r = r * 2 + v
            i += 1
        return r
    # r_k = x * (2^k + 2^k - 1) = x * (2^(k+1) - 1)
    assert close(tz.gradient(f, x, k)[0], 2 ** (k + 1) - 1, rtol=1e-12, atol=1e-12)


@S
@given(real)
def test_nested_derivative_closed_form(x):
    # d/dx (x * d/dy y^3 at x) = d/dx 3 x^3 = 9 x^2
    g = tz.gradient(lambda v: v * tz.gradient(lambda y: y ** 3, v)[0], x)[0]
    assert close(g, 9 * x * x, rtol=1e-9, atol=1e-9)


@S
@given(st.complex_numbers(min_magnitude=0.2, max_magnitude=3.0, allow_nan=False, allow_infinity=False))
def test_abs2_is_2z(z):
    g = tz.gradient(lambda w: abs(w) ** 2, z)[0]
    assert close(g, 2 * z, rtol=1e-9, atol=1e-9)
