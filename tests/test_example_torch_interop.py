"""examples/torch_interop: torchzygote inside torch training (to_torch), torch inside
torchzygote training (call_torch), DistributedDataParallel over to_torch, and double backward
through to_torch, each against plain torch."""
import os
import subprocess
import sys

import pytest
import torch

import torchzygote as tz
from examples.torch_interop import torch_interop
from examples.torch_interop.oscillators import DTYPE, simulate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def quick():
    return torch_interop.main(["--quick"])


def test_to_torch_model_trains_like_plain_torch(quick):
    assert quick["to_torch_diff"] <= 1e-10
    assert quick["loss_last"] < 0.1 * quick["loss_first"]


def test_call_torch_loss_trains_like_plain_torch(quick):
    assert quick["call_torch_diff"] <= 1e-10


def test_ddp_matches_one_process(quick):
    """2 gloo ranks, each on half of every batch, end where one process on the full batches does."""
    assert quick["ddp_diff"] <= 1e-10


def test_double_backward_matches_torch(quick):
    """Double backward through to_torch works (it does not raise): torch's second derivative."""
    assert quick["double_backward_diff"] <= 1e-10 * max(1.0, quick["double_backward_scale"])


def test_simulator_gradgradcheck():
    """The float arguments (dt) used to make double backward through to_torch silently wrong."""
    g = torch.Generator().manual_seed(0)
    args = [(torch.rand(2, generator=g, dtype=DTYPE) + 0.5).requires_grad_() for _ in range(5)]
    F = tz.to_torch(simulate)
    assert torch.autograd.gradgradcheck(lambda *a: F(*a, 0.1, 3), args)


@pytest.mark.parametrize("cmd", [["-m", "examples.torch_interop"], ["examples/torch_interop/torch_interop.py"]])
def test_entry_points(cmd):
    r = subprocess.run([sys.executable, *cmd, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "--no-ddp" in r.stdout
