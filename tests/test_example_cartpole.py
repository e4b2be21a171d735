"""examples/cartpole: the simulator is gymnasium's CartPole-v1, and the example runs."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from examples.cartpole import cartpole, sim

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _actions(n, seed):
    """A balancing rule with random actions mixed in, so 300 steps stay physical but
    visit both actions in every kind of state."""
    rng = np.random.default_rng(seed)

    def act(state):
        if rng.random() < 0.3:
            return int(rng.integers(2))
        x, x_dot, theta, theta_dot = state
        return int(theta + 0.5 * theta_dot + 0.01 * x + 0.1 * x_dot > 0)
    return act


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_simulator_steps_like_gymnasium(seed):
    gym = pytest.importorskip("gymnasium", reason="the [examples] extra installs gymnasium")
    env = gym.make("CartPole-v1").unwrapped
    env.reset(seed=seed)
    state = torch.tensor(env.state, dtype=torch.float64)[None]
    act = _actions(300, seed)
    worst = 0.0
    for _ in range(300):
        a = act(env.state)
        _, _, term, _, _ = env.step(a)
        state = sim.step(state, sim.action_force(torch.tensor([a])))
        worst = max(worst, float(np.abs(state[0].numpy() - env.state).max()))
        assert bool(sim.terminated(state)[0]) == term
    assert worst <= 1e-9


def test_episode_returns_are_gymnasiums():
    """The batched returns (the "solved" test) count steps as gymnasium's CartPole-v1 does:
    the terminating step earns its reward, and episodes are truncated at 500 steps."""
    gym = pytest.importorskip("gymnasium", reason="the [examples] extra installs gymnasium")
    env = gym.make("CartPole-v1")

    # even episodes balance to the 500-step limit, odd ones (no damping) fall
    damping = torch.tensor([0.3, 0.0] * 6, dtype=torch.float64)

    def act(s, k=damping):
        return (s[..., 2] + k * s[..., 3] > 0).long()

    starts, expected = [], []
    for seed in range(12):
        obs, _ = env.reset(seed=seed)
        starts.append(torch.tensor(env.unwrapped.state, dtype=torch.float64))
        total, done = 0.0, False
        while not done:
            s = torch.tensor(env.unwrapped.state, dtype=torch.float64)
            obs, r, term, trunc, _ = env.step(int(act(s, damping[seed])))
            total += r
            done = term or trunc
        expected.append(total)
    got = sim.episode_returns(act, torch.stack(starts)).tolist()
    assert got == expected
    assert 500.0 in expected and min(expected) < 500.0


def test_quick_run_solves_and_matches_autograd(tmp_path):
    out = cartpole.main(["--quick", "--out", str(tmp_path), "--max-baseline-episodes", "10"])
    ours = out["table"]["torchzygote (through the simulator)"]
    assert ours["solved"] == 1 and ours["episodes"][0] <= 40
    if ours["gymnasium_return"] is not None:  # gymnasium's own environment agrees
        assert ours["gymnasium_return"] >= sim.SOLVED_RETURN
    assert out["grad_diff"] <= 1e-10 * max(1.0, out["grad_scale"])
    if os.path.exists(tmp_path / "cartpole.png"):
        assert (tmp_path / "cartpole.png").stat().st_size > 5_000
    else:
        pytest.importorskip("matplotlib", reason="no plot without matplotlib")
        raise AssertionError("matplotlib is installed but no plot was written")


@pytest.mark.parametrize("cmd", [["-m", "examples.cartpole"], ["examples/cartpole/cartpole.py"]])
def test_runs_as_module_and_as_script(cmd):
    r = subprocess.run([sys.executable, *cmd, "--help"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "--seeds" in r.stdout
