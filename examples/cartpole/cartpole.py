"""Differentiable CartPole: train a neural controller by backpropagating through the physics.

The talk's example: model-free RL needs hundreds of episodes to balance a pole,
but if the simulator itself is differentiable we can take the gradient of the
whole rollout's cost with respect to the controller's weights and solve it in a
handful of episodes. Here the simulator is plain Python + torch (gym's CartPole
equations, with a continuous force), and torchzygote generates its gradient code.

    python examples/cartpole/cartpole.py [--quick] [--plot out.png]
"""
from __future__ import annotations

import argparse
import copy
import math
import time

import torch
from torch import nn

import torchzygote as tz

# ---------------------------------------------------------------- the physics
# The constants and equations of gym's CartPole-v0 (explicit Euler, tau = 0.02 s).
GRAVITY = 9.8
MASSCART = 1.0
MASSPOLE = 0.1
TOTAL_MASS = MASSPOLE + MASSCART
LENGTH = 0.5  # half the pole's length
POLEMASS_LENGTH = MASSPOLE * LENGTH
FORCE_MAG = 10.0
TAU = 0.02

# gym's failure thresholds: the episode ends when the pole leans more than 12
# degrees or the cart leaves the track.
THETA_LIMIT = 12 * 2 * math.pi / 360
X_LIMIT = 2.4


def step(state, force):
    """One Euler step for a batch of states ``(B, 4) = [x, x_dot, theta, theta_dot]``."""
    x, x_dot, theta, theta_dot = state.unbind(-1)
    costheta = torch.cos(theta)
    sintheta = torch.sin(theta)
    temp = (force + POLEMASS_LENGTH * theta_dot ** 2 * sintheta) / TOTAL_MASS
    thetaacc = (GRAVITY * sintheta - costheta * temp) / (
        LENGTH * (4.0 / 3.0 - MASSPOLE * costheta ** 2 / TOTAL_MASS))
    xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
    x = x + TAU * x_dot
    x_dot = x_dot + TAU * xacc
    theta = theta + TAU * theta_dot
    theta_dot = theta_dot + TAU * thetaacc
    return torch.stack([x, x_dot, theta, theta_dot], dim=-1)


# ---------------------------------------------------------------- the controller

# typical magnitudes of [x, x_dot, theta, theta_dot], to scale the inputs and the cost
STATE_SCALE = torch.tensor([X_LIMIT, 2.0, THETA_LIMIT, 2.0], dtype=torch.float64)
# cost weights: mostly the pole angle, a little cart position and velocities
COST_WEIGHTS = torch.tensor([0.1, 0.1, 1.0, 0.1], dtype=torch.float64)


class Controller(nn.Module):
    """A small MLP: state -> force in [-FORCE_MAG, FORCE_MAG]."""

    def __init__(self, hidden=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, state):
        return FORCE_MAG * torch.tanh(self.net(state / STATE_SCALE)).squeeze(-1)


def rollout(policy, state, horizon):
    """The trajectory of states, ``(horizon + 1, B, 4)``."""
    states = [state]
    for _ in range(horizon):
        state = step(state, policy(state))
        states.append(state)
    return torch.stack(states)


def loss(policy, state0, horizon):
    """Mean over time and starts of a quadratic cost: the (scaled) pole angle squared,
    plus small cart-position and velocity terms."""
    total = 0.0
    state = state0
    for _ in range(horizon):
        state = step(state, policy(state))
        total = total + ((state / STATE_SCALE) ** 2 * COST_WEIGHTS).sum(dim=-1).mean()
    return total / horizon


def random_starts(n, generator, scale=0.05, dtype=torch.float64):
    """gym's initial states: every coordinate uniform in [-scale, scale]."""
    return (torch.rand(n, 4, generator=generator, dtype=dtype) * 2 - 1) * scale


@torch.no_grad()
def balanced(policy, starts, horizon):
    """Which starts keep the pole up and the cart on the track for ``horizon`` steps."""
    traj = rollout(policy, starts, horizon)
    ok = (traj[..., 2].abs() < THETA_LIMIT) & (traj[..., 0].abs() < X_LIMIT)
    return ok.all(dim=0)


# ---------------------------------------------------------------- checks

def compare_with_autograd(policy, state0, horizon, repeat=3):
    """Max abs difference between torchzygote's and torch autograd's gradient, and timings."""
    params = list(policy.parameters())

    def tz_grad():
        ps = tz.Params(params)
        with torch.no_grad():
            gs = tz.gradient(lambda: loss(policy, state0, horizon), ps)
        return [gs[p] for p in params]

    def torch_grad():
        return list(torch.autograd.grad(loss(policy, state0, horizon), params))

    g_tz, g_torch = tz_grad(), torch_grad()
    diff = max((a - b).abs().max().item() for a, b in zip(g_tz, g_torch))
    scale = max(b.abs().max().item() for b in g_torch)

    def best(fn):
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    return diff, scale, best(tz_grad), best(torch_grad)


# ---------------------------------------------------------------- training

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short run (a few seconds)")
    ap.add_argument("--plot", metavar="PNG", help="write the pole angle before/after training")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    torch.set_default_dtype(torch.float64)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    batch = 8                                   # random starts per episode
    max_episodes = 6 if args.quick else 20
    max_horizon = 200
    eval_starts = random_starts(100, gen)       # gym's starts, +-0.05
    eval_horizon = 200                          # "solved": balanced for 200 steps

    policy = Controller()
    initial = copy.deepcopy(policy)
    ps = tz.Params(policy.parameters())
    opt = torch.optim.Adam(policy.parameters(), lr=0.05)

    plot_start = eval_starts[:1]
    before = rollout(policy, plot_start, eval_horizon).detach()

    print(f"CartPole: MLP controller with {sum(p.numel() for p in policy.parameters())} weights; "
          f"{batch} random starts per episode, gradient through the whole rollout")
    frac = balanced(policy, eval_starts, eval_horizon).double().mean().item()
    print(f"episode  0:                              balanced {frac:6.1%} of 100 test starts")
    history = []
    solved_at = None
    t0 = time.perf_counter()
    for episode in range(1, max_episodes + 1):
        # the rollout grows as the controller learns: early on, the pole falls
        # within a second and gradients through a long fall are useless.
        horizon = min(max_horizon, 10 + 10 * episode)
        state0 = random_starts(batch, gen, scale=0.2)
        with torch.no_grad():  # torchzygote computes the gradient; no autograd graph needed
            val, gs = tz.withgradient(lambda: loss(policy, state0, horizon), ps)
        for p in policy.parameters():
            p.grad = gs[p]
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        history.append(float(val))
        frac = balanced(policy, eval_starts, eval_horizon).double().mean().item()
        print(f"episode {episode:2d}: horizon {horizon:3d}  loss {float(val):8.4f}  "
              f"balanced {frac:6.1%} of 100 test starts")
        if frac == 1.0:
            solved_at = episode
            break
    train_time = time.perf_counter() - t0
    if solved_at is not None:
        print(f"solved in {solved_at} episodes ({train_time:.1f} s): every test start "
              f"balanced for {eval_horizon} steps")
    else:
        print(f"not solved in {max_episodes} episodes ({train_time:.1f} s)")

    after = rollout(policy, plot_start, eval_horizon).detach()
    # the loss on fresh starts before and after training, at the full horizon
    check_starts = random_starts(batch, gen, scale=0.2)
    with torch.no_grad():
        loss_before = float(loss(initial, check_starts, max_horizon))
        loss_after = float(loss(policy, check_starts, max_horizon))
    print(f"loss on {batch} fresh starts over {max_horizon} steps: "
          f"{loss_before:.4f} before training, {loss_after:.4f} after")

    # the same gradient from torch's autograd, at the trained weights
    horizon = 50 if args.quick else max_horizon
    diff, scale, t_tz, t_torch = compare_with_autograd(policy, check_starts, horizon)
    print(f"gradient vs torch autograd ({horizon} steps x {batch} starts): "
          f"max abs diff {diff:.2e} (largest entry {scale:.2e})")
    print(f"time for one gradient: torchzygote {t_tz * 1e3:.1f} ms, "
          f"torch autograd {t_torch * 1e3:.1f} ms")

    if args.plot:
        plot(before, after, args.plot)

    return {"losses": history, "loss_before": loss_before, "loss_after": loss_after, "solved_at": solved_at, "grad_diff": diff, "grad_scale": scale,
            "time_tz": t_tz, "time_torch": t_torch}


def plot(before, after, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed; no plot written")
        return
    t = torch.arange(before.shape[0]) * TAU
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(t, before[:, 0, 2].numpy(), label="before training")
    ax.plot(t, after[:, 0, 2].numpy(), label="after training")
    for s in (-1, 1):
        ax.axhline(s * THETA_LIMIT, color="grey", ls=":", lw=1)
    ax.set_ylim(-3 * THETA_LIMIT, 3 * THETA_LIMIT)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("pole angle (rad)")
    ax.set_title("CartPole: pole angle from the same start")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


if __name__ == "__main__":
    main()
