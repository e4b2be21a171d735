"""CartPole's physics in plain Python + torch: gymnasium's ``CartPole-v1``, batched.

The equations, constants, Euler integrator, termination test and start
distribution are gymnasium's (``gymnasium/envs/classic_control/cartpole.py``);
``tests/test_example_cartpole.py`` steps this simulator and gymnasium side by
side and checks that the states agree to 1e-9. The only extension is that
``step`` takes any force, not just the two actions' +-10 N, which is what makes
the rollout differentiable with respect to a controller.
"""
from __future__ import annotations

import math

import torch

GRAVITY = 9.8
MASSCART = 1.0
MASSPOLE = 0.1
TOTAL_MASS = MASSPOLE + MASSCART
LENGTH = 0.5                      # half the pole's length
POLEMASS_LENGTH = MASSPOLE * LENGTH
FORCE_MAG = 10.0                  # the force of gymnasium's actions: 0 -> -10 N, 1 -> +10 N
TAU = 0.02                        # seconds per step

# An episode ends (terminates) when the pole leans more than 12 degrees or the
# cart leaves the track; CartPole-v1 truncates it after 500 steps and counts it
# solved when the mean return (steps survived) over 100 consecutive episodes is
# at least 475.
THETA_LIMIT = 12 * 2 * math.pi / 360
X_LIMIT = 2.4
MAX_STEPS = 500
SOLVED_RETURN = 475.0


def step(state: torch.Tensor, force: torch.Tensor) -> torch.Tensor:
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


def action_force(action: torch.Tensor) -> torch.Tensor:
    """The force of gymnasium's discrete actions (0 pushes left, 1 pushes right)."""
    return torch.where(action.bool(), FORCE_MAG, -FORCE_MAG)


def terminated(state: torch.Tensor) -> torch.Tensor:
    """gymnasium's termination test, per state."""
    return (state[..., 0].abs() > X_LIMIT) | (state[..., 2].abs() > THETA_LIMIT)


def random_starts(n: int, generator: torch.Generator, scale: float = 0.05,
                  device="cpu") -> torch.Tensor:
    """Start states like gymnasium's ``reset``: every coordinate uniform in [-scale, scale]."""
    u = torch.rand(n, 4, generator=generator, dtype=torch.float64)
    return ((u * 2 - 1) * scale).to(device)


@torch.no_grad()
def episode_returns(act, starts: torch.Tensor, max_steps: int = MAX_STEPS) -> torch.Tensor:
    """The return of one episode from each start (a batch, run in lockstep): the number
    of steps until termination, the terminating step included (gymnasium gives it
    reward 1 too), at most ``max_steps``. ``act`` maps states ``(B, 4)`` to actions in {0, 1}."""
    state = starts
    alive = torch.ones(len(starts), dtype=torch.bool, device=starts.device)
    ret = torch.zeros(len(starts), dtype=torch.float64, device=starts.device)
    for _ in range(max_steps):
        state = step(state, action_force(act(state)))
        ret += alive
        alive &= ~terminated(state)
        if not alive.any():
            break
    return ret


class SimEnv:
    """A one-episode-at-a-time environment with gymnasium's ``reset``/``step`` interface on
    this simulator: the model-free baseline's stand-in when gymnasium is not installed."""

    def __init__(self, seed: int = 0):
        self._gen = torch.Generator().manual_seed(seed)
        self._state = None
        self._t = 0

    def reset(self, seed=None):
        if seed is not None:
            self._gen.manual_seed(seed)
        self._state = random_starts(1, self._gen)[0]
        self._t = 0
        return self._state.numpy().astype("float32"), {}

    def step(self, action):
        self._state = step(self._state[None], action_force(torch.tensor([action])))[0]
        self._t += 1
        term = bool(terminated(self._state))
        return self._state.numpy().astype("float32"), 1.0, term, self._t >= MAX_STEPS, {}


def make_env(seed: int = 0):
    """gymnasium's ``CartPole-v1`` when installed, else :class:`SimEnv` (same dynamics)."""
    try:
        import gymnasium
    except ImportError:
        return SimEnv(seed), "this simulator (gymnasium is not installed)"
    env = gymnasium.make("CartPole-v1")
    env.reset(seed=seed)
    return env, f"gymnasium {gymnasium.__version__} CartPole-v1"
