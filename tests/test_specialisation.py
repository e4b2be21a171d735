"""What the transform specialises on to make small-tensor code fast, and that it
never changes a result: constant numbers as cached 0-d tensors, tensor ranks and
shape classes (no unbroadcasting where shapes are known equal), list displays
passed to ``torch.stack`` built as tuples, and the garbage collector paused
during a gradient call."""
import gc
import math

import pytest
import torch

import torchzygote as tz
from torchzygote.values import algebra as runtime

F64 = torch.float64


def torch_grad(f, *args):
    leaves = [a.detach().clone().requires_grad_() for a in args]
    out = f(*leaves)
    return torch.autograd.grad(out, leaves, allow_unused=True)


def check(f, *args, rtol=1e-10, atol=1e-12):
    got = tz.gradient(f, *args)
    want = torch_grad(f, *args)
    for g, w, a in zip(got, want, args):
        if w is None:
            assert g is None or torch.count_nonzero(g) == 0
            continue
        assert g.shape == a.shape and g.dtype == a.dtype
        torch.testing.assert_close(g, w, rtol=rtol, atol=atol)
    return got


# ---------------------------------------------------------------- numbers as 0-d tensors

SCALE = 0.37
OFFSET = 3


def constants(x):
    y = SCALE * x + OFFSET
    z = 1.5 - y / 7.0
    return (z * 2 + x / SCALE).sum()


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("shape", [(), (5,), (2, 3)])
def test_constant_numbers_give_bitwise_the_same_values(dtype, shape):
    x = torch.linspace(-2, 2, math.prod(shape) or 1, dtype=dtype).reshape(shape)
    y, back = tz.pullback(constants, x)
    assert y.dtype == dtype and torch.equal(y, constants(x))
    check(constants, x, rtol=1e-6 if dtype == torch.float32 else 1e-12)
    assert "_kt(" in tz.code_adjoint(constants, x).source  # the numbers did meet as tensors


@pytest.mark.parametrize("dtype", [torch.int64, torch.float16, torch.bfloat16, torch.complex64])
def test_number_tensor_keeps_torch_semantics(dtype):
    x = (torch.arange(4) - 1).to(dtype)
    for c in (0.37, 3, -0.0, 0.0, math.inf, math.nan):
        for op in (lambda a, b: a * b, lambda a, b: a + b, lambda a, b: a - b, lambda a, b: b - a):
            plain = op(x, c)
            mixed = op(x, runtime.number_tensor(c, x))
            assert mixed.dtype == plain.dtype
            torch.testing.assert_close(mixed, plain, equal_nan=True, rtol=0, atol=0)


def test_negative_zero_keeps_its_sign():
    x = torch.tensor([1.0, -2.0])
    a = runtime.number_tensor(0.0, x)
    b = runtime.number_tensor(-0.0, x)
    assert torch.equal(torch.signbit(x * b), torch.signbit(x * -0.0))
    assert torch.equal(torch.signbit(x * a), torch.signbit(x * 0.0))


def test_changed_global_number_is_seen():
    global SCALE
    x = torch.tensor([1.0, 2.0], dtype=F64)
    before = tz.gradient(constants, x)[0]
    saved, SCALE = SCALE, 2.0
    try:
        after = tz.gradient(constants, x)[0]
        torch.testing.assert_close(after, torch_grad(constants, x)[0])
    finally:
        SCALE = saved
    assert not torch.equal(before, after)


# ---------------------------------------------------------------- ranks and shape classes

def physics(s, f):
    a, b, c = s[0], s[1], s[2]
    u = torch.cos(a) * b + f * c
    v = (u * u - torch.sin(c)) / (1.0 + b * b)
    return torch.stack([u + v, v * f, a - c])


def test_zero_dim_chain_has_no_unbroadcasting():
    s = torch.tensor([0.3, -1.2, 0.7], dtype=F64)
    f = torch.tensor(0.5, dtype=F64)
    src = tz.code_adjoint(physics, s, f).source
    assert "_ub(" not in src and "_ctx" not in src.split("def back")[1], src
    check(lambda s, f: (physics(s, f) ** 2).sum(), s, f)


@pytest.mark.parametrize("shapes", [((), ()), ((3,), ()), ((), (3,)), ((2, 3), (3,)), ((2, 1), (1, 4)),
                                    ((4,), (4,)), ((1,), (5,))])
def test_broadcasting_is_kept_where_shapes_differ(shapes):
    def f(a, b):
        c = a * b + torch.tanh(a) - b / (1.0 + a * a)
        return (c * c).sum()
    g = torch.Generator().manual_seed(len(shapes[0]) * 7 + len(shapes[1]))
    a = torch.randn(shapes[0], generator=g, dtype=F64)
    b = torch.randn(shapes[1], generator=g, dtype=F64)
    check(f, a, b)   # the same function, specialised anew for each pair of ranks


def test_items_of_a_matrix_broadcast_with_a_vector():
    def f(x, y):
        r = x[0] * y + x[1]          # rows of x (rank 1) with a vector of another length class
        return (r * x[0]).sum() + (y[0] * x).sum()
    x = torch.randn(2, 3, dtype=F64)
    check(f, x, torch.randn(3, dtype=F64))
    check(f, x, torch.randn(1, dtype=F64))


def test_loop_carried_rank_change_is_not_trusted():
    def f(x, n):
        y = x
        for _ in range(n):
            y = (y * x).unsqueeze(0)   # the rank grows each trip
        return (y * x).sum()
    x = torch.tensor([0.5, 1.5], dtype=F64)
    check(lambda x: f(x, 3), x)


def test_shape_changing_method_in_place_voids_shape_classes():
    def f(x):
        x = x.clone()
        y = x * 2.0
        x.unsqueeze_(-1)     # x is now (3, 1): x * y broadcasts to (3, 3)
        return (x * y).sum()
    check(f, torch.tensor([1.0, 2.0, 3.0], dtype=F64))


def test_matmul_ranks():
    def f(W, v, M):
        h = torch.tanh(W @ v)            # rank 1
        k = (M @ M)[0]                   # rank 1 (a row)
        return (h * k).sum() + (v @ v) * (h[0] + k[1])
    g = torch.Generator().manual_seed(3)
    W, v, M = (torch.randn(*s, generator=g, dtype=F64) for s in ((4, 3), (3,), (4, 4)))
    check(f, W, v, M)


# ---------------------------------------------------------------- list displays as tuples

def test_list_display_read_once_by_stack_is_a_tuple():
    def f(a, b):
        return torch.stack([a * b, a + b], dim=-1).sum()
    a, b = torch.randn(3, dtype=F64), torch.randn(3, dtype=F64)
    assert "list(" not in tz.code_adjoint(f, a, b).source
    check(f, a, b)


def test_list_used_again_stays_a_list():
    def f(a, b):
        xs = [a, b]
        s = torch.cat(xs)
        xs.append(a * b)
        return (s * s).sum() + xs[2].sum()
    a, b = torch.randn(2, dtype=F64), torch.randn(3, dtype=F64)
    assert "list(" in tz.code_adjoint(f, a, b).source
    check(lambda a: f(a, a), a)


# ---------------------------------------------------------------- garbage collector

def test_gc_state_is_not_inherited_through_a_reused_id():
    """A code object that gets the id of a dead one (CPython reuses addresses) starts afresh:
    before, a short function could inherit a dead long one's "hold off collection" state."""
    from torchzygote import api

    def g(x):
        return x * x

    code = g.__code__
    api._LONG[id(code)] = (object(), True)   # what a dead long function with this id left behind
    try:
        assert api._state(code) is api._FIRST
        assert tz.gradient(g, 3.0) == (6.0,)
        assert api._LONG[id(code)] == (code, api._MEASURE)
    finally:
        api._LONG.pop(id(code), None)


def test_gc_paused_during_a_long_gradient_and_restored():
    seen = []

    @tz.nograd
    def probe():
        seen.append((gc.get_threshold()[0], gc.isenabled()))

    def f(x):
        probe()
        s = 0.0
        for i in range(20000):   # long enough (over 1 ms) for holding off collection to pay
            s = s + x * 1.0001
        return s

    def short(x):
        probe()
        return x * x

    before = gc.get_threshold()
    for _ in range(3):   # the first call transforms, the second is measured, the third holds off
        assert tz.gradient(f, 3.0)[0] == pytest.approx(20000 * 1.0001)
        assert tz.gradient(short, 3.0) == (6.0,)
    assert seen[-2] == (0, True)   # no automatic collections; gc.isenabled() untouched
    assert seen[-1][0] == before[0]  # a short gradient is left alone
    assert gc.get_threshold() == before

    def bad(x):
        f(x)
        raise ValueError("boom")

    for _ in range(3):
        with pytest.raises(ValueError):
            tz.gradient(bad, 1.0)
    assert gc.get_threshold() == before
    assert tz.gradient(lambda x: tz.gradient(f, x)[0], 2.0) == (None,)   # nested calls (a constant)
    assert gc.get_threshold() == before


def test_gc_choices_of_user_code_are_kept():
    def f(x):
        gc.disable()
        return x * x
    try:
        tz.gradient(f, 3.0)
        assert not gc.isenabled()   # as plain Python would leave it
    finally:
        gc.enable()


def test_gradient_leaves_no_reference_cycles():
    s = torch.tensor([0.3, -1.2, 0.7], dtype=F64)
    f = torch.tensor(0.5, dtype=F64)
    loss = lambda s, f: (physics(s, f) ** 2).sum()  # noqa: E731
    tz.gradient(loss, s, f)   # the transform itself runs once
    gc.collect()
    for _ in range(3):
        tz.gradient(loss, s, f)
    assert gc.collect() == 0   # nothing was left for the paused collector


# ---------------------------------------------------------------- a number that becomes a tensor

def running_sum(x, n):
    s = 0.0
    for i in range(n):
        s = s * 0.5 + (x * i if i % 2 else 1.0)   # a float for a trip, then a tensor
        s = s - s / 3.0 + 2.0 * s
    return s


@pytest.mark.parametrize("n", [1, 2, 5])
def test_sum_started_at_a_number(n):
    def total(x):
        s = running_sum(x, n)
        return s.sum() if torch.is_tensor(s) else s
    x = torch.tensor([0.5, -1.5], dtype=F64)
    got = tz.gradient(total, x)[0]
    if n > 1:
        torch.testing.assert_close(got, torch_grad(total, x)[0])
    else:   # one trip: the sum is still a float
        assert got is None
    assert "_J(_ctx, _mul" not in tz.code_adjoint(running_sum, x, 5).source   # inlined, not dispatched


def test_zero_trips_keep_the_number():
    x = torch.tensor(2.0, dtype=F64)
    y, back = tz.pullback(running_sum, x, 0)
    assert y == 0.0 and type(y) is float
    assert back(1.0) == (None, None)


def test_long_tuple_of_floats_is_data_with_a_gradient():
    obs = tuple(0.1 * i for i in range(40))

    def loss(k, obs):
        c, total = 1.0, 0.0
        for i in range(len(obs)):
            c = c * torch.exp(-k)
            total = total + (c - obs[i]) ** 2
        return total
    k = torch.tensor(0.3, dtype=F64)
    gk, gobs = tz.gradient(loss, k, obs)
    torch.testing.assert_close(gk, torch_grad(lambda k: loss(k, obs), k)[0])
    c = [math.exp(-0.3 * (i + 1)) for i in range(40)]
    assert gobs == pytest.approx([-2 * (c[i] - obs[i]) for i in range(40)], rel=1e-12)


# ---------------------------------------------------------------- tensors in globals

G_SCALE = torch.tensor([2.0, 0.5, 1.5], dtype=F64)
G_W = torch.tensor([0.3, -0.2, 0.9], dtype=F64)


def scaled(x):
    return ((x / G_SCALE) ** 2 * G_W).sum()


def test_global_tensor_is_data_outside_params():
    x = torch.tensor([1.0, -2.0, 3.0], dtype=F64)
    check(scaled, x)
    back = tz.code_adjoint(scaled, x).source.split("def back")[1]
    assert back.count("_ctx.wants_global(") == 2   # the globals' gradients are made only if wanted


G_TMP = None


def _read_tmp():
    return (G_TMP * 3.0).sum()


def test_global_tensor_written_by_differentiated_code_carries_the_gradient():
    def f(x):
        global G_TMP
        G_TMP = x * 2.0
        return _read_tmp()            # a callee reads what f wrote
    x = torch.tensor([1.0, 2.0], dtype=F64)
    torch.testing.assert_close(tz.gradient(f, x)[0], torch.full((2,), 6.0, dtype=F64))
    p = torch.tensor([1.0, 2.0], dtype=F64)

    def loss():
        global G_TMP
        G_TMP = p * 2.0
        return _read_tmp()
    torch.testing.assert_close(tz.gradient(loss, tz.Params([p]))[p], torch.full((2,), 6.0, dtype=F64))


def test_global_tensors_in_params_get_gradients_only_if_listed():
    x = torch.tensor([1.0, -2.0, 3.0], dtype=F64)
    gs = tz.gradient(lambda: scaled(x), tz.Params([G_W]))
    want = torch_grad(lambda w: ((x / G_SCALE) ** 2 * w).sum(), G_W)[0]
    torch.testing.assert_close(gs[G_W], want)
    assert G_SCALE not in gs
    gs = tz.gradient(lambda: scaled(x), tz.Params([G_SCALE, G_W]))
    want = torch_grad(lambda s: ((x / s) ** 2 * G_W).sum(), G_SCALE)[0]
    torch.testing.assert_close(gs[G_SCALE], want)


def test_pullback_with_params_returns_grads_each_call():
    w = torch.tensor([1.0, 2.0], dtype=F64)
    x = torch.tensor([3.0, -1.0], dtype=F64)
    y, back = tz.pullback(lambda: (w * x).sum() ** 2, tz.Params([w]))
    assert float(y) == 1.0
    g1, g2 = back(torch.tensor(1.0, dtype=F64)), back(torch.tensor(2.0, dtype=F64))
    torch.testing.assert_close(g1[w], 2 * x)
    torch.testing.assert_close(g2[w], 4 * x)   # a second call does not add to the first


def test_complex_numbers_with_real_tensors():
    z = 1 + 2j
    x = torch.tensor([0.5, -1.5], dtype=F64)
    for f in (lambda x: ((z * x) * x.conj()).real.sum(), lambda x: (x + 1j).abs().sum(),
              lambda x: ((x - z) / (z * x + 3)).abs().sum(), lambda x: (z / (x + 2)).imag.sum()):
        g = check(f, x)[0]
        assert not g.is_complex()   # a real input's gradient is real
