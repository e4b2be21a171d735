"""Golden files: the lifted IR, the analysis facts and the generated forward and pullback of
a scalar loop, a small MLP and a dict mutation (tests/golden_programs.py), compared as text.

A change to the frontend, the analysis or the code generator shows here as a diff of
tests/golden/. When the change is meant, regenerate them and read the diff:

    TORCHZYGOTE_REGEN_GOLDEN=1 python -m pytest -q tests/test_golden.py

Generated names are deterministic: value ids are numbered per lift, globals and pullback
names per generated function."""
import os
import sys

import pytest
import torch

import torchzygote as tz
from golden_programs import dict_mutation, mlp, pow_loop

HERE = os.path.join(os.path.dirname(__file__), "golden")
REGEN = os.environ.get("TORCHZYGOTE_REGEN_GOLDEN") == "1"
F64 = torch.float64


def _mlp_args():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(4, 3, generator=g, dtype=F64), torch.randn(4, generator=g, dtype=F64),
            torch.randn(2, 4, generator=g, dtype=F64), torch.randn(2, generator=g, dtype=F64),
            torch.randn(3, generator=g, dtype=F64), torch.randn(2, generator=g, dtype=F64))


PROGRAMS = {"pow_loop": (pow_loop, lambda: (2.0, 3)),
            "mlp": (mlp, _mlp_args),
            "dict_mutation": (dict_mutation, lambda: (2.0, 3.0))}

VIEWS = {"ir.txt": lambda f, args: str(tz.code_ir(f, *args)),
         "analysis.txt": lambda f, args: str(tz.code_analysis(f, *args)),
         "generated.py": lambda f, args: tz.code_adjoint(f, *args).source}


def compare(name: str, text: str) -> None:
    path = os.path.join(HERE, name)
    if REGEN:
        with open(path, "w") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
        return
    if not os.path.exists(path):
        pytest.fail(f"no golden file {path}: run with TORCHZYGOTE_REGEN_GOLDEN=1")
    with open(path) as fh:
        want = fh.read()
    assert (text if text.endswith("\n") else text + "\n") == want, \
        f"{name} differs from its golden file (if the change is meant: TORCHZYGOTE_REGEN_GOLDEN=1)"


@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize("prog", sorted(PROGRAMS))
def test_golden(prog, view):
    f, args = PROGRAMS[prog]
    compare(f"{prog}.{view}", VIEWS[view](f, args()))


def test_golden_programs_still_differentiate():
    """The goldens show code that computes the right gradients."""
    assert tz.gradient(pow_loop, 2.0, 3) == (12.0, None)
    assert tz.gradient(dict_mutation, 2.0, 3.0) == (13.0, 5.0)
    args = _mlp_args()
    leaves = [a.clone().requires_grad_() for a in args]
    want = torch.autograd.grad(mlp(*leaves), leaves)
    for g, w in zip(tz.gradient(mlp, *args), want):
        torch.testing.assert_close(g, w)


@pytest.mark.skipif(REGEN, reason="regenerating")
def test_a_change_fails(tmp_path, monkeypatch):
    """A golden comparison fails on any difference."""
    monkeypatch.setattr(sys.modules[__name__], "HERE", str(tmp_path))
    (tmp_path / "x.txt").write_text("a\n")
    compare("x.txt", "a")
    with pytest.raises(AssertionError):
        compare("x.txt", "b")
