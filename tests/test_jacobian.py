"""jacobian, hessian and diaghessian against torch.autograd.functional."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import torchzygote as tz

D = torch.float64
torch.manual_seed(0)
X3 = torch.randn(3, dtype=D)
X23 = torch.randn(2, 3, dtype=D)
W = torch.randn(3, 3, dtype=D)

VECTOR_FUNS = [
    ("sin", lambda x: torch.sin(x), X3),
    ("square_times", lambda x: x * x * 2.0, X3),
    ("matvec", lambda x: W @ x, X3),
    ("tanh_mat", lambda x: torch.tanh(x @ W), X23),
    ("softmax", lambda x: torch.softmax(x, -1), X23),
    ("cumsum", lambda x: torch.cumsum(x, 0), X3),
    ("outer", lambda x: torch.outer(x, x), X3),
    ("exp_sum_dim", lambda x: torch.exp(x).sum(dim=1), X23),
    ("norm_scale", lambda x: x / x.norm(), X3),
    ("transpose", lambda x: x.t() * 3.0, X23),
    ("cat", lambda x: torch.cat([x, x ** 2]), X3),
    ("loop", lambda x: _loop(x), X3),
    ("sigmoid_linear", lambda x: torch.sigmoid(F.linear(x, W)), X23),
    ("logsumexp", lambda x: torch.logsumexp(x, 1), X23),
    ("prod_dim", lambda x: x.prod(0), X23),
]

SCALAR_FUNS = [
    ("sum_sin_sq", lambda x: (torch.sin(x) * x).sum(), X3),
    ("cubic", lambda x: (x ** 3).sum() + (x * x).sum(), X3),
    ("quadratic_form", lambda x: x @ W @ x, X3),
    ("logsumexp", lambda x: torch.logsumexp(x, 0), X3),
    ("norm", lambda x: torch.linalg.vector_norm(x), X3),
    ("tanh_mlp", lambda x: torch.tanh(W @ torch.tanh(W @ x)).sum(), X3),
    ("exp_mean", lambda x: torch.exp(x).mean(), X23),
    ("softplus", lambda x: F.softplus(x).sum(), X23),
    ("loop", lambda x: _loop(x).sum(), X3),
    ("prod", lambda x: x.prod(), X3),
]


def _loop(x):
    y = x
    for _ in range(3):
        y = torch.sin(y) * 1.5 + x
    return y


@pytest.mark.parametrize("name,f,x", VECTOR_FUNS, ids=[n for n, _, _ in VECTOR_FUNS])
def test_jacobian_matches_torch(name, f, x):
    (J,) = tz.jacobian(f, x)
    ref = torch.autograd.functional.jacobian(f, x)
    assert J.shape == ref.shape and J.dtype == ref.dtype
    assert torch.allclose(J, ref, atol=1e-10)


@pytest.mark.parametrize("name,f,x", SCALAR_FUNS, ids=[n for n, _, _ in SCALAR_FUNS])
def test_hessian_matches_torch(name, f, x):
    H = tz.hessian(f, x)
    ref = torch.autograd.functional.hessian(f, x)
    assert H.shape == ref.shape
    assert torch.allclose(H, ref, atol=1e-9)
    (dh,) = tz.diaghessian(f, x)
    assert torch.allclose(dh, ref.reshape(x.numel(), x.numel()).diagonal().reshape(x.shape), atol=1e-9)


def test_jacobian_several_args_and_scalar_output():
    a, b = torch.randn(3, dtype=D), torch.randn(2, 3, dtype=D)
    f = lambda a, b: b @ a
    ja, jb = tz.jacobian(f, a, b)
    ra, rb = torch.autograd.functional.jacobian(f, (a, b))
    assert torch.allclose(ja, ra) and torch.allclose(jb, rb)
    (js,) = tz.jacobian(lambda a: (a * a).sum(), a)
    assert js.shape == (3,) and torch.allclose(js, 2 * a)


def test_jacobian_numbers_and_numpy():
    (j,) = tz.jacobian(lambda x: x * x * 3.0, 2.0)
    assert j == pytest.approx(12.0)
    x = np.array([1.0, 2.0, 3.0])
    (jn,) = tz.jacobian(lambda x: np.sin(x) * 2.0, x)
    assert isinstance(jn, np.ndarray) and jn.shape == (3, 3)
    assert np.allclose(jn, np.diag(2 * np.cos(x)))


def test_jacobian_of_several_outputs_matches_torch():
    x = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    f = lambda x: (torch.sin(x) * x, (x ** 2).sum())  # noqa: E731
    ours, ref = tz.jacobian(f, x), torch.autograd.functional.jacobian(f, x)
    assert len(ours) == 2 and all(torch.allclose(o[0], r) for o, r in zip(ours, ref))


@pytest.mark.parametrize("arg", [lambda x: (x, 2 * x), lambda x: [x], lambda x: {"a": x}])
def test_a_structure_holding_tensors_is_refused_not_given_none(arg):
    # None read as "no dependence"; the Hessian crashed unpacking it
    x = torch.tensor([0.3, -0.5, 0.9], dtype=torch.float64)
    a = arg(x)
    first = (lambda s: s[0]) if not isinstance(a, dict) else (lambda s: s["a"])
    for mode in ("reverse", "forward", "auto"):
        with pytest.raises(tz.TorchZygoteError, match="arguments of their own"):
            tz.jacobian(lambda s: first(s) * 2, a, mode=mode)
    for method in ("forward", "reverse"):
        with pytest.raises(tz.TorchZygoteError, match="arguments of their own"):
            tz.hessian(lambda s: (first(s) ** 3).sum(), a, method=method)
    # arguments without values still get None
    assert tz.jacobian(lambda s, name: s * 2, x, "label")[1] is None


def _parts_and_modulus(z):
    return torch.stack([z.imag.sum(), z.real.sum(), z.abs().sum()])


def test_complex_arguments_get_reverse_blocks_or_a_clear_refusal():
    # forward mode's one tangent per element dropped the non-holomorphic part (z.imag's row was 0),
    # and mode="auto" picked it where the output was larger
    z = torch.tensor([0.3 + 0.2j, -0.5 + 1.0j], dtype=torch.complex128)
    ref = torch.autograd.functional.jacobian(_parts_and_modulus, z)
    assert torch.allclose(tz.jacobian(_parts_and_modulus, z)[0], ref)
    assert torch.allclose(tz.jacobian(_parts_and_modulus, z, mode="auto")[0], ref)
    with pytest.raises(tz.TorchZygoteError, match="complex argument"):
        tz.jacobian(_parts_and_modulus, z, mode="forward")
    for method in ("forward", "reverse"):
        with pytest.raises(tz.TorchZygoteError, match="complex argument"):
            tz.hessian(lambda z: z.abs().sum(), z, method=method)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("index", [lambda x: [0, 2, 2], lambda x: torch.tensor([0, 2, 2]), lambda x: x > 0])
def test_hessian_through_advanced_indexing(index, dtype):
    # the indexing pullback wrote in place through a view (refused at second order), and in forward mode
    # a tensor's bound method counted as torch's only where its repr showed a dtype (float64, not float32)
    def f(x):
        return (x[index(x)] ** 3).sum()
    x = torch.tensor([0.3, -0.5, 0.9], dtype=dtype)
    ref = torch.autograd.functional.hessian(f, x)
    for method in ("forward", "reverse"):
        torch.testing.assert_close(tz.hessian(f, x, method=method), ref)
