"""The science of the example: damped Duffing oscillators whose stiffness and damping a small
net predicts from measured features, with a shared cubic coefficient learned alongside.

``simulate`` is written the way a physicist would write it: a plain Python loop over time
steps (velocity Verlet), tensors for a batch of oscillators. torchzygote differentiates it
source to source; torch autograd can too, which is what the comparisons rest on.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn import functional as F

DTYPE = torch.float64
N_FEATURES = 3
TRUE_BETA = 0.8                 # the cubic stiffness shared by every oscillator


def simulate(k, c, beta, x0, v0, dt, nsteps):
    """Positions (batch x nsteps) of x'' = -k x - beta x^3 - c x', one oscillator per entry of
    ``k, c, x0, v0``, by velocity Verlet (the damping uses the half-step velocity)."""
    x, v = x0, v0
    a = -k * x - beta * x ** 3 - c * v
    xs = []
    for _ in range(nsteps):
        v_half = v + 0.5 * dt * a
        x = x + dt * v_half
        a = -k * x - beta * x ** 3 - c * v_half
        v = v_half + 0.5 * dt * a
        xs.append(x)
    return torch.stack(xs, dim=1)


class Encoder(nn.Module):
    """Features -> (stiffness k, damping c), both positive."""

    def __init__(self, hidden=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(N_FEATURES, hidden), nn.Tanh(), nn.Linear(hidden, 2))

    def forward(self, features):
        z = self.net(features)
        return 1 + F.softplus(z[:, 0]), 0.2 * torch.sigmoid(z[:, 1])


class OscillatorNet(nn.Module):
    """Features and initial states -> trajectories. ``sim`` is the simulator: ``simulate`` itself
    (plain torch autograd) or ``tz.to_torch(simulate)`` (torchzygote's gradient inside torch)."""

    def __init__(self, sim):
        super().__init__()
        self.encoder = Encoder()
        self.log_beta = nn.Parameter(torch.zeros(()))
        self.sim = sim

    def forward(self, features, x0, v0, dt, nsteps):
        k, c = self.encoder(features)
        return self.sim(k, c, self.log_beta.exp(), x0, v0, dt, nsteps)


def make_model(sim, seed, device):
    """The same initial weights for every ``sim`` (and on every rank)."""
    torch.manual_seed(seed)
    return OscillatorNet(sim).to(device, DTYPE)


@dataclasses.dataclass
class Data:
    """One row per oscillator; ``target``: noisy observed positions at every time step."""
    features: torch.Tensor
    x0: torch.Tensor
    v0: torch.Tensor
    target: torch.Tensor

    def rows(self, i, j):
        return Data(*(getattr(self, f.name)[i:j] for f in dataclasses.fields(self)))


def make_data(n, dt, nsteps, seed, device):
    """Synthetic measurements: the true k and c are smooth functions of the features. Drawn on
    the CPU, so every device and every rank sees the same numbers."""
    g = torch.Generator().manual_seed(seed)
    features = torch.rand(n, N_FEATURES, generator=g, dtype=DTYPE) * 2 - 1
    k = 2 + features[:, 0] + 0.5 * features[:, 1] ** 2
    c = 0.1 + 0.05 * torch.tanh(features[:, 2] - features[:, 0])
    x0 = torch.randn(n, generator=g, dtype=DTYPE)
    v0 = torch.randn(n, generator=g, dtype=DTYPE)
    clean = simulate(k, c, torch.tensor(TRUE_BETA, dtype=DTYPE), x0, v0, dt, nsteps)
    target = clean + 0.02 * torch.randn(clean.shape, generator=g, dtype=DTYPE)
    return Data(features.to(device), x0.to(device), v0.to(device), target.to(device))


def mse(model, batch, dt, nsteps):
    return ((model(batch.features, batch.x0, batch.v0, dt, nsteps) - batch.target) ** 2).mean()
