"""Shared helpers for the core test suite: finite differences and comparisons."""
import math
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

try:
    from hypothesis import settings

    settings.register_profile("tz", max_examples=30, deadline=None, derandomize=True)
    settings.load_profile("tz")
except ImportError:  # pragma: no cover
    pass

STEP = 1e-6
RTOL = 1e-5
ATOL = 1e-6


def _fd1(fn, x, h=STEP):
    """Central difference of a real-valued fn at real x."""
    return (fn(x + h) - fn(x - h)) / (2 * h)


def fd_gradient(f, args, h=STEP, which=None):
    """Central finite-difference gradient of a real-valued ``f`` at ``args``.

    Real (float) arguments get a real derivative; complex arguments get
    ``df/dre + i df/dim`` (Zygote's/torch's convention). Non-float arguments
    (ints used as counters, strings, ...) get ``None``.
    """
    out = []
    for i, a in enumerate(args):
        if which is not None and i not in which:
            out.append(None)
            continue

        def at(v, i=i):
            xs = list(args)
            xs[i] = v
            return f(*xs)

        if isinstance(a, bool) or not isinstance(a, (float, complex)):
            out.append(None)
        elif isinstance(a, complex):
            dre = (at(a + h) - at(a - h)) / (2 * h)
            dim = (at(a + 1j * h) - at(a - 1j * h)) / (2 * h)
            out.append(complex(dre, dim))
        else:
            out.append((at(a + h) - at(a - h)) / (2 * h))
    return tuple(out)


def close(a, b, rtol=RTOL, atol=ATOL):
    """Numbers (real or complex) within tolerance; treats None as zero."""
    if a is None:
        a = 0.0
    if b is None:
        b = 0.0
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(close(x, y, rtol, atol) for x, y in zip(a, b))
    try:
        a = complex(a)
        b = complex(b)
    except TypeError:
        return False
    if any(map(math.isnan, (a.real, a.imag, b.real, b.imag))):
        return False
    return abs(a - b) <= atol + rtol * max(abs(a), abs(b))


def assert_close(got, want, rtol=RTOL, atol=ATOL, msg=""):
    assert close(got, want, rtol, atol), f"{msg} got {got!r}, want {want!r}"


def generated_sources(run):
    """``(run(), the sources torchzygote generated while it ran)``, from an empty transform cache."""
    from torchzygote.ad import cache, pipeline
    seen = []
    inner = pipeline.compile

    def spy(fn, src, *a):
        seen.append(src)
        return inner(fn, src, *a)
    pipeline.compile = spy
    try:
        cache._cache.clear()
        cache._by_type.clear()
        result = run()
    finally:
        pipeline.compile = inner
    return result, seen


def check_fd(f, args, rtol=RTOL, atol=ATOL, h=STEP):
    """Compare ``torchzygote.gradient`` with central differences at ``args``."""
    import torchzygote as tz

    got = tz.gradient(f, *args)
    want = fd_gradient(f, args, h=h)
    assert isinstance(got, tuple) and len(got) == len(args), f"gradient returned {got!r}"
    for i, (g, w) in enumerate(zip(got, want)):
        if w is None:
            continue
        assert close(g, w, rtol, atol), (
            f"{getattr(f, '__name__', f)}{args}: argument {i}: torchzygote {g!r} vs finite difference {w!r}")
    return got


@pytest.fixture
def fd():
    return fd_gradient


# A hang in the transform (e.g. a loop whose exit is lost) must fail its test, not the suite.
TEST_TIMEOUT_S = 60  # generous: a loaded CI machine must not fail a slow-but-correct test


class TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _per_test_timeout():
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def on_alarm(signum, frame):
        raise TestTimeout(f"test ran longer than {TEST_TIMEOUT_S} s (hang?)")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
