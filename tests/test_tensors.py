"""Tensors end to end: the seeds' array examples, implicit parameters, a
controller rollout through a simulation, nn.Modules, dtype and device."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import torchzygote as tz

D = torch.float64


def test_seed_matrix_vector():
    W, x = torch.randn(2, 3, dtype=D), torch.randn(3, dtype=D)
    (gW,) = tz.gradient(lambda W: (W @ x).sum(), W)
    assert torch.allclose(gW, torch.ones(2, 1, dtype=D) * x)


def test_seed_params():
    x, y, z = torch.randn(2, 3, dtype=D), torch.randn(2, 3, dtype=D), torch.randn(3, dtype=D)
    g = tz.gradient(lambda: (x * y * z[None, :]).sum(), tz.Params([x, y]))
    assert torch.allclose(g[x], y * z) and torch.allclose(g[y], x * z)
    assert z not in g


def _mlp(params, s):
    W1, b1, W2, b2 = params
    return torch.tanh(W2 @ torch.tanh(W1 @ s + b1) + b2).squeeze(0) * 2.0


def _rollout(W1, b1, W2, b2, s0):
    dt, g, l = 0.02, 9.81, 1.0
    s = s0
    cost = torch.zeros((), dtype=D)
    for _ in range(200):
        u = _mlp((W1, b1, W2, b2), s)
        th, om = s[0], s[1]
        om = om + dt * (-g / l * torch.sin(th) + u)
        th = th + dt * om
        s = torch.stack([th, om])
        cost = cost + th * th + 0.1 * om * om + 0.01 * u * u
    return cost


def test_pendulum_rollout_matches_torch_autograd():
    torch.manual_seed(1)
    args = [torch.randn(8, 2, dtype=D) * 0.5, torch.randn(8, dtype=D) * 0.1, torch.randn(1, 8, dtype=D) * 0.5,
            torch.randn(1, dtype=D) * 0.1, torch.tensor([0.5, 0.0], dtype=D)]
    g = tz.gradient(_rollout, *args)
    ref_args = [a.clone().requires_grad_(True) for a in args]
    ref = torch.autograd.grad(_rollout(*ref_args), ref_args)
    for a, b in zip(g, ref):
        assert torch.allclose(a, b, atol=1e-10, rtol=1e-10)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(3, 4).double()
        self.l2 = nn.Linear(4, 1).double()

    def forward(self, x):
        return self.l2(torch.relu(self.l1(x)))


@pytest.mark.parametrize("make", [lambda: nn.Linear(3, 2).double(),
                                  lambda: nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double(),
                                  Net])
def test_module_gradient_and_params(make):
    torch.manual_seed(0)
    net = make()
    x = torch.randn(5, 3, dtype=D)
    loss = lambda net, x: (net(x) ** 2).sum()
    gnet, gx = tz.gradient(loss, net, x)
    ps = list(net.parameters())
    ref = torch.autograd.grad(loss(net, x.clone().requires_grad_(True)), ps)
    gp = tz.gradient(lambda: loss(net, x), tz.Params(net.parameters()))
    for p, r in zip(ps, ref):
        assert torch.allclose(gp[p], r)
    first = net if isinstance(net, nn.Linear) else None
    if first is not None:
        assert torch.allclose(gnet.weight, ref[0]) and torch.allclose(gnet.bias, ref[1])
    assert gx.shape == x.shape


def test_dtype_preserved():
    for dt in (torch.float32, torch.float64):
        x = torch.randn(3, 4, dtype=dt)
        g = tz.gradient(lambda x: (torch.sin(x) @ x.t()).sum() + x.mean(), x)[0]
        assert g.dtype == dt
    x = torch.randn(3, dtype=D)
    g = tz.gradient(lambda x: x.float().sum(), x)[0]
    assert g.dtype == D and torch.allclose(g, torch.ones(3, dtype=D))


def test_integer_argument_gets_no_gradient():
    x, n = torch.randn(3, dtype=D), torch.tensor([1, 2, 3])
    g = tz.gradient(lambda x, n: (x * n).sum(), x, n)
    assert torch.allclose(g[0], n.to(D))
    assert g[1] is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_device_preserved():
    x = torch.randn(3, 4, device="cuda", dtype=D)
    W = torch.randn(4, 2, device="cuda", dtype=D)
    gx, gW = tz.gradient(lambda x, W: torch.tanh(x @ W).sum(), x, W)
    assert gx.device == x.device and gW.device == W.device
    ref = torch.autograd.grad(torch.tanh(x.requires_grad_() @ W).sum(), x)[0]
    assert torch.allclose(gx, ref)


def test_inplace_activation_modules_match_torch():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(inplace=True),
                              torch.nn.Linear(4, 4), torch.nn.LeakyReLU(0.1, inplace=True),
                              torch.nn.Linear(4, 1)).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    g = tz.gradient(lambda m: m(x).pow(2).sum(), net)[0]
    ref = torch.autograd.grad(net(x).pow(2).sum(), [net[0].weight, net[2].weight])
    assert torch.allclose(g[0].weight, ref[0]) and torch.allclose(g[2].weight, ref[1])


class _Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(c)
        self.conv2 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(c)
        self.relu = torch.nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + x)


def test_residual_cnn_with_batchnorm_matches_torch_and_updates_running_stats():
    import copy
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), _Block(8), _Block(8),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10)).double()
    ref_net = copy.deepcopy(net)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    y = torch.tensor([1, 2, 3, 4])
    loss = lambda m: torch.nn.functional.cross_entropy(m(x), y)  # noqa: E731
    g = tz.gradient(loss, net)[0]
    ref = torch.autograd.grad(loss(ref_net), list(ref_net.parameters()))

    def field(r, dotted):
        for p in dotted.split("."):
            r = r[int(p)] if isinstance(r, list) else getattr(r, p)
        return r
    for (name, _), r in zip(ref_net.named_parameters(), ref):
        assert torch.allclose(field(g, name), r, atol=1e-8), name
    assert torch.allclose(net[2].bn1.running_mean, ref_net[2].bn1.running_mean)
