"""The model-free baseline: REINFORCE with a learned value baseline, in plain torch,
on gymnasium's ``CartPole-v1`` (one episode per update, as the textbook has it).

It sees only what gymnasium returns (float32 observations, reward 1 per step);
it knows nothing of the physics. Judged like the differentiable controller: after
every episode its deterministic policy (the likelier action) plays the 100 test
episodes; solved when their mean return reaches 475.
"""
from __future__ import annotations

import time

import torch
from torch import nn

from . import sim


class Agent(nn.Module):
    """A policy (logits of the two actions) and a value baseline, each a small MLP."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        self.policy = nn.Sequential(nn.Linear(4, hidden), nn.Tanh(), nn.Linear(hidden, 2))
        self.value = nn.Sequential(nn.Linear(4, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def act(self, state):
        """The deterministic test policy: the likelier action."""
        return self.policy(state).argmax(-1)


def discounted(rewards, gamma):
    """Returns-to-go ``G_t = r_t + gamma G_{t+1}``."""
    out, g = [], 0.0
    for r in reversed(rewards):
        g = r + gamma * g
        out.append(g)
    return out[::-1]


def train(seed: int, test_starts: torch.Tensor, max_episodes: int = 2000, gamma: float = 0.99,
          lr: float = 1e-2, device="cpu", progress=None):
    """Train until solved (one episode of experience per update); the same outputs as
    ``differentiable.train``."""
    torch.manual_seed(seed)
    env, _ = sim.make_env(seed)
    agent = Agent().to(device=device, dtype=torch.float64)
    opt = torch.optim.Adam(agent.parameters(), lr=lr)
    curve = [(0, float(sim.episode_returns(agent.act, test_starts).mean()))]
    solved, steps, seconds = None, 0, 0.0
    for episode in range(1, max_episodes + 1):
        t = time.perf_counter()
        obs, _ = env.reset()
        states, actions, rewards, done = [], [], [], False
        while not done:
            s = torch.as_tensor(obs, dtype=torch.float64, device=device)
            with torch.no_grad():
                a = int(torch.distributions.Categorical(logits=agent.policy(s)).sample())
            obs, r, term, trunc, _ = env.step(a)
            states.append(s)
            actions.append(a)
            rewards.append(float(r))
            done = term or trunc
        s = torch.stack(states)
        g = torch.tensor(discounted(rewards, gamma), dtype=torch.float64, device=device)
        v = agent.value(s).squeeze(-1)
        adv = g - v.detach()
        if len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        logp = torch.distributions.Categorical(logits=agent.policy(s)).log_prob(
            torch.tensor(actions, device=device))
        loss = -(logp * adv).mean() + 1e-3 * ((v - g) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        seconds += time.perf_counter() - t
        steps += len(rewards)
        curve.append((episode, float(sim.episode_returns(agent.act, test_starts).mean())))
        if progress is not None:
            progress.update(1)
            progress.set_postfix(test_return=f"{curve[-1][1]:.0f}")
        if curve[-1][1] >= sim.SOLVED_RETURN:
            solved = episode
            break
    return agent, curve, solved, steps, seconds
