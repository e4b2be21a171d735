"""The two user-facing examples run (in --quick mode), learn, and agree with torch autograd."""
import importlib.util
import os

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name):
    path = os.path.join(ROOT, "examples", name, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(autouse=True)
def _restore_dtype():
    dtype = torch.get_default_dtype()
    yield
    torch.set_default_dtype(dtype)


def test_cartpole_quick():
    out = _load("cartpole").main(["--quick"])
    assert out["loss_after"] < 0.1 * out["loss_before"]
    assert out["solved_at"] is not None
    assert out["grad_diff"] <= 1e-10 * max(1.0, out["grad_scale"])


def test_pkpd_quick():
    out = _load("pkpd").main(["--quick"])
    losses = out["losses"]
    assert losses[-1] < 0.1 * losses[0]
    assert out["grad_diff"] <= 1e-10 * max(1.0, out["grad_scale"])
    assert out["max_rel_error"] < 0.3
