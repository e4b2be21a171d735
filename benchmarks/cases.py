"""The benchmark cases: each builds its contestants and goals and returns a ``Result``."""
from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Callable, Dict, List, Optional

import torch

import torchzygote as tz

from . import programs as P
from .harness import Config, Contestant, Goal, Result, Row, short_error, timed_case

try:  # optional competitor
    import tangent  # type: ignore
    TANGENT_ERROR = None
except Exception as _e:  # noqa: BLE001
    tangent = None
    TANGENT_ERROR = "not installed" if isinstance(_e, ImportError) else short_error(_e)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TZ = "torchzygote"
EAGER = "torch eager"
FUNC = "torch.func.grad"
COMPILE = "torch.compile"
TANGENT = "tangent"
PRIMAL = "primal"


# ------------------------------------------------------------------ gradient checks

def _flat(v) -> List[torch.Tensor]:
    if v is None:
        return []
    if isinstance(v, (tuple, list)):
        out = []
        for x in v:
            out += _flat(x)
        return out
    return [torch.as_tensor(v).detach().to("cpu", torch.float64).reshape(-1)]


def grad_check(ref: str, tol: float, proj: Optional[Dict[str, Callable]] = None):
    """Compare every contestant's gradient with ``ref``'s (after ``proj[name]``, which
    picks the entries comparable with the reference)."""
    proj = proj or {}

    def check(rows: Dict[str, Row]) -> str:
        if ref not in rows:
            return f"no reference ({ref} failed)"
        r = torch.cat(_flat(proj.get(ref, lambda v: v)(rows[ref].value)))
        scale = float(r.abs().max()) or 1.0
        parts = []
        for name, row in rows.items():
            if name == ref or row.role == "primal":
                continue
            try:
                g = torch.cat(_flat(proj.get(name, lambda v: v)(row.value)))
                err = float((g - r).abs().max()) / scale if g.shape == r.shape else float("inf")
            except Exception as e:  # noqa: BLE001
                parts.append(f"{name}: cannot compare ({short_error(e)})")
                continue
            parts.append(f"{name} {'ok' if err <= tol else 'MISMATCH'} ({err:.1e})")
        return f"gradients vs {ref} (max abs err / max |grad|, tol {tol:g}): " + "; ".join(parts)
    return check


def _dtype(cfg: Config, cpu=torch.float64):
    return torch.float32 if cfg.device.startswith("cuda") else cpu


def _tangent(cfg: Config, make: Callable, name=TANGENT, note="") -> List[Contestant]:
    if tangent is None or cfg.quick:  # --quick: tangent's transforms take up to a second each
        return []
    return [Contestant(name, make, note=note, quiet=True)]


SLOW_COMPILE = "inductor takes minutes on this unrolled loop (PK: 3.5 min at only 20 RK4 steps, 2 cores); " \
               "add --compile-slow"


def _compile(cfg: Config, fn: Callable, leaves: List[torch.Tensor], args_after, slow=False) -> List[Contestant]:
    """torch.compile of the forward; the backward is AOTAutograd's (``torch.autograd.grad``)."""
    if not cfg.compile or (slow and not cfg.compile_slow):
        return []

    def make():
        cf = torch.compile(fn)
        return lambda: torch.autograd.grad(cf(*leaves, *args_after), leaves)
    return [Contestant(COMPILE, make, note="setup = compile time", quiet=True)]


def _leaves(*ts):
    return [t.detach().clone().requires_grad_(True) for t in ts]


# ------------------------------------------------------------------ scalar chain


def scalar_chain(cfg: Config) -> Result:
    x = 0.5
    dt = torch.float64
    xt = torch.tensor(x, dtype=dt, requires_grad=True)
    x0 = torch.tensor(x, dtype=dt)

    def tangent_float():
        return tangent.grad(P.chain_numpy)

    cs = [
        Contestant(PRIMAL, lambda: (lambda: P.chain_float(x)), role="primal", note="plain Python floats"),
        Contestant(TZ, lambda: (lambda: tz.gradient(P.chain_float, x)), role="tz", note="Python floats"),
        Contestant(EAGER, lambda: (lambda: torch.autograd.grad(P.chain_tensor(xt), xt)),
                   note="0-d float64 tensors"),
        Contestant(FUNC, lambda: (lambda g=torch.func.grad(P.chain_tensor): g(x0)), note="0-d float64 tensors"),
    ]
    cs += _compile(cfg, P.chain_tensor, [xt], ())
    if tangent is not None:
        cs += [Contestant("tangent (floats, numpy ops)", lambda: (lambda g=tangent_float(): g(x)), quiet=True),
               Contestant("tangent (0-d tensors)",
                          lambda: (lambda g=tangent.grad(P.chain_tensor): g(x0)), quiet=True)]
    goals = [Goal(TZ, PRIMAL, "<", 4.0, "tz / primal < 4"),
             Goal(EAGER, TZ, ">=", 20.0, "eager / tz >= 20 (tz 20x faster)")]
    return timed_case(cfg, "scalar_chain", "scalar chain: 100 x  x = x + 0.01*sin(log(x*x + 1))  (600 ops)",
                      cs, goals, grad_check(EAGER, 1e-7))


# ------------------------------------------------------------------ pow loop


def pow_loop(cfg: Config) -> Result:
    x, n = 1.1, 30
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    x0 = torch.tensor(x, dtype=torch.float64)
    cs = [
        Contestant(PRIMAL, lambda: (lambda: P.pow_loop(x, n)), role="primal", note="plain Python floats"),
        Contestant(TZ, lambda: (lambda: tz.gradient(P.pow_loop, x, n)), role="tz", note="Python floats"),
        Contestant(EAGER, lambda: (lambda: torch.autograd.grad(P.pow_loop(xt, n), xt)), note="0-d float64 tensor"),
        Contestant(FUNC, lambda: (lambda g=torch.func.grad(P.pow_loop): g(x0, n)), note="0-d float64 tensor"),
    ]
    cs += _compile(cfg, P.pow_loop, [xt], (n,))
    cs += _tangent(cfg, lambda: (lambda g=tangent.grad(P.pow_loop_float, wrt=(0,)): g(x, n)),
                   note="floats (r = 1.0)")
    proj = {TZ: lambda v: v[0]}
    return timed_case(cfg, "pow_loop", "the seeds' pow loop: r = 1; while n > 0: n -= 1; r *= x   (n = 30)",
                      cs, [], grad_check(EAGER, 1e-7, proj),
                      notes=["no goal set: reported for comparison"])


# ------------------------------------------------------------------ CartPole


def cartpole(cfg: Config) -> Result:
    steps = 20 if cfg.quick else 200
    dev, dt = cfg.device, torch.float32
    g = torch.Generator().manual_seed(0)
    W1 = (torch.randn(32, 4, generator=g) * 0.5).to(dev, dt)
    b1 = (torch.randn(32, generator=g) * 0.1).to(dev, dt)
    W2 = (torch.randn(1, 32, generator=g) * 0.2).to(dev, dt)
    b2 = torch.zeros(1).to(dev, dt)
    s0 = torch.tensor([0.0, 0.0, 0.05, 0.0]).to(dev, dt)
    params = (W1, b1, W2, b2)
    leaves = _leaves(*params)
    cs = [
        Contestant(PRIMAL, lambda: (lambda: _no_grad(P.cartpole_loss, *params, s0, steps)), role="primal",
                   note="forward only, torch.no_grad"),
        Contestant(TZ, lambda: (lambda: tz.gradient(P.cartpole_loss, *params, s0, steps)), role="tz"),
        Contestant(EAGER, lambda: (lambda: torch.autograd.grad(P.cartpole_loss(*leaves, s0, steps), leaves))),
        Contestant(FUNC, lambda: (lambda gf=torch.func.grad(P.cartpole_loss, argnums=(0, 1, 2, 3)):
                                  gf(*params, s0, steps))),
    ]
    cs += _compile(cfg, P.cartpole_loss, leaves, (s0, steps), slow=True)
    cs += _tangent(cfg, lambda: (lambda gf=tangent.grad(P.cartpole_loss, wrt=(0, 1, 2, 3)): gf(*params, s0, steps)))
    proj = {TZ: lambda v: v[:4]}
    notes = [f"torch.compile skipped: {SLOW_COMPILE}"] if cfg.compile and not cfg.compile_slow else []
    return timed_case(cfg, "cartpole", f"CartPole rollout: {steps} Euler steps, MLP 4->32->1 tanh, float32, "
                      f"loss = sum theta^2", cs,
                      [Goal(TZ, EAGER, "<=", 0.7, "tz / eager <= 0.7")], grad_check(EAGER, 1e-3, proj), notes=notes)


def _no_grad(f, *args):
    with torch.no_grad():
        return f(*args)


# ------------------------------------------------------------------ PK ODE


def pk_observations(steps, ka=1.2, ke=0.25, V=10.0):
    """Synthetic data: the true model's concentrations (floats) with a fixed wiggle."""
    A, C, h = P.PK_DOSE, 0.0, P.PK_DT
    obs = []
    for i in range(steps):
        def rhs(A, C):
            return -ka * A, ka * A / V - ke * C
        k1 = rhs(A, C)
        k2 = rhs(A + 0.5 * h * k1[0], C + 0.5 * h * k1[1])
        k3 = rhs(A + 0.5 * h * k2[0], C + 0.5 * h * k2[1])
        k4 = rhs(A + h * k3[0], C + h * k3[1])
        A = A + h / 6.0 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        C = C + h / 6.0 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        obs.append(C * (1.0 + 0.05 * math.sin(3.0 * i)))
    return tuple(obs)


def pk_ode(cfg: Config, vector: bool) -> Result:
    steps = 20 if cfg.quick else 100
    dev, dt = cfg.device, _dtype(cfg)
    obs = pk_observations(steps)
    theta = [1.0, 0.3, 12.0]  # ka, ke, V: the starting guess
    if vector:
        p = torch.tensor(theta, dtype=dt, device=dev)
        params, f, rest = (p,), P.pk_loss_vec, (obs, steps)
        shape = "(3,) tensor"
    else:
        params = tuple(torch.tensor(v, dtype=dt, device=dev) for v in theta)
        f, rest = P.pk_loss, (obs, steps)
        shape = "three 0-d tensors"
    leaves = _leaves(*params)
    k = len(params)
    argnums = tuple(range(k))
    cs = [
        Contestant(PRIMAL, lambda: (lambda: _no_grad(f, *params, *rest)), role="primal",
                   note="forward only, torch.no_grad"),
        Contestant(TZ, lambda: (lambda: tz.gradient(f, *params, *rest)), role="tz"),
        Contestant(EAGER, lambda: (lambda: torch.autograd.grad(f(*leaves, *rest), leaves))),
        Contestant(FUNC, lambda: (lambda gf=torch.func.grad(f, argnums=argnums): gf(*params, *rest))),
    ]
    cs += _compile(cfg, f, leaves, rest, slow=True)
    cs += _tangent(cfg, lambda: (lambda gf=tangent.grad(f, wrt=argnums): gf(*params, *rest)))
    proj = {TZ: lambda v: v[:k]}
    name = "pk_ode_vec" if vector else "pk_ode"
    return timed_case(cfg, name, f"PK ODE: RK4, {steps} steps, one compartment + absorption, params as {shape}, "
                      f"{str(dt).replace('torch.', '')}", cs, [],
                      grad_check(EAGER, 1e-3 if dt == torch.float32 else 1e-7, proj),
                      notes=["no goal set: reported for comparison",
                             "observations are a tuple of Python floats (data, no gradient)"]
                      + ([f"torch.compile skipped: {SLOW_COMPILE}"] if cfg.compile and not cfg.compile_slow else []))


# ------------------------------------------------------------------ MLP


def mlp(cfg: Config) -> Result:
    if cfg.quick:
        batch, width = 32, 128
    else:
        batch, width = 256, 1024
    dev, dt = cfg.device, torch.float32
    g = torch.Generator().manual_seed(1)

    def w(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).to(dev, dt)
    W1, b1 = w(width, width, scale=width ** -0.5), w(width, scale=0.1)
    W2, b2 = w(width, width, scale=width ** -0.5), w(width, scale=0.1)
    W3, b3 = w(width, 10, scale=width ** -0.5), w(10, scale=0.1)
    X, Y = w(batch, width), w(batch, 10)
    params = (W1, b1, W2, b2, W3, b3)
    leaves = _leaves(*params)

    def tz_closure():
        loss = lambda W1, b1, W2, b2, W3, b3: P.mlp_loss(W1, b1, W2, b2, W3, b3, X, Y)  # noqa: E731
        return lambda: tz.gradient(loss, *params)

    cs = [
        Contestant(PRIMAL, lambda: (lambda: _no_grad(P.mlp_loss, *params, X, Y)), role="primal",
                   note="forward only, torch.no_grad"),
        Contestant(TZ, lambda: (lambda: tz.gradient(P.mlp_loss, *params, X=X, Y=Y)), role="tz",
                   note="X, Y as keywords: constants, like eager's data"),
        Contestant("tz (X, Y as arguments)", lambda: (lambda: tz.gradient(P.mlp_loss, *params, X, Y)[:6]),
                   note="their gradients are computed too"),
        Contestant("tz (closure over X, Y)", tz_closure, note="closure cells may be parameters: graded"),
        Contestant(EAGER, lambda: (lambda: torch.autograd.grad(P.mlp_loss(*leaves, X, Y), leaves))),
        Contestant(FUNC, lambda: (lambda gf=torch.func.grad(P.mlp_loss, argnums=tuple(range(6))):
                                  gf(*params, X, Y))),
    ]
    cs += _compile(cfg, P.mlp_loss, leaves, (X, Y))
    cs += _tangent(cfg, lambda: (lambda gf=tangent.grad(P.mlp_loss, wrt=tuple(range(6))): gf(*params, X, Y)))
    proj = {TZ: lambda v: v[:6]}
    return timed_case(cfg, "mlp", f"MLP: batch {batch}, {width}->{width}->{width}->10 tanh, float32, "
                      f"loss = mean squared error", cs,
                      [Goal(TZ, EAGER, "<=", 1.05, "tz / eager <= 1.05")], grad_check(EAGER, 1e-3, proj))


# ------------------------------------------------------------------ fixed overhead


def warm_overhead(cfg: Config) -> Result:
    xt = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    x0 = torch.tensor(3.0, dtype=torch.float64)
    cs = [
        Contestant(PRIMAL, lambda: (lambda: P.square(3.0)), role="primal"),
        Contestant(TZ, lambda: (lambda: tz.gradient(P.square, 3.0)), role="tz", note="f = lambda x: x * x, float"),
        Contestant(EAGER, lambda: (lambda: torch.autograd.grad(P.square_tensor(xt), xt)), note="0-d float64"),
        Contestant(FUNC, lambda: (lambda g=torch.func.grad(P.square_tensor): g(x0)), note="0-d float64"),
    ]
    return timed_case(cfg, "warm_overhead", "warm fixed overhead: tz.gradient(lambda x: x * x, 3.0)", cs,
                      [Goal(TZ, None, "<", 5e-6, "tz call < 5 us")], grad_check(EAGER, 1e-12))


# ------------------------------------------------------------------ cold start


def _fresh_function(k: int, tmpdir: str):
    src = P.COLD_TEMPLATE.format(k=k, c0=0.1 + k * 1e-3, c1=1.5, c2=0.25, c3=1.0 + k * 1e-4)
    path = os.path.join(tmpdir, f"tz_bench_cold_{os.getpid()}_{k}.py")
    with open(path, "w") as fh:
        fh.write(src)
    ns = {"math": math, "__name__": f"tz_bench_cold_{k}"}
    exec(compile(src, path, "exec"), ns)  # noqa: S102 - our own generated source
    return ns[f"fresh_{k}"], src


def cold_start(cfg: Config) -> Result:
    repeats = 4 if cfg.quick else 15
    res = Result("cold_start", "cold start: first tz.gradient call of a freshly defined 40-line function",
                 ratio_base="first call (cold)")
    firsts, seconds, primals = [], [], []
    lines = None
    err = None
    with tempfile.TemporaryDirectory() as tmpdir:
        # a throwaway fresh function first: one-time costs of the process (lazy imports) are not cold start
        try:
            f, _ = _fresh_function(10**6, tmpdir)
            t0 = time.perf_counter()
            tz.gradient(f, 0.7, 1.3)
            res.extra["first_transform_in_process_s"] = time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001
            err = e
        for k in range(repeats if err is None else 0):
            f, src = _fresh_function(k, tmpdir)
            if lines is None:
                body = src.split("\ndef helper_")[0]
                lines = body.count("\n") + 1
            try:
                t0 = time.perf_counter()
                g1 = tz.gradient(f, 0.7, 1.3)
                t1 = time.perf_counter()
                g2 = tz.gradient(f, 0.7, 1.3)
                t2 = time.perf_counter()
                f(0.7, 1.3)
                t3 = time.perf_counter()
            except Exception as e:  # noqa: BLE001
                err = e
                break
            firsts.append(t1 - t0)
            seconds.append(t2 - t1)
            primals.append(t3 - t2)
            if k == 0:
                h = 1e-6
                fd = (f(0.7 + h, 1.3) - f(0.7 - h, 1.3)) / (2 * h)
                res.check = (f"d/dx vs central difference: {g1[0]:.6g} vs {fd:.6g} "
                             f"({'ok' if abs(g1[0] - fd) <= 1e-5 * max(1.0, abs(fd)) else 'MISMATCH'}); "
                             f"second call agrees: {g1 == g2}")
    row = Row("first call (cold)", role="tz", note=f"{lines}-line function + 2-line helper, fresh file each "
              f"repeat")
    row2 = Row("second call (warm)", role="tz")
    row3 = Row(PRIMAL, role="primal", note="one call of the function itself")
    if err is not None:
        row.error = short_error(err)
        row.traceback = "".join(traceback.format_exception(err, limit=12))
    for r, s in ((row, firsts), (row2, seconds), (row3, primals)):
        r.samples, r.number = s, 1
        if s and r.error is None:
            r.median = statistics.median(s)
    res.rows = [row, row2, row3]
    res.goals = [Goal("first call (cold)", None, "<", 0.1, "cold call < 100 ms").evaluate(res.medians())]
    if "first_transform_in_process_s" in res.extra:
        res.notes.append(f"first transform in this process (not counted, includes lazy imports): "
                         f"{res.extra['first_transform_in_process_s'] * 1e3:.1f} ms")
    return res


# ------------------------------------------------------------------ memory (separate processes)


def _probe(specs, threads: int):
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "benchmarks.memprobe", str(threads)] + [f"{m}:{n}" for m, n in specs]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


def memory(cfg: Config) -> Result:
    n_tz = 10**4 if cfg.quick else 10**6
    n_torch = 10**3 if cfg.quick else 10**5
    res = Result("memory", "memory: loop  x = x + 1e-6*sin(x)  (3 ops per iteration), gradient w.r.t. x",
                 unit="bytes", ratio_base="torchzygote (RSS)")
    specs = [("torchzygote (RSS)", "tz_rss", n_tz, "tz", "Python floats; peak RSS growth (VmHWM) during gradient"),
             ("torchzygote (tracemalloc)", "tz_tracemalloc", n_tz, "tz", "Python floats; tracemalloc peak"),
             (EAGER + " (RSS)", "torch_rss", n_torch, "baseline",
              f"0-d float64 tensors; n = {n_torch:.0e}: eager autograd on 0-d tensors is too slow at {n_tz:.0e}"),
             ("primal (tracemalloc)", "primal_tracemalloc", n_tz, "primal", "Python floats, no gradient")]
    timeout = 60 if cfg.quick else 300
    outs = {}
    if cfg.quick:  # one process for all (each process pays the import of torch)
        got = _collect(_probe([(m, n) for _, m, n, _, _ in specs], cfg.threads), timeout)
        for name, mode, _, _, _ in specs:
            outs[name] = next((o for o in got if o.get("mode") == mode), got[-1] if got and "mode" not in got[-1]
                              else {"error": "no output"})
        res.notes.append("--quick: all probes share one process (RSS of later probes may read low)")
    else:
        for name, mode, n, _, _ in specs:
            got = _collect(_probe([(mode, n)], cfg.threads), timeout)
            outs[name] = got[-1] if got else {"error": "no output"}
    for name, mode, n, role, note in specs:
        r = Row(name, role=role, note=note)
        out = outs[name]
        if "error" in out:
            r.error = out["error"]
            r.traceback = out.get("traceback")
        else:
            r.median = out["peak_bytes"]
            r.samples = [out["peak_bytes"]]
            r.number = n
        res.extra[name] = dict(out, n=n)
        res.rows.append(r)
    res.notes.append("peaks, not times; bytes/iter = peak / iterations (compare per iteration: the loops differ "
                     "in length)")
    if not cfg.quick:
        res.notes.append("each figure from its own fresh process; RSS = growth of the resident-set high-water "
                         "mark over the level before the gradient call")
    return res


def _collect(p: subprocess.Popen, timeout: float) -> list:
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        return [{"error": f"timed out after {timeout:.0f} s"}]
    got = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not got:
        tail = (err or out).strip().splitlines()
        got.append({"error": f"probe failed (rc {p.returncode}): {tail[-1] if tail else ''}",
                    "traceback": err[-4000:]})
    return got


# ------------------------------------------------------------------ registry

CASES = {
    "scalar_chain": (scalar_chain, True),
    "pow_loop": (pow_loop, True),
    "cartpole": (cartpole, False),
    "pk_ode": (lambda cfg: pk_ode(cfg, vector=False), False),
    "pk_ode_vec": (lambda cfg: pk_ode(cfg, vector=True), False),
    "mlp": (mlp, False),
    "cold_start": (cold_start, True),
    "warm_overhead": (warm_overhead, True),
    "memory": (memory, True),
}
"""name -> (builder, cpu_only)"""
