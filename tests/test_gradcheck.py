"""tz.gradcheck and the TORCHZYGOTE_CHECK switch: correct gradients pass, a wrong custom
adjoint is caught (by gradcheck, by set_check(True) and by the environment variable), and
nested gradients are not checked twice."""
import math
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

import torchzygote as tz
from torchzygote import check as tzcheck


def add(a, b):
    return a + b


def wrong_add(a, b):   # its custom rule below gives b a gradient of 2 dy instead of dy
    return a + b


@tz.adjoint(wrong_add)
def _wrong_add_rule(a, b):
    return wrong_add(a, b), lambda dy: (dy, None if dy is None else 2 * dy)


def uses_wrong(a, b):
    return wrong_add(a, b) * a


@pytest.fixture
def switch_on():
    prev = tz.api.CHECK
    tz.set_check(True)
    try:
        yield
    finally:
        tz.set_check(prev)


# ---------------------------------------------------------------- correct functions pass

def poly(x, y):
    return math.sin(x) * y ** 2 + x / y


def of_dict(d, t):
    return (d["w"] * t).sum() + d["b"] ** 2 + t[0] * d["s"][1]


def of_list(xs, k):
    out = 0.0
    for i in range(k):
        out = out + xs[i] * xs[i]
    return out


@pytest.mark.parametrize("f,args", [
    (poly, (1.0, 2.0)),
    (lambda x: x * x, (3,)),                                  # an int argument
    (lambda z: abs(z) ** 2, (1 + 2j,)),                       # complex
    (lambda x: (x.sin() * x).sum(), (torch.randn(4, dtype=torch.float64),)),
    (lambda x: (x.sin() * x).sum(), (torch.randn(2, 3),)),    # float32
    (lambda W, x: torch.tanh(W @ x).sum(), (torch.randn(3, 4), torch.randn(4))),
    (of_dict, ({"w": torch.randn(3, dtype=torch.float64), "b": 2.0, "s": (1.0, 3.0), "name": "x"},
               torch.randn(3, dtype=torch.float64))),
    (lambda t: t[0] * t[1] ** 3, ((2.0, 3.0),)),
    (of_list, ([1.0, 2.0, 3.0], 2)),
    (lambda a: np.sum(np.sin(a) * a), (np.arange(4.0),)),
    (lambda a, x: float(np.sum(a * a)) * x, (np.array([0.5, 1.5]), 2.0)),
])
def test_correct_functions_pass(f, args):
    with warnings.catch_warnings():
        warnings.simplefilter("error", tz.GradientCheckWarning)
        assert tz.gradcheck(f, *args) is True


def test_non_scalar_output_checks_the_pullback():
    assert tz.gradcheck(lambda x: x ** 2 * 3, torch.randn(3, dtype=torch.float64))
    assert tz.gradcheck(lambda x, y: (x * y, x + y), 2.0, 3.0)
    assert tz.gradcheck(lambda x: x.exp(), torch.randn(2, dtype=torch.float64),
                        dy=torch.tensor([1.0, -2.0], dtype=torch.float64))


def test_keywords_are_constants():
    def loss(W, X=None):
        return (W @ X).pow(2).sum()
    assert tz.gradcheck(loss, torch.randn(2, 3, dtype=torch.float64),
                        kwargs={"X": torch.randn(3, 2, dtype=torch.float64)})


def test_mutating_function_is_checked_from_the_state_on_entry():
    xs = [1.0]

    def mut(xs, x):
        xs.append(x * 2)
        xs[0] = xs[0] * x
        return sum(xs)
    assert tz.gradcheck(mut, xs, 3.0)
    assert xs == [3.0, 6.0]   # as one plain run leaves it


def test_random_numbers_drawn_by_f_are_the_same_in_every_evaluation():
    def noisy(x):
        return (x * torch.randn(3, dtype=torch.float64)).sum() ** 2
    torch.manual_seed(0)
    assert tz.gradcheck(noisy, torch.randn(3, dtype=torch.float64))


def test_rng_advances_as_in_one_plain_run():
    def draws(x):
        return x * torch.rand(()).item()
    torch.manual_seed(1)
    tz.gradient(draws, 2.0)
    want = torch.rand(())
    torch.manual_seed(1)
    tz.gradcheck(draws, 2.0)
    assert torch.equal(torch.rand(()), want)


def test_non_smooth_point_is_a_warning_not_a_mismatch():
    with pytest.warns(tz.GradientCheckWarning, match="not smooth"):
        assert tz.gradcheck(lambda x: max(x, 2.0 * x - 1.0) * 3.0, 1.0)


# ---------------------------------------------------------------- a wrong adjoint is caught

def test_gradcheck_catches_wrong_adjoint_and_says_where():
    with pytest.raises(tz.GradientMismatchError) as e:
        tz.gradcheck(uses_wrong, 1.5, 0.5)
    msg = str(e.value)
    assert isinstance(e.value, tz.TorchZygoteError)
    assert "uses_wrong" in msg and "test_gradcheck.py:" in msg
    assert "<gradient, v>" in msg and "central differences" in msg
    lines = msg.splitlines()
    arg_a = next(l for l in lines if "argument 0 'a'" in l)
    arg_b = next(l for l in lines if "argument 1 'b'" in l)
    assert arg_a.endswith("agree"), msg
    assert "DIFFER" in arg_b and "torchzygote 3," in arg_b and "central difference 1.49" in arg_b, msg
    assert "tz.adjoint" in msg


def test_gradcheck_raise_exception_false():
    assert tz.gradcheck(uses_wrong, 1.5, 0.5, raise_exception=False) is False


def test_gradcheck_wrong_adjoint_inside_structures():
    def f(d):
        return wrong_add(d["a"], d["b"]).sum()
    with pytest.raises(tz.GradientMismatchError) as e:
        tz.gradcheck(f, {"a": torch.ones(3), "b": torch.ones(3)})
    msg = str(e.value)
    assert "argument 0 'd'['b']" in msg and "DIFFER" in msg.split("'d'['b']")[1].splitlines()[0], msg
    assert "agree" in msg.split("'d'['a']")[1].splitlines()[0], msg


def test_gradcheck_wrong_structure():
    def same(x):
        return x * 1.0

    @tz.adjoint(same)
    def _(x):
        return same(x), lambda dy: (torch.ones(5),)
    with pytest.raises(tz.GradientMismatchError, match="shape"):
        tz.gradcheck(lambda x: same(x).sum(), torch.ones(3))


def test_switch_catches_wrong_adjoint(switch_on):
    with pytest.raises(tz.GradientMismatchError, match="gradient of 'uses_wrong'"):
        tz.gradient(uses_wrong, 1.5, 0.5)
    with pytest.raises(tz.GradientMismatchError):
        tz.withgradient(uses_wrong, 1.5, 0.5)
    y, back = tz.pullback(uses_wrong, 1.5, 0.5)   # checked when the pullback is called
    with pytest.raises(tz.GradientMismatchError, match=r"<pullback\(dy\), v>"):
        back(2.0)


def test_switch_passes_correct_gradients(switch_on):
    assert tz.gradient(lambda x: x * x, 3.0) == (6.0,)
    assert tz.gradient(lambda x: x * x, 3) == (6,)
    assert tz.gradient(poly, 1.0, 2.0) == (4 * math.cos(1.0) + 0.5, 4 * math.sin(1.0) - 0.25)
    assert tz.gradcheck(poly, 1.0, 2.0)
    y, back = tz.pullback(lambda x: x ** 2, torch.arange(3.0))
    assert torch.equal(back(torch.ones(3))[0], torch.tensor([0.0, 2.0, 4.0]))
    assert torch.equal(back(torch.tensor([1.0, 0.0, 0.0]))[0], torch.zeros(3))
    J = tz.jacobian(lambda x: x ** 2, torch.arange(3.0))[0]
    assert torch.equal(J, torch.diag(torch.tensor([0.0, 2.0, 4.0])))


def test_switch_off_again():
    prev = tz.api.CHECK
    tz.set_check(True)
    tz.set_check(False)
    try:
        assert tz.gradient(uses_wrong, 1.5, 0.5) == (3.5, 3.0)   # the wrong rule, unchecked
    finally:
        tz.set_check(prev)


def test_env_var_in_subprocess(tmp_path):
    script = tmp_path / "check_env.py"
    script.write_text(textwrap.dedent("""
        import torchzygote as tz

        def wrong(a, b):
            return a + b

        @tz.adjoint(wrong)
        def _(a, b):
            return wrong(a, b), lambda dy: (dy, 2 * dy)

        assert tz.gradient(lambda x: x * x, 3.0) == (6.0,)
        try:
            tz.gradient(lambda a, b: wrong(a, b) * a, 1.5, 0.5)
        except tz.GradientMismatchError as e:
            print("CAUGHT", str(e).splitlines()[0])
        else:
            print("NOT CAUGHT")
    """))
    env = dict(os.environ, TORCHZYGOTE_CHECK="1")
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert "CAUGHT torchzygote's gradient of" in out.stdout, out.stdout + out.stderr
    env["TORCHZYGOTE_CHECK"] = "0"
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert "NOT CAUGHT" in out.stdout, out.stdout + out.stderr


# ---------------------------------------------------------------- nested use is checked once

@pytest.fixture
def count_checks(monkeypatch):
    calls = []
    real = tzcheck._Checker.check

    def counting(self, dy, g):
        calls.append(self.who)
        return real(self, dy, g)
    monkeypatch.setattr(tzcheck._Checker, "check", counting)
    return calls


def inner_gradient_user(x):
    return tz.gradient(lambda t: t * t * x, x)[0] + x


def test_nested_gradient_is_checked_once(switch_on, count_checks):
    assert tz.gradient(inner_gradient_user, 2.0) == (9.0,)   # d/dx (3 x^2 + x)
    assert count_checks == ["gradient"]


def test_derivative_of_derivative_is_checked_once(switch_on, count_checks):
    d2 = tz.derivative(tz.derivative(lambda x: x * math.sin(x)))(1.0)
    assert d2 == pytest.approx(2 * math.cos(1.0) - math.sin(1.0))
    assert count_checks == ["gradient"]


def test_gradient_called_from_a_rule_is_not_checked(switch_on, count_checks):
    def via_rule(x):
        return x * x

    @tz.adjoint(via_rule)
    def _(x):
        g = tz.gradient(lambda t: t * t, x)[0]      # plain call, made inside a check
        return via_rule(x), lambda dy: (dy * g,)
    assert tz.gradient(lambda x: via_rule(x) + x, 3.0) == (7.0,)
    assert count_checks == ["gradient"]


def test_check_state_is_left_clean_after_mismatch(switch_on):
    with pytest.raises(tz.GradientMismatchError):
        tz.gradient(uses_wrong, 1.5, 0.5)
    assert not tzcheck._busy()
    assert tz.nestlevel() == 0 and torch.is_grad_enabled()
