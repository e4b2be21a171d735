"""Every corpus program: torchzygote's gradient against central finite differences (float64)."""
import pytest

import torchzygote as tz
from conftest import check_fd
from corpus_core import CORPUS


def _ids():
    return [fn.__name__ for fn, _ in CORPUS]


def test_corpus_size():
    assert len(CORPUS) >= 160
    assert len(set(_ids())) == len(CORPUS), "duplicate program names"


@pytest.mark.parametrize("fn,inputs", CORPUS, ids=_ids())
def test_corpus(fn, inputs):
    # the transformed forward pass computes what Python computes...
    y, _ = tz.pullback(fn, *inputs[0])
    assert y == pytest.approx(fn(*inputs[0]), rel=1e-12, abs=1e-12)
    # ...and the gradient matches central differences at every point
    for args in inputs:
        check_fd(fn, args)
