"""Pullback expressions that share one computation (``nn_backward.memo``: a convolution's three
gradients from one ``convolution_backward``, layer norm's three): two calls that differ only in
stride, padding, dilation, groups, ``normalized_shape`` or ``eps`` never share, and a gradient
handed out is never handed out again (a second pullback run recomputes)."""
import torch
import torch.nn.functional as F

import torchzygote as tz

D = torch.float64


def two_dilations(x, w):     # ``+`` hands both convolutions the same dy object
    return (F.conv2d(x, w, padding=1) + F.conv2d(x, w, padding=2, dilation=2)).sum()


def trident(x, w):
    acc = 0
    for d in (1, 2, 3):
        acc = acc + F.conv2d(x, w, padding=d, dilation=d)
    return (acc ** 2).sum()


def strides(x, w):
    return F.conv2d(x, w, stride=1).sum() + F.conv2d(x, w, stride=2).sum()


def two_layer_norms(x):
    k = torch.arange(24.0, dtype=D).reshape(2, 3, 4)
    return ((F.layer_norm(x, (4,)) + F.layer_norm(x, (3, 4))) * k).sum() + \
        (F.layer_norm(x, (4,), eps=1e-5) * F.layer_norm(x, (4,), eps=1.0) * k).sum()


def _ref(f, *args):
    leaves = [a.clone().requires_grad_(True) for a in args]
    return torch.autograd.grad(f(*leaves), leaves)


def test_calls_differing_only_in_their_parameters_do_not_share():
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(2, 3, 8, 8, generator=g, dtype=D), torch.randn(4, 3, 3, 3, generator=g, dtype=D)
    for f in (two_dilations, trident, strides):
        for got, want in zip(tz.gradient(f, x, w), _ref(f, x, w)):
            torch.testing.assert_close(got, want)
    x = torch.randn(2, 3, 4, generator=g, dtype=D)
    torch.testing.assert_close(tz.gradient(two_layer_norms, x)[0], _ref(two_layer_norms, x)[0])


def test_a_gradient_handed_out_is_not_shared_again():
    g = torch.Generator().manual_seed(1)
    x, w = torch.randn(2, 3, 6, 6, generator=g, dtype=D), torch.randn(4, 3, 3, 3, generator=g, dtype=D)
    y, back = tz.pullback(lambda a, b: F.conv2d(a, b, padding=1), x, w)
    dy = torch.randn(y.shape, generator=g, dtype=D)
    first = back(dy)
    want = [t.clone() for t in first]
    first[1].mul_(0)               # the caller writes into a gradient it got
    second = back(dy)              # the same dy object: recomputed, not the zeroed tensor
    assert second[1] is not first[1]
    for got, ref in zip(second, want):
        torch.testing.assert_close(got, ref)
