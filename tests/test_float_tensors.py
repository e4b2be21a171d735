"""Floating-point tensors as a fact: transforms specialise on which tensor arguments are
floating-point or complex (the cache's key), so rules whose pullbacks give None only to
integer and bool tensors (``given_for_floats``) need no ``None`` checks for them. Integer
tensors keep the checks and still get None gradients; a float program computes what torch
autograd does."""
import pytest
import torch

import torchzygote as tz
from golden_programs import mlp

D = torch.float64


def square_sum(x):
    return (x ** 2).sum()


def scaled(x, w):
    return (x * w).sum() + (w ** 2).mean()


def helper(a, b):
    return a @ b


def calls_helper(W, x, t):
    return ((helper(W, x) - t) ** 2).sum()


def _mlp_args(dtype=D):
    g = torch.Generator().manual_seed(3)
    return tuple(torch.randn(*s, generator=g, dtype=dtype) for s in ((4, 3), (4,), (2, 4), (2,), (3,), (2,)))


def _autograd(f, args):
    leaves = [a.clone().requires_grad_() if a.is_floating_point() else a for a in args]
    diff = [a for a in leaves if a.requires_grad]
    got = iter(torch.autograd.grad(f(*leaves), diff))
    return tuple(next(got) if a.requires_grad else None for a in leaves)


def _check(f, args):
    for g, w in zip(tz.gradient(f, *args), _autograd(f, args)):
        if w is None:
            assert g is None
        else:
            torch.testing.assert_close(g, w)


def test_float_mlp_matches_autograd_and_has_no_guards():
    args = _mlp_args()
    _check(mlp, args)
    back = tz.code_adjoint(mlp, *args).source.split("def back", 1)[1]
    assert "is not None else None" not in back


def test_integer_argument_gets_none():
    """sum_back gives None for an integer tensor: its checks stay, and so does the None."""
    x = torch.tensor([1, 2, 3])
    assert tz.gradient(square_sum, x) == (None,)
    assert "is not None" in tz.code_adjoint(square_sum, x).source.split("def back", 1)[1]
    (g,) = tz.gradient(square_sum, x.to(D))
    torch.testing.assert_close(g, 2 * x.to(D))
    assert tz.gradient(square_sum, torch.tensor([True, False])) == (None,)


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 0, 2)])
def test_dtypes_do_not_share_a_transform(order):
    """The same function, one and two arguments (the inlined warm path) and three (the
    cache's key), called in turn with float, integer and complex tensors."""
    xs = [torch.tensor([1.5, -2.0], dtype=D), torch.tensor([1, -2]), torch.tensor([1 + 1j, 2 - 1j])]
    for i in order:
        x = xs[i]
        if x.is_complex():
            assert tz.gradient(square_sum, x)[0] is not None
            continue
        want = None if i == 1 else 2 * x
        got = tz.gradient(square_sum, x)[0]
        assert (got is None) if want is None else torch.equal(got, want)
        _check(scaled, (x, torch.tensor([0.5, 3.0], dtype=D)))
        _check(lambda a, b, c: (a * b).sum() + c.sum(), (x, torch.tensor([0.5, 3.0], dtype=D), x))


def test_mixed_float_and_integer_program():
    """An integer target in the MLP: its gradient is None, the others as autograd's."""
    args = list(_mlp_args())
    args[5] = torch.tensor([1, 0])
    _check(mlp, tuple(args))


def test_callee_with_float_arguments():
    g = torch.Generator().manual_seed(4)
    W, x, t = (torch.randn(*s, generator=g, dtype=D) for s in ((2, 3), (3,), (2,)))
    _check(calls_helper, (W, x, t))
    _check(calls_helper, (W, x, torch.tensor([1, 2])))


def test_analysis_shows_floats():
    text = str(tz.code_analysis(square_sum, torch.tensor([1.0])))
    assert "T float" in text
    assert "float" not in str(tz.code_analysis(square_sum, torch.tensor([1])))
