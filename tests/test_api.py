"""The user-facing API: withgradient, pullback, derivative, kwargs, None gradients,
caching and redefinition, thread safety, code_ir / code_adjoint."""
import math
import threading

import pytest
import torch

import torchzygote as tz


def pow_while(x, n):
    r = 1
    while n > 0:
        n -= 1
        r *= x
    return r


def test_withgradient():
    res = tz.withgradient(lambda x, y: x * y + math.sin(x), 2.0, 3.0)
    assert res.val == pytest.approx(6.0 + math.sin(2.0))
    assert res.grad == (pytest.approx(3.0 + math.cos(2.0)), 2.0)
    val, grad = res
    assert val == res.val and grad == res.grad


def test_pullback_called_twice():
    y, back = tz.pullback(lambda x, y: x * x * y, 3.0, 2.0)
    assert y == 18.0
    g1 = back(1.0)
    g2 = back(1.0)
    assert g1 == g2 == (12.0, 9.0)
    assert back(2.0) == (24.0, 18.0)


def test_pullback_with_loop_called_twice():
    y, back = tz.pullback(pow_while, 2.0, 4)
    assert back(1.0) == back(1.0) == (32.0, None)


def test_pullback_of_mutating_program_called_twice():
    def f(x, y):
        d = {}
        d["a"] = x
        lst = [y]
        lst.append(d["a"] * y)
        return lst[0] * lst[1]

    _, back = tz.pullback(f, 2.0, 3.0)
    assert back(1.0) == back(1.0) == (9.0, 12.0)


def test_derivative_nesting():
    f = lambda x: x ** 4  # noqa: E731
    assert tz.derivative(f)(2.0) == pytest.approx(32.0)
    assert tz.derivative(tz.derivative(f))(2.0) == pytest.approx(48.0)


def test_derivative_of_derivative_of_sin():
    assert tz.derivative(tz.derivative(math.sin))(0.5) == pytest.approx(-math.sin(0.5))


def test_nonscalar_tensor_output_raises_mentioning_jacobian():
    with pytest.raises(tz.TorchZygoteError) as e:
        tz.gradient(lambda x: x * 2, torch.ones(3, dtype=torch.float64))
    assert "jacobian" in str(e.value).lower()


def test_nonscalar_python_output_raises():
    with pytest.raises(tz.TorchZygoteError) as e:
        tz.gradient(lambda x: (x, x), 1.0)
    assert "jacobian" in str(e.value).lower() or "pullback" in str(e.value).lower()


def test_scalar_tensor_output_is_fine():
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    (g,) = tz.gradient(lambda v: (v * v).sum(), x)
    assert torch.allclose(g, 2 * x)


def test_kwargs_gradient():
    def f(x, *, scale=1.0, shift=0.0):
        return scale * x * x + shift

    g = tz.gradient(f, 3.0, scale=2.0, shift=1.0)
    assert g[0] == 12.0


def test_kwargs_pullback():
    def f(x, y=1.0):
        return x * y

    y, back = tz.pullback(f, 3.0, y=4.0)
    assert y == 12.0
    assert back(1.0)[0] == 4.0


def test_none_for_int_counter_and_string():
    def f(x, n, name):
        r = x
        for _ in range(n):
            r = r * x
        return r if name == "pow" else -r

    assert tz.gradient(f, 2.0, 3, "pow") == (32.0, None, None)


def test_none_for_unused_argument():
    assert tz.gradient(lambda x, y: x * 2, 1.0, 5.0) == (2.0, None)


def test_none_for_bool_argument():
    assert tz.gradient(lambda x, flag: x * x if flag else x, 3.0, True) == (6.0, None)


def test_caching_call_twice():
    def f(x):
        return x * x * x

    assert tz.gradient(f, 2.0) == (12.0,)
    assert tz.gradient(f, 2.0) == (12.0,)
    assert tz.gradient(f, 3.0) == (27.0,)


def test_redefinition_same_name_gives_new_result():
    def f(x):
        return x * x

    assert tz.gradient(f, 3.0) == (6.0,)

    def f(x):  # noqa: F811
        return x * x * x

    assert tz.gradient(f, 3.0) == (27.0,)


def test_redefinition_via_exec_same_name(tmp_path):
    import importlib.util
    import sys

    path = tmp_path / "tzredef_mod.py"
    path.write_text("def f(x):\n    return 2 * x\n")
    spec = importlib.util.spec_from_file_location("tzredef_mod", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert tz.gradient(mod.f, 1.0) == (2.0,)
    path.write_text("def f(x):\n    return 5 * x * x\n")
    spec.loader.exec_module(mod)
    assert tz.gradient(mod.f, 1.0) == (10.0,)


def _callee(x):
    return x * x


def _caller(x):
    return _callee(x) + x


def test_rebinding_a_global_callee_is_seen():
    global _callee
    old = _callee
    try:
        assert tz.gradient(_caller, 3.0) == (7.0,)
        _callee = lambda x: x * x * x  # noqa: E731
        assert tz.gradient(_caller, 3.0) == (28.0,)
    finally:
        _callee = old
    assert tz.gradient(_caller, 3.0) == (7.0,)


G_K = 2.0


def _uses_global_number(x):
    return G_K * x


def test_rebinding_a_global_number_is_seen():
    global G_K
    assert tz.gradient(_uses_global_number, 1.0) == (2.0,)
    G_K = 5.0
    try:
        assert tz.gradient(_uses_global_number, 1.0) == (5.0,)
    finally:
        G_K = 2.0


def test_argument_kinds_respecialise():
    def f(x):
        return x * x

    assert tz.gradient(f, 3) == (6,)
    assert tz.gradient(f, 3.0) == (6.0,)
    assert tz.gradient(lambda v: abs(f(v)), 1 + 1j)[0] == pytest.approx(2 * (1 + 1j))
    (g,) = tz.gradient(lambda v: f(v).sum(), torch.tensor([1.0, 2.0]))
    assert torch.allclose(g, torch.tensor([2.0, 4.0]))


def test_thread_safety():
    def make(k):
        def f(x):
            r = 0.0
            for i in range(k + 1):
                r = r + x ** i
            return r
        return f

    def want(k, x):
        return sum(i * x ** (i - 1) for i in range(1, k + 1))

    results, errors = {}, []

    def work(k):
        try:
            f = make(k)
            out = []
            for j in range(20):
                x = 0.5 + 0.01 * j
                out.append((tz.gradient(f, x)[0], want(k, x)))
            results[k] = out
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    for k in range(8):
        for got, w in results[k]:
            assert got == pytest.approx(w, rel=1e-12, abs=1e-12)


def test_code_ir_and_code_adjoint_of_pow():
    ir_text = str(tz.code_ir(pow_while, 2.0, 3))
    adj = str(tz.code_adjoint(pow_while, 2.0, 3))
    assert "br" in ir_text and "return" in ir_text
    assert "return" in adj
    assert "br" in adj or "while" in adj or "for" in adj


def test_code_adjoint_matches_gradient():
    # the printed adjoint is the code that runs
    code = tz.code_adjoint(pow_while, 2.0, 3)
    assert "def back" in code.source and "br " in str(code) and "return" in str(code)
    assert tz.gradient(pow_while, 2.0, 3) == (12.0, None)


def test_params_implicit():
    w = torch.tensor([1.0, 2.0], dtype=torch.float64)
    b = torch.tensor([0.5], dtype=torch.float64)
    x = torch.tensor([3.0, 4.0], dtype=torch.float64)

    def loss():
        return ((w * x).sum() + b.sum()) ** 2

    gs = tz.gradient(loss, tz.Params([w, b]))
    s = float((w * x).sum() + b.sum())
    assert torch.allclose(gs[w], 2 * s * x)
    assert torch.allclose(gs[b], torch.tensor([2 * s], dtype=torch.float64))
    assert x not in gs


def _no_grad_block(x, y):
    with torch.no_grad():
        c = x * y          # a constant, as under torch autograd
    return c * x + y


def test_no_grad_block_makes_constants_like_torch():
    xr = torch.tensor(2.0, requires_grad=True)
    yr = torch.tensor(3.0, requires_grad=True)
    expected = torch.autograd.grad(_no_grad_block(xr, yr), (xr, yr))
    assert tz.gradient(_no_grad_block, 2.0, 3.0) == tuple(float(e) for e in expected) == (6.0, 1.0)


def _sq(x):
    return x * x


@tz.adjoint(_sq)
def _sq_rule(x):
    return _sq(x), lambda dy: (2 * x * dy,)


def _unused_rule_result(x):
    y = _sq(x)
    _sq(x * 2.0)   # (its result has no gradient: the user's pullback is not called with None)
    return math.sin(y)


def test_custom_rule_whose_result_is_unused():
    want = 2 * 0.7 * math.cos(0.49)
    assert tz.gradient(_unused_rule_result, 0.7)[0] == pytest.approx(want, rel=1e-12)
    second = tz.derivative(tz.derivative(_unused_rule_result))(0.7)
    exact = 2 * math.cos(0.49) - 4 * 0.49 * math.sin(0.49)   # d/dx (2x cos x^2)
    assert second == pytest.approx(exact, rel=1e-10)


def test_grads_add_scale_and_map_for_accumulating_over_batches():
    """``gs1 + gs2`` sums over the union of the parameters (None adds nothing), ``gs * c``,
    ``c * gs`` and ``gs / c`` scale, ``gs.map(f)`` applies ``f``; ``update`` takes the result."""
    W = torch.ones(2, 3, dtype=torch.float64)
    b = torch.zeros(2, dtype=torch.float64)
    xs = [torch.randn(3, dtype=torch.float64) for _ in range(3)]
    total = None
    for x in xs:
        g = tz.gradient(lambda: (W @ x + b).pow(2).sum(), tz.Params([W, b]))
        total = g if total is None else total + g
    Wr, br = W.clone().requires_grad_(True), b.clone().requires_grad_(True)
    want = torch.autograd.grad(sum((Wr @ x + br).pow(2).sum() for x in xs) / 3, (Wr, br))
    mean = total / 3
    torch.testing.assert_close(mean[W], want[0])
    torch.testing.assert_close((total * (1 / 3))[b], want[1])
    torch.testing.assert_close((2 * mean).map(torch.neg)[b], -2 * want[1])
    only_w = tz.gradient(lambda: (W @ xs[0]).sum(), tz.Params([W]))
    both = only_w + tz.gradient(lambda: b.sum(), tz.Params([b]))
    assert W in both and b in both
    torch.testing.assert_close(both[b], torch.ones(2, dtype=torch.float64))
    tz.update(tz.Params([W, b]), mean, 0.1)
    torch.testing.assert_close(W, (Wr - 0.1 * want[0]).detach())
