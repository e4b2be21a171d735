"""The differentiable method: a neural controller trained by gradient descent on the
cost of a simulated rollout, the gradient taken through the physics by torchzygote.

The controller outputs a continuous force, ``10 * tanh(mlp(state))``; in
gymnasium's environment it acts with the sign of that force (action 1 when it
pushes right), so it is judged on exactly the task the model-free baseline learns.
"""
from __future__ import annotations

import time

import torch
from torch import nn

import torchzygote as tz

from . import sim

# typical magnitudes of [x, x_dot, theta, theta_dot], to scale the inputs and the cost
STATE_SCALE = (sim.X_LIMIT, 2.0, sim.THETA_LIMIT, 2.0)
# cost weights: mostly the pole angle, a little cart position and velocities
COST_WEIGHTS = (0.1, 0.1, 1.0, 0.1)


class Controller(nn.Module):
    """A small MLP: state -> force in [-10 N, 10 N]."""

    def __init__(self, hidden: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.register_buffer("scale", torch.tensor(STATE_SCALE))
        self.register_buffer("weights", torch.tensor(COST_WEIGHTS))

    def forward(self, state):
        return sim.FORCE_MAG * torch.tanh(self.net(state / self.scale)).squeeze(-1)

    def act(self, state):
        """gymnasium's discrete action: push in the direction of the force."""
        return (self(state) > 0).long()


def rollout(policy, state, horizon):
    """The trajectory of states under the continuous force, ``(horizon + 1, B, 4)``."""
    states = [state]
    for _ in range(horizon):
        state = sim.step(state, policy(state))
        states.append(state)
    return torch.stack(states)


def loss(policy, state0, horizon):
    """Mean over time and starts of a quadratic cost: the (scaled) pole angle squared,
    plus small cart-position and velocity terms."""
    total = 0.0
    state = state0
    for _ in range(horizon):
        state = sim.step(state, policy(state))
        total = total + ((state / policy.scale) ** 2 * policy.weights).sum(dim=-1).mean()
    return total / horizon


def train(seed: int, test_starts: torch.Tensor, max_episodes: int = 100, batch: int = 1,
          device="cpu", progress=None):
    """Train until the controller solves the test episodes (mean return >= 475).

    Each gradient step simulates ``batch`` rollouts from random starts (wider than
    gymnasium's, so the controller sees recoveries) and counts as ``batch`` episodes of
    experience. The horizon grows with training: early on the pole falls within a
    second, and gradients through a long fall are useless.
    Returns the controller, the learning curve ``[(episodes, test mean return)]``, the
    episodes to solve (None if not solved), the simulated steps and the training seconds.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    policy = Controller().to(device=device, dtype=torch.float64)
    params = tz.Params(policy.parameters())
    opt = torch.optim.Adam(policy.parameters(), lr=0.05)
    curve = [(0, float(sim.episode_returns(policy.act, test_starts).mean()))]
    solved, steps, seconds = None, 0, 0.0
    for k in range(1, max_episodes // batch + 1):
        t = time.perf_counter()
        horizon = min(sim.MAX_STEPS, 10 + 10 * k)
        state0 = sim.random_starts(batch, gen, scale=0.2, device=device)
        with torch.no_grad():  # torchzygote computes the gradient: no autograd graph needed
            _, grads = tz.withgradient(lambda: loss(policy, state0, horizon), params)
        for p in policy.parameters():
            p.grad = grads[p]
        nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        seconds += time.perf_counter() - t
        steps += batch * horizon
        curve.append((k * batch, float(sim.episode_returns(policy.act, test_starts).mean())))
        if progress is not None:
            progress.update(batch)
            progress.set_postfix(test_return=f"{curve[-1][1]:.0f}")
        if curve[-1][1] >= sim.SOLVED_RETURN:
            solved = k * batch
            break
    return policy, curve, solved, steps, seconds
