"""Edge cases of the transform's specialisations, found by an adversarial review:
callee ranks that change with the callee's globals, shape changes in place that the
shape classes must see, ``tensors=`` keywords, the number cache under device modes,
``c / x`` kept bitwise, a bounded cache, and garbage collection left to other threads."""
import gc
import threading

import torch

import torchzygote as tz

D = torch.float64


# ---------------------------------------------------------------- 2. ranks / shape classes
SCALE = 2.0


def _scaled(x):
    return x * SCALE


def test_callee_rank_stale_after_callee_global_changes():
    global SCALE

    def f(x, w):
        return (_scaled(x) * w).sum()
    x, w = torch.tensor(1.5, dtype=D), torch.tensor(3.0, dtype=D)
    SCALE = 2.0
    try:
        tz.gradient(f, x, w)
        SCALE = torch.ones(3, dtype=D)        # _scaled now returns a (3,) tensor
        gx, gw = tz.gradient(f, x, w)
    finally:
        SCALE = 2.0
    assert gw.shape == torch.Size([]) and torch.allclose(gw, torch.tensor(4.5, dtype=D)), gw
    assert gx.shape == torch.Size([]) and torch.allclose(gx, torch.tensor(9.0, dtype=D)), gx


def test_shape_changed_in_place_is_seen():
    def set_data(x, w):
        y = x * 1.0
        y.data = torch.ones(3, dtype=D)
        return (y * w).sum()

    def strided(x, w):
        y = x * 1.0
        torch.as_strided_(y, (3,), (0,))
        return (y * w).sum()

    def by_getattr(x, w):
        y = x * 1.0
        getattr(y, "unsqueeze_")(0)
        return (y * w).sum()

    def bound_twice(x, w):
        y = x * 1.0
        m = y.unsqueeze_
        m(0)
        m(0)          # y is now (1, 1)
        return (y * w).sum()

    scalar, row = torch.tensor(3.0, dtype=D), torch.ones(3, dtype=D)
    for f, w, want in [(set_data, scalar, torch.tensor(3.0, dtype=D)), (strided, scalar, torch.tensor(6.0, dtype=D)),
                       (by_getattr, scalar, torch.tensor(2.0, dtype=D)),
                       (bound_twice, row, torch.full((3,), 2.0, dtype=D))]:
        _, gw = tz.gradient(f, torch.tensor(2.0, dtype=D), w)
        assert gw.shape == want.shape and torch.allclose(gw, want), (f.__name__, gw)


# ---------------------------------------------------------------- 4. list displays as tuples
def test_stack_with_tensors_keyword_does_not_crash():
    a, b = torch.randn(3, dtype=D), torch.randn(3, dtype=D)
    ga, gb = tz.gradient(lambda x, y: (torch.stack(tensors=[x, y]) ** 2).sum(), a, b)
    assert torch.allclose(ga, 2 * a) and torch.allclose(gb, 2 * b)


def test_cat_with_tensors_keyword_does_not_crash():
    a, b = torch.randn(3, dtype=D), torch.randn(3, dtype=D)
    ga, gb = tz.gradient(lambda x, y: (torch.cat(tensors=[x, y]) ** 2).sum(), a, b)
    assert torch.allclose(ga, 2 * a) and torch.allclose(gb, 2 * b)


# ---------------------------------------------------------------- 1. constant numbers as cached 0-d tensors
def test_number_cache_not_poisoned_by_default_device_context():
    def f(x):
        return (x * 7.123).sum()
    with torch.device("meta"):
        tz.gradient(f, torch.ones(2))
    (g,) = tz.gradient(f, torch.ones(2))      # plain CPU call afterwards
    assert torch.allclose(g, torch.full((2,), 7.123))


def test_number_divided_by_tensor_forward_is_bitwise_plain_python():
    torch.manual_seed(0)
    for dt in (torch.float32, torch.float64):
        x = torch.randn(1000, dtype=dt)
        f = lambda x: 3.0 / x  # noqa: E731
        y, _ = tz.pullback(f, x)
        assert torch.equal(y, f(x)), f"{dt}: {(y != f(x)).sum().item()} elements differ"


NUM = 1.0


def test_number_cache_is_bounded():
    global NUM
    from torchzygote.values import algebra as runtime

    def f(x):
        return (x * NUM).sum()
    x = torch.ones(2)
    try:
        for i in range(4500):
            NUM = 1.0 + i * 1e-3
            tz.gradient(f, x)
    finally:
        NUM = 1.0
    assert len(runtime._NUMBER_TENSORS) <= 4096, len(runtime._NUMBER_TENSORS)


# ---------------------------------------------------------------- garbage collection
def test_gc_choice_of_another_thread_is_kept():
    inside, leave = threading.Event(), threading.Event()

    @tz.nograd
    def wait():
        inside.set()
        leave.wait(10)

    def f(x):
        wait()
        return x * x
    t = threading.Thread(target=lambda: tz.gradient(f, 2.0))
    try:
        t.start()
        assert inside.wait(10)
        gc.disable()      # this thread's own choice, while the other is inside a gradient
        leave.set()
        t.join(10)
        assert not gc.isenabled()
    finally:
        leave.set()
        gc.enable()
