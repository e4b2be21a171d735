"""Faults leave nothing behind: after an exception anywhere (user code in the forward or the
pullback, a rule, a custom adjoint, a hook, KeyboardInterrupt in the middle of a transform)
the caches, nesting level, garbage-collector thresholds, torch's grad mode and the user's
objects are as a plain run leaves them, and the next gradient is right. Threads computing
gradients at once agree with serial results; memory stays flat over many calls."""
import gc
import itertools
import linecache
import math
import os
import re
import resource
import threading

import pytest
import torch

import torchzygote as tz
from torchzygote import api
from torchzygote import check as tzcheck
from torchzygote.ad import cache, collector, pipeline


# ---------------------------------------------------------------- what must be left as it was

def _lock_free() -> bool:
    """The transform lock is not held (by any thread: tried from a fresh one)."""
    got = []
    t = threading.Thread(target=lambda: got.append(cache._lock.acquire(timeout=5) and cache._lock.release()
                                                    is None))
    t.start()
    t.join()
    return got == [True]


def _state():
    return dict(nestlevel=tz.nestlevel(), threshold=gc.get_threshold(), gc_enabled=gc.isenabled(),
                grad=torch.is_grad_enabled(), paused=collector.paused[0], in_progress=set(cache._in_progress),
                deps=list(cache._deps_stack), check_busy=tzcheck._busy(), check_on=api.CHECK)


@pytest.fixture
def clean():
    """Asserts the state after the test is the state before it (and the lock is free)."""
    before = _state()
    yield before
    assert _state() == before
    assert _lock_free()


@pytest.fixture(params=["grad on", "grad off"])
def grad_mode(request):
    prev = torch.is_grad_enabled()
    torch.set_grad_enabled(request.param == "grad on")
    try:
        yield
    finally:
        torch.set_grad_enabled(prev)


@pytest.fixture
def long_gradients(monkeypatch):
    """Every gradient counts as long (garbage collection held off while it runs), so that
    thresholds are changed and must be put back after a fault."""
    monkeypatch.setattr(api, "_state", lambda key: True)
    gc.set_threshold(700, 10, 10)
    yield


def _plain_and_tz(f, make_args, exc):
    """Run ``f`` plainly and under ``tz.gradient`` on fresh arguments; both raise ``exc``;
    return the arguments each left behind."""
    plain_args = make_args()
    with pytest.raises(exc):
        f(*plain_args)
    tz_args = make_args()
    with pytest.raises(exc):
        tz.gradient(f, *tz_args)
    return plain_args, tz_args


# ---------------------------------------------------------------- user code raises

def forward_raises(xs, d, x):
    xs.append(x * 2)
    d["seen"] = d.get("seen", 0) + 1
    if d["seen"] > d["limit"]:
        raise ValueError("too many")
    return xs[0] * x + d["w"] * x


def _args():
    return [1.0], {"limit": 0, "w": 3.0}, 2.0


@pytest.mark.parametrize("check", [False, True])
def test_forward_raises(clean, grad_mode, long_gradients, check):
    prev = api.CHECK
    tz.set_check(check)
    try:
        plain, got = _plain_and_tz(forward_raises, _args, ValueError)
        assert got[0] == plain[0] and got[1] == plain[1]
        assert _state()["check_busy"] is False
        xs, d, x = [1.0], {"limit": 5, "w": 3.0}, 2.0
        assert tz.gradient(forward_raises, xs, d, x) == ([2.0], {"w": 2.0}, 4.0)
        assert xs == [1.0, 4.0] and d["seen"] == 1
    finally:
        tz.set_check(prev)


class Boom(Exception):
    pass


def sink(x):
    return x


@tz.adjoint(sink)
def _sink_rule(x):
    def back(dy):
        if dy is not None and SINK_FAILS[0]:
            raise Boom("pullback failed")
        return (dy,)
    return sink(x), back


SINK_FAILS = [True]


def pullback_raises(xs, x):
    xs.append(x)
    xs[0] = xs[0] + 1.0
    return sink(x * x) + xs[0]


def test_pullback_raises(clean, grad_mode, long_gradients):
    xs = [1.0]
    y = pullback_raises(list(xs), 3.0)
    with pytest.raises(Boom):
        tz.gradient(pullback_raises, xs, 3.0)
    assert xs == [2.0, 3.0]   # as the plain run left its copy: the forward ran to the end
    y2, back = tz.pullback(pullback_raises, [1.0], 3.0)
    assert y2 == y
    with pytest.raises(Boom):
        back(1.0)
    SINK_FAILS[0] = False
    try:
        assert back(1.0) == ([1.0], 6.0)   # the same pullback works once the fault is gone
        assert tz.gradient(pullback_raises, [1.0], 3.0) == ([1.0], 6.0)
    finally:
        SINK_FAILS[0] = True


def test_rule_fails_in_forward_and_pullback(clean, grad_mode, long_gradients):
    with pytest.raises(ValueError, match="math domain"):
        tz.gradient(lambda x: math.sqrt(x) * 2, -1.0)        # the rule's forward
    with pytest.raises(ZeroDivisionError):
        tz.gradient(lambda x: math.asin(x) * 2, 1.0)        # the rule's pullback: 1 / sqrt(1 - x^2)
    assert tz.gradient(lambda x: math.sqrt(x) * 2, 4.0) == (0.5,)
    assert tz.gradient(lambda x: math.asin(x) * 2, 0.0) == (2.0,)


def two_args(a, b):
    return a * b


def test_custom_adjoint_wrong_number_of_gradients(clean, grad_mode):
    def h(a, b):
        return a * b

    def caller(a, b):
        return h(a, b) + a

    @tz.adjoint(h)
    def _(a, b):
        return h(a, b), lambda dy: (dy * b,)          # one gradient for two arguments
    with pytest.raises(tz.GradientError, match=r"returned 1 gradient for 2 arguments") as e:
        tz.gradient(caller, 2.0, 3.0)
    assert "test_faults.py:" in str(e.value)

    @tz.adjoint(h)
    def _(a, b):
        return h(a, b), lambda dy: (dy * b, dy * a, dy)   # three
    with pytest.raises(tz.GradientError, match=r"returned 3 gradients for 2 arguments"):
        tz.gradient(caller, 2.0, 3.0)

    @tz.adjoint(h)
    def _(a, b):
        return h(a, b), lambda dy: [dy * b, dy * a]      # a list, not a tuple
    with pytest.raises(tz.GradientError, match=r"returned a list for 2 arguments"):
        tz.gradient(caller, 2.0, 3.0)

    @tz.adjoint(h)
    def _(a, b):
        return h(a, b), lambda dy: (dy * b, dy * a)
    assert tz.gradient(caller, 2.0, 3.0) == (4.0, 2.0)
    tz.ad.dispatch.USER_RULES.pop(h, None)


def test_hook_raises(clean, grad_mode, long_gradients):
    def bad(g):
        raise Boom("hook")
    with pytest.raises(Boom):
        tz.gradient(lambda x: tz.hook(bad, x) * 3.0, 2.0)
    assert tz.gradient(lambda x: tz.hook(lambda g: g, x) * 3.0, 2.0) == (3.0,)


def test_nested_gradient_raises(clean, grad_mode):
    def inner(t):
        if t > 1.0:
            raise Boom("inner")
        return t * t

    def outer(x):
        return tz.gradient(inner, x)[0] * x
    with pytest.raises(Boom):
        tz.gradient(outer, 2.0)
    assert tz.gradient(outer, 0.5) == (2.0,)   # d/dx 2x^2


# ---------------------------------------------------------------- KeyboardInterrupt in a transform

_SRC_N = itertools.count()


def fresh(src: str, name: str):
    """A function with a new code object (so it is transformed afresh), with its source
    registered where ``inspect`` finds it."""
    n = next(_SRC_N)
    fname = f"<test_faults fresh {n}>"
    # code objects compare equal by their code, names and constants (not their file): a
    # docstring unique to this copy makes each function's code new to the transform cache
    src = re.sub(r"(?m)^(def .*:\n)", lambda m: m.group(1) + f"    'copy {n}'\n", src)
    linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
    ns = {"math": math, "torch": torch}
    exec(compile(src, fname, "exec"), ns)
    return ns[name]


CALLEE = """
def callee(x):
    return math.sin(x) * x

def caller(x, ys):
    ys.append(x)
    return callee(x) * 2.0 + x
"""


def _interrupt_once(monkeypatch, module, name, when=lambda *a: True):
    real = getattr(module, name)
    fired = []

    def once(*a, **k):
        if not fired and when(*a):
            fired.append(True)
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(module, name, once)
    return fired


@pytest.mark.parametrize("stage,target", [("lift", "caller"), ("analyse", "caller"),
                                          ("generate", "caller"), ("lift", "callee"),
                                          ("generate", "callee")])
def test_keyboard_interrupt_in_a_transform(clean, grad_mode, long_gradients, monkeypatch, stage, target):
    ns_caller = fresh(CALLEE, "caller")
    callee = ns_caller.__globals__["callee"]

    def is_target(*a):
        fn = a[0]
        name = getattr(fn, "__name__", None) or getattr(fn, "name", None) or ""
        if stage == "generate":
            name = a[2] if len(a) > 2 else ""
        elif stage == "analyse":
            name = getattr(fn, "name", "")
        return target in str(name)
    fired = _interrupt_once(monkeypatch, pipeline, stage, is_target)   # the transform's stages
    ys = []
    with pytest.raises(KeyboardInterrupt):
        tz.gradient(ns_caller, 0.5, ys)
    assert fired
    assert ys in ([], [0.5])   # interrupted before the forward, or (a callee's transform) in it
    ys = []
    want = 2 * (math.cos(0.5) * 0.5 + math.sin(0.5)) + 1.0
    assert tz.gradient(ns_caller, 0.5, ys)[0] == want
    assert ys == [0.5]
    assert tz.gradient(callee, 0.5) == (math.cos(0.5) * 0.5 + math.sin(0.5),)


def test_keyboard_interrupt_in_generated_code(clean, grad_mode, long_gradients):
    """A KeyboardInterrupt (any BaseException) out of the user's code, mid-gradient."""
    calls = []

    def tick(x):
        calls.append(x)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return x

    def f(x):
        for _ in range(3):
            x = tick(x) * 1.5
        return x
    with pytest.raises(KeyboardInterrupt):
        tz.gradient(f, 1.0)
    calls.append(None)
    assert tz.gradient(f, 1.0) == (1.5 ** 3,)


# ---------------------------------------------------------------- threads

FAMILY = """
def f{i}(x, w):
    s = 0.0
    for k in range({n}):
        s = s + math.sin(x * (k + 1)) * w ** 2
    return s + x ** {p}

def t{i}(x, W):
    h = torch.tanh(W @ x)
    for _ in range({n}):
        h = h * 0.5 + torch.sin(h)
    return (h * h).sum() + x.sum() ** {p}
"""


def _family(tag):
    src = "".join(FAMILY.format(i=i, n=i % 3 + 1, p=i % 4 + 1) for i in range(6))
    n = next(_SRC_N)
    src = re.sub(r"(?m)^(def .*:\n)", lambda m: m.group(1) + f"    '{tag} copy {n}'\n", src)  # see fresh
    fname = f"<test_faults threads {tag} {n}>"
    linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
    ns = {"math": math, "torch": torch}
    exec(compile(src, fname, "exec"), ns)
    return [ns[f"f{i}"] for i in range(6)], [ns[f"t{i}"] for i in range(6)]


def _jobs(fs, ts):
    g = torch.Generator().manual_seed(0)
    x, W = torch.randn(4, generator=g, dtype=torch.float64), torch.randn(4, 4, generator=g, dtype=torch.float64)
    jobs = []
    for i in range(6):
        jobs.append((fs[i], (0.3 + 0.1 * i, 1.5)))
        jobs.append((ts[i], (x, W)))
    return jobs


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return torch.allclose(a, b, rtol=1e-12, atol=1e-12)
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_threads_agree_with_serial(clean, grad_mode):
    fs, ts = _family("serial")
    assert fs[0].__code__ != _family("serial")[0][0].__code__
    serial = [tz.gradient(f, *args) for f, args in _jobs(fs, ts)]

    fs, ts = _family("threads")   # fresh code objects: the 8 threads race to transform them
    jobs = _jobs(fs, ts)
    barrier = threading.Barrier(8)
    results, errors = {}, []

    def work(k):
        try:
            barrier.wait()
            order = list(range(len(jobs)))
            order = order[k:] + order[:k]
            for rep in range(2):
                for j in order:
                    f, args = jobs[j]
                    results[(k, rep, j)] = tz.gradient(f, *args)
        except BaseException as e:   # pragma: no cover
            errors.append(e)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(results) == 8 * 2 * len(jobs)
    for (k, rep, j), g in results.items():
        assert _same(g, serial[j]), (k, rep, j, g, serial[j])


def test_threads_with_long_gradients_restore_thresholds(clean, long_gradients):
    before = gc.get_threshold()
    errors = []

    def work():
        try:
            for i in range(50):
                if i % 7 == 3:
                    with pytest.raises(ValueError):
                        tz.gradient(lambda x: math.sqrt(x), -1.0)
                else:
                    assert tz.gradient(lambda x: x * x, 3.0) == (6.0,)
        except BaseException as e:   # pragma: no cover
            errors.append(e)
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert gc.get_threshold() == before



def _loop_loss(w, n=400):
    s = 0.0
    for _ in range(n):
        s = s + (w * w).sum()
    return s


@pytest.mark.parametrize("how", ["implicit", "withgradient"])
def test_long_gradient_holds_collection_across_forward_and_pullback(clean, long_gradients, how):
    """The values a pullback keeps are never traversed by the collector: held off for the
    forward alone, the first allocation after it would collect them all (a gen-0 collection of
    every value kept, about 10 ms in the LSTM benchmark) before the pullback frees them."""
    w = torch.randn(3, dtype=torch.float64)
    run = (lambda: tz.gradient(lambda: _loop_loss(w), tz.Params([w]))[w]) if how == "implicit" else \
        (lambda: tz.withgradient(_loop_loss, w).grad[0])
    run()
    seen = []
    gc.callbacks.append(lambda phase, info: seen.append(info["generation"]) if phase == "start" else None)
    try:
        g = run()
    finally:
        gc.callbacks.pop()
    assert seen == []
    assert torch.allclose(g, 800 * w)


# ---------------------------------------------------------------- memory

def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:   # pragma: no cover
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _growth(step, n=2000, warm=200):
    for _ in range(warm):
        step()
    gc.collect()
    objs0, rss0 = len(gc.get_objects()), _rss_bytes()
    for _ in range(n):
        step()
    gc.collect()
    return len(gc.get_objects()) - objs0, _rss_bytes() - rss0


def mem_loss(x, W, c):
    h = torch.tanh(W @ x) * c
    return (h * h).sum() + c * c


def test_memory_flat_gradient(clean):
    g = torch.Generator().manual_seed(0)
    x, W = torch.randn(8, generator=g), torch.randn(8, 8, generator=g)
    objs, rss = _growth(lambda: tz.gradient(mem_loss, x, W, 1.5))
    assert objs < 500, f"{objs} more live objects after 2000 gradient calls"
    assert rss < 32 * 2 ** 20, f"RSS grew by {rss / 2 ** 20:.1f} MiB over 2000 gradient calls"


def test_memory_flat_to_torch_backward(clean):
    F = tz.to_torch(lambda a, b: (torch.sin(a * b) * a).sum())
    g = torch.Generator().manual_seed(0)
    a = torch.randn(16, generator=g).requires_grad_()
    b = torch.randn(16, generator=g).requires_grad_()

    def step():
        a.grad = b.grad = None
        F(a, b).backward()
    objs, rss = _growth(step)
    assert objs < 500, f"{objs} more live objects after 2000 backward calls"
    assert rss < 32 * 2 ** 20, f"RSS grew by {rss / 2 ** 20:.1f} MiB over 2000 backward calls"
    want = torch.cos(a * b) * a * b + torch.sin(a * b)
    assert torch.allclose(a.grad, want.detach())


def test_memory_flat_after_faults(clean):
    def f(x, fail):
        y = x * 2.0
        if fail:
            raise Boom("fail")
        return y * y

    def step():
        try:
            tz.gradient(f, 1.5, True)
        except Boom:
            pass
    objs, rss = _growth(step)
    assert objs < 500, f"{objs} more live objects after 2000 failing gradient calls"
    assert tz.gradient(f, 1.5, False) == (12.0, None)
