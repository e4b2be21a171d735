"""The shapes of generated loops: a ``while`` loop that tests first breaks out before the
trip (its pullback runs the trips that ran, without saving the test), and a loop whose
body alone saves values pushes them on a list of its own, iterated reversed (also a list
saved per trip of an outer loop). Each shape is checked on its gradient (central
differences), on a pullback called twice and on forward over reverse."""
import pytest
from test_seeds_core import pow_while   # the seeds' pow loop

import torchzygote as tz


def central(f, args, i, h=1e-6):
    lo, hi = list(args), list(args)
    lo[i] -= h
    hi[i] += h
    return (f(*hi) - f(*lo)) / (2 * h)


def while_test_reads_active(x, y):
    s = x
    while s * y < 50.0:   # the test computes from active values; only the trips' values flow
        s = s * 1.5 + y
    return s * x


def while_walrus(x):
    s = 0.0
    k = 0
    while (t := x * (k + 1)) < 4.0:   # a value computed by the test, read by the trip
        s = s + t * t
        k += 1
    return s


def while_break(x, n):
    r = 1.0
    while True:   # not a test-first loop: the exit is a flag
        r = r * x
        n -= 1
        if n <= 0:
            break
    return r


def nested(x, n):
    s = 0.0
    for i in range(n):
        p = x
        for j in range(i):   # the inner loop's list is saved once per outer trip
            p = p * x + 0.1
        s = s + p * p
    return s


def branch_in_loop(x, n):
    s = x
    for i in range(n):
        if i % 2:
            s = s * x      # the branch saves: the shared stack
        else:
            q = s
            for j in range(2):
                q = q * q * 0.5 + x
            s = s + q
    return s


def items(x, ws):
    s = 0.0
    for w in ws:   # the items get gradients: the trips are walked by index
        s = s + w * x * w
    return s


def in_try(x, n):
    s = x
    try:
        t = s
        for i in range(n):
            t = t * x + 1.0
        s = t / (n - 5)
    except ZeroDivisionError:
        s = s * 2.0
    return s


def fib_like(x, n):
    a, b = 1.0, x
    for i in range(n):
        a, b = b, a + b * x   # each next value reads the other parameter
    return b


def reads_after_renewal(x, n):
    r = 1.0
    while n > 0:
        m = n - 1
        r = r * x + n * r   # reads n after its next value is made
        n = m
    return r


CASES = [(fib_like, (0.9, 5)), (reads_after_renewal, (0.8, 4)), (pow_while, (1.1, 7)), (pow_while, (1.3, 0)), (while_test_reads_active, (1.2, 2.0)),
         (while_walrus, (0.7,)), (while_break, (1.1, 5)), (nested, (0.9, 4)), (branch_in_loop, (1.05, 5)),
         (in_try, (1.1, 5)), (in_try, (1.1, 2))]


@pytest.mark.parametrize("f,args", CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_gradient(f, args):
    g = tz.gradient(f, *args)
    for i, a in enumerate(args):
        if type(a) is float:
            assert (g[i] or 0.0) == pytest.approx(central(f, args, i), rel=1e-6, abs=1e-8)   # None: zero


def test_items_and_pullback_twice():
    ws = [0.5, -1.0, 2.0]
    y, back = tz.pullback(items, 1.5, ws)
    for _ in range(2):   # the pullback reads the saved lists, it does not consume them
        gx, gw = back(1.0)
        assert gx == pytest.approx(sum(w * w for w in ws))
        assert gw == pytest.approx([2 * w * 1.5 for w in ws])


@pytest.mark.parametrize("f,args", CASES[:9], ids=lambda c: getattr(c, "__name__", ""))
def test_pullback_twice(f, args):
    y, back = tz.pullback(f, *args)
    assert back(1.0) == back(1.0)


def test_second_derivative():
    d2 = tz.derivative(tz.derivative(lambda x: pow_while(x, 5)))
    assert d2(1.2) == pytest.approx(20 * 1.2 ** 3)
    h = tz.hessian(lambda x: nested(x, 3), 0.9)
    f1 = tz.derivative(lambda x: nested(x, 3))
    assert float(h) == pytest.approx(central(f1, (0.9,), 0), rel=1e-5)


def test_generated_shapes():
    src = tz.code_adjoint(pow_while, 1.1, 7).source
    assert "while n > 0" not in src and "while v" in src and "while True" not in src
    assert "_s0.append(v5)\n        v4 = v4 - 1" in src   # pushed first, then renewed in place
    assert "_st" not in src and "_n0" not in src   # no shared stack, no trip counter
    src = tz.code_adjoint(nested, 0.9, 4).source
    assert "_st" not in src and src.count("in reversed(_s") == 2
    src = tz.code_adjoint(branch_in_loop, 1.05, 5).source
    assert "_st.append" in src and "in reversed(_s" in src   # the inner loop's own list, saved on the stack
    src = tz.code_adjoint(while_break, 1.1, 5).source
    assert "while True" in src


def linear_sum(x, n):
    s = 0
    for i in range(n):
        s = s + 3 * x   # every trip adds to dx: summed from 0 in the pullback
    return s


def some_trips(x, n):
    s = 0.0
    for i in range(n):
        if i % 2:
            s = s + x   # only odd trips add to dx
    return s


def test_gradient_none_without_a_contribution():
    assert tz.gradient(pow_while, 1.3, 0) == (None, None)    # no trip ran
    assert tz.gradient(linear_sum, 2.0, 0) == (None, None)
    assert tz.gradient(some_trips, 2.0, 1) == (None, None)   # a trip ran, none added
    assert tz.gradient(some_trips, 2.0, 4) == (2.0, None)
    g = tz.gradient(linear_sum, 2, 4)   # an int's gradient stays an int
    assert g == (12, None) and type(g[0]) is int
    assert "dx = 0" in tz.code_adjoint(linear_sum, 2.0, 3).source


def test_inline_temporaries():
    from torchzygote.ad.codegen import inline_temporaries
    lines = ["    v7 = v4 * v4  # a.py:3", "    v8 = v7 + 1.0  # a.py:3", "    v9 = f(v8)  # a.py:3",
             "    v10 = g(v2) * v9  # a.py:3",   # g runs before v9 would: kept
             "    v11 = v10 - 1  # a.py:4",      # another source line: kept
             "    v12 = v11 * 2  # a.py:4", "    v13 = v12 + v12  # a.py:4"]   # read twice: kept
    assert inline_temporaries(lines) == [
        "    v9 = f(((v4 * v4) + 1.0))  # a.py:3", "    v10 = g(v2) * v9  # a.py:3",
        "    v12 = (v10 - 1) * 2  # a.py:4", "    v13 = v12 + v12  # a.py:4"]


K = 2.0


def scaled(x):
    return K * x * x


def test_warm_numbers_path_follows_rebound_globals():
    global K
    for _ in range(4):   # transform, measure, then the numbers-only warm path
        assert tz.gradient(scaled, 1.5) == (6.0,)
    K = 3.0
    try:
        for _ in range(3):
            assert tz.gradient(scaled, 1.5) == (9.0,)
    finally:
        K = 2.0
    assert tz.gradient(scaled, 1.5) == (6.0,)
    import torch
    with torch.no_grad():   # grad mode is left as it is, and is what it was after
        assert tz.gradient(scaled, 1.5) == (6.0,)
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()


def rows_sum(xs, w):
    s = 0.0
    for x in xs:
        if s > 3.0:
            break   # (a loop left early: the rows it did not reach get no gradient)
        s = s + (x * w).sin().sum() ** 2
    return s


@pytest.mark.parametrize("scale", [0.2, 1.0])
def test_rows_of_a_tensor_are_gathered_after_the_trips(scale):
    """A ``for`` loop over a tensor: the rows' gradients are joined once after the trips
    (``gather_back``), not a zero tensor of the whole and a sum per trip (quadratic in the rows)."""
    import torch
    torch.manual_seed(4)
    xs, w = torch.randn(6, 3, dtype=torch.float64) * scale, torch.randn(3, dtype=torch.float64)
    src = tz.code_adjoint(rows_sum, xs, w).source
    assert "_gather_back(" in src and "_item_back(" not in src
    xr, wr = xs.clone().requires_grad_(True), w.clone().requires_grad_(True)
    want = torch.autograd.grad(rows_sum(xr, wr), (xr, wr))
    for g, t in zip(tz.gradient(rows_sum, xs, w), want):
        torch.testing.assert_close(g, t)
    flat = lambda v: rows_sum(v.reshape(6, 3), w)   # noqa: E731
    torch.testing.assert_close(tz.hessian(flat, xs.reshape(-1)),
                               torch.autograd.functional.hessian(flat, xs.reshape(-1)))
