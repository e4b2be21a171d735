"""Forward mode on the corpora: every program of the core and structures corpora, its ``jvp``
along each input (one float leaf at a time) against central differences (float64) and against
reverse mode's gradient, and its value against Python's."""
import copy
import math

import pytest
import torch

import torchzygote as tz
from conftest import close, fd_gradient
from corpus_core import CORPUS as CORE
from corpus_structures import CORPUS as STRUCTURES, fd_struct, get_path, set_path

RTOL, ATOL = 1e-5, 1e-6


@pytest.mark.parametrize("fn,inputs", CORE, ids=[fn.__name__ for fn, _ in CORE])
def test_core_corpus(fn, inputs):
    for args in inputs:
        want = fd_gradient(fn, args)
        for i, a in enumerate(args):
            if want[i] is None:
                continue
            directions = (1.0, 1j) if isinstance(a, complex) else (1.0,)
            for d in directions:
                tangents = [None] * len(args)
                tangents[i] = type(a)(d) if isinstance(a, complex) else d
                y, ty = tz.jvp(fn, args, tangents)
                assert y == pytest.approx(fn(*args), rel=1e-12, abs=1e-12)
                # the derivative along d: the real part of conj(gradient) * d (Zygote's convention)
                expect = (complex(want[i]).conjugate() * d).real
                assert close(ty, expect, RTOL, ATOL), f"{fn.__name__}{args}: d/d(arg {i})·{d}: jvp {ty!r} vs fd {expect!r}"


def _seeded(args, i, path):
    """A copy of ``args`` whose leaf at ``path`` of argument ``i`` is a Dual with tangent 1 (a
    tensor element: the tensor, with a one-hot tangent)."""
    new = list(copy.deepcopy(args))
    if path and path[-1][0] == "t":
        parent = path[:-1]
        t = get_path(new[i], parent) if parent else new[i]
        onehot = torch.zeros_like(t)
        onehot[path[-1][1]] = 1
        new[i] = set_path(new[i], parent, tz.Dual(t, onehot)) if parent else tz.Dual(t, onehot)
    else:
        new[i] = set_path(new[i], path, tz.Dual(get_path(new[i], path), 1.0))
    return new


@pytest.mark.parametrize("c", STRUCTURES, ids=[c.name for c in STRUCTURES])
def test_structures_corpus(c):
    for args in c.argsets:
        want = fd_struct(c.fn, args, reset=c.reset)
        for i, path, w in want:
            if c.reset:
                c.reset()
            seeded = _seeded(args, i, path)
            y, ty = tz.jvp(c.fn, seeded, [None] * len(seeded))
            got = float(ty) if not isinstance(ty, torch.Tensor) else ty.item()
            assert math.isclose(got, w, rel_tol=RTOL, abs_tol=ATOL), \
                f"{c.name}: arg {i} at {path}: jvp {got!r} vs finite difference {w!r}"
