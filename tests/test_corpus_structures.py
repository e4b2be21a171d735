"""Every structures corpus program: gradient against central finite differences
(float64) leaf by leaf, the state it leaves behind, and its value."""
import copy
import math

import pytest

import torchzygote as tz
from corpus_structures import CORPUS, check_shape, fd_struct, grad_at, same, snapshot

RTOL, ATOL = 1e-5, 1e-6


def _ids():
    return [c.name for c in CORPUS]


def test_corpus_size():
    assert len(CORPUS) >= 110
    assert len(set(_ids())) == len(CORPUS), "duplicate program names"


def _plain(c, args):
    """Run the program once on a copy: its value, the arguments and outside state it leaves."""
    if c.reset:
        c.reset()
    a = copy.deepcopy(args)
    y = c.fn(*a)
    state = c.state() if c.state else None
    return y, snapshot(a), copy.deepcopy(state)


@pytest.mark.parametrize("c", CORPUS, ids=_ids())
def test_corpus(c):
    for args in c.argsets:
        y0, args_after, state_after = _plain(c, args)
        want = fd_struct(c.fn, args, reset=c.reset)

        if c.reset:
            c.reset()
        a = copy.deepcopy(args)
        y, grads = tz.withgradient(c.fn, *a)
        state = c.state() if c.state else None

        # value, then the state left behind, then the gradient
        assert float(y) == pytest.approx(float(y0), rel=1e-12, abs=1e-12), "forward value differs"
        assert same(snapshot(a), args_after), f"arguments after gradient {snapshot(a)} != after a plain run {args_after}"
        assert same(snapshot(state), snapshot(state_after)), \
            f"outside state after gradient {state!r} != after a plain run {state_after!r}"
        assert isinstance(grads, tuple) and len(grads) == len(args)
        for i, (v, g) in enumerate(zip(args, grads)):
            check_shape(v, g, f"arg{i}")
        for i, path, w in want:
            got = grad_at(grads[i], path)
            got = 0.0 if got is None else float(got)
            assert math.isclose(got, w, rel_tol=RTOL, abs_tol=ATOL), \
                f"arg {i} at {path}: torchzygote {got!r} vs finite difference {w!r} (full gradient {grads[i]!r})"


def test_iterating_an_object_with_dunder_iter_is_a_clear_error():
    """Iteration through a user ``__iter__`` is not differentiated: say so, never a wrong gradient."""
    import pytest
    from corpus_structures import op_iter_len
    with pytest.raises(tz.GradientError, match="__iter__"):
        tz.gradient(op_iter_len, 0.5, 1.5)
