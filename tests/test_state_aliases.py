"""In-place writes through a local name into a tensor read from outside state (``b = self.buf;
b[:] = x * 2``, ``b = bufs[0]``, ``b = G``): the state's later reads see the write, and get its
gradient (``Names.write_back``), checked against torch autograd; where the place read is unknown
(``for b in self.bufs``), a write of values that carry gradients is refused."""
import pytest
import torch

import torchzygote as tz
from torchzygote.errors import GradientError, LiftError


class _State:
    pass


S = _State()
BUF = torch.zeros(3, dtype=torch.float64)


class _Fresh:
    """A property that computes its tensor: writing into what it returned changes nothing held."""

    def __init__(self):
        self.v = torch.full((3,), 2.0, dtype=torch.float64)

    @property
    def p(self):
        return self.v * 1.0


class _Acc(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("acc", torch.ones(3, dtype=torch.float64))

    def forward(self, x):
        a = self.acc
        a.add_(x * x)
        return (self.acc * x).sum()


def _reset():
    BUF.zero_()
    S.bufs = [torch.zeros(3, dtype=torch.float64)]
    S.t = torch.ones(3, dtype=torch.float64)
    S.acc = torch.full((3,), 0.5, dtype=torch.float64)
    S.fresh = _Fresh()
    S.mod = _Acc()


def through_global(x):
    b = BUF
    b[:] = x * 2
    return (BUF * x).sum()


def through_list_item(x):
    b = S.bufs[0]
    b[:] = x * 2
    return (S.bufs[0] * x).sum()


def through_attribute(x):
    t = S.t
    t.mul_(x)
    return (S.t * x).sum()


def augmented(x):
    t = S.t
    t += x * x
    return (S.t * x).sum()


def carried_by_a_loop(x):
    acc = S.acc
    for _ in range(3):
        acc.add_(x)
    return (S.acc * x).sum()


def chained(x):
    t = S.t
    t.mul_(x)
    t.add_(x)
    t.sub_(1.0)
    return (S.t * S.t).sum()


def a_view_of_it(x):
    t = S.t
    t[0:2].mul_(x[0:2])
    return (S.t * x).sum()


def module_buffer(x):
    return S.mod(x)


def computed_property(x):
    b = S.fresh.p
    b.add_(x)
    return (S.fresh.p * x).sum() + (b * x).sum()


PROGRAMS = [through_global, through_list_item, through_attribute, augmented, carried_by_a_loop, chained,
            a_view_of_it, module_buffer, computed_property]
X = torch.tensor([0.6, -1.3, 2.1], dtype=torch.float64)


def _torch_grad(f):
    _reset()
    x = X.clone().requires_grad_()
    (g,) = torch.autograd.grad(f(x), x)
    return g


@pytest.mark.parametrize("f", PROGRAMS, ids=lambda f: f.__name__)
def test_gradient_as_torch_autograd(f):
    expected = _torch_grad(f)
    _reset()
    (g,) = tz.gradient(f, X.clone())
    assert torch.allclose(g, expected, atol=1e-12)


def test_second_order_as_torch_autograd():
    _reset()
    expected = torch.autograd.functional.hessian(through_global, X.clone())
    _reset()
    assert torch.allclose(tz.hessian(through_global, X.clone(), method="reverse"), expected, atol=1e-10)


@pytest.mark.parametrize("f", PROGRAMS[1:], ids=lambda f: f.__name__)
@pytest.mark.parametrize("method", ["reverse", "forward"])
def test_second_order_otherwise_refused(f, method):
    """Where the written tensor's kind is known at run time only, reverse over reverse refuses the
    dispatched in-place write (a callee's write into its argument), and forward mode over reverse
    the tangent written into outside state: an error, never a wrong number (a property's fresh
    tensor is no outside state: forward over reverse goes on there; a module's buffer written in
    its own forward is followed by reverse over reverse)."""
    _reset()
    expected = torch.autograd.functional.hessian(f, X.clone())
    _reset()
    try:
        h = tz.hessian(f, X.clone(), method=method)
    except (GradientError, LiftError):
        return
    assert (f, method) in ((computed_property, "forward"), (module_buffer, "reverse"))
    assert torch.allclose(h, expected, atol=1e-10)


def test_arguments_object_too():
    def f(x, o):
        t = o.bufs[0]
        t.mul_(x)
        return (o.bufs[0] * x).sum()

    def fresh():
        o = _State()
        o.bufs = [torch.ones(3, dtype=torch.float64)]
        return o
    xr = X.clone().requires_grad_()
    (expected,) = torch.autograd.grad(f(xr, fresh()), xr)
    assert torch.allclose(tz.gradient(f, X.clone(), fresh())[0], expected)


def each_buffer(x):
    for b in S.bufs:
        b.add_(x)
    return (S.bufs[0] * x).sum()


def unpacked(x):
    (b,) = S.bufs
    b.add_(x)
    return (S.bufs[0] * x).sum()


@pytest.mark.parametrize("f", [each_buffer, unpacked], ids=lambda f: f.__name__)
def test_an_unknown_place_is_refused_where_a_gradient_would_be_lost(f):
    _reset()
    with pytest.raises((GradientError, LiftError), match="depends on the inputs|reads again"):
        tz.gradient(f, X.clone())


def zero_each(x):
    for b in S.bufs:
        b.zero_()
    return (S.bufs[0] + x).sum()


def test_an_unknown_place_written_with_constants_goes_on():
    _reset()
    assert torch.equal(tz.gradient(zero_each, X.clone())[0], torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("f", [through_global, through_list_item, through_attribute], ids=lambda f: f.__name__)
def test_forward_mode_refuses_a_tangent_written_there(f):
    """Outside state holds values in forward mode: the tangent would be lost to its later reads."""
    _reset()
    with pytest.raises(GradientError, match="forward mode cannot follow this in-place write"):
        tz.jvp(f, (X.clone(),), (torch.ones(3, dtype=torch.float64),))


def test_forward_mode_with_no_tangent_written_goes_on():
    _reset()
    y, t = tz.jvp(zero_each, (X.clone(),), (torch.ones(3, dtype=torch.float64),))
    assert float(t) == 3.0


def after_a_branch(x, c=True):
    b = S.t
    if c:
        b.mul_(2.0)
    b.mul_(x)
    return (S.t * x).sum()


def after_no_grad(x):
    b = S.t
    with torch.no_grad():
        b.mul_(2.0)
    b.mul_(x)
    return (S.t * x).sum()


def by_a_dynamic_name(x, name="t"):
    b = getattr(S, name)
    b.mul_(x)
    return (S.t * x).sum()


@pytest.mark.parametrize("f", [after_a_branch, after_no_grad, by_a_dynamic_name], ids=lambda f: f.__name__)
def test_the_place_is_followed_through_joins_and_dynamic_names(f):
    expected = _torch_grad(f)
    _reset()
    assert torch.allclose(tz.gradient(f, X.clone())[0], expected)


def enumerated(x):
    for _, b in enumerate(S.bufs):
        b.mul_(x)
    return (S.bufs[0] * x).sum()


def zipped(x):
    for b, c in zip(S.bufs, S.bufs):
        b.mul_(x)
    return (S.bufs[0] * x).sum()


def from_an_iterator(x):
    b = next(iter(S.bufs))
    b.mul_(x)
    return (S.bufs[0] * x).sum()


def one_of_two_places(x, c=True):
    b = S.t if c else S.bufs[0]
    b.mul_(x)
    return (S.t * x).sum()


def a_view_of_state(x):
    v = S.t.T
    v.mul_(x)
    return (S.t * x).sum()


@pytest.mark.parametrize("f", [enumerated, zipped, from_an_iterator, one_of_two_places, a_view_of_state],
                         ids=lambda f: f.__name__)
def test_items_reached_other_ways_are_refused(f):
    _reset()
    with pytest.raises((GradientError, LiftError)):
        tz.gradient(f, X.clone())


_W = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)


def update_after_use(x):
    loss = (_W * _W).sum()
    with torch.no_grad():
        _W.sub_(0.1 * x)
    return loss


def test_a_global_updated_after_its_use_is_refused_as_torch_does():
    """The gradient of ``_W * _W`` needs the value before the update (torch: 'modified by an
    inplace operation'); a copy would lose the Params tensor's identity."""
    _W.copy_(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    with pytest.raises(GradientError, match="read from a global"):
        tz.gradient(lambda: update_after_use(X), tz.Params([_W]))
