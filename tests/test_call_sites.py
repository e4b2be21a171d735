"""What a call site tells its callee's transform: numbers without a gradient there (a literal
``dt``: ``dispatch.call_consts``) and, for submodules a transform is specialised on, the entry
its analysis chose (``dispatch.call_pinned``). The callee then computes less, never another
number: checked against torch autograd, also when the call is differentiated again (where a
constant of the level below may be varied)."""
import math
import re

import pytest
import torch
from torch import nn

import torchzygote as tz
from conftest import generated_sources

D = torch.float64


def rk_step(x, dt):
    return x + dt * torch.sin(x) + dt ** 2 * x


def integrate(x):
    for _ in range(3):
        x = rk_step(x, 0.25)
    return (x * x).sum()


def test_a_literal_number_argument_gets_no_gradient_in_the_callee():
    x = torch.tensor([0.3, -1.2, 2.0], dtype=D)
    (g,), srcs = generated_sources(lambda: tz.gradient(integrate, x))
    xr = x.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(integrate(xr), xr)
    torch.testing.assert_close(g, want)
    caller = next(s for s in srcs if "_Jc_" in s)
    assert re.search(r"_Jc_\d+\(_ctx, _consts_\d+, _rk_step_\d+, v\d+, 0\.25\)", caller)
    callee = [s for s in srcs if "sin" in s]
    assert callee and all("ddt" not in s for s in callee[-1:])   # the transform the call ran


def test_a_number_varied_in_the_caller_keeps_its_gradient():
    def f(x, dt):
        return rk_step(x, dt * 2.0).sum()
    x = torch.tensor([0.3, -1.2], dtype=D)
    gx, gdt = tz.gradient(f, x, 0.1)
    xr, dtr = x.clone().requires_grad_(True), torch.tensor(0.1, dtype=D, requires_grad=True)
    want = torch.autograd.grad(f(xr, dtr), (xr, dtr))
    torch.testing.assert_close(gx, want[0])
    assert math.isclose(gdt, float(want[1]), rel_tol=1e-12)


def test_a_constant_of_the_inner_level_is_varied_at_the_outer():
    """``c`` is a constant of the inner gradient (a closure there), passed to a callee as a
    number; the outer derivative is with respect to it."""
    def inner(c):
        return tz.gradient(lambda x: rk_step(x, c).sum(), torch.tensor([1.3], dtype=D))[0].sum()
    got = tz.derivative(inner)(0.7)
    assert math.isclose(got, math.cos(1.3) + 2 * 0.7, rel_tol=1e-12)   # d/dc (1 + c cos x + c^2)


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))

    def forward(self, x):
        return self.net(x).sum()


@pytest.mark.parametrize("method", ["forward", "reverse"])
def test_pinned_module_calls_differentiated_again(method):
    torch.manual_seed(7)
    model = Head().double()
    x = torch.randn(6, dtype=D)

    def f(v):
        return model(v.reshape(2, 3)) * rk_step(v, 0.5).sum()
    H = tz.hessian(f, x, method=method)
    torch.testing.assert_close(H, torch.autograd.functional.hessian(f, x))
