"""Forward mode: the API (jvp, pushforward, D, Dual, hvp, jacobian's modes, forwarddiff),
forward over reverse Hessians against torch, nesting of the modes, and its refusals."""
import itertools
import math

import numpy as np
import pytest
import torch

import torchzygote as tz
from torchzygote.errors import LiftError, NoRuleError

D64 = torch.float64


# ---------------------------------------------------------------- the seeds' dual numbers

def f_seed(x):
    return 5 * math.sin(math.log(x))


def df_seed(x):
    return 5 * math.cos(math.log(x)) / x


def test_seed_dual_number_example_runs_as_written():
    # D(f, x) = f(Dual(x, one(x))).ϵ ;  D(f, 3.) == df(3.)
    assert tz.D(f_seed, 3.0) == df_seed(3.0)


def test_dual_arithmetic_and_comparison_on_the_primal_part():
    d = tz.Dual(3.0, 1.0)
    y = d * d + 2 * d - d / 3 + d ** 2
    assert y.primal == pytest.approx(9 + 6 - 1 + 9) and y.tangent == pytest.approx(6 + 2 - 1 / 3 + 6)
    assert y.ϵ == y.tangent
    assert d < 4 and d > 2 and d == 3.0 and abs(-d).tangent == 1.0


def test_a_dual_refuses_to_drop_its_tangent():
    with pytest.raises(TypeError, match="drop its tangent"):
        math.sin(tz.Dual(1.0, 1.0))


# ---------------------------------------------------------------- jvp, pushforward

def test_jvp_agrees_with_torch_func_on_tensors():
    def f(W, x):
        h = torch.tanh(W @ x)
        h = torch.cat([h, h.exp()]) * 2.0
        return h.softmax(0).log()
    g = torch.Generator().manual_seed(0)
    W, x = torch.randn(3, 3, generator=g, dtype=D64), torch.randn(3, generator=g, dtype=D64)
    tW, tx = torch.randn(3, 3, generator=g, dtype=D64), torch.randn(3, generator=g, dtype=D64)
    y, ty = tz.jvp(f, (W, x), (tW, tx))
    ry, rty = torch.func.jvp(f, (W, x), (tW, tx))
    assert torch.allclose(y, ry) and torch.allclose(ty, rty, atol=1e-12)


def test_jvp_of_structures_and_none_tangents():
    def f(p, scale):
        return {"s": p["a"] * p["b"] * scale, "l": [p["a"], p["b"] ** 2]}
    y, ty = tz.jvp(f, ({"a": 2.0, "b": 3.0}, 1.5), ({"a": 1.0, "b": None}, None))
    assert y == {"s": 9.0, "l": [2.0, 9.0]}
    assert ty == {"s": 4.5, "l": [1.0, 0.0]}


def test_pushforward_is_linear_in_the_tangent():
    def f(x):
        return torch.stack([x[0] * x[1], torch.sin(x[2]), x.sum()])
    x = torch.tensor([0.3, -1.2, 0.8], dtype=D64)
    push = tz.pushforward(f, x)
    a, b = torch.tensor([1.0, 0, 2], dtype=D64), torch.tensor([0.0, 3, -1], dtype=D64)
    assert torch.allclose(push(a + 2 * b), push(a) + 2 * push(b))


def test_jvp_through_loops_closures_objects_and_mutation():
    class Acc:
        def __init__(self):
            self.items = []

        def add(self, v):
            self.items.append(v)

    def f(x, n):
        acc = Acc()
        k = lambda t: t * x  # noqa: E731 (a closure over a value with a tangent)
        r = 1.0
        for i in range(n):
            r = k(r) + math.cos(i * x)
            acc.add(r)
        return sum(acc.items)
    x, h = 0.4, 1e-6
    _, t = tz.jvp(f, (x, 5), (1.0, None))
    assert t == pytest.approx((f(x + h, 5) - f(x - h, 5)) / (2 * h), rel=1e-6)


def test_jvp_of_inplace_writes_matches_finite_differences():
    def f(x):
        y = x * 1.0
        y.mul_(y)           # an argument that is the written tensor: read as its old value
        y[0] = y[1] * 3
        y += x.exp()
        return y
    x, v = torch.tensor([1.0, 2.0, 3.0], dtype=D64), torch.tensor([0.5, -1.0, 2.0], dtype=D64)
    h = 1e-6
    _, t = tz.jvp(f, (x,), (v,))
    assert torch.allclose(t, (f(x + h * v) - f(x - h * v)) / (2 * h), atol=1e-6)


def test_a_write_into_a_tensor_another_live_name_views_is_refused():
    def f(x):
        y = x * 1.0
        row = y[0:2]
        y.mul_(2.0)
        return row.sum() + y.sum()
    with pytest.raises(LiftError, match="forward mode cannot follow this in-place write"):
        tz.jvp(f, (torch.ones(3, dtype=D64),), (torch.ones(3, dtype=D64),))


def test_a_function_without_a_tangent_rule_is_refused_not_dropped():
    import statistics

    def f(x):
        return statistics.fmean([x, 2 * x])   # (lifted: works)
    assert tz.jvp(f, (1.0,), (1.0,))[1] == pytest.approx(1.5)

    def g(x):
        return np.frompyfunc(lambda t: t * t, 1, 1)(x)   # a C callable with neither source nor rule
    with pytest.raises(NoRuleError, match="forward mode"):
        tz.jvp(g, (2.0,), (1.0,))


def test_tangent_of_the_wrong_shape_is_a_clear_error():
    with pytest.raises(tz.TorchZygoteError, match="must be a tensor of shape"):
        tz.jvp(torch.sin, (torch.ones(3),), (torch.ones(2),))


# ---------------------------------------------------------------- jacobian, hessian, hvp

def test_jacobian_forward_and_reverse_agree():
    def f(x, y):
        return torch.cat([x * y.sum(), torch.sin(x)])
    x, y = torch.tensor([0.3, 0.9], dtype=D64), torch.tensor([1.5, -0.5, 2.0], dtype=D64)
    fw = tz.jacobian(f, x, y, mode="forward")
    rv = tz.jacobian(f, x, y, mode="reverse")
    au = tz.jacobian(f, x, y, mode="auto")
    ref = torch.autograd.functional.jacobian(f, (x, y))
    for a, b, c, r in zip(fw, rv, au, ref):
        assert torch.allclose(a, r) and torch.allclose(b, r) and torch.allclose(c, r)


def test_jacobian_forward_of_numbers():
    assert tz.jacobian(lambda x: x * math.exp(x), 0.5, mode="forward") == \
        pytest.approx((math.exp(0.5) * 1.5,))


HESSIAN_CASES = {
    "cubic": (lambda x: (x ** 3).sum(), torch.tensor([1.0, 2.0, 3.0], dtype=D64)),
    "quadratic_form": (lambda x: x @ torch.arange(9.0, dtype=D64).reshape(3, 3) @ x + torch.sin(x).sum(),
                       torch.tensor([0.1, -0.4, 0.7], dtype=D64)),
    "logsumexp": (lambda x: torch.logsumexp(x * x, 0) + (x.tanh() * x).prod(), torch.tensor([0.3, -0.2, 0.5], dtype=D64)),
    "loop": (lambda x: _rk(x), torch.tensor([0.4, 0.9], dtype=D64)),
}


def _rk(x):
    y = x
    for _ in range(4):
        y = y + 0.1 * torch.sin(y) * x
    return (y ** 2).sum()


@pytest.mark.parametrize("name", list(HESSIAN_CASES))
def test_hessian_forward_over_reverse_matches_torch(name):
    f, x = HESSIAN_CASES[name]
    H = tz.hessian(f, x)
    ref = torch.autograd.functional.hessian(f, x)
    assert torch.allclose(H, ref, rtol=1e-10, atol=1e-10)
    assert torch.allclose(tz.hessian(f, x, method="reverse"), ref, rtol=1e-10, atol=1e-10)
    v = torch.linspace(-1, 1, x.numel(), dtype=D64)
    assert torch.allclose(tz.hvp(f, x, v), ref @ v, rtol=1e-10, atol=1e-10)
    (dh,) = tz.diaghessian(f, x)
    assert torch.allclose(dh, ref.diagonal(), rtol=1e-10, atol=1e-10)


def test_forwarddiff_handles_python_numbers_math_and_closures():
    k = 3.0

    def inner(t):
        return math.sin(t) * k + t ** 2

    def f(x):
        return tz.forwarddiff(inner, x * 2) * x
    x, h = 0.7, 1e-6
    assert tz.gradient(f, x)[0] == pytest.approx((f(x + h) - f(x - h)) / (2 * h), rel=1e-7)


# ---------------------------------------------------------------- nesting

def g3(x):
    return x * math.sin(x)


DERIVS = [g3, lambda x: math.sin(x) + x * math.cos(x), lambda x: 2 * math.cos(x) - x * math.sin(x),
          lambda x: -3 * math.sin(x) - x * math.cos(x), lambda x: -4 * math.cos(x) + x * math.sin(x)]


def _nest(modes):
    g = g3
    for m in reversed(modes):
        g = (lambda h: lambda x: tz.D(h, x))(g) if m == "F" else (lambda h: lambda x: tz.gradient(h, x)[0])(g)
    return g


@pytest.mark.parametrize("modes", ["".join(c) for n in (2, 3) for c in itertools.product("FR", repeat=n)]
                         + ["FFFF", "RFFR"])
def test_nested_modes_agree_with_the_exact_derivative(modes):
    x = 0.7
    assert _nest(modes)(x) == pytest.approx(DERIVS[len(modes)](x), rel=1e-10, abs=1e-12)


def test_no_perturbation_confusion():
    # d/dx [x * d/dy (x + y)] = 1: the inner derivative must not see the outer tangent
    def outer(x):
        return x * tz.D(lambda y: x + y, 1.0)
    assert tz.D(outer, 2.0) == 1.0


def test_a_users_forward_rule():
    def cube(x):
        return x ** 3

    @tz.adjoint(cube)
    def _(x):
        return x ** 3, lambda dy: (3 * x ** 2 * dy,)

    with pytest.raises(NoRuleError, match="jvp_rule"):
        tz.jvp(lambda x: cube(x) + x, (2.0,), (1.0,))

    @tz.jvp_rule(cube)
    def cube_jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        return x ** 3, None if dx is None else 3 * x ** 2 * dx

    assert tz.jvp(lambda x: cube(x) + x, (2.0,), (1.0,)) == (10.0, 13.0)


# ---------------------------------------------------------------- Taylor mode

def exp_sin(x):
    return math.exp(math.sin(x))


def pow_loop(x, n):
    r = 1.0
    while n > 0:
        n -= 1
        r *= x
    return r


def test_taylor_of_exp_sin_matches_its_series():
    known = [1, 1, 1 / 2, 0, -1 / 8, -1 / 15, -1 / 240, 1 / 90, 31 / 5760]   # exp(sin x) at 0
    assert tz.taylor(exp_sin, 0.0, 8) == pytest.approx(known, abs=1e-14)


def test_taylor_of_the_seeds_pow_loop_is_the_binomial_series():
    x, n = 1.5, 5
    got = tz.taylor(lambda t: pow_loop(t, n), x, 8)
    assert got == pytest.approx([math.comb(n, k) * x ** (n - k) for k in range(9)], rel=1e-14)


def test_taylor_of_tensors_along_a_direction():
    x, v = torch.tensor([0.1, 0.7], dtype=D64), torch.tensor([1.0, -0.5], dtype=D64)
    f = lambda t: (torch.exp(torch.sin(t)) * t).sum()  # noqa: E731
    got = tz.taylor(f, x, 3, v)
    g = lambda s: f(x + s * v)  # noqa: E731
    assert float(got[1]) == pytest.approx(float(tz.D(g, 0.0)), rel=1e-12)
    assert float(got[2]) * 2 == pytest.approx(float(tz.D(lambda s: tz.D(g, s), 0.0)), rel=1e-12)


def test_fourth_derivatives_agree_by_every_route():
    f = lambda x: math.exp(math.sin(x)) * x  # noqa: E731
    x, h = 0.4, 1e-2
    fd = (f(x + 2 * h) - 4 * f(x + h) + 6 * f(x) - 4 * f(x - h) + f(x - 2 * h)) / h ** 4
    by_taylor = 24 * tz.taylor(f, x, 4)[4]
    by_forward = _d4(lambda g: (lambda t: tz.D(g, t)), f)(x)
    by_reverse = _d4(tz.derivative, f)(x)
    assert by_taylor == pytest.approx(fd, rel=2e-3)
    assert by_forward == pytest.approx(by_taylor, rel=1e-10)
    assert by_reverse == pytest.approx(by_taylor, rel=1e-10)


def _d4(d, f):
    return d(d(d(d(f))))


def test_taylor_refuses_what_it_has_no_series_for():
    with pytest.raises(NoRuleError, match="no Taylor rule"):
        tz.taylor(lambda x: torch.prod(torch.stack([x, x * 2])), torch.tensor(0.5, dtype=D64), 3)


# ---------------------------------------------------------------- tensor programs and modules

def _rollout(W1, b1, W2, s):
    total = 0.0
    for _ in range(5):
        u = torch.tanh(W2 @ torch.relu(W1 @ s + b1))
        s = s + 0.1 * torch.cat([s[1:], u])
        total = total + (s * s).sum()
    return total


MODULES = {
    "sequential": lambda: torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double(),
    "conv": lambda: torch.nn.Sequential(torch.nn.Conv1d(2, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten()).double(),
    "gru_cell": lambda: torch.nn.GRUCell(4, 3).double(),
}


def test_jvp_of_a_rollout_matches_torch_func():
    g = torch.Generator().manual_seed(3)
    W1, b1, W2 = (torch.randn(6, 4, generator=g, dtype=D64), torch.randn(6, generator=g, dtype=D64),
                  torch.randn(1, 6, generator=g, dtype=D64))
    s = torch.randn(4, generator=g, dtype=D64)
    ts = [torch.randn_like(a) for a in (W1, b1, W2, s)]
    y, t = tz.jvp(_rollout, (W1, b1, W2, s), ts)
    ry, rt = torch.func.jvp(_rollout, (W1, b1, W2, s), tuple(ts))
    assert torch.allclose(y, ry) and torch.allclose(t, rt, atol=1e-12)


@pytest.mark.parametrize("name", list(MODULES))
def test_jvp_through_modules_matches_torch_func(name):
    torch.manual_seed(0)
    m = MODULES[name]()
    x = torch.randn(5, 2, 4, dtype=D64) if name == "conv" else torch.randn(5, 4, dtype=D64)
    v = torch.randn_like(x)
    y, t = tz.jvp(lambda x: m(x), (x,), (v,))
    ry, rt = torch.func.jvp(m, (x,), (v,))
    assert torch.allclose(y, ry) and torch.allclose(t, rt, atol=1e-12)


def test_a_write_under_a_view_made_by_a_call_is_refused():
    # fuzz seed 5 NumPy program 57: np.rot90 returns a view; the write changes what it reads later
    def f(x0):
        z = np.array(x0)
        y = np.rot90(z, 2)
        z[1] = np.tanh(x0[0])
        return np.sum(y + x0[1])
    x = np.array([[0.3, -0.2], [0.5, 0.1]])
    with pytest.raises(tz.GradientError, match="forward mode cannot follow this in-place write"):
        tz.jvp(f, (x,), (np.ones((2, 2)),))


def test_a_write_into_a_tensor_a_callee_returned():
    # fuzz seed 3 tensor program 51: y10 is y7 itself (returned by a closure), then y7 is written
    def f(x):
        y7 = x * 2.0
        def g():
            return y7
        y10 = g()
        y7.mul_(3.0)
        return (y10 * y7).sum()
    x = torch.tensor([0.3, -0.7], dtype=D64)
    with pytest.raises(tz.GradientError, match="forward mode cannot follow this in-place write"):
        tz.jvp(f, (x,), (torch.ones(2, dtype=D64),))


def test_a_write_a_view_with_a_tangent_sees_is_refused_even_where_nothing_else_needs_it():
    # fuzz seed 9 NumPy program 212: y is a view of z; z is written in a loop whose results are
    # otherwise unused, but y (read afterwards, with a tangent) sees the writes
    def f(x0, s0):
        z = np.array(x0)
        y = z[0]
        for _ in range(2):
            z += s0 * x0
        return np.sum(y * y)
    x = np.array([[0.3, -0.2], [0.5, 0.1]])
    with pytest.raises(tz.GradientError, match="forward mode cannot follow this in-place write"):
        tz.jvp(f, (x, 0.4), (np.ones((2, 2)), 1.0))


def test_a_module_with_hooks_runs_them():
    m = torch.nn.Linear(3, 2).double()
    m.register_forward_hook(lambda mod, inp, out: out * 2)
    x, v = torch.tensor([0.2, -0.4, 0.9], dtype=D64), torch.tensor([1.0, 0.5, -1.0], dtype=D64)
    y, t = tz.jvp(lambda x: m(x), (x,), (v,))
    ry, rt = torch.func.jvp(m, (x,), (v,))
    assert torch.allclose(y, ry) and torch.allclose(t, rt)


def cat_by_keyword(x):
    xs = [x * 1.0, x * x]
    return (torch.cat(tensors=xs) ** 2).sum() + (torch.stack(tensors=(x, x.sin())) ** 2).sum()


def test_a_structure_passed_by_keyword_keeps_its_tangents():
    """``torch.cat(tensors=xs)``: the items' tangents are read from a keyword structure too (it was
    a TypeError under hessian, where the items are Duals)."""
    x = torch.tensor([0.5, -1.0, 0.3], dtype=torch.float64)
    v = torch.tensor([0.2, 1.0, -0.7], dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    g, = torch.autograd.grad(cat_by_keyword(xr), xr)
    torch.testing.assert_close(tz.jvp(cat_by_keyword, (x,), (v,))[1], (g * v).sum())
    torch.testing.assert_close(tz.hessian(cat_by_keyword, x), torch.autograd.functional.hessian(cat_by_keyword, x))


def inplace_in_a_branch_in_a_loop(x):
    y = x * 1.0
    for i in range(4):
        y = y - 0.3
        if i % 2 == 0:
            y.relu_()
        else:
            y.sigmoid_()
    return (y ** 3).sum()


def test_inplace_write_in_a_branch_in_a_loop():
    """The other branch's value and the branch's merge are not names that view the written
    tensor (forward mode refused this as a view write)."""
    x = torch.tensor([0.9, -0.2, 1.7, 0.4], dtype=torch.float64)
    v = torch.tensor([0.3, 1.0, -0.5, 2.0], dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    g, = torch.autograd.grad(inplace_in_a_branch_in_a_loop(xr * 1.0), xr)
    torch.testing.assert_close(tz.jvp(inplace_in_a_branch_in_a_loop, (x,), (v,))[1], (g * v).sum())


# ---------------------------------------------------------------- ops returning torch.return_types

_X4 = torch.tensor([0.3, -0.5, 0.9, 0.1], dtype=D64)
_A3 = torch.tensor([[2.0, 0.3, 0.1], [0.3, 1.5, 0.2], [0.1, 0.2, 1.0]], dtype=D64)


def _cummax_values(x):
    return torch.cummax(x, 0).values


def _kth_by_index(x):
    return torch.kthvalue(x, 2)[0]


def _aminmax_both(x):
    r = torch.aminmax(x)
    return r.max * r.min


def _slogdet(A):
    return torch.linalg.slogdet(A).logabsdet


def _eigh_values(A):
    return torch.linalg.eigh(A).eigenvalues


def _svd_values(A):
    return torch.linalg.svd(A).S


@pytest.mark.parametrize("f,x", [(_cummax_values, _X4), (_kth_by_index, _X4), (_aminmax_both, _X4),
                                 (_slogdet, _A3), (_eigh_values, _A3), (_svd_values, _A3)])
def test_ops_returning_named_result_tuples_carry_their_tangents(f, x):
    # torch's forward AD runs them; their results (torch.return_types) were given no tangent: zero, silently
    t = torch.randn(x.shape, dtype=D64, generator=torch.Generator().manual_seed(0))
    t = t + t.mT if x.dim() == 2 else t   # (eigh: a symmetric direction)
    assert torch.allclose(tz.jvp(f, (x,), (t,))[1], torch.func.jvp(f, (x,), (t,))[1], atol=1e-10)
    assert torch.allclose(tz.jacobian(f, x, mode="forward")[0], tz.jacobian(f, x, mode="reverse")[0], atol=1e-10)


def _enumerated(x):
    acc = 0.0
    for i, t in enumerate(x):
        acc = acc + t ** 3 * (i + 1)
    return acc


def _listed(x):
    items = list(x)
    return items[0] * items[1] * items[2]


def _zipped(x):
    return sum(a * b for a, b in zip(x, x.flip(0)))


@pytest.mark.parametrize("f", [_enumerated, _listed, _zipped])
def test_builtins_iterating_a_tensor_see_its_rows_tangents(f):
    # list(x), zip, enumerate on a value with a tangent: "'Dual' object is not iterable", deep in generated code
    x = torch.tensor([0.3, -1.2, 2.0], dtype=D64)
    v = torch.tensor([1.0, 0.5, -1.0], dtype=D64)
    assert torch.allclose(tz.jvp(f, (x,), (v,))[1], torch.func.jvp(f, (x,), (v,))[1])
    assert torch.allclose(tz.hessian(f, x), torch.autograd.functional.hessian(f, x))
