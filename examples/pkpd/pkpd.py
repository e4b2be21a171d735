"""PK/PD: a neural net for patient covariates inside a pharmacokinetic ODE, fitted end to end.

The talk's second example mixes scientific and machine-learning models: a
one-compartment pharmacokinetic (PK) model with first-order oral absorption,

    dA_gut/dt    = -ka * A_gut
    dA_central/dt =  ka * A_gut - ke * A_central,      C = A_central / V,

solved with a hand-written RK4 in a plain Python loop, an Emax pharmacodynamic
(PD) model for the drug's effect, E = E0 + Emax * C / (EC50 + C), and a small
neural net that maps each patient's covariates (weight, age) to their PK
parameters (ka, ke, V). torchzygote differentiates through the solver and the
net together, and the net's weights are fitted to noisy synthetic observations.

    python examples/pkpd/pkpd.py [--quick] [--plot out.png]
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.nn import functional as F

import torchzygote as tz

DOSE = 100.0                    # mg, given orally at t = 0
T_END = 24.0                    # hours
OBS_TIMES = [0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0]

# the PD model's parameters (known; the PK is what varies between patients)
E0, EMAX, EC50 = 10.0, 60.0, 2.0


# ---------------------------------------------------------------- the science

def pk_rhs(u, ka, ke):
    """The right-hand side of the one-compartment model; u = [A_gut, A_central] (2 x patients)."""
    gut, central = u[0], u[1]
    return torch.stack([-ka * gut, ka * gut - ke * central])


def rk4(rhs, u, dt, nsteps, *p):
    """Classic fourth-order Runge-Kutta in a plain loop; returns the states at every step."""
    out = [u]
    for _ in range(nsteps):
        k1 = rhs(u, *p)
        k2 = rhs(u + 0.5 * dt * k1, *p)
        k3 = rhs(u + 0.5 * dt * k2, *p)
        k4 = rhs(u + dt * k3, *p)
        u = u + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(u)
    return out


def concentrations(ka, ke, V, dt):
    """Plasma concentration at OBS_TIMES for a batch of patients (each a vector entry)."""
    nsteps = round(T_END / dt)
    u0 = torch.stack([DOSE * torch.ones_like(ka), torch.zeros_like(ka)])
    states = rk4(pk_rhs, u0, dt, nsteps, ka, ke)
    return torch.stack([states[round(t / dt)][1] for t in OBS_TIMES], dim=1) / V[:, None]


def emax(c):
    """The PD effect at concentration c."""
    return E0 + EMAX * c / (EC50 + c)


def true_pk(cov):
    """The ground truth: allometric, age-dependent PK parameters."""
    weight, age = cov[:, 0], cov[:, 1]
    ka = 1.2 * torch.ones_like(weight) * (1 - 0.004 * (age - 50))
    ke = 0.15 * (weight / 70) ** -0.25 * (1 - 0.006 * (age - 50))
    V = 40.0 * (weight / 70)
    return ka, ke, V


# ---------------------------------------------------------------- the model

class CovariateNet(nn.Module):
    """Covariates (weight kg, age y) -> (ka, ke, V), kept positive by softplus."""

    def __init__(self, hidden=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 3))
        # typical values, so an untrained net starts at a plausible (but wrong) scale
        self.register_buffer("typical", torch.tensor([1.0, 0.1, 30.0]))

    def forward(self, cov):
        z = (cov - torch.tensor([70.0, 50.0])) / torch.tensor([15.0, 15.0])
        p = self.typical * F.softplus(self.net(z)) / F.softplus(torch.zeros(()))
        return p[:, 0], p[:, 1], p[:, 2]


def predict(model, cov, dt):
    """Concentrations and effects for each patient."""
    ka, ke, V = model(cov)
    c = concentrations(ka, ke, V, dt)
    return c, emax(c)


def loss(model, cov, c_obs, e_obs, dt):
    """Squared error on log concentration and on (scaled) effect."""
    c, e = predict(model, cov, dt)
    lc = ((torch.log(c) - torch.log(c_obs)) ** 2).mean()
    le = (((e - e_obs) / EMAX) ** 2).mean()
    return lc + le


def synthetic_data(n, gen, dt):
    weight = 50 + 50 * torch.rand(n, generator=gen)
    age = 20 + 60 * torch.rand(n, generator=gen)
    cov = torch.stack([weight, age], dim=1)
    ka, ke, V = true_pk(cov)
    c = concentrations(ka, ke, V, dt)
    c_obs = c * torch.exp(0.1 * torch.randn(c.shape, generator=gen))      # 10% proportional noise
    e_obs = emax(c) + 1.0 * torch.randn(c.shape, generator=gen)            # additive noise
    return cov, c_obs, e_obs


# ---------------------------------------------------------------- checks

def compare_with_autograd(model, cov, c_obs, e_obs, dt, repeat=3):
    """Max abs difference between torchzygote's gradient (a record of the model's fields)
    and torch autograd's, and the time of one gradient with each (best of ``repeat``)."""
    def tz_grad():
        with torch.no_grad():
            (g,) = tz.gradient(lambda m: loss(m, cov, c_obs, e_obs, dt), model)
        # the record mirrors the module: g.net["0"].weight is the gradient of model.net[0].weight
        return [field(g, name) for name, _ in model.net.named_parameters(prefix="net")]

    def torch_grad():
        return torch.autograd.grad(loss(model, cov, c_obs, e_obs, dt), list(model.net.parameters()))

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


def field(record, dotted):
    """``record.a.b.c`` for ``dotted = "a.b.c"`` (the names of ``named_parameters``;
    an ``nn.Sequential``'s gradient is a list, so ``net.0`` is ``record.net[0]``)."""
    for part in dotted.split("."):
        record = record[int(part)] if isinstance(record, list) else record[part]
    return record


# ---------------------------------------------------------------- fitting

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short run (a few seconds)")
    ap.add_argument("--plot", metavar="PNG", help="write fitted vs observed curves")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    torch.set_default_dtype(torch.float64)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    dt = 0.5 if args.quick else 0.25                 # RK4 step, hours
    n_patients = 16 if args.quick else 32
    iters = 40 if args.quick else 100

    cov, c_obs, e_obs = synthetic_data(n_patients, gen, dt)
    model = CovariateNet()
    ps = tz.Params(model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=0.03)

    print(f"PK/PD: {n_patients} patients x {len(OBS_TIMES)} observations, RK4 with dt = {dt} h "
          f"({round(T_END / dt)} steps), net with {sum(p.numel() for p in model.parameters())} weights")
    diff, scale, t_tz, t_torch = compare_with_autograd(model, cov, c_obs, e_obs, dt)
    print(f"gradient vs torch autograd at the start: max abs diff {diff:.2e} "
          f"(largest entry {scale:.2e})")
    print(f"time for one gradient: torchzygote {t_tz * 1e3:.1f} ms, torch autograd {t_torch * 1e3:.1f} ms")

    history = []
    t0 = time.perf_counter()
    for it in range(iters + 1):
        with torch.no_grad():
            val, gs = tz.withgradient(lambda: loss(model, cov, c_obs, e_obs, dt), ps)
        history.append(float(val))
        if it % (10 if args.quick else 25) == 0:
            print(f"iter {it:4d}: loss {float(val):.5f}")
        if it == iters:
            break
        for p in model.parameters():
            p.grad = gs[p]
        opt.step()
    print(f"fitted in {time.perf_counter() - t0:.1f} s: loss {history[0]:.4f} -> {history[-1]:.4f}")

    # recovered parameters for a few new patients
    test_cov = torch.tensor([[55.0, 25.0], [70.0, 50.0], [95.0, 75.0]])
    with torch.no_grad():
        fit = torch.stack(model(test_cov), dim=1)
    truth = torch.stack(true_pk(test_cov), dim=1)
    print("new patients          ka (1/h)          ke (1/h)          V (L)")
    print("weight  age      fit    true       fit    true       fit    true")
    for (w, a), f, t in zip(test_cov.tolist(), fit.tolist(), truth.tolist()):
        print(f"{w:5.0f} {a:5.0f}   " + "   ".join(f"{fi:7.3f} {ti:7.3f}" for fi, ti in zip(f, t)))
    rel = ((fit - truth).abs() / truth).max().item()

    if args.plot:
        plot(model, cov, c_obs, e_obs, dt, args.plot)

    return {"losses": history, "grad_diff": diff, "grad_scale": scale, "max_rel_error": rel,
            "time_tz": t_tz, "time_torch": t_torch}


def plot(model, cov, c_obs, e_obs, dt, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed; no plot written")
        return
    fine = 0.1
    with torch.no_grad():
        ka, ke, V = model(cov[:3])
        u0 = torch.stack([DOSE * torch.ones_like(ka), torch.zeros_like(ka)])
        states = rk4(pk_rhs, u0, fine, round(T_END / fine), ka, ke)
    t = [i * fine for i in range(len(states))]
    c = torch.stack([s[1] for s in states], dim=1) / V[:, None]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i in range(3):
        line, = a1.plot(t, c[i].numpy(), label=f"{cov[i, 0]:.0f} kg, {cov[i, 1]:.0f} y")
        a1.plot(OBS_TIMES, c_obs[i].numpy(), "o", color=line.get_color())
        a2.plot(t, emax(c[i]).numpy(), color=line.get_color())
        a2.plot(OBS_TIMES, e_obs[i].numpy(), "o", color=line.get_color())
    a1.set_xlabel("time (h)")
    a1.set_ylabel("concentration (mg/L)")
    a1.legend()
    a2.set_xlabel("time (h)")
    a2.set_ylabel("effect")
    fig.suptitle("PK/PD fit: model (lines) vs observations (dots)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


if __name__ == "__main__":
    main()
