"""In-place tensor mutation: the forward mutates as Python would, and the
overwritten values the pullback needs are kept (torch autograd refuses some of these)."""
import pytest
import torch

import torchzygote as tz

torch.manual_seed(0)


def _ref_grad(f, x):
    xr = x.detach().clone().requires_grad_()
    f(xr).backward()
    return xr.grad


def fill_loop(x):
    y = torch.zeros(5, dtype=x.dtype)
    for i in range(5):
        y[i] = x[i] * x[(i + 1) % 5]
    return (y * y).sum()


def masked(x):
    y = x * 2
    y[x > 0] = 0.5 * x[x > 0] ** 2
    return y.sum()


def methods(x):
    y = x * 1.0
    y.add_(x, alpha=2.0)
    y.mul_(x)
    y.sub_(1.0)
    y.div_(x + 3.0)
    return y.sum()


def augmented(x):
    y = x + 0.0
    y += x * x
    y *= x
    y -= 2.0
    y /= 3.0
    return y.sum()


@pytest.mark.parametrize("f", [fill_loop, masked, methods, augmented])
def test_matches_torch_autograd(f):
    x = torch.randn(5, dtype=torch.float64)
    assert torch.allclose(tz.gradient(f, x)[0], _ref_grad(f, x))


def read_then_overwrite(x):
    y = torch.exp(x)
    a = (y * y).sum()        # y is read ...
    y.add_(1.0)              # ... then overwritten; exp's saved output changed
    return a + (y ** 2).sum()


def test_overwrite_after_read_where_torch_refuses():
    x = torch.randn(4, dtype=torch.float64)
    xr = x.clone().requires_grad_()
    with pytest.raises(RuntimeError, match="inplace"):
        read_then_overwrite(xr).backward()
    g = tz.gradient(read_then_overwrite, x)[0]
    e = torch.exp(x)
    expected = 2 * e * e + 2 * (e + 1) * e      # d/dx [sum(e^2) + sum((e+1)^2)]
    assert torch.allclose(g, expected)


def test_slot_overwritten_several_times():
    def f(x):
        y = torch.zeros(3, dtype=x.dtype)
        y[0] = x[0]
        y[0] = y[0] * x[1]
        y[0] = y[0] * y[0]
        return y.sum()
    x = torch.randn(3, dtype=torch.float64)
    xr = x.clone().requires_grad_()
    with pytest.raises(RuntimeError, match="inplace"):   # torch autograd refuses this one too
        f(xr).backward()
    expected = torch.stack([2 * x[0] * x[1] ** 2, 2 * x[0] ** 2 * x[1], torch.zeros((), dtype=x.dtype)])
    assert torch.allclose(tz.gradient(f, x)[0], expected)


def test_user_tensor_is_mutated_like_python():
    x = torch.randn(4, dtype=torch.float64)
    before = x.clone()

    def f(t):
        t.sin_()
        return t.sum()
    g = tz.gradient(f, x)[0]
    assert torch.allclose(x, torch.sin(before))
    assert torch.allclose(g, torch.cos(before))


# ---------------------------------------------------------------- torch's in-place functions
# ``torch.relu_(y)`` writes y and returns it; the name y takes the result (ops.returned), in
# reverse and forward mode. Before, y kept its old value's gradient: sigmoid_ was silently wrong.

def fn_relu_(x):
    y = x * 1.5
    torch.relu_(y)
    return (y * y).sum()


def fn_F_relu_(x):
    y = x * 1.5
    torch.nn.functional.relu_(y)
    return (y * x).sum()


def fn_sigmoid_(x):
    y = x * 1.5
    torch.sigmoid_(y)
    return (y * y).sum()


def fn_chain_(x):
    y = x + 0.25
    torch.tanh_(y)
    z = y * 3.0
    torch.exp_(z)
    return (z * x).sum()


def fn_init_(x):
    w = torch.empty(4, dtype=x.dtype)
    torch.nn.init.constant_(w, 0.5)   # a write of a constant: w carries no gradient
    return (w * x * x).sum()


@pytest.mark.parametrize("f", [fn_relu_, fn_F_relu_, fn_sigmoid_, fn_chain_, fn_init_], ids=lambda f: f.__name__)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_torch_inplace_function_renews_its_argument(f, seed):
    x = torch.randn(4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    ref = _ref_grad(lambda v: f(v * 1.0), x)
    g, = tz.gradient(f, x)
    torch.testing.assert_close(g, ref)
    v = torch.randn(4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 10))
    y, t = tz.jvp(f, (x,), (v,))
    torch.testing.assert_close(y, f(x.clone()))
    torch.testing.assert_close(t, (ref * v).sum())


def update_(t):        # named like an in-place function, returns None
    t.mul_(2.0)


def calls_update_(x):
    y = x * 1.0
    update_(y)
    return (y * y).sum()


def leaves_alone_(t):
    return None


def calls_leaves_alone_(x):
    y = x * 1.0
    leaves_alone_(y)
    return (y * y).sum()


def test_inplace_named_function_returning_none():
    with pytest.raises(tz.GradientError, match="update_ writes into a tensor argument in place"):
        tz.gradient(calls_update_, torch.ones(3))
    with pytest.raises(tz.GradientError, match="update_ writes into a tensor argument in place"):
        tz.jvp(calls_update_, (torch.ones(3),), (torch.ones(3),))
    x = torch.linspace(-1.0, 1.0, 3, dtype=torch.float64)
    torch.testing.assert_close(tz.gradient(calls_leaves_alone_, x)[0], 2 * x)


def _into_int_setitem(w):
    h = torch.zeros(3, dtype=torch.int64)
    h[0] = (w * w).sum()   # (rounded: no gradient flows through an integer tensor)
    return (h * w).sum() + (w * w).sum()


def _into_int_copy(w):
    h = torch.zeros(3, dtype=torch.int64)
    h.copy_(w * 3.0)
    return (h * w).sum()


def _into_int_fill(w):
    h = w.new_zeros(3, dtype=torch.int64)
    h.fill_(w[0] * 2.0)
    return (h * w).sum()


def _into_int_fill_ref(w):   # (torch's engine asserts on the fill itself: its value, detached)
    h = w.new_zeros(3, dtype=torch.int64)
    h.fill_(w[0].detach() * 2.0)
    return (h * w).sum()


@pytest.mark.parametrize("f, ref", [(_into_int_setitem, _into_int_setitem), (_into_int_copy, _into_int_copy),
                                    (_into_int_fill, _into_int_fill_ref)])
def test_values_written_into_integer_tensors_carry_no_gradient(f, ref):
    w = torch.tensor([1.5, -0.5, 2.0], dtype=torch.float64)
    wr = w.clone().requires_grad_(True)
    want = torch.autograd.grad(ref(wr), wr)[0]
    torch.testing.assert_close(tz.gradient(f, w)[0], want)
    v = torch.tensor([0.3, -1.0, 0.7], dtype=torch.float64)
    torch.testing.assert_close(tz.jvp(f, (w,), (v,))[1], (want * v).sum())


def _through_view_read_by_a_product(x):
    z = x.clone()
    v = z.view(-1)
    v.add_(x)              # z is now 2x
    return (z * 1).sum()   # (a product with a constant reads no value of z: no saved value to guard)


def _through_view_read_in_a_callee(x):
    z = x.clone()
    rows = z.view(2, 2)
    rows.mul_(x.view(2, 2))
    return _sin_sum(z)


def _sin_sum(z):
    return torch.sin(z).sum()


def _through_a_named_slice(x):
    z = x * 2
    v = z[:2]
    v.mul_(x[:2])
    return (z * 3).sum()


def _zeroed_through_a_slice_of_its_name(x):
    z = x * 2
    z[:2].zero_()           # (written back through z's own name: followed)
    return (z * 3).sum()


@pytest.mark.parametrize("f", [_through_view_read_by_a_product, _through_view_read_in_a_callee,
                               _through_a_named_slice])
def test_a_write_through_a_view_then_a_read_of_the_base_is_refused(f):
    """A write through a view changes the base, but the base's later reads are its value from
    before (the write renews only the view's name): their gradient would miss the write. Refused
    wherever the base is read again, not only where the pullback saves its value (before, these
    gave wrong gradients silently: found by an adversarial review)."""
    with pytest.raises(tz.LiftError, match=r"through another name or a view.*reads again afterwards"):
        tz.gradient(f, torch.randn(4, dtype=torch.float64))


def _constant_base_written_through_view(x):
    z = torch.zeros(4, dtype=x.dtype)
    z[:2].fill_(1.0)        # constants written into a constant: no gradient to follow
    return (z * x).sum()


@pytest.mark.parametrize("f", [_constant_base_written_through_view, _zeroed_through_a_slice_of_its_name])
def test_writes_through_views_that_are_followed(f):
    x = torch.randn(4, dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    torch.testing.assert_close(tz.gradient(f, x)[0], torch.autograd.grad(f(xr), xr)[0])


def _tuple_holds_the_tensor(x):
    z = x.clone()
    t = (z,)
    z.mul_(x)
    return t[0].sum()


def _list_holds_it_twice(x):
    z = x.clone()
    items = [z, z]
    items[0].mul_(x)
    return items[1].sum()


def _list_item_and_its_alias(x):
    items = [x.clone()]
    items[0] += x
    t = items[0]
    t *= 2
    return items[0].sum()


def _list_item_and_its_name(x):
    z = x.clone()
    items = [z]
    items[0] += x
    return z.sum()


@pytest.mark.parametrize("f", [_tuple_holds_the_tensor, _list_holds_it_twice, _list_item_and_its_alias,
                               _list_item_and_its_name])
def test_a_write_into_a_tensor_another_holder_reads_again_is_refused(f):
    """In Python these writes change the one tensor every holder sees; generated code follows the
    write through one name or slot only. Refused in both modes (before: wrong values and
    gradients, silently; found by an adversarial review)."""
    x = torch.randn(4, dtype=torch.float64)
    with pytest.raises((tz.GradientError, tz.LiftError), match="in-place write"):
        tz.gradient(f, x)
    with pytest.raises((tz.GradientError, tz.LiftError), match="in-place write"):
        tz.jvp(f, (x,), (torch.ones(4, dtype=torch.float64),))


def _list_items_written_in_place(x):
    items = [x.clone(), x * 2]
    items[0] += x
    items[1].mul_(x)
    return items[0].sum() + (items[1] ** 2).sum()


def _chained_in_place(x):
    m = torch.zeros(4, dtype=x.dtype)
    m.mul_(0.9).add_(x)        # the chain's second write is m's too
    return (m * x).sum()


@pytest.mark.parametrize("f", [_list_items_written_in_place, _chained_in_place])
def test_writes_followed_in_both_modes(f):
    """Container items written in place, and ``m.mul_(a).add_(x)``: the first call's result is m's
    tensor, so the name takes the second write too (before: m kept the first write's value, and
    the gradient was None in both modes)."""
    x = torch.randn(4, dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    want = torch.autograd.grad(f(xr), xr)[0]
    torch.testing.assert_close(tz.gradient(f, x)[0], want)
    v = torch.randn(4, dtype=torch.float64)
    torch.testing.assert_close(tz.jvp(f, (x,), (v,))[1], want @ v)


def _diagonal_written(x):
    b = torch.zeros(2, 2, dtype=x.dtype)
    b.diagonal().copy_(x[:2])
    return (b @ x.reshape(2, 2)).sum()


def _row_of_a_view_written(x):
    b = torch.zeros(4, dtype=x.dtype)
    v = b.view(2, 2)
    v[0].copy_(x[:2] * 3)
    return (b * x).sum()


@pytest.mark.parametrize("f", [_diagonal_written, _row_of_a_view_written])
def test_forward_mode_refuses_a_write_through_a_view_read_through_its_base(f):
    """The base is read again after a write through a view: refused in forward mode as in reverse
    mode (before: forward mode gave a wrong tangent, silently, where reverse mode refused)."""
    x = torch.randn(4, dtype=torch.float64)
    with pytest.raises(tz.LiftError, match="view"):
        tz.gradient(f, x)
    with pytest.raises(tz.LiftError, match="view"):
        tz.jvp(f, (x,), (torch.ones_like(x),))


def _tuple_items_written_in_place(x):
    t = (x.clone(), x * 2)
    t[0].add_(1)
    t[1].mul_(x)
    return (t[0] * t[1]).sum()


def test_an_in_place_method_on_a_tuples_item_is_a_clear_error():
    """The item is written back into its container, which a tuple does not allow: a clear error
    naming the way out, in both modes (before: an internal TypeError, and a RecursionError in
    forward mode)."""
    x = torch.randn(4, dtype=torch.float64)
    with pytest.raises(TypeError, match="keep such items in a list"):
        tz.gradient(_tuple_items_written_in_place, x)
    with pytest.raises(TypeError, match="keep such items in a list"):
        tz.jvp(_tuple_items_written_in_place, (x,), (torch.ones_like(x),))


def _filled_by_index(x, k):
    out = torch.zeros(3, dtype=x.dtype)
    out[0] = x[0] * k
    out[1] = x[1] * k
    out[2] = x[2] * k
    return (out ** 2).sum() + out[0] * out[2]


def _filled_in_a_loop(x, k):
    out = torch.zeros(3, dtype=x.dtype)
    for i in range(3):
        out[i] = x[i] * k
    return (out ** 2).sum() + out[0] * out[2]


@pytest.mark.parametrize("f", [_filled_by_index, _filled_in_a_loop])
def test_a_buffer_filled_by_index_has_a_reverse_hessian(f):
    """``x[i] = v``'s pullback reads only the buffer's dtype (``inplace.into``): reverse over reverse
    follows the writes (it refused a second write, naming an internal function), and no write
    keeps a copy of the buffer, in a loop either (each write copied it: quadratic in a trajectory
    filled step by step)."""
    x, k = torch.tensor([0.2, 0.8, -0.5], dtype=torch.float64), 0.7
    src = tz.code_adjoint(f, x, k).source
    assert ".clone()" not in src and "_copy" not in src
    g = lambda v: f(v, k)   # noqa: E731
    want = torch.autograd.functional.hessian(g, x)
    for method in ("forward", "reverse"):
        torch.testing.assert_close(tz.hessian(g, x, method=method), want)


def _swapped_buffers(x):
    a = x.clone()
    b = x * 2
    s = 0
    for i in range(3):
        b[i] = torch.sin(a[i]) * a[(i + 1) % 3]
        s = s + (a * b).sum()
        a, b = b, a         # the tensor written under ``b`` is ``a`` next trip
    return s


def _swapped_reference(x):   # the same without in-place writes
    a, b = [x[0], x[1], x[2]], [2 * x[0], 2 * x[1], 2 * x[2]]
    s = 0
    for i in range(3):
        b = list(b)
        b[i] = torch.sin(a[i]) * a[(i + 1) % 3]
        s = s + sum(ai * bi for ai, bi in zip(a, b))
        a, b = b, a
    return s


def test_buffers_swapped_in_a_loop_are_saved_as_copies():
    """A value saved in one trip and written in a later one under another loop variable (``a, b =
    b, a``) is saved as a copy (before: only the written name's root counted, and the saved ``a``
    was overwritten: a wrong gradient, silently; found by an adversarial review)."""
    torch.manual_seed(0)
    x = torch.randn(3, dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    torch.testing.assert_close(tz.gradient(_swapped_buffers, x)[0],
                               torch.autograd.grad(_swapped_reference(xr), xr)[0])
    torch.testing.assert_close(tz.hessian(_swapped_buffers, x),
                               torch.autograd.functional.hessian(_swapped_reference, x))
