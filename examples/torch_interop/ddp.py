"""DistributedDataParallel over the ``to_torch`` model: torch's engine runs torchzygote's
backward while DDP's hooks average the gradients between ranks (backend gloo, on this
machine). A module of its own so that spawned ranks can import the worker by name, however
the example was started."""
from __future__ import annotations

import datetime
import os
import tempfile

import torch
from torch import distributed as dist
from torch import multiprocessing as mp

import torchzygote as tz

from .oscillators import make_data, make_model, simulate
from .training import train_torch

TIMEOUT = datetime.timedelta(seconds=120)


def run(cfg, world=2):
    """Train on ``world`` local processes; the parameters rank 0 ends with (on the CPU).

    The parent owns the rendezvous store, bound to a free port by the OS (port 0), so there is
    no window in which another program can take the port between choosing and using it."""
    store = dist.TCPStore("127.0.0.1", 0, world + 1, is_master=True, wait_for_workers=False,
                          timeout=TIMEOUT)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "params.pt")
        mp.spawn(_worker, args=(world, store.port, cfg, out), nprocs=world, join=True)
        return torch.load(out)


def _worker(rank, world, port, cfg, out):
    torch.set_num_threads(1)    # the ranks share the machine's cores
    store = dist.TCPStore("127.0.0.1", port, world + 1, is_master=False, timeout=TIMEOUT)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world, timeout=TIMEOUT)
    try:
        device = torch.device(cfg["device"])
        if device.type == "cuda":
            device = torch.device("cuda", rank % torch.cuda.device_count())
        data = make_data(cfg["n"], cfg["dt"], cfg["nsteps"], cfg["seed"], device)
        model = make_model(tz.to_torch(simulate), cfg["seed"], device)
        ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None)
        train_torch(ddp, data, cfg, shard=(rank, world))
        if rank == 0:
            torch.save({k: v.cpu() for k, v in model.state_dict().items()}, out)
        dist.barrier()          # no rank tears its connections down while another still talks
    finally:
        dist.destroy_process_group()
