"""The training loops the comparisons share: Adam on mini-batches taken in order. Each returns
the losses and the wall time of every step."""
from __future__ import annotations

import time

import torch

import torchzygote as tz

from .oscillators import mse, simulate


def batch_at(data, step, cfg, shard=(0, 1)):
    """The ``step``-th global batch (cycling through the data), or this rank's equal share of
    it: ``shard = (rank, world)``."""
    size = cfg["batch"]
    start = (step * size) % len(data.x0)
    rank, world = shard
    part = size // world
    return data.rows(start + rank * part, start + (rank + 1) * part)


def train_torch(model, data, cfg, shard=(0, 1)):
    """Plain torch training: ``loss.backward()`` and ``torch.optim.Adam`` (``model`` may be a
    DistributedDataParallel, whose gradient average over equal shards is the full batch's mean)."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    losses, times = [], []
    for step in range(cfg["steps"]):
        t = time.perf_counter()
        loss = mse(model, batch_at(data, step, cfg, shard), cfg["dt"], cfg["nsteps"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        times.append(time.perf_counter() - t)
    return losses, times


def tz_loss(model, batch, dt, nsteps):
    """The loss written for torchzygote: the encoder (a torch module) runs under torch autograd
    through ``tz.call_torch``, the simulator is differentiated by torchzygote. Called outside a
    differentiation it is plain torch code (``call_torch`` just calls the module)."""
    k, c = tz.call_torch(model.encoder, batch.features)
    xs = simulate(k, c, model.log_beta.exp(), batch.x0, batch.v0, dt, nsteps)
    return ((xs - batch.target) ** 2).mean()


def train_tz(model, data, cfg, engine):
    """The same Adam steps on ``tz_loss``, its gradient from ``engine``: "torchzygote"
    (``tz.withgradient`` over ``tz.Params``) or "torch" (``loss.backward()``)."""
    params = list(model.parameters())
    ps = tz.Params(params)
    opt = torch.optim.Adam(params, lr=cfg["lr"])
    losses, times = [], []
    for step in range(cfg["steps"]):
        t = time.perf_counter()
        batch = batch_at(data, step, cfg)
        opt.zero_grad()
        if engine == "torchzygote":
            loss, gs = tz.withgradient(lambda: tz_loss(model, batch, cfg["dt"], cfg["nsteps"]), ps)
            for p in params:
                p.grad = gs[p]
        else:
            loss = tz_loss(model, batch, cfg["dt"], cfg["nsteps"])
            loss.backward()
        opt.step()
        losses.append(loss.item())
        times.append(time.perf_counter() - t)
    return losses, times
