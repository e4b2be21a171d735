"""torchzygote inside torch, torch inside torchzygote, and torch's DDP over both.

A small physics-informed model: a net maps each oscillator's measured features to its
stiffness k and damping c, a shared cubic coefficient beta is learned alongside, and a
hand-written simulator (``oscillators.simulate``: a Python loop of velocity Verlet steps)
turns them into trajectories fitted to noisy observations. The simulator's gradient comes
from torchzygote; everything else is ordinary torch:

1. ``tz.to_torch(simulate)`` inside an ``nn.Module``'s forward, trained by
   ``loss.backward()`` and ``torch.optim.Adam``: the same parameters as the model with the
   simulator left to torch autograd (float64, to 1e-10, after every Adam step).
2. The reverse: a loss written for torchzygote calls the torch encoder through
   ``tz.call_torch`` and training is driven by ``tz.withgradient``; again the same
   parameters as plain torch.
3. The ``to_torch`` model under ``DistributedDataParallel`` (gloo, 2 local processes, each
   with half of every global batch) ends where a single process on the full batches does.
4. Double backward through the ``to_torch`` simulator (``create_graph=True``, then backward
   again, as an input-sensitivity penalty needs) against torch's second derivative.

    python -m examples.torch_interop [--quick] [--device cpu|cuda] [--seed N] [--no-ddp]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import torch

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    __package__ = "examples.torch_interop"

import torchzygote as tz  # noqa: E402

from . import ddp  # noqa: E402
from .oscillators import TRUE_BETA, make_data, make_model, mse, simulate  # noqa: E402
from .training import batch_at, train_torch, train_tz  # noqa: E402


def param_diff(a, b):
    """The largest absolute difference between two models' parameters."""
    sa, sb = a.state_dict(), b.state_dict()
    return max((sa[k].cpu() - sb[k].cpu()).abs().max().item() for k in sa)


def step_ms(times):
    """(first step, median of the others) in milliseconds: the first call of a torchzygote
    function also generates its gradient code."""
    rest = sorted(times[1:])
    return 1e3 * times[0], 1e3 * rest[len(rest) // 2]


def to_torch_parity(data, cfg, device):
    """Part 1: the to_torch model and the plain torch model, trained alike."""
    models, times = {}, {}
    for name, sim in (("torchzygote", tz.to_torch(simulate)), ("torch", simulate)):
        models[name] = make_model(sim, cfg["seed"], device)
        losses, steps = train_torch(models[name], data, cfg)
        times[name] = step_ms(steps)
    model = models["torchzygote"]
    return {"to_torch_diff": param_diff(model, models["torch"]), "to_torch_ms": times["torchzygote"],
            "torch_ms": times["torch"], "loss_first": losses[0], "loss_last": losses[-1],
            "beta": model.log_beta.exp().item()}, model


def call_torch_parity(data, cfg, device):
    """Part 2: ``training.tz_loss`` differentiated by torchzygote and by torch autograd."""
    models, times = {}, {}
    for engine in ("torchzygote", "torch"):
        models[engine] = make_model(simulate, cfg["seed"], device)
        times[engine] = step_ms(train_tz(models[engine], data, cfg, engine)[1])
    return {"call_torch_diff": param_diff(models["torchzygote"], models["torch"]),
            "call_torch_ms": times["torchzygote"], "call_torch_torch_ms": times["torch"]}


def ddp_parity(data, cfg, device):
    """Part 3: 2 DDP ranks on half batches against one process on the full batches."""
    single = make_model(tz.to_torch(simulate), cfg["seed"], device)
    train_torch(single, data, cfg)
    t = time.perf_counter()
    state = ddp.run({**cfg, "device": device.type})
    diff = max((v - single.state_dict()[k].cpu()).abs().max().item() for k, v in state.items())
    return {"ddp_diff": diff, "ddp_s": time.perf_counter() - t}


def sensitivity_grads(model, batch, cfg):
    """The parameter gradient of ``|d loss / d x0|^2`` (how strongly the fit depends on the
    initial states): a backward through the first backward, so the simulator's gradient has to
    be differentiable itself."""
    x0 = batch.x0.clone().requires_grad_()
    loss = mse(model, dataclasses.replace(batch, x0=x0), cfg["dt"], cfg["nsteps"])
    (g,) = torch.autograd.grad(loss, x0, create_graph=True)
    return torch.autograd.grad((g ** 2).sum(), list(model.parameters()))


def double_backward(data, cfg, device, trained):
    """Part 4: the second derivative through ``to_torch`` against plain torch's, at the
    trained weights (copied into the plain model)."""
    plain = make_model(simulate, cfg["seed"], device)
    plain.load_state_dict(trained.state_dict())
    batch = batch_at(data, 0, cfg)
    g_tz, g_torch = sensitivity_grads(trained, batch, cfg), sensitivity_grads(plain, batch, cfg)
    return {"double_backward_diff": max((a - b).abs().max().item() for a, b in zip(g_tz, g_torch)),
            "double_backward_scale": max(b.abs().max().item() for b in g_torch)}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m examples.torch_interop",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short run (seconds)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-ddp", dest="ddp", action="store_false",
                    help="skip the DistributedDataParallel run (it starts 2 processes)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    cfg = {"seed": args.seed, "steps": 200, "lr": 0.02, "dt": 0.1,
           "n": 32 if args.quick else 128, "batch": 8 if args.quick else 32,
           "nsteps": 20 if args.quick else 60}
    data = make_data(cfg["n"], cfg["dt"], cfg["nsteps"], args.seed, device)
    print(f"{cfg['n']} damped Duffing oscillators, {cfg['nsteps']} velocity-Verlet steps each, "
          f"{cfg['steps']} Adam steps on batches of {cfg['batch']} (float64, {device})")

    out, trained = to_torch_parity(data, cfg, device)
    print(f"1. tz.to_torch(simulate) in an nn.Module, loss.backward(), Adam: loss {out['loss_first']:.4f} -> "
          f"{out['loss_last']:.4f}, beta {out['beta']:.3f} (true {TRUE_BETA})")
    print(f"   max parameter difference from plain torch: {out['to_torch_diff']:.1e}")
    print("   ms per step (first, then median): torchzygote %.0f, %.1f; plain torch %.0f, %.1f"
          % (*out["to_torch_ms"], *out["torch_ms"]))

    out.update(call_torch_parity(data, cfg, device))
    print(f"2. tz.call_torch(encoder) in a torchzygote loss, tz.withgradient, Adam: max parameter "
          f"difference from torch autograd on the same loss: {out['call_torch_diff']:.1e}")
    print("   ms per step (first, then median): torchzygote %.0f, %.1f; torch autograd %.0f, %.1f"
          % (*out["call_torch_ms"], *out["call_torch_torch_ms"]))

    if args.ddp:
        out.update(ddp_parity(data, cfg, device))
        print(f"3. DistributedDataParallel, 2 gloo ranks on half batches: max parameter difference from "
              f"one process on the full batches {out['ddp_diff']:.1e} ({out['ddp_s']:.1f} s, most of it "
              f"starting the processes)")

    out.update(double_backward(data, cfg, device, trained))
    print(f"4. double backward through tz.to_torch (create_graph=True): max difference from torch's "
          f"second derivative {out['double_backward_diff']:.1e} (largest entry "
          f"{out['double_backward_scale']:.1e})")
    return out


if __name__ == "__main__":
    main()
