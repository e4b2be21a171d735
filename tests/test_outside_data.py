"""Outside data (``values.outside``): tensors a top-level function reads from its closure or its
globals that are neither implicit parameters nor reachable from its arguments need no gradient,
and callees given them run transforms that treat them as constants (``dispatch.data_consts``).
Every case is checked against torch autograd; the ones that must keep a gradient (a tensor that is
also an argument or a Param, rebound or written in place since) are the point."""
import pytest
import torch
import torch.nn.functional as F

import torchzygote as tz
from torchzygote.ad import cache

D = torch.float64
torch.manual_seed(0)
X = torch.randn(4, 3, dtype=D)      # a global data batch
W = torch.randn(3, 2, dtype=D)
B = torch.randn(2, dtype=D)


def layer(x, w, b):
    return torch.tanh(x @ w + b)


def loss_of(x, w, b):
    return (layer(x, w, b) ** 2).sum()


def _torch_grads(fn, leaves):
    leaves = [t.detach().clone().requires_grad_(True) for t in leaves]
    return torch.autograd.grad(fn(*leaves), leaves, allow_unused=True)


def _consts_entries(f):
    return {k[-1] for k in cache._cache if k[0] is f.__code__ and len(k) > 4 and isinstance(k[-1], frozenset)}


def test_closure_data_is_a_constant_in_the_callees_and_the_gradient_is_right():
    x = torch.randn(5, 3, dtype=D)
    w, b = W.clone(), B.clone()
    g = tz.gradient(lambda: loss_of(x, w, b), tz.Params([w, b]))
    ref = _torch_grads(lambda w_, b_: loss_of(x, w_, b_), [w, b])
    torch.testing.assert_close(g[w], ref[0])
    torch.testing.assert_close(g[b], ref[1])
    assert frozenset({0}) in _consts_entries(loss_of)   # x: a constant there
    assert frozenset({0}) in _consts_entries(layer)     # and in the callee it passes x to


def test_global_data_and_star_arguments_from_a_closure_tuple():
    w, b = W.clone(), B.clone()
    args = (X, w, b)
    g = tz.gradient(lambda: loss_of(*args), tz.Params([w, b]))
    ref = _torch_grads(lambda w_, b_: loss_of(X, w_, b_), [w, b])
    torch.testing.assert_close(g[w], ref[0])
    torch.testing.assert_close(g[b], ref[1])
    g2 = tz.gradient(lambda: loss_of(X, w, b), tz.Params([w, b]))
    torch.testing.assert_close(g2[w], ref[0])


def test_a_closure_tensor_that_is_also_the_argument_keeps_its_gradient():
    """The argument's gradient flows along the argument's uses (the closure's read is a constant
    of the top level, as in Zygote), whether or not the closure holds the same object: marking
    the closure's tensor as data must not reach the argument's uses."""
    x = torch.randn(5, 3, dtype=D)
    other = x.clone()
    same = lambda a: loss_of(a, W, B) + loss_of(x, W, B)       # noqa: E731 - x is the argument too
    apart = lambda a: loss_of(a, W, B) + loss_of(other, W, B)  # noqa: E731
    ref = _torch_grads(lambda a: loss_of(a, W, B), [x])[0]
    torch.testing.assert_close(tz.gradient(same, x)[0], ref)
    torch.testing.assert_close(tz.gradient(apart, x)[0], ref)


def test_a_closure_tensor_inside_an_argument_tuple_keeps_its_gradient():
    x = torch.randn(5, 3, dtype=D)
    f = lambda pair: loss_of(pair[0], W, B) + loss_of(x, W, B)   # noqa: E731
    (gp,) = tz.gradient(f, (x, 1.0))
    torch.testing.assert_close(gp[0], _torch_grads(lambda a: loss_of(a, W, B), [x])[0])


def test_a_param_in_the_closure_is_not_data():
    w, b = W.clone(), B.clone()
    x = torch.randn(5, 3, dtype=D)
    g = tz.gradient(lambda: loss_of(x, w, b) + loss_of(w @ w.T, w, b), tz.Params([w, b]))
    ref = _torch_grads(lambda w_, b_: loss_of(x, w_, b_) + loss_of(w_ @ w_.T, w_, b_), [w, b])
    torch.testing.assert_close(g[w], ref[0])
    torch.testing.assert_close(g[b], ref[1])
    # and the data tensor as a Param: its gradient is wanted
    g = tz.gradient(lambda: loss_of(x, w, b), tz.Params([x, w]))
    ref = _torch_grads(lambda x_, w_: loss_of(x_, w_, b), [x, w])
    torch.testing.assert_close(g[x], ref[0])
    torch.testing.assert_close(g[w], ref[1])


def _rebinding_program():
    x = torch.randn(5, 3, dtype=D)

    def set_x(v):
        nonlocal x
        x = v

    def run(w):
        a = loss_of(x, w, B)
        set_x(x * w.sum())        # the cell now holds a value that depends on w
        return a + loss_of(x, w, B)
    return run, x


def test_a_cell_rebound_to_a_differentiated_value_carries_its_gradient():
    run, x0 = _rebinding_program()
    w = W.clone()
    g = tz.gradient(lambda: run(w), tz.Params([w]))
    ref = _torch_grads(lambda w_: loss_of(x0, w_, B) + loss_of(x0 * w_.sum(), w_, B), [w])[0]
    torch.testing.assert_close(g[w], ref)


def scaled_in_place(x, w):
    x.mul_(w.sum())
    return x


def test_data_written_in_place_since_is_no_longer_data():
    x = torch.randn(5, 3, dtype=D)
    w = W.clone()

    def f():
        y = scaled_in_place(x, w)      # returns what it wrote into: y carries w's gradient
        return loss_of(y, w, B)
    x0 = x.clone()
    g = tz.gradient(f, tz.Params([w]))
    ref = _torch_grads(lambda w_: loss_of(x0 * w_.sum(), w_, B), [w])[0]
    torch.testing.assert_close(g[w], ref)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 4, 3, padding=1).double()
        self.bn = torch.nn.BatchNorm2d(4).double()
        self.fc = torch.nn.Linear(4 * 6 * 6, 3).double()

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).flatten(1))


@pytest.mark.parametrize("mode", ["implicit", "explicit_module", "explicit_tensor"])
def test_module_model_with_closure_data_matches_torch(mode):
    torch.manual_seed(1)
    net = Net().train()
    x, y = torch.randn(5, 2, 6, 6, dtype=D), torch.randint(0, 3, (5,))
    args = (x, y)
    loss = lambda m, a, t: F.cross_entropy(m(a), t)   # noqa: E731
    ps = list(net.parameters())
    state = {k: v.clone() for k, v in net.state_dict().items()}
    ref = torch.autograd.grad(loss(net, *args), ps)
    net.load_state_dict(state)
    if mode == "implicit":
        g = tz.gradient(lambda: loss(net, *args), tz.Params(ps))
        got = [g[p] for p in ps]
    elif mode == "explicit_module":
        (gm,) = tz.gradient(lambda m: loss(m, *args), net)
        got = [gm.conv.weight, gm.conv.bias, gm.bn.weight, gm.bn.bias, gm.fc.weight, gm.fc.bias]
    else:   # the batch as the argument: its gradient is computed
        gx = tz.gradient(lambda a: loss(net, a, y), x)[0]
        xr = x.clone().requires_grad_(True)
        net.load_state_dict(state)
        torch.testing.assert_close(gx, torch.autograd.grad(loss(net, xr, y), xr)[0])
        return
    for a, r in zip(got, ref):
        torch.testing.assert_close(a, r)


def test_hessian_through_closure_data():
    x = torch.randn(5, 3, dtype=D)
    b = B.clone()
    f = lambda v: loss_of(x, v.reshape(3, 2), b)   # noqa: E731
    v = W.reshape(-1).clone()
    want = torch.autograd.functional.hessian(f, v)
    for method in ("forward", "reverse"):
        torch.testing.assert_close(tz.hessian(f, v, method=method), want)


def test_a_cell_the_top_level_rebinds_before_any_call_is_not_data():
    """The scan runs before the call's own code: a cell the top-level function rebinds to a
    differentiated value before it calls anything holds a new tensor, never marked."""
    x = torch.randn(5, 3, dtype=D)
    w = W.clone()

    def run():
        nonlocal x
        x = x * w.sum()
        return loss_of(x, w, B)
    x0 = x
    g = tz.gradient(run, tz.Params([w]))
    x = x0
    ref = _torch_grads(lambda w_: loss_of(x0 * w_.sum(), w_, B), [w])[0]
    torch.testing.assert_close(g[w], ref)


def _rows_loss(xs, w):
    s = 0
    for x in xs:            # rows of a constant: not varied here
        s = s + loss_of(x[None], w, B)
    return s


def test_a_tensor_without_a_gradient_at_a_call_site_is_a_constant_in_the_callee():
    """Static activity: a tensor argument not varied at the call site (the rows of a constant) is a
    constant of the callee's transform, as numbers are (``call_consts``, ``Pins.consts``)."""
    w = W.clone()
    g = tz.gradient(lambda v: _rows_loss(X, v), w)[0]
    torch.testing.assert_close(g, _torch_grads(lambda v: _rows_loss(X, v), [w])[0])
    assert frozenset({0}) in _consts_entries(loss_of)


def _scales_its_argument(t, w):
    t.mul_(w.sum())
    return t


def test_a_constant_tensor_the_callee_writes_into_and_returns():
    """The callee writes into the constant and returns it: its result carries ``w``'s gradient
    (the reason constants were numbers only: a tensor written in place must be seen varied)."""
    def f(w):
        data = torch.ones(3, dtype=D)
        y = _scales_its_argument(data, w)
        return (y * w).sum()
    w = torch.randn(3, dtype=D)
    torch.testing.assert_close(tz.gradient(f, w)[0], _torch_grads(f, [w])[0])
    assert frozenset({0}) in _consts_entries(_scales_its_argument)


class Scaled(torch.nn.Module):
    """A buffer used in the computation, as the CartPole controller's input scale."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2).double()
        self.register_buffer("scale", torch.tensor([2.0, 0.5, 4.0], dtype=D))

    def forward(self, x):
        return torch.tanh(self.fc(x / self.scale))


def _model_loss(m, x):
    return (m(x) ** 2).sum() + (m.scale * x).sum()


def test_module_fields_from_outside_are_data_in_both_modes():
    """A module read from the closure: its buffers (implicit mode) and all its tensors (explicit
    mode, where the closure's gradient is dropped) are outside data, whose gradients the
    pullback does not compute (``Context.wants_field``); the wanted ones are as torch's."""
    torch.manual_seed(4)
    m, x = Scaled(), torch.randn(5, 3, dtype=D)
    ps = list(m.parameters())
    want = torch.autograd.grad(_model_loss(m, x), ps)
    g = tz.gradient(lambda: _model_loss(m, x), tz.Params(ps))
    for p, w in zip(ps, want):
        torch.testing.assert_close(g[p], w)
    g = tz.gradient(lambda: _model_loss(m, x), tz.Params([m.fc.bias]))   # the weight is data now
    torch.testing.assert_close(g[m.fc.bias], want[1])
    xr = x.clone().requires_grad_(True)
    (gx,) = tz.gradient(lambda a: _model_loss(m, a), x)
    torch.testing.assert_close(gx, torch.autograd.grad(_model_loss(m, xr), xr)[0])
    (gm,) = tz.gradient(lambda mm: _model_loss(mm, x), m)    # the module as the argument: nothing is data
    torch.testing.assert_close(gm.fc.weight, want[0])
    sr = m.scale.clone().requires_grad_(True)
    m2 = Scaled()
    m2.load_state_dict(m.state_dict())
    m2.scale = sr
    torch.testing.assert_close(gm.scale, torch.autograd.grad(_model_loss(m2, x), sr)[0])


class Remembers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 3).double()
        self.h = torch.zeros(3, dtype=D)

    def forward(self, x):
        self.h = self.fc(x) + self.h    # a field written in differentiated code: a new tensor
        return self.fc(self.h)


def test_a_field_written_in_the_call_carries_its_gradient():
    torch.manual_seed(5)
    m, x = Remembers(), torch.randn(3, dtype=D)
    ps = list(m.parameters())

    def loss():
        m.h = torch.zeros(3, dtype=D)
        return (m(x) * m(x)).sum()
    want = torch.autograd.grad(loss(), ps)
    g = tz.gradient(loss, tz.Params(ps))
    for p, w in zip(ps, want):
        torch.testing.assert_close(g[p], w)


def test_hessian_of_a_closure_model_in_its_input():
    torch.manual_seed(6)
    m = Scaled()
    f = lambda a: _model_loss(m, a.reshape(2, 3))   # noqa: E731
    x = torch.randn(6, dtype=D)
    want = torch.autograd.functional.hessian(f, x)
    for method in ("forward", "reverse"):
        torch.testing.assert_close(tz.hessian(f, x, method=method), want)


def test_the_pullback_skips_the_gradients_of_outside_fields(monkeypatch):
    """The buffer's and, in explicit mode, the weights' gradients are not computed at all."""
    from torchzygote.values.context import Context
    asked = []
    inner = Context.wants_field
    monkeypatch.setattr(Context, "wants_field", lambda self, v: asked.append((v, inner(self, v))) or asked[-1][1])
    torch.manual_seed(7)
    m, x = Scaled(), torch.randn(5, 3, dtype=D)
    tz.gradient(lambda: _model_loss(m, x), tz.Params(list(m.parameters())))
    by = {id(v): w for v, w in asked}
    assert by[id(m.scale)] is False and by[id(m.fc.weight)] is True
    asked.clear()
    tz.gradient(lambda a: _model_loss(m, a), x)
    assert asked and not any(w for _, w in asked)
