"""Regressions in the torch bridges found by examples/torch_interop.

``to_torch``'s backward built the output gradient for torchzygote's pullback with the same
rebuild as the forward's output, so a value in the output that is no tensor (a float, a
dataclass's float field, the float gradient of a float argument) was passed on as its own
*value* instead of as "no gradient", and a dataclass output's gradient was the dataclass
itself, which the pullback does not read (a silent zero). Torch can only send gradients for
the tensors among the outputs: the rest are constants to it.
"""
import dataclasses

import pytest
import torch

import torchzygote as tz

D = torch.float64


def _x():
    return torch.tensor([1.3, 0.7, -0.4], dtype=D, requires_grad=True)


def _close(a, b, tol=1e-12):
    return all(torch.allclose(u, v, atol=tol, rtol=tol) for u, v in zip(a, b))


def with_float(x):
    return x.sum(), float((x ** 2).sum())


def with_dict(x):
    return {"y": x.sum(), "aux": float((x ** 2).sum()), "n": 3}


@dataclasses.dataclass
class Out:
    y: torch.Tensor
    aux: float


def with_dataclass(x):
    return Out(x.sum(), float((x ** 2).sum()))


def test_float_outputs_get_no_gradient():
    """Was: the float output's value was its cotangent (x.sum()'s gradient came out 1 + 2 * aux * x)."""
    x = _x()
    for f, y in ((with_float, lambda o: o[0]), (with_dict, lambda o: o["y"]), (with_dataclass, lambda o: o.y)):
        (g,) = torch.autograd.grad(y(tz.to_torch(f)(x)), x)
        assert torch.equal(g, torch.ones_like(x)), f.__name__


def step(k, x, dt):
    v = -dt * k * x
    return ((x + dt * v) ** 2).sum()


def step_kw(k, x, dt=1.0):
    return step(k, x, dt)


def test_double_backward_with_float_arguments():
    """Was: the float gradient for ``dt`` (an output of the differentiable backward) was sent back
    as its value: second derivatives were silently wrong whenever a float argument was used."""
    k, x = _x(), _x().detach().mul(2).requires_grad_()
    for F, ref in ((lambda k, x: tz.to_torch(step)(k, x, 0.1), lambda k, x: step(k, x, 0.1)),
                   (lambda k, x: tz.to_torch(step_kw)(k, x, dt=0.1), lambda k, x: step_kw(k, x, dt=0.1))):
        out = []
        for fn in (F, ref):
            gs = torch.autograd.grad(fn(k, x), (k, x), create_graph=True)
            out.append(torch.autograd.grad(sum((g ** 2).sum() for g in gs), (k, x)))
        assert _close(*out)
    assert torch.autograd.gradgradcheck(lambda k, x: tz.to_torch(step)(k, x, 0.1), (k, x))


_D = torch.distributions


@pytest.mark.parametrize("f", [
    lambda x: _D.Normal(x[0], x[1].exp()).log_prob(x[2]) + _D.Normal(x[0], x[1].exp()).entropy(),
    lambda x: _D.Normal(x[0], 2.0).mean * 3,
    lambda x: _D.Gamma(x[0].exp(), x[1].exp()).log_prob(torch.tensor(1.5, dtype=torch.float64)),
    lambda x: _D.kl_divergence(_D.Normal(x[0], x[1].exp()), _D.Normal(x[2], 1.0)),
    lambda x: _D.Independent(_D.Normal(x, 1.0), 1).log_prob(torch.zeros(4, dtype=torch.float64)),
])
def test_torch_distributions_are_differentiated(f):
    # they ran under torch autograd, where the tensors they hold are no leaves: None, silently
    x = torch.tensor([0.3, -0.4, 0.9, 0.2], dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    torch.testing.assert_close(tz.gradient(f, x)[0], torch.autograd.grad(f(xr), xr)[0])
    torch.testing.assert_close(tz.jvp(f, (x,), (torch.ones_like(x),))[1],
                               torch.func.jvp(f, (x,), (torch.ones_like(x),))[1])
