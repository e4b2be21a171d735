"""In-place writes across calls, in both modes and at second order: a callee that writes into a
tensor passed to it, torch's in-place functions, ``torch.nn.init``'s fills. Each program either
matches torch autograd (or finite differences where torch refuses it) or raises a clear
GradientError/LiftError, never a wrong number (the adversarial pass on the call guards)."""
import pytest
import torch
import torch.nn as nn

import torchzygote as tz

D = torch.float64
X = torch.tensor([0.5, -1.2, 2.0], dtype=D)
relu_ip = nn.ReLU(inplace=True)


def doubles(t):
    t.mul_(2.0)
    return t


def doubles_hidden(t):
    t.mul_(2.0)


def fills(m):
    m.fill_(2.0)
    return m


def sum_then_inplace_module(x):
    h = x * 1.5
    s = h.sum()                 # the gradient reads only h's shape
    h2 = relu_ip(h)
    return s + (h2 * h2).sum()


def shape_then_callee(x):
    h = x * 1.5
    n = h.shape[0]
    h2 = doubles(h)
    return h2.sum() * n


def two_tanh_functions(x):
    y = x * 1.0
    torch.tanh_(y)
    torch.tanh_(y)
    return (y * x).sum()


def constant_filled_by_callee(x):
    m = torch.zeros(3, dtype=D)
    fills(m)                    # no gradient flows through m
    return (x * m).sum()


def init_then_write(x):
    w = torch.empty(3, dtype=D)
    nn.init.ones_(w)
    w.mul_(2.0)
    return (w * x * x).sum()


def init_overwrites_a_value(x):
    w = x * 1.0
    nn.init.constant_(w, 0.5)   # w is the constant 0.5 now: its old value's gradient is gone
    return (w * x).sum()


def _fd_grad(f, x, h=1e-6):
    return torch.stack([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in torch.eye(len(x), dtype=D)])


def _fd_hess(f, x, h=1e-5):
    g = lambda v: tz.gradient(f, v)[0]   # noqa: E731
    return torch.stack([(g(x + h * e) - g(x - h * e)) / (2 * h) for e in torch.eye(len(x), dtype=D)])


@pytest.mark.parametrize("f", [sum_then_inplace_module, shape_then_callee, two_tanh_functions,
                               constant_filled_by_callee, init_then_write, init_overwrites_a_value],
                         ids=lambda f: f.__name__)
def test_writes_that_keep_the_gradient(f):
    """Metadata reads before a callee's write, torch's in-place function forms, writes of
    constants: all three orders agree with finite differences of the function itself."""
    g, = tz.gradient(f, X)
    torch.testing.assert_close(g, _fd_grad(lambda v: f(v.clone()), X), rtol=1e-6, atol=1e-6)
    v = torch.tensor([0.3, -0.7, 1.1], dtype=D)
    torch.testing.assert_close(tz.jvp(f, (X,), (v,))[1], (g * v).sum())
    torch.testing.assert_close(tz.hessian(f, X), _fd_hess(f, X), rtol=1e-5, atol=1e-5)


def module_result_ignored(x):
    h = x * 1.5
    relu_ip(h)                  # h is written, the result is the same tensor, but not bound
    return (h * h).sum()


def star_call_hidden_write(x):
    y = x * 1.0
    doubles_hidden(*(y,))
    return (y * y).sum()


def function_form_on_a_view(x):
    y = x * 1.5
    v = y[1:]
    torch.sigmoid_(v)           # as v.sigmoid_(): y, read below, shares v's memory
    return (y * x).sum()


def test_writes_that_are_refused():
    for mode in ("reverse", "forward"):
        run = (lambda f: tz.gradient(f, X)) if mode == "reverse" else (lambda f: tz.jvp(f, (X,), (X,)))
        with pytest.raises(tz.GradientError, match=r"ReLU writes in place into a tensor passed to it .*"
                                                   r"bind the result"):
            run(module_result_ignored)
        with pytest.raises(tz.GradientError, match=r"doubles_hidden writes into a tensor argument in place"):
            run(star_call_hidden_write)
    with pytest.raises(tz.LiftError, match=r"cannot differentiate this in-place write"):
        tz.gradient(function_form_on_a_view, X)


def doubles_a_view_of_y(x):
    y = x * 1.0
    doubles(y[1:3])             # views share their base's version counter
    return (y ** 2).sum()


def stacks_into_out(x):
    o = torch.empty(2, 3, dtype=x.dtype)
    torch.stack([x, x * 2], out=o)
    return (o ** 2).sum()


def test_a_write_through_a_view_and_out_are_refused():
    for run in (lambda f: tz.gradient(f, X), lambda f: tz.jvp(f, (X,), (X,))):
        with pytest.raises(tz.GradientError, match=r"doubles writes in place into a tensor passed to it"):
            run(doubles_a_view_of_y)
        with pytest.raises(tz.LiftError, match=r"does not differentiate a call with out="):
            run(stacks_into_out)


def clamps_between_tensors(x):
    y = x * 2.0
    torch.clamp_(y, min=x.sin(), max=x.cos() + 1.0)   # the bounds' gradients too
    return (y ** 3).sum()


def test_clamp_in_place_with_tensor_bounds():
    x = torch.tensor([0.3, -1.2, 0.8, 2.0, -0.1], dtype=D)
    xr = x.clone().requires_grad_(True)
    y = xr * 2.0
    ref, = torch.autograd.grad((torch.clamp(y, min=xr.sin(), max=xr.cos() + 1.0) ** 3).sum(), xr)
    torch.testing.assert_close(tz.gradient(clamps_between_tensors, x)[0], ref)
    torch.testing.assert_close(tz.jvp(clamps_between_tensors, (x,), (X[:1].expand(5) * 0 + 1,))[1], ref.sum())


class _Slotted:
    __slots__ = ("w",)

    def __init__(self, w):
        self.w = w


def vars_of_slotted(x):
    o = _Slotted(x * 2.0)
    try:
        vars(o)
    except TypeError:        # as Python: no __dict__
        return o.w.sum()
    return x.sum() * 0.0


def test_vars_of_an_object_without_dict_is_a_type_error():
    assert torch.equal(tz.gradient(vars_of_slotted, X)[0], torch.full((3,), 2.0, dtype=D))


def _same_tensor(b, v):
    return b


def _adds_into(b, v):
    b.add_(v)
    return b


def _alias_through_a_callee(w, xs):
    xs = xs * w
    a = _same_tensor(xs, w)    # ``a`` is ``xs``: the analysis does not see into the call's result
    _adds_into(a, w.sin())     # written through ``a``, then ``xs`` is read
    return (xs ** 2).sum()


def test_a_callee_write_into_a_tensor_read_again_under_another_name_is_refused():
    """Before: the read of ``xs`` missed the write (a wrong gradient, silently; found by an
    adversarial review). A tensor that may be an argument under another name is watched too."""
    w, xs = torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    with pytest.raises(tz.GradientError, match="under another name"):
        tz.gradient(_alias_through_a_callee, w, xs)
